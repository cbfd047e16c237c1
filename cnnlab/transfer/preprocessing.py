"""The preprocessing contract of a backbone: ``preprocess_for(name)``.

The lectures' *Using pre-trained models*: "Do not forget the input normalization!"  Wrong
preprocessing gives confident nonsense without any error.  ``preprocess_for(name)`` returns
the model's own preprocessing and checks the input contract (RGB, 0..255, the right size); a
batch already scaled to 0..1 gets a :class:`PreprocessingWarning`.

Used in: no lab notebook directly; the labs import these names from cnnlab.transfer
"""

from __future__ import annotations

import warnings

import keras
import numpy as np

from cnnlab.transfer.backbones import _DEFAULT_SIZE, BACKBONES, backbone_key

__all__ = ["PreprocessingWarning", "preprocess_for"]


class PreprocessingWarning(UserWarning):
    """The input of a preprocessing function breaks its contract (e.g. already scaled to 0..1)."""


def _is_numpy_like(x) -> bool:
    return isinstance(x, (np.ndarray, list, tuple, np.generic))


def _check_contract(array: np.ndarray, key: str, size) -> None:
    if array.ndim not in (3, 4):
        raise ValueError(f"{key} expects an image (h, w, 3) or a batch (n, h, w, 3), got shape "
                         f"{array.shape}")
    if array.shape[-1] != 3:
        hint = ("; the batch looks channels-first: np.moveaxis(x, 1, -1)" if array.ndim == 4
                and array.shape[1] == 3 else
                "; grayscale to RGB: np.repeat(x, 3, axis=-1); RGBA: x[..., :3]")
        raise ValueError(f"{key} expects RGB images with 3 channels last, got shape "
                         f"{array.shape}{hint}")
    got = tuple(array.shape[-3:-1])
    if size is not None and got != tuple(size):
        raise ValueError(
            f"{key} expects {size[0]}x{size[1]} images, got {got[0]}x{got[1]}; resize them "
            f"(keras.layers.Resizing({size[0]}, {size[1]})), or, without the ImageNet top, "
            f"pass input_shape=({got[0]}, {got[1]}, 3) to preprocess_for and load_backbone")
    if array.size:
        low, high = float(array.min()), float(array.max())
        if high <= 1.0 and low >= 0.0:
            warnings.warn(
                f"{key} expects RGB values 0..255, but this batch's maximum is {high:.3g} <= 1: "
                "it looks already rescaled to 0..1 (e.g. by ImageDataGenerator(rescale=1/255) "
                "or Rescaling(1/255)). The model will still answer, with confident nonsense; "
                "pass the 0..255 images (or multiply by 255)", PreprocessingWarning, stacklevel=3)
        elif low < 0.0 or high > 255.0:
            warnings.warn(
                f"{key} expects RGB values 0..255, got {low:.3g}..{high:.3g}: already "
                "preprocessed? Apply the preprocessing exactly once, to 0..255 images",
                PreprocessingWarning, stacklevel=3)


def preprocess_for(name, input_shape=None):
    """The preprocessing function of a backbone, with its input contract enforced.

    ``name``: a backbone name (``"resnet50"``, ``"efficientnet_lite0"``...) or a model from
    :func:`load_backbone` (its name and input size are used).  The function takes RGB images,
    channels last, float (or ``uint8``) values 0..255, ``(h, w, 3)`` or ``(n, h, w, 3)``, of
    the model's size (``input_shape``, default 224 x 224), and returns what the model was
    trained on: resnet/vgg16 ``caffe`` (RGB -> BGR, ImageNet mean pixel subtracted; exactly
    ``keras.applications.resnet50.preprocess_input``), mobilenet_v2 ``tf`` (-1..1),
    efficientnet_b0 unchanged (it normalises inside), efficientnet_lite0 ``(x - 127) / 128``.
    NumPy input is copied (never modified) and checked: wrong channels or size raise
    ``ValueError`` with the fix; values that look already rescaled (maximum <= 1) or already
    preprocessed (negative) raise a :class:`PreprocessingWarning`, because that mistake gives
    confident nonsense, not an error.  Backend tensors (e.g. in a data pipeline) are checked
    for shape only.

    Used in: labs/08_pretrained_convnets, labs/09_transfer_learning
    """
    if isinstance(name, keras.Model) and input_shape is None:
        input_shape = name.input_shape[1:]
    key = backbone_key(name)
    size = ((_DEFAULT_SIZE, _DEFAULT_SIZE) if input_shape is None
            else tuple(int(side) for side in tuple(input_shape)[:2]))
    if key == "efficientnet_lite0":
        from cnnlab.pretrained import preprocess_lite0 as base
    else:
        base = getattr(keras.applications, BACKBONES[key].module).preprocess_input

    def preprocess(x):
        if _is_numpy_like(x):
            array = np.array(x, dtype=np.float32)  # a copy: Keras preprocesses NumPy in place
            _check_contract(array, key, size)
            with warnings.catch_warnings():  # the contract was checked (and warned) above
                warnings.simplefilter("ignore")
                return np.asarray(base(array), dtype=np.float32)
        shape = tuple(x.shape)
        if len(shape) < 3 or shape[-1] != 3:
            raise ValueError(f"{key} expects RGB images with 3 channels last, got shape {shape}")
        return base(keras.ops.cast(x, "float32"))

    preprocess.__name__ = preprocess.__qualname__ = f"preprocess_{key}"
    preprocess.__doc__ = (f"{key}'s preprocessing: {BACKBONES[key].preprocessing}. Input: RGB "
                          f"0..255, channels last, {size[0]}x{size[1]}.")
    preprocess.backbone = key
    return preprocess


