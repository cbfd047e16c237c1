"""The architectures of the lectures, as Keras 3 Functional models, faithful to the papers.

From the first MLP and ConvNet of the lecture to LeNet-5, AlexNet, VGG, ResNet, GoogLeNet,
MobileNet and EfficientNet-Lite0, plus the factorised CIFAR-100 network of the fifth lecture.
Each ``build_*`` function takes ``input_shape`` (channels last) and ``num_classes`` and
returns a named ``keras.Model`` whose layer names follow the paper (``conv1``, ``pool1``,
``block3_conv2``, ``conv4_block6_out``, ``inception_4e``...), so ``model.get_layer("conv1")``
finds what the slide calls conv1.  Building never runs data; weights are freshly initialised
(no download).

The blocks (``vgg_block``, ``residual_block``, ``bottleneck_block``, ``dense_block``,
``inception_block``, ``depthwise_separable_block``) are plain functions
``(x, filters, ...) -> tensor`` that students chain themselves; the builders are made of
them.  Only ``keras.layers`` and ``keras.ops`` are used, so the models run on any Keras
backend.

Parameter counts (``model.count_params()``, which includes the BatchNormalization moving
mean and variance, as ``model.summary()`` does):

=====================  ===================================  ============================
builder                parameters                           reference
=====================  ===================================  ============================
build_mlp              203,530                              lecture 1
build_convnet          431,754                              lecture 1
build_lenet5           60,850 (C1..F6 = 60,000)             156/12/1,516/32/48,120/10,164
build_alexnet          62,378,344                           "62.3 M, 6 % in convolutions"
build_vgg A/B/C/D/E    132.9/133.0/133.6/138.4/143.7 M      paper: 133/133/134/138/144 M
build_resnet(50)       25,636,712                           keras.applications.ResNet50
build_resnet_cifar(20) 271,098 (269,722 trainable)          paper: 0.27 M
build_googlenet        6,998,552                            paper: about 6.8 M weights
build_mobilenet        4,253,864                            keras.applications.MobileNet
build_efficientnet_... 4,694,024 (3,413,024 without top)    TF EfficientNet-Lite0 weights
build_factorized_...   553,476 (549,156 without BN)         slide: "~2 M" (see docstring)
=====================  ===================================  ============================
"""

import numpy as np
import keras
from keras import layers

from cnnlab.layers import (
    LENET5_C3_TABLE,
    EuclideanRBF,
    PartiallyConnectedConv2D,
    Subsampling2D,
    ZeroPadShortcut,
    scaled_tanh,
)

__all__ = [
    "build_alexnet",
    "build_convnet",
    "build_efficientnet_lite0",
    "build_factorized_convnet",
    "build_googlenet",
    "build_lenet5",
    "build_mlp",
    "build_mobilenet",
    "build_resnet",
    "build_resnet_cifar",
    "build_vgg",
    "bottleneck_block",
    "dense_block",
    "depthwise_separable_block",
    "inception_block",
    "residual_block",
    "vgg_block",
]

# Keras' ResNet uses this BatchNormalization epsilon (inherited from the Caffe models).
_RESNET_BN_EPSILON = 1.001e-5


# --------------------------------------------------------------------------------------
# Argument checks: errors name the argument, the bad value and the fix.
# --------------------------------------------------------------------------------------

def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_positive_int(value, argument):
    if not _is_int(value) or value < 1:
        raise ValueError(f"{argument} must be a positive int, got {value!r}")
    return int(value)


def _check_input_shape(input_shape, min_side=1, model="this model", hint=""):
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise TypeError(f"input_shape must be a tuple (height, width, channels), got "
                        f"{input_shape!r}; for example input_shape=(32, 32, 3)") from None
    if len(shape) != 3 or not all(_is_int(size) and size >= 1 for size in shape):
        raise ValueError(f"input_shape must be (height, width, channels) with positive ints "
                         f"(channels last), got {input_shape!r}; for example "
                         f"input_shape=(32, 32, 3)")
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


# --------------------------------------------------------------------------------------
# Lecture 1: from the MLP to the ConvNet
# --------------------------------------------------------------------------------------

def build_mlp(input_shape=(28, 28, 1), num_classes=10):
    """The fully connected baseline of lecture 1: Flatten - Dense(256, relu) - Dense(softmax).

    Flattening destroys the spatial organisation of the image, and every pixel gets its own
    weight to every hidden unit: 28 x 28 x 256 + 256 = 200,960 weights in the first layer,
    203,530 parameters in all for MNIST.

    Used in: labs/04_mlp_to_convnet
    """
    input_shape = _check_input_shape(input_shape)
    num_classes = _check_positive_int(num_classes, "num_classes")
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Flatten(name="flatten")(inputs)
    x = layers.Dense(256, activation="relu", name="fc1")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="mlp")


