"""``cnnlab grade export``: the grade files Canvas and Moodle import (issue 16, part 2).

No grading runs here: each results folder is written by the grader's own
:class:`~cnnlab.grading.reports.Reports` from hand-made rows, and the expected files are spelled
out byte for byte from Canvas's and Moodle's import layouts.  Takes about a second.
"""

from types import SimpleNamespace

import pytest

from cnnlab import cli
from cnnlab.grading import lms
from cnnlab.grading.grade import ExerciseResult, SubmissionResult
from cnnlab.grading.reports import Reports

CANVAS_ROSTER = (
    "\ufeffStudent,ID,SIS User ID,SIS Login ID,Section,Lab 02 (501),Lab 03 (502),Current Score\r\n"
    "    Points Possible,,,,,11,12,(read only)\r\n"
    '"Smith, John",12345,S001,jsmith,CNN 101,,,\r\n'
    '"Doe, Ada",12346,S002,adoe,CNN 101,,,\r\n'
    '"Żółć, Łukasz",12347,S003,lzolc,CNN 102,,9,\r\n'  # Lab 03 graded by hand in Canvas
)
MOODLE_ROSTER = (
    "First name,Last name,ID number,Institution,Department,Email address\n"
    "John,Smith,S001,,,john.smith@uni.edu\n"
    "Ada,Doe,S002,,,ada.doe@uni.edu\n"
)


def _row(path: str, points: list, status: str = "graded", lab: str = "02", message="",
         name=None):
    """One submission's result: ``points`` is [(got, max), ...] for exercises a, b, ...; its row
    name is the file's stem unless ``name`` (the grader's ``-2`` for a second ``lab02.ipynb``)."""
    exercises = [ExerciseResult(f"{lab}.{chr(97 + i)}", got, most,
                                "pass" if got == most else "fail")
                 for i, (got, most) in enumerate(points)]
    name = name or path.rsplit("/", 1)[-1].removesuffix(".ipynb")
    return SubmissionResult(name, path, status, exercises, message=message)


def _results(folder, lab: str, rows) -> str:
    """Write ``rows`` as ``cnnlab grade --out folder`` would; returns the folder."""
    exercises = [SimpleNamespace(id=e.id) for e in rows[0].exercises] if rows else []
    reports = Reports(folder, exercises, lab)
    reports.start()
    for r in rows:
        reports.add(r)
    return str(folder)


@pytest.fixture
def course(tmp_path):
    """Two labs graded from Canvas downloads: Lab 02 (John 10.5/11, Ada timed out, a stranger,
    a stray file), Lab 03 (John 12/12, Ada 7.25/12); Łukasz submitted neither file (Canvas has
    9 for his Lab 03, graded by hand)."""
    (tmp_path / "roster.csv").write_text(CANVAS_ROSTER, encoding="utf-8", newline="")
    lab02 = _results(tmp_path / "lab02", "02", [
        _row("subs/smithjohn_12345_67890_lab02.ipynb", [(6, 6), (4.5, 5)]),
        _row("subs/doeada_late_12346_67891_lab02.ipynb", [(0, 6), (0, 5)], "timeout",
             message="ran past --timeout-notebook"),
        _row("subs/stranger_99999_1_lab02.ipynb", [(6, 6), (5, 5)]),
        _row("subs/notes.ipynb", [(0, 6), (0, 5)]),
    ])
    lab03 = _results(tmp_path / "lab03", "03", [
        _row("subs/smithjohn_12345_7_lab03.ipynb", [(12, 12)], lab="03"),
        _row("subs/doeada_12346_8_lab03.ipynb", [(7.25, 12)], lab="03"),
    ])
    return SimpleNamespace(root=tmp_path, roster=str(tmp_path / "roster.csv"), lab02=lab02,
                           lab03=lab03, out=tmp_path / "grades.csv",
                           side=tmp_path / "grades.unmatched.csv")


def _export(*args) -> int:
    return lms.main([str(a) for a in args])


