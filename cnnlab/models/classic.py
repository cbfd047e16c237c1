"""The classic ConvNets of lectures 1-3: the MLP and the first ConvNet, LeNet-5, AlexNet, VGG.

Lecture idea: from a dense network on pixels to stacks of convolution and pooling, growing
deeper with small 3x3 kernels (VGG).  Lab 04 builds the MLP, the ConvNet and LeNet-5, Lab 05
counts AlexNet and VGG, Lab 10 looks inside the ConvNet.  Part of :mod:`cnnlab.models`,
which re-exports every name.
"""

import keras
from keras import layers

from cnnlab.layers import (
    LENET5_C3_TABLE,
    EuclideanRBF,
    PartiallyConnectedConv2D,
    Subsampling2D,
    scaled_tanh,
)
from cnnlab.models._arguments import (
    _check_choice,
    _check_feature_map,
    _check_input_shape,
    _check_positive_int,
    _is_int,
    _name,
)

__all__ = [
    "build_alexnet",
    "build_convnet",
    "build_lenet5",
    "build_mlp",
    "build_vgg",
    "vgg_block",
]


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

