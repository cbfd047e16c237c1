"""Deeper networks built from blocks: ResNet, DenseNet's block, GoogLeNet and MobileNet v1.

Lecture idea: depth with shortcuts (residual and bottleneck blocks, He et al. 2016), feature
reuse (dense blocks), parallel branches (inception) and cheaper convolutions (depthwise
separable); Lab 05 builds and counts them.  The blocks are functions ``(x, filters, ...) ->
tensor`` that students chain themselves.  Part of :mod:`cnnlab.models`, which re-exports every
name.
"""

import keras
from keras import layers

from cnnlab.layers import ZeroPadShortcut
from cnnlab.models._arguments import (
    _RESNET_BN_EPSILON,
    _check_choice,
    _check_feature_map,
    _check_input_shape,
    _check_positive_int,
    _is_int,
    _name,
)

__all__ = [
    "bottleneck_block",
    "build_googlenet",
    "build_mobilenet",
    "build_resnet",
    "build_resnet_cifar",
    "dense_block",
    "depthwise_separable_block",
    "inception_block",
    "residual_block",
]


# --------------------------------------------------------------------------------------
# ResNet (He, Zhang, Ren & Sun 2016)
# --------------------------------------------------------------------------------------

def _conv_bn(x, filters, kernel_size, strides, name, use_bias, padding="same"):
    """Conv2D then BatchNormalization, named ``{name}_conv`` and ``{name}_bn``."""
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding,
                      use_bias=use_bias, name=_name(name, "conv"))(x)
    return layers.BatchNormalization(epsilon=_RESNET_BN_EPSILON, name=_name(name, "bn"))(x)


def residual_block(x, filters, strides=1, projection=None, name=None, use_bias=True):
    """The basic residual block of ResNet-18/34: two 3x3 conv-BN, plus the shortcut, then ReLU.

    The block learns the residual F(x) and outputs relu(F(x) + shortcut(x)).  The first
    convolution carries the stride.  Shortcut:

    * ``projection=None`` (default, the paper's option B): identity when the shape is
      unchanged, a 1x1 convolution + BN with the same stride when it changes;
    * ``projection=True`` (option C): always a 1x1 convolution + BN;
    * ``projection=False`` (option A): parameter-free -- identity, or when the shape changes
      subsampling plus zero channels (``cnnlab.layers.ZeroPadShortcut``).

    Layer names follow Keras' ResNet: ``{name}_1_conv``, ``{name}_1_bn``, ``{name}_1_relu``,
    ``{name}_2_conv``, ``{name}_2_bn``, ``{name}_0_conv`` (shortcut), ``{name}_add``,
    ``{name}_out``.  ``use_bias=True`` follows Keras (biases before BN are redundant but
    counted); torchvision uses ``use_bias=False``.

    Used in: labs/05_architectures_and_cost
    """
    shape = _check_feature_map(x)
    filters = _check_positive_int(filters, "filters")
    strides = _check_positive_int(strides, "strides")
    if projection not in (None, True, False):
        raise ValueError(f"projection must be None (automatic), True or False, got "
                         f"{projection!r}")
    shape_changes = strides != 1 or shape[-1] != filters
    if projection is True or (projection is None and shape_changes):
        shortcut = _conv_bn(x, filters, 1, strides, _name(name, "0"), use_bias)
    elif shape_changes:
        shortcut = ZeroPadShortcut(filters, strides, name=_name(name, "0_pad"))(x)
    else:
        shortcut = x
    y = _conv_bn(x, filters, 3, strides, _name(name, "1"), use_bias)
    y = layers.Activation("relu", name=_name(name, "1_relu"))(y)
    y = _conv_bn(y, filters, 3, 1, _name(name, "2"), use_bias)
    y = layers.Add(name=_name(name, "add"))([shortcut, y])
    return layers.Activation("relu", name=_name(name, "out"))(y)


