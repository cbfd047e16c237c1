"""cnnlab.ops against Keras layers, hand-written loops and the lecture examples."""

import os
import subprocess
import sys
from pathlib import Path

import cnnlab  # noqa: F401  (before keras: quiets TensorFlow's start-up log)
import numpy as np
import pytest

from cnnlab import ops

# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------

LECTURE_IMAGE = np.array(
    [
        [1, 1, 1, 0, 0],
        [0, 1, 1, 1, 0],
        [0, 0, 1, 1, 1],
        [0, 0, 1, 1, 0],
        [0, 1, 1, 0, 0],
    ]
)
LECTURE_KERNEL = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]])
LECTURE_POOL_INPUT = np.array([[4, 3, 1, 5], [1, 3, 4, 8], [4, 5, 4, 3], [6, 5, 9, 4]])

# The 4x16 matrix of "Backpropagating on Convolution" (02-cnn-ispr-pisa), copied verbatim.
LECTURE_CONV_MATRIX = (
    r"w_{0,0} & w_{0,1} & w_{0,2} & 0 & w_{1,0} & w_{1,1} & w_{1,2} & 0 & w_{2,0} & w_{2,1} & "
    r"w_{2,2} & 0 & 0 & 0 & 0 & 0 \\ 0 & w_{0,0} & w_{0,1} & w_{0,2} & 0 & w_{1,0} & w_{1,1} & "
    r"w_{1,2} & 0 & w_{2,0} & w_{2,1} & w_{2,2} & 0 & 0 & 0 & 0 \\ 0 & 0 & 0 & 0 & w_{0,0} & "
    r"w_{0,1} & w_{0,2} & 0 & w_{1,0} & w_{1,1} & w_{1,2} & 0 & w_{2,0} & w_{2,1} & w_{2,2} & 0 "
    r"\\ 0 & 0 & 0 & 0 & 0 & w_{0,0} & w_{0,1} & w_{0,2} & 0 & w_{1,0} & w_{1,1} & w_{1,2} & 0 & "
    r"w_{2,0} & w_{2,1} & w_{2,2}"
)


