"""``trace_shapes``: a network designed on paper, checked layer by layer.

The lecture's exercise: follow a 32x32x3 image through the layers, computing
``W' = (W - K + 2P) / S + 1`` and ``K * K * C_in * C_out + C_out`` at each step, as
``model.summary()`` would show them, with the receptive field of each layer alongside.
Lab 02 designs networks with it.  Pure Python; a Keras model is handed to
``cnnlab.arithmetic.keras_adapter``.
"""

from __future__ import annotations

import math

from cnnlab._checks import HINTS, integer
from cnnlab._tables import html_table, text_table
from cnnlab.arithmetic.params import conv_params, dense_params
from cnnlab.arithmetic.receptive_fields import (
    _POOLS,
    _check_input_shape,
    _format_axes,
    _LayerTable,
    _row,
    _walk_specs,
)

__all__ = ["ShapeTrace", "trace_shapes"]


class ShapeTrace(_LayerTable):
    """A network designed on paper, layer by layer: what ``trace_shapes`` returns.

    ``rows`` is a list of dicts with keys ``name``, ``kind`` (the spec's kind, or the layer's
    class name for a Keras model), ``output_shape`` (without the batch axis), ``params`` and
    ``receptive_field`` (one int per spatial axis; the input size, or None if unknown, once
    the layer sees the whole input).  ``total_params`` sums the
    parameters; ``output_shape`` is the last layer's.  Print it, or show it in a notebook.

    Used in: no lab notebook directly; ``trace_shapes`` returns it
    """

    _HEADERS = ("layer", "kind", "output shape", "params", "receptive field")

    def __init__(self, rows, input_shape):
        super().__init__(rows)
        self.input_shape = tuple(input_shape)

    @property
    def total_params(self):
        return sum(r["params"] for r in self.rows)

    @property
    def output_shape(self):
        return self.rows[-1]["output_shape"] if self.rows else self.input_shape

    def _cells(self):
        ones = "x".join(["1"] * (len(self.input_shape) - 1))
        cells = [["input", "input", _format_shape(self.input_shape), "0", ones]]
        for r in self.rows:
            field = _format_axes(r["receptive_field"])
            if r["whole_input"]:
                field = f"whole input ({field})"
            cells.append([r["name"], r["kind"], _format_shape(r["output_shape"]),
                          f"{r['params']:,}", field])
        return cells

    def __str__(self):
        table = text_table(self._HEADERS, self._cells(), right=(3,))
        return f"{table}\nTotal params: {self.total_params:,}"

    def __repr__(self):
        return (f"ShapeTrace(input_shape={self.input_shape}, output_shape={self.output_shape}, "
                f"total_params={self.total_params})")

    def _repr_html_(self):
        caption = f"Total params: {self.total_params:,}"
        return html_table(self._HEADERS, self._cells(), right=(3,), caption=caption)


def _format_shape(shape):
    return "(" + ", ".join(["None"] + [str(v) for v in shape]) + ")"


def trace_shapes(layers, input_shape=None):
    """Output shape, parameters and receptive field of each layer of a network on paper.

    The lecture's exercise: follow a 32x32x3 image through the layers, computing
    ``W' = (W - K + 2P) / S + 1`` and ``K * K * C_in * C_out + C_out`` at each step, as
    ``model.summary()`` would show them.

    Args:
        layers: list of layer specs, e.g.
            ``[{"kind": "conv", "filters": 32, "kernel_size": 3, "padding": "same"},
            {"kind": "pool", "pool_size": 2}, "flatten", {"kind": "dense", "units": 10}]``
            (see ``LayerSpec`` for the kinds and keys), or a built Keras model: then the
            shapes are Keras' own, ``params`` is each layer's ``count_params()``, ``kind`` its
            class name, and a layer without a receptive-field rule raises a ValueError that
            names it (see ``receptive_field``).
        input_shape: input shape without the batch axis, channels last, as in Keras:
            ``(32, 32, 3)`` for images, ``(100, 1)`` for signals.  Not needed for a model.

    Returns:
        ShapeTrace: ``.rows`` (dicts: name, kind, output_shape, params, receptive_field),
        ``.total_params``, a printable table and a notebook HTML table.

    A dense layer on a spatial (not flattened) input acts on the last axis, as Keras Dense
    does; batch normalisation counts 4 parameters per channel, as Keras' "Total params".

    Used in: labs/02_conv_arithmetic
    """
    from cnnlab.arithmetic import keras_adapter  # imports no Keras until a model is given

    if keras_adapter.is_keras_model(layers):
        return keras_adapter.model_shape_trace(layers, input_shape)
    shape = _check_input_shape(input_shape)
    if shape is None:
        raise ValueError("input_shape is required, e.g. input_shape=(32, 32, 3)")
    rows = []
    current = shape
    spatial = shape[:-1]
    for spec, sizes, field in _walk_specs(layers, shape):
        try:
            current, params = _spec_shape_params(spec, current, sizes)
        except ValueError as error:
            raise ValueError(f"layer {spec.name!r} ({spec.kind}): {error}") from None
        info = _row(spec.name, field, spatial)
        rows.append({
            "name": spec.name,
            "kind": spec.kind,
            "output_shape": current,
            "params": params,
            "receptive_field": info["size"],
            "whole_input": info["whole_input"],
        })
    return ShapeTrace(rows, shape)



def _spec_shape_params(spec, shape, sizes):
    """(output shape, parameter count) of one spec given the input shape (channels last)."""
    kind, channels = spec.kind, shape[-1]
    rank = len(shape) - 1
    if kind == "conv":
        filters = _require(spec.filters, "filters")
        return sizes + (filters,), conv_params(spec.kernel_size, channels, filters,
                                               spec.use_bias, "standard", rank=rank)
    if kind == "depthwise_conv":
        out = channels * integer(spec.depth_multiplier, "depth_multiplier")
        return sizes + (out,), conv_params(spec.kernel_size, channels, None, spec.use_bias,
                                           "depthwise", spec.depth_multiplier, rank=rank)
    if kind == "separable_conv":
        filters = _require(spec.filters, "filters")
        return sizes + (filters,), conv_params(spec.kernel_size, channels, filters,
                                               spec.use_bias, "separable",
                                               spec.depth_multiplier, rank=rank)
    if kind == "conv_transpose":
        filters = _require(spec.filters, "filters")
        return sizes + (filters,), conv_params(spec.kernel_size, channels, filters,
                                               spec.use_bias, "standard", rank=rank)
    if kind in _POOLS or kind == "zero_padding":
        return sizes + (channels,), 0
    if kind in ("global_avg_pool", "global_max_pool"):
        return (channels,), 0
    if kind == "flatten":
        return (math.prod(shape),), 0
    if kind == "dense":
        units = _require(spec.units, "units")
        return shape[:-1] + (units,), dense_params(channels, units, spec.use_bias)
    if kind == "batch_norm":
        return shape, 4 * channels
    return shape, 0  # dropout, activation


def _require(value, name):
    if value is None:
        raise ValueError(f"{name} is missing; {HINTS[name]}")
    return integer(value, name)
