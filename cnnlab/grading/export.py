"""Kernel side of grading: probe the student's answer and write it out as plain data.

The grader inserts ``export_answer(...)`` in a cell right after each exercise cell, so a later
checkpoint that substitutes the reference can never be graded in the student's place.  The record
also says whether the answer is a cnnlab function rather than code from the notebook
(:func:`cnnlab_origin`), and on which line of the student's cell a test raised.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import traceback
import types
from pathlib import Path

from cnnlab.exercise import exercise, probe_cases

__all__ = ["export_answer", "cnnlab_origin"]

_MISSING = object()


def cnnlab_origin(obj) -> str:
    """``"cnnlab.ops.correlate2d"`` if ``obj`` is a function or class cnnlab defines, else ``""``.

    A function written in a notebook has ``__module__ == "__main__"``; partials and bound
    methods are unwrapped first.  Used in: ``cnnlab grade``.
    """
    target = obj
    for _ in range(10):
        if isinstance(target, functools.partial):
            target = target.func
        elif inspect.ismethod(target):
            target = target.__func__
        else:
            break
    if not (inspect.isfunction(target) or inspect.isclass(target) or inspect.isbuiltin(target)):
        return ""
    module = getattr(target, "__module__", None) or ""
    if module != "cnnlab" and not module.startswith("cnnlab."):
        return ""
    return f"{module}.{getattr(target, '__qualname__', getattr(target, '__name__', '?'))}"


def _probe_with_lines(ex, obj) -> list[dict]:
    """:func:`probe_cases`, one case at a time; a case that raises inside the student's function
    gets ``"line"``: the last line of the student's cell in the traceback."""
    if not isinstance(obj, types.FunctionType):
        return probe_cases(ex, obj)
    filename = obj.__code__.co_filename
    where = {}

    @functools.wraps(obj)
    def located(*args, **kwargs):
        try:
            return obj(*args, **kwargs)
        except Exception as exc:
            lines = [frame.lineno for frame in traceback.extract_tb(exc.__traceback__)
                     if frame.filename == filename]
            if lines:
                where.setdefault("line", lines[-1])
            raise

    records = []
    for case in ex.cases:
        where.clear()
        (record,) = probe_cases(ex, located, [case])
        if record["status"] == "error" and "line" in where:
            record["line"] = where["line"]
        records.append(record)
    return records


def export_answer(exercise_id: str, namespace: dict, outdir: str) -> None:
    ex = exercise(exercise_id)
    obj = namespace.get(ex.name, _MISSING)
    record = {"exercise": exercise_id, "defined": obj is not _MISSING, "cases": [], "origin": ""}
    if obj is not _MISSING:
        record["origin"] = cnnlab_origin(obj)
        record["cases"] = _probe_with_lines(ex, obj)
    target = Path(outdir) / f"{exercise_id}.json"
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(record), encoding="utf-8")
    os.replace(tmp, target)
