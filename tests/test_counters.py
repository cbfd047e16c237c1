"""cnnlab.counters: parameters, activations, memory, MACs and receptive field of Keras models.

References: the lecture's VGG16 "Memory and Parameters" table, the papers' MAC counts
(VGG16 15.3 G conv, ResNet-50 3.8 G, MobileNetV2 300 M, VGG19 19.6 G), Keras' own
count_params, and hand computations for small models.

Regenerate the golden files (tests/golden/*_summary.txt: VGG16, LeNet-5, AlexNet, ResNet50,
MobileNetV2) deliberately, and review the diff, with
``CNNLAB_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_counters.py -k golden``.
"""

import math
import os
import pathlib
import re
import sys
import time

import numpy as np
import pytest

import cnnlab  # noqa: F401  (before keras: quiets TensorFlow's start-up log)
import keras
from keras import layers

from cnnlab import counters

GOLDEN = pathlib.Path(__file__).parent / "golden" / "vgg16_summary.txt"


# ---------------------------------------------------------------------------------------
# Fixtures: each application model is built once (weights=None, 224 x 224 x 3 inputs)
# ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vgg16():
    return keras.applications.VGG16(weights=None)


@pytest.fixture(scope="module")
def vgg19():
    return keras.applications.VGG19(weights=None)


@pytest.fixture(scope="module")
def resnet50():
    return keras.applications.ResNet50(weights=None)


@pytest.fixture(scope="module")
def mobilenet_v2():
    return keras.applications.MobileNetV2(weights=None)


@pytest.fixture(scope="module")
def vgg16_report(vgg16):
    return counters.summary(vgg16, include_bias=False)


def _row(report, name):
    matches = [row for row in report.rows if row["name"] == name]
    assert len(matches) == 1, f"no single row named {name!r}"
    return matches[0]


def _label_value(label):
    """'3.2M' -> 3.2e6, '150K' -> 150e3, '4096' -> 4096."""
    factor = {"K": 1e3, "M": 1e6}.get(label[-1], 1)
    return float(label.rstrip("KM")) * factor


# ---------------------------------------------------------------------------------------
# The papers' MAC counts (conv + dense weights, no bias)
# ---------------------------------------------------------------------------------------

def test_vgg16_macs_are_15_47_g_with_15_3_g_in_the_convolutions(vgg16, vgg16_report):
    assert counters.count_macs(vgg16) == 15_470_264_320
    assert vgg16_report.totals["macs"] == 15_470_264_320
    conv = sum(row["macs"] for row in vgg16_report.rows if row["type"] == "Conv2D")
    assert conv == 15_346_630_656  # the paper's "15.3 G"
    dense = sum(row["macs"] for row in vgg16_report.rows if row["type"] == "Dense")
    assert dense == 7 * 7 * 512 * 4096 + 4096 * 4096 + 4096 * 1000


def test_resnet50_macs_are_the_papers_3_8_g(resnet50):
    assert counters.count_macs(resnet50) == 3_857_973_248
    assert counters.summary(resnet50).totals["macs"] == 3_857_973_248


@pytest.mark.slow
def test_mobilenet_v2_macs_are_300_m(mobilenet_v2):
    assert counters.count_macs(mobilenet_v2) == 300_774_272


@pytest.mark.slow
def test_vgg19_macs_are_19_6_g(vgg19):
    macs = counters.count_macs(vgg19)
    assert macs == 19_632_062_464
    assert round(macs / 1e9, 1) == 19.6


def test_flops_are_twice_the_macs(vgg16, vgg16_report):
    assert counters.count_flops(vgg16) == 2 * 15_470_264_320
    assert vgg16_report.totals["flops"] == 2 * vgg16_report.totals["macs"]


def test_bias_macs_add_one_per_output_of_biased_layers(vgg16):
    biased_outputs = sum(math.prod(layer.output.shape[1:]) for layer in vgg16.layers
                         if isinstance(layer, (layers.Conv2D, layers.Dense)))
    assert counters.count_macs(vgg16, include_bias=True) == 15_470_264_320 + biased_outputs


# ---------------------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------------------

def test_count_params_matches_keras_and_the_lecture(vgg16, resnet50):
    assert counters.count_params(vgg16) == vgg16.count_params() == 138_357_544
    assert counters.count_params(vgg16, include_bias=False) == 138_344_128
    assert counters.LECTURE_VGG16_TOTALS["true_weights"] == 138_344_128
    trainable = sum(math.prod(w.shape) for w in resnet50.trainable_weights)
    assert counters.count_params(resnet50, trainable_only=True) == trainable == 25_583_592
    assert counters.count_params(resnet50) == resnet50.count_params() == 25_636_712


