"""``cnnlab export gradescope``: the zip, its run_autograder in a Gradescope-like root, and the
conversion of cnnlab's scores.json into Gradescope's results.json.

The conversion tests are fast (hand-made scores.json rows).  The end-to-end tests export Lab 03
once, unpack the zip into ``ROOT/{source,submission,results}`` and run its ``run_autograder``
with ``AUTOGRADER_ROOT=ROOT`` and ``CNNLAB_PYTHON`` set to this interpreter (setup.sh's installs
are skipped: this virtual environment has them); ROOT lies in the kit's ``build/`` folder, outside
``/tmp`` as ``/autograder`` is, so the sandbox sees it as it would in Gradescope.  They grade a
solved, an untouched, a broken and an attacking submission and compare with one direct
``cnnlab grade`` of the same files: about a minute on two busy cores (Lab 03 is ~11 s a
submission).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest

from cnnlab.grading import grade
from cnnlab.grading.gradescope import (
    AFTER_PUBLISHED,
    CONFIG_NAME,
    SECRET_NAME,
    VISIBLE,
    lab_catalog,
    main,
    results_json,
    unscored_results,
    validate_results,
    write_autograder_zip,
)
from cnnlab.grading.hidden import graded_exercises
from cnnlab.notebooks import exercise_id

KIT = Path(__file__).resolve().parents[1]
LAB = "03"
SOLVED = next((KIT / "solutions").glob(f"{LAB}_*.ipynb"))
UNTOUCHED = KIT / "labs" / SOLVED.name
SECRET = b"a course secret for the gradescope tests, 48 bytes"


# --------------------------------------------------------------------------------------------
# The conversion, on hand-made rows


def _row(exercises, status="graded", message=""):
    total = round(sum(e["points"] for e in exercises.values()), 2)
    return {"submission": "s", "lab": "99", "status": status, "message": message,
            "total": total, "max": sum(e["max_points"] for e in exercises.values()),
            "exercises": exercises}


def _case(name, status, hidden=False, message=""):
    return {"name": name, "hidden": hidden, "status": status, "message": message}


CATALOG = {
    "99.thirds": {"points": 1.0, "cases": [("a", False), ("b", False), ("h", True)]},
    "99.whole": {"points": 3.0, "cases": [("a", False), ("h1", True), ("h2", True),
                                          ("h3", True)]},
    "99.raised": {"points": 2.0, "cases": [("a", False), ("h", True)]},
}


def _handmade_row():
    return _row({
        # cnnlab's rule: points x passed / cases, to the hundredth: 1 x 2/3 = 0.67
        "99.thirds": {"points": 0.67, "max_points": 1.0, "status": "fail", "flag": "",
                      "message": "", "cases": [_case("a", "fail", message="expected 3, got 4"),
                                               _case("b", "pass"),
                                               _case("h", "pass", True, "inputs 7 and 9")]},
        "99.whole": {"points": 3.0, "max_points": 3.0, "status": "pass", "flag": "",
                     "message": "", "cases": [_case("a", "pass"), _case("h1", "pass", True),
                                              _case("h2", "pass", True),
                                              _case("h3", "pass", True)]},
        "99.raised": {"points": 0.0, "max_points": 2.0, "status": "error", "flag": "",
                      "message": "SyntaxError in your cell for 99.raised, line 2", "cases": []},
    })


def _tests_of(results, ex_id):
    return [t for t in results["tests"] if t["name"].startswith(ex_id + ": ")]


def test_the_score_is_cnnlabs_total_and_the_cases_add_up_to_it():
    results = results_json(_handmade_row(), CATALOG, 3.2)
    validate_results(results)
    assert results["score"] == 3.67
    assert round(sum(t["score"] for t in results["tests"]), 2) == 3.67
    assert round(sum(t["max_score"] for t in results["tests"]), 2) == 6.0
    thirds = _tests_of(results, "99.thirds")
    assert [t["status"] for t in thirds] == ["failed", "passed", "passed"]
    assert round(sum(t["score"] for t in thirds), 2) == 0.67
    assert thirds[0]["score"] == 0 and all(t["score"] <= t["max_score"] for t in thirds)
    assert results["execution_time"] == 3.2


def test_one_test_per_case_public_visible_hidden_after_published():
    results = results_json(_handmade_row(), CATALOG)
    names = [t["name"] for t in results["tests"]]
    assert len(names) == 9 == len(set(names))
    for t in results["tests"]:
        hidden = t["name"].endswith("(hidden)")
        assert t["visibility"] == (AFTER_PUBLISHED if hidden else VISIBLE), t


def test_a_hidden_case_shows_its_status_never_its_message():
    results = results_json(_handmade_row(), CATALOG)
    hidden = next(t for t in results["tests"] if t["name"] == "99.thirds: h (hidden)")
    assert hidden["output"] == "hidden test: pass"
    assert "7 and 9" not in json.dumps(results)
    public = next(t for t in results["tests"] if t["name"] == "99.thirds: a")
    assert "expected 3, got 4" in public["output"]


def test_an_exercise_that_never_reached_its_tests_fails_every_case_with_its_message():
    raised = _tests_of(results_json(_handmade_row(), CATALOG), "99.raised")
    assert [t["status"] for t in raised] == ["failed", "failed"]
    assert [t["score"] for t in raised] == [0, 0]
    assert round(sum(t["max_score"] for t in raised), 2) == 2.0
    assert all("SyntaxError in your cell for 99.raised" in t["output"] for t in raised)


@pytest.mark.parametrize("points", [0.5, 1, 2, 3, 5, 7])
@pytest.mark.parametrize("cases", range(1, 9))
def test_every_split_adds_up_for_every_number_of_passed_cases(points, cases):
    catalog = {"99.x": {"points": float(points), "cases": [(f"c{i}", i % 2 == 1)
                                                           for i in range(cases)]}}
    for passed in range(cases + 1):
        earned = min(float(points), round(points * passed / cases, 2))  # cnnlab's rule
        row = _row({"99.x": {"points": earned, "max_points": float(points), "status": "fail",
                             "flag": "", "message": "",
                             "cases": [_case(f"c{i}", "pass" if i < passed else "fail", i % 2)
                                       for i in range(cases)]}})
        results = results_json(row, catalog)
        validate_results(results)  # also: no test above its maximum, the tests add up
        assert results["score"] == earned
        assert [t["status"] for t in results["tests"]].count("passed") == passed
        assert all(t["score"] == 0 for t in results["tests"] if t["status"] == "failed")


def test_a_flag_and_a_status_other_than_graded_reach_the_students_output():
    row = _handmade_row()
    row["status"], row["message"] = "timeout", "the notebook ran past its deadline"
    row["exercises"]["99.whole"]["flag"] = "`whole` is imported from cnnlab"
    output = results_json(row, CATALOG)["output"]
    assert "(timeout)" in output and "ran past its deadline" in output
    assert "Flagged for your instructor" in output and "imported from cnnlab" in output


def test_an_ungraded_submission_scores_zero_with_every_case_and_the_reason():
    results = unscored_results("no notebook in the submission", CATALOG, 0.4)
    validate_results(results)
    assert results["score"] == 0 and "no notebook in the submission" in results["output"]
    assert len(results["tests"]) == 9
    assert round(sum(t["max_score"] for t in results["tests"]), 2) == 6.0
    assert all(t["status"] == "failed" and t["score"] == 0 for t in results["tests"])
    validate_results(unscored_results("the kit is broken"))  # no catalog: no tests, still valid


@pytest.mark.parametrize("damage, complaint", [
    (lambda r: r.pop("execution_time"), "execution_time"),
    (lambda r: r["tests"][0].update(visibility="public"), "visibility"),
    (lambda r: r["tests"][0].update(status="pass"), "status"),
    (lambda r: r["tests"][1].update(score=5.0), "scores 5.0 of"),
    (lambda r: r.update(score=4.0), "add up to"),
])
def test_the_validator_rejects_results_gradescope_would_misread(damage, complaint):
    results = results_json(_handmade_row(), CATALOG)
    damage(results)
    with pytest.raises(ValueError, match=complaint):
        validate_results(results)


def test_the_catalog_holds_every_case_the_grader_judges():
    catalog = lab_catalog(LAB)
    exercises = graded_exercises(LAB)
    assert list(catalog) == [ex.id for ex in exercises]
    for ex in exercises:
        assert catalog[ex.id]["cases"] == [(c.name, c.hidden) for c in ex.cases]
        assert any(h for _, h in catalog[ex.id]["cases"]), f"{ex.id} has no hidden case"


def test_scores_json_records_each_case_and_resume_keeps_them(tmp_path):
    """What the conversion reads: scores.json's cases, written by the grader's reports and kept
    by ``--resume`` (which rewrites the rows it keeps)."""
    from cnnlab.grading.grade import ExerciseResult, SubmissionResult, _kept_row
    from cnnlab.grading.reports import score_row

    exercises = graded_exercises(LAB)
    cases = [(c.name, c.hidden, "pass" if i else "fail", "" if i else "expected 2, got 3")
             for i, c in enumerate(exercises[0].cases)]
    rows = [ExerciseResult(ex.id, 0.0, ex.points, "missing") for ex in exercises]
    rows[0] = ExerciseResult(exercises[0].id, 1.5, exercises[0].points, "fail", cases)
    result = SubmissionResult("s", str(tmp_path / "s.ipynb"), "graded", rows, sha256="0" * 64)
    row = json.loads(json.dumps(score_row(result, LAB)))
    entry = row["exercises"][exercises[0].id]
    assert entry["max_points"] == exercises[0].points
    assert entry["cases"][0] == {"name": cases[0][0], "hidden": False, "status": "fail",
                                 "message": "expected 2, got 3"}
    kept = _kept_row(row, exercises, tmp_path / "s.ipynb")
    assert kept.exercises[0].cases == cases
    assert score_row(kept, LAB)["exercises"] == row["exercises"]


# --------------------------------------------------------------------------------------------
# The export


def test_the_zip_holds_the_scripts_the_kit_and_the_secret_for_root_alone(tmp_path):
    path = write_autograder_zip(LAB, tmp_path / "a.zip", secret=SECRET, kit=KIT)
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in archive.infolist()}
        config = json.loads(archive.read(CONFIG_NAME))
        setup = archive.read("setup.sh").decode()
        secret = archive.read(f"kit/solutions/{SECRET_NAME}")
    assert {"setup.sh", "run_autograder", "kit/pyproject.toml", "kit/requirements.txt",
            "kit/cnnlab/grading/grade.py", "kit/cnnlab/grading/hidden/lab03.py",
            f"kit/solutions/{SOLVED.name}", f"kit/labs/{SOLVED.name}"} <= names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert modes["run_autograder"] == modes["setup.sh"] == 0o755
    assert modes[f"kit/solutions/{SECRET_NAME}"] == 0o600
    assert secret.strip() == SECRET
    assert config == {"lab": LAB, "profile": "smoke", "timeout_notebook": 480,
                      "max_memory_gb": 4.0, "secret": f"solutions/{SECRET_NAME}"}
    for needed in ("python3.11", "bubblewrap", "requirements.txt", "pip install --no-deps -e"):
        assert needed in setup


def test_export_refuses_an_existing_zip_and_leaves_it_as_it_was(tmp_path, capsys):
    out = tmp_path / "autograder.zip"
    out.write_bytes(b"the instructor's earlier zip")
    assert main(["--lab", LAB, str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert out.read_bytes() == b"the instructor's earlier zip"


@pytest.mark.parametrize("args, complaint", [
    (["--lab", "42"], "unknown lab '42'; labs are 01, 02"),
    (["--lab", LAB, "--secret", "/no/such/secret"], "cannot read the course secret"),
    (["--lab", LAB, "--timeout-notebook", "0"], "must be positive"),
])
def test_export_bad_input_is_a_clear_error_and_writes_nothing(tmp_path, capsys, args, complaint):
    out = tmp_path / "autograder.zip"
    assert main([*args, str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlab export gradescope: ") and complaint in err
    assert not out.exists()


def test_export_without_a_secret_says_what_that_means(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CNNLAB_GRADING_SECRET", raising=False)
    out = tmp_path / "autograder.zip"
    assert main(["--lab", LAB, str(out)]) == 0
    assert "fixed seeds" in capsys.readouterr().out
    with zipfile.ZipFile(out) as archive:
        assert json.loads(archive.read(CONFIG_NAME))["secret"] is None
        assert not any(SECRET_NAME in n for n in archive.namelist())


# --------------------------------------------------------------------------------------------
# run_autograder, end to end


@pytest.fixture(scope="module")
def autograder(tmp_path_factory):
    """The exported zip and a folder outside /tmp (the kit's build/) for the roots."""
    build = KIT / "build"
    made = not build.exists()
    build.mkdir(exist_ok=True)
    place = Path(tempfile.mkdtemp(prefix="gradescope-test-", dir=build))
    os.chmod(place, 0o755)  # as /autograder: the sandbox's uid may pass through
    zip_path = write_autograder_zip(LAB, tmp_path_factory.mktemp("zip") / "autograder.zip",
                                    secret=SECRET, kit=KIT)
    yield zip_path, place
    shutil.rmtree(place, ignore_errors=True)
    if made and not any(build.iterdir()):
        build.rmdir()


def _root(autograder, name: str, submissions: dict) -> Path:
    """``ROOT/{source,submission,results}`` with the zip in source/ and ``submissions``
    ({file name: bytes}) in submission/, laid out as Gradescope does."""
    zip_path, place = autograder
    root = place / name
    for folder in ("source", "submission", "results"):
        (root / folder).mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(root / "source")
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    os.chmod(root / "run_autograder", 0o755)
    for file_name, data in submissions.items():
        (root / "submission" / file_name).write_bytes(data)
    return root


def _run_autograder(root: Path, path_prefix: str = "") -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",
                                                            "CNNLAB_GRADING_SECRET")}
    env.update(AUTOGRADER_ROOT=str(root), CNNLAB_PYTHON=sys.executable)
    if path_prefix:
        env["PATH"] = path_prefix + os.pathsep + env["PATH"]
    done = subprocess.run([str(root / "run_autograder")], env=env, capture_output=True,
                          text=True, timeout=600, cwd=root)
    assert done.returncode == 0, done.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    validate_results(results)
    return results


