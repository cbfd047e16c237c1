"""The cells a lab tags ``demo`` are ones no exercise's grading needs, and the grader skips them.

A ``demo`` cell (cell metadata ``tags: ["demo"]``, in ``solutions/``; ``labs/`` keeps the tag) is
a demonstration: a training run, a plot.  ``cnnlab grade`` leaves it out unless
``--whole-notebook`` (issue 16 §4).  What is pinned here:

- statically, for every lab: a tagged cell is never an exercise, check, checkpoint or parameters
  cell, and no later untagged cell reads a name whose value it would take from a tagged cell
  (by the cells' syntax trees: the invariant the tags were chosen by);
- only the instructor's notebook decides: a submission that tags its own cells ``demo`` (or drops
  the tags) changes nothing in the notebook the grader runs;
- for every lab, grading the solution and the untouched lab in the other mode than the session's
  shared run (``tests/lab_runs.py``, whole notebook) gives every exercise the same points and
  case statuses, no cell raises, and the untouched lab still scores 0, every exercise
  ``not_attempted``.  That costs one batch of two kernels per lab in the skipped mode (a few
  seconds to about a minute and a half each; the shared whole-notebook run is there anyway).
"""

import ast
import io
import symtable
import time

import nbformat
import pytest

from cnnlab.exercise import LABS
from cnnlab.grading import grade, prepare_submission
from cnnlab.grading.hidden import graded_exercises
from cnnlab.grading.prepare import DEMO_TAG, SKIPPED_DEMO, is_demo
from cnnlab.notebooks import build_lab, exercise_id
from tests.conftest import ROOT

PRESENT = [lab for lab in LABS if (ROOT / "solutions" / f"{LABS[lab]}.ipynb").exists()]


def _solution(lab: str):
    return nbformat.read(ROOT / "solutions" / f"{LABS[lab]}.ipynb", as_version=4)


# --------------------------------------------------------------------------------------------
# Which module-level names a cell binds and reads


def _python(source: str) -> str:
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)  # %magics and !shell as Python


def _symbols(node) -> tuple[set, set]:
    """``(reads, binds)`` of one statement or expression at module level, as Python's symbol
    table sees it; a nested function or class reads the globals its body uses."""
    table = symtable.symtable(ast.unparse(node), "<cell>", "exec")
    reads = {s.get_name() for s in table.get_symbols() if s.is_referenced()}
    binds = {s.get_name() for s in table.get_symbols()
             if s.is_assigned() or s.is_imported() or s.is_namespace()}
    nested = list(table.get_children())
    while nested:
        scope = nested.pop()
        nested += scope.get_children()
        for s in scope.get_symbols():
            if s.is_global() and s.is_referenced():
                reads.add(s.get_name())
            if s.is_declared_global() and s.is_assigned():
                reads.add(s.get_name())
                binds.add(s.get_name())
    return reads, binds


def _walk(statements, bound: set, reads: set) -> None:
    """Add to ``reads`` the names read before this code has bound them, in execution order;
    loops, ``with`` and ``try`` bind their targets before their bodies read them."""
    def expression(node):
        if node is not None:
            r, b = _symbols(ast.Expr(node))
            reads.update(r - bound)
            bound.update(b)  # a := inside

    def target(node):
        r, b = _symbols(ast.Assign(targets=[node], value=ast.Constant(None), lineno=1))
        reads.update(r - b - bound)
        bound.update(b)

    for stmt in statements:
        if isinstance(stmt, (ast.For, ast.AsyncFor)):
            expression(stmt.iter)
            target(stmt.target)
            _walk(stmt.body + stmt.orelse, bound, reads)
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            for item in stmt.items:
                expression(item.context_expr)
                if item.optional_vars is not None:
                    target(item.optional_vars)
            _walk(stmt.body, bound, reads)
        elif isinstance(stmt, (ast.If, ast.While)):
            expression(stmt.test)
            _walk(stmt.body + stmt.orelse, bound, reads)
        elif isinstance(stmt, ast.Try):
            _walk(stmt.body, bound, reads)
            for handler in stmt.handlers:
                expression(handler.type)
                bound.update([handler.name] if handler.name else [])
                _walk(handler.body, bound, reads)
            _walk(stmt.orelse + stmt.finalbody, bound, reads)
        elif isinstance(stmt, ast.Assign) and all(
                isinstance(t, (ast.Name, ast.Tuple, ast.List)) for t in stmt.targets):
            expression(stmt.value)
            for node in stmt.targets:
                target(node)
        else:
            r, b = _symbols(stmt)
            reads.update(r - bound)
            bound.update(b)


def cell_names(source: str) -> tuple[set, set]:
    """``(binds, reads)``: the module-level names a code cell binds, and those it reads from
    the notebook's namespace (before binding them itself)."""
    bound, reads = set(), set()
    _walk(ast.parse(_python(source)).body, bound, reads)
    return bound, reads


