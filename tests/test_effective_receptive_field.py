"""cnnlab.interpret.effective_receptive_field and Lab 02's NumPy reference, against references
that never backpropagate: a linear model's gradient is its response to one-pixel impulses, and
a stack of uniform 3x3 kernels spreads the gradient as the product of two 1-D path counts."""

import keras
import numpy as np
import pytest
from keras import layers

from cnnlab import interpret
from cnnlab.exercise import judge_records, probe_cases
from cnnlab.exercises.lab02 import erf_model, erf_weights, reference_effective_receptive_field
from cnnlab.grading.hidden import graded_exercises


def impulse_responses(model, input_shape):
    """|d unit / d x| of y[0, H//2, W//2, 0] for a *linear* model, by forward passes only: the
    unit's value for an image that is 1 at one pixel and channel and 0 elsewhere."""
    h, w, c = input_shape
    basis = np.eye(h * w * c, dtype="float32").reshape(h * w * c, h, w, c)
    y = keras.ops.convert_to_numpy(model(basis))
    unit = y[:, y.shape[1] // 2, y.shape[2] // 2, 0].reshape(h, w, c)
    field = np.abs(unit.astype(np.float64)).sum(axis=-1)
    return field / field.sum()


STACKS = [
    ([(3, 1, 4), (3, 2, 3), (3, 1, 1)], (15, 13, 1), 1),
    ([(5, 1, 2), (3, 2, 2)], (13, 12, 3), 2),
    ([(3, 1, 1)], (6, 7, 2), 3),               # even sizes: the centre unit is H // 2, W // 2
]


@pytest.mark.parametrize("stack, input_shape, seed", STACKS)
def test_the_library_map_is_the_linear_models_impulse_response(stack, input_shape, seed):
    model = erf_model(stack, input_shape, seed=seed)
    got = interpret.effective_receptive_field(model, input_shape)
    assert got.shape == input_shape[:2]
    assert got.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(got, impulse_responses(model, input_shape), atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("stack, input_shape, seed", STACKS)
def test_lab02s_numpy_backpropagation_is_the_impulse_response(stack, input_shape, seed):
    model = erf_model(stack, input_shape, seed=seed)
    kernels = erf_weights(stack, input_shape[-1], seed)
    ours = reference_effective_receptive_field(kernels, [d for _, d, _ in stack], input_shape)
    np.testing.assert_allclose(ours, impulse_responses(model, input_shape), atol=1e-6, rtol=1e-4)


def test_uniform_3x3_kernels_spread_the_gradient_as_counts_of_paths():
    depth, side = 3, 11
    paths = np.array([1.0])
    for _ in range(depth):
        paths = np.convolve(paths, [1.0, 1.0, 1.0])       # 1, 3, 6, 7, 6, 3, 1 for depth 3
    expected = np.zeros((side, side))
    start = side // 2 - depth
    expected[start:start + paths.size, start:start + paths.size] = np.outer(paths, paths)
    expected /= expected.sum()
    model = erf_model([(3, 1, 1)] * depth, (side, side, 1), uniform=True)
    np.testing.assert_allclose(interpret.effective_receptive_field(model), expected, atol=1e-7)
    # the centre pixel gets 7 * 7 paths of 27 * 27, a corner of the 7x7 field one
    assert expected[5, 5] == pytest.approx(49 / 729) and expected[2, 2] == pytest.approx(1 / 729)


def test_a_relu_stack_at_zero_input_is_refused_with_the_reason():
    model = keras.Sequential([keras.Input((9, 9, 1)), layers.Conv2D(1, 3, activation="relu")])
    with pytest.raises(ValueError, match="ReLU"):
        interpret.effective_receptive_field(model)


def test_a_model_without_spatial_maps_is_refused():
    model = keras.Sequential([keras.Input((9, 9, 1)), layers.Flatten(), layers.Dense(3)])
    with pytest.raises(ValueError, match="maps"):
        interpret.effective_receptive_field(model)


def test_unknown_input_sizes_need_an_input_shape():
    model = keras.Sequential([keras.Input((None, None, 1)), layers.Conv2D(1, 3)])
    with pytest.raises(ValueError, match="input_shape"):
        interpret.effective_receptive_field(model)
    assert interpret.effective_receptive_field(model, (7, 7, 1)).shape == (7, 7)


def _statuses(answer):
    ex = next(e for e in graded_exercises("02") if e.id == "02.effective_receptive_field")
    return {name: status for name, status, _, _ in judge_records(ex, probe_cases(ex, answer))}


def _raw_gradient(model, input_shape):
    import tensorflow as tf

    x = tf.zeros((1, *input_shape))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = model(x)
        unit = y[0, y.shape[1] // 2, y.shape[2] // 2, 0]
    return tape.gradient(unit, x).numpy()[0].astype(np.float64)


@pytest.mark.slow
def test_the_exercise_passes_the_library_and_fails_common_mistakes():
    assert set(_statuses(interpret.effective_receptive_field).values()) == {"pass"}

    def not_normalised(model, input_shape):
        return np.abs(_raw_gradient(model, input_shape)).sum(axis=-1)

    def abs_after_the_channel_sum(model, input_shape):
        field = np.abs(_raw_gradient(model, input_shape).sum(axis=-1))
        return field / field.sum()

    def divided_by_the_maximum(model, input_shape):
        field = np.abs(_raw_gradient(model, input_shape)).sum(axis=-1)
        return field / field.max()

    for wrong in (not_normalised, abs_after_the_channel_sum, divided_by_the_maximum):
        statuses = _statuses(wrong)
        assert "fail" in statuses.values(), wrong.__name__
    assert _statuses(abs_after_the_channel_sum)["colour_input_sums_the_channels"] == "fail"
