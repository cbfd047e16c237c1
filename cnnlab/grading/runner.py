"""Runs one prepared submission in a fresh kernel: ``python -m cnnlab.grading.runner WORKDIR``.

The grader starts this in its own process group and kills that group and the kernel's on the
deadline.  The runner records, after every cell, what happened (``progress.json``): the status,
the exception's name and value, and where in the notebook it was raised (the line in that cell,
and the cell and line of the innermost notebook frame), read from IPython's traceback with its
colour codes stripped.  For an export cell it also records that cell's probe records, taken
from the cell's own outputs when it ends (:func:`collect_records`), and drops them from the
executed notebook.  It writes the kernel's pid (``kernel.pid``) so the grader can watch its
memory and kill it.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

__all__ = ["main", "traceback_frames", "collect_records", "MIME", "RECORDS_BYTES"]

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


def _write_json(path: Path, data) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


def main(argv=None) -> int:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    workdir = Path((argv or sys.argv[1:])[0])
    config = json.loads((workdir / "config.json").read_text())
    nb = nbformat.read(workdir / "submission.ipynb", as_version=4)
    progress = {"cells": {}, "end": "running"}
    progress_path = workdir / "progress.json"

    def on_start(notebook=None, **_):
        process = getattr(getattr(client.km, "provisioner", None), "process", None)
        if process is not None:
            (workdir / "kernel.pid").write_text(str(process.pid))

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
        _write_json(progress_path, progress)

    client = NotebookClient(
        nb,
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
        resources={"metadata": {"path": config["cwd"]}},
    )
    client.on_notebook_start = on_start
    client.on_cell_executed = on_executed
    env = {**os.environ, "CNNLAB_PROFILE": config["profile"]}
    env.pop("CNNLAB_GRADING", None)  # nothing in the kernel says it is being graded
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
    _write_json(progress_path, progress)
    return 0


if __name__ == "__main__":
    sys.exit(main())