def dense_block(x, num_layers, growth_rate, bottleneck=False, name=None):
    """A dense block of DenseNet (Huang, Liu, van der Maaten & Weinberger 2017): concatenate.

    Layer ``l`` reads the concatenation of the block input and of every earlier layer's output,
    :math:`x_l = H_l([x_0, x_1, \\dots, x_{l-1}])`, and adds ``growth_rate`` (:math:`k`) new
    channels: after ``l`` layers a block that starts with :math:`k_0` channels has
    :math:`k_0 + l\\,k`.  Lecture 5 (*DenseNets*) and the DSI deck (*Modular building blocks*,
    "see also DenseNets").  :math:`H_l` is pre-activation, as in the paper:

    * ``bottleneck=False`` (DenseNet): BN - ReLU - Conv 3x3 (``growth_rate`` filters);
    * ``bottleneck=True`` (DenseNet-B, the paper's DenseNet-121...): BN - ReLU - Conv 1x1
      (``4 * growth_rate`` filters) - BN - ReLU - Conv 3x3 (``growth_rate`` filters).

    The convolutions have no bias (the next BN's beta would absorb it), like Keras' DenseNet,
    whose BN epsilon (1.001e-5) is used too.  Each new map is appended after the earlier ones
    (``Concatenate()([x, y])``).  Layer names follow ``keras.applications.DenseNet121``
    (``conv2_block1_0_bn``...): ``{name}_block{l}_`` then ``0_bn``, ``0_relu``, ``1_conv`` (the
    bottleneck's 1x1 only), ``1_bn``, ``1_relu``, ``2_conv``, ``concat``, with ``l`` from 1.
    Parameters of the plain block: :math:`\\sum_l (4 + 9k)(k_0 + l\\,k)` for ``l`` = 0..L-1
    (BN's gamma, beta, moving mean and variance, and the 3x3 kernel).

    Used in: labs/05_architectures_and_cost
    """
    _check_feature_map(x)
    num_layers = _check_positive_int(num_layers, "num_layers")
    growth_rate = _check_positive_int(growth_rate, "growth_rate")
    for index in range(1, num_layers + 1):
        prefix = _name(name, f"block{index}")
        y = x
        if bottleneck:
            y = layers.BatchNormalization(epsilon=_RESNET_BN_EPSILON, name=_name(prefix, "0_bn"))(y)
            y = layers.Activation("relu", name=_name(prefix, "0_relu"))(y)
            y = layers.Conv2D(4 * growth_rate, 1, use_bias=False, name=_name(prefix, "1_conv"))(y)
        y = layers.BatchNormalization(epsilon=_RESNET_BN_EPSILON, name=_name(prefix, "1_bn"))(y)
        y = layers.Activation("relu", name=_name(prefix, "1_relu"))(y)
        y = layers.Conv2D(growth_rate, 3, padding="same", use_bias=False,
                          name=_name(prefix, "2_conv"))(y)
        x = layers.Concatenate(name=_name(prefix, "concat"))([x, y])
    return x


def bottleneck_block(x, filters, strides=1, expansion=4, name=None, use_bias=True):
    """The bottleneck block of ResNet-50/101/152: 1x1 reduce - 3x3 - 1x1 expand, plus shortcut.

    ``filters`` is the width of the 3x3 convolution; the block outputs ``expansion *
    filters`` channels.  The 1x1 convolutions cut the cost of the 3x3 one.  The shortcut is a
    1x1 convolution + BN (option B) when the stride or the channel count changes, identity
    otherwise.  As in Keras' ResNet50 (and the original Caffe model) the stride sits on the
    first 1x1 convolution; torchvision ("ResNet v1.5") puts it on the 3x3 one -- the
    parameter count is the same.  Names follow Keras: ``{name}_0_conv`` (shortcut),
    ``{name}_1_conv`` ... ``{name}_3_bn``, ``{name}_add``, ``{name}_out``.

    Used in: no lab notebook directly; ``build_resnet`` uses it
    """
    shape = _check_feature_map(x)
    filters = _check_positive_int(filters, "filters")
    strides = _check_positive_int(strides, "strides")
    expansion = _check_positive_int(expansion, "expansion")
    outputs = expansion * filters
    if strides != 1 or shape[-1] != outputs:
        shortcut = _conv_bn(x, outputs, 1, strides, _name(name, "0"), use_bias)
    else:
        shortcut = x
    y = _conv_bn(x, filters, 1, strides, _name(name, "1"), use_bias)
    y = layers.Activation("relu", name=_name(name, "1_relu"))(y)
    y = _conv_bn(y, filters, 3, 1, _name(name, "2"), use_bias)
    y = layers.Activation("relu", name=_name(name, "2_relu"))(y)
    y = _conv_bn(y, outputs, 1, 1, _name(name, "3"), use_bias)
    y = layers.Add(name=_name(name, "add"))([shortcut, y])
    return layers.Activation("relu", name=_name(name, "out"))(y)


