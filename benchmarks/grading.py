"""Benchmark: what grading costs per submission, two ways side by side (issue 13, issue 16 §4).

``--compare demo`` (the default, issue 16 §4): every lab (default all eleven) is graded with
``--jobs 2`` in the whole-notebook mode (``--whole-notebook``: every cell, as a student runs the
lab) and in the default mode (the cells the lab tags ``demo`` skipped), two submissions per lab
(the solution and the untouched lab), the two modes interleaved (which one goes first alternates
from lab to lab, and with ``--repeats 2`` whole, skipped, whole, skipped) so that the machine's
load falls on both alike; each mode keeps its best batch.  Both modes must give every submission
the same points and case statuses.  Prints, per lab, the seconds per submission of each mode and
their ratio, then the means over the labs.  Target: the skipped mode's mean at most a third of
the whole-notebook mean.

``--compare kernels``: each lab graded in the default mode with warm kernels (forked, TensorFlow
already imported, into each sandbox: :mod:`cnnlab.grading.warm_kernels`) and with cold ones
(``--cold-kernels``), side by side; both must score alike.  No target: it says what the
warm-kernel server saves.

``--compare sandbox`` (issue 13), with cold kernels (the sandbox's cost alone): each lab
(default 02 and 09) graded with ``--jobs 1`` with the sandbox (bubblewrap, cgroups) and without
it (``--no-sandbox``).  Target: at most 10 % more (aim: under 1 s per submission).

In all, the parse server (about 3 s, once per process), the warm-kernel server (about 6 s, once
per process) and each lab's watched names (once per process and lab) are set up before anything
is timed, and
a missed target prints ``TARGET MISSED`` and exits with status 1.  Run from the repository root,
as root for the cgroup limits::

    .venv/bin/python benchmarks/grading.py                       # all labs, demo cells: ~15 min
    .venv/bin/python benchmarks/grading.py --labs 02 07          # a quick look
    .venv/bin/python benchmarks/grading.py --compare sandbox     # Labs 02 and 09, sandbox cost
    .venv/bin/python benchmarks/grading.py --compare kernels     # warm against cold kernels
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cnnlab.exercise import LABS  # noqa: E402
from cnnlab.grading import grade  # noqa: E402
from cnnlab.grading.warm_kernels import WarmKernels  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SANDBOX_TARGET = 0.10  # at most 10 % more with the sandbox
DEMO_TARGET = 1 / 3  # the skipped mode's mean at most a third of the whole notebook's


def batch_seconds(lab: str, folder: Path, jobs: int = 1, **options) -> tuple[float, list]:
    """Wall seconds per submission of one batch, and its rows."""
    out = Path(tempfile.mkdtemp(prefix="bench-out-"))
    try:
        start = time.monotonic()
        rows = grade(lab, [folder], out=out, jobs=jobs, stream=io.StringIO(),
                     timeout_cell=600, timeout_notebook=1200, **options)
        return (time.monotonic() - start) / len(rows), rows
    finally:
        shutil.rmtree(out, ignore_errors=True)


def submissions(lab: str) -> Path:
    """A new folder with the lab's solution and untouched lab."""
    name = LABS[lab]
    folder = Path(tempfile.mkdtemp(prefix=f"bench-subs-{lab}-"))
    shutil.copy(ROOT / "solutions" / f"{name}.ipynb", folder / "solution.ipynb")
    shutil.copy(ROOT / "labs" / f"{name}.ipynb", folder / "untouched.ipynb")
    return folder


def scored(rows) -> dict:
    """``{submission: {exercise: (points, status, case statuses)}}``: what both modes must
    agree on."""
    return {r.submission: {e.id: (e.points, e.status, tuple((c[0], c[2]) for c in e.cases))
                           for e in r.exercises} for r in rows}


def warm_up(labs) -> None:
    """What the grader does once per process, before anything is timed: start the parse server
    and the warm-kernel server, and read each lab's exercises (resolving the names the grader
    watches imports their modules: TensorFlow, the first time).  Cut notebooks: nothing runs."""
    folder = Path(tempfile.mkdtemp(prefix="bench-warm-up-"))
    (folder / "cut.ipynb").write_text('{"cells": [')
    batch_seconds(labs[0], folder, sandbox=False)
    (folder / "cut-too.ipynb").write_text('{"cells": [')
    for lab in labs:  # a sandboxed batch of two starts the warm-kernel server
        batch_seconds(lab, folder)
    for server in WarmKernels.servers():
        server.socket_path()
    shutil.rmtree(folder, ignore_errors=True)


