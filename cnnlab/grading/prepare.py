"""Reading and preparing one submission, in a worker process the grader can stop.

Everything the grader does with a submission's own text before its kernel starts happens here:
reading the notebook (under :mod:`cnnlab.grading.limits`' caps), assembling the notebook to run
(:func:`prepare_submission`), the static flags (:func:`cnnlab.grading.integrity.submission_flags`)
and the line of each exercise cell's syntax error.  Parsing a hostile cell can be slow (IPython's
input transformer is quadratic in a cell of ``!shell`` lines: 21 KB cost 110 s) or deep, so each
submission is parsed in a worker process of its own, under a deadline (``--parse-timeout``) and
a memory cap: on the deadline the worker is killed, only that submission gets an ``error`` row,
and the other jobs never wait for it.

Workers are forked by a small server (:class:`ParseServer`, :func:`serve`), started once by the
grading process, that has already imported nbformat and IPython: a fresh Python importing them costs
seconds here, a fork costs milliseconds.  (``multiprocessing``'s own "forkserver" re-runs the
grader's main script in every worker, which breaks an unguarded script and costs a Jupyter
caller an ipykernel import per submission.)  Each worker parses on one thread, so no lock is
needed around :mod:`ast`, whose recursion bookkeeping CPython 3.11 keeps per interpreter: two
grading threads parsing at once could upset it.

Used in: ``cnnlab grade``.
"""

from __future__ import annotations

import ast
import atexit
import itertools
import json
import os
import secrets
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections import namedtuple
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from collections.abc import Mapping
from pathlib import Path

import nbformat

from cnnlab.grading.integrity import index_cnnlab, submission_flags
from cnnlab.grading.limits import (
    Limits,
    UntrustedInputError,
    check_json_depth,
    load_json_capped,
    read_capped,
)
from cnnlab.notebooks import exercise_id

__all__ = ["prepare_submission", "read_notebook", "prepare_in_worker", "ParseServer", "serve",
           "PARSE_MEMORY_BYTES", "DEMO_TAG", "SKIPPED_DEMO", "is_demo", "demo_exercise_cells",
           "demo_only_names"]

#: Address space a parsing worker may add to what it inherits from the fork server.
PARSE_MEMORY_BYTES = 2 * 2**30

_Exercise = namedtuple("_Exercise", "id")  # what submission_flags reads of an exercise


def _exporter_cell(lab: str, name: str, seeds: dict | None = None, watched: dict | None = None):
    """The first cell: builds the exporter (:func:`cnnlab.grading.export.exporter`) before any
    student code runs and binds it to ``name``; the export cells call it from there, so no
    module attribute is looked up at export time.  ``seeds`` (the hidden cases' seeds, plain
    ints derived from the course secret) are written into it as a literal."""
    plain = {str(ex): {str(case): int(seed) for case, seed in by_case.items()}
             for ex, by_case in (seeds or {}).items()}
    watch = {str(ex): {str(f): {str(d): str(n) for d, n in by_digest.items()}
                       for f, by_digest in by_name.items()}
             for ex, by_name in (watched or {}).items()}
    source = (f"{name} = __import__('cnnlab.grading.export', fromlist=['_'])"
              f".exporter({lab!r}, {plain!r}, {watch!r})")
    return nbformat.v4.new_code_cell(source, metadata={"tags": ["cnnlab-exporter"]})


def _export_cell(ex_id: str, exporter: str, token: str):
    """The cell after an exercise cell: publishes its answer's probe records tagged with
    ``token``, which only this cell's source and metadata hold (the runner reads it there)."""
    source = f"{exporter}({ex_id!r}, globals(), {token!r})"
    return nbformat.v4.new_code_cell(
        source, metadata={"tags": ["cnnlab-export"],
                          "cnnlab": {"exercise": ex_id, "token": token}})


def _is_self_check(source: str) -> bool:
    """True for a cell that is one ``cnnlab.check(...)`` call, as every lab writes them."""
    try:
        body = ast.parse(source).body
    except (SyntaxError, ValueError):
        return False
    if len(body) != 1 or not isinstance(body[0], ast.Expr):
        return False
    call = body[0].value
    return (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
            and call.func.attr == "check" and isinstance(call.func.value, ast.Name)
            and call.func.value.id == "cnnlab")


