"""Lab 04 "From MLP to ConvNet on MNIST": exercises and their public cases (points and hidden
cases: :mod:`cnnlab.grading.hidden.lab04`)."""

from __future__ import annotations

import numpy as np

from cnnlab.exercise import Case, Exercise, allclose

__all__ = [
    "EXERCISES",
    "LECTURE_LENET5_PARAMS",
    "reference_confusion_matrix",
    "reference_dense_params",
    "reference_lenet5_param_counts",
    "reference_param_counts",
    "reference_partial_conv_params",
]

# 05-cnn-deep-learning-fix, "LeNet5 (LeCun et al., 1989)": the per-layer parameter table.
LECTURE_LENET5_PARAMS = {"C1": 156, "S2": 12, "C3": 1_516, "S4": 32, "C5": 48_120, "F6": 10_164}


def _arithmetic():
    from cnnlab import arithmetic

    return arithmetic


# ----------------------------------------------------------------------------- 04.dense_params


def reference_dense_params(input_shape, units):
    """Parameters of Dense(units) on a flattened input of shape ``input_shape``."""
    return _arithmetic().dense_params(tuple(input_shape), units)


def _dense_case(name, input_shape, units, hidden=False, hint=""):
    return Case(
        name,
        probe=lambda f: int(f(input_shape, units)),
        expected=lambda: _arithmetic().dense_params(input_shape, units),
        hidden=hidden,
        hint=hint or "flatten first: in_features = product of the shape; then "
                     "in_features * units weights + units biases",
    )


DENSE_PARAMS = Exercise(
    id="04.dense_params",
    implementations=("cnnlab.arithmetic.params.dense_params",),
    name="dense_params",
    title="A Dense layer on a flattened image",
    reference=lambda: reference_dense_params,
    cases=(
        _dense_case("lecture_640x480x3_dense_1000", (640, 480, 3), 1000,
                    hint="the lecture: 640 x 480 x 3 x 1000 + 1000 (about 922 M)"),
        _dense_case("mnist_28x28x1_dense_256", (28, 28, 1), 256),
    ),
)


# ----------------------------------------------------------------------------- 04.param_counts


def reference_param_counts(input_shape, num_classes):
    """Parameters of the lecture's MLP and ConvNet on ``input_shape`` with ``num_classes``:
    ``{"mlp", "convnet", "convnet_fc1"}`` (the ConvNet's first Dense layer alone)."""
    a = _arithmetic()
    h, w, c = (int(v) for v in input_shape)
    # conv 5 (valid) -> pool 2 -> conv 3 (valid) -> pool 2, each axis
    size = a.pool_output_size(a.conv_output_size(
        a.pool_output_size(a.conv_output_size((h, w), 5), 2), 3), 2)
    fc1 = a.dense_params((*size, 64), 256)
    return {
        "mlp": a.dense_params((h, w, c), 256) + a.dense_params(256, num_classes),
        "convnet": a.conv_params(5, c, 32) + a.conv_params(3, 32, 64) + fc1
        + a.dense_params(256, num_classes),
        "convnet_fc1": fc1,
    }


def _random_input(seed: int):
    """A seeded ``(input_shape, num_classes)`` the ConvNet accepts (each side at least 14)."""
    rng = np.random.default_rng(seed)
    return ((int(rng.integers(14, 65)), int(rng.integers(14, 65)), int(rng.choice([1, 3]))),
            int(rng.integers(2, 101)))


def _param_counts_case(name, config, hidden=False):
    """``config()`` returns ``(input_shape, num_classes)``; three entries, counted only."""
    keys = ("mlp", "convnet", "convnet_fc1")
    return Case(
        name,
        probe=lambda f: {key: int(f(*config())[key]) for key in keys},
        expected=lambda: {key: reference_param_counts(*config())[key] for key in keys},
        count_only=True,
        hidden=hidden,
        hint="Dense: inputs x units + units; conv: (k x k x C_in + 1) x C_out; follow the "
             "size of each axis through conv 5, pool 2, conv 3, pool 2 to know what reaches "
             "Flatten; use input_shape and num_classes, not 28x28x1 and 10",
    )


PARAM_COUNTS = Exercise(
    id="04.param_counts",
    implementations=(
        "cnnlab.counters.count_params",
        "cnnlab.models.classic.build_mlp",
        "cnnlab.models.classic.build_convnet",
    ),
    name="predict_param_counts",
    title="Predict: parameters of the MLP and of the ConvNet",
    reference=lambda: reference_param_counts,
    cases=(_param_counts_case("mnist_28x28x1_10_classes", lambda: ((28, 28, 1), 10)),),
)


# ----------------------------------------------------------------------------- 04.build_my_convnet


