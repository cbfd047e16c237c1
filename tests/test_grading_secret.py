"""Hidden inputs drawn from a course secret: a student who knows the case generators (they are in
the instructor's repository) cannot hard-code the hidden answers.

The attack first: run the hidden probes offline with the fixed seeds and paste a lookup table.
Without a secret it scores full marks on its exercise; with one it does not.  The same secret
regrades identically; ``scores.json`` records the secret's SHA-256, never the secret.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import nbformat
import numpy as np
import pytest

from cnnlab.cli import main as cli_main
from cnnlab.exercise import LABS, Drawn, exercise, judge_records, probe_cases
from cnnlab.grading import grade, prepare_submission
from cnnlab.grading.hidden import (
    SECRET_ENV,
    case_seeds,
    graded_exercises,
    read_secret,
    secret_sha256,
)
from cnnlab.notebooks import exercise_id
from tests.conftest import ROOT

SECRET = b"course-secret-for-the-tests-7f3a9c2e41d8b6"
OTHER = b"another-course-secret-0123456789abcdef"


# --------------------------------------------------------------------------------------------
# The secret itself


def test_read_secret_from_a_file_from_the_environment_or_none(tmp_path):
    (tmp_path / "secret").write_bytes(SECRET + b"\n")
    assert read_secret(tmp_path / "secret", environ={}) == SECRET  # trailing newline dropped
    assert read_secret(None, environ={SECRET_ENV: OTHER.decode()}) == OTHER
    assert read_secret(tmp_path / "secret", environ={SECRET_ENV: OTHER.decode()}) == SECRET
    assert read_secret(None, environ={}) is None


def test_a_short_or_missing_secret_is_an_error_that_names_the_fix(tmp_path, capsys):
    (tmp_path / "short").write_text("abc\n")
    with pytest.raises(ValueError, match="at least 16 random bytes"):
        read_secret(tmp_path / "short", environ={})
    with pytest.raises(ValueError, match="cannot read the course secret"):
        read_secret(tmp_path / "missing", environ={})
    status = cli_main(["grade", "--lab", "01", str(tmp_path), "--out", str(tmp_path / "out"),
                       "--secret", str(tmp_path / "missing")])
    assert status == 2 and "secrets.token_hex" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing graded with the fixed seeds instead


def test_seeds_are_fixed_without_a_secret_and_drawn_with_one():
    for lab in LABS:
        fixed, drawn, again, other = (case_seeds(lab, s) for s in (None, SECRET, SECRET, OTHER))
        assert drawn == again and drawn != other and drawn != fixed
        module = __import__(f"cnnlab.grading.hidden.lab{lab}", fromlist=["HIDDEN"])
        assert fixed == {ex_id: {c.name: c.seed for c in cases if isinstance(c, Drawn)}
                         for ex_id, cases in module.HIDDEN.items()
                         if any(isinstance(c, Drawn) for c in cases)}
    assert secret_sha256(SECRET) == hashlib.sha256(SECRET).hexdigest()
    assert secret_sha256(None) is None


def _expected(ex):
    return {case.name: case.expected() for case in ex.cases if case.hidden}


def _same(a, b) -> bool:
    try:
        return bool(np.array_equal(np.asarray(a, dtype=object), np.asarray(b, dtype=object)))
    except ValueError:
        return json.dumps(a, default=str) == json.dumps(b, default=str)


@pytest.mark.slow
@pytest.mark.parametrize("lab", list(LABS))
def test_every_exercise_with_drawn_cases_gets_other_hidden_answers_from_another_secret(lab):
    drawn = case_seeds(lab, None)
    first = {ex.id: ex for ex in graded_exercises(lab, case_seeds(lab, SECRET))}
    second = {ex.id: ex for ex in graded_exercises(lab, case_seeds(lab, OTHER))}
    repeat = {ex.id: ex for ex in graded_exercises(lab, case_seeds(lab, SECRET))}
    for ex_id in drawn:
        a, b, c = _expected(first[ex_id]), _expected(second[ex_id]), _expected(repeat[ex_id])
        assert all(_same(a[name], c[name]) for name in a), ex_id  # same secret, same inputs
        changed = [name for name in drawn[ex_id] if not _same(a[name], b[name])]
        assert changed, (ex_id, "no drawn case's answer changes with the secret")


# --------------------------------------------------------------------------------------------
# The attack: a lookup table of the fixed seeds' answers


def _lookup_table_cell() -> str:
    """``conv_output_size`` as a lookup table of every input its cases (public and hidden,
    fixed seeds) pass: what a student who ran the instructor's generators offline pastes."""
    (ex,) = [e for e in graded_exercises("02") if e.id == "02.conv_output_size"]
    reference, seen = ex.reference(), {}

    def recorder(*args):
        seen[tuple(int(a) for a in args)] = int(reference(*args))
        return seen[tuple(int(a) for a in args)]

    probe_cases(ex, recorder)
    assert len(seen) > 200
    return (f"_SEEN = {seen!r}\n\n"
            "def conv_output_size(n, k, s=1, p=0):\n"
            "    return _SEEN[(n, k, s, p)]\n")


