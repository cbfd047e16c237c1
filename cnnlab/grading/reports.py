"""The grader's reports: ``scores.csv``, ``scores.json`` and ``feedback/<submission>.md``.

Every file is written whole or not at all (a temporary file in the same folder, then
:func:`os.replace`), and the scores are rewritten with every row so far as each submission
finishes, so an interrupted batch leaves true, current files that ``cnnlab grade --resume``
continues from.  Scores already in the output folder when a batch starts are moved aside
(``scores-<UTC time>.csv.old``), never left looking current.  Text a student controls (the
submission's name, messages) is neutralised in the CSV so a spreadsheet never runs it as a
formula.

Used in: ``cnnlab grade``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import threading
import time
from dataclasses import asdict
from pathlib import Path

__all__ = ["csv_safe", "write_atomic", "move_aside", "feedback_text", "score_row", "Reports"]

# OWASP's CSV-injection rule: a cell starting with one of these is a formula to a spreadsheet.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value) -> str:
    """``value`` as a CSV cell a spreadsheet shows as text: numbers as numbers (``3``,
    ``2.5``), text starting with ``= + - @``, tab or carriage return behind a single quote."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:g}"
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def write_atomic(path, text: str) -> None:
    """Write ``text`` (UTF-8; characters it cannot encode are replaced) to ``path`` so that a
    reader sees the old file or the new one, never part of one: a temporary file in the same
    folder, then :func:`os.replace`.  The file gets the usual permissions (umask)."""
    path = Path(path)
    while True:
        tmp = path.parent / f".{path.name[:40]}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="replace", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def move_aside(path) -> Path | None:
    """Rename ``path`` (if it exists) to ``<stem>-<UTC time>.<suffix>.old`` beside it; return the
    new name.  Old scores never stay behind looking like the current batch's."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for n in range(1, 1000):
        extra = "" if n == 1 else f"-{n}"
        target = path.with_name(f"{path.stem}-{stamp}{extra}{path.suffix}.old")
        if not target.exists() and not target.is_symlink():
            os.replace(path, target)
            return target
    raise FileExistsError(f"too many old copies of {path.name} in {path.parent}; remove some")


def feedback_text(result) -> str:
    """The Markdown feedback of one :class:`~cnnlab.grading.results.SubmissionResult`."""
    lines = [f"# Feedback for {result.submission}", "",
             f"Score: **{result.total:g} / {result.max_total:g}** ({result.status})", ""]
    if result.message:
        lines += [result.message, ""]
    for e in result.exercises:
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
    return "\n".join(lines)


def score_row(result, lab: str) -> dict:
    """One submission's entry in ``scores.json`` (also what ``--resume`` reads back): each
    exercise with its points, maximum, status and judged cases (``cases``: name, hidden,
    status, message; empty when no case was judged, e.g. a cell that raised)."""
    return {"submission": result.submission, "lab": lab, "path": result.path,
            "sha256": result.sha256, "status": result.status, "message": result.message,
            "total": result.total, "max": result.max_total, "seconds": round(result.seconds, 2),
            "flagged": result.flagged, "similar": result.similar,
            "secret_sha256": result.secret_sha256,
            "sandbox": getattr(result, "sandbox", ""), "limits": getattr(result, "limits", ""),
            "exercises": {e.id: {"points": e.points, "max_points": e.max_points,
                                 "status": e.status, "flag": e.flag, "message": e.message,
                                 "cases": [{"name": name, "hidden": hidden, "status": status,
                                            "message": message}
                                           for name, hidden, status, message in e.cases]}
                          for e in result.exercises},
            "cell_errors": [asdict(c) for c in result.cell_errors]}


class Reports:
    """The reports of one batch in ``out``: call :meth:`start`, then :meth:`add` from any thread
    as each submission finishes (its feedback first, with :meth:`write_feedback`)."""

    def __init__(self, out, exercises, lab: str):
        self.out = Path(out)
        self.exercises = list(exercises)
        self.lab = lab
        self.rows = {}  # submission name -> SubmissionResult
        self._lock = threading.Lock()

    def start(self, kept=()) -> list[Path]:
        """Move old scores aside, then write the scores of ``kept`` rows (``--resume``) at
        once.  Returns the names the old files were moved to."""
        (self.out / "feedback").mkdir(parents=True, exist_ok=True)
        moved = [move_aside(self.out / name) for name in ("scores.csv", "scores.json")]
        with self._lock:
            self.rows.update({r.submission: r for r in kept})
            self._write_scores()
        return [m for m in moved if m]

    def write_feedback(self, result) -> Path:
        """``feedback/<submission>.md``, written atomically."""
        path = self.out / "feedback" / f"{result.submission}.md"
        write_atomic(path, feedback_text(result))
        return path

    def add(self, result) -> None:
        """Record a finished submission and rewrite ``scores.csv`` and ``scores.json``."""
        with self._lock:
            self.rows[result.submission] = result
            self._write_scores()

    def set_similar(self, column: dict) -> None:
        """Fill every row's ``similar`` column (``{submission: text}``, absent: empty) and
        rewrite the scores."""
        with self._lock:
            for name, row in self.rows.items():
                row.similar = column.get(name, "")
            self._write_scores()

    def _write_scores(self) -> None:
        results = [self.rows[name] for name in sorted(self.rows)]
        header = ["submission", "status", "total", "max"]
        for ex in self.exercises:
            header += [ex.id, f"{ex.id}:status"]
        header += ["flagged", "similar"]
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow([csv_safe(h) for h in header])
        for r in results:
            row = [r.submission, r.status, r.total, r.max_total]
            points = {e.id: e for e in r.exercises}
            for ex in self.exercises:
                e = points.get(ex.id)
                row += [e.points, e.status] if e else [0, "error"]
            writer.writerow([csv_safe(value) for value in row + [r.flagged, r.similar]])
        write_atomic(self.out / "scores.csv", text.getvalue())
        data = [score_row(r, self.lab) for r in results]
        write_atomic(self.out / "scores.json", json.dumps(data, indent=1))
