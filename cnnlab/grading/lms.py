"""Grade files an LMS imports: ``cnnlab grade export --format canvas|moodle --roster ROSTER.csv
RESULTS... --out FILE.csv``.

Each ``RESULTS`` folder is what one ``cnnlab grade --out`` wrote (its ``scores.json``, see
:mod:`cnnlab.grading.reports`) and becomes one grade column, named by ``--column`` (given once
per folder, in order) or by default: the roster's one Canvas assignment column whose title names
the lab (``Lab 02 (12345)``, ``lab 2 (12345)``), else ``Lab 02``. A submission's file name is
matched to a student by ``--match`` (:func:`submission_pattern`), its key looked up in a roster
column (``--key``). Nothing is dropped: files that match no student, students without a
submission and submissions not ``graded`` (timeout, error, unreadable...: their score, usually
0, is exported as the grader gave it) are summed up on stderr and listed one per line in
``FILE.unmatched.csv`` beside ``--out``; the exit status is 1 when some file matched no student
(the files are written all the same), 0 when none did. Two submissions matching one student is
an error that names both files (exit 2, nothing written), so a file named for another student's
key never silently replaces that student's score (use patterns on names the LMS sets, as
Canvas's prefix, not on names students choose).

The layouts, and what each importer does with them:

- **Canvas** (Grades > Import): ``Student, ID, SIS User ID, SIS Login ID, Section``, then one
  column per assignment, as Canvas's own gradebook export writes them; the roster is best that
  export (it has every student's Canvas ``ID``, the number in its submission downloads).  Canvas's
  importer (canvas-lms ``lib/gradebook_importer.rb``) wants ``Student`` then ``ID`` first and
  ``Section`` last of the student columns, finds a student by ``ID`` (then SIS User ID, SIS
  Login ID, name), an assignment by the ``(id)`` at the end of its header, else by its exact
  title, else creates a new one; a row whose first cell holds ``Points Possible`` sets the
  assignments' points (when the roster has that row so does the file, with each lab's maximum).
  Its preview compares each cell with the grade Canvas has and posts only the changes, an empty
  cell where a grade exists removing it (``ui/features/gradebook_uploads``).  Canvas guide:
  "How do I import grades in the Gradebook?" (community.canvaslms.com/t5/Instructor-Guide/
  How-do-I-import-grades-in-the-Gradebook/ta-p/807); the required columns also in Ohio State's
  "Import CSV File for Carmen Grades" (teaching.resources.osu.edu).
- **Moodle** (Grades > Import > CSV file): the identifier column (``--id-column``, default
  ``Email address`` as Moodle's grade export names it), then one column per assignment.  On the
  preview page set "Identify user by" Map from that column, Map to ``useremail`` (or
  ``useridnumber`` for ``ID number``, ``username``), and map each grade column to its grade item
  (MoodleDocs "Grade import").  Moodle's importer (``grade/import/csv/classes/load_data.php``)
  stops the whole import at a row whose identifier is empty or unknown, and reads an empty or
  ``-`` cell as "no grade", which clears a grade already there.

A student without a submission keeps the grade the roster has in that column (a roster exported
from the LMS holds the grades it has now: one entered by hand for a paper copy or an extension,
``EX``), so importing changes nothing for them; with none there, the cell is empty, not 0: "did
not submit" is not "scored 0", and zero is the instructor's decision (``--missing-as-zero``
writes it).  Both importers read an empty cell as "no grade" and would remove a grade already
there, which is why the roster's grade is kept.  Scores are plain numbers (``11``, ``10.5``);
the file is UTF-8 without a byte-order mark.

Used in: ``cnnlab grade export``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from cnnlab.grading.reports import csv_safe, write_atomic

__all__ = ["FORMATS", "CANVAS_STUDENT_COLUMNS", "MATCH_PRESETS", "Roster", "Assignment",
           "ExportError", "score_text", "submission_pattern", "read_roster", "read_results",
           "column_header", "grade_file", "main"]

#: What ``--format`` accepts.
FORMATS = ("canvas", "moodle")
#: The student columns of a Canvas grade file, in Canvas's order.
CANVAS_STUDENT_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
#: Named ``--match`` patterns.  ``canvas``: Canvas's "Download Submissions" names,
#: ``<name>_[late_]<user id>_<submission id>_<file>``, the user id being the roster's ``ID``
#: (``smithjohn_12345_67890_lab02.ipynb``, ``smithjohn_LATE_12345_67890_lab02-1.ipynb``).
#: ``file``: the file name is the key (``jdoe.ipynb``, ``jdoe@uni.edu.ipynb``).
MATCH_PRESETS = {"canvas": r"(?i)^[^_]*_(?:late_)?(?P<id>\d+)_\d+_",
                 "file": "{id}.ipynb"}
_DEFAULTS = {"canvas": {"match": "canvas", "key": "ID"},
             "moodle": {"match": "file", "id_column": "Email address"}}
_CANVAS_ASSIGNMENT = re.compile(r"^(?P<title>.*\S)\s*\((?P<id>\d+)\)$")
_PROG = "cnnlab grade export"


class ExportError(ValueError):
    """Bad input to the export: the message names the problem and the fix."""


@dataclass
class Roster:
    """The students of a roster CSV, in its order: ``header`` (its columns), ``rows`` (one dict
    per student), ``lines`` (each row's line in the file) and ``points_possible`` (Canvas's
    ``Points Possible`` row, or None)."""

    path: Path
    header: list
    rows: list
    lines: list = field(default_factory=list)
    points_possible: dict | None = None


@dataclass
class Assignment:
    """One results folder: its ``lab``, ``maximum`` points and ``scores.json`` rows."""

    folder: Path
    lab: str
    maximum: float
    rows: list = field(default_factory=list)


def score_text(value) -> str:
    """A score as a grade cell: ``11``, ``10.5``, ``0.25`` (rounded to 2 decimals, as the grader
    rounds totals; never ``11.0`` or ``1e+01``)."""
    text = f"{round(float(value), 2) + 0.0:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def submission_pattern(text: str) -> tuple[re.Pattern, bool]:
    """``--match`` as a compiled pattern with an ``id`` group, and whether it reads the whole
    recorded path (True when the pattern names folders with ``/``) rather than the file name.

    ``text`` is a preset name (:data:`MATCH_PRESETS`), a regular expression with a group
    ``(?P<id>...)`` (searched in the name), or a template: ``{id}`` stands for the key, ``*`` for
    anything, the rest is literal and the whole name must fit, case ignored
    (``{id}_lab02.ipynb``, ``lab02-{id}.ipynb``, nbgrader's ``submitted/{id}/lab02/*.ipynb``)."""
    text = MATCH_PRESETS.get(text, text)
    if "(?P<id>" in text:
        try:
            pattern = re.compile(text)
        except re.error as exc:
            raise ExportError(f"--match {text!r} is not a regular expression ({exc}); fix it "
                              "or use a template such as '{id}_lab02.ipynb'") from None
        return pattern, "/" in text
    if text.count("{id}") != 1:
        raise ExportError(f"--match {text!r} does not say where the student's key is: use "
                          "{id} once in a template ('{id}_lab02.ipynb'), a regular expression "
                          "with (?P<id>...), or a preset: " + ", ".join(MATCH_PRESETS))
    before, after = text.split("{id}")
    literal = [re.escape(part).replace(r"\*", ".*") for part in (before, after)]
    body = f"{literal[0]}(?P<id>[^/]+?){literal[1]}$"
    return re.compile(("(?:^|/)" if "/" in text else "^") + body, re.IGNORECASE), "/" in text


# --------------------------------------------------------------------------------------------
# Reading the inputs


def _is_canvas_extra_row(row: dict, first: str) -> bool:
    cells = [str(v or "").strip() for v in row.values()]
    if "Points Possible" in str(row.get(first) or ""):
        return True
    # Canvas's export may add a row saying which assignments are muted / manually posted.
    return all(re.fullmatch(r"(?i)(muted|manual posting.*)?", c) for c in cells)


def read_roster(path, fmt: str, required=()) -> Roster:
    """The roster CSV at ``path`` (UTF-8, with or without a byte-order mark): every student
    row, Canvas's ``Points Possible`` and muted rows set apart.  Raises :class:`ExportError`
    when it is missing, has none of the ``required`` columns, or a row lacks one."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ExportError(f"no roster at {path}: export the class list from your LMS "
                          "(Canvas: Grades > Export) and pass it with --roster") from None
    except UnicodeDecodeError:
        raise ExportError(f"{path} is not UTF-8 text: save the roster as 'CSV UTF-8'") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h for h in (reader.fieldnames or [])]
    missing = [c for c in required if c not in header]
    if missing:
        raise ExportError(f"the roster {path} has no column " + ", ".join(map(repr, missing))
                          + f" (its columns: {', '.join(header) or 'none'}); "
                          + _roster_fix(fmt, missing))
    rows, lines, points = [], [], None
    for row in reader:
        row.pop(None, None)  # cells past the header's end
        if fmt == "canvas" and header and _is_canvas_extra_row(row, header[0]):
            if "Points Possible" in str(row.get(header[0]) or ""):
                points = row
            continue
        rows.append(row)
        lines.append(reader.line_num)
    return Roster(path, header, rows, lines, points)


def _roster_fix(fmt: str, missing) -> str:
    if fmt == "canvas" and set(missing) & {"Student", "ID"}:
        return ("use Canvas's own gradebook export (Grades > Export) as the roster, or add "
                "the Student and ID columns")
    return "name the column to use with --id-column / --key, or add it to the roster"


def read_results(folder) -> Assignment:
    """The ``scores.json`` rows of a ``cnnlab grade --out`` folder.  Raises
    :class:`ExportError` when the folder or file is missing or not what the grader writes."""
    folder = Path(folder)
    scores = folder / "scores.json"
    if not folder.is_dir():
        raise ExportError(f"no results folder {folder}: pass the folder 'cnnlab grade --out' "
                          "wrote")
    if not scores.is_file():
        raise ExportError(f"{folder} has no scores.json: pass a folder 'cnnlab grade --out' "
                          "wrote (grade the lab first)")
    try:
        rows = json.loads(scores.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ExportError(f"{scores} is not the grader's JSON ({exc}); regrade into a fresh "
                          "folder") from None
    needed = ("submission", "lab", "status", "total", "max")
    if not isinstance(rows, list) or not all(
            isinstance(r, dict) and all(k in r for k in needed) for r in rows):
        raise ExportError(f"{scores} is not a list of the grader's rows (each with "
                          f"{', '.join(needed)}); regrade into a fresh folder")
    for r in rows:
        for key in ("total", "max"):
            value = r[key]
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or not math.isfinite(value)):
                raise ExportError(f"{scores}: {r['submission']!r} has {key} {value!r}, not a "
                                  "number; regrade into a fresh folder")
    labs = sorted({str(r["lab"]) for r in rows})
    if len(labs) > 1:
        raise ExportError(f"{scores} mixes labs {', '.join(labs)}: one results folder is one "
                          "assignment; grade each lab into its own folder")
    maximum = max((float(r["max"]) for r in rows), default=0.0)
    return Assignment(folder, labs[0] if labs else "", maximum, rows)


def column_header(assignment: Assignment, roster: Roster, fmt: str) -> str:
    """The default header of ``assignment``'s column: on Canvas the roster's one assignment
    column (``Title (id)``) whose title names the lab (``Lab 02``, ``lab 2``), else ``Lab NN``."""
    if not assignment.lab:
        raise ExportError(f"{assignment.folder}/scores.json has no rows, so no lab to name its "
                          "column after: give --column for it")
    default = f"Lab {assignment.lab}"
    if fmt != "canvas":
        return default
    number = int(assignment.lab) if assignment.lab.isdigit() else None
    names = re.compile(rf"(?i)\blab\s*0*{number}\b" if number is not None
                       else rf"(?i)\blab\s*{re.escape(assignment.lab)}\b")
    found = [h for h in roster.header
             if (m := _CANVAS_ASSIGNMENT.match(h)) and names.search(m["title"])]
    if len(found) > 1:
        raise ExportError(f"the roster has several columns for lab {assignment.lab} ("
                          + ", ".join(map(repr, found)) + f"): name the one for "
                          f"{assignment.folder} with --column")
    return found[0] if found else default


# --------------------------------------------------------------------------------------------
# Matching and writing


@dataclass
class _Column:
    header: str
    assignment: Assignment
    scores: dict  # roster key (casefolded) -> the scores.json row
    problems: list  # rows of the side file


def _file_name(row: dict, whole_path: bool) -> str:
    path = str(row.get("path") or "") or f"{row['submission']}.ipynb"
    return path.replace("\\", "/") if whole_path else path.replace("\\", "/").rsplit("/", 1)[-1]


def _match_column(header, assignment, pattern, whole_path, keys, key_column) -> _Column:
    column = _Column(header, assignment, {}, [])
    files = {}
    for row in assignment.rows:
        name = _file_name(row, whole_path)
        found = pattern.search(name)
        key = found["id"].strip() if found and found["id"] else ""
        if not found:
            detail = "its name does not fit --match"
        elif key.casefold() not in keys:
            detail = f"{key!r} is not in the roster's {key_column} column"
        else:
            detail = ""
        if detail:
            column.problems.append([header, "unmatched_file", name, row["status"],
                                    score_text(row["total"]), "", key, detail])
            continue
        folded = key.casefold()
        if folded in column.scores:
            raise ExportError(
                f"{assignment.folder}: two submissions match {key_column} {key!r}: "
                f"{files[folded]} and {name}; keep one (move the other out and regrade, or "
                "narrow --match)")
        column.scores[folded], files[folded] = row, name
    return column


def grade_file(fmt: str, roster: Roster, columns: list, key_column: str, id_column: str,
               missing_as_zero: bool) -> tuple[str, list]:
    """The grade file's text (CSV, CRLF lines as Python's csv writes) and the side file's rows
    (every unmatched file, student without a submission and submission not graded)."""
    text = io.StringIO()
    writer = csv.writer(text)
    first = list(CANVAS_STUDENT_COLUMNS) if fmt == "canvas" else [id_column]
    writer.writerow(first + [c.header for c in columns])
    if fmt == "canvas" and roster.points_possible is not None:
        writer.writerow(["Points Possible", "", "", "", ""]
                        + [score_text(c.assignment.maximum) for c in columns])
    problems = [p for c in columns for p in c.problems]
    for student in roster.rows:
        if fmt == "canvas":
            cells = [csv_safe(student.get("Student") or ""), student.get("ID") or "",
                     student.get("SIS User ID") or "", student.get("SIS Login ID") or "",
                     csv_safe(student.get("Section") or "")]
        else:
            cells = [student[id_column]]
        key = (student.get(key_column) or "").strip()
        name = (student.get("Student") or " ".join(
            student.get(c) or "" for c in ("First name", "Last name")).strip() or key)
        for c in columns:
            row = c.scores.get(key.casefold())
            if row is None:
                kept = (student.get(c.header) or "").strip()  # the grade the LMS has now
                cells.append(kept or ("0" if missing_as_zero else ""))
                problems.append([c.header, "no_submission", "", "", cells[-1], name, key,
                                 "no file matched this student" + (
                                     f"; kept the grade the roster has ({kept})" if kept
                                     else "")])
                continue
            cells.append(score_text(row["total"]))
            if row["status"] != "graded":
                problems.append([c.header, "not_graded", _file_name(row, False), row["status"],
                                 score_text(row["total"]), name, key,
                                 str(row.get("message") or "")])
        writer.writerow(cells)
    return text.getvalue(), problems


def _points_notes(roster: Roster, columns) -> list:
    """What the roster's Canvas ``Points Possible`` row says against each column: a column
    Canvas marks read-only, or worth other points than the lab's maximum."""
    notes = []
    for c in columns:
        was = str((roster.points_possible or {}).get(c.header) or "").strip()
        if not was:
            continue
        if "read only" in was.lower():
            notes.append(f"Canvas marks {c.header!r} read only: its grades will not import; "
                         "give --column the header of an assignment column")
            continue
        try:
            same = float(was) == c.assignment.maximum
        except ValueError:
            same = False
        if not same:
            notes.append(f"Canvas's {c.header!r} is worth {was} points, lab "
                         f"{c.assignment.lab} is out of {score_text(c.assignment.maximum)}: "
                         "the file's Points Possible row says the lab's; check the assignment "
                         "in Canvas before importing")
    return notes


