"""Cats vs Dogs (the TensorFlow transfer-learning tutorial's filtered set): check, unpack, load.

2,000 training and 1,000 validation JPEGs in ``cats_and_dogs_filtered.zip`` (65 MiB), after
``cnnlab fetch cats_vs_dogs``.  No SHA-256 is published for that zip: its layout (folders and
JPEG counts) is checked, its SHA-256 is recorded beside it on first download
(``cats_and_dogs_filtered.zip.sha256``) and verified on every later load.

Used in: no lab notebook directly; the labs import load_cats_vs_dogs from cnnlab.datasets
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from cnnlab import _cache
from cnnlab.datasets.catalog import CorruptDatasetError, _check_source
from cnnlab.datasets.download import _ensure_dataset, _no_fallback

__all__ = ["load_cats_vs_dogs"]


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
    actual = _cache.file_digest(archive)
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

