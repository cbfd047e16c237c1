"""Exercises and their test cases: the one definition that self-checks and the grader share.

An exercise (id ``NN.name``, e.g. ``01.correlate2d``) names the object a student defines in the
notebook (a function or a value) and a list of :class:`Case`.  A case has two halves that run in
different processes when grading:

* ``probe(obj)`` runs where the student's object lives (the notebook kernel) and returns its
  result, which :func:`to_plain` turns into plain data (numbers, strings, lists, dicts, numeric
  NumPy arrays) before it leaves the kernel.  :func:`run_probes` reports what each probe saw
  (returned this data, raised this exception, not plain data), never a verdict;
* ``expected()`` and ``compare(got, expected)`` run in the judge (:func:`judge_records`), which
  never sees the student's objects, only the plain data, and computes every status itself: at
  most one result counts per case.  An object whose ``__eq__`` always returns True cannot pass:
  it is not plain data, so it never reaches a comparison.

When grading, the kernel gets only the probes, rebuilt without a path back to the cases, the
exercises or the references (:func:`cnnlab.grading.export.kernel_probes`).  Self-checks
(:func:`cnnlab.check`) run the public cases through the same :func:`run_probes` and
:func:`judge_records` in-process, so a self-check and the grader agree.  The exercises here
hold only public cases: points and hidden cases are the instructor's
(:mod:`cnnlab.grading.hidden`), left out of what students receive (``cnnlab release``).

Used in: every lab (``cnnlab.check`` cells) and ``cnnlab grade``.
"""

from __future__ import annotations

import importlib
import io
import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

__all__ = [
    "Case",
    "Drawn",
    "Exercise",
    "PlainDataError",
    "allclose",
    "count_right_entries",
    "equal",
    "to_plain",
    "dumps_plain",
    "run_probes",
    "probe_cases",
    "judge_record",
    "judge_records",
    "loads_plain",
    "exercise",
    "lab_exercises",
    "LABS",
]

#: Lab number -> notebook stem.  Numbers and names are fixed for the whole kit.
LABS = {
    "01": "01_convolutions_by_hand",
    "02": "02_conv_arithmetic",
    "03": "03_pooling_strides_invariance",
    "04": "04_mlp_to_convnet",
    "05": "05_architectures_and_cost",
    "06": "06_data_augmentation",
    "07": "07_training_convnets_well",
    "08": "08_pretrained_convnets",
    "09": "09_transfer_learning",
    "10": "10_looking_inside",
    "11": "11_beyond_images",
}


class PlainDataError(TypeError):
    """A result is not plain data (number, string, list, dict or numeric array)."""


# --------------------------------------------------------------------------------------------
# Plain data: what may leave a student's kernel


_SCALARS = (bool, int, float, str, type(None))