def compare_sandbox(labs, repeats: int) -> int:
    table, missed = [], False
    for lab in labs:
        folder = submissions(lab)
        best = {True: float("inf"), False: float("inf")}
        for _ in range(repeats):
            for sandbox in (True, False):
                seconds, rows = batch_seconds(lab, folder, sandbox=sandbox, warm_kernels=False)
                statuses = {r.status for r in rows}
                if statuses != {"graded"}:
                    print(f"lab {lab}, sandbox {sandbox}: rows {statuses}, not all graded")
                    missed = True
                best[sandbox] = min(best[sandbox], seconds)
                print(f"  lab {lab} {'sandbox' if sandbox else 'no sandbox'}: "
                      f"{seconds:.1f} s per submission", flush=True)
        shutil.rmtree(folder, ignore_errors=True)
        extra = best[True] - best[False]
        table.append((lab, best[False], best[True], extra, extra / best[False]))
    print(f"\n{'lab':<5}{'no sandbox (s)':>16}{'sandbox (s)':>14}{'extra (s)':>11}"
          f"{'overhead':>10}")
    for lab, without, with_, extra, ratio in table:
        print(f"{lab:<5}{without:>16.1f}{with_:>14.1f}{extra:>11.2f}{ratio:>10.1%}")
        if ratio > SANDBOX_TARGET:
            missed = True
    if missed:
        print(f"TARGET MISSED: the sandbox may cost at most {SANDBOX_TARGET:.0%}")
        return 1
    return 0


def side_by_side(labs, repeats: int, jobs: int, option: str, names: dict) -> tuple[list, bool]:
    """``([(lab, best s/sub with option True, with False), ...], missed)``: each lab graded with
    ``grade(..., option=True)`` and ``False``, interleaved (which goes first alternates from lab
    to lab); ``missed`` when a batch was not all graded or the two scored differently.
    ``names``: how to print each side."""
    table, missed = [], False
    for n, lab in enumerate(labs):
        folder = submissions(lab)
        best, results = {True: float("inf"), False: float("inf")}, {}
        modes = (True, False) if n % 2 == 0 else (False, True)
        for _ in range(repeats):
            for mode in modes:
                seconds, rows = batch_seconds(lab, folder, jobs=jobs, **{option: mode})
                statuses = {r.status for r in rows}
                if statuses != {"graded"}:
                    print(f"lab {lab}, {names[mode]}: rows {statuses}, not all graded")
                    missed = True
                results.setdefault(mode, scored(rows))
                best[mode] = min(best[mode], seconds)
                print(f"  lab {lab} {names[mode]}: {seconds:.1f} s per submission", flush=True)
        if results[True] != results[False]:
            print(f"lab {lab}: {names[True]} and {names[False]} score differently: {results}")
            missed = True
        shutil.rmtree(folder, ignore_errors=True)
        table.append((lab, best[True], best[False]))
    return table, missed


def compare_kernels(labs, repeats: int, jobs: int) -> int:
    """Warm kernels against cold ones, demo cells skipped: what the warm-kernel server saves."""
    table, missed = side_by_side(labs, repeats, jobs, "warm_kernels",
                                 {True: "warm", False: "cold"})
    print(f"\n{'lab':<6}{'cold (s/sub)':>14}{'warm (s/sub)':>14}{'ratio':>8}")
    for lab, warm, cold in table:
        print(f"{lab:<6}{cold:>14.1f}{warm:>14.1f}{warm / cold:>8.2f}")
    warm = sum(row[1] for row in table) / len(table)
    cold = sum(row[2] for row in table) / len(table)
    print(f"{'mean':<6}{cold:>14.1f}{warm:>14.1f}{warm / cold:>8.2f}")
    if missed:
        print("TARGET MISSED: warm and cold kernels must give the same scores")
        return 1
    return 0


def compare_demo(labs, repeats: int, jobs: int) -> int:
    table, missed = side_by_side(labs, repeats, jobs, "whole_notebook",
                                 {True: "whole notebook", False: "demo skipped"})
    print(f"\n{'lab':<6}{'whole (s/sub)':>15}{'skipped (s/sub)':>17}{'ratio':>8}")
    for lab, whole, skipped in table:
        print(f"{lab:<6}{whole:>15.1f}{skipped:>17.1f}{skipped / whole:>8.2f}")
    whole = sum(row[1] for row in table) / len(table)
    skipped = sum(row[2] for row in table) / len(table)
    print(f"{'mean':<6}{whole:>15.1f}{skipped:>17.1f}{skipped / whole:>8.2f}"
          f"   (target <= {DEMO_TARGET:.2f})")
    if skipped > DEMO_TARGET * whole:
        missed = True
    if missed:
        print("TARGET MISSED: skipping the demo cells must cut the mean seconds per submission "
              "to at most a third, with the same scores")
        return 1
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", choices=("demo", "sandbox", "kernels"), default="demo",
                        help="demo: whole notebook against demo cells skipped (default); "
                             "sandbox: with and without the sandbox (cold kernels); "
                             "kernels: warm against cold kernels (demo cells skipped)")
    parser.add_argument("--labs", nargs="+", help="default: every lab (demo), 02 09 (sandbox)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2, help="demo: submissions at once (2)")
    args = parser.parse_args(argv)
    labs = args.labs or (["02", "09"] if args.compare == "sandbox" else list(LABS))
    unknown = [lab for lab in labs if lab not in LABS]
    if unknown:
        parser.error(f"unknown lab(s) {', '.join(unknown)}; labs are {', '.join(LABS)}")
    warm_up(labs)
    if args.compare == "sandbox":
        return compare_sandbox(labs, args.repeats)
    if args.compare == "kernels":
        return compare_kernels(labs, args.repeats, args.jobs)
    return compare_demo(labs, args.repeats, args.jobs)


if __name__ == "__main__":
    sys.exit(main())
