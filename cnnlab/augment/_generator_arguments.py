"""``ImageDataGenerator``'s arguments: Keras 2's checks, spellings and defaults in one place.

Keras 2 accepted the same range in several spellings (a shift as a fraction, whole pixels or a
list of choices; a zoom as one float or a pair) and quietly turned some flags on for others
(``zca_whitening`` needs ``featurewise_center``).  :class:`~cnnlab.augment.ImageDataGenerator`
(Lab 06, labs/06_data_augmentation) reads its arguments through these functions, which reject
what Keras 2 would have misread with an error that names the fix, and :func:`draw_shift`
draws a shift from the random stream exactly as Keras 2 did.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from cnnlab.augment import _resampling

__all__ = [
    "brightness_pair",
    "check_arguments",
    "checked_format_and_dtype",
    "draw_shift",
    "is_number",
    "shift_range",
    "statistics_flags",
    "zoom_pair",
]


def is_number(value):
    """Return whether ``value`` is a real number (a bool is not)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_number(name, value, minimum=None):
    if not is_number(value):
        raise ValueError(f"{name}={value!r} must be a number")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}={value!r} must be >= {minimum}")
    return value


def checked_format_and_dtype(data_format, dtype):
    """Return ``(data_format, numpy float dtype)``; None means Keras's configured default."""
    import keras

    if data_format is None:
        data_format = keras.config.image_data_format()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError('`data_format` should be `"channels_last"` (channel after row and '
                         'column) or `"channels_first"` (channel before row and column). '
                         f"Received: {data_format!r}; 'channels_last' is (N, height, "
                         "width, channels)")
    if dtype is None:
        dtype = keras.config.floatx()
    try:
        np_dtype = np.dtype(dtype)
    except TypeError:
        np_dtype = None
    if np_dtype is None or not np.issubdtype(np_dtype, np.floating):
        raise ValueError(f"dtype={dtype!r} must be a float dtype such as 'float32'")
    return data_format, np_dtype


def check_arguments(*, fill_mode, interpolation_order, validation_split, rotation_range,
                    shear_range, channel_shift_range, cval, zca_epsilon, rescale,
                    preprocessing_function, horizontal_flip, vertical_flip):
    """Raise on the first argument Keras 2's ``ImageDataGenerator`` does not accept."""
    if fill_mode not in _resampling.FILL_MODES:
        raise ValueError(f"fill_mode={fill_mode!r} is not valid: use one of "
                         f"{list(_resampling.FILL_MODES)}")
    if interpolation_order not in (0, 1) or isinstance(interpolation_order, bool):
        raise ValueError(
            f"interpolation_order={interpolation_order!r} is not supported: use 1 "
            "(bilinear, the default) or 0 (nearest); Keras 2's spline orders 2-5 are not "
            "implemented here"
        )
    if not is_number(validation_split) or not 0 <= validation_split < 1:
        raise ValueError("`validation_split` must be strictly between 0 and 1. Received: "
                         f"{validation_split!r}; e.g. 0.2 holds out a fifth of the images")
    for name, value in [("rotation_range", rotation_range), ("shear_range", shear_range),
                        ("channel_shift_range", channel_shift_range)]:
        _check_number(name, value, minimum=0)
    _check_number("cval", cval)
    _check_number("zca_epsilon", zca_epsilon, minimum=0)
    if rescale is not None and not is_number(rescale):
        raise ValueError(f"rescale={rescale!r} must be a number such as 1/255, or None")
    if preprocessing_function is not None and not callable(preprocessing_function):
        raise TypeError("preprocessing_function must be a function that takes one image "
                        "(rank 3) and returns one of the same shape")
    for name, value in [("horizontal_flip", horizontal_flip),
                        ("vertical_flip", vertical_flip)]:
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{name}={value!r} must be True or False")


