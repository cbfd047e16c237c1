"""Lab 11's exercises against independent references, and the facts the lab prints.

``11.nms``: the grader's reference (greedy NMS in NumPy) against ``tf.image.non_max_suppression``
and a hand example; every public and hidden case passes with the reference and fails with the
usual mistakes.  What the lab prints is read from the notebooks the grader executed once per
session (``tests/lab_runs.py``).
"""

import re

import numpy as np
import pytest

from cnnlab.exercise import judge_record, probe_cases
from cnnlab.exercises import lab11
from cnnlab.grading.hidden import graded_exercises
from cnnlab.grading.hidden import lab11 as hidden11


def _graded(exercise_id):
    return next(ex for ex in graded_exercises("11") if ex.id == exercise_id)


def _statuses(exercise_id, obj):
    ex = _graded(exercise_id)
    return {record["case"]: judge_record(ex, record)[0] for record in probe_cases(ex, obj)}


# ------------------------------------------------------------------------------------ 11.nms


def _tf_nms(boxes, scores, iou_threshold):
    import tensorflow as tf

    kept = tf.image.non_max_suppression(np.asarray(boxes, np.float32),
                                        np.asarray(scores, np.float32), len(boxes),
                                        iou_threshold=iou_threshold)
    return [int(i) for i in kept.numpy()]


def test_nms_reference_matches_tensorflow_on_random_and_drawn_boxes():
    inputs = [lab11._random_boxes(seed, n) for seed, n in enumerate((5, 20, 40, 80))]
    inputs += [lab11._random_boxes(seed, 60, size=60.0) for seed in range(4)]
    inputs += [hidden11._identical_boxes(seed, 8) for seed in range(3)]
    inputs += [hidden11._disjoint_boxes(seed, 12) for seed in range(3)]
    inputs += [(lab11._HAND_BOXES, lab11._HAND_SCORES), (lab11._CHAIN_BOXES, lab11._CHAIN_SCORES)]
    for boxes, scores in inputs:
        for threshold in (0.1, 0.3, 0.4, 0.5, 0.7):
            assert (lab11.reference_non_max_suppression(boxes, scores, threshold)
                    == _tf_nms(boxes, scores, threshold)), (len(boxes), threshold)


def test_nms_rule_at_the_threshold_and_ties_match_tensorflow():
    # IoU exactly 0.5 is kept at 0.5 and suppressed at 0.49; equal scores: lower index first
    for boxes, scores in ((hidden11._HALF_BOXES, hidden11._HALF_SCORES),
                          (hidden11._TIED_BOXES, hidden11._TIED_SCORES)):
        for threshold in (0.49, 0.5):
            assert (lab11.reference_non_max_suppression(boxes, scores, threshold)
                    == _tf_nms(boxes, scores, threshold))
    assert _tf_nms(hidden11._HALF_BOXES, hidden11._HALF_SCORES, 0.5) == [0, 1]
    assert _tf_nms(hidden11._TIED_BOXES, hidden11._TIED_SCORES, 0.5) == [0, 1]


def test_nms_hand_example_and_box_iou_by_hand():
    assert _tf_nms(lab11._HAND_BOXES, lab11._HAND_SCORES, 0.5) == [3, 0, 2]
    np.testing.assert_allclose(lab11.reference_box_iou([0, 0, 10, 10], lab11._HAND_BOXES),
                               [1, 81 / 119, 0, 50 / 150, 0])
    assert _tf_nms(lab11._CHAIN_BOXES, lab11._CHAIN_SCORES, 0.4) == [0, 2]


def _nms_with(iou, suppress, sort=True, only_kept=True):
    def nms(boxes, scores, iou_threshold=0.5):
        boxes = np.asarray(boxes, float)
        order = np.argsort(-np.asarray(scores), kind="stable") if sort else range(len(boxes))
        kept, dropped = [], []
        for i in order:
            voters = kept if only_kept else kept + dropped
            if not voters or not any(suppress(iou(boxes[i], boxes[j]), iou_threshold)
                                     for j in voters):
                kept.append(int(i))
            else:
                dropped.append(int(i))
        return kept
    return nms


def _iou(a, b):
    return float(lab11.reference_box_iou(a, b[None])[0])


def _iou_over_smaller(a, b):
    h = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    w = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return h * w / min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))


