"""The grader, end to end: real kernels, adversarial submissions, every lab's solution and lab.

Lab 01 carries the full adversarial suite (including cells that hand back cnnlab's own answer,
and cells that raise); every lab's solution (full marks) and untouched lab (zero, all
not_attempted) are checked in tests/test_labs.py, from one grading run per lab.  The static
reading of exercise cells (:mod:`cnnlab.grading.integrity`) is tested without kernels.
"""

import csv
import functools
import io
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest


from cnnlab.exercise import LABS, exercise, lab_exercises
from cnnlab.grading import default_jobs, grade, prepare_submission
from cnnlab.grading.export import cnnlab_origin
from cnnlab.grading.hidden import graded_exercises
from cnnlab.grading.integrity import (
    canonical_name,
    cell_flags,
    implementations,
    submission_flags,
)
from cnnlab.grading.runner import traceback_frames
from cnnlab.notebooks import build_lab, exercise_id
from tests.conftest import ROOT

LAB01 = ROOT / "solutions" / f"{LABS['01']}.ipynb"
EXERCISES_01 = graded_exercises("01")
TOTAL_01 = sum(ex.points for ex in EXERCISES_01)
# Two notebooks stub every exercise between them (alternate exercises, so each stubbed one sits
# between solved ones): each stubbed exercise loses exactly its own points.
STUB_GROUPS = {"stubs_a": [ex.id for ex in EXERCISES_01[0::2]],
               "stubs_b": [ex.id for ex in EXERCISES_01[1::2]]}
POINTS_01 = {ex.id: ex.points for ex in EXERCISES_01}


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
    # one exercise cell missing, another answered with objects whose __eq__ always says True
    # (a shape and a count for every layer it is asked about)
    _variant(folder, "forged_missing", {"01.filter_shapes": (
        "class Anything(tuple):\n    def __eq__(self, other):\n        return True\n"
        "    __hash__ = tuple.__hash__\n"
        "class AnyInt(int):\n    def __eq__(self, other):\n        return True\n"
        "    __hash__ = int.__hash__\n"
        "def filter_shapes(input_channels, layers):\n"
        "    return {'shapes': {name: Anything() for name in layers},\n"
        "            'params': {name: AnyInt() for name in layers}}")},
        drop=("01.to_grayscale",))
    _variant(folder, "reordered", {}, shuffle=True)
    (folder / "truncated.ipynb").write_text(LAB01.read_text()[:2000])
    lab = nbformat.read(ROOT / "labs" / LAB01.name, as_version=4)
    stubs = {exercise_id(c): c.source for c in lab.cells if exercise_id(c)}
    for name, group in STUB_GROUPS.items():  # the solution with these exercises as shipped
        _variant(folder, name, {ex_id: stubs[ex_id] for ex_id in group})
    _variant(folder, "cheats", CHEATS)
    _variant(folder, "indirect", INDIRECT)
    _variant(folder, "errors", ERRORS)
    out = tmp_path_factory.mktemp("results")
    log = io.StringIO()
    # 45 s a cell: the first `import keras` can take over 20 s on a loaded 2-core machine
    results = grade("01", [folder], out=out, jobs=2, timeout_cell=45, timeout_notebook=400,
                    max_memory_gb=3, stream=log, keep_executed=True)
    by_name = {r.submission: r for r in results}
    # Not registered in tests/lab_runs.LAB_RUNS: this batch grades as `cnnlab grade` does, demo
    # cells skipped, and the lab tests read what the demonstrations print (whole notebook).
    return by_name, out, log.getvalue(), folder


def _solution_cell(ex_id: str) -> str:
    nb = nbformat.read(LAB01, as_version=4)
    return next(c.source for c in nb.cells if exercise_id(c) == ex_id)


# Both routes to the reference, and (01.conv2d_multi) cnnlab used legitimately in an exercise
# cell: another exercise's function, ops.pool2d, arithmetic.conv_output_size.
CHEATS = {
    "01.correlate2d": "from cnnlab.ops import correlate2d",
    "01.convolve2d": ('import cnnlab\n'
                      'convolve2d = cnnlab.exercise.exercise("01.convolve2d").reference()'),
    "01.conv2d_multi": _solution_cell("01.conv2d_multi").replace(
        "    ### BEGIN SOLUTION\n",
        "    ### BEGIN SOLUTION\n"
        "    from cnnlab import ops\n"
        "    assert ops.pool2d(np.ones((2, 2)), 2).shape == (1, 1)\n"
        "    assert cnnlab.arithmetic.conv_output_size(x.shape[0], 1) == x.shape[0]\n", 1),
}

