"""Lab 02 "Convolution arithmetic": exercises and their public cases (points and hidden cases:
:mod:`cnnlab.grading.hidden.lab02`).

Expected values come from ``cnnlab.arithmetic`` and ``cnnlab.ops`` (checked against Keras in
their own tests), from the lecture's numbers (7x7 input, 3x3 kernel; the 760 example; the
4x16 matrix) and, for the effective receptive field, from backpropagation written out in NumPy
(checked against Keras impulse responses in ``tests/test_effective_receptive_field.py``), never
from a notebook.
"""

from __future__ import annotations

import numpy as np

from cnnlab.exercise import Case, Exercise, allclose, equal

__all__ = [
    "EXERCISES",
    "NETWORK",
    "NETWORK_INPUT_SHAPE",
    "reference_conv_output_size",
    "reference_predict_params",
    "reference_predict_shapes",
    "reference_receptive_field_size",
    "reference_effective_receptive_field",
    "erf_weights",
    "erf_model",
    "reference_conv_transpose",
    "reference_numeric_gradient",
]


def _arithmetic():
    from cnnlab import arithmetic

    return arithmetic


def _ops():
    from cnnlab import ops

    return ops


def _array(seed: int, shape) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=shape)


# ----------------------------------------------------------------------------- 02.conv_output_size


def reference_conv_output_size(n, k, s=1, p=0):
    """Output size of a convolution, ``floor((n - k + 2p) / s) + 1``, as Keras computes it."""
    return _arithmetic().conv_output_size(int(n), int(k), strides=int(s), padding=int(p))


def _size_configs(seed: int, count: int):
    """Seeded (n, k, s, p) configurations in which the kernel fits the padded input."""
    rng = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        n, k = int(rng.integers(1, 65)), int(rng.integers(1, 12))
        s, p = int(rng.integers(1, 6)), int(rng.integers(0, 4))
        if n + 2 * p >= k:
            configs.append((n, k, s, p))
    return configs


def _sizes_case(name, configs, hidden=False, hint=""):
    return Case(
        name,
        probe=lambda f: [int(f(n, k, s, p)) for n, k, s, p in configs],
        expected=lambda: [reference_conv_output_size(n, k, s, p) for n, k, s, p in configs],
        compare=equal,
        hidden=hidden,
        hint=hint or "(n - k + 2p) // s + 1: pad both sides, then count the kernel positions",
    )


CONV_OUTPUT_SIZE = Exercise(
    id="02.conv_output_size",
    implementations=("cnnlab.arithmetic.sizes.conv_output_size",),
    name="conv_output_size",
    title="The output-size formula W2 = (W1 - F + 2P) / S + 1",
    reference=lambda: reference_conv_output_size,
    cases=(
        _sizes_case("lecture_7x7_input_3x3_kernel_strides_1_and_2", [(7, 3, 1, 0), (7, 3, 2, 0)],
                    hint="the lecture: stride 1 gives 5, stride 2 gives 3"),
        _sizes_case("padding_keeps_the_size", [(7, 3, 1, 1), (32, 5, 1, 2), (28, 7, 1, 3)],
                    hint="with P = (K - 1) / 2 and stride 1 the output is as large as the input"),
        _sizes_case("stride_that_does_not_fit_is_floored", [(7, 3, 3, 0), (32, 5, 2, 0)],
                    hint="(7 - 3) / 3 + 1 = 2.33: Keras keeps the 2 whole positions (floor)"),
    ),
)


# ----------------------------------------------------------------------------- the small network

#: The network whose shapes and parameters students predict (input 32x32x3), as layer specs.
NETWORK = (
    {"kind": "conv", "filters": 10, "kernel_size": 5, "padding": "same", "name": "conv_a"},
    {"kind": "conv", "filters": 16, "kernel_size": 3, "strides": 2, "name": "conv_b"},
    {"kind": "conv", "filters": 8, "kernel_size": 1, "name": "conv_c"},
    {"kind": "conv", "filters": 8, "kernel_size": 3, "dilation_rate": 2, "name": "conv_d"},
    {"kind": "conv", "filters": 4, "kernel_size": 3, "strides": 2, "padding": "same",
     "name": "conv_e"},
)
NETWORK_INPUT_SHAPE = (32, 32, 3)


