"""Gradescope autograders: ``cnnlab export gradescope --lab NN OUT.zip``.

The zip follows Gradescope's autograder format (gradescope-autograders.readthedocs.io, "Autograder
Specifications"): Gradescope unpacks it into ``/autograder/source``, runs ``setup.sh`` once, as
root, when it builds the assignment's image, then for every submission copies the student's files
into ``/autograder/submission``, runs ``run_autograder`` and uploads
``/autograder/results/results.json``.  What the zip holds:

- ``setup.sh``: Python 3.11 (Ubuntu's package, else the deadsnakes PPA), bubblewrap, a virtual
  environment in ``/opt/cnnlab/venv`` with the kit's ``requirements.txt`` and cnnlab itself
  (``pip install -e``), and the rights that keep the instructor's material to root;
- ``run_autograder``: runs ``python -m cnnlab.grading.gradescope`` (:func:`autograde`), which
  grades the one ``*.ipynb`` in ``$AUTOGRADER_ROOT/submission`` (``AUTOGRADER_ROOT`` defaults to
  ``/autograder``) with ``cnnlab grade --lab NN`` and converts its ``scores.json`` with
  :func:`results_json`.  If Python itself cannot start, the script writes a fixed results.json
  (score 0) saying so; a submission is never left without results;
- ``cnnlab-gradescope.json``: the lab, the grading options and where the secret is;
- ``kit/``: cnnlab with its instructor material: the package (``cnnlab/grading`` included),
  ``solutions/`` and ``labs/`` notebooks, ``pyproject.toml``, ``README.md``,
  ``requirements.txt``, and the course secret (``--secret FILE``, or ``CNNLAB_GRADING_SECRET``
  when set) as ``kit/solutions/.course-secret``, mode 0600.  Without a secret the hidden cases
  use their fixed seeds, which anyone holding the instructor's repository knows; the export says
  so.

**results.json** (:data:`RESULTS_SCHEMA`): ``score`` is cnnlab's total, ``execution_time`` the
seconds the grading took, ``output`` the summary a student reads, and one ``tests`` entry per
case of every exercise (public cases ``visible``, hidden ones ``after_published``: a student sees
them once the instructor publishes the grades).  An exercise's points are split over its cases,
as cnnlab scores them (points x passed / cases): each case's ``max_score`` is its share (in
hundredths; a remainder goes to the passed cases first), passed cases hold the exercise's
points, so the tests add up to cnnlab's total exactly.  A case that was never judged (the cell
raised, is missing or timed out) is ``failed`` with the exercise's message; a hidden case shows
only its status, never its inputs.  A submission that is not graded (no notebook, two, not JSON,
the grader stopped) gets score 0 and an ``output`` that says why; one that timed out or whose
kernel died keeps the points of the exercises judged before, as in ``cnnlab grade``.

**Trust.**  In Gradescope the student's code runs in the same container as ``run_autograder``.
``cnnlab grade`` keeps its bubblewrap sandbox: the kernel runs as uid 65534 on a read-only file
system, with ``solutions/`` (and the secret in it), the submission and the grader's output folder
behind empty tmpfs, so it can neither read the answers or the secret nor write ``results/``; and
``results.json`` is written after the kernel and everything it started are gone.  If bubblewrap
cannot run in the container (Docker's default seccomp profile forbids the namespaces it needs),
:func:`autograde` finds it before grading (:func:`sandbox_problem`) and every submission gets
score 0 with the reason, never an unsandboxed run: try the autograder with a sample submission
("Test Autograder") before releasing the assignment.

**Memory.**  Gradescope's default container has 768 MB of memory (and half a CPU); cnnlab's
labs need more, because the kernel (and for some labs the grader's judge) imports TensorFlow.
Measured on 2 cores, smoke profile, one solution graded by ``cnnlab grade`` inside a cgroup-v1
memory limit as Docker sets one: Lab 03 passed in 768 MiB (peak 579 MiB charged), Lab 04 (a
Keras convnet on MNIST) was killed at 768 MiB and passed in 2 GiB (peak 1153 MiB), Lab 09
(transfer learning) passed in 2 GiB (peak 1467 MiB).  Those peaks leave out the TensorFlow
libraries the machine's page cache already held (about 0.6 GB in every process that imports
TensorFlow); counted in (the anonymous memory of every process of the run plus the file-backed
memory of the largest), the peaks were 1.2 GB (Lab 03), 1.8 GB (Lab 04) and 2.1 GB (Lab 09).
Choose at least 2 GB in the assignment's "Autograder Settings" for every lab, 3 GB for Labs
08-10 (pretrained models; Lab 09 measured), and keep the notebook deadline
(``--timeout-notebook``, 480 s by default here) below Gradescope's timeout (10 minutes by
default, 40 at most).  A grader killed for memory still leaves a results.json (score 0, exit
status 137 named).

Used in: ``cnnlab export gradescope``, and ``run_autograder`` in the zip it writes.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

__all__ = ["RESULTS_SCHEMA", "VISIBLE", "AFTER_PUBLISHED", "CONFIG_NAME", "SECRET_NAME",
           "lab_catalog", "results_json", "unscored_results", "validate_results",
           "submitted_notebooks", "sandbox_problem", "autograde", "write_autograder_zip",
           "main"]

VISIBLE = "visible"  # public cases: the student sees them at once
AFTER_PUBLISHED = "after_published"  # hidden cases: once the instructor publishes the grades
CONFIG_NAME = "cnnlab-gradescope.json"
SECRET_NAME = ".course-secret"  # in kit/solutions/, which the sandbox hides behind a tmpfs
VENV = "/opt/cnnlab/venv"
_VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")
_OUTPUT_CHARS = 4000  # of one test's output, and of the grader's messages in the summary

#: What :func:`results_json` writes: Gradescope's results.json, the fields cnnlab fills in.
RESULTS_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Gradescope results.json, as cnnlab writes it",
    "type": "object",
    "required": ["score", "execution_time", "output", "tests"],
    "additionalProperties": False,
    "properties": {
        "score": {"type": "number", "minimum": 0},
        "execution_time": {"type": "number", "minimum": 0},
        "output": {"type": "string"},
        "output_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
        "stdout_visibility": {"enum": list(_VISIBILITIES)},
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "score", "max_score", "status", "output", "visibility"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "score": {"type": "number", "minimum": 0},
                    "max_score": {"type": "number", "minimum": 0},
                    "status": {"enum": ["passed", "failed"]},
                    "output": {"type": "string"},
                    "visibility": {"enum": [VISIBLE, AFTER_PUBLISHED]},
                },
            },
        },
    },
}


# --------------------------------------------------------------------------------------------
# scores.json -> results.json


def lab_catalog(lab: str) -> dict:
    """``{exercise id: {"points": float, "cases": [(case name, hidden), ...]}}`` of ``lab``,
    in the lab's order: every case the grader judges (the names do not depend on the secret)."""
    from cnnlab.grading.hidden import graded_exercises

    return {ex.id: {"points": float(ex.points),
                    "cases": [(case.name, bool(case.hidden)) for case in ex.cases]}
            for ex in graded_exercises(lab)}


