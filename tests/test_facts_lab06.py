"""Lab 06's facts (issue 15 §3): the slide's Keras was right for its time, and RandAugment's
operations are drawn per batch; its order (issue 15 §4): the Keras 3 way first, Keras 2's history
and bugs in an appendix; its exercises' public cases catch a wrong order of the matrix factors,
and every defensible answer to 06.label_preserving passes.

Each text test fails on the lab before the fix and passes after it; the RandAugment tests
reproduce the claim with Keras itself, so they fail if Keras ever draws operations per image.
Nothing here runs the lab: the prose and the code that prints its numbers are read from the
solution notebook's cells (by cell id), and the numbers are recomputed here.
"""

import itertools
import re

import keras
import nbformat
import numpy as np
import pytest
from keras import layers

from cnnlab.augment import transform_matrix
from cnnlab.exercise import exercise, judge_record, probe_cases
from tests.conftest import ROOT

LAB = ROOT / "solutions" / "06_data_augmentation.ipynb"


@pytest.fixture(scope="module")
def cells():
    nb = nbformat.read(LAB, as_version=4)
    return {cell.get("id"): cell for cell in nb.cells}


def _text(cell) -> str:
    """A cell's source with its line breaks and runs of spaces made one space."""
    return re.sub(r"\s+", " ", cell.source)


def _recap(cells) -> str:
    return _text(cells["cell-53"]).split("## Recap", 1)[1]


# ------------------------------------------------------------------------ the lab's order

def _position(nb, needle):
    return next(i for i, cell in enumerate(nb.cells) if needle in cell.source)


def test_the_keras3_way_comes_first_and_keras2s_bugs_last():
    nb = nbformat.read(LAB, as_version=4)
    headings = [line for cell in nb.cells if cell.cell_type == "markdown"
                for line in cell.source.splitlines() if line.startswith("## ")]
    assert headings[0].startswith("## 1. The Keras 3 way")
    assert headings[1] == "## 2. The lecture's code on Keras 3"
    assert headings[-2] == "## Recap" and headings[-1].startswith("## Appendix")
    keras3 = _position(nb, "keras.utils.image_dataset_from_directory(train_folder")
    fit = _position(nb, "fit_quietly(keras3_net, train_ds, validation_data=val_ds")
    assert keras3 == fit < _position(nb, "from cnnlab.augment import ImageDataGenerator")
    assert "layers.RandomFlip(" in nb.cells[fit].source
    assert 'epochs=P["folder_epochs"]' in nb.cells[fit].source
    assert 'size = (P["folder_size"], P["folder_size"])' in nb.cells[fit].source
    appendix = _position(nb, "## Appendix")
    for bug in ("fit_generator(train_flow, train_flow.n): in Keras 1",
                "np.degrees(image_gen.shear_range)", "LegacyImageDataGenerator().apply_transform",
                "fill_mode=\"nearst\""):
        assert _position(nb, bug) > appendix, bug
    assert sum(cell.source.count("Legacy") for cell in nb.cells[:appendix]) == 0


# ----------------------------------------------- fit_generator(train_flow, train_flow.n)

def test_fit_generator_text_says_keras1_counted_samples_and_keras2_renamed_it(cells):
    section = _text(cells["cell-57"])
    assert "The slide's second argument was `steps_per_epoch`" not in section
    assert "fit_generator(generator, samples_per_epoch, nb_epoch, ...)" in section
    assert "was right for Keras 1" in section
    assert "Keras 2 renamed that second argument `steps_per_epoch`" in section
    assert "32 passes over the data" in section


def test_recap_says_the_line_was_one_pass_in_keras1_and_32_after_the_rename(cells):
    recap = _recap(cells)
    assert "whose `train_flow.n` ran 32 passes" not in recap
    assert "one pass per epoch in Keras 1" in recap and "`samples_per_epoch`" in recap
    assert "Keras 2 renamed it `steps_per_epoch`" in recap and "32 passes" in recap


