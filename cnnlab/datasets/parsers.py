"""Reading the dataset files: ``mnist.npz``, Fashion-MNIST's idx files, the CIFAR pickles.

Every parser returns the loaders' contract (``uint8`` NHWC images, flat ``int64`` labels) or
raises :class:`~cnnlab.datasets.CorruptDatasetError` naming the file and ``cnnlab fetch``.
The CIFAR batches are Python pickles: they are read only after the hash check, with an
unpickler that accepts NumPy arrays and nothing else.

Used in: no lab notebook directly; the loaders of cnnlab.datasets call it
"""

from __future__ import annotations

import gzip
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np

from cnnlab.datasets.catalog import _DISPLAY_NAMES, CorruptDatasetError

__all__ = []


def _contract(images, labels, image_shape, path, dataset):
    """uint8 NHWC images and flat int64 labels, or a CorruptDatasetError naming the file."""
    images = np.asarray(images)
    labels = np.asarray(labels).reshape(-1)
    allowed = {image_shape, image_shape[:2]} if image_shape[2] == 1 else {image_shape}
    if images.dtype != np.uint8 or len(images) != len(labels) or images.shape[1:] not in allowed:
        raise CorruptDatasetError(
            f"{path} does not hold {_DISPLAY_NAMES[dataset]} images: got images "
            f"{images.shape} {images.dtype} and {labels.shape[0]} labels; delete it and re-run "
            f"`cnnlab fetch {dataset}`")
    return images.reshape((len(images), *image_shape)), labels.astype(np.int64)


def _read_mnist_npz(path: Path):
    try:
        with np.load(path, allow_pickle=False) as arrays:
            parts = [arrays[key] for key in ("x_train", "y_train", "x_test", "y_test")]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
        raise CorruptDatasetError(
            f"{path} is not a readable mnist.npz ({err}); delete it and re-run "
            "`cnnlab fetch mnist`") from err
    return (_contract(parts[0], parts[1], (28, 28, 1), path, "mnist"),
            _contract(parts[2], parts[3], (28, 28, 1), path, "mnist"))


def _read_idx_gz(path: Path, ndim: int) -> np.ndarray:
    """An idx file (LeCun's MNIST format): zero, zero, type 0x08 (uint8), ndim, big-endian dims."""
    try:
        with gzip.open(path, "rb") as stream:
            data = stream.read()
    except (OSError, EOFError) as err:
        raise CorruptDatasetError(
            f"{path} is not a readable gzip file ({err}); delete it and re-run "
            "`cnnlab fetch fashion_mnist`") from err
    header = 4 + 4 * ndim
    if len(data) >= header and data[:4] == bytes((0, 0, 0x08, ndim)):
        dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
        if len(data) - header == int(np.prod(dims)):
            return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)
    raise CorruptDatasetError(
        f"{path} is not a {ndim}-D uint8 idx file (header {data[:header].hex()}, "
        f"{len(data)} bytes); delete it and re-run `cnnlab fetch fashion_mnist`")


def _read_fashion(paths):
    by_name = {path.name: path for path in paths}
    arrays = {}
    for split in ("train", "t10k"):
        images = _read_idx_gz(by_name[f"{split}-images-idx3-ubyte.gz"], ndim=3)
        labels = _read_idx_gz(by_name[f"{split}-labels-idx1-ubyte.gz"], ndim=1)
        arrays[split] = _contract(images, labels, (28, 28, 1),
                                  by_name[f"{split}-images-idx3-ubyte.gz"], "fashion_mnist")
    return arrays["train"], arrays["t10k"]


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles the CIFAR batches: dicts, lists, bytes and NumPy arrays; no other globals."""

    _ALLOWED = frozenset({
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),  # how Python 3 writes bytes into a protocol-2 pickle
    })

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a dataset file")
        if module == "numpy.core.multiarray":  # NumPy 2 moved it; skip the deprecation shim
            try:
                from numpy._core import multiarray
            except ImportError:
                pass
            else:
                return getattr(multiarray, name)
        return super().find_class(module, name)


def _read_cifar(path: Path, dataset: str, members: dict, label_key: str):
    """Parse the python-pickle batches ``members`` (member name -> split) of a CIFAR tar.gz."""
    parts = {split: [] for split in set(members.values())}
    found = set()
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                if member.name not in members:
                    continue
                stream = archive.extractfile(member)
                batch = _ArrayUnpickler(stream, encoding="bytes").load()
                batch = {(k.decode() if isinstance(k, bytes) else k): v for k, v in batch.items()}
                images = np.asarray(batch["data"], dtype=np.uint8)
                images = images.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # NCHW -> NHWC
                parts[members[member.name]].append((member.name, images, batch[label_key]))
                found.add(member.name)
    except (OSError, EOFError, tarfile.TarError, pickle.UnpicklingError, KeyError, ValueError,
            AttributeError, TypeError) as err:
        raise CorruptDatasetError(
            f"{path} is not a readable {_DISPLAY_NAMES[dataset]} archive ({err!r}); delete it "
            f"and re-run `cnnlab fetch {dataset}`") from err
    missing = sorted(set(members) - found)
    if missing:
        raise CorruptDatasetError(
            f"{path} lacks {', '.join(missing)}; delete it and re-run `cnnlab fetch {dataset}`")
    result = []
    for split in ("train", "test"):
        batches = sorted(parts[split], key=lambda item: item[0])  # data_batch_1 .. 5 in order
        images = np.concatenate([images for _, images, _ in batches])
        labels = np.concatenate([np.asarray(labels) for _, _, labels in batches])
        result.append(_contract(images, labels, (32, 32, 3), path, dataset))
    return tuple(result)


