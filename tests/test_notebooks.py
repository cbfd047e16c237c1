"""Single-source notebooks: build-labs, solutions running in smoke, labs running past exercises."""

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from cnnlab.exercise import LABS, lab_exercises
from cnnlab.notebooks import (
    STUB,
    build_lab,
    build_labs,
    exercise_id,
    run_notebook,
    strip_solutions,
)

ROOT = Path(__file__).resolve().parent.parent
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
    exercise = nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION",
                                         metadata={"tags": ["exercise:01.x"]})
    exercise.outputs = [nbformat.v4.new_output("stream", text="1")]
    exercise.execution_count = 3
    notes = nbformat.v4.new_markdown_cell("answer: 1", metadata={"tags": ["solution-only"]})
    setup = nbformat.v4.new_code_cell("import cnnlab")
    lab = build_lab(_notebook(setup, exercise, notes))
    assert [c.source for c in lab.cells] == ["import cnnlab", "\n".join(STUB)]
    assert lab.cells[1].outputs == [] and lab.cells[1].execution_count is None
    assert lab.cells[0].metadata["editable"] is False
    assert lab.cells[1].metadata["editable"] is True
    assert all(c.metadata["deletable"] is False for c in lab.cells)


def test_build_lab_rejects_markers_outside_exercises_and_duplicate_tags():
    stray = nbformat.v4.new_code_cell("### BEGIN SOLUTION\n### END SOLUTION")
    with pytest.raises(ValueError, match="outside a cell tagged"):
        build_lab(_notebook(stray))
    tagged = {"tags": ["exercise:01.x"]}
    twice = [nbformat.v4.new_code_cell("### BEGIN SOLUTION\n### END SOLUTION", metadata=tagged)
             for _ in range(2)]
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


@pytest.mark.parametrize("path", SOLUTIONS, ids=IDS)
def test_solution_runs_top_to_bottom_in_the_smoke_profile(path):
    result = run_notebook(path, profile="smoke", timeout=300)
    assert result.status == "ok", f"cell {result.cell_index}: {result.error}"


@pytest.mark.parametrize("path", SOLUTIONS, ids=IDS)
def test_unsolved_lab_runs_past_every_exercise_thanks_to_checkpoints(path):
    """Every error in the untouched lab is a NotImplementedError raised by an exercise cell."""
    nb = nbformat.read(ROOT / "labs" / path.name, as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=300, allow_errors=True,
                            resources={"metadata": {"path": str(ROOT / "labs")}})
    client.execute(env={**os.environ, "CNNLAB_PROFILE": "smoke"})
    errors = [(i, exercise_id(c), o.ename) for i, c in enumerate(nb.cells)
              if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    unexpected = [e for e in errors if e[1] is None or e[2] != "NotImplementedError"]
    assert not unexpected, unexpected
    # a lab whose exercises are all functions raises nowhere: checks and checkpoints catch it
    assert all(exercise_id(nb.cells[i]) for i, _, _ in errors)


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