def _cents(value) -> int:
    return int(round(float(value) * 100))


def _shares(total: int, count: int, first: list[int]) -> list[int]:
    """``total`` hundredths over ``count`` slots, as equal as hundredths allow; the slots in
    ``first`` get the remainder before the others."""
    base, extra = divmod(total, count) if count else (0, 0)
    order = first + [i for i in range(count) if i not in first]
    shares = [base] * count
    for i in order[:extra]:
        shares[i] += 1
    return shares


def _case_scores(points: float, max_points: float, passed: list[bool]) -> tuple[list, list]:
    """``(scores, max scores)`` in hundredths of an exercise's cases: the maxima add up to
    ``max_points`` and the scores to ``points`` (clamped to 0..max), passed cases first."""
    top = _cents(max_points)
    earned = min(max(_cents(points), 0), top)
    winners = [i for i, ok in enumerate(passed) if ok]
    maxima = _shares(top, len(passed), winners)
    scores = [maxima[i] if ok else 0 for i, ok in enumerate(passed)]
    surplus = sum(scores) - earned
    for i in reversed(winners):  # fewer points than the passed cases' shares (rounding)
        taken = min(surplus, scores[i]) if surplus > 0 else 0
        scores[i] -= taken
        surplus -= taken
    for i in range(len(passed)):  # more (a score the cases do not explain): never lost
        if surplus < 0:
            given = min(-surplus, maxima[i] - scores[i])
            scores[i] += given
            surplus += given
    return scores, maxima


def _trimmed(text, limit: int = _OUTPUT_CHARS) -> str:
    text = str(text or "")
    return text if len(text) <= limit else text[:limit] + " [...]"