# Routes to cnnlab's own implementation that no reading of a cell follows (issue 14): a computed
# sys.modules key, an alias made in another exercise's cell, the module's source loaded again
# as a module of the cell's own; and a cell that switches the grader's call check off.
INDIRECT = {
    "01.correlate2d": ("import importlib, sys\n"
                       "importlib.import_module('cnnlab.' + 'o' + 'ps')\n"
                       "def correlate2d(image, kernel):\n"
                       "    module = sys.modules['cnnlab.' + 'o' + 'ps']\n"
                       "    return module.correlate2d(image, kernel)\n"),
    "01.to_grayscale": _solution_cell("01.to_grayscale") + (
        "\n_borrowed = vars(__import__('importlib').import_module('cnnlab.' + 'ops'))"
        "['convolve' + '2d']\n"),
    "01.convolve2d": "def convolve2d(image, kernel):\n    return _borrowed(image, kernel)\n",
    "01.conv2d_multi": ("import importlib, inspect, types\n"
                        "_mine = types.ModuleType('mine')\n"
                        "_source = inspect.getsource(importlib.import_module('cnnlab.' + 'ops'))\n"
                        "exec(_source, _mine.__dict__)\n"
                        "def conv2d_multi(x, kernels, bias=None):\n"
                        "    return _mine.conv2d(x, kernels, bias)\n"),
    "01.keras_conv": _solution_cell("01.keras_conv").replace(
        "    ### BEGIN SOLUTION\n",
        "    ### BEGIN SOLUTION\n    __import__('sys').setprofile(None)\n", 1),
}

# Cells that raise: a syntax error, an error deep in a helper (line 8) called at line 10,
# a function that raises when the grader tests it, a NameError at top level.
ERRORS = {
    "01.to_grayscale": "def to_grayscale(image):\n    x = (\n    return x\n",
    "01.correlate2d": (
        "def correlate2d(image, kernel):\n"
        "    image = np.asarray(image, dtype=float)\n"
        "    kernel = np.asarray(kernel, dtype=float)\n"
        "    return _scale(image) * kernel.sum()\n"
        "\n"
        "\n"
        "def _scale(image):\n"
        "    return 1 / (len(image) - len(image))\n"
        "\n"
        "correlate2d(np.ones((3, 3)), np.ones((2, 2)))\n"),
    "01.convolve2d": "def convolve2d(image, kernel):\n    raise ValueError('boom')\n",
    "01.conv2d_multi": "x = 1\nundefined_name_here\n",
}


def _statuses(result):
    return {e.id: e.status for e in result.exercises}


@pytest.mark.slow
def test_solution_scores_full_marks(lab01_batch):
    results, *_ = lab01_batch
    assert results["solution"].total == TOTAL_01
    assert set(_statuses(results["solution"]).values()) == {"pass"}


@pytest.mark.slow
def test_untouched_lab_scores_zero_with_every_exercise_not_attempted(lab01_batch):
    results, *_ = lab01_batch
    assert results["untouched"].status == "graded"
    assert results["untouched"].total == 0
    assert set(_statuses(results["untouched"]).values()) == {"not_attempted"}


@pytest.mark.slow
@pytest.mark.parametrize("ex", EXERCISES_01, ids=[e.id for e in EXERCISES_01])
def test_a_stubbed_exercise_loses_exactly_its_points(lab01_batch, ex):
    results, *_ = lab01_batch
    name, group = next((n, g) for n, g in STUB_GROUPS.items() if ex.id in g)
    result = results[name]
    points = {e.id: e.points for e in result.exercises}
    assert points[ex.id] == 0 and _statuses(result)[ex.id] == "not_attempted"
    for other in set(POINTS_01) - set(group):  # the solved ones around it keep every point
        assert points[other] == POINTS_01[other] and _statuses(result)[other] == "pass"
    assert result.total == TOTAL_01 - sum(POINTS_01[e] for e in group)


@pytest.mark.slow
def test_an_infinite_loop_times_out_and_the_rest_is_graded(lab01_batch):
    results, *_ = lab01_batch
    statuses = _statuses(results["hang"])
    assert statuses.pop("01.convolve2d") == "timeout"
    assert set(statuses.values()) == {"pass"}