def test_the_appendix_prints_both_readings_of_the_slides_second_argument(cells):
    code = cells["cell-58"].source
    assert "the slide's steps_per_epoch=train_flow.n would have run" not in code
    assert "in Keras 1 samples_per_epoch=" in code and "= 1 pass" in code
    assert "in Keras 2 steps_per_epoch=" in code
    # the "32" the prose quotes is what the cell prints: passes = batches * batch size / images
    assert "train_flow.n * train_flow.batch_size // train_flow.n} passes" in code
    assert "fit_generator(train_flow, train_flow.n)" in code


# ------------------------------------------------------------------------- shear_range

def test_shear_text_says_radians_in_keras1_and_degrees_later(cells):
    text = _text(cells["cell-59"])
    assert "`shear_range` is in **degrees** in Keras 2, so the slide's 0.2" not in text
    assert "Keras 1 and early Keras 2 documented it in **radians**" in text
    assert "read in **degrees** by later Keras 2 releases" in text
    assert "about 11.5°" in text and "the slide was right for its Keras" in text


def test_the_quoted_11_5_degrees_is_computed_and_printed(cells):
    code = cells["cell-60"].source
    assert "np.degrees(image_gen.shear_range):.1f} deg" in code
    assert "image_gen = ImageDataGenerator(" in cells["cell-07"].source
    assert "shear_range=0.2," in cells["cell-07"].source
    assert f"{np.degrees(0.2):.1f}" == "11.5"


# --------------------------------------------------------------------------- RandAugment

def test_randaugment_text_says_operations_per_batch_and_magnitudes_per_image(cells):
    text = _text(cells["cell-43"])
    assert "each image gets `num_ops` operations" not in text
    assert "**once per batch**" in text
    assert "every image of a batch goes through the same operations" in text
    assert "only their magnitudes" in text and "are drawn for each image" in text
    assert "once per batch, their magnitudes per image" in _recap(cells)


def test_randaugment_cell_prints_the_batch_draw_and_titles_it_per_batch(cells):
    code = cells["cell-44"].source
    assert "two random operations per image" not in code
    assert "get_random_transformation(cats, training=True)" in code
    assert "operations drawn for this batch: {drawn}" in code
    assert "the same for all {len(cats)} images" in code
    assert "the same two operations for every" in code and "magnitudes drawn per image" in code


def _batch(n=8, size=16):
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, (n, size, size, 3)).astype("float32")


def test_keras_randaugment_draws_one_set_of_operations_per_batch():
    images = _batch()
    layer = layers.RandAugment(value_range=(0, 255), num_ops=2, factor=0.5, seed=0)
    draw = layer.get_random_transformation(images, training=True)
    chosen = keras.ops.convert_to_numpy(draw["layer_idxes"])
    assert chosen.shape == (2,), "one pair of operation indices for the whole batch"
    names = list(draw["transforms"])
    assert len(names) == 11 and {"random_rotation", "solarization"} <= set(names)
    # the magnitudes, by contrast, are drawn per image
    assert keras.ops.convert_to_numpy(draw["transforms"]["random_rotation"]["angle"]).shape == (8,)
    # a new call (a new batch) draws new operations
    pairs = {tuple(keras.ops.convert_to_numpy(
        layer.get_random_transformation(images, training=True)["layer_idxes"]))
        for _ in range(8)}
    assert len(pairs) > 1


def test_calling_randaugment_on_a_batch_draws_once_for_the_whole_batch():
    images = _batch()
    layer = layers.RandAugment(value_range=(0, 255), num_ops=2, factor=0.5, seed=0)
    draw_for = layer.get_random_transformation
    shapes = []

    def recording(data, training=True, seed=None):
        shapes.append(tuple(np.shape(data)))
        return draw_for(data, training=training, seed=seed)

    layer.get_random_transformation = recording
    layer(images, training=True)
    assert shapes == [images.shape]