# Table 1 of He et al.: blocks per stage (conv2_x .. conv5_x) and the block type.
_RESNET_STAGES = {
    18: ((2, 2, 2, 2), "basic"),
    34: ((3, 4, 6, 3), "basic"),
    50: ((3, 4, 6, 3), "bottleneck"),
    101: ((3, 4, 23, 3), "bottleneck"),
    152: ((3, 8, 36, 3), "bottleneck"),
}


def build_resnet(depth=50, input_shape=(224, 224, 3), num_classes=1000, include_top=True,
                 use_bias=True):
    """ResNet-18/34/50/101/152 for ImageNet (He et al. 2016, Table 1), option B shortcuts.

    Stem: 7x7/2 conv (64) - BN - ReLU - 3x3/2 max pool; then stages conv2_x .. conv5_x of
    64/128/256/512-wide basic (18, 34) or bottleneck (50, 101, 152) blocks, the first block
    of stages 3-5 with stride 2; global average pooling and a Dense softmax (``include_top``).
    Depth 50 is ``keras.applications.ResNet50(weights=None)`` layer for layer: 25,636,712
    parameters (23,587,712 without the top).

    Convention: like Keras, the convolutions keep their biases (``use_bias=True``) although
    BN follows them, and ``count_params()`` includes BN's moving statistics.  The commonly
    cited counts (torchvision: 11,689,512 / 21,797,672 / 25,557,032 / 44,549,160 /
    60,192,808) are the *trainable* parameters with ``use_bias=False``; with Keras'
    convention the totals are 0.3-0.4 % higher.

    Used in: labs/05_architectures_and_cost
    """
    depth = _check_choice(depth, tuple(_RESNET_STAGES), "depth")
    input_shape = _check_input_shape(input_shape, min_side=32, model="ResNet (stride 32)")
    num_classes = _check_positive_int(num_classes, "num_classes")
    stages, block_type = _RESNET_STAGES[depth]

    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
    x = _conv_bn(x, 64, 7, 2, "conv1", use_bias, padding="valid")
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for stage, (blocks, filters) in enumerate(zip(stages, (64, 128, 256, 512)), start=2):
        for index in range(1, blocks + 1):
            strides = 2 if index == 1 and stage > 2 else 1
            name = f"conv{stage}_block{index}"
            if block_type == "basic":
                x = residual_block(x, filters, strides, name=name, use_bias=use_bias)
            else:
                x = bottleneck_block(x, filters, strides, name=name, use_bias=use_bias)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, x, name=f"resnet{depth}")


def build_resnet_cifar(depth=20, input_shape=(32, 32, 3), num_classes=10, shortcut="A"):
    """The CIFAR-10 ResNets of He et al. (2016, section 4.2): depth = 6n + 2.

    3x3 conv (16) - BN - ReLU, then three stages of n basic blocks with 16, 32, 64 filters on
    32x32, 16x16, 8x8 maps (the first block of stages 2 and 3 has stride 2), global average
    pooling and a Dense softmax.  ``shortcut="A"`` (default, as in the paper's CIFAR runs)
    uses parameter-free zero-padding shortcuts, ``"B"`` 1x1 projections.  Convolutions have
    no bias (BN follows).  ResNet-20 with option A: 0.27 M parameters (269,722 trainable),
    ResNet-32 0.46 M, ResNet-44 0.66 M, ResNet-56 0.85 M.

    Used in: no lab notebook directly; tests/test_models.py checks the parameter counts above
    """
    if not _is_int(depth) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth must be 6n + 2 for an integer n >= 1 (20, 32, 44, 56, 110), "
                         f"got {depth!r}")
    _check_choice(shortcut, ("A", "B"), "shortcut")
    input_shape = _check_input_shape(input_shape, min_side=4, model="CIFAR ResNet")
    num_classes = _check_positive_int(num_classes, "num_classes")
    blocks = (depth - 2) // 6

    inputs = keras.Input(shape=input_shape, name="image")
    x = _conv_bn(inputs, 16, 3, 1, "conv1", use_bias=False)
    x = layers.Activation("relu", name="conv1_relu")(x)
    for stage, filters in enumerate((16, 32, 64), start=1):
        for index in range(1, blocks + 1):
            strides = 2 if index == 1 and stage > 1 else 1
            x = residual_block(x, filters, strides, projection=None if shortcut == "B" else False,
                               name=f"stage{stage}_block{index}", use_bias=False)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"resnet{depth}_cifar")


