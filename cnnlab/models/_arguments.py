"""Argument checks shared by the builders of ``cnnlab.models``: errors name the argument,
the bad value and the fix (lecture idea: a model is defined by its input shape and its
hyper-parameters, and a wrong one should say so before any layer is built)."""

import numpy as np

from cnnlab._checks import integer

__all__ = []  # helpers of cnnlab.models only

# Keras' ResNet uses this BatchNormalization epsilon (inherited from the Caffe models).
_RESNET_BN_EPSILON = 1.001e-5


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_positive_int(value, argument):
    """cnnlab._checks' rule: a float, bool or string is a TypeError, 0 or less a ValueError."""
    return integer(value, argument, 1)


def _check_input_shape(input_shape, min_side=1, model="this model", hint=""):
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise TypeError(f"input_shape must be a tuple (height, width, channels), got "
                        f"{input_shape!r}; for example input_shape=(32, 32, 3)") from None
    if len(shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels) with positive ints "
                         f"(channels last), got {input_shape!r}; for example "
                         f"input_shape=(32, 32, 3)")
    shape = tuple(integer(size, f"input_shape[{i}]", 1) for i, size in enumerate(shape))
    if min(shape[:2]) < min_side:
        raise ValueError(f"input_shape={shape} is too small for {model}: height and width "
                         f"must be at least {min_side}{hint}")
    return tuple(int(size) for size in shape)


def _check_choice(value, choices, argument):
    if value not in choices:
        raise ValueError(f"{argument}={value!r} is not supported; choose one of "
                         f"{', '.join(repr(choice) for choice in choices)}")
    return value


def _check_feature_map(x):
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) != 4:
        raise ValueError(f"x must be a 4D tensor (batch, height, width, channels), got shape "
                         f"{shape}; start from keras.Input(shape=(height, width, channels))")
    return shape


def _name(prefix, suffix):
    """Layer name ``prefix_suffix``, or None (Keras picks a unique name) without a prefix."""
    return None if prefix is None else f"{prefix}_{suffix}"
