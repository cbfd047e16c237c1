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
2. from disk: ``flow_from_directory`` over the same images written as 2,000 JPEG files,
   legacy against cnnlab.

Targets: in memory >= 4x the legacy generator and >= 1.5x the layer pipeline; from disk >= 2x
the legacy generator.  A missed target prints ``TARGET MISSED`` and exits with status 1.

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
TARGETS = {"legacy": 4.0, "layers": 1.5, "directory": 2.0}


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


def time_epoch(run):
    start = time.perf_counter()
    count = run()
    return count / (time.perf_counter() - start)


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


def best_of(peers, repeats):
    """Interleave the peers' epochs ``repeats`` times; best images/s of each."""
    rates = {name: 0.0 for name in peers}
    for _ in range(repeats):
        for name, epoch in peers.items():
            rates[name] = max(rates[name], time_epoch(epoch))
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
    warm_up([legacy_flow, layer_pipeline, cnnlab_flow], x, y)
    rates = best_of({"legacy": legacy_flow(x, y), "layers": layer_pipeline(x, y),
                     "cnnlab": cnnlab_flow(x, y)}, args.repeats)
    rows = [("in memory", "legacy ImageDataGenerator (SciPy)", rates["legacy"]),
            ("", "Keras 3 layers in tf.data", rates["layers"]),
            ("", "cnnlab.augment", rates["cnnlab"])]
    checks = [("cnnlab / legacy (in memory)", rates["cnnlab"] / rates["legacy"],
               TARGETS["legacy"]),
              ("cnnlab / layers (in memory)", rates["cnnlab"] / rates["layers"],
               TARGETS["layers"])]
    if not args.skip_directory:
        from keras.src.legacy.preprocessing.image import ImageDataGenerator as Legacy

        from cnnlab.augment import ImageDataGenerator

        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "train"
            write_jpegs(x, y, root)
            legacy_epoch, legacy_made = directory_flow(Legacy, root)
            cnnlab_epoch, cnnlab_made = directory_flow(ImageDataGenerator, root)
            cnnlab_epoch()  # compile once, outside the timed runs
            disk = best_of({"legacy": legacy_epoch, "cnnlab": cnnlab_epoch}, args.repeats)
        rows += [("from JPEG files", "legacy flow_from_directory", disk["legacy"]),
                 ("", "cnnlab flow_from_directory", disk["cnnlab"])]
        checks.append(("cnnlab / legacy (from directory)", disk["cnnlab"] / disk["legacy"],
                       TARGETS["directory"]))
        print(f"building the directory iterators: legacy {legacy_made:.2f} s, cnnlab "
              f"{cnnlab_made:.2f} s (cnnlab also opens every file to find unreadable ones)")

    print()
    print(f"{'case':<16} {'peer':<36} {'images/s':>9}")
    for case, peer, rate in rows:
        print(f"{case:<16} {peer:<36} {rate:>9.0f}")
    print()
    missed = False
    for name, ratio, target in checks:
        verdict = "ok" if ratio >= target else "TARGET MISSED"
        missed |= ratio < target
        print(f"{name:<34} {ratio:5.1f}x   (target >= {target:g}x)  {verdict}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
