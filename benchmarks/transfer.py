"""Benchmark: transfer learning throughput, float32 vs mixed_float16, TensorFlow vs JAX.

EfficientNet-Lite0 (cnnlab.transfer.load_backbone with its packaged ImageNet weights: offline,
and without JAX's compile per random initializer) at ``--size`` x ``--size``, batch
``--batch``:

* **features**: ``extract_features``-style inference, ``predict_on_batch`` on a frozen backbone
  (``pooling="avg"``), images/s;
* **fine-tune steps**: ``train_on_batch`` on ``build_transfer_model`` with the deepest quarter
  of the blocks unfrozen (``unfreeze(fraction=0.25)``, BatchNorm frozen), images/s.

Each (backend, dtype policy) pair runs in its own subprocess (the backend is fixed when Keras
is imported), interleaved over ``--repeats`` rounds; the best round counts.  The table prints
images/s and the ratio to the first row (TensorFlow float32, or the first backend
installed).  A backend that is not installed (the GPU machine has JAX without TensorFlow) is
skipped with a note.  No targets: float16 is expected to lose on a CPU (emulated) and to win
on a GPU with tensor cores; ``cnnlab.transfer.device_report()`` says which applies.

Run from the repository root::

    .venv/bin/python benchmarks/transfer.py                          # CPU: 128 px, batch 16
    .venv/bin/python benchmarks/transfer.py --size 224 --batch 64 --steps 20   # on a GPU
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("tensorflow", "jax")
POLICIES = ("float32", "mixed_float16")


def worker(args) -> dict:
    """Runs in a subprocess whose KERAS_BACKEND is already set: one (backend, policy) pair."""
    sys.path.insert(0, str(ROOT))
    import cnnlab  # noqa: F401 - quiet TensorFlow first
    import keras
    import numpy as np

    from cnnlab.transfer import build_transfer_model, device_report, load_backbone, unfreeze

    keras.config.set_dtype_policy(args.policy)
    keras.utils.set_random_seed(0)
    shape = (args.size, args.size, 3)
    images = np.random.default_rng(0).uniform(-1, 1, (args.batch, *shape)).astype("float32")
    labels = np.arange(args.batch) % 3
    result = {"backend": keras.backend.backend(), "policy": args.policy,
              "device": "; ".join(device_report().devices)}

    backbone = load_backbone("efficientnet_lite0", input_shape=shape)
    for _ in range(2):  # compile and warm up
        backbone.predict_on_batch(images)
    start = time.perf_counter()
    for _ in range(args.steps):
        out = backbone.predict_on_batch(images)
    np.asarray(out)
    result["features"] = args.steps * args.batch / (time.perf_counter() - start)

    model = build_transfer_model(load_backbone("efficientnet_lite0", input_shape=shape), 3)
    unfreeze(model, fraction=0.25)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="sparse_categorical_crossentropy")
    for _ in range(2):
        model.train_on_batch(images, labels)
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = model.train_on_batch(images, labels)
    float(np.asarray(loss))
    result["fine_tune"] = args.steps * args.batch / (time.perf_counter() - start)
    return result


def run_pair(backend, policy, args) -> dict | None:
    env = dict(os.environ, KERAS_BACKEND=backend)
    command = [sys.executable, __file__, "--worker", "--policy", policy, "--size",
               str(args.size), "--batch", str(args.batch), "--steps", str(args.steps)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        print(f"{backend} {policy}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(lines[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128, help="image side (default 128)")
    parser.add_argument("--batch", type=int, default=16, help="batch size (default 16)")
    parser.add_argument("--steps", type=int, default=5, help="timed batches (default 5)")
    parser.add_argument("--repeats", type=int, default=2, help="rounds, best kept (default 2)")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--policy", default="float32", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0

    backends = []
    for backend in args.backends.split(","):
        if importlib.util.find_spec(backend) is None:
            print(f"note: {backend} is not installed here; its rows are skipped")
        else:
            backends.append(backend)
    pairs = [(backend, policy) for backend in backends for policy in POLICIES]
    best = {}
    for _ in range(args.repeats):
        for pair in pairs:  # interleaved, so a busy moment hits every pair alike
            result = run_pair(*pair, args)
            if result is None:
                continue
            kept = best.setdefault(pair, result)
            for key in ("features", "fine_tune"):
                kept[key] = max(kept[key], result[key])
    if not best:
        print("no pair ran", file=sys.stderr)
        return 1
    base = best[next(pair for pair in pairs if pair in best)]
    print(f"\nEfficientNet-Lite0, {args.size}x{args.size}, batch {args.batch}, best of "
          f"{args.repeats} x {args.steps} batches; device: {base['device']}")
    print(f"{'backend':<11} {'policy':<14} {'features img/s':>15} {'ratio':>6} "
          f"{'fine-tune img/s':>16} {'ratio':>6}")
    for pair in pairs:
        if pair not in best:
            continue
        row = best[pair]
        print(f"{pair[0]:<11} {pair[1]:<14} {row['features']:>15.1f} "
              f"{row['features'] / base['features']:>6.2f} {row['fine_tune']:>16.1f} "
              f"{row['fine_tune'] / base['fine_tune']:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