@pytest.mark.slow
def test_os_exit_is_reported_as_kernel_died(lab01_batch):
    results, *_ = lab01_batch
    statuses = _statuses(results["exit"])
    assert statuses["01.conv2d_multi"] == "kernel_died"
    assert statuses["01.keras_conv"] == "kernel_died"
    assert statuses["01.correlate2d"] == "pass"  # exported before the kernel died
    assert results["exit"].status == "kernel_died"


@pytest.mark.slow
def test_a_memory_blow_up_is_stopped_and_reported(lab01_batch):
    results, *_ = lab01_batch
    statuses = _statuses(results["memory"])
    assert statuses["01.conv2d_multi"] == "kernel_died"
    assert statuses["01.correlate2d"] == "pass"


@pytest.mark.slow
def test_an_object_with_forged_equality_does_not_pass(lab01_batch):
    results, *_ = lab01_batch
    assert _statuses(results["forged_missing"])["01.filter_shapes"] == "fail"
    assert results["forged_missing"].total == (
        TOTAL_01 - POINTS_01["01.filter_shapes"] - POINTS_01["01.to_grayscale"])


@pytest.mark.slow
def test_a_missing_exercise_scores_zero_as_missing(lab01_batch):
    results, *_ = lab01_batch
    statuses = _statuses(results["forged_missing"])
    assert statuses.pop("01.to_grayscale") == "missing"
    assert statuses.pop("01.filter_shapes") == "fail"  # the forged one
    assert set(statuses.values()) == {"pass"}


@pytest.mark.slow
def test_reordered_and_duplicated_exercise_cells_are_matched_by_tag(lab01_batch):
    results, *_ = lab01_batch
    assert results["reordered"].total == TOTAL_01


@pytest.mark.slow
def test_a_truncated_notebook_gets_an_error_row(lab01_batch):
    results, out, *_ = lab01_batch
    assert results["truncated"].status == "unreadable"
    assert set(_statuses(results["truncated"]).values()) == {"error"}
    rows = {r["submission"]: r for r in csv.DictReader((out / "scores.csv").open())}
    assert rows["truncated"]["total"] == "0"
    assert len(rows) == len(results)


@pytest.mark.slow
def test_reports_list_every_submission_with_feedback(lab01_batch):
    results, out, *_ = lab01_batch
    rows = list(csv.DictReader((out / "scores.csv").open()))
    assert {r["submission"] for r in rows} == set(results)
    assert rows[0].keys() >= {"01.correlate2d", "01.correlate2d:status", "total", "status"}
    feedback = (out / "feedback" / "stubs_b.md").read_text()
    assert "## 01.correlate2d: not_attempted" in feedback
    solution = (out / "feedback" / "solution.md").read_text()
    assert "hidden test `larger_image`: pass" in solution  # hidden tests named, not described
    assert "public test `lecture_5x5_example`: pass" in solution


@pytest.mark.slow
def test_regrading_gives_identical_scores_with_one_job_per_core_by_default(lab01_batch,
                                                                           tmp_path):
    results, _, _, folder = lab01_batch
    log = io.StringIO()
    again = grade("01", [folder / "solution.ipynb", folder / "stubs_a.ipynb"],
                  out=tmp_path, stream=log)
    for result in again:
        assert _statuses(result) == _statuses(results[result.submission])
        assert result.total == results[result.submission].total
    assert f"with {default_jobs()} job(s)" in log.getvalue()


@pytest.mark.slow
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


# --------------------------------------------------------------------------------------------
# Timing, jobs


@pytest.mark.slow
def test_each_submission_and_the_batch_total_are_timed(lab01_batch):
    results, _, log, _ = lab01_batch
    for name, result in results.items():
        if result.status != "unreadable":
            assert re.search(rf"^  {re.escape(name)}: .*, \d+\.\d s\)", log, re.M), name
    total = re.search(r"^graded (\d+) submission\(s\) in (\d+\.\d) s with 2 job\(s\): "
                      r"(\d+\.\d) s per submission \(each ran (\d+\.\d) s on average\)$", log, re.M)
    assert total, log
    count, wall, per = int(total[1]), float(total[2]), float(total[3])
    assert count == len(results)
    assert per == pytest.approx(wall / count, abs=0.06)