def test_batch_norm_moving_statistics_are_non_trainable(resnet50):
    report = counters.summary(resnet50)
    bn = _row(report, "conv1_bn")
    assert (bn["trainable_params"], bn["non_trainable_params"], bn["macs"]) == (128, 128, 0)
    assert report.totals["non_trainable_params"] == 53_120


# ---------------------------------------------------------------------------------------
# The lecture's VGG16 table, row by row
# ---------------------------------------------------------------------------------------

def test_vgg16_rows_match_the_lecture_table(vgg16_report):
    pairs = counters.compare_with_lecture_vgg16(vgg16_report)
    assert len(pairs) == len(counters.LECTURE_VGG16_TABLE) == 22
    for pair, lecture in zip(pairs, counters.LECTURE_VGG16_TABLE):
        assert pair["weights_match"], pair
        assert pair["shape_matches"], pair
        assert pair["activations"] == math.prod(lecture["shape"])
        # the lecture rounds: 3,211,264 -> "3.2M", 150,528 -> "150K"
        assert pair["activations"] == pytest.approx(_label_value(lecture["activations_label"]),
                                                    rel=0.02)
    assert pairs[1]["activations"] == 224 * 224 * 64 == 3_211_264
    weights = [pair["weights"] for pair in pairs if pair["weights"]]
    assert weights[:2] == [1_728, 36_864]
    assert weights[-3:] == [102_760_448, 16_777_216, 4_096_000]


@pytest.mark.slow
def test_dropout_is_not_memory_so_vgg_d_has_the_activations_of_keras_vgg16(vgg16_report):
    from cnnlab.models import build_vgg

    report = counters.summary(build_vgg("D"), include_bias=False)  # dropout=0.5 by default
    dropouts = [row for row in report.rows if row["type"] == "Dropout"]
    assert len(dropouts) == 2
    assert all(not row["activations_counted"] and row["activations"] == 4096
               for row in dropouts)
    assert report.totals["activations"] == vgg16_report.totals["activations"] == 15_237_608
    assert report.totals["activations"] == counters.LECTURE_VGG16_TOTALS["true_activations"]
    text = str(report)
    assert "(4,096)" in text and "identity at inference" in text
    pairs = counters.compare_with_lecture_vgg16(report)
    assert len(pairs) == len(counters.LECTURE_VGG16_TABLE)
    assert all(pair["shape_matches"] and pair["weights_match"] for pair in pairs)
    assert [pair["name"] for pair in pairs][-3:] == ["fc1", "fc2", "predictions"]


def test_identity_at_inference_layers_are_shown_but_not_added():
    inputs = keras.Input((8, 8, 3))
    x = layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    for layer in (layers.Dropout(0.5), layers.SpatialDropout2D(0.2), layers.GaussianNoise(0.1),
                  layers.GaussianDropout(0.1), layers.AlphaDropout(0.1),
                  layers.ActivityRegularization(l1=0.01), layers.Identity()):
        x = layer(x)
    x = layers.Flatten(name="flatten")(x)
    report = counters.summary(keras.Model(inputs, layers.Dense(2, name="dense")(x)))
    counted = {row["name"] for row in report.rows if row["activations_counted"]}
    assert counted == {report.rows[0]["name"], "conv", "dense"}
    assert report.totals["activations"] == 8 * 8 * 3 + 8 * 8 * 4 + 2
    notes = {row["type"]: row["notes"] for row in report.rows}
    assert notes["Flatten"] == "reshape view: activations not added"
    assert notes["GaussianNoise"] == "identity at inference: activations not added"
    assert "reshape view or identity at inference" in "\n".join(report.footer_lines())


def test_summary_and_count_params_name_both_labs_that_use_them():
    for function in (counters.summary, counters.count_params):
        assert function.__doc__.rstrip().endswith(
            "Used in: labs/04_mlp_to_convnet, labs/05_architectures_and_cost")


def test_lecture_comparison_needs_a_report_without_biases(vgg16):
    with pytest.raises(ValueError, match="include_bias=False"):
        counters.compare_with_lecture_vgg16(counters.summary(vgg16))


def test_true_activation_total_is_15_2_m_not_the_lectures_24_m(vgg16_report):
    totals = vgg16_report.totals
    true = counters.LECTURE_VGG16_TOTALS["true_activations"]
    assert totals["activations"] == true == 15_237_608  # input + the 21 rows, Flatten excluded
    assert totals["activation_bytes"] == 15_237_608 * 4  # 60.95 MB, not "93MB"
    assert totals["activation_bytes_backward"] == 2 * 15_237_608 * 4
    assert abs(true - _label_value(counters.LECTURE_VGG16_TOTALS["activations_label"])) > 8e6
    assert "(25,088)" in str(vgg16_report)  # Flatten shown, not added


