"""What a CNN costs: parameters, activations, memory, MACs / FLOPs and receptive field.

The lectures ("Memory and Parameters", the VGG16 table) count, layer by layer, the values a
network stores for one image (activations), the weights it learns (parameters) and the
arithmetic it does.  ``summary(model)`` prints that whole table for any Keras model, like
``model.summary()`` but with activations, memory, MACs and receptive field as well.

Nothing here runs the model on data: ``cnnlab.graph`` walks the layer graph, and we read
output shapes and weight shapes, so a VGG16 report takes milliseconds and works on every
Keras backend.

This module counts; ``cnnlab.model_report`` presents the counts (``ModelReport``, drawn by
``cnnlab._tables``) and ``cnnlab.lecture_vgg16`` holds the lecture's VGG16 table.  All their
public names are re-exported here.

Conventions (the footer of every report repeats them):

- **Activations** of a layer = number of values in its output for one image (the batch
  axis is left out).  The total sums every layer output *including the input*, as the
  lecture table does.  Reshape-only layers (``Flatten``, ``Reshape``) are shown in
  parentheses and not added: their output is a view of the same memory.  So are the
  layers that are the identity at inference (``Dropout``, ``SpatialDropout1D/2D/3D``,
  ``GaussianDropout``, ``AlphaDropout``, ``GaussianNoise``, ``ActivityRegularization``,
  ``Identity``): for one image at test time their output *is* their input, which is why
  Keras' VGG16 (no dropout layers) and ``build_vgg("D")`` (two) give the same total.
- **Activation memory** = total activations x bytes per value (4 for float32) x
  ``batch_size``; x 2 for the backward pass (a gradient for every stored value).
- **Parameter memory** = every weight (biases included, even with ``include_bias=False``)
  x bytes per value.  Training also stores, for each *trainable* weight, a gradient and the
  optimizer's slots: plain SGD x 2 (weights + gradients), SGD with momentum x 3 (+ velocity),
  Adam x 4 (+ first and second moments).  Frozen weights only cost x 1.
- **MACs** (multiply-accumulates) count the products of a layer's weights with its inputs:
  Conv: ``out_elements x (k_prod x in_channels / groups)``; DepthwiseConv:
  ``out_elements x k_prod``; SeparableConv: depthwise + pointwise; ConvTranspose:
  ``in_elements x k_prod x out_channels``; Dense: ``in_features x units`` per output row.
  Bias additions are left out (the papers' convention; ``count_macs(model,
  include_bias=True)`` adds 1 per output element of a layer with a bias).
  BatchNormalization (it can be folded into the convolution before it), pooling,
  activations and ``Add`` count 0.  A custom layer can count its own with a method
  ``count_macs(self, input_shape, output_shape)`` (shapes with the batch axis; return MACs
  per image, bias excluded), as cnnlab's own layers do.
- **Unknown layers.**  cnnlab counts only the layers it knows: the built-in Keras layers of
  ``cnnlab.graph.KNOWN_LAYERS`` and layers that declare ``count_macs`` /
  ``receptive_field_step`` (see ``cnnlab.graph``).  Any other layer is never taken for a
  layer that does nothing: its MACs and receptive field (and the fields after it, up to a
  Flatten or global pooling) show "unknown", the footer names it, and ``count_macs``
  raises.  Its parameters and output shape are Keras' own, so they stay exact.
- **FLOPs** = 2 x MACs (one multiply + one add).  Papers often call MACs "FLOPs": the
  "15.3 G FLOPs" of VGG16 and the "3.8 G FLOPs" of ResNet-50 are MACs.
"""

import math
import numbers

from cnnlab.lecture_vgg16 import (
    LECTURE_VGG16_TABLE,
    LECTURE_VGG16_TOTALS,
    compare_with_lecture_vgg16,
)
from cnnlab.model_report import FIX as _FIX
from cnnlab.model_report import UNKNOWN as _UNKNOWN
from cnnlab.model_report import ModelReport

__all__ = [
    "LECTURE_VGG16_TABLE",
    "LECTURE_VGG16_TOTALS",
    "OPTIMIZER_MULTIPLIERS",
    "ModelReport",
    "compare_with_lecture_vgg16",
    "count_flops",
    "count_macs",
    "count_params",
    "summary",
]

# Training memory of the parameters, in copies of the weights (lecture: "x2 for plain SGD,
# x4 for Adam"): weights + gradients (+ velocity) (+ first and second moments).
OPTIMIZER_MULTIPLIERS = {"sgd": 2, "momentum": 3, "adam": 4}

