"""Benchmark: cnnlab.augment against the legacy ImageDataGenerator and Keras 3 layers.

The lecture's augmentation (``rescale=1/255, rotation_range=40, width_shift_range=0.2,
height_shift_range=0.2, shear_range=0.2, zoom_range=0.2, horizontal_flip=True,
channel_shift_range=9, fill_mode="nearest"``), batch 32, one full epoch per run, the peers
interleaved, best of ``--repeats`` runs each:

1. in memory, on 2,000 crops of 128x128x3 cut from the photos that ship with scikit-image
   (real photos, resized with Pillow), three peers:
   * the legacy generator (``keras.src.legacy.preprocessing.image.ImageDataGenerator``, what
     ``tensorflow.keras.preprocessing.image.ImageDataGenerator`` is in Keras 3): SciPy, one
     image and one channel at a time;
   * the nearest Keras 3 preprocessing-layer pipeline (``ImageDataGenerator.as_layers()``:
     RandomRotation, RandomTranslation, RandomShear, RandomZoom, RandomFlip,
     RandomBrightness, Rescaling) mapped over batches in a parallel, prefetching ``tf.data``
     pipeline: what a Keras 3 user writes instead; each layer resamples on its own;
   * ``cnnlab.augment.ImageDataGenerator(...).flow``;
   * **albumentations** (what a user outside Keras picks: OpenCV, one image at a time) on the
     same crops with the same lecture transforms: ``HorizontalFlip``, one ``Affine`` (rotate
     40 degrees, translate 20 %, shear 0.2 degrees, scale 0.8-1.2 drawn per axis, bilinear,
     ``BORDER_REPLICATE`` = Keras's ``"nearest"`` fill), ``RandomBrightnessContrast`` with
     brightness only (+-9 levels, the same offset on every channel, as Keras's channel
     shift) and ``ToFloat`` (``rescale=1/255``), stacked into batches of 32; run in this
     process and in a pool of one worker process per core (OpenCV limited to one thread in
     each), as a ``DataLoader`` would.  Installed only for the benchmark
     (``pip install -r requirements-bench.txt``); when it is missing this peer is skipped
     with a message;
2. from disk: ``flow_from_directory`` over the same images written as 2,000 JPEG files,
   legacy against cnnlab.

Targets: in memory >= 8x the legacy generator, >= 1.5x the layer pipeline and >= 1x the faster
albumentations run (cnnlab runs in one process and uses every core through XLA's threads;
the pool gives albumentations every core too); from disk >= 2x the legacy generator.  A missed
target prints ``TARGET MISSED`` and exits with status 1.

Run from the repository root (TensorFlow backend, a few minutes on 2 cores)::

    .venv/bin/python benchmarks/augment.py            # the full benchmark
    .venv/bin/python benchmarks/augment.py --images 320 --repeats 1   # a quick look
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cnnlab  # noqa: E402,F401 - quiets TensorFlow; must come before keras

import numpy as np  # noqa: E402

LECTURE = dict(rescale=1 / 255, rotation_range=40, width_shift_range=0.2,
               height_shift_range=0.2, shear_range=0.2, zoom_range=0.2, horizontal_flip=True,
               channel_shift_range=9, fill_mode="nearest")
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
          "immunohistochemistry")
TARGETS = {"legacy": 8.0, "layers": 1.5, "albumentations": 1.0, "directory": 2.0}


def photo_crops(count, size=128, seed=0):
    """``count`` random square crops of real photos, resized to ``size`` (uint8) + labels."""
    import skimage.data
    from PIL import Image

    rng = np.random.default_rng(seed)
    photos = [np.asarray(getattr(skimage.data, name)()) for name in PHOTOS]
    images, labels = np.empty((count, size, size, 3), np.uint8), np.empty(count, np.int64)
    for i in range(count):
        label = i % len(photos)
        photo = photos[label]
        side = int(rng.integers(size, min(photo.shape[:2]) + 1))
        top = int(rng.integers(0, photo.shape[0] - side + 1))
        left = int(rng.integers(0, photo.shape[1] - side + 1))
        crop = Image.fromarray(photo[top:top + side, left:left + side])
        images[i] = np.asarray(crop.resize((size, size), Image.Resampling.BILINEAR))
        labels[i] = label
    return images, labels


_CHILDREN = []  # pids of worker processes whose CPU time counts towards the peer that runs


def _cpu_seconds():
    """CPU seconds of this process (every thread) and of the worker processes in _CHILDREN."""
    total = time.process_time()
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in _CHILDREN:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
        except (OSError, IndexError, ValueError):
            pass
    return total


def time_epoch(run):
    """``(images per second, images per CPU-second)`` of one epoch of ``run``.

    The second figure counts the CPU time the peer used (all its threads and worker
    processes): on a machine shared with other jobs it moves much less than wall time.
    """
    start, cpu = time.perf_counter(), _cpu_seconds()
    count = run()
    return count / (time.perf_counter() - start), count / max(_cpu_seconds() - cpu, 1e-9)


def legacy_flow(x, y):
    from keras.src.legacy.preprocessing.image import ImageDataGenerator as Legacy

    iterator = Legacy(**LECTURE).flow(x, y, batch_size=32, seed=0)

    def epoch():
        seen = sum(len(iterator[i][0]) for i in range(len(iterator)))
        iterator.on_epoch_end()
        return seen
    return epoch


def cnnlab_flow(x, y):
    from cnnlab.augment import ImageDataGenerator

    iterator = ImageDataGenerator(**LECTURE).flow(x, y, batch_size=32, seed=0)

    def epoch():
        seen = sum(len(batch[0]) for batch in iterator)
        iterator.on_epoch_end()
        return seen
    return epoch


def layer_pipeline(x, y):
    import tensorflow as tf

    from cnnlab.augment import ImageDataGenerator

    augment = ImageDataGenerator(**LECTURE).as_layers(seed=0)
    dataset = (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0)
               .batch(32)
               .map(lambda images, labels: (augment(tf.cast(images, "float32"),
                                                    training=True), labels),
                    num_parallel_calls=tf.data.AUTOTUNE)
               .prefetch(tf.data.AUTOTUNE))

    def epoch():
        seen = 0
        for images, _ in dataset:
            seen += int(images.shape[0])
        return seen
    return epoch


def albumentations_pipeline():
    """The lecture's transforms in albumentations (None when it is not installed)."""
    try:
        import albumentations as A
        import cv2
    except ImportError:
        return None
    return A.Compose([
        A.HorizontalFlip(p=0.5),
        A.Affine(rotate=(-40, 40), translate_percent={"x": (-0.2, 0.2), "y": (-0.2, 0.2)},
                 shear=(-0.2, 0.2), scale={"x": (0.8, 1.2), "y": (0.8, 1.2)},
                 interpolation=cv2.INTER_LINEAR, border_mode=cv2.BORDER_REPLICATE, p=1.0),
        A.RandomBrightnessContrast(brightness_limit=9 / 255, contrast_limit=0.0, p=1.0),
        A.ToFloat(max_value=255.0),
    ], seed=0)


