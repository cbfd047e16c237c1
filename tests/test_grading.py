"""The grader, end to end: real kernels, adversarial submissions, every lab's solution and lab.

Lab 01 carries the full adversarial suite; every other lab checks full marks for the solution
and zero (all not_attempted) for the untouched lab.
"""

import csv
import time
from pathlib import Path

import nbformat
import pytest

from cnnlab.exercise import LABS, lab_exercises
from cnnlab.grading import grade
from cnnlab.notebooks import exercise_id

ROOT = Path(__file__).resolve().parent.parent
LAB01 = ROOT / "solutions" / f"{LABS['01']}.ipynb"
EXERCISES_01 = lab_exercises("01")
TOTAL_01 = sum(ex.points for ex in EXERCISES_01)


def _variant(folder: Path, name: str, replacements: dict, drop=(), shuffle=False) -> Path:
    nb = nbformat.read(LAB01, as_version=4)
    cells = []
    for cell in nb.cells:
        ex = exercise_id(cell)
        if ex in drop:
            continue
        if ex in replacements:
            cell.source = replacements[ex]
        cells.append(cell)
    if shuffle:  # exercise cells reordered and duplicated: the first tagged cell wins
        tagged = [c for c in cells if exercise_id(c)]
        decoy = nbformat.v4.new_code_cell("raise RuntimeError('decoy')",
                                          metadata={"tags": list(tagged[0].metadata["tags"])})
        cells = list(reversed(tagged)) + [decoy]
    nb.cells = cells
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def lab01_batch(tmp_path_factory):
    """One batch with the solution, the lab, adversarial notebooks and one stub per exercise."""
    folder = tmp_path_factory.mktemp("submissions")
    (folder / "solution.ipynb").write_text(LAB01.read_text())
    (folder / "untouched.ipynb").write_text((ROOT / "labs" / LAB01.name).read_text())
    _variant(folder, "hang", {"01.convolve2d": "while True: pass"})
    _variant(folder, "exit", {"01.conv2d_multi": "import os; os._exit(1)"})
    _variant(folder, "memory", {"01.conv2d_multi": (
        "import numpy as np\n"
        "blocks = [np.ones(2**26) for _ in range(16)]  # 8 GiB, 0.5 GiB at a time")})
    _variant(folder, "forged", {"01.filter_shapes": (
        "class Anything(dict):\n    def __eq__(self, other):\n        return True\n"
        "filter_shapes = {'shapes': Anything(), 'params': Anything()}")})
    _variant(folder, "missing", {}, drop=("01.to_grayscale",))
    _variant(folder, "reordered", {}, shuffle=True)
    (folder / "truncated.ipynb").write_text(LAB01.read_text()[:2000])
    lab = nbformat.read(ROOT / "labs" / LAB01.name, as_version=4)
    stubs = {exercise_id(c): c.source for c in lab.cells if exercise_id(c)}
    for ex in EXERCISES_01:  # the solution with one exercise as the lab ships it
        _variant(folder, f"stub_{ex.id}", {ex.id: stubs[ex.id]})
    out = tmp_path_factory.mktemp("results")
    start = time.monotonic()
    results = grade("01", [folder], out=out, jobs=2, timeout_cell=20, timeout_notebook=240,
                    max_memory_gb=3)
    elapsed = time.monotonic() - start
    return {r.submission: r for r in results}, out, elapsed, folder


def _statuses(result):
    return {e.id: e.status for e in result.exercises}


def test_solution_scores_full_marks(lab01_batch):
    results, _, _, _ = lab01_batch
    assert results["solution"].total == TOTAL_01
    assert set(_statuses(results["solution"]).values()) == {"pass"}


def test_untouched_lab_scores_zero_with_every_exercise_not_attempted(lab01_batch):
    results, _, _, _ = lab01_batch
    assert results["untouched"].status == "graded"
    assert results["untouched"].total == 0
    assert set(_statuses(results["untouched"]).values()) == {"not_attempted"}


@pytest.mark.parametrize("ex", EXERCISES_01, ids=[e.id for e in EXERCISES_01])
def test_stubbing_one_exercise_loses_exactly_its_points(lab01_batch, ex):
    results, _, _, _ = lab01_batch
    result = results[f"stub_{ex.id}"]
    assert result.total == TOTAL_01 - ex.points
    statuses = _statuses(result)
    assert statuses.pop(ex.id) == "not_attempted"
    assert set(statuses.values()) == {"pass"}


