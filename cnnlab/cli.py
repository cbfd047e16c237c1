"""The ``cnnlab`` command: build-labs, run, grade (merge, export), export, release, fetch.

    cnnlab build-labs [--check]             labs/ from solutions/ (check: fail if out of date)
    cnnlab run solutions/ [--profile smoke] execute notebooks, stop at the first error
    cnnlab grade --lab 01 PATH... --out results/ [--jobs N] [--timeout-cell S]
                 [--timeout-notebook S] [--max-memory GIB] [--max-notebook-mb MB]
                 [--max-answer-mb MB] [--max-json-depth N] [--parse-timeout S] [--resume]
                 [--no-sandbox] [--max-processes N] [--max-output-kb KB] [--sandbox-uid U]
                 [--secret FILE] [--shard I/N] [--shards N] [--whole-notebook]
                 [--cold-kernels]
                                            exit 0 when every row is graded, 1 if not
    cnnlab grade merge OUT/ SHARD_DIR...    one scores.csv/json and feedback/ from the shards
    cnnlab grade export --format canvas|moodle --roster R.csv RESULTS... --out F.csv
                                            the grade file an LMS imports
    cnnlab export gradescope --lab NN OUT.zip [--secret FILE]
                                            a Gradescope autograder for one lab
    cnnlab release OUT/ [--title T]         what students receive: no solutions, hidden
                                            cases, points or grader
    cnnlab fetch mnist cifar10 ...          pre-stage datasets on a connected machine
    cnnlab fetch weights resnet50 ...       pre-stage keras.applications ImageNet weights
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["fetch_datasets_main", "fetch_weights_main", "main"]


def _build_labs(args) -> int:
    from cnnlab.notebooks import build_labs, find_kit_root

    root = find_kit_root()
    solutions = Path(args.solutions) if args.solutions else root / "solutions"
    labs = Path(args.labs) if args.labs else root / "labs"
    try:
        changed = build_labs(solutions, labs, check=args.check)
    except (ValueError, FileNotFoundError) as exc:
        print(f"cnnlab build-labs: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if changed:
            print("labs/ is out of date with solutions/ for: " + ", ".join(changed)
                  + "\nrun 'cnnlab build-labs' and commit the result", file=sys.stderr)
            return 1
        print("labs/ is up to date")
        return 0
    print(f"wrote {len(changed)} lab(s)" + (": " + ", ".join(changed) if changed else ""))
    return 0


def _run(args) -> int:
    from cnnlab.notebooks import run_notebooks

    paths = []
    for item in args.paths:
        p = Path(item)
        paths += sorted(p.glob("[0-9][0-9]_*.ipynb")) if p.is_dir() else [p]
    if not paths:
        print("cnnlab run: no notebooks found in " + " ".join(args.paths), file=sys.stderr)
        return 2
    results = run_notebooks(paths, profile=args.profile, timeout=args.timeout, output=args.output)
    return 0 if all(r.status == "ok" for r in results) and len(results) == len(paths) else 1


def _grade(args) -> int:
    """0 when every row is ``graded``, 1 when any is not, 2 for a usage error."""
    try:
        from cnnlab.grading import grade
        from cnnlab.grading.hidden import read_secret
    except ModuleNotFoundError:
        print("cnnlab grade: this is the students' release of cnnlab, without the grader; "
              "grade from the instructor's repository", file=sys.stderr)
        return 2
    try:
        secret = read_secret(args.secret)
        args.out, only = _shard(args, secret)
        results = grade(
            args.lab, args.paths, out=args.out, jobs=args.jobs, timeout_cell=args.timeout_cell,
            timeout_notebook=args.timeout_notebook, max_memory_gb=args.max_memory,
            profile=args.profile, solutions=args.solutions, keep_executed=args.keep_executed,
            max_notebook_mb=args.max_notebook_mb, max_answer_mb=args.max_answer_mb,
            max_json_depth=args.max_json_depth, parse_timeout=args.parse_timeout,
            resume=args.resume, sandbox=not args.no_sandbox, only=only,
            max_processes=args.max_processes, max_output_kb=args.max_output_kb,
            sandbox_uid=args.sandbox_uid, secret=secret, whole_notebook=args.whole_notebook,
            warm_kernels=not args.cold_kernels)
    except (ValueError, FileNotFoundError) as exc:
        print(f"cnnlab grade: {exc}", file=sys.stderr)
        return 2
    return 0 if all(r.status == "graded" for r in results) else 1


def _shard(args, secret) -> tuple:
    """``(out, only)`` for ``grade``: the whole batch into ``--out``, or one shard of it
    (``--shard i/N`` or the engine's variables, :mod:`cnnlab.grading.shards`) into its own."""
    import os

    from cnnlab.grading import shards

    shard = shards.chosen_shard(args.shard, args.shards, os.environ)
    if shard is None:
        return args.out, None
    return shards.start_shard(shard, args.lab, args.paths, args.out, secret,
                              args.max_notebook_mb)


def _release(args) -> int:
    try:
        from cnnlab.grading.release import release
    except ModuleNotFoundError:
        print("cnnlab release: this is already the students' release of cnnlab; release from "
              "the instructor's repository", file=sys.stderr)
        return 2
    try:
        written = release(args.out, title=args.title)
    except (ValueError, FileNotFoundError) as exc:
        print(f"cnnlab release: {exc}", file=sys.stderr)
        return 2
    print(f"wrote the students' release to {args.out}: {len(written['labs'])} labs, "
          f"{len(written['images'])} images, {len(written['package'])} files of cnnlab (no "
          f"cnnlab/grading: no grader, points or hidden cases), "
          f"{', '.join(written['files'])}")
    return 0


def _fetch(args) -> int:
    cache = ["--cache-dir", args.cache_dir] if args.cache_dir else []
    if args.names[0] == "weights":  # cnnlab fetch weights resnet50 ... (keras.applications)
        if len(args.names) == 1:
            print("cnnlab fetch weights: name one or more backbones, e.g. resnet50",
                  file=sys.stderr)
            return 2
        return fetch_weights_main(args.names[1:] + cache
                                  + (["--include-top"] if args.include_top else []))
    return fetch_datasets_main(args.names + cache)


# --------------------------------------------------------------------------- cnnlab fetch


def fetch_datasets_main(argv=None) -> int:
    """``cnnlab fetch NAME ... [--cache-dir DIR] [--quiet]``: ``cnnlab.datasets.fetch`` from the
    shell (also ``cnnlab.datasets.fetch_main``).

    Prints one line per dataset (path, size, how it was checked) and returns the exit code:
    0 when every dataset is in place, 1 when one could not be fetched, 2 for an unknown name.

    Used in: no lab notebook directly; ``cnnlab fetch``
    """
    from cnnlab.datasets import (
        DATASETS, CacheNotWritableError, DatasetUnavailableError, fetch,
    )
    from cnnlab.datasets.download import how_checked
    from cnnlab.datasets.fetching import chosen_datasets

    parser = argparse.ArgumentParser(
        prog="cnnlab fetch",
        description="Download and verify datasets into the cache so that the labs run offline.")
    parser.add_argument("names", nargs="+", metavar="NAME",
                        help=f"datasets: {', '.join(DATASETS)}, or all")
    parser.add_argument("--cache-dir", default=None,
                        help="cache folder (default $CNNLAB_DATA or ~/.keras/datasets)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        datasets = chosen_datasets(args.names)
    except (ValueError, TypeError) as err:
        print(f"cnnlab fetch: {err}", file=sys.stderr)
        return 2
    failures = 0
    for dataset in datasets:
        try:
            paths = fetch(dataset, cache_dir=args.cache_dir, progress=not args.quiet)[dataset]
        except (DatasetUnavailableError, CacheNotWritableError) as err:
            print(f"cnnlab fetch: {dataset}: {err}", file=sys.stderr)
            failures += 1
            continue
        shown = paths[0] if len(paths) == 1 else paths[0].parent
        size = sum(path.stat().st_size for path in paths) / 2**20
        print(f"{dataset:<14} {shown}  {size:.1f} MiB  {how_checked(dataset)}")
    return 1 if failures else 0


def fetch_weights_main(argv=None) -> int:
    """``cnnlab fetch weights NAME ... [--include-top] [--cache-dir DIR]``:
    ``cnnlab.transfer.fetch_weights`` from the shell (also ``cnnlab.transfer.fetch_weights_main``).

    Prints one line per backbone (path, size) and returns 0 when all are in place, 1 when one
    could not be fetched, 2 for an unknown name.

    Used in: no lab notebook directly; ``cnnlab fetch weights NAME``
    """
    from cnnlab.transfer import BACKBONES, WeightsUnavailableError, fetch_weights
    from cnnlab.transfer.backbones import backbone_key

    parser = argparse.ArgumentParser(
        prog="cnnlab fetch weights",
        description="Download and verify keras.applications ImageNet weights into the Keras "
                    "cache so that the labs run offline.")
    parser.add_argument("names", nargs="+", metavar="NAME",
                        help=f"backbones: {', '.join(BACKBONES)}, or all")
    parser.add_argument("--include-top", action="store_true",
                        help="the weights with the ImageNet classifier (default: without)")
    parser.add_argument("--cache-dir", default=None,
                        help="Keras home folder (default $KERAS_HOME or ~/.keras)")
    args = parser.parse_args(argv)
    try:
        keys = [key for name in args.names
                for key in ([k for k in BACKBONES if k != "efficientnet_lite0"]
                            if name.strip().lower() == "all" else [backbone_key(name)])]
    except (ValueError, TypeError) as err:
        print(f"cnnlab fetch weights: {err}", file=sys.stderr)
        return 2
    failures = 0
    for key in dict.fromkeys(keys):
        try:
            path = fetch_weights(key, include_top=args.include_top,
                                 cache_dir=args.cache_dir)[key]
        except WeightsUnavailableError as err:
            print(f"cnnlab fetch weights: {key}: {err}", file=sys.stderr)
            failures += 1
            continue
        print(f"{key:<18} {path}  {path.stat().st_size / 2**20:.1f} MiB  verified")
    return 1 if failures else 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="cnnlab", description="The cnnlab lab kit.")
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build-labs", help="generate labs/ from solutions/")
    p.add_argument("--check", action="store_true", help="fail if labs/ is out of date")
    p.add_argument("--solutions", help="solutions folder (default: the kit's solutions/)")
    p.add_argument("--labs", help="labs folder (default: the kit's labs/)")
    p.set_defaults(func=_build_labs)

    p = sub.add_parser("run", help="execute notebooks top to bottom")
    p.add_argument("paths", nargs="+", help="notebooks or folders of NN_name.ipynb notebooks")
    p.add_argument("--profile", choices=("smoke", "cpu", "full"), default="smoke")
    p.add_argument("--timeout", type=int, default=600, help="seconds per cell (default 600)")
    p.add_argument("--output", help="folder to save executed notebooks in")
    p.set_defaults(func=_run)

    p = sub.add_parser(
        "grade", help="grade submitted notebooks",
        description="Grade submitted notebooks. Every file named *.ipynb (any case) in a folder "
                    "gets a row in OUT/scores.csv; exit status 0 when every row is 'graded', "
                    "1 otherwise, 2 for a usage error.")
    p.add_argument("--lab", required=True, help="lab number, e.g. 01")
    p.add_argument("paths", nargs="+", help="submitted notebooks or folders of them")
    p.add_argument("--out", default="results", help="output folder (default results/)")
    p.add_argument("--jobs", type=int, default=None,
                   help="submissions graded at once (default: the number of CPU cores)")
    p.add_argument("--timeout-cell", type=int, default=60, help="seconds per cell (default 60)")
    p.add_argument("--timeout-notebook", type=int, default=600,
                   help="seconds per submission (default 600)")
    p.add_argument("--max-memory", type=float, default=4.0,
                   help="GiB a submission (its kernel and every process it starts) may use "
                        "(default 4)")
    p.add_argument("--profile", choices=("smoke", "cpu", "full"), default="smoke")
    p.add_argument("--whole-notebook", action="store_true",
                   help="run the cells the lab tags demo too (default: skip them; no "
                        "exercise's grading reads them)")
    p.add_argument("--solutions", help="solutions folder (default: the kit's solutions/)")
    p.add_argument("--keep-executed", action="store_true",
                   help="keep each executed notebook in OUT/executed/ (outputs included)")
    p.add_argument("--max-notebook-mb", type=float, default=20,
                   help="MiB a submitted notebook may have; larger: unreadable (default 20)")
    p.add_argument("--max-answer-mb", type=float, default=10,
                   help="MiB each file a kernel writes (answers, progress) may have; larger: "
                        "error (default 10)")
    p.add_argument("--max-json-depth", type=int, default=100,
                   help="how deeply a notebook or answer may nest (default 100)")
    p.add_argument("--parse-timeout", type=float, default=30,
                   help="seconds to read, prepare and flag one notebook (default 30)")
    p.add_argument("--resume", action="store_true",
                   help="keep the rows of OUT/scores.json for unchanged submissions (same name "
                        "and SHA-256) and grade only the rest")
    p.add_argument("--no-sandbox", action="store_true",
                   help="run kernels without bubblewrap (only for code you trust: it then runs "
                        "with your rights, sees your files and the network)")
    p.add_argument("--cold-kernels", action="store_true",
                   help="start every kernel afresh (default, as root with cgroups: fork it, "
                        "TensorFlow already imported, into its own sandbox; see "
                        "cnnlab.grading.warm_kernels)")
    p.add_argument("--max-processes", type=int, default=512,
                   help="processes and threads a submission may have at once (default 512)")
    p.add_argument("--max-output-kb", type=int, default=1000,
                   help="KiB of output kept per cell; the rest is dropped with a note "
                        "(default 1000)")
    p.add_argument("--sandbox-uid", default="65534",
                   help="uid (or range FIRST-LAST, one per running submission) the sandboxed "
                        "kernels run as (default 65534)")
    p.add_argument("--secret", metavar="FILE",
                   help="the course secret the hidden cases draw their inputs from (default: "
                        "$CNNLAB_GRADING_SECRET; without one, fixed seeds and a warning); "
                        "scores.json records its SHA-256")
    p.add_argument("--shard", metavar="I/N",
                   help="grade only shard I (0 to N-1) of the submissions, e.g. 2/4, and write "
                        "a manifest for 'cnnlab grade merge' (default: the task's index in a "
                        "Slurm job array, Kubernetes Indexed Job or AWS Batch array job, when "
                        "run as one); with --out left at results, results/shard-I-of-N/")
    p.add_argument("--shards", type=int, metavar="N",
                   help="the number of shards, where the engine gives only the task's index "
                        "(Kubernetes: the Job's completions)")
    p.set_defaults(func=_grade)

    p = sub.add_parser(
        "release", help="write what students receive (no solutions, hidden cases, points or "
                        "grader) into a new folder")
    p.add_argument("out", help="a new (or empty) folder, outside the kit's cnnlab/, labs/ and "
                               "solutions/")
    p.add_argument("--title", default="CNN labs", help="the title of the students' README")
    p.set_defaults(func=_release)

    p = sub.add_parser("fetch", help="download and verify datasets (or weights) into the cache")
    p.add_argument("names", nargs="+",
                   help="dataset names, e.g. mnist cifar10 cats_vs_dogs; or 'weights' and "
                        "backbone names, e.g. weights resnet50 vgg16")
    p.add_argument("--cache-dir", help="cache folder (default $CNNLAB_DATA or ~/.keras/datasets;"
                                       " for weights $KERAS_HOME or ~/.keras)")
    p.add_argument("--include-top", action="store_true",
                   help="weights: with the ImageNet classifier (default: without)")
    p.set_defaults(func=_fetch)
    return top


# ``cnnlab grade export ...`` and ``cnnlab grade merge ...`` are commands of their own (their
# arguments are not ``cnnlab grade``'s); each module's ``main(argv)`` parses the rest.
GRADE_COMMANDS = {"export": "cnnlab.grading.lms", "merge": "cnnlab.grading.shards"}
# ``cnnlab export gradescope ...``: what each export target's ``main(argv)`` lives in.
EXPORT_TARGETS = {"gradescope": "cnnlab.grading.gradescope"}


def _instructor_command(module: str, argv: list[str], name: str) -> int:
    import importlib

    try:
        command = importlib.import_module(module)
    except ModuleNotFoundError:
        print(f"cnnlab {name}: this is the students' release of cnnlab, without the grader; "
              "run it from the instructor's repository", file=sys.stderr)
        return 2
    return command.main(argv)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) >= 2 and argv[0] == "grade" and argv[1] in GRADE_COMMANDS:
        return _instructor_command(GRADE_COMMANDS[argv[1]], argv[2:], "grade " + argv[1])
    if argv[:1] == ["export"]:
        if len(argv) < 2 or argv[1] not in EXPORT_TARGETS:
            print("cnnlab export: name what to export: " + ", ".join(EXPORT_TARGETS)
                  + " (e.g. cnnlab export gradescope --lab 01 autograder.zip)", file=sys.stderr)
            return 2
        return _instructor_command(EXPORT_TARGETS[argv[1]], argv[2:], "export " + argv[1])
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
