"""Keras 2's module-level image functions (``keras.preprocessing.image.random_rotation``, ...).

One image at a time, with Keras 2's signatures and defaults: ``x`` is rank 3 and the axes are
named by ``row_axis``, ``col_axis`` and ``channel_axis`` (default ``1, 2, 0``: channels first,
as in Keras 2), ``fill_mode``/``cval`` as the generator's, and ``interpolation_order`` (or
``order``) 1 (bilinear) or 0 (nearest).  The geometric ones resample through the same compiled
gather as the generator (``cnnlab.augment._resampling``), so they carry the same fixes:

* rotation, shear and zoom turn about the true centre ``((h - 1) / 2, (w - 1) / 2)`` (Keras 2
  swapped the two for a non-square image);
* ``fill_mode="wrap"`` repeats with period ``n`` (Keras 2: ``n - 1``);
* ``random_shift(x, wrg, hrg)`` moves columns by a fraction ``wrg`` of the width and rows by a
  fraction ``hrg`` of the height (Keras 2 drew the height shift, scaled it by the height and
  moved columns with it, keras-team/keras#17398); the draws are Keras 2's, in its order.

``tx`` moves along ``col_axis`` and ``ty`` along ``row_axis`` (positive reads from further on,
so the content moves towards index 0), as Keras 2's ``apply_affine_transform`` documents.  The
``random_*`` functions draw from NumPy's global generator, as Keras 2's did (``np.random.seed``
makes them repeatable); nothing here reseeds it.  Any number of channels works (2, 5, 10...):
no transform here gives a channel count a meaning, except brightness, which leaves the alpha
channel of a 4-channel (RGBA, channels-last) image alone as Pillow did.

Used in: labs/06_data_augmentation
"""

from __future__ import annotations

import numbers

import numpy as np

from cnnlab.augment import _resampling

__all__ = [
    "apply_affine_transform",
    "apply_brightness_shift",
    "apply_channel_shift",
    "brightness_batch",
    "flip_axis",
    "random_brightness",
    "random_channel_shift",
    "random_rotation",
    "random_shear",
    "random_shift",
    "random_zoom",
    "to_input_dtype",
    "transform_matrix_offset_center",
]


def to_input_dtype(out, dtype):
    """``out`` (float) in the input's ``dtype``: integers rounded and clipped, as SciPy did."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.floor(out + 0.5), info.min, info.max).astype(dtype)
    if dtype == np.bool_:
        return out >= 0.5
    return out.astype(dtype if np.issubdtype(dtype, np.floating) else np.float32)


def _check_axes(x, row_axis, col_axis, channel_axis):
    """Keras 2's checks, in its order and with its words first."""
    if len({row_axis, col_axis, channel_axis}) != 3:
        raise ValueError(
            "'row_axis', 'col_axis', and 'channel_axis' must be distinct: got row_axis="
            f"{row_axis}, col_axis={col_axis}, channel_axis={channel_axis}"
        )
    invalid = {row_axis, col_axis, channel_axis} - {0, 1, 2}
    if invalid:
        raise ValueError(
            f"Invalid axis' indices: {invalid}. The axes of one image are 0, 1 and 2 "
            "(e.g. row_axis=0, col_axis=1, channel_axis=2 for (height, width, channels))"
        )
    if np.ndim(x) != 3:
        raise ValueError(
            "Input arrays must be multi-channel 2D images: x must have rank 3, got shape "
            f"{np.shape(x)}. For a grayscale image add a channel axis (x[None] with the "
            "default channel_axis=0)."
        )
    if channel_axis not in (0, 2):
        raise ValueError(
            "Channels are allowed and the first and last dimensions: channel_axis must be "
            f"0 or 2, got {channel_axis}"
        )


def _check_order(order, name):
    if isinstance(order, bool) or order not in (0, 1):
        raise ValueError(
            f"{name}={order!r} is not supported: use 1 (bilinear, the default) or 0 "
            "(nearest); Keras 2's SciPy spline orders 2-5 are not implemented in cnnlab.augment"
        )
    return int(order)


def _check_fill_mode(fill_mode):
    if fill_mode not in _resampling.FILL_MODES:
        raise ValueError(f"fill_mode={fill_mode!r} is not valid: use one of "
                         f"{list(_resampling.FILL_MODES)}")
    return fill_mode