SKIPPED_CHECK = "# (self-check: skipped by the grader, which runs every test itself)"

#: The tag (cell metadata ``tags``, the Jupyter convention) of a demonstration cell: one that no
#: exercise's grading depends on (a training run, a plot).  The grader skips it unless
#: ``--whole-notebook``; only the instructor's notebook decides, never a submission.
DEMO_TAG = "demo"
SKIPPED_DEMO = ("# (demonstration: skipped by the grader, which needs no demo cell to grade; "
                "cnnlab grade --whole-notebook runs it)")


def is_demo(cell) -> bool:
    """True for a cell of the instructor's notebook tagged :data:`DEMO_TAG`."""
    metadata = cell.get("metadata") if isinstance(cell, Mapping) else None
    tags = metadata.get("tags") if isinstance(metadata, Mapping) else None
    return isinstance(tags, (list, tuple)) and DEMO_TAG in tags


def demo_exercise_cells(template) -> list[str]:
    """The exercise ids of the instructor's cells tagged both ``exercise:`` and ``demo`` (a lab
    author's mistake: an exercise cell is always run), for an error that names them."""
    return [exercise_id(cell) for cell in template.cells if exercise_id(cell) and is_demo(cell)]


def cell_source(cell) -> str | None:
    """A cell's source as one string (a list of lines is joined), or None when it is neither."""
    source = cell.get("source") if isinstance(cell, Mapping) else None
    if isinstance(source, str):
        return source
    if isinstance(source, list) and all(isinstance(line, str) for line in source):
        return "".join(source)
    return None


def _answers(submission) -> dict[str, str]:
    """``{exercise id: source}`` of the submission's exercise cells: the first code cell tagged
    for an exercise wins; a cell whose metadata or source has an odd shape is skipped."""
    answers = {}
    cells = submission.get("cells") if isinstance(submission, Mapping) else None
    for cell in cells if isinstance(cells, list) else []:
        ex_id = exercise_id(cell)
        if not ex_id or ex_id in answers or cell.get("cell_type") != "code":
            continue
        source = cell_source(cell)
        if source is not None:
            answers[ex_id] = source
    return answers


