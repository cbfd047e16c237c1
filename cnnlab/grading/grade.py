"""Batch grading: prepare each submission, run it in isolation, judge it, write the reports."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from cnnlab.exercise import LABS, Exercise, judge_record, lab_exercises
from cnnlab.grading.integrity import implementations, submission_flags
from cnnlab.notebooks import build_lab, exercise_id, find_kit_root

__all__ = ["ExerciseResult", "SubmissionResult", "CellError", "prepare_submission", "grade",
           "default_jobs", "STATUSES"]

STATUSES = ("pass", "fail", "not_attempted", "error", "timeout", "kernel_died", "missing")


@dataclass
class ExerciseResult:
    id: str
    points: float
    max_points: float
    status: str
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
    status: str  # "graded", "unreadable", "timeout", "kernel_died", ...
    exercises: list[ExerciseResult]
    seconds: float = 0.0
    message: str = ""
    cell_errors: list[CellError] = field(default_factory=list)

    @property
    def total(self) -> float:
        return round(sum(e.points for e in self.exercises), 2)

    @property
    def max_total(self) -> float:
        return round(sum(e.max_points for e in self.exercises), 2)

    @property
    def flagged(self) -> str:
        """``"01.correlate2d: imports cnnlab.ops.correlate2d; ..."``, or ``""``."""
        return "; ".join(f"{e.id}: {e.flag}" for e in self.exercises if e.flag)


def default_jobs() -> int:
    """Submissions graded at once by default: the CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


# --------------------------------------------------------------------------------------------
# Preparing a submission: the instructor's lab with the student's exercise cells


def _export_cell(ex_id: str, outdir: Path):
    source = (
        "import cnnlab.grading.export as _cnnlab_export\n"
        f"_cnnlab_export.export_answer({ex_id!r}, globals(), {str(outdir)!r})"
    )
    return nbformat.v4.new_code_cell(source, metadata={"tags": ["cnnlab-export"]})


def prepare_submission(template, submission, exercises: list[Exercise], outdir: Path):
    """Assemble the notebook to execute and the map ``exercise id -> (cell index, export index)``.

    ``template`` is the instructor's lab; only the sources of ``submission``'s ``exercise:`` cells
    are used (first tagged cell wins; order in the submission does not matter).  Exercises the
    submission lacks keep the lab's stub and are reported ``missing``.
    """
    answers = {}
    for cell in submission.cells:
        ex_id = exercise_id(cell)
        if ex_id and ex_id not in answers and cell.get("cell_type") == "code":
            answers[ex_id] = cell.source
    wanted = {ex.id for ex in exercises}
    nb = nbformat.v4.new_notebook(metadata=template.metadata)
    positions, missing = {}, set()
    for cell in template.cells:
        cell = nbformat.from_dict(json.loads(json.dumps(cell)))
        ex_id = exercise_id(cell)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        nb.cells.append(cell)
        if ex_id in wanted:
            if ex_id in answers:
                cell.source = answers[ex_id]
            else:
                missing.add(ex_id)
            positions[ex_id] = (len(nb.cells) - 1, len(nb.cells))
            nb.cells.append(_export_cell(ex_id, outdir))
    absent = wanted - set(positions)
    if absent:
        raise ValueError(f"the instructor's notebook has no cell tagged for {sorted(absent)}")
    return nb, positions, missing


# --------------------------------------------------------------------------------------------
# Running one submission in isolation


