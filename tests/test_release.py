"""``cnnlab release``: what students receive holds no answers, and every lab works from it alone.

The release is written once per module; one test installs its wheel into a fresh virtual
environment (the dependencies come from the kit's ``.venv`` through a ``.pth`` line, so nothing
is downloaded; cnnlab itself only from the wheel) and runs every untouched lab with Run All.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from cnnlab.exercise import LABS, lab_exercises
from cnnlab.grading.hidden import graded_exercises
from cnnlab.grading.release import NOT_FOR_STUDENTS, release
from cnnlab.notebooks import BEGIN, END
from cnnlab.cli import main as cli_main
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("release") / "course"
    release(out, kit=ROOT)
    return out


def _texts(folder: Path) -> dict[str, str]:
    """Every text file of the release (notebooks and images' names included)."""
    texts = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            try:
                texts[str(path.relative_to(folder))] = path.read_text()
            except UnicodeDecodeError:
                continue
    return texts


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


# --------------------------------------------------------------------------------------------
# What is in it


def test_the_release_holds_labs_images_cnnlab_and_the_students_files(released):
    assert sorted(p.name for p in released.iterdir()) == sorted(
        [".gitignore", "Makefile", "README.md", "cnnlab", "images", "labs", "pyproject.toml",
         "requirements.txt"])
    assert sorted(p.name for p in (released / "labs").iterdir()) == sorted(
        f"{stem}.ipynb" for stem in LABS.values())
    for name in LABS.values():  # built afresh from solutions/: the same as the kit's labs/
        fresh = nbformat.read(released / "labs" / f"{name}.ipynb", as_version=4)
        assert fresh == nbformat.read(ROOT / "labs" / f"{name}.ipynb", as_version=4), name
    assert sorted(p.relative_to(released / "images") for p in (released / "images").rglob("*")
                  if p.is_file()) == sorted(p.relative_to(ROOT / "images") for p in
                                            (ROOT / "images").rglob("*") if p.is_file())
    kit = {p.relative_to(ROOT / "cnnlab") for p in (ROOT / "cnnlab").rglob("*.py")}
    shipped = {p.relative_to(released / "cnnlab") for p in (released / "cnnlab").rglob("*")
               if p.is_file()}
    assert shipped == {p for p in kit if p.parts[0] != "grading"}
    readme = (released / "README.md").read_text()
    for step in ("make lab", "pip install -r requirements.txt", "cnnlab.check(",
                 "cnnlab.checkpoint(", "Submit", "exercise:NN.name"):
        assert step in readme, step


def test_the_students_requirements_leave_out_the_grader_and_the_tests(released):
    names = {re.split(r"[\s<>=!~\[;#]", line, maxsplit=1)[0].lower()
             for line in (released / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")}
    kit = {re.split(r"[\s<>=!~\[;#]", line, maxsplit=1)[0].lower()
           for line in (ROOT / "requirements.txt").read_text().splitlines()
           if line.strip() and not line.startswith("#")}
    assert names == kit - set(NOT_FOR_STUDENTS)
    assert {"tensorflow", "keras", "jupyterlab"} <= names
    pyproject = (released / "pyproject.toml").read_text()
    assert "copydetect" in (ROOT / "pyproject.toml").read_text() and "copydetect" not in pyproject
    assert 'exclude = ["cnnlab.grading*"]' in pyproject


def test_release_refuses_a_folder_that_holds_files_and_loses_nothing(tmp_path, capsys):
    (tmp_path / "course").mkdir()
    (tmp_path / "course" / "notes.txt").write_text("mine")
    assert cli_main(["release", str(tmp_path / "course")]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "course").iterdir()] == ["notes.txt"]
    with pytest.raises(ValueError, match="inside the kit's solutions/"):
        release(ROOT / "solutions" / "release", kit=ROOT)
    assert not (ROOT / "solutions" / "release").exists()


# --------------------------------------------------------------------------------------------
# What is not in it: the grader, points, hidden cases, solutions


def test_no_grader_and_no_points_table(released):
    assert not (released / "cnnlab" / "grading").exists()
    for path, text in _texts(released / "cnnlab").items():
        assert not re.search(r"\bPOINTS\s*[=:]", text), path  # no points table
        assert not re.search(r"\bpoints\s*=\s*\d", text), path
        assert "hidden=True" not in text and "Drawn(" not in text, path
    for lab in LABS:  # the instructor's side does have points for every exercise
        assert all(ex.points > 0 for ex in graded_exercises(lab))
        assert all(ex.points == 0 for ex in lab_exercises(lab))


def _hidden_inputs(lab: str):
    """``(exercise id, squeezed text of a hidden case's literal inputs)`` for every entry of
    ``cnnlab/grading/hidden/labNN.py`` that holds two literal tuples or lists of numbers or
    more (one alone, ``(5, 5, 64)``, is too common to search for), read from its source."""
    path = ROOT / "cnnlab" / "grading" / "hidden" / f"lab{lab}.py"
    source = path.read_text()
    tree = ast.parse(source)
    hidden = next(node.value for node in tree.body if isinstance(node, ast.Assign)
                  and any(getattr(t, "id", "") == "HIDDEN" for t in node.targets))
    for key, value in zip(hidden.keys, hidden.values):
        for entry in getattr(value, "elts", [value]):
            literals = [n for n in ast.walk(entry) if isinstance(n, (ast.Tuple, ast.List))
                        and len(n.elts) >= 2 and all(isinstance(e, (ast.Constant, ast.UnaryOp))
                                                     for e in n.elts)]
            if len(literals) >= 2:
                yield key.value, ",".join(_squeeze(ast.get_source_segment(source, n))
                                          for n in literals)


def _public_names() -> set[str]:
    return {case.name for lab in LABS for ex in lab_exercises(lab) for case in ex.cases}


def test_no_hidden_case_name_or_input_is_in_the_release(released):
    texts = _texts(released)
    squeezed = {path: _squeeze(text) for path, text in texts.items()}
    public = _public_names()
    names = inputs = 0
    for lab in LABS:
        for ex in graded_exercises(lab):
            for case in ex.cases:
                # a name a public case (of any lab) has or contains says nothing
                if not case.hidden or any(case.name in name for name in public):
                    continue
                names += 1
                found = [p for p, t in texts.items()
                         if re.search(rf"\b{re.escape(case.name)}\b", t)]
                assert not found, (ex.id, case.name, found)
        for ex_id, text in _hidden_inputs(lab):
            inputs += 1
            found = [p for p, t in squeezed.items() if text in t]
            assert not found, (ex_id, text, found)
    assert names >= 150 and inputs >= 20, (names, inputs)  # not a vacuous loop


def _solution_blocks(notebook) -> list[str]:
    blocks = []
    for cell in notebook.cells:
        for block in re.findall(re.escape(BEGIN) + r"(.*?)" + re.escape(END), cell.source,
                                flags=re.S):
            lines = [line.strip() for line in block.splitlines() if line.strip()
                     and not line.strip().startswith("#")]
            if len(lines) >= 2 or sum(map(len, lines)) >= 40:
                blocks.append("\n".join(lines))
    return blocks


def test_no_solution_block_is_in_the_release(released):
    normalised = {path: "\n".join(line.strip() for line in text.splitlines() if line.strip())
                  for path, text in _texts(released).items()}
    checked = 0
    for solution in sorted((ROOT / "solutions").glob("*.ipynb")):
        for block in _solution_blocks(nbformat.read(solution, as_version=4)):
            checked += 1
            found = [path for path, text in normalised.items() if block in text]
            assert not found, (solution.name, block[:80], found)
    assert checked >= 40  # every lab's exercises, not a vacuous loop
    for text in (released / "labs").glob("*.ipynb"):
        assert BEGIN not in text.read_text() and END not in text.read_text()


# --------------------------------------------------------------------------------------------
# The students' wheel, installed alone, runs every lab


@pytest.fixture(scope="module")
def wheel(released, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("wheel")
    # built as a student's pip builds it (build isolation: setuptools>=77 from the registry)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--wheel-dir", str(folder), str(released)], check=True, cwd=folder)
    (found,) = folder.glob("cnnlab-*.whl")
    return found


def test_the_wheel_holds_cnnlab_without_the_grader(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "cnnlab/exercises/lab01.py" in names and "cnnlab/selfcheck.py" in names
    assert not [n for n in names if n.startswith("cnnlab/grading")]
    assert not [n for n in names if n.startswith(("solutions/", "tests/"))]


@pytest.fixture(scope="module")
def fresh_python(wheel, tmp_path_factory) -> Path:
    """A new virtual environment with the students' wheel installed; the dependencies are the
    kit's (a .pth line to .venv's site-packages, which is not processed for .pth files, so the
    kit's editable cnnlab stays out)."""
    env = tmp_path_factory.mktemp("fresh") / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(env)], check=True)
    python = env / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; "
                           "print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    kit_site = next(p for p in sys.path if p.endswith("site-packages") and p.startswith(
        sys.prefix))
    Path(site, "kit-dependencies.pth").write_text(kit_site + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    str(wheel)], check=True)
    return python


