"""Lab 05 "Architectures and their cost": exercises and their public cases (points and hidden
cases: :mod:`cnnlab.grading.hidden.lab05`).

Expected values come from ``cnnlab.arithmetic`` (conv / dense parameter counts, output sizes),
``cnnlab.counters`` (the lecture's VGG16 table), ``cnnlab.models`` (the reference residual
and dense blocks), hand formulas of the lectures and the lectures' own numbers -- never from a
notebook.
"""

from __future__ import annotations

import math

import numpy as np

from cnnlab.exercise import Case, Exercise, allclose, equal

__all__ = [
    "EXERCISES",
    "reference_conv_vs_dense",
    "reference_cost_table",
    "reference_dense_block",
    "reference_memory_budget",
    "reference_param_shares",
    "reference_factorization_savings",
    "reference_naive_inception_block",
    "reference_residual_block",
    "reference_separable_cost_ratio",
]


def _arithmetic():
    from cnnlab import arithmetic

    return arithmetic


def _dict_close(atol=1e-6):
    """Compare two {str: number} dicts: same keys, values within ``atol``."""

    def compare(got, expected):
        if type(got) is not dict:
            return False, f"expected a dict {{layer type: fraction}}, got {type(got).__name__}"
        if sorted(got) != sorted(expected):
            return False, f"keys {sorted(got)}, expected {sorted(expected)}"
        for key in expected:
            try:
                value = float(got[key])
            except (TypeError, ValueError):
                return False, f"the value for {key!r} is not a number"
            if not abs(value - expected[key]) <= atol:
                return False, f"{key!r}: {value:.6g}, expected {expected[key]:.6g}"
        return True, "values match"

    return compare


# ----------------------------------------------------------------------------- 05.conv_vs_dense


def reference_conv_vs_dense(input_shape, kernel_size, filters, strides=1):
    """Output shape and parameters of a valid square convolution and of the dense layer that
    would connect the same input to the same output, both with biases."""
    arithmetic = _arithmetic()
    height, width, channels = (int(v) for v in input_shape)
    out = [arithmetic.conv_output_size(height, kernel_size, strides),
           arithmetic.conv_output_size(width, kernel_size, strides), int(filters)]
    return {
        "output_shape": out,
        "conv_params": arithmetic.conv_params(kernel_size, channels, filters),
        "dense_params": arithmetic.dense_params((height, width, channels), math.prod(out)),
    }


def _conv_dense_cases(label, args, hidden=False):
    fields = (
        ("output_shape", lambda r: [int(v) for v in r["output_shape"]],
         "valid padding: (H - K) // S + 1 along each axis, and one channel per filter"),
        ("conv_params", lambda r: int(r["conv_params"]),
         "K * K * C_in weights per filter, plus one bias per filter"),
        ("dense_params", lambda r: int(r["dense_params"]),
         "every input value (H*W*C_in) connects to every output value (H'*W'*F), plus one bias "
         "per output value"),
    )
    return tuple(
        Case(
            f"{label}_{field}",
            probe=lambda f, pick=pick: pick(f(*args)),
            expected=lambda field=field: reference_conv_vs_dense(*args)[field],
            hidden=hidden,
            hint=hint,
        )
        for field, pick, hint in fields
    )


CONV_VS_DENSE = Exercise(
    id="05.conv_vs_dense",
    implementations=(
        "cnnlab.arithmetic.params.conv_params",
        "cnnlab.arithmetic.params.dense_params",
    ),
    name="conv_vs_dense",
    title="AlexNet's first layer, and the dense layer it replaces",
    reference=lambda: reference_conv_vs_dense,
    cases=(
        *_conv_dense_cases("alexnet_conv1", ((227, 227, 3), 11, 96, 4)),
        *_conv_dense_cases("lecture1_conv_on_mnist", ((28, 28, 1), 5, 32, 1)),
    ),
)


# ----------------------------------------------------------------------------- 05.memory_budget


