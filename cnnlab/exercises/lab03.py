"""Lab 03 "Pooling, strides and invariance": exercises and their public cases (points and
hidden cases: :mod:`cnnlab.grading.hidden.lab03`).

Expected values come from ``cnnlab.ops`` (pooling and convolution, checked against Keras in
their own tests), ``cnnlab.arithmetic`` (sizes and parameter counts), NumPy means and the
lecture's numbers (the 4x4 max-pooling example), and a NumPy max-pooling backward pass checked
against TensorFlow's gradient, ties and overlapping windows included
(``tests/test_lab_facts.py``), never from a notebook.
"""

from __future__ import annotations

import numpy as np

from cnnlab.exercise import Case, Exercise, allclose

__all__ = [
    "EXERCISES",
    "LECTURE_MAP",
    "DOWNSAMPLING_INPUT_SHAPE",
    "DOWNSAMPLING_FILTERS",
    "DOWNSAMPLING_KERNEL_SIZE",
    "POOL_QUESTIONS",
    "reference_downsampling_costs",
    "reference_pooled_size",
    "reference_max_pool2d",
    "reference_max_pool2d_backward",
    "reference_shift_response",
    "reference_avg_pool_as_conv_kernel",
    "reference_global_average_pool",
]

#: The lecture's 4x4 feature map (7PAM2021, "Max Pooling"); 2x2 max pooling gives [[4, 8], [6, 9]].
LECTURE_MAP = np.array([[4, 3, 1, 5], [1, 3, 4, 8], [4, 5, 4, 3], [6, 5, 9, 4]], dtype=float)


def _ops():
    from cnnlab import ops

    return ops


def _arithmetic():
    from cnnlab import arithmetic

    return arithmetic