def _build_probe(input_shape, num_classes):
    def probe(build):
        import keras

        model = build(input_shape, num_classes)
        return [list(layer.output.shape[1:]) for layer in model.layers
                if not isinstance(layer, keras.layers.InputLayer)]
    return probe


def _build_expected(input_shape, num_classes):
    def expected():
        from cnnlab.models import build_convnet

        return _build_probe(input_shape, num_classes)(build_convnet)
    return expected


def _params_probe(input_shape, num_classes):
    return lambda build: int(build(input_shape, num_classes).count_params())


def _params_expected(input_shape, num_classes):
    def expected():
        from cnnlab.models import build_convnet

        return int(build_convnet(input_shape, num_classes).count_params())
    return expected


def _reference_build_convnet():
    from cnnlab.models import build_convnet

    return build_convnet


def _softmax_probe(build):
    import keras

    model = build((28, 28, 1), 10)
    x = np.random.default_rng(4).uniform(0, 1, size=(3, 28, 28, 1)).astype("float32")
    probabilities = keras.ops.convert_to_numpy(model(x))
    return np.concatenate([probabilities.sum(axis=1), [float(probabilities.min() >= 0)]])


_SHAPES_HINT = ("the lecture's layers in order: Conv2D(32, 5, relu), MaxPool2D(2, strides=2), "
                "Conv2D(64, 3, relu), MaxPool2D(2, strides=2), Flatten, Dense(256, relu), "
                "Dense(num_classes, softmax); no padding, no extra layers")

BUILD_MY_CONVNET = Exercise(
    id="04.build_my_convnet",
    implementations=("cnnlab.models.classic.build_convnet",),
    name="build_my_convnet",
    title="Write the lecture's ConvNet",
    reference=_reference_build_convnet,
    cases=(
        Case("layer_output_shapes_mnist", probe=_build_probe((28, 28, 1), 10),
             expected=_build_expected((28, 28, 1), 10), hint=_SHAPES_HINT),
        Case("count_params_mnist", probe=_params_probe((28, 28, 1), 10),
             expected=_params_expected((28, 28, 1), 10),
             hint="the lecture's ConvNet has 431,754 parameters on MNIST"),
        Case("outputs_are_probabilities", probe=_softmax_probe,
             expected=lambda: np.array([1.0, 1.0, 1.0, 1.0]), compare=allclose(1e-4),
             hint="the last layer needs activation='softmax': each row sums to 1"),
    ),
)


# ------------------------------------------------------------------------- 04.partial_conv_params


def reference_partial_conv_params(connection_table, kernel_size):
    """Parameters of a partially connected convolution: every output map j is a convolution
    of the ``len(connection_table[j])`` maps it sees, with its own bias."""
    arithmetic = _arithmetic()
    return sum(arithmetic.conv_params(kernel_size, len(row), 1) for row in connection_table)


def _lenet_table():
    from cnnlab.layers import LENET5_C3_TABLE

    return [list(row) for row in LENET5_C3_TABLE]


def _random_table(seed, inputs, outputs):
    rng = np.random.default_rng(seed)
    return [sorted(int(i) for i in rng.choice(inputs, size=rng.integers(1, inputs + 1),
                                              replace=False))
            for _ in range(outputs)]


def _partial_case(name, table, kernel_size, hidden=False, expected=None):
    return Case(
        name,
        probe=lambda f: int(f(table() if callable(table) else table, kernel_size)),
        expected=expected or (lambda: reference_partial_conv_params(
            table() if callable(table) else table, kernel_size)),
        hidden=hidden,
        hint="count the connections (the lengths of the rows): each costs k x k weights; "
             "then add one bias per output map",
    )


PARTIAL_CONV_PARAMS = Exercise(
    id="04.partial_conv_params",
    implementations=("cnnlab.layers.PartiallyConnectedConv2D",),
    name="partial_conv_params",
    title="LeNet-5's C3: a partially connected convolution",
    reference=lambda: reference_partial_conv_params,
    cases=(
        _partial_case("lenet5_c3_table", _lenet_table, 5,
                      expected=lambda: LECTURE_LENET5_PARAMS["C3"]),
        _partial_case("fully_connected_table_is_a_conv2d", [[0, 1, 2]] * 4, 3,
                      expected=lambda: _arithmetic().conv_params(3, 3, 4)),
        _partial_case("one_input_per_map", [[0], [1], [2]], 5),
    ),
)


# ----------------------------------------------------------------------------- 04.lenet_params