def _bound_names(source: str) -> set[str]:
    """The names a cell binds at module level (assignments, loops, ``with``, imports, ``def``,
    ``class``), not inside a function or class body; none when it is not Python."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        try:
            from IPython.core.inputtransformer2 import TransformerManager

            tree = ast.parse(TransformerManager().transform_cell(source))
        except Exception:  # noqa: BLE001 - an instructor's cell we cannot read binds nothing here
            return set()
    names, todo = set(), list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        if not isinstance(node, (ast.Lambda, ast.GeneratorExp, ast.ListComp, ast.SetComp,
                                 ast.DictComp)):
            todo.extend(ast.iter_child_nodes(node))
    return names


def demo_only_names(template) -> set[str]:
    """The names only the instructor's ``demo`` cells bind: a submission's code that reads one
    meets a NameError when they are skipped, and its feedback says why (the instructor's
    notebook, trusted, is the only one read)."""
    demo, other = set(), set()
    for cell in template.cells:
        if cell.get("cell_type") == "code":
            (demo if is_demo(cell) else other).update(_bound_names(cell_source(cell) or ""))
    return demo - other


def prepare_submission(template, submission, exercises, seeds=None, watched=None,
                       whole_notebook=False):
    """Assemble the notebook to execute and the map ``exercise id -> (cell index, export index)``.

    ``template`` is the instructor's lab; only the sources of ``submission``'s ``exercise:`` cells
    are used (first tagged code cell wins; order in the submission does not matter; metadata or
    sources of any other shape are ignored).  Exercises the submission lacks keep the lab's stub
    and are reported ``missing``.  ``exercises`` are :class:`cnnlab.exercise.Exercise` objects
    (or anything with an ``id``).  The grader's own cells: a first cell that builds the
    exporter (with the hidden cases' ``seeds``, :func:`cnnlab.grading.hidden.case_seeds`, and
    the code it ``watched`` for, :func:`cnnlab.grading.integrity.watched_code`), an
    export cell after each exercise cell (each with a random token of its own,
    also in its metadata for the runner), and every ``cnnlab.check(...)`` cell of the lab made
    a no-op, so nothing in the kernel needs to know that it is being graded.  Unless
    ``whole_notebook`` (``--whole-notebook``), every code cell the *template* tags ``demo``
    (:data:`DEMO_TAG`; never an exercise cell) is made a comment (:data:`SKIPPED_DEMO`) that
    keeps its place, so cells are numbered as in the lab; the submission's own tags are never
    read for this.
    Used in: ``cnnlab grade``.
    """
    answers = _answers(submission)
    wanted = {ex.id for ex in exercises}
    labs = {ex.id.split(".", 1)[0] for ex in exercises}
    if len(labs) != 1:
        raise ValueError(f"the exercises of one lab are graded at once, not of {sorted(labs)}")
    exporter = f"_cnnlab_export_{secrets.token_hex(8)}"
    nb = nbformat.v4.new_notebook(metadata=template.metadata)
    nb.cells.append(_exporter_cell(labs.pop(), exporter, seeds, watched))
    positions, missing = {}, set()
    for cell in template.cells:
        cell = nbformat.from_dict(json.loads(json.dumps(cell)))
        ex_id = exercise_id(cell)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            if ex_id is None and _is_self_check(cell.source):
                cell.source = SKIPPED_CHECK
            elif ex_id is None and not whole_notebook and is_demo(cell):
                cell.source = SKIPPED_DEMO
        nb.cells.append(cell)
        if ex_id in wanted:
            if ex_id in answers:
                cell.source = answers[ex_id]
            else:
                missing.add(ex_id)
            positions[ex_id] = (len(nb.cells) - 1, len(nb.cells))
            nb.cells.append(_export_cell(ex_id, exporter, secrets.token_hex(16)))
    absent = wanted - set(positions)
    if absent:
        raise ValueError(f"the instructor's notebook has no cell tagged for {sorted(absent)}")
    return nb, positions, missing


def read_notebook(path, limits: Limits = Limits()):
    """A submitted notebook, read only if it is a plain file under ``limits.notebook_bytes`` that
    nests at most ``limits.json_depth`` deep.  Raises :class:`UntrustedInputError`."""
    raw = read_capped(path, limits.notebook_bytes, "the notebook", "--max-notebook-mb")
    check_json_depth(raw, limits.json_depth, "the notebook")
    try:
        notebook = nbformat.reads(raw.decode("utf-8"), as_version=4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds on odd notebooks
        raise UntrustedInputError(f"nbformat cannot read it ({type(exc).__name__}: "
                                  f"{str(exc)[:200]})") from None
    if not isinstance(notebook, Mapping):
        raise UntrustedInputError("the notebook is not a JSON object")
    if not isinstance(notebook.get("cells"), list):
        raise UntrustedInputError("it has no list of cells")
    return notebook


def syntax_error_lines(notebook, positions, skip=()) -> dict[str, int]:
    """``{exercise id: line}`` of the exercise cells that are not valid Python, for feedback
    when the kernel's traceback gives no line."""
    lines = {}
    for ex_id, (cell, _) in positions.items():
        if ex_id in skip:
            continue
        try:
            compile(notebook.cells[cell].source, f"your cell for {ex_id}", "exec")
        except SyntaxError as exc:
            if exc.lineno:
                lines[ex_id] = exc.lineno
        except (ValueError, RecursionError, MemoryError):
            pass
    return lines


def _failure(status: str, message: str) -> dict:
    return {"ok": False, "status": status, "message": message[:500]}


