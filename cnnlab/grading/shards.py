"""Grading one batch in shards on several machines, and merging the shards' results.

``cnnlab grade --shard i/N`` grades the submissions of shard ``i`` (0 to N-1) of the batch: the
batch's row names (the names ``cnnlab grade`` gives its rows, from the same list of files) sorted
by code point, and every N-th of them from the i-th on.  That is the same on every machine and
every Python (no salted ``hash()``), and the shards differ by at most one submission.  The price
of that balance: a file added to the batch moves the files sorted after it to other shards, so a
batch that changed is graded again in every shard (the merge refuses shards of different batches).
Without ``--shard`` the shard comes from the engine running the task: a Slurm job array
(``SLURM_ARRAY_TASK_ID`` less ``SLURM_ARRAY_TASK_MIN``, over its ``SLURM_ARRAY_TASK_STEP``, of
``SLURM_ARRAY_TASK_COUNT``), a Kubernetes Indexed Job (``JOB_COMPLETION_INDEX``, with ``--shards
N``: Kubernetes does not say how many) or an AWS Batch array job (``AWS_BATCH_JOB_ARRAY_INDEX``,
of ``AWS_BATCH_JOB_ARRAY_SIZE`` when the job definition sets it, else ``--shards N``).

Each shard writes its own results folder with a manifest, ``shard.json``: the shard, N, the lab,
the course secret's SHA-256, and the name and SHA-256 of every submission of the batch and of
its own slice.  ``cnnlab grade merge OUT/ SHARD_DIRS...`` checks that the shards are of one batch
(same lab, secret and submissions), writes one ``scores.csv``/``scores.json`` (rows as a single
run writes them, by :class:`cnnlab.grading.reports.Reports`) and ``feedback/``, and says which
shards or submissions are missing and which were graded twice.

Used in: ``cnnlab grade --shard``, ``cnnlab grade merge``, ``examples/slurm/grade.sbatch``,
``examples/kubernetes/grade-job.yaml``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from cnnlab.exercise import LABS
from cnnlab.grading.limits import UntrustedInputError, load_json_capped, sha256_capped

__all__ = ["Shard", "ShardError", "parse_shard", "shard_from_environment", "chosen_shard",
           "shard_names", "shard_manifest", "start_shard", "merge_shards", "main",
           "MANIFEST", "FORMAT"]

MANIFEST = "shard.json"  # in each shard's results folder
FORMAT = "cnnlab-shard/1"
_MANIFEST_BYTES = 64 * 2**20
_SCORES_BYTES = 256 * 2**20
_JSON_DEPTH = 100
_NUMBER = re.compile(r"[0-9]{1,9}")


class ShardError(ValueError):
    """A shard that cannot be: a malformed ``--shard``, an index past the count, a count below
    1, an index without a count; or shards that are not of one batch.  The message names the
    value and the fix (``cnnlab grade`` exits 2)."""


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0 <= index < count), and where that came from."""

    index: int
    count: int
    source: str = "--shard"

    def __post_init__(self):
        if self.count < 1:
            raise ShardError(f"{self.source}: the number of shards is {self.count}; it must be "
                             "at least 1")
        if not 0 <= self.index < self.count:
            raise ShardError(f"{self.source}: shard {self.index} of {self.count} does not exist;"
                             f" shards count from 0 to {self.count - 1} (0/{self.count} ... "
                             f"{self.count - 1}/{self.count})")

    @property
    def label(self) -> str:
        """``"2/4"``."""
        return f"{self.index}/{self.count}"

    @property
    def folder(self) -> str:
        """``"shard-2-of-4"``: the results folder a shard gets when ``--out`` is left at its
        default."""
        return f"shard-{self.index}-of-{self.count}"


def _whole_number(text, what: str) -> int:
    text = str(text).strip()
    if not _NUMBER.fullmatch(text):
        raise ShardError(f"{what}={text[:40]!r} is not a whole number (0, 1, 2, ...)")
    return int(text)


