"""The batch never dies for one submission: caps, odd files, crashes, reports, resume, exit status.

Each attack on the batch (issue 13, part 3) has a test here.  Most need no kernel: discovery, the
caps, the checks of what a kernel wrote, the reports and resuming are tested directly, and the
parse deadline with a notebook that never reaches a kernel.  One batch of Lab 01 (two kernels,
side by side) checks the attacks that need a running notebook.
"""

import csv
import importlib
import io
import json
import os
import re
import time
import tracemalloc
from pathlib import Path

import nbformat
import pytest

from cnnlab.exercise import LABS
from cnnlab.grading.hidden import graded_exercises
from cnnlab.grading import grade, prepare_submission
from cnnlab.grading.grade import (
    EXERCISE_STATUS_MEANINGS,
    STATUS_MEANINGS,
    ExerciseResult,
    SubmissionResult,
)
from cnnlab.grading.limits import (
    Limits,
    UntrustedInputError,
    json_depth,
    load_json_capped,
    read_capped,
)
from cnnlab.grading.prepare import ParseServer, read_notebook
from cnnlab.grading.reports import Reports, csv_safe, move_aside, write_atomic
from cnnlab.notebooks import exercise_id
from tests.conftest import ROOT

grade_module = importlib.import_module("cnnlab.grading.grade")  # the module, not grade()
LAB01 = ROOT / "solutions" / f"{LABS['01']}.ipynb"
EXERCISES_01 = graded_exercises("01")
TOTAL_01 = sum(ex.points for ex in EXERCISES_01)
DEEP = "[" * 100_000 + "]" * 100_000


def _solution():
    return nbformat.read(LAB01, as_version=4)


def _write(nb, path: Path) -> Path:
    nbformat.write(nb, path)
    return path


def _replace(nb, ex_id: str, source: str):
    next(c for c in nb.cells if exercise_id(c) == ex_id).source = source
    return nb


# --------------------------------------------------------------------------------------------
# A notebook of any shape is read or refused, never a crash


ODD_CELLS = {
    "tags_an_int": {"cell_type": "markdown", "metadata": {"tags": 5}, "source": "x"},
    "tags_a_string": {"cell_type": "code", "metadata": {"tags": "exercise:01.correlate2d"}},
    "tags_of_numbers": {"cell_type": "code", "metadata": {"tags": [5, None, ["x"]]}},
    "metadata_a_list": {"cell_type": "code", "metadata": ["tags"]},
    "metadata_missing": {"cell_type": "code", "source": ""},
    "cell_an_int": 5,
    "cell_a_list": ["exercise:01.correlate2d"],
    "cell_none": None,
}


@pytest.mark.parametrize("cell", ODD_CELLS.values(), ids=ODD_CELLS)
def test_exercise_id_reads_any_metadata_shape_as_no_exercise(cell):
    assert exercise_id(cell) is None


def test_exercise_id_still_reads_a_tagged_cell():
    cell = {"cell_type": "code", "metadata": {"tags": [7, "exercise:01.correlate2d"]}}
    assert exercise_id(cell) == "01.correlate2d"


def test_odd_cells_and_sources_are_ignored_when_a_submission_is_prepared():
    template = nbformat.read(ROOT / "labs" / LAB01.name, as_version=4)
    submission = {"cells": [
        *ODD_CELLS.values(),
        {"cell_type": "code", "metadata": {"tags": ["exercise:01.to_grayscale"]}, "source": 5},
        {"cell_type": "code", "metadata": {"tags": ["exercise:01.correlate2d"]},
         "source": ["def correlate2d(image, kernel):\n", "    return image\n"]},
        {"metadata": {"tags": ["exercise:01.convolve2d"]}, "source": "no cell type"},
    ]}
    nb, positions, missing = prepare_submission(template, submission, EXERCISES_01)
    assert nb.cells[positions["01.correlate2d"][0]].source == \
        "def correlate2d(image, kernel):\n    return image\n"
    assert {"01.to_grayscale", "01.convolve2d"} <= missing  # unusable cells: as if absent
    assert "01.correlate2d" not in missing