def _case_output(ex_id: str, exercise: dict, judged: dict | None, hidden: bool) -> str:
    if judged is None:  # the exercise never reached its tests
        status = exercise.get("status", "error")
        message = exercise.get("message") or ""
        return _trimmed(f"not tested: {ex_id} is {status}" + (f": {message}" if message else ""))
    if hidden:
        return f"hidden test: {judged.get('status', 'error')}"
    if judged.get("status") == "pass":
        return "passed"
    message = judged.get("message") or ""
    return _trimmed(f"{judged.get('status', 'error')}" + (f": {message}" if message else ""))


def _exercise_tests(ex_id: str, exercise: dict, spec: dict) -> list[dict]:
    """The tests entries of one exercise (``exercise``: its entry in scores.json; ``spec``: its
    entry in :func:`lab_catalog`)."""
    judged = {str(c.get("name")): c for c in exercise.get("cases") or []
              if isinstance(c, dict)}
    names = [(name, hidden) for name, hidden in spec["cases"]]
    names += [(name, bool(c.get("hidden"))) for name, c in judged.items()
              if name not in {n for n, _ in names}]
    if not names:
        names = [("(exercise)", False)]
    passed = [judged.get(name, {}).get("status") == "pass" for name, _ in names]
    maximum = exercise.get("max_points", spec["points"])
    scores, maxima = _case_scores(exercise.get("points", 0.0), maximum, passed)
    tests = []
    for (name, hidden), ok, score, top in zip(names, passed, scores, maxima):
        tests.append({
            "name": f"{ex_id}: {name}" + (" (hidden)" if hidden else ""),
            "score": score / 100, "max_score": top / 100,
            "status": "passed" if ok else "failed",
            "output": _case_output(ex_id, exercise, judged.get(name), hidden),
            "visibility": AFTER_PUBLISHED if hidden else VISIBLE,
        })
    return tests


def results_json(row: dict, catalog: dict, execution_time: float = 0.0) -> dict:
    """Gradescope's results.json for one row of cnnlab's ``scores.json`` (``row``) of a lab
    whose cases are ``catalog`` (:func:`lab_catalog`): ``score`` is the row's ``total``, one
    test per case (see the module's docstring for how points split), ``output`` a summary
    with the row's status and message and any flag for the instructor.  Exercises missing from
    the row count as errors (0 points); the row's own exercises not in the catalog keep their
    points as one entry each, so the tests always add up to the score."""
    exercises = row.get("exercises") if isinstance(row.get("exercises"), dict) else {}
    tests = []
    for ex_id, spec in catalog.items():
        exercise = exercises.get(ex_id) or {"points": 0.0, "status": "error",
                                            "message": "the grader has no result for it"}
        tests += _exercise_tests(ex_id, exercise, spec)
    for ex_id, exercise in exercises.items():
        if ex_id not in catalog:
            tests += _exercise_tests(ex_id, exercise, {"points": 0.0, "cases": []})
    score = round(sum(_cents(t["score"]) for t in tests) / 100, 2)
    total = float(row.get("total", 0.0))
    status = str(row.get("status", "error"))
    lines = [f"Lab {row.get('lab', '?')}: {total:g} / {float(row.get('max', 0.0)):g} points "
             f"({status})."]
    if status != "graded":
        from cnnlab.grading.results import STATUS_MEANINGS

        lines.append(f"Not fully graded: {STATUS_MEANINGS.get(status, status)}.")
    if row.get("message"):
        lines.append(_trimmed(row["message"]))
    flags = [f"{ex_id}: {e['flag']}" for ex_id, e in exercises.items() if e.get("flag")]
    if flags:
        lines.append("Flagged for your instructor (scored as usual): " + "; ".join(flags))
    lines.append("Each public test shows its result now; hidden tests show theirs once the "
                 "grades are published.")
    if abs(score - total) > 0.005:  # never: the cases carry the exercises' points
        lines.append(f"(grader note: the tests add up to {score:g}, the score is {total:g})")
    return {"score": total, "execution_time": round(float(execution_time), 1),
            "output": "\n".join(lines), "output_format": "text",
            "stdout_visibility": "hidden", "tests": tests}


