"""Batch grading, the driver: for each submission, prepare it, run it in isolation, judge it and
write its reports, ``jobs`` at a time; then the batch's similarity report.

Each submission is one unit of work: reading it, preparing and flagging it (in a worker process,
:mod:`cnnlab.grading.prepare`), running it (:mod:`cnnlab.grading.isolation`), reading what the run
reported (:mod:`cnnlab.grading.progress`), judging it (:mod:`cnnlab.grading.judge`) and writing
its feedback.  Whatever goes wrong inside a unit becomes that submission's row, with a status from
:data:`STATUS_MEANINGS` (:mod:`cnnlab.grading.results`) and a message saying what happened; the
batch goes on.  What a submission or its kernel wrote is read only through
:mod:`cnnlab.grading.limits`' caps, and the reports (:mod:`cnnlab.grading.reports`) are rewritten
atomically as each submission finishes.  The names of those modules are re-exported here.

Used in: ``cnnlab grade``, ``make grade``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

from cnnlab.exercise import LABS
from cnnlab.grading import sandbox as _sandbox
from cnnlab.grading.hidden import case_seeds, graded_exercises, secret_sha256
from cnnlab.grading.integrity import implementations, watched_code
from cnnlab.grading.isolation import EXECUTED_BYTES as _EXECUTED_BYTES  # noqa: F401
from cnnlab.grading.isolation import RunOutcome  # noqa: F401
from cnnlab.grading.isolation import keep_executed as _keep_executed
from cnnlab.grading.isolation import run_isolated as _run_isolated  # noqa: F401
from cnnlab.grading.isolation import run_sandboxed as _run_sandboxed
from cnnlab.grading.judge import ENDINGS as _ENDINGS  # noqa: F401
from cnnlab.grading.judge import cell_errors as _cell_errors
from cnnlab.grading.judge import explain_demo_names as _explain_demo_names
from cnnlab.grading.judge import judge_exercise as _judge_exercise  # noqa: F401
from cnnlab.grading.judge import judge_safely as _judge_safely
from cnnlab.grading.judge import lab_numbering as _lab_numbering
from cnnlab.grading.limits import (  # noqa: F401 - sha256_capped: tests patch it here
    Limits,
    MiB,
    UntrustedInputError,
    copy_capped,
    sha256_capped,
)
from cnnlab.grading.prepare import (
    ParseServer,
    demo_exercise_cells,
    demo_only_names,
    is_demo,
    prepare_in_worker,
    prepare_submission,
)
from cnnlab.grading.progress import ROW_STATUS as _ROW_STATUS
from cnnlab.grading.progress import how_it_ended as _how_it_ended
from cnnlab.grading.progress import read_progress as _read_progress
from cnnlab.grading.progress import truncations as _truncations
from cnnlab.grading.warm_kernels import WarmKernels
from cnnlab.grading.reports import Reports
from cnnlab.grading.results import (
    EXERCISE_STATUS_MEANINGS,
    STATUS_MEANINGS,
    STATUSES,
    CellError,
    ExerciseResult,
    Submission,
    SubmissionResult,
)
from cnnlab.grading.results import not_graded as _not_graded
from cnnlab.grading.submissions import kept_row as _kept_row  # noqa: F401
from cnnlab.grading.submissions import resumable as _resumable
from cnnlab.grading.submissions import submissions_in as _submissions
from cnnlab.notebooks import BEGIN, END, build_lab, exercise_id, find_kit_root

__all__ = ["ExerciseResult", "SubmissionResult", "CellError", "prepare_submission", "grade",
           "default_jobs", "STATUSES", "STATUS_MEANINGS", "EXERCISE_STATUS_MEANINGS"]

# What the similarity report reads of one exercise cell (a longer one is cut there).
_SIMILARITY_CHARS = 200_000


def default_jobs() -> int:
    """Submissions graded at once by default: the CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


# --------------------------------------------------------------------------------------------
# One submission, start to end: one unit, whatever happens in it


def _prepared(raw: dict) -> tuple[dict, set, dict, dict, int]:
    """The parsing worker's result as ``(positions, missing, flags, syntax_lines, n_cells)``."""
    positions = {ex_id: (int(cell), int(export)) for ex_id, (cell, export)
                 in raw["positions"].items()}
    return (positions, set(raw["missing"]), dict(raw["flags"]), dict(raw["syntax_lines"]),
            int(raw["n_cells"]))