def _attack_source(root: Path, solved_pooled_size: str) -> dict:
    """Code appended to two exercise cells: write the results and the grader's code, read the
    solution of one exercise and run it, and (only if the course secret can be read) run the
    solution of the other, pasted in."""
    kit = root / "source" / "kit"
    steal = f"""
import json, pathlib
for target, text in [({str(root / "results" / "results.json")!r}, '{{"score": 99, "tests": []}}'),
                     ({str(root / "results" / "forged.txt")!r}, "forged"),
                     ({str(kit / "cnnlab" / "grading" / "pwned.py")!r}, "print('pwned')")]:
    try:
        pathlib.Path(target).write_text(text)
    except OSError as exc:
        print("cannot write", target, exc)
try:
    solution = json.loads(pathlib.Path({str(kit / "solutions" / SOLVED.name)!r}).read_text())
    for cell in solution["cells"]:
        if "exercise:03.global_average_pool" in cell["metadata"].get("tags", []):
            exec("".join(cell["source"]), globals())
except OSError as exc:
    print("cannot read the solution", exc)
"""
    secret = f"""
import pathlib
try:
    if pathlib.Path({str(kit / "solutions" / SECRET_NAME)!r}).read_bytes():
        exec({solved_pooled_size!r}, globals())
except OSError as exc:
    print("cannot read the secret", exc)
"""
    return {"03.global_average_pool": steal, "03.pooled_sizes": secret}