@pytest.mark.parametrize("source, binds, reads", [
    ("fig, axes = plt.subplots(2)\nfor ax in axes:\n    ax.plot(x)\n",
     {"fig", "axes", "ax"}, {"plt", "x"}),
    ("x = x + 1", {"x"}, {"x"}),
    ("def f(a):\n    return a * scale + np.pi\n", {"f"}, {"scale", "np"}),
    ("%matplotlib inline\nimport numpy as np\ny = np.ones(3)", {"np", "y"}, {"get_ipython"}),
    ("with open(p) as handle:\n    text = handle.read()\n", {"handle", "text"}, {"open", "p"}),
    ("try:\n    m = load()\nexcept ValueError as error:\n    print(error, m)\n",
     {"m", "error"}, {"load", "ValueError", "print"}),
    ("squares = [v * v for v in values]", {"squares"}, {"values"}),
    ("model.fit(x_train)", set(), {"model", "x_train"}),
])
def test_cell_names_are_the_names_a_cell_binds_and_reads_before_binding(source, binds, reads):
    assert cell_names(source) == (binds, reads)


# --------------------------------------------------------------------------------------------
# The tags, statically


def _role(cell) -> str:
    """``exercise``, ``check``, ``checkpoint``, ``parameters`` or ``""``: what a cell does for
    grading (a check or checkpoint cell calls ``cnnlab.check``/``cnnlab.checkpoint``)."""
    if exercise_id(cell):
        return "exercise"
    if "parameters" in (cell.metadata.get("tags") or []):
        return "parameters"
    if "cnnlab.checkpoint(" in cell.source:
        return "checkpoint"
    if "cnnlab.check(" in cell.source:
        return "check"
    return ""


@pytest.mark.parametrize("lab", PRESENT)
def test_a_demo_cell_is_never_an_exercise_check_checkpoint_or_parameters_cell(lab):
    nb = _solution(lab)
    wrong = [(i, _role(c)) for i, c in enumerate(nb.cells) if is_demo(c) and _role(c)]
    assert not wrong, f"lab {lab}: cells tagged {DEMO_TAG} that grading needs: {wrong}"
    assert any(is_demo(c) and c.cell_type == "code" for c in nb.cells), \
        f"lab {lab} tags no demonstration cell {DEMO_TAG}"


@pytest.mark.parametrize("lab", PRESENT)
def test_no_graded_cell_reads_a_name_whose_value_a_demo_cell_set(lab):
    """For every untagged code cell and every name it reads, the last cell before it that binds
    that name is untagged too: skipping the demo cells changes no value a graded cell sees."""
    nb = _solution(lab)
    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    names = {i: cell_names(c.source) for i, c in code}
    problems = []
    for i, cell in code:
        if is_demo(cell):
            continue
        for name in sorted(names[i][1]):
            binders = [j for j, _ in code if j < i and name in names[j][0]]
            if binders and is_demo(nb.cells[binders[-1]]):
                problems.append(f"cell {i} reads {name!r}, last set by demo cell {binders[-1]}")
    assert not problems, f"lab {lab}: " + "; ".join(problems)


@pytest.mark.parametrize("lab", PRESENT)
def test_the_labs_keep_the_solutions_demo_tags(lab):
    solution = _solution(lab)
    tagged = [c.get("id") for c in solution.cells if is_demo(c)]
    built = build_lab(solution, f"{LABS[lab]}.ipynb")
    shipped = nbformat.read(ROOT / "labs" / f"{LABS[lab]}.ipynb", as_version=4)
    assert [c.get("id") for c in built.cells if is_demo(c)] == tagged
    assert [c.get("id") for c in shipped.cells if is_demo(c)] == tagged


# --------------------------------------------------------------------------------------------
# Only the instructor's notebook decides what is skipped


def _prepared(lab: str, submission, whole_notebook=False, template=None):
    """The sources of the notebook the grader would run, the grader's own cells (exporter and
    export cells, whose names and tokens are random) left out."""
    solution = _solution(lab)
    template = template or build_lab(solution, f"{LABS[lab]}.ipynb")
    nb, positions, missing = prepare_submission(template, submission, graded_exercises(lab),
                                                whole_notebook=whole_notebook)
    exports = {export for _, export in positions.values()} | {0}
    return [c.source for i, c in enumerate(nb.cells) if i not in exports], missing


def test_the_instructors_demo_cells_are_skipped_in_place_and_run_with_whole_notebook():
    solution = _solution("07")
    lab_cells = [c.source for c in build_lab(solution).cells]
    demo = [i for i, c in enumerate(solution.cells) if is_demo(c)]
    skipped, missing = _prepared("07", solution)
    whole, _ = _prepared("07", solution, whole_notebook=True)
    assert not missing and len(skipped) == len(whole) == len(lab_cells)
    code_demo = [i for i in demo if solution.cells[i].cell_type == "code"]
    assert code_demo and all(skipped[i] == SKIPPED_DEMO for i in code_demo)
    assert all(skipped[i] == whole[i] for i in range(len(whole)) if i not in code_demo)
    assert [whole[i] for i in code_demo] == [lab_cells[i] for i in code_demo]


