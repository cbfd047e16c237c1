"""Self-checks, checkpoints, plain-data export and profiles."""

import numpy as np
import pytest

import cnnlab
from cnnlab.exercise import (
    LABS,
    PlainDataError,
    dumps_plain,
    exercise,
    judge_record,
    loads_plain,
    probe_cases,
    to_plain,
)
from cnnlab.exercises.lab01 import LECTURE_IMAGE, LECTURE_KERNEL
from cnnlab.grading.hidden import case_seeds, graded_exercises


def correct_correlate2d(image, kernel):
    kh, kw = np.shape(kernel)
    image = np.asarray(image, dtype=float)
    out = np.zeros((image.shape[0] - kh + 1, image.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(image[i:i + kh, j:j + kw] * kernel)
    return out


def flipped_correlate2d(image, kernel):
    return correct_correlate2d(image, np.asarray(kernel)[::-1, ::-1])


def test_check_passes_a_correct_function_and_mentions_hidden_tests():
    report = cnnlab.check("01.correlate2d", correct_correlate2d)
    assert report.passed and bool(report)
    assert "3/3 public tests pass" in str(report)
    assert "hidden test" in str(report)
    assert "<div" in report._repr_html_()


def test_check_fails_a_convolution_posing_as_correlation_with_a_hint():
    report = cnnlab.check("01.correlate2d", flipped_correlate2d)
    assert not report.passed
    text = str(report)
    assert "[FAIL]" in text and "Hint:" in text
    # the lecture example is symmetric, so that case still passes
    assert "[PASS] lecture_5x5_example" in text


def test_check_reports_an_unattempted_exercise():
    def stub(image, kernel):
        raise NotImplementedError()

    report = cnnlab.check("01.correlate2d", stub)
    assert not report.passed
    assert "not attempted yet" in str(report)


def test_check_turns_student_exceptions_into_errors_not_crashes():
    report = cnnlab.check("01.correlate2d", lambda image, kernel: 1 / 0)
    assert "[ERROR]" in str(report) and "ZeroDivisionError" in str(report)


def test_check_never_shows_hidden_case_names():
    (ex,) = [e for e in graded_exercises("01") if e.id == "01.correlate2d"]
    report = cnnlab.check("01.correlate2d", flipped_correlate2d)
    hidden = [case.name for case in ex.cases if case.hidden]
    assert hidden and "not flipped" not in str(report)
    for name in hidden:
        assert name not in str(report)


def test_value_exercises_say_no_hidden_tests_and_function_exercises_say_they_run():
    for lab in LABS:
        for ex in graded_exercises(lab):
            has_hidden = any(case.hidden for case in ex.cases)
            assert exercise(ex.id).hidden_tests == has_hidden, ex.id
    text = str(cnnlab.check("01.filter_shapes", None))
    assert "hidden test" not in text


def test_check_without_object_says_how_to_call_it():
    with pytest.raises(TypeError, match=r"cnnlab.check\('01.correlate2d', correlate2d\)"):
        cnnlab.check("01.correlate2d")


def test_unknown_exercise_lists_the_known_ones():
    with pytest.raises(ValueError, match="01.correlate2d"):
        cnnlab.check("01.nope", correct_correlate2d)
    with pytest.raises(ValueError, match="look like"):
        cnnlab.check("correlate2d", correct_correlate2d)


def test_check_behaves_the_same_whatever_the_environment_says(monkeypatch):
    # the grader makes the lab's check cells no-ops; nothing in the kernel says "graded"
    monkeypatch.setenv("CNNLAB_GRADING", "1")
    report = cnnlab.check("01.correlate2d", flipped_correlate2d)
    assert not report.passed and "[FAIL]" in str(report)
    assert not hasattr(cnnlab.selfcheck, "grading_mode")


def test_checkpoint_keeps_a_passing_answer(capsys):
    namespace = {"correlate2d": correct_correlate2d}
    assert cnnlab.checkpoint("01.correlate2d", namespace) is correct_correlate2d
    assert namespace["correlate2d"] is correct_correlate2d
    assert "using your" in capsys.readouterr().out


def test_checkpoint_supplies_the_reference_when_missing_or_wrong(capsys):
    from cnnlab import ops

    for namespace in ({}, {"correlate2d": flipped_correlate2d}):
        value = cnnlab.checkpoint("01.correlate2d", namespace)
        assert value is ops.correlate2d and namespace["correlate2d"] is ops.correlate2d
        assert "reference takes its place" in capsys.readouterr().out
    np.testing.assert_allclose(
        namespace["correlate2d"](LECTURE_IMAGE, LECTURE_KERNEL)[0, 0], 4.0
    )


def test_checkpoint_for_a_value_exercise():
    namespace = {}
    value = cnnlab.checkpoint("01.filter_shapes", namespace)
    assert value["params"] == {"conv1": 320, "conv2": 18496}


def test_an_unsolved_value_exercise_says_todo_and_what_to_fill_in():
    report = cnnlab.check("01.filter_shapes", None)
    assert not report.passed
    assert {status for _, status, _ in report.rows} == {"not_attempted"}
    assert "TODO" in str(report) and "`filter_shapes` is still None" in str(report)
    assert "raise NotImplementedError" not in str(report)


def test_answer_label_says_whose_answer_the_checkpoint_kept(capsys):
    solved = {"correlate2d": correct_correlate2d}
    unsolved = {"correlate2d": flipped_correlate2d}
    value_still_none = {"filter_shapes": None}
    cnnlab.checkpoint("01.correlate2d", solved)
    cnnlab.checkpoint("01.correlate2d", unsolved)
    cnnlab.checkpoint("01.filter_shapes", value_still_none)
    assert cnnlab.answer_label("01.correlate2d", solved) == "yours"
    assert cnnlab.answer_label("01.correlate2d", unsolved) == "reference"
    assert cnnlab.answer_label("01.filter_shapes", value_still_none) == "reference"
    assert "is still None" in capsys.readouterr().out
    with pytest.raises(ValueError, match="no exercise"):
        cnnlab.answer_label("01.no_such_exercise", solved)


class AlwaysEqual:
    def __eq__(self, other):
        return True

    def __array__(self, dtype=None, copy=None):
        return np.array([AlwaysEqual()], dtype=object)


class SneakyInt(int):
    def __eq__(self, other):
        return True

    __hash__ = int.__hash__


@pytest.mark.parametrize("value", [AlwaysEqual(), SneakyInt(3), [1, AlwaysEqual()],
                                   {"a": AlwaysEqual()}, {1: 2}, object()])
def test_to_plain_rejects_objects_that_could_forge_equality(value):
    with pytest.raises(PlainDataError):
        to_plain(value)


def test_plain_data_round_trips_without_pickle():
    value = {"shape": (3, 4), "x": np.arange(6.0).reshape(2, 3), "n": np.int64(7),
             "inf": float("inf"), "s": "ok", "none": None}
    back = loads_plain(dumps_plain(value))
    assert back["shape"] == [3, 4] and back["n"] == 7 and back["inf"] == float("inf")
    np.testing.assert_array_equal(back["x"], value["x"])
    with pytest.raises(ValueError):
        np.save(__import__("io").BytesIO(), np.array([object()]), allow_pickle=False)


def test_a_forged_equality_object_fails_the_value_exercise():
    class Anything(dict):
        def __eq__(self, other):
            return True

    ex = exercise("01.filter_shapes")
    records = probe_cases(ex, {"shapes": Anything(), "params": Anything()})
    assert [judge_record(ex, r)[0] for r in records] == ["fail", "fail"]


@pytest.mark.parametrize("lab", list(LABS))
def test_every_reference_passes_its_own_exercise_public_and_hidden(lab):
    # with the fixed seeds and with a course secret: every drawn input is one the reference
    # (the grader's, 06.label_preserving's included) answers
    for secret in (None, b"a course secret of 32 bytes......"):
        for ex in graded_exercises(lab, case_seeds(lab, secret)):
            records = probe_cases(ex, ex.reference())
            assert [judge_record(ex, r)[0] for r in records] == ["pass"] * len(ex.cases), ex.id
            assert any(case.hidden for case in ex.cases) == exercise(ex.id).hidden_tests


def test_profile_defaults_and_rejects_unknown_names(monkeypatch):
    monkeypatch.setenv("CNNLAB_PROFILE", "full")
    assert cnnlab.profile() == "full"
    assert cnnlab.by_profile(smoke={"epochs": 1}, full={"epochs": 9}) == {"epochs": 9}
    monkeypatch.setenv("CNNLAB_PROFILE", "quick")
    with pytest.raises(ValueError, match="smoke, full"):
        cnnlab.profile()
    monkeypatch.delenv("CNNLAB_PROFILE")
    assert cnnlab.profile() == "smoke"  # no GPU on the test machines
    with pytest.raises(ValueError, match="same sizes"):
        cnnlab.by_profile(smoke={"epochs": 1}, full={"epochs": 2, "samples": 9})