def assert_close(ours, theirs, config=""):
    """float64 NumPy against float32 Keras: 1e-5, relative to the output's magnitude."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, f"{ours.shape} != {theirs.shape} for {config}"
    scale = max(1.0, float(np.abs(ours).max(initial=0.0)))
    np.testing.assert_allclose(
        ours, theirs, rtol=1e-5, atol=1e-5 * scale, err_msg=f"config: {config}"
    )


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


def run_layer(keras, layer, x, weights=()):
    """Build ``layer`` for float32 ``x`` (batched), set its weights, call it eagerly."""
    layer.build(x.shape)
    if weights:
        layer.set_weights([np.asarray(w, dtype=np.float32) for w in weights])
    return keras.ops.convert_to_numpy(layer(x.astype(np.float32)))


def fits(n, k, s, d, padding):
    return padding == "same" or n >= (k - 1) * d + 1


def random_pair(rng, low, high):
    """Mostly square pairs, sometimes rectangular."""
    a = int(rng.integers(low, high + 1))
    return (a, a) if rng.random() < 0.6 else (a, int(rng.integers(low, high + 1)))


def conv_configs(count, seed):
    """Random Conv2D settings that Keras accepts (strides > 1 excludes dilation > 1)."""
    rng = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        kernel_size = random_pair(rng, 1, 5)
        padding = ["valid", "same"][len(configs) % 2]
        if rng.random() < 0.5:
            strides, dilation_rate = random_pair(rng, 1, 3), (1, 1)
        else:
            strides, dilation_rate = (1, 1), random_pair(rng, 1, 3)
        size = random_pair(rng, 1, 12)
        if not all(
            fits(n, k, s, d, padding)
            for n, k, s, d in zip(size, kernel_size, strides, dilation_rate)
        ):
            continue
        batch = [None, 1, 2, 3][len(configs) % 4]
        channels = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        configs.append((batch, size, channels, kernel_size, strides, dilation_rate, padding))
    return configs


def pool_configs(count, seed):
    rng = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        pool_size = random_pair(rng, 1, 4)
        strides = None if rng.random() < 0.3 else random_pair(rng, 1, 3)
        padding = ["valid", "same"][len(configs) % 2]
        size = random_pair(rng, 1, 10)
        if not all(fits(n, k, 1, 1, padding) for n, k in zip(size, pool_size)):
            continue
        batch = [None, 1, 2][len(configs) % 3]
        mode = ["max", "avg"][(len(configs) // 2) % 2]
        channels = int(rng.integers(1, 4))
        configs.append((batch, size, channels, pool_size, strides, padding, mode))
    return configs


def naive_conv2d(x, kernels, bias, strides, padding, dilation_rate):
    """Loop-by-loop Conv2D on one (H, W, C_in) image, padding written out independently."""
    (kh, kw, _, c_out), (sh, sw), (dh, dw) = kernels.shape, strides, dilation_rate
    h, w = x.shape[:2]
    span_h, span_w = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    if padding == "same":
        out_h, out_w = -(-h // sh), -(-w // sw)
        pad_h = max((out_h - 1) * sh + span_h - h, 0)
        pad_w = max((out_w - 1) * sw + span_w - w, 0)
        top, left = pad_h // 2, pad_w // 2
    else:
        out_h, out_w = (h - span_h) // sh + 1, (w - span_w) // sw + 1
        top = left = 0
    y = np.zeros((out_h, out_w, c_out))
    for i in range(out_h):
        for j in range(out_w):
            for o in range(c_out):
                total = bias[o]
                for a in range(kh):
                    for b in range(kw):
                        row, col = i * sh + a * dh - top, j * sw + b * dw - left
                        if 0 <= row < h and 0 <= col < w:
                            total += x[row, col, :] @ kernels[a, b, :, o]
                y[i, j, o] = total
    return y


# ---------------------------------------------------------------------------------------
# The lecture's hand examples
# ---------------------------------------------------------------------------------------

def test_lecture_binary_image_first_output_is_4():
    assert ops.correlate2d(LECTURE_IMAGE, LECTURE_KERNEL)[0, 0] == 4


def test_lecture_binary_image_gives_full_feature_map():
    expected = [[4, 3, 4], [2, 4, 3], [2, 3, 4]]
    np.testing.assert_array_equal(ops.correlate2d(LECTURE_IMAGE, LECTURE_KERNEL), expected)


def test_lecture_example_through_conv2d_matches_correlate2d():
    x = LECTURE_IMAGE[:, :, None]
    kernels = LECTURE_KERNEL[:, :, None, None]
    np.testing.assert_array_equal(
        ops.conv2d(x, kernels)[:, :, 0], ops.correlate2d(LECTURE_IMAGE, LECTURE_KERNEL)
    )


def test_lecture_max_pool_example():
    np.testing.assert_array_equal(ops.pool2d(LECTURE_POOL_INPUT), [[4, 8], [6, 9]])


def test_lecture_pool_input_average_pool_by_hand():
    expected = [[(4 + 3 + 1 + 3) / 4, (1 + 5 + 4 + 8) / 4], [(4 + 5 + 6 + 5) / 4, 5.0]]
    np.testing.assert_allclose(ops.pool2d(LECTURE_POOL_INPUT, mode="avg"), expected)


def test_conv_matrix_has_the_lecture_4x16_layout():
    weights = np.array([[1.0, 2, 3], [4, 5, 6], [7, 8, 9]])  # distinct, non-zero: symbolic

    def value(cell):
        cell = cell.strip()
        if cell == "0":
            return 0.0
        a, b = cell.removeprefix("w_{").removesuffix("}").split(",")
        return weights[int(a), int(b)]

    expected = [[value(c) for c in row.split("&")] for row in LECTURE_CONV_MATRIX.split(r"\\")]
    matrix = ops.conv_matrix((4, 4), weights)
    assert matrix.shape == (4, 16)
    np.testing.assert_array_equal(matrix, expected)


# ---------------------------------------------------------------------------------------
# correlate2d / convolve2d
# ---------------------------------------------------------------------------------------

def test_correlate_and_convolve_differ_for_asymmetric_kernel():
    rng = np.random.default_rng(0)
    image = rng.random((6, 7))
    kernel = np.array([[1.0, 2, 0], [0, 0, -1], [3, 0, 0]])
    assert not np.allclose(ops.correlate2d(image, kernel), ops.convolve2d(image, kernel))
    np.testing.assert_allclose(
        ops.convolve2d(image, kernel), ops.correlate2d(image, kernel[::-1, ::-1])
    )


@pytest.mark.parametrize("padding", ["valid", "same", "full"])
def test_correlate_and_convolve_agree_for_symmetric_kernels(padding):
    rng = np.random.default_rng(1)
    image = rng.random((7, 6))
    for kernel in (LECTURE_KERNEL, np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16):
        np.testing.assert_allclose(
            ops.correlate2d(image, kernel, padding=padding),
            ops.convolve2d(image, kernel, padding=padding),
        )


def test_full_convolution_matches_the_textbook_sum_of_shifted_kernels():
    rng = np.random.default_rng(2)
    image, kernel = rng.random((5, 4)), rng.random((3, 2))
    expected = np.zeros((5 + 3 - 1, 4 + 2 - 1))
    for i in range(5):
        for j in range(4):
            expected[i:i + 3, j:j + 2] += image[i, j] * kernel
    np.testing.assert_allclose(ops.convolve2d(image, kernel, padding="full"), expected)


@pytest.mark.parametrize("kernel_size", [1, 3, 5])
def test_same_padding_keeps_size_for_odd_kernels(kernel_size):
    image = np.arange(42.0).reshape(6, 7)
    kernel = np.ones((kernel_size, kernel_size))
    assert ops.correlate2d(image, kernel, padding="same").shape == (6, 7)


@pytest.mark.parametrize(
    "image_shape, kernel_shape, strides, padding, expected",
    [
        ((7, 7), (3, 3), 1, "valid", (5, 5)),
        ((7, 7), (3, 3), 2, "valid", (3, 3)),
        ((7, 8), (3, 2), (2, 3), "valid", (3, 3)),
        ((7, 7), (4, 4), 2, "same", (4, 4)),
        ((5, 5), (3, 3), 1, "full", (7, 7)),
        ((5, 5), (3, 3), 2, "full", (4, 4)),
    ],
)
def test_correlate2d_output_shape_follows_the_size_formula(
    image_shape, kernel_shape, strides, padding, expected
):
    out = ops.correlate2d(np.ones(image_shape), np.ones(kernel_shape), strides, padding)
    assert out.shape == expected


def test_correlate2d_matches_single_channel_keras_conv2d(keras):
    rng = np.random.default_rng(3)
    for batch, size, _, kernel_size, strides, _, padding in conv_configs(30, seed=3):
        image = rng.uniform(-1, 1, size)
        kernel = rng.uniform(-1, 1, kernel_size)
        layer = keras.layers.Conv2D(1, kernel_size, strides=strides, padding=padding,
                                    use_bias=False)
        expected = run_layer(keras, layer, image[None, :, :, None],
                             [kernel[:, :, None, None]])
        assert_close(ops.correlate2d(image, kernel, strides, padding), expected[0, :, :, 0],
                     (size, kernel_size, strides, padding))


# ---------------------------------------------------------------------------------------
# conv2d
# ---------------------------------------------------------------------------------------

CONV_CONFIGS = conv_configs(80, seed=2024)


@pytest.mark.slow
def test_conv2d_matches_keras_conv2d_on_random_configs(keras):
    rng = np.random.default_rng(4)
    for config in CONV_CONFIGS:
        batch, size, (c_in, c_out), kernel_size, strides, dilation, padding = config
        shape = (*size, c_in) if batch is None else (batch, *size, c_in)
        x = rng.uniform(-1, 1, shape)
        kernels = rng.uniform(-1, 1, (*kernel_size, c_in, c_out))
        bias = rng.uniform(-1, 1, c_out)
        layer = keras.layers.Conv2D(c_out, kernel_size, strides=strides, padding=padding,
                                    dilation_rate=dilation)
        expected = run_layer(keras, layer, x if batch else x[None], [kernels, bias])
        ours = ops.conv2d(x, kernels, bias, strides=strides, padding=padding,
                          dilation_rate=dilation)
        assert_close(ours, expected if batch else expected[0], config)


def test_conv2d_configs_cover_the_hard_cases():
    """The random configs include what is easy to get wrong."""
    def even_same_strided(c):
        return c[6] == "same" and max(c[4]) > 1 and any(k % 2 == 0 for k in c[3])

    assert any(even_same_strided(c) for c in CONV_CONFIGS)
    assert any(max(c[5]) == 3 for c in CONV_CONFIGS)  # dilation 3
    assert any(max(c[4]) == 3 for c in CONV_CONFIGS)  # stride 3
    assert any(c[0] is None for c in CONV_CONFIGS) and any(c[0] for c in CONV_CONFIGS)


def test_conv2d_same_padding_with_even_kernel_pads_bottom_right():
    x = np.zeros((4, 4, 1))
    x[0, 0, 0] = 1.0  # one bright pixel at the top-left
    kernels = np.ones((2, 2, 1, 1))
    y = ops.conv2d(x, kernels, padding="same")[:, :, 0]
    # pad_total = 1, all of it bottom/right: output [0, 0] sees rows/cols 0..1 only.
    assert y.shape == (4, 4)
    assert y[0, 0] == 1 and y.sum() == 1


@pytest.mark.parametrize(
    "strides, dilation_rate, padding",
    [((2, 2), (2, 2), "valid"), ((3, 1), (1, 2), "same"), ((2, 3), (2, 2), "same")],
)
def test_conv2d_strides_with_dilation_match_a_naive_loop(strides, dilation_rate, padding):
    # Keras refuses strides > 1 with dilation > 1; the NumPy version supports it.
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, (9, 8, 2))
    kernels, bias = rng.uniform(-1, 1, (3, 2, 2, 3)), rng.uniform(-1, 1, 3)
    ours = ops.conv2d(x, kernels, bias, strides, padding, dilation_rate)
    np.testing.assert_allclose(
        ours, naive_conv2d(x, kernels, bias, strides, padding, dilation_rate), atol=1e-12
    )


def test_conv2d_matches_a_naive_loop_on_a_few_configs():
    rng = np.random.default_rng(6)
    for _, size, (c_in, c_out), kernel_size, strides, dilation, padding in CONV_CONFIGS[:12]:
        x = rng.uniform(-1, 1, (*size, c_in))
        kernels = rng.uniform(-1, 1, (*kernel_size, c_in, c_out))
        bias = rng.uniform(-1, 1, c_out)
        np.testing.assert_allclose(
            ops.conv2d(x, kernels, bias, strides, padding, dilation),
            naive_conv2d(x, kernels, bias, strides, padding, dilation),
            atol=1e-12,
        )


def test_conv2d_handles_a_lab_sized_input():
    rng = np.random.default_rng(7)
    x, kernels = rng.random((64, 64, 8)), rng.random((3, 3, 8, 16))
    y = ops.conv2d(x, kernels, padding="same")
    assert y.shape == (64, 64, 16) and y.dtype == np.float64
    np.testing.assert_allclose(y[10, 20], np.einsum("ijc,ijco->o", x[9:12, 19:22], kernels))


def test_conv2d_does_not_modify_its_inputs():
    x, kernels = np.ones((5, 5, 2)), np.ones((3, 3, 2, 1))
    ops.conv2d(x, kernels, padding="same")
    assert (x == 1).all() and (kernels == 1).all()


# ---------------------------------------------------------------------------------------
# pool2d
# ---------------------------------------------------------------------------------------

def test_pool2d_matches_keras_pooling_layers_on_random_configs(keras):
    rng = np.random.default_rng(8)
    for config in pool_configs(60, seed=8):
        batch, size, channels, pool_size, strides, padding, mode = config
        shape = (*size, channels) if batch is None else (batch, *size, channels)
        x = rng.uniform(-1, 1, shape)
        layer_class = keras.layers.MaxPooling2D if mode == "max" else keras.layers.AveragePooling2D
        layer = layer_class(pool_size, strides=strides, padding=padding)
        expected = run_layer(keras, layer, x if batch else x[None])
        ours = ops.pool2d(x, pool_size, strides=strides, padding=padding, mode=mode)
        assert_close(ours, expected if batch else expected[0], config)


def test_average_pool_with_same_padding_divides_by_real_pixels():
    x = np.full((3, 3), 6.0)
    # Windows at the bottom/right edge hold padding; the mean must still be 6.
    np.testing.assert_allclose(ops.pool2d(x, 2, padding="same", mode="avg"), np.full((2, 2), 6))


def test_max_pool_with_same_padding_ignores_padding_for_negative_inputs():
    x = np.full((3, 3), -5.0)
    np.testing.assert_array_equal(ops.pool2d(x, 2, padding="same"), np.full((2, 2), -5))


def test_pool2d_keeps_the_number_of_axes():
    assert ops.pool2d(np.ones((4, 4))).shape == (2, 2)
    assert ops.pool2d(np.ones((4, 4, 3))).shape == (2, 2, 3)
    assert ops.pool2d(np.ones((2, 4, 4, 3))).shape == (2, 2, 2, 3)


def test_pool2d_strides_default_to_pool_size():
    x = np.arange(36.0).reshape(6, 6)
    np.testing.assert_array_equal(ops.pool2d(x, 3), ops.pool2d(x, 3, strides=3))
    assert ops.pool2d(x, 3, strides=1).shape == (4, 4)


# ---------------------------------------------------------------------------------------
# conv_matrix and conv_transpose2d
# ---------------------------------------------------------------------------------------

MATRIX_CASES = [
    ((4, 4), (3, 3), 1, "valid"),
    ((5, 6), (2, 3), 1, "valid"),
    ((7, 7), (3, 3), 2, "valid"),
    ((8, 5), (2, 2), (2, 1), "valid"),
    ((6, 6), (3, 3), 1, "same"),
    ((7, 6), (4, 3), (3, 2), "same"),
]


@pytest.mark.parametrize("input_shape, kernel_size, strides, padding", MATRIX_CASES)
def test_conv_matrix_times_image_equals_correlate2d(input_shape, kernel_size, strides, padding):
    rng = np.random.default_rng(9)
    x, kernel = rng.random(input_shape), rng.random(kernel_size)
    matrix = ops.conv_matrix(input_shape, kernel, strides, padding)
    expected = ops.correlate2d(x, kernel, strides, padding)
    assert matrix.shape == (expected.size, x.size)
    np.testing.assert_allclose(matrix @ x.ravel(), expected.ravel())


@pytest.mark.parametrize("y_shape, kernel_size, strides, padding", [
    ((2, 2), (3, 3), 1, "valid"),
    ((3, 2), (2, 3), 1, "valid"),
    ((3, 3), (3, 3), 2, "valid"),
    ((3, 4), (2, 2), 3, "valid"),  # kernel smaller than stride: gaps of zeros
    ((3, 3), (3, 3), 1, "same"),
    ((2, 3), (4, 3), (2, 3), "same"),
])
def test_conv_transpose2d_equals_conv_matrix_transpose(y_shape, kernel_size, strides, padding):
    rng = np.random.default_rng(10)
    y, kernel = rng.random(y_shape), rng.random(kernel_size)
    out = ops.conv_transpose2d(y, kernel, strides, padding)
    matrix = ops.conv_matrix(out.shape, kernel, strides, padding)
    assert matrix.shape == (y.size, out.size)
    np.testing.assert_allclose(out, (matrix.T @ y.ravel()).reshape(out.shape))


def test_conv_transpose2d_restores_the_lecture_4x4_shape():
    y = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert ops.conv_transpose2d(y, np.ones((3, 3))).shape == (4, 4)


def test_conv_transpose2d_is_the_adjoint_of_conv2d_for_channels():
    # <conv2d(x), y> == <x, conv_transpose2d(y)> with the very same kernel array.
    rng = np.random.default_rng(11)
    kernels = rng.random((3, 2, 2, 4))
    y = rng.random((2, 3, 4, 4))
    x = rng.random((2, 7, 8, 2))  # conv_transpose2d(y) has this shape for strides (2, 2)
    out = ops.conv_transpose2d(y, kernels, strides=2)
    assert out.shape == x.shape
    forward = ops.conv2d(x, kernels, strides=2)
    assert forward.shape == y.shape
    np.testing.assert_allclose(np.sum(forward * y), np.sum(x * out))


def transpose_configs(count, seed):
    rng = np.random.default_rng(seed)
    configs = []
    for index in range(count):
        size = random_pair(rng, 1, 6)
        kernel_size = random_pair(rng, 1, 5)
        strides = random_pair(rng, 1, 3)
        padding = ["valid", "same"][index % 2]
        channels = (1, 1) if index % 3 else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        batch = [None, 2][index % 2 if channels != (1, 1) else 0]
        configs.append((batch, size, channels, kernel_size, strides, padding))
    return configs


def test_conv_transpose2d_matches_keras_conv2d_transpose(keras):
    rng = np.random.default_rng(12)
    for config in transpose_configs(50, seed=12):
        batch, size, (c_in, c_out), kernel_size, strides, padding = config
        layer = keras.layers.Conv2DTranspose(c_out, kernel_size, strides=strides,
                                             padding=padding, use_bias=False)
        kernel = rng.uniform(-1, 1, (*kernel_size, c_out, c_in))  # (kh, kw, out, in)
        if (c_in, c_out) == (1, 1):
            y = rng.uniform(-1, 1, size)
            expected = run_layer(keras, layer, y[None, :, :, None], [kernel])[0, :, :, 0]
            ours = ops.conv_transpose2d(y, kernel[:, :, 0, 0], strides, padding)
        else:
            y = rng.uniform(-1, 1, (*size, c_in) if batch is None else (batch, *size, c_in))
            expected = run_layer(keras, layer, y if batch else y[None], [kernel])
            expected = expected if batch else expected[0]
            ours = ops.conv_transpose2d(y, kernel, strides, padding)
        assert_close(ours, expected, config)


# ---------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------

BAD_CALLS = {
    "conv2d x without channel axis": (
        lambda: ops.conv2d(np.ones((5, 5)), np.ones((3, 3, 1, 1))),
        r"images must have shape.*\(5, 5\)"),
    "conv2d 5-D x": (
        lambda: ops.conv2d(np.ones((1, 1, 5, 5, 1)), np.ones((3, 3, 1, 1))),
        "images must have shape"),
    "conv2d 2-D kernels": (
        lambda: ops.conv2d(np.ones((5, 5, 1)), np.ones((3, 3))), r"kernel\[:, :, None, None\]"),
    "conv2d channel mismatch": (
        lambda: ops.conv2d(np.ones((5, 5, 3)), np.ones((3, 3, 2, 4))),
        r"channel mismatch.*\(5, 5, 3\).*\(3, 3, 2, 4\)"),
    "conv2d kernel larger than input": (
        lambda: ops.conv2d(np.ones((3, 5, 1)), np.ones((4, 4, 1, 1))), r"does not fit.*\(3, 5\)"),
    "conv2d dilated kernel larger than input": (
        lambda: ops.conv2d(np.ones((4, 4, 1)), np.ones((2, 2, 1, 1)), dilation_rate=4),
        "dilated to 5"),
    "conv2d zero strides": (
        lambda: ops.conv2d(np.ones((5, 5, 1)), np.ones((3, 3, 1, 1)), strides=0), "strides=0"),
    "conv2d negative dilation": (
        lambda: ops.conv2d(np.ones((5, 5, 1)), np.ones((3, 3, 1, 1)), dilation_rate=(1, -1)),
        "dilation_rate"),
    "conv2d unknown padding": (
        lambda: ops.conv2d(np.ones((5, 5, 1)), np.ones((3, 3, 1, 1)), padding="full"),
        "padding='full'.*'valid', 'same'"),
    "conv2d bias shape": (
        lambda: ops.conv2d(np.ones((5, 5, 1)), np.ones((3, 3, 1, 2)), bias=np.ones(3)),
        r"bias must have shape \(C_out,\) = \(2,\)"),
    "conv2d empty kernel": (
        lambda: ops.conv2d(np.ones((5, 5, 1)), np.ones((0, 3, 1, 1))), "empty"),
    "correlate2d 3-D image": (
        lambda: ops.correlate2d(np.ones((5, 5, 3)), np.ones((3, 3))), "image must be 2-D"),
    "correlate2d 4-D kernel": (
        lambda: ops.correlate2d(np.ones((5, 5)), np.ones((3, 3, 1, 1))), "kernel must be 2-D"),
    "correlate2d kernel larger than image": (
        lambda: ops.correlate2d(np.ones((2, 2)), np.ones((3, 3))), "does not fit"),
    "correlate2d unknown padding": (
        lambda: ops.correlate2d(np.ones((5, 5)), np.ones((3, 3)), padding="circular"),
        "padding='circular'"),
    "correlate2d three strides": (
        lambda: ops.correlate2d(np.ones((5, 5)), np.ones((3, 3)), strides=(1, 1, 1)), "strides"),
    "convolve2d 3-D kernel": (
        lambda: ops.convolve2d(np.ones((5, 5)), np.ones((3, 3, 1))), "kernel must be 2-D"),
    "pool2d zero pool size": (lambda: ops.pool2d(np.ones((4, 4)), 0), "pool_size=0"),
    "pool2d zero strides": (lambda: ops.pool2d(np.ones((4, 4)), 2, strides=0), "strides=0"),
    "pool2d window larger than input": (
        lambda: ops.pool2d(np.ones((3, 3)), 4), r"pool window.*does not fit"),
    "pool2d unknown mode": (lambda: ops.pool2d(np.ones((4, 4)), mode="median"), "mode='median'"),
    "pool2d unknown padding": (
        lambda: ops.pool2d(np.ones((4, 4)), padding="reflect"), "padding='reflect'"),
    "pool2d 5-D x": (lambda: ops.pool2d(np.ones((1, 1, 4, 4, 1))), "images must have shape"),
    "conv_matrix kernel larger than input": (
        lambda: ops.conv_matrix((2, 4), np.ones((3, 3))), "does not fit"),
    "conv_matrix zero input size": (
        lambda: ops.conv_matrix((0, 4), np.ones((1, 1))), "input_shape"),
    "conv_matrix 3-D kernel": (
        lambda: ops.conv_matrix((4, 4), np.ones((3, 3, 1))), "kernel must be 2-D"),
    "conv_transpose2d 2-D y with 4-D kernel": (
        lambda: ops.conv_transpose2d(np.ones((2, 2)), np.ones((3, 3, 1, 1))), "2-D kernel"),
    "conv_transpose2d channel mismatch": (
        lambda: ops.conv_transpose2d(np.ones((2, 2, 3)), np.ones((3, 3, 1, 2))),
        "channel mismatch"),
    "conv_transpose2d 3-D y with 2-D kernel": (
        lambda: ops.conv_transpose2d(np.ones((2, 2, 3)), np.ones((3, 3))), r"\(kh, kw, C_out"),
    "conv_transpose2d 1-D y": (
        lambda: ops.conv_transpose2d(np.ones(4), np.ones((3, 3))), "images must have shape"),
    "conv_transpose2d zero strides": (
        lambda: ops.conv_transpose2d(np.ones((2, 2)), np.ones((3, 3)), strides=0), "strides"),
    "conv_transpose2d unknown padding": (
        lambda: ops.conv_transpose2d(np.ones((2, 2)), np.ones((3, 3)), padding="full"),
        "padding='full'"),
}


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_bad_input_raises_value_error_naming_the_problem(case):
    call, message = BAD_CALLS[case]
    with pytest.raises(ValueError, match=message):
        call()


def test_error_messages_suggest_a_fix():
    with pytest.raises(ValueError, match="use padding='same'"):
        ops.conv2d(np.ones((3, 3, 1)), np.ones((4, 4, 1, 1)))
    with pytest.raises(ValueError, match=r"images\[\.\.\., None\]"):
        ops.conv2d(np.ones((5, 5)), np.ones((3, 3, 1, 1)))


WRONG_TYPES = {
    "conv2d float strides": (
        lambda: ops.conv2d(np.ones((5, 5, 1)), np.ones((3, 3, 1, 1)), strides=1.5), "strides"),
    "correlate2d float strides": (
        lambda: ops.correlate2d(np.ones((5, 5)), np.ones((3, 3)), strides=1.5), "strides"),
    "correlate2d float pair of strides, never rounded to (2, 2)": (
        lambda: ops.correlate2d(np.ones((5, 5)), np.ones((3, 3)), strides=(2.5, 2.5)),
        r"strides\[0\]"),
    "pool2d float pool size": (lambda: ops.pool2d(np.ones((4, 4)), 2.0), "pool_size"),
    "pool2d string strides": (lambda: ops.pool2d(np.ones((4, 4)), 2, strides="2"), "strides"),
    "conv2d bool dilation": (
        lambda: ops.conv2d(np.ones((5, 5, 1)), np.ones((3, 3, 1, 1)), dilation_rate=True),
        "dilation_rate"),
    "conv_transpose2d float strides": (
        lambda: ops.conv_transpose2d(np.ones((2, 2)), np.ones((3, 3)), strides=2.0), "strides"),
    "conv_matrix float input shape": (
        lambda: ops.conv_matrix((4.0, 4), np.ones((3, 3))), "input_shape"),
}


@pytest.mark.parametrize("case", sorted(WRONG_TYPES))
def test_a_size_of_the_wrong_type_raises_type_error_as_in_arithmetic(case):
    """The rule of cnnlab._checks: a float, bool or string where an int belongs is a
    TypeError (as arithmetic.conv_output_size(strides=1.5)), never silently int()-ed."""
    call, message = WRONG_TYPES[case]
    with pytest.raises(TypeError, match=message):
        call()


def test_numpy_integers_and_arrays_are_valid_sizes():
    image, kernel = np.arange(36.0).reshape(6, 6), np.ones((2, 2))
    expected = ops.correlate2d(image, kernel, strides=(2, 3))
    np.testing.assert_array_equal(
        ops.correlate2d(image, kernel, strides=np.array([2, 3])), expected)
    np.testing.assert_array_equal(
        ops.correlate2d(image, kernel, strides=(np.int64(2), np.int32(3))), expected)


RENAMED = [
    # (function, old keyword, new keyword, positional arguments, the array passed by keyword)
    (ops.conv2d, "x", "images", (), {"kernel": np.ones((2, 2, 1, 3))}),
    (ops.conv2d, "kernels", "kernel", (np.arange(25.0).reshape(5, 5, 1),), None),
    (ops.pool2d, "x", "images", (), {}),
    (ops.conv_transpose2d, "y", "images", (), {"kernel": np.ones((2, 2))}),
]


@pytest.mark.parametrize("func, old, new, args, kwargs", RENAMED,
                         ids=[f"{f.__name__}-{old}" for f, old, *_ in RENAMED])
def test_old_argument_names_still_work_with_a_deprecation_warning(func, old, new, args, kwargs):
    image = np.arange(25.0).reshape(5, 5) if func is not ops.conv2d else \
        np.arange(25.0).reshape(5, 5, 1)
    value = np.ones((2, 2, 1, 3)) if old == "kernels" else image
    kwargs = dict(kwargs or {})
    expected = func(*args, **{new: value}, **kwargs)
    with pytest.warns(DeprecationWarning, match=f"{old}= is now called {new}=") as record:
        result = func(*args, **{old: value}, **kwargs)
    np.testing.assert_array_equal(result, expected)
    assert record[0].filename == __file__  # the warning points at the caller's line
    with pytest.raises(TypeError, match=f"both {old}= and {new}="):
        func(*args, **{old: value, new: value}, **kwargs)


def test_non_numeric_input_raises_type_error():
    with pytest.raises(TypeError, match="image must hold numbers"):
        ops.correlate2d(np.array([["a", "b"], ["c", "d"]]), np.ones((1, 1)))


def test_importing_ops_does_not_import_keras():
    code = (
        "import sys, cnnlab.ops, cnnlab.kernels; "
        "loaded = [m for m in ('keras', 'tensorflow') if m in sys.modules]; "
        "assert not loaded, loaded"
    )
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, env=env
    )
    assert result.returncode == 0, result.stderr
