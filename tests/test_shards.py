"""Grading in shards (``cnnlab grade --shard i/N``) and merging them (``cnnlab grade merge``).

Most tests need no kernel: the selection, the engines' variables and the merge's checks run with
a stand-in for grading one submission (full marks, in milliseconds).  One batch of Lab 01 is
graded for real, once whole and once in four shards then merged (``slow``: 5.5 minutes on the
shared 2-core machine, eight submissions twice with one job); the Slurm test
(tests/test_slurm.py) grades the same batch in the same shards under a real Slurm and compares
with the same whole run, so where it runs (``CNNLAB_SLURM_TEST=1``) the in-process one is
skipped.
"""

import csv
import importlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from cnnlab.cli import main
from cnnlab.exercise import LABS
from cnnlab.grading.grade import _submissions
from cnnlab.grading.shards import (
    MANIFEST,
    Shard,
    ShardError,
    chosen_shard,
    parse_shard,
    shard_names,
)
from cnnlab.notebooks import exercise_id
from tests.conftest import ROOT

grade_module = importlib.import_module("cnnlab.grading.grade")  # the module, not grade()
ENGINE_VARIABLES = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_STEP",
                    "SLURM_ARRAY_TASK_COUNT", "JOB_COMPLETION_INDEX",
                    "AWS_BATCH_JOB_ARRAY_INDEX", "AWS_BATCH_JOB_ARRAY_SIZE")


@pytest.fixture(autouse=True)
def no_engine(monkeypatch):
    """These tests may themselves run as a task of a job array: its variables must not leak."""
    for name in ENGINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)


# --------------------------------------------------------------------------------------------
# Which submissions a shard grades


def _named(*names):
    return [grade_module.Submission(Path(f"/x/{n}.ipynb"), n) for n in names]


NAMES = [f"student{n:03d}" for n in range(37)] + ["Zoë", "ana", "Ana", "b-2", "_x"]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7, 16, 50])
def test_every_submission_is_in_exactly_one_shard_and_shards_differ_by_at_most_one(count):
    subs = _named(*NAMES)
    slices = [shard_names(subs, Shard(i, count)) for i in range(count)]
    assert sum(len(s) for s in slices) == len(NAMES)
    assert set().union(*slices) == set(NAMES)
    assert max(map(len, slices)) - min(map(len, slices)) <= 1


def test_a_shard_is_every_nth_name_in_code_point_order_whatever_the_order_found():
    subs = _named("dave", "alice", "Carol", "bob", "eve")
    # code points: "Carol" < "alice" < "bob" < "dave" < "eve"
    assert shard_names(subs, Shard(0, 2)) == {"Carol", "bob", "eve"}
    assert shard_names(subs, Shard(1, 2)) == {"alice", "dave"}
    assert shard_names(list(reversed(subs)), Shard(1, 2)) == {"alice", "dave"}


@pytest.mark.slow
def test_the_selection_is_the_same_in_another_python_process_with_another_hash_seed(tmp_path):
    code = ("import json, sys; from pathlib import Path; "
            "from cnnlab.grading.grade import Submission; "
            "from cnnlab.grading.shards import Shard, shard_names; "
            "names = json.loads(sys.argv[1]); "
            "subs = [Submission(Path(n), n) for n in names]; "
            "print(json.dumps([sorted(shard_names(subs, Shard(i, 3))) for i in range(3)]))")
    runs = [subprocess.run([sys.executable, "-c", code, json.dumps(NAMES)], check=True,
                           capture_output=True, text=True,
                           env={**os.environ, "PYTHONHASHSEED": seed,
                                "PYTHONPATH": str(ROOT)}).stdout
            for seed in ("1", "2")]
    here = [sorted(shard_names(_named(*NAMES), Shard(i, 3))) for i in range(3)]
    assert json.loads(runs[0]) == json.loads(runs[1]) == here