def build_convnet(input_shape=(28, 28, 1), num_classes=10):
    """The small ConvNet of lecture 1: two Conv2D-MaxPool2D stages, then the same MLP head.

    Conv2D(32, 5, relu) - MaxPool2D(2, 2) - Conv2D(64, 3, relu) - MaxPool2D(2, 2) - Flatten -
    Dense(256, relu) - Dense(softmax): 431,754 parameters on MNIST, 95 % of them in the first
    Dense layer (5 x 5 x 64 x 256): local connectivity and weight sharing make the
    convolutions cheap.

    Used in: labs/10_looking_inside
    """
    input_shape = _check_input_shape(input_shape, min_side=12, model="build_convnet")
    num_classes = _check_positive_int(num_classes, "num_classes")
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(32, 5, activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D(2, strides=2, name="pool1")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, strides=2, name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(256, activation="relu", name="fc1")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="convnet")


# --------------------------------------------------------------------------------------
# LeNet-5 (LeCun et al. 1998)
# --------------------------------------------------------------------------------------

def build_lenet5(variant="classic", input_shape=(32, 32, 1), num_classes=10, output="dense"):
    """LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998), as in the paper or in modern form.

    ``variant="classic"`` follows the paper: every layer up to F6 squashes with
    ``scaled_tanh`` (1.7159 tanh(2a/3)).

    ======  ===============================================  ==========  ======
    layer   operation                                        output      params
    ======  ===============================================  ==========  ======
    c1      6 convolutions 5x5                               28x28x6     156
    s2      2x2 sum x coefficient + bias per map             14x14x6     12
    c3      16 convolutions 5x5, partial table (Table I)     10x10x16    1,516
    s4      2x2 sum x coefficient + bias per map             5x5x16      32
    c5      120 convolutions 5x5 (full)                      1x1x120     48,120
    f6      Dense(84)                                        84          10,164
    output  Dense(num_classes, softmax) or Euclidean RBF     10          850/840
    ======  ===============================================  ==========  ======

    The C3 connection table is ``cnnlab.layers.LENET5_C3_TABLE``.  The paper's output layer
    is made of Euclidean RBF units with fixed +-1 prototypes (``output="rbf"``, layer
    ``EuclideanRBF``, 84 x 10 = 840 non-trainable parameters); the default ``output="dense"``
    uses a Dense softmax layer instead (the lecture's table stops at F6).  The paper's
    uniform +-2.4/fan-in initialisation is not reproduced (Keras defaults are used).

    Totals: 60,850 parameters (classic, Dense output), 60,840 (classic, RBF output), 61,706
    (modern).

    ``variant="modern"`` keeps the layer sizes but uses what replaced these ideas: ReLU,
    2x2 max pooling (no parameters) and a fully connected C3 (2,416 parameters).

    The input must be at least 32x32 (LeCun padded the 28x28 MNIST digits to 32x32 so that
    strokes reach the centre of C5's receptive fields); pad MNIST with
    ``layers.ZeroPadding2D(2)`` or ``np.pad``.

    Used in: labs/04_mlp_to_convnet
    """
    _check_choice(variant, ("classic", "modern"), "variant")
    _check_choice(output, ("dense", "rbf"), "output")
    if output == "rbf" and variant != "classic":
        raise ValueError("output='rbf' (Euclidean RBF units) belongs to variant='classic'; "
                         "use output='dense' with variant='modern'")
    input_shape = _check_input_shape(
        input_shape, min_side=32, model="LeNet-5",
        hint="; pad 28x28 MNIST digits to 32x32 (layers.ZeroPadding2D(2)) as LeCun did")
    num_classes = _check_positive_int(num_classes, "num_classes")

    inputs = keras.Input(shape=input_shape, name="image")
    if variant == "classic":
        x = layers.Conv2D(6, 5, activation=scaled_tanh, name="c1")(inputs)
        x = Subsampling2D(2, activation=scaled_tanh, name="s2")(x)
        x = PartiallyConnectedConv2D(16, 5, LENET5_C3_TABLE, activation=scaled_tanh,
                                     name="c3")(x)
        x = Subsampling2D(2, activation=scaled_tanh, name="s4")(x)
        x = layers.Conv2D(120, 5, activation=scaled_tanh, name="c5")(x)
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(84, activation=scaled_tanh, name="f6")(x)
    else:
        x = layers.Conv2D(6, 5, activation="relu", name="c1")(inputs)
        x = layers.MaxPooling2D(2, name="s2")(x)
        x = layers.Conv2D(16, 5, activation="relu", name="c3")(x)
        x = layers.MaxPooling2D(2, name="s4")(x)
        x = layers.Conv2D(120, 5, activation="relu", name="c5")(x)
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(84, activation="relu", name="f6")(x)
    if output == "rbf":
        outputs = EuclideanRBF(num_classes, seed=0, name="output")(x)
    else:
        outputs = layers.Dense(num_classes, activation="softmax", name="output")(x)
    return keras.Model(inputs, outputs, name=f"lenet5_{variant}")