def test_parameter_memory_is_553_mb_as_the_lecture_rounds_to_552(vgg16_report):
    assert vgg16_report.totals["params_in_memory"] == 138_357_544  # biases take memory too
    assert vgg16_report.totals["param_bytes"] == 138_357_544 * 4 == 553_430_176
    assert counters.LECTURE_VGG16_TOTALS["true_param_bytes"] == 553_430_176
    assert "553.43 MB" in str(vgg16_report)


# ---------------------------------------------------------------------------------------
# Memory conventions: optimizer, batch size, dtype
# ---------------------------------------------------------------------------------------

def test_training_memory_is_x2_sgd_x3_momentum_x4_adam(vgg16_report):
    totals = vgg16_report.totals
    param_bytes = 138_357_544 * 4
    assert totals["training_bytes_sgd"] == 2 * param_bytes
    assert totals["training_bytes_momentum"] == 3 * param_bytes
    assert totals["training_bytes_adam"] == 4 * param_bytes
    assert totals["optimizer"] == "sgd" and totals["training_bytes"] == 2 * param_bytes


@pytest.mark.parametrize("optimizer, name", [
    (None, "sgd"), ("sgd", "sgd"), ("Momentum", "momentum"), ("adam", "adam"),
    (lambda: keras.optimizers.SGD(), "sgd"),
    (lambda: keras.optimizers.SGD(momentum=0.9), "momentum"),
    (lambda: keras.optimizers.Adam(), "adam"),
    (lambda: keras.optimizers.AdamW(), "adam"),
])
def test_optimizer_selects_training_bytes(optimizer, name):
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3)])
    optimizer = optimizer() if callable(optimizer) else optimizer
    totals = counters.summary(model, optimizer=optimizer).totals
    multiplier = counters.OPTIMIZER_MULTIPLIERS[name]
    assert totals["optimizer"] == name
    assert totals["training_bytes"] == multiplier * 15 * 4
    assert f"optimizer={name!r}" in str(counters.summary(model, optimizer=optimizer))


def test_frozen_weights_need_no_gradients_or_optimizer_slots(resnet50):
    totals = counters.summary(resnet50, optimizer="adam").totals
    all_weights, trainable = 25_636_712, 25_583_592
    assert totals["training_bytes"] == (all_weights + 3 * trainable) * 4


def test_batch_size_and_dtype_scale_activation_memory(vgg16, vgg16_report):
    report = counters.summary(vgg16, batch_size=32, dtype="float16", include_bias=False)
    assert report.totals["activations"] == vgg16_report.totals["activations"]
    assert report.totals["activation_bytes"] == 15_237_608 * 2 * 32
    assert report.totals["param_bytes"] == 138_357_544 * 2


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": 0}, "batch_size=0"),
    ({"batch_size": 2.5}, "batch_size=2.5"),
    ({"dtype": "float33"}, "dtype='float33'"),
    ({"optimizer": "rmsprop"}, "optimizer='rmsprop'"),
    ({"optimizer": keras.optimizers.RMSprop()}, "RMSprop"),
])
def test_bad_arguments_raise_value_errors_that_name_them(kwargs, message):
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3)])
    with pytest.raises(ValueError, match=message):
        counters.summary(model, **kwargs)


def test_non_models_and_unbuilt_models_are_refused_with_a_fix():
    with pytest.raises(TypeError, match="keras.Model"):
        counters.summary(layers.Dense(3))
    with pytest.raises(ValueError, match="keras.Input"):
        counters.summary(keras.Sequential([layers.Dense(3)]))


# ---------------------------------------------------------------------------------------
# Small models against hand computations
# ---------------------------------------------------------------------------------------

def test_sequential_conv_pool_dense_by_hand():
    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        layers.Conv2D(8, 3, padding="same", name="conv"),
        layers.MaxPooling2D(2, name="pool"),
        layers.Flatten(name="flatten"),
        layers.Dense(10, name="dense"),
    ])
    report = counters.summary(model)
    assert [row["name"] for row in report.rows][1:] == ["conv", "pool", "flatten", "dense"]
    assert report.rows[0]["type"] == "InputLayer" and report.rows[0]["activations"] == 3072
    assert _row(report, "conv")["macs"] == 32 * 32 * 8 * (3 * 3 * 3)
    assert _row(report, "dense")["macs"] == (16 * 16 * 8) * 10
    assert _row(report, "conv")["params"] == 3 * 3 * 3 * 8 + 8
    assert report.totals["params"] == model.count_params()
    assert report.totals["activations"] == 3072 + 8192 + 2048 + 10
    assert counters.count_macs(model, include_bias=True) == 221_184 + 20_480 + 8192 + 10


