"""Runs one prepared submission in a fresh kernel: ``python -m cnnlab.grading.runner WORKDIR``.

The grader starts this in its own process group and kills that group and the submission's
sandbox on the deadline.  The runner (trusted) stays outside the sandbox; it starts the kernel
through :func:`cnnlab.grading.sandbox.kernel_command` (bubblewrap, the cgroups, a minimal
environment) and talks to it over ZeroMQ on unix sockets (``transport="ipc"``: the sandbox has
no network).  It records, after every cell, what happened: the status, the exception's name and
value, and where in the notebook it was raised (the line in that cell, and the cell and line of
the innermost notebook frame), read from IPython's traceback with its colour codes stripped;
for an export cell, that cell's probe records, taken from its own outputs when it ends
(:func:`collect_records`) and dropped from the executed notebook.
Those records travel to the grader as JSON lines on the runner's standard output, a pipe the
kernel cannot reach (``{"cell": index, "entry": {...}}`` per cell, ``{"kernel": pid}`` once,
``{"truncated": {cell: bytes}}`` for output over the cap, and last ``{"cells": {...}, "end":
...}``).  Each cell keeps at most ``max_output_bytes`` of output; the rest is dropped with a note.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

__all__ = ["main", "traceback_frames", "collect_records", "truncation_note", "MIME",
           "RECORDS_BYTES"]

#: The MIME type of a probe record (:data:`cnnlab.grading.export.MIME`; not imported from
#: there, so the runner never imports what the kernel side defines).
MIME = "application/vnd.cnnlab.probe+json"
#: What one export cell's records may take in all (serialised); records past it are dropped and
#: the judge finds those cases without a result.
RECORDS_BYTES = 8 * 2**20

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CELL_FRAME = re.compile(r"(?:Cell|Input) In ?\[(\d+)\], line (\d+)")


def traceback_frames(traceback) -> list[tuple[int, int]]:
    """``[(execution count, line), ...]``, outermost first, of the notebook frames in an
    IPython traceback (a list of strings with ANSI colour codes)."""
    text = _ANSI.sub("", "\n".join(str(part) for part in traceback or []))
    return [(int(count), int(line)) for count, line in _CELL_FRAME.findall(text)]


def collect_records(outputs, token: str, exercise: str) -> tuple[list[dict], list]:
    """``(records, outputs kept)``: the probe records among an export cell's ``outputs`` that
    carry that cell's ``token`` and ``exercise`` (without those two keys, as plain dicts, up to
    :data:`RECORDS_BYTES`), and the outputs without them (for the executed notebook).  Anything
    else (another token or exercise, a record printed as text, an ``execute_result``) is not a
    record; it stays in the outputs as the cell showed it."""
    records, kept, size = [], [], 0
    for output in outputs or []:
        data = output.get("data") if output.get("output_type") == "display_data" else None
        record = data.get(MIME) if isinstance(data, dict) else None
        if not (isinstance(record, dict) and record.get("token") == token
                and record.get("exercise") == exercise):
            kept.append(output)
            continue
        plain = json.loads(json.dumps({k: v for k, v in record.items()
                                       if k not in ("token", "exercise")}))
        size += len(json.dumps(plain))
        if size <= RECORDS_BYTES:
            records.append(plain)
    return records, kept


def truncation_note(dropped: int) -> str:
    return f"[output truncated by the grader: {dropped} bytes dropped]"


def _output_bytes(msg) -> int:
    content = msg.get("content") or {}
    if msg.get("msg_type") == "stream":
        return len(str(content.get("text", "")).encode("utf-8", "replace"))
    size = 0
    for value in (content.get("data") or {}).values():
        size += len(value) if isinstance(value, (str, bytes)) else len(json.dumps(value))
    return size


def _capped_client_class():
    from nbclient import NotebookClient

    class CappedClient(NotebookClient):
        """A client that keeps at most ``max_output_bytes`` of stream and display output per
        cell (nbgrader's LimitOutput, counted in bytes): the runner's memory stays bounded
        whatever a cell prints."""

        max_output_bytes = 1000 * 1024
        report = staticmethod(lambda data: None)

        def output(self, outs, msg, display_id, cell_index):
            if msg.get("msg_type") not in ("stream", "display_data", "execute_result"):
                return super().output(outs, msg, display_id, cell_index)
            used, dropped = getattr(self, "_output_used", {}), getattr(self, "_dropped", {})
            self._output_used, self._dropped = used, dropped
            size = _output_bytes(msg)
            cap = self.max_output_bytes
            if (self.nb.cells[cell_index].get("metadata", {}).get("cnnlab") or {}).get("token"):
                cap = max(cap, RECORDS_BYTES)  # an export cell: its probe records must fit
            room = cap - used.get(cell_index, 0)
            if size <= room:
                used[cell_index] = used.get(cell_index, 0) + size
                return super().output(outs, msg, display_id, cell_index)
            used[cell_index] = cap
            if msg["msg_type"] == "stream" and room > 0:  # keep what fits
                text = msg["content"]["text"].encode("utf-8", "replace")[:room]
                msg = {**msg, "content": {**msg["content"],
                                          "text": text.decode("utf-8", "ignore")}}
                dropped[cell_index] = dropped.get(cell_index, 0) + size - room
                return super().output(outs, msg, display_id, cell_index)
            dropped[cell_index] = dropped.get(cell_index, 0) + size
            return None

        async def async_execute_cell(self, cell, cell_index, *args, **kwargs):
            try:
                return await super().async_execute_cell(cell, cell_index, *args, **kwargs)
            finally:
                dropped = getattr(self, "_dropped", {}).pop(cell_index, 0)
                if dropped:
                    import nbformat

                    cell.outputs.append(nbformat.v4.new_output(
                        "stream", name="stderr", text=truncation_note(dropped) + "\n"))
                    self.report({"truncated": {str(cell_index): dropped}})

    return CappedClient


def _kernel_manager(config: dict, workdir: Path, report=lambda data: None):
    """A kernel manager that starts the kernel through the sandbox's launcher, on unix
    sockets in the submission's socket folder."""
    from jupyter_client.manager import AsyncKernelManager

    from cnnlab.grading.sandbox import kernel_command

    plan = config.get("sandbox")
    sockets = Path(plan["sockets"]) if plan else workdir / "sockets"
    sockets.mkdir(exist_ok=True)

    class SandboxKernelManager(AsyncKernelManager):
        def format_kernel_cmd(self, extra_arguments=None):
            argv = [sys.executable, "-m", "ipykernel_launcher", "-f", self.connection_file]
            return kernel_command(plan, argv, cgroup_procs=config.get("cgroup_procs", []),
                                  rlimit_as=config.get("rlimit_as", 0))

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            warm = config.get("warm_socket")
            if not (plan and warm):
                return await super()._async_launch_kernel(kernel_cmd, **kw)
            from cnnlab.grading import warm_kernels

            stub = kernel_command(plan, warm_kernels.stub_argv(),
                                  cgroup_procs=config.get("cgroup_procs", []))
            await super()._async_launch_kernel(stub, **kw)
            process = self.provisioner.process
            try:
                os.chown(self.connection_file, plan["uid"], plan["uid"])
                warm_kernels.request_kernel(
                    warm, process.pid, argv=kernel_cmd[kernel_cmd.index("-f"):],
                    uid=plan["uid"], cwd=plan["cwd"], env=plan["env"],
                    log_fd=kw["stdout"].fileno(), cgroup_procs=config.get("cgroup_procs", []),
                    rlimit_as=plan.get("rlimit_as", 0), rlimit_nproc=plan.get("rlimit_nproc", 0))
            except warm_kernels.WarmKernelError as exc:  # start it cold, as without a server
                process.kill()
                process.wait()
                print(f"cnnlab: warm kernel refused ({exc}); starting it cold", file=kw["stdout"],
                      flush=True)
                report({"cold": str(exc)[:300]})
                return await super()._async_launch_kernel(kernel_cmd, **kw)

    km = SandboxKernelManager(kernel_name="python3", transport="ipc", ip=str(sockets / "kernel"),
                              connection_file=str(sockets / "connection.json"))
    if plan:  # a signal would reach bwrap, outside: ask the kernel to interrupt itself
        km.kernel_spec.interrupt_mode = "message"
    return km


def main(argv=None) -> int:
    import nbformat
    from nbclient.exceptions import DeadKernelError

    from cnnlab.grading.sandbox import kernel_env

    workdir = Path((argv or sys.argv[1:])[0])
    config = json.loads((workdir / "config.json").read_text())
    nb = nbformat.read(workdir / "submission.ipynb", as_version=4)
    progress = {"cells": {}, "end": "running"}
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")  # the grader's pipe: ours alone
    os.dup2(2, 1)  # anything else printed goes to the log

    def report(data) -> None:
        channel.write(json.dumps(data) + "\n")
        channel.flush()

    def on_start(notebook=None, **_):
        process = getattr(getattr(client.km, "provisioner", None), "process", None)
        if process is not None:  # the sandbox's first process, outside its PID namespace
            report({"kernel": process.pid})

    counts = {}  # IPython execution count -> cell index

    def on_executed(cell, cell_index, execute_reply=None, **_):
        content = (execute_reply or {}).get("content", {})
        count = content.get("execution_count")
        if isinstance(count, int):
            counts[count] = cell_index
        entry = {
            "status": content.get("status", "ok"),
            "ename": content.get("ename", ""),
            "evalue": str(content.get("evalue", ""))[:300],
        }
        if entry["status"] == "error":
            frames = traceback_frames(content.get("traceback"))
            mine = [line for c, line in frames if counts.get(c) == cell_index]
            entry["line"] = mine[-1] if mine else None
            if frames:
                entry["innermost"] = [counts.get(frames[-1][0]), frames[-1][1]]
        tagged = cell.get("metadata", {}).get("cnnlab") or {}
        if tagged.get("token"):  # an export cell: its own probe records, taken as it ends
            entry["records"], cell.outputs = collect_records(
                cell.get("outputs"), tagged["token"], tagged.get("exercise"))
        progress["cells"][str(cell_index)] = entry
        report({"cell": str(cell_index), "entry": entry})

    client = _capped_client_class()(
        nb,
        km=_kernel_manager(config, workdir, report),
        kernel_name="python3",
        timeout=config["cell_timeout"],
        allow_errors=True,
        interrupt_on_timeout=True,
        error_on_timeout={
            "ename": "CellTimeoutError",
            "evalue": f"cell ran longer than {config['cell_timeout']} s",
            "traceback": [],
        },
        record_timing=False,
        shutdown_kernel="immediate",  # its outputs are in; the grader ends the sandbox anyway
        resources={"metadata": {"path": config["cwd"]}},
    )
    client.on_notebook_start = on_start
    client.on_cell_executed = on_executed
    client.max_output_bytes = int(config.get("max_output_bytes", client.max_output_bytes))
    client.report = report
    plan = config.get("sandbox")
    env = plan["env"] if plan else kernel_env(config["profile"], os.environ.get("HOME", "/"))
    try:
        with (workdir / "kernel.log").open("w") as log:
            client.execute(env=env, stdout=log, stderr=log)
        progress["end"] = "finished"
    except DeadKernelError:
        progress["end"] = "kernel_died"
    except Exception as exc:  # noqa: BLE001 - report, never crash the batch
        progress["end"] = f"runner_error: {type(exc).__name__}: {exc}"[:500]
    if config.get("keep_executed"):  # the notebook with its outputs, for the instructor
        nbformat.write(nb, workdir / "executed.ipynb")
    report(progress)
    return 0


def _skip_format_checkers() -> None:
    """Keep jsonschema (imported by nbformat) from importing ``rfc3987_syntax``, which builds a
    Lark grammar for the ``iri`` format checks at import: about 1 s of CPU per submission on a
    quiet machine, for checks nbformat never makes (it validates notebooks without a format
    checker).  Only this process, which starts fresh for each submission, is affected."""
    sys.modules.setdefault("rfc3987_syntax", None)  # `import` then raises ImportError


if __name__ == "__main__":
    _skip_format_checkers()
    sys.exit(main())