def _side_rows(path):
    import csv

    with open(path, encoding="utf-8", newline="") as handle:
        return [(r["column"], r["problem"], r["file"] or r["student"], r["status"], r["score"])
                for r in csv.DictReader(handle)]


def test_canvas_file_has_canvas_columns_points_row_and_the_rosters_assignment_headers(course):
    # 1: the file is written, but two files of Lab 02 found no student (listed, see below)
    assert _export("--format", "canvas", "--roster", course.roster, course.lab02, course.lab03,
                   "--out", course.out) == 1
    assert course.out.read_bytes() == (
        "Student,ID,SIS User ID,SIS Login ID,Section,Lab 02 (501),Lab 03 (502)\r\n"
        "Points Possible,,,,,11,12\r\n"
        '"Smith, John",12345,S001,jsmith,CNN 101,10.5,12\r\n'
        '"Doe, Ada",12346,S002,adoe,CNN 101,0,7.25\r\n'
        '"Żółć, Łukasz",12347,S003,lzolc,CNN 102,,9\r\n').encode("utf-8")


def test_every_unmatched_file_missing_student_and_ungraded_row_is_listed(course, capsys):
    _export("--format", "canvas", "--roster", course.roster, course.lab02, course.lab03,
            "--out", course.out)
    assert sorted(_side_rows(course.side)) == sorted([
        ("Lab 02 (501)", "unmatched_file", "stranger_99999_1_lab02.ipynb", "graded", "11"),
        ("Lab 02 (501)", "unmatched_file", "notes.ipynb", "graded", "0"),
        ("Lab 02 (501)", "not_graded", "doeada_late_12346_67891_lab02.ipynb", "timeout", "0"),
        ("Lab 02 (501)", "no_submission", "Żółć, Łukasz", "", ""),
        ("Lab 03 (502)", "no_submission", "Żółć, Łukasz", "", "9"),
    ])
    err = capsys.readouterr().err
    assert "Lab 02 (501): 2 matched, 2 file(s) matching no student, 1 student(s) without a " \
           "submission, 1 not graded" in err
    assert "file matches no student: stranger_99999_1_lab02.ipynb ('99999' is not in the " \
           "roster's ID column)" in err
    assert "file matches no student: notes.ipynb (its name does not fit --match)" in err
    assert "Lab 02 (501): no submission: Żółć, Łukasz (12347)\n" in err
    assert "Lab 03 (502): no submission: Żółć, Łukasz (12347); kept the roster's grade 9" in err
    assert "not graded (timeout, exported as 0): doeada_late_12346_67891_lab02.ipynb" in err


def test_moodle_file_is_the_identifier_then_one_column_per_lab(tmp_path, capsys):
    (tmp_path / "roster.csv").write_text(MOODLE_ROSTER, encoding="utf-8")
    lab02 = _results(tmp_path / "lab02", "02", [
        _row("in/john.smith@uni.edu.ipynb", [(6, 6), (4.5, 5)]),
        _row("in/Ada.Doe@uni.edu.IPYNB", [(0, 6), (0, 5)], "unreadable"),
    ])
    lab03 = _results(tmp_path / "lab03", "03", [
        _row("in/john.smith@uni.edu.ipynb", [(12, 12)], lab="03")])
    out = tmp_path / "moodle.csv"
    assert cli.main(["grade", "export", "--format", "moodle", "--roster",
                     str(tmp_path / "roster.csv"), lab02, lab03, "--out", str(out)]) == 0
    assert out.read_bytes() == (b"Email address,Lab 02,Lab 03\r\n"
                                b"john.smith@uni.edu,10.5,12\r\n"
                                b"ada.doe@uni.edu,0,\r\n")
    assert ("Lab 02", "not_graded", "Ada.Doe@uni.edu.IPYNB", "unreadable", "0") in \
        _side_rows(tmp_path / "moodle.unmatched.csv")
    assert "Lab 03: no submission: Ada Doe (ada.doe@uni.edu)" in capsys.readouterr().err