@pytest.mark.parametrize("tags", [[DEMO_TAG], []])
def test_a_submissions_own_demo_tags_change_nothing_the_grader_runs(tags):
    # the attack: tag the exercise, check and checkpoint cells (every cell) demo, hoping the
    # grader skips what would catch a wrong answer; or drop the tags to make it run them
    solution = _solution("09")
    reference, _ = _prepared("09", solution)
    attacked = nbformat.reads(nbformat.writes(solution), as_version=4)
    for cell in attacked.cells:
        kept = [t for t in cell.metadata.get("tags", []) if t != DEMO_TAG]
        cell.metadata["tags"] = kept + tags
    attacked.metadata["tags"] = [DEMO_TAG]
    assert _prepared("09", attacked)[0] == reference
    assert _prepared("09", attacked, whole_notebook=True)[0] == \
        _prepared("09", solution, whole_notebook=True)[0]


@pytest.mark.slow
def test_an_exercise_cell_the_instructor_tags_demo_is_refused_with_the_fix(tmp_path):
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    nb = _solution("02")
    cell = next(c for c in nb.cells if exercise_id(c) == "02.conv_output_size")
    cell.metadata["tags"].append(DEMO_TAG)
    nbformat.write(nb, solutions / f"{LABS['02']}.ipynb")
    with pytest.raises(ValueError, match=r"02\.conv_output_size are tagged demo.*remove the tag"):
        grade("02", [tmp_path], out=tmp_path / "out", solutions=solutions, stream=io.StringIO())


def test_whole_notebook_is_a_grade_option_off_by_default_and_reaches_grade(monkeypatch):
    from cnnlab import cli
    from cnnlab.grading import hidden

    seen = {}
    monkeypatch.setattr("cnnlab.grading.grade", lambda *a, **kw: seen.update(kw) or [])
    monkeypatch.setattr(hidden, "read_secret", lambda path: None)
    assert cli.main(["grade", "--lab", "02", "subs/"]) == 0 and seen["whole_notebook"] is False
    assert cli.main(["grade", "--lab", "02", "subs/", "--whole-notebook"]) == 0
    assert seen["whole_notebook"] is True


def test_a_name_only_a_skipped_demo_cell_sets_gets_a_note_in_the_feedback():
    # a student's function may read a global that only a demonstration cell sets: skipped, it
    # is a NameError, and the feedback says why and what to do
    from cnnlab.grading.grade import ExerciseResult, _explain_demo_names
    from cnnlab.grading.prepare import demo_only_names

    names = demo_only_names(build_lab(_solution("09")))
    assert {"digit_results", "train_passes", "restart", "shown", "faces_model",
            "results"} <= names  # demo cells, the fine_tune run and section 3's table among them
    assert not names & {"size", "backbone", "fresh_top", "fit_epochs", "who_probe", "np", "keras",
                        "P"}  # graded cells, the checkpoint cells split from demos among them
    row = ExerciseResult("09.worst_predictions", 0.0, 4.0, "error", [
        ("public", False, "error", "NameError in your cell for 09.worst_predictions, line 2: "
                                   "name 'digit_results' is not defined"),
        ("hidden", True, "error", "NameError: name 'undefined_here' is not defined")],
        message="NameError in your cell for 09.worst_predictions: name 'shown' is not defined")
    _explain_demo_names([row], names)
    assert "`shown` is set by a demonstration cell" in row.message
    assert "--whole-notebook" in row.cases[0][3] and "`digit_results`" in row.cases[0][3]
    assert row.cases[1][3] == "NameError: name 'undefined_here' is not defined"


# --------------------------------------------------------------------------------------------
# The proof: the same grades with and without the demo cells, for every lab


def _scores(result) -> dict:
    return {e.id: (e.points, e.status, [(case[0], case[2]) for case in e.cases])
            for e in result.exercises}


def _ran_whole_notebook(run) -> bool:
    """Whether a shared lab run (``tests/lab_runs.py``) ran the demo cells: its kept notebook
    holds them as the lab does, not as the grader's comment."""
    return not any(c.source == SKIPPED_DEMO for c in run.executed("solution").cells)


@pytest.mark.slow
@pytest.mark.parametrize("lab", PRESENT)
def test_grading_with_and_without_the_demo_cells_gives_the_same_results(lab, lab_run, tmp_path,
                                                                          record_property):
    run = lab_run(lab)
    whole = _ran_whole_notebook(run)
    name = f"{LABS[lab]}.ipynb"
    start = time.monotonic()
    solution, untouched = grade(lab, [ROOT / "solutions" / name, ROOT / "labs" / name],
                                out=tmp_path, jobs=2, timeout_cell=240, timeout_notebook=900,
                                stream=io.StringIO(), whole_notebook=not whole)
    record_property("other_mode_seconds", round(time.monotonic() - start, 1))
    assert _scores(solution) == _scores(run.solution), lab
    assert _scores(untouched) == _scores(run.untouched), lab
    for result in (solution, untouched):
        assert result.status == "graded", result.message
        assert not result.cell_errors, [(e.index, e.ename, e.message) for e in result.cell_errors]
    assert solution.total == solution.max_total
    assert untouched.total == 0
    assert {e.status for e in untouched.exercises} == {"not_attempted"}