def shift_range(name, value):
    """Keras 2's shift spec: float (fraction if < 1, else pixels), int pixels, or choices."""
    if is_number(value):
        if value < 0:
            raise ValueError(f"{name}={value!r} must be >= 0 (the shift is drawn from "
                             f"[-{-value}, {-value}]; give the positive bound)")
        return int(value) if isinstance(value, numbers.Integral) else float(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        choices = np.asarray(value)
        if choices.ndim == 1 and choices.size and np.issubdtype(choices.dtype, np.number):
            return tuple(choices.tolist())
    raise ValueError(
        f"{name}={value!r} is not valid: give a float (a fraction of the image if < 1, pixels "
        f"otherwise, e.g. 0.2), an int number of pixels (e.g. 10), or a list of allowed shifts "
        f"(e.g. [-10, 0, 10])"
    )


def draw_shift(rs, spec, size):
    """One shift draw exactly as Keras 2's get_random_transform makes it (same stream use)."""
    if not spec:
        return 0.0
    if isinstance(spec, float):
        shift = rs.uniform(-spec, spec)
    else:  # an int n (choose from range(n)) or a list of choices, times a random sign
        shift = rs.choice(list(spec) if isinstance(spec, tuple) else spec)
        shift = shift * rs.choice([-1, 1])
    if np.max(spec) < 1:
        shift = shift * size
    return float(shift)


def zoom_pair(zoom_range):
    """Return ``[low, high]`` zooms: a float ``z`` means ``[1 - z, 1 + z]``."""
    if is_number(zoom_range):
        if zoom_range < 0:
            raise ValueError(f"zoom_range={zoom_range!r} must be >= 0")
        pair = [1 - zoom_range, 1 + zoom_range]
    elif isinstance(zoom_range, (list, tuple)) and len(zoom_range) == 2 and all(
            is_number(v) for v in zoom_range):
        pair = [zoom_range[0], zoom_range[1]]
    else:
        raise ValueError("`zoom_range` should be a float or a tuple or list of two floats. "
                         f"Received: {zoom_range!r}; a float z means [1 - z, 1 + z], e.g. "
                         "0.2 or (0.8, 1.2)")
    if min(pair) <= 0:
        raise ValueError(
            f"zoom_range={zoom_range!r} reaches a zoom of {min(pair)}, which "
            "shrinks the image to a point or mirrors it; keep both zooms above 0 "
            "(a float zoom_range must be below 1)"
        )
    return pair


def brightness_pair(brightness_range):
    """Return ``brightness_range`` as a tuple of two factors >= 0, or None."""
    if brightness_range is None:
        return None
    if not (isinstance(brightness_range, (list, tuple)) and len(brightness_range) == 2
            and all(is_number(v) and v >= 0 for v in brightness_range)):
        raise ValueError(
            "`brightness_range should be tuple or list of two floats. Received: "
            f"{brightness_range!r}; give a pair of factors >= 0, e.g. (0.5, 1.5) (1 "
            "keeps the brightness)"
        )
    return tuple(brightness_range)


def statistics_flags(featurewise_center, featurewise_std_normalization, samplewise_center,
                     samplewise_std_normalization, zca_whitening):
    """Return ``(featurewise_center, featurewise_std_normalization, samplewise_center)`` as
    Keras 2 sets them: ZCA and a std normalization turn their centering on (with a warning),
    ZCA turns the featurewise std normalization off.  Warnings point at the caller's caller
    (the line that built the ``ImageDataGenerator``)."""
    if zca_whitening:
        if not featurewise_center:
            featurewise_center = True
            warnings.warn("zca_whitening=True turns featurewise_center on", UserWarning,
                          stacklevel=3)
        if featurewise_std_normalization:
            featurewise_std_normalization = False
            warnings.warn("zca_whitening=True turns featurewise_std_normalization off",
                          UserWarning, stacklevel=3)
    if featurewise_std_normalization and not featurewise_center:
        featurewise_center = True
        warnings.warn("featurewise_std_normalization=True turns featurewise_center on",
                      UserWarning, stacklevel=3)
    if samplewise_std_normalization and not samplewise_center:
        samplewise_center = True
        warnings.warn("samplewise_std_normalization=True turns samplewise_center on",
                      UserWarning, stacklevel=3)
    return featurewise_center, featurewise_std_normalization, samplewise_center
