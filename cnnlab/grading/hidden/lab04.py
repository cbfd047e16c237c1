"""Lab 04 "From MLP to ConvNet on MNIST": points and hidden cases (instructor material).

Drawn cases reuse the public case builders of :mod:`cnnlab.exercises.lab04` with a seed from the
course secret (:func:`cnnlab.grading.hidden.case_seeds`); sizes stay fixed, values are drawn.
"""

from __future__ import annotations

import numpy as np

from cnnlab.exercise import Case
from cnnlab.exercises.lab04 import (
    _build_expected,
    _build_probe,
    _confusion_case,
    _dense_case,
    _labels,
    _lenet_case,
    _lenet_table,
    _param_counts_case,
    _params_expected,
    _params_probe,
    _partial_case,
    _random_input,
    _random_lenet5,
    _random_table,
)
from cnnlab.grading.hidden import Drawn

__all__ = ["POINTS", "HIDDEN"]

POINTS = {
    "04.dense_params": 1,
    "04.param_counts": 2,
    "04.build_my_convnet": 3,
    "04.partial_conv_params": 2,
    "04.lenet_params": 2,
    "04.confusion_matrix": 2,
}

HIDDEN = {
    "04.dense_params": (
        # fixed on purpose: the layer sizes of the lecture's networks (the ConvNet's fc1,
        # LeNet-5's output layer on F6, a VGG-style Dense(4096) on a raw ImageNet image)
        _dense_case("convnet_head_5x5x64_dense_256", (5, 5, 64), 256),
        _dense_case("flat_vector_input", (84,), 10),
        _dense_case("imagenet_224x224x3_dense_4096", (224, 224, 3), 4096),
    ),
    # other input shapes and class counts than MNIST's 28x28x1 and 10
    "04.param_counts": (
        Drawn("random_input_1", 11,
              lambda name, seed: _param_counts_case(name, lambda: _random_input(seed))),
        Drawn("random_input_2", 12,
              lambda name, seed: _param_counts_case(name, lambda: _random_input(seed))),
    ),
    "04.build_my_convnet": (
        # fixed on purpose: other input shapes and class counts than MNIST's, nothing to draw
        Case("layer_output_shapes_rgb_32x32", probe=_build_probe((32, 32, 3), 10),
             expected=_build_expected((32, 32, 3), 10),
             hint="use input_shape and num_classes, do not hard-code 28x28x1 or 10"),
        Case("count_params_rgb_32x32", probe=_params_probe((32, 32, 3), 10),
             expected=_params_expected((32, 32, 3), 10)),
        Case("count_params_26_classes", probe=_params_probe((28, 28, 1), 26),
             expected=_params_expected((28, 28, 1), 26),
             hint="the output layer has num_classes units"),
    ),
    "04.partial_conv_params": (
        Drawn("random_table_6_to_10", 7,
              lambda name, seed: _partial_case(name, _random_table(seed, 6, 10), 5)),
        Drawn("random_table_8_to_3_kernel_3", 8,
              lambda name, seed: _partial_case(name, _random_table(seed, 8, 3), 3)),
        # fixed on purpose: the lecture's LeNet-5 C3 connection table
        _partial_case("lenet5_c3_with_3x3_kernels", _lenet_table, 3),
    ),
    # other LeNet-5s than the lecture's: map counts and C3's connection table drawn
    "04.lenet_params": (
        Drawn("random_lenet5_1", 13,
              lambda name, seed: _lenet_case(name, lambda: _random_lenet5(seed))),
        Drawn("random_lenet5_2", 14,
              lambda name, seed: _lenet_case(name, lambda: _random_lenet5(seed))),
    ),
    "04.confusion_matrix": (
        # fixed on purpose: plain Python lists as input, whatever the values
        _confusion_case("labels_as_lists", lambda: ([2, 0, 1], [2, 1, 1]), 3),
        Drawn("more_classes_than_seen", 2,
              lambda name, seed: _confusion_case(name, lambda: _labels(seed, 30, 3), 6)),
        # fixed on purpose: every prediction right gives the diagonal matrix
        _confusion_case("perfect_predictions", lambda: (np.arange(5), np.arange(5)), 5),
        Drawn("many_samples", 3,
              lambda name, seed: _confusion_case(
                  name, lambda: _labels(seed, 5000, 10, accuracy=0.95), 10)),
    ),
}