def prepare_job(job: dict) -> dict:
    """Read, prepare and flag one submission (in the worker); write ``submission.ipynb``.

    ``job`` holds plain data: ``notebook`` (the grader's copy of the submission), ``template``
    (the instructor's lab), ``exercise_ids``, ``forbidden`` (exercise id -> cnnlab names),
    ``workdir``, the ``limits`` caps and ``whole_notebook`` (run the template's ``demo`` cells).
    Returns ``{"ok": True, "positions", "missing", "flags", "syntax_lines", "n_cells"}`` or
    ``{"ok": False, "status": "unreadable"|"error", "message"}``; with ``answers_only`` set,
    ``{"ok": True, "answers": {exercise id: cell source}}`` (what the similarity report reads).
    """
    limits = Limits(**job["limits"])
    try:
        submission = read_notebook(job["notebook"], limits)
    except UntrustedInputError as exc:
        return _failure("unreadable", f"unreadable notebook: {exc}")
    if job.get("answers_only"):  # for the similarity report: the exercise cells, nothing run
        answers = _answers(submission)
        return {"ok": True, "answers": {ex_id: answers[ex_id] for ex_id in job["exercise_ids"]
                                        if ex_id in answers}}
    exercises = [_Exercise(ex_id) for ex_id in job["exercise_ids"]]
    template = nbformat.from_dict(job["template"])
    nb, positions, missing = prepare_submission(template, submission, exercises,
                                                job.get("seeds"), job.get("watched"),
                                                bool(job.get("whole_notebook")))
    try:
        flags = submission_flags(nb, positions, exercises, job["forbidden"], missing)
    except Exception as exc:  # noqa: BLE001 - a flagging bug must not lose a grade
        flags = {ex_id: [f"the grader could not read this cell ({type(exc).__name__})"]
                 for ex_id in positions if ex_id not in missing}
    nbformat.write(nb, Path(job["workdir"]) / "submission.ipynb")
    return {"ok": True, "positions": positions, "missing": sorted(missing), "flags": flags,
            "syntax_lines": syntax_error_lines(nb, positions, missing), "n_cells": len(nb.cells)}


def _limit_memory(extra_bytes: int) -> None:
    """Cap this process's address space at what it has now plus ``extra_bytes``."""
    try:
        import resource

        with open("/proc/self/status") as status:
            vm = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
        limit = vm + extra_bytes
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, OSError, ValueError, StopIteration):
        pass  # no /proc or no rlimits here: the deadline still holds


def _worker_main(job: dict, result_path: str) -> None:
    """The worker's body: :func:`prepare_job` with every failure turned into a result."""
    _limit_memory(PARSE_MEMORY_BYTES)
    try:
        result = prepare_job(job)
    except MemoryError:
        result = _failure("error", "the grader ran out of memory reading this notebook")
    except RecursionError:
        result = _failure("error", "the grader could not read this notebook: nested too deeply")
    except Exception as exc:  # noqa: BLE001 - becomes this submission's error row
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" ({Path(frames[-1].filename).name}, line {frames[-1].lineno})" if frames else ""
        result = _failure("error", f"the grader failed while preparing this notebook: "
                                   f"{type(exc).__name__}: {exc}{where}")
    tmp = Path(result_path + ".tmp")
    tmp.write_text(json.dumps(result), encoding="utf-8")
    os.replace(tmp, result_path)


# --------------------------------------------------------------------------------------------
# The parse server: one helper process per batch that forks a worker per submission


def _reply(message: dict) -> None:
    os.write(1, (json.dumps(message) + "\n").encode())