_OPTIMIZER_NAMES = {
    "SGD": None,  # decided by its momentum
    "Adam": "adam", "AdamW": "adam", "Adamax": "adam", "Nadam": "adam",
}


# ---------------------------------------------------------------------------------------
# Report rows, from the calls that cnnlab.graph finds (no data: shapes only)
# ---------------------------------------------------------------------------------------

def _per_image(shape):
    """Values per image of a (batch, ...) shape, or None when a size is unknown."""
    if any(size is None for size in shape[1:]):
        return None
    return math.prod(shape[1:])


def _size(variable):
    return math.prod(variable.shape)


def _bias_of(layer):
    """The bias vector of a Conv / Dense / Depthwise / Separable layer, else None."""
    from keras import layers

    biased = (layers.Dense, layers.Conv1D, layers.Conv2D, layers.Conv3D,
              layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose,
              layers.DepthwiseConv1D, layers.DepthwiseConv2D,
              layers.SeparableConv1D, layers.SeparableConv2D)
    if isinstance(layer, biased) and getattr(layer, "use_bias", False):
        return getattr(layer, "bias", None)
    return None


# Kinds of cnnlab.graph.LAYER_KINDS whose layers multiply no weights: 0 MACs.
_ZERO_MAC_KINDS = frozenset((
    "input", "pool", "global_pool", "zero_padding", "cropping", "upsampling", "reshape",
    "permute", "normalization", "axis_normalization", "activation", "identity", "merge"))

_NOT_NEW_MEMORY = {"reshape": "reshape view", "identity": "identity at inference"}


def _call_macs(layer, kind, in_shapes, out_shapes):
    """Weight MACs of one call of ``layer`` (bias excluded); None when the sizes are not all
    known; ``_UNKNOWN`` when cnnlab has no MAC rule for the layer."""
    custom = getattr(layer, "count_macs", None)  # a custom layer counts its own
    if callable(custom):
        if not in_shapes or _per_image(in_shapes[0]) is None \
                or _per_image(out_shapes[0]) is None:
            return None
        return int(custom(in_shapes[0], out_shapes[0]))
    if kind in _ZERO_MAC_KINDS:
        return 0
    if kind is None:
        return _UNKNOWN
    out_elements = _per_image(out_shapes[0])
    if kind == "conv_transpose":
        in_elements = _per_image(in_shapes[0])
        if in_elements is None:
            return None
        # kernel: (*kernel_size, filters, in_channels): every input value meets k_prod x filters
        return in_elements * math.prod(layer.kernel.shape[:-1])
    if out_elements is None:
        return None
    if kind == "separable_conv":
        depthwise, pointwise = layer.depthwise_kernel.shape, layer.pointwise_kernel.shape
        out_positions = out_elements // pointwise[-1]
        return out_positions * math.prod(depthwise) + out_elements * pointwise[-2]
    if kind == "depthwise_conv":
        return out_elements * math.prod(layer.kernel.shape[:-2])
    if kind == "conv":
        # kernel: (*kernel_size, in_channels / groups, filters)
        return out_elements * math.prod(layer.kernel.shape[:-1])
    if kind == "dense":
        return out_elements * layer.kernel.shape[0]
    raise ValueError(f"cnnlab.graph gave layer {layer.name!r} the kind {kind!r}, which has no "
                     "MAC rule in cnnlab.counters; add one next to the other kinds")