def _solution_cells() -> dict:
    nb = nbformat.read(SOLVED, as_version=4)
    return {exercise_id(c): c.source for c in nb.cells if exercise_id(c)}


def _attacking_notebook(root: Path) -> bytes:
    nb = nbformat.read(UNTOUCHED, as_version=4)
    attack = _attack_source(root, _solution_cells()["03.pooled_sizes"])
    for cell in nb.cells:
        if exercise_id(cell) in attack:
            cell.source += "\n" + attack[exercise_id(cell)]
    return nbformat.writes(nb).encode()


@pytest.fixture(scope="module")
def graded(autograder, tmp_path_factory):
    """run_autograder on a solved, an untouched and an attacking submission, and one direct
    ``cnnlab grade`` of the solved and the untouched files with the same secret (the
    reference; not of the attack: its paths point into the unpacked kit, which a direct run
    does not hide)."""
    roots = {"solved": _root(autograder, "solved", {"lab.ipynb": SOLVED.read_bytes()}),
             "untouched": _root(autograder, "untouched", {"lab.ipynb": UNTOUCHED.read_bytes()})}
    roots["attack"] = _root(autograder, "attack", {})
    (roots["attack"] / "submission" / "lab.ipynb").write_bytes(
        _attacking_notebook(roots["attack"]))
    folder = tmp_path_factory.mktemp("direct")
    for name in ("solved", "untouched"):
        shutil.copy(roots[name] / "submission" / "lab.ipynb", folder / f"{name}.ipynb")
    direct = grade(LAB, [folder], out=tmp_path_factory.mktemp("direct-out"), jobs=2,
                   stream=io.StringIO(), secret=SECRET)
    results = {name: _run_autograder(root) for name, root in roots.items()}
    return results, {r.submission: r for r in direct}, roots


