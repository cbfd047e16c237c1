"""Lab 03 "Pooling, strides and invariance": points and hidden cases (instructor material).

Drawn cases reuse the public case builders of :mod:`cnnlab.exercises.lab03` with a seed from the
course secret (:func:`cnnlab.grading.hidden.case_seeds`); shapes stay fixed, values are drawn.
"""

from __future__ import annotations

from cnnlab.exercises.lab03 import (
    _backward_case,
    _costs_case,
    _equivalence_case,
    _gap_case,
    _kernel_case,
    _pool_case,
    _pooled_case,
    _random_downsampling,
    _random_pool_questions,
    _shift_case,
)
from cnnlab.grading.hidden import Drawn

__all__ = ["POINTS", "HIDDEN"]

POINTS = {
    "03.max_pool2d": 2,
    "03.max_pool2d_backward": 2,
    "03.pooled_sizes": 1,
    "03.shift_response": 2,
    "03.downsampling_costs": 2,
    "03.avg_pool_kernel": 2,
    "03.global_average_pool": 1,
}

HIDDEN = {
    "03.max_pool2d": (
        Drawn("leftover_rows_and_columns_are_dropped", 32,
              lambda name, seed: _pool_case(name, seed, (7, 9), 3)),
        Drawn("size_1_is_the_identity", 33, lambda name, seed: _pool_case(name, seed, (3, 5), 1)),
        Drawn("non_square_map", 34, lambda name, seed: _pool_case(name, seed, (8, 6), 2)),
        Drawn("larger_map_size_4", 35, lambda name, seed: _pool_case(name, seed, (20, 17), 4)),
    ),
    "03.max_pool2d_backward": (
        Drawn("leftover_rows_and_columns_get_no_gradient", 72,
              lambda name, seed: _backward_case(name, seed, (7, 9), 3)),
        Drawn("ties_in_non_overlapping_windows", 73,
              lambda name, seed: _backward_case(name, seed, (9, 6), 3, ties=True)),
        Drawn("alexnet_overlapping_3x3_stride_2", 74,
              lambda name, seed: _backward_case(name, seed, (13, 11), 3, strides=2)),
        Drawn("ties_in_overlapping_2x2_stride_1", 75,
              lambda name, seed: _backward_case(name, seed, (8, 8), 2, strides=1, ties=True)),
    ),
    # other input sizes, windows, strides and paddings than the lab's five questions
    "03.pooled_sizes": (
        Drawn("forty_random_questions", 36,
              lambda name, seed: _pooled_case(name, lambda: _random_pool_questions(seed, 40))),
        Drawn("forty_more_random_questions", 37,
              lambda name, seed: _pooled_case(name, lambda: _random_pool_questions(seed, 40))),
    ),
    "03.shift_response": (
        Drawn("pool_2_shift_3", 43, lambda name, seed: _shift_case(name, seed, (18, 30), 3, 2)),
        Drawn("random_5x5_kernel", 44,
              lambda name, seed: _shift_case(name, seed, (21, 26), 2, 3, kernel=(5, 5))),
        Drawn("shift_equal_to_pool_size", 45,
              lambda name, seed: _shift_case(name, seed, (16, 24), 4, 4)),
    ),
    # other inputs, filters and kernel sizes than the lab's 32x32x16 and 32 filters 3x3
    "03.downsampling_costs": (
        Drawn("random_layer_1", 46,
              lambda name, seed: _costs_case(name, lambda: _random_downsampling(seed))),
        Drawn("random_layer_2", 47,
              lambda name, seed: _costs_case(name, lambda: _random_downsampling(seed))),
    ),
    "03.avg_pool_kernel": (
        # fixed on purpose: the kernel depends on k and the channels only, nothing to draw
        _kernel_case("k3_four_channels", 3, 4),
        Drawn("k3_on_a_9x12_map", 51,
              lambda name, seed: _equivalence_case(name, seed, (9, 12, 2), 3)),
    ),
    "03.global_average_pool": (
        Drawn("vgg_sized_7x7x512", 61, lambda name, seed: _gap_case(name, seed, (1, 7, 7, 512))),
        Drawn("non_square_maps", 62, lambda name, seed: _gap_case(name, seed, (3, 4, 6, 2))),
    ),
}
