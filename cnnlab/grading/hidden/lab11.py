"""Lab 11 "Beyond images": points and hidden cases (instructor material).

Drawn cases reuse the public case builders of :mod:`cnnlab.exercises.lab11` with a seed from the
course secret (:func:`cnnlab.grading.hidden.case_seeds`); shapes stay fixed, values are drawn.
"""

from __future__ import annotations

import numpy as np

from cnnlab.exercises.lab11 import (
    _TRUE,
    _array,
    _conv_case,
    _drawn_shape,
    _iou_case,
    _mutation_case,
    _mutation_setup,
    _noisy_masks,
    _nms_case,
    _random_boxes,
    _structure_case,
    _unpool_case,
)
from cnnlab.grading.hidden import Drawn

__all__ = ["POINTS", "HIDDEN"]

POINTS = {
    "11.mutation_map": 2,
    "11.causal_conv": 3,
    "11.build_fcn": 3,
    "11.iou": 2,
    "11.max_unpool": 2,
    "11.nms": 2,
}

HIDDEN = {
    "11.mutation_map": (
        Drawn("scanner_length_40_six_filters", 17,
              lambda name, seed: _mutation_case(name, lambda: _mutation_setup(seed, 40, 6, 8))),
        Drawn("position_specific_flatten_head", 18,
              lambda name, seed: _mutation_case(
                  name, lambda: _mutation_setup(seed, 12, 2, 3, head="flatten"),
                  hint="score every mutant with the model itself: a model may weigh each "
                       "position differently")),
        Drawn("sigmoid_output_is_the_score", 19,
              lambda name, seed: _mutation_case(
                  name, lambda: _mutation_setup(seed, 15, 4, 5, sigmoid=True),
                  hint="the score is the model's output as it is (here after its sigmoid)")),
        Drawn("one_window_sequence_as_long_as_the_filter", 20,
              lambda name, seed: _mutation_case(name, lambda: _mutation_setup(seed, 6, 2, 6))),
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
    "11.build_fcn": (
        Drawn("drawn_input_size_and_classes", 21,
              lambda name, seed: _structure_case(name, *_drawn_shape(seed),
                                                 hint="use input_shape and num_classes, do not "
                                                      "hard-code 32x32x1 or 4")),
        Drawn("another_drawn_input_size", 22,
              lambda name, seed: _structure_case(name, *_drawn_shape(seed))),
        # fixed on purpose: a known RGB size and class count
        _structure_case("rgb_64x64_6_classes", (64, 64, 3), 6),
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
    "11.nms": (
        Drawn("thirty_random_boxes_threshold_0_5", 13,
              lambda name, seed: _nms_case(name, lambda: _random_boxes(seed, 30), 0.5)),
        Drawn("crowded_boxes_threshold_0_7", 14,
              lambda name, seed: _nms_case(name, lambda: _random_boxes(seed, 60, size=60.0), 0.7)),
        Drawn("identical_boxes_keep_only_the_best", 15,
              lambda name, seed: _nms_case(name, lambda: _identical_boxes(seed, 8), 0.5,
                                           hint="identical boxes have IoU 1: only the best is "
                                                "kept")),
        Drawn("disjoint_boxes_all_kept_in_score_order", 16,
              lambda name, seed: _nms_case(name, lambda: _disjoint_boxes(seed, 12), 0.1,
                                           hint="boxes that do not overlap (IoU 0) are all kept, "
                                                "highest score first")),
        # fixed on purpose: worked by hand, the rule at the threshold itself (IoU 0.5 = 2 / 4 is
        # kept at 0.5, suppressed at 0.49) and equal scores (the lower index first)
        _nms_case("iou_equal_to_the_threshold_is_kept", lambda: (_HALF_BOXES, _HALF_SCORES), 0.5,
                  expected=lambda: [0, 1],
                  hint="suppress when IoU > iou_threshold, not >="),
        _nms_case("iou_just_above_the_threshold_is_suppressed",
                  lambda: (_HALF_BOXES, _HALF_SCORES), 0.49, expected=lambda: [0]),
        _nms_case("equal_scores_lower_index_first", lambda: (_TIED_BOXES, _TIED_SCORES), 0.5,
                  expected=lambda: [0, 1],
                  hint="equal scores: the lower index comes first (a stable sort)"),
    ),
}


# Box 1 covers half of box 0: IoU = 2 / 4 = 0.5 exactly (powers of two: no rounding).
_HALF_BOXES = np.array([[0, 0, 2, 2], [0, 0, 2, 1]], dtype=float)
_HALF_SCORES = np.array([0.9, 0.8])
# Three equal scores: box 2 is box 0 again, box 1 is elsewhere.
_TIED_BOXES = np.array([[0, 0, 1, 1], [5, 5, 6, 6], [0, 0, 1, 1]], dtype=float)
_TIED_SCORES = np.array([0.5, 0.5, 0.5])


def _identical_boxes(seed, n):
    boxes, scores = _random_boxes(seed, 1)
    return np.repeat(boxes, n, axis=0), np.random.default_rng(seed + 1).uniform(size=n)


def _disjoint_boxes(seed, n):
    """n boxes in separate cells of a grid (random sizes inside their cell), random scores."""
    rng = np.random.default_rng(seed)
    cells = rng.permutation(16)[:n]
    corners = np.stack([cells // 4 * 10.0, cells % 4 * 10.0], axis=1) + rng.uniform(0, 2, (n, 2))
    sides = rng.uniform(3, 8, size=(n, 2))
    return np.concatenate([corners, corners + sides], axis=1), rng.uniform(size=n)