def _side_file_text(problems) -> str:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["column", "problem", "file", "status", "score", "student", "key", "detail"])
    for row in problems:
        writer.writerow([csv_safe(v) for v in row])
    return text.getvalue()


def _side_file(out: Path) -> Path:
    return out.with_name(f"{out.stem}.unmatched.csv")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=_PROG, description="Write a grade file Canvas or Moodle imports from the results "
        "folders 'cnnlab grade --out' wrote (one column per folder).",
        epilog="Files matching no student, students without a submission and submissions not "
        "graded are printed and listed in FILE.unmatched.csv.  Exit status: 0 written and every "
        "file found its student, 1 written but some file matched no student, 2 bad input "
        "(nothing written).")
    p.add_argument("results", nargs="+", metavar="RESULTS", help="results folders, in order")
    p.add_argument("--format", required=True, choices=FORMATS, help="the LMS to import into")
    p.add_argument("--roster", required=True, metavar="ROSTER.csv",
                   help="the class list (Canvas: its gradebook export; Moodle: a grade or "
                        "participants export)")
    p.add_argument("--out", required=True, metavar="FILE.csv", help="the grade file to write")
    p.add_argument("--column", action="append", default=[], metavar="HEADER",
                   help="the column header of each results folder, once per folder in order "
                        "(Canvas: as its export writes it, e.g. 'Lab 02 (12345)')")
    p.add_argument("--match", metavar="PATTERN",
                   help="how a file name gives the student's key: a preset ("
                        + ", ".join(MATCH_PRESETS) + "), a template with {id} and * "
                        "('{id}_lab02.ipynb'), or a regex with (?P<id>...); default: canvas "
                        "for Canvas, file for Moodle")
    p.add_argument("--key", metavar="COLUMN",
                   help="the roster column the key is looked up in (default: ID for Canvas, "
                        "--id-column for Moodle)")
    p.add_argument("--id-column", metavar="COLUMN",
                   help="Moodle: the roster column written as the identifier you map on "
                        "import (default: 'Email address')")
    p.add_argument("--missing-as-zero", action="store_true",
                   help="write 0, not an empty cell, for a student without a submission")
    p.add_argument("--force", action="store_true",
                   help="overwrite --out and its .unmatched.csv if they exist")
    return p


