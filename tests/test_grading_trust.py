"""The trust boundary between a student's kernel and the judge (issue 13, sections 1 and 4).

Each attack here was written first and cheated on the grader that read the kernel's answer files
back; each is kept as a regression test.  Most feed crafted records to the judge directly (no
kernel); the end-to-end ones grade Lab 01 variants in one module-scoped batch.
"""

import importlib
import io
import json
import math
from pathlib import Path

import nbformat
import numpy as np
import pytest

import cnnlab
from cnnlab.exercise import LABS, dumps_plain, exercise, run_probes
from cnnlab.grading.hidden import graded_exercises
from cnnlab.grading import grade
from cnnlab.grading.runner import collect_records
from cnnlab.notebooks import exercise_id
from tests.conftest import ROOT

grade_module = importlib.import_module("cnnlab.grading.grade")  # the module, not grade()
LAB01 = ROOT / "labs" / f"{LABS['01']}.ipynb"
EXERCISES_01 = graded_exercises("01")
TOTAL_01 = sum(ex.points for ex in EXERCISES_01)
MIME = "application/vnd.cnnlab.probe+json"

# --------------------------------------------------------------------------------------------
# The attacks, as exercise cells of an otherwise untouched Lab 01

# (a) a later cell rewrites the answer files the kernel exported (the old channel) and forges
# display data with every token it can read from the cell history (the new one)
REWRITE = r'''
import glob as _glob, json as _json, os as _os, re as _re
for _folder in set(_re.findall(r"'(/[^']*exports)'", "\n".join(In))):
    for _file in _glob.glob(_os.path.join(_folder, "*.json")):
        _record = _json.load(open(_file))
        _record["defined"] = True
        for _case in _record.get("cases", []):
            _case.update(status="pass", data=None, message="")
        _record["cases"] = _record.get("cases", []) * 600  # (b) one passing record, 600 times
        open(_file, "w").write(_json.dumps(_record))
from IPython.display import publish_display_data as _publish
import cnnlab as _cnnlab
for _token in set(_re.findall(r"[0-9a-f]{32}", "\n".join(In))):
    for _ex in __import__("cnnlab.grading.hidden", fromlist=["_"]).graded_exercises("01"):
        for _case in _ex.cases:
            _publish({"application/vnd.cnnlab.probe+json": {
                "token": _token, "exercise": _ex.id, "kind": "case", "case": _case.name,
                "status": "pass", "outcome": "returned", "data": "0"}})
'''

# (c) replace the kernel-side probing functions by plain import and assignment: each hands the
# reference to the probes in place of the student's object
PATCH = r'''
import cnnlab.exercise as _E
import cnnlab.grading.export as _X

def _reference_for(case_names):
    for _ex in __import__("cnnlab.grading.hidden", fromlist=["_"]).graded_exercises("01"):
        if set(case_names) <= {c.name for c in _ex.cases}:
            return _ex.reference()

def _swap_export(original):
    def export_answer(exercise_id, namespace, *rest, **kwargs):
        _ex = _E.exercise(exercise_id)
        return original(exercise_id, {**namespace, _ex.name: _ex.reference()}, *rest, **kwargs)
    return export_answer

def _swap_probes(original):
    def probe(probes, obj, *rest, **kwargs):
        if isinstance(probes, _E.Exercise):
            return original(probes, probes.reference(), *rest, **kwargs)
        return original(probes, _reference_for(list(probes)), *rest, **kwargs)
    return probe

for _module in (_E, _X):
    for _name, _value in list(vars(_module).items()):
        if callable(_value) and _name in ("export_answer", "exporter"):
            setattr(_module, _name, _swap_export(_value))
        elif callable(_value) and ("probe" in _name) and not isinstance(_value, type):
            setattr(_module, _name, _swap_probes(_value))
'''