def _job(workdir: Path, notebook: Path) -> dict:
    """What the grader hands the parse worker for ``notebook`` (Lab 01)."""
    from cnnlab.grading.integrity import implementations
    from cnnlab.notebooks import build_lab

    workdir.mkdir(exist_ok=True)
    return {"notebook": str(notebook), "template": build_lab(_solution(), LAB01.name),
            "forbidden": {ex.id: implementations(ex) for ex in EXERCISES_01},
            "exercise_ids": [ex.id for ex in EXERCISES_01], "exports": str(workdir),
            "workdir": str(workdir), "limits": {"notebook_bytes": 2**24, "json_depth": 100}}


ODD_NOTEBOOKS = {  # what the first (markdown) cell of the solved lab becomes
    "tags_an_int": lambda cell: cell.update(metadata={"tags": 5}),
    "metadata_a_list": lambda cell: cell.update(metadata=["tags"]),
    "metadata_missing": lambda cell: cell.pop("metadata"),
    "source_an_int": lambda cell: cell.update(source=5),
    "cell_type_missing": lambda cell: cell.pop("cell_type"),
    "cell_empty": lambda cell: cell.clear(),
}


@pytest.mark.parametrize("mutate", ODD_NOTEBOOKS.values(), ids=ODD_NOTEBOOKS)
def test_a_notebook_of_any_shape_is_prepared_or_unreadable_never_a_crash(tmp_path, mutate):
    from cnnlab.grading.prepare import prepare_job

    data = json.loads(LAB01.read_text())
    mutate(data["cells"][0])
    (tmp_path / "odd.ipynb").write_text(json.dumps(data))
    result = prepare_job(_job(tmp_path / "work", tmp_path / "odd.ipynb"))
    assert result["ok"] or (result["status"], result["message"][:20]) == \
        ("unreadable", "unreadable notebook:")
    if result["ok"]:
        assert result["missing"] == []  # every exercise cell still found


# --------------------------------------------------------------------------------------------
# Caps: size first, nesting without recursion, plain files only


def test_json_depth_is_counted_without_parsing_and_strings_do_not_count():
    assert json_depth(b"[]") == 1 and json_depth(b'{"a": [1]}') == 2 and json_depth(b"7") == 0
    assert json_depth(b'["[[[\\"[[", {"}": "]]"}]') == 2
    assert json_depth(b'"' + b'\\"[' * 1000) == 0  # an unterminated string is still a string
    start = time.monotonic()
    assert json_depth(DEEP.encode()) == 100_000
    assert json_depth(b'"\\"' * 2_000_000) == 0  # escapes cannot make the scan quadratic
    assert time.monotonic() - start < 5


def test_a_deeply_nested_file_is_refused_before_it_is_parsed(tmp_path):
    (tmp_path / "deep.json").write_text(DEEP)
    with pytest.raises(UntrustedInputError, match="more than 100 levels deep.*--max-json-depth"):
        load_json_capped(tmp_path / "deep.json", 2**20, 100, "the exported answer")


def test_a_large_file_is_refused_by_its_size_before_it_is_read(tmp_path):
    big = tmp_path / "big.json"
    with big.open("wb") as handle:  # 300 MiB, sparse: no disk, and never read
        handle.truncate(300 * 2**20)
    tracemalloc.start()
    try:
        with pytest.raises(UntrustedInputError,
                           match=r"the exported answer is 300\.0 MiB, over the 10\.0 MiB cap; "
                                 "raise the cap with --max-answer-mb"):
            read_capped(big, 10 * 2**20, "the exported answer", "--max-answer-mb")
        assert tracemalloc.get_traced_memory()[1] < 2**20
    finally:
        tracemalloc.stop()


def test_links_pipes_and_folders_are_refused_without_blocking(tmp_path):
    (tmp_path / "real.json").write_text("{}")
    (tmp_path / "link.json").symlink_to(tmp_path / "real.json")
    (tmp_path / "zero.json").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "fifo.json")  # opening it for reading would wait for a writer
    (tmp_path / "dir.json").mkdir()
    assert load_json_capped(tmp_path / "real.json", 100, 10) == {}
    for name, reason in [("link.json", "symbolic link"), ("zero.json", "symbolic link"),
                         ("fifo.json", "pipe"), ("dir.json", "folder")]:
        with pytest.raises(UntrustedInputError, match=reason):
            read_capped(tmp_path / name, 100)