def apply_affine_transform(x, theta=0, tx=0, ty=0, shear=0, zx=1, zy=1, row_axis=1, col_axis=2,
                           channel_axis=0, fill_mode="nearest", cval=0.0, order=1):
    """Rotate (``theta`` degrees), shift (``tx`` columns, ``ty`` rows), shear (``shear``
    degrees) and zoom (``zx``, ``zy``; above 1 zooms out) one image ``x`` in one resampling.

    Keras 2's signature and composition (``rotation @ shift @ shear @ zoom`` about the
    centre); returns ``x``'s shape and dtype (integers rounded), and ``x`` itself when nothing
    is asked.  See the module docstring for the centre and wrap fixes.

    Used in: labs/06_data_augmentation
    """
    _check_axes(x, row_axis, col_axis, channel_axis)
    _check_fill_mode(fill_mode)
    order = _check_order(order, "order")
    if theta == 0 and tx == 0 and ty == 0 and shear == 0 and zx == 1 and zy == 1:
        return x
    array = np.asarray(x)
    image = np.moveaxis(array, (row_axis, col_axis, channel_axis), (0, 1, 2))
    params = {"theta": theta, "tx": tx, "ty": ty, "shear": shear, "zx": zx, "zy": zy}
    height, width = image.shape[:2]
    matrices = _resampling.batch_matrices([params], height, width)
    source = image if image.dtype in (np.float32, np.float64, np.uint8) \
        else image.astype(np.float32)
    out = _resampling.resample_batch(source[None], matrices, fill_mode=fill_mode,
                                     cval=cval, order=order)[0]
    out = to_input_dtype(out, array.dtype)
    return np.moveaxis(out, (0, 1, 2), (row_axis, col_axis, channel_axis))


def random_rotation(x, rg, row_axis=1, col_axis=2, channel_axis=0, fill_mode="nearest",
                    cval=0.0, interpolation_order=1):
    """``x`` rotated by an angle drawn uniformly from ``[-rg, rg]`` degrees (Keras 2).

    Used in: labs/06_data_augmentation
    """
    _check_order(interpolation_order, "interpolation_order")
    theta = np.random.uniform(-rg, rg)
    return apply_affine_transform(x, theta=theta, row_axis=row_axis, col_axis=col_axis,
                                  channel_axis=channel_axis, fill_mode=fill_mode, cval=cval,
                                  order=interpolation_order)


def random_shift(x, wrg, hrg, row_axis=1, col_axis=2, channel_axis=0, fill_mode="nearest",
                 cval=0.0, interpolation_order=1):
    """``x`` shifted by up to a fraction ``wrg`` of its width and ``hrg`` of its height.

    Keras 2's two draws in Keras 2's order (the ``hrg`` one first), each applied along its
    own axis (Keras 2 crossed them, keras-team/keras#17398).

    Used in: labs/06_data_augmentation
    """
    _check_order(interpolation_order, "interpolation_order")
    height, width = np.shape(x)[row_axis], np.shape(x)[col_axis]
    ty = np.random.uniform(-hrg, hrg) * height
    tx = np.random.uniform(-wrg, wrg) * width
    return apply_affine_transform(x, tx=tx, ty=ty, row_axis=row_axis, col_axis=col_axis,
                                  channel_axis=channel_axis, fill_mode=fill_mode, cval=cval,
                                  order=interpolation_order)


def random_shear(x, intensity, row_axis=1, col_axis=2, channel_axis=0, fill_mode="nearest",
                 cval=0.0, interpolation_order=1):
    """``x`` sheared by an angle drawn uniformly from ``[-intensity, intensity]`` degrees.

    Used in: labs/06_data_augmentation
    """
    _check_order(interpolation_order, "interpolation_order")
    shear = np.random.uniform(-intensity, intensity)
    return apply_affine_transform(x, shear=shear, row_axis=row_axis, col_axis=col_axis,
                                  channel_axis=channel_axis, fill_mode=fill_mode, cval=cval,
                                  order=interpolation_order)


def random_zoom(x, zoom_range, row_axis=1, col_axis=2, channel_axis=0, fill_mode="nearest",
                cval=0.0, interpolation_order=1):
    """``x`` zoomed by ``zx``, ``zy`` drawn independently from ``zoom_range`` (low, high).

    Used in: labs/06_data_augmentation
    """
    _check_order(interpolation_order, "interpolation_order")
    if not hasattr(zoom_range, "__len__") or len(zoom_range) != 2:
        raise ValueError(
            "`zoom_range` should be a tuple or list of two floats. Received: "
            f"{zoom_range!r}; e.g. (0.8, 1.2) for up to 20 % in or out"
        )
    if zoom_range[0] == 1 and zoom_range[1] == 1:
        zx, zy = 1, 1
    else:
        zx, zy = np.random.uniform(zoom_range[0], zoom_range[1], 2)
    return apply_affine_transform(x, zx=zx, zy=zy, row_axis=row_axis, col_axis=col_axis,
                                  channel_axis=channel_axis, fill_mode=fill_mode, cval=cval,
                                  order=interpolation_order)


def apply_channel_shift(x, intensity, channel_axis=0):
    """``x + intensity`` clipped to ``x``'s own range (Keras 2: the same offset for every
    channel, clipped to the minimum and maximum over the whole image).

    Used in: labs/06_data_augmentation
    """
    array = np.asarray(x)
    if not -array.ndim <= channel_axis < array.ndim:
        raise ValueError(f"channel_axis={channel_axis} is out of range for an image of shape "
                         f"{array.shape}")
    return np.clip(array + intensity, np.min(array), np.max(array))