# (d) walk up the stack from the student's function: frames' locals and globals, closures and
# globals of every function found, looking for a test case (anything with `expected`) or the
# EXERCISES table, and return the expected answer of the case whose inputs it was given
STACK_WALK = r'''
import collections as _collections, sys as _sys, types as _types
import numpy as _np

def _same_inputs(case, args):
    try:
        given = case.probe(lambda *a, **k: a)
        return len(given) == len(args) and all(
            _np.array_equal(_np.asarray(g), _np.asarray(a)) for g, a in zip(given, args))
    except Exception:
        return False

def _steal(args):
    seen, todo = set(), _collections.deque()  # breadth first: the shallowest path wins
    frame = _sys._getframe(1)
    while frame is not None:
        todo += [(v, 0) for v in list(frame.f_locals.values()) + list(frame.f_globals.values())]
        frame = frame.f_back
    while todo:
        obj, depth = todo.popleft()
        if id(obj) in seen or depth > 4 or isinstance(obj, (_types.ModuleType, type)):
            continue
        seen.add(id(obj))
        try:
            cases = list(getattr(obj, "cases", ()) or ())
            if callable(getattr(obj, "expected", None)) and hasattr(obj, "probe"):
                cases.append(obj)
        except Exception:
            cases = []
        for case in cases:
            if callable(getattr(case, "expected", None)) and _same_inputs(case, args):
                return case.expected()
        children = []
        if isinstance(obj, _types.FunctionType):
            children += [c.cell_contents for c in (obj.__closure__ or ())
                         if c.cell_contents is not obj]
            children += list(obj.__globals__.values()) + list(obj.__defaults__ or ())
        elif isinstance(obj, dict):
            children += list(obj.values())[:2000]
        elif isinstance(obj, (list, tuple, set, frozenset)):
            children += list(obj)[:2000]
        todo += [(c, depth + 1) for c in children]
    raise NotImplementedError()

def correlate2d(image, kernel):
    return _steal((image, kernel))
'''

# (f1) a background thread started in the first exercise cell forges records while the later
# export cells run, with every token it can read (from the cell history or the other thread's
# frames): it knows no answer, so it sends what a stub would pass with if statuses counted
THREAD = r'''
import re as _re, sys as _sys, threading as _threading, time as _time
from IPython.display import publish_display_data as _publish
import cnnlab as _cnnlab

def _tokens():
    text = "\n".join(In)
    for frame in _sys._current_frames().values():
        while frame is not None:
            text += "\n".join(str(v)[:5000] for v in frame.f_locals.values()
                              if isinstance(v, str))
            frame = frame.f_back
    return set(_re.findall(r"[0-9a-f]{32}", text))

def _forge():
    exercises = __import__("cnnlab.grading.hidden", fromlist=["_"]).graded_exercises("01")
    for _ in range(3000):
        for token in _tokens():
            for ex in exercises:
                for case in ex.cases:
                    _publish({"application/vnd.cnnlab.probe+json": {
                        "token": token, "exercise": ex.id, "kind": "case", "case": case.name,
                        "status": "pass", "outcome": "returned", "data": "[[0.0]]"}})
        _time.sleep(0.02)

_threading.Thread(target=_forge, daemon=True).start()
'''

# (f2) an object that says it equals anything, with an __array__ of objects
ALWAYS_EQUAL = r'''
class _Anything:
    def __eq__(self, other):
        return True
    def __array__(self, dtype=None, copy=None):
        return np.array([_Anything()], dtype=object)

def convolve2d(image, kernel):
    return _Anything()
'''


def _stubs():
    nb = nbformat.read(LAB01, as_version=4)
    return nb, {exercise_id(c): c.source for c in nb.cells if exercise_id(c)}


def _untouched_with(folder: Path, name: str, cells: dict) -> Path:
    """Lab 01 as shipped, with ``cells`` ({exercise id: source}) appended to those stubs."""
    nb, stubs = _stubs()
    for cell in nb.cells:
        ex = exercise_id(cell)
        if ex in cells:
            cell.source = stubs[ex] + "\n" + cells[ex]
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


ATTACKS = {
    "rewrite": {"01.kernel_gradient": REWRITE},
    "patch": {"01.to_grayscale": PATCH},
    "stack_walk": {"01.correlate2d": STACK_WALK},
    "thread": {"01.to_grayscale": THREAD},
    "always_equal": {"01.convolve2d": ALWAYS_EQUAL},
}


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    folder = tmp_path_factory.mktemp("attacks")
    for name, cells in ATTACKS.items():
        _untouched_with(folder, name, cells)
    out = tmp_path_factory.mktemp("results")
    results = grade("01", [folder], out=out, jobs=2, timeout_cell=45, timeout_notebook=300,
                    max_memory_gb=3, stream=io.StringIO(), keep_executed=True)
    return {r.submission: r for r in results}, out


def _statuses(result):
    return {e.id: e.status for e in result.exercises}