def _export(args) -> tuple[Roster, Path, list, list]:
    fmt = args.format
    out = Path(args.out)
    side = _side_file(out)
    if out.is_dir() or args.out.endswith(("/", "\\")):
        raise ExportError(f"--out {args.out} is a folder: name the grade file, e.g. "
                          f"{out / 'grades.csv'}")
    for path in (out, side):
        if (path.exists() or path.is_symlink()) and not args.force:
            raise ExportError(f"{path} exists: choose another --out, or pass --force to "
                              "overwrite it")
    if not out.parent.is_dir():
        raise ExportError(f"no folder {out.parent} for --out: create it first")
    inputs = {Path(args.roster).resolve()} | {
        (Path(f) / name).resolve() for f in args.results for name in ("scores.csv",
                                                                      "scores.json")}
    for path in (out, side):
        if path.resolve() in inputs:
            raise ExportError(f"--out would overwrite {path}, one of the inputs: write the "
                              "grade file somewhere else")
    if args.column and len(args.column) != len(args.results):
        raise ExportError(f"{len(args.column)} --column for {len(args.results)} results "
                          "folders: give one --column per folder, in the same order, or none")
    if fmt == "moodle" and args.id_column is None:
        args.id_column = _DEFAULTS["moodle"]["id_column"]
    if fmt == "canvas" and args.id_column is not None:
        raise ExportError("--id-column is for Moodle; Canvas files always start with "
                          + ", ".join(CANVAS_STUDENT_COLUMNS))
    key = args.key or (_DEFAULTS["canvas"]["key"] if fmt == "canvas" else args.id_column)
    required = ("Student", "ID", key) if fmt == "canvas" else (args.id_column, key)
    roster = read_roster(args.roster, fmt, tuple(dict.fromkeys(required)))
    keys = Counter()
    for line, student in zip(roster.lines, roster.rows):
        for column in dict.fromkeys([key] + ([args.id_column] if fmt == "moodle" else [])):
            if not (student.get(column) or "").strip():
                raise ExportError(f"line {line} of the roster has no {column}: fill it in or "
                                  "remove the row (an LMS cannot place a grade without it)")
        keys[student[key].strip().casefold()] += 1
    twice = [k for k, count in keys.items() if count > 1]
    if twice:
        raise ExportError(f"the roster's {key} column has {twice[0]!r} on several rows: a key "
                          "must name one student; choose another --key")
    pattern, whole_path = submission_pattern(args.match or _DEFAULTS[fmt]["match"])
    folders = [Path(f) for f in args.results]
    if len({f.resolve() for f in folders}) < len(folders):
        raise ExportError("a results folder is named twice: each folder is one column")
    assignments = [read_results(f) for f in folders]
    headers = args.column or [column_header(a, roster, fmt) for a in assignments]
    if len(set(headers)) < len(headers):
        same = [h for h, n in Counter(headers).items() if n > 1][0]
        raise ExportError(f"two results folders would both be column {same!r}: name each "
                          "with --column, once per folder in order")
    columns = [_match_column(h, a, pattern, whole_path, keys, key)
               for h, a in zip(headers, assignments)]
    text, problems = grade_file(fmt, roster, columns, key, args.id_column or "",
                                args.missing_as_zero)
    if fmt == "canvas":
        for note in _points_notes(roster, columns):
            print(f"{_PROG}: note: {note}", file=sys.stderr)
    write_atomic(out, text)
    write_atomic(side, _side_file_text(problems))
    return roster, side, columns, problems