def unscored_results(reason: str, catalog: dict | None = None,
                     execution_time: float = 0.0) -> dict:
    """results.json for a submission that was not graded: score 0, ``reason`` as the output,
    and every case of ``catalog`` (when known) failed with 0 of its points."""
    row = {"total": 0.0, "status": "error", "lab": "?", "exercises": {
        ex_id: {"points": 0.0, "status": "not graded", "message": "", "cases": []}
        for ex_id in catalog or {}}}
    results = results_json(row, catalog or {}, execution_time)
    for test in results["tests"]:
        test["output"] = "not graded (see the message above)"
    results["output"] = "Not graded, score 0: " + _trimmed(reason)
    return results


def validate_results(results: dict) -> None:
    """Raise ValueError unless ``results`` matches :data:`RESULTS_SCHEMA`, no test scores above
    its maximum and the tests add up to ``score`` (to the hundredth)."""
    import jsonschema

    try:
        jsonschema.validate(results, RESULTS_SCHEMA)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "the top level"
        raise ValueError(f"results.json does not match the schema at {where}: "
                         f"{exc.message}") from None
    for test in results["tests"]:
        if test["score"] > test["max_score"] + 1e-9:
            raise ValueError(f"test {test['name']!r} scores {test['score']} of "
                             f"{test['max_score']}")
    added = sum(_cents(t["score"]) for t in results["tests"])
    if results["tests"] and added != _cents(results["score"]):
        raise ValueError(f"the tests add up to {added / 100:g}, the score is "
                         f"{results['score']:g}")


# --------------------------------------------------------------------------------------------
# run_autograder


def submitted_notebooks(folder) -> tuple[list[Path], str]:
    """``(notebooks, problem)``: the files named ``*.ipynb`` (any case) directly in ``folder``,
    and "" when there is exactly one, else what is wrong, for the student."""
    folder = Path(folder)
    try:
        names = sorted(p.name for p in folder.iterdir())
    except OSError as exc:
        return [], f"the submission folder {folder} cannot be read ({exc.strerror})"
    found = [folder / n for n in names if n.lower().endswith(".ipynb")]
    if len(found) == 1:
        return found, ""
    listed = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "") or "nothing"
    if not found:
        return [], (f"no notebook in the submission (it holds: {listed}); upload your lab's "
                    ".ipynb file itself, not a zip or a folder")
    return found, (f"{len(found)} notebooks in the submission ({', '.join(p.name for p in found)});"
                   f" upload exactly one .ipynb file, your lab")


def sandbox_problem(kit) -> str:
    """"" when a kernel can start in ``cnnlab grade``'s bubblewrap sandbox here, else why not:
    a trivial command through the grader's own launcher (:mod:`cnnlab.grading.sandbox`), with
    the same rights a grading run has."""
    from cnnlab.grading import sandbox

    kit = Path(kit)
    try:
        bwrap = sandbox.require_bubblewrap()
    except sandbox.SandboxUnavailable as exc:
        return str(exc)
    with tempfile.TemporaryDirectory(prefix="cnnlab-sandbox-check-") as tmp:
        os.chmod(tmp, 0o711)  # the sandbox's uid passes through, as in a grading run
        work, cwd = Path(tmp) / "work", Path(tmp) / "cwd"
        work.mkdir()
        cwd.mkdir()
        plan = sandbox.plan_sandbox(work, cwd=cwd, kit=kit, solutions=kit / "solutions",
                                    hidden=[], uid=65534, profile="smoke", bwrap=bwrap)
        command = sandbox.kernel_command(plan, [sys.executable, "-I", "-c", "print('sandboxed')"])
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=60,
                                  stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"the sandbox did not start: {exc}"
    if done.returncode == 0 and done.stdout.strip() == "sandboxed":
        return ""
    last = (done.stderr.strip().splitlines() or ["no message"])[-1]
    return (f"the grader's bubblewrap sandbox cannot start in this container (exit status "
            f"{done.returncode}: {_trimmed(last, 600)}); "
            f"grading without it would let the submission rewrite its own results")


def _read_config(source: Path) -> dict:
    config = json.loads((source / CONFIG_NAME).read_text(encoding="utf-8"))
    if not isinstance(config, dict) or "lab" not in config:
        raise ValueError(f"{CONFIG_NAME} has no lab")
    return config


