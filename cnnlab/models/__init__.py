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

The builders live in one module per family, all re-exported here (``from cnnlab.models
import build_vgg`` is the way to import them):

=======================  ====================================================================
``models.classic``       MLP, ConvNet, LeNet-5, AlexNet, VGG (and ``vgg_block``)
``models.modern``        ResNet, DenseNet's block, GoogLeNet, MobileNet and their blocks
``models.efficientnet``  the EfficientNet-Lite0 architecture (weights: ``cnnlab.transfer``)
``models.factorized``    the factorised CIFAR-100 network of lecture 5
=======================  ====================================================================
"""

from cnnlab.models.classic import (
    build_alexnet,
    build_convnet,
    build_lenet5,
    build_mlp,
    build_vgg,
    vgg_block,
)
from cnnlab.models.efficientnet import build_efficientnet_lite0, lite0_block_names
from cnnlab.models.factorized import build_factorized_convnet
from cnnlab.models.modern import (
    bottleneck_block,
    build_googlenet,
    build_mobilenet,
    build_resnet,
    build_resnet_cifar,
    dense_block,
    depthwise_separable_block,
    inception_block,
    residual_block,
)


__all__ = [
    "build_alexnet",
    "build_convnet",
    "build_efficientnet_lite0",
    "lite0_block_names",
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
