"""The Keras-model side of ``receptive_field`` and ``trace_shapes``.

A built Keras model is walked by ``cnnlab.graph`` (the one walker over Keras layer graphs,
shared with ``cnnlab.counters``); each built-in layer is turned into the receptive-field step
of ``cnnlab.arithmetic.receptive_fields`` (a convolution slides, padding shifts, Flatten sees
the whole input, a layer without a rule raises a ValueError naming it), and cnnlab's own
layers declare theirs with ``receptive_field_step()``.  Labs 02, 05, 10 and 11 call
``receptive_field(model)`` on real models; ``cnnlab.summary`` fills its RF column with
``receptive_field_rows``.

This is the only module of ``cnnlab.arithmetic`` that reaches Keras, and only through
``cnnlab.graph``, imported when a model is given: importing it imports no Keras.
"""

from __future__ import annotations

from cnnlab._checks import is_sequence, per_axis
from cnnlab.arithmetic.receptive_fields import (
    _SLIDING,
    _WHOLE,
    ReceptiveField,
    _Field,
    _hull,
    _largest,
    _NoRule,
    _row,
    _spec_step,
    _to_spec,
    _transpose_left_pad,
)
from cnnlab.arithmetic.sizes import _effective_kernel, _explicit_pair, _same_pair
from cnnlab.arithmetic.trace import ShapeTrace

__all__ = ["is_keras_model", "model_receptive_field", "model_shape_trace",
           "receptive_field_rows"]


def _graph():
    from cnnlab import graph

    return graph


def is_keras_model(value):
    """Whether ``value`` is a Keras model (it has ``.layers``), not a list of layer specs."""
    return hasattr(value, "layers") and not isinstance(value, (list, tuple))


def _spatial_sizes(shape, data_format):
    if shape is None or len(shape) < 3:
        return None
    dims = shape[2:] if data_format == "channels_first" else shape[1:-1]
    return tuple(dims)


def _keras_pairs(value, rank):
    """Keras ZeroPadding/Cropping attribute -> ((before, after), ...) or None if not matching."""
    if not is_sequence(value):
        return ((value, value),) * rank
    if rank == 1 and len(value) == 2 and not is_sequence(value[0]):
        return (tuple(value),)
    if len(value) != rank:
        return None
    return tuple(tuple(v) if is_sequence(v) else (v, v) for v in value)


def _axes_of(value, ndim):
    values = tuple(value) if is_sequence(value) else (value,)
    return {v % ndim for v in values}


def _channel_axis(ndim, data_format):
    return 1 if data_format == "channels_first" and ndim > 2 else ndim - 1


def _sliding_field(layer, field, input_shape, rank):
    """Field after a Keras convolution or local pooling layer."""
    kernel = getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None)
    kernels = tuple(kernel) if is_sequence(kernel) else (kernel,)
    if len(kernels) != rank:
        raise _NoRule(f"it slides over {len(kernels)} spatial axes but the model's input has "
                      f"{rank}")
    strides = per_axis(tuple(layer.strides), rank, "strides")
    dilations = per_axis(tuple(getattr(layer, "dilation_rate", None) or (1,) * rank), rank,
                          "dilation_rate")
    padding = str(layer.padding).lower()
    if hasattr(layer, "output_padding"):  # a transposed convolution
        output_padding = layer.output_padding
        ops_ = (None,) * rank if output_padding is None else tuple(output_padding)
        lefts = [_transpose_left_pad(padding, k, s, d, o)
                 for k, s, d, o in zip(kernels, strides, dilations, ops_)]
        return field.slide_transposed(kernels, strides, dilations, lefts)
    sizes = _spatial_sizes(input_shape, getattr(layer, "data_format", "channels_last"))
    befores = []
    for i in range(rank):
        k_eff = _effective_kernel(kernels[i], dilations[i])
        if padding == "same":
            n = None if sizes is None else sizes[i]
            befores.append(max(k_eff - strides[i], 0) // 2 if n is None
                           else _same_pair(n, k_eff, strides[i])[0])
        else:
            befores.append(_explicit_pair(padding, 0, k_eff, strides[i])[0])
    return field.slide(kernels, strides, dilations, befores)


