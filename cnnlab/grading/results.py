"""What grading a submission produces: the statuses a row and an exercise can have, and the
rows themselves (:class:`SubmissionResult`, one per submission, with an :class:`ExerciseResult`
per exercise and a :class:`CellError` per cell that raised).

The lecture idea is autograding with feedback: every row says what happened to the submission in
words a student can act on.  Used in: ``cnnlab grade`` (scores.csv/json, the feedback files).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["STATUS_MEANINGS", "EXERCISE_STATUS_MEANINGS", "STATUSES", "ExerciseResult",
           "CellError", "SubmissionResult", "Submission", "error_rows", "not_graded"]

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


def error_rows(exercises, message: str) -> list[ExerciseResult]:
    return [ExerciseResult(ex.id, 0.0, float(ex.points), "error", [], message)
            for ex in exercises]


def not_graded(sub: Submission, exercises, status: str, message: str,
                sha256: str = "") -> SubmissionResult:
    """A row for a submission that was not (or not fully) graded: every exercise ``error``."""
    message = message[:500]
    return SubmissionResult(sub.name, str(sub.path), status, error_rows(exercises, message),
                            0.0, message, sha256=sha256)