@pytest.mark.slow
def test_the_solved_lab_gets_full_marks_as_cnnlab_grade_gives(graded):
    results, direct, _ = graded
    solved = results["solved"]
    assert direct["solved"].total == direct["solved"].max_total > 0
    assert solved["score"] == direct["solved"].total
    assert all(t["status"] == "passed" for t in solved["tests"])
    assert round(sum(t["max_score"] for t in solved["tests"]), 2) == direct["solved"].max_total


@pytest.mark.slow
def test_every_case_of_the_lab_is_a_test_hidden_ones_after_published(graded):
    results, direct, _ = graded
    tests = results["solved"]["tests"]
    cases = [(e.id, name, hidden) for e in direct["solved"].exercises
             for name, hidden, _, _ in e.cases]
    assert len(tests) == len(cases)
    for test, (ex_id, name, hidden) in zip(tests, cases):
        assert test["name"].startswith(f"{ex_id}: {name}")
        assert test["visibility"] == (AFTER_PUBLISHED if hidden else VISIBLE)
    assert {t["visibility"] for t in tests} == {VISIBLE, AFTER_PUBLISHED}


@pytest.mark.slow
def test_the_untouched_lab_scores_zero_as_cnnlab_grade_gives(graded):
    results, direct, _ = graded
    assert results["untouched"]["score"] == direct["untouched"].total == 0
    assert all(t["status"] == "failed" for t in results["untouched"]["tests"])
    assert "NotImplementedError" in results["untouched"]["tests"][0]["output"]