def test_nms_cases_pass_the_reference_and_catch_the_usual_mistakes():
    assert set(_statuses("11.nms", lab11.reference_non_max_suppression).values()) == {"pass"}
    assert set(_statuses("11.nms", _nms_with(_iou, lambda v, t: v > t)).values()) == {"pass"}
    mistakes = {
        ">= at the threshold": _nms_with(_iou, lambda v, t: v >= t),
        "suppressed boxes suppress too": _nms_with(_iou, lambda v, t: v > t, only_kept=False),
        "not sorted by score": _nms_with(_iou, lambda v, t: v > t, sort=False),
        "overlap over the smaller box": _nms_with(_iou_over_smaller, lambda v, t: v > t),
    }
    for mistake, nms in mistakes.items():
        statuses = _statuses("11.nms", nms)
        public = {name: s for name, s in statuses.items()
                  if name in {c.name for c in lab11.NMS.cases}}
        assert "fail" in statuses.values(), mistake
        if mistake != ">= at the threshold":  # only the hidden edge case tells > from >=
            assert "fail" in public.values(), mistake
    assert _statuses("11.nms", _nms_with(_iou, lambda v, t: v >= t))[
        "iou_equal_to_the_threshold_is_kept"] == "fail"


@pytest.mark.slow
def test_lab11_prints_one_kept_box_per_coin(lab_run):
    printed = lab_run("11").printed()
    assert "27 synthetic candidate boxes, non_max_suppression (yours) keeps 7:" in printed
    assert ("kept boxes per coin: [1, 1, 1, 1], strays kept: 3; each coin's kept box is its "
            "best-scored candidate: True") in printed


# --------------------------------------------------------------------------- 11.mutation_map


def test_mutation_map_numpy_reference_matches_keras_scoring_every_mutant():
    # the judge's expected values (a NumPy forward pass) against the Keras model the probe
    # builds, mutant by mutant: the two halves of each case describe the same network
    import keras

    for setup in (lab11._mutation_setup(1, 10, 2, 3), lab11._mutation_setup(2, 9, 2, 4, "flatten"),
                  lab11._mutation_setup(3, 8, 3, 8, sigmoid=True)):
        sequence, weights = setup
        model = lab11._keras_scanner(len(sequence), weights)
        for _ in range(3):
            x = np.eye(4)[np.random.default_rng(len(sequence)).integers(0, 4, len(sequence))]
            keras_score = float(keras.ops.convert_to_numpy(model(x[None].astype("float32")))[0, 0])
            assert abs(keras_score - lab11._numpy_score(x, *weights)) < 1e-4
        expected = lab11._numpy_mutation_map(sequence, *weights)
        assert expected.shape == (4, len(sequence))
        assert np.all(expected[np.argmax(sequence, axis=1), np.arange(len(sequence))] == 0)


def _mutations_by(change):
    """A mutation map built the student's way, with a mistake in how each mutant is made."""
    import keras

    def mutation_map(model, one_hot_sequence):
        x = np.asarray(one_hot_sequence, dtype="float32")
        batch = np.stack([x] + [change(x, i, b) for b in range(4) for i in range(len(x))])
        scores = keras.ops.convert_to_numpy(model(batch)).reshape(-1)
        return (scores[1:] - scores[0]).reshape(4, len(x))
    return mutation_map


def _set_base(x, i, b):
    mutant = x.copy()
    mutant[i] = np.eye(4)[b]
    return mutant


def _zero_position(x, i, b):          # occludes the base instead of replacing it
    mutant = x.copy()
    mutant[i] = 0
    return mutant


def _add_base(x, i, b):               # adds the new base without removing the old one
    mutant = x.copy()
    mutant[i, b] = 1
    return mutant


@pytest.mark.slow
def test_mutation_map_cases_pass_the_reference_and_catch_the_usual_mistakes():
    assert set(_statuses("11.mutation_map", lab11.reference_mutation_map).values()) == {"pass"}
    assert set(_statuses("11.mutation_map", _mutations_by(_set_base)).values()) == {"pass"}
    public = {c.name for c in lab11.MUTATION_MAP.cases}
    transposed = _mutations_by(_set_base)
    mistakes = {
        "zeroed position": _mutations_by(_zero_position),
        "base added, not replaced": _mutations_by(_add_base),
        "(L, 4) instead of (4, L)": lambda m, x: transposed(m, x).T,
        "scores, not changes": lambda m, x: transposed(m, x) + 1.0,
    }
    for mistake, answer in mistakes.items():
        statuses = _statuses("11.mutation_map", answer)
        assert "pass" not in statuses.values(), (mistake, statuses)
        assert "fail" in {s for name, s in statuses.items() if name in public}, mistake