@pytest.mark.parametrize("build, expected_macs", [
    # Conv1D: 96 x 6 outputs, each (5 x 4) products
    (lambda: layers.Conv1D(6, 5)(keras.Input((100, 4))), 96 * 6 * 5 * 4),
    # Conv2D with groups=2: each output sees 3 x 3 x (4 / 2) inputs
    (lambda: layers.Conv2D(6, 3, groups=2, padding="same")(keras.Input((8, 8, 4))),
     8 * 8 * 6 * 3 * 3 * 2),
    # Conv3D: 2 x 2 x 2 x 5 outputs, each 2 x 2 x 2 x 3 products
    (lambda: layers.Conv3D(5, 2)(keras.Input((3, 3, 3, 3))), 2 * 2 * 2 * 5 * 2 * 2 * 2 * 3),
    # Conv2DTranspose: every input value is spread by a 3 x 3 kernel to 3 output channels
    (lambda: layers.Conv2DTranspose(3, 3, strides=2, padding="same")(keras.Input((8, 8, 4))),
     8 * 8 * 4 * 3 * 3 * 3),
    # DepthwiseConv2D: 16 x 16 x (5 x 2) outputs, each one 3 x 3 window of one channel
    (lambda: layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same")(
        keras.Input((16, 16, 5))), 16 * 16 * 10 * 9),
    # SeparableConv2D: depthwise (as above) + pointwise 1 x 1 from 10 to 7 channels
    (lambda: layers.SeparableConv2D(7, 3, depth_multiplier=2, padding="same")(
        keras.Input((16, 16, 5))), 16 * 16 * 10 * 9 + 16 * 16 * 7 * 10),
    # Dense on a (5, 7) input: 5 rows, each 7 x 3 products
    (lambda: layers.Dense(3)(keras.Input((5, 7))), 5 * 7 * 3),
    # Conv2D channels_first: same count as channels_last
    (lambda: layers.Conv2D(4, 3, data_format="channels_first")(keras.Input((2, 6, 6))),
     4 * 4 * 4 * 3 * 3 * 2),
])
def test_macs_of_one_layer_by_hand(build, expected_macs):
    outputs = build()
    model = keras.Model(outputs._keras_history.operation.input, outputs)
    report = counters.summary(model)
    assert report.rows[-1]["macs"] == expected_macs
    assert report.totals["macs"] == counters.count_macs(model) == expected_macs
    assert report.totals["params"] == model.count_params()


def test_functional_model_with_two_branches_and_add():
    inputs = keras.Input((10, 10, 4))
    left = layers.Conv2D(4, 3, padding="same", use_bias=False, name="left")(inputs)
    right = layers.Conv2D(4, 1, name="right")(inputs)
    added = layers.Add(name="add")([left, right])
    outputs = layers.BatchNormalization(name="bn")(added)
    model = keras.Model(inputs, outputs)
    report = counters.summary(model)
    assert _row(report, "left")["macs"] == 100 * 4 * 9 * 4
    assert _row(report, "right")["macs"] == 100 * 4 * 4
    assert _row(report, "add")["macs"] == 0 and _row(report, "bn")["macs"] == 0
    assert _row(report, "bn")["non_trainable_params"] == 8
    assert report.totals["activations"] == 400 * 5  # input, left, right, add, bn


def test_nested_backbone_rows_are_prefixed_and_totals_kept():
    backbone = keras.Sequential(
        [keras.Input((32, 32, 3)), layers.Conv2D(4, 3, name="conv1"),
         layers.Conv2D(6, 3, strides=2, name="conv2")], name="backbone")
    inputs = keras.Input((32, 32, 3))
    features = backbone(inputs)
    outputs = layers.Dense(2, name="head")(layers.GlobalAveragePooling2D(name="gap")(features))
    model = keras.Model(inputs, outputs)
    report = counters.summary(model)
    names = [row["name"] for row in report.rows]
    assert names[1:] == ["backbone/conv1", "backbone/conv2", "gap", "head"]
    assert _row(report, "backbone/conv1")["macs"] == 30 * 30 * 4 * 27
    assert _row(report, "backbone/conv2")["macs"] == 14 * 14 * 6 * 36
    assert report.totals["params"] == model.count_params()
    assert report.totals["macs"] == 30 * 30 * 4 * 27 + 14 * 14 * 6 * 36 + 6 * 2


def test_backbone_built_for_any_size_gets_the_outer_shapes():
    x = keras.Input((None, None, 3))
    backbone = keras.Model(x, layers.Conv2D(4, 3, name="conv")(x), name="backbone")
    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, backbone(inputs))
    row = _row(counters.summary(model), "backbone/conv")
    assert row["output_shape"] == (None, 14, 14, 4)
    assert row["macs"] == 14 * 14 * 4 * 27