def test_an_infinite_loop_times_out_and_the_rest_is_graded(lab01_batch):
    results, _, _, _ = lab01_batch
    statuses = _statuses(results["hang"])
    assert statuses.pop("01.convolve2d") == "timeout"
    assert set(statuses.values()) == {"pass"}


def test_os_exit_is_reported_as_kernel_died(lab01_batch):
    results, _, _, _ = lab01_batch
    statuses = _statuses(results["exit"])
    assert statuses["01.conv2d_multi"] == "kernel_died"
    assert statuses["01.keras_conv"] == "kernel_died"
    assert statuses["01.correlate2d"] == "pass"  # exported before the kernel died
    assert results["exit"].status == "kernel_died"


def test_a_memory_blow_up_is_stopped_and_reported(lab01_batch):
    results, _, _, _ = lab01_batch
    statuses = _statuses(results["memory"])
    assert statuses["01.conv2d_multi"] == "kernel_died"
    assert statuses["01.correlate2d"] == "pass"


def test_an_object_with_forged_equality_does_not_pass(lab01_batch):
    results, _, _, _ = lab01_batch
    assert _statuses(results["forged"])["01.filter_shapes"] == "fail"
    assert results["forged"].total == TOTAL_01 - 1


def test_a_missing_exercise_scores_zero_as_missing(lab01_batch):
    results, _, _, _ = lab01_batch
    statuses = _statuses(results["missing"])
    assert statuses.pop("01.to_grayscale") == "missing"
    assert set(statuses.values()) == {"pass"}


def test_reordered_and_duplicated_exercise_cells_are_matched_by_tag(lab01_batch):
    results, _, _, _ = lab01_batch
    assert results["reordered"].total == TOTAL_01


def test_a_truncated_notebook_gets_an_error_row(lab01_batch):
    results, out, _, _ = lab01_batch
    assert results["truncated"].status == "unreadable"
    assert set(_statuses(results["truncated"]).values()) == {"error"}
    rows = {r["submission"]: r for r in csv.DictReader((out / "scores.csv").open())}
    assert rows["truncated"]["total"] == "0"
    assert len(rows) == len(results)


def test_reports_list_every_submission_with_feedback(lab01_batch):
    results, out, _, _ = lab01_batch
    rows = list(csv.DictReader((out / "scores.csv").open()))
    assert {r["submission"] for r in rows} == set(results)
    assert rows[0].keys() >= {"01.correlate2d", "01.correlate2d:status", "total", "status"}
    feedback = (out / "feedback" / "stub_01.correlate2d.md").read_text()
    assert "## 01.correlate2d: not_attempted" in feedback
    solution = (out / "feedback" / "solution.md").read_text()
    assert "hidden test `larger_image`: pass" in solution  # hidden tests named, not described
    assert "public test `lecture_5x5_example`: pass" in solution


def test_regrading_gives_identical_scores(lab01_batch, tmp_path):
    results, _, _, folder = lab01_batch
    again = grade("01", [folder / "solution.ipynb", folder / "stub_01.convolve2d.ipynb"],
                  out=tmp_path, jobs=2)
    for result in again:
        assert _statuses(result) == _statuses(results[result.submission])
        assert result.total == results[result.submission].total


def test_the_notebook_deadline_is_enforced_from_outside(tmp_path):
    folder = tmp_path / "subs"
    folder.mkdir()
    _variant(folder, "hang", {"01.convolve2d": "while True: pass"})
    start = time.monotonic()
    (result,) = grade("01", [folder], out=tmp_path / "out", timeout_cell=600,
                      timeout_notebook=45)
    assert time.monotonic() - start < 90
    statuses = _statuses(result)
    assert result.status == "timeout"
    assert statuses["01.convolve2d"] == "timeout" and statuses["01.keras_conv"] == "timeout"
    assert statuses["01.correlate2d"] == "pass"


OTHER_LABS = [lab for lab in LABS if lab != "01"
              and (ROOT / "solutions" / f"{LABS[lab]}.ipynb").exists()]


@pytest.mark.parametrize("lab", OTHER_LABS)
def test_solution_full_marks_and_untouched_lab_zero(lab, tmp_path):
    name = f"{LABS[lab]}.ipynb"
    results = grade(lab, [ROOT / "solutions" / name, ROOT / "labs" / name], out=tmp_path,
                    jobs=2, timeout_cell=120, timeout_notebook=400)
    solution, untouched = results
    assert {e.status for e in solution.exercises} == {"pass"}, _statuses(solution)
    assert solution.total == sum(ex.points for ex in lab_exercises(lab))
    assert untouched.total == 0
    assert {e.status for e in untouched.exercises} == {"not_attempted"}, _statuses(untouched)
