"""Self-checks, checkpoints, plain-data export and profiles."""

import re

import numpy as np
import pytest

import cnnlab
from cnnlab.exercise import (
    LABS,
    PlainDataError,
    count_right_entries,
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


def test_a_self_check_says_hidden_tests_run_exactly_when_they_do():
    for lab in LABS:
        for ex in graded_exercises(lab):
            has_hidden = any(case.hidden for case in ex.cases)
            assert exercise(ex.id).hidden_tests == has_hidden, ex.id
    # the former value exercises are functions of a configuration, with hidden configurations
    assert "hidden test" in str(cnnlab.check("01.filter_shapes", None))
    report = cnnlab.selfcheck.CheckReport("01.x", (("case", "fail", "wrong"),), False)
    assert "hidden test" not in str(report)


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


def test_checkpoint_supplies_the_filter_shapes_reference():
    namespace = {}
    filter_shapes = cnnlab.checkpoint("01.filter_shapes", namespace)
    assert filter_shapes(1, {"conv1": (32, 3), "conv2": (64, 3)})["params"] == {
        "conv1": 320, "conv2": 18496}


def test_checkpoint_for_a_value_exercise():
    # 06.label_preserving is a value (`safe_transforms = None` in the lab)
    namespace = {"safe_transforms": None}
    value = cnnlab.checkpoint("06.label_preserving", namespace)
    assert isinstance(value, dict) and namespace["safe_transforms"] is value


def test_an_unsolved_value_exercise_says_todo_and_what_to_fill_in():
    report = cnnlab.check("06.label_preserving", None)
    assert not report.passed
    assert {status for _, status, _ in report.rows} == {"not_attempted"}
    assert "TODO" in str(report) and "`safe_transforms` is still None" in str(report)
    assert "raise NotImplementedError" not in str(report)


def test_answer_label_says_whose_answer_the_checkpoint_kept(capsys):
    solved = {"correlate2d": correct_correlate2d}
    unsolved = {"correlate2d": flipped_correlate2d}
    value_still_none = {"safe_transforms": None}
    cnnlab.checkpoint("01.correlate2d", solved)
    cnnlab.checkpoint("01.correlate2d", unsolved)
    cnnlab.checkpoint("06.label_preserving", value_still_none)
    assert cnnlab.answer_label("01.correlate2d", solved) == "yours"
    assert cnnlab.answer_label("01.correlate2d", unsolved) == "reference"
    assert cnnlab.answer_label("06.label_preserving", value_still_none) == "reference"
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


class AnyShape(tuple):
    def __eq__(self, other):
        return True

    __hash__ = tuple.__hash__


def test_a_forged_equality_object_fails_a_count_only_exercise():
    # every entry an object that equals anything: plain data keeps none of that
    def forged_filter_shapes(input_channels, layers):
        return {"shapes": {name: AnyShape() for name in layers},
                "params": {name: SneakyInt(0) for name in layers}}

    ex = exercise("01.filter_shapes")
    records = probe_cases(ex, forged_filter_shapes)
    assert [judge_record(ex, r)[0] for r in records] == ["fail"]
    assert judge_record(ex, records[0])[1].startswith("0 of 4 entries are right")


# -------------------------------------------------------------------- count-only self-checks

#: The seven exercises whose answer is a table of numbers (issue 15 §2): each is a function of
#: a configuration, its public case the lab's own, hidden cases on drawn configurations.
COUNT_ONLY = ("01.filter_shapes", "02.predict_shapes", "02.count_params", "03.pooled_sizes",
              "03.downsampling_costs", "04.param_counts", "04.lenet_params")


def test_count_right_entries_counts_dict_and_list_entries():
    assert count_right_entries({"a": 1, "b": [2, 3]}, {"a": 1, "b": [2, 3]}) == (
        True, "2 of 2 entries are right")
    assert count_right_entries({"a": 1}, {"a": 1, "b": [2, 3]}) == (
        False, "1 of 2 entries are right")
    assert count_right_entries([1, 5, 3], [1, 2, 3]) == (False, "2 of 3 entries are right")
    assert count_right_entries([1, 2, 3, 4], [1, 2, 3])[0] is False  # one entry too many
    assert count_right_entries(7, [1, 2])[1].startswith("0 of 2 entries are right")


def test_a_partly_wrong_answer_gets_the_count_not_which_entries():
    from cnnlab.exercises.lab03 import reference_downsampling_costs

    def partly_wrong(input_shape, filters, kernel_size):
        costs = reference_downsampling_costs(input_shape, filters, kernel_size)
        costs["strided_conv"]["macs"] = costs["conv_then_pool"]["macs"]   # forgot the stride
        costs["conv_then_pool"]["params"] -= filters                       # forgot the biases
        return costs

    report = cnnlab.check("03.downsampling_costs", partly_wrong)
    text = str(report) + report._repr_html_()
    assert not report.passed and "4 of 6 entries are right" in text
    expected = reference_downsampling_costs((32, 32, 16), 32, 3)
    for value in (expected["strided_conv"]["macs"], expected["conv_then_pool"]["params"]):
        assert str(value) not in text and f"{value:,}" not in text
    for name in ("strided_conv", "conv_then_pool", "macs", "params"):
        assert name not in text


def test_pooled_size_check_says_three_of_five_and_not_which():
    def no_same_padding(n, pool_size, strides=None, padding="valid"):
        strides = pool_size if strides is None else strides
        return (n - pool_size) // strides + 1      # wrong for 'same' only

    def no_overlap(n, pool_size, strides=None, padding="valid"):
        if padding == "same":
            return -(-n // pool_size)
        return n // pool_size                      # wrong for AlexNet's overlapping pools only

    for answer, right in ((no_same_padding, 4), (no_overlap, 3)):
        text = str(cnnlab.check("03.pooled_sizes", answer))
        assert f"{right} of 5 entries are right" in text
        for name in ("vgg", "alexnet", "odd_7", "_same", "224", "55", "13"):
            assert name not in text
    # AlexNet's two expected sizes, 27 and 6, are nowhere in the report
    assert not {"27", "6"} & set(re.findall(r"\d+", text))


@pytest.mark.parametrize("ex_id", COUNT_ONLY)
def test_a_count_only_exercise_has_one_public_case_and_hidden_configurations(ex_id):
    ex = exercise(ex_id)
    (public,) = ex.public_cases()
    assert public.count_only and ex.hidden_tests
    lab = ex_id[:2]
    (graded,) = [g for g in graded_exercises(lab) if g.id == ex_id]
    hidden = [case for case in graded.cases if case.hidden]
    assert hidden and all(case.count_only for case in hidden)


def _hard_coded(ex):
    """The lab's answers typed in: the reference's results on the public case's calls only."""
    reference, table = ex.reference(), {}

    def recording(*args, **kwargs):
        table[repr((args, sorted(kwargs.items())))] = result = reference(*args, **kwargs)
        return result

    probe_cases(ex, recording, ex.public_cases())
    first = next(iter(table.values()))
    return lambda *args, **kwargs: table.get(repr((args, sorted(kwargs.items()))), first)


@pytest.mark.parametrize("ex_id", COUNT_ONLY)
def test_the_labs_answers_typed_in_pass_the_self_check_but_no_hidden_case(ex_id):
    ex = exercise(ex_id)
    answer = _hard_coded(ex)
    assert cnnlab.check(ex_id, answer).passed
    lab = ex_id[:2]
    for secret in (None, b"a course secret of 32 bytes......"):
        (graded,) = [g for g in graded_exercises(lab, case_seeds(lab, secret)) if g.id == ex_id]
        statuses = {case.name: judge_record(graded, record)[0] for case, record in zip(
            graded.cases, probe_cases(graded, answer))}
        assert any(c.hidden for c in graded.cases)
        assert [statuses[c.name] for c in graded.cases if c.hidden] == ["fail"] * len(
            [c for c in graded.cases if c.hidden]), (ex_id, statuses)


@pytest.mark.slow
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
    with pytest.raises(ValueError, match="smoke, cpu, full"):
        cnnlab.profile()
    monkeypatch.delenv("CNNLAB_PROFILE")
    assert cnnlab.profile() == "cpu"  # no GPU on the test machines: a student's laptop
    with pytest.raises(ValueError, match="same sizes"):
        cnnlab.by_profile(smoke={"epochs": 1}, full={"epochs": 2, "samples": 9})
    with pytest.raises(ValueError, match="smoke and cpu .* differ in \\['samples'\\]"):
        cnnlab.by_profile(smoke={"epochs": 1}, full={"epochs": 2}, cpu={"epochs": 3, "samples": 9})


def test_the_cpu_profile_has_its_own_sizes_or_the_smoke_ones(monkeypatch):
    sizes = {"smoke": {"epochs": 1}, "cpu": {"epochs": 4}, "full": {"epochs": 9}}
    for name, expected in sizes.items():
        monkeypatch.setenv("CNNLAB_PROFILE", name)
        assert cnnlab.by_profile(**sizes) == expected
    monkeypatch.setenv("CNNLAB_PROFILE", "cpu")
    assert cnnlab.by_profile(smoke={"epochs": 1}, full={"epochs": 9}) == {"epochs": 1}
    assert cnnlab.by_profile(smoke={"epochs": 1}, full={"epochs": 9}, name="full") == {"epochs": 9}


@pytest.mark.parametrize("lab", ["01", "02", "03", "04"])
def test_the_count_only_probes_run_as_the_kernel_gets_them(lab):
    # the grader's kernel gets the probes rebuilt without references (a drawn configuration
    # must come from code that computes no answer); each must run on the reference
    from cnnlab.exercise import run_probes
    from cnnlab.grading.export import kernel_probes

    for secret in (None, b"a course secret of 32 bytes......"):
        table = kernel_probes(lab, case_seeds(lab, secret))
        for ex_id in (e for e in COUNT_ONLY if e.startswith(lab)):
            _, probes = table[ex_id]
            records = run_probes(probes, exercise(ex_id).reference())
            assert {r["outcome"] for r in records} == {"returned"}, (ex_id, records)