def parse_shard(text: str) -> Shard:
    """``"2/4"`` as :class:`Shard` (2, 4), or :class:`ShardError` saying what is wrong."""
    index, sep, count = str(text).partition("/")
    if not sep:
        raise ShardError(f"--shard {text!r} is not i/N: write the shard's index (from 0) and the "
                         f"number of shards, e.g. --shard 2/4")
    return Shard(_whole_number(index, "--shard's index"), _whole_number(count, "--shard's N"))


def _count(given: int | None, found: int | None, source: str, name: str) -> int:
    """The number of shards from the engine (``found``, from ``name``) and ``--shards``."""
    if given is not None and found is not None and given != found:
        raise ShardError(f"--shards {given} disagrees with {name}={found} ({source}); leave "
                         f"--shards out, or make the two agree")
    count = found if found is not None else given
    if count is None:
        raise ShardError(f"{source} gives this task's index but not the number of shards: add "
                         f"--shards N (N = the number of tasks)")
    return count


def shard_from_environment(environ, shards: int | None = None) -> Shard | None:
    """The shard of this task from the engine that started it, or None when no engine's
    variables are set: a Slurm job array (``--array=1-4`` counts from its
    ``SLURM_ARRAY_TASK_MIN``; a step ``--array=0-6:2`` is divided out), a Kubernetes Indexed Job
    (``JOB_COMPLETION_INDEX``; ``shards`` is required) or an AWS Batch array job
    (``AWS_BATCH_JOB_ARRAY_INDEX``, of ``AWS_BATCH_JOB_ARRAY_SIZE`` or ``shards``)."""
    if "SLURM_ARRAY_TASK_ID" in environ:
        task = _whole_number(environ["SLURM_ARRAY_TASK_ID"], "SLURM_ARRAY_TASK_ID")
        first = _whole_number(environ.get("SLURM_ARRAY_TASK_MIN", "0"), "SLURM_ARRAY_TASK_MIN")
        step = _whole_number(environ.get("SLURM_ARRAY_TASK_STEP", "1"), "SLURM_ARRAY_TASK_STEP")
        found = environ.get("SLURM_ARRAY_TASK_COUNT")
        found = None if found is None else _whole_number(found, "SLURM_ARRAY_TASK_COUNT")
        source = (f"SLURM_ARRAY_TASK_ID={task} (SLURM_ARRAY_TASK_MIN={first}, "
                  f"SLURM_ARRAY_TASK_STEP={step})")
        offset = task - first
        if offset < 0 or step < 1 or offset % step:
            raise ShardError(f"{source} is not a task of a plain array: submit the job with a "
                             f"contiguous --array, e.g. --array=0-3")
        count = _count(shards, found, source, "SLURM_ARRAY_TASK_COUNT")
        if offset // step >= count:
            raise ShardError(f"{source} is task {offset // step} of an array of {count}: the "
                             f"array has gaps; submit it with a contiguous --array, e.g. "
                             f"--array=0-{count - 1}")
        return Shard(offset // step, count, source)
    if "JOB_COMPLETION_INDEX" in environ:
        index = _whole_number(environ["JOB_COMPLETION_INDEX"], "JOB_COMPLETION_INDEX")
        source = f"JOB_COMPLETION_INDEX={index} (a Kubernetes Indexed Job)"
        if shards is None:
            raise ShardError(f"{source} gives this pod's index but Kubernetes does not give the "
                             f"number of shards: add --shards N (the Job's completions)")
        return Shard(index, shards, source)
    if "AWS_BATCH_JOB_ARRAY_INDEX" in environ:
        index = _whole_number(environ["AWS_BATCH_JOB_ARRAY_INDEX"], "AWS_BATCH_JOB_ARRAY_INDEX")
        found = environ.get("AWS_BATCH_JOB_ARRAY_SIZE")
        found = None if found is None else _whole_number(found, "AWS_BATCH_JOB_ARRAY_SIZE")
        source = f"AWS_BATCH_JOB_ARRAY_INDEX={index} (an AWS Batch array job)"
        return Shard(index, _count(shards, found, source, "AWS_BATCH_JOB_ARRAY_SIZE"), source)
    return None


def chosen_shard(spec: str | None, shards: int | None, environ) -> Shard | None:
    """The shard ``cnnlab grade`` grades: ``--shard i/N`` (``spec``) if given, else the
    engine's (:func:`shard_from_environment`), else None (the whole batch).  ``--shards N``
    alone, with no index anywhere, is an error.  Used in: ``cnnlab grade``."""
    if shards is not None and shards < 1:
        raise ShardError(f"--shards {shards}: the number of shards must be at least 1")
    if spec is not None:
        shard = parse_shard(spec)
        if shards is not None and shards != shard.count:
            raise ShardError(f"--shard {spec} and --shards {shards} disagree; give one of them")
        return shard
    shard = shard_from_environment(environ, shards)
    if shard is None and shards is not None:
        raise ShardError(f"--shards {shards} needs this task's index: give --shard i/{shards}, "
                         f"or run it as a task of a Slurm job array, a Kubernetes Indexed Job "
                         f"or an AWS Batch array job")
    return shard


def shard_names(submissions, shard: Shard) -> set[str]:
    """The row names of ``submissions`` (the whole batch, as
    :func:`cnnlab.grading.submissions.submissions_in` lists it) that ``shard`` grades: every
    ``count``-th name in code-point order, from the ``index``-th on."""
    return set(sorted(sub.name for sub in submissions)[shard.index::shard.count])


def _digest(entries) -> str:
    text = json.dumps(sorted(entries, key=lambda e: e["submission"]), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def shard_manifest(shard: Shard, lab: str, submissions, secret_digest: str | None,
                   max_bytes: int) -> dict:
    """What ``shard.json`` holds: the shard, N, the lab, the secret's SHA-256, and the name
    and SHA-256 of every submission of the batch (``""`` for a file not read: refused or over
    ``max_bytes``) and of the shard's own slice, with a SHA-256 of each list."""
    batch = []
    for sub in submissions:
        digest = ""
        if not sub.refused:
            try:
                digest = sha256_capped(sub.path, max_bytes)
            except (UntrustedInputError, OSError):
                digest = ""
        batch.append({"submission": sub.name, "sha256": digest})
    names = shard_names(submissions, shard)
    own = [entry for entry in batch if entry["submission"] in names]
    return {"format": FORMAT, "lab": lab, "shard": shard.index, "shards": shard.count,
            "source": shard.source, "secret_sha256": secret_digest,
            "batch_sha256": _digest(batch), "slice_sha256": _digest(own),
            "batch": batch, "slice": own}


def start_shard(shard: Shard, lab, paths, out, secret: bytes | None = None,
                max_notebook_mb: float = 20, stream=None) -> tuple[Path, set[str]]:
    """Write the shard's manifest into its results folder and return ``(folder, row names it
    grades)`` for :func:`cnnlab.grading.grade.grade`'s ``out`` and ``only``.  ``out`` left at
    ``"results"`` (the default) becomes ``results/shard-i-of-N``.  A folder that already holds
    another shard's manifest is refused (each shard needs its own); this shard's earlier
    manifest is moved aside, as the scores are.  Used in: ``cnnlab grade --shard``."""
    from cnnlab.grading.submissions import submissions_in as _submissions
    from cnnlab.grading.hidden import secret_sha256
    from cnnlab.grading.reports import move_aside, write_atomic

    stream = stream or sys.stdout
    number = f"{int(lab):02d}" if str(lab).isdigit() else str(lab)
    if number not in LABS:
        raise ShardError(f"unknown lab {lab!r}; labs are {', '.join(LABS)}")
    out = Path(out) / shard.folder if str(out) in ("results", "results/") else Path(out)
    submissions = _submissions(paths)
    manifest = shard_manifest(shard, number, submissions, secret_sha256(secret),
                              int(max_notebook_mb * 2**20))
    earlier = _read_json(out / MANIFEST) if (out / MANIFEST).exists() else None
    if isinstance(earlier, dict) and (earlier.get("shard"), earlier.get("shards")) != (
            shard.index, shard.count):
        raise ShardError(f"{out} already holds the results of shard {earlier.get('shard')}/"
                         f"{earlier.get('shards')} ({out / MANIFEST}); give each shard its own "
                         f"--out, e.g. --out {out / shard.folder}")
    out.mkdir(parents=True, exist_ok=True)
    moved = move_aside(out / MANIFEST)
    if moved:
        print(f"moved the earlier manifest aside: {moved}", file=stream)
    write_atomic(out / MANIFEST, json.dumps(manifest, indent=1))
    print(f"shard {shard.label} ({shard.source}): {len(manifest['slice'])} of the batch's "
          f"{len(submissions)} submission(s), results in {out}; merge every shard with "
          f"'cnnlab grade merge OUT/ SHARD_DIRS...'", file=stream, flush=True)
    return out, {entry["submission"] for entry in manifest["slice"]}


# --------------------------------------------------------------------------------------------
# Merging


def _read_json(path: Path, cap: int = _MANIFEST_BYTES):
    try:
        return load_json_capped(path, cap, _JSON_DEPTH, str(path))
    except UntrustedInputError as exc:
        raise ShardError(f"cannot read {path}: {exc}") from None


@dataclass
class _ShardResults:
    folder: Path
    manifest: dict
    rows: list  # the rows of its scores.json


def _read_shard(folder: Path) -> _ShardResults:
    if not folder.is_dir():
        raise ShardError(f"{folder} is not a folder: name the results folder of each shard")
    if not (folder / MANIFEST).is_file():
        raise ShardError(f"{folder} has no {MANIFEST}: it is not the results of "
                         f"'cnnlab grade --shard i/N' (grade each shard with --shard or as a "
                         f"task of a job array)")
    manifest = _read_json(folder / MANIFEST)
    keys = ("lab", "shard", "shards", "secret_sha256", "batch_sha256", "batch", "slice")
    if not (isinstance(manifest, dict) and manifest.get("format") == FORMAT
            and all(key in manifest for key in keys)):
        raise ShardError(f"{folder / MANIFEST} is not a {FORMAT} manifest; grade that shard "
                         f"again")
    rows = []
    if (folder / "scores.json").is_file():
        rows = _read_json(folder / "scores.json", _SCORES_BYTES)
        if not isinstance(rows, list) or not all(isinstance(row, dict)
                                                 and isinstance(row.get("submission"), str)
                                                 for row in rows):
            raise ShardError(f"{folder / 'scores.json'} is not a list of rows; grade that "
                             f"shard again")
    return _ShardResults(folder, manifest, rows)


def _agreement(shards: list[_ShardResults]) -> None:
    """Raise :class:`ShardError` naming the folders when the shards are not of one batch."""
    for key, what in (("lab", "lab"), ("secret_sha256", "course secret (SHA-256)"),
                      ("shards", "number of shards"), ("batch_sha256", "batch of submissions")):
        values = {}
        for s in shards:
            values.setdefault(str(s.manifest[key]), []).append(str(s.folder))
        if len(values) > 1:
            where = "; ".join(f"{value[:16]} in {', '.join(folders)}"
                              for value, folders in sorted(values.items()))
            fix = ("grade every shard over the same submissions folder, unchanged"
                   if key == "batch_sha256" else "grade every shard with the same --lab, "
                   "--secret and --shard N")
            raise ShardError(f"the shards are not of one batch: their {what} differs ({where});"
                             f" {fix}")


def _outcome(row: dict):
    """What a row says of a submission's grade (not how long it took, or where it ran)."""
    exercises = row.get("exercises") if isinstance(row.get("exercises"), dict) else {}
    return (row.get("sha256"), row.get("status"), row.get("total"), row.get("max"),
            sorted((ex, str(v.get("points")), str(v.get("status")))
                   for ex, v in exercises.items() if isinstance(v, dict)))


@dataclass
class MergeReport:
    """What :func:`merge_shards` found: the rows kept, in name order, the submissions with no
    row, the shards not given, the submissions graded in two shards with the same result."""

    lab: str
    rows: list
    sources: dict  # submission -> the folder its row came from
    missing: list
    missing_shards: list
    duplicates: list
    unfinished: list  # (folder, rows it has, rows it should have)


def merge_shards(folders) -> MergeReport:
    """Read the shards' results folders and check they are of one batch; return the rows to
    write.  :class:`ShardError` for shards of different labs, secrets, numbers of shards or
    batches, a row that is not in its shard's slice or of another file, or a submission graded
    twice with different results.  Used in: ``cnnlab grade merge``."""
    if not folders:
        raise ShardError("name the results folder of each shard to merge")
    shards = [_read_shard(Path(f)) for f in folders]
    _agreement(shards)
    first = shards[0].manifest
    batch = {e["submission"]: e["sha256"] for e in first["batch"]}
    lab, secret = first["lab"], first["secret_sha256"]
    kept, sources, duplicates, unfinished = {}, {}, [], []
    for s in shards:
        own = {e["submission"] for e in s.manifest["slice"]}
        label = f"{s.manifest['shard']}/{s.manifest['shards']}"
        for row in s.rows:
            name = row["submission"]
            if name not in own:
                raise ShardError(f"{s.folder / 'scores.json'} has a row for {name!r}, which is "
                                 f"not in shard {label}'s slice; grade that shard again into an "
                                 f"empty folder")
            if str(row.get("lab")) != lab or row.get("secret_sha256") != secret:
                raise ShardError(f"{s.folder / 'scores.json'}: the row of {name!r} was graded "
                                 f"for another lab or with another secret than its manifest "
                                 f"says; grade that shard again")
            if row.get("sha256") and batch[name] and row["sha256"] != batch[name]:
                raise ShardError(f"{name!r} in {s.folder} was graded from a file that is not "
                                 f"the one in the batch (SHA-256 {row['sha256'][:12]}..., not "
                                 f"{batch[name][:12]}...): the submission changed while the "
                                 f"shards ran; grade that shard again")
            if name in kept:
                if _outcome(kept[name]) != _outcome(row):
                    raise ShardError(f"{name!r} was graded twice with different results: in "
                                     f"{sources[name]} ({kept[name].get('status')}, "
                                     f"{kept[name].get('total')}) and in {s.folder} "
                                     f"({row.get('status')}, {row.get('total')}); merge only "
                                     f"one results folder per shard")
                duplicates.append((name, sources[name], str(s.folder)))
                continue
            kept[name], sources[name] = row, str(s.folder)
        graded = {row["submission"] for row in s.rows}
        if len(graded) < len(own):
            unfinished.append((str(s.folder), len(graded), len(own)))
    given = {s.manifest["shard"] for s in shards}
    count = first["shards"]
    return MergeReport(
        lab=lab, rows=[kept[name] for name in sorted(kept)], sources=sources,
        missing=sorted(set(batch) - set(kept)),
        missing_shards=[f"{i}/{count}" for i in range(count) if i not in given],
        duplicates=duplicates, unfinished=unfinished)


def _results(rows, exercises):
    """The rows as :class:`~cnnlab.grading.results.SubmissionResult`, each checked to write back
    exactly as it was read (:func:`cnnlab.grading.reports.score_row`)."""
    from cnnlab.grading.submissions import kept_row as _kept_row
    from cnnlab.grading.reports import score_row

    results = []
    for row in rows:
        result = _kept_row(row, exercises, row.get("path", ""))
        if result is None:
            raise ShardError(f"the row of {row['submission']!r} lacks fields this lab's rows "
                             f"have; grade its shard again with this version of cnnlab")
        result.sandbox, result.limits = row.get("sandbox", ""), row.get("limits", "")
        result.similar = row.get("similar", "")
        again = json.loads(json.dumps(score_row(result, row["lab"])))
        if again != row:
            fields = sorted(k for k in set(again) | set(row) if again.get(k) != row.get(k))
            raise ShardError(f"the row of {row['submission']!r} does not write back as it was "
                             f"read ({', '.join(fields)} differ): its shard was graded by "
                             f"another version of cnnlab; grade it again with this one")
        results.append(result)
    return results


def _write_merge(out: Path, report: MergeReport, folders, stream) -> list:
    from cnnlab.grading.hidden import graded_exercises
    from cnnlab.grading.reports import Reports, write_atomic

    exercises = graded_exercises(report.lab)
    results = _results(report.rows, exercises)
    reports = Reports(out, exercises, report.lab)
    for old in reports.start(results):
        print(f"moved the earlier scores aside: {old}", file=stream)
    copied = 0
    for result in results:
        source = Path(report.sources[result.submission]) / "feedback" / \
            f"{result.submission}.md"
        if source.is_file():
            write_atomic(out / "feedback" / source.name,
                         source.read_text(encoding="utf-8", errors="replace"))
            copied += 1
        else:
            print(f"WARNING: {source} is missing: {result.submission} has a row but no "
                  f"feedback", file=stream)
    print(f"wrote {out / 'scores.csv'}, {out / 'scores.json'} and {copied} feedback file(s) "
          f"from {len(folders)} shard folder(s)", file=stream)
    return results


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cnnlab grade merge",
        description="Merge the results folders of 'cnnlab grade --shard i/N' into one "
                    "scores.csv, scores.json and feedback/ (rows as one 'cnnlab grade' run "
                    "writes them). Exit status 0 when every submission of the batch has one "
                    "row and every row is 'graded'; 1 when submissions are missing (the rest "
                    "is written) or a row is not 'graded'; 2 when the shards are not of one "
                    "batch (nothing is written).")
    p.add_argument("out", metavar="OUT",
                   help="the merged results folder (its earlier scores are moved aside, as "
                        "'cnnlab grade' does)")
    p.add_argument("shard_dirs", nargs="+", metavar="SHARD_DIR",
                   help="the results folder of each shard (each has a shard.json)")
    return p


def main(argv=None) -> int:
    """``cnnlab grade merge OUT/ SHARD_DIRS...``: 0 complete and all graded, 1 submissions
    missing or not graded, 2 a usage error or shards not of one batch."""
    from cnnlab.grading.grade import _status_counts

    args = _parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    stream = sys.stdout
    out = Path(args.out)
    try:
        if any(out.resolve() == Path(f).resolve() for f in args.shard_dirs) \
                or (out / MANIFEST).exists():
            raise ShardError(f"{out} is a shard's results folder; merge into another folder, "
                             f"e.g. {out.parent / 'merged'}")
        report = merge_shards(args.shard_dirs)
        results = _write_merge(out, report, args.shard_dirs, stream)
    except (ShardError, OSError) as exc:
        print(f"cnnlab grade merge: {exc}", file=sys.stderr)
        return 2
    for name, first, second in report.duplicates:
        print(f"duplicate: {name} was graded in {first} and in {second} with the same result; "
              f"kept one row", file=stream)
    problems = []
    if report.missing_shards:
        problems.append(f"shard(s) not given: {', '.join(report.missing_shards)}")
    for folder, have, want in report.unfinished:
        problems.append(f"{folder} has {have} of its {want} row(s): that shard did not finish; "
                        f"run it again with --resume")
    if report.missing:
        problems.append(f"{len(report.missing)} submission(s) of the batch have no row: "
                        + ", ".join(report.missing))
    for problem in problems:
        print(f"cnnlab grade merge: {problem}", file=sys.stderr)
    print(f"statuses: {_status_counts(results)}"
          + (f"; missing {len(report.missing)}" if report.missing else ""), file=stream)
    return 1 if problems or any(r.status != "graded" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
