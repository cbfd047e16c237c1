"""Lab 02 "Convolution arithmetic": points and hidden cases (instructor material).

Drawn cases reuse the public case builders of :mod:`cnnlab.exercises.lab02` with a seed from the
course secret (:func:`cnnlab.grading.hidden.case_seeds`); shapes stay fixed, values are drawn.
"""

from __future__ import annotations

from cnnlab.exercises.lab02 import (
    _drawn_erf_case,
    _erf_case,
    _field_case,
    _matrix_case,
    _numeric_case,
    _params_case,
    _random_network,
    _random_stacks,
    _shapes_case,
    _size_configs,
    _sizes_case,
    _transpose_case,
)
from cnnlab.grading.hidden import Drawn

__all__ = ["POINTS", "HIDDEN"]

POINTS = {
    "02.conv_output_size": 2,
    "02.predict_shapes": 2,
    "02.count_params": 2,
    "02.receptive_field": 2,
    "02.effective_receptive_field": 2,
    "02.conv_matrix": 3,
    "02.conv_transpose": 2,
    "02.numeric_gradient": 2,
}

HIDDEN = {
    "02.conv_output_size": (
        # fixed on purpose: the lecture's AlexNet conv1 (227, 11x11, stride 4) gives 55
        _sizes_case("alexnet_conv1", [(227, 11, 4, 0)]),
        # fixed on purpose: the 1x1-kernel edge case, with and without a stride
        _sizes_case("one_by_one_kernel", [(56, 1, 1, 0), (13, 1, 2, 0)]),
        Drawn("two_hundred_random_configurations", 2024,
              lambda name, seed: _sizes_case(name, _size_configs(seed, 200))),
    ),
    # other networks than the lab's (its input, depths, kernels, strides, padding, dilation)
    "02.predict_shapes": (
        Drawn("random_network_1", 21,
              lambda name, seed: _shapes_case(name, lambda: _random_network(seed))),
        Drawn("random_network_2", 22,
              lambda name, seed: _shapes_case(name, lambda: _random_network(seed))),
    ),
    "02.count_params": (
        Drawn("random_network_1", 31,
              lambda name, seed: _params_case(name, lambda: _random_network(seed))),
        Drawn("random_network_2", 32,
              lambda name, seed: _params_case(name, lambda: _random_network(seed))),
    ),
    "02.receptive_field": (
        # fixed on purpose: the edge cases of one layer and of a stack of 1x1 kernels
        _field_case("single_layer_and_1x1", [([7], None, None), ([1, 1, 1], None, None)]),
        # fixed on purpose: the lecture's VGG block, its pooling as a 2x2 stride-2 layer
        _field_case("vgg_block_with_pooling_as_2x2_stride_2",
                    [([3, 3, 2, 3, 3, 2], [1, 1, 2, 1, 1, 2], None)]),
        Drawn("thirty_random_stacks", 7,
              lambda name, seed: _field_case(name, _random_stacks(seed, 30))),
    ),
    "02.effective_receptive_field": (
        # fixed on purpose: uniform 3x3 kernels with dilation 1 then 2, a 7x7 field with holes
        _erf_case("uniform_dilated_pair_leaves_gaps", [(3, 1, 1), (3, 2, 1)], (11, 11, 1),
                  uniform=True),
        Drawn("random_stack_a", 82, _drawn_erf_case),
        Drawn("random_stack_b", 83, _drawn_erf_case),
        Drawn("random_stack_c", 84, _drawn_erf_case),
    ),
    "02.conv_matrix": (
        Drawn("non_square_kernel", 2, lambda name, seed: _matrix_case(name, (5, 4), (2, 3), seed)),
        Drawn("one_by_one_kernel", 3, lambda name, seed: _matrix_case(name, (3, 3), (1, 1), seed)),
        Drawn("kernel_as_large_as_the_input", 4,
              lambda name, seed: _matrix_case(name, (3, 4), (3, 4), seed)),
        Drawn("larger_input", 5, lambda name, seed: _matrix_case(name, (7, 6), (3, 3), seed)),
    ),
    "02.conv_transpose": (
        Drawn("larger_input", 12, lambda name, seed: _transpose_case(name, (8, 7), (3, 3), seed)),
        Drawn("one_by_one_kernel", 13,
              lambda name, seed: _transpose_case(name, (3, 3), (1, 1), seed)),
    ),
    "02.numeric_gradient": (
        Drawn("non_square_weight_gradient", 63,
              lambda name, seed: _numeric_case(name, seed, (7, 5), (2, 3), "w")),
    ),
}
