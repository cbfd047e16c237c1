"""Lab 09 "Transfer learning and fine-tuning on GPU": points and hidden cases (instructor
material).

Drawn cases reuse the public case builders of :mod:`cnnlab.exercises.lab09` with a seed from the
course secret (:func:`cnnlab.grading.hidden.case_seeds`); shapes stay fixed, values are drawn,
except for the two-phase fine-tune, whose drawn cases also draw the tiny model's size, its block
count, the blocks fine-tuned and the rate.  The other hidden cases are configurations (model
sizes, frozen blocks) whose answers are counts or by-hand values, not drawn numbers.
"""

from __future__ import annotations

import numpy as np

from cnnlab.exercises.lab09 import (
    _RESCALED_HINT,
    _float_batch,
    _freeze_case,
    _linear_case,
    _raises_case,
    _two_phase_case,
    _values_case,
    _worst_case,
    _worst_inputs,
)
from cnnlab.grading.hidden import Drawn

__all__ = ["POINTS", "HIDDEN"]

POINTS = {
    "09.preprocess_contract": 2,
    "09.linear_probe": 2,
    "09.freeze_to_count": 3,
    "09.two_phase_fine_tune": 3,
    "09.worst_predictions": 2,
}


def _drawn_two_phase(name, seed):
    """A tiny model of 3 to 5 blocks, the last 1 to all-but-one of them fine-tuned, a head rate,
    an image side and a class count, all drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    num_blocks = int(rng.integers(3, 6))
    return _two_phase_case(name, num_blocks, int(rng.integers(1, num_blocks)),
                           float(rng.choice([3e-3, 1e-2, 3e-2, 1e-1])),
                           side=int(rng.choice([8, 12])), num_classes=int(rng.integers(2, 6)),
                           samples=int(rng.choice([24, 40])), seed=int(seed))


def _binary_as_lists(seed):
    probabilities, labels = _worst_inputs(seed, 30, 2)
    return probabilities.tolist(), labels.tolist()


HIDDEN = {
    "09.preprocess_contract": (
        Drawn("random_float_batch", 3,
              lambda name, seed: _values_case(name, lambda: _float_batch(seed, (3, 16, 16, 3)))),
        Drawn("one_image_without_batch_axis", 4,
              lambda name, seed: _values_case(name, lambda: _float_batch(seed, (8, 8, 3)))),
        Drawn("an_already_preprocessed_batch_raises", 5,
              lambda name, seed: _raises_case(
                  name, lambda: (_float_batch(seed, (2, 8, 8, 3)) - 127.0) / 128.0,
                  "values below 0 mean the batch was preprocessed already", names_fix=False)),
        # fixed on purpose: a uint8 mask of 0s and 1s is one specific input, not drawn values
        _raises_case("a_rescaled_uint8_mask_raises",
                     lambda: (np.arange(2 * 4 * 4 * 3).reshape(2, 4, 4, 3) % 2).astype(np.uint8),
                     _RESCALED_HINT, names_fix=False),
        Drawn("a_channels_first_batch_raises", 6,
              lambda name, seed: _raises_case(name, lambda: _float_batch(seed, (2, 3, 8, 8)),
                                              "channels last: (n, h, w, 3)", names_fix=False)),
    ),
    # fixed on purpose: each case is a model size named by the case (2048 = ResNet-50's
    # features); the answers are parameter counts and layer shapes, nothing is drawn
    "09.linear_probe": (
        _linear_case("parameters_2048_features_2_classes", 2048, 2, "params"),
        _linear_case("one_dense_layer_64_features_10_classes", 64, 10, "layers"),
        _linear_case("softmax_of_affine_2048_features_5_classes", 2048, 5, "softmax"),
    ),
    # fixed on purpose: known block configurations whose answers are counted by hand
    "09.freeze_to_count": (
        _freeze_case("six_blocks_keep_the_last_one", 6, 1),
        _freeze_case("three_blocks_keep_the_last_two_grayscale", 3, 2, input_channels=1),
        _freeze_case("five_blocks_keep_three_ten_classes", 5, 3, num_classes=10),
    ),
    "09.two_phase_fine_tune": (
        Drawn("drawn_blocks_rate_and_size", 7, lambda name, seed: _drawn_two_phase(name, seed)),
        Drawn("drawn_again", 8, lambda name, seed: _drawn_two_phase(name, seed)),
        # fixed on purpose: every block unfrozen, BatchNorm still frozen (a configuration)
        _two_phase_case("every_block_fine_tuned_batchnorm_still_frozen", 3, 3, 3e-3,
                        num_classes=2),
    ),
    "09.worst_predictions": (
        Drawn("random_ten_classes_k_1", 1,
              lambda name, seed: _worst_case(name, lambda: _worst_inputs(seed, 100, 10), 1)),
        Drawn("k_larger_than_the_set", 2,
              lambda name, seed: _worst_case(name, lambda: _worst_inputs(seed, 6, 2), 10)),
        Drawn("binary_labels_as_list", 3,
              lambda name, seed: _worst_case(name, lambda: _binary_as_lists(seed), 5)),
    ),
}