def test_moodle_id_column_key_and_columns_can_be_chosen(tmp_path):
    (tmp_path / "roster.csv").write_text(MOODLE_ROSTER, encoding="utf-8")
    lab02 = _results(tmp_path / "lab02", "02", [_row("in/S002_lab02.ipynb", [(3, 6), (5, 5)])])
    out = tmp_path / "g.csv"
    assert _export("--format", "moodle", "--roster", tmp_path / "roster.csv", lab02,
                   "--id-column", "ID number", "--key", "ID number",
                   "--match", "{id}_lab02.ipynb", "--column", "CNN lab 2",
                   "--out", out) == 0
    assert out.read_bytes() == b"ID number,CNN lab 2\r\nS001,\r\nS002,8\r\n"


def test_a_template_with_folders_reads_nbgraders_submitted_layout(course):
    lab = _results(course.root / "nb", "02", [
        _row("/course/submitted/jsmith/lab02/lab02.ipynb", [(6, 6), (5, 5)]),
        _row("/course/submitted/ADOE/lab02/lab02.ipynb", [(1, 6), (0, 5)], name="lab02-2"),
    ])
    assert _export("--format", "canvas", "--roster", course.roster, lab, "--key",
                   "SIS Login ID", "--match", "submitted/{id}/lab02/*.ipynb",
                   "--out", course.out) == 0
    body = course.out.read_text(encoding="utf-8").splitlines()
    assert body[0].endswith(",Lab 02 (501)")
    assert body[2:] == ['"Smith, John",12345,S001,jsmith,CNN 101,11',
                        '"Doe, Ada",12346,S002,adoe,CNN 101,1',
                        '"Żółć, Łukasz",12347,S003,lzolc,CNN 102,']


def test_a_regex_match_needs_its_id_group_and_finds_the_key(course):
    lab = _results(course.root / "rx", "02", [_row("x/lab02-S003-final.ipynb", [(2, 6), (0, 5)])])
    assert _export("--format", "canvas", "--roster", course.roster, lab, "--key", "SIS User ID",
                   "--match", r"lab02-(?P<id>S\d+)", "--out", course.out) == 0
    assert course.out.read_text(encoding="utf-8").splitlines()[-1].endswith("CNN 102,2")


def test_the_canvas_prefix_decides_the_student_not_the_name_a_student_chose(course):
    # Ada uploads a file named like John's download: Canvas prefixes her own ids to it.
    lab = _results(course.root / "spoof", "02", [
        _row("d/doeada_12346_555_smithjohn_12345_67890_lab02.ipynb", [(6, 6), (5, 5)])])
    assert _export("--format", "canvas", "--roster", course.roster, lab,
                   "--out", course.out) == 0
    lines = course.out.read_text(encoding="utf-8").splitlines()
    assert lines[2].endswith("jsmith,CNN 101,") and lines[3].endswith("adoe,CNN 101,11")


def test_missing_as_zero_writes_0_but_never_over_a_grade_the_lms_has(course):
    _export("--format", "canvas", "--roster", course.roster, course.lab02, course.lab03,
            "--missing-as-zero", "--out", course.out)
    assert course.out.read_text(encoding="utf-8").splitlines()[-1].endswith("CNN 102,0,9")
    assert {("Lab 02 (501)", "no_submission", "Żółć, Łukasz", "", "0"),
            ("Lab 03 (502)", "no_submission", "Żółć, Łukasz", "", "9")} <= set(
                _side_rows(course.side))


def test_two_submissions_for_one_student_are_refused_naming_both_files(course, capsys):
    lab = _results(course.root / "twice", "02", [
        _row("d/smithjohn_12345_1_lab02.ipynb", [(6, 6), (5, 5)]),
        _row("d/smithjohn_12345_2_lab02-1.ipynb", [(0, 6), (0, 5)]),
    ])
    assert _export("--format", "canvas", "--roster", course.roster, lab,
                   "--out", course.out) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlab grade export: ")
    assert "smithjohn_12345_1_lab02.ipynb and smithjohn_12345_2_lab02-1.ipynb" in err
    assert not course.out.exists() and not course.side.exists()


