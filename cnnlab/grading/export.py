"""Kernel side of grading: probe the student's answer and write it out as plain data.

The grader inserts ``export_answer(...)`` in a cell right after each exercise cell, so a later
checkpoint that substitutes the reference can never be graded in the student's place.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cnnlab.exercise import exercise, probe_cases

__all__ = ["export_answer"]

_MISSING = object()


def export_answer(exercise_id: str, namespace: dict, outdir: str) -> None:
    ex = exercise(exercise_id)
    obj = namespace.get(ex.name, _MISSING)
    record = {"exercise": exercise_id, "defined": obj is not _MISSING, "cases": []}
    if obj is not _MISSING:
        record["cases"] = probe_cases(ex, obj)
    target = Path(outdir) / f"{exercise_id}.json"
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(record), encoding="utf-8")
    os.replace(tmp, target)
