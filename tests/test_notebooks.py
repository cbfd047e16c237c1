"""Single-source notebooks: build-labs, solutions running in smoke, labs running past exercises."""

import ast
import re
import subprocess
import sys

import nbformat
import pytest
from cnnlab.exercise import LABS, lab_exercises
from cnnlab.notebooks import (
    STUB,
    build_lab,
    build_labs,
    exercise_id,
    strip_solutions,
)
from tests.conftest import ROOT

SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
IDS = [p.stem[:2] for p in SOLUTIONS]


def test_strip_solutions_keeps_indentation_and_surrounding_code():
    source = ("def f(x):\n    y = 1\n"
              "    ### BEGIN SOLUTION\n    return x + y\n    ### END SOLUTION\n")
    assert strip_solutions(source) == (
        "def f(x):\n    y = 1\n    # YOUR CODE HERE\n    raise NotImplementedError()"
    )


@pytest.mark.parametrize("source, message", [
    ("### BEGIN SOLUTION\nx = 1\n", "never closed"),
    ("x = 1\n### END SOLUTION\n", "without"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "inside another"),
])
def test_strip_solutions_rejects_broken_markers(source, message):
    with pytest.raises(ValueError, match=message):
        strip_solutions(source)


def _notebook(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return nb


def test_build_lab_clears_outputs_locks_cells_and_drops_solution_only_cells():
    exercise = nbformat.v4.new_code_cell(
        "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION",
        metadata={"tags": ["exercise:01.x"]})
    exercise.outputs = [nbformat.v4.new_output("stream", text="1")]
    exercise.execution_count = 3
    notes = nbformat.v4.new_markdown_cell("answer: 1", metadata={"tags": ["solution-only"]})
    setup = nbformat.v4.new_code_cell("import cnnlab")
    lab = build_lab(_notebook(setup, exercise, notes))
    stub = "def f():\n    " + "\n    ".join(STUB)
    assert [c.source for c in lab.cells] == ["import cnnlab", stub]
    assert lab.cells[1].outputs == [] and lab.cells[1].execution_count is None
    assert lab.cells[0].metadata["editable"] is False
    assert lab.cells[1].metadata["editable"] is True
    assert all(c.metadata["deletable"] is False for c in lab.cells)


def test_build_lab_rejects_markers_outside_exercises_and_duplicate_tags():
    stray = nbformat.v4.new_code_cell("### BEGIN SOLUTION\n### END SOLUTION")
    with pytest.raises(ValueError, match="outside a cell tagged"):
        build_lab(_notebook(stray))
    tagged = {"tags": ["exercise:01.x"]}
    twice = [nbformat.v4.new_code_cell("x = None\n### BEGIN SOLUTION\n### END SOLUTION",
                                       metadata=tagged) for _ in range(2)]
    with pytest.raises(ValueError, match="two cells"):
        build_lab(_notebook(*twice))


def test_build_labs_check_detects_out_of_date_and_stale_labs(tmp_path):
    labs = tmp_path / "labs"
    written = build_labs(ROOT / "solutions", labs)
    assert sorted(written) == [p.name for p in SOLUTIONS]
    assert build_labs(ROOT / "solutions", labs, check=True) == []
    first = labs / SOLUTIONS[0].name
    first.write_text(first.read_text().replace("YOUR CODE HERE", "my edit"))
    (labs / "99_stale.ipynb").write_text("{}")
    assert build_labs(ROOT / "solutions", labs, check=True) == [first.name, "99_stale.ipynb"]


@pytest.mark.slow
def test_committed_labs_are_up_to_date_with_solutions():
    result = subprocess.run([sys.executable, "-m", "cnnlab.cli", "build-labs", "--check"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("path", SOLUTIONS, ids=IDS)
def test_solution_exercise_tags_match_the_exercise_definitions(path):
    nb = nbformat.read(path, as_version=4)
    tags = [exercise_id(c) for c in nb.cells if exercise_id(c)]
    lab = path.stem[:2]
    assert LABS[lab] == path.stem
    assert tags == [ex.id for ex in lab_exercises(lab)]
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells)
    assert all(c.outputs == [] for c in nb.cells if c.cell_type == "code"), "commit no outputs"


# Executing every solution and every untouched lab (no error anywhere, full marks and zero)
# happens once per lab, through the grader, in tests/test_labs.py and tests/test_grading.py.


def test_a_value_exercise_block_becomes_a_stub_that_does_not_raise():
    cell = nbformat.v4.new_code_cell(
        "answer = None  # fill in\n### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION",
        metadata={"tags": ["exercise:01.answer"]})
    lab = build_lab(_notebook(cell))
    assert lab.cells[0].source == "answer = None  # fill in\n# YOUR CODE HERE"
    namespace = {}
    exec(lab.cells[0].source, namespace)  # Run All: the cell runs, the value stays None
    assert namespace["answer"] is None


@pytest.mark.parametrize("source, message", [
    ("for i in range(3):\n    ### BEGIN SOLUTION\n    pass\n    ### END SOLUTION",
     "outside a function"),
    ("### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION", "must start with `name = None`"),
])
def test_build_lab_refuses_exercises_that_would_stop_run_all(source, message):
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["exercise:01.answer"]})
    with pytest.raises(ValueError, match=message):
        build_lab(_notebook(cell))


