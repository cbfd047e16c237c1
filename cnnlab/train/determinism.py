"""Repeatable runs: ``set_seed`` (the same random draws) and ``set_deterministic`` (the same sums).

An ablation compares models, not luck: two runs after the same ``set_seed`` build the same
initial weights and shuffle the same way; ``set_deterministic`` pins TensorFlow's intra-op
threads so the same seeded fit gives the same weights on any number of cores.  Labs 06, 07 and
09 seed with it; Lab 09 (labs/09_transfer_learning) also pins the threads.

Used in: no lab notebook directly; the labs import these names from cnnlab.train
"""

from __future__ import annotations

import keras
import numpy as np

from cnnlab.devices import for_backend

__all__ = ["set_deterministic", "set_seed"]


def set_seed(seed):
    """Seed Python, NumPy and the Keras backend (``keras.utils.set_random_seed``); return seed.

    Two runs after the same ``set_seed`` build the same initial weights and shuffle the same way,
    so an ablation compares models, not luck.

    Used in: labs/06_data_augmentation, labs/07_training_convnets_well,
    labs/09_transfer_learning
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {seed!r}; e.g. set_seed(42)")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}; e.g. set_seed(42)")
    keras.utils.set_random_seed(int(seed))
    return int(seed)


def set_deterministic(threads=1):
    """Make this kernel's training give the same numbers whatever the machine's core count.

    ``set_seed`` fixes the random draws, but a float sum taken in another order gives other
    last digits: TensorFlow splits a convolution's gradient over its intra-op threads, so the
    same seeded fit ends with other weights on one core than on two (measured: Lab 09's digit
    ResNet after two epochs differs in every weight).  This pins TensorFlow's intra-op thread
    pool to ``threads``; with it, the same seeded fit gives the same weights bit for bit on a
    1-core and a 2-core setting (``TF_NUM_INTRAOP_THREADS``/``OMP_NUM_THREADS``), run after run.

    It does not call ``tf.config.experimental.enable_op_determinism``: on a CPU that gave the
    same weights here, and it makes every ``fit`` on NumPy arrays log a C++ error line about
    tf.data's parallel map into the notebook.  Another CPU model (AVX2 against AVX-512 kernels)
    can still differ in the last digits: pin training results as relations, not literals.  The
    JAX and torch backends are left as they are; returns the thread count in force, or
    ``None`` for another backend.

    Call it before the first TensorFlow operation of the kernel (a parameters cell): TensorFlow
    fixes its thread pools then.  Calling it again with the same count is harmless.

    Used in: labs/09_transfer_learning
    """
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads must be a whole number >= 1, got {threads!r}; "
                         "e.g. set_deterministic(threads=1)")
    pin = for_backend({"tensorflow": _pin_tensorflow_threads}, default=None)
    return None if pin is None else pin(int(threads))


def _pin_tensorflow_threads(threads):
    """:func:`set_deterministic` under TensorFlow: its intra-op pool set to ``threads``."""
    import tensorflow as tf

    threading = tf.config.threading
    if threading.get_intra_op_parallelism_threads() != threads:
        try:
            threading.set_intra_op_parallelism_threads(threads)
        except RuntimeError as exc:
            raise RuntimeError(
                f"TensorFlow already runs with {threading.get_intra_op_parallelism_threads()} "
                f"intra-op threads (0 = one per core) and cannot change them now ({exc}); "
                "restart the kernel and call set_deterministic() before the first TensorFlow "
                "operation, e.g. in the parameters cell") from None
    return threads