def reference_memory_budget(shapes, weights, bytes_per_value=4):
    """Totals of a per-layer table of output shapes and weight counts (the lecture's lines)."""
    activations = sum(math.prod(int(v) for v in shape) for shape in shapes)
    params = sum(int(w) for w in weights)
    param_mb = params * bytes_per_value / 1e6
    return {
        "activations": activations,
        "activation_mb": activations * bytes_per_value / 1e6,
        "activation_mb_backward": 2 * activations * bytes_per_value / 1e6,
        "params": params,
        "param_mb": param_mb,
        "sgd_mb": 2 * param_mb,
        "adam_mb": 4 * param_mb,
    }


def _lecture_vgg16_table():
    from cnnlab.counters import LECTURE_VGG16_TABLE

    return ([list(row["shape"]) for row in LECTURE_VGG16_TABLE],
            [row["weights"] for row in LECTURE_VGG16_TABLE])


def _lecture_vgg16_expected():
    """From the lecture's rows, through cnnlab.counters' own totals (not the formula above)."""
    from cnnlab.counters import LECTURE_VGG16_TOTALS

    activations = LECTURE_VGG16_TOTALS["true_activations"]
    params = LECTURE_VGG16_TOTALS["true_weights"]
    return {
        "activations": activations, "activation_mb": activations * 4 / 1e6,
        "activation_mb_backward": activations * 8 / 1e6, "params": params,
        "param_mb": params * 4 / 1e6, "sgd_mb": params * 8 / 1e6, "adam_mb": params * 16 / 1e6,
    }


_MEMORY_KEYS = ("activations", "activation_mb", "activation_mb_backward", "params", "param_mb",
                "sgd_mb", "adam_mb")
_MEMORY_HINTS = {
    "activations": "add up H*W*C of every row, the input row included",
    "activation_mb": "values x bytes_per_value / 1e6 (1 MB = 10**6 bytes)",
    "activation_mb_backward": "the backward pass stores a gradient for every activation: x 2",
    "params": "add up the weights column",
    "param_mb": "weights x bytes_per_value / 1e6",
    "sgd_mb": "plain SGD keeps weights + gradients: x 2",
    "adam_mb": "Adam keeps weights + gradients + two moments: x 4",
}


def _memory_probe(args, key):
    def probe(f):
        value = f(*args)[key]
        return int(value) if key in ("activations", "params") else float(value)

    return probe


MEMORY_BUDGET = Exercise(
    id="05.memory_budget",
    implementations=("cnnlab.counters.summary",),
    name="memory_budget",
    title="VGG16's memory, from its own table",
    reference=lambda: reference_memory_budget,
    cases=(
        *(
            Case(
                f"lecture_vgg16_table_{key}",
                probe=lambda f, key=key: _memory_probe(_lecture_vgg16_table(), key)(f),
                expected=lambda key=key: _lecture_vgg16_expected()[key],
                compare=equal if key in ("activations", "params") else allclose(1e-6),
                hint=_MEMORY_HINTS[key],
            )
            for key in _MEMORY_KEYS
        ),
    ),
)


# ----------------------------------------------------------------------------- 05.param_shares


def reference_param_shares(rows):
    """{layer type: fraction of all parameters} over the rows that hold parameters."""
    holding = [row for row in rows if row["params"]]
    whole = sum(row["params"] for row in holding)
    kinds = sorted({row["type"] for row in holding})
    return {kind: sum(row["params"] for row in holding if row["type"] == kind) / whole
            for kind in kinds}


_SMALL_ROWS = [
    {"name": "image", "type": "InputLayer", "params": 0},
    {"name": "conv1", "type": "Conv2D", "params": 300},
    {"name": "pool1", "type": "MaxPooling2D", "params": 0},
    {"name": "conv2", "type": "Conv2D", "params": 100},
    {"name": "flatten", "type": "Flatten", "params": 0},
    {"name": "fc1", "type": "Dense", "params": 1500},
    {"name": "fc2", "type": "Dense", "params": 100},
]


def _convnet_rows():
    """Report rows of lecture 1's ConvNet, reduced to the fields the exercise reads."""
    import cnnlab
    from cnnlab.models import build_convnet

    return [{"name": r["name"], "type": r["type"], "params": r["params"]}
            for r in cnnlab.summary(build_convnet()).rows]


def _convnet_shares_from_keras():
    """The same shares, counted from the Keras layers themselves."""
    from cnnlab.models import build_convnet

    model = build_convnet()
    totals = {}
    for layer in model.layers:
        if layer.count_params():
            kind = type(layer).__name__
            totals[kind] = totals.get(kind, 0) + layer.count_params()
    return {kind: count / model.count_params() for kind, count in totals.items()}