def test_a_plain_roster_names_columns_after_the_lab_and_skips_canvas_muted_rows(tmp_path):
    (tmp_path / "r.csv").write_text("Student,ID,Section,Quiz 2 (9)\nMuted,,,Muted\n"
                                    "Ann,7,A,\n", encoding="utf-8")
    lab = _results(tmp_path / "l", "02", [_row("s/ann_7_1_lab02.ipynb", [(1, 6), (0, 5)])])
    assert _export("--format", "canvas", "--roster", tmp_path / "r.csv", lab,
                   "--out", tmp_path / "o.csv") == 0
    assert (tmp_path / "o.csv").read_bytes() == (
        b"Student,ID,SIS User ID,SIS Login ID,Section,Lab 02\r\nAnn,7,,,A,1\r\n")


def test_points_possible_other_than_the_labs_or_read_only_is_pointed_out(course, capsys):
    (course.root / "r.csv").write_text(
        "Student,ID,Section,Lab 02 (501),Lab 03 (502),Final Score\n"
        "Points Possible,,,10.00,12.00,(read only)\nAnn,7,A,,,\n", encoding="utf-8")
    final = _results(course.root / "final", "04", [_row("s/ann_7_1_lab04.ipynb", [(1, 1)])])
    assert _export("--format", "canvas", "--roster", course.root / "r.csv", course.lab02,
                   course.lab03, final, "--column", "Lab 02 (501)", "--column", "Lab 03 (502)",
                   "--column", "Final Score", "--out", course.out) == 1
    err = capsys.readouterr().err
    assert "note: Canvas's 'Lab 02 (501)' is worth 10.00 points, lab 02 is out of 11" in err
    assert "'Lab 03 (502)'" not in err.split("wrote")[0]  # 12.00 is the lab's 12
    assert "note: Canvas marks 'Final Score' read only" in err


def test_a_file_name_that_is_a_formula_is_text_in_the_side_file(tmp_path):
    (tmp_path / "r.csv").write_text(MOODLE_ROSTER, encoding="utf-8")
    lab = _results(tmp_path / "l", "02", [
        _row('in/=HYPERLINK("x.example","john.smith@uni.edu").ipynb', [(6, 6), (5, 5)])])
    assert _export("--format", "moodle", "--roster", tmp_path / "r.csv", lab,
                   "--out", tmp_path / "m.csv") == 1
    (unmatched,) = [r for r in _side_rows(tmp_path / "m.unmatched.csv")
                    if r[1] == "unmatched_file"]
    assert unmatched[2] == '\'=HYPERLINK("x.example","john.smith@uni.edu").ipynb'
    assert (tmp_path / "m.csv").read_bytes() == (
        b"Email address,Lab 02\r\njohn.smith@uni.edu,\r\nada.doe@uni.edu,\r\n")


def test_force_overwrites_an_existing_file(course):
    course.out.write_text("old")
    assert _export("--format", "canvas", "--roster", course.roster, course.lab03,
                   "--out", course.out, "--force") == 0
    assert course.out.read_text(encoding="utf-8").startswith("Student,ID,")


def test_the_exit_status_is_0_only_when_every_file_found_its_student(course):
    assert _export("--format", "canvas", "--roster", course.roster, course.lab03,
                   "--out", course.out) == 0
    assert _export("--format", "canvas", "--roster", course.roster, course.lab02,
                   "--out", course.root / "other.csv") == 1
    assert (course.root / "other.csv").exists()


@pytest.mark.parametrize("target", ["roster.csv", "lab02/scores.csv", "lab02/scores.json"])
def test_out_never_overwrites_an_input_even_with_force(course, capsys, target):
    before = (course.root / target).read_bytes()
    assert _export("--format", "canvas", "--roster", course.roster, course.lab02,
                   "--out", course.root / target, "--force") == 2
    assert "one of the inputs: write the grade file somewhere else" in capsys.readouterr().err
    assert (course.root / target).read_bytes() == before


