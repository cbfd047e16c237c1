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

A record is plain data and never a verdict: ``{"kind": "answer", "defined", "function",
"origin"}`` once, then ``{"kind": "case", "case", "outcome", "data", "ename", "message", "line"}``
per case, where ``outcome`` is ``"returned"``, ``"raised"``, ``"not_plain"`` or ``"none"``
(:func:`cnnlab.exercise.run_probes`), and for a function answer of an exercise with watched
code, last, ``{"kind": "calls", "names", "touched", "intact"}``: the cnnlab implementations the
student's function called while the tests ran it (:func:`_call_watcher`).  The judge computes
every status and score.

What reaches the probes: :func:`kernel_probes` rebuilds each probe
(:class:`cnnlab.detach.Rebuilder`: same code, closure and defaults) with globals holding only
the names its code uses, never a :class:`Case`, an :class:`Exercise`, the ``EXERCISES``,
``HIDDEN`` or ``POINTS`` tables or a ``reference``/``expected`` callable.  The hidden cases'
inputs come from seeds the grader derived from the course secret (:mod:`cnnlab.grading.hidden`);
the first cell holds the seeds, never the secret.

Residual risk (one interpreter cannot close it): the student's code runs in the same Python as
cnnlab, so at grading time it can import cnnlab's implementations (which the students' release
holds too: ``from cnnlab.ops import correlate2d``), or replace the exporter in the notebook's
namespace with one that hands the probes such a function.  The static flags
(:mod:`cnnlab.grading.integrity`) name the imports they can see, the run-time ``origin`` names a
cnnlab function handed back, and the similarity report (:mod:`cnnlab.grading.similarity`)
catches cnnlab's code pasted or retyped into a cell.  The token only tells the grader's records
from anything else a cell displays, since code running while an export cell runs can read that
cell's source (IPython keeps it in ``In``).

