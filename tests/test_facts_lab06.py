"""Lab 06's facts (issue 15 §3): the slide's Keras was right for its time, and RandAugment's
operations are drawn per batch.

Each text test fails on the lab before the fix and passes after it; the RandAugment tests
reproduce the claim with Keras itself, so they fail if Keras ever draws operations per image.
Nothing here runs the lab: the prose and the code that prints its numbers are read from the
solution notebook's cells (by cell id), and the numbers are recomputed here.
"""

import re
from pathlib import Path

import keras
import nbformat
import numpy as np
import pytest
from keras import layers

ROOT = Path(__file__).resolve().parent.parent
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


# ----------------------------------------------- fit_generator(train_flow, train_flow.n)

def test_fit_generator_text_says_keras1_counted_samples_and_keras2_renamed_it(cells):
    section = _text(cells["cell-04"])
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


def test_the_training_cell_prints_both_readings_of_the_slides_second_argument(cells):
    code = cells["cell-28"].source
    assert "the slide's steps_per_epoch=train_flow.n would have run" not in code
    assert "in Keras 1 samples_per_epoch=" in code and "= 1 pass" in code
    assert "in Keras 2 steps_per_epoch=" in code
    # the "32" the prose quotes is what the cell prints: passes = batches * batch size / images
    assert "train_flow.n * train_flow.batch_size // train_flow.n} passes" in code
    assert "fit_generator(train_flow, train_flow.n)" in code


# ------------------------------------------------------------------------- shear_range

def test_shear_text_says_radians_in_keras1_and_degrees_later(cells):
    text = _text(cells["cell-08"])
    assert "`shear_range` is in **degrees** in Keras 2, so the slide's 0.2" not in text
    assert "Keras 1 and early Keras 2 documented it in **radians**" in text
    assert "read in **degrees** by later Keras 2 releases" in text
    assert "about 11.5°" in text and "the slide was right for its Keras" in text


def test_the_quoted_11_5_degrees_is_computed_and_printed(cells):
    code = cells["cell-09"].source
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
