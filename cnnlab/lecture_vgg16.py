"""The lecture's VGG16 "Memory and Parameters" table, and its comparison with a real report.

The table is copied as the slides print it (01-convnets-dsi-slides, 03-cnn-mlnn-7pam2021):
layer by layer, the output shape, the activations label and the weights (biases left out).
Lab 05 (architectures and cost) checks it against ``cnnlab.summary`` of Keras' VGG16 with
``compare_with_lecture_vgg16``; its totals say where the slides' rounded "24M" and "552MB"
come from.  ``cnnlab.counters`` re-exports every name here.
"""

import math

from cnnlab.model_report import ModelReport

__all__ = ["LECTURE_VGG16_TABLE", "LECTURE_VGG16_TOTALS", "compare_with_lecture_vgg16"]


def _lecture_row(layer, shape, activations_label, weights_formula, weights):
    return {"layer": layer, "shape": shape, "activations_label": activations_label,
            "weights_formula": weights_formula, "weights": weights}


# The VGG16 table of the lecture (01-convnets-dsi-slides "Memory and Parameters",
# 03-cnn-mlnn-7pam2021), copied as printed: weights without biases.
LECTURE_VGG16_TABLE = (
    _lecture_row("INPUT", (224, 224, 3), "150K", "0", 0),
    _lecture_row("CONV3-64", (224, 224, 64), "3.2M", "(3x3x3)x64", 1_728),
    _lecture_row("CONV3-64", (224, 224, 64), "3.2M", "(3x3x64)x64", 36_864),
    _lecture_row("POOL2", (112, 112, 64), "800K", "0", 0),
    _lecture_row("CONV3-128", (112, 112, 128), "1.6M", "(3x3x64)x128", 73_728),
    _lecture_row("CONV3-128", (112, 112, 128), "1.6M", "(3x3x128)x128", 147_456),
    _lecture_row("POOL2", (56, 56, 128), "400K", "0", 0),
    _lecture_row("CONV3-256", (56, 56, 256), "800K", "(3x3x128)x256", 294_912),
    _lecture_row("CONV3-256", (56, 56, 256), "800K", "(3x3x256)x256", 589_824),
    _lecture_row("CONV3-256", (56, 56, 256), "800K", "(3x3x256)x256", 589_824),
    _lecture_row("POOL2", (28, 28, 256), "200K", "0", 0),
    _lecture_row("CONV3-512", (28, 28, 512), "400K", "(3x3x256)x512", 1_179_648),
    _lecture_row("CONV3-512", (28, 28, 512), "400K", "(3x3x512)x512", 2_359_296),
    _lecture_row("CONV3-512", (28, 28, 512), "400K", "(3x3x512)x512", 2_359_296),
    _lecture_row("POOL2", (14, 14, 512), "100K", "0", 0),
    _lecture_row("CONV3-512", (14, 14, 512), "100K", "(3x3x512)x512", 2_359_296),
    _lecture_row("CONV3-512", (14, 14, 512), "100K", "(3x3x512)x512", 2_359_296),
    _lecture_row("CONV3-512", (14, 14, 512), "100K", "(3x3x512)x512", 2_359_296),
    _lecture_row("POOL2", (7, 7, 512), "25K", "0", 0),
    _lecture_row("FC", (1, 1, 4096), "4096", "7x7x512x4096", 102_760_448),
    _lecture_row("FC", (1, 1, 4096), "4096", "4096x4096", 16_777_216),
    _lecture_row("FC", (1, 1, 1000), "1000", "4096x1000", 4_096_000),
)

# The lecture's total lines, and what its own rows really add up to.  "24M activations"
# is not the sum of the rows above: they sum to 15,237,608 values (input included),
# x 4 bytes = 60.95 MB per image.  "138M x 4 bytes ~= 552MB" counts biases too:
# 138,357,544 x 4 = 553.43 MB (the rows alone give 138,344,128 weights).
LECTURE_VGG16_TOTALS = {
    "activations_label": "24M",
    "activation_memory_label": "93MB",
    "params_label": "138M",
    "param_memory_label": "552MB",
    "true_activations": sum(math.prod(row["shape"]) for row in LECTURE_VGG16_TABLE),
    "true_weights": sum(row["weights"] for row in LECTURE_VGG16_TABLE),
    "true_params": 138_357_544,  # weights + 13,416 biases = keras VGG16().count_params()
}
LECTURE_VGG16_TOTALS["true_activation_bytes"] = 4 * LECTURE_VGG16_TOTALS["true_activations"]
LECTURE_VGG16_TOTALS["true_param_bytes"] = 4 * LECTURE_VGG16_TOTALS["true_params"]


def compare_with_lecture_vgg16(report):
    """Pair the lecture's VGG16 table with a report of ``keras.applications.VGG16``.

    Lecture: "Memory and Parameters".  Returns one dict per lecture row with the lecture's
    layer, shape, activation label and weights next to the report's name, output shape,
    activations and weights, plus ``shape_matches`` and ``weights_match``.  Rows whose
    activations are not added are skipped, as the lecture has none: reshape views
    (Flatten) and identity-at-inference layers (the Dropout of ``build_vgg("D")``).

    Used in: labs/05_architectures_and_cost
    """
    if not isinstance(report, ModelReport):
        raise TypeError(f"report must be a ModelReport from cnnlab.summary, got "
                        f"{type(report).__name__}")
    if report.include_bias:
        raise ValueError(
            "report counts biases but the lecture's VGG16 rows do not; build it with "
            "summary(keras.applications.VGG16(weights=None), include_bias=False) (or "
            "build_vgg('D') in place of VGG16)")
    rows = [row for row in report.rows if row["activations_counted"]]
    if len(rows) != len(LECTURE_VGG16_TABLE):
        raise ValueError(
            f"report has {len(rows)} layer rows but the lecture's VGG16 table has "
            f"{len(LECTURE_VGG16_TABLE)}; pass summary(keras.applications.VGG16("
            "weights=None), include_bias=False) or summary(cnnlab.models.build_vgg('D'), "
            "include_bias=False)")
    pairs = []
    for lecture, row in zip(LECTURE_VGG16_TABLE, rows):
        shape = tuple(row["output_shape"][1:])
        lecture_shape = lecture["shape"]
        if len(shape) == 1:  # Dense output (None, 4096) is the lecture's [1x1x4096]
            shape = (1, 1) + shape
        pairs.append({
            "lecture_layer": lecture["layer"],
            "lecture_shape": lecture_shape,
            "lecture_activations": lecture["activations_label"],
            "lecture_weights": lecture["weights"],
            "name": row["name"],
            "output_shape": row["output_shape"],
            "activations": row["activations"],
            "weights": row["params"],
            "shape_matches": shape == lecture_shape,
            "weights_match": row["params"] == lecture["weights"],
        })
    return pairs