def test_jobs_default_to_the_cores_this_process_may_use():
    from cnnlab.cli import parser

    assert default_jobs() == len(os.sched_getaffinity(0))
    args = parser().parse_args(["grade", "--lab", "01", "subs/"])
    assert args.jobs is None  # grade() then uses default_jobs()
    assert parser().parse_args(["grade", "--lab", "01", "subs/", "--jobs", "3"]).jobs == 3


def _make_grade_command(*extra):
    """The command `make grade` would run with the variables ``extra`` (`make -n`)."""
    # --no-print-directory and a clean MAKEFLAGS: under `make test` this make is a sub-make,
    # which would print "make[1]: Leaving directory ..." as its last line
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    lines = subprocess.run(["make", "--no-print-directory", "-n", "grade", *extra], cwd=ROOT,
                           capture_output=True, text=True, check=True, env=env).stdout
    return [line for line in lines.splitlines() if not line.startswith("make")][-1]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_grade_passes_jobs_only_when_given():
    dry = _make_grade_command
    assert dry("JOBS=3").endswith("--jobs 3")
    assert "--jobs" not in dry() and "--secret" not in dry()
    assert "--secret /srv/course-secret" in dry("SECRET=/srv/course-secret")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_grade_passes_whole_notebook_only_when_asked():
    assert "--whole-notebook" not in _make_grade_command()
    assert "--whole-notebook" in _make_grade_command("WHOLE_NOTEBOOK=1")


# --------------------------------------------------------------------------------------------
# Flags: a cell that hands back cnnlab's own answer


@pytest.mark.slow
def test_importing_the_reference_is_flagged_and_still_scored(lab01_batch):
    results, *_ = lab01_batch
    rows = {e.id: e for e in results["cheats"].exercises}
    assert "imports cnnlab.ops.correlate2d" in rows["01.correlate2d"].flag
    assert "is cnnlab.ops.correlate2d from cnnlab" in rows["01.correlate2d"].flag  # run time
    assert rows["01.correlate2d"].status == "pass"  # instructors decide, the score stands


@pytest.mark.slow
def test_calling_the_exercise_reference_is_flagged_and_still_scored(lab01_batch):
    results, *_ = lab01_batch
    flag = next(e for e in results["cheats"].exercises if e.id == "01.convolve2d").flag
    assert "uses cnnlab.exercise.exercise" in flag and "`.reference`" in flag
    assert _statuses(results["cheats"])["01.convolve2d"] == "pass"


@pytest.mark.slow
def test_calls_of_cnnlab_s_implementation_by_any_route_are_flagged_and_still_scored(
        lab01_batch):
    results, *_ = lab01_batch
    rows = {e.id: e for e in results["indirect"].exercises}
    for ex_id, name in (("01.correlate2d", "cnnlab.ops.correlate2d"),
                        ("01.convolve2d", "cnnlab.ops.convolve2d"),
                        ("01.conv2d_multi", "cnnlab.ops.conv2d")):
        assert f"its tests called {name}" in rows[ex_id].flag, (ex_id, rows[ex_id].flag)
        assert rows[ex_id].status == "pass"
    assert "switched off the grader's call check" in rows["01.keras_conv"].flag
    assert rows["01.keras_conv"].status == "pass"
    assert results["indirect"].total == TOTAL_01  # a flag is a note, never a deduction
    # and no honest answer is reported as calling cnnlab's implementation
    for name in ("solution", "reordered", "stubs_a", "stubs_b", "errors"):
        assert "its tests called" not in results[name].flagged, (name, results[name].flagged)
        assert "call check" not in results[name].flagged, (name, results[name].flagged)


@pytest.mark.slow
def test_legitimate_uses_of_cnnlab_in_an_exercise_cell_are_not_flagged(lab01_batch):
    results, *_ = lab01_batch
    rows = {e.id: e for e in results["cheats"].exercises}
    assert rows["01.conv2d_multi"].flag == "" and rows["01.conv2d_multi"].status == "pass"
    assert rows["01.to_grayscale"].flag == ""
    assert results["cheats"].total == TOTAL_01
    for name in ("solution", "untouched", "errors", "stubs_b"):
        assert results[name].flagged == "", name