def _array(seed: int, shape, low=-1.0, high=1.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(low, high, size=shape)


# ----------------------------------------------------------------------------- 03.max_pool2d


def reference_max_pool2d(x, size):
    """Non-overlapping ``size`` x ``size`` max pooling (stride = size, 'valid') of a 2-D map."""
    return _ops().pool2d(np.asarray(x, dtype=float), int(size), mode="max")


def _pool_case(name, seed, shape, size, hidden=False, low=-1.0, high=1.0, hint=""):
    return Case(
        name,
        probe=lambda f: np.asarray(f(_array(seed, shape, low, high), size), dtype=float),
        expected=lambda: reference_max_pool2d(_array(seed, shape, low, high), size),
        compare=allclose(1e-9),
        hidden=hidden,
        hint=hint or "output (H // size, W // size); each value is the max of one window",
    )


MAX_POOL2D = Exercise(
    id="03.max_pool2d",
    implementations=("cnnlab.ops.pool2d",),
    name="max_pool2d",
    title="Max pooling by hand",
    reference=lambda: reference_max_pool2d,
    cases=(
        Case(
            "lecture_4x4_example",
            probe=lambda f: np.asarray(f(LECTURE_MAP, 2), dtype=float),
            expected=lambda: np.array([[4.0, 8.0], [6.0, 9.0]]),
            compare=allclose(1e-9),
            hint="the top-left window [[4, 3], [1, 3]] gives 4; the result is [[4, 8], [6, 9]]",
        ),
        _pool_case("random_6x6_size_2", 30, (6, 6), 2),
        _pool_case("all_negative_values", 31, (4, 6), 2, low=-5.0, high=-1.0,
                   hint="the max of negative numbers is negative: do not start from 0"),
    ),
)


# --------------------------------------------------------------------- 03.max_pool2d_backward


def reference_max_pool2d_backward(x, upstream_grad, size, strides=None):
    """dL/dx of ``size`` x ``size`` max pooling ('valid', stride ``strides``, default ``size``).

    Each window's upstream gradient goes to the window's maximum; on a tie, to the first
    maximum in row-major order (``np.argmax`` of the window), as TensorFlow's ``MaxPool``
    gradient does on the CPU.  Where windows overlap (``strides < size``) a pixel that is the
    maximum of several windows collects the sum of their gradients.
    """
    x = np.asarray(x, dtype=float)
    upstream_grad = np.asarray(upstream_grad, dtype=float)
    size = int(size)
    strides = size if strides is None else int(strides)
    out_shape = ((x.shape[0] - size) // strides + 1, (x.shape[1] - size) // strides + 1)
    if upstream_grad.shape != out_shape:
        raise ValueError(f"upstream_grad has shape {upstream_grad.shape}; {size}x{size} pooling "
                         f"with stride {strides} of a {x.shape} map gives {out_shape}")
    dx = np.zeros_like(x)
    for i in range(out_shape[0]):
        for j in range(out_shape[1]):
            top, left = i * strides, j * strides
            window = x[top:top + size, left:left + size]
            a, b = np.unravel_index(np.argmax(window), window.shape)
            dx[top + a, left + b] += upstream_grad[i, j]
    return dx


#: A 4x4 map with ties: the first window's 5s, the whole third and fourth windows.
TIED_MAP = np.array([[1, 5, 5, 0], [5, 2, 0, 0], [3, 3, 1, 1], [3, 3, 1, 1]], dtype=float)


def _backward_inputs(seed, shape, size, strides=None, ties=False):
    """A map (integers 0..2 when ``ties``: many equal maxima; else uniform, no ties) and an
    upstream gradient of the pooled shape (normal values)."""
    rng = np.random.default_rng(seed)
    x = (rng.integers(0, 3, size=shape).astype(float) if ties
         else rng.uniform(-1.0, 1.0, size=shape))
    step = size if strides is None else strides
    out_shape = ((shape[0] - size) // step + 1, (shape[1] - size) // step + 1)
    return x, rng.normal(size=out_shape)


def _backward_call(f, x, g, size, strides):
    out = f(x, g, size) if strides is None else f(x, g, size, strides)
    return np.asarray(out, dtype=float)


def _backward_case(name, seed, shape, size, strides=None, ties=False, hidden=False, hint=""):
    return Case(
        name,
        probe=lambda f: _backward_call(f, *_backward_inputs(seed, shape, size, strides, ties),
                                       size, strides),
        expected=lambda: reference_max_pool2d_backward(
            *_backward_inputs(seed, shape, size, strides, ties), size, strides),
        compare=allclose(1e-9),
        hidden=hidden,
        hint=hint or "dx has x's shape, zeros except at the argmax of each window, which gets "
                     "that window's upstream gradient (added, where windows overlap)",
    )


MAX_POOL2D_BACKWARD = Exercise(
    id="03.max_pool2d_backward",
    name="max_pool2d_backward",
    title="The backward pass of max pooling",
    reference=lambda: reference_max_pool2d_backward,
    cases=(
        Case(
            "lecture_4x4_example",
            probe=lambda f: _backward_call(f, LECTURE_MAP, np.array([[1.0, 2.0], [3.0, 4.0]]),
                                           2, None),
            expected=lambda: reference_max_pool2d_backward(
                LECTURE_MAP, np.array([[1.0, 2.0], [3.0, 4.0]]), 2),
            compare=allclose(1e-9),
            hint="the maxima 4, 8, 6, 9 sit at (0, 0), (1, 3), (3, 0), (3, 2): they get 1, 2, 3 "
                 "and 4; every other pixel gets 0",
        ),
        _backward_case("random_6x6_size_2", 70, (6, 6), 2),
        Case(
            "ties_go_to_the_first_maximum",
            probe=lambda f: _backward_call(f, TIED_MAP, np.array([[1.0, 2.0], [3.0, 4.0]]),
                                           2, None),
            expected=lambda: reference_max_pool2d_backward(
                TIED_MAP, np.array([[1.0, 2.0], [3.0, 4.0]]), 2),
            compare=allclose(1e-9),
            hint="on a tie the whole gradient goes to the first maximum in row-major order "
                 "(np.argmax of the window): not split, not the last one",
        ),
        _backward_case("overlapping_3x3_stride_2_add_up", 71, (7, 7), 3, strides=2,
                       hint="with strides < size a pixel can be the maximum of several windows: "
                            "add (+=) their gradients, do not overwrite"),
    ),
)


# ----------------------------------------------------------------------------- 03.pooled_sizes

#: (input size, pool size, strides, padding) of each question, as in keras MaxPooling2D.
POOL_QUESTIONS = {
    "vgg_224_pool_2": (224, 2, None, "valid"),
    "alexnet_55_pool_3_stride_2": (55, 3, 2, "valid"),
    "alexnet_13_pool_3_stride_2": (13, 3, 2, "valid"),
    "odd_7_pool_2": (7, 2, None, "valid"),
    "odd_7_pool_2_same": (7, 2, None, "same"),
}


def reference_pooled_size(n, pool_size, strides=None, padding="valid"):
    """Output size (one axis) of ``MaxPooling2D(pool_size, strides, padding)`` on ``n`` pixels."""
    return int(_arithmetic().pool_output_size(int(n), int(pool_size), strides=strides,
                                              padding=padding))


def _random_pool_questions(seed: int, count: int) -> dict:
    """Seeded ``{name: (n, pool size, strides, padding)}`` whose window fits the input."""
    rng = np.random.default_rng(seed)
    questions = {}
    while len(questions) < count:
        n, k = int(rng.integers(1, 300)), int(rng.integers(1, 8))
        strides = None if rng.uniform() < 0.4 else int(rng.integers(1, 5))
        padding = str(rng.choice(["valid", "same"]))
        if n >= k or padding == "same":
            questions[f"question_{len(questions)}"] = (n, k, strides, padding)
    return questions


def _pooled_case(name, questions, hidden=False):
    """``questions()`` returns ``{name: (n, pool size, strides, padding)}``; one entry each."""
    return Case(
        name,
        probe=lambda f: {key: int(f(n, k, strides=s, padding=p))
                         for key, (n, k, s, p) in questions().items()},
        expected=lambda: {key: reference_pooled_size(n, k, s, p)
                          for key, (n, k, s, p) in questions().items()},
        count_only=True,
        hidden=hidden,
        hint="W' = (W - K) // S + 1 with S = K when strides is None ('valid' drops what does "
             "not fill a window: floor); 'same' keeps every pixel: ceil(W / S)",
    )


POOLED_SIZES = Exercise(
    id="03.pooled_sizes",
    implementations=("cnnlab.arithmetic.sizes.pool_output_size",),
    name="pooled_size",
    title="Pooling output sizes",
    reference=lambda: reference_pooled_size,
    cases=(_pooled_case("the_labs_five_questions", lambda: dict(POOL_QUESTIONS)),),
)


# ----------------------------------------------------------------------------- 03.shift_response


def reference_shift_response(image, kernel, shift, pool_size=1):
    """Relative change ``||f(b) - f(a)|| / ||f(a)||`` of the map ``f`` = conv then max pooling.

    ``a = image[:, :W - shift]`` and ``b = image[:, shift:]``: the same scene, its content moved
    ``shift`` pixels to the left.  ``f(v) = max_pool(correlate2d(v, kernel), pool_size)``.
    """
    image = np.asarray(image, dtype=float)
    shift, pool_size = int(shift), int(pool_size)
    width = image.shape[1] - shift
    a, b = image[:, :width], image[:, shift:]

    def features(v):
        return _ops().pool2d(_ops().correlate2d(v, kernel), pool_size, mode="max")

    fa, fb = features(a), features(b)
    return float(np.linalg.norm(fb - fa) / np.linalg.norm(fa))


_SOBEL_X = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def _smooth_image(seed: int, shape) -> np.ndarray:
    """A seeded random image with some spatial correlation (noise, blurred twice)."""
    noise = _array(seed, (shape[0] + 4, shape[1] + 4))
    box = np.ones((3, 3)) / 9.0
    return _ops().correlate2d(_ops().correlate2d(noise, box), box)


def _shift_case(name, seed, shape, shift, pool_size, kernel=None, hidden=False):
    def the_kernel():
        return _SOBEL_X if kernel is None else _array(seed + 100, kernel)

    return Case(
        name,
        probe=lambda f: float(f(_smooth_image(seed, shape), the_kernel(), shift, pool_size)),
        expected=lambda: reference_shift_response(_smooth_image(seed, shape), the_kernel(),
                                                  shift, pool_size),
        compare=allclose(1e-6),
        hidden=hidden,
        hint="a = image[:, :W - shift], b = image[:, shift:]; f = max pooling of the "
             "correlation; return norm(f(b) - f(a)) / norm(f(a))",
    )


SHIFT_RESPONSE = Exercise(
    id="03.shift_response",
    name="shift_response",
    title="Measuring (approximate) invariance to a shift",
    reference=lambda: reference_shift_response,
    cases=(
        _shift_case("no_shift_no_change", 40, (20, 24), 0, 2),
        _shift_case("conv_only_shift_1", 41, (20, 24), 1, 1),
        _shift_case("conv_and_pool_4_shift_2", 42, (24, 28), 2, 4),
    ),
)


# ------------------------------------------------------------------------- 03.downsampling_costs

DOWNSAMPLING_INPUT_SHAPE = (32, 32, 16)
DOWNSAMPLING_FILTERS = 32
DOWNSAMPLING_KERNEL_SIZE = 3


def reference_downsampling_costs(input_shape, filters, kernel_size=3):
    """Conv KxK 'same' + MaxPool 2 against a KxK 'same' conv with stride 2: output shape,
    parameters and MACs (no biases) of each."""
    arithmetic = _arithmetic()
    h, w, c_in = (int(v) for v in input_shape)
    c_out, k = int(filters), int(kernel_size)
    params = arithmetic.conv_params(k, c_in, c_out)
    full = arithmetic.conv_output_size((h, w), k, padding="same")
    pooled = arithmetic.pool_output_size(full, 2)
    strided = arithmetic.conv_output_size((h, w), k, strides=2, padding="same")
    return {
        "conv_then_pool": {"params": params, "macs": full[0] * full[1] * c_out * k * k * c_in,
                           "output_shape": (*pooled, c_out)},
        "strided_conv": {"params": params, "macs": strided[0] * strided[1] * c_out * k * k * c_in,
                         "output_shape": (*strided, c_out)},
    }


def _random_downsampling(seed: int):
    """A seeded ``(input_shape, filters, kernel_size)``: even height and width (both ways
    halve them), square kernels."""
    rng = np.random.default_rng(seed)
    input_shape = (2 * int(rng.integers(2, 33)), 2 * int(rng.integers(2, 33)),
                   int(rng.choice([3, 8, 16, 24, 64])))
    return input_shape, int(rng.choice([8, 16, 32, 48, 128])), int(rng.choice([1, 3, 5]))


def _cost_entries(costs):
    """One entry per design and quantity: ``{"strided_conv macs": n, ...}``."""
    entries = {}
    for design in ("conv_then_pool", "strided_conv"):
        for field in ("output_shape", "params", "macs"):
            value = costs[design][field]
            entries[f"{design} {field}"] = ([int(v) for v in value] if field == "output_shape"
                                           else int(value))
    return entries


def _costs_case(name, config, hidden=False):
    """``config()`` returns ``(input_shape, filters, kernel_size)``."""
    return Case(
        name,
        probe=lambda f: _cost_entries(f(*config())),
        expected=lambda: _cost_entries(reference_downsampling_costs(*config())),
        count_only=True,
        hidden=hidden,
        hint="both halve H and W, the depth is the number of filters; pooling and stride add no "
             "parameters; MACs = output H * W * filters * (K * K * C_in), counted where the "
             "convolution computes its outputs",
    )


DOWNSAMPLING_COSTS = Exercise(
    id="03.downsampling_costs",
    implementations=(
        "cnnlab.arithmetic.params.conv_params",
        "cnnlab.counters.count_params",
        "cnnlab.counters.count_macs",
        "cnnlab.counters.summary",
    ),
    name="downsampling_costs",
    title="Strided convolution or pooling: what each costs",
    reference=lambda: reference_downsampling_costs,
    cases=(_costs_case("the_labs_32x32x16_input", lambda: (
        DOWNSAMPLING_INPUT_SHAPE, DOWNSAMPLING_FILTERS, DOWNSAMPLING_KERNEL_SIZE)),),
)


# ----------------------------------------------------------------------------- 03.avg_pool_kernel


def reference_avg_pool_as_conv_kernel(k, channels):
    """Conv2D kernel (k, k, C, C): 1/k^2 from channel c to channel c, 0 across channels."""
    k, channels = int(k), int(channels)
    # a k x k box of 1/k^2 on the diagonal of the channel-to-channel identity
    return np.einsum("ij,cd->ijcd", np.full((k, k), 1.0 / k**2), np.eye(channels))


def _kernel_case(name, k, channels, hidden=False):
    return Case(
        name,
        probe=lambda f: np.asarray(f(k, channels), dtype=float),
        expected=lambda: reference_avg_pool_as_conv_kernel(k, channels),
        compare=allclose(1e-9),
        hidden=hidden,
        hint="shape (k, k, channels, channels); 1/k**2 where input channel == output channel",
    )


def _equivalence_case(name, seed, shape, k, hidden=False):
    def probe(f):
        x = _array(seed, shape)
        return _ops().conv2d(x, np.asarray(f(k, shape[-1]), dtype=float), strides=k)

    return Case(
        name,
        probe=probe,
        expected=lambda: _ops().pool2d(_array(seed, shape), k, mode="avg"),
        compare=allclose(1e-9),
        hidden=hidden,
        hint="a convolution with your kernel and strides=k must equal average pooling",
    )


AVG_POOL_KERNEL = Exercise(
    id="03.avg_pool_kernel",
    name="avg_pool_as_conv_kernel",
    title="Average pooling is a convolution",
    reference=lambda: reference_avg_pool_as_conv_kernel,
    cases=(
        _kernel_case("k2_one_channel", 2, 1),
        _kernel_case("k2_three_channels_are_not_mixed", 2, 3),
        _equivalence_case("conv_with_stride_k_equals_average_pooling", 50, (6, 6, 3), 2),
    ),
)


# ------------------------------------------------------------------------ 03.global_average_pool


def reference_global_average_pool(x):
    """(N, H, W, C) -> (N, C): the mean of each feature map."""
    return np.asarray(x, dtype=float).mean(axis=(1, 2))


def _gap_case(name, seed, shape, hidden=False):
    return Case(
        name,
        probe=lambda f: np.asarray(f(_array(seed, shape)), dtype=float),
        expected=lambda: reference_global_average_pool(_array(seed, shape)),
        compare=allclose(1e-9),
        hidden=hidden,
        hint="average over the height and width axes (1 and 2), keep batch and channels",
    )


GLOBAL_AVERAGE_POOL = Exercise(
    id="03.global_average_pool",
    name="global_average_pool",
    title="Global average pooling",
    reference=lambda: reference_global_average_pool,
    cases=(
        _gap_case("batch_of_two_3_channels", 60, (2, 5, 5, 3)),
        Case(
            "constant_maps",
            probe=lambda f: np.asarray(f(np.broadcast_to([1.0, -2.0], (1, 3, 4, 2)).copy()),
                                       dtype=float),
            expected=lambda: np.array([[1.0, -2.0]]),
            compare=allclose(1e-9),
            hint="a map full of 1.0 averages to 1.0; the result has shape (N, C)",
        ),
    ),
)

EXERCISES = [MAX_POOL2D, MAX_POOL2D_BACKWARD,
             POOLED_SIZES, SHIFT_RESPONSE, DOWNSAMPLING_COSTS, AVG_POOL_KERNEL,
             GLOBAL_AVERAGE_POOL]
