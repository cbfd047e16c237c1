"""Kernel side of grading: run each probe on the student's answer and publish plain data.

The grader adds two kinds of cells to the notebook it runs (:mod:`cnnlab.grading.prepare`):

* a first cell, before any student code, that builds the exporter with :func:`exporter` and keeps
  it in the notebook's namespace.  The exporter holds everything it calls in its closure (the
  probes, :func:`cnnlab.exercise.run_probes`, IPython's ``publish_display_data``): replacing a
  module attribute later (``cnnlab.exercise.run_probes = ...``) changes nothing it does;
* after each exercise cell, an export cell that calls the exporter with the exercise's id and a
  random token of its own (written only into that cell).  The exporter publishes one display
  message per result, MIME type :data:`MIME`, tagged with the token and the exercise id; the
  runner keeps, from that cell's own outputs, only the records with both
  (:func:`cnnlab.grading.runner.collect_records`).

A record is plain data and never a verdict: ``{"kind": "answer", "defined", "origin"}`` once,
then ``{"kind": "case", "case", "outcome", "data", "ename", "message", "line"}`` per case, where
``outcome`` is ``"returned"``, ``"raised"``, ``"not_plain"`` or ``"none"``
(:func:`cnnlab.exercise.run_probes`).  The judge computes every status and score.

What reaches the probes: :func:`kernel_probes` rebuilds each probe (same code, closure and
defaults) with globals holding only the names its code uses, never a :class:`Case`, an
:class:`Exercise`, the ``EXERCISES`` table or a ``reference``/``expected`` callable, so nothing
reachable from the probing code's frames, closures or globals computes an expected answer.

Residual risk (one interpreter cannot close it; the package split is issue 14): the student's
code runs in the same Python as cnnlab, so it can import cnnlab's reference implementations or
the exercise tables itself (``from cnnlab.ops import correlate2d``, ``cnnlab.exercise``), or
replace the exporter in the notebook's namespace with one that hands the probes such a
reference.  The static flags (:mod:`cnnlab.grading.integrity`) name the imports they can see;
the token only tells the grader's records from anything else a cell displays, since code
running while an export cell runs can read that cell's source (IPython keeps it in ``In``).

Used in: ``cnnlab grade``.
"""

from __future__ import annotations

import builtins
import functools
import inspect
import traceback
import types

__all__ = ["MIME", "exporter", "kernel_probes", "detached", "cnnlab_origin"]

#: The MIME type of a probe record on the kernel's IOPub stream.
MIME = "application/vnd.cnnlab.probe+json"

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


# --------------------------------------------------------------------------------------------
# Probes without what judges them


def _withheld(name: str, value, references: bool = True) -> bool:
    """True for what the probing code must never reach: cases, exercises (alone or in a
    list), the ``EXERCISES`` table and (unless ``references`` is False) reference or
    expected-answer callables."""
    from cnnlab.exercise import Case, Exercise

    from cnnlab.grading.hidden import Drawn

    judged = (Case, Exercise, Drawn)
    if name in ("EXERCISES", "HIDDEN", "POINTS") or isinstance(value, judged):
        return True
    if isinstance(value, (list, tuple, set, frozenset)) and any(
            isinstance(v, judged) for v in value):
        return True
    if isinstance(value, dict) and any(
            isinstance(v, judged) or (isinstance(v, (list, tuple)) and any(
                isinstance(x, judged) for x in v)) for v in value.values()):
        return True
    if not references:
        return False
    label = name.lstrip("_")
    if label.startswith("reference") or "expected" in label:
        return True
    return callable(value) and str(getattr(value, "__name__", "")).lstrip("_").startswith(
        ("reference", "expected"))


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


class _Rebuilder:
    """Copies of a lab module's functions whose globals are one new dict holding only the
    module's names that their code uses (and are not :func:`_withheld`).  A function of another
    lab module (a hidden case built from the public module's case builders) is rebuilt by a
    rebuilder of that module's own, shared through ``others``."""

    def __init__(self, module, references: bool = True, others: dict | None = None):
        self.source = vars(module)
        self.references = references
        self.globals = {"__builtins__": builtins, "__name__": module.__name__}
        self.memo: dict[int, object] = {}
        self.others = {} if others is None else others
        self.others[id(self.source)] = self

    def _owner(self, function) -> "_Rebuilder | None":
        source = function.__globals__
        if source is self.source:
            return self
        if id(source) in self.others:
            return self.others[id(source)]
        name = str(source.get("__name__", ""))
        if name.startswith(("cnnlab.exercises.", "cnnlab.grading.hidden.")):
            import sys

            return _Rebuilder(sys.modules[name], self.references, self.others)
        return None

    def value(self, value):
        if isinstance(value, types.FunctionType) and self._owner(value) is not None:
            return self._owner(value).function(value)
        if isinstance(value, functools.partial):
            return functools.partial(self.value(value.func), *map(self.value, value.args),
                                     **{k: self.value(v) for k, v in value.keywords.items()})
        wrapped = getattr(value, "__wrapped__", None)  # e.g. an lru_cache of a module function
        if isinstance(wrapped, types.FunctionType) and self._owner(wrapped) is not None:
            return self._owner(wrapped).function(wrapped)
        return value

    def scrub(self) -> None:
        """Drop, from every rebuilt globals, a withheld value hiding in a rebuilt container."""
        for rebuilder in self.others.values():
            for name in list(rebuilder.globals):
                if _withheld(name, rebuilder.globals[name]):
                    del rebuilder.globals[name]

    def function(self, function: types.FunctionType) -> types.FunctionType:
        if id(function) in self.memo:
            return self.memo[id(function)]
        closure = None
        if function.__closure__ is not None:
            closure = tuple(types.CellType(self.value(cell.cell_contents))
                            if _filled(cell) else types.CellType()
                            for cell in function.__closure__)
        defaults = None if function.__defaults__ is None else \
            tuple(self.value(v) for v in function.__defaults__)
        clone = types.FunctionType(function.__code__, self.globals, function.__name__,
                                   defaults, closure)
        clone.__kwdefaults__ = None if function.__kwdefaults__ is None else \
            {k: self.value(v) for k, v in function.__kwdefaults__.items()}
        clone.__qualname__ = function.__qualname__
        self.memo[id(function)] = clone
        for name in sorted(_global_names(function.__code__)):
            if name in self.source and name not in self.globals \
                    and not _withheld(name, self.source[name], self.references):
                self.globals[name] = None  # reserve it: names may refer to each other
                self.globals[name] = self.value(self.source[name])
        return clone