def _kill_group(pid: int) -> None:
    try:
        os.killpg(os.getpgid(pid), signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _run_isolated(workdir: Path, deadline: float, max_memory: int) -> str:
    """Run the runner subprocess; return how it ended: finished/timeout/memory/kernel_died."""
    process = subprocess.Popen(
        [sys.executable, "-m", "cnnlab.grading.runner", str(workdir)],
        stdout=(workdir / "runner.log").open("w"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    start, reason, kernel_pid = time.monotonic(), "", None
    while process.poll() is None:
        if kernel_pid is None and (workdir / "kernel.pid").exists():
            try:
                kernel_pid = int((workdir / "kernel.pid").read_text())
            except ValueError:
                kernel_pid = None
        if time.monotonic() - start > deadline:
            reason = "timeout"
        elif kernel_pid and max_memory and _rss_bytes(kernel_pid) > max_memory:
            reason = "memory"
        if reason:
            if kernel_pid:
                _kill_group(kernel_pid)
            _kill_group(process.pid)
            process.wait()
            break
        time.sleep(0.2)
    if kernel_pid:  # never leave a kernel (or anything it forked) behind
        _kill_group(kernel_pid)
    return reason or "finished"


# --------------------------------------------------------------------------------------------
# Judging

_SYNTAX_ERRORS = ("SyntaxError", "IndentationError", "TabError")
_KERNEL_FILE = re.compile(r"(?:/[^\s()]*)?/ipykernel_\d+/\d+\.py|\b\d{6,}\.py|Cell In ?\[\d+\]")


def _clean(evalue: str) -> str:
    """An exception's text without IPython's temporary file names."""
    text = re.sub(r"\s*\((?:[^()]*?/)?\d+\.py, line \d+\)\s*$", "", str(evalue))
    return _KERNEL_FILE.sub("your cell", text)


def _where(ex_id: str, line) -> str:
    return f"your cell for {ex_id}" + (f", line {line}" if line else "")


# Submissions are graded on threads (``--jobs``), but CPython 3.11's ``ast`` module keeps its
# recursion-depth bookkeeping per interpreter, not per thread: two threads parsing at once can
# make ``ast.parse`` or ``compile`` raise "SystemError: AST constructor recursion depth
# mismatch".  CI saw a SystemError while flagging one submission of a --jobs 2 batch; this is
# the likely cause (not reproduced on demand).  Parsing is cheap next to running a notebook, so
# it is serialised.
_AST_LOCK = threading.Lock()


def _cell_message(ex_id: str, cell: dict, source: str | None, context: dict) -> str:
    """``"SyntaxError in your cell for 02.receptive_field, line 5: invalid syntax"``."""
    ename, line = cell.get("ename") or "Error", cell.get("line")
    if not line and ename in _SYNTAX_ERRORS and source is not None:
        try:
            with _AST_LOCK:
                compile(source, _where(ex_id, None), "exec")
        except SyntaxError as exc:
            line = exc.lineno
        except (ValueError, RecursionError, MemoryError):
            pass
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
    if record.get("status") == "error" and record.get("line"):
        ename, sep, rest = message.partition(": ")
        if sep and ename.isidentifier():
            return f"{ename} in {_where(ex_id, record['line'])}: {rest}"
        return f"{message} (in {_where(ex_id, record['line'])})"
    return message


def _judge_exercise(ex, positions, missing, progress, exports: Path, ended: str,
                    context=None) -> ExerciseResult:
    context = context or {}
    result = ExerciseResult(ex.id, 0.0, float(ex.points), "error")
    if ex.id in missing:
        result.status, result.message = "missing", f"no cell tagged exercise:{ex.id}"
        return result
    cell_index, export_index = positions[ex.id]
    cells = progress.get("cells", {})
    ended_status = {"memory": "kernel_died", "timeout": "timeout"}.get(ended, "kernel_died")
    ended_message = {
        "memory": "the kernel used more memory than allowed and was stopped",
        "timeout": "the notebook ran past its deadline",
    }.get(ended, "the kernel died before this exercise was graded")
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
        cell_context = {**context, "index": cell_index}
        result.message = _cell_message(ex.id, cell, context.get("sources", {}).get(ex.id),
                                       cell_context)
        return result
    export_file = exports / f"{ex.id}.json"
    if not export_file.exists():
        export = cells.get(str(export_index))
        if export is None:
            result.status, result.message = ended_status, ended_message
        elif export["ename"] == "CellTimeoutError":
            result.status, result.message = "timeout", "running your code on the tests timed out"
        else:
            result.message = (f"could not test your answer: {export['ename']}: "
                              f"{_clean(export['evalue'])}")
        return result
    try:
        record = json.loads(export_file.read_text())
    except ValueError:
        result.message = "the exported answer is unreadable"
        return result
    if not record.get("defined"):
        result.message = f"the exercise cell does not define `{ex.name}`"
        return result
    if record.get("origin"):
        result.flag = (f"`{ex.name}` is {record['origin']} from cnnlab, not code written in the "
                       "notebook")
    statuses = []
    for case_record in record.get("cases", []):
        status, message = judge_record(ex, case_record)
        case = next((c for c in ex.cases if c.name == case_record.get("case")), None)
        if case is None:
            continue
        result.cases.append((case.name, case.hidden, status,
                             _case_message(ex.id, case_record, message)))
        statuses.append(status)
    judged = {c[0] for c in result.cases}
    for case in ex.cases:  # a case the export lacks counts as an error
        if case.name not in judged:
            result.cases.append((case.name, case.hidden, "error", "no result"))
            statuses.append("error")
    passed = statuses.count("pass")
    result.points = round(ex.points * passed / len(ex.cases), 2)
    if passed == len(statuses):
        result.status = "pass"
    elif statuses.count("not_attempted") == len(statuses):
        result.status = "not_attempted"
    elif passed == 0 and all(s in ("error", "not_attempted") for s in statuses):
        result.status = "error"
    else:
        result.status = "fail"
    return result


def _lab_numbering(positions, n_cells) -> dict[int, int]:
    """Cell index in the executed notebook -> index in the lab notebook.  A grader cell gets the
    index of the exercise cell it tests."""
    export_of = {export: ex_id for ex_id, (_, export) in positions.items()}
    lab_index, n = {}, 0
    for i in range(n_cells):
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


def _grade_one(path: Path, name: str, template, exercises, options) -> SubmissionResult:
    start = time.monotonic()
    try:
        submission = nbformat.read(path, as_version=4)
        if not isinstance(submission.get("cells"), list):
            raise ValueError("it has no list of cells")
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets an error row
        message = f"unreadable notebook: {type(exc).__name__}: {exc}"[:300]
        rows = [ExerciseResult(ex.id, 0.0, float(ex.points), "error", [], message)
                for ex in exercises]
        return SubmissionResult(name, str(path), "unreadable", rows, 0.0, message)
    with tempfile.TemporaryDirectory(prefix="cnnlab-grade-") as tmp:
        workdir = Path(tmp)
        exports = workdir / "exports"
        exports.mkdir()
        with _AST_LOCK:  # both parse the submission's cells
            nb, positions, missing = prepare_submission(template, submission, exercises, exports)
            try:
                flags = submission_flags(nb, positions, exercises, options.get("forbidden"),
                                         missing)
            except Exception as exc:  # noqa: BLE001 - a flagging bug must not lose a grade
                flags = {ex_id: [f"the grader could not read this cell ({type(exc).__name__})"]
                         for ex_id in positions if ex_id not in missing}
        nbformat.write(nb, workdir / "submission.ipynb")
        sources = {ex_id: nb.cells[cell].source for ex_id, (cell, _) in positions.items()}
        config = {"cell_timeout": options["timeout_cell"], "profile": options["profile"],
                  "cwd": options["cwd"], "keep_executed": bool(options.get("keep_executed"))}
        (workdir / "config.json").write_text(json.dumps(config))
        ended = _run_isolated(workdir, options["timeout_notebook"], options["max_memory"])
        try:
            progress = json.loads((workdir / "progress.json").read_text())
        except (OSError, ValueError):
            progress = {"cells": {}, "end": "kernel_died"}
        if ended == "finished":
            ended = progress.get("end", "kernel_died")
        lab_index = _lab_numbering(positions, len(nb.cells))
        cell_errors = _cell_errors(progress, positions, lab_index)
        context = {"sources": sources, "lab_index": lab_index,
                   "cell_exercise": {cell: ex_id for ex_id, (cell, _) in positions.items()}}
        rows = [_judge_exercise(ex, positions, missing, progress, exports, ended, context)
                for ex in exercises]
        executed = workdir / "executed.ipynb"
        if options.get("keep_executed") and executed.exists():
            kept = Path(options["out"]) / "executed"
            kept.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(executed, kept / f"{name}.ipynb")
    for row in rows:  # what the cell reads (static) and what it handed back (run time)
        reasons = flags.get(row.id, []) + ([row.flag] if row.flag else [])
        row.flag = "; ".join(dict.fromkeys(reasons))
    status = {"finished": "graded", "memory": "kernel_died"}.get(ended, ended)
    return SubmissionResult(name, str(path), status, rows, time.monotonic() - start,
                            cell_errors=cell_errors)


# --------------------------------------------------------------------------------------------
# Reports


def _write_reports(results: list[SubmissionResult], exercises, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "feedback").mkdir(exist_ok=True)
    header = ["submission", "status", "total", "max"]
    for ex in exercises:
        header += [ex.id, f"{ex.id}:status"]
    header.append("flagged")
    with (out / "scores.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for r in results:
            row = [r.submission, r.status, f"{r.total:g}", f"{r.max_total:g}"]
            for e in r.exercises:
                row += [f"{e.points:g}", e.status]
            writer.writerow(row + [r.flagged])
    for r in results:
        lines = [f"# Feedback for {r.submission}", "",
                 f"Score: **{r.total:g} / {r.max_total:g}** ({r.status})", ""]
        if r.message:
            lines += [r.message, ""]
        for e in r.exercises:
            lines.append(f"## {e.id}: {e.status} ({e.points:g} / {e.max_points:g} points)")
            if e.message:
                lines.append(f"- {e.message}")
            if e.flag:
                lines.append(f"- flagged for your instructor (scored as usual): {e.flag}")
            for case, hidden, status, message in e.cases:
                if hidden:
                    lines.append(f"- hidden test `{case}`: {status}")
                else:
                    detail = f": {message}" if status != "pass" and message else ""
                    lines.append(f"- public test `{case}`: {status}{detail}")
            lines.append("")
        (out / "feedback" / f"{r.submission}.md").write_text("\n".join(lines), encoding="utf-8")
    data = [{"submission": r.submission, "status": r.status, "total": r.total,
             "max": r.max_total, "seconds": round(r.seconds, 2), "flagged": r.flagged,
             "exercises": {e.id: {"points": e.points, "status": e.status, "flag": e.flag}
                           for e in r.exercises},
             "cell_errors": [asdict(c) for c in r.cell_errors]} for r in results]
    (out / "scores.json").write_text(json.dumps(data, indent=1), encoding="utf-8")


def _submissions(paths) -> list[tuple[Path, str]]:
    found = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(q for q in p.iterdir() if q.suffix == ".ipynb" and q.is_file())
        elif p.exists():
            found.append(p)
        else:
            raise FileNotFoundError(f"no such notebook or folder: {p}")
    named, used = [], set()
    for path in found:
        name, n = path.stem, 1
        while name in used:
            n += 1
            name = f"{path.stem}-{n}"
        used.add(name)
        named.append((path, name))
    return named


def grade(lab, paths, out="results", jobs=None, timeout_cell=60, timeout_notebook=600,
          max_memory_gb=4.0, profile="smoke", solutions=None, stream=None, keep_executed=False):
    """Grade every notebook in ``paths`` (files or folders) for ``lab``; write and return results.

    ``jobs`` submissions run at once (default :func:`default_jobs`, the CPU cores).  Writes
    ``out/scores.csv``, ``out/scores.json`` and ``out/feedback/<submission>.md``, prints one line
    per finished submission with its seconds, then the batch's wall time and seconds per
    submission.  With ``keep_executed=True`` (``--keep-executed``) each submission's executed
    notebook, outputs and all, is kept as ``out/executed/<submission>.ipynb``: what the student's
    code printed and drew, for an instructor reading a grade (and for the tests that read what
    a lab prints without running it again).  Used in: ``cnnlab grade``, ``make grade``.
    """
    stream = stream or sys.stdout
    jobs = default_jobs() if jobs is None else max(1, int(jobs))
    number = f"{int(lab):02d}"
    if number not in LABS:
        raise ValueError(f"unknown lab {lab!r}; labs are {', '.join(LABS)}")
    exercises = lab_exercises(number)
    solutions = Path(solutions) if solutions else find_kit_root() / "solutions"
    source = solutions / f"{LABS[number]}.ipynb"
    if not source.exists():
        raise FileNotFoundError(f"the instructor's notebook {source} is missing")
    template = build_lab(nbformat.read(source, as_version=4), source.name)
    cwd = solutions.parent / "labs"
    options = {"timeout_cell": timeout_cell, "timeout_notebook": timeout_notebook,
               "max_memory": int(max_memory_gb * 2**30), "profile": profile,
               "cwd": str(cwd if cwd.is_dir() else solutions),
               "forbidden": {ex.id: implementations(ex) for ex in exercises},
               "keep_executed": keep_executed, "out": str(out)}
    submissions = _submissions(paths)
    print(f"grading {len(submissions)} submission(s) of lab {number} with {jobs} job(s)",
          file=stream, flush=True)

    def one(item):
        result = _grade_one(item[0], item[1], template, exercises, options)
        flagged = "  [flagged]" if result.flagged else ""
        print(f"  {result.submission}: {result.total:g}/{result.max_total:g} "
              f"({result.status}, {result.seconds:.1f} s){flagged}", file=stream, flush=True)
        return result

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(one, submissions))
    wall = time.monotonic() - start
    _write_reports(results, exercises, Path(out))
    if results:
        mean = sum(r.seconds for r in results) / len(results)
        print(f"graded {len(results)} submission(s) in {wall:.1f} s with {jobs} job(s): "
              f"{wall / len(results):.1f} s per submission (each ran {mean:.1f} s on average)",
              file=stream)
    print(f"wrote {Path(out) / 'scores.csv'} and {len(results)} feedback file(s)", file=stream)
    return results