@pytest.mark.slow
def test_lab11_mutation_map_lights_up_the_planted_motif(lab_run):
    printed = lab_run("11").printed()
    where = re.search(r"planted motif at positions (\d+)\.\.(\d+)", printed)
    start, end = int(where.group(1)), int(where.group(2))
    assert end - start + 1 == 8
    assert "shape (4, 50), zero at the sequence's own bases: True" in printed
    inside, outside = map(float, re.search(
        r"largest \|change\| inside the motif ([\d.]+), outside ([\d.]+)", printed).groups())
    assert inside > 2 * outside > 0       # the motif holds the largest changes, by far
    top = re.search(r"the 8 positions with the largest \|change\|: \[([\d, ]+)\]", printed)
    in_motif = [start <= int(p) <= end for p in top.group(1).split(",")]
    assert sum(in_motif) >= 6, top.group(0)


# ------------------------------------------------------------------------------ 11.build_fcn


def _fcn_variant(merge="add", where="enc2", classes=None, size=None, wide=1):
    """The lab's FCN with a skip made several ways, right and wrong."""
    import keras
    from keras import layers

    def build(input_shape, num_classes):
        image_in = keras.Input(shape=size or input_shape)
        e1 = layers.Conv2D(16 * wide, 3, padding="same", activation="relu")(image_in)
        e2 = layers.Conv2D(32 * wide, 3, padding="same", activation="relu")(
            layers.MaxPool2D(2)(e1))
        bottom = layers.Conv2D(32 * wide, 3, padding="same", activation="relu")(
            layers.MaxPool2D(2)(e2))
        x = layers.Conv2DTranspose(32 * wide, 2, strides=2, activation="relu")(bottom)
        other = {"enc2": e2, "coarse": layers.UpSampling2D(2)(bottom)}.get(where)
        if merge == "add" and other is not None:
            x = layers.Add()([x, other])
        elif merge == "concat" and other is not None:
            x = layers.Concatenate()([x, other])
        x = layers.Conv2DTranspose(16 * wide, 2, strides=2, activation="relu")(x)
        if where == "enc1":
            x = layers.Concatenate()([x, e1])
        x = layers.Conv2D(classes or num_classes, 1, activation="softmax")(x)
        return keras.Model(image_in, x)
    return build


@pytest.mark.slow
def test_build_fcn_structure_cases_accept_skips_and_refuse_the_rest():
    right = {"reference": lab11._reference_build_skip_fcn(), "add": _fcn_variant("add"),
             "concatenate": _fcn_variant("concat"),
             "skip at full size, from enc1": _fcn_variant(None, where="enc1")}
    for name, build in right.items():
        assert set(_statuses("11.build_fcn", build).values()) == {"pass"}, name
    public = {c.name for c in lab11.BUILD_FCN.cases}
    wrong = {
        "no skip (the plain FCN)": (_fcn_variant(None, where=None), True),
        "merges two coarse-path maps": (_fcn_variant("add", where="coarse"), True),
        "twice as wide": (_fcn_variant("add", wide=2), True),
        "hard-coded 4 classes": (_fcn_variant("add", classes=4), False),
        "hard-coded 32x32x1 input": (_fcn_variant("add", size=(32, 32, 1)), False),
    }
    for name, (build, caught_publicly) in wrong.items():
        statuses = _statuses("11.build_fcn", build)
        assert "fail" in statuses.values() or "error" in statuses.values(), (name, statuses)
        if caught_publicly:
            assert statuses["skip_fcn_32x32_gray_4_classes"] == "fail", name
        assert set(statuses) >= public


@pytest.mark.slow
def test_lab11_skip_connection_raises_the_mean_iou(lab_run):
    printed = lab_run("11").printed()
    assert "build_skip_fcn (yours): 20,308 parameters (plain FCN 20,308), merge layers ['fuse']" \
        in printed
    plain, skip, gain = map(float, re.search(
        r"mean IoU: plain FCN ([\d.]+), with the skip ([\d.]+) \(gain ([+-][\d.]+)\)",
        printed).groups())
    assert abs(skip - plain - gain) < 2e-3
    assert gain > 0.05                    # the relation the prose teaches, with a margin