def _grade_command(config: dict, kit: Path, notebook: Path, out: Path) -> list[str]:
    command = [sys.executable, "-m", "cnnlab.cli", "grade", "--lab", config["lab"],
               str(notebook), "--out", str(out), "--jobs", "1",
               "--solutions", str(kit / "solutions"),
               "--timeout-notebook", str(config["timeout_notebook"]),
               "--max-memory", str(config["max_memory_gb"]), "--profile", config["profile"]]
    if config.get("secret"):
        command += ["--secret", str(kit / config["secret"])]
    return command


def _grade_submission(config: dict, kit: Path, notebook: Path, catalog: dict,
                      start: float, log) -> dict:
    """Run ``cnnlab grade`` on ``notebook`` in a private output folder and convert its row."""
    with tempfile.TemporaryDirectory(prefix="cnnlab-gradescope-") as tmp:
        out = Path(tmp) / "out"
        env = {k: v for k, v in os.environ.items() if k != "CNNLAB_GRADING_SECRET"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(kit), env.get("PYTHONPATH")]))
        command = _grade_command(config, kit, notebook, out)
        print("$ " + " ".join(command), file=log, flush=True)
        try:
            done = subprocess.run(command, capture_output=True, text=True, cwd=kit, env=env,
                                  stdin=subprocess.DEVNULL,
                                  timeout=float(config["timeout_notebook"]) + 120)
        except subprocess.TimeoutExpired:
            return unscored_results("the grader did not finish in time; tell your instructor",
                                    catalog, time.monotonic() - start)
        print(done.stdout + done.stderr, file=log, flush=True)
        rows = []
        if (out / "scores.json").exists():
            rows = json.loads((out / "scores.json").read_text(encoding="utf-8"))
        if done.returncode == 2 or len(rows) != 1:
            reason = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
            return unscored_results(f"the grader stopped before grading: {reason[0]}", catalog,
                                    time.monotonic() - start)
        return results_json(rows[0], catalog, time.monotonic() - start)


def autograde(root=None, log=None) -> dict:
    """Grade the submission in ``root`` (default ``$AUTOGRADER_ROOT``, else ``/autograder``)
    as Gradescope lays it out (``source/``, ``submission/``, ``results/``), write
    ``results/results.json`` (atomically) and return it.  Whatever goes wrong becomes score 0
    and an ``output`` that says why; only a results folder that cannot be written raises."""
    from cnnlab.grading.reports import write_atomic

    start = time.monotonic()
    log = log or sys.stdout
    root = Path(root or os.environ.get("AUTOGRADER_ROOT") or "/autograder")
    source, kit = root / "source", root / "source" / "kit"
    catalog = None
    try:
        config = _read_config(source)
        catalog = lab_catalog(config["lab"])
        if config.get("secret"):
            os.chmod(kit / config["secret"], 0o600)  # (a zip's unpacking may not keep modes)
        notebooks, problem = submitted_notebooks(root / "submission")
        problem = problem or sandbox_problem(kit)
        if problem:
            results = unscored_results(problem, catalog, time.monotonic() - start)
        else:
            results = _grade_submission(config, kit, notebooks[0], catalog, start, log)
        validate_results(results)
    except Exception as exc:  # noqa: BLE001 - a submission always gets its results.json
        print(f"autograder error: {type(exc).__name__}: {exc}", file=log, flush=True)
        results = unscored_results(f"the autograder failed ({type(exc).__name__}: "
                                   f"{_trimmed(exc, 600)}); tell your instructor",
                                   None, time.monotonic() - start)
    (root / "results").mkdir(parents=True, exist_ok=True)
    write_atomic(root / "results" / "results.json", json.dumps(results, indent=1) + "\n")
    print(results["output"], file=log, flush=True)
    return results


# --------------------------------------------------------------------------------------------
# The zip

_SETUP = """#!/usr/bin/env bash
# cnnlab's Gradescope setup for lab {lab}, written by `cnnlab export gradescope`.  Gradescope runs
# it once, as root, when it builds the autograder's image (Ubuntu); this zip is in {source}.
set -euxo pipefail
export DEBIAN_FRONTEND=noninteractive
SOURCE={source}
apt-get update
apt-get install -y --no-install-recommends bubblewrap ca-certificates
# Python 3.11: Ubuntu's own where it has a release (not 22.04's 3.11.0~rc), else deadsnakes'
if ! apt-get install -y --no-install-recommends python3.11 python3.11-venv \
        || python3.11 --version 2>&1 | grep -q rc; then
    apt-get install -y --no-install-recommends software-properties-common
    add-apt-repository -y ppa:deadsnakes/ppa
    apt-get update
    apt-get install -y --no-install-recommends python3.11 python3.11-venv
fi
python3.11 -m venv {venv}
{venv}/bin/python -m pip install --upgrade pip
{venv}/bin/python -m pip install -r "$SOURCE/kit/requirements.txt"
{venv}/bin/python -m pip install --no-deps -e "$SOURCE/kit"
# the instructor's material: root's alone (the sandbox also hides solutions/ from the kernel)
chmod 700 "$SOURCE/kit/solutions"
if [ -f "$SOURCE/kit/solutions/{secret}" ]; then chmod 600 "$SOURCE/kit/solutions/{secret}"; fi
chmod 755 "$SOURCE/run_autograder"
# matplotlib's font cache, built once here rather than in every grading run
{venv}/bin/python -c "import matplotlib.pyplot"
"""

