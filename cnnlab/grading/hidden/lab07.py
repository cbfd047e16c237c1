"""Lab 07 "Training ConvNets well": points and hidden cases (instructor material).

Drawn cases reuse the public case builders of :mod:`cnnlab.exercises.lab07` with a seed from the
course secret (:func:`cnnlab.grading.hidden.case_seeds`); shapes, epsilons, momenta and
smoothing factors stay fixed, the batches, BN weights and predictions are drawn.
"""

from __future__ import annotations

from cnnlab.exercises.lab07 import (
    _BN_HINT,
    _INFER_HINT,
    _MOVING_HINT,
    _SMOOTH_HINT,
    _TRAIN_HINT,
    _bn_case,
    _lr_case,
    _moving_case,
    _params_case,
    _smoothing_case,
)
from cnnlab.grading.hidden import Drawn

__all__ = ["POINTS", "HIDDEN"]

POINTS = {
    "07.factorized_params": 2,
    "07.batchnorm_forward": 3,
    "07.moving_average_update": 2,
    "07.label_smoothing": 2,
    "07.lr_schedule": 1,
}

HIDDEN = {
    # fixed on purpose: the input channels and classes of MNIST and CIFAR-10 are facts, and each
    # configuration builds a Keras model (one per configuration, cached)
    "07.factorized_params": (
        _params_case("mnist_without_batchnorm", 1, 10, False,
                     "use input_channels for the first convolution and num_classes for the "
                     "Linear layer"),
        _params_case("mnist_with_batchnorm", 1, 10, True, _BN_HINT),
        _params_case("cifar10_with_batchnorm", 3, 10, True, _BN_HINT),
    ),
    "07.batchnorm_forward": (
        Drawn("training_mode_dense_features", 4,
              lambda name, seed: _bn_case(name, seed, (32, 7), True, 1e-3, _TRAIN_HINT)),
        Drawn("inference_mode_dense_features", 5,
              lambda name, seed: _bn_case(name, seed, (32, 7), False, 1e-3, _INFER_HINT)),
        Drawn("training_mode_batch_of_two_epsilon_1e-5", 6,
              lambda name, seed: _bn_case(name, seed, (2, 3, 3, 4), True, 1e-5, _TRAIN_HINT)),
        Drawn("training_mode_small_variance", 7,
              lambda name, seed: _bn_case(name, seed, (10, 6), True, 1e-3, _TRAIN_HINT,
                                          small_variance=True)),
    ),
    "07.moving_average_update": (
        Drawn("three_steps_in_a_row", 13,
              lambda name, seed: _moving_case(name, seed, (8, 3, 3, 2), 0.9, steps=3,
                                              hint=_MOVING_HINT)),
        Drawn("momentum_0_copies_the_batch", 14,
              lambda name, seed: _moving_case(name, seed, (20, 6), 0.0, hint=_MOVING_HINT)),
        Drawn("one_step_batch_of_two", 15,
              lambda name, seed: _moving_case(name, seed, (2, 4), 0.5, hint=_MOVING_HINT)),
    ),
    "07.label_smoothing": (
        Drawn("smoothing_0.3_three_classes", 23,
              lambda name, seed: _smoothing_case(name, seed, 5, 3, 0.3, _SMOOTH_HINT)),
        Drawn("full_smoothing_uniform_targets", 24,
              lambda name, seed: _smoothing_case(name, seed, 4, 5, 1.0, _SMOOTH_HINT)),
        Drawn("one_sample_hundred_classes", 25,
              lambda name, seed: _smoothing_case(name, seed, 1, 100, 0.1, _SMOOTH_HINT)),
    ),
    # fixed on purpose: hand-picked epochs at and past the halving boundaries of a step
    # schedule (the schedule is the formula; the epochs are the test)
    "07.lr_schedule": (
        _lr_case("halve_every_epoch", list(range(6)), {"initial_lr": 1.0, "halve_every": 1},
                 ""),
        _lr_case("long_run", [199, 200, 500, 1000], {}, ""),
        _lr_case("epoch_zero_is_the_initial_rate", [0], {"initial_lr": 0.05, "halve_every": 7},
                 ""),
    ),
}
