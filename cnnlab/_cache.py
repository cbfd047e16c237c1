"""Where cnnlab keeps downloaded and computed files, and how it checks them (private).

One place for the cache folder logic that ``cnnlab.datasets`` (the dataset files),
``cnnlab.transfer`` (the Keras weights cache, the feature cache) share: ``$CNNLAB_DATA`` when
it is set, else the Keras home (``$KERAS_HOME`` or ``~/.keras``); the file digest both use to
check a file against a published hash; and the atomic write (temporary file + rename) that
keeps a half-written file out of the cache.

Used in: labs/04_mlp_to_convnet, labs/07_training_convnets_well, labs/08_pretrained_convnets,
labs/09_transfer_learning (through cnnlab.datasets and cnnlab.transfer)
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "cache_root", "file_digest", "keras_home"]

_CHUNK_BYTES = 1 << 20


def keras_home() -> Path:
    """The Keras home folder: ``$KERAS_HOME``, else ``~/.keras`` (where Keras caches files)."""
    return Path(os.environ.get("KERAS_HOME") or "~/.keras").expanduser()


def cache_root(cache_dir=None, *, data_subfolder="", keras_subfolder="datasets") -> Path:
    """The folder a cache lives in: ``cache_dir`` if given, else ``$CNNLAB_DATA`` (plus
    ``data_subfolder``), else the Keras home plus ``keras_subfolder``.

    The datasets use the defaults (``$CNNLAB_DATA``, else ``~/.keras/datasets``, where
    ``keras.datasets`` keeps the same files); the feature cache uses
    ``data_subfolder="features", keras_subfolder="cnnlab-features"``.
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get("CNNLAB_DATA"):
        return Path(os.environ["CNNLAB_DATA"]).expanduser() / data_subfolder
    return keras_home() / keras_subfolder


def file_digest(path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks (``algorithm``: a ``hashlib`` name)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write(path, write) -> Path:
    """Write ``path`` through ``write(binary_stream)`` into a temporary file beside it, then
    rename it into place, so a reader never sees half a file.  Creates the folder; raises
    ``OSError`` (a read-only or full folder) with no temporary file left behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            write(out)
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return path