_RUN = """#!/usr/bin/env bash
# cnnlab's Gradescope autograder for lab {lab}, written by `cnnlab export gradescope`.  Gradescope
# runs it for each submission: it grades $AUTOGRADER_ROOT/submission/*.ipynb with `cnnlab grade`
# (in its bubblewrap sandbox) and writes $AUTOGRADER_ROOT/results/results.json.
# AUTOGRADER_ROOT defaults to /autograder; CNNLAB_PYTHON to the Python setup.sh installed.
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PYTHON="${{CNNLAB_PYTHON:-{venv}/bin/python}}"
KIT="$ROOT/source/kit"
mkdir -p "$ROOT/results"
rm -f "$ROOT/results/results.json"
cd "$KIT" && AUTOGRADER_ROOT="$ROOT" PYTHONPATH="$KIT" "$PYTHON" -m cnnlab.grading.gradescope
status=$?
if [ ! -s "$ROOT/results/results.json" ]; then
    # Python could not start, or was killed before writing (137: out of memory): still a
    # valid result, score 0
    printf '{{"score": 0, "execution_time": 0, "output": "Not graded, score 0: the autograder '\\
'stopped before writing results (exit status %d; 137 is out of memory: the container needs '\\
'more); tell your instructor", "tests": []}}\\n' "$status" > "$ROOT/results/results.json"
fi
exit 0
"""


def _kit_files(kit: Path, lab: str) -> list[tuple[Path, str]]:
    """``(file, name in the zip)`` of the kit's material the grader needs."""
    files = []
    for name in ("pyproject.toml", "README.md", "requirements.txt", "LICENSE"):
        if (kit / name).is_file():
            files.append((kit / name, f"kit/{name}"))
    for path in sorted((kit / "cnnlab").rglob("*")):
        parts = path.relative_to(kit).parts
        if path.is_file() and not any(p == "__pycache__" or p.startswith(".")
                                      or p.endswith(".egg-info") for p in parts) \
                and path.suffix not in (".pyc", ".pyo"):
            files.append((path, "kit/" + "/".join(parts)))
    for folder in ("solutions", "labs"):
        notebooks = sorted((kit / folder).glob("[0-9][0-9]_*.ipynb"))
        if not any(p.name.startswith(f"{lab}_") for p in notebooks):
            fix = "run `cnnlab build-labs`" if folder == "labs" else "export from the kit"
            raise FileNotFoundError(f"{kit / folder} has no notebook of lab {lab}; {fix}")
        files += [(p, f"kit/{folder}/{p.name}") for p in notebooks]
    return files


