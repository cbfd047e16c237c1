"""Lab 05 "Architectures and their cost": points and hidden cases (instructor material).

Drawn cases reuse the public case builders of :mod:`cnnlab.exercises.lab05` with a seed from the
course secret (:func:`cnnlab.grading.hidden.case_seeds`).  Most of this lab's hidden cases are
fixed: their inputs are layer sizes, lecture tables and models, not random values.
"""

from __future__ import annotations

from cnnlab.exercise import Case, allclose
from cnnlab.exercises.lab05 import (
    _MEMORY_KEYS,
    _conv_dense_cases,
    _cost_case,
    _dense_cases,
    _dense_draw,
    _dict_close,
    _factor_expected,
    _factor_probe,
    _naive_cases,
    _ratio_case,
    _residual_case,
    reference_memory_budget,
)
from cnnlab.grading.hidden import Drawn

__all__ = ["POINTS", "HIDDEN"]

POINTS = {
    "05.conv_vs_dense": 2,
    "05.memory_budget": 2,
    "05.param_shares": 1,
    "05.factorization": 2,
    "05.naive_inception": 2,
    "05.residual_block": 3,
    "05.dense_block": 2,
    "05.cost_table": 1,
    "05.separable_ratio": 1,
}

# AlexNet's layer outputs (lecture table) with its weights (no biases), stored as float16.
_ALEXNET_SHAPES = [[227, 227, 3], [55, 55, 96], [27, 27, 96], [27, 27, 256], [13, 13, 256],
                   [13, 13, 384], [13, 13, 384], [13, 13, 256], [6, 6, 256], [4096], [4096],
                   [1000]]
_ALEXNET_WEIGHTS = [0, 34_848, 0, 614_400, 0, 884_736, 1_327_104, 884_736, 0, 37_748_736,
                    16_777_216, 4_096_000]

_MIXED_ROWS = [
    {"name": "image", "type": "InputLayer", "params": 0},
    {"name": "dw", "type": "DepthwiseConv2D", "params": 27},
    {"name": "dw_bn", "type": "BatchNormalization", "params": 12},
    {"name": "pw", "type": "Conv2D", "params": 96},
    {"name": "pw_bn", "type": "BatchNormalization", "params": 128},
    {"name": "pool", "type": "GlobalAveragePooling2D", "params": 0},
    {"name": "out", "type": "Dense", "params": 330},
]


def _resnet20():
    from cnnlab.models import build_resnet_cifar

    return build_resnet_cifar(20)


HIDDEN = {
    # fixed on purpose: layer configurations (a non-square input, the ResNet stem), no values
    "05.conv_vs_dense": (
        *_conv_dense_cases("non_square_input_stride_2", ((32, 48, 3), 3, 16, 2)),
        *_conv_dense_cases("resnet_stem_without_padding", ((224, 224, 3), 7, 64, 2)),
    ),
    # fixed on purpose: the lecture's AlexNet table, and a hand-made table of flat shapes
    "05.memory_budget": (
        Case(
            "alexnet_table_in_float16",
            probe=lambda f: [float(f(_ALEXNET_SHAPES, _ALEXNET_WEIGHTS, 2)[k])
                             for k in _MEMORY_KEYS],
            expected=lambda: [float(reference_memory_budget(_ALEXNET_SHAPES, _ALEXNET_WEIGHTS,
                                                            2)[k]) for k in _MEMORY_KEYS],
            compare=allclose(1e-6),
            hint="use bytes_per_value (2 for float16), do not hard-code 4",
        ),
        Case(
            "flat_shapes_of_dense_layers",
            probe=lambda f: int(f([[10], [1, 1, 7]], [70, 0])["activations"]),
            expected=lambda: 17,
            hint="a shape may have one axis (a Dense output) or three",
        ),
    ),
    # fixed on purpose: a separable block's report rows, with its hand-computed shares
    "05.param_shares": (
        Case(
            "separable_block_with_batchnorm",
            probe=lambda f: f([dict(r) for r in _MIXED_ROWS]),
            expected=lambda: {"DepthwiseConv2D": 27 / 593, "BatchNormalization": 140 / 593,
                              "Conv2D": 96 / 593, "Dense": 330 / 593},
            compare=_dict_close(1e-9),
        ),
    ),
    # fixed on purpose: the width factors the lecture's formula is checked at
    "05.factorization": (
        Case("same_width_alpha_1", probe=_factor_probe(1), expected=lambda: _factor_expected(1),
             compare=allclose(1e-6)),
        Case("alpha_4", probe=_factor_probe(4), expected=lambda: _factor_expected(4),
             compare=allclose(1e-6)),
    ),
    # fixed on purpose: a small configuration of the block, no values
    "05.naive_inception": _naive_cases("small_input", (6, 5, 8), (4, 6, 2)),
    "05.residual_block": (
        Drawn("same_output_as_reference_8_channels", 51,
              lambda name, seed: _residual_case(name, (6, 7, 8), 8, seed=seed)),
        Drawn("one_channel", 52, lambda name, seed: _residual_case(name, (4, 4, 1), 1, seed=seed)),
    ),
    # drawn: the input size, k0, the number of layers and the growth rate, and the weights
    "05.dense_block": tuple(
        Drawn(f"drawn_configuration_{key}", 55 + index,
              lambda name, seed, key=key: _dense_cases(
                  name.removesuffix(f"_{key}"), *_dense_draw(seed), seed=seed, hidden=True,
                  only=(key,))[0])
        for index, key in enumerate(("output_shape", "conv_kernels", "params", "output"))
    ),
    # fixed on purpose: a model of the course, no values
    "05.cost_table": (
        _cost_case("cifar_resnet20", (("resnet20", _resnet20),)),
    ),
    # fixed on purpose: layer configurations, no values
    "05.separable_ratio": (
        _ratio_case("5x5_16_to_8", (5, 16, 8)),
        _ratio_case("one_output_channel", (3, 7, 1)),
    ),
}