@pytest.mark.parametrize("case, expected", [
    ("unknown_format", "argument --format: invalid choice: 'blackboard'"),
    ("roster_without_id", "has no column 'ID'"),
    ("no_roster", "no roster at"),
    ("no_scores_json", "has no scores.json: pass a folder 'cnnlab grade --out' wrote"),
    ("out_exists", "exists: choose another --out, or pass --force"),
    ("side_file_exists", "grades.unmatched.csv exists"),
    ("column_count", "give one --column per folder"),
    ("duplicate_key", "has '12345' on several rows"),
    ("empty_moodle_id", "line 4 of the roster has no Email address: fill it in"),
    ("match_without_id", "does not say where the student's key is"),
    ("ambiguous_lab_column", "several columns for lab 02"),
    ("same_column_twice", "would both be column 'Lab 02 (501)'"),
    ("bad_scores_json", "is not the grader's JSON"),
    ("total_not_a_number", "has total '10', not a number"),
    ("out_is_a_folder", "is a folder: name the grade file"),
])
def test_bad_input_exits_2_naming_the_fix(course, capsys, case, expected):
    root, args = course.root, None
    base = ["--format", "canvas", "--roster", course.roster, course.lab02,
            "--out", course.out]
    if case == "unknown_format":
        args = base[:1] + ["blackboard"] + base[2:]
    elif case == "roster_without_id":
        (root / "r.csv").write_text("Student,SIS Login ID,Section\nAnn,ann,A\n")
        args = base[:3] + [root / "r.csv"] + base[4:]
    elif case == "no_roster":
        args = base[:3] + [root / "nothing.csv"] + base[4:]
    elif case == "no_scores_json":
        (root / "empty").mkdir()
        args = base[:4] + [root / "empty"] + base[5:]
    elif case == "out_exists":
        course.out.write_text("keep me")
    elif case == "side_file_exists":
        course.side.write_text("keep me")
    elif case == "column_count":
        args = base + ["--column", "A", "--column", "B"]
    elif case == "duplicate_key":
        (root / "r.csv").write_text(CANVAS_ROSTER + "Again,12345,,,,,,\r\n", encoding="utf-8")
        args = base[:3] + [root / "r.csv"] + base[4:]
    elif case == "empty_moodle_id":
        (root / "r.csv").write_text(MOODLE_ROSTER + "Nobody,Here,S009,,,\n", encoding="utf-8")
        args = ["--format", "moodle", "--roster", root / "r.csv", course.lab02,
                "--out", course.out]
    elif case == "match_without_id":
        args = base + ["--match", "lab02.ipynb"]
    elif case == "ambiguous_lab_column":
        (root / "r.csv").write_text("Student,ID,Section,Lab 2 (1),lab 02 redo (2)\nA,1,S,,\n")
        args = base[:3] + [root / "r.csv"] + base[4:]
    elif case == "same_column_twice":
        args = base + [course.lab03, "--column", "Lab 02 (501)", "--column", "Lab 02 (501)"]
    elif case == "bad_scores_json":
        (root / "lab02" / "scores.json").write_text("{not json")
    elif case == "out_is_a_folder":
        args = base[:-1] + [course.root, "--force"]
    elif case == "total_not_a_number":
        (root / "lab02" / "scores.json").write_text(
            '[{"submission": "a", "lab": "02", "status": "graded", "total": "10", "max": 11}]')
    assert _export(*(args or base)) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert "cnnlab grade export: " in err
    if case == "out_exists":
        assert course.out.read_text() == "keep me"
    elif case != "side_file_exists":
        assert not course.out.exists()


@pytest.mark.parametrize("value, text", [
    (11, "11"), (11.0, "11"), (10.5, "10.5"), (0.25, "0.25"), (7.125, "7.12"), (0, "0"),
    (-0.0, "0"), (1e-9, "0"), (100.0, "100"), (123456.5, "123456.5")])
def test_scores_are_written_without_spurious_decimals(value, text):
    assert lms.score_text(value) == text