def _layer_row(layer, kind, name, layer_calls, include_bias, bias_macs=False):
    """One report row (a plain dict) for ``layer`` and the list of its calls (LayerCall)."""
    trainable = {id(w): _size(w) for w in layer.trainable_weights}
    non_trainable = {id(w): _size(w) for w in layer.non_trainable_weights}
    bias = _bias_of(layer)
    bias_params = _size(bias) if bias is not None else 0
    shown_trainable, shown_non_trainable = sum(trainable.values()), sum(non_trainable.values())
    if bias is not None and not include_bias:
        if id(bias) in trainable:
            shown_trainable -= bias_params
        else:
            shown_non_trainable -= bias_params

    notes, unknown = [], ()
    out_shapes = list(layer_calls[0].output_shapes) if layer_calls else []
    activations = 0
    macs = 0
    for call in layer_calls:
        values = [_per_image(shape) for shape in call.output_shapes]
        if activations is not None:
            activations = None if None in values else activations + sum(values)
        call_macs = _call_macs(layer, kind, call.input_shapes, call.output_shapes)
        if call_macs == _UNKNOWN:
            macs, unknown = None, ("macs",)
        elif call_macs is None or macs is None:
            macs = None
        else:
            macs += call_macs + (sum(values) if bias_macs and bias is not None else 0)
    if not layer_calls:
        activations = None
        macs = 0 if kind in _ZERO_MAC_KINDS and not callable(getattr(layer, "count_macs", None)) \
            else None
        notes.append("output shape unknown (subclassed model: build it with keras.Input)")
    elif unknown:
        notes.append("MACs not counted: no MAC rule for this layer type (see the footer)")
    elif activations is None:
        notes.append("output shape not fully known: give the model a fixed input size")
    elif macs is None:
        notes.append("MACs not counted")
    if len(layer_calls) > 1:
        notes.append(f"called {len(layer_calls)} times: activations and MACs summed")
    not_new = _NOT_NEW_MEMORY.get(kind)
    if not_new is not None:
        notes.append(f"{not_new}: activations not added")

    if not out_shapes:
        output_shape = None
    elif len(out_shapes) == 1:
        output_shape = out_shapes[0]
    else:
        output_shape = list(out_shapes)
    return {
        "name": name,
        "type": type(layer).__name__,
        "output_shape": output_shape,
        "activations": activations,
        "activations_counted": not_new is None,
        "params": shown_trainable + shown_non_trainable,
        "trainable_params": shown_trainable,
        "non_trainable_params": shown_non_trainable,
        "macs": macs,
        "receptive_field": None,
        "unknown": unknown,
        "calls": len(layer_calls),
        "notes": "; ".join(notes),
        "_weights": (trainable, non_trainable),
    }


def _model_rows(model, include_bias, bias_macs=False):
    """(report rows in ``model.layers`` order, nested models expanded, and the
    cnnlab.graph trace, None for a subclassed model)."""
    import keras
    from cnnlab import graph

    if isinstance(model, keras.Model) and not isinstance(model, keras.Sequential) \
            and not graph.is_graph_model(model):  # subclassed: parameters only, no shapes
        rows = [_layer_row(layer, graph.layer_kind(layer), layer.name, [], include_bias,
                           bias_macs) for layer in model.layers]
        return rows, None
    trace = graph.trace_model(model)  # TypeError / ValueError with the fix
    rows = [_layer_row(layer, graph.layer_kind(layer), name, calls, include_bias, bias_macs)
            for name, layer, calls in trace.rows(expand_nested=True)]
    return rows, trace


def _operations_outside_layers(trace, rows):
    """Calls in the graph that no row shows: keras.ops calls (``x + 1``) in a Functional
    model, which ``model.layers`` leaves out.  cnnlab has no rule for them."""
    if trace is None:
        return []
    shown = {row["name"] for row in rows}
    return [call for call in trace.calls
            if call.inputs and not call.nested and call.name not in shown]


def _add_receptive_fields(trace, rows):
    """Fill the ``receptive_field`` column from cnnlab.arithmetic; return {layer name: why
    cnnlab has no receptive-field rule for it} for the layers whose fields are unknown."""
    if trace is None:
        return {}
    from cnnlab.arithmetic import receptive_field_rows

    fields, unknown = receptive_field_rows(trace, expand_nested=True, strict=False)
    by_name = {field["name"]: field for field in fields}
    for row in rows:
        field = by_name.get(row["name"])
        if field is None:
            continue
        cause = field.get("unknown")
        if cause is not None:
            row["unknown"] += ("receptive_field",)
            note = ("receptive field unknown: no rule for this layer type (see the footer)"
                    if cause == row["name"] else f"receptive field unknown after {cause!r}")
            row["notes"] = "; ".join(n for n in (row["notes"], note) if n)
        elif field["size"] and all(isinstance(size, int) for size in field["size"]):
            row["receptive_field"] = field["size"]
    return unknown


# ---------------------------------------------------------------------------------------
# Formatting helpers
# ---------------------------------------------------------------------------------------

def _bytes_per_value(dtype):
    name = str(getattr(dtype, "name", dtype))
    if name == "bfloat16":
        return 2
    try:
        import numpy as np

        size = np.dtype(name).itemsize
    except TypeError:
        size = 0
    if not size:
        raise ValueError(
            f"dtype={dtype!r} is not a known numeric dtype; use e.g. 'float32' (4 bytes), "
            "'float16' or 'bfloat16' (2 bytes), 'float64' (8 bytes)")
    return size


