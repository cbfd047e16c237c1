"""Lab 09's two-phase fine-tune (``09.two_phase_fine_tune``): the solution and the reference
pass every case, public and hidden; each typical wrong answer fails, with the message of the
aspect it gets wrong.

The wrong answers are the solution notebook's own function with one step changed (BatchNorm
unfrozen with its block, no second compile, the same rate twice, everything unfrozen, the
first blocks instead of the last, the backbone never frozen), so each failure is caused by
that one step.
"""


import keras
import nbformat
import numpy as np
import pytest
from keras import layers

from cnnlab.exercise import exercise, judge_record, probe_cases
from cnnlab.exercises.lab09 import reference_two_phase_fine_tune
from cnnlab.grading.hidden import graded_exercises
from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # each test judges real two-phase fine-tunes (up to a minute)

EXERCISE_ID = "09.two_phase_fine_tune"


def _solution_source() -> str:
    nb = nbformat.read(ROOT / "solutions" / "09_transfer_learning.ipynb", as_version=4)
    (cell,) = [c for c in nb.cells if f"exercise:{EXERCISE_ID}" in c.metadata.get("tags", [])]
    return "\n".join(line for line in cell.source.splitlines() if "### " not in line)


def _function(source: str):
    namespace = {"keras": keras, "layers": layers, "np": np}
    exec(compile(source, "<two_phase_fine_tune>", "exec"), namespace)  # noqa: S102
    return namespace["two_phase_fine_tune"]


def _variant(old: str, new: str):
    source = _solution_source()
    assert source.count(old) == 1, old
    return _function(source.replace(old, new))


WRONG = {
    # BatchNorm made trainable with its block: its moving statistics follow the small batches
    "batchnorm_unfrozen": (
        ("        layer.trainable = (layer.name.split(\"_\")[0] in kept\n"
         "                           and not isinstance(layer, layers.BatchNormalization))",
         "        layer.trainable = layer.name.split(\"_\")[0] in kept"),
        "moved the BatchNorm moving statistics"),
    # trainable changed, but no compile: the same optimizer (and, on TensorFlow, the old list)
    "no_recompile": (
        ("    model.compile(optimizer=keras.optimizers.Adam(lr / 10),      # compile again: a new "
         "Adam\n                  loss=\"sparse_categorical_crossentropy\", jit_compile=False)\n",
         ""),
        "did not compile again"),
    # compiled again, at the head's rate
    "no_rate_division": (
        ("keras.optimizers.Adam(lr / 10)", "keras.optimizers.Adam(lr)"),
        "learning rates"),
    # the whole backbone unfrozen (BatchNorm kept frozen): the earlier blocks train too
    "everything_unfrozen": (
        ("        layer.trainable = (layer.name.split(\"_\")[0] in kept\n",
         "        layer.trainable = (True\n"),
        "phase 2 trained"),
    # the first n_blocks blocks instead of the last
    "first_blocks": (
        ("blocks[len(blocks) - n_blocks:]", "blocks[:n_blocks]"),
        "phase 2 trained"),
    # phase 1 with the backbone trainable: it trains, and its BatchNorm statistics move
    "backbone_not_frozen_in_phase_1": (
        ("    backbone.trainable = False                                   # phase 1: the head "
         "alone\n", ""),
        "phase 1 moved the BatchNorm moving statistics"),
}


def _judged(function, hidden=False):
    ex = next(e for e in graded_exercises("09") if e.id == EXERCISE_ID)
    cases = [c for c in ex.cases if c.hidden == hidden]
    return {record["case"]: judge_record(ex, record) for record in probe_cases(ex, function, cases)}


def test_the_solution_and_the_reference_pass_every_public_and_hidden_case():
    for function in (_function(_solution_source()), reference_two_phase_fine_tune):
        for hidden in (False, True):
            judged = _judged(function, hidden)
            assert judged and {status for status, _ in judged.values()} == {"pass"}, judged


@pytest.mark.parametrize("name", sorted(WRONG))
def test_each_typical_wrong_answer_fails_every_public_case_and_names_its_mistake(name):
    (old, new), says = WRONG[name]
    judged = _judged(_variant(old, new))
    assert len(judged) == len(exercise(EXERCISE_ID).public_cases())
    for case, (status, message) in judged.items():
        assert status == "fail", (case, status, message)
        assert says in message, (case, message)


def test_the_probe_sees_each_phase_separately():
    """What the probe reports for the solution: two phases, the head alone then the head and
    the last block, no statistic moved, the rate divided by ten."""
    ex = exercise(EXERCISE_ID)
    case = next(c for c in ex.cases if c.name == "three_blocks_fine_tune_the_last_one")
    got = case.probe(_function(_solution_source()))
    assert got == {"phases": 2, "trained": [["predictions"], ["block3_conv", "predictions"]],
                   "statistics_moved": [[], []], "learning_rate": pytest.approx([1e-3, 1e-4])}