@pytest.mark.slow
def test_a_later_cell_rewriting_answers_or_forging_records_scores_zero(attacked):
    results, _ = attacked
    result = results["rewrite"]
    assert result.status == "graded" and result.total == 0
    assert set(_statuses(result).values()) == {"not_attempted"}


@pytest.mark.slow
def test_replacing_the_kernel_side_probing_functions_scores_zero(attacked):
    results, _ = attacked
    assert results["patch"].total == 0
    assert set(_statuses(results["patch"]).values()) == {"not_attempted"}


@pytest.mark.slow
def test_walking_the_stack_finds_no_expected_answer(attacked):
    results, _ = attacked
    assert results["stack_walk"].total == 0
    assert _statuses(results["stack_walk"])["01.correlate2d"] == "not_attempted"


@pytest.mark.slow
def test_a_thread_forging_records_during_later_cells_gains_nothing(attacked):
    results, _ = attacked
    result = results["thread"]
    assert result.total == 0
    # the forged records duplicate the real ones (same token, read from the history): every
    # case they reach is an error, never a pass
    assert "pass" not in _statuses(result).values()


@pytest.mark.slow
def test_an_always_equal_object_is_not_plain_data_and_scores_zero(attacked):
    results, _ = attacked
    row = next(e for e in results["always_equal"].exercises if e.id == "01.convolve2d")
    assert row.status == "error" and row.points == 0
    assert all(status == "error" for _, _, status, _ in row.cases)


@pytest.mark.slow
def test_the_executed_notebook_keeps_no_probe_records(attacked):
    _, out = attacked
    text = (out / "executed" / "stack_walk.ipynb").read_text()
    assert MIME not in text


# --------------------------------------------------------------------------------------------
# The judge, fed crafted records (no kernel)

_CORRELATE2D = next(ex for ex in graded_exercises("01") if ex.id == "01.correlate2d")
_OK = {"status": "ok", "ename": "", "evalue": "", "line": None, "innermost": None}


def _answer(defined=True, origin=""):
    return {"kind": "answer", "defined": defined, "origin": origin}


def _case(name, outcome="returned", data=None, **extra):
    return {"kind": "case", "case": name, "outcome": outcome, "data": data, **extra}


def _reference_records(ex=_CORRELATE2D):
    probes = {case.name: case.probe for case in ex.cases}
    return [_answer()] + [{"kind": "case", **r} for r in run_probes(probes, ex.reference())]


def _judge(records, ex=_CORRELATE2D):
    progress = {"cells": {"0": dict(_OK), "1": {**_OK, "records": records}}, "end": "finished"}
    return grade_module._judge_safely(ex, {ex.id: (0, 1)}, set(), progress, "finished")


def test_the_reference_passes_through_the_records_channel():
    result = _judge(_reference_records())
    assert result.status == "pass" and result.points == _CORRELATE2D.points


def test_a_status_from_the_kernel_is_never_believed():
    records = [_answer()] + [{"kind": "case", "case": c.name, "status": "pass"}
                             for c in _CORRELATE2D.cases]
    result = _judge(records)
    assert result.points == 0 and result.status == "error"


def test_one_passing_record_repeated_600_times_never_scores_above_the_points():
    passing = next(r for r in _reference_records() if r["kind"] == "case")
    result = _judge([_answer()] + [dict(passing) for _ in range(600)])
    assert result.points <= _CORRELATE2D.points
    assert result.points == 0  # the case it repeats has more than one result: error
    row = dict((name, status) for name, _, status, _ in result.cases)
    assert row[passing["case"]] == "error"
    assert "more than one result" in next(m for n, _, _, m in result.cases
                                          if n == passing["case"])


def test_a_second_result_for_a_case_makes_that_case_an_error_only():
    records = _reference_records()
    first = next(r for r in records if r["kind"] == "case")
    result = _judge(records + [dict(first)])
    statuses = {name: status for name, _, status, _ in result.cases}
    assert statuses.pop(first["case"]) == "error"
    assert set(statuses.values()) == {"pass"}
    assert 0 < result.points < _CORRELATE2D.points


def test_records_for_unknown_cases_are_ignored():
    records = _reference_records() + [_case("no_such_case", data="1"), {"kind": "odd"}, 5]
    assert _judge(records).status == "pass"


def test_the_total_never_exceeds_the_labs_maximum():
    ex = _CORRELATE2D
    rows = [grade_module.ExerciseResult(ex.id, 50.0, float(ex.points), "pass")]
    sub = grade_module.SubmissionResult("x", "x", "graded", rows)
    assert sub.total <= sub.max_total