@pytest.mark.slow
def test_an_attack_on_results_solutions_or_secret_gains_nothing(graded):
    results, direct, roots = graded
    attack, root = results["attack"], roots["attack"]
    assert attack["score"] == direct["untouched"].total == 0
    for ex_id in ("03.global_average_pool", "03.pooled_sizes"):
        assert all(t["status"] == "failed" for t in _tests_of(attack, ex_id))
    assert not (root / "results" / "forged.txt").exists()
    assert not (root / "source" / "kit" / "cnnlab" / "grading" / "pwned.py").exists()


def test_the_attack_would_score_without_the_sandbox(tmp_path):
    """The control: run unsandboxed (here, in this process, against a copy of the root), the
    attack's code does write the results and does define both answers from the solutions."""
    root = tmp_path / "root"
    kit = root / "source" / "kit"
    (kit / "solutions").mkdir(parents=True)
    (kit / "cnnlab" / "grading").mkdir(parents=True)
    (root / "results").mkdir()
    shutil.copy(SOLVED, kit / "solutions" / SOLVED.name)
    (kit / "solutions" / SECRET_NAME).write_bytes(SECRET)
    attack = _attack_source(root, _solution_cells()["03.pooled_sizes"])
    namespace = {"np": np}
    for source in attack.values():
        exec(source, namespace)
    assert namespace["global_average_pool"](np.ones((2, 3, 3, 4))).shape == (2, 4)
    assert namespace["pooled_size"](7, 2) == 3
    assert (root / "results" / "forged.txt").read_text() == "forged"


