"""Lab 08 "Pretrained ConvNets": points and hidden cases (instructor material).

Drawn cases reuse the public case builders of :mod:`cnnlab.exercises.lab08` with a seed from the
course secret (:func:`cnnlab.grading.hidden.case_seeds`); shapes and k stay fixed, the
synthetic images, prediction rows and embeddings are drawn.  Cases on the sample photos,
smooth test images and pure colours keep fixed inputs.
"""

from __future__ import annotations

import numpy as np

from cnnlab.exercise import Case, allclose
from cnnlab.exercises.lab08 import (
    _blocks_expected,
    _blocks_probe,
    _caffe_expected,
    _caffe_probe,
    _centre_square,
    _chelsea,
    _cos_case,
    _exact_probe,
    _features,
    _photo_batch,
    _row,
    _scaled,
    _shape_probe,
    _smooth,
    _solid,
    _synthetic_pattern,
    _top_k_case,
)
from cnnlab.grading.hidden import Drawn

__all__ = ["POINTS", "HIDDEN"]

POINTS = {
    "08.center_crop_resize": 2,
    "08.top_k": 1,
    "08.preprocess_caffe": 2,
    "08.cosine_neighbours": 3,
}


def _tall_pattern_case(name, seed):
    return Case(name,
                probe=_exact_probe(lambda: _synthetic_pattern(12, 8, seed), 8),
                expected=lambda: _centre_square(_synthetic_pattern(12, 8, seed))
                .astype(np.float64),
                compare=allclose(1e-3),
                hint="a portrait image is cropped in height: top = (h - side) // 2")


def _random_batch(seed):
    return np.random.default_rng(seed).uniform(0, 255, (3, 5, 7, 3)).astype(np.float32)


def _random_batch_case(name, seed):
    return Case(name, probe=_caffe_probe(lambda: _random_batch(seed)),
                expected=_caffe_expected(lambda: _random_batch(seed)), compare=allclose(1e-3))


def _uint8_probe(f):
    x = _photo_batch().astype(np.uint8)
    return np.asarray(f(x), dtype=np.float64)


def _blue_and_green():
    return np.concatenate([_solid((0, 0, 255)), _solid((0, 255, 0))])


HIDDEN = {
    "08.center_crop_resize": (
        Drawn("tall_image_exact_centre_square", 2, _tall_pattern_case),
        # fixed on purpose: smooth images (no seed) whose block means any bilinear resize
        # matches, and the sample photo at another size
        Case("tall_image_downscaled",
             probe=_blocks_probe(lambda: _smooth(240, 160), 64, 8),
             expected=_blocks_expected(lambda: _smooth(240, 160), 64, 8),
             compare=allclose(3.0)),
        Case("small_photo_upscaled", probe=_blocks_probe(lambda: _smooth(60, 90), 224, 14),
             expected=_blocks_expected(lambda: _smooth(60, 90), 224, 14),
             compare=allclose(3.0)),
        Case("other_size_128", probe=_shape_probe(_chelsea, 128),
             expected=lambda: [128, 128, 3],
             hint="use the size argument"),
    ),
    "08.top_k": (
        Drawn("top10_of_another_row", 2,
              lambda name, seed: _top_k_case(name, lambda: _row(seed), 10)),
        Drawn("row_given_as_a_list", 3,
              lambda name, seed: _top_k_case(name, lambda: _row(seed, 20).tolist(), 4,
                                             hint="accept a list too: np.asarray first")),
        Drawn("k_equals_the_number_of_classes", 4,
              lambda name, seed: _top_k_case(name, lambda: _row(seed, 7), 7)),
        Drawn("top3_probabilities_other_row", 5,
              lambda name, seed: _top_k_case(name, lambda: _row(seed), 3, part=1)),
    ),
    "08.preprocess_caffe": (
        # fixed on purpose: the sample photos (chelsea, coffee) and pure colours are the inputs
        Case("uint8_photos_do_not_wrap_around", probe=_uint8_probe,
             expected=_caffe_expected(_photo_batch), compare=allclose(1e-3),
             hint="convert to float before subtracting: uint8 arithmetic wraps around"),
        Case("one_image_without_batch_axis",
             probe=_caffe_probe(lambda: _photo_batch()[0]),
             expected=_caffe_expected(lambda: _photo_batch()[0]), compare=allclose(1e-3),
             hint="work on the last axis (x[..., ::-1]) so (h, w, 3) works too"),
        Drawn("random_batch", 6, _random_batch_case),
        # fixed on purpose: pure colours
        Case("pure_blue_and_green", probe=_caffe_probe(_blue_and_green),
             expected=_caffe_expected(_blue_and_green), compare=allclose(1e-3)),
    ),
    # queries and database come from two seeds: the drawn seed and the next one
    "08.cosine_neighbours": (
        Drawn("one_neighbour", 14,
              lambda name, seed: _cos_case(
                  name, lambda: (_features(seed, 8, 10), _features(seed + 1, 30, 10)), 1)),
        Drawn("relu_features_1280_dims", 16,
              lambda name, seed: _cos_case(
                  name, lambda: (_features(seed, 4, 1280, relu=True),
                                 _features(seed + 1, 60, 1280, relu=True)), 5)),
        Drawn("relu_features_similarities", 16,
              lambda name, seed: _cos_case(
                  name, lambda: (_features(seed, 4, 1280, relu=True),
                                 _features(seed + 1, 60, 1280, relu=True)), 5, part=1)),
        Drawn("a_query_finds_itself_first", 18,
              lambda name, seed: _cos_case(
                  name, lambda: (_features(seed, 20, 8)[[3, 7]], _features(seed, 20, 8)), 2)),
        Drawn("scaled_queries_too", 19,
              lambda name, seed: _cos_case(
                  name, lambda: (_scaled(seed, 6, 12), _scaled(seed + 1, 25, 12)), 3,
                  expected_make=lambda: (_features(seed, 6, 12),
                                         _features(seed + 1, 25, 12)))),
    ),
}
