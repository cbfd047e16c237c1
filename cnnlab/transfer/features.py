"""Features from a frozen backbone, computed once: ``extract_features`` and its disk cache.

The lectures' *Transfer learning* slides: with a small dataset, run the frozen ConvNet once
over the images and train a small classifier on its features.  The features of a large
backbone take minutes on a CPU; the disk cache makes the second run of a notebook instant.

Used in: no lab notebook directly; the labs import extract_features from cnnlab.transfer
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import keras
import numpy as np

from cnnlab import _cache

__all__ = ["extract_features"]


def _materialize(data):
    """``(images, labels or None)`` from an array, a list, or an iterable of batches."""
    if isinstance(data, np.ndarray):
        return data, None
    if isinstance(data, (list, tuple)) and data and isinstance(data[0], np.ndarray) \
            and data[0].ndim == 3:
        return np.stack(data), None
    if hasattr(data, "as_numpy_iterator"):
        data = data.as_numpy_iterator()
    images, labels = [], []
    try:
        for batch in data:
            if isinstance(batch, (tuple, list)):
                images.append(np.asarray(batch[0]))
                labels.append(np.asarray(batch[1]))
            else:
                images.append(np.asarray(batch))
    except TypeError:
        raise TypeError(f"data must be an array of images (n, h, w, c) or an iterable of batches"
                        f", got {type(data).__name__}") from None
    if not images:
        raise ValueError("data is empty")
    return np.concatenate(images), (np.concatenate(labels) if labels else None)


def _model_fingerprint(model) -> str:
    digest = hashlib.sha256()
    digest.update(f"{model.name}|{model.input_shape}|{model.output_shape}|".encode())
    for weight in model.weights:
        value = np.ascontiguousarray(keras.ops.convert_to_numpy(weight))
        digest.update(f"{weight.path}{value.shape}{value.dtype}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def _default_feature_cache() -> Path:
    return _cache.cache_root(data_subfolder="features", keras_subfolder="cnnlab-features")


def extract_features(backbone, data, batch_size=64, cache=None, preprocess=None, progress=True):
    """Run a (frozen) backbone over images once: the features for a small classifier.

    ``data``: images ``(n, h, w, c)`` or an iterable of batches (a ``tf.data.Dataset`` of
    images or ``(images, labels)``; read into memory).  ``preprocess`` (e.g.
    ``preprocess_for(backbone)``) is applied batch by batch; without it the images must already
    be preprocessed.  Returns the features ``(n, ...)`` as float32 NumPy (and the labels when
    ``data`` yields them).  A progress bar (``tqdm.auto``) shows the batches.

    ``cache``: ``None`` (compute), a folder, or ``True`` (``$CNNLAB_DATA/features``, else
    ``~/.keras/cnnlab-features``).  The file name holds a SHA-256 of the model (name, shapes,
    every weight) and of the data (bytes, shape, dtype) and the preprocessing's name, so a
    second call with the same model and data loads from disk without running the model, and
    changing either computes afresh.

    Used in: labs/08_pretrained_convnets, labs/09_transfer_learning
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    images, labels = _materialize(data)
    if images.ndim != 4:
        raise ValueError(f"data must be a batch of images (n, h, w, c), got shape {images.shape}")
    path = None
    if cache is not None and cache is not False:
        folder = _default_feature_cache() if cache is True else Path(cache).expanduser()
        digest = hashlib.sha256()
        digest.update(_model_fingerprint(backbone).encode())
        prep = "none" if preprocess is None else getattr(preprocess, "__qualname__",
                                                         repr(preprocess))
        digest.update(f"|{prep}|{images.shape}|{images.dtype}|".encode())
        digest.update(np.ascontiguousarray(images).tobytes())
        path = folder / f"features-{backbone.name}-{digest.hexdigest()[:24]}.npy"
        if path.is_file():
            try:
                features = np.load(path, allow_pickle=False)
                if len(features) == len(images):
                    return features if labels is None else (features, labels)
            except (OSError, ValueError):
                pass  # unreadable: compute again and overwrite
    from tqdm.auto import tqdm

    parts = []
    starts = range(0, len(images), batch_size)
    for start in tqdm(starts, desc=f"features ({backbone.name})", unit="batch",
                      disable=not progress):
        batch = images[start:start + batch_size]
        count = len(batch)
        if count < batch_size:  # always the same shape: the model is traced only once
            batch = np.concatenate([batch, np.repeat(batch[-1:], batch_size - count, axis=0)])
        if preprocess is not None:
            batch = preprocess(batch)
        output = backbone.predict_on_batch(batch)
        parts.append(np.asarray(keras.ops.convert_to_numpy(output), dtype=np.float32)[:count])
    features = np.concatenate(parts)
    if path is not None:
        try:
            _cache.atomic_write(path, lambda out: np.save(out, features))
        except OSError as err:
            warnings.warn(f"could not write the feature cache {path} ({err}); features were "
                          "computed but not cached", stacklevel=2)
    return features if labels is None else (features, labels)