@pytest.mark.slow
def test_frozen_backbone_counts_as_non_trainable():
    backbone = keras.applications.MobileNetV2(
        weights=None, include_top=False, input_shape=(96, 96, 3), alpha=0.35)
    backbone.trainable = False
    inputs = keras.Input((96, 96, 3))
    outputs = layers.Dense(5, name="head")(layers.GlobalAveragePooling2D()(backbone(inputs)))
    model = keras.Model(inputs, outputs)
    report = counters.summary(model)
    head = 1280 * 5 + 5
    assert report.totals["trainable_params"] == head
    assert report.totals["params"] == model.count_params()
    assert report.totals["macs"] == counters.count_macs(backbone) + 1280 * 5
    assert report.rows[1]["name"].startswith(backbone.name + "/")


def test_shared_layer_called_twice_sums_its_macs():
    inputs = keras.Input((6,))
    shared = layers.Dense(6, name="shared")
    model = keras.Model(inputs, shared(shared(inputs)))
    row = _row(counters.summary(model), "shared")
    assert row["calls"] == 2 and row["macs"] == 2 * 36 and "called 2 times" in row["notes"]


class _Scale(layers.Layer):
    """A layer type cnnlab does not know, with one weight per channel."""

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones")

    def call(self, inputs):
        return inputs * self.scale


def test_unknown_layer_with_weights_is_flagged_not_crashed():
    inputs = keras.Input((8, 8, 3))
    outputs = _Scale(name="scale")(layers.Conv2D(2, 3, name="conv")(inputs))
    model = keras.Model(inputs, outputs)
    report = counters.summary(model)
    row = _row(report, "scale")
    assert row["macs"] is None and "MACs not counted" in row["notes"]
    assert row["params"] == 2 and row["output_shape"] == (None, 6, 6, 2)
    assert report.totals["macs_not_counted"] == ("scale",)
    assert report.totals["macs"] == 6 * 6 * 2 * 27
    assert "not counted" in str(report)
    # a total without the unknown layer would be a wrong number: count_macs refuses it
    with pytest.raises(ValueError, match=r"scale \(_Scale\).*count_macs\(input_shape"):
        counters.count_macs(model)


class _CountedScale(_Scale):
    """A custom layer that counts its own MACs: one product per output value."""

    def count_macs(self, input_shape, output_shape):
        return math.prod(output_shape[1:])


def test_custom_layer_can_count_its_own_macs():
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, _CountedScale(name="scale")(inputs))
    row = _row(counters.summary(model), "scale")
    assert row["macs"] == 4 * 4 * 3 and "MACs" not in row["notes"]
    assert counters.count_macs(model) == 4 * 4 * 3
    # it declares no receptive_field_step(), so its field is unknown, not passed through
    assert row["unknown"] == ("receptive_field",) and row["receptive_field"] is None


def test_unknown_input_size_leaves_macs_uncounted_with_a_hint():
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, layers.Conv2D(2, 3, name="conv")(inputs))
    report = counters.summary(model)
    row = _row(report, "conv")
    assert row["macs"] is None and row["activations"] is None
    assert "fixed input size" in row["notes"]
    assert "(None, None, None, 2)" in str(report)


def test_two_inputs_are_both_counted():
    image, extra = keras.Input((4, 4, 1), name="image"), keras.Input((3,), name="extra")
    flat = layers.Flatten(name="flatten")(image)
    joined = layers.Concatenate(name="join")([flat, extra])
    model = keras.Model([image, extra], layers.Dense(2, name="dense")(joined))
    report = counters.summary(model)
    assert {"image", "extra"} <= {row["name"] for row in report.rows}
    assert report.totals["activations"] == 16 + 3 + 19 + 2  # Flatten is a view
    assert report.totals["macs"] == 19 * 2


def test_subclassed_model_gives_parameters_without_shapes():
    class Net(keras.Model):
        def __init__(self):
            super().__init__(name="net")
            self.conv = layers.Conv2D(2, 3)
            self.dense = layers.Dense(3)

        def call(self, inputs):
            return self.dense(self.conv(inputs))

    model = Net()
    model(np.zeros((1, 5, 5, 1), "float32"))
    report = counters.summary(model)
    assert report.totals["params"] == model.count_params() == 20 + 9
    assert all(row["output_shape"] is None for row in report.rows)
    assert "?" in str(report)


# ---------------------------------------------------------------------------------------
# Receptive field column (from cnnlab.arithmetic)
# ---------------------------------------------------------------------------------------

def test_receptive_field_column_is_arithmetics_receptive_field():
    from cnnlab import arithmetic

    inputs = keras.Input((9, 9, 1))
    conv = layers.Conv2D(1, 3, name="conv")(inputs)
    model = keras.Model(inputs, layers.Conv2D(1, (1, 3), name="wide")(conv))
    report = counters.summary(model)
    fields = arithmetic.receptive_field(model)
    for row in report.rows:
        assert row["receptive_field"] == fields.row(row["name"])["size"], row["name"]
    assert _row(report, "conv")["receptive_field"] == (3, 3)
    assert _row(report, "wide")["receptive_field"] == (3, 5)
    assert "3x5" in str(report)


