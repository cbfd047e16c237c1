"""Where the dataset files come from: their origins and hashes, the cache folder, the download.

The files are the ones ``keras.datasets`` downloads, in the same cache folder
(``cache_dir``, else ``$CNNLAB_DATA``, else ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``:
``cnnlab._cache.cache_root``).  A download goes to a temporary file beside its target, is
checked (SHA-256 where Keras publishes one) and renamed into place, so the cache never holds
half a file.  The network is reached only through ``_urlopen``, so tests can replace it.

Used in: no lab notebook directly; the loaders of cnnlab.datasets call it
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cnnlab import _cache
from cnnlab.datasets.catalog import (
    _DISPLAY_NAMES,
    CacheNotWritableError,
    CorruptDatasetError,
    DatasetUnavailableError,
)

__all__ = ["how_checked"]

# Seconds a connect or a single read may block (not the whole download): offline, the
# attempt fails within this time and MNIST falls back to the subset.
_NETWORK_TIMEOUT_S = 5.0
_CHUNK_BYTES = 1 << 20

_KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_CIFAR_ORIGIN = "https://www.cs.toronto.edu/~kriz/"
# The TensorFlow transfer-learning tutorial's "filtered" Cats vs Dogs: 2,000 train and 1,000
# validation JPEGs (a subset of Kaggle's Dogs vs. Cats).
_CATS_VS_DOGS_ORIGIN = "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip"


@dataclass(frozen=True)
class _CacheFile:
    relpath: str                    # where Keras keeps it, relative to the cache folder
    url: str                        # the official origin
    aliases: tuple[str, ...] = ()   # other names for the same bytes (Keras 3, the download)


_FASHION_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

_FILES = {
    "mnist": (_CacheFile("mnist.npz", _KERAS_ORIGIN + "mnist.npz"),),
    "fashion_mnist": tuple(
        _CacheFile(f"fashion-mnist/{name}", _KERAS_ORIGIN + name) for name in _FASHION_FILES
    ),
    "cifar10": (
        _CacheFile(
            "cifar-10-batches-py.tar.gz",
            _CIFAR_ORIGIN + "cifar-10-python.tar.gz",
            aliases=("cifar-10-batches-py-target_archive", "cifar-10-python.tar.gz"),
        ),
    ),
    "cifar100": (
        _CacheFile(
            "cifar-100-python.tar.gz",
            _CIFAR_ORIGIN + "cifar-100-python.tar.gz",
            aliases=("cifar-100-python-target_archive",),
        ),
    ),
    # "cats_and_dogs.zip" is the name the TensorFlow tutorial's get_file call gives it.
    "cats_vs_dogs": (
        _CacheFile("cats_and_dogs_filtered.zip", _CATS_VS_DOGS_ORIGIN,
                   aliases=("cats_and_dogs.zip",)),
    ),
}

# SHA-256 of the official files, as keras/src/datasets/{mnist,cifar10,cifar100}.py give them.
# Fashion-MNIST has no entry: Keras publishes no hash for it, and we add none we cannot check.
_KNOWN_SHA256 = {
    "mnist.npz": "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
    "cifar-10-batches-py.tar.gz":
        "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    "cifar-100-python.tar.gz":
        "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
}

# The network is reached only through this name, so tests can replace it.
_urlopen = urllib.request.urlopen


def _not_writable(directory: Path, reason, dataset: str) -> CacheNotWritableError:
    return CacheNotWritableError(
        f"cannot write to the dataset cache folder {directory} ({reason}). Pass "
        "cache_dir='a/writable/folder', or set the environment variable CNNLAB_DATA to a "
        f"writable folder, or run `cnnlab fetch {dataset}` where the folder is writable.")


def _make_writable_dir(directory: Path, dataset: str) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # PermissionError, FileExistsError (a file is in the way), ...
        raise _not_writable(directory, err.strerror or err, dataset) from err
    if not directory.is_dir():
        raise _not_writable(directory, "it is not a folder", dataset)
    if not os.access(directory, os.W_OK | os.X_OK):
        raise _not_writable(directory, "no write permission", dataset)


def _expected_sha256(cache_file: _CacheFile):
    return _KNOWN_SHA256.get(cache_file.relpath)


def _find_cached(cache_file: _CacheFile, root: Path):
    for relpath in (cache_file.relpath, *cache_file.aliases):
        candidate = root / relpath
        if candidate.is_file():
            return candidate
    return None


def _unavailable_message(dataset: str, cache_file: _CacheFile, path: Path, reason) -> str:
    return (
        f"{_DISPLAY_NAMES[dataset]} is not in the cache and could not be downloaded "
        f"({reason}).\n  url:   {cache_file.url}\n  cache: {path}\n"
        f"On a connected machine run `cnnlab fetch {dataset}` (or download the url to the "
        "cache path) and copy the file here; set CNNLAB_DATA=/a/folder to use another cache.")


def _corrupt_message(dataset: str, path: Path, actual: str, expected: str) -> str:
    return (f"the file at {path} is corrupt (sha256 {actual}, expected {expected}); "
            f"delete it and re-run `cnnlab fetch {dataset}`")


class _TextProgress:
    """A text progress bar on stderr: ``mnist.npz  42% [########......] 4.8/11.5 MB``."""

    def __init__(self, label: str, total, enabled: bool):
        self.label, self.total, self.enabled = label, total, enabled
        self.shown = None

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        if self.total:
            percent = min(100, 100 * done // self.total)
            if percent == self.shown:
                return
            self.shown = percent
            bar = "#" * (percent // 4) + "." * (25 - percent // 4)
            text = f"{percent:3d}% [{bar}] {done / 1e6:.1f}/{self.total / 1e6:.1f} MB"
        else:
            megabytes = done // 10**6
            if megabytes == self.shown:
                return
            self.shown = megabytes
            text = f"{done / 1e6:.1f} MB"
        sys.stderr.write(f"\r{self.label}  {text}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.shown is not None:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _download(dataset: str, cache_file: _CacheFile, path: Path, *, progress: bool) -> Path:
    """Download ``cache_file.url`` to a temporary file beside ``path``, check it, rename it."""
    _make_writable_dir(path.parent, dataset)
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part",
                                             dir=path.parent)
    except OSError as err:
        raise _not_writable(path.parent, err.strerror or err, dataset) from err
    temporary = Path(temporary)
    try:
        digest = hashlib.sha256()
        with os.fdopen(handle, "wb") as out:
            try:
                response = _urlopen(cache_file.url, timeout=_NETWORK_TIMEOUT_S)
            except (OSError, http.client.HTTPException) as err:  # URLError is an OSError
                raise DatasetUnavailableError(
                    _unavailable_message(dataset, cache_file, path, err)) from err
            with response:
                length = response.headers.get("Content-Length") if response.headers else None
                total = int(length) if length and length.isdigit() else None
                bar = _TextProgress(f"Downloading {cache_file.url}", total, progress)
                done = 0
                try:
                    while True:
                        try:
                            chunk = response.read(_CHUNK_BYTES)
                        except (OSError, http.client.HTTPException) as err:
                            raise DatasetUnavailableError(_unavailable_message(
                                dataset, cache_file, path,
                                f"the download broke off after {done} bytes: {err}")) from err
                        if not chunk:
                            break
                        out.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        bar.update(done)
                finally:
                    bar.close()
            if total is not None and done != total:
                raise DatasetUnavailableError(_unavailable_message(
                    dataset, cache_file, path,
                    f"the download broke off after {done} of {total} bytes"))
        expected = _expected_sha256(cache_file)
        actual = digest.hexdigest()
        if expected is not None and actual != expected:
            raise CorruptDatasetError(
                f"the download of {cache_file.url} is corrupt (sha256 {actual}, expected "
                f"{expected}); nothing was written to {path}. Try again: `cnnlab fetch {dataset}`")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def _ensure_file(dataset: str, cache_file: _CacheFile, root: Path, *, download: bool,
                 progress: bool = True) -> Path:
    """The path of a verified copy of ``cache_file``, downloading it when allowed."""
    path = root / cache_file.relpath
    cached = _find_cached(cache_file, root)
    if cached is not None:
        expected = _expected_sha256(cache_file)
        if expected is None:
            return cached
        actual = _cache.file_digest(cached)
        if actual == expected:
            return cached
        if not download:
            raise CorruptDatasetError(_corrupt_message(dataset, cached, actual, expected))
        try:  # re-download once, over the canonical name
            return _download(dataset, cache_file, path, progress=progress)
        except CorruptDatasetError:
            raise
        except DatasetUnavailableError as err:
            raise CorruptDatasetError(
                _corrupt_message(dataset, cached, actual, expected)
                + f". Downloading a fresh copy from {cache_file.url} failed too: "
                + str(err.__cause__ or err)) from err
    if not download:
        raise DatasetUnavailableError(_unavailable_message(
            dataset, cache_file, path, "source='cache' never downloads"))
    return _download(dataset, cache_file, path, progress=progress)


def _ensure_dataset(dataset: str, source: str, cache_dir, progress: bool = True) -> list[Path]:
    root = _cache.cache_root(cache_dir)
    return [_ensure_file(dataset, cache_file, root, download=source != "cache",
                         progress=progress)
            for cache_file in _FILES[dataset]]


def _no_fallback(dataset: str, cache_dir) -> DatasetUnavailableError:
    cache_file = _FILES[dataset][0]
    return DatasetUnavailableError(_unavailable_message(
        dataset, cache_file, _cache.cache_root(cache_dir) / cache_file.relpath,
        f"source='fallback' asks for an offline copy, and only MNIST ships one; "
        f"{_DISPLAY_NAMES[dataset]} needs its files"))


def how_checked(dataset: str) -> str:
    """How the files of ``dataset`` (a key of ``DATASETS``) are verified, in words.

    ``"verified (sha256)"`` where Keras publishes a SHA-256 for every file, the format check
    for Fashion-MNIST, the recorded SHA-256 for Cats vs Dogs.

    Used in: no lab notebook directly; ``cnnlab fetch`` prints it
    """
    if dataset == "cats_vs_dogs":
        return "layout checked, sha256 recorded on first download and verified since"
    if all(_KNOWN_SHA256.get(cache_file.relpath) for cache_file in _FILES[dataset]):
        return "verified (sha256)"
    return "format checked (no published sha256)"
