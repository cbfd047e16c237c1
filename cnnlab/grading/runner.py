"""Runs one prepared submission in a fresh kernel: ``python -m cnnlab.grading.runner WORKDIR``.

The grader starts this in its own process group and kills that group and the kernel's on the
deadline.  The runner records, after every cell, what happened (``progress.json``): the status,
the exception's name and value, and where in the notebook it was raised (the line in that cell,
and the cell and line of the innermost notebook frame), read from IPython's traceback with its
colour codes stripped.  It writes the kernel's pid (``kernel.pid``) so the grader can watch its
memory and kill it.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

__all__ = ["main", "traceback_frames"]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CELL_FRAME = re.compile(r"(?:Cell|Input) In ?\[(\d+)\], line (\d+)")


def traceback_frames(traceback) -> list[tuple[int, int]]:
    """``[(execution count, line), ...]``, outermost first, of the notebook frames in an
    IPython traceback (a list of strings with ANSI colour codes)."""
    text = _ANSI.sub("", "\n".join(str(part) for part in traceback or []))
    return [(int(count), int(line)) for count, line in _CELL_FRAME.findall(text)]


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
    env = {**os.environ, "CNNLAB_GRADING": "1", "CNNLAB_PROFILE": config["profile"]}
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
