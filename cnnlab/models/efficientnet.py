"""The EfficientNet-Lite0 architecture (Tan & Le 2019), built with fresh weights.

Lecture idea: a network found by scaling depth, width and resolution together, made of
MobileNetV2's inverted residual blocks (MBConv); Lab 08 runs it with pretrained weights, which
``cnnlab.pretrained`` / ``cnnlab.transfer`` load into this architecture.  Part of
:mod:`cnnlab.models`, which re-exports every name.
"""

import keras
from keras import layers

from cnnlab.models._arguments import _check_choice, _check_input_shape, _check_positive_int

__all__ = ["build_efficientnet_lite0", "lite0_block_names"]


# --------------------------------------------------------------------------------------
# EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variant of the TensorFlow TPU repository)
# --------------------------------------------------------------------------------------

# Stages of EfficientNet-B0/Lite0: (expand ratio, kernel, stride, output channels, repeats).
_LITE0_STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                 (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
# TensorFlow's EfficientNet BatchNormalization epsilon (PyTorch's default 1e-5 gives other
# probabilities with the same weights).
_LITE0_BN_EPSILON = 1e-3


def lite0_block_names() -> list[str]:
    """The names of EfficientNet-Lite0's 16 MBConv blocks, in order: ``block1a``, ``block2a``,
    ``block2b`` ... ``block7a`` (the stage's digit, then a letter per repeat, as
    ``keras.applications.EfficientNetB0`` names them).  The ImageNet weights file numbers its
    blocks 0..15 in this order (``cnnlab.transfer.lite0`` maps one onto the other).

    Used in: no lab notebook directly; the Lite0 weight loader (cnnlab.transfer.lite0) reads it
    """
    return [f"block{stage}{chr(ord('a') + repeat)}"
            for stage, (*_, repeats) in enumerate(_LITE0_STAGES, start=1)
            for repeat in range(repeats)]


def _mbconv_block(x, filters, kernel_size, strides, expand_ratio, name,
                  kernel_initializer="glorot_uniform"):
    """MobileNetV2's inverted residual as in EfficientNet-Lite: no squeeze-excite, ReLU6.

    1x1 expansion to ``expand_ratio`` x the input channels - BN - ReLU6 (left out when the
    ratio is 1), ``kernel_size`` depthwise convolution with the stride - BN - ReLU6, 1x1
    linear projection to ``filters`` - BN, plus the identity shortcut when the stride is 1
    and the channels do not change.  Convolutions have no bias and TensorFlow "same" padding
    (Keras' ``padding="same"``: the extra row/column goes at the bottom/right).  Names follow
    ``keras.applications.EfficientNetB0``: ``{name}_expand_conv``, ``{name}_expand_bn``,
    ``{name}_expand_activation``, ``{name}_dwconv``, ``{name}_bn``, ``{name}_activation``,
    ``{name}_project_conv``, ``{name}_project_bn``, ``{name}_add``.  Keras' stochastic depth
    ("drop connect", a training-only regulariser) is left out.
    """
    channels = x.shape[-1]
    y = x
    if expand_ratio != 1:
        y = layers.Conv2D(channels * expand_ratio, 1, use_bias=False,
                          kernel_initializer=kernel_initializer, name=f"{name}_expand_conv")(y)
        y = layers.BatchNormalization(epsilon=_LITE0_BN_EPSILON, name=f"{name}_expand_bn")(y)
        y = layers.ReLU(6.0, name=f"{name}_expand_activation")(y)
    y = layers.DepthwiseConv2D(kernel_size, strides=strides, padding="same", use_bias=False,
                               depthwise_initializer=kernel_initializer,
                               name=f"{name}_dwconv")(y)
    y = layers.BatchNormalization(epsilon=_LITE0_BN_EPSILON, name=f"{name}_bn")(y)
    y = layers.ReLU(6.0, name=f"{name}_activation")(y)
    y = layers.Conv2D(filters, 1, use_bias=False, kernel_initializer=kernel_initializer,
                      name=f"{name}_project_conv")(y)
    y = layers.BatchNormalization(epsilon=_LITE0_BN_EPSILON, name=f"{name}_project_bn")(y)
    if strides == 1 and channels == filters:
        y = layers.Add(name=f"{name}_add")([x, y])
    return y


def build_efficientnet_lite0(input_shape=(224, 224, 3), num_classes=1000, include_top=True,
                             pooling=None, dropout=0.2, name="efficientnet_lite0",
                             classifier_activation="softmax", kernel_initializer="glorot_uniform"):
    """EfficientNet-Lite0: EfficientNet-B0 without squeeze-excite, with ReLU6 (TF-Lite friendly).

    stem 3x3/2 conv (32) - BN - ReLU6; 16 MBConv blocks (``_mbconv_block``) in 7 stages of
    (expand, kernel, stride, channels, repeats) = (1,3,1,16,1) (6,3,2,24,2) (6,5,2,40,2)
    (6,3,2,80,3) (6,5,1,112,3) (6,5,2,192,4) (6,3,1,320,1); head 1x1 conv (1280) - BN -
    ReLU6; then (``include_top``) global average pooling - dropout - Dense. At 224x224 the
    stages output 112x112x16, 56x56x24, 28x28x40, 14x14x80, 14x14x112, 7x7x192, 7x7x320.
    BatchNormalization epsilon 1e-3 and TensorFlow "same" padding, as the TensorFlow model
    (and its ImageNet weights, ``cnnlab.pretrained.efficientnet_lite0``) was trained.

    4,694,024 parameters with the top (4,652,008 trainable + 42,016 BatchNorm moving
    statistics), 3,413,024 without.  ``include_top=False`` stops after the head's ReLU6
    (``top_activation``, 1280 maps), optionally pooled (``pooling="avg"``/``"max"``), as in
    ``keras.applications``.  ``classifier_activation=None`` gives logits.
    ``kernel_initializer="zeros"`` is for weights that are overwritten at once (the ImageNet
    loader, ``cnnlab.transfer.efficientnet_lite0``): under JAX each random initializer compiles
    one XLA program per kernel shape (about 45 here, about 20 s on a 2-core CPU).

    Layer names follow ``keras.applications.EfficientNetB0``, so every layer's name starts
    with its block: ``stem_`` (``stem_conv``, ``stem_bn``, ``stem_activation``), then
    ``block1a_`` for stage 1, ``block2a_``, ``block2b_`` for stage 2 ... ``block7a_`` (stage
    digit, then a letter per repeat; ``block2a_expand_conv``, ``block2a_dwconv``,
    ``block2a_project_bn``, ``block2b_add``...), then ``top_`` (``top_conv``, ``top_bn``,
    ``top_activation``, ``top_dropout``), ``avg_pool``/``max_pool`` and ``predictions``.

    Used in: labs/08_pretrained_convnets
    """
    input_shape = _check_input_shape(input_shape, min_side=32,
                                     model="EfficientNet-Lite0 (stride 32)")
    num_classes = _check_positive_int(num_classes, "num_classes")
    _check_choice(pooling, (None, "avg", "max"), "pooling")
    if include_top and pooling is not None:
        raise ValueError(f"pooling={pooling!r} applies only with include_top=False (the top "
                         f"already average-pools); pass include_top=False")
    if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be a rate in [0, 1), got {dropout!r}; Lite0 uses 0.2")
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False,
                      kernel_initializer=kernel_initializer, name="stem_conv")(inputs)
    x = layers.BatchNormalization(epsilon=_LITE0_BN_EPSILON, name="stem_bn")(x)
    x = layers.ReLU(6.0, name="stem_activation")(x)
    names = iter(lite0_block_names())
    for expand, kernel, strides, filters, repeats in _LITE0_STAGES:
        for repeat in range(repeats):
            x = _mbconv_block(x, filters, kernel, strides if repeat == 0 else 1, expand,
                              name=next(names), kernel_initializer=kernel_initializer)
    x = layers.Conv2D(1280, 1, use_bias=False, kernel_initializer=kernel_initializer,
                      name="top_conv")(x)
    x = layers.BatchNormalization(epsilon=_LITE0_BN_EPSILON, name="top_bn")(x)
    x = layers.ReLU(6.0, name="top_activation")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout:
            x = layers.Dropout(dropout, name="top_dropout")(x)
        x = layers.Dense(num_classes, activation=classifier_activation,
                         kernel_initializer=kernel_initializer, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    return keras.Model(inputs, x, name=name)