def _trace_rows(layers, input_shape):
    rows = _arithmetic().trace_shapes(list(layers), tuple(input_shape)).rows
    return [row for row in rows if row["kind"] != "input"]


def reference_predict_shapes(input_shape, layer_specs):
    """Output shape ``(H, W, C)`` of each convolution of ``layer_specs`` (``NETWORK``'s format)."""
    return [tuple(row["output_shape"]) for row in _trace_rows(layer_specs, input_shape)]


def reference_predict_params(input_shape, layer_specs):
    """Parameters of each convolution of ``layer_specs`` (``NETWORK``'s format)."""
    return [int(row["params"]) for row in _trace_rows(layer_specs, input_shape)]


def _random_network(seed: int):
    """A seeded ``(input_shape, layers)``: 2 to 5 convolutions in NETWORK's spec format, with
    strides, 'same' padding and dilation (never with a stride: Keras forbids both), on an input
    large enough that every layer has an output (found backwards from one output pixel, so
    nothing here computes the answer: the probes run this in the student's kernel)."""
    rng = np.random.default_rng(seed)
    while True:
        layers = []
        for i in range(int(rng.integers(2, 6))):
            layer = {"kind": "conv", "filters": int(rng.choice([4, 8, 12, 16, 32])),
                     "kernel_size": int(rng.choice([1, 3, 5, 7])), "name": f"conv_{i}"}
            strides = int(rng.choice([1, 1, 2, 3]))
            if strides > 1:
                layer["strides"] = strides
            elif rng.uniform() < 0.3:
                layer["dilation_rate"] = int(rng.choice([2, 3]))
            if rng.uniform() < 0.4:
                layer["padding"] = "same"
            layers.append(layer)
        need = 1  # input pixels the layers from here on need for one output pixel
        for layer in reversed(layers):
            span = 1 if layer.get("padding") == "same" else (
                (layer["kernel_size"] - 1) * layer.get("dilation_rate", 1) + 1)
            need = (need - 1) * layer.get("strides", 1) + span
        if need <= 64:
            low = max(need, 12)
            return (int(rng.integers(low, low + 53)), int(rng.integers(low, low + 53)),
                    int(rng.choice([1, 3, 8]))), layers


def _network_case(name, network, reference, hint, hidden=False):
    """``network()`` returns ``(input_shape, layers)``; one entry per layer, counted only."""
    return Case(
        name,
        probe=lambda f: [_to_ints(v) for v in f(*network())],
        expected=lambda: [_to_ints(v) for v in reference(*network())],
        count_only=True,
        hidden=hidden,
        hint=hint,
    )


def _to_ints(value):
    """An int, or a shape as a list of ints."""
    if isinstance(value, (int, np.integer)):
        return int(value)
    return [int(v) for v in value]


def _lab_network():
    return NETWORK_INPUT_SHAPE, [dict(layer) for layer in NETWORK]


_SHAPES_HINT = ("one (H, W, C) tuple per layer, no batch axis; each layer's input is the "
                "output of the one before; 'valid': (n - K_eff) // S + 1 with "
                "K_eff = (K - 1) * dilation + 1; 'same': ceil(n / S); C is the number of filters")
_PARAMS_HINT = ("K*K*C_in*C_out + C_out per layer: C_in is the depth of the layer's input; "
                "dilation and stride add no parameters")


def _shapes_case(name, network, hidden=False):
    return _network_case(name, network, reference_predict_shapes, _SHAPES_HINT, hidden)


def _params_case(name, network, hidden=False):
    return _network_case(name, network, reference_predict_params, _PARAMS_HINT, hidden)


PREDICT_SHAPES = Exercise(
    id="02.predict_shapes",
    implementations=("cnnlab.arithmetic.trace.trace_shapes",),
    name="predict_shapes",
    title="Predict the output shape of every layer",
    reference=lambda: reference_predict_shapes,
    cases=(_shapes_case("the_labs_small_network", _lab_network),),
)