@pytest.mark.slow
def test_flags_reach_the_csv_the_json_and_the_feedback(lab01_batch):
    results, out, *_ = lab01_batch
    rows = {r["submission"]: r for r in csv.DictReader((out / "scores.csv").open())}
    assert rows["cheats"]["flagged"].startswith("01.correlate2d: imports cnnlab.ops.correlate2d")
    assert "01.convolve2d: " in rows["cheats"]["flagged"]
    assert rows["solution"]["flagged"] == ""
    data = {r["submission"]: r for r in json.loads((out / "scores.json").read_text())}
    assert data["cheats"]["flagged"] == rows["cheats"]["flagged"]
    assert "imports cnnlab.ops.correlate2d" in data["cheats"]["exercises"]["01.correlate2d"]["flag"]
    feedback = (out / "feedback" / "cheats.md").read_text()
    section = feedback.split("## 01.correlate2d")[1].split("## ")[0]
    assert "- flagged for your instructor (scored as usual): imports cnnlab.ops.correlate2d" \
        in section


_CORRELATE2D = exercise("01.correlate2d")
_ALIASES = {"cnnlab": "cnnlab", "np": "numpy", "kernels": "cnnlab.kernels"}  # as Lab 01 binds

FLAGGED_CELLS = {
    "from_import": "from cnnlab.ops import correlate2d",
    "module_alias": ("import cnnlab.ops as o\n"
                     "def correlate2d(i, k):\n    return o.correlate2d(i, k)"),
    "dotted": "import cnnlab.ops\ncorrelate2d = cnnlab.ops.correlate2d",
    "from_cnnlab_import_ops": "from cnnlab import ops\nm = ops\ncorrelate2d = m.correlate2d",
    "setup_cell_alias": ("def correlate2d(image, kernel):\n"
                         "    return ops.correlate2d(image, kernel)"),
    "exercise_reference": 'correlate2d = cnnlab.exercise.exercise("01.correlate2d").reference()',
    "imported_exercise": ("from cnnlab.exercise import exercise\n"
                          "correlate2d = exercise('01.correlate2d').reference()"),
    "lab_exercises": ("from cnnlab.exercise import lab_exercises\n"
                      "correlate2d = lab_exercises('01')[1].reference()"),
    "exercises_module": "import cnnlab.exercises.lab01 as lab\ncorrelate2d = lab.CORRELATE2D",
    "checkpoint": 'cnnlab.checkpoint("01.correlate2d", globals())',
    "expected": "f = lambda i, k: cnnlab.exercise.exercise('01.correlate2d').cases[0].expected()",
    "import_module": ("import importlib\n"
                      "correlate2d = importlib.import_module('cnnlab.ops').correlate2d"),
    "getattr": "correlate2d = getattr(cnnlab.ops, 'correlate2d')",
    "getattr_computed": "correlate2d = getattr(cnnlab.ops, 'correlate' + '2d')",
    "dunder_import": "correlate2d = __import__('cnnlab.ops').ops.correlate2d",
    "dunder_import_computed": "m = __import__('cnn' + 'lab.ops')",
    "sys_modules": "import sys\ncorrelate2d = sys.modules['cnnlab.ops'].correlate2d",
    "vars": "correlate2d = vars(cnnlab.ops)['correlate2d']",
    "star_import": "from cnnlab.ops import *",
    "exec_constant": "exec('from cnnlab.ops import correlate2d')",
    "exec_computed": "exec(''.join(['from cnnlab.ops ', 'import correlate2d']))",
    "magic": "%time y = cnnlab.ops.correlate2d(a, b)",
    "import_after_use": ("def correlate2d(i, k):\n    return o.correlate2d(i, k)\n"
                         "import cnnlab.ops as o"),
    "grader": "import cnnlab.grading.export",
}

CLEAN_CELLS = {
    "own_loops": _solution_cell("01.correlate2d"),
    "other_cnnlab_functions": (
        "from cnnlab import ops, arithmetic\nimport keras\n"
        "def correlate2d(image, kernel):\n"
        "    h = arithmetic.conv_output_size(image.shape[0], kernel.shape[0])\n"
        "    w = cnnlab.arithmetic.conv_output_size(image.shape[1], kernel.shape[1])\n"
        "    assert ops.pool2d(np.ones((2, 2)), 2).shape == (1, 1)\n"
        "    return np.zeros((h, w))"),
    "a_parameter_named_like_a_module": (
        "def correlate2d(image, kernels, ops=None):\n"
        "    kernels = np.asarray(kernels)\n    return ops.correlate2d(np.asarray(kernels))"),
    "self_check_and_version": ("def correlate2d(a, b):\n    return a\n"
                               "cnnlab.check('01.correlate2d', correlate2d)\n"
                               "print(cnnlab.__version__)"),
    "rebinding_a_module_name": "kernels = np.ones(3)\nprint(np.asarray(kernels))",
}