def _keras_field(layer, kind, field, input_shape, rank, data_format):
    """Field after one call of a built-in Keras layer of ``kind`` (see cnnlab.graph)."""
    if kind in ("conv", "depthwise_conv", "separable_conv", "conv_transpose", "pool"):
        return _sliding_field(layer, field, input_shape, rank)
    if kind in ("reshape", "permute", "global_pool"):
        return field.as_whole()
    if kind in ("zero_padding", "cropping"):
        pairs = _keras_pairs(layer.padding if kind == "zero_padding" else layer.cropping, rank)
        if pairs is None:
            raise _NoRule(f"its {kind} does not have one entry per spatial axis ({rank})")
        sign = 1 if kind == "zero_padding" else -1
        return field.shift([sign * before for before, _ in pairs])
    if kind == "upsampling":
        interpolation = getattr(layer, "interpolation", "nearest")
        if interpolation != "nearest":
            raise _NoRule(f"interpolation={interpolation!r} mixes neighbouring pixels; only "
                          "'nearest' (each output copies one input pixel) has a rule")
        size = layer.size
        factors = tuple(size) if is_sequence(size) else (size,) * rank
        if len(factors) != rank:
            raise _NoRule(f"it upsamples {len(factors)} axes but the model's input has {rank}")
        return field.upsample(factors)
    ndim = len(input_shape)
    spatial = set(range(ndim)) - {0, _channel_axis(ndim, data_format)}
    if kind == "dense":
        if ndim > 2 and data_format == "channels_first":
            raise _NoRule("on a channels_first feature map Dense mixes the last spatial axis")
        return field
    if kind == "axis_normalization":
        if any(cls.__name__ == "GroupNormalization" for cls in type(layer).__mro__):
            return field.as_whole()  # statistics over all positions of each group
        axes = _axes_of(layer.axis, ndim)
        if not axes & spatial:
            return field  # statistics over the channels of each pixel
        if spatial <= axes:
            return field.as_whole()
        raise _NoRule(f"axis={layer.axis!r} covers some spatial axes but not all")
    if kind in ("normalization", "activation", "identity"):
        return field
    raise _NoRule(f"no rule for Keras layers of kind {kind!r}")


def _custom_field(call, step, field, rank):
    """Field after a layer that declares ``receptive_field_step()`` (cnnlab's protocol)."""
    declared = step()
    try:
        spec = _to_spec(declared, 1)
        if spec.kind in _WHOLE:
            return field.as_whole()
        if spec.kind in _SLIDING or spec.kind in ("conv_transpose", "zero_padding"):
            sizes = _spatial_sizes(call.input_shapes[0], "channels_last")
            return _spec_step(spec, field, sizes, rank)[0]
        return field  # dense, batch_norm, dropout, activation: pixel by pixel
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{call.description}: receptive_field_step() returned {declared!r}, which is not "
            f"a layer spec with {rank} spatial axes: {error}; return a cnnlab.arithmetic."
            "LayerSpec, its dict or a kind string, e.g. {'kind': 'conv', 'kernel_size': 3}"
        ) from None


def _call_field(call, in_fields, rank, data_format, graph):
    """Field of the outputs of one call, or raise _NoRule."""
    layer = call.layer
    step = getattr(layer, "receptive_field_step", None)
    kind = graph.layer_kind(layer)
    if kind == "merge":
        merged = _hull(in_fields)
        if not merged.settled and hasattr(layer, "axis"):  # Concatenate
            ndim = len(call.input_shapes[0])
            if _axes_of(layer.axis, ndim) != {_channel_axis(ndim, data_format)}:
                raise _NoRule(f"axis={layer.axis} is not the channel axis: it joins maps "
                              "side by side in space")
        return merged
    field = _largest(in_fields)
    if field.whole:
        return field  # a unit cannot see more than the whole input
    # an unknown field stays unknown, unless this layer sees the whole input (Flatten, ...)
    if callable(step):
        return _custom_field(call, step, field, rank)
    if kind is None:
        raise _NoRule(
            "it is not one of the built-in Keras layers cnnlab knows "
            "(cnnlab.graph.KNOWN_LAYERS) and it declares no receptive_field_step(); give it "
            "a method receptive_field_step(self) that returns the paper-design layer with "
            "the same geometry, e.g. {'kind': 'conv', 'kernel_size': 3, 'padding': 'same'}, "
            "'activation' for a layer that works pixel by pixel or 'flatten' for one that "
            "mixes all positions (see cnnlab.layers.Subsampling2D)")
    return _keras_field(layer, kind, field, call.input_shapes[0], rank, data_format)