def _summary(out: Path, side: Path, fmt: str, students: int, columns, problems) -> str:
    lines = [f"{_PROG}: wrote {out} ({fmt}, {students} students, {len(columns)} column"
             f"{'s' if len(columns) != 1 else ''}); every problem below is listed in {side}"]
    for c in columns:
        count = Counter(p[1] for p in problems if p[0] == c.header)
        lines.append(f"  {c.header}: {len(c.scores)} matched, {count['unmatched_file']} file(s) "
                     f"matching no student, {count['no_submission']} student(s) without a "
                     f"submission, {count['not_graded']} not graded")
    for p in problems:
        what = {"unmatched_file": f"file matches no student: {p[2]} ({p[7]})",
                "no_submission": f"no submission: {p[5]} ({p[6]})" + (
                    f"; kept the roster's grade {p[4]}" if "kept" in p[7]
                    else f"; wrote {p[4]}" if p[4] else ""),
                "not_graded": f"not graded ({p[3]}, exported as {p[4]}): {p[2]} -> {p[5]}"}
        lines.append(f"  {p[0]}: {what[p[1]]}")
    return "\n".join(lines)


def main(argv=None) -> int:
    """``cnnlab grade export ...``: 0 when the file is written and every submission found its
    student, 1 when it is written but some file matched no student (a grade the LMS will not
    get: see the side file), 2 on bad input (nothing written)."""
    try:
        args = _parser().parse_intermixed_args(argv)
    except SystemExit as exc:  # argparse's usage errors exit 2 with their message
        return int(exc.code or 0)
    try:
        roster, side, columns, problems = _export(args)
    except ExportError as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr)
        return 2
    print(_summary(Path(args.out), side, args.format, len(roster.rows), columns, problems),
          file=sys.stderr)
    return 1 if any(p[1] == "unmatched_file" for p in problems) else 0


if __name__ == "__main__":
    sys.exit(main())
