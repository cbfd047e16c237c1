"""Checks of image arrays shared by the generator and the iterators (no import of either).

Used in: labs/06_data_augmentation
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["channel_axis_of", "check_images"]


def channel_axis_of(data_format):
    """The channel axis of a batch (N, ...) in ``data_format``."""
    return 3 if data_format == "channels_last" else 1


def check_images(x, data_format, caller="flow", what="x"):
    """``x`` as a rank-4 numeric array, with Keras 2's errors and its channel-count warning.

    ``caller`` picks Keras 2's words: ``"flow"`` (``NumpyArrayIterator``) or ``"fit"``.  A
    channel count other than 1, 3 or 4 works and warns, as in Keras 2 (2, 5, 10 channels:
    multispectral images, stacked frames, feature maps).
    """
    if isinstance(x, (str, bytes)) or not hasattr(x, "__len__"):
        raise TypeError(f"{what} must be an array of images (N, height, width, channels), "
                        f"got {type(x).__name__}")
    x = np.asarray(x)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise TypeError(f"{what} must hold numbers (uint8 or float pixels), got dtype "
                        f"{x.dtype}; stack your images into one numeric array first")
    if x.ndim != 4:
        hint = ""
        if x.ndim == 3:
            hint = (" For one colour image, add a batch axis: x[None]. For a batch of "
                    "grayscale images, add a channel axis: x[..., None].")
        elif x.ndim == 2:
            hint = " For one grayscale image, use x[None, :, :, None]."
        first = ("Input to `.fit()` should have rank 4. Got array with shape: "
                 f"{x.shape}" if caller == "fit" else
                 "Input data in `NumpyArrayIterator` should have rank 4. You passed an "
                 f"array with shape {x.shape}")
        raise ValueError(f"{first}: {what} must be (N, height, width, channels) for "
                         f"data_format={data_format!r}.{hint}")
    axis = channel_axis_of(data_format)
    channels = x.shape[axis]
    if channels not in (1, 3, 4):
        other = "channels_first" if data_format == "channels_last" else "channels_last"
        if caller == "fit":
            first = ("Expected input to be images (as Numpy array) following the data format "
                     f'convention "{data_format}" (channels on axis {axis}), i.e. expected '
                     f"either 1, 3 or 4 channels on axis {axis}. However, it was passed an "
                     f"array with shape {x.shape} ({channels} channels).")
        else:
            first = ("NumpyArrayIterator is set to use the data format convention "
                     f'"{data_format}" (channels on axis {axis}), i.e. expected either 1, 3, '
                     f"or 4 channels on axis {axis}. However, it was passed an array with "
                     f"shape {x.shape} ({channels} channels).")
        warnings.warn(
            f"{first} cnnlab.augment transforms them all the same; if the channels are on the "
            f"other axis, pass data_format={other!r} to ImageDataGenerator or transpose x.",
            UserWarning, stacklevel=4)
    return x