def to_plain(value: Any, _depth: int = 0) -> Any:
    """Return ``value`` as plain data, or raise :class:`PlainDataError`.

    Plain data is built only from exact built-in types (``bool``, ``int``, ``float``, ``str``,
    ``None``, ``list``, ``dict`` with string keys) and numeric NumPy arrays.  Tuples become lists,
    NumPy scalars become Python numbers, and tensors (anything with a numeric ``__array__``)
    become arrays.  Subclasses of built-ins are rejected, so no custom ``__eq__`` survives.
    """
    if _depth > 20:
        raise PlainDataError("result is nested more than 20 levels deep")
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind in (list, tuple):
        return [to_plain(v, _depth + 1) for v in value]
    if kind is dict:
        if not all(type(k) is str for k in value):
            raise PlainDataError("dict results must have string keys")
        return {k: to_plain(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, np.generic) and type(value).__module__ == "numpy":
        if value.dtype.kind in "biuf":
            return value.item()
        if value.dtype.kind == "U":
            return str(value)
    if kind is np.ndarray or hasattr(value, "__array__"):
        try:
            array = np.array(value, copy=True)
        except Exception as exc:  # noqa: BLE001 - any failure means "not plain"
            raise PlainDataError(f"cannot turn a {kind.__name__} into an array: {exc}") from None
        if type(array) is not np.ndarray or array.dtype.kind not in "biuf":
            raise PlainDataError(
                f"a {kind.__name__} result must hold numbers, not {array.dtype} values"
            )
        return array
    raise PlainDataError(
        f"a result of type {kind.__name__} is not plain data: return a number, a string, "
        "a tuple/list/dict of those, or a NumPy array of numbers"
    )


def dumps_plain(value: Any) -> bytes:
    """Serialise plain data to bytes (JSON, arrays as ``.npy`` without pickle inside)."""

    def encode(v):
        if type(v) is np.ndarray:
            buffer = io.BytesIO()
            np.save(buffer, v, allow_pickle=False)
            return {"__ndarray__": buffer.getvalue().hex()}
        if type(v) is list:
            return [encode(x) for x in v]
        if type(v) is dict:
            if "__ndarray__" in v:
                raise PlainDataError("dict results may not use the key '__ndarray__'")
            return {k: encode(x) for k, x in v.items()}
        if type(v) is float and not math.isfinite(v):
            return {"__float__": repr(v)}
        return v

    return json.dumps(encode(to_plain(value)), allow_nan=False).encode()


def loads_plain(data: bytes | str) -> Any:
    """Inverse of :func:`dumps_plain`; never unpickles."""

    def decode(v):
        if type(v) is dict:
            if set(v) == {"__ndarray__"}:
                return np.load(io.BytesIO(bytes.fromhex(v["__ndarray__"])), allow_pickle=False)
            if set(v) == {"__float__"}:
                return float(v["__float__"])
            return {k: decode(x) for k, x in v.items()}
        if type(v) is list:
            return [decode(x) for x in v]
        return v

    return decode(json.loads(data))


# --------------------------------------------------------------------------------------------
# Comparisons: (got, expected) -> (ok, message).  Both sides are plain data.


def allclose(atol: float = 1e-5, rtol: float = 1e-5) -> Callable[[Any, Any], tuple[bool, str]]:
    """A comparison for numeric arrays: same shape, values within ``atol + rtol*|expected|``."""

    def compare(got, expected):
        try:
            got_array = np.asarray(got, dtype=np.float64)
        except (TypeError, ValueError):
            return False, f"expected an array of numbers, got {_describe(got)}"
        expected_array = np.asarray(expected, dtype=np.float64)
        if got_array.shape != expected_array.shape:
            return False, f"shape {got_array.shape}, expected {expected_array.shape}"
        if not np.all(np.isfinite(got_array)):
            return False, "the result contains NaN or infinite values"
        error = np.abs(got_array - expected_array)
        if np.all(error <= atol + rtol * np.abs(expected_array)):
            return True, "values match"
        worst = np.unravel_index(np.argmax(error), error.shape) if error.ndim else ()
        return False, (
            f"{int(np.sum(error > atol + rtol * np.abs(expected_array)))} of {error.size} values "
            f"differ; largest error {error.max():.3g} at index {tuple(int(i) for i in worst)}"
        )

    return compare


def equal(got, expected) -> tuple[bool, str]:
    """A comparison for exact plain data (ints, strings, shapes as lists)."""
    if _normalise(got) == _normalise(expected):
        return True, "equal"
    return False, f"got {_describe(got)}"


def count_right_entries(got, expected, compare=equal) -> tuple[bool, str]:
    """Compare entry by entry and say only **how many** entries are right, never which.

    ``expected`` is a dict (its entries are its keys) or a list (its positions); each entry of
    ``got`` is judged with ``compare``.  The message is "3 of 5 entries are right": it names no
    entry and shows no expected value, so a self-check cannot be solved by trying values one at
    a time against it (:attr:`Case.count_only`).  A missing entry is a wrong one.
    """
    if type(expected) is dict:
        keys = list(expected)
        if type(got) is not dict:
            return False, f"0 of {len(keys)} entries are right: expected a dict, got {_kind(got)}"
        right = sum(key in got and _entry_ok(compare, got[key], expected[key]) for key in keys)
        total, note = len(keys), ""
    elif type(expected) is list:
        if type(got) is not list:
            return False, (f"0 of {len(expected)} entries are right: expected a list, "
                           f"got {_kind(got)}")
        right = sum(_entry_ok(compare, g, e) for g, e in zip(got, expected))
        total = len(expected)
        note = "" if len(got) == total else f" (the answer has {len(got)} entries, not {total})"
    else:
        raise TypeError("count_right_entries compares a dict or a list of entries, not "
                        f"{type(expected).__name__}")
    ok = right == total and not note
    return ok, f"{right} of {total} entries are right{note}"


def _entry_ok(compare, got, expected) -> bool:
    try:
        return bool(compare(got, expected)[0])
    except Exception:  # noqa: BLE001 - odd plain data: that entry is wrong
        return False


def _kind(value) -> str:
    return "an array" if type(value) is np.ndarray else f"a {type(value).__name__}"


def _normalise(value):
    if type(value) is np.ndarray:
        return ("ndarray", value.shape, value.tolist())
    if type(value) is list:
        return [_normalise(v) for v in value]
    if type(value) is dict:
        return {k: _normalise(v) for k, v in value.items()}
    if type(value) is float and value.is_integer():
        return int(value)
    return value


def _describe(value) -> str:
    if type(value) is np.ndarray:
        return f"an array of shape {value.shape}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --------------------------------------------------------------------------------------------
# Cases and exercises


@dataclass(frozen=True)
class Case:
    """One test of an exercise.

    ``probe`` turns the student's object into a result (run in the kernel); ``expected`` computes
    the reference result (run in the judge); ``compare`` judges them.  ``hint`` is shown when the
    case fails; hidden cases are named, never described, in feedback.

    ``count_only=True`` makes the case judge its result entry by entry (``expected`` is a dict or
    a list, each entry judged with ``compare``) and report only how many entries are right
    (:func:`count_right_entries`), never which ones or their expected values: the exercises
    whose answer is a table of numbers (shapes, sizes, parameter counts) use it, so a
    self-check cannot be solved by trial.  Their hints must not name an entry either.
    """

    name: str
    probe: Callable[[Any], Any]
    expected: Callable[[], Any]
    compare: Callable[[Any, Any], tuple[bool, str]] = field(default=equal)
    hint: str = ""
    hidden: bool = False
    count_only: bool = False


@dataclass(frozen=True)
class Drawn:
    """A case whose inputs are drawn from a seed: ``build(name, seed)`` returns the
    :class:`Case`; ``seed`` is the fixed seed used when no other is given.  The grader's hidden
    cases are mostly Drawn, seeded from the course secret
    (:func:`cnnlab.grading.hidden.case_seeds`)."""

    name: str
    seed: int
    build: Callable[[str, int], Case]


@dataclass(frozen=True)
class Exercise:
    """An exercise: the notebook name it reads and its cases.

    In :mod:`cnnlab.exercises` (what students receive) ``cases`` are the public ones and
    ``points`` is 0; the grader's copy (:func:`cnnlab.grading.hidden.graded_exercises`) adds
    the points and the hidden cases.  ``hidden_tests`` says whether the grader runs hidden
    cases too (False for an exercise without hidden cases), so a self-check can say so
    without holding them.

    ``reference`` returns the reference object (a function or a value); checkpoints use it to
    let a student continue past an exercise they could not do.  ``implementations`` names the
    cnnlab functions that compute the exercise's answer from its own inputs (not the building
    blocks a solution is expected to use): a cell that uses one is flagged for the instructor
    (:func:`cnnlab.grading.integrity.implementations`).
    """

    id: str
    name: str
    cases: tuple[Case, ...]
    reference: Callable[[], Any]
    title: str = ""
    implementations: tuple[str, ...] = ()
    points: float = 0.0
    hidden_tests: bool = True

    @property
    def lab(self) -> str:
        return self.id.split(".", 1)[0]

    def public_cases(self) -> tuple[Case, ...]:
        return tuple(case for case in self.cases if not case.hidden)


def lab_exercises(lab: str | int) -> list[Exercise]:
    """The exercises of a lab, in notebook order, from ``cnnlab.exercises.labNN``."""
    number = f"{int(lab):02d}" if str(lab).isdigit() else str(lab)
    if number not in LABS:
        raise ValueError(f"unknown lab {lab!r}; labs are {', '.join(LABS)}")
    try:
        module = importlib.import_module(f"cnnlab.exercises.lab{number}")
    except ModuleNotFoundError:
        raise ValueError(f"lab {number} ({LABS[number]}) has no exercises yet") from None
    return list(module.EXERCISES)


def exercise(exercise_id: str) -> Exercise:
    """The exercise with id ``NN.name`` (e.g. ``"01.correlate2d"``)."""
    lab, _, _ = str(exercise_id).partition(".")
    if not lab.isdigit() or "." not in str(exercise_id):
        raise ValueError(
            f"exercise ids look like '01.correlate2d' (lab number, dot, name); got {exercise_id!r}"
        )
    exercises = lab_exercises(lab)
    for candidate in exercises:
        if candidate.id == exercise_id:
            return candidate
    known = ", ".join(e.id for e in exercises)
    raise ValueError(f"no exercise {exercise_id!r}; lab {lab} has: {known}")


# --------------------------------------------------------------------------------------------
# Running the probes (in the student's kernel, or in-process for self-checks)


def run_probes(probes: dict, obj: Any) -> list[dict]:
    """Run each probe of ``{case name: probe}`` on ``obj``: one plain record per case, no verdict.

    A record is ``{"case", "outcome", "data", "ename", "message"}`` where ``outcome`` is
    ``"returned"`` (``data`` holds the serialised plain result), ``"raised"`` (``ename`` and
    ``message`` name the exception), ``"not_plain"`` (the result is not plain data) or ``"none"``
    (a value exercise's variable is still ``None``).  Runs where the student's object lives: in
    the kernel when grading (:mod:`cnnlab.grading.export`), in-process for self-checks.
    """
    records = []
    for name, probe in probes.items():
        record = {"case": name, "outcome": "returned", "data": None, "ename": "", "message": ""}
        if obj is None:  # value exercises start as `name = None` so check cells never NameError
            record["outcome"] = "none"
            records.append(record)
            continue
        try:
            record["data"] = dumps_plain(probe(obj)).decode()
        except PlainDataError as exc:
            record.update(outcome="not_plain", message=str(exc)[:500])
        except Exception as exc:  # noqa: BLE001 - student code may raise anything
            record.update(outcome="raised", ename=type(exc).__name__[:100],
                          message=str(exc)[:500])
        records.append(record)
    return records


def probe_cases(ex: Exercise, obj: Any, cases=None) -> list[dict]:
    """:func:`run_probes` with the probes of ``ex``'s ``cases`` (all of them by default)."""
    return run_probes({case.name: case.probe for case in (ex.cases if cases is None else cases)},
                      obj)


#: What the judge reads of one probe result, at most (a larger result is an error).
RESULT_CHARS = 8 * 2**20


def judge_record(ex: Exercise, record) -> tuple[str, str]:
    """Judge one probe record against the reference: ``(status, message)``.

    ``status`` is ``"pass"``, ``"fail"``, ``"not_attempted"`` or ``"error"``.  Runs in the judge
    process and reads only plain data: the record's ``outcome`` and ``data``; a ``status`` or
    message of the kernel's own is never read.  A raised ``NotImplementedError`` or a value
    still ``None`` is ``not_attempted``.
    """
    if not isinstance(record, dict):
        return "error", "no usable result"
    case = next((c for c in ex.cases if c.name == record.get("case")), None)
    if case is None:
        return "error", f"unknown case {str(record.get('case'))[:60]!r}"
    outcome = record.get("outcome")
    text = record.get("message") if type(record.get("message")) is str else ""
    if outcome == "none":
        return "not_attempted", f"`{ex.name}` is still None"
    if outcome == "raised":
        ename = record.get("ename") if type(record.get("ename")) is str else ""
        if ename == "NotImplementedError":
            return "not_attempted", "still raises NotImplementedError"
        return "error", f"{ename[:100] or 'Exception'}: {text}"[:500]
    if outcome == "not_plain":
        return "error", (text or "the result is not plain data")[:500]
    if outcome != "returned":
        return "error", "no usable result"
    data = record.get("data")
    if type(data) is not str:
        return "error", "no usable result"
    if len(data) > RESULT_CHARS:
        return "error", f"the result is over {RESULT_CHARS // 2**20} MiB"
    try:
        got = loads_plain(data)
    except Exception as exc:  # noqa: BLE001 - malformed data from the kernel
        return "error", f"unreadable result ({type(exc).__name__})"
    expected = loads_plain(dumps_plain(case.expected()))
    try:
        if case.count_only:
            ok, message = count_right_entries(got, expected, case.compare)
        else:
            ok, message = case.compare(got, expected)
    except Exception as exc:  # noqa: BLE001 - odd plain data a comparison does not expect
        return "fail", f"the result cannot be compared ({type(exc).__name__})"
    if ok:
        return "pass", message
    return "fail", message + (f". Hint: {case.hint}" if case.hint else "")


def judge_records(ex: Exercise, records, cases=None) -> list[tuple[str, str, str, dict]]:
    """Judge an exercise from the records its probes produced: ``[(case, status, message,
    record)]``, one per case of ``cases`` (all of ``ex``'s by default), in order.

    At most one result counts per case: a second record for the same case makes that case
    ``error`` ("more than one result for this case"); records for unknown cases are ignored; a
    case without a record is ``error`` ("no result").  Self-checks and the grader both judge
    through here.
    """
    by_case: dict[str, list] = {}
    for record in records if isinstance(records, list) else []:
        if isinstance(record, dict) and type(record.get("case")) is str:
            by_case.setdefault(record["case"], []).append(record)
    judged = []
    for case in ex.cases if cases is None else cases:
        found = by_case.get(case.name, [])
        if len(found) > 1:
            judged.append((case.name, "error", "more than one result for this case", {}))
        elif not found:
            judged.append((case.name, "error", "no result", {}))
        else:
            status, message = judge_record(ex, found[0])
            judged.append((case.name, status, message, found[0]))
    return judged