def test_shards_split_exactly_the_files_cnnlab_grade_would_grade(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    for name in ("a.ipynb", "B.IPYNB", "c.Ipynb", "x.ipynb", "x.IPYNB", "notes.txt"):
        (subs / name).write_text("{}")
    (subs / "folder.ipynb").mkdir()
    (subs / "link.ipynb").symlink_to(subs / "a.ipynb")
    batch = {sub.name for sub in _submissions([subs])}
    assert batch == {"a", "B", "c", "x", "x-2", "folder", "link"}  # refused rows count too
    slices = [shard_names(_submissions([subs]), Shard(i, 3)) for i in range(3)]
    assert set().union(*slices) == batch and sum(map(len, slices)) == len(batch)


# --------------------------------------------------------------------------------------------
# The shard from --shard, or from the engine that runs the task


@pytest.mark.parametrize("environ, shards, expected", [
    ({"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "4"},
     None, (2, 4)),
    # --array=1-4: task ids 1..4 are shards 0..3
    ({"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "4"},
     None, (0, 4)),
    ({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "4"},
     None, (3, 4)),
    # --array=0-6:2: task ids 0, 2, 4, 6
    ({"SLURM_ARRAY_TASK_ID": "6", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_STEP": "2",
      "SLURM_ARRAY_TASK_COUNT": "4"}, None, (3, 4)),
    ({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"}, 4, (3, 4)),
    ({"JOB_COMPLETION_INDEX": "0"}, 3, (0, 3)),
    ({"JOB_COMPLETION_INDEX": "2"}, 3, (2, 3)),
    ({"AWS_BATCH_JOB_ARRAY_INDEX": "5", "AWS_BATCH_JOB_ARRAY_SIZE": "8"}, None, (5, 8)),
    ({"AWS_BATCH_JOB_ARRAY_INDEX": "5"}, 6, (5, 6)),
], ids=["slurm", "slurm-from-1-first", "slurm-from-1-last", "slurm-step", "slurm-shards",
        "k8s-first", "k8s-last", "aws", "aws-shards"])
def test_each_engines_variables_give_the_shard(environ, shards, expected):
    shard = chosen_shard(None, shards, environ)
    assert (shard.index, shard.count) == expected
    assert shard.source.split("=")[0] in environ


def test_no_shard_and_no_engine_is_the_whole_batch_and_shard_beats_the_engine():
    assert chosen_shard(None, None, {"HOME": "/root"}) is None
    slurm = {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "4"}
    assert chosen_shard("3/5", None, slurm) == Shard(3, 5)


@pytest.mark.parametrize("spec, shards, environ, words", [
    ("4/4", None, {}, "shard 4 of 4 does not exist"),
    ("-1/4", None, {}, "is not a whole number"),
    ("1/0", None, {}, "at least 1"),
    ("0/0", None, {}, "at least 1"),
    ("a/4", None, {}, "'a' is not a whole number"),
    ("2", None, {}, "is not i/N"),
    ("1/4", 3, {}, "disagree"),
    (None, 0, {"JOB_COMPLETION_INDEX": "0"}, "at least 1"),
    (None, 4, {}, "needs this task's index"),
    (None, None, {"JOB_COMPLETION_INDEX": "1"}, "add --shards N"),
    (None, 2, {"JOB_COMPLETION_INDEX": "2"}, "shard 2 of 2 does not exist"),
    (None, None, {"JOB_COMPLETION_INDEX": "one"}, "'one' is not a whole number"),
    (None, None, {"SLURM_ARRAY_TASK_ID": "3"}, "add --shards N"),
    (None, None, {"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "4"}, "not a whole"),
    (None, None, {"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4"}, "--array=0-3"),
    (None, None, {"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_MIN": "1",
                  "SLURM_ARRAY_TASK_COUNT": "4"}, "contiguous --array"),
    (None, 3, {"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "4"}, "disagrees"),
    (None, None, {"AWS_BATCH_JOB_ARRAY_INDEX": "0"}, "add --shards N"),
    (None, None, {"AWS_BATCH_JOB_ARRAY_INDEX": "2", "AWS_BATCH_JOB_ARRAY_SIZE": "2"},
     "does not exist"),
])
def test_bad_shards_are_errors_that_name_the_value_and_the_fix(spec, shards, environ, words):
    with pytest.raises(ShardError, match=None) as raised:
        chosen_shard(spec, shards, environ)
    assert words in str(raised.value)


def test_parse_shard_reads_i_of_n():
    assert parse_shard("0/1") == Shard(0, 1) and parse_shard(" 3 / 8 ") == Shard(3, 8)


@pytest.mark.slow
def test_bad_shard_values_exit_2_with_a_message_and_grade_nothing(tmp_path, monkeypatch,
                                                                  capsys):
    monkeypatch.setattr(grade_module, "_grade_steps", _fake_steps())
    subs = _notebooks(tmp_path / "subs", "a", "b")
    out = tmp_path / "out"
    assert main(["grade", "--lab", "01", str(subs), "--out", str(out), "--shard", "2/2"]) == 2
    assert "cnnlab grade: --shard: shard 2 of 2 does not exist" in capsys.readouterr().err
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "1")
    assert main(["grade", "--lab", "01", str(subs), "--out", str(out)]) == 2
    assert "add --shards N (the Job's completions)" in capsys.readouterr().err
    assert not out.exists()


# --------------------------------------------------------------------------------------------
# Shards and the merge, with a stand-in for grading one submission


def _fake_steps():
    """Grading one submission without a kernel: points from the notebook's ``points`` field."""

    def steps(sub, template, exercises, options, step):
        data = json.loads(sub.path.read_text())
        rows = [grade_module.ExerciseResult(ex.id, min(float(data.get("points", ex.points)),
                                                       ex.points), float(ex.points), "pass")
                for ex in exercises]
        return grade_module.SubmissionResult(
            sub.name, str(sub.path), "graded", rows, 0.0,
            sha256=grade_module.sha256_capped(sub.path, 2**30))

    return steps


def _notebooks(folder: Path, *names, points=None) -> Path:
    folder.mkdir(exist_ok=True)
    for n, name in enumerate(names):
        (folder / f"{name}.ipynb").write_text(json.dumps(
            {"cells": [], "name": name, "points": n % 3 if points is None else points}))
    return folder


def _grade_shards(subs: Path, results: Path, count: int, *extra) -> list[Path]:
    folders = []
    for i in range(count):
        folder = results / f"shard-{i}"
        assert main(["grade", "--lab", "01", str(subs), "--out", str(folder), "--jobs", "1",
                     "--shard", f"{i}/{count}", *extra]) == 0
        folders.append(folder)
    return folders


def _without(row: dict, *keys) -> dict:
    return {k: v for k, v in row.items() if k not in keys}


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setattr(grade_module, "_grade_steps", _fake_steps())


@pytest.mark.slow
def test_shards_merged_write_the_scores_and_feedback_of_one_run(tmp_path, fake, capsys):
    subs = _notebooks(tmp_path / "subs", *"abcdefghij")
    (subs / "K.IPYNB").write_text("{}")
    (subs / "link.ipynb").symlink_to(subs / "a.ipynb")  # a refused row, in one of the shards
    assert main(["grade", "--lab", "01", str(subs), "--out", str(tmp_path / "whole"),
                 "--jobs", "1"]) == 1  # the link is refused
    folders = _grade_shards_allowing_refused(subs, tmp_path / "results", 4)
    capsys.readouterr()
    assert main(["grade", "merge", str(tmp_path / "merged"), *map(str, folders)]) == 1
    output = capsys.readouterr()
    assert "statuses: graded 11, refused 1" in output.out and output.err == ""
    whole, merged = tmp_path / "whole", tmp_path / "merged"
    assert (merged / "scores.csv").read_bytes() == (whole / "scores.csv").read_bytes()
    rows = [json.loads((d / "scores.json").read_text()) for d in (whole, merged)]
    assert [_without(r, "seconds") for r in rows[0]] == [_without(r, "seconds") for r in rows[1]]
    assert sorted(p.name for p in (merged / "feedback").iterdir()) == \
        sorted(p.name for p in (whole / "feedback").iterdir())
    for path in (whole / "feedback").iterdir():
        assert (merged / "feedback" / path.name).read_bytes() == path.read_bytes()


def _grade_shards_allowing_refused(subs, results, count):
    folders = []
    for i in range(count):
        folder = results / f"shard-{i}"
        assert main(["grade", "--lab", "01", str(subs), "--out", str(folder), "--jobs", "1",
                     "--shard", f"{i}/{count}"]) in (0, 1)
        folders.append(folder)
    return folders


@pytest.mark.slow
def test_each_shard_writes_a_manifest_of_the_batch_and_of_its_slice(tmp_path, fake):
    subs = _notebooks(tmp_path / "subs", "a", "b", "c")
    secret = tmp_path / "secret"
    secret.write_text("s" * 32)
    (folder,) = [f for f in _grade_shards(subs, tmp_path / "r", 2, "--secret", str(secret))
                 if f.name == "shard-1"]
    manifest = json.loads((folder / MANIFEST).read_text())
    import hashlib

    digest = {n: hashlib.sha256((subs / f"{n}.ipynb").read_bytes()).hexdigest() for n in "abc"}
    assert (manifest["lab"], manifest["shard"], manifest["shards"]) == ("01", 1, 2)
    assert manifest["secret_sha256"] == hashlib.sha256(b"s" * 32).hexdigest()
    assert manifest["batch"] == [{"submission": n, "sha256": digest[n]} for n in "abc"]
    assert manifest["slice"] == [{"submission": "b", "sha256": digest["b"]}]
    assert [row["submission"] for row in json.loads((folder / "scores.json").read_text())] == \
        ["b"]


@pytest.mark.slow
def test_the_default_out_becomes_one_folder_per_shard(tmp_path, fake, monkeypatch):
    subs = _notebooks(tmp_path / "subs", "a", "b", "c")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "2")
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "1")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "3")
    assert main(["grade", "--lab", "01", str(subs), "--jobs", "1"]) == 0
    assert json.loads((tmp_path / "results" / "shard-1-of-3" / MANIFEST).read_text())["slice"][
        0]["submission"] == "b"
    assert not (tmp_path / "results" / "scores.csv").exists()


@pytest.mark.slow
def test_two_shards_into_one_folder_is_refused_before_grading(tmp_path, fake, capsys):
    subs = _notebooks(tmp_path / "subs", "a", "b")
    out = tmp_path / "out"
    assert main(["grade", "--lab", "01", str(subs), "--out", str(out), "--shard", "0/2"]) == 0
    before = (out / "scores.json").read_bytes()
    assert main(["grade", "--lab", "01", str(subs), "--out", str(out), "--shard", "1/2"]) == 2
    assert "already holds the results of shard 0/2" in capsys.readouterr().err
    assert (out / "scores.json").read_bytes() == before


@pytest.mark.slow
def test_a_shard_run_again_with_resume_keeps_its_rows_and_grades_only_the_rest(tmp_path, fake,
                                                                               capsys):
    subs = _notebooks(tmp_path / "subs", *"abcd")
    out = tmp_path / "out"
    assert main(["grade", "--lab", "01", str(subs), "--out", str(out), "--shard", "1/2"]) == 0
    rows = json.loads((out / "scores.json").read_text())
    (out / "scores.json").write_text(json.dumps(rows[:1]))  # the task was stopped after b
    capsys.readouterr()
    assert main(["grade", "--lab", "01", str(subs), "--out", str(out), "--shard", "1/2",
                 "--resume"]) == 0
    log = capsys.readouterr().out
    assert "resuming: kept 1 row(s)" in log and "grading 1 submission(s)" in log
    assert "moved the earlier manifest aside" in log
    assert [r["submission"] for r in json.loads((out / "scores.json").read_text())] == ["b", "d"]


@pytest.mark.slow
def test_a_missing_shard_is_reported_and_the_rest_is_written(tmp_path, fake, capsys):
    subs = _notebooks(tmp_path / "subs", *"abcdef")
    folders = _grade_shards(subs, tmp_path / "r", 3)
    capsys.readouterr()
    out = tmp_path / "merged"
    assert main(["grade", "merge", str(out), str(folders[0]), str(folders[2])]) == 1
    err = capsys.readouterr().err
    assert "shard(s) not given: 1/3" in err
    assert "2 submission(s) of the batch have no row: b, e" in err
    assert [r["submission"] for r in json.loads((out / "scores.json").read_text())] == \
        ["a", "c", "d", "f"]


@pytest.mark.slow
def test_an_unfinished_shard_is_reported_with_its_missing_rows(tmp_path, fake, capsys):
    subs = _notebooks(tmp_path / "subs", *"abcd")
    folders = _grade_shards(subs, tmp_path / "r", 2)
    rows = json.loads((folders[1] / "scores.json").read_text())
    (folders[1] / "scores.json").write_text(json.dumps(rows[:1]))  # stopped after one
    capsys.readouterr()
    assert main(["grade", "merge", str(tmp_path / "m"), *map(str, folders)]) == 1
    err = capsys.readouterr().err
    assert f"{folders[1]} has 1 of its 2 row(s)" in err and "no row: d" in err


@pytest.mark.slow
def test_a_shard_merged_twice_is_a_duplicate_kept_once(tmp_path, fake, capsys):
    subs = _notebooks(tmp_path / "subs", *"abcd")
    folders = _grade_shards(subs, tmp_path / "r", 2)
    copy = tmp_path / "copy-of-1"
    shutil.copytree(folders[1], copy)
    capsys.readouterr()
    out = tmp_path / "m"
    assert main(["grade", "merge", str(out), *map(str, folders), str(copy)]) == 0
    assert "duplicate: b was graded in" in capsys.readouterr().out
    assert len(json.loads((out / "scores.json").read_text())) == 4


@pytest.mark.slow
def test_a_submission_graded_twice_with_different_results_is_an_error(tmp_path, fake, capsys):
    subs = _notebooks(tmp_path / "subs", *"abcd")
    folders = _grade_shards(subs, tmp_path / "r", 2)
    copy = tmp_path / "copy-of-1"
    shutil.copytree(folders[1], copy)
    rows = json.loads((copy / "scores.json").read_text())
    rows[0]["total"] = rows[0]["max"]
    (copy / "scores.json").write_text(json.dumps(rows))
    capsys.readouterr()
    out = tmp_path / "m"
    assert main(["grade", "merge", str(out), *map(str, folders), str(copy)]) == 2
    err = capsys.readouterr().err
    assert "'b' was graded twice with different results" in err
    assert str(folders[1]) in err and str(copy) in err
    assert not (out / "scores.csv").exists()


@pytest.mark.slow
@pytest.mark.parametrize("change", ["lab", "secret", "batch", "count"])
def test_shards_of_different_batches_are_refused_naming_them(tmp_path, fake, capsys, change):
    subs = _notebooks(tmp_path / "subs", *"abcd")
    secret = tmp_path / "secret"
    secret.write_text("s" * 32)
    first = tmp_path / "first"
    assert main(["grade", "--lab", "01", str(subs), "--out", str(first), "--shard", "0/2",
                 "--secret", str(secret)]) == 0
    args = {"lab": "01", "secret": str(secret), "shard": "1/2"}
    if change == "lab":
        args["lab"] = "02"
    elif change == "secret":
        secret.write_text("t" * 32)
    elif change == "batch":
        (subs / "e.ipynb").write_text("{}")
    else:
        args["shard"] = "1/3"
    second = tmp_path / "second"
    assert main(["grade", "--lab", args["lab"], str(subs), "--out", str(second), "--shard",
                 args["shard"], "--secret", args["secret"]]) in (0, 1)
    capsys.readouterr()
    assert main(["grade", "merge", str(tmp_path / "m"), str(first), str(second)]) == 2
    err = capsys.readouterr().err
    assert "the shards are not of one batch" in err and str(first) in err and str(second) in err
    assert not (tmp_path / "m" / "scores.csv").exists()


@pytest.mark.slow
def test_merge_refuses_folders_that_are_not_shards_and_a_shard_as_out(tmp_path, fake, capsys):
    subs = _notebooks(tmp_path / "subs", "a", "b")
    whole = tmp_path / "whole"
    assert main(["grade", "--lab", "01", str(subs), "--out", str(whole)]) == 0
    folders = _grade_shards(subs, tmp_path / "r", 2)
    capsys.readouterr()
    assert main(["grade", "merge", str(tmp_path / "m"), str(whole)]) == 2
    assert "has no shard.json" in capsys.readouterr().err
    assert main(["grade", "merge", str(folders[0]), *map(str, folders)]) == 2
    assert "is a shard's results folder" in capsys.readouterr().err
    assert main(["grade", "merge", str(tmp_path / "m"), str(tmp_path / "nowhere")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["grade", "merge", str(tmp_path / "m")])
    assert usage.value.code == 2


@pytest.mark.slow
def test_a_row_that_would_not_write_back_as_it_was_read_is_refused(tmp_path, fake, capsys):
    subs = _notebooks(tmp_path / "subs", "a", "b")
    folders = _grade_shards(subs, tmp_path / "r", 2)
    rows = json.loads((folders[0] / "scores.json").read_text())
    rows[0]["graded_by"] = "a later cnnlab"  # a field this version does not write
    (folders[0] / "scores.json").write_text(json.dumps(rows))
    capsys.readouterr()
    assert main(["grade", "merge", str(tmp_path / "m"), *map(str, folders)]) == 2
    assert "the row of 'a' does not write back as it was read (graded_by differ)" in \
        capsys.readouterr().err
    assert not (tmp_path / "m" / "scores.csv").exists()


@pytest.mark.slow
def test_a_row_of_another_shard_or_of_a_changed_file_is_refused(tmp_path, fake, capsys):
    subs = _notebooks(tmp_path / "subs", *"abcd")
    folders = _grade_shards(subs, tmp_path / "r", 2)
    first, second = (json.loads((f / "scores.json").read_text()) for f in folders)
    (folders[1] / "scores.json").write_text(json.dumps(second + first[:1]))
    capsys.readouterr()
    assert main(["grade", "merge", str(tmp_path / "m"), *map(str, folders)]) == 2
    assert "has a row for 'a', which is not in shard 1/2's slice" in capsys.readouterr().err
    second[0]["sha256"] = "0" * 64  # graded from another file than the manifest saw
    (folders[1] / "scores.json").write_text(json.dumps(second))
    assert main(["grade", "merge", str(tmp_path / "m"), *map(str, folders)]) == 2
    assert "was graded from a file that is not the one in the batch" in capsys.readouterr().err
    assert not (tmp_path / "m" / "scores.csv").exists()


@pytest.mark.slow
def test_merging_again_moves_the_earlier_scores_aside(tmp_path, fake, capsys):
    subs = _notebooks(tmp_path / "subs", "a", "b")
    folders = _grade_shards(subs, tmp_path / "r", 2)
    out = tmp_path / "m"
    assert main(["grade", "merge", str(out), *map(str, folders)]) == 0
    first = (out / "scores.csv").read_bytes()
    assert main(["grade", "merge", str(out), *map(str, folders)]) == 0
    assert "moved the earlier scores aside" in capsys.readouterr().out
    old = sorted(out.glob("scores-*.csv.old"))
    assert len(old) == 1 and old[0].read_bytes() == first


# --------------------------------------------------------------------------------------------
# A real batch of Lab 01: whole, and in four shards merged

LAB01 = ROOT / "solutions" / f"{LABS['01']}.ipynb"


def write_batch(folder: Path) -> Path:
    """Eight submissions of Lab 01: solved (twice), untouched (twice), not JSON, half the
    exercises stubbed, a syntax error, an exercise that raises."""
    folder.mkdir(parents=True, exist_ok=True)
    lab = ROOT / "labs" / LAB01.name
    for name in ("alice", "bob"):
        shutil.copyfile(LAB01, folder / f"{name}.ipynb")
    for name in ("carol", "dave"):
        shutil.copyfile(lab, folder / f"{name}.ipynb")
    (folder / "eve.ipynb").write_text(LAB01.read_text()[:1500])
    stubs = {exercise_id(c): c.source for c in nbformat.read(lab, as_version=4).cells
             if exercise_id(c)}
    ids = list(stubs)
    for name, replace in (("frank", {i: stubs[i] for i in ids[::2]}),
                          ("grace", {ids[1]: "def broken(:\n    pass"}),
                          ("heidi", {ids[0]: "raise ValueError('not today')"})):
        nb = nbformat.read(LAB01, as_version=4)
        for cell in nb.cells:
            if exercise_id(cell) in replace:
                cell.source = replace[exercise_id(cell)]
        nbformat.write(nb, folder / f"{name}.ipynb")
    return folder


def graded(folder: Path) -> dict:
    """``{submission: (status, total, {exercise: (points, status)})}`` from ``scores.json``."""
    return {row["submission"]: (row["status"], row["total"],
                                {ex: (v["points"], v["status"]) for ex, v in
                                 row["exercises"].items()})
            for row in json.loads((folder / "scores.json").read_text())}


def csv_without_similar(folder: Path) -> list[list[str]]:
    """``scores.csv`` without its ``similar`` column (each shard compares its own rows)."""
    rows = list(csv.reader(io.StringIO((folder / "scores.csv").read_text())))
    drop = rows[0].index("similar")
    return [row[:drop] + row[drop + 1:] for row in rows]


GRADE_ARGS = ["--jobs", "1", "--timeout-cell", "120", "--timeout-notebook", "400"]


_WHOLE = {}  # the whole run of the batch, once per test session


def whole_run(tmp_path_factory) -> Path:
    """The batch graded by one ``cnnlab grade``: its results folder, beside ``submissions/``
    (once per test session; tests/test_slurm.py compares with the same run)."""
    if "out" not in _WHOLE:
        root = tmp_path_factory.mktemp("shard-batch")
        subs = write_batch(root / "submissions")
        out = root / "whole"
        code = main(["grade", "--lab", "01", str(subs), "--out", str(out), *GRADE_ARGS])
        assert code == 1  # eve's notebook is not JSON: unreadable
        _WHOLE["out"] = out
    return _WHOLE["out"]


@pytest.fixture(scope="session")
def lab01_whole(tmp_path_factory):
    return whole_run(tmp_path_factory)


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("CNNLAB_SLURM_TEST") == "1",
                    reason="tests/test_slurm.py grades the same batch in the same four shards "
                           "under Slurm and compares it the same way (CI time)")
def test_lab01_in_four_shards_merged_scores_as_one_run(lab01_whole, tmp_path, capsys):
    subs = lab01_whole.parent / "submissions"
    folders = []
    for i in range(4):
        folders.append(tmp_path / f"shard-{i}")
        assert main(["grade", "--lab", "01", str(subs), "--out", str(folders[-1]),
                     "--shard", f"{i}/4", *GRADE_ARGS]) in (0, 1)
    merged = tmp_path / "merged"
    assert main(["grade", "merge", str(merged), *map(str, folders)]) == 1  # eve: unreadable
    assert "statuses: graded 7, unreadable 1" in capsys.readouterr().out
    whole = graded(lab01_whole)
    assert whole["alice"][0] == "graded" and whole["alice"][1] == whole["bob"][1] > 0
    assert whole["carol"][1] == 0 and whole["eve"][0] == "unreadable"
    assert 0 < whole["frank"][1] < whole["alice"][1] and whole["grace"][1] < whole["alice"][1]
    assert graded(merged) == whole
    assert csv_without_similar(merged) == csv_without_similar(lab01_whole)
    for path in (lab01_whole / "feedback").iterdir():
        assert (merged / "feedback" / path.name).read_text() == path.read_text()