def _start_worker(request: dict) -> int:
    """Fork a worker for one request; the worker runs :func:`_worker_main` and exits."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:  # the worker: no signal plumbing of the server, no access to its reply pipe
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1):
            os.dup2(devnull, fd)
        job = load_json_capped(request["job"], 64 * 2**20, 100, "the job")
        _worker_main(job, request["result"])
        code = 0
    finally:
        os._exit(code)


def _preload() -> None:
    """What every worker needs, done once in the server: the index of cnnlab's modules,
    nbformat's validator (compiled on first use) and IPython's input transformer (0.5 s to
    import)."""
    index_cnnlab()
    nbformat.reads(nbformat.writes(nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("1")])), as_version=4)
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        TransformerManager().transform_cell("%time 1\n")
    except Exception:  # noqa: BLE001 - integrity then reads cells as plain Python
        pass


def serve() -> None:
    """The parse server's loop (``python -m cnnlab.grading.prepare``): read one request per
    line on stdin (``{"id", "job", "result", "timeout"}``), fork a worker for each, kill it at
    its deadline, and answer ``{"id", "timed_out", "status"}`` on stdout when it has ended.
    Single-threaded, so forking is safe; it exits, killing its workers, when stdin closes."""
    _preload()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a finished worker wakes select()
    children = {}  # pid -> [request id, deadline, timed out]
    pending = b""
    while True:
        deadlines = [deadline for _, deadline, killed in children.values() if not killed]
        wait = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        try:
            ready, _, _ = select.select([0, wake_r], [], [], wait)
        except InterruptedError:
            ready = []
        if wake_r in ready:
            os.read(wake_r, 4096)
        if 0 in ready:
            data = os.read(0, 65536)
            if not data:  # the grader has gone: so do the workers
                for pid in children:
                    os.kill(pid, signal.SIGKILL)
                return
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                pid = _start_worker(request)
                children[pid] = [request["id"], time.monotonic() + request["timeout"], False]
        now = time.monotonic()
        for pid, child in children.items():
            if not child[2] and now >= child[1]:
                os.kill(pid, signal.SIGKILL)
                child[2] = True
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if not pid:
                break
            request_id, _, timed_out = children.pop(pid)
            _reply({"id": request_id, "timed_out": timed_out, "status": status})


class ParseServer:
    """The grader's side of the parse server: :meth:`run` jobs from any thread; the server
    process starts on the first job.  Forking a worker from a server that has already imported
    nbformat and IPython costs milliseconds; starting a fresh Python with them costs seconds.
    Use :meth:`shared`, or ``with ParseServer() as server`` for a server of its own."""

    _shared = None
    _shared_lock = threading.Lock()

    def __init__(self):
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._process = None
        self._pending: dict[int, Future] = {}

    @classmethod
    def shared(cls) -> ParseServer:
        """One server for every batch this process grades (its start, about 3 s of imports,
        is paid once: ``tests/`` grade many batches); stopped when the process exits."""
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
                atexit.register(cls._shared.close)
            return cls._shared

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _start(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "cnnlab.grading.prepare"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
        self._pending = {}  # request id -> Future, for this server process only
        threading.Thread(target=self._read_replies, args=(self._process, self._pending),
                         daemon=True, name="cnnlab-parse-server").start()

    def _read_replies(self, process, pending: dict) -> None:
        for line in process.stdout:
            reply = json.loads(line)
            with self._lock:
                future = pending.pop(reply["id"], None)
            if future is not None:
                future.set_result(reply)
        with self._lock:  # the server ended: nobody waits for it in vain
            lost = list(pending.values())
            pending.clear()
        for future in lost:
            future.set_result({"lost": True})

    def run(self, job: dict, timeout: float) -> dict:
        """:func:`prepare_job` in a worker killed after ``timeout`` seconds: its result, or an
        ``error`` result when it ran out of time or died."""
        workdir = Path(job["workdir"])
        job_path, result_path = workdir / "parse-job.json", workdir / "prepared.json"
        job_path.write_text(json.dumps(job), encoding="utf-8")
        future = Future()
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._start()
            request_id = next(self._ids)
            request = {"id": request_id, "job": str(job_path), "result": str(result_path),
                       "timeout": timeout}
            try:
                self._process.stdin.write((json.dumps(request) + "\n").encode())
                self._process.stdin.flush()
                self._pending[request_id] = future
            except OSError:  # the server has just died: this job is lost, the next restarts it
                future.set_result({"lost": True})
        try:  # the server keeps the deadline; this wait only covers a server that hangs
            reply = future.result(timeout + 120)
        except FutureTimeout:
            reply = {"lost": True}
        return _worker_result(reply, result_path, timeout)

    def close(self) -> None:
        """Stop the server (it kills any worker still running)."""
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            try:
                process.stdin.close()
            except OSError:
                pass
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _worker_result(reply: dict, result_path: Path, timeout: float) -> dict:
    if reply.get("timed_out"):
        return _failure("error", f"the grader could not parse this notebook within "
                                 f"{timeout:g} s (--parse-timeout)")
    if reply.get("lost"):
        return _failure("error", "the grader's parse server stopped; grade this one again")
    try:
        result = load_json_capped(result_path, 64 * 2**20, 100, "the parsing worker's result")
    except UntrustedInputError:
        return _failure("error", f"the grader's parsing worker stopped without a result "
                                 f"(wait status {reply.get('status')})")
    if not isinstance(result, dict):
        return _failure("error", "the parsing worker's result is malformed")
    return result


def prepare_in_worker(job: dict, timeout: float, server: ParseServer | None = None) -> dict:
    """:func:`prepare_job` in a worker process of ``server`` (a server of its own when None),
    killed after ``timeout`` seconds.  Used in: ``cnnlab grade``."""
    if server is not None:
        return server.run(job, timeout)
    with ParseServer() as own:
        return own.run(job, timeout)


if __name__ == "__main__":
    serve()