@pytest.mark.parametrize("source", FLAGGED_CELLS.values(), ids=FLAGGED_CELLS)
def test_every_route_to_the_reference_is_flagged(source):
    forbidden = implementations(_CORRELATE2D)
    assert forbidden == ("cnnlab.ops.correlate2d",)
    assert cell_flags(source, forbidden, {**_ALIASES, "ops": "cnnlab.ops"})


@pytest.mark.parametrize("source", CLEAN_CELLS.values(), ids=CLEAN_CELLS)
def test_legitimate_cells_are_not_flagged(source):
    assert cell_flags(source, implementations(_CORRELATE2D), _ALIASES) == []


def test_another_exercises_cnnlab_function_is_not_flagged():
    conv_transpose = implementations(exercise("02.conv_transpose"))
    source = ("def conv_transpose(y, kernel, input_size):\n"
              "    return ops.conv_matrix(input_size, kernel).T @ y.ravel()")
    assert cell_flags(source, conv_transpose, {"ops": "cnnlab.ops"}) == []
    assert cell_flags("from cnnlab.ops import conv_transpose2d", conv_transpose)


def test_reexports_resolve_to_the_defining_module():
    assert canonical_name("cnnlab.checkpoint") == ("cnnlab.selfcheck.checkpoint", "object")
    assert canonical_name("cnnlab.ops") == ("cnnlab.ops", "module")
    assert canonical_name("numpy.zeros")[1] == "other"


def test_every_listed_implementation_is_a_cnnlab_definition_and_is_flagged():
    known = {ex.id: ex for lab in LABS if (ROOT / "cnnlab" / "exercises" / f"lab{lab}.py").exists()
             for ex in lab_exercises(lab)}
    assert any(ex.implementations for ex in known.values())
    for ex_id, ex in known.items():
        for name in ex.implementations:
            assert canonical_name(name) == (name, "object"), name
            module, _, attr = name.rpartition(".")
            flags = cell_flags(f"from {module} import {attr}", implementations(known[ex_id]))
            assert flags == [f"imports {name}"], (ex_id, name, flags)


def test_a_reference_that_is_a_cnnlab_function_is_forbidden_automatically():
    # 04.build_my_convnet's reference is cnnlab.models.build_convnet; 01.correlate2d's is ops'
    assert "cnnlab.models.classic.build_convnet" in implementations(exercise("04.build_my_convnet"))
    assert "cnnlab.ops.conv2d" in implementations(exercise("01.conv2d_multi"))


@pytest.mark.parametrize("lab", [lab for lab in LABS
                                 if (ROOT / "solutions" / f"{LABS[lab]}.ipynb").exists()])
def test_no_solution_or_lab_cell_is_flagged(lab):
    name = f"{LABS[lab]}.ipynb"
    template = build_lab(nbformat.read(ROOT / "solutions" / name, as_version=4), name)
    exercises = lab_exercises(lab)
    for folder in ("solutions", "labs"):
        submission = nbformat.read(ROOT / folder / name, as_version=4)
        nb, positions, missing = prepare_submission(template, submission, exercises)
        assert submission_flags(nb, positions, exercises, skip=missing) == {}, folder


def test_a_cnnlab_function_handed_back_is_seen_at_run_time():
    from cnnlab import ops

    def mine(image, kernel):
        return image

    assert cnnlab_origin(ops.correlate2d) == "cnnlab.ops.correlate2d"
    assert cnnlab_origin(functools.partial(ops.correlate2d, padding="valid")) \
        == "cnnlab.ops.correlate2d"
    assert cnnlab_origin(mine) == ""
    assert cnnlab_origin(np.sum) == "" and cnnlab_origin({"shapes": {}}) == ""


# --------------------------------------------------------------------------------------------
# Error feedback: the student's cell and line, never IPython's file names


def _feedback_section(out, submission, ex_id):
    return (out / "feedback" / f"{submission}.md").read_text().split(f"## {ex_id}:")[1] \
        .split("\n## ")[0]


@pytest.mark.slow
def test_a_syntax_error_names_the_exercise_cell_and_line(lab01_batch):
    results, out, *_ = lab01_batch
    row = next(e for e in results["errors"].exercises if e.id == "01.to_grayscale")
    assert row.status == "error"
    assert row.message == "SyntaxError in your cell for 01.to_grayscale, line 2: " \
                          "'(' was never closed"
    assert row.message in _feedback_section(out, "errors", "01.to_grayscale")


