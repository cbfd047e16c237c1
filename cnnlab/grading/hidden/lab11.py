"""Lab 11 "Beyond images": points and hidden cases (instructor material).

Drawn cases reuse the public case builders of :mod:`cnnlab.exercises.lab11` with a seed from the
course secret (:func:`cnnlab.grading.hidden.case_seeds`); shapes stay fixed, values are drawn.
"""

from __future__ import annotations

import numpy as np

from cnnlab.exercise import Case
from cnnlab.exercises.lab11 import (
    _TRUE,
    _array,
    _conv_case,
    _from_reference,
    _iou_case,
    _noisy_masks,
    _one_hot_case,
    _params_probe,
    _random_dna,
    _rf_case,
    _shapes_probe,
    _unpool_case,
    reference_one_hot_encode,
)
from cnnlab.grading.hidden import Drawn

__all__ = ["POINTS", "HIDDEN"]

POINTS = {
    "11.one_hot": 1,
    "11.receptive_field": 1,
    "11.causal_conv": 3,
    "11.build_fcn": 3,
    "11.iou": 2,
    "11.max_unpool": 2,
}

HIDDEN = {
    "11.one_hot": (
        Drawn("random_120_bases", 11,
              lambda name, seed: _one_hot_case(
                  name, _random_dna(seed, 120),
                  lambda: reference_one_hot_encode(_random_dna(seed, 120)))),
        # fixed on purpose: edge cases worked by hand (one base; one base repeated)
        _one_hot_case("single_base", "T", lambda: np.array([[0.0, 0.0, 0.0, 1.0]]),
                      hint="a single base is a (1, 4) array"),
        _one_hot_case("repeated_base", "CCCCC", lambda: np.tile([0.0, 1.0, 0.0, 0.0], (5, 1))),
    ),
    # fixed on purpose: the stacks of the papers (Yu & Koltun, WaveNet) and a one-layer edge case
    "11.receptive_field": (
        _rf_case("yu_koltun_3_dilations_1_2_4", 3, (1, 2, 4)),
        _rf_case("wavenet_block_to_512", 2, tuple(2 ** i for i in range(10))),
        _rf_case("one_layer_kernel_5_dilation_3", 5, (3,)),
    ),
    "11.causal_conv": (
        Drawn("kernel_3_dilation_2_three_channels", 3,
              lambda name, seed: _conv_case(name, seed, 20, 3, 2, 3, 2)),
        Drawn("dilation_longer_than_the_sequence", 4,
              lambda name, seed: _conv_case(name, seed, 5, 1, 2, 2, 8,
                                            hint="taps that fall before t = 0 read zeros")),
        Drawn("kernel_1_is_pointwise", 5,
              lambda name, seed: _conv_case(name, seed, 7, 4, 3, 1, 1)),
    ),
    # fixed on purpose: known input shapes and class counts; the answers are layer shapes and
    # parameter counts of the reference network, nothing is drawn
    "11.build_fcn": (
        Case("layer_output_shapes_rgb_64x64_6_classes", probe=_shapes_probe((64, 64, 3), 6),
             expected=_from_reference(_shapes_probe, (64, 64, 3), 6),
             hint="use input_shape and num_classes, do not hard-code 32x32x1 or 4"),
        Case("count_params_rgb_6_classes", probe=_params_probe((64, 64, 3), 6),
             expected=_from_reference(_params_probe, (64, 64, 3), 6)),
        Case("layer_output_shapes_not_square", probe=_shapes_probe((24, 40, 1), 2),
             expected=_from_reference(_shapes_probe, (24, 40, 1), 2)),
    ),
    "11.iou": (
        # fixed on purpose: two edge cases by hand (a perfect prediction; a class only predicted)
        _iou_case("perfect_prediction", lambda: (_TRUE, _TRUE), 3),
        _iou_case("predicted_only_class_scores_zero",
                  lambda: (np.array([0, 0, 1, 1]), np.array([0, 2, 1, 1])), 3,
                  hint="a class only in the prediction has IoU 0, not NaN"),
        Drawn("many_classes_some_absent", 2,
              lambda name, seed: _iou_case(name, lambda: _noisy_masks(seed, (3, 16, 16), 5), 8)),
    ),
    "11.max_unpool": (
        Drawn("random_9x6_pool_3", 8,
              lambda name, seed: _unpool_case(name, lambda: _array(seed, (9, 6)), 3)),
        Drawn("negative_values_zeros_elsewhere", 9,
              lambda name, seed: _unpool_case(
                  name, lambda: _array(seed, (4, 6), -5, -1), 2,
                  hint="the positions that were not a maximum hold 0, even when the values are "
                       "negative")),
        Drawn("one_window", 10,
              lambda name, seed: _unpool_case(name, lambda: _array(seed, (2, 2)), 2)),
    ),
}
