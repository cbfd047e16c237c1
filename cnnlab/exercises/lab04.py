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
    implementations=("cnnlab.arithmetic.dense_params",),
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


def _param_counts():
    a = _arithmetic()
    # Lecture 1: 28 -> conv 5 -> 24 -> pool 2 -> 12 -> conv 3 -> 10 -> pool 2 -> 5.
    fc1 = a.dense_params((5, 5, 64), 256)
    return {
        "mlp": a.dense_params((28, 28, 1), 256) + a.dense_params(256, 10),
        "convnet": a.conv_params(5, 1, 32) + a.conv_params(3, 32, 64) + fc1
        + a.dense_params(256, 10),
        "convnet_fc1": fc1,
    }


def _param_counts_case(name, key, hint, hidden=False):
    return Case(
        name,
        probe=lambda f: int(f()[key]),
        expected=lambda: _param_counts()[key],
        hidden=hidden,
        hint=hint,
    )


PARAM_COUNTS = Exercise(
    id="04.param_counts",
    implementations=(
        "cnnlab.counters.count_params",
        "cnnlab.models.build_mlp",
        "cnnlab.models.build_convnet",
    ),
    name="predict_param_counts",
    title="Predict: parameters of the MLP and of the ConvNet",
    hidden_tests=False,
    reference=lambda: _param_counts,
    cases=(
        _param_counts_case("mlp_total", "mlp",
                           "Dense(256) on 784 inputs, then Dense(10) on 256: weights + biases"),
        _param_counts_case("convnet_first_dense_layer", "convnet_fc1",
                           "follow the size: 28 -> 24 (conv 5) -> 12 (pool) -> 10 (conv 3) -> 5 "
                           "(pool); Flatten gives 5 x 5 x 64 features"),
        _param_counts_case("convnet_total", "convnet",
                           "conv: (k x k x C_in + 1) x C_out; add both convs, fc1 and the "
                           "output layer"),
    ),
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
    implementations=("cnnlab.models.build_convnet",),
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


def _lecture_lenet5_param_counts():
    return dict(LECTURE_LENET5_PARAMS)


def _lenet_case(name, keys, hint, hidden=False):
    return Case(
        name,
        probe=lambda f: {k: int(f()[k]) for k in keys},
        expected=lambda: {k: LECTURE_LENET5_PARAMS[k] for k in keys},
        hidden=hidden,
        hint=hint,
    )


LENET_PARAMS = Exercise(
    id="04.lenet_params",
    implementations=("cnnlab.models.build_lenet5", "cnnlab.counters.count_params"),
    name="lenet5_param_counts",
    title="LeNet-5's parameters, layer by layer",
    hidden_tests=False,
    reference=lambda: _lecture_lenet5_param_counts,
    cases=(
        _lenet_case("convolutions_c1_c5", ["C1", "C5"],
                    "(k x k x C_in + 1) x C_out, with C5 seeing all 16 maps of S4"),
        _lenet_case("subsampling_s2_s4", ["S2", "S4"],
                    "a subsampling layer has one coefficient and one bias per map"),
        _lenet_case("partial_c3", ["C3"],
                    "use partial_conv_params(LENET5_C3_TABLE, 5)"),
        _lenet_case("dense_f6", ["F6"], "F6 is a Dense(84) on C5's 120 values"),
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