def _trace_geometry(trace):
    """(spatial rank, data format, spatial sizes of the first input) of a traced model."""
    rank = max((len(trace.shapes[key]) - 2 for key in trace.inputs), default=0)
    data_format = next((call.layer.data_format for call in trace.calls
                        if getattr(call.layer, "data_format", None)), "channels_last")
    sizes = _spatial_sizes(trace.shapes[trace.inputs[0]], data_format)
    return max(rank, 0), data_format, sizes


def _trace_fields(trace, strict):
    """{call index: field} of a ``cnnlab.graph.ModelTrace``, and {layer name: why unknown}.

    ``strict`` raises a ValueError at the first layer without a rule; otherwise the field
    is marked unknown from there on (until a layer that sees the whole input).
    """
    graph = _graph()
    rank, data_format, _ = _trace_geometry(trace)
    tensors, fields, unknown = {}, {}, {}
    for call in trace.calls:
        if call.nested:  # a nested model: its calls came first
            field = _largest([tensors[key] for key in call.outputs])
        elif not call.inputs:  # an input layer
            field = _Field.at_input(rank)
        else:
            in_fields = [tensors[key] for key in call.inputs]
            try:
                field = _call_field(call, in_fields, rank, data_format, graph)
            except _NoRule as missing:
                message = f"{call.description} has no receptive-field rule: {missing}"
                if strict:
                    raise ValueError(message) from None
                unknown.setdefault(call.name, message)
                field = _largest(in_fields).as_unknown(call.name)
        if not call.nested:
            for key in call.outputs:
                tensors[key] = field
        fields[call.index] = field
    return fields, unknown


def receptive_field_rows(trace, expand_nested=False, strict=True):
    """Receptive-field rows of the layers of a traced model, and why some are unknown.

    Args:
        trace: a ``cnnlab.graph.ModelTrace`` (``cnnlab.graph.trace_model(model)``).
        expand_nested: one row per layer of a nested model (``"backbone/conv1"``) instead of
            one row for the nested model.
        strict: raise a ValueError at the first layer without a receptive-field rule; with
            False its row (and the rows after it, up to a layer that sees the whole input)
            gets ``size`` None and ``unknown`` (the name of the layer that had no rule).

    Returns:
        ``(rows, unknown)``: the row dicts of ``ReceptiveField.rows`` in model order, and
        ``{layer name: why its field is unknown}``.

    Used in: no lab notebook directly; ``cnnlab.summary`` fills its RF column with it
    """
    fields, unknown = _trace_fields(trace, strict)
    sizes = _trace_geometry(trace)[2]
    rows = []
    for name, _, calls in trace.rows(expand_nested):
        if calls:
            rows.append(_row(name, _largest([fields[call.index] for call in calls]), sizes))
    return rows, unknown


def model_receptive_field(model):
    """``receptive_field(model)``: the ``ReceptiveField`` of every layer of ``model.layers``."""
    return ReceptiveField(receptive_field_rows(_graph().trace_model(model))[0])


def model_shape_trace(model, input_shape=None):
    """``trace_shapes(model)``: one ``ShapeTrace`` row per layer of ``model.layers``."""
    trace = _graph().trace_model(model)
    shape = trace.shapes[trace.inputs[0]][1:]
    if input_shape is not None and tuple(input_shape) != shape:
        raise ValueError(
            f"input_shape={tuple(input_shape)} is not the model's input shape {shape}; leave "
            "input_shape out for a model, or rebuild the model with keras.Input(shape=...)")
    fields, _ = _trace_fields(trace, strict=True)
    sizes = _trace_geometry(trace)[2]
    rows = []
    for name, layer, calls in trace.rows(expand_nested=False):
        if not calls or not (calls[0].inputs or calls[0].nested):
            continue  # an input layer: ShapeTrace prints the input itself
        info = _row(name, _largest([fields[call.index] for call in calls]), sizes)
        rows.append({
            "name": name,
            "kind": type(layer).__name__,
            "output_shape": calls[0].output_shapes[0][1:],
            "params": layer.count_params(),
            "receptive_field": info["size"],
            "whole_input": info["whole_input"],
        })
    return ShapeTrace(rows, shape)
