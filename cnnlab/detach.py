"""Copies of an exercise module's functions cut off from what judges answers.

A probe (run in the student's kernel when grading) or a reference (put in the notebook by a
checkpoint) is a function of a ``cnnlab.exercises`` module (or of the instructor's
``cnnlab.grading.hidden``).  Through its globals, closure or defaults it could reach the
module's ``EXERCISES`` table, other cases' ``expected`` callables or references.  A
:class:`Rebuilder` copies such a function (same code, closure and defaults) with globals that
hold only the names its code uses, never a :class:`~cnnlab.exercise.Case`, an
:class:`~cnnlab.exercise.Exercise`, a :class:`~cnnlab.exercise.Drawn`, the ``EXERCISES``,
``HIDDEN`` or ``POINTS`` tables or (for probes) a ``reference``/``expected`` callable.

This is defence in depth, not a boundary: code in the same interpreter can still import
cnnlab's modules.  Used in: every lab (:func:`cnnlab.checkpoint`, via :func:`detached`) and
``cnnlab grade`` (:func:`cnnlab.grading.export.kernel_probes`).
"""

from __future__ import annotations

import builtins
import functools
import types

__all__ = ["Rebuilder", "detached"]


def _withheld(name: str, value, references: bool = True) -> bool:
    """True for what the probing code must never reach: cases, exercises (alone or in a
    list), the ``EXERCISES`` table and (unless ``references`` is False) reference or
    expected-answer callables."""
    from cnnlab.exercise import Case, Drawn, Exercise

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


class Rebuilder:
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

    def _owner(self, function) -> "Rebuilder | None":
        source = function.__globals__
        if source is self.source:
            return self
        if id(source) in self.others:
            return self.others[id(source)]
        name = str(source.get("__name__", ""))
        if name.startswith(("cnnlab.exercises.", "cnnlab.grading.hidden.")):
            import sys

            return Rebuilder(sys.modules[name], self.references, self.others)
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
    return Rebuilder(module, references=False).value(value)