PARAM_SHARES = Exercise(
    id="05.param_shares",
    name="param_shares",
    title="Where the parameters live",
    reference=lambda: reference_param_shares,
    cases=(
        Case(
            "small_table",
            probe=lambda f: f([dict(r) for r in _SMALL_ROWS]),
            expected=lambda: {"Conv2D": 0.2, "Dense": 0.8},
            compare=_dict_close(1e-9),
            hint="group the rows by row['type'], add their row['params'], divide by the total; "
                 "leave out types without parameters",
        ),
        Case(
            "lecture1_convnet_report",
            probe=lambda f: f(_convnet_rows()),
            expected=_convnet_shares_from_keras,
            compare=_dict_close(1e-9),
            hint="use the rows of cnnlab.summary(model).rows as they are",
        ),
    ),
)


# ----------------------------------------------------------------------------- 05.factorization


def reference_factorization_savings(alpha):
    """Relative change (in %) of the parameters of lecture 5's two factorisations."""
    root = math.sqrt(alpha)
    stacked = (9 * root + 9 * root * alpha) / (25 * alpha)     # in units of n^2
    asymmetric = (3 * root + 3 * alpha * root) / (9 * alpha)
    return {"stacked_3x3": 100 * (stacked - 1), "asymmetric_1x3_3x1": 100 * (asymmetric - 1)}


def _factor_probe(alpha):
    def probe(f):
        result = f(alpha)
        return [float(result["stacked_3x3"]), float(result["asymmetric_1x3_3x1"])]

    return probe


def _factor_expected(alpha):
    result = reference_factorization_savings(alpha)
    return [result["stacked_3x3"], result["asymmetric_1x3_3x1"]]


FACTORIZATION = Exercise(
    id="05.factorization",
    name="factorization_savings",
    title="Stacked 3x3 and 1x3/3x1: -24 % and -30 %",
    reference=lambda: reference_factorization_savings,
    cases=(
        Case(
            "lecture_alpha_2_rounded",
            probe=_factor_probe(2),
            expected=lambda: [-24.0, -30.0],  # the lecture's slide, rounded
            compare=allclose(1.0, 0.0),
            hint="the lecture gives about -24 % and -30 % for alpha = 2; a saving is negative",
        ),
        Case(
            "alpha_2_exact",
            probe=_factor_probe(2),
            expected=lambda: _factor_expected(2),
            compare=allclose(1e-6),
            hint="100 * (factorised / original - 1), with the middle layer sqrt(alpha) * n wide",
        ),
    ),
)


# ----------------------------------------------------------------------------- 05.naive_inception


def reference_naive_inception_block(x, f1, f3, f5):
    """The naive Inception module (Szegedy et al. 2014, figure 2a): no 1x1 reductions."""
    from keras import layers

    branch1 = layers.Conv2D(f1, 1, padding="same", activation="relu")(x)
    branch3 = layers.Conv2D(f3, 3, padding="same", activation="relu")(x)
    branch5 = layers.Conv2D(f5, 5, padding="same", activation="relu")(x)
    pooled = layers.MaxPooling2D(3, strides=1, padding="same")(x)
    return layers.Concatenate(axis=-1)([branch1, branch3, branch5, pooled])


def _naive_costs(block, input_shape, widths):
    import keras

    from cnnlab.counters import count_macs

    inputs = keras.Input(shape=input_shape)
    model = keras.Model(inputs, block(inputs, *widths))
    return {"output_shape": [int(v) for v in model.output.shape[1:]],
            "params": int(model.count_params()), "macs": int(count_macs(model))}


def _naive_expected(input_shape, widths):
    """By hand: 1x1, 3x3, 5x5 convolutions on all C input channels; pooling keeps C."""
    height, width, channels = input_shape
    f1, f3, f5 = widths
    weights = channels * (f1 + 9 * f3 + 25 * f5)
    return {"output_shape": [height, width, f1 + f3 + f5 + channels],
            "params": weights + f1 + f3 + f5, "macs": height * width * weights}


