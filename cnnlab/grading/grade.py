"""Batch grading: prepare each submission, run it in isolation, judge it, write the reports.

Each submission is one unit of work: reading it, preparing and flagging it (in a worker process,
:mod:`cnnlab.grading.prepare`), running it, judging it and writing its feedback.  Whatever goes
wrong inside a unit becomes that submission's row, with a status from :data:`STATUS_MEANINGS` and
a message saying what happened; the batch goes on.  What a submission or its kernel wrote is read
only through :mod:`cnnlab.grading.limits`' caps, and the reports (:mod:`cnnlab.grading.reports`)
are rewritten atomically as each submission finishes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from cnnlab.exercise import LABS, judge_records
from cnnlab.grading.hidden import case_seeds, graded_exercises, secret_sha256
from cnnlab.grading.integrity import implementations, watched_code
from cnnlab.grading.limits import (
    Limits,
    MiB,
    UntrustedInputError,
    copy_capped,
    load_json_capped,
    parse_json_capped,
    sha256_capped,
)
from cnnlab.grading import sandbox as _sandbox
from cnnlab.grading.prepare import (
    ParseServer,
    demo_exercise_cells,
    demo_only_names,
    is_demo,
    prepare_in_worker,
    prepare_submission,
)
from cnnlab.grading.reports import Reports
from cnnlab.notebooks import BEGIN, END, build_lab, exercise_id, find_kit_root

__all__ = ["ExerciseResult", "SubmissionResult", "CellError", "prepare_submission", "grade",
           "default_jobs", "STATUSES", "STATUS_MEANINGS", "EXERCISE_STATUS_MEANINGS"]

#: Every status a submission's row can have (``status`` in scores.csv/json), and its meaning.
STATUS_MEANINGS = {
    "graded": "the notebook ran to its end (cells may have raised) and every exercise was judged",
    "timeout": "the notebook ran past --timeout-notebook and was stopped; the exercises it had "
               "not reached are timeout",
    "kernel_died": "the kernel died or was stopped (over --max-memory, os._exit, its runner "
                   "killed) before the end; the exercises it had not reached are kernel_died",
    "unreadable": "the file is not a notebook the grader reads: not JSON, no list of cells, "
                  "over --max-notebook-mb or --max-json-depth; nothing ran",
    "refused": "the file was not read: a symbolic link, not a plain file, or a name that leads "
               "outside the submissions folder; nothing ran",
    "error": "grading this submission failed (the message says how: no parse within "
             "--parse-timeout, a malformed run record, a grader bug); the batch went on",
}

#: Every status of one exercise (the ``<id>:status`` columns), and its meaning.
EXERCISE_STATUS_MEANINGS = {
    "pass": "every test passed",
    "fail": "some tests failed or raised; points for the tests that passed",
    "not_attempted": "still the lab's stub (raises NotImplementedError, or the value is None)",
    "error": "the cell raised, its answer could not be tested, or the answer it exported is "
             "malformed or over a cap",
    "timeout": "the cell, the tests of its answer or the whole notebook ran out of time",
    "kernel_died": "the kernel died or was stopped before this exercise was graded",
    "missing": "the submission has no code cell tagged for this exercise",
}

STATUSES = tuple(EXERCISE_STATUS_MEANINGS)

# A file the runner copies back for the instructor (--keep-executed): never parsed here, so its
# cap only bounds the disk it takes.
_EXECUTED_BYTES = 200 * MiB
_SCORES_BYTES = 256 * MiB  # an earlier scores.json, read back by --resume
# What the similarity report reads of one exercise cell (a longer one is cut there).
_SIMILARITY_CHARS = 200_000


@dataclass
class ExerciseResult:
    id: str
    points: float
    max_points: float
    status: str  # a key of EXERCISE_STATUS_MEANINGS
    cases: list = field(default_factory=list)  # (name, hidden, status, message)
    message: str = ""
    flag: str = ""  # why the cell looks like it uses cnnlab's own answer ("" if it does not)


@dataclass
class CellError:
    """A notebook cell that raised: its index in the lab notebook, the exercise it belongs to
    (None for the lab's own cells), the exception's name and the line in that cell."""

    index: int
    exercise: str | None
    ename: str
    line: int | None = None
    message: str = ""
    export: bool = False  # raised while the grader tested the exercise, not in the cell itself


@dataclass
class SubmissionResult:
    submission: str
    path: str
    status: str  # a key of STATUS_MEANINGS
    exercises: list[ExerciseResult]
    seconds: float = 0.0
    message: str = ""
    cell_errors: list[CellError] = field(default_factory=list)
    sha256: str = ""  # of the file graded ("" when it was not read)
    sandbox: str = ""  # "bubblewrap" or "none" (--no-sandbox)
    limits: str = ""  # "cgroup-v1" (the submission as a whole) or "rlimit" (per process)
    secret_sha256: str | None = None  # of the course secret its hidden inputs came from
    similar: str = ""  # the cells like another's or cnnlab's own (cnnlab.grading.similarity)

    @property
    def total(self) -> float:
        """The sum of the exercises' points; never more than :attr:`max_total`."""
        return min(round(sum(e.points for e in self.exercises), 2), self.max_total)

    @property
    def max_total(self) -> float:
        return round(sum(e.max_points for e in self.exercises), 2)

    @property
    def flagged(self) -> str:
        """``"01.correlate2d: imports cnnlab.ops.correlate2d; ..."``, or ``""``."""
        return "; ".join(f"{e.id}: {e.flag}" for e in self.exercises if e.flag)


@dataclass
class Submission:
    """A file to grade: where it is, the name its row gets, and why it is refused ("" if not)."""

    path: Path
    name: str
    refused: str = ""


def default_jobs() -> int:
    """Submissions graded at once by default: the CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


# --------------------------------------------------------------------------------------------
# Running one submission in isolation


def _kill_group(pid: int) -> None:
    try:
        os.killpg(os.getpgid(pid), signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and every process below it (the rlimit mode's watch over
    the submission as a whole)."""
    return _sandbox.tree_rss_bytes(pid)


@dataclass
class RunOutcome:
    """How one run ended (finished/timeout/memory), the lines the runner sent, and what the
    grader saw from outside (the kernel's pid, output dropped per cell)."""

    ended: str
    lines: list = field(default_factory=list)
    problem: str = ""  # a line over the cap, or not JSON
    truncated: dict = field(default_factory=dict)


def _read_runner(stream, outcome: RunOutcome, line_bytes: int, state: dict) -> None:
    """Read the runner's JSON lines (each at most ``line_bytes``) into ``outcome``."""
    while True:
        line = stream.readline(line_bytes + 1)
        if not line:
            return
        if len(line) > line_bytes and not line.endswith(b"\n"):
            outcome.problem = (f"the run's progress record is malformed: a line is over the "
                               f"{line_bytes / MiB:.1f} MiB cap; raise the cap with "
                               f"--max-answer-mb")
            while line and not line.endswith(b"\n"):  # skip the rest of that line
                line = stream.readline(MiB)
            continue
        outcome.lines.append(line)
        if line.startswith(b'{"kernel": '):
            try:
                state["kernel"] = int(json.loads(line)["kernel"])
            except (ValueError, KeyError, TypeError):
                pass


def _run_isolated(workdir: Path, deadline: float, max_memory: int, cgroups=None,
                  line_bytes: int = 10 * MiB) -> RunOutcome:
    """Run the runner subprocess and watch it from outside: the deadline, the memory of the
    submission as a whole (its cgroup's OOM count, else the resident memory of the kernel's
    process tree), and at the end kill whatever the submission left (its cgroup, or the
    sandbox's first process: its PID namespace goes with it).  Progress arrives on the
    runner's stdout, never from a file the kernel could write."""
    process = subprocess.Popen(
        [sys.executable, "-m", "cnnlab.grading.runner", str(workdir)],
        stdout=subprocess.PIPE,
        stderr=(workdir / "runner.log").open("w"),
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    outcome, state = RunOutcome("finished"), {}
    reader = threading.Thread(target=_read_runner, daemon=True,
                              args=(process.stdout, outcome, line_bytes, state))
    reader.start()
    start, reason = time.monotonic(), ""
    while process.poll() is None:
        kernel = state.get("kernel")
        if time.monotonic() - start > deadline:
            reason = "timeout"
        elif cgroups is not None and cgroups.memory_exceeded():
            reason = "memory"
        elif cgroups is None and kernel and max_memory and _rss_bytes(kernel) > max_memory:
            reason = "memory"
        if reason:
            _end_sandbox(cgroups, kernel)
            _kill_group(process.pid)
            process.wait()
            break
        time.sleep(0.2)
    if not reason and cgroups is not None and cgroups.memory_exceeded():
        reason = "memory"  # a process of the submission was stopped at the limit
    _end_sandbox(cgroups, state.get("kernel"))  # never leave anything it started behind
    reader.join(10)
    process.stdout.close()
    outcome.ended = reason or "finished"
    return outcome


def _end_sandbox(cgroups, kernel: int | None) -> None:
    """Kill what the submission left: its cgroups' processes, else the kernel's process tree
    (the sandbox's first process: its PID namespace goes with it)."""
    if cgroups is not None:
        cgroups.kill_all()
    elif kernel:
        _sandbox.kill_tree(kernel)


def _text(value, what: str) -> str:
    if not isinstance(value, str):
        raise UntrustedInputError(f"{what} is not text")
    return value


def _line(value, what: str) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise UntrustedInputError(f"{what} is not a line number")


def _malformed(what: str, exc: UntrustedInputError) -> str:
    """``"the exported answer is malformed: it is list, not a record"``; a refusal that already
    names the file (over a cap, a link) is kept as it is."""
    text = str(exc)
    return text if text.startswith(what) else f"{what} is malformed: {text}"


def _progress_record(data) -> dict:
    """``progress.json`` checked field by field (the kernel could have rewritten it): the same
    shape the runner writes, or :class:`UntrustedInputError` saying what is wrong."""
    if not isinstance(data, dict) or not isinstance(data.get("cells"), dict):
        raise UntrustedInputError("it is not a record with a `cells` mapping")
    cells = {}
    for key, entry in data["cells"].items():
        if not (key.isascii() and key.isdigit() and len(key) < 7 and isinstance(entry, dict)):
            raise UntrustedInputError(f"cell {key[:20]!r} has no proper record")
        where = f"cell {key}'s record"
        innermost = entry.get("innermost")
        if innermost is not None and not (isinstance(innermost, list) and len(innermost) == 2):
            raise UntrustedInputError(f"{where} has a malformed `innermost`")
        records = entry.get("records", [])
        if not isinstance(records, list):
            raise UntrustedInputError(f"{where} has malformed `records`")
        cells[str(int(key))] = {
            "records": records,  # plain data the judge checks one by one (judge_records)
            "status": _text(entry.get("status", "ok"), f"{where}'s status"),
            "ename": _text(entry.get("ename", ""), f"{where}'s ename"),
            "evalue": _text(entry.get("evalue", ""), f"{where}'s evalue")[:300],
            "line": _line(entry.get("line"), f"{where}'s line"),
            "innermost": None if innermost is None else
            [_line(innermost[0], where), _line(innermost[1], where)],
        }
    return {"cells": cells, "end": _text(data.get("end", "kernel_died"), "`end`")}


def _read_progress(lines, limits: Limits) -> tuple[dict, str]:
    """``(progress, problem)``: the run's record from the runner's lines (the last full record,
    else the cells it reported before it was stopped), checked, or an empty one and why."""
    cells, final = {}, None
    try:
        for line in lines:
            data = parse_json_capped(line, limits.json_depth, "the run's progress record")
            if isinstance(data, dict) and "cell" in data:
                cells[str(data["cell"])[:20]] = data.get("entry")
            elif isinstance(data, dict) and ("cells" in data or "end" in data):
                final = data
            elif not (isinstance(data, dict) and data.keys() & {"kernel", "truncated"}):
                raise UntrustedInputError(f"a line is {type(data).__name__}, not a record")
        record = final if final is not None else {"cells": cells, "end": "running"}
        return _progress_record(record), ""
    except UntrustedInputError as exc:
        return {"cells": {}, "end": "error"}, _malformed("the run's progress record", exc)


def _how_it_ended(ended: str, progress: dict, problem: str = "") -> tuple[str, str]:
    """``(ending, message)``: how the run ended, one of finished, timeout, memory, kernel_died
    or error, from the runner's exit (``ended``) and the record it left.  A record still saying
    ``running`` means the runner was killed before it could finish (e.g. from the notebook)."""
    if ended != "finished":
        return ended, ""
    end = progress.get("end")
    if problem:
        return "error", problem
    if end in ("finished", "kernel_died"):
        return end, ""
    if end == "running":
        return "kernel_died", "the runner was stopped before the notebook ended"
    if isinstance(end, str) and end.startswith("runner_error"):
        return "error", f"the grader's runner failed: {end.partition(': ')[2]}"
    return "error", f"the run ended in an unknown state {str(end)[:40]!r}"


_ROW_STATUS = {"finished": "graded", "memory": "kernel_died", "timeout": "timeout",
               "kernel_died": "kernel_died", "error": "error"}


# --------------------------------------------------------------------------------------------
# Judging

_SYNTAX_ERRORS = ("SyntaxError", "IndentationError", "TabError")
_KERNEL_FILE = re.compile(r"(?:/[^\s()]*)?/ipykernel_\d+/\d+\.py|\b\d{6,}\.py|Cell In ?\[\d+\]")
_ENDINGS = {  # how the run ended -> (status, message) of an exercise it never reached
    "memory": ("kernel_died", "the kernel used more memory than allowed and was stopped"),
    "timeout": ("timeout", "the notebook ran past its deadline"),
    "kernel_died": ("kernel_died", "the kernel died before this exercise was graded"),
    "error": ("error", "the grader could not tell what the run did (see the message above)"),
}


def _clean(evalue: str) -> str:
    """An exception's text without IPython's temporary file names."""
    text = re.sub(r"\s*\((?:[^()]*?/)?\d+\.py, line \d+\)\s*$", "", str(evalue))
    return _KERNEL_FILE.sub("your cell", text)


def _where(ex_id: str, line) -> str:
    return f"your cell for {ex_id}" + (f", line {line}" if line else "")


def _cell_message(ex_id: str, cell: dict, context: dict) -> str:
    """``"SyntaxError in your cell for 02.receptive_field, line 5: invalid syntax"``.

    A syntax error's line, when the kernel gave none, comes from the parsing worker
    (``context["syntax_lines"]``): the grader itself never compiles a student's cell.
    """
    ename, line = cell.get("ename") or "Error", cell.get("line")
    if not line and ename in _SYNTAX_ERRORS:
        line = context.get("syntax_lines", {}).get(ex_id)
    text = f"{ename} in {_where(ex_id, line)}"
    innermost = cell.get("innermost") or [None, None]
    here = context.get("index")
    if innermost[0] is not None and innermost[0] != here:
        other = context.get("cell_exercise", {}).get(innermost[0])
        if other:
            text += f" (raised in {_where(other, innermost[1])})"
        else:
            text += (f" (raised in cell {context.get('lab_index', {}).get(innermost[0], '?')} of "
                     f"the lab, line {innermost[1]})")
    return f"{text}: {_clean(cell.get('evalue', ''))}"


def _case_message(ex_id: str, record: dict, message: str) -> str:
    """A probe error with the line of the student's cell it was raised on, when known."""
    message = _clean(message)
    line = record.get("line")
    if record.get("outcome") == "raised" and type(line) is int and 0 < line < 10**6:
        ename, sep, rest = message.partition(": ")
        if sep and ename.isidentifier():
            return f"{ename} in {_where(ex_id, line)}: {rest}"
        return f"{message} (in {_where(ex_id, line)})"
    return message


def _answer_record(records) -> tuple[dict | None, str]:
    """``(answer record, problem)``: the one ``{"kind": "answer", "defined", "origin"}`` record
    among an export cell's records, checked field by field, or None and why not."""
    answers = [r for r in records if isinstance(r, dict) and r.get("kind") == "answer"]
    if not answers:
        return None, "could not test your answer: the grader received no result for it"
    if len(answers) > 1:
        return None, "could not test your answer: more than one answer record"
    answer = answers[0]
    if not isinstance(answer.get("defined"), bool):
        return None, "could not test your answer: its record is malformed"
    origin = answer.get("origin") if isinstance(answer.get("origin"), str) else ""
    kind = "function" if answer.get("function") is True else "value"
    return {"defined": answer["defined"], "origin": origin[:200], "kind": kind}, ""


def _calls_flag(records) -> str:
    """The flag from a watched exercise's ``calls`` record (:func:`cnnlab.grading.export.
    exporter`): the cnnlab implementations its tests called, a watch switched off, or no
    record at all (the exporter was replaced)."""
    calls = [r for r in records if isinstance(r, dict) and r.get("kind") == "calls"]
    if len(calls) != 1 or not isinstance(calls[0].get("names"), list):
        return "the grader's check of what the tests called sent no (or more than one) report"
    names = [str(n)[:120] for n in calls[0]["names"][:20] if isinstance(n, str)]
    reasons = [f"its tests called {name}" for name in names]
    if calls[0].get("touched") is not False or calls[0].get("intact") is not True:
        reasons.append("its code read or switched off the grader's call check "
                       "(sys.setprofile/getprofile) while its tests ran")
    return "; ".join(reasons)


def _judge_exercise(ex, positions, missing, progress, ended: str,
                    context=None) -> ExerciseResult:
    """One exercise's row, from the run's progress record alone: the exercise cell's status and
    the probe records the runner took from its export cell's own outputs
    (``progress["cells"][export]["records"]``).  Every status and score is computed here: from
    the kernel only plain data is read (:func:`cnnlab.exercise.judge_records`), at most one
    result per case, and the points never exceed the exercise's."""
    context = context or {}
    result = ExerciseResult(ex.id, 0.0, float(ex.points), "error")
    if ex.id in missing:
        result.status, result.message = "missing", f"no cell tagged exercise:{ex.id}"
        return result
    cell_index, export_index = positions[ex.id]
    cells = progress.get("cells", {})
    ended_status, ended_message = _ENDINGS.get(ended, _ENDINGS["kernel_died"])
    cell = cells.get(str(cell_index))
    if cell is None:
        result.status, result.message = ended_status, ended_message
        return result
    if cell["ename"] == "CellTimeoutError":
        result.status, result.message = "timeout", "the exercise cell timed out"
        return result
    if cell["ename"] == "NotImplementedError":
        result.status, result.message = "not_attempted", "the exercise cell still raises"
        return result
    if cell["status"] == "error":
        result.message = _cell_message(ex.id, cell, {**context, "index": cell_index})
        return result
    export = cells.get(str(export_index))
    if export is None:
        result.status, result.message = ended_status, ended_message
        return result
    if export["ename"] == "CellTimeoutError":
        result.status, result.message = "timeout", "running your code on the tests timed out"
        return result
    if export["status"] == "error":
        result.message = (f"could not test your answer: {export['ename']}: "
                          f"{_clean(export['evalue'])}")
        return result
    records = export.get("records") if isinstance(export.get("records"), list) else []
    answer, problem = _answer_record(records)
    if answer is None:
        result.message = problem
        return result
    if not answer["defined"]:
        result.message = f"the exercise cell does not define `{ex.name}`"
        return result
    if answer["origin"]:
        result.flag = (f"`{ex.name}` is {answer['origin']} from cnnlab, not code written in the "
                       "notebook")
    if (context.get("watched") or {}).get(ex.id) and answer["kind"] == "function":
        result.flag = "; ".join(filter(None, [result.flag, _calls_flag(records)]))
    cases = [r for r in records if isinstance(r, dict) and r.get("kind") == "case"]
    judged = judge_records(ex, cases)
    hidden = {case.name: case.hidden for case in ex.cases}
    for name, status, message, record in judged:
        result.cases.append((name, hidden[name], status, _case_message(ex.id, record, message)))
    statuses = [status for _, status, _, _ in judged]
    passed = statuses.count("pass")
    result.points = min(float(ex.points), round(ex.points * passed / len(ex.cases), 2))
    if passed == len(statuses):
        result.status = "pass"
    elif statuses.count("not_attempted") == len(statuses):
        result.status = "not_attempted"
    elif passed == 0 and all(s in ("error", "not_attempted") for s in statuses):
        result.status = "error"
    else:
        result.status = "fail"
    return result


def _judge_safely(ex, *args, **kwargs) -> ExerciseResult:
    """:func:`_judge_exercise`, any failure becoming this exercise's ``error``; the points are
    clamped to ``[0, ex.points]`` whatever happened."""
    try:
        result = _judge_exercise(ex, *args, **kwargs)
        result.points = min(max(float(result.points), 0.0), float(ex.points))
        result.max_points = float(ex.points)
        return result
    except Exception as exc:  # noqa: BLE001 - one exercise, never the submission or the batch
        return ExerciseResult(ex.id, 0.0, float(ex.points), "error",
                              message=f"the grader could not judge this exercise: "
                                      f"{type(exc).__name__}: {str(exc)[:200]}")


def _lab_numbering(positions, n_cells) -> dict[int, int]:
    """Cell index in the executed notebook -> index in the lab notebook.  An export cell gets the
    index of the exercise cell it tests; the grader's first cell (the exporter) that of the
    lab's first cell."""
    export_of = {export: ex_id for ex_id, (_, export) in positions.items()}
    lab_index, n = {0: 0}, 0
    for i in range(1, n_cells):
        if i in export_of:
            lab_index[i] = lab_index[positions[export_of[i]][0]]
        else:
            lab_index[i], n = n, n + 1
    return lab_index


def _cell_errors(progress, positions, lab_index) -> list[CellError]:
    """Every cell that raised, numbered as in the lab notebook."""
    exercise_of = {cell: ex_id for ex_id, (cell, _) in positions.items()}
    export_of = {export: ex_id for ex_id, (_, export) in positions.items()}
    errors = []
    for key, cell in sorted(progress.get("cells", {}).items(), key=lambda kv: int(kv[0])):
        if cell.get("status") != "error":
            continue
        i = int(key)
        errors.append(CellError(
            index=lab_index.get(i, i), exercise=exercise_of.get(i) or export_of.get(i),
            ename=cell.get("ename", ""), line=cell.get("line"),
            message=_clean(cell.get("evalue", ""))[:300], export=i in export_of))
    return errors


# --------------------------------------------------------------------------------------------
# One submission, start to end: one unit, whatever happens in it


def _error_rows(exercises, message: str) -> list[ExerciseResult]:
    return [ExerciseResult(ex.id, 0.0, float(ex.points), "error", [], message)
            for ex in exercises]


def _not_graded(sub: Submission, exercises, status: str, message: str,
                sha256: str = "") -> SubmissionResult:
    """A row for a submission that was not (or not fully) graded: every exercise ``error``."""
    message = message[:500]
    return SubmissionResult(sub.name, str(sub.path), status, _error_rows(exercises, message),
                            0.0, message, sha256=sha256)


def _prepared(raw: dict) -> tuple[dict, set, dict, dict, int]:
    """The parsing worker's result as ``(positions, missing, flags, syntax_lines, n_cells)``."""
    positions = {ex_id: (int(cell), int(export)) for ex_id, (cell, export)
                 in raw["positions"].items()}
    return (positions, set(raw["missing"]), dict(raw["flags"]), dict(raw["syntax_lines"]),
            int(raw["n_cells"]))


def _keep_executed(workdir: Path, out: Path, name: str, message: str) -> str:
    """Copy the executed notebook to ``out/executed/<name>.ipynb``; return the row's message,
    with a note when the copy was refused (the kernel could have put a link there)."""
    kept = out / "executed"
    kept.mkdir(parents=True, exist_ok=True)
    try:
        copy_capped(workdir / "executed.ipynb", kept / f"{name}.ipynb", _EXECUTED_BYTES,
                    "the executed notebook")
    except UntrustedInputError as exc:
        return (f"{message} " if message else "") + f"(not kept: {exc})"
    return message


def _grade_steps(sub: Submission, template, exercises, options, step: list) -> SubmissionResult:
    """Grade one submission; ``step[0]`` says what it is doing, for the message if it fails."""
    limits = options["limits"]
    # (a folder the kernel left unreadable must not cost the grade: cleanup errors are ignored)
    with tempfile.TemporaryDirectory(prefix="cnnlab-grade-", ignore_cleanup_errors=True) as tmp:
        workdir = Path(tmp)
        step[0] = "reading"
        try:
            sha256 = copy_capped(sub.path, workdir / "handed_in.ipynb", limits.notebook_bytes,
                                 "the notebook", "--max-notebook-mb")
        except UntrustedInputError as exc:
            return _not_graded(sub, exercises, "unreadable", f"unreadable notebook: {exc}")
        step[0] = "parsing"
        job = {"notebook": str(workdir / "handed_in.ipynb"), "template": template,
               "exercise_ids": [ex.id for ex in exercises], "forbidden": options["forbidden"],
               "workdir": str(workdir), "seeds": options["seeds"],
               "watched": options["watched"], "whole_notebook": options["whole_notebook"],
               "limits": {"notebook_bytes": limits.notebook_bytes,
                          "json_depth": limits.json_depth}}
        raw = prepare_in_worker(job, limits.parse_seconds, options.get("server"))
        if not raw.get("ok"):
            status = raw.get("status") if raw.get("status") in STATUS_MEANINGS else "error"
            return _not_graded(sub, exercises, status, str(raw.get("message")), sha256)
        positions, missing, flags, syntax_lines, n_cells = _prepared(raw)
        step[0] = "running"
        outcome = _run_sandboxed(workdir, options, limits)
        step[0] = "judging"
        progress, problem = _read_progress(outcome.lines, limits)
        ended, message = _how_it_ended(outcome.ended, progress, problem)
        if ended == "memory":
            message = (f"the submission used more memory than --max-memory "
                       f"({options['max_memory'] / 2**30:g} GiB) and was stopped")
        lab_index = _lab_numbering(positions, n_cells)
        dropped = _truncations(outcome.lines, limits)
        if dropped:
            message = " ".join(filter(None, [message, "; ".join(
                f"cell {lab_index.get(cell, cell)} printed more than --max-output-kb "
                f"({options['max_output_bytes'] // 1024} KiB): {n} bytes of its output were "
                f"dropped" for cell, n in sorted(dropped.items()))]))
        cell_errors = _cell_errors(progress, positions, lab_index)
        context = {"syntax_lines": syntax_lines, "lab_index": lab_index, "limits": limits,
                   "cell_exercise": {cell: ex_id for ex_id, (cell, _) in positions.items()},
                   "watched": options.get("watched") or {}}
        rows = [_judge_safely(ex, positions, missing, progress, ended, context)
                for ex in exercises]
        if options.get("keep_executed") and os.path.lexists(workdir / "executed.ipynb"):
            step[0] = "keeping the executed notebook of"
            message = _keep_executed(workdir, Path(options["out"]), sub.name, message)
    _explain_demo_names(rows, options.get("demo_names") or set())
    for row in rows:  # what the cell reads (static) and what it handed back (run time)
        reasons = list(flags.get(row.id, [])) + ([row.flag] if row.flag else [])
        row.flag = "; ".join(dict.fromkeys(map(str, reasons)))
    return SubmissionResult(sub.name, str(sub.path), _ROW_STATUS[ended], rows, 0.0, message,
                            cell_errors=cell_errors, sha256=sha256)


_UNDEFINED = re.compile(r"\bname '([A-Za-z_][A-Za-z0-9_]*)' is not defined")


def _demo_hint(text: str, names: set) -> str:
    """``text`` with a note when it is a NameError for a name only a skipped demo cell sets."""
    match = _UNDEFINED.search(text) if "NameError" in text else None
    if not match or match.group(1) not in names:
        return text
    return (f"{text} (`{match.group(1)}` is set by a demonstration cell of the lab, which the "
            f"grader skips: set it in your exercise cell; your instructor can also grade with "
            f"--whole-notebook)")


def _explain_demo_names(rows, names: set) -> None:
    """Add :func:`_demo_hint`'s note to each exercise's message and case messages."""
    for row in rows:
        row.message = _demo_hint(row.message, names)
        row.cases = [(name, hidden, status, _demo_hint(message, names))
                     for name, hidden, status, message in row.cases]


def _truncations(lines, limits: Limits) -> dict[int, int]:
    """``{cell index: bytes dropped}`` from the runner's ``{"truncated": ...}`` lines."""
    dropped = {}
    for line in lines:
        if line.startswith(b'{"truncated": '):
            try:
                data = parse_json_capped(line, limits.json_depth, "the runner's line")
                dropped.update({int(k): int(v) for k, v in data["truncated"].items()})
            except (UntrustedInputError, ValueError, KeyError, TypeError, AttributeError):
                pass
    return dropped


def _run_sandboxed(workdir: Path, options: dict, limits: Limits) -> RunOutcome:
    """Run one prepared submission: its kernel in a bubblewrap sandbox (unless
    ``options["sandbox"]`` is off) and in cgroups of its own where the machine offers them."""
    # the kernel's working directory: a private copy of the lab's folder (notebooks left out),
    # never the kit's own folder beside solutions/ (in the sandbox it is seen as /tmp/lab)
    private = workdir / "lab"
    shutil.copytree(options["cwd"], private, symlinks=True,
                    ignore=lambda folder, names: [n for n in names if n.endswith(".ipynb")])
    config = {"cell_timeout": options["timeout_cell"], "profile": options["profile"],
              "cwd": str(private), "keep_executed": bool(options.get("keep_executed")),
              "max_output_bytes": options["max_output_bytes"]}
    cgroups, uid = None, None
    try:
        if options["limits_mode"] == _sandbox.LIMITS_CGROUP:
            cgroups = _sandbox.Cgroups(options["max_memory"], options["max_processes"]).create()
            config["cgroup_procs"] = cgroups.procs
        else:
            config["rlimit_as"] = options["max_memory"]
        if options["sandbox"]:
            uid = options["uids"].acquire()
            config["sandbox"] = _sandbox.plan_sandbox(
                workdir, cwd=Path(options["cwd"]), kit=Path(options["kit"]),
                solutions=Path(options["solutions"]), hidden=options["hidden"], uid=uid,
                profile=options["profile"], bwrap=options["bwrap"],
                cgroup_procs=config.get("cgroup_procs", ()),
                rlimit_as=config.get("rlimit_as", 0),
                rlimit_nproc=options["max_processes"] if cgroups is None else 0)
        (workdir / "config.json").write_text(json.dumps(config))
        return _run_isolated(workdir, options["timeout_notebook"], options["max_memory"],
                             cgroups, limits.record_bytes)
    finally:
        if cgroups is not None:
            cgroups.remove()
        if uid is not None:
            options["uids"].release(uid)


def _grade_one(sub: Submission, template, exercises, options, reports: Reports):
    """One submission as one unit: grade it (unless refused) and write its feedback.  Any
    exception becomes the row's ``error`` status with the step it happened in; never raises."""
    start, step = time.monotonic(), ["starting"]
    if sub.refused:
        result = _not_graded(sub, exercises, "refused", f"not graded: {sub.refused}")
    else:
        try:
            result = _grade_steps(sub, template, exercises, options, step)
        except Exception as exc:  # noqa: BLE001 - one submission, never the batch
            result = _not_graded(sub, exercises, "error",
                                 f"the grader failed while {step[0]} this submission: "
                                 f"{type(exc).__name__}: {str(exc)[:300]}")
    result.seconds = time.monotonic() - start
    try:
        reports.write_feedback(result)
    except Exception as exc:  # noqa: BLE001 - the row still says what happened
        result.status = "error"
        result.message = (f"{result.message} " if result.message else "") + \
            f"(its feedback could not be written: {type(exc).__name__}: {str(exc)[:200]})"
    return result


# --------------------------------------------------------------------------------------------
# Finding the submissions


def _refusal(path: Path, folder: Path | None = None) -> str:
    """Why ``path`` is not graded ("" when it is): a symbolic link, not a plain file, or (found
    in ``folder``) a name that leads outside it."""
    if path.is_symlink():
        return "a symbolic link; submit the notebook file itself"
    try:
        mode = path.lstat().st_mode
    except OSError as exc:
        return f"it cannot be read ({exc.strerror})"
    if not stat.S_ISREG(mode):
        return ("a folder, not a notebook file" if stat.S_ISDIR(mode)
                else "not a plain file (a pipe, socket or device); submit the notebook file")
    if folder is not None and os.path.realpath(path.parent) != os.path.realpath(folder):
        return "its name leads outside the submissions folder"
    return ""


def _stem(path: Path) -> str:
    name = path.name
    stem = name[:-len(".ipynb")] if name.lower().endswith(".ipynb") else path.stem
    return stem or name


def _submissions(paths) -> list[Submission]:
    """Every file to grade, in order: each file named ``*.ipynb`` in any case (``x.IPYNB``)
    directly in a folder of ``paths``, and each file named in ``paths``.  Links and anything
    that is not a plain file are kept, refused; each gets a unique row name."""
    found = []
    for p in map(Path, paths):
        if p.is_dir():  # a folder the grader names may be a link; the files in it may not
            found += [(p / name, _refusal(p / name, p)) for name in sorted(os.listdir(p))
                      if name.lower().endswith(".ipynb")]
        elif p.exists() or p.is_symlink():
            found.append((p, _refusal(p)))
        else:
            raise FileNotFoundError(f"no such notebook or folder: {p}")
    named, used = [], set()
    for path, refused in found:
        name, n = _stem(path), 1
        while name in used:
            n += 1
            name = f"{_stem(path)}-{n}"
        used.add(name)
        named.append(Submission(path, name, refused))
    return named


# --------------------------------------------------------------------------------------------
# Resuming an interrupted batch


def _kept_row(data, exercises, path: Path) -> SubmissionResult | None:
    """A row of an earlier ``scores.json`` as a :class:`SubmissionResult`, or None when it does
    not have every field this lab's rows have (it is then graded again)."""
    try:
        by_id = data["exercises"]
        rows = [ExerciseResult(ex.id, float(by_id[ex.id]["points"]), float(ex.points),
                               str(by_id[ex.id]["status"]),
                               [(str(c["name"]), bool(c["hidden"]), str(c["status"]),
                                 str(c.get("message", ""))) for c in by_id[ex.id].get("cases", [])],
                               str(by_id[ex.id].get("message", "")),
                               str(by_id[ex.id].get("flag", ""))) for ex in exercises]
        errors = [CellError(**error) for error in data.get("cell_errors", [])]
        result = SubmissionResult(str(data["submission"]), str(path), str(data["status"]), rows,
                                  float(data.get("seconds", 0.0)), str(data.get("message", "")),
                                  errors, str(data["sha256"]),
                                  secret_sha256=data.get("secret_sha256"))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    documented = result.status in STATUS_MEANINGS and all(
        e.status in EXERCISE_STATUS_MEANINGS for e in rows)
    return result if documented else None


def _resumable(out: Path, number: str, exercises, submissions, limits: Limits,
               secret_digest: str | None = None) -> list:
    """The rows of ``out/scores.json`` that ``--resume`` keeps: same lab, graded with the same
    course secret (its SHA-256, or none both times), a submission that is still there under the
    same name with the same SHA-256.  Raises ValueError (with the fix)
    when that file cannot be read or holds another lab."""
    path = out / "scores.json"
    if not path.exists():
        return []
    try:
        data = load_json_capped(path, _SCORES_BYTES, limits.json_depth, f"{path}")
    except UntrustedInputError as exc:
        raise ValueError(f"cannot resume: {exc}; grade again without --resume") from None
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise ValueError(f"cannot resume: {path} is not a list of rows; grade again without "
                         "--resume")
    labs = {str(row["lab"]) for row in data if row.get("lab") is not None}
    if labs - {number}:
        raise ValueError(f"cannot resume: {path} holds scores of lab {', '.join(sorted(labs))},"
                         f" not lab {number}; use another --out, or grade without --resume")
    earlier = {row["submission"]: row for row in data
               if str(row.get("lab")) == number and isinstance(row.get("submission"), str)}
    kept = []
    for sub in submissions:
        row = earlier.get(sub.name)
        if sub.refused or row is None or not row.get("sha256") \
                or row.get("secret_sha256") != secret_digest:
            continue
        try:
            sha = sha256_capped(sub.path, limits.notebook_bytes)
        except UntrustedInputError:
            continue
        result = _kept_row(row, exercises, sub.path) if sha == row["sha256"] else None
        if result is not None:
            kept.append(result)
    return kept


# --------------------------------------------------------------------------------------------
# The batch


def _answers_of(sub: Submission, exercises, options: dict) -> dict[str, str]:
    """``{exercise id: source}`` of a submission's exercise cells, read by a parsing worker
    under the same caps and deadline as grading; ``{}`` when it cannot be read."""
    limits = options["limits"]
    with tempfile.TemporaryDirectory(prefix="cnnlab-similar-", ignore_cleanup_errors=True) as tmp:
        try:
            copy_capped(sub.path, Path(tmp) / "handed_in.ipynb", limits.notebook_bytes,
                        "the notebook", "--max-notebook-mb")
        except UntrustedInputError:
            return {}
        job = {"notebook": str(Path(tmp) / "handed_in.ipynb"), "answers_only": True,
               "exercise_ids": [ex.id for ex in exercises], "workdir": tmp,
               "limits": {"notebook_bytes": limits.notebook_bytes,
                          "json_depth": limits.json_depth}}
        raw = prepare_in_worker(job, limits.parse_seconds, options.get("server"))
    answers = raw.get("answers") if raw.get("ok") else None
    if not isinstance(answers, dict):
        return {}
    return {str(k): v[:_SIMILARITY_CHARS] for k, v in answers.items() if isinstance(v, str)}


def _solution_cells(solution) -> dict[str, str]:
    """``{exercise id: source}`` of the instructor's solution cells, marker lines dropped."""
    cells = {}
    for cell in solution.cells:
        ex_id = exercise_id(cell)
        if ex_id and cell.cell_type == "code" and ex_id not in cells:
            cells[ex_id] = "".join(line for line in cell.source.splitlines(keepends=True)
                                   if BEGIN not in line and END not in line)
    return cells


def _similarity_report(number: str, submissions, exercises, template, source: Path,
                       options: dict, reports: Reports, stream) -> None:
    """Compare every exercise cell of the batch (:mod:`cnnlab.grading.similarity`): fill the
    ``similar`` column and write ``out/similarity.html``.  A failure here is printed and costs
    no grade: the scores are already written."""
    out = Path(options["out"])
    try:
        from cnnlab.grading import similarity

        answers = {}
        for sub in submissions:
            found = {} if sub.refused else _answers_of(sub, exercises, options)
            if found:
                answers[sub.name] = found
        starter = {exercise_id(c): c.source for c in template.cells
                   if exercise_id(c) and c.cell_type == "code"}
        references = similarity.reference_sources(
            exercises, _solution_cells(nbformat.read(source, as_version=4)))
        pairs = similarity.similar_pairs(answers, starter, references)
        path = similarity.write_similarity_html(pairs, out / "similarity.html", number)
        reports.set_similar(similarity.similar_column(pairs))
        print(f"similarity: {len(pairs)} pair(s) at or above {similarity.DEFAULT_THRESHOLD:g} "
              f"among {len(answers)} submission(s) and cnnlab's own code: {path}", file=stream)
    except Exception as exc:  # noqa: BLE001 - a report must never cost a grade
        print(f"WARNING: the similarity report failed ({type(exc).__name__}: {exc}); the scores "
              f"are written without it", file=stream)


def _limits(max_notebook_mb, max_answer_mb, max_json_depth, parse_timeout) -> Limits:
    for name, value in (("max_notebook_mb", max_notebook_mb), ("max_answer_mb", max_answer_mb),
                        ("max_json_depth", max_json_depth), ("parse_timeout", parse_timeout)):
        if not value > 0:
            raise ValueError(f"{name} must be positive, not {value!r}")
    return Limits(int(max_notebook_mb * MiB), int(max_answer_mb * MiB), int(max_json_depth),
                  float(parse_timeout))


def _status_counts(results) -> str:
    """``"graded 28, error 1, refused 1"``: how many rows have each status, in the order of
    :data:`STATUS_MEANINGS`."""
    counts = {status: 0 for status in STATUS_MEANINGS}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    return ", ".join(f"{status} {n}" for status, n in counts.items() if n) or "none"


def grade(lab, paths, out="results", jobs=None, timeout_cell=60, timeout_notebook=600, only=None,
          max_memory_gb=4.0, profile="smoke", solutions=None, stream=None, keep_executed=False,
          max_notebook_mb=20, max_answer_mb=10, max_json_depth=100, parse_timeout=30,
          resume=False, sandbox=True, max_processes=512, max_output_kb=1000,
          sandbox_uid="65534", limits_mode=None, secret=None, whole_notebook=False):
    """Grade every notebook in ``paths`` (files or folders) for ``lab``; write and return results.

    A folder contributes every file directly in it whose name ends in ``.ipynb`` in any case;
    symbolic links and anything that is not a plain file get a ``refused`` row.  ``jobs``
    submissions run at once (default :func:`default_jobs`, the CPU cores).  Each submission is
    one unit: whatever fails in it becomes its own row's status (:data:`STATUS_MEANINGS`) and
    message, and the batch goes on.
    ``only`` (row names, :func:`cnnlab.grading.shards.shard_names`) grades those submissions
    of the batch alone, each named as in the whole batch: one shard of it.

    Caps on what a submission controls: ``max_notebook_mb`` (``--max-notebook-mb``, 20) for the
    notebook, ``max_answer_mb`` (``--max-answer-mb``, 10) for the run's progress record (with
    the answers' probe records), ``max_json_depth`` (``--max-json-depth``, 100) for the nesting
    of any of them, and ``parse_timeout`` (``--parse-timeout``, 30 s) for reading,
    preparing and flagging a notebook, which happens in a worker process of its own.

    Writes ``out/scores.csv``, ``out/scores.json`` and ``out/feedback/<submission>.md``,
    atomically, as each submission finishes (old scores in ``out`` are first moved aside to
    ``scores-<UTC time>.csv.old``), prints one line per finished submission with its seconds,
    then the batch's wall time and seconds per submission, and last the rows per status
    (``statuses: graded 28, error 1``).  With ``resume=True`` (``--resume``) the rows already
    in ``out/scores.json`` are kept for the submissions still there unchanged (same name and
    SHA-256) and only the others are graded.  With ``keep_executed=True``
    (``--keep-executed``) each submission's executed notebook, outputs and all, is kept as
    ``out/executed/<submission>.ipynb``: what the student's code printed and drew, for an
    instructor reading a grade (and for the tests that read what a lab prints without running
    it again).  ``secret`` (bytes, :func:`cnnlab.grading.hidden.read_secret`) is the course
    secret the hidden cases draw their inputs from (:func:`cnnlab.grading.hidden.case_seeds`);
    ``scores.json`` records its SHA-256 in every row, never the secret, and ``--resume`` keeps
    only rows graded with the same one.  Without it the grader warns and uses the fixed seeds.
    The cells the instructor's notebook tags ``demo`` (demonstrations no exercise's grading
    reads: training runs, plots) are skipped, each left as a comment in its place; with
    ``whole_notebook=True`` (``--whole-notebook``) they run too, as in the lab.  Only the
    instructor's tags count: a submission's metadata is never read for this.
    Returns every row, in the order the submissions were found.  Used in:
    ``cnnlab grade``, ``make grade``.
    """
    stream = stream or sys.stdout
    jobs = default_jobs() if jobs is None else max(1, int(jobs))
    number = f"{int(lab):02d}"
    if number not in LABS:
        raise ValueError(f"unknown lab {lab!r}; labs are {', '.join(LABS)}")
    limits = _limits(max_notebook_mb, max_answer_mb, max_json_depth, parse_timeout)
    seeds = case_seeds(number, secret)
    exercises = graded_exercises(number, seeds)
    solutions = Path(solutions) if solutions else find_kit_root() / "solutions"
    source = solutions / f"{LABS[number]}.ipynb"
    if not source.exists():
        raise FileNotFoundError(f"the instructor's notebook {source} is missing")
    template = build_lab(nbformat.read(source, as_version=4), source.name)
    tagged_exercises = demo_exercise_cells(template)
    if tagged_exercises:
        raise ValueError(f"{source}: the exercise cells of {', '.join(tagged_exercises)} are "
                         f"tagged demo; an exercise cell always runs: remove the tag")
    cwd = solutions.parent / "labs"
    out = Path(out)
    if not (max_processes > 0 and max_output_kb > 0):
        raise ValueError(f"max_processes and max_output_kb must be positive, not "
                         f"{max_processes!r} and {max_output_kb!r}")
    sandbox_on = bool(sandbox)
    bwrap = _sandbox.require_bubblewrap() if sandbox_on else ""
    limits_mode = limits_mode or (_sandbox.LIMITS_CGROUP if _sandbox.cgroups_available()
                                  else _sandbox.LIMITS_RLIMIT)
    options = {"timeout_cell": timeout_cell, "timeout_notebook": timeout_notebook,
               "max_memory": int(max_memory_gb * 2**30), "profile": profile,
               "cwd": str(cwd if cwd.is_dir() else solutions),
               "forbidden": {ex.id: implementations(ex) for ex in exercises},
               "watched": {ex.id: watched_code(ex) for ex in exercises},
               "keep_executed": keep_executed, "out": str(out), "limits": limits,
               "sandbox": sandbox_on, "bwrap": bwrap, "limits_mode": limits_mode,
               "max_processes": int(max_processes),
               "max_output_bytes": int(max_output_kb * 1024),
               "uids": _sandbox.UidPool.parse(sandbox_uid), "kit": str(solutions.parent),
               "solutions": str(solutions), "seeds": seeds,
               "secret_sha256": secret_sha256(secret), "whole_notebook": bool(whole_notebook),
               "demo_names": set() if whole_notebook else demo_only_names(template)}
    submissions = _submissions(paths)
    if only is not None:  # one shard of the batch (cnnlab.grading.shards); names as in the whole
        submissions = [sub for sub in submissions if sub.name in only]
    options["hidden"] = sorted({str(out.resolve())} | {
        str(p.resolve() if p.is_dir() else p.resolve().parent) for p in map(Path, paths)})
    kept = _resumable(out, number, exercises, submissions, limits,
                      options["secret_sha256"]) if resume else []
    reports = Reports(out, exercises, number)
    for old in reports.start(kept):
        print(f"moved the earlier scores aside: {old}", file=stream)
    done = {r.submission for r in kept}
    todo = [sub for sub in submissions if sub.name not in done]
    if resume:
        print(f"resuming: kept {len(kept)} row(s) from {out / 'scores.json'}", file=stream)
    if not sandbox_on:
        print("WARNING: --no-sandbox: each submission's code runs with your rights, sees your "
              "files and the network, and its processes can outlive it; grade this way only "
              "code you trust", file=stream, flush=True)
    if secret is None:
        print("WARNING: no course secret (--secret FILE or CNNLAB_GRADING_SECRET): the hidden "
              "cases use their fixed seeds, which anyone with the instructor's repository knows; "
              "give a secret to draw them afresh", file=stream, flush=True)
    else:
        print(f"hidden inputs drawn from the course secret (SHA-256 "
              f"{options['secret_sha256'][:12]}...)", file=stream, flush=True)
    demos = sum(1 for cell in template.cells if cell.cell_type == "code" and is_demo(cell))
    print(f"grading {len(todo)} submission(s) of lab {number} with {jobs} job(s); sandbox: "
          f"{'bubblewrap' if sandbox_on else 'none'}; limits: {limits_mode}; demo cells: "
          + (f"{demos} run (--whole-notebook)" if whole_notebook else
             f"{demos} skipped (--whole-notebook runs them)"), file=stream, flush=True)

    def one(sub):
        result = _grade_one(sub, template, exercises, options, reports)
        result.sandbox = "bubblewrap" if sandbox_on else "none"
        result.limits = limits_mode
        result.secret_sha256 = options["secret_sha256"]
        reports.add(result)
        flagged = "  [flagged]" if result.flagged else ""
        print(f"  {result.submission}: {result.total:g}/{result.max_total:g} "
              f"({result.status}, {result.seconds:.1f} s){flagged}", file=stream, flush=True)
        return result

    start = time.monotonic()
    options["server"] = ParseServer.shared()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        graded = {r.submission: r for r in pool.map(one, todo)}
    wall = time.monotonic() - start
    if graded:
        mean = sum(r.seconds for r in graded.values()) / len(graded)
        print(f"graded {len(graded)} submission(s) in {wall:.1f} s with {jobs} job(s): "
              f"{wall / len(graded):.1f} s per submission (each ran {mean:.1f} s on average)",
              file=stream)
    results = [graded.get(sub.name) or next(r for r in kept if r.submission == sub.name)
               for sub in submissions]
    _similarity_report(number, submissions, exercises, template, source, options, reports,
                       stream)
    print(f"wrote {out / 'scores.csv'} and {len(graded)} feedback file(s)", file=stream)
    print(f"statuses: {_status_counts(results)}", file=stream, flush=True)
    return results
