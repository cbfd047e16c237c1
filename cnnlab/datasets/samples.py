"""Real photos that ship with scikit-image: sample images, texture patches, faces.

Offline inputs for convolving by hand, pooling and checking translation invariance on real
images (:func:`load_sample_image`), and two small real-photo tasks that ImageNet features
solve from a few dozen examples (:func:`load_textures`, :func:`load_faces`).

Used in: no lab notebook directly; the labs import these names from cnnlab.datasets
"""

from __future__ import annotations

import numpy as np

from cnnlab.datasets.catalog import CLASS_NAMES

__all__ = ["SAMPLE_IMAGES", "load_faces", "load_sample_image", "load_textures"]

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