def _naive_cases(label, input_shape, widths, hidden=False):
    hints = {
        "output_shape": "the pooling branch keeps all C input channels: f1 + f3 + f5 + C",
        "params": "each branch convolves all C input channels: C*(f1 + 9*f3 + 25*f5) weights "
                  "plus biases; no 1x1 reductions here",
        "macs": "same padding keeps H x W: MACs = H*W*C*(f1 + 9*f3 + 25*f5)",
    }
    return tuple(
        Case(
            f"{label}_{key}",
            probe=lambda f, key=key: _naive_costs(f, input_shape, widths)[key],
            expected=lambda key=key: _naive_expected(input_shape, widths)[key],
            hidden=hidden,
            hint=hints[key],
        )
        for key in ("output_shape", "params", "macs")
    )


NAIVE_INCEPTION = Exercise(
    id="05.naive_inception",
    name="naive_inception_block",
    title="The Inception module without its 1x1 reductions",
    reference=lambda: reference_naive_inception_block,
    cases=(
        *_naive_cases("inception_3a_widths", (28, 28, 192), (64, 128, 32)),
    ),
)


# ----------------------------------------------------------------------------- 05.residual_block


def reference_residual_block(x, filters):
    """relu(BN(conv3x3(relu(BN(conv3x3(x))))) + x): ``cnnlab.models.residual_block``."""
    from cnnlab.models import residual_block

    return residual_block(x, filters)


def _block_output(block, input_shape, filters, seed):
    """Output of ``block`` on a fixed input, every weight drawn from a seeded RNG in order.

    BatchNormalization runs in inference mode with its moving variances drawn in [0.5, 1.5];
    every BN epsilon is set to 1e-3 (Keras' default) so that blocks built with another
    epsilon normalise the same way.
    """
    import keras

    inputs = keras.Input(shape=input_shape)
    return _seeded_output(keras.Model(inputs, block(inputs, filters)), input_shape, seed)


def _seeded_output(model, input_shape, seed):
    """``model``'s output on a fixed input, every weight drawn from a seeded RNG in order
    (BatchNormalization in inference mode, moving variances in [0.5, 1.5], epsilon 1e-3)."""
    import keras
    from keras import layers

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.epsilon = 1e-3
        for weight in layer.weights:
            low, high = (0.5, 1.5) if "variance" in weight.name else (-0.5, 0.5)
            weight.assign(rng.uniform(low, high, size=tuple(weight.shape)).astype("float32"))
    x = np.random.default_rng(seed + 1).uniform(-1, 1, size=(2, *input_shape)).astype("float32")
    return keras.ops.convert_to_numpy(model(x, training=False))


def _block_output_shape(block, input_shape, filters):
    import keras

    return [int(v) for v in block(keras.Input(shape=input_shape), filters).shape[1:]]


def _block_param_count(block, input_shape, filters):
    import keras

    inputs = keras.Input(shape=input_shape)
    return int(keras.Model(inputs, block(inputs, filters)).count_params())


def _residual_case(label, input_shape, filters, seed, hidden=False):
    return Case(
        label,
        probe=lambda f: _block_output(f, input_shape, filters, seed),
        expected=lambda: _block_output(reference_residual_block, input_shape, filters, seed),
        compare=allclose(1e-4, 1e-4),
        hidden=hidden,
        hint="conv3x3 -> BN -> ReLU -> conv3x3 (on that output, not on x) -> BN, then add x "
             "and apply a last ReLU; Conv2D(filters, 3, padding='same') with its bias",
    )


RESIDUAL_BLOCK = Exercise(
    id="05.residual_block",
    implementations=("cnnlab.models.modern.residual_block",),
    name="residual_block",
    title="A residual block: relu(F(x) + x)",
    reference=lambda: reference_residual_block,
    cases=(
        Case(
            "keeps_the_shape",
            probe=lambda f: _block_output_shape(f, (6, 6, 4), 4),
            expected=lambda: [6, 6, 4],
            hint="same padding and stride 1 keep H x W; the last conv has `filters` channels",
        ),
        _residual_case("same_output_as_reference_4_channels", (5, 5, 4), 4, seed=50),
        Case(
            "parameter_count",
            probe=lambda f: _block_param_count(f, (8, 8, 16), 16),
            expected=lambda: _block_param_count(reference_residual_block, (8, 8, 16), 16),
            hint="two Conv2D(filters, 3) with bias and two BatchNormalization layers; the "
                 "identity shortcut has no parameters",
        ),
    ),
)