def _grade_steps(sub: Submission, template, exercises, options, step: list) -> SubmissionResult:
    """Grade one submission; ``step[0]`` says what it is doing, for the message if it fails."""
    limits = options["limits"]
    # (a folder the kernel left unreadable must not cost the grade: cleanup errors are ignored)
    with tempfile.TemporaryDirectory(prefix="cnnlab-grade-", ignore_cleanup_errors=True) as tmp:
        workdir = Path(tmp)
        step[0] = "reading"
        try:
            sha256 = copy_capped(sub.path, workdir / "handed_in.ipynb", limits.notebook_bytes,
                                 "the notebook", "--max-notebook-mb")
        except UntrustedInputError as exc:
            return _not_graded(sub, exercises, "unreadable", f"unreadable notebook: {exc}")
        step[0] = "parsing"
        job = {"notebook": str(workdir / "handed_in.ipynb"), "template": template,
               "exercise_ids": [ex.id for ex in exercises], "forbidden": options["forbidden"],
               "workdir": str(workdir), "seeds": options["seeds"],
               "watched": options["watched"], "whole_notebook": options["whole_notebook"],
               "limits": {"notebook_bytes": limits.notebook_bytes,
                          "json_depth": limits.json_depth}}
        raw = prepare_in_worker(job, limits.parse_seconds, options.get("server"))
        if not raw.get("ok"):
            status = raw.get("status") if raw.get("status") in STATUS_MEANINGS else "error"
            return _not_graded(sub, exercises, status, str(raw.get("message")), sha256)
        positions, missing, flags, syntax_lines, n_cells = _prepared(raw)
        step[0] = "running"
        outcome = _run_sandboxed(workdir, options, limits)
        step[0] = "judging"
        progress, problem = _read_progress(outcome.lines, limits)
        ended, message = _how_it_ended(outcome.ended, progress, problem)
        if ended == "memory":
            message = (f"the submission used more memory than --max-memory "
                       f"({options['max_memory'] / 2**30:g} GiB) and was stopped")
        lab_index = _lab_numbering(positions, n_cells)
        dropped = _truncations(outcome.lines, limits)
        if dropped:
            message = " ".join(filter(None, [message, "; ".join(
                f"cell {lab_index.get(cell, cell)} printed more than --max-output-kb "
                f"({options['max_output_bytes'] // 1024} KiB): {n} bytes of its output were "
                f"dropped" for cell, n in sorted(dropped.items()))]))
        cell_errors = _cell_errors(progress, positions, lab_index)
        context = {"syntax_lines": syntax_lines, "lab_index": lab_index, "limits": limits,
                   "cell_exercise": {cell: ex_id for ex_id, (cell, _) in positions.items()},
                   "watched": options.get("watched") or {}}
        rows = [_judge_safely(ex, positions, missing, progress, ended, context)
                for ex in exercises]
        if options.get("keep_executed") and os.path.lexists(workdir / "executed.ipynb"):
            step[0] = "keeping the executed notebook of"
            message = _keep_executed(workdir, Path(options["out"]), sub.name, message)
    _explain_demo_names(rows, options.get("demo_names") or set())
    for row in rows:  # what the cell reads (static) and what it handed back (run time)
        reasons = list(flags.get(row.id, [])) + ([row.flag] if row.flag else [])
        row.flag = "; ".join(dict.fromkeys(map(str, reasons)))
    return SubmissionResult(sub.name, str(sub.path), _ROW_STATUS[ended], rows, 0.0, message,
                            cell_errors=cell_errors, sha256=sha256)


def _grade_one(sub: Submission, template, exercises, options, reports: Reports):
    """One submission as one unit: grade it (unless refused) and write its feedback.  Any
    exception becomes the row's ``error`` status with the step it happened in; never raises."""
    start, step = time.monotonic(), ["starting"]
    if sub.refused:
        result = _not_graded(sub, exercises, "refused", f"not graded: {sub.refused}")
    else:
        try:
            result = _grade_steps(sub, template, exercises, options, step)
        except Exception as exc:  # noqa: BLE001 - one submission, never the batch
            result = _not_graded(sub, exercises, "error",
                                 f"the grader failed while {step[0]} this submission: "
                                 f"{type(exc).__name__}: {str(exc)[:300]}")
    result.seconds = time.monotonic() - start
    try:
        reports.write_feedback(result)
    except Exception as exc:  # noqa: BLE001 - the row still says what happened
        result.status = "error"
        result.message = (f"{result.message} " if result.message else "") + \
            f"(its feedback could not be written: {type(exc).__name__}: {str(exc)[:200]})"
    return result


# --------------------------------------------------------------------------------------------
# The batch


