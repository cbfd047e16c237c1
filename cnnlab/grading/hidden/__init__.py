"""Points and hidden cases: the instructor's half of every exercise, and the course secret.

What students receive (``cnnlab release``) holds each exercise's public cases
(:mod:`cnnlab.exercises`), which ``cnnlab.check`` runs; this package is left out of it.  Each
``cnnlab.grading.hidden.labNN`` module holds, for its lab:

* ``POINTS``: ``{exercise id: points}``;
* ``HIDDEN``: ``{exercise id: (hidden case, ...)}``, each a :class:`cnnlab.exercise.Case` with
  fixed inputs (a lecture's numbers) or a :class:`Drawn` case whose inputs come from a seed;
* optionally ``REFERENCES``: ``{exercise id: reference}`` where the public reference cannot hold
  the whole answer (06.label_preserving: the answer key of the tasks only hidden tests check).

A :class:`Drawn` case is built from a seed at grading time: the seed is derived from the course
secret (``cnnlab grade --secret FILE`` or ``CNNLAB_GRADING_SECRET``) with HMAC-SHA256 over the
exercise id and the case name, so knowing the case generators (they are in this repository, and
the public case builders are in the release) does not tell a student the inputs, the same secret
regrades identically, and without a secret each case uses its fixed seed (the grader says so).
The seeds, never the secret, are what the grader's first cell hands the kernel
(:func:`cnnlab.grading.export.exporter`): a seed tells nothing about the secret or other seeds.

Used in: ``cnnlab grade`` (:func:`graded_exercises`), the tests.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import importlib
import os
from pathlib import Path

from cnnlab.exercise import LABS, Case, Drawn, Exercise, lab_exercises

__all__ = ["Drawn", "SECRET_ENV", "read_secret", "secret_sha256", "case_seeds",
           "graded_exercises", "hidden_cases", "lab_points"]

#: The environment variable that holds the course secret itself (``--secret FILE`` wins).
SECRET_ENV = "CNNLAB_GRADING_SECRET"


def read_secret(path: str | os.PathLike | None = None, environ=None) -> bytes | None:
    """The course secret: the bytes of ``path`` (``--secret FILE``), else the value of
    ``CNNLAB_GRADING_SECRET``, else None (fixed seeds).  An empty or unreadable secret is an
    error that names the fix, never a silent fall-back to the fixed seeds."""
    environ = os.environ if environ is None else environ
    if path is not None:
        file = Path(path)
        try:
            secret = file.read_bytes()
        except OSError as exc:
            raise ValueError(f"--secret {file}: cannot read the course secret ({exc.strerror}); "
                             "give a file that holds it, e.g. made with "
                             "`python -c \"import secrets; print(secrets.token_hex(32))\" > "
                             f"{file}`") from None
        where = f"--secret {file}"
    elif environ.get(SECRET_ENV) is not None:
        secret, where = environ[SECRET_ENV].encode(), SECRET_ENV
    else:
        return None
    secret = secret.strip()
    if len(secret) < 16:
        raise ValueError(f"{where}: the course secret is {len(secret)} byte(s) long; use at "
                         "least 16 random bytes (`python -c \"import secrets; "
                         "print(secrets.token_hex(32))\"`)")
    return secret


def secret_sha256(secret: bytes | None) -> str | None:
    """The SHA-256 of the secret, hex (``scores.json`` records it; it never holds the secret):
    two gradings with the same value drew the same hidden inputs."""
    return None if secret is None else hashlib.sha256(secret).hexdigest()


def _module(lab: str):
    number = f"{int(lab):02d}" if str(lab).isdigit() else str(lab)
    if number not in LABS:
        raise ValueError(f"unknown lab {lab!r}; labs are {', '.join(LABS)}")
    return importlib.import_module(f"cnnlab.grading.hidden.lab{number}")


def lab_points(lab: str) -> dict[str, float]:
    """``{exercise id: points}`` of ``lab``."""
    return dict(_module(lab).POINTS)


def case_seeds(lab: str, secret: bytes | None) -> dict[str, dict[str, int]]:
    """``{exercise id: {case name: seed}}`` for the :class:`Drawn` cases of ``lab``: derived
    from ``secret`` (HMAC-SHA256 of ``"<id>/<case name>"``, 32 bits), or the fixed seeds when
    ``secret`` is None."""
    seeds: dict[str, dict[str, int]] = {}
    for ex_id, cases in _module(lab).HIDDEN.items():
        for case in cases:
            if isinstance(case, Drawn):
                if secret is None:
                    seed = int(case.seed)
                else:
                    digest = hmac.new(secret, f"{ex_id}/{case.name}".encode(),
                                      hashlib.sha256).digest()
                    seed = int.from_bytes(digest[:4], "big")
                seeds.setdefault(ex_id, {})[case.name] = seed
    return seeds


def hidden_cases(ex_id: str, lab: str, seeds: dict | None = None) -> tuple[Case, ...]:
    """The hidden cases of one exercise, each :class:`Drawn` one built with its seed from
    ``seeds`` (:func:`case_seeds`; the fixed seed where ``seeds`` has none)."""
    built = []
    for entry in _module(lab).HIDDEN.get(ex_id, ()):
        if isinstance(entry, Drawn):
            seed = (seeds or {}).get(ex_id, {}).get(entry.name, entry.seed)
            case = entry.build(entry.name, int(seed))
            if case.name != entry.name:
                raise ValueError(f"{ex_id}: the Drawn case {entry.name!r} built a case named "
                                 f"{case.name!r}; build(name, seed) must use the name it gets")
        elif isinstance(entry, Case):
            case = entry
        else:
            raise TypeError(f"{ex_id}: a hidden case is a Case or a Drawn, not "
                            f"{type(entry).__name__}")
        built.append(dataclasses.replace(case, hidden=True))
    return tuple(built)


def graded_exercises(lab: str, seeds: dict | None = None) -> list[Exercise]:
    """The exercises of ``lab`` as the grader judges them: the public exercise with its points,
    its reference (or the one in ``REFERENCES``) and its public cases followed by its hidden
    cases (drawn with ``seeds``,
    :func:`case_seeds`).  An exercise without points, or points for an unknown exercise, is an
    error: the two halves must agree."""
    module = _module(lab)
    exercises = lab_exercises(lab)
    known = {ex.id for ex in exercises}
    stray = (set(module.POINTS) | set(module.HIDDEN)) - known
    if stray:
        raise ValueError(f"cnnlab.grading.hidden.lab{exercises[0].lab}: no public exercise "
                         f"{sorted(stray)} in cnnlab.exercises")
    graded = []
    for ex in exercises:
        if ex.id not in module.POINTS:
            raise ValueError(f"{ex.id} has no points in {module.__name__}.POINTS")
        cases = ex.public_cases() + hidden_cases(ex.id, lab, seeds)
        names = [case.name for case in cases]
        if len(set(names)) != len(names):
            raise ValueError(f"{ex.id}: two cases share a name: {sorted(names)}")
        reference = getattr(module, "REFERENCES", {}).get(ex.id, ex.reference)
        graded.append(dataclasses.replace(ex, points=float(module.POINTS[ex.id]), cases=cases,
                                          reference=reference))
    return graded