# ----------------------------------------------------------------------------- 05.dense_block


def reference_dense_block(x, num_layers, growth_rate):
    """x_l = conv3x3(relu(BN([x_0, ..., x_{l-1}]))), appended: ``cnnlab.models.dense_block``."""
    from cnnlab.models import dense_block

    return dense_block(x, num_layers, growth_rate)


def _dense_model(block, input_shape, num_layers, growth_rate):
    import keras

    inputs = keras.Input(shape=input_shape)
    return keras.Model(inputs, block(inputs, num_layers, growth_rate))


def _dense_conv_kernels(block, input_shape, num_layers, growth_rate):
    """[kernel height, kernel width, input channels, filters] of every Conv2D, in graph order."""
    from keras import layers

    model = _dense_model(block, input_shape, num_layers, growth_rate)
    return [[int(v) for v in layer.kernel.shape] for layer in model.layers
            if isinstance(layer, layers.Conv2D)]


def _dense_output(block, input_shape, num_layers, growth_rate, seed):
    """Output of the block on a fixed input, every weight drawn from a seeded RNG in order
    (BN in inference mode, moving variances in [0.5, 1.5], every epsilon set to 1e-3)."""
    return _seeded_output(_dense_model(block, input_shape, num_layers, growth_rate), input_shape,
                          seed)


def _dense_expected(input_shape, num_layers, growth_rate):
    """By hand (Huang et al.): layer l sees k0 + l*k channels; BN holds 4 numbers per input
    channel (gamma, beta, moving mean, variance), the 3x3 convolution 9 * its inputs * k
    weights and no bias."""
    height, width, k0 = (int(v) for v in input_shape)
    L, k = int(num_layers), int(growth_rate)
    inputs = [k0 + index * k for index in range(L)]
    return {
        "output_shape": [height, width, k0 + L * k],
        "conv_kernels": [[3, 3, c, k] for c in inputs],
        "params": sum(4 * c + 9 * c * k for c in inputs),
    }


def _dense_draw(seed):
    """(input shape, num_layers, growth_rate) drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(3, 7)), int(rng.integers(3, 7)), int(rng.integers(1, 13)))
    return shape, int(rng.integers(2, 6)), int(rng.integers(1, 9))


_DENSE_HINTS = {
    "output_shape": "every layer appends growth_rate channels: k0 + num_layers * growth_rate; "
                    "padding='same' keeps H x W",
    "conv_kernels": "layer i must convolve the concatenation of the input and of ALL earlier "
                    "layers (k0 + i * growth_rate channels): x = Concatenate()([x, y]) and the "
                    "next layer reads that x",
    "params": "BN - ReLU - Conv2D(growth_rate, 3, padding='same', use_bias=False): BN before "
              "the convolution (4 numbers per input channel), no bias",
    "output": "per layer: y = BN(x) -> ReLU -> Conv2D(growth_rate, 3, padding='same', "
              "use_bias=False), then x = Concatenate()([x, y]) (earlier maps first)",
}


def _dense_cases(label, input_shape, num_layers, growth_rate, seed, hidden=False, only=None):
    args = (input_shape, num_layers, growth_rate)
    probes = {
        "output_shape": lambda f: [int(v) for v in
                                   _dense_model(f, *args).output.shape[1:]],
        "conv_kernels": lambda f: _dense_conv_kernels(f, *args),
        "params": lambda f: int(_dense_model(f, *args).count_params()),
        "output": lambda f: _dense_output(f, *args, seed),
    }
    expected = {
        "output": lambda: _dense_output(reference_dense_block, *args, seed),
        **{key: (lambda key=key: _dense_expected(*args)[key])
           for key in ("output_shape", "conv_kernels", "params")},
    }
    return tuple(
        Case(
            f"{label}_{key}",
            probe=probes[key],
            expected=expected[key],
            compare=allclose(1e-4, 1e-4) if key == "output" else equal,
            hidden=hidden,
            hint=_DENSE_HINTS[key],
        )
        for key in (only or ("output_shape", "conv_kernels", "params", "output"))
    )


DENSE_BLOCK = Exercise(
    id="05.dense_block",
    implementations=("cnnlab.models.modern.dense_block",),
    name="dense_block",
    title="A dense block: every layer sees every earlier map",
    reference=lambda: reference_dense_block,
    cases=(
        *_dense_cases("k0_16_four_layers_k_12", (8, 8, 16), 4, 12, seed=53),
        *_dense_cases("k0_3_two_layers_k_5", (5, 6, 3), 2, 5, seed=54, only=("params",)),
    ),
)


# ----------------------------------------------------------------------------- 05.cost_table


def reference_cost_table(named_models):
    """{name: {"params": parameters with biases, "macs": multiply-accumulates per image}}."""
    from cnnlab.counters import count_macs, count_params

    table = {}
    for name in named_models:
        model = named_models[name]
        table[name] = dict(params=count_params(model), macs=count_macs(model))
    return table


def _small_models(which):
    """``which``: model names known here, or ``(name, build)`` pairs (``build()`` a model)."""
    from cnnlab import models

    builders = {
        "convnet": models.build_convnet,
        "mlp": models.build_mlp,
        "lenet5": lambda: models.build_lenet5("modern"),
    }
    pairs = [entry if isinstance(entry, tuple) else (entry, builders[entry]) for entry in which]
    return {name: build() for name, build in pairs}


def _costs_from_keras(which):
    """Parameters from Keras' count_params, MACs from cnnlab.counters."""
    from cnnlab.counters import count_macs

    return {name: {"params": int(model.count_params()), "macs": int(count_macs(model))}
            for name, model in _small_models(which).items()}


