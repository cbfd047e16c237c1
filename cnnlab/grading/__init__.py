"""The grader and the rest of the instructor's material: ``cnnlab grade --lab 01 PATH... --out
results/`` and ``cnnlab release OUT/``.  Students never receive this package.

Student code is taken only from the ``exercise:NN.name`` cells of a submission; everything else
comes from the instructor's solution notebook (with its solutions stripped, as in ``labs/``).
Each submission runs in its own kernel, inside a bubblewrap sandbox and cgroups of its own
(:mod:`cnnlab.grading.sandbox`), with a per-cell timeout and a whole-notebook deadline enforced
from outside.  Results leave the kernel as plain data and are
judged here, in a process student code never reaches.  An exercise cell that uses cnnlab's own
implementation of that exercise is flagged for the instructor (:mod:`cnnlab.grading.integrity`).
Whatever goes wrong with one submission becomes its own row (statuses:
:data:`cnnlab.grading.results.STATUS_MEANINGS`); the modules, one job each: ``grade`` (the
batch driver), ``results`` (the rows and their statuses), ``submissions`` (which files a batch
grades, and ``--resume``), ``isolation`` (running one submission and watching it from outside),
``progress`` (reading what the run reported), ``judge`` (an exercise's status, points and
messages), ``prepare`` (parsing, in worker processes), ``limits`` (caps on what a submission
controls), ``reports`` (scores and feedback), ``sandbox`` (bubblewrap, cgroups, the kernel's
launcher), ``runner`` and ``export`` (the kernel's side), ``hidden`` (every exercise's points and
hidden cases, and the course secret their inputs are drawn from), ``similarity`` (MOSS-style
comparison of the batch's exercise cells), ``release`` (what students receive), ``lms`` (the
grade files Canvas and Moodle import: ``cnnlab grade export``), ``gradescope`` (Gradescope's
autograder zip, ``cnnlab export gradescope``, and the results.json its ``run_autograder``
writes) and ``shards`` (a batch graded in slices on a cluster, ``cnnlab grade --shard i/N``, and
``cnnlab grade merge``).

Used in: ``cnnlab grade`` (``export``, ``merge``), ``cnnlab export gradescope`` and
``make grade``.
"""

import importlib
import sys
import types

__all__ = ["grade", "prepare_submission", "default_jobs", "SubmissionResult", "ExerciseResult",
           "CellError"]

# The names above are imported from cnnlab.grading.grade on first use, not with the package: the
# kernel imports cnnlab.grading.export (the grader's exporter cell), and importing grade.py
# there (nbformat, jsonschema: about 1 s of a quiet machine's CPU) cost every submission's run.


def __getattr__(name: str):
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("cnnlab.grading.grade"), name)
    setattr(sys.modules[__name__], name, value)
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """This package: ``cnnlab.grading.grade`` stays the function :func:`cnnlab.grading.grade.
    grade` (what ``from cnnlab.grading import grade`` gives) also once the submodule of that
    name is imported, when the import system names the module there."""

    def __setattr__(self, name: str, value) -> None:
        if name == "grade" and isinstance(value, types.ModuleType) \
                and value.__name__ == f"{__name__}.grade":
            value = value.grade
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
