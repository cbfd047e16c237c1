"""Lab 10 "Looking inside a ConvNet": points and hidden cases (instructor material).

Drawn cases reuse the public case builders of :mod:`cnnlab.exercises.lab10` with a seed from the
course secret (:func:`cnnlab.grading.hidden.case_seeds`): the images, weights, feature maps and
gradients are drawn, shapes, classes, patches and strides stay fixed.  The models of the hidden
Grad-CAM layer cases are written here, not in the release.
"""

from __future__ import annotations

import numpy as np

from cnnlab.exercises.lab10 import (
    _analytic_case,
    _cam_case,
    _crop_case,
    _drawn_patch_sizes,
    _fgsm_case,
    _image_and_gradient,
    _keras_occlusion_case,
    _keras_saliency_case,
    _layer_case,
    _linear_occlusion_case,
    _random_maps,
    _selection_case,
)
from cnnlab.grading.hidden import Drawn

__all__ = ["POINTS", "HIDDEN"]

POINTS = {
    "10.occlusion_loop": 3,
    "10.saliency": 3,
    "10.gradcam_layer": 2,
    "10.gradcam_weights": 2,
    "10.fgsm_step": 2,
    "10.top_patches": 2,
}


def _pool_after_conv():
    import keras
    from keras import layers

    inputs = keras.Input((24, 24, 3))
    x = layers.Conv2D(6, 3, activation="relu", name="first_conv")(inputs)
    x = layers.MaxPooling2D(2, name="first_pool")(x)
    x = layers.Conv2D(12, 3, activation="relu", name="second_conv")(x)
    x = layers.MaxPooling2D(2, name="second_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(4, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="pool_after_conv")


def _dropout_after_activation():
    import keras
    from keras import layers

    return keras.Sequential([
        keras.Input((20, 20, 1)),
        layers.Conv2D(4, 5, name="c1"), layers.Activation("relu", name="a1"),
        layers.MaxPooling2D(2, name="p1"),
        layers.Conv2D(8, 3, name="c2"), layers.Activation("relu", name="a2"),
        layers.Dropout(0.3, name="d2"),
        layers.Flatten(name="f"), layers.Dense(3, activation="softmax", name="out"),
    ], name="dropout_after_activation")


def _depthwise_last():
    import keras
    from keras import layers

    return keras.Sequential([
        keras.Input((16, 16, 3)),
        layers.Conv2D(8, 3, padding="same", name="stem"), layers.BatchNormalization(name="stem_bn"),
        layers.ReLU(6.0, name="stem_relu6"),
        layers.DepthwiseConv2D(3, strides=2, padding="same", name="dw"),
        layers.BatchNormalization(name="dw_bn"), layers.ReLU(6.0, name="dw_relu6"),
        layers.GlobalAveragePooling2D(name="pool"), layers.Dense(2, name="scores"),
    ], name="depthwise_last")


HIDDEN = {
    "10.occlusion_loop": (
        Drawn("linear_score_stride_not_dividing", 4,
              lambda name, seed: _linear_occlusion_case(name, seed, (13, 11, 2), 1, 5, 3)),
        Drawn("small_convnet_class_2_patch_3_stride_3", 5,
              lambda name, seed: _keras_occlusion_case(name, seed, (9, 9, 3), 2, 3, 3)),
        Drawn("one_pixel_squares", 6,
              lambda name, seed: _keras_occlusion_case(name, seed, (6, 6, 3), 0, 1, 1)),
    ),
    "10.saliency": (
        Drawn("sine_score_one_channel", 4,
              lambda name, seed: _analytic_case(name, seed, (6, 4, 1), "sine")),
        Drawn("linear_score_negative_weights", 5,
              lambda name, seed: _analytic_case(name, seed, (3, 7, 2), "linear")),
        Drawn("small_convnet_logit_class_0", 6,
              lambda name, seed: _keras_saliency_case(name, seed, (7, 5, 3), 0)),
    ),
    # fixed on purpose: each case is one known architecture whose answer is a layer name
    "10.gradcam_layer": (
        _layer_case("pooling_after_the_last_conv", _pool_after_conv, "second_conv"),
        _layer_case("dropout_keeps_the_shape", _dropout_after_activation, "d2"),
        _layer_case("depthwise_convolution_last", _depthwise_last, "dw_relu6",
                    hint="a DepthwiseConv2D is a convolution too"),
    ),
    "10.gradcam_weights": (
        # drawn inputs, but the answer is all zeros whatever the seed (only negative weights)
        Drawn("only_negative_evidence_gives_zeros", 2,
              lambda name, seed: _cam_case(
                  name, lambda: _random_maps(seed, (5, 5, 8), True),
                  expected=lambda: np.zeros((5, 5)),
                  hint="the ReLU keeps only the regions that raise the class score")),
        Drawn("non_square_3x5x4", 3,
              lambda name, seed: _cam_case(name, lambda: _random_maps(seed, (3, 5, 4)))),
        Drawn("one_channel", 4,
              lambda name, seed: _cam_case(name, lambda: _random_maps(seed, (6, 6, 1)))),
    ),
    "10.fgsm_step": (
        # fixed on purpose: three pixels worked by hand (255 + 3 must clip, not wrap to 2)
        _fgsm_case("uint8_image_does_not_wrap_around",
                   lambda: (np.array([[255, 0, 128]], dtype=np.uint8),
                            np.array([[1.0, -1.0, -1.0]])), 3,
                   expected=lambda: np.array([[255.0, 0.0, 125.0]]),
                   hint="convert x to float before adding: uint8 arithmetic wraps 255 + 3 to 2"),
        Drawn("half_an_intensity_level_batch", 2,
              lambda name, seed: _fgsm_case(
                  name, lambda: _image_and_gradient(seed, (2, 6, 6, 3)), 0.5)),
        Drawn("large_epsilon_clips_both_ends", 3,
              lambda name, seed: _fgsm_case(
                  name, lambda: _image_and_gradient(seed, (5, 5, 3)), 200.0)),
    ),
    # drawn: the activations, the images, their sizes, k and the receptive field's geometry
    "10.top_patches": (
        Drawn("drawn_selection", 5,
              lambda name, seed: _selection_case(name, seed, _drawn_patch_sizes(seed)[0],
                                                 hidden=True, **_drawn_patch_sizes(seed)[1])),
        Drawn("drawn_crops", 6,
              lambda name, seed: _crop_case(name, seed, _drawn_patch_sizes(seed)[0],
                                            hidden=True, **_drawn_patch_sizes(seed)[2],
                                            **_drawn_patch_sizes(seed)[1])),
        Drawn("drawn_crops_one_channel", 7,
              lambda name, seed: _crop_case(name, seed, _drawn_patch_sizes(seed)[0],
                                            hidden=True, **_drawn_patch_sizes(seed)[2],
                                            **{**_drawn_patch_sizes(seed)[1], "channels": 1})),
    ),
}