@pytest.mark.parametrize("operation", ["random_rotation", "solarization", "random_shear"])
def test_every_image_of_the_batch_goes_through_the_drawn_operation(operation):
    images = _batch()
    layer = layers.RandAugment(value_range=(0, 255), num_ops=1, factor=0.5, seed=0)
    layer.build(images.shape)
    draw = layer.get_random_transformation(images, training=True)
    index = list(draw["transforms"]).index(operation)
    draw["layer_idxes"] = keras.ops.convert_to_tensor([index], dtype="int32")
    out = keras.ops.convert_to_numpy(layer.transform_images(images, draw))
    alone = keras.ops.convert_to_numpy(
        getattr(layer, operation).transform_images(images, draw["transforms"][operation]))
    np.testing.assert_allclose(out, alone, atol=1e-3)
    assert not np.allclose(out, images)


# ------------------------------------------- 06.transform_matrix: the order of the factors

def _factors(params, image_size):
    """The notebook's table of factors, by hand, in (row, col, 1) coordinates."""
    h, w = image_size
    theta, shear = np.deg2rad(params.get("theta", 0.0)), np.deg2rad(params.get("shear", 0.0))
    tx, ty = params.get("tx", 0.0), params.get("ty", 0.0)
    zx, zy = params.get("zx", 1.0), params.get("zy", 1.0)
    cr, cc = (h - 1) / 2, (w - 1) / 2
    flip = np.eye(3)
    if params.get("flip_vertical"):
        flip[0] = [-1, 0, h - 1]
    if params.get("flip_horizontal"):
        flip[1] = [0, -1, w - 1]
    return {
        "C+": np.array([[1, 0, cr], [0, 1, cc], [0, 0, 1.0]]),
        "C-": np.array([[1, 0, -cr], [0, 1, -cc], [0, 0, 1.0]]),
        "R": np.array([[np.cos(theta), np.sin(theta), 0], [-np.sin(theta), np.cos(theta), 0],
                       [0, 0, 1]]),
        "T": np.array([[1, 0, ty], [0, 1, tx], [0, 0, 1.0]]),
        "S": np.array([[np.cos(shear), 0, 0], [-np.sin(shear), 1, 0], [0, 0, 1]]),
        "Z": np.diag([zy, zx, 1.0]),
        "F": flip,
    }


def _in_order(order):
    """An ``affine_matrix`` that multiplies the factors in ``order`` (left to right)."""
    def affine_matrix(transform_parameters, image_size):
        factors = _factors(dict(transform_parameters), tuple(image_size))
        m = np.eye(3)
        for name in order:
            m = m @ factors[name]
        return m
    return affine_matrix


KERAS_ORDER = ("C+", "R", "T", "S", "Z", "C-", "F")


def _wrong_orders():
    """Every other order a student could write: the four transforms in any order, the flip at
    any place, the centring forgotten, or the shift outside the centring."""
    orders = set()
    for inner in itertools.permutations("RTSZ"):
        centred = ["C+", *inner, "C-"]
        for slot in range(len(centred) + 1):
            orders.add(tuple(centred[:slot] + ["F"] + centred[slot:]))
        orders.add((*inner, "F"))                                    # no centring
    for inner in itertools.permutations("RSZ"):
        orders.add(("T", "C+", *inner, "C-", "F"))                   # shift outside
        orders.add(("C+", *inner, "C-", "T", "F"))
    orders.discard(KERAS_ORDER)
    return sorted(orders)


def _statuses(cases, answer):
    ex = exercise("06.transform_matrix")
    return {record["case"]: judge_record(ex, record)[0]
            for record in probe_cases(ex, answer, cases)}


def test_the_keras_order_is_what_the_legacy_generator_composes():
    # Keras 2 (keras.src.legacy): rotation @ shift @ shear @ zoom about the centre, flips
    # after resampling; cnnlab.augment.transform_matrix is tested against it in test_augment
    params = {"theta": -20.0, "tx": 2.0, "ty": 5.0, "shear": 10.0, "zx": 0.9, "zy": 1.3,
              "flip_horizontal": True}
    np.testing.assert_allclose(_in_order(KERAS_ORDER)(params, (18, 26)),
                               transform_matrix(params, (18, 26)), atol=1e-12)


