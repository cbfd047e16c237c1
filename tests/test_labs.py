"""Every lab, executed once per purpose, through the grader (two kernels side by side).

For each lab the solution and the untouched lab are graded together.  That one run proves:

- the solution runs top to bottom in the smoke profile without an error, and scores full marks;
- the untouched lab runs to the end without an error (the Run-All rule: unsolved checks say TODO,
  checkpoints put the reference in place) and scores 0 with every exercise ``not_attempted``.

Lab 01's run is the adversarial batch of ``tests/test_grading.py`` (it holds both notebooks)
when that file runs first, as it does in ``make test``.  The browser test (``tests/browser``)
runs every untouched lab once more, in JupyterLab, for what only a browser shows (TODO in every
check, images, locked cells).
The executed notebooks are kept, so tests of what a lab prints (``tests/test_lab_facts.py``)
read them instead of running the lab a third time.
"""


import pytest

from cnnlab.exercise import LABS, lab_exercises
from cnnlab.grading.hidden import lab_points
from tests.conftest import ROOT

PRESENT = [lab for lab in LABS if (ROOT / "solutions" / f"{LABS[lab]}.ipynb").exists()]


@pytest.fixture(scope="module", params=PRESENT)
def graded(request, lab_run):
    run = lab_run(request.param)
    return run.lab, run.solution, run.untouched, run


def _errors(result):
    return [(e.index, e.exercise, e.ename, e.line, e.message) for e in result.cell_errors]


@pytest.mark.slow
def test_solution_runs_to_the_end_without_error_and_scores_full_marks(graded, record_property):
    lab, solution, untouched, _ = graded
    record_property("lab_seconds", {"lab": lab, "solution": solution.seconds,
                                    "untouched": untouched.seconds})
    assert solution.status == "graded", solution.message
    assert not _errors(solution), _errors(solution)
    statuses = {e.id: e.status for e in solution.exercises}
    assert set(statuses.values()) == {"pass"}, statuses
    assert solution.total == sum(lab_points(lab).values())


@pytest.mark.slow
def test_untouched_lab_runs_to_the_end_without_error_and_scores_zero(graded):
    lab, _, untouched, _ = graded
    assert untouched.status == "graded", untouched.message
    assert not _errors(untouched), _errors(untouched)
    assert untouched.total == 0
    statuses = {e.id: e.status for e in untouched.exercises}
    assert set(statuses.values()) == {"not_attempted"}, statuses


@pytest.mark.slow
def test_the_similarity_report_finds_the_solution_and_never_the_untouched_starter(graded):
    # the "solution" submission is the instructor's solution notebook itself: MOSS-style
    # comparison must find it as cnnlab's solution, exercise by exercise where a cell has code
    # enough to compare; the untouched lab is only starter code, which never matches
    lab, solution, untouched, run = graded
    compared = [ex_id for ex_id in solution.similar.split("; ") if ex_id]
    assert compared, f"lab {lab}: no exercise of the solution was compared"
    for entry in compared:
        assert "cnnlab: solution 1.00" in entry, (lab, entry)
    assert untouched.similar == ""
    page = (run.out / "similarity.html").read_text()
    for entry in compared:
        assert f"<h2>{entry.split(':')[0]}" in page, (lab, entry)


@pytest.mark.slow
def test_the_executed_notebooks_are_kept_with_their_outputs(graded):
    lab, _, _, run = graded
    for which in ("solution", "untouched"):
        nb = run.executed(which)
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
        assert outputs, f"lab {lab}: the kept {which} notebook has no outputs"
        assert not [o for o in outputs if o.output_type == "error"]


def test_every_lab_has_at_least_four_graded_exercises():
    for lab in PRESENT:
        assert len(lab_exercises(lab)) >= 4, f"lab {lab} has fewer than four exercises"
