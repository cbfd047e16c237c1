"""The factorised CIFAR-100 network of lecture 5, with BatchNorm, dropout and L2 switches.

Lecture idea: the "training ConvNets well" ablation (base -> +BatchNorm -> +augmentation ->
+regularization) on one small network; Lab 07 trains it.  Part of :mod:`cnnlab.models`,
which re-exports every name.
"""

import keras
from keras import layers

from cnnlab.models._arguments import _check_input_shape, _check_positive_int

__all__ = ["build_factorized_convnet"]


# --------------------------------------------------------------------------------------
# Lecture 5: the factorised CIFAR-100 network
# --------------------------------------------------------------------------------------

def build_factorized_convnet(input_shape=(32, 32, 3), num_classes=100, batch_norm=True,
                             dropout=0.0, l2=0.0):
    """The CIFAR-100 network of lecture 5 ("Model architecture and optimization setup").

    ========  ==========  =======  ========
    operator  resolution  RF size  channels
    ========  ==========  =======  ========
    ConvBlock 32x32       5x5      32
    ConvBlock 32x32       9x9      32
    Sub       16x16       15x15    32
    ConvBlock 16x16       15x15    128
    ConvBlock 16x16       23x23    128
    Sub       8x8         31x31    128
    AvgPool   1x1                  128
    Linear                         100
    ========  ==========  =======  ========

    ConvBlock = 2x [Conv(1x3) - (BN) - ReLU - Conv(3x1) - (BN) - ReLU]: a 3x3 convolution
    factorised into 1x3 then 3x1 (6 C^2 weights instead of 9 C^2).  Sub = Conv(3x3, stride
    2) - (BN) - ReLU.  All convolutions use same padding.  Layers are named
    ``convblock{1-4}_{1,2}_1x3`` / ``_3x1`` (+ ``_bn``, ``_relu``), ``sub{1,2}``,
    ``avg_pool``, ``dropout`` (only when ``dropout > 0``, before the linear layer) and
    ``predictions``.

    Switches: ``batch_norm`` puts BN after every convolution (the convolutions then drop their
    bias, which BN's shift makes redundant); ``l2`` adds an L2 penalty on the convolution and
    dense *kernels* only -- not on biases nor BN coefficients, as the slide says (the slide's
    regularised run uses "L2 (0.0025)", PyTorch's ``weight_decay``, i.e. ``l2=0.00125`` here,
    since Keras' L2 adds ``l2 * sum(w**2)`` whose gradient is ``2 * l2 * w``; ``dropout=0.5``
    and label smoothing 0.1 in the loss).

    Parameter count, honestly: this specification gives 549,156 parameters without BN and
    553,476 with BN (550,596 trainable), i.e. about 0.55 M, not the "~2 M" printed on the
    slide.  Most of them sit in the two 128-channel ConvBlocks (357 k) and the second Sub
    (148 k).  No reading of the table reaches 2 M: even plain 3x3 convolutions instead of the
    1x3/3x1 pairs would give 1.3 M, so the slide's figure presumably comes from a wider
    variant of the code.  The model is not padded to match it.

    Used in: labs/07_training_convnets_well
    """
    input_shape = _check_input_shape(input_shape, min_side=1, model="the factorised ConvNet")
    num_classes = _check_positive_int(num_classes, "num_classes")
    if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be a rate in [0, 1), got {dropout!r}; the slide uses 0.5")
    if not isinstance(l2, (int, float)) or l2 < 0:
        raise ValueError(f"l2 must be a non-negative penalty factor, got {l2!r}; the slide's "
                         f"weight decay 0.0025 is l2=0.00125")
    regularizer = keras.regularizers.L2(l2) if l2 else None

    def conv(tensor, filters, kernel_size, strides, name):
        tensor = layers.Conv2D(filters, kernel_size, strides=strides, padding="same",
                               use_bias=not batch_norm, kernel_regularizer=regularizer,
                               name=name)(tensor)
        if batch_norm:
            tensor = layers.BatchNormalization(name=f"{name}_bn")(tensor)
        return layers.Activation("relu", name=f"{name}_relu")(tensor)

    def conv_block(tensor, filters, index):
        for repeat in (1, 2):
            prefix = f"convblock{index}_{repeat}"
            tensor = conv(tensor, filters, (1, 3), 1, f"{prefix}_1x3")
            tensor = conv(tensor, filters, (3, 1), 1, f"{prefix}_3x1")
        return tensor

    inputs = keras.Input(shape=input_shape, name="image")
    x = conv_block(inputs, 32, 1)
    x = conv_block(x, 32, 2)
    x = conv(x, 32, 3, 2, "sub1")
    x = conv_block(x, 128, 3)
    x = conv_block(x, 128, 4)
    x = conv(x, 128, 3, 2, "sub2")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", kernel_regularizer=regularizer,
                           name="predictions")(x)
    return keras.Model(inputs, outputs, name="factorized_convnet")