COUNT_PARAMS = Exercise(
    id="02.count_params",
    implementations=(
        "cnnlab.arithmetic.trace.trace_shapes",
        "cnnlab.arithmetic.params.conv_params",
        "cnnlab.counters.count_params",
    ),
    name="predict_params",
    title="Count the parameters of every layer",
    reference=lambda: reference_predict_params,
    cases=(_params_case("the_labs_small_network", _lab_network),),
)


# ----------------------------------------------------------------------------- 02.receptive_field


def reference_receptive_field_size(kernel_sizes, strides=None, dilation_rates=None):
    """Receptive field (input pixels, one axis) of a stack of convolutions."""
    kernel_sizes = [int(k) for k in kernel_sizes]
    strides = [1] * len(kernel_sizes) if strides is None else [int(s) for s in strides]
    dilations = [1] * len(kernel_sizes) if dilation_rates is None else [
        int(d) for d in dilation_rates]
    specs = [{"kind": "conv", "kernel_size": k, "strides": s, "dilation_rate": d}
             for k, s, d in zip(kernel_sizes, strides, dilations)]
    return int(_arithmetic().receptive_field(specs).size[0])


def _random_stacks(seed: int, count: int):
    rng = np.random.default_rng(seed)
    stacks = []
    for _ in range(count):
        depth = int(rng.integers(1, 7))
        stacks.append((
            [int(k) for k in rng.choice([1, 2, 3, 5, 7], size=depth)],
            [int(s) for s in rng.choice([1, 1, 2, 3], size=depth)],
            [int(d) for d in rng.choice([1, 1, 2, 4], size=depth)],
        ))
    return stacks


def _field_case(name, stacks, hidden=False, hint=""):
    """``stacks``: list of (kernel_sizes, strides or None, dilation_rates or None)."""
    return Case(
        name,
        probe=lambda f: [int(f(k, s, d)) for k, s, d in stacks],
        expected=lambda: [reference_receptive_field_size(k, s, d) for k, s, d in stacks],
        compare=equal,
        hidden=hidden,
        hint=hint or "r = 1, j = 1; for each layer: r += (K_eff - 1) * j, then j *= S",
    )


RECEPTIVE_FIELD = Exercise(
    id="02.receptive_field",
    implementations=("cnnlab.arithmetic.receptive_fields.receptive_field",),
    name="receptive_field_size",
    title="Receptive field of a stack: stride and dilation",
    reference=lambda: reference_receptive_field_size,
    cases=(
        _field_case("two_3x3_see_5_pixels", [([3, 3], None, None)],
                    hint="two stacked 3x3 convolutions see 5x5 input pixels, like one 5x5"),
        _field_case("dilations_1_2_4", [([3, 3, 3], None, [1, 2, 4])],
                    hint="a 3x3 kernel with dilation D covers (3 - 1) * D + 1 pixels"),
        _field_case("strides_multiply_the_jump", [([3, 3, 3], [2, 2, 1], None)],
                    hint="after a stride-2 layer, one step of the next kernel is 2 input pixels"),
    ),
)


# ------------------------------------------------------------------- 02.effective_receptive_field


def erf_weights(stack, in_channels=1, seed=0, uniform=False):
    """The kernels ``(k, k, C_in, C_out)`` of a stack of convolutions, one per layer.

    ``stack`` is a list of ``(kernel_size, dilation_rate, filters)``.  ``uniform``: every weight
    1; else standard normal weights drawn from ``seed``.
    """
    rng = np.random.default_rng(seed)
    kernels, channels = [], int(in_channels)
    for k, _, filters in stack:
        shape = (int(k), int(k), channels, int(filters))
        kernels.append(np.ones(shape) if uniform else rng.normal(size=shape))
        channels = int(filters)
    return kernels


def erf_model(stack, input_shape, seed=0, uniform=False):
    """A Keras stack of linear ``Conv2D(filters, k, dilation_rate=d, padding="same")`` layers
    (no bias, no activation) with the kernels of :func:`erf_weights`."""
    import keras

    model = keras.Sequential(
        [keras.Input(tuple(int(n) for n in input_shape))]
        + [keras.layers.Conv2D(int(f), int(k), dilation_rate=int(d), padding="same",
                               use_bias=False) for k, d, f in stack])
    for layer, kernel in zip(model.layers, erf_weights(stack, input_shape[-1], seed, uniform)):
        layer.set_weights([kernel.astype("float32")])
    return model