NOT_PLAIN = {
    "status_only": {"kind": "case", "case": "lecture_5x5_example", "status": "pass"},
    "data_not_text": _case("lecture_5x5_example", data=[1, 2]),
    "data_not_json": _case("lecture_5x5_example", data="{not json"),
    "data_nan_array": _case("lecture_5x5_example", data=json.dumps(
        {"__ndarray__": "00"})),
    "outcome_unknown": _case("lecture_5x5_example", outcome="pass", data="1"),
    "huge_text": _case("lecture_5x5_example", data="1" * (3 * 2**20)),
    "case_not_text": _case(5, data="1"),
}


@pytest.mark.parametrize("record", NOT_PLAIN.values(), ids=NOT_PLAIN)
def test_a_record_that_is_not_plain_data_is_never_a_pass(record):
    records = [r for r in _reference_records() if r.get("case") != "lecture_5x5_example"]
    result = _judge(records + [record])
    statuses = {name: status for name, _, status, _ in result.cases}
    assert statuses["lecture_5x5_example"] == "error"
    assert result.points < _CORRELATE2D.points


def test_nan_and_inf_results_fail():
    records = [_answer()] + [
        _case(c.name, data=dumps_plain(np.full((3, 3), math.nan)).decode())
        for c in _CORRELATE2D.cases]
    result = _judge(records)
    assert result.points == 0 and result.status == "fail"


def test_a_raised_not_implemented_error_is_not_attempted_and_none_too():
    raised = [_answer()] + [_case(c.name, "raised", ename="NotImplementedError", message="")
                            for c in _CORRELATE2D.cases]
    assert _judge(raised).status == "not_attempted"
    # a value exercise still None (06.label_preserving: `safe_transforms = None` in the lab),
    # and a function exercise whose name a student set back to None, with its hidden cases
    for ex_id in ("06.label_preserving", "01.filter_shapes"):
        value = next(ex for ex in graded_exercises(ex_id[:2]) if ex.id == ex_id)
        none = [_answer()] + [_case(c.name, "none") for c in value.cases]
        assert _judge(none, value).status == "not_attempted"
        # a None for some cases and answers for others is no longer "not attempted"
        half = none[:-1] + [_case(value.cases[-1].name, data="1")]
        assert _judge(half, value).status != "not_attempted"


def test_an_export_cell_without_records_is_an_error_not_a_pass():
    assert _judge([]).status == "error"
    assert _judge([_answer(defined=False)]).message.startswith("the exercise cell does not")


# --------------------------------------------------------------------------------------------
# (e) The channel: only the export cell's own records, with its token and exercise


def _display(record):
    return {"output_type": "display_data", "data": {MIME: record}, "metadata": {}}


def test_only_records_with_the_cells_token_and_exercise_are_collected():
    token = "a" * 32
    good = {"token": token, "exercise": "01.correlate2d", "kind": "case", "case": "x",
            "outcome": "returned", "data": "1"}
    outputs = [_display(good), _display({**good, "token": "b" * 32}),
               _display({**good, "exercise": "01.convolve2d"}),
               {"output_type": "stream", "name": "stdout", "text": json.dumps(good)},
               {"output_type": "execute_result", "data": {MIME: good}, "metadata": {}},
               _display("not a record")]
    records, kept = collect_records(outputs, token, "01.correlate2d")
    assert records == [{k: v for k, v in good.items() if k not in ("token", "exercise")}]
    assert len(kept) == len(outputs) - 1  # the genuine record leaves the executed notebook


def test_records_from_a_later_cell_never_reach_the_judge():
    # the runner collects only from the export cell it tagged, when that cell ends; a record a
    # later cell prints lands in that later cell's outputs, which nobody reads for records
    from cnnlab.grading.prepare import prepare_submission

    template = nbformat.read(ROOT / "solutions" / f"{LABS['01']}.ipynb", as_version=4)
    nb, positions, _ = prepare_submission(template, template, EXERCISES_01)
    exports = {export for _, export in positions.values()}
    for i, cell in enumerate(nb.cells):
        meta = cell.metadata.get("cnnlab", {})
        assert (i in exports) == bool(meta.get("token")), i
    tokens = {nb.cells[e].metadata["cnnlab"]["token"] for e in exports}
    assert len(tokens) == len(exports)  # one token per export cell, per run