@pytest.mark.slow
def test_a_broken_notebook_scores_zero_and_says_it_is_unreadable(autograder):
    results = _run_autograder(_root(autograder, "broken", {"lab.ipynb": b"{not json"}))
    assert results["score"] == 0
    assert "unreadable" in results["output"] and "not JSON" in results["output"]
    assert len(results["tests"]) == sum(len(v["cases"]) for v in lab_catalog(LAB).values())


@pytest.mark.slow
@pytest.mark.parametrize("submissions, complaint", [
    ({}, "no notebook in the submission"),
    ({"notes.txt": b"hello"}, "no notebook in the submission (it holds: notes.txt)"),
    ({"a.ipynb": b"{}", "b.IPYNB": b"{}"}, "2 notebooks in the submission"),
])
def test_anything_but_one_notebook_scores_zero_and_says_why(autograder, submissions,
                                                             complaint):
    name = "count-" + "-".join(sorted(submissions)).replace(".", "_")
    results = _run_autograder(_root(autograder, name, submissions))
    assert results["score"] == 0 and complaint in results["output"]


@pytest.mark.slow
def test_without_a_working_sandbox_nothing_is_graded_and_the_output_says_why(autograder):
    """A container where bubblewrap cannot make its namespaces (Docker's default seccomp
    profile): score 0 and the reason, never an unsandboxed run."""
    fake = autograder[1] / "bin"  # (a folder the sandbox's uid may enter, as /usr/bin)
    fake.mkdir()
    (fake / "bwrap").write_text("#!/bin/sh\necho 'bwrap: No permissions to create new "
                                "namespace' >&2\nexit 1\n")
    os.chmod(fake / "bwrap", stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH
             | stat.S_IXOTH)
    root = _root(autograder, "no-sandbox", {"lab.ipynb": SOLVED.read_bytes()})
    results = _run_autograder(root, path_prefix=str(fake))
    assert results["score"] == 0
    assert "sandbox cannot start" in results["output"]
    assert "No permissions to create new namespace" in results["output"]


@pytest.mark.slow
def test_a_python_that_cannot_start_still_leaves_valid_results(autograder):
    root = _root(autograder, "no-python", {"lab.ipynb": SOLVED.read_bytes()})
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), CNNLAB_PYTHON=str(root / "no-python"))
    done = subprocess.run([str(root / "run_autograder")], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0
    results = json.loads((root / "results" / "results.json").read_text())
    validate_results(results)
    assert results["score"] == 0 and "stopped before writing results" in results["output"]