def _filled(cell) -> bool:
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


def kernel_probes(lab: str, seeds: dict | None = None) -> dict[str, tuple[str, dict]]:
    """``{exercise id: (name in the notebook, {case name: probe})}`` for ``lab``, public and
    hidden cases (the drawn ones built with ``seeds``, :func:`cnnlab.grading.hidden.case_seeds`),
    each probe rebuilt so that nothing it reaches judges an answer (see the module docstring)."""
    import importlib

    from cnnlab.grading.hidden import graded_exercises

    number = f"{int(lab):02d}"
    module = importlib.import_module(f"cnnlab.exercises.lab{number}")
    rebuilder = _Rebuilder(module)
    table = {ex.id: (ex.name, {case.name: rebuilder.value(case.probe) for case in ex.cases})
             for ex in graded_exercises(number, seeds)}
    rebuilder.scrub()
    return table


def detached(value):
    """``value`` (an exercise's reference) as a copy whose globals hold only the names its code
    uses and never an exercise, a case or the ``EXERCISES`` table; anything not defined in a
    ``cnnlab.exercises`` module is returned as it is.  :func:`cnnlab.checkpoint` puts this in
    the notebook, so a reference it supplies leads nowhere near the other exercises' answers.
    Used in: every lab (checkpoints)."""
    import sys

    module = sys.modules.get(getattr(value, "__module__", None) or "")
    if module is None or not module.__name__.startswith("cnnlab.exercises."):
        return value
    return _Rebuilder(module, references=False).value(value)


# --------------------------------------------------------------------------------------------
# The exporter: built once, before any student code, and never looked up again


def exporter(lab: str, seeds: dict | None = None):
    """The function the export cells call: ``export(exercise_id, namespace, token)``.

    Built by the grader's first cell, with the hidden cases' seeds (plain data the grader
    derived from the course secret; the secret never enters the kernel); it publishes the
    records of one exercise's answer (``namespace[name]``) on the kernel's IOPub stream, each
    tagged with ``token``.  Everything it calls is bound here, so later assignments to module
    attributes do not reach it.
    """
    from IPython.display import publish_display_data

    from cnnlab.exercise import run_probes

    probes = kernel_probes(lab, seeds)
    publish, run, origin_of, mime = publish_display_data, run_probes, cnnlab_origin, MIME
    extract_tb, function_type, missing = traceback.extract_tb, types.FunctionType, _MISSING
    wraps = functools.wraps

    def probe_with_lines(by_case, obj):
        """``run`` one case at a time; a case that raises inside the student's function gets
        ``"line"``: the last line of the student's cell in the traceback."""
        if not isinstance(obj, function_type):
            return run(by_case, obj)
        filename = obj.__code__.co_filename
        where = {}

        @wraps(obj)
        def located(*args, **kwargs):
            try:
                return obj(*args, **kwargs)
            except Exception as exc:
                lines = [frame.lineno for frame in extract_tb(exc.__traceback__)
                         if frame.filename == filename]
                if lines:
                    where.setdefault("line", lines[-1])
                raise

        records = []
        for name, probe in by_case.items():
            where.clear()
            (record,) = run({name: probe}, located)
            if record["outcome"] == "raised" and "line" in where:
                record["line"] = where["line"]
            records.append(record)
        return records

    def export(exercise_id: str, namespace: dict, token: str) -> None:
        name, by_case = probes[exercise_id]
        obj = namespace.get(name, missing)
        tag = {"token": token, "exercise": exercise_id}
        defined = obj is not missing
        publish({mime: {**tag, "kind": "answer", "defined": defined,
                        "origin": origin_of(obj) if defined else ""}})
        if defined:
            for record in probe_with_lines(by_case, obj):
                publish({mime: {**tag, "kind": "case", **record}})

    return export
