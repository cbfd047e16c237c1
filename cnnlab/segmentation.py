"""Semantic segmentation: a label per pixel, fully convolutional networks, SegNet's unpooling.

The lecture (ISPR Pisa, *Semantic Segmentation*): "Traditional CNN cannot be used for this task
due to the downsampling of the striding and pooling operations"; *Fully Convolutional Networks*
"Learn an upsampling function of the fused map to generate the semantic segmentation map";
SegNet's "Maxpooling indices transferred to decoder to improve the segmentation resolution";
and Yu & Koltun's dilated networks, which "Always perform 3x3 convolutions with no pooling".
This module holds

* :func:`synthetic_shapes_dataset`: **synthetic** images of circles, rectangles and triangles
  drawn by ``skimage.draw.random_shapes``, with a mask of their class per pixel;
* :func:`pixel_accuracy`, :func:`iou` and :func:`mean_iou`: the usual segmentation scores;
* :func:`max_pool_with_indices` and :func:`max_unpool`: SegNet's idea in NumPy;
* :func:`build_fcn`: a small encoder-decoder with transposed convolutions, or a dilated
  network without downsampling.

Used in: labs/11_beyond_images
"""

from __future__ import annotations

import warnings

import numpy as np

from cnnlab._checks import integer, renamed

__all__ = [
    "SHAPE_CLASSES",
    "synthetic_shapes_dataset",
    "pixel_accuracy",
    "iou",
    "mean_iou",
    "max_pool_with_indices",
    "max_unpool",
    "build_fcn",
]

#: The shapes ``skimage.draw.random_shapes`` can draw.
SHAPE_CLASSES = ("rectangle", "circle", "triangle", "ellipse")


