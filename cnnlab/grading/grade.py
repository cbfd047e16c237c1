"""Batch grading: prepare each submission, run it in isolation, judge it, write the reports."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from cnnlab.exercise import LABS, Exercise, judge_record, lab_exercises
from cnnlab.notebooks import build_lab, exercise_id, find_kit_root

__all__ = ["ExerciseResult", "SubmissionResult", "prepare_submission", "grade", "STATUSES"]

STATUSES = ("pass", "fail", "not_attempted", "error", "timeout", "kernel_died", "missing")


@dataclass
class ExerciseResult:
    id: str
    points: float
    max_points: float
    status: str
    cases: list = field(default_factory=list)  # (name, hidden, status, message)
    message: str = ""


@dataclass
class SubmissionResult:
    submission: str
    path: str
    status: str  # "graded", "unreadable", "timeout", "kernel_died", ...
    exercises: list[ExerciseResult]
    seconds: float = 0.0
    message: str = ""

    @property
    def total(self) -> float:
        return round(sum(e.points for e in self.exercises), 2)

    @property
    def max_total(self) -> float:
        return round(sum(e.max_points for e in self.exercises), 2)


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


def _judge_exercise(ex, positions, missing, progress, exports: Path, ended: str) -> ExerciseResult:
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
        result.message = f"the exercise cell raised {cell['ename']}: {cell['evalue']}"
        return result
    export_file = exports / f"{ex.id}.json"
    if not export_file.exists():
        export = cells.get(str(export_index))
        if export is None:
            result.status, result.message = ended_status, ended_message
        elif export["ename"] == "CellTimeoutError":
            result.status, result.message = "timeout", "running your code on the tests timed out"
        else:
            result.message = f"could not test your answer: {export['ename']}: {export['evalue']}"
        return result
    try:
        record = json.loads(export_file.read_text())
    except ValueError:
        result.message = "the exported answer is unreadable"
        return result
    if not record.get("defined"):
        result.message = f"the exercise cell does not define `{ex.name}`"
        return result
    statuses = []
    for case_record in record.get("cases", []):
        status, message = judge_record(ex, case_record)
        case = next(c for c in ex.cases if c.name == case_record["case"])
        result.cases.append((case.name, case.hidden, status, message))
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
        nb, positions, missing = prepare_submission(template, submission, exercises, exports)
        nbformat.write(nb, workdir / "submission.ipynb")
        config = {"cell_timeout": options["timeout_cell"], "profile": options["profile"],
                  "cwd": options["cwd"]}
        (workdir / "config.json").write_text(json.dumps(config))
        ended = _run_isolated(workdir, options["timeout_notebook"], options["max_memory"])
        try:
            progress = json.loads((workdir / "progress.json").read_text())
        except (OSError, ValueError):
            progress = {"cells": {}, "end": "kernel_died"}
        if ended == "finished":
            ended = progress.get("end", "kernel_died")
        rows = [_judge_exercise(ex, positions, missing, progress, exports, ended)
                for ex in exercises]
    status = {"finished": "graded", "memory": "kernel_died"}.get(ended, ended)
    return SubmissionResult(name, str(path), status, rows, time.monotonic() - start)


# --------------------------------------------------------------------------------------------
# Reports


def _write_reports(results: list[SubmissionResult], exercises, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "feedback").mkdir(exist_ok=True)
    header = ["submission", "status", "total", "max"]
    for ex in exercises:
        header += [ex.id, f"{ex.id}:status"]
    with (out / "scores.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for r in results:
            row = [r.submission, r.status, f"{r.total:g}", f"{r.max_total:g}"]
            for e in r.exercises:
                row += [f"{e.points:g}", e.status]
            writer.writerow(row)
    for r in results:
        lines = [f"# Feedback for {r.submission}", "",
                 f"Score: **{r.total:g} / {r.max_total:g}** ({r.status})", ""]
        if r.message:
            lines += [r.message, ""]
        for e in r.exercises:
            lines.append(f"## {e.id}: {e.status} ({e.points:g} / {e.max_points:g} points)")
            if e.message:
                lines.append(f"- {e.message}")
            for case, hidden, status, message in e.cases:
                if hidden:
                    lines.append(f"- hidden test `{case}`: {status}")
                else:
                    detail = f": {message}" if status != "pass" and message else ""
                    lines.append(f"- public test `{case}`: {status}{detail}")
            lines.append("")
        (out / "feedback" / f"{r.submission}.md").write_text("\n".join(lines), encoding="utf-8")
    data = [{"submission": r.submission, "status": r.status, "total": r.total,
             "max": r.max_total, "exercises": {e.id: {"points": e.points, "status": e.status}
                                               for e in r.exercises}} for r in results]
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


def grade(lab, paths, out="results", jobs=1, timeout_cell=60, timeout_notebook=600,
          max_memory_gb=4.0, profile="smoke", solutions=None, stream=None):
    """Grade every notebook in ``paths`` (files or folders) for ``lab``; write and return results.

    Writes ``out/scores.csv``, ``out/scores.json`` and ``out/feedback/<submission>.md`` and
    prints one line per finished submission.  Used in: ``cnnlab grade``, ``make grade``.
    """
    stream = stream or sys.stdout
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
               "cwd": str(cwd if cwd.is_dir() else solutions)}
    submissions = _submissions(paths)
    print(f"grading {len(submissions)} submission(s) of lab {number} with {jobs} job(s)",
          file=stream, flush=True)

    def one(item):
        result = _grade_one(item[0], item[1], template, exercises, options)
        print(f"  {result.submission}: {result.total:g}/{result.max_total:g} "
              f"({result.status}, {result.seconds:.0f} s)", file=stream, flush=True)
        return result

    with ThreadPoolExecutor(max_workers=max(1, int(jobs))) as pool:
        results = list(pool.map(one, submissions))
    _write_reports(results, exercises, Path(out))
    print(f"wrote {Path(out) / 'scores.csv'} and {len(results)} feedback file(s)", file=stream)
    return results