def _fresh_run(python: Path, code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    return subprocess.run([str(python), "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_fresh_environment_has_the_students_cnnlab_and_no_grader(fresh_python, tmp_path):
    code = ("import json, cnnlab, cnnlab.exercise, importlib.util\n"
            "from cnnlab import *\n"
            "from cnnlab.exercise import lab_exercises\n"
            "print(json.dumps({'file': cnnlab.__file__, 'all': 'grading' in cnnlab.__all__,\n"
            " 'grading': importlib.util.find_spec('cnnlab.grading') is not None,\n"
            " 'points': sum(e.points for lab in cnnlab.exercise.LABS\n"
            "               for e in lab_exercises(lab)),\n"
            " 'hidden': sum(c.hidden for lab in cnnlab.exercise.LABS\n"
            "               for e in lab_exercises(lab) for c in e.cases)}))")
    result = _fresh_run(fresh_python, code, tmp_path)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["file"].startswith(str(fresh_python.parent.parent)), found
    assert found == {**found, "grading": False, "all": False, "points": 0, "hidden": 0}
    cli = subprocess.run([str(fresh_python.parent / "cnnlab"), "grade", "--lab", "01", "x"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert cli.returncode == 2 and "students' release" in cli.stderr


def test_self_checks_and_checkpoints_work_from_the_release(fresh_python, tmp_path):
    code = ("import cnnlab, numpy as np\n"
            "def correlate2d(image, kernel):\n"
            "    kh, kw = kernel.shape\n"
            "    return np.array([[np.sum(image[i:i + kh, j:j + kw] * kernel)\n"
            "                      for j in range(image.shape[1] - kw + 1)]\n"
            "                     for i in range(image.shape[0] - kh + 1)])\n"
            "print(cnnlab.check('01.correlate2d', correlate2d))\n"
            "print(cnnlab.check('01.correlate2d', lambda i, k: i))\n"
            "ns = {}\n"
            "cnnlab.checkpoint('01.correlate2d', ns)\n"
            "print('checkpoint', cnnlab.check('01.correlate2d', ns['correlate2d']).passed)\n")
    result = _fresh_run(fresh_python, code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "3/3 public tests pass" in result.stdout
    assert "0/3 public tests pass" in result.stdout
    assert "hidden tests also run when the lab is graded" in result.stdout
    assert "checkpoint True" in result.stdout


def test_every_untouched_lab_runs_to_the_end_from_the_release_alone(fresh_python, released,
                                                                     tmp_path):
    # first a notebook that fails unless its kernel runs the fresh environment's cnnlab
    where = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import sys, importlib.util, cnnlab\n"
        "assert cnnlab.__file__.startswith(sys.prefix), (cnnlab.__file__, sys.prefix)\n"
        f"assert sys.prefix == {str(fresh_python.parent.parent)!r}, sys.prefix\n"
        "assert importlib.util.find_spec('cnnlab.grading') is None")])
    nbformat.write(where, tmp_path / "where.ipynb")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env["CNNLAB_PROFILE"] = "smoke"
    result = subprocess.run([str(fresh_python.parent / "cnnlab"), "run",
                             str(tmp_path / "where.ipynb"), "labs/", "--profile", "smoke",
                             "--timeout", "600"], cwd=released, env=env, capture_output=True,
                            text=True, timeout=1800)
    print(result.stdout[-3000:])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for name in ["where", *LABS.values()]:
        assert re.search(rf"^{name}.ipynb\s+ok\b", result.stdout, flags=re.M), \
            (name, result.stdout[-2000:])
