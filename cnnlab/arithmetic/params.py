"""Parameter counts: ``K * K * C_in * C_out + C_out`` per convolution, ``in * units + units``
per dense layer.

The lecture's comparison of a convolution with a dense layer on the same image (34,944
parameters for AlexNet's first convolution against 921 million for ``Dense(1000)`` on a
640x480x3 image), and the savings of depthwise-separable convolutions.  Labs 01, 02, 04 and
05 count with them; ``trace_shapes`` adds them up layer by layer.  Pure Python.
"""

from __future__ import annotations

import math

from cnnlab._checks import HINTS, integer, is_sequence

__all__ = ["conv_params", "dense_params"]


_CONV_KINDS = ("standard", "depthwise", "pointwise", "separable")


def conv_params(kernel_size, in_channels, filters=None, use_bias=True, kind="standard",
                depth_multiplier=1, rank=2):
    """Number of parameters of a convolution layer, as ``layer.count_params()`` reports.

    Lecture formula: each of the ``filters`` kernels has ``K * K * C_in`` weights and one bias,
    so 10 filters 5x5 on a 32x32x3 input have ``(5*5*3 + 1) * 10 = 760`` parameters.

    Args:
        kernel_size: K, an int (a square kernel with ``rank`` axes) or a tuple.
        in_channels: channels of the input, C_in.
        filters: output channels (Keras ``filters``).  Required except for ``"depthwise"``.
        use_bias: count one bias per output channel.
        kind: ``"standard"`` (``Conv1D/2D/3D`` and their ``Transpose``:
            ``prod(K) * C_in * filters + filters``), ``"pointwise"`` (a 1x1 convolution:
            ``C_in * filters + filters``; kernel_size must be 1), ``"depthwise"``
            (``DepthwiseConv2D``: one kernel per input channel and per ``depth_multiplier``,
            ``prod(K) * C_in * M + C_in * M``; ``filters`` must be None or ``C_in * M``), or
            ``"separable"`` (``SeparableConv2D``: depthwise ``prod(K) * C_in * M`` without bias,
            then pointwise ``C_in * M * filters + filters``).
        depth_multiplier: M, output channels per input channel of the depthwise step.
        rank: number of spatial axes when ``kernel_size`` is an int (2 for Conv2D, 1 for
            Conv1D).

    >>> conv_params(11, 3, 96)   # AlexNet conv1
    34944

    Used in: labs/04_mlp_to_convnet, labs/05_architectures_and_cost
    """
    rank = integer(rank, "rank")
    if is_sequence(kernel_size):
        kernels = tuple(integer(k, f"kernel_size[{i}]") for i, k in enumerate(kernel_size))
        if not kernels:
            raise ValueError("kernel_size=() is empty; give one size per spatial axis")
    else:
        kernels = (integer(kernel_size, "kernel_size"),) * rank
    taps = math.prod(kernels)
    c_in = integer(in_channels, "in_channels")
    m = integer(depth_multiplier, "depth_multiplier")
    bias = 1 if use_bias else 0
    if kind not in _CONV_KINDS:
        raise ValueError(
            f"kind={kind!r} is not a convolution kind; use one of "
            f"{', '.join(repr(k) for k in _CONV_KINDS)}"
        )
    if kind == "depthwise":
        out = c_in * m
        if filters is not None and filters != out:
            raise ValueError(
                f"filters={filters!r} does not fit a depthwise convolution, which has "
                f"in_channels * depth_multiplier = {c_in} * {m} = {out} output channels; pass "
                "filters=None, or kind='separable' to mix the channels into `filters` outputs"
            )
        return taps * out + bias * out
    if filters is None:
        raise ValueError(f"filters is required for kind={kind!r}; {HINTS['filters']}")
    c_out = integer(filters, "filters")
    if kind == "standard":
        return taps * c_in * c_out + bias * c_out
    if kind == "pointwise":
        if taps != 1:
            raise ValueError(
                f"kind='pointwise' is a 1x1 convolution but kernel_size={kernel_size!r}; pass "
                "kernel_size=1, or kind='standard' for a larger kernel"
            )
        return c_in * c_out + bias * c_out
    # separable: depthwise (no bias in Keras) then pointwise with bias
    return taps * c_in * m + c_in * m * c_out + bias * c_out


def dense_params(in_features, units, use_bias=True):
    """Number of parameters of a dense layer: ``in_features * units + units``.

    ``in_features`` may be a shape, flattened first: the lecture's ``Dense(1000)`` on a
    flattened 640x480x3 image has ``dense_params((640, 480, 3), 1000) == 921_601_000``
    parameters, against 34,944 for AlexNet's first convolution.

    Used in: labs/04_mlp_to_convnet, labs/05_architectures_and_cost
    """
    if is_sequence(in_features):
        if not in_features:
            raise ValueError("in_features=() is empty; give the input shape, e.g. (28, 28, 1)")
        features = math.prod(
            integer(v, f"in_features[{i}]") for i, v in enumerate(in_features))
    else:
        features = integer(in_features, "in_features")
    units = integer(units, "units")
    return features * units + (units if use_bias else 0)