def test_the_prepared_notebook_runs_no_self_check_and_its_first_cell_holds_the_probes():
    from cnnlab.grading.prepare import prepare_submission

    template = nbformat.read(ROOT / "solutions" / f"{LABS['01']}.ipynb", as_version=4)
    nb, positions, _ = prepare_submission(template, template, EXERCISES_01)
    sources = [cell.source for cell in nb.cells]
    assert not any("cnnlab.check(" in cell.source for cell in nb.cells if cell.cell_type == "code")
    assert "cnnlab.grading.export" in sources[0]
    for _, export in positions.values():  # no module attribute looked up at export time
        assert "import" not in sources[export] and "cnnlab." not in sources[export]


# --------------------------------------------------------------------------------------------
# (d) What the probing code can reach in one interpreter


def test_the_kernel_side_probes_reach_no_case_exercise_or_reference():
    from cnnlab.grading.export import kernel_probes

    probes = kernel_probes("01")
    seen, todo = set(), [v for by_case in probes.values() for v in by_case[1].values()]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        assert not isinstance(obj, (cnnlab.exercise.Case, cnnlab.exercise.Exercise))
        assert not (isinstance(obj, list) and obj and isinstance(
            obj[0], cnnlab.exercise.Exercise))
        if callable(obj) and getattr(obj, "__name__", "").startswith("reference"):
            raise AssertionError(f"{obj} reachable")
        if hasattr(obj, "__code__"):
            assert "EXERCISES" not in obj.__globals__
            todo += [c.cell_contents for c in (obj.__closure__ or ())]
            todo += [v for v in obj.__globals__.values() if not isinstance(v, type(np))]
        elif isinstance(obj, (list, tuple, dict)):
            todo += list(obj.values() if isinstance(obj, dict) else obj)


def test_self_checks_use_the_same_judge_and_need_no_grading_flag():
    report = cnnlab.check("01.correlate2d", exercise("01.correlate2d").reference())
    assert report.passed
    assert not hasattr(cnnlab.selfcheck, "grading_mode")


# --------------------------------------------------------------------------------------------
# Calls of cnnlab's implementation, by routes no reading of the cell follows (in-process: the
# exporter as the grader's first cell builds it, its messages captured)


def _exported(monkeypatch, source: str, ex_id: str = "01.correlate2d") -> dict:
    """Run ``source`` as a notebook cell would (``__name__ == "__main__"``), then the export of
    ``ex_id`` with the grader's watch: ``{"cases": [...], "calls": record}``."""
    import IPython.display

    from cnnlab.grading.export import MIME, exporter
    from cnnlab.grading.integrity import watched_code

    sent = []
    monkeypatch.setattr(IPython.display, "publish_display_data",
                        lambda data, *a, **k: sent.append(data[MIME]))
    exercises = graded_exercises("01")
    watched = {ex.id: watched_code(ex) for ex in exercises}
    export = exporter("01", None, watched)
    namespace = {"__name__": "__main__", "np": np}
    exec(compile(source, "<cell>", "exec"), namespace)  # noqa: S102 - the student's cell
    export(ex_id, namespace, "t" * 32)
    return {"cases": [r for r in sent if r["kind"] == "case"],
            "calls": [r for r in sent if r["kind"] == "calls"]}


HONEST = ("def correlate2d(image, kernel):\n"
          "    kh, kw = np.shape(kernel)\n"
          "    image = np.asarray(image, dtype=float)\n"
          "    return np.array([[np.sum(image[i:i + kh, j:j + kw] * kernel)\n"
          "                      for j in range(image.shape[1] - kw + 1)]\n"
          "                     for i in range(image.shape[0] - kh + 1)])\n")

