"""Which files a batch grades, and which rows of an interrupted batch it keeps
(``--resume``): every ``*.ipynb`` in the folders named, each with a unique row name, links and
anything that is not a plain file refused; earlier rows kept only for the same file (SHA-256)
graded with the same course secret.

Used in: ``cnnlab grade`` (``--resume``, ``--shard``), ``cnnlab grade merge``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cnnlab.grading.limits import Limits, MiB, UntrustedInputError, load_json_capped, sha256_capped
from cnnlab.grading.results import (
    EXERCISE_STATUS_MEANINGS,
    STATUS_MEANINGS,
    CellError,
    ExerciseResult,
    Submission,
    SubmissionResult,
)

__all__ = ["submissions_in", "kept_row", "resumable"]

_SCORES_BYTES = 256 * MiB  # an earlier scores.json, read back by --resume


def _refusal(path: Path, folder: Path | None = None) -> str:
    """Why ``path`` is not graded ("" when it is): a symbolic link, not a plain file, or (found
    in ``folder``) a name that leads outside it."""
    if path.is_symlink():
        return "a symbolic link; submit the notebook file itself"
    try:
        mode = path.lstat().st_mode
    except OSError as exc:
        return f"it cannot be read ({exc.strerror})"
    if not stat.S_ISREG(mode):
        return ("a folder, not a notebook file" if stat.S_ISDIR(mode)
                else "not a plain file (a pipe, socket or device); submit the notebook file")
    if folder is not None and os.path.realpath(path.parent) != os.path.realpath(folder):
        return "its name leads outside the submissions folder"
    return ""


def _stem(path: Path) -> str:
    name = path.name
    stem = name[:-len(".ipynb")] if name.lower().endswith(".ipynb") else path.stem
    return stem or name


def submissions_in(paths) -> list[Submission]:
    """Every file to grade, in order: each file named ``*.ipynb`` in any case (``x.IPYNB``)
    directly in a folder of ``paths``, and each file named in ``paths``.  Links and anything
    that is not a plain file are kept, refused; each gets a unique row name."""
    found = []
    for p in map(Path, paths):
        if p.is_dir():  # a folder the grader names may be a link; the files in it may not
            found += [(p / name, _refusal(p / name, p)) for name in sorted(os.listdir(p))
                      if name.lower().endswith(".ipynb")]
        elif p.exists() or p.is_symlink():
            found.append((p, _refusal(p)))
        else:
            raise FileNotFoundError(f"no such notebook or folder: {p}")
    named, used = [], set()
    for path, refused in found:
        name, n = _stem(path), 1
        while name in used:
            n += 1
            name = f"{_stem(path)}-{n}"
        used.add(name)
        named.append(Submission(path, name, refused))
    return named


def kept_row(data, exercises, path: Path) -> SubmissionResult | None:
    """A row of an earlier ``scores.json`` as a :class:`SubmissionResult`, or None when it does
    not have every field this lab's rows have (it is then graded again)."""
    try:
        by_id = data["exercises"]
        rows = [ExerciseResult(ex.id, float(by_id[ex.id]["points"]), float(ex.points),
                               str(by_id[ex.id]["status"]),
                               [(str(c["name"]), bool(c["hidden"]), str(c["status"]),
                                 str(c.get("message", ""))) for c in by_id[ex.id].get("cases", [])],
                               str(by_id[ex.id].get("message", "")),
                               str(by_id[ex.id].get("flag", ""))) for ex in exercises]
        errors = [CellError(**error) for error in data.get("cell_errors", [])]
        result = SubmissionResult(str(data["submission"]), str(path), str(data["status"]), rows,
                                  float(data.get("seconds", 0.0)), str(data.get("message", "")),
                                  errors, str(data["sha256"]),
                                  secret_sha256=data.get("secret_sha256"))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    documented = result.status in STATUS_MEANINGS and all(
        e.status in EXERCISE_STATUS_MEANINGS for e in rows)
    return result if documented else None


def resumable(out: Path, number: str, exercises, submissions, limits: Limits,
               secret_digest: str | None = None) -> list:
    """The rows of ``out/scores.json`` that ``--resume`` keeps: same lab, graded with the same
    course secret (its SHA-256, or none both times), a submission that is still there under the
    same name with the same SHA-256.  Raises ValueError (with the fix)
    when that file cannot be read or holds another lab."""
    path = out / "scores.json"
    if not path.exists():
        return []
    try:
        data = load_json_capped(path, _SCORES_BYTES, limits.json_depth, f"{path}")
    except UntrustedInputError as exc:
        raise ValueError(f"cannot resume: {exc}; grade again without --resume") from None
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise ValueError(f"cannot resume: {path} is not a list of rows; grade again without "
                         "--resume")
    labs = {str(row["lab"]) for row in data if row.get("lab") is not None}
    if labs - {number}:
        raise ValueError(f"cannot resume: {path} holds scores of lab {', '.join(sorted(labs))},"
                         f" not lab {number}; use another --out, or grade without --resume")
    earlier = {row["submission"]: row for row in data
               if str(row.get("lab")) == number and isinstance(row.get("submission"), str)}
    kept = []
    for sub in submissions:
        row = earlier.get(sub.name)
        if sub.refused or row is None or not row.get("sha256") \
                or row.get("secret_sha256") != secret_digest:
            continue
        try:
            sha = sha256_capped(sub.path, limits.notebook_bytes)
        except UntrustedInputError:
            continue
        result = kept_row(row, exercises, sub.path) if sha == row["sha256"] else None
        if result is not None:
            kept.append(result)
    return kept
