"""Reading what the runner reported about a run: its JSON lines, checked field by field under
:mod:`cnnlab.grading.limits`' caps (the progress record of every cell, the output the runner
dropped), and how the run ended.

The lecture idea is trusting nothing a submission controls: the record is plain data, read as
untrusted input.  Used in: ``cnnlab grade``.
"""

from __future__ import annotations

from cnnlab.grading.limits import Limits, UntrustedInputError, parse_json_capped

__all__ = ["read_progress", "how_it_ended", "truncations", "ROW_STATUS", "malformed"]


def _text(value, what: str) -> str:
    if not isinstance(value, str):
        raise UntrustedInputError(f"{what} is not text")
    return value


def _line(value, what: str) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise UntrustedInputError(f"{what} is not a line number")


def malformed(what: str, exc: UntrustedInputError) -> str:
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


def read_progress(lines, limits: Limits) -> tuple[dict, str]:
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
            elif not (isinstance(data, dict) and data.keys() & {"kernel", "truncated", "cold"}):
                raise UntrustedInputError(f"a line is {type(data).__name__}, not a record")
        record = final if final is not None else {"cells": cells, "end": "running"}
        return _progress_record(record), ""
    except UntrustedInputError as exc:
        return {"cells": {}, "end": "error"}, malformed("the run's progress record", exc)


def how_it_ended(ended: str, progress: dict, problem: str = "") -> tuple[str, str]:
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


ROW_STATUS = {"finished": "graded", "memory": "kernel_died", "timeout": "timeout",
               "kernel_died": "kernel_died", "error": "error"}


def truncations(lines, limits: Limits) -> dict[int, int]:
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