_WORKER = {}


def _albumentations_worker_init(x, y):
    import cv2

    cv2.setNumThreads(1)
    _WORKER.update(x=x, y=y, pipeline=albumentations_pipeline())


def _albumentations_batch(index_array, x=None, y=None, pipeline=None):
    x = _WORKER["x"] if x is None else x
    y = _WORKER["y"] if y is None else y
    pipeline = _WORKER["pipeline"] if pipeline is None else pipeline
    batch = np.stack([pipeline(image=x[i])["image"] for i in index_array])
    return batch, y[index_array]


def _batches(n, batch_size=32, seed=0):
    order = np.random.default_rng(seed).permutation(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def albumentations_flow(x, y):
    """One process (OpenCV's own threads as they come)."""
    pipeline = albumentations_pipeline()

    def epoch():
        return sum(len(_albumentations_batch(b, x, y, pipeline)[0])
                   for b in _batches(len(x)))
    return epoch


def albumentations_pool(x, y, pools):
    """One worker process per core, each batch built in a worker, as a DataLoader does."""
    import multiprocessing

    workers = os.cpu_count() or 1
    pool = multiprocessing.get_context("fork").Pool(
        workers, initializer=_albumentations_worker_init, initargs=(x, y))
    pools.append(pool)
    _CHILDREN.extend(process.pid for process in pool._pool)
    pool.map(_albumentations_batch, _batches(len(x))[:workers])  # start every worker

    def epoch():
        return sum(len(b[0]) for b in pool.imap(_albumentations_batch, _batches(len(x))))
    return epoch


def write_jpegs(x, y, root):
    from PIL import Image

    for i, (image, label) in enumerate(zip(x, y)):
        folder = root / PHOTOS[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i:05d}.jpg", quality=90)


def directory_flow(generator_class, root):
    made = time.perf_counter()
    iterator = generator_class(**LECTURE).flow_from_directory(
        root, target_size=(128, 128), batch_size=32, seed=0)
    made = time.perf_counter() - made

    def epoch():
        seen = sum(len(iterator[i][0]) for i in range(len(iterator)))
        iterator.on_epoch_end()
        return seen
    return epoch, made


def best_of(peers, repeats, cpu_rates=None):
    """Interleave the peers' epochs ``repeats`` times; best images/s of each (and the best
    images per CPU-second into ``cpu_rates``)."""
    rates = {name: 0.0 for name in peers}
    cpu_rates = {} if cpu_rates is None else cpu_rates
    for _ in range(repeats):
        for name, epoch in peers.items():
            rate, per_cpu = time_epoch(epoch)
            rates[name] = max(rates[name], rate)
            cpu_rates[name] = max(cpu_rates.get(name, 0.0), per_cpu)
    return rates


def warm_up(epoch_factories, x, y):
    """Compile and trace each peer on a few batches, outside the timed runs."""
    for factory in epoch_factories:
        factory(x[:64], y[:64])()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="images per epoch (2000)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per peer, best kept (2)")
    parser.add_argument("--skip-directory", action="store_true",
                        help="only the in-memory case")
    args = parser.parse_args(argv)

    import keras

    if keras.backend.backend() != "tensorflow":
        sys.exit("run the benchmark with the TensorFlow backend: the legacy generator's peer "
                 "pipeline is tf.data (KERAS_BACKEND=tensorflow)")
    x, y = photo_crops(args.images)
    print(f"cnnlab.augment benchmark: {len(x)} crops of real photos, 128x128x3, batch 32, "
          f"the lecture's kwargs, one epoch per run, best of {args.repeats}, "
          f"{os.cpu_count()} CPU cores")
    have_albumentations = albumentations_pipeline() is not None
    factories = [legacy_flow, layer_pipeline, cnnlab_flow]
    if have_albumentations:
        import albumentations

        factories.append(albumentations_flow)
        print(f"albumentations {albumentations.__version__}")
    else:
        print("albumentations is not installed: its peer is skipped "
              "(pip install -r requirements-bench.txt)")
    warm_up(factories, x, y)
    peers = {"legacy": legacy_flow(x, y), "layers": layer_pipeline(x, y),
             "cnnlab": cnnlab_flow(x, y)}
    pools, cpu = [], {}
    try:
        if have_albumentations:
            peers["albumentations"] = albumentations_flow(x, y)
            peers["albumentations pool"] = albumentations_pool(x, y, pools)
        rates = best_of(peers, args.repeats, cpu)
    finally:
        for pool in pools:
            pool.terminate()
            pool.join()
    rows = [("in memory", "legacy ImageDataGenerator (SciPy)", rates["legacy"],
             cpu["legacy"]),
            ("", "Keras 3 layers in tf.data", rates["layers"], cpu["layers"])]
    if have_albumentations:
        rows += [("", "albumentations, 1 process", rates["albumentations"],
                  cpu["albumentations"]),
                 ("", f"albumentations, {os.cpu_count()} worker processes",
                  rates["albumentations pool"], cpu["albumentations pool"])]
    rows.append(("", "cnnlab.augment (1 process)", rates["cnnlab"], cpu["cnnlab"]))
    checks = [("cnnlab / legacy (in memory)", rates["cnnlab"] / rates["legacy"],
               TARGETS["legacy"]),
              ("cnnlab / layers (in memory)", rates["cnnlab"] / rates["layers"],
               TARGETS["layers"])]
    if have_albumentations:
        best = max(rates["albumentations"], rates["albumentations pool"])
        checks += [("cnnlab / albumentations 1 process", rates["cnnlab"]
                    / rates["albumentations"], None),
                   ("cnnlab / albumentations pool", rates["cnnlab"]
                    / rates["albumentations pool"], None),
                   ("cnnlab / albumentations (faster)", rates["cnnlab"] / best,
                    TARGETS["albumentations"]),
                   ("per CPU-second: cnnlab / albumentations", cpu["cnnlab"]
                    / max(cpu["albumentations"], cpu["albumentations pool"]), None)]
    if not args.skip_directory:
        from keras.src.legacy.preprocessing.image import ImageDataGenerator as Legacy

        from cnnlab.augment import ImageDataGenerator

        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "train"
            write_jpegs(x, y, root)
            legacy_epoch, legacy_made = directory_flow(Legacy, root)
            cnnlab_epoch, cnnlab_made = directory_flow(ImageDataGenerator, root)
            cnnlab_epoch()  # compile once, outside the timed runs
            disk_cpu = {}
            disk = best_of({"legacy": legacy_epoch, "cnnlab": cnnlab_epoch}, args.repeats,
                           disk_cpu)
        rows += [("from JPEG files", "legacy flow_from_directory", disk["legacy"],
                  disk_cpu["legacy"]),
                 ("", "cnnlab flow_from_directory", disk["cnnlab"], disk_cpu["cnnlab"])]
        checks.append(("cnnlab / legacy (from directory)", disk["cnnlab"] / disk["legacy"],
                       TARGETS["directory"]))
        print(f"building the directory iterators: legacy {legacy_made:.2f} s, cnnlab "
              f"{cnnlab_made:.2f} s (cnnlab also opens every file to find unreadable ones)")

    print()
    print(f"{'case':<16} {'peer':<36} {'images/s':>9} {'img/CPU-s':>10}")
    for case, peer, rate, per_cpu in rows:
        print(f"{case:<16} {peer:<36} {rate:>9.0f} {per_cpu:>10.0f}")
    print()
    missed = False
    for name, ratio, target in checks:
        if target is None:
            print(f"{name:<40} {ratio:5.1f}x")
            continue
        verdict = "ok" if ratio >= target else "TARGET MISSED"
        missed |= ratio < target
        print(f"{name:<40} {ratio:5.1f}x   (target >= {target:g}x)  {verdict}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