def _add(archive: zipfile.ZipFile, name: str, data: bytes, mode: int) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def write_autograder_zip(lab, out, secret: bytes | None = None, kit=None,
                         timeout_notebook: int = 480, max_memory_gb: float = 4.0,
                         profile: str = "smoke") -> Path:
    """Write Gradescope's autograder zip for ``lab`` to ``out`` (a new file: an existing one is
    never overwritten, FileExistsError) from the kit in ``kit`` (default: this one), with the
    course ``secret`` (bytes, :func:`cnnlab.grading.hidden.read_secret`) when given.  The
    grading options go to ``cnnlab grade`` in every run.  Returns ``out``."""
    from cnnlab.exercise import LABS
    from cnnlab.notebooks import find_kit_root

    number = f"{int(lab):02d}" if str(lab).isdigit() else str(lab)
    if number not in LABS:
        raise ValueError(f"unknown lab {lab!r}; labs are {', '.join(LABS)}")
    if profile not in ("smoke", "cpu", "full"):
        raise ValueError(f"unknown profile {profile!r}; use smoke, cpu or full")
    if not (timeout_notebook > 0 and max_memory_gb > 0):
        raise ValueError("--timeout-notebook and --max-memory must be positive")
    kit = Path(kit) if kit else find_kit_root()
    files = _kit_files(kit, number)
    config = {"lab": number, "profile": profile, "timeout_notebook": int(timeout_notebook),
              "max_memory_gb": float(max_memory_gb),
              "secret": f"solutions/{SECRET_NAME}" if secret else None}
    out = Path(out)
    with open(out, "xb") as handle:  # never overwrites (FileExistsError)
        try:
            with zipfile.ZipFile(handle, "w") as archive:
                text = {"lab": number, "source": "/autograder/source", "venv": VENV,
                        "secret": SECRET_NAME}
                _add(archive, "setup.sh", _SETUP.format(**text).encode(), 0o755)
                _add(archive, "run_autograder", _RUN.format(**text).encode(), 0o755)
                _add(archive, CONFIG_NAME, (json.dumps(config, indent=1) + "\n").encode(), 0o644)
                for path, name in files:
                    _add(archive, name, path.read_bytes(), 0o644)
                if secret:
                    _add(archive, f"kit/solutions/{SECRET_NAME}", secret + b"\n", 0o600)
        except BaseException:
            handle.close()
            out.unlink(missing_ok=True)
            raise
    return out


def main(argv=None) -> int:
    """``cnnlab export gradescope --lab NN OUT.zip [--secret FILE] ...``: 0 when written, 2 for
    a usage error (named on stderr, nothing written)."""
    from cnnlab.grading.hidden import SECRET_ENV, read_secret

    p = argparse.ArgumentParser(
        prog="cnnlab export gradescope",
        description="Write a Gradescope autograder zip (setup.sh, run_autograder, cnnlab with "
                    "the instructor's material) that grades one lab's notebook with "
                    "`cnnlab grade`.")
    p.add_argument("--lab", required=True, help="lab number, e.g. 03")
    p.add_argument("out", help="the zip to write (a new file)")
    p.add_argument("--secret", metavar="FILE",
                   help=f"the course secret, put in the zip (default: ${SECRET_ENV}; without "
                        "one, the hidden cases use fixed seeds anyone with the instructor's "
                        "repository knows)")
    p.add_argument("--timeout-notebook", type=int, default=480,
                   help="seconds per submission (default 480; keep it below Gradescope's "
                        "timeout, 10 minutes by default)")
    p.add_argument("--max-memory", type=float, default=4.0,
                   help="GiB the submission's kernel may use (default 4; the container's size "
                        "is set in Gradescope: 768 MB by default, choose 2 GB or more)")
    p.add_argument("--profile", choices=("smoke", "cpu", "full"), default="smoke")
    args = p.parse_args(argv)
    out = Path(args.out)
    try:
        if out.exists() or out.is_symlink():
            raise ValueError(f"{out} exists; remove it or give another name (nothing was "
                             "overwritten)")
        if not out.parent.is_dir():
            raise ValueError(f"the folder {out.parent} does not exist; create it first")
        secret = read_secret(args.secret)
        write_autograder_zip(args.lab, out, secret=secret, timeout_notebook=args.timeout_notebook,
                             max_memory_gb=args.max_memory, profile=args.profile)
    except FileExistsError:
        print(f"cnnlab export gradescope: {out} exists; remove it or give another name "
              "(nothing was overwritten)", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as exc:
        print(f"cnnlab export gradescope: {exc}", file=sys.stderr)
        return 2
    where = (f"--secret {args.secret}" if args.secret else f"${SECRET_ENV}") if secret else ""
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB): Gradescope autograder for lab "
          f"{int(args.lab):02d}")
    print(f"  hidden inputs: drawn from the course secret ({where}), stored in the zip" if secret
          else "  WARNING: no course secret (--secret FILE or $CNNLAB_GRADING_SECRET): the hidden "
               "cases use their fixed seeds, which anyone with the instructor's repository knows")
    print("  in Gradescope: a Programming Assignment, Configure Autograder > Zip file upload; "
          "container: at least 2 GB of memory (3 GB for Labs 08-10; the default 768 MB is too "
          "small); then Test Autograder with your solution")
    return 0


if __name__ == "__main__":  # run_autograder: python -m cnnlab.grading.gradescope
    autograde()
    sys.exit(0)