def synthetic_shapes_dataset(n, size=32, seed=0, max_shapes=3, min_shapes=1,
                             classes=("circle", "rectangle", "triangle"), min_size=None,
                             max_size=None, intensity_range=(0, 200)):
    """Synthetic segmentation data: images of random shapes and the class of every pixel.

    The data are **synthetic**: each image is a black background with ``min_shapes`` to
    ``max_shapes`` non-overlapping shapes, each of a class drawn uniformly from ``classes``,
    of a random size (``min_size`` to ``max_size`` pixels, defaults ``size // 4`` and
    ``size // 2``) and a random brightness.  The brightness says nothing about the class: only
    the shape does.

    Every shape is drawn by its own call to ``skimage.draw.random_shapes`` (one shape on an
    empty white canvas: its pixels are exactly those that are not white, 255), then placed
    where it does not overlap the shapes already there, so the mask is exact, pixel by pixel.
    skimage draws dark shapes (grey level in ``intensity_range``, 0-254) on white; the images
    are inverted to "ink", ``1 - grey / 255``, so the background is 0 and a shape is at least
    ``1 - 200 / 255 = 0.22`` with the default range (none is invisible).

    Returns:
        ``(images, masks)``: ``images`` float32 ``(n, size, size, 1)`` in [0, 1] (background
        0.0); ``masks`` int64 ``(n, size, size)``: 0 for background, ``i + 1`` for a pixel of
        ``classes[i]``.

    Used in: labs/11_beyond_images
    """
    from skimage.draw import random_shapes

    classes = tuple(classes)
    unknown = [c for c in classes if c not in SHAPE_CLASSES]
    if not classes or unknown:
        raise ValueError(f"unknown shape class(es) {unknown}; choose among {SHAPE_CLASSES}")
    n, size = int(n), int(size)
    min_size = int(min_size or max(2, size // 4))
    max_size = int(max_size or max(min_size + 1, size // 2))
    if not 2 <= min_size <= max_size <= size:
        raise ValueError(f"need 2 <= min_size ({min_size}) <= max_size ({max_size}) <= size "
                         f"({size}); change the sizes")
    if not 1 <= int(min_shapes) <= int(max_shapes):
        raise ValueError(f"need 1 <= min_shapes ({min_shapes}) <= max_shapes ({max_shapes})")
    low, high = intensity_range
    if not 0 <= low <= high <= 254:
        raise ValueError(f"intensity_range {intensity_range} must lie in [0, 254]: 255 is the "
                         "background")
    rng = np.random.default_rng(seed)
    images = np.full((n, size, size), 255, dtype=np.uint8)
    masks = np.zeros((n, size, size), dtype=np.int64)
    for index in range(n):
        wanted = int(rng.integers(min_shapes, max_shapes + 1))
        for _ in range(wanted):
            label = int(rng.integers(len(classes)))
            for _attempt in range(20):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "Could not fit": we try again
                    drawn, _ = random_shapes((size, size), max_shapes=1, min_shapes=1,
                                             min_size=min_size, max_size=max_size,
                                             shape=classes[label], channel_axis=None,
                                             intensity_range=(low, high), rng=rng)
                pixels = drawn != 255
                if pixels.any() and not np.any(masks[index][pixels]):
                    images[index][pixels] = drawn[pixels]
                    masks[index][pixels] = label + 1
                    break
    ink = 1.0 - images[..., None].astype(np.float32) / np.float32(255.0)
    return ink.astype(np.float32), masks


def _labels_pair(y_true, y_pred):
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape; both hold one "
            "integer label per pixel (if y_pred holds per-class probabilities, take "
            "argmax(axis=-1) first)")
    for name, labels in (("y_true", y_true), ("y_pred", y_pred)):
        if labels.dtype.kind == "f" and not np.all(labels == np.round(labels)):
            raise ValueError(f"{name} holds fractions; give integer class labels "
                             "(argmax(axis=-1) of the probabilities)")
    return y_true.astype(np.int64).ravel(), y_pred.astype(np.int64).ravel()


def pixel_accuracy(y_true, y_pred):
    """The fraction of pixels whose predicted label equals the true one (any shapes, equal).

    Used in: labs/11_beyond_images
    """
    y_true, y_pred = _labels_pair(y_true, y_pred)
    if y_true.size == 0:
        raise ValueError("no pixels: y_true is empty")
    return float(np.mean(y_true == y_pred))


def iou(y_true, y_pred, num_classes):
    """Intersection over union per class: ``|true == c and pred == c| / |true == c or pred == c|``.

    Returns a float array ``(num_classes,)``.  A class absent from both ``y_true`` and
    ``y_pred`` has no union: its IoU is ``NaN`` (undefined), not 0 or 1, and :func:`mean_iou`
    leaves it out.  The labels are integers in ``[0, num_classes)``; all pixels of all images
    count together (the IoU of the dataset, not a mean of per-image IoUs).

    Used in: labs/11_beyond_images
    """
    y_true, y_pred = _labels_pair(y_true, y_pred)
    num_classes = int(num_classes)
    for name, labels in (("y_true", y_true), ("y_pred", y_pred)):
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"{name} has labels outside [0, {num_classes}); check "
                             "num_classes (background counts as class 0)")
    scores = np.full(num_classes, np.nan)
    for c in range(num_classes):
        true_c, pred_c = y_true == c, y_pred == c
        union = np.count_nonzero(true_c | pred_c)
        if union:
            scores[c] = np.count_nonzero(true_c & pred_c) / union
    return scores


def mean_iou(y_true, y_pred, num_classes):
    """The mean of :func:`iou` over the classes present in ``y_true`` or ``y_pred``.

    Used in: labs/11_beyond_images
    """
    scores = iou(y_true, y_pred, num_classes)
    if np.all(np.isnan(scores)):
        raise ValueError("no class is present: y_true and y_pred are empty")
    return float(np.nanmean(scores))


def _check_pool_input(image, pool_size):
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"image must be a map (H, W) or maps (H, W, C), not {image.shape}; "
                         "take one image of a batch")
    pool_size = integer(pool_size, "pool_size")
    height, width = image.shape[:2]
    if height % pool_size or width % pool_size:
        raise ValueError(f"a {height}x{width} map does not split into {pool_size}x{pool_size} "
                         "windows; crop or pad it to a multiple of pool_size")
    return image, pool_size


@renamed(x="image")
def max_pool_with_indices(image, pool_size=2):
    """Max pooling that also returns where each maximum was (SegNet's pooling indices).

    ``image`` is one map ``(H, W)`` or maps ``(H, W, C)``; non-overlapping ``pool_size``
    windows (strides = ``pool_size``, H and W multiples of it).  Returns ``(pooled, indices)``,
    both of shape ``(H / p, W / p[, C])``: ``indices`` holds, per channel, the flat position
    ``row * W + col`` of each window's maximum in the input map (the first one in row-major
    order on ties, as ``np.argmax``).  Written with NumPy reshapes because it teaches the idea;
    TensorFlow's ``tf.nn.max_pool_with_argmax`` flattens over channels (and the batch) instead.

    Used in: labs/11_beyond_images
    """
    image, p = _check_pool_input(image, pool_size)
    squeeze = image.ndim == 2
    maps = image[..., None] if squeeze else image
    height, width, channels = maps.shape
    # (H/p, p, W/p, p, C) -> (H/p, W/p, C, p*p): each window's p*p values in row-major order
    windows = maps.reshape(height // p, p, width // p, p, channels).transpose(0, 2, 4, 1, 3)
    windows = windows.reshape(height // p, width // p, channels, p * p)
    within = np.argmax(windows, axis=-1)
    pooled = np.take_along_axis(windows, within[..., None], axis=-1)[..., 0]
    rows = np.arange(height // p)[:, None, None] * p + within // p
    cols = np.arange(width // p)[None, :, None] * p + within % p
    indices = (rows * width + cols).astype(np.int64)
    if squeeze:
        return pooled[..., 0], indices[..., 0]
    return pooled, indices


def max_unpool(pooled, indices, output_shape):
    """SegNet's unpooling: each pooled value back at its ``indices`` position, zeros elsewhere.

    ``pooled`` and ``indices`` as returned by :func:`max_pool_with_indices` (``(h, w)`` or
    ``(h, w, C)``; flat positions ``row * W + col`` in the output map); ``output_shape`` the
    shape of the map before pooling, ``(H, W)`` or ``(H, W, C)``.  A sparse map: the decoder's
    convolutions then fill it in.  ``max_unpool(*max_pool_with_indices(x), x.shape)`` keeps
    each window's maximum where it was and zeroes the rest.

    Used in: labs/11_beyond_images
    """
    pooled = np.asarray(pooled)
    indices = np.asarray(indices)
    output_shape = tuple(int(s) for s in output_shape)
    if pooled.shape != indices.shape:
        raise ValueError(f"pooled {pooled.shape} and indices {indices.shape} must have one "
                         "shape: pass both results of max_pool_with_indices")
    if len(output_shape) != pooled.ndim or output_shape[2:] != pooled.shape[2:]:
        raise ValueError(f"output_shape {output_shape} does not match pooled {pooled.shape}: "
                         "give the shape of the map before pooling, same channels")
    height, width = output_shape[:2]
    if indices.size and (indices.min() < 0 or indices.max() >= height * width):
        raise ValueError(f"indices must be flat positions in [0, {height * width}) of a "
                         f"{height}x{width} map")
    squeeze = pooled.ndim == 2
    values = pooled.reshape(-1, 1) if squeeze else pooled.reshape(-1, pooled.shape[-1])
    flat = indices.reshape(values.shape)
    out = np.zeros((height * width, values.shape[1]), dtype=pooled.dtype)
    channels = np.broadcast_to(np.arange(values.shape[1]), values.shape)
    out[flat, channels] = values
    return out.reshape(output_shape)


def build_fcn(input_shape, num_classes, dilated=False, filters=16, skip=False):
    """A small fully convolutional segmentation network: per-pixel softmax, input size out.

    ``dilated=False``: an encoder-decoder (FCN / SegNet shape, without skip connections)::

        Conv2D(f, 3, same, relu)   -> MaxPool2D(2)          H   -> H/2
        Conv2D(2f, 3, same, relu)  -> MaxPool2D(2)          H/2 -> H/4
        Conv2D(2f, 3, same, relu)
        Conv2DTranspose(2f, 2, strides=2, relu)             H/4 -> H/2
        Conv2DTranspose(f, 2, strides=2, relu)              H/2 -> H
        Conv2D(num_classes, 1, softmax)

    ``skip=True`` adds FCN's skip connection (Shelhamer, Long & Darrell: "Fuse information
    from feature maps of different scale"): the output of the first transposed convolution
    (H/2) is added (``layers.Add``, no new weights) to the second encoder convolution's map of
    the same size, taken before its pooling, so the decoder gets back the detail that the
    second pooling threw away.

    ``dilated=True`` (after Yu & Koltun, whose context module stacks 3x3 convolutions with
    dilations 1, 1, 2, 4, 8, 16, 1): no pooling, no striding; three
    ``Conv2D(2f, 3, padding="same", relu)`` with ``dilation_rate`` 1, 2, 4 (receptive field
    3, 7, 15) and the same 1x1 softmax.  Height and width must be multiples of 4 for the
    encoder-decoder.  Functional model, channels last; ``keras.ops`` only.

    Used in: labs/11_beyond_images
    """
    import keras
    from keras import layers

    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) != 3:
        raise ValueError(f"input_shape is (height, width, channels), not {input_shape}")
    if not dilated and (input_shape[0] % 4 or input_shape[1] % 4):
        raise ValueError(f"the encoder pools twice: height and width must be multiples of 4, "
                         f"not {input_shape[:2]}; crop or pad the images, or use dilated=True")
    f = int(filters)
    inputs = keras.Input(shape=input_shape, name="image")
    if dilated and skip:
        raise ValueError("skip=True fuses the encoder's map with the upsampled one; the dilated "
                         "network never pools or upsamples: use one of dilated, skip")
    if dilated:
        x = inputs
        for rate in (1, 2, 4):
            x = layers.Conv2D(2 * f, 3, padding="same", dilation_rate=rate, activation="relu",
                              name=f"dilated_{rate}")(x)
        name = "dilated_fcn"
    else:
        x = layers.Conv2D(f, 3, padding="same", activation="relu", name="enc1")(inputs)
        x = layers.MaxPool2D(2, name="pool1")(x)
        finer = layers.Conv2D(2 * f, 3, padding="same", activation="relu", name="enc2")(x)
        x = layers.MaxPool2D(2, name="pool2")(finer)
        x = layers.Conv2D(2 * f, 3, padding="same", activation="relu", name="bottleneck")(x)
        x = layers.Conv2DTranspose(2 * f, 2, strides=2, activation="relu", name="up1")(x)
        if skip:
            x = layers.Add(name="fuse")([x, finer])
        x = layers.Conv2DTranspose(f, 2, strides=2, activation="relu", name="up2")(x)
        name = "fcn_skip" if skip else "fcn"
    outputs = layers.Conv2D(int(num_classes), 1, activation="softmax", name="per_pixel")(x)
    return keras.Model(inputs, outputs, name=name)