def reference_effective_receptive_field(kernels, dilation_rates, input_shape):
    """|d unit / d x| of the centre unit of a 'same', stride-1 stack, summed over the input
    channels and divided by its total: backpropagation by hand, in NumPy.

    The gradient starts as 1 at the centre unit of the last layer's first channel; each layer
    sends ``g[i, j, co] * W[a, b, ci, co]`` back to input ``(i + a*d, j + b*d, ci)`` (a
    transposed convolution), so after all layers it covers the theoretical receptive field.
    ``padding="same"`` pads ``((k - 1) * d) // 2`` zeros before the input, which places that
    patch in the input map.
    """
    h, w = int(input_shape[0]), int(input_shape[1])
    grad = np.zeros((1, 1, np.asarray(kernels[-1]).shape[-1]))
    grad[0, 0, 0] = 1.0
    offset = 0
    for kernel, d in zip(reversed(kernels), reversed(list(dilation_rates))):
        kernel = np.asarray(kernel, dtype=np.float64)
        k, d = kernel.shape[0], int(d)
        span = (k - 1) * d
        back = np.zeros((grad.shape[0] + span, grad.shape[1] + span, kernel.shape[2]))
        for a in range(k):
            for b in range(k):
                back[a * d:a * d + grad.shape[0], b * d:b * d + grad.shape[1]] += (
                    grad @ kernel[a, b].T)
        grad, offset = back, offset + span // 2
    top, left = h // 2 - offset, w // 2 - offset
    if top < 0 or left < 0 or top + grad.shape[0] > h or left + grad.shape[1] > w:
        raise ValueError(f"the receptive field ({grad.shape[0]} pixels) does not fit in the "
                         f"{h}x{w} input around its centre; use a larger input")
    field = np.zeros((h, w))
    field[top:top + grad.shape[0], left:left + grad.shape[1]] = np.abs(grad).sum(axis=-1)
    return field / field.sum()


def _erf_expected(stack, input_shape, seed, uniform):
    kernels = erf_weights(stack, input_shape[-1], seed, uniform)
    return reference_effective_receptive_field(kernels, [d for _, d, _ in stack], input_shape)


def _random_erf_stack(seed):
    """A drawn stack: 1 to 4 layers of 3x3 or 5x5 kernels, dilation 1 or 2, 1 to 4 filters (the
    last one's first channel is the unit); the input is as large as the field plus a margin."""
    rng = np.random.default_rng(seed)
    depth = int(rng.integers(1, 5))
    stack = [(int(rng.choice([3, 5])), int(rng.choice([1, 1, 2])), int(rng.integers(1, 5)))
             for _ in range(depth)]
    field = 1 + sum((k - 1) * d for k, d, _ in stack)
    side = field + 2 * int(rng.integers(1, 4))
    return stack, (side, side + 2, int(rng.choice([1, 3])))


def _erf_case(name, stack, input_shape, seed=0, uniform=False, hidden=False, hint=""):
    return Case(
        name,
        probe=lambda f: np.asarray(f(erf_model(stack, input_shape, seed, uniform),
                                     tuple(input_shape)), dtype=float),
        expected=lambda: _erf_expected(stack, input_shape, seed, uniform),
        compare=allclose(1e-6, 1e-4),
        hidden=hidden,
        hint=hint or "the gradient of y[0, H // 2, W // 2, 0] with respect to an input of zeros "
                     "(batch 1); its absolute value summed over the input channels, divided by "
                     "its total: shape (H, W), summing to 1",
    )


def _drawn_erf_case(name, seed):
    stack, input_shape = _random_erf_stack(seed)
    return _erf_case(name, stack, input_shape, seed=seed)


