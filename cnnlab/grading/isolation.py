"""Running one prepared submission in isolation and watching it from outside: the runner
process (:mod:`cnnlab.grading.runner`) in a process group of its own, the kernel in a bubblewrap
sandbox and cgroups of its own (:mod:`cnnlab.grading.sandbox`), the whole-notebook deadline and
the memory cap, and whatever the submission left killed at the end.

The lecture idea is running untrusted code: what a student's notebook does stays inside its
sandbox, and what the grader learns arrives on a pipe the kernel cannot reach.  Used in:
``cnnlab grade``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cnnlab.grading import sandbox as _sandbox
from cnnlab.grading.limits import Limits, MiB, UntrustedInputError, copy_capped

__all__ = ["RunOutcome", "run_sandboxed", "run_isolated", "keep_executed", "EXECUTED_BYTES"]

#: A file the runner copies back for the instructor (--keep-executed): never parsed by the
#: grader, so its cap only bounds the disk it takes.
EXECUTED_BYTES = 200 * MiB


def _kill_group(pid: int) -> None:
    try:
        os.killpg(os.getpgid(pid), signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and every process below it (the rlimit mode's watch over
    the submission as a whole)."""
    return _sandbox.tree_rss_bytes(pid)


@dataclass
class RunOutcome:
    """How one run ended (finished/timeout/memory), the lines the runner sent, and what the
    grader saw from outside (the kernel's pid, output dropped per cell)."""

    ended: str
    lines: list = field(default_factory=list)
    problem: str = ""  # a line over the cap, or not JSON
    truncated: dict = field(default_factory=dict)


def _read_runner(stream, outcome: RunOutcome, line_bytes: int, state: dict) -> None:
    """Read the runner's JSON lines (each at most ``line_bytes``) into ``outcome``."""
    while True:
        line = stream.readline(line_bytes + 1)
        if not line:
            return
        if len(line) > line_bytes and not line.endswith(b"\n"):
            outcome.problem = (f"the run's progress record is malformed: a line is over the "
                               f"{line_bytes / MiB:.1f} MiB cap; raise the cap with "
                               f"--max-answer-mb")
            while line and not line.endswith(b"\n"):  # skip the rest of that line
                line = stream.readline(MiB)
            continue
        outcome.lines.append(line)
        if line.startswith(b'{"kernel": '):
            try:
                state["kernel"] = int(json.loads(line)["kernel"])
            except (ValueError, KeyError, TypeError):
                pass


def run_isolated(workdir: Path, deadline: float, max_memory: int, cgroups=None,
                  line_bytes: int = 10 * MiB) -> RunOutcome:
    """Run the runner subprocess and watch it from outside: the deadline, the memory of the
    submission as a whole (its cgroup's OOM count, else the resident memory of the kernel's
    process tree), and at the end kill whatever the submission left (its cgroup, or the
    sandbox's first process: its PID namespace goes with it).  Progress arrives on the
    runner's stdout, never from a file the kernel could write."""
    process = subprocess.Popen(
        [sys.executable, "-m", "cnnlab.grading.runner", str(workdir)],
        stdout=subprocess.PIPE,
        stderr=(workdir / "runner.log").open("w"),
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    outcome, state = RunOutcome("finished"), {}
    reader = threading.Thread(target=_read_runner, daemon=True,
                              args=(process.stdout, outcome, line_bytes, state))
    reader.start()
    start, reason = time.monotonic(), ""
    while process.poll() is None:
        kernel = state.get("kernel")
        if time.monotonic() - start > deadline:
            reason = "timeout"
        elif cgroups is not None and cgroups.memory_exceeded():
            reason = "memory"
        elif cgroups is None and kernel and max_memory and _rss_bytes(kernel) > max_memory:
            reason = "memory"
        if reason:
            _end_sandbox(cgroups, kernel)
            _kill_group(process.pid)
            process.wait()
            break
        try:  # back as soon as the runner ends, or after 0.2 s to look again
            process.wait(0.2)
        except subprocess.TimeoutExpired:
            pass
    if not reason and cgroups is not None and cgroups.memory_exceeded():
        reason = "memory"  # a process of the submission was stopped at the limit
    _end_sandbox(cgroups, state.get("kernel"))  # never leave anything it started behind
    reader.join(10)
    process.stdout.close()
    outcome.ended = reason or "finished"
    return outcome


def _end_sandbox(cgroups, kernel: int | None) -> None:
    """Kill what the submission left: its cgroups' processes, else the kernel's process tree
    (the sandbox's first process: its PID namespace goes with it)."""
    if cgroups is not None:
        cgroups.kill_all()
    elif kernel:
        _sandbox.kill_tree(kernel)


def keep_executed(workdir: Path, out: Path, name: str, message: str) -> str:
    """Copy the executed notebook to ``out/executed/<name>.ipynb``; return the row's message,
    with a note when the copy was refused (the kernel could have put a link there)."""
    kept = out / "executed"
    kept.mkdir(parents=True, exist_ok=True)
    try:
        copy_capped(workdir / "executed.ipynb", kept / f"{name}.ipynb", EXECUTED_BYTES,
                    "the executed notebook")
    except UntrustedInputError as exc:
        return (f"{message} " if message else "") + f"(not kept: {exc})"
    return message


def run_sandboxed(workdir: Path, options: dict, limits: Limits) -> RunOutcome:
    """Run one prepared submission: its kernel in a bubblewrap sandbox (unless
    ``options["sandbox"]`` is off) and in cgroups of its own where the machine offers them."""
    # the kernel's working directory: a private copy of the lab's folder (notebooks left out),
    # never the kit's own folder beside solutions/ (in the sandbox it is seen as /tmp/lab)
    private = workdir / "lab"
    shutil.copytree(options["cwd"], private, symlinks=True,
                    ignore=lambda folder, names: [n for n in names if n.endswith(".ipynb")])
    config = {"cell_timeout": options["timeout_cell"], "profile": options["profile"],
              "cwd": str(private), "keep_executed": bool(options.get("keep_executed")),
              "max_output_bytes": options["max_output_bytes"]}
    cgroups, uid = None, None
    try:
        if options["limits_mode"] == _sandbox.LIMITS_CGROUP:
            cgroups = _sandbox.Cgroups(options["max_memory"], options["max_processes"]).create()
            config["cgroup_procs"] = cgroups.procs
        else:
            config["rlimit_as"] = options["max_memory"]
        if options["sandbox"]:
            uid = options["uids"].acquire()
            config["sandbox"] = _sandbox.plan_sandbox(
                workdir, cwd=Path(options["cwd"]), kit=Path(options["kit"]),
                solutions=Path(options["solutions"]), hidden=options["hidden"], uid=uid,
                profile=options["profile"], bwrap=options["bwrap"],
                cgroup_procs=config.get("cgroup_procs", ()),
                rlimit_as=config.get("rlimit_as", 0),
                rlimit_nproc=options["max_processes"] if cgroups is None else 0)
        warm = options.get("warm")
        if warm is not None and cgroups is not None and "sandbox" in config:
            config["warm_socket"] = warm.socket_path()  # None: the server could not start
        (workdir / "config.json").write_text(json.dumps(config))
        return run_isolated(workdir, options["timeout_notebook"], options["max_memory"],
                             cgroups, limits.record_bytes)
    finally:
        if cgroups is not None:
            cgroups.remove()
        if uid is not None:
            options["uids"].release(uid)
