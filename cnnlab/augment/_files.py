"""Image files for ``flow_from_directory`` / ``flow_from_dataframe``: list, check, decode, save.

Files are decoded with Pillow in a thread pool (Pillow releases the GIL while it decodes, so
the threads run in parallel), with the same colour conversion, resizing and aspect-ratio crop
as Keras 2's ``load_img``.  Every file is opened once when the iterator is built (header only:
fast), so that a damaged or non-image file is reported by name up front instead of failing,
unnamed, in the middle of an epoch (keras-team/keras#8686).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = [
    "COLOR_MODES",
    "IMAGE_EXTENSIONS",
    "INTERPOLATIONS",
    "check_files",
    "decode_files",
    "list_class_files",
    "save_batch",
]

IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "bmp", "ppm", "tif", "tiff")
COLOR_MODES = {"rgb": 3, "rgba": 4, "grayscale": 1}
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "hamming", "box", "lanczos")

_POOL = None
_POOL_LOCK = threading.Lock()


def _pool():
    """One shared decode pool: a few threads per core (decoding waits on disk, too)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            workers = min(16, 2 * (os.cpu_count() or 1))
            _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cnnlab-decode")
        return _POOL


def has_image_extension(path):
    return path.lower().endswith(IMAGE_EXTENSIONS)


def list_class_files(class_dir, follow_links):
    """Image files under ``class_dir`` (recursively), as Keras 2 lists them: sorted walk."""
    found = []
    for root, _, files in sorted(os.walk(class_dir, followlinks=follow_links),
                                 key=lambda item: item[0]):
        for name in sorted(files):
            if has_image_extension(name):
                found.append(os.path.join(root, name))
    return found


def _check_one(path):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.size  # noqa: B018 - the header is parsed here
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        return f"{type(error).__name__}: {error}"
    return None


def check_files(paths):
    """``[(path, reason), ...]`` for every file Pillow cannot identify (checked in parallel)."""
    reasons = list(_pool().map(_check_one, paths)) if paths else []
    return [(path, reason) for path, reason in zip(paths, reasons) if reason is not None]


def _crop_box(size, target_width, target_height):
    width, height = size
    crop_height = min(height, (width * target_height) // target_width)
    crop_width = min(width, (height * target_width) // target_height)
    top = (height - crop_height) // 2
    left = (width - crop_width) // 2
    return (left, top, left + crop_width, top + crop_height)


def _decode_one(path, color_mode, target_size, interpolation, keep_aspect_ratio):
    from PIL import Image

    resampling = {
        "nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
        "bicubic": Image.Resampling.BICUBIC, "hamming": Image.Resampling.HAMMING,
        "box": Image.Resampling.BOX, "lanczos": Image.Resampling.LANCZOS,
    }[interpolation]
    try:
        with Image.open(path) as image:
            if color_mode == "grayscale":
                if image.mode not in ("L", "I;16", "I"):
                    image = image.convert("L")
            elif color_mode == "rgba":
                if image.mode != "RGBA":
                    image = image.convert("RGBA")
            elif image.mode != "RGB":
                image = image.convert("RGB")
            target_height, target_width = target_size
            if image.size != (target_width, target_height):
                box = None
                if keep_aspect_ratio:
                    box = _crop_box(image.size, target_width, target_height)
                image = image.resize((target_width, target_height), resampling, box=box)
            array = np.asarray(image)
    except Exception as error:
        raise ValueError(
            f"cannot decode image file {path!r} ({type(error).__name__}: {error}); "
            "its header looked fine when the iterator was built, so the file is damaged "
            "further in: replace or delete it and build the iterator again"
        ) from error
    if array.ndim == 2:
        array = array[:, :, None]
    return array


def decode_files(paths, color_mode, target_size, interpolation, keep_aspect_ratio, dtype):
    """Decode ``paths`` in parallel into one channels-last ``(N, H, W, C)`` array.

    uint8 when every file is 8-bit, else ``dtype`` (16-bit grayscale PNGs keep their values).
    """
    def decode(path):
        return _decode_one(path, color_mode, target_size, interpolation, keep_aspect_ratio)

    arrays = list(_pool().map(decode, paths))
    if all(array.dtype == np.uint8 for array in arrays):
        dtype = np.uint8  # 8-bit files stay 8-bit until the compiled kernel converts them
    batch = np.empty((len(arrays),) + arrays[0].shape, dtype=dtype)
    for i, array in enumerate(arrays):
        batch[i] = array
    return batch


def save_batch(batch, index_array, save_to_dir, save_prefix, save_format, data_format, rs,
               hash_high):
    """Write each augmented image as Keras 2 did: ``{prefix}_{index}_{random}.{format}``."""
    from keras.utils import array_to_img

    for image, index in zip(batch, index_array):
        picture = array_to_img(image, data_format=data_format, scale=True)
        name = f"{save_prefix}_{int(index)}_{rs.randint(hash_high)}.{save_format}"
        picture.save(os.path.join(save_to_dir, name))
