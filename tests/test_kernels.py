"""cnnlab.kernels: the lecture's named kernels, their sums and their effects."""

import cnnlab  # noqa: F401
import numpy as np
import pytest

from cnnlab import kernels, ops

# The "Simple Kernels / Filters" table of 03-cnn-mlnn-7pam2021, typed in by hand.
LECTURE_TABLE = {
    "IDENTITY": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "EDGE_DIAGONAL": [[1, 0, -1], [0, 0, 0], [-1, 0, 1]],
    "EDGE_LAPLACIAN_4": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "EDGE_STRONG": [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
    "SHARPEN": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "BOX_BLUR": np.ones((3, 3)) / 9,
    "GAUSSIAN_BLUR": np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16,
}
SUM_ONE = ["IDENTITY", "SHARPEN", "BOX_BLUR", "GAUSSIAN_BLUR"]
SUM_ZERO = ["EDGE_DIAGONAL", "EDGE_LAPLACIAN_4", "EDGE_STRONG", "LAPLACIAN", "SOBEL_X", "SOBEL_Y"]


@pytest.mark.parametrize("name", sorted(LECTURE_TABLE))
def test_kernel_weights_match_the_lecture_table(name):
    np.testing.assert_allclose(kernels.KERNELS[name], LECTURE_TABLE[name], rtol=1e-7)
    np.testing.assert_allclose(getattr(kernels, name), LECTURE_TABLE[name], rtol=1e-7)


def test_every_kernel_is_listed_summed_and_described():
    assert sorted(kernels.KERNELS) == sorted(SUM_ONE + SUM_ZERO)
    assert set(kernels.DESCRIPTIONS) == set(kernels.KERNELS)
    assert all(len(text) > 20 for text in kernels.DESCRIPTIONS.values())
    assert set(kernels.KERNELS) <= set(kernels.__all__)


def test_laplacian_is_the_discrete_5_point_laplacian():
    # f(x+1) + f(x-1) + f(y+1) + f(y-1) - 4 f(x, y); on f = x^2 + y^2 it is 2 + 2 = 4.
    rows, cols = np.mgrid[0:6, 0:6].astype(float)
    out = ops.correlate2d(rows**2 + cols**2, kernels.LAPLACIAN)
    np.testing.assert_allclose(out, np.full((4, 4), 4.0))


@pytest.mark.parametrize("name", SUM_ONE)
def test_blur_sharpen_and_identity_sum_to_one(name):
    assert kernels.KERNELS[name].sum() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("name", SUM_ZERO)
def test_edge_detectors_sum_to_zero(name):
    assert kernels.KERNELS[name].sum() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("name", SUM_ZERO)
def test_edge_detectors_give_zero_on_a_flat_image(name):
    flat = np.full((6, 6), 0.7)
    np.testing.assert_allclose(ops.correlate2d(flat, kernels.kernel(name)), 0.0, atol=1e-6)


@pytest.mark.parametrize("name", SUM_ONE)
def test_sum_one_kernels_keep_a_flat_image(name):
    flat = np.full((6, 6), 0.7)
    np.testing.assert_allclose(ops.correlate2d(flat, kernels.kernel(name)), 0.7, rtol=1e-6)


def test_identity_leaves_an_image_unchanged_with_same_padding():
    image = np.random.default_rng(0).random((7, 5))
    np.testing.assert_array_equal(ops.correlate2d(image, kernels.IDENTITY, padding="same"), image)


def test_sobel_x_is_positive_where_the_image_gets_brighter_to_the_right():
    step = np.zeros((5, 6))
    step[:, 3:] = 1.0
    out = ops.correlate2d(step, kernels.SOBEL_X)
    assert (out >= 0).all() and out.max() == 4
    np.testing.assert_allclose(ops.correlate2d(step, kernels.SOBEL_Y), 0.0)
    np.testing.assert_allclose(ops.correlate2d(step.T, kernels.SOBEL_Y), out.T)


@pytest.mark.parametrize("name", sorted(kernels.KERNELS))
def test_constants_are_read_only_float32_3x3(name):
    constant = kernels.KERNELS[name]
    assert constant.dtype == np.float32 and constant.shape == (3, 3)
    assert not constant.flags.writeable
    with pytest.raises(ValueError):
        constant[1, 1] = 42.0


def test_kernel_returns_a_writable_copy():
    copy = kernels.kernel("SHARPEN")
    assert copy.dtype == np.float32 and copy.flags.writeable
    copy[1, 1] = 0.0
    assert kernels.SHARPEN[1, 1] == 5.0


@pytest.mark.parametrize("name", ["box_blur", "Box Blur", " gaussian-blur ", "SOBEL_X"])
def test_kernel_names_are_case_and_separator_insensitive(name):
    key = name.strip().upper().replace(" ", "_").replace("-", "_")
    np.testing.assert_array_equal(kernels.kernel(name), kernels.KERNELS[key])


def test_unknown_kernel_name_lists_the_known_names():
    with pytest.raises(ValueError, match="'emboss'.*IDENTITY.*SHARPEN.*GAUSSIAN_BLUR"):
        kernels.kernel("emboss")


def test_kernel_name_must_be_a_string():
    with pytest.raises(TypeError, match="name must be a string"):
        kernels.kernel(3)