def test_receptive_field_column_of_nested_layers_is_filled():
    backbone = keras.Sequential([keras.Input((16, 16, 3)), layers.Conv2D(4, 3, name="c1"),
                                 layers.MaxPooling2D(2, name="p1")], name="backbone")
    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, layers.Conv2D(2, 3, name="head")(backbone(inputs)))
    report = counters.summary(model)
    # by hand: 3, then + (2 - 1) x 1 = 4 (jump 2), then + (3 - 1) x 2 = 8
    assert [row["receptive_field"] for row in report.rows] == [(1, 1), (3, 3), (4, 4), (8, 8)]


def test_receptive_field_column_shows_a_dash_without_a_graph():
    class Net(keras.Model):
        def __init__(self):
            super().__init__(name="net")
            self.conv = layers.Conv2D(1, 3, name="conv")

        def call(self, inputs):
            return self.conv(inputs)

    model = Net()
    model(np.zeros((1, 5, 5, 1), "float32"))
    report = counters.summary(model)
    assert _row(report, "conv")["receptive_field"] is None
    line = next(line for line in str(report).splitlines() if line.startswith("conv "))
    assert line.endswith(" -")


def test_vgg16_block5_conv3_sees_196_pixels(vgg16_report):
    assert _row(vgg16_report, "block5_conv3")["receptive_field"] == (196, 196)
    assert _row(vgg16_report, "block1_conv1")["receptive_field"] == (3, 3)


# ---------------------------------------------------------------------------------------
# Rendering and data access
# ---------------------------------------------------------------------------------------

def test_report_renders_as_text_html_and_dataframe(vgg16_report, monkeypatch):
    text = str(vgg16_report)
    assert "15,470,264,320" in text and "102,760,448" in text and "60.95 MB" in text
    assert "FLOPs = 2 x MACs" in text and "Adam x4" in text
    table = text.split("\n")[4:4 + len(vgg16_report.rows)]
    assert table[0].startswith("input_layer") and table[-1].startswith("predictions")
    assert len({len(line) for line in table}) == 1  # right-aligned last column
    html = vgg16_report._repr_html_()
    assert html.count("<tr>") == len(vgg16_report.rows) + 1 and "block5_conv3" in html
    frame = vgg16_report.to_dataframe()
    assert list(frame["params"][:3]) == [0, 1_728, 36_864]
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        vgg16_report.to_dataframe()