EFFECTIVE_RECEPTIVE_FIELD = Exercise(
    id="02.effective_receptive_field",
    implementations=("cnnlab.interpret.attribution.effective_receptive_field",),
    name="effective_receptive_field",
    title="The effective receptive field: where the gradient of one unit falls",
    reference=lambda: _reference_erf_of_model,
    cases=(
        _erf_case("one_3x3_layer_of_ones_is_flat", [(3, 1, 1)], (7, 7, 1), uniform=True,
                  hint="one 3x3 kernel of ones: every pixel of the centre 3x3 gets 1/9, the "
                       "others 0"),
        _erf_case("two_3x3_layers_of_ones_make_a_pyramid", [(3, 1, 1), (3, 1, 1)], (9, 9, 1),
                  uniform=True,
                  hint="two 3x3 kernels of ones: the centre pixel is reached by 9 paths, a "
                       "corner of the 5x5 field by 1; divide by the total, 81"),
        _erf_case("random_weights_with_dilation", [(3, 1, 4), (3, 2, 3), (3, 1, 2)], (15, 13, 1),
                  seed=80, hint="the unit is y[0, H_out // 2, W_out // 2, 0], the centre of the "
                                "output's first channel; take the absolute value of its "
                                "gradient"),
        _erf_case("colour_input_sums_the_channels", [(5, 1, 2), (3, 1, 1)], (11, 11, 3), seed=81,
                  hint="sum |gradient| over the 3 input channels, then divide by the total"),
    ),
)


def _reference_erf_of_model(model, input_shape):
    """The checkpoint's stand-in: the library's gradient map (what the exercise computes)."""
    from cnnlab import interpret

    return interpret.effective_receptive_field(model, input_shape)


# ----------------------------------------------------------------------------- 02.conv_matrix

LECTURE_KERNEL = np.arange(1.0, 10.0).reshape(3, 3)  # w00..w22, distinct so places show


def _matrix_case(name, input_size, kernel_shape, seed, hidden=False, kernel=None):
    def the_kernel():
        return LECTURE_KERNEL if kernel is not None else _array(seed, kernel_shape)

    return Case(
        name,
        probe=lambda f: np.asarray(f(input_size, the_kernel()), dtype=float),
        expected=lambda: _ops().conv_matrix(input_size, the_kernel()),
        compare=allclose(1e-9),
        hidden=hidden,
        hint="shape (H'*W', H*W); row r = output (i, j) holds kernel[a, b] in column "
             "(i + a) * W + (j + b)",
    )


CONV_MATRIX = Exercise(
    id="02.conv_matrix",
    implementations=("cnnlab.ops.conv_matrix",),
    name="conv_matrix",
    title="Convolution as a sparse matrix with shared weights",
    reference=lambda: (lambda input_size, kernel: _ops().conv_matrix(input_size, kernel)),
    cases=(
        _matrix_case("lecture_4x4_input_3x3_kernel", (4, 4), (3, 3), 0, kernel=LECTURE_KERNEL),
        _matrix_case("non_square_input", (3, 5), (2, 2), 1),
    ),
)


# ----------------------------------------------------------------------------- 02.conv_transpose


def reference_conv_transpose(y, kernel, input_size):
    """Transposed convolution: ``conv_matrix(input_size, kernel).T @ y``, reshaped to the input."""
    y, kernel = np.asarray(y, dtype=float), np.asarray(kernel, dtype=float)
    matrix = _ops().conv_matrix(tuple(input_size), kernel)
    return (matrix.T @ y.ravel()).reshape(tuple(input_size))


def _transpose_case(name, input_size, kernel_shape, seed, hidden=False):
    out_size = (input_size[0] - kernel_shape[0] + 1, input_size[1] - kernel_shape[1] + 1)

    def inputs():
        return _array(seed, out_size), _array(seed + 100, kernel_shape), input_size

    return Case(
        name,
        probe=lambda f: np.asarray(f(*inputs()), dtype=float),
        expected=lambda: _ops().conv_transpose2d(*inputs()[:2]),
        compare=allclose(1e-9),
        hidden=hidden,
        hint="multiply y.ravel() by the transpose of conv_matrix(input_size, kernel), then "
             "reshape to input_size",
    )