Used in: ``cnnlab grade``.
"""

from __future__ import annotations

import functools
import inspect
import traceback
import types

from cnnlab.detach import Rebuilder

__all__ = ["MIME", "exporter", "kernel_probes", "cnnlab_origin"]

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


def kernel_probes(lab: str, seeds: dict | None = None) -> dict[str, tuple[str, dict]]:
    """``{exercise id: (name in the notebook, {case name: probe})}`` for ``lab``, public and
    hidden cases (the drawn ones built with ``seeds``, :func:`cnnlab.grading.hidden.case_seeds`),
    each probe rebuilt so that nothing it reaches judges an answer (see the module docstring)."""
    import importlib

    from cnnlab.grading.hidden import graded_exercises

    number = f"{int(lab):02d}"
    module = importlib.import_module(f"cnnlab.exercises.lab{number}")
    rebuilder = Rebuilder(module)
    table = {ex.id: (ex.name, {case.name: rebuilder.value(case.probe) for case in ex.cases})
             for ex in graded_exercises(number, seeds)}
    rebuilder.scrub()
    return table


# --------------------------------------------------------------------------------------------
# The exporter: built once, before any student code, and never looked up again


#: The module whose frames stand between a caller and a watched cnnlab function without being
#: either (the deprecated-argument wrapper of :func:`cnnlab._checks.renamed`).
_TRANSPARENT = "cnnlab._checks"


def _call_watcher(watch: dict, digest_of):
    """``(run, report)``: ``run(thunk)`` calls ``thunk()`` with a profile hook (this thread and
    any thread started meanwhile) that notes each call of a function in ``watch``
    (``{function name: {code digest: dotted name}}``, :func:`cnnlab.grading.integrity.watched_code`)
    from code outside cnnlab (the student's, whatever route it took to the function; a cnnlab
    function calling another is not counted), and any ``sys.setprofile``/``sys.getprofile``
    call (code switching the watch off or saving it to restore later); ``report()`` is the plain
    record of what it saw.  Not seen: work done in another process, or in a thread started
    with ``_thread`` directly."""
    import sys
    import threading

    seen, digests = set(), {}
    state = {"touched": False, "intact": True}
    guarded = {id(sys.setprofile), id(sys.getprofile)}

    def hook(frame, event, arg):
        if event == "call":
            code = frame.f_code
            wanted = watch.get(code.co_name)
            if wanted:
                digest = digests.get(code)
                if digest is None:
                    digest = digests[code] = digest_of(code)
                caller = frame.f_back
                # cnnlab._checks.renamed's wrapper (an old argument name) is transparent: the
                # caller is whoever called the wrapper
                while caller is not None and caller.f_globals.get("__name__") == _TRANSPARENT:
                    caller = caller.f_back
                module = "" if caller is None else str(caller.f_globals.get("__name__", ""))
                # cnnlab calling its own code is fine; this module calls the answer itself
                # (an answer that is cnnlab's function, or reaches it through C code: a partial,
                # a callable object)
                inside = module.startswith("cnnlab.") and module != __name__
                if digest in wanted and not inside:
                    seen.add(wanted[digest])
        elif event == "c_call" and id(arg) in guarded \
                and frame.f_globals.get("__name__") != __name__:  # (not this module's own)
            state["touched"] = True

    def run(thunk):
        previous = sys.getprofile()
        sys.setprofile(hook)
        threading.setprofile(hook)
        try:
            return thunk()
        finally:
            state["intact"] = state["intact"] and sys.getprofile() is hook
            sys.setprofile(previous)
            threading.setprofile(None)

    def report() -> dict:
        return {"kind": "calls", "names": sorted(seen)[:20], "touched": state["touched"],
                "intact": state["intact"]}

    return run, report


def exporter(lab: str, seeds: dict | None = None, watched: dict | None = None):
    """The function the export cells call: ``export(exercise_id, namespace, token)``.

    Built by the grader's first cell, with the hidden cases' seeds (plain data the grader
    derived from the course secret; the secret never enters the kernel) and, per exercise, the
    code of the cnnlab functions that compute its answer (``watched``,
    :func:`cnnlab.grading.integrity.watched_code`); it publishes the records of one exercise's
    answer (``namespace[name]``) on the kernel's IOPub stream, each tagged with ``token``: the
    answer, one record per case, and for a watched exercise what its tests called
    (:func:`_call_watcher`).  Everything it calls is bound here, so later assignments to module
    attributes do not reach it.
    """
    from IPython.display import publish_display_data

    from cnnlab.exercise import run_probes
    from cnnlab.grading.integrity import code_digest

    probes = kernel_probes(lab, seeds)
    watched, watcher = dict(watched or {}), _call_watcher
    publish, run, origin_of, mime = publish_display_data, run_probes, cnnlab_origin, MIME
    extract_tb, function_type, missing = traceback.extract_tb, types.FunctionType, _MISSING
    wraps = functools.wraps

    def probe_with_lines(by_case, obj, around=None):
        """``run`` one case at a time; a case that raises inside the student's function gets
        ``"line"``: the last line of the student's cell in the traceback.  Each call of the
        student's function runs inside ``around`` (the call watch), so what the probes
        themselves call (building a test's inputs) is never counted."""
        if not callable(obj) or (around is None and not isinstance(obj, function_type)):
            return run(by_case, obj)
        filename = obj.__code__.co_filename if isinstance(obj, function_type) else None
        where = {}
        around = around or (lambda thunk: thunk())

        @wraps(obj)
        def located(*args, **kwargs):
            try:
                return around(lambda: obj(*args, **kwargs))
            except Exception as exc:
                lines = [frame.lineno for frame in extract_tb(exc.__traceback__)
                         if filename is not None and frame.filename == filename]
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
                        "function": defined and callable(obj),
                        "origin": origin_of(obj) if defined else ""}})
        if defined and watched.get(exercise_id) and callable(obj):
            run_watched, report = watcher(watched[exercise_id], code_digest)
            for record in probe_with_lines(by_case, obj, run_watched):
                publish({mime: {**tag, "kind": "case", **record}})
            publish({mime: {**tag, **report()}})
        elif defined:
            for record in probe_with_lines(by_case, obj):
                publish({mime: {**tag, "kind": "case", **record}})

    return export