def test_every_wrong_order_fails_a_public_case_of_transform_matrix():
    ex = exercise("06.transform_matrix")
    public = ex.public_cases()
    assert set(_statuses(public, _in_order(KERAS_ORDER)).values()) == {"pass"}
    wrong = _wrong_orders()
    assert len(wrong) == 24 * 7 - 1 + 24 + 12
    passing = [" ".join(order) for order in wrong
               if set(_statuses(public, _in_order(order)).values()) == {"pass"}]
    assert passing == []
    # the single-transform cases alone let most wrong orders through: the composed ones matter
    single = [case for case in public if len(case.name.split("_then_")) == 1]
    assert len(single) == 4
    lenient = [order for order in wrong
               if set(_statuses(single, _in_order(order)).values()) == {"pass"}]
    assert len(lenient) > 20


# --------------------------------------- 06.label_preserving: every defensible answer passes

#: The lab's answer: the key, with each judgment call in it.
KEY = {"digits": ["rotate_small", "shift", "zoom", "brightness"],
       "cats_vs_dogs": ["horizontal_flip", "rotate_small", "shift", "zoom", "brightness"],
       "satellite": ["horizontal_flip", "vertical_flip", "rotate_small", "rotate_180", "shift",
                     "zoom", "brightness"],
       "day_or_night": ["horizontal_flip", "rotate_small", "shift", "zoom"]}
#: What a defensible answer may leave out or take in (the notebook names them).
EITHER = {"digits": ["brightness"], "cats_vs_dogs": [], "satellite": ["zoom", "brightness"],
          "day_or_night": []}


def _graded_statuses(answer):
    from cnnlab.grading.hidden import graded_exercises

    ex = next(e for e in graded_exercises("06") if e.id == "06.label_preserving")
    return {record["case"]: judge_record(ex, record)[0] for record in probe_cases(ex, answer)}


def _defensible_answers():
    for task, calls in EITHER.items():
        for taken in itertools.product((False, True), repeat=len(calls)):
            answer = {t: list(names) for t, names in KEY.items()}
            answer[task] = [n for n in KEY[task] if n not in calls] + [
                n for n, keep in zip(calls, taken) if keep]
            yield answer


def test_the_notebook_names_the_judgment_calls_the_grader_accepts(cells):
    text = _text(cells["cell-21"])
    assert "accepted either way" in text
    assert "brightness for digits" in text and "zoom and brightness for satellite tiles" in text


def test_every_defensible_answer_to_label_preserving_passes_public_and_hidden():
    answers = list(_defensible_answers())
    assert len(answers) == 2 + 1 + 4 + 1
    for answer in answers:
        statuses = _graded_statuses(answer)
        assert len(statuses) == 5 and set(statuses.values()) == {"pass"}, (answer, statuses)


@pytest.mark.parametrize("task, change, case", [
    ("digits", ["horizontal_flip"], "digits_safe_transforms"),          # a mirrored 2
    ("digits", ["rotate_180"], "digits_safe_transforms"),               # a 6 becomes a 9
    ("digits", ["-zoom"], "digits_safe_transforms"),                     # a safe one left out
    ("cats_vs_dogs", ["vertical_flip"], "cats_vs_dogs_safe_transforms"),
    ("cats_vs_dogs", ["-horizontal_flip"], "cats_vs_dogs_safe_transforms"),
    ("satellite", ["-vertical_flip"], "satellite_safe_transforms"),
    ("satellite", ["-rotate_180"], "satellite_safe_transforms"),
    ("day_or_night", ["brightness"], "day_or_night_safe_transforms"),   # brightness is the label
    ("day_or_night", ["rotate_180"], "day_or_night_safe_transforms"),
])
def test_an_indefensible_answer_fails_its_case(task, change, case):
    answer = {t: list(names) for t, names in KEY.items()}
    for name in change:
        if name.startswith("-"):
            answer[task].remove(name[1:])
        else:
            answer[task].append(name)
    statuses = _graded_statuses(answer)
    assert statuses[case] == "fail"
    assert [c for c, s in statuses.items() if s != "pass"] == [case]