ROUTES = {
    "sys_modules_computed_key": ("import sys\ndef correlate2d(image, kernel):\n"
                                 "    ops = sys.modules['cnnlab.' + 'ops']\n"
                                 "    return ops.correlate2d(image, kernel)\n"),
    "globals_of_a_public_function": (
        "import cnnlab\n"
        "_find = cnnlab.check.__globals__['exercise']\n"
        "def correlate2d(image, kernel):\n"
        "    return _find('01.correlate2d').reference()(image, kernel)\n"),
    "builtins_import": ("import builtins\ndef correlate2d(image, kernel):\n"
                        "    ops = builtins.__import__('cnnlab.ops', fromlist=['_'])\n"
                        "    return ops.correlate2d(image, kernel)\n"),
    "source_loaded_as_a_module": (
        "import inspect, sys, types\n_mine = types.ModuleType('mine')\n"
        "exec(inspect.getsource(sys.modules['cnnlab.ops']), _mine.__dict__)\n"
        "def correlate2d(image, kernel):\n    return _mine.correlate2d(image, kernel)\n"),
    "a_partial": ("import functools, sys\n"
                  "correlate2d = functools.partial(lambda i, k, m: m.correlate2d(i, k),\n"
                  "                                m=sys.modules['cnnlab.ops'])\n"),
    "a_callable_object": ("import sys\nclass _Call:\n"
                          "    __call__ = staticmethod(sys.modules['cnnlab.ops'].correlate2d)\n"
                          "correlate2d = _Call()\n"),
    "a_class": ("import sys\nclass correlate2d:\n"
                "    def __new__(cls, image, kernel):\n"
                "        return sys.modules['cnnlab.ops'].correlate2d(image, kernel)\n"),
    "a_thread": ("import sys, threading\ndef correlate2d(image, kernel):\n"
                 "    out = {}\n"
                 "    worker = threading.Thread(target=lambda: out.update(\n"
                 "        r=sys.modules['cnnlab.ops'].correlate2d(image, kernel)))\n"
                 "    worker.start(); worker.join()\n"
                 "    return out['r']\n"),
}


@pytest.mark.parametrize("route", list(ROUTES))
def test_a_call_of_the_implementation_is_seen_whatever_the_route(monkeypatch, route):
    import cnnlab.ops  # noqa: F401 - the lab's setup cell imports it

    found = _exported(monkeypatch, ROUTES[route])
    assert [c["outcome"] for c in found["cases"]] == ["returned"] * 7  # it does pass the tests
    (calls,) = found["calls"]
    assert calls["names"] == ["cnnlab.ops.correlate2d"], calls


def test_an_honest_answer_calls_nothing_and_switching_the_watch_off_is_seen(monkeypatch):
    (calls,) = _exported(monkeypatch, HONEST)["calls"]
    assert calls == {**calls, "names": [], "touched": False, "intact": True}
    import sys

    assert sys.getprofile() is None  # the watch is gone once the tests ran
    for trick in ("    sys.setprofile(None)\n",
                  "    saved = sys.getprofile(); sys.setprofile(None); sys.setprofile(saved)\n"):
        source = HONEST.replace("    kh, kw", trick + "    kh, kw").replace(
            "def correlate2d", "import sys\ndef correlate2d", 1)
        (calls,) = _exported(monkeypatch, source)["calls"]
        assert calls["touched"] is True, trick


def test_cnnlab_calling_its_own_code_is_not_the_students_call(monkeypatch):
    # ops.conv2d (another exercise's implementation, allowed here) may call correlate2d inside
    source = ("import sys\ndef correlate2d(image, kernel):\n"
              "    ops = sys.modules['cnnlab.ops']\n"
              "    k = np.asarray(kernel, dtype=float)[:, :, None, None]\n"
              "    return ops.conv2d(np.asarray(image, dtype=float)[:, :, None], k)[:, :, 0]\n")
    (calls,) = _exported(monkeypatch, source)["calls"]
    assert calls["names"] == [], calls


def test_the_judge_flags_what_the_calls_record_says():
    watched = {"watched": {_CORRELATE2D.id: {"correlate2d": {"x": "cnnlab.ops.correlate2d"}}}}

    def judge(extra):
        answer = {"kind": "answer", "defined": True, "function": True, "origin": ""}
        records = [answer] + _reference_records()[1:] + extra
        progress = {"cells": {"0": dict(_OK), "1": {**_OK, "records": records}},
                    "end": "finished"}
        return grade_module._judge_safely(_CORRELATE2D, {_CORRELATE2D.id: (0, 1)}, set(),
                                          progress, "finished", watched)

    clean = {"kind": "calls", "names": [], "touched": False, "intact": True}
    assert judge([clean]).flag == "" and judge([clean]).status == "pass"
    called = judge([{**clean, "names": ["cnnlab.ops.correlate2d"]}])
    assert called.flag == "its tests called cnnlab.ops.correlate2d" and called.status == "pass"
    assert "switched off" in judge([{**clean, "touched": True}]).flag
    assert "switched off" in judge([{**clean, "intact": False}]).flag
    assert "sent no (or more than one) report" in judge([]).flag  # the exporter was replaced
    assert "sent no (or more than one) report" in judge([clean, clean]).flag