def _answers_of(sub: Submission, exercises, options: dict) -> dict[str, str]:
    """``{exercise id: source}`` of a submission's exercise cells, read by a parsing worker
    under the same caps and deadline as grading; ``{}`` when it cannot be read."""
    limits = options["limits"]
    with tempfile.TemporaryDirectory(prefix="cnnlab-similar-", ignore_cleanup_errors=True) as tmp:
        try:
            copy_capped(sub.path, Path(tmp) / "handed_in.ipynb", limits.notebook_bytes,
                        "the notebook", "--max-notebook-mb")
        except UntrustedInputError:
            return {}
        job = {"notebook": str(Path(tmp) / "handed_in.ipynb"), "answers_only": True,
               "exercise_ids": [ex.id for ex in exercises], "workdir": tmp,
               "limits": {"notebook_bytes": limits.notebook_bytes,
                          "json_depth": limits.json_depth}}
        raw = prepare_in_worker(job, limits.parse_seconds, options.get("server"))
    answers = raw.get("answers") if raw.get("ok") else None
    if not isinstance(answers, dict):
        return {}
    return {str(k): v[:_SIMILARITY_CHARS] for k, v in answers.items() if isinstance(v, str)}


def _solution_cells(solution) -> dict[str, str]:
    """``{exercise id: source}`` of the instructor's solution cells, marker lines dropped."""
    cells = {}
    for cell in solution.cells:
        ex_id = exercise_id(cell)
        if ex_id and cell.cell_type == "code" and ex_id not in cells:
            cells[ex_id] = "".join(line for line in cell.source.splitlines(keepends=True)
                                   if BEGIN not in line and END not in line)
    return cells


def _similarity_report(number: str, submissions, exercises, template, source: Path,
                       options: dict, reports: Reports, stream) -> None:
    """Compare every exercise cell of the batch (:mod:`cnnlab.grading.similarity`): fill the
    ``similar`` column and write ``out/similarity.html``.  A failure here is printed and costs
    no grade: the scores are already written."""
    out = Path(options["out"])
    try:
        from cnnlab.grading import similarity

        answers = {}
        for sub in submissions:
            found = {} if sub.refused else _answers_of(sub, exercises, options)
            if found:
                answers[sub.name] = found
        starter = {exercise_id(c): c.source for c in template.cells
                   if exercise_id(c) and c.cell_type == "code"}
        references = similarity.reference_sources(
            exercises, _solution_cells(nbformat.read(source, as_version=4)))
        pairs = similarity.similar_pairs(answers, starter, references)
        path = similarity.write_similarity_html(pairs, out / "similarity.html", number)
        reports.set_similar(similarity.similar_column(pairs))
        print(f"similarity: {len(pairs)} pair(s) at or above {similarity.DEFAULT_THRESHOLD:g} "
              f"among {len(answers)} submission(s) and cnnlab's own code: {path}", file=stream)
    except Exception as exc:  # noqa: BLE001 - a report must never cost a grade
        print(f"WARNING: the similarity report failed ({type(exc).__name__}: {exc}); the scores "
              f"are written without it", file=stream)


def _limits(max_notebook_mb, max_answer_mb, max_json_depth, parse_timeout) -> Limits:
    for name, value in (("max_notebook_mb", max_notebook_mb), ("max_answer_mb", max_answer_mb),
                        ("max_json_depth", max_json_depth), ("parse_timeout", parse_timeout)):
        if not value > 0:
            raise ValueError(f"{name} must be positive, not {value!r}")
    return Limits(int(max_notebook_mb * MiB), int(max_answer_mb * MiB), int(max_json_depth),
                  float(parse_timeout))


def _status_counts(results) -> str:
    """``"graded 28, error 1, refused 1"``: how many rows have each status, in the order of
    :data:`STATUS_MEANINGS`."""
    counts = {status: 0 for status in STATUS_MEANINGS}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    return ", ".join(f"{status} {n}" for status, n in counts.items() if n) or "none"