def _cost_probe(which):
    def probe(f):
        table = f(_small_models(which))
        return {name: {"params": int(row["params"]), "macs": int(row["macs"])}
                for name, row in table.items()}

    return probe


def _cost_case(label, which, hidden=False):
    return Case(
        label,
        probe=_cost_probe(which),
        expected=lambda: _costs_from_keras(which),
        hidden=hidden,
        hint="one entry per name: count_params(model) (biases included) and count_macs(model) "
             "-- MACs, not count_flops (which is 2 x MACs)",
    )


COST_TABLE = Exercise(
    id="05.cost_table",
    name="cost_table",
    title="Parameters and MACs of several models",
    reference=lambda: reference_cost_table,
    cases=(
        _cost_case("lecture1_convnet", ("convnet",)),
        _cost_case("mlp_and_lenet5", ("mlp", "lenet5")),
    ),
)


# ----------------------------------------------------------------------------- 05.separable_ratio


def reference_separable_cost_ratio(kernel_size, in_channels, filters):
    """Weights of a depthwise separable convolution over those of a standard one."""
    arithmetic = _arithmetic()
    separable = arithmetic.conv_params(kernel_size, in_channels, filters, use_bias=False,
                                       kind="separable")
    standard = arithmetic.conv_params(kernel_size, in_channels, filters, use_bias=False)
    return separable / standard


def _ratio_case(label, args, hidden=False):
    return Case(
        label,
        probe=lambda f: float(f(*args)),
        expected=lambda: reference_separable_cost_ratio(*args),
        compare=allclose(1e-9),
        hidden=hidden,
        hint="(K*K*C + C*N) / (K*K*C*N): depthwise K*K per channel, then a 1x1 mixing C to N",
    )


SEPARABLE_RATIO = Exercise(
    id="05.separable_ratio",
    implementations=("cnnlab.arithmetic.params.conv_params",),
    name="separable_cost_ratio",
    title="Depthwise separable convolution: 1/N + 1/K^2 of the cost",
    reference=lambda: reference_separable_cost_ratio,
    cases=(
        _ratio_case("3x3_32_to_64", (3, 32, 64)),
        _ratio_case("mobilenet_512_to_512", (3, 512, 512)),
    ),
)

EXERCISES = [CONV_VS_DENSE, MEMORY_BUDGET, PARAM_SHARES, FACTORIZATION, NAIVE_INCEPTION,
             RESIDUAL_BLOCK, COST_TABLE, DENSE_BLOCK, SEPARABLE_RATIO]