# --------------------------------------------------------------------------------------
# GoogLeNet (Szegedy et al. 2014)
# --------------------------------------------------------------------------------------

def inception_block(x, f1, f3_reduce, f3, f5_reduce, f5, pool_proj, name=None):
    """The Inception module with dimension reductions (Szegedy et al. 2014, figure 2b).

    Four parallel branches, concatenated on the channels: 1x1 conv (``f1``); 1x1 reduction
    (``f3_reduce``) then 3x3 conv (``f3``); 1x1 reduction (``f5_reduce``) then 5x5 conv
    (``f5``); 3x3/1 max pooling then 1x1 projection (``pool_proj``).  All convolutions use
    ReLU and same padding; the output has f1 + f3 + f5 + pool_proj channels.  The 1x1
    reductions are what keep the 3x3 and 5x5 convolutions affordable.  Layer names:
    ``{name}_1x1``, ``{name}_3x3_reduce``, ``{name}_3x3``, ``{name}_5x5_reduce``,
    ``{name}_5x5``, ``{name}_pool``, ``{name}_pool_proj``, and ``{name}`` for the output.

    Used in: labs/05_architectures_and_cost
    """
    _check_feature_map(x)
    widths = {"f1": f1, "f3_reduce": f3_reduce, "f3": f3, "f5_reduce": f5_reduce, "f5": f5,
              "pool_proj": pool_proj}
    for argument, value in widths.items():
        _check_positive_int(value, argument)

    def conv(tensor, filters, size, suffix):
        return layers.Conv2D(filters, size, padding="same", activation="relu",
                             name=_name(name, suffix))(tensor)

    branch1 = conv(x, f1, 1, "1x1")
    branch3 = conv(conv(x, f3_reduce, 1, "3x3_reduce"), f3, 3, "3x3")
    branch5 = conv(conv(x, f5_reduce, 1, "5x5_reduce"), f5, 5, "5x5")
    pooled = layers.MaxPooling2D(3, strides=1, padding="same", name=_name(name, "pool"))(x)
    branch_pool = conv(pooled, pool_proj, 1, "pool_proj")
    return layers.Concatenate(axis=-1, name=name)([branch1, branch3, branch5, branch_pool])


# Table 1 of Szegedy et al. 2014: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
_GOOGLENET_INCEPTIONS = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


def _googlenet_aux_head(x, num_classes, name):
    """Auxiliary classifier: 5x5/3 avg pool - 1x1 conv 128 - FC 1024 - 70 % dropout - FC."""
    x = layers.AveragePooling2D(5, strides=3, name=f"{name}_avg_pool")(x)
    x = layers.Conv2D(128, 1, activation="relu", name=f"{name}_conv")(x)
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dense(1024, activation="relu", name=f"{name}_fc")(x)
    x = layers.Dropout(0.7, name=f"{name}_dropout")(x)
    return layers.Dense(num_classes, activation="softmax", name=f"{name}_predictions")(x)