def random_channel_shift(x, intensity_range, channel_axis=0):
    """:func:`apply_channel_shift` with an offset drawn from ``[-intensity_range,
    intensity_range]``.

    Used in: labs/06_data_augmentation
    """
    intensity = np.random.uniform(-intensity_range, intensity_range)
    return apply_channel_shift(x, intensity, channel_axis=channel_axis)


def _brightness_levels(image, factor, scale):
    """One channels-last image through Keras 2's 8-bit Pillow brightness, without Pillow.

    Keras 2 made a Pillow image (``array_to_img``: stretched to 0..255 when ``scale`` or when
    the image leaves 0..255, then truncated to whole levels), multiplied by ``factor``
    (``ImageEnhance.Brightness``: truncated, clipped at 255, alpha left alone) and, when it
    stretched only because the image left 0..255 and ``scale`` is False, stretched back.
    """
    image = np.asarray(image, dtype=np.float64)
    lo, hi = float(image.min()), float(image.max())
    outside = lo < 0 or hi > 255
    stretch = scale or outside
    levels = image - lo if stretch else image.copy()
    if stretch and hi - lo != 0:
        levels = levels / (hi - lo) * 255.0
    levels = np.floor(levels)
    colour = slice(0, 3) if image.ndim == 3 and image.shape[-1] == 4 else slice(None)
    scaled = levels[..., colour].astype(np.float32) * np.float32(factor)  # as Pillow
    levels[..., colour] = np.clip(np.floor(scaled), 0, 255)
    if outside and not scale:
        levels = levels / 255.0 * (hi - lo) + lo
    return levels.astype(np.float32)


def brightness_batch(x, factors):
    """The generator's brightness on a channels-last batch: ``apply_brightness_shift(image,
    factor, scale=False)`` for every image whose ``factors`` entry is finite (NaN: none)."""
    out = np.asarray(x, dtype=np.float32).copy()
    for i in np.flatnonzero(np.isfinite(factors)):
        out[i] = _brightness_levels(out[i], factors[i], scale=False)
    return out


def apply_brightness_shift(x, brightness, scale=True):
    """``x`` (channels last) with its brightness multiplied by ``brightness``, as Keras 2.

    Keras 2 went through an 8-bit Pillow image: with ``scale=True`` the result is the image
    stretched to 0..255 (its minimum at 0, its maximum at 255), in whole levels, times
    ``brightness``; with ``scale=False`` an image inside 0..255 keeps its levels and one
    outside is stretched back to its own range afterwards.  Returns float32.  Any number of
    channels (Keras 2 took 1, 3 or 4).

    Used in: labs/06_data_augmentation
    """
    array = np.asarray(x)
    if array.ndim not in (2, 3):
        raise ValueError(f"x must be one image (height, width, channels), got shape "
                         f"{array.shape}")
    if not isinstance(brightness, numbers.Real):
        raise ValueError(f"brightness={brightness!r} must be a number, e.g. 1.2")
    return _brightness_levels(array, brightness, scale)


def random_brightness(x, brightness_range, scale=True):
    """:func:`apply_brightness_shift` with a factor drawn from ``brightness_range``.

    Used in: labs/06_data_augmentation
    """
    if not hasattr(brightness_range, "__len__") or len(brightness_range) != 2:
        raise ValueError(
            "`brightness_range should be tuple or list of two floats. Received: "
            f"{brightness_range!r}; e.g. (0.8, 1.2) for up to 20 % darker or brighter"
        )
    factor = np.random.uniform(brightness_range[0], brightness_range[1])
    return apply_brightness_shift(x, factor, scale)


def flip_axis(x, axis):
    """``x`` reversed along ``axis`` (Keras 2's helper).

    Used in: labs/06_data_augmentation
    """
    return np.flip(np.asarray(x), axis)


def transform_matrix_offset_center(matrix, x, y):
    """``matrix`` (3x3, acting on ``(x, y, 1)``) made to act about the centre of an image
    ``x`` pixels along its first coordinate and ``y`` along its second.

    This is Keras 2's helper unchanged; Keras 2's own callers passed ``(matrix, height,
    width)`` for a matrix in ``(x=column, y=row)`` coordinates, which is the centre bug of a
    non-square image.  Pass the sizes in the matrix's coordinate order.

    Used in: labs/06_data_augmentation
    """
    o_x = float(x) / 2 - 0.5
    o_y = float(y) / 2 - 0.5
    offset = np.array([[1, 0, o_x], [0, 1, o_y], [0, 0, 1]])
    reset = np.array([[1, 0, -o_x], [0, 1, -o_y], [0, 0, 1]])
    return offset @ np.asarray(matrix) @ reset