def test_a_notebook_over_the_caps_is_refused_with_the_option_that_raises_them(tmp_path):
    path = _write(_solution(), tmp_path / "s.ipynb")
    assert read_notebook(path).cells
    with pytest.raises(UntrustedInputError, match="over the 0.0 MiB cap.*--max-notebook-mb"):
        read_notebook(path, Limits(notebook_bytes=1000))
    (tmp_path / "deep.ipynb").write_text(DEEP)
    with pytest.raises(UntrustedInputError, match="--max-json-depth"):
        read_notebook(tmp_path / "deep.ipynb")
    (tmp_path / "list.ipynb").write_text("[]")
    with pytest.raises(UntrustedInputError):
        read_notebook(tmp_path / "list.ipynb")


# --------------------------------------------------------------------------------------------
# What the kernel wrote is checked before it is judged


def _judge(records):
    """Judge 01.correlate2d from the records its export cell handed the runner."""
    ex = next(e for e in EXERCISES_01 if e.id == "01.correlate2d")
    ok = {"status": "ok", "ename": "", "evalue": "", "line": None, "innermost": None}
    progress = {"cells": {"0": ok, "1": {**ok, "records": records}}, "end": "finished"}
    return grade_module._judge_exercise(ex, {ex.id: (0, 1)}, set(), progress, "finished")


MALFORMED_RECORDS = {
    "none": [],
    "numbers": [1, 2],
    "answer_twice": [{"kind": "answer", "defined": True, "origin": ""}] * 2,
    "defined_not_a_bool": [{"kind": "answer", "defined": "yes", "origin": ""}],
}


@pytest.mark.parametrize("records", MALFORMED_RECORDS.values(), ids=MALFORMED_RECORDS)
def test_malformed_answer_records_are_an_error_of_that_exercise(records):
    result = _judge(records)
    assert result.status == "error" and result.points == 0
    assert result.message.startswith("could not test your answer")


def test_well_formed_records_for_no_known_case_are_still_judged():
    result = _judge([{"kind": "answer", "defined": True, "origin": ""},
                     {"kind": "case", "case": "nonexistent", "outcome": "returned",
                      "data": "1"}])
    assert result.status == "error" and {c[3] for c in result.cases} == {"no result"}


MALFORMED_PROGRESS = {
    "a_list": "[]",
    "cells_a_list": '{"cells": [], "end": "finished"}',
    "a_key_not_a_number": '{"cells": {"x": {"status": "ok"}}, "end": "finished"}',
    "an_entry_not_a_record": '{"cells": {"0": 5}, "end": "finished"}',
    "ename_not_text": '{"cells": {"0": {"status": "error", "ename": 5}}, "end": "finished"}',
    "innermost_odd": '{"cells": {"0": {"status": "ok", "innermost": [1]}}, "end": "finished"}',
    "records_not_a_list": '{"cells": {"0": {"status": "ok", "records": 5}}, "end": "finished"}',
    "end_not_text": '{"cells": {}, "end": 5}',
    "deep": DEEP,
}


@pytest.mark.parametrize("text", MALFORMED_PROGRESS.values(), ids=MALFORMED_PROGRESS)
def test_a_malformed_progress_record_ends_the_run_as_an_error(tmp_path, text):
    # the runner's last line on its stdout: the whole record
    progress, problem = grade_module._read_progress([text.encode()], Limits())
    assert problem.startswith("the run's progress record")
    ended, message = grade_module._how_it_ended("finished", progress, problem)
    assert (ended, message) == ("error", problem)
    assert grade_module._ROW_STATUS[ended] == "error"


def test_a_runner_killed_from_the_notebook_is_kernel_died_not_running():
    ended, message = grade_module._how_it_ended("finished", {"cells": {}, "end": "running"})
    assert grade_module._ROW_STATUS[ended] == "kernel_died"
    assert "runner was stopped" in message


# --------------------------------------------------------------------------------------------
# Statuses: each one documented, in the code and in the README


def _endings():
    """Every (ended, progress end) the runner or a kernel can leave, as a row status."""
    ends = ["finished", "kernel_died", "running", "runner_error: KeyError: 'x'", "odd", 5, None]
    out = {grade_module._ROW_STATUS[grade_module._how_it_ended(ended, {"end": end})[0]]
           for ended in ("finished", "timeout", "memory") for end in ends}
    out.add(grade_module._ROW_STATUS[grade_module._how_it_ended(
        "finished", {"end": "finished"}, "the run's progress record is malformed")[0]])
    return out


