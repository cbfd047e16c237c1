"""Benchmark: what the grader's sandbox costs per submission (issue 13, Speed).

For each lab (default 02 and 09), two submissions (the solution and the untouched lab) are graded
with ``--jobs 1`` with the sandbox (bubblewrap, cgroups) and without it (``--no-sandbox``), the
two modes interleaved (with, without, with, without for ``--repeats 2``) so that the machine's
load falls on both alike; each mode keeps its best batch.  The parse server (about 3 s, once per
process) is started before anything is timed.  Prints seconds per submission side by
side and the overhead.  Target: at most 10 % (aim: under 1 s per submission); a missed target
prints ``TARGET MISSED`` and exits with status 1.

Run from the repository root, as root for the cgroup limits (Lab 09 takes one to two minutes per
submission on 2 cores)::

    .venv/bin/python benchmarks/grading.py                  # Labs 02 and 09
    .venv/bin/python benchmarks/grading.py --labs 02        # a quick look
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

ROOT = Path(__file__).resolve().parent.parent
TARGET = 0.10


def batch_seconds(lab: str, folder: Path, sandbox: bool) -> tuple[float, list]:
    """Wall seconds per submission of one batch, and its rows."""
    out = Path(tempfile.mkdtemp(prefix="bench-out-"))
    try:
        start = time.monotonic()
        rows = grade(lab, [folder], out=out, jobs=1, sandbox=sandbox, stream=io.StringIO(),
                     timeout_cell=600, timeout_notebook=1200)
        return (time.monotonic() - start) / len(rows), rows
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labs", nargs="+", default=["02", "09"])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    table, missed = [], False
    warm_up = Path(tempfile.mkdtemp(prefix="bench-warm-up-"))
    (warm_up / "cut.ipynb").write_text('{"cells": [')  # starts the parse server, runs nothing
    batch_seconds(args.labs[0], warm_up, False)
    shutil.rmtree(warm_up, ignore_errors=True)
    for lab in args.labs:
        name = LABS[lab]
        folder = Path(tempfile.mkdtemp(prefix=f"bench-subs-{lab}-"))
        shutil.copy(ROOT / "solutions" / f"{name}.ipynb", folder / "solution.ipynb")
        shutil.copy(ROOT / "labs" / f"{name}.ipynb", folder / "untouched.ipynb")
        best = {True: float("inf"), False: float("inf")}
        for _ in range(args.repeats):
            for sandbox in (True, False):
                seconds, rows = batch_seconds(lab, folder, sandbox)
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
        if ratio > TARGET:
            missed = True
    if missed:
        print(f"TARGET MISSED: the sandbox may cost at most {TARGET:.0%}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