def _cells_after_exercises(path):
    nb = nbformat.read(path, as_version=4)
    for index, cell in enumerate(nb.cells):
        ex_id = exercise_id(cell)
        if ex_id:
            yield ex_id, nb.cells[index + 1] if index + 1 < len(nb.cells) else None


@pytest.mark.parametrize("path", SOLUTIONS, ids=IDS)
def test_every_exercise_is_followed_by_its_own_self_check(path):
    """The check right after an exercise names that exercise and the object the grader reads."""
    exercises = {ex.id: ex for ex in lab_exercises(path.stem[:2])}
    for ex_id, following in _cells_after_exercises(path):
        expected = f'cnnlab.check("{ex_id}", {exercises[ex_id].name})'
        assert following is not None and following.source.strip() == expected, (
            f"{path.name}: the cell after exercise {ex_id} must be exactly {expected}")


def _imported_names(nb):
    names = set()
    for cell in nb.cells:
        if cell.cell_type != "code" or exercise_id(cell):
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue  # IPython magics
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


@pytest.mark.parametrize("path", SOLUTIONS, ids=IDS)
def test_exercise_parameters_never_shadow_an_imported_module(path):
    """A parameter called `kernels` next to `from cnnlab import kernels` invites a broken lab."""
    nb = nbformat.read(path, as_version=4)
    imported = _imported_names(nb)
    for cell in nb.cells:
        if not exercise_id(cell):
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, (ast.FunctionDef, ast.Lambda)):
                arguments = node.args.args + node.args.kwonlyargs + node.args.posonlyargs
                clash = {a.arg for a in arguments} & imported
                assert not clash, f"{path.name}, {exercise_id(cell)}: parameter(s) {clash} " \
                                  "shadow an imported name"


@pytest.mark.slow
def test_run_stops_at_the_first_error_and_names_the_cell(tmp_path):
    nb = _notebook(nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("1 / 0"),
                   nbformat.v4.new_code_cell("print('never')"))
    path = tmp_path / "01_broken.ipynb"
    nbformat.write(nb, path)
    result = subprocess.run([sys.executable, "-m", "cnnlab.cli", "run", str(tmp_path)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 1
    assert "failed in cell 1" in result.stdout and "ZeroDivisionError" in result.stdout
    assert "01_broken.ipynb  failed" in result.stdout


# A cell that trains (fit, fine_tune, a sweep) shows its progress: an `EpochProgress(progress=True)`
# callback or a `tqdm` bar over its runs, or `fit_quietly`'s line per epoch (issue 15 §1).  The
# exceptions train for a few seconds at most; each names why, with its measured smoke time.
TRAINS = re.compile(r"\.fit\(|\bfit_quietly\(|fine_tune\(|\bweight_scale_sweep\(")
SHOWS_PROGRESS = re.compile(r"EpochProgress\(progress=True\)|\btqdm\(|\bfit_quietly\(|"
                            r"\bweight_scale_sweep\(")  # the sweep's progress=True is its default
SHORT_FITS = {
    ("01", "learner.fit(pairs_x, pairs_y"): "one epoch on nine pairs: under a second",
    ("06", "history = model.fit(train_flow, epochs=1"): "one epoch, the Keras 2 migration: 1 s",
    ("09", "two_phase_fine_tune(plain, base"): "the student's own function, whose fits are "
                                               "theirs (2 + 1 short epochs: 4 s)",
    ("09", "model.fit(x[order], y[order], batch_size=batch_size"): "fit_epochs is only defined "
                                                                   "here; the table that runs it "
                                                                   "has its tqdm bar",
    ("09", "model.fit(x[order], y[order], batch_size=64"): "train_passes: one Keras epoch per "
                                                           "run on digit features, 3 s in all",
}


def _training_cells():
    """(lab, first training line, source) of every solution code cell that trains, exercise
    cells (the student's own function) left out."""
    for lab, name in LABS.items():
        nb = nbformat.read(ROOT / "solutions" / f"{name}.ipynb", as_version=4)
        for cell in nb.cells:
            tags = cell.metadata.get("tags", [])
            if cell.cell_type != "code" or any(t.startswith("exercise:") for t in tags):
                continue
            lines = [line.strip() for line in cell.source.splitlines() if TRAINS.search(line)]
            if lines:
                yield lab, lines, cell.source


def test_every_cell_that_trains_shows_its_progress_or_is_a_named_short_fit():
    silent, short_seen = [], set()
    for lab, lines, source in _training_cells():
        allowed = [key for key in SHORT_FITS if key[0] == lab
                   and any(line.startswith(key[1]) for line in lines)]
        short_seen.update(allowed)
        if not SHOWS_PROGRESS.search(source) and not allowed:
            silent.append(f"Lab {lab}: {lines[0]}")
    assert not silent, ("cells that train without a progress bar (add callbacks="
                        "[EpochProgress(progress=True)] or a tqdm over the runs, or name a "
                        "short fit in SHORT_FITS): " + "; ".join(silent))
    stale = set(SHORT_FITS) - short_seen
    assert not stale, f"SHORT_FITS names cells that no longer train: {sorted(stale)}"