@pytest.mark.slow
def test_an_error_deep_in_a_student_function_names_the_line_it_was_raised_on(lab01_batch):
    results, *_ = lab01_batch
    rows = {e.id: e for e in results["errors"].exercises}
    assert rows["01.correlate2d"].message == \
        "ZeroDivisionError in your cell for 01.correlate2d, line 8: division by zero"
    assert rows["01.conv2d_multi"].message == (
        "NameError in your cell for 01.conv2d_multi, line 2: "
        "name 'undefined_name_here' is not defined")
    # raised while the grader tests the function: the case message names the line too
    public = [c for c in rows["01.convolve2d"].cases if not c[1]]
    assert public and all(c[3] == "ValueError in your cell for 01.convolve2d, line 2: boom"
                          for c in public)


@pytest.mark.slow
def test_feedback_never_shows_ipython_file_names(lab01_batch):
    _, out, *_ = lab01_batch
    for path in (out / "feedback").glob("*.md"):
        text = path.read_text()
        assert "ipykernel" not in text and "Cell In[" not in text, path.name
        assert not re.search(r"\b\d{6,}\.py\b", text), path.name


@pytest.mark.slow
def test_cells_that_raised_are_recorded_with_exercise_and_line(lab01_batch):
    results, out, *_ = lab01_batch
    # (whether every lab cell of the solution runs within the batch's 45 s a cell depends on
    # the machine's load; no exercise cell of it may raise)
    assert [e for e in results["solution"].cell_errors if e.exercise] == []
    lab = nbformat.read(ROOT / "labs" / LAB01.name, as_version=4)
    index = {exercise_id(c): i for i, c in enumerate(lab.cells) if exercise_id(c)}
    errors = {(e.index, e.exercise, e.ename, e.line) for e in results["errors"].cell_errors}
    assert (index["01.to_grayscale"], "01.to_grayscale", "SyntaxError", 2) in errors
    # the line it was raised on (in _scale), as the feedback message says
    assert (index["01.correlate2d"], "01.correlate2d", "ZeroDivisionError", 8) in errors
    assert (index["01.conv2d_multi"], "01.conv2d_multi", "NameError", 2) in errors
    # the lab's `cnnlab.check("01.to_grayscale", to_grayscale)` cell, which raised NameError here,
    # is a no-op in the notebook the grader runs (issue 13): no lab cell raises a NameError
    assert [e for e in results["errors"].cell_errors
            if e.exercise is None and e.ename == "NameError"] == []
    data = {r["submission"]: r for r in json.loads((out / "scores.json").read_text())}
    assert len(data["errors"]["cell_errors"]) == len(results["errors"].cell_errors)
    assert {"index", "exercise", "ename", "line"} <= set(data["errors"]["cell_errors"][0])


def test_traceback_frames_are_read_without_colour_codes():
    traceback = [
        "\x1b[31m---\x1b[39m",
        "\x1b[36mCell\x1b[39m\x1b[36m \x1b[39m\x1b[32mIn[4]\x1b[39m\x1b[32m, line 6\x1b[39m\n",
        "\x1b[36mCell\x1b[39m\x1b[36m \x1b[39m\x1b[32mIn[2]\x1b[39m\x1b[32m, line 3\x1b[39m, in f",
        "\x1b[31mZeroDivisionError\x1b[39m: division by zero",
    ]
    assert traceback_frames(traceback) == [(4, 6), (2, 3)]
    assert traceback_frames(None) == []


# Every other lab's solution (full marks) and untouched lab (zero, all not_attempted) are graded
# once, in tests/test_labs.py, which also asserts that neither raises anywhere.


def test_a_lazy_re_export_is_flagged_as_its_home():
    # cnnlab.pretrained serves decode_predictions lazily (a module __getattr__ reading _HOMES):
    # the attack imports the reference from there, and is flagged as the one home's function.
    top_k = exercise("08.top_k")
    for source in ("from cnnlab.pretrained import decode_predictions",
                   "from cnnlab import pretrained\npretrained.decode_predictions(p)"):
        flags = cell_flags(source, implementations(top_k))
        assert flags and flags[0].endswith("cnnlab.transfer.predictions.decode_predictions"), source