def _resolve_optimizer(optimizer):
    if optimizer is None:
        return "sgd"
    if isinstance(optimizer, str):
        key = optimizer.lower()
        if key not in OPTIMIZER_MULTIPLIERS:
            raise ValueError(
                f"optimizer={optimizer!r} is not one of None, 'sgd', 'momentum', 'adam'; "
                "pass one of those or a keras optimizer instance")
        return key
    cls = type(optimizer).__name__
    if cls in _OPTIMIZER_NAMES:
        if cls == "SGD":
            momentum = float(getattr(optimizer, "momentum", 0.0) or 0.0)
            return "momentum" if momentum > 0 else "sgd"
        return _OPTIMIZER_NAMES[cls]
    raise ValueError(
        f"optimizer={optimizer!r} ({cls}) has no memory convention here; pass "
        "'sgd' (x2), 'momentum' (x3) or 'adam' (x4), or a keras SGD / Adam / AdamW / "
        "Adamax / Nadam instance")


# ---------------------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------------------

def summary(model, batch_size=1, optimizer=None, dtype="float32", include_bias=True):
    """Layer-by-layer cost table of a Keras model, like the lecture's VGG16 table.

    Lecture: "Memory and Parameters" (VGG16 activations, parameters, memory per image) and
    the MAC / FLOP counts of VGG and ResNet.  Nothing is run on data: shapes are read from
    the layer graph.  Sequential, Functional and nested models (a backbone used as a layer:
    rows named ``"backbone/conv1"``) are supported.

    Args:
        model: a built keras.Model.
        batch_size: images per batch; multiplies the activation memory.
        optimizer: None (plain SGD, the lecture's x 2), "sgd", "momentum", "adam", or a
            keras optimizer (SGD with momentum > 0 counts as "momentum"; Adam, AdamW,
            Adamax, Nadam as "adam"): chooses ``totals["training_bytes"]``.
        dtype: dtype of weights and activations ("float32": 4 bytes per value).
        include_bias: False leaves bias vectors out of the parameter columns and totals
            (the lecture's VGG16 rows); parameter memory always counts every weight.
            MACs never include bias additions here (the papers' convention); use
            ``count_macs(model, include_bias=True)`` for those.

    Returns:
        A ``ModelReport``.  ``totals`` holds ``params``, ``trainable_params``,
        ``non_trainable_params``, ``macs``, ``flops``, ``macs_not_counted``,
        ``unknown_layers`` (``{name: (type, columns)}`` of the layers cnnlab has no rule
        for, e.g. ``{"scale": ("Scale", ("MACs", "RF"))}``),
        ``activations`` (per image), ``activation_bytes`` (x batch_size),
        ``activation_bytes_backward`` (x 2), ``params_in_memory``, ``param_bytes``,
        ``training_bytes_sgd`` / ``_momentum`` / ``_adam``, ``optimizer``,
        ``training_bytes`` (of that optimizer), ``total_training_bytes`` (+ activations
        with backward), ``batch_size``, ``dtype``, ``bytes_per_value``.

    Activations: every layer output for one image, input included.  Rows in parentheses
    are not added: reshape views (``Flatten``, ``Reshape``) and layers that are the identity
    at inference (``Dropout``, ``SpatialDropout*``, ``GaussianNoise``, ``GaussianDropout``,
    ``AlphaDropout``, ``ActivityRegularization``, ``Identity``); their ``notes`` say which.
    So ``build_vgg("D")`` with its two dropout layers has the 15,237,608 activations of
    Keras' VGG16.

    A layer cnnlab does not know (see the module docstring) gets "unknown" MACs and
    receptive field, named in the footer, never a made-up 0 or a field passed through.

    Used in: labs/04_mlp_to_convnet, labs/05_architectures_and_cost
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) \
            or batch_size < 1:
        raise ValueError(
            f"batch_size={batch_size!r} must be a positive integer (images per batch), e.g. 32")
    size = _bytes_per_value(dtype)
    optimizer_name = _resolve_optimizer(optimizer)

    rows, trace = _model_rows(model, include_bias)
    no_rf_rule = _add_receptive_fields(trace, rows)
    unknown = _unknown_layers(rows, no_rf_rule, _operations_outside_layers(trace, rows))

    trainable, non_trainable = {}, {}
    for row in rows:
        row_trainable, row_non_trainable = row.pop("_weights")
        trainable.update(row_trainable)
        non_trainable.update(row_non_trainable)
    all_weights = sum(trainable.values()) + sum(non_trainable.values())
    trainable_weights = sum(trainable.values())

    macs = sum(row["macs"] for row in rows if row["macs"] is not None)
    activations = sum(row["activations"] for row in rows
                      if row["activations_counted"] and row["activations"] is not None)
    param_bytes = all_weights * size
    training = {f"training_bytes_{name}": param_bytes + (multiplier - 1) * trainable_weights * size
                for name, multiplier in OPTIMIZER_MULTIPLIERS.items()}
    activation_bytes = activations * size * batch_size
    totals = {
        "params": sum(row["params"] for row in rows),
        "trainable_params": sum(row["trainable_params"] for row in rows),
        "non_trainable_params": sum(row["non_trainable_params"] for row in rows),
        "macs": macs,
        "flops": 2 * macs,
        "macs_not_counted": tuple(row["name"] for row in rows if row["macs"] is None),
        "unknown_layers": unknown,
        "activations": activations,
        "activation_bytes": activation_bytes,
        "activation_bytes_backward": 2 * activation_bytes,
        "params_in_memory": all_weights,
        "param_bytes": param_bytes,
        **training,
        "optimizer": optimizer_name,
        "training_bytes": training[f"training_bytes_{optimizer_name}"],
        "total_training_bytes": training[f"training_bytes_{optimizer_name}"]
        + 2 * activation_bytes,
        "batch_size": int(batch_size),
        "dtype": str(getattr(dtype, "name", dtype)),
        "bytes_per_value": size,
    }
    return ModelReport(model.name, rows, totals, include_bias)


def _unknown_layers(rows, no_rf_rule, operations):
    """{name: (type, columns)} of the layers (and keras.ops calls) cnnlab has no rule for."""
    unknown = {}
    for row in rows:
        columns = ["MACs"] if "macs" in row["unknown"] else []
        if row["name"] in no_rf_rule:
            columns.append("RF")
        if columns:
            unknown[row["name"]] = (row["type"], tuple(columns))
    for call in operations:
        columns = ("MACs", "RF") if call.name in no_rf_rule else ("MACs",)
        unknown[call.name] = (f"{type(call.layer).__name__}, a keras.ops call", columns)
    return unknown


def count_params(model, include_bias=True, trainable_only=False):
    """Number of parameters of a Keras model (nested models included).

    Lecture: "Memory and Parameters" -- a conv layer has (k x k x C_in) x C_out weights and
    C_out biases; ``include_bias=False`` gives the lecture's VGG16 weight counts.

    Used in: labs/04_mlp_to_convnet, labs/05_architectures_and_cost
    """
    rows, _ = _model_rows(model, include_bias)
    key = "trainable_params" if trainable_only else "params"
    return sum(row[key] for row in rows)


def count_macs(model, include_bias=False):
    """Multiply-accumulates for one image: the products of conv / dense weights with inputs.

    Lecture: the cost of VGG16 (15.3 G) and ResNet-50 (3.8 G), which papers call "FLOPs"
    but which are MACs.  Conv: out_elements x (k_prod x C_in / groups); Dense: in x units
    per output row; BatchNorm, pooling, activations, add: 0.  ``include_bias=True`` adds
    one per output element of a layer with a bias.  A total without some layers would be a
    wrong number, so a layer cnnlab has no MAC rule for (not a built-in it knows, no
    ``count_macs`` method), or an input size that is not fixed, raises a ValueError that
    names the layers and the fix; ``summary(model)`` still shows every other row.

    Used in: labs/05_architectures_and_cost
    """
    rows, trace = _model_rows(model, include_bias=True, bias_macs=include_bias)
    unknown = [f"{row['name']} ({row['type']})" for row in rows if row["unknown"]]
    unknown += [call.description for call in _operations_outside_layers(trace, rows)]
    if unknown:
        raise ValueError(f"MACs cannot be counted: cnnlab has no MAC rule for "
                         f"{', '.join(unknown)}; {_FIX}")
    sizes = [row["name"] for row in rows if row["macs"] is None]
    if sizes:
        raise ValueError(
            f"MACs cannot be counted for {', '.join(sizes)}: their input sizes are not fixed "
            "(None in the shape); build the model with a fixed size, e.g. "
            "keras.Input(shape=(224, 224, 3))")
    return sum(row["macs"] for row in rows)


def count_flops(model, include_bias=False):
    """Floating-point operations for one image, counted as 2 x MACs (multiply + add).

    Lecture: "3.8B FLOPs vs 15.3B FLOPs" (ResNet-50 vs VGG16) -- those papers' "FLOPs" are
    MACs, so ``count_flops`` gives twice the quoted figure; compare with ``count_macs``.

    Used in: labs/05_architectures_and_cost
    """
    return 2 * count_macs(model, include_bias=include_bias)