def test_a_lookup_table_passes_every_case_of_the_fixed_seeds_and_fails_drawn_ones():
    namespace = {}
    exec(_lookup_table_cell(), namespace)  # noqa: S102 - the attack, in-process
    table = namespace["conv_output_size"]
    for seeds, passes in ((None, True), (case_seeds("02", SECRET), False)):
        (ex,) = [e for e in graded_exercises("02", seeds) if e.id == "02.conv_output_size"]
        statuses = {case: status for case, status, _, _
                    in judge_records(ex, probe_cases(ex, table))}
        assert all(s == "pass" for s in statuses.values()) == passes, statuses
    assert statuses["two_hundred_random_configurations"] != "pass"


def _submission(folder: Path) -> Path:
    name = f"{LABS['02']}.ipynb"
    nb = nbformat.read(ROOT / "labs" / name, as_version=4)
    cell = next(c for c in nb.cells if exercise_id(c) == "02.conv_output_size")
    cell.source = _lookup_table_cell()
    folder.mkdir()
    nbformat.write(nb, folder / "lookup.ipynb")
    return folder


def _row(out: Path) -> dict:
    (row,) = json.loads((out / "scores.json").read_text())
    return row


@pytest.mark.slow
def test_the_grader_draws_hidden_inputs_from_the_secret_and_regrades_identically(tmp_path):
    subs = _submission(tmp_path / "subs")
    points = exercise("02.conv_output_size")
    log = io.StringIO()
    grade("02", [subs], out=tmp_path / "fixed", stream=log)
    assert "WARNING: no course secret" in log.getvalue()
    fixed = _row(tmp_path / "fixed")
    assert fixed["secret_sha256"] is None
    full = next(e for e in graded_exercises("02") if e.id == points.id).points
    assert fixed["exercises"][points.id] == {**fixed["exercises"][points.id],
                                             "points": full, "status": "pass"}

    first = [grade("02", [subs], out=tmp_path / f"drawn{n}", secret=SECRET,
                   stream=io.StringIO())[0] for n in (1, 2)]
    rows = [_row(tmp_path / f"drawn{n}") for n in (1, 2)]
    for row in rows:
        assert row["secret_sha256"] == hashlib.sha256(SECRET).hexdigest()
        assert row["exercises"][points.id]["status"] == "fail"
        assert 0 < row["exercises"][points.id]["points"] < full
    assert rows[0]["exercises"] == rows[1]["exercises"]  # the same secret regrades identically
    assert [e.cases for e in first[0].exercises] == [e.cases for e in first[1].exercises]
    for path in tmp_path.rglob("*"):  # the secret is written nowhere
        if path.is_file():
            assert SECRET not in path.read_bytes(), path

    # --resume keeps a row only when it was graded with the same secret
    log = io.StringIO()
    grade("02", [subs], out=tmp_path / "drawn1", secret=OTHER, resume=True, stream=log)
    assert "kept 0 row(s)" in log.getvalue()
    assert _row(tmp_path / "drawn1")["secret_sha256"] == hashlib.sha256(OTHER).hexdigest()


def test_the_kernel_gets_the_seeds_never_the_secret():
    name = f"{LABS['02']}.ipynb"
    template = nbformat.read(ROOT / "labs" / name, as_version=4)
    seeds = case_seeds("02", SECRET)
    nb, _, _ = prepare_submission(template, template, graded_exercises("02", seeds), seeds)
    first = nb.cells[0].source
    assert SECRET.decode() not in first and secret_sha256(SECRET) not in first
    some = seeds["02.conv_output_size"]["two_hundred_random_configurations"]
    assert str(some) in first