# --------------------------------------------------------------------------------------
# AlexNet (Krizhevsky, Sutskever & Hinton 2012)
# --------------------------------------------------------------------------------------

def build_alexnet(input_shape=(227, 227, 3), num_classes=1000, dropout=0.5):
    """AlexNet as in the lectures: one tower (the paper split it over two GPUs), no LRN.

    conv1 96@11x11/4 valid (55x55x96, 34,944 params) - pool1 3x3/2 (27) - conv2 256@5x5 same
    (27x27x256) - pool2 (13) - conv3 384@3x3 - conv4 384@3x3 - conv5 256@3x3 - pool3 (6x6x256)
    - fc6 4096 - dropout - fc7 4096 - dropout - fc8 softmax.  62,378,344 parameters, only 6 %
    of them in the convolutions (which take 95 % of the compute).  The overlapping 3x3/2 max
    pooling, ReLU and dropout are the paper's; the two-GPU grouping of conv2/4/5 and the
    local response normalisation are left out, as on the lecture slide.

    Used in: labs/05_architectures_and_cost
    """
    input_shape = _check_input_shape(input_shape, min_side=67, model="AlexNet")
    num_classes = _check_positive_int(num_classes, "num_classes")
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(96, 11, strides=4, activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    x = layers.Conv2D(256, 5, padding="same", activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool2")(x)
    x = layers.Conv2D(384, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.Conv2D(384, 3, padding="same", activation="relu", name="conv4")(x)
    x = layers.Conv2D(256, 3, padding="same", activation="relu", name="conv5")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool3")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(4096, activation="relu", name="fc6")(x)
    x = layers.Dropout(dropout, name="dropout6")(x)
    x = layers.Dense(4096, activation="relu", name="fc7")(x)
    x = layers.Dropout(dropout, name="dropout7")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="fc8")(x)
    return keras.Model(inputs, outputs, name="alexnet")


# --------------------------------------------------------------------------------------
# VGG (Simonyan & Zisserman 2014)
# --------------------------------------------------------------------------------------

# Table 1 of the paper: the kernel size of each convolution, block by block.  The widths are
# 64, 128, 256, 512, 512 in every configuration; C's third conv of blocks 3-5 is 1x1.
_VGG_FILTERS = (64, 128, 256, 512, 512)
_VGG_KERNELS = {
    "A": ((3,), (3,), (3, 3), (3, 3), (3, 3)),
    "B": ((3, 3), (3, 3), (3, 3), (3, 3), (3, 3)),
    "C": ((3, 3), (3, 3), (3, 3, 1), (3, 3, 1), (3, 3, 1)),
    "D": ((3, 3), (3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3)),
    "E": ((3, 3), (3, 3), (3, 3, 3, 3), (3, 3, 3, 3), (3, 3, 3, 3)),
}
_VGG_NAMES = {"A": "vgg11", "B": "vgg13", "C": "vgg16_c", "D": "vgg16", "E": "vgg19"}


def vgg_block(x, filters, num_convs, name=None, kernel_size=3):
    """A VGG block: ``num_convs`` convolutions (stride 1, same padding, ReLU), then 2x2 max pool.

    Two stacked 3x3 convolutions see a 5x5 window with 18 K^2 weights instead of 25 K^2, and
    three see 7x7 with 27 K^2 instead of 49 K^2, with more non-linearities in between.
    ``kernel_size`` may be one int or one per convolution (VGG-C ends blocks 3-5 with 1x1).
    Layers are named ``{name}_conv1`` ... ``{name}_pool`` (Keras' VGG16 names).

    Used in: no lab notebook directly; ``build_vgg`` uses it
    """
    _check_feature_map(x)
    filters = _check_positive_int(filters, "filters")
    num_convs = _check_positive_int(num_convs, "num_convs")
    kernel_sizes = [kernel_size] * num_convs if _is_int(kernel_size) else list(kernel_size)
    if len(kernel_sizes) != num_convs:
        raise ValueError(f"kernel_size={kernel_size!r} gives {len(kernel_sizes)} sizes for "
                         f"num_convs={num_convs} convolutions; give one int or one per conv")
    for index, size in enumerate(kernel_sizes, start=1):
        x = layers.Conv2D(filters, size, padding="same", activation="relu",
                          name=_name(name, f"conv{index}"))(x)
    return layers.MaxPooling2D(2, strides=2, name=_name(name, "pool"))(x)


def build_vgg(config="D", input_shape=(224, 224, 3), num_classes=1000, dropout=0.5):
    """VGG configurations A-E of Simonyan & Zisserman (2014), Table 1.

    Five ``vgg_block``s of 64-128-256-512-512 filters with 1/2/2/2/2 (A), 2/2/2/2/2 (B),
    2/2/3/3/3 (C, with 1x1 third convolutions; D, all 3x3) or 2/2/4/4/4 (E) convolutions,
    then fc1 4096 - dropout - fc2 4096 - dropout - predictions (softmax).  Parameters:
    A 132.9 M, B 133.0 M, C 133.6 M, D 138.4 M, E 143.7 M (the paper's 133/133/134/138/144),
    about 90 % of them in the fully connected layers.  D is ``keras.applications.VGG16`` and E
    is ``VGG19`` layer for layer (same names and shapes; Keras leaves the dropout out: use
    ``dropout=0`` for an identical layer list).  The A-LRN variant is not built.

    Used in: labs/05_architectures_and_cost
    """
    _check_choice(config, tuple(_VGG_KERNELS), "config")
    input_shape = _check_input_shape(input_shape, min_side=32, model="VGG (5 poolings)")
    num_classes = _check_positive_int(num_classes, "num_classes")
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for index, (filters, kernels) in enumerate(zip(_VGG_FILTERS, _VGG_KERNELS[config]), 1):
        x = vgg_block(x, filters, len(kernels), name=f"block{index}", kernel_size=kernels)
    x = layers.Flatten(name="flatten")(x)
    for index in (1, 2):
        x = layers.Dense(4096, activation="relu", name=f"fc{index}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"fc{index}_dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=_VGG_NAMES[config])


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


# --------------------------------------------------------------------------------------
# EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variant of the TensorFlow TPU repository)
# --------------------------------------------------------------------------------------

# Stages of EfficientNet-B0/Lite0: (expand ratio, kernel, stride, output channels, repeats).
_LITE0_STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                 (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
# TensorFlow's EfficientNet BatchNormalization epsilon (PyTorch's default 1e-5 gives other
# probabilities with the same weights).
_LITE0_BN_EPSILON = 1e-3


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
                             classifier_activation="softmax"):
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

    Layer names follow ``keras.applications.EfficientNetB0``, so every layer's name starts
    with its block: ``stem_`` (``stem_conv``, ``stem_bn``, ``stem_activation``), then
    ``block1a_`` for stage 1, ``block2a_``, ``block2b_`` for stage 2 ... ``block7a_`` (stage
    digit, then a letter per repeat; ``block2a_expand_conv``, ``block2a_dwconv``,
    ``block2a_project_bn``, ``block2b_add``...), then ``top_`` (``top_conv``, ``top_bn``,
    ``top_activation``, ``top_dropout``), ``avg_pool``/``max_pool`` and ``predictions``.

    Used in: labs/08_pretrained_convnets
    """
    return _efficientnet_lite0_graph(input_shape, num_classes, include_top, pooling, dropout,
                                     name, classifier_activation, "glorot_uniform")


def _efficientnet_lite0_graph(input_shape, num_classes, include_top, pooling, dropout, name,
                              classifier_activation, kernel_initializer):
    """``build_efficientnet_lite0`` with a choice of kernel initializer.

    ``cnnlab.pretrained`` builds with ``"zeros"`` because the weights are overwritten at once:
    under JAX each random initializer compiles one XLA program per kernel shape (about 45
    here, about 20 s on a 2-core CPU); zeros cost almost nothing.
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
    for stage, (expand, kernel, strides, filters, repeats) in enumerate(_LITE0_STAGES, 1):
        for repeat in range(repeats):
            x = _mbconv_block(x, filters, kernel, strides if repeat == 0 else 1, expand,
                              name=f"block{stage}{chr(ord('a') + repeat)}",
                              kernel_initializer=kernel_initializer)
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
