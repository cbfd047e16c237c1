"""Every lab, executed once per purpose, through the grader (two kernels side by side).

For each lab the solution and the untouched lab are graded together.  That one run proves:

- the solution runs top to bottom in the smoke profile without an error, and scores full marks;
- the untouched lab runs to the end without an error (the Run-All rule: unsolved checks say TODO,
  checkpoints put the reference in place) and scores 0 with every exercise ``not_attempted``.

Lab 01 is graded in ``tests/test_grading.py`` (its adversarial batch holds both notebooks), so
it is not run again here.  The browser test (``tests/browser``) runs every untouched lab once
more, in JupyterLab, for what only a browser shows (TODO in every check, images, locked cells).
The executed notebooks are kept, so tests of what a lab prints (``tests/test_lab_facts.py``)
read them instead of running the lab a third time.
"""

from pathlib import Path

import nbformat
import pytest

from cnnlab.exercise import LABS, lab_exercises
from cnnlab.grading import grade

ROOT = Path(__file__).resolve().parent.parent
PRESENT = [lab for lab in LABS if (ROOT / "solutions" / f"{LABS[lab]}.ipynb").exists()]
GRADED_HERE = [lab for lab in PRESENT if lab != "01"]

#: seconds per executed notebook, for the terminal summary (see conftest.py)
LAB_SECONDS: dict[str, dict[str, float]] = {}


def graded_lab(lab: str, out: Path):
    """Grade the solution and the untouched lab of ``lab`` into ``out``; keep both notebooks."""
    name = f"{LABS[lab]}.ipynb"
    results = grade(lab, [ROOT / "solutions" / name, ROOT / "labs" / name], out=out, jobs=2,
                    timeout_cell=240, timeout_notebook=900, keep_executed=True)
    solution, untouched = results
    LAB_SECONDS[lab] = {"solution": solution.seconds, "untouched": untouched.seconds}
    return solution, untouched


@pytest.fixture(scope="module", params=GRADED_HERE)
def graded(request, tmp_path_factory):
    lab = request.param
    out = tmp_path_factory.mktemp(f"lab{lab}")
    solution, untouched = graded_lab(lab, out)
    return lab, solution, untouched, out


def _errors(result):
    return [(e.index, e.exercise, e.ename, e.line, e.message) for e in result.cell_errors]


def test_solution_runs_to_the_end_without_error_and_scores_full_marks(graded):
    lab, solution, _, _ = graded
    assert solution.status == "graded", solution.message
    assert not _errors(solution), _errors(solution)
    statuses = {e.id: e.status for e in solution.exercises}
    assert set(statuses.values()) == {"pass"}, statuses
    assert solution.total == sum(ex.points for ex in lab_exercises(lab))


def test_untouched_lab_runs_to_the_end_without_error_and_scores_zero(graded):
    lab, _, untouched, _ = graded
    assert untouched.status == "graded", untouched.message
    assert not _errors(untouched), _errors(untouched)
    assert untouched.total == 0
    statuses = {e.id: e.status for e in untouched.exercises}
    assert set(statuses.values()) == {"not_attempted"}, statuses


def test_the_executed_notebooks_are_kept_with_their_outputs(graded):
    lab, solution, untouched, out = graded
    for result in (solution, untouched):
        nb = nbformat.read(out / "executed" / f"{result.submission}.ipynb", as_version=4)
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
        assert outputs, f"lab {lab}: the kept notebook of {result.submission} has no outputs"
        assert not [o for o in outputs if o.output_type == "error"]


def test_every_lab_has_at_least_four_graded_exercises():
    for lab in PRESENT:
        assert len(lab_exercises(lab)) >= 4, f"lab {lab} has fewer than four exercises"