def _matches_golden(report, filename):
    """The printed report against tests/golden/<filename>, written there only on purpose."""
    for row in report.rows:  # Keras numbers auto-named layers per session: conv2d_7 -> conv2d
        auto = re.sub(r"(?<!^)(?=[A-Z])", "_", row["type"]).lower().replace("2_d", "2d")
        auto = auto.replace("1_d", "1d").replace("3_d", "3d")
        if re.fullmatch(rf"{re.escape(auto)}(_\d+)?", row["name"]):
            row["name"] = auto
    text = str(report) + "\n"
    path = GOLDEN.parent / filename
    if os.environ.get("CNNLAB_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    if text != path.read_text():  # keep what was printed, to see the difference
        (pathlib.Path("/tmp") / f"golden-{filename}").write_text(text)
    return text == path.read_text()


def test_vgg16_summary_matches_golden_file(vgg16):
    assert _matches_golden(counters.summary(vgg16, include_bias=False), GOLDEN.name)


@pytest.fixture(scope="module")
def lenet5():
    from cnnlab.models import build_lenet5

    return build_lenet5()


# LeNet-5 (LeCun et al. 1998) by hand.  Parameters: C1 (5 x 5 + 1) x 6; S2/S4 one coefficient
# and one bias per map; C3 60 connections x 25 + 16 biases (Table I); C5 (5 x 5 x 16 + 1) x 120;
# F6 (120 + 1) x 84; output (84 + 1) x 10.  Receptive fields, r += (K - 1) x jump:
# C1 5, S2 5 + 1 = 6 (jump 2), C3 6 + 4 x 2 = 14, S4 14 + 1 x 2 = 16 (jump 4),
# C5 16 + 4 x 4 = 32, then every unit sees the whole 32 x 32 input.
LENET5_BY_HAND = {
    "image": (0, 1), "c1": (156, 5), "s2": (12, 6), "c3": (1_516, 14), "s4": (32, 16),
    "c5": (48_120, 32), "flatten": (0, 32), "f6": (10_164, 32), "output": (850, 32),
}


def test_lenet5_table_has_the_papers_parameters_and_true_receptive_fields(lenet5):
    report = counters.summary(lenet5)
    by_row = {row["name"]: (row["params"], row["receptive_field"]) for row in report.rows}
    assert by_row == {name: (params, (rf, rf)) for name, (params, rf) in
                      LENET5_BY_HAND.items()}
    assert {row["name"]: row["params"] for row in report.rows} == {
        layer.name: layer.count_params() for layer in lenet5.layers}
    assert report.totals["params"] == lenet5.count_params() == 60_850
    assert report.totals["unknown_layers"] == {}


def _reads_of_first_unit(model, input_shape, seed=0):
    """Input pixels whose change moves output unit (0, 0) of ``model`` (any channel):
    the measured receptive field of that unit, as (rows, columns) extents.

    Finite perturbation: the image plus 1.0 at one pixel (all channels), one image per pixel,
    against the plain image.  A pixel outside the field cannot change the unit at all.
    """
    height, width, _ = input_shape
    base = np.random.default_rng(seed).normal(size=input_shape).astype("float32")
    batch = np.repeat(base[None], height * width + 1, axis=0)
    for pixel in range(height * width):
        batch[pixel + 1, pixel // width, pixel % width, :] += 1.0
    out = keras.ops.convert_to_numpy(model(batch))
    changed = np.abs(out[1:, 0, 0, :] - out[:1, 0, 0, :]).max(axis=-1) > 1e-6
    rows, cols = np.nonzero(changed.reshape(height, width))
    return (rows.min(), rows.max()), (cols.min(), cols.max())


def test_lenet5_receptive_fields_match_impulse_responses_of_the_model(lenet5):
    # Reference: the model itself.  Unit (0, 0) of a valid-padding stack starts at pixel 0,
    # so its field is rows and columns 0 .. r - 1.
    report = counters.summary(lenet5)
    for name in ("c1", "s2", "c3", "s4", "c5"):
        probe = keras.Model(lenet5.input, lenet5.get_layer(name).output)
        size = _row(report, name)["receptive_field"][0]
        assert _reads_of_first_unit(probe, (32, 32, 1)) == ((0, size - 1), (0, size - 1)), name


def test_lenet5_summary_matches_golden_file(lenet5):
    assert _matches_golden(counters.summary(lenet5), "lenet5_summary.txt")


def test_alexnet_summary_matches_golden_file_and_the_papers_numbers():
    from cnnlab.models import build_alexnet

    model = build_alexnet()
    report = counters.summary(model)
    # MACs by hand: outputs x (k x k x C_in), then in x out for the dense layers.
    by_hand = {
        "conv1": 55 * 55 * 96 * (11 * 11 * 3), "conv2": 27 * 27 * 256 * (5 * 5 * 96),
        "conv3": 13 * 13 * 384 * (3 * 3 * 256), "conv4": 13 * 13 * 384 * (3 * 3 * 384),
        "conv5": 13 * 13 * 256 * (3 * 3 * 384), "fc6": 6 * 6 * 256 * 4096,
        "fc7": 4096 * 4096, "fc8": 4096 * 1000,
    }
    assert {name: _row(report, name)["macs"] for name in by_hand} == by_hand
    assert report.totals["macs"] == sum(by_hand.values()) == 1_135_256_096
    assert report.totals["params"] == model.count_params() == 62_378_344
    # r += (K - 1) x jump: 11, 19, 51, 67, 99, 131, 163, 195 (Araujo et al. 2019: 195)
    fields = [_row(report, name)["receptive_field"][0] for name in
              ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool3")]
    assert fields == [11, 19, 51, 67, 99, 131, 163, 195]
    assert _matches_golden(report, "alexnet_summary.txt")


def test_resnet50_summary_matches_golden_file_and_the_papers_numbers(resnet50):
    report = counters.summary(resnet50)
    assert report.totals["macs"] == 3_857_973_248  # the paper's 3.8 G
    assert report.totals["params"] == resnet50.count_params() == 25_636_712
    # Araujo, Norris & Sim 2019 ("Computing receptive fields of CNNs", Distill): 483
    assert _row(report, "conv5_block3_out")["receptive_field"] == (483, 483)
    assert _row(report, "pool1_pool")["receptive_field"] == (11, 11)  # 7, then 7 + 2 x 2
    assert report.totals["unknown_layers"] == {}
    assert _matches_golden(report, "resnet50_summary.txt")


@pytest.mark.slow
def test_mobilenet_v2_summary_matches_golden_file_and_the_papers_numbers(mobilenet_v2):
    report = counters.summary(mobilenet_v2)
    assert report.totals["macs"] == 300_774_272  # the paper's 300 M
    assert report.totals["params"] == mobilenet_v2.count_params() == 3_538_984
    assert _row(report, "out_relu")["receptive_field"] == (491, 491)  # Araujo et al.: 491
    assert report.totals["unknown_layers"] == {}
    assert _matches_golden(report, "mobilenetv2_summary.txt")


# ---------------------------------------------------------------------------------------
# No layer passes through silently
# ---------------------------------------------------------------------------------------

def _model_with_unknown_layer():
    inputs = keras.Input((8, 8, 3))
    x = layers.Conv2D(2, 3, name="conv")(inputs)
    x = _Scale(name="scale")(x)
    x = layers.Conv2D(2, 3, name="after")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, layers.Dense(2, name="dense")(x))


def test_unknown_layer_shows_unknown_cells_and_is_named_in_the_footer():
    report = counters.summary(_model_with_unknown_layer())
    scale, after = _row(report, "scale"), _row(report, "after")
    assert scale["unknown"] == ("macs", "receptive_field")
    assert scale["receptive_field"] is None and scale["macs"] is None
    assert after["unknown"] == ("receptive_field",) and after["macs"] == 4 * 4 * 2 * 18
    assert "after 'scale'" in after["notes"]
    # after global pooling every unit sees the whole input again, whatever came before
    assert _row(report, "gap")["receptive_field"] == (8, 8)
    assert _row(report, "dense")["receptive_field"] == (8, 8)
    assert report.totals["unknown_layers"] == {"scale": ("_Scale", ("MACs", "RF"))}
    assert report.totals["params"] == _model_with_unknown_layer().count_params()
    lines = str(report).splitlines()
    scale_line = next(line for line in lines if line.startswith("scale "))
    assert scale_line.split()[-2:] == ["unknown", "unknown"]
    after_line = next(line for line in lines if line.startswith("after "))
    assert after_line.split()[-2:] == ["576", "unknown"]
    footer = "\n".join(report.footer_lines())
    assert "Unknown to cnnlab" in footer and "scale (_Scale: MACs, RF)" in footer
    assert "receptive_field_step()" in footer and "KNOWN_LAYERS" in footer


def test_weightless_unknown_layer_is_unknown_not_zero():
    class Double(layers.Layer):
        def call(self, inputs):
            return inputs * 2.0

    inputs = keras.Input((4, 4, 1))
    model = keras.Model(inputs, Double(name="double")(inputs))
    row = _row(counters.summary(model), "double")
    assert row["macs"] is None and row["unknown"] == ("macs", "receptive_field")
    with pytest.raises(ValueError, match="double"):
        counters.count_macs(model)


def test_keras_ops_call_in_a_functional_model_is_named_unknown():
    inputs = keras.Input((6, 6, 1))
    x = layers.Conv2D(2, 3, name="conv")(inputs) * 2.0  # a keras.ops call, not a layer
    model = keras.Model(inputs, layers.Conv2D(1, 3, name="after")(x))
    report = counters.summary(model)
    (name,) = report.totals["unknown_layers"]
    assert report.totals["unknown_layers"][name][1] == ("MACs", "RF")
    assert "keras.ops call" in "\n".join(report.footer_lines())
    assert _row(report, "after")["unknown"] == ("receptive_field",)
    with pytest.raises(ValueError, match="keras.ops call"):
        counters.count_macs(model)


def test_augmentation_layers_are_the_identity_at_inference():
    # Reference: the layers themselves, called with training=False on a real image batch.
    images = np.random.default_rng(0).uniform(size=(2, 8, 8, 3)).astype("float32")
    augmenters = [layers.RandomFlip(), layers.RandomRotation(0.2),
                  layers.RandomTranslation(0.2, 0.2), layers.RandomZoom(0.2),
                  layers.RandomContrast(0.3), layers.RandomBrightness(0.3)]
    for layer in augmenters:
        out = keras.ops.convert_to_numpy(layer(images, training=False))
        np.testing.assert_array_equal(out, images, err_msg=type(layer).__name__)
    inputs = keras.Input((8, 8, 3))
    x = inputs
    for layer in augmenters:
        x = layer(x)
    report = counters.summary(keras.Model(inputs, layers.Conv2D(1, 3, name="conv")(x)))
    assert report.totals["activations"] == 8 * 8 * 3 + 6 * 6
    assert report.totals["unknown_layers"] == {}
    assert _row(report, "conv")["receptive_field"] == (3, 3)


def test_no_bare_except_swallows_errors_in_the_counting_modules():
    root = pathlib.Path(counters.__file__).parent
    paths = [root / "counters.py", root / "graph.py", *sorted((root / "arithmetic").glob("*.py"))]
    assert len(paths) > 3
    for path in paths:
        source = path.read_text()
        assert "except:" not in source and "except Exception" not in source, path.name


def test_reports_of_big_models_take_milliseconds(vgg16, resnet50):
    for model in (vgg16, resnet50):
        start = time.perf_counter()
        counters.summary(model)
        print(f"summary({model.name}): {time.perf_counter() - start:.3f} s")
