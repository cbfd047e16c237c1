"""Self-checks and checkpoints: the ``cnnlab.check(...)`` cells of every lab.

``check("01.correlate2d", correlate2d)`` runs the public tests of an exercise on the student's
object and reports pass / fail per case with a hint, never the solution.  The grader runs the
same public tests plus hidden ones, through the same judge (:func:`cnnlab.exercise.judge_records`).
Nothing here knows whether a notebook is being graded: the grader replaces each ``cnnlab.check``
cell of the lab it runs with a no-op (:mod:`cnnlab.grading.prepare`).

``checkpoint("01.kernel_bank", globals())`` lets a student continue past an exercise they could
not do: if their object is missing or fails the public tests, the reference takes its place in
the notebook (their grade still uses their own answer, taken before the checkpoint runs).

Used in: every lab.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from cnnlab.exercise import Exercise, exercise, judge_records, probe_cases

__all__ = ["CheckReport", "answer_label", "check", "checkpoint"]

_MISSING = object()
#: Where :func:`checkpoint` notes, in the notebook's own namespace, whose answer it kept.
_RECORD = "_cnnlab_checkpoints"
_MARKS = {"pass": "PASS", "fail": "FAIL", "not_attempted": "TODO", "error": "ERROR"}


@dataclass(frozen=True)
class CheckReport:
    """What a self-check found: one ``(case, status, message)`` row per public case."""

    exercise_id: str
    rows: tuple[tuple[str, str, str], ...]
    hidden_tests: bool
    note: str = ""
    todo: str = "replace `raise NotImplementedError()` with your code"

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(status == "pass" for _, status, _ in self.rows)

    def __bool__(self) -> bool:
        return self.passed

    def _lines(self) -> list[str]:
        if self.note:
            return [f"{self.exercise_id}: {self.note}"]
        passed = sum(status == "pass" for _, status, _ in self.rows)
        if all(status == "not_attempted" for _, status, _ in self.rows):
            head = f"TODO - not attempted yet: {self.todo}"
        else:
            head = f"{passed}/{len(self.rows)} public tests pass"
        lines = [f"{self.exercise_id}: {head}"]
        for case, status, message in self.rows:
            detail = f" - {message}" if message and status != "pass" else ""
            lines.append(f"  [{_MARKS.get(status, status.upper())}] {case}{detail}")
        if self.hidden_tests:
            lines.append("  (hidden tests also run when the lab is graded)")
        return lines

    def __str__(self) -> str:
        return "\n".join(self._lines())

    __repr__ = __str__

    def _repr_html_(self) -> str:
        color = "#1a7f37" if self.passed else "#b35900"
        lines = self._lines()
        body = "<br>".join(html.escape(line).replace("  ", "&nbsp;&nbsp;") for line in lines[1:])
        return (
            f"<div style='font-family:monospace'><b style='color:{color}'>"
            f"{html.escape(lines[0])}</b><br>{body}</div>"
        )


def _run_public(ex: Exercise, obj) -> tuple[tuple[str, str, str], ...]:
    cases = ex.public_cases()
    return tuple((case, status, message) for case, status, message, _
                 in judge_records(ex, probe_cases(ex, obj, cases), cases))


def check(exercise_id: str, obj=_MISSING) -> CheckReport:
    """Run the public tests of ``exercise_id`` on ``obj`` and return a :class:`CheckReport`.

    Put it last in a cell so the notebook shows it.  ``bool(report)`` is True when every public
    test passes.  Used in: every lab.
    """
    ex = exercise(exercise_id)
    hidden = ex.hidden_tests
    if obj is _MISSING:
        raise TypeError(
            f"check({exercise_id!r}) needs the object to check, e.g. "
            f"cnnlab.check({exercise_id!r}, {ex.name})"
        )
    todo = CheckReport.todo
    if obj is None:  # value exercises start as `name = None`
        todo = (f"`{ex.name}` is still None: set it in the exercise cell above "
                "(replace `# YOUR CODE HERE`), then run that cell and this one")
    return CheckReport(exercise_id, _run_public(ex, obj), hidden, todo=todo)


def checkpoint(exercise_id: str, namespace: dict):
    """Make sure ``namespace`` holds a working answer to ``exercise_id`` and return it.

    If the student's object (``namespace[exercise.name]``) is missing or fails a public test,
    the reference replaces it and a note says so; a passing answer is kept.  Pass
    ``globals()`` from a notebook.  Used in: every lab, after exercises later cells need.
    """
    ex = exercise(exercise_id)
    if not isinstance(namespace, dict):
        raise TypeError(f"checkpoint({exercise_id!r}, globals()) needs the notebook's globals()")
    obj = namespace.get(ex.name, _MISSING)
    record = namespace.setdefault(_RECORD, {})
    if obj is not _MISSING and all(s == "pass" for _, s, _ in _run_public(ex, obj)):
        print(f"Checkpoint {exercise_id}: using your `{ex.name}`.")
        record[exercise_id] = "yours"
        return obj
    if obj is _MISSING:
        reason = "is not defined"
    elif obj is None:
        reason = "is still None"
    else:
        reason = "does not pass the public tests yet"
    from cnnlab.detach import detached

    namespace[ex.name] = detached(ex.reference())
    record[exercise_id] = "reference"
    print(
        f"Checkpoint {exercise_id}: your `{ex.name}` {reason}; the reference takes its place so "
        "the rest of the lab runs (your grade uses your own answer)."
    )
    return namespace[ex.name]


def answer_label(exercise_id: str, namespace: dict) -> str:
    """``"yours"`` or ``"reference"``: whose answer the last checkpoint of ``exercise_id`` kept.

    Printouts after a checkpoint use it so a student who has not solved the exercise is never
    told that the reference's numbers are theirs:
    ``print(f"{cnnlab.answer_label('01.conv2d_multi', globals())}: ...")``.
    Without a checkpoint for that exercise yet, it says ``"yours"``.  Used in: every lab.
    """
    exercise(exercise_id)  # a clear error for an unknown id
    if not isinstance(namespace, dict):
        raise TypeError(f"answer_label({exercise_id!r}, globals()) needs the notebook's globals()")
    return namespace.get(_RECORD, {}).get(exercise_id, "yours")