def build_googlenet(input_shape=(224, 224, 3), num_classes=1000, aux_heads=False):
    """GoogLeNet (Inception v1) from Table 1 of Szegedy et al. (2014).

    conv1 7x7/2 (64) - pool1 3x3/2 - conv2 1x1 (64) + 3x3 (192) - pool2 3x3/2 - inception
    3a, 3b - pool3 - 4a..4e - pool4 - 5a, 5b - global average pooling - dropout 40 % -
    Dense softmax.  6,998,552 parameters with biases (the paper's table sums to about 6.8 M
    weights; the lecture rounds to 6.8 M, "12x fewer than AlexNet").  The local response
    normalisations are left out.  With ``aux_heads=True`` the model has three outputs,
    ``[predictions, aux1_predictions, aux2_predictions]``, the auxiliary classifiers sitting on
    inception 4a and 4d (the paper weights their losses by 0.3 during training); the input
    must then be at least 65x65.

    Used in: labs/05_architectures_and_cost
    """
    input_shape = _check_input_shape(input_shape, min_side=65 if aux_heads else 32,
                                     model="GoogLeNet")
    num_classes = _check_positive_int(num_classes, "num_classes")
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(64, 7, strides=2, padding="same", activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    x = layers.Conv2D(64, 1, activation="relu", name="conv2_reduce")(x)
    x = layers.Conv2D(192, 3, padding="same", activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool2")(x)
    aux_outputs = []
    for key, widths in _GOOGLENET_INCEPTIONS.items():
        if key in ("4a", "5a"):
            x = layers.MaxPooling2D(3, strides=2, padding="same",
                                    name="pool3" if key == "4a" else "pool4")(x)
        x = inception_block(x, *widths, name=f"inception_{key}")
        if aux_heads and key in ("4a", "4d"):
            aux_outputs.append(_googlenet_aux_head(x, num_classes, f"aux{len(aux_outputs) + 1}"))
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(0.4, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    if aux_heads:
        return keras.Model(inputs, [outputs] + aux_outputs, name="googlenet")
    return keras.Model(inputs, outputs, name="googlenet")


# --------------------------------------------------------------------------------------
# MobileNet v1 (Howard et al. 2017)
# --------------------------------------------------------------------------------------

def depthwise_separable_block(x, filters, strides=1, alpha=1.0, name=None):
    """MobileNet's depthwise separable convolution: 3x3 depthwise - BN - ReLU6, 1x1 - BN - ReLU6.

    A 3x3 convolution from C to F channels costs 9 C F weights; the separable version costs
    9 C (one 3x3 filter per channel) + C F (the 1x1 "pointwise" mixing), 8-9x fewer for
    F >= 64.  ``alpha`` is the width multiplier (``int(filters * alpha)`` output channels);
    the stride sits on the depthwise convolution.  Names: ``{name}_dw``, ``{name}_dw_bn``,
    ``{name}_dw_relu``, ``{name}_pw``, ``{name}_pw_bn``, ``{name}_pw_relu``.

    Used in: labs/05_architectures_and_cost
    """
    _check_feature_map(x)
    filters = _check_positive_int(filters, "filters")
    strides = _check_positive_int(strides, "strides")
    if not isinstance(alpha, (int, float)) or alpha <= 0:
        raise ValueError(f"alpha (width multiplier) must be a positive number such as 0.5 or "
                         f"1.0, got {alpha!r}")
    x = layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False,
                               name=_name(name, "dw"))(x)
    x = layers.BatchNormalization(name=_name(name, "dw_bn"))(x)
    x = layers.ReLU(6.0, name=_name(name, "dw_relu"))(x)
    x = layers.Conv2D(max(1, int(filters * alpha)), 1, use_bias=False,
                      name=_name(name, "pw"))(x)
    x = layers.BatchNormalization(name=_name(name, "pw_bn"))(x)
    return layers.ReLU(6.0, name=_name(name, "pw_relu"))(x)


# Table 1 of Howard et al. 2017: (pointwise filters, stride) of the 13 separable blocks.
_MOBILENET_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1),
                     (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


def build_mobilenet(alpha=1.0, input_shape=(224, 224, 3), num_classes=1000, dropout=1e-3):
    """MobileNet v1 (Howard et al. 2017, Table 1): a 3x3/2 conv then 13 separable blocks.

    conv1 3x3/2 (32) - BN - ReLU6, then ``depthwise_separable_block``s ``block1`` ..
    ``block13`` (64, 128/2, 128, 256/2, 256, 512/2, 5x 512, 1024/2, 1024 filters), global
    average pooling, dropout and a Dense softmax.  With ``alpha=1.0``: 4,253,864 parameters,
    exactly ``keras.applications.MobileNet(weights=None)`` (Keras' head is a 1x1
    convolution on the pooled vector, the same weights as this Dense layer; Keras pads
    explicitly before strided depthwise convolutions, same shapes here with "same" padding).

    Used in: labs/05_architectures_and_cost
    """
    if not isinstance(alpha, (int, float)) or alpha <= 0:
        raise ValueError(f"alpha (width multiplier) must be a positive number such as 0.5 or "
                         f"1.0, got {alpha!r}")
    input_shape = _check_input_shape(input_shape, min_side=32, model="MobileNet (stride 32)")
    num_classes = _check_positive_int(num_classes, "num_classes")
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(max(1, int(32 * alpha)), 3, strides=2, padding="same", use_bias=False,
                      name="conv1")(inputs)
    x = layers.BatchNormalization(name="conv1_bn")(x)
    x = layers.ReLU(6.0, name="conv1_relu")(x)
    for index, (filters, strides) in enumerate(_MOBILENET_BLOCKS, start=1):
        x = depthwise_separable_block(x, filters, strides, alpha, name=f"block{index}")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"mobilenet_{alpha:0.2f}")