CONV_TRANSPOSE = Exercise(
    id="02.conv_transpose",
    implementations=("cnnlab.ops.conv_transpose2d",),
    name="conv_transpose",
    title="The transposed convolution: back from 2x2 to 4x4",
    reference=lambda: reference_conv_transpose,
    cases=(
        Case(
            "asymmetric_kernel_is_rotated",
            probe=lambda f: np.asarray(f(np.array([[1.0, 2.0], [3.0, 4.0]]),
                                         np.arange(9.0).reshape(3, 3), (4, 4)), dtype=float),
            expected=lambda: _ops().conv_transpose2d(np.array([[1.0, 2.0], [3.0, 4.0]]),
                                                     np.arange(9.0).reshape(3, 3)),
            compare=allclose(1e-9),
            hint="with padding and sliding, the kernel must be rotated by 180 degrees "
                 "(kernel[::-1, ::-1]); conv_matrix(input_size, kernel).T @ y.ravel() needs no "
                 "rotation",
        ),
        _transpose_case("lecture_2x2_back_to_4x4", (4, 4), (3, 3), 10),
        _transpose_case("non_square", (4, 6), (2, 3), 11),
    ),
)

# ----------------------------------------------------------------------------- 02.numeric_gradient


def reference_numeric_gradient(f, x, h=1e-5):
    """Central differences of the scalar function ``f`` at ``x``, entry by entry."""
    x = np.array(x, dtype=np.float64)
    # one basis step per entry (the lab's solution nudges x in place instead)
    steps = np.eye(x.size).reshape((x.size, *x.shape)) * h
    slopes = [(f(x + step) - f(x - step)) / (2 * h) for step in steps]
    return np.array(slopes, dtype=np.float64).reshape(x.shape)


def _gradient_problem(seed, x_shape, w_shape):
    rng = np.random.default_rng(seed)
    x, w = rng.normal(size=x_shape), rng.normal(size=w_shape)
    g = rng.normal(size=(x_shape[0] - w_shape[0] + 1, x_shape[1] - w_shape[1] + 1))
    return x, w, g


def _numeric_case(name, seed, x_shape, w_shape, wrt, hidden=False):
    """The analytic gradient of L = sum(g * correlate2d(x, w)) is the independent reference."""

    def probe(numeric_gradient):
        ops = _ops()
        x, w, g = _gradient_problem(seed, x_shape, w_shape)
        if wrt == "x":
            return numeric_gradient(lambda x_: float(np.sum(g * ops.correlate2d(x_, w))), x)
        if wrt == "w":
            return numeric_gradient(lambda w_: float(np.sum(g * ops.correlate2d(x, w_))), w)
        return numeric_gradient(lambda v: float(np.sum(v ** 3)), x)

    def expected():
        ops = _ops()
        x, w, g = _gradient_problem(seed, x_shape, w_shape)
        if wrt == "x":
            return ops.conv_transpose2d(g, w)     # dx = C^T g
        if wrt == "w":
            return ops.correlate2d(x, g)          # dW = x correlated with g
        return 3 * x ** 2

    return Case(
        name,
        probe=probe,
        expected=expected,
        compare=allclose(1e-5, 1e-5),
        hidden=hidden,
        hint="for every index: f at x[index] + h minus f at x[index] - h, divided by 2h; "
             "restore x[index] before the next one",
    )


NUMERIC_GRADIENT = Exercise(
    id="02.numeric_gradient",
    name="numeric_gradient",
    title="A numeric gradient check of dx and dW",
    reference=lambda: reference_numeric_gradient,
    cases=(
        _numeric_case("cube_is_three_x_squared", 60, (3, 4), (1, 1), "cube"),
        _numeric_case("input_gradient_is_the_transposed_convolution", 61, (5, 6), (3, 3), "x"),
        _numeric_case("weight_gradient_is_x_correlated_with_g", 62, (5, 6), (3, 3), "w"),
    ),
)

EXERCISES = [CONV_OUTPUT_SIZE, PREDICT_SHAPES, COUNT_PARAMS, RECEPTIVE_FIELD,
             EFFECTIVE_RECEPTIVE_FIELD, CONV_MATRIX,
             CONV_TRANSPOSE, NUMERIC_GRADIENT]
