"""Lab 01 "Convolutions by hand": points and hidden cases (instructor material).

Drawn cases reuse the public case builders of :mod:`cnnlab.exercises.lab01` with a seed from the
course secret (:func:`cnnlab.grading.hidden.case_seeds`); shapes stay fixed, values are drawn.
"""

from __future__ import annotations

import numpy as np

from cnnlab.exercise import Case, allclose
from cnnlab.exercises.lab01 import (
    _conv_case,
    _corr_case,
    _filter_case,
    _gradient_case,
    _gray_case,
    _keras_case,
    _multi_case,
    _ops,
    _random_layers,
)
from cnnlab.grading.hidden import Drawn

__all__ = ["POINTS", "HIDDEN"]

POINTS = {
    "01.to_grayscale": 1,
    "01.correlate2d": 3,
    "01.convolve2d": 1,
    "01.conv2d_multi": 2,
    "01.filter_shapes": 1,
    "01.keras_conv": 2,
    "01.kernel_gradient": 2,
}

_ASYMMETRIC_IMAGE = np.arange(16.0).reshape(4, 4)
_ASYMMETRIC_KERNEL = np.array([[1.0, 2.0], [0.0, 0.0]])

HIDDEN = {
    "01.to_grayscale": (
        Drawn("photo_sized_image", 2, lambda name, seed: _gray_case(name, seed, (60, 80, 3))),
        Drawn("single_pixel", 3, lambda name, seed: _gray_case(name, seed, (1, 1, 3))),
    ),
    "01.correlate2d": (
        Drawn("larger_image", 12, lambda name, seed: _corr_case(name, seed, (20, 17), (5, 5))),
        Drawn("kernel_as_large_as_image", 13,
              lambda name, seed: _corr_case(name, seed, (4, 4), (4, 4))),
        Drawn("one_by_one_kernel", 14, lambda name, seed: _corr_case(name, seed, (3, 5), (1, 1))),
        # a fixed input on purpose: an asymmetric kernel on a ramp tells correlation from
        # convolution whatever the values
        Case(
            "asymmetric_kernel_is_not_flipped",
            probe=lambda f: f(_ASYMMETRIC_IMAGE.copy(), _ASYMMETRIC_KERNEL.copy()),
            expected=lambda: _ops().correlate2d(_ASYMMETRIC_IMAGE, _ASYMMETRIC_KERNEL),
            compare=allclose(1e-6),
        ),
    ),
    "01.convolve2d": (
        Drawn("larger_image", 22, lambda name, seed: _conv_case(name, seed, (12, 9), (4, 3))),
    ),
    "01.conv2d_multi": (
        Drawn("many_channels", 33,
              lambda name, seed: _multi_case(name, seed, (9, 8, 8), (3, 3, 8, 5))),
        Drawn("one_by_one_filters", 34,
              lambda name, seed: _multi_case(name, seed, (4, 4, 6), (1, 1, 6, 2))),
    ),
    # other stacks than the lab's: input channels, depth, filters and kernel sizes drawn
    "01.filter_shapes": (
        Drawn("random_stack_1", 60, lambda name, seed: _filter_case(
            name, lambda: _random_layers(seed))),
        Drawn("random_stack_2", 61, lambda name, seed: _filter_case(
            name, lambda: _random_layers(seed))),
    ),
    "01.keras_conv": (
        Drawn("non_square_kernel", 42,
              lambda name, seed: _keras_case(name, seed, (1, 7, 9, 2), (2, 4, 2, 3))),
    ),
    "01.kernel_gradient": (
        Drawn("larger_non_square", 53,
              lambda name, seed: _gradient_case(name, seed, (12, 9), (2, 4), numeric=True)),
    ),
}
