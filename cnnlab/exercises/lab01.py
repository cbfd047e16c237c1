"""Lab 01 "Convolutions by hand": exercises and their public cases (points and hidden cases:
:mod:`cnnlab.grading.hidden.lab01`)."""

from __future__ import annotations

import numpy as np

from cnnlab.exercise import Case, Exercise, allclose

__all__ = [
    "EXERCISES",
    "FILTER_INPUT_CHANNELS",
    "FILTER_LAYERS",
    "reference_filter_shapes",
    "reference_kernel_gradient",
    "reference_make_conv_layer",
    "reference_to_grayscale",
]

# The lecture's hand example (03-cnn-mlnn "Convolution operation"): first output is 4.
LECTURE_IMAGE = np.array(
    [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]],
    dtype=float,
)
LECTURE_KERNEL = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], dtype=float)


def _array(seed: int, shape, low=-1.0, high=1.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(low, high, size=shape)


def _ops():
    from cnnlab import ops

    return ops


# ----------------------------------------------------------------------------- 01.to_grayscale

_GRAY_WEIGHTS = np.array([0.2125, 0.7154, 0.0721])


def reference_to_grayscale(image):
    """uint8 RGB (H, W, 3) -> float (H, W) in [0, 1], luminance weights of ITU-R BT.709."""
    return (np.asarray(image, dtype=np.float64) / 255.0) @ _GRAY_WEIGHTS


def _rgb(seed, shape):
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def _gray_case(name, seed, shape, hidden=False, hint=""):
    return Case(
        name,
        probe=lambda f: f(_rgb(seed, shape)),
        expected=lambda: reference_to_grayscale(_rgb(seed, shape)),
        compare=allclose(1e-4),
        hidden=hidden,
        hint=hint or "divide by 255, then weight R, G, B by 0.2125, 0.7154, 0.0721",
    )


TO_GRAYSCALE = Exercise(
    id="01.to_grayscale",
    name="to_grayscale",
    title="An image is an array: RGB to grayscale",
    reference=lambda: reference_to_grayscale,
    cases=(
        _gray_case("small_rgb_image", 1, (4, 5, 3)),
        Case(
            "white_is_one_black_is_zero",
            probe=lambda f: f(np.array([[[255, 255, 255], [0, 0, 0]]], dtype=np.uint8)),
            expected=lambda: np.array([[1.0, 0.0]]),
            compare=allclose(1e-4),
            hint="the result must lie in [0, 1]: did you divide by 255?",
        ),
    ),
)


# ----------------------------------------------------------------------------- 01.correlate2d


def _corr_case(name, seed, image_shape, kernel_shape, hidden=False):
    return Case(
        name,
        probe=lambda f: f(_array(seed, image_shape), _array(seed + 100, kernel_shape)),
        expected=lambda: _ops().correlate2d(_array(seed, image_shape),
                                            _array(seed + 100, kernel_shape)),
        compare=allclose(1e-6),
        hidden=hidden,
        hint="output size is (H - kh + 1, W - kw + 1); do not flip the kernel",
    )


CORRELATE2D = Exercise(
    id="01.correlate2d",
    implementations=("cnnlab.ops.correlate2d",),
    name="correlate2d",
    title="Cross-correlation: the sliding dot product",
    reference=lambda: _ops().correlate2d,
    cases=(
        Case(
            "lecture_5x5_example",
            probe=lambda f: f(LECTURE_IMAGE, LECTURE_KERNEL),
            expected=lambda: np.array([[4, 3, 4], [2, 4, 3], [2, 3, 4]], dtype=float),
            compare=allclose(1e-6),
            hint="the first output is 4: the dot product of the kernel with the top-left 3x3 patch",
        ),
        _corr_case("random_6x7_image_3x3_kernel", 10, (6, 7), (3, 3)),
        _corr_case("non_square_2x3_kernel", 11, (5, 6), (2, 3)),
    ),
)


# ----------------------------------------------------------------------------- 01.convolve2d


def _conv_case(name, seed, image_shape, kernel_shape, hidden=False):
    return Case(
        name,
        probe=lambda f: f(_array(seed, image_shape), _array(seed + 100, kernel_shape)),
        expected=lambda: _ops().convolve2d(_array(seed, image_shape),
                                           _array(seed + 100, kernel_shape)),
        compare=allclose(1e-6),
        hidden=hidden,
        hint="a convolution is a cross-correlation with the kernel flipped in both axes",
    )


CONVOLVE2D = Exercise(
    id="01.convolve2d",
    implementations=("cnnlab.ops.convolve2d",),
    name="convolve2d",
    title="Convolution flips the kernel",
    reference=lambda: _ops().convolve2d,
    cases=(
        _conv_case("random_5x5_image_3x3_kernel", 20, (5, 5), (3, 3)),
        _conv_case("non_square_kernel", 21, (6, 4), (3, 2)),
    ),
)


# ----------------------------------------------------------------------------- 01.conv2d_multi


def _multi_case(name, seed, x_shape, kernel_shape, bias=True, hidden=False):
    def inputs():
        b = _array(seed + 200, (kernel_shape[-1],)) if bias else None
        return _array(seed, x_shape), _array(seed + 100, kernel_shape), b

    return Case(
        name,
        probe=lambda f: f(*inputs()),
        expected=lambda: _ops().conv2d(*inputs()),
        compare=allclose(1e-6),
        hidden=hidden,
        hint="sum the per-channel correlations, one output map per filter, then add its bias",
    )


CONV2D_MULTI = Exercise(
    id="01.conv2d_multi",
    implementations=("cnnlab.ops.conv2d",),
    name="conv2d_multi",
    title="Many channels in, many feature maps out",
    reference=lambda: _ops().conv2d,
    cases=(
        _multi_case("rgb_input_two_filters", 30, (6, 6, 3), (3, 3, 3, 2)),
        _multi_case("one_channel_four_filters", 31, (5, 7, 1), (3, 3, 1, 4)),
        _multi_case("no_bias", 32, (5, 5, 2), (2, 2, 2, 3), bias=False),
    ),
)


# ----------------------------------------------------------------------------- 01.filter_shapes

#: The lab's two layers (7PAM2021, *Filter shapes*): Conv2D(32, 3) on (28, 28, 1), then
#: Conv2D(64, 3); ``{name: (filters, kernel size)}``, in order.
FILTER_LAYERS = {"conv1": (32, 3), "conv2": (64, 3)}
FILTER_INPUT_CHANNELS = 1


def reference_filter_shapes(input_channels, convs):
    """Kernel shape ``(k, k, C_in, filters)`` and parameters of each layer of a stack of
    ``Conv2D(filters, k)``: ``{"shapes": {name: shape}, "params": {name: count}}``."""
    arithmetic = _arithmetic()
    depths = [int(input_channels)] + [int(filters) for filters, _ in convs.values()]
    # each layer sees the depth of the layer before it: pair the layers with those depths
    return {
        "shapes": {name: (int(k), int(k), c_in, int(filters))
                   for (name, (filters, k)), c_in in zip(convs.items(), depths)},
        "params": {name: arithmetic.conv_params(int(k), c_in, int(filters))
                   for (name, (filters, k)), c_in in zip(convs.items(), depths)},
    }


def _arithmetic():
    from cnnlab import arithmetic

    return arithmetic


def _random_layers(seed: int) -> tuple[int, dict]:
    """A seeded stack: 1 or 3 input channels, 2 to 4 layers of square kernels."""
    rng = np.random.default_rng(seed)
    channels = int(rng.choice([1, 3]))
    layers = {f"conv{i + 1}": (int(rng.choice([8, 16, 24, 48, 64, 96, 128])),
                               int(rng.choice([1, 3, 5, 7])))
              for i in range(int(rng.integers(2, 5)))}
    return channels, layers


def _filter_entries(answer):
    """One entry per layer and quantity: ``{"conv1 shape": [...], "conv1 params": n, ...}``."""
    entries = {}
    for name, shape in answer["shapes"].items():
        entries[f"{name} shape"] = [int(v) for v in shape]
    for name, count in answer["params"].items():
        entries[f"{name} params"] = int(count)
    return entries


def _filter_case(name, config, hidden=False):
    """``config()`` returns ``(input_channels, layers)``."""
    return Case(
        name,
        probe=lambda f: _filter_entries(f(*config())),
        expected=lambda: _filter_entries(reference_filter_shapes(*config())),
        count_only=True,
        hidden=hidden,
        hint="a kernel has shape (k, k, input channels, filters), its input channels being the "
             "filters of the layer before; parameters: k*k*C_in*C_out weights plus one bias "
             "per filter",
    )


FILTER_SHAPES = Exercise(
    id="01.filter_shapes",
    implementations=("cnnlab.arithmetic.params.conv_params",),
    name="filter_shapes",
    title="Filter shapes: (3, 3, 1, 32) then (3, 3, 32, 64)",
    reference=lambda: reference_filter_shapes,
    cases=(
        _filter_case("the_labs_two_layers",
                     lambda: (FILTER_INPUT_CHANNELS, dict(FILTER_LAYERS))),
    ),
)


# ----------------------------------------------------------------------------- 01.keras_conv


def reference_make_conv_layer(kernel, bias):
    """A keras Conv2D whose weights are ``kernel`` (kh, kw, C_in, C_out) and ``bias``."""
    from keras import initializers, layers

    # (written another way than the lab's solution, which builds the layer and sets its
    # weights: here the initialisers hold them, so the weights exist once the layer is called)
    kernel, bias = np.asarray(kernel, dtype="float32"), np.asarray(bias, dtype="float32")
    return layers.Conv2D(
        filters=kernel.shape[3], kernel_size=kernel.shape[:2], padding="valid",
        kernel_initializer=initializers.Constant(kernel),
        bias_initializer=initializers.Constant(bias))


def _keras_case(name, seed, x_shape, kernel_shape, hidden=False):
    def inputs():
        return (_array(seed, x_shape).astype("float32"),
                _array(seed + 100, kernel_shape), _array(seed + 200, (kernel_shape[-1],)))

    def probe(make_layer):
        import keras

        x, kernel, bias = inputs()
        return keras.ops.convert_to_numpy(make_layer(kernel, bias)(x))

    return Case(
        name,
        probe=probe,
        expected=lambda: _ops().conv2d(*inputs()),
        compare=allclose(1e-4),
        hidden=hidden,
        hint="build the layer (layer.build) before layer.set_weights([kernel, bias])",
    )


KERAS_CONV = Exercise(
    id="01.keras_conv",
    name="make_conv_layer",
    title="The same result from keras.layers.Conv2D",
    reference=lambda: reference_make_conv_layer,
    cases=(
        _keras_case("batch_of_rgb_images", 40, (2, 6, 6, 3), (3, 3, 3, 4)),
        _keras_case("grayscale_edge_bank", 41, (1, 8, 8, 1), (3, 3, 1, 2)),
    ),
)

# ----------------------------------------------------------------------------- 01.kernel_gradient


def reference_kernel_gradient(image, kernel, target):
    """dL/dK of L = mean((image * kernel - target)^2): (2 / N) times image correlated with error."""
    ops = _ops()
    image, kernel = np.asarray(image, dtype=np.float64), np.asarray(kernel, dtype=np.float64)
    error = ops.correlate2d(image, kernel) - np.asarray(target, dtype=np.float64)
    return 2.0 * ops.correlate2d(image, error) / error.size


def _numeric_kernel_gradient(image, kernel, target, step=1e-6):
    """Central finite differences of the loss, weight by weight: independent of the formula."""
    ops = _ops()

    def loss(k):
        return np.mean((ops.correlate2d(image, k) - target) ** 2)

    gradient = np.zeros_like(kernel)
    for index in np.ndindex(kernel.shape):
        bump = np.zeros_like(kernel)
        bump[index] = step
        gradient[index] = (loss(kernel + bump) - loss(kernel - bump)) / (2 * step)
    return gradient


def _gradient_inputs(seed, image_shape, kernel_shape, at_target=False):
    image = _array(seed, image_shape)
    true_kernel = _array(seed + 100, kernel_shape)
    target = _ops().correlate2d(image, true_kernel)
    kernel = true_kernel if at_target else _array(seed + 200, kernel_shape)
    return image, kernel, target


def _gradient_case(name, seed, image_shape, kernel_shape, hidden=False, at_target=False,
                   numeric=False, hint=""):
    def inputs():
        return _gradient_inputs(seed, image_shape, kernel_shape, at_target)

    def expected():
        if at_target:
            return np.zeros(kernel_shape)
        return (_numeric_kernel_gradient if numeric else reference_kernel_gradient)(*inputs())

    return Case(
        name,
        probe=lambda f: f(*inputs()),
        expected=expected,
        compare=allclose(1e-5 if numeric else 1e-8),
        hidden=hidden,
        hint=hint or ("error = correlate2d(image, kernel) - target; the gradient is "
                      "2 / error.size times correlate2d(image, error)"),
    )


KERNEL_GRADIENT = Exercise(
    id="01.kernel_gradient",
    name="kernel_gradient",
    title="A ConvNet learns its kernels: the gradient with respect to the kernel",
    reference=lambda: reference_kernel_gradient,
    cases=(
        _gradient_case("random_6x6_image_3x3_kernel", 50, (6, 6), (3, 3)),
        _gradient_case("zero_at_the_true_kernel", 51, (7, 5), (3, 3), at_target=True,
                       hint="at the kernel that produced the target the error is 0, "
                            "so the gradient must be 0"),
        _gradient_case("matches_finite_differences", 52, (8, 7), (3, 2), numeric=True,
                       hint="divide by the number of output pixels (mean), and do not forget "
                            "the factor 2 of the square"),
    ),
)

EXERCISES = [TO_GRAYSCALE, CORRELATE2D, CONVOLVE2D, CONV2D_MULTI, FILTER_SHAPES, KERAS_CONV,
             KERNEL_GRADIENT]