def grade(lab, paths, out="results", jobs=None, timeout_cell=60, timeout_notebook=600, only=None,
          max_memory_gb=4.0, profile="smoke", solutions=None, stream=None, keep_executed=False,
          max_notebook_mb=20, max_answer_mb=10, max_json_depth=100, parse_timeout=30,
          resume=False, sandbox=True, max_processes=512, max_output_kb=1000,
          sandbox_uid="65534", limits_mode=None, secret=None, whole_notebook=False,
          warm_kernels=True):
    """Grade every notebook in ``paths`` (files or folders) for ``lab``; write and return results.

    A folder contributes every file directly in it whose name ends in ``.ipynb`` in any case;
    symbolic links and anything that is not a plain file get a ``refused`` row.  ``jobs``
    submissions run at once (default :func:`default_jobs`, the CPU cores).  Each submission is
    one unit: whatever fails in it becomes its own row's status (:data:`STATUS_MEANINGS`) and
    message, and the batch goes on.
    ``only`` (row names, :func:`cnnlab.grading.shards.shard_names`) grades those submissions
    of the batch alone, each named as in the whole batch: one shard of it.

    Caps on what a submission controls: ``max_notebook_mb`` (``--max-notebook-mb``, 20) for the
    notebook, ``max_answer_mb`` (``--max-answer-mb``, 10) for the run's progress record (with
    the answers' probe records), ``max_json_depth`` (``--max-json-depth``, 100) for the nesting
    of any of them, and ``parse_timeout`` (``--parse-timeout``, 30 s) for reading,
    preparing and flagging a notebook, which happens in a worker process of its own.

    Writes ``out/scores.csv``, ``out/scores.json`` and ``out/feedback/<submission>.md``,
    atomically, as each submission finishes (old scores in ``out`` are first moved aside to
    ``scores-<UTC time>.csv.old``), prints one line per finished submission with its seconds,
    then the batch's wall time and seconds per submission, and last the rows per status
    (``statuses: graded 28, error 1``).  With ``resume=True`` (``--resume``) the rows already
    in ``out/scores.json`` are kept for the submissions still there unchanged (same name and
    SHA-256) and only the others are graded.  With ``keep_executed=True``
    (``--keep-executed``) each submission's executed notebook, outputs and all, is kept as
    ``out/executed/<submission>.ipynb``: what the student's code printed and drew, for an
    instructor reading a grade (and for the tests that read what a lab prints without running
    it again).  ``secret`` (bytes, :func:`cnnlab.grading.hidden.read_secret`) is the course
    secret the hidden cases draw their inputs from (:func:`cnnlab.grading.hidden.case_seeds`);
    ``scores.json`` records its SHA-256 in every row, never the secret, and ``--resume`` keeps
    only rows graded with the same one.  Without it the grader warns and uses the fixed seeds.
    The cells the instructor's notebook tags ``demo`` (demonstrations no exercise's grading
    reads: training runs, plots) are skipped, each left as a comment in its place; with
    ``whole_notebook=True`` (``--whole-notebook``) they run too, as in the lab.  Only the
    instructor's tags count: a submission's metadata is never read for this.
    With ``warm_kernels`` (the default; ``--cold-kernels`` turns it off), where the grader
    runs as root with cgroup v1 and the sandbox, each kernel is forked with TensorFlow already
    imported into its own sandbox (:mod:`cnnlab.grading.warm_kernels`) instead of starting
    afresh, when there are two submissions or more to grade; a kernel that cannot start warm
    starts cold.
    Returns every row, in the order the submissions were found.  Used in:
    ``cnnlab grade``, ``make grade``.
    """
    stream = stream or sys.stdout
    jobs = default_jobs() if jobs is None else max(1, int(jobs))
    number = f"{int(lab):02d}"
    if number not in LABS:
        raise ValueError(f"unknown lab {lab!r}; labs are {', '.join(LABS)}")
    limits = _limits(max_notebook_mb, max_answer_mb, max_json_depth, parse_timeout)
    seeds = case_seeds(number, secret)
    exercises = graded_exercises(number, seeds)
    solutions = Path(solutions) if solutions else find_kit_root() / "solutions"
    source = solutions / f"{LABS[number]}.ipynb"
    if not source.exists():
        raise FileNotFoundError(f"the instructor's notebook {source} is missing")
    template = build_lab(nbformat.read(source, as_version=4), source.name)
    tagged_exercises = demo_exercise_cells(template)
    if tagged_exercises:
        raise ValueError(f"{source}: the exercise cells of {', '.join(tagged_exercises)} are "
                         f"tagged demo; an exercise cell always runs: remove the tag")
    cwd = solutions.parent / "labs"
    out = Path(out)
    if not (max_processes > 0 and max_output_kb > 0):
        raise ValueError(f"max_processes and max_output_kb must be positive, not "
                         f"{max_processes!r} and {max_output_kb!r}")
    sandbox_on = bool(sandbox)
    bwrap = _sandbox.require_bubblewrap() if sandbox_on else ""
    limits_mode = limits_mode or (_sandbox.LIMITS_CGROUP if _sandbox.cgroups_available()
                                  else _sandbox.LIMITS_RLIMIT)
    options = {"timeout_cell": timeout_cell, "timeout_notebook": timeout_notebook,
               "max_memory": int(max_memory_gb * 2**30), "profile": profile,
               "cwd": str(cwd if cwd.is_dir() else solutions),
               "forbidden": {ex.id: implementations(ex) for ex in exercises},
               "watched": {ex.id: watched_code(ex) for ex in exercises},
               "keep_executed": keep_executed, "out": str(out), "limits": limits,
               "sandbox": sandbox_on, "bwrap": bwrap, "limits_mode": limits_mode,
               "max_processes": int(max_processes),
               "max_output_bytes": int(max_output_kb * 1024),
               "uids": _sandbox.UidPool.parse(sandbox_uid), "kit": str(solutions.parent),
               "solutions": str(solutions), "seeds": seeds,
               "secret_sha256": secret_sha256(secret), "whole_notebook": bool(whole_notebook),
               "demo_names": set() if whole_notebook else demo_only_names(template)}
    submissions = _submissions(paths)
    if only is not None:  # one shard of the batch (cnnlab.grading.shards); names as in the whole
        submissions = [sub for sub in submissions if sub.name in only]
    options["hidden"] = sorted({str(out.resolve())} | {
        str(p.resolve() if p.is_dir() else p.resolve().parent) for p in map(Path, paths)})
    kept = _resumable(out, number, exercises, submissions, limits,
                      options["secret_sha256"]) if resume else []
    reports = Reports(out, exercises, number)
    for old in reports.start(kept):
        print(f"moved the earlier scores aside: {old}", file=stream)
    done = {r.submission for r in kept}
    todo = [sub for sub in submissions if sub.name not in done]
    # one kernel alone starts cold: the server would cost what it saves (Gradescope's case)
    warm = (sandbox_on and warm_kernels and os.geteuid() == 0 and len(todo) > 1
            and limits_mode == _sandbox.LIMITS_CGROUP)
    if warm:  # started now, beside the parsing; the first kernel waits for it
        options["warm"] = WarmKernels.shared({
            "cwd": Path(options["cwd"]), "kit": solutions.parent, "solutions": solutions,
            "profile": profile, "bwrap": bwrap, "uids": options["uids"]})
    if resume:
        print(f"resuming: kept {len(kept)} row(s) from {out / 'scores.json'}", file=stream)
    if not sandbox_on:
        print("WARNING: --no-sandbox: each submission's code runs with your rights, sees your "
              "files and the network, and its processes can outlive it; grade this way only "
              "code you trust", file=stream, flush=True)
    if secret is None:
        print("WARNING: no course secret (--secret FILE or CNNLAB_GRADING_SECRET): the hidden "
              "cases use their fixed seeds, which anyone with the instructor's repository knows; "
              "give a secret to draw them afresh", file=stream, flush=True)
    else:
        print(f"hidden inputs drawn from the course secret (SHA-256 "
              f"{options['secret_sha256'][:12]}...)", file=stream, flush=True)
    demos = sum(1 for cell in template.cells if cell.cell_type == "code" and is_demo(cell))
    print(f"grading {len(todo)} submission(s) of lab {number} with {jobs} job(s); sandbox: "
          f"{'bubblewrap' if sandbox_on else 'none'}; limits: {limits_mode}; kernels: "
          f"{'warm' if warm else 'cold'}; demo cells: "
          + (f"{demos} run (--whole-notebook)" if whole_notebook else
             f"{demos} skipped (--whole-notebook runs them)"), file=stream, flush=True)

    def one(sub):
        result = _grade_one(sub, template, exercises, options, reports)
        result.sandbox = "bubblewrap" if sandbox_on else "none"
        result.limits = limits_mode
        result.secret_sha256 = options["secret_sha256"]
        reports.add(result)
        flagged = "  [flagged]" if result.flagged else ""
        print(f"  {result.submission}: {result.total:g}/{result.max_total:g} "
              f"({result.status}, {result.seconds:.1f} s){flagged}", file=stream, flush=True)
        return result

    start = time.monotonic()
    options["server"] = ParseServer.shared()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        graded = {r.submission: r for r in pool.map(one, todo)}
    wall = time.monotonic() - start
    if graded:
        mean = sum(r.seconds for r in graded.values()) / len(graded)
        print(f"graded {len(graded)} submission(s) in {wall:.1f} s with {jobs} job(s): "
              f"{wall / len(graded):.1f} s per submission (each ran {mean:.1f} s on average)",
              file=stream)
    results = [graded.get(sub.name) or next(r for r in kept if r.submission == sub.name)
               for sub in submissions]
    _similarity_report(number, submissions, exercises, template, source, options, reports,
                       stream)
    print(f"wrote {out / 'scores.csv'} and {len(graded)} feedback file(s)", file=stream)
    print(f"statuses: {_status_counts(results)}", file=stream, flush=True)
    return results