def test_every_status_a_row_can_get_is_documented():
    made = _endings() | {"refused", "unreadable", "error"}  # discovery, reading, any failure
    assert made == set(STATUS_MEANINGS)
    assert set(grade_module._ROW_STATUS.values()) <= set(STATUS_MEANINGS)
    assert {status for status, _ in grade_module._ENDINGS.values()} <= \
        set(EXERCISE_STATUS_MEANINGS)


def test_the_readme_lists_every_status_with_its_meaning():
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    for statuses in (STATUS_MEANINGS, EXERCISE_STATUS_MEANINGS):
        for status, meaning in statuses.items():
            assert f"`{status}`: {meaning}" in readme, status


# --------------------------------------------------------------------------------------------
# Discovery: every *.ipynb gets a row; links and odd files are refused


def test_every_ipynb_in_any_case_gets_a_row_and_links_are_refused(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    for name in ("a.ipynb", "x.IPYNB", "b.Ipynb"):
        (subs / name).write_text("{}")
    (subs / "notes.txt").write_text("")
    (subs / "link.ipynb").symlink_to(LAB01)
    (subs / "dangling.ipynb").symlink_to(tmp_path / "nowhere.ipynb")
    (subs / "folder.ipynb").mkdir()
    os.mkfifo(subs / "fifo.ipynb")
    found = {s.name: s.refused for s in grade_module._submissions([subs])}
    assert set(found) == {"a", "x", "b", "link", "dangling", "folder", "fifo"}
    assert found["a"] == found["x"] == found["b"] == ""
    assert found["link"] == found["dangling"] == "a symbolic link; submit the notebook file itself"
    assert "folder" in found["folder"] and "pipe" in found["fifo"]
    (tmp_path / "linked").symlink_to(subs)  # a folder the grader names may be a link
    assert {s.name: s.refused for s in grade_module._submissions([tmp_path / "linked"])} == found


def test_a_link_named_on_the_command_line_is_refused_too(tmp_path):
    (tmp_path / "mine.ipynb").symlink_to(LAB01)
    (sub,) = grade_module._submissions([tmp_path / "mine.ipynb"])
    assert sub.refused.startswith("a symbolic link")
    with pytest.raises(FileNotFoundError, match="no such notebook"):
        grade_module._submissions([tmp_path / "absent.ipynb"])


def test_rows_get_unique_names(tmp_path):
    for name in ("x.ipynb", "x.IPYNB", ".ipynb"):
        (tmp_path / name).write_text("{}")
    names = [s.name for s in grade_module._submissions([tmp_path, tmp_path / "x.ipynb"])]
    assert len(set(names)) == len(names) == 4 and ".ipynb" in names


# --------------------------------------------------------------------------------------------
# Reports: atomic, neutralised, rewritten as rows arrive


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_csv_fields_that_start_a_formula_are_neutralised(text):
    assert csv_safe(text) == "'" + text


def test_numbers_and_plain_text_stay_as_they_are():
    assert csv_safe(2.5) == "2.5" and csv_safe(3.0) == "3" and csv_safe(0) == "0"
    assert csv_safe("alice") == "alice" and csv_safe("a=b") == "a=b"


def _row(name, status="graded", points=None, message=""):
    exercises = [ExerciseResult(ex.id, ex.points if points is None else points, ex.points,
                                "pass" if status == "graded" else "error")
                 for ex in EXERCISES_01]
    return SubmissionResult(name, f"/subs/{name}.ipynb", status, exercises, 1.0, message,
                            sha256="0" * 64)


def test_reports_neutralise_names_keep_numbers_and_sort_rows(tmp_path):
    reports = Reports(tmp_path, EXERCISES_01, "01")
    reports.start()
    for name in ("zed", "=1+1", "-alice"):
        reports.add(_row(name))
    rows = list(csv.DictReader((tmp_path / "scores.csv").open()))
    assert [r["submission"] for r in rows] == ["'-alice", "'=1+1", "zed"]
    assert rows[0]["total"] == f"{TOTAL_01:g}" and rows[0]["01.correlate2d"] == "3"
    data = json.loads((tmp_path / "scores.json").read_text())
    assert [r["submission"] for r in data] == ["-alice", "=1+1", "zed"]  # JSON is data, as is


def test_text_no_encoding_can_hold_never_breaks_the_reports(tmp_path):
    reports = Reports(tmp_path, EXERCISES_01, "01")
    reports.start()
    result = _row("bad\udcffname", message="raised \ud800 here")  # a lone surrogate
    reports.write_feedback(result)
    reports.add(result)
    assert "raised" in (tmp_path / "feedback" / "bad\udcffname.md").read_text(errors="replace")
    assert json.loads((tmp_path / "scores.json").read_text())[0]["message"] == "raised \ud800 here"


def test_old_scores_are_moved_aside_so_they_never_look_current(tmp_path):
    (tmp_path / "scores.csv").write_text("submission,total\nstale,15\n")
    (tmp_path / "scores.json").write_text("[]")
    moved = Reports(tmp_path, EXERCISES_01, "01").start()
    assert sorted(p.suffixes[-2:] for p in moved) == [[".csv", ".old"], [".json", ".old"]]
    assert all(re.fullmatch(r"scores-\d{8}T\d{6}Z\.(csv|json)\.old", p.name) for p in moved)
    assert "stale" not in (tmp_path / "scores.csv").read_text()
    (tmp_path / "scores.csv").write_text("again")
    assert move_aside(tmp_path / "scores.csv").name != moved[0].name  # never overwritten


def test_a_failed_write_leaves_the_old_file_whole_and_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "scores.csv"
    write_atomic(path, "old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_atomic(path, "new")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["scores.csv"]


# --------------------------------------------------------------------------------------------
# One submission's failure is its own row; the batch goes on


def _fake_steps(fail=(), slow=()):
    """A stand-in for grading one submission without a kernel: full marks, or a crash."""

    def steps(sub, template, exercises, options, step):
        step[0] = "judging"
        if sub.name in fail:
            raise RuntimeError("boom")
        result = _row(sub.name)
        result.sha256 = grade_module.sha256_capped(sub.path, 2**30)
        return result

    return steps


def _notebooks(folder: Path, *names) -> Path:
    folder.mkdir(exist_ok=True)
    for name in names:
        (folder / f"{name}.ipynb").write_text(json.dumps({"cells": [], "name": name}))
    return folder


@pytest.mark.slow
def test_a_crash_while_grading_one_submission_becomes_its_error_row(tmp_path, monkeypatch):
    monkeypatch.setattr(grade_module, "_grade_steps", _fake_steps(fail={"b"}))
    log = io.StringIO()
    results = grade("01", [_notebooks(tmp_path / "subs", "a", "b", "c")], out=tmp_path / "out",
                    jobs=2, stream=log)
    statuses = {r.submission: r.status for r in results}
    assert statuses == {"a": "graded", "b": "error", "c": "graded"}
    b = next(r for r in results if r.submission == "b")
    assert b.message == "the grader failed while judging this submission: RuntimeError: boom"
    assert "RuntimeError: boom" in (tmp_path / "out" / "feedback" / "b.md").read_text()
    assert log.getvalue().splitlines()[-1] == "statuses: graded 2, error 1"


@pytest.mark.slow
def test_the_exit_status_is_zero_only_when_every_row_is_graded(tmp_path, monkeypatch, capsys):
    from cnnlab.cli import main

    monkeypatch.setattr(grade_module, "_grade_steps", _fake_steps(fail={"b"}))
    subs = _notebooks(tmp_path / "subs", "a", "b")
    assert main(["grade", "--lab", "01", str(subs / "a.ipynb"), "--out",
                 str(tmp_path / "o1")]) == 0
    assert main(["grade", "--lab", "01", str(subs), "--out", str(tmp_path / "o2")]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "statuses: graded 1, error 1"
    assert main(["grade", "--lab", "99", str(subs), "--out", str(tmp_path / "o3")]) == 2


@pytest.mark.slow
def test_resume_keeps_unchanged_rows_and_grades_only_the_rest(tmp_path, monkeypatch):
    monkeypatch.setattr(grade_module, "_grade_steps", _fake_steps())
    subs, out = _notebooks(tmp_path / "subs", "a", "b", "c", "d"), tmp_path / "out"
    grade("01", [subs], out=out, jobs=1, stream=io.StringIO())
    # interrupted after a, b and c: d has no row; c was resubmitted since
    data = [row for row in json.loads((out / "scores.json").read_text())
            if row["submission"] != "d"]
    (out / "scores.json").write_text(json.dumps(data))
    (subs / "c.ipynb").write_text(json.dumps({"cells": [], "changed": True}))
    (subs / "e.ipynb").write_text("{}")
    graded = []
    real = _fake_steps()

    def counting(sub, *args):
        graded.append(sub.name)
        return real(sub, *args)

    monkeypatch.setattr(grade_module, "_grade_steps", counting)
    log = io.StringIO()
    results = grade("01", [subs], out=out, jobs=1, stream=log, resume=True)
    assert sorted(graded) == ["c", "d", "e"]
    assert [r.submission for r in results] == ["a", "b", "c", "d", "e"]
    assert "kept 2 row(s)" in log.getvalue()
    rows = list(csv.DictReader((out / "scores.csv").open()))
    assert [r["submission"] for r in rows] == ["a", "b", "c", "d", "e"]
    assert all(r["status"] == "graded" for r in rows)
    assert len(list(out.glob("scores-*.json.old"))) == 1  # the interrupted run's, kept aside


@pytest.mark.slow
def test_resume_refuses_another_labs_scores(tmp_path, monkeypatch):
    monkeypatch.setattr(grade_module, "_grade_steps", _fake_steps())
    subs, out = _notebooks(tmp_path / "subs", "a"), tmp_path / "out"
    grade("01", [subs], out=out, stream=io.StringIO())
    with pytest.raises(ValueError, match="holds scores of lab 01, not lab 02"):
        grade("02", [subs], out=out, stream=io.StringIO(), resume=True)
    assert (out / "scores.json").exists()  # a usage error moves nothing aside


# --------------------------------------------------------------------------------------------
# The parse step: its own process, its own deadline


def _bang_notebook(path: Path) -> Path:
    """Lab 01 solved, with an unused function of 2,000 ``!true`` lines (21 KB): IPython's
    input transformer takes minutes on it."""
    nb = _replace(_solution(), "01.to_grayscale",
                  "def unused():\n" + "".join("    !true\n" for _ in range(2000)))
    return _write(nb, path)


@pytest.mark.slow
def test_parsing_past_its_deadline_is_an_error_row_and_the_batch_goes_on(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    _bang_notebook(subs / "bang.ipynb")
    (subs / "deep.ipynb").write_text(DEEP)  # refused before any kernel: no kernel starts here
    (subs / "big.ipynb").write_text(" " * 300_000)
    (subs / "link.ipynb").symlink_to(LAB01)
    log = io.StringIO()
    start = time.monotonic()
    results = grade("01", [subs], out=tmp_path / "out", jobs=2, stream=log, parse_timeout=2,
                    max_notebook_mb=0.25)
    assert time.monotonic() - start < 40
    rows = {r.submission: r for r in results}
    assert rows["bang"].status == "error"
    assert rows["bang"].message == ("the grader could not parse this notebook within 2 s "
                                    "(--parse-timeout)")
    assert rows["deep"].status == rows["big"].status == "unreadable"
    assert "--max-json-depth" in rows["deep"].message
    assert "--max-notebook-mb" in rows["big"].message
    assert rows["link"].status == "refused"
    assert log.getvalue().splitlines()[-1] == "statuses: unreadable 2, refused 1, error 1"


@pytest.mark.slow
def test_the_parse_worker_costs_well_under_a_second(tmp_path):
    with ParseServer() as server:
        assert server.run(_job(tmp_path / "0", LAB01), 60)["ok"]  # imports: paid once a batch
        times = []
        for n in range(1, 4):
            job = _job(tmp_path / str(n), LAB01)
            start = time.monotonic()
            result = server.run(job, 60)
            times.append(time.monotonic() - start)
            assert result["ok"] and result["missing"] == [] and result["flags"] == {}
    assert min(times) < 1.0, times


# --------------------------------------------------------------------------------------------
# One real batch: attacks that need a running notebook, beside a solved notebook

# In the conv2d_multi cell (before the lab imports keras, so the run is short): a correct answer,
# then, as a student could, forge records for the earlier exercises with every token the grader's
# cells show (IPython's `In`): "not defined", nested deep, and kill the runner (the kernel's
# parent).  (Until issue 13 the grader read answer files back, which this cell overwrote.)
ATTACK = '''
import json, os, re, signal
from IPython.display import publish_display_data

for token in set(re.findall(r"[0-9a-f]{32}", "\\n".join(In))):
    for ex_id in ("01.to_grayscale", "01.correlate2d", "01.convolve2d"):
        tag = {"token": token, "exercise": ex_id}
        publish_display_data({"application/vnd.cnnlab.probe+json": {
            **tag, "kind": "answer", "defined": False, "origin": ""}})
        publish_display_data({"application/vnd.cnnlab.probe+json": {
            **tag, "kind": "case", "case": "x", "data": json.loads("[" * 90 + "]" * 90)}})
os.kill(os.getppid(), signal.SIGKILL)
'''


@pytest.fixture(scope="module")
def attacked_batch(tmp_path_factory):
    """Lab 01: solved with `"tags": 5` on a markdown cell, named `x.IPYNB`; the attack above,
    named `=1+1.ipynb`; a link to the solutions.  An old scores.csv waits in the output."""
    subs = tmp_path_factory.mktemp("subs")
    solved = json.loads(LAB01.read_text())
    markdown = next(c for c in solved["cells"] if c["cell_type"] == "markdown")
    markdown["metadata"]["tags"] = 5
    next(c for c in solved["cells"] if c["cell_type"] == "code" and not exercise_id(c))[
        "metadata"]["tags"] = "exercise:01.correlate2d"  # a string, not a list: no exercise
    (subs / "x.IPYNB").write_text(json.dumps(solved))
    attack = _solution()
    cell = next(c for c in attack.cells if exercise_id(c) == "01.conv2d_multi")
    cell.source += "\n" + ATTACK
    _write(attack, subs / "=1+1.ipynb")
    (subs / "link.ipynb").symlink_to(LAB01)
    out = tmp_path_factory.mktemp("out")
    (out / "scores.csv").write_text("submission,total\nstale,15\n")
    log = io.StringIO()
    results = grade("01", [subs], out=out, jobs=2, timeout_cell=45, timeout_notebook=300,
                    stream=log)
    return {r.submission: r for r in results}, out, log.getvalue()


@pytest.mark.slow
def test_the_solved_notebook_with_odd_metadata_scores_full_marks(attacked_batch):
    rows, *_ = attacked_batch
    assert rows["x"].status == "graded" and rows["x"].total == TOTAL_01
    assert {e.status for e in rows["x"].exercises} == {"pass"}


@pytest.mark.slow
def test_answers_already_taken_cannot_be_overwritten_by_a_later_cell(attacked_batch):
    rows, *_ = attacked_batch
    attacked = {e.id: e for e in rows["=1+1"].exercises}
    earlier = ("01.to_grayscale", "01.correlate2d", "01.convolve2d")
    assert {attacked[i].status for i in earlier} == {"pass"}
    assert all(attacked[i].points == attacked[i].max_points for i in earlier)
    # the rest is its own code, which the sandbox lets run on (its runner is out of reach)
    assert rows["=1+1"].total == sum(e.points for e in rows["=1+1"].exercises)


@pytest.mark.slow
def test_the_kernel_cannot_kill_its_runner_from_the_sandbox(attacked_batch):
    """Its parent is the sandbox's first process, which ignores it; the runner is out of reach
    (a runner killed all the same is kernel_died, never running: see above)."""
    rows, *_ = attacked_batch
    assert rows["=1+1"].status == "graded"
    assert {e.status for e in rows["=1+1"].exercises[3:]} == {"pass"}
    for row in rows.values():
        assert row.status in STATUS_MEANINGS
        assert {e.status for e in row.exercises} <= set(EXERCISE_STATUS_MEANINGS)


@pytest.mark.slow
def test_the_attacked_batch_writes_every_row_and_moves_the_old_scores_aside(attacked_batch):
    rows, out, log = attacked_batch
    assert rows["link"].status == "refused"
    assert rows["link"].message == "not graded: a symbolic link; submit the notebook file itself"
    table = list(csv.DictReader((out / "scores.csv").open()))
    assert [r["submission"] for r in table] == ["'=1+1", "link", "x"]
    assert table[2]["total"] == f"{TOTAL_01:g}"
    assert {p.name for p in (out / "feedback").iterdir()} == {"=1+1.md", "link.md", "x.md"}
    (old,) = out.glob("scores-*.csv.old")
    assert "stale" in old.read_text()
    assert log.splitlines()[-1] == "statuses: graded 2, refused 1"
