"""Judging one exercise from a run's progress record: its status, points, case results and the
messages a student reads, computed in the grader from plain data alone
(:func:`cnnlab.exercise.judge_records`), never in the kernel.

The lecture idea is feedback a student can act on: which line of which cell raised, which case
failed, and when a name comes from a skipped demonstration cell.  Used in: ``cnnlab grade``.
"""

from __future__ import annotations

import re

from cnnlab.exercise import judge_records
from cnnlab.grading.results import CellError, ExerciseResult

__all__ = ["judge_safely", "judge_exercise", "cell_errors", "lab_numbering",
           "explain_demo_names", "ENDINGS"]


_SYNTAX_ERRORS = ("SyntaxError", "IndentationError", "TabError")
_KERNEL_FILE = re.compile(r"(?:/[^\s()]*)?/ipykernel_\d+/\d+\.py|\b\d{6,}\.py|Cell In ?\[\d+\]")
ENDINGS = {  # how the run ended -> (status, message) of an exercise it never reached
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


def judge_exercise(ex, positions, missing, progress, ended: str,
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
    ended_status, ended_message = ENDINGS.get(ended, ENDINGS["kernel_died"])
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


def judge_safely(ex, *args, **kwargs) -> ExerciseResult:
    """:func:`judge_exercise`, any failure becoming this exercise's ``error``; the points are
    clamped to ``[0, ex.points]`` whatever happened."""
    try:
        result = judge_exercise(ex, *args, **kwargs)
        result.points = min(max(float(result.points), 0.0), float(ex.points))
        result.max_points = float(ex.points)
        return result
    except Exception as exc:  # noqa: BLE001 - one exercise, never the submission or the batch
        return ExerciseResult(ex.id, 0.0, float(ex.points), "error",
                              message=f"the grader could not judge this exercise: "
                                      f"{type(exc).__name__}: {str(exc)[:200]}")


def lab_numbering(positions, n_cells) -> dict[int, int]:
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


def cell_errors(progress, positions, lab_index) -> list[CellError]:
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


_UNDEFINED = re.compile(r"\bname '([A-Za-z_][A-Za-z0-9_]*)' is not defined")


def _demo_hint(text: str, names: set) -> str:
    """``text`` with a note when it is a NameError for a name only a skipped demo cell sets."""
    match = _UNDEFINED.search(text) if "NameError" in text else None
    if not match or match.group(1) not in names:
        return text
    return (f"{text} (`{match.group(1)}` is set by a demonstration cell of the lab, which the "
            f"grader skips: set it in your exercise cell; your instructor can also grade with "
            f"--whole-notebook)")


def explain_demo_names(rows, names: set) -> None:
    """Add :func:`_demo_hint`'s note to each exercise's message and case messages."""
    for row in rows:
        row.message = _demo_hint(row.message, names)
        row.cases = [(name, hidden, status, _demo_hint(message, names))
                     for name, hidden, status, message in row.cases]