def reference_lenet5_param_counts(c1_maps, c3_table, c5_maps, f6_units):
    """Parameters of each trainable layer of a LeNet-5 (5x5 kernels, one input channel) with
    ``c1_maps`` maps in C1/S2, C3 wired by ``c3_table`` (one row per C3/S4 map), ``c5_maps``
    in C5 and ``f6_units`` in F6."""
    a = _arithmetic()
    c3_maps = len(c3_table)
    return {
        "C1": a.conv_params(5, 1, int(c1_maps)),
        "S2": 2 * int(c1_maps),            # one coefficient and one bias per map
        "C3": reference_partial_conv_params(c3_table, 5),
        "S4": 2 * c3_maps,
        "C5": a.conv_params(5, c3_maps, int(c5_maps)),
        "F6": a.dense_params(int(c5_maps), int(f6_units)),
    }


def _lab_lenet5():
    return 6, _lenet_table(), 120, 84


def _random_lenet5(seed: int):
    """A seeded LeNet-5-like ``(c1_maps, c3_table, c5_maps, f6_units)``."""
    rng = np.random.default_rng(seed)
    c1_maps = int(rng.integers(3, 11))
    table = _random_table(seed + 1, c1_maps, int(rng.integers(6, 21)))
    return c1_maps, table, int(rng.integers(40, 201)), int(rng.integers(10, 101))


_LENET_KEYS = ("C1", "S2", "C3", "S4", "C5", "F6")


def _lenet_case(name, config, hidden=False, expected=None):
    """``config()`` returns ``(c1_maps, c3_table, c5_maps, f6_units)``; six entries."""
    return Case(
        name,
        probe=lambda f: {key: int(f(*config())[key]) for key in _LENET_KEYS},
        expected=expected or (lambda: {key: reference_lenet5_param_counts(*config())[key]
                                       for key in _LENET_KEYS}),
        count_only=True,
        hidden=hidden,
        hint="a convolution: (5 x 5 x maps it sees + 1) x its maps; a subsampling layer: one "
             "coefficient and one bias per map; the partially connected layer: "
             "partial_conv_params(c3_table, 5); the dense layer: weights plus biases",
    )


LENET_PARAMS = Exercise(
    id="04.lenet_params",
    implementations=("cnnlab.models.classic.build_lenet5", "cnnlab.counters.count_params"),
    name="lenet5_param_counts",
    title="LeNet-5's parameters, layer by layer",
    reference=lambda: reference_lenet5_param_counts,
    cases=(
        # the lecture's table is the independent reference of the lab's configuration
        _lenet_case("the_lectures_lenet5", _lab_lenet5,
                    expected=lambda: {key: LECTURE_LENET5_PARAMS[key] for key in _LENET_KEYS}),
    ),
)


# ----------------------------------------------------------------------------- 04.confusion_matrix


def reference_confusion_matrix(y_true, y_pred, num_classes):
    """Counts C[i, j] of samples of true class i predicted as class j, with NumPy."""
    y_true = np.asarray(y_true).astype(int).ravel()
    y_pred = np.asarray(y_pred).astype(int).ravel()
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def _labels(seed, size, num_classes, accuracy=0.7):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, num_classes, size=size)
    wrong = rng.uniform(size=size) > accuracy
    y_pred = np.where(wrong, rng.integers(0, num_classes, size=size), y_true)
    return y_true, y_pred


def _sklearn_matrix(y_true, y_pred, num_classes):
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(y_true, y_pred, labels=np.arange(num_classes))


def _confusion_case(name, make, num_classes, hidden=False, hint=""):
    return Case(
        name,
        probe=lambda f: np.asarray(f(*make(), num_classes)),
        expected=lambda: _sklearn_matrix(*make(), num_classes),
        compare=allclose(0),
        hidden=hidden,
        hint=hint or "C[i, j] counts the samples of true class i (row) predicted as j (column)",
    )


_SMALL = (np.array([0, 0, 1, 1, 2, 2, 2]), np.array([0, 1, 1, 1, 2, 0, 2]))

CONFUSION_MATRIX = Exercise(
    id="04.confusion_matrix",
    name="confusion_matrix",
    title="The confusion matrix by hand",
    reference=lambda: reference_confusion_matrix,
    cases=(
        _confusion_case("seven_samples_three_classes", lambda: _SMALL, 3),
        _confusion_case("random_ten_classes", lambda: _labels(1, 200, 10), 10),
        _confusion_case("class_never_predicted", lambda: (np.array([0, 1, 2, 3]),
                                                          np.array([0, 1, 1, 3])), 4,
                        hint="the matrix is num_classes x num_classes even when a class "
                             "never appears"),
    ),
)

EXERCISES = [DENSE_PARAMS, PARAM_COUNTS, BUILD_MY_CONVNET, PARTIAL_CONV_PARAMS, LENET_PARAMS,
             CONFUSION_MATRIX]
