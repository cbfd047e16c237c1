"""Shape arithmetic for convolutional networks: sizes, padding, parameters, receptive fields.

The lectures' formulas, computed exactly as Keras computes them, so a design done on paper
agrees with ``model.summary()``:

- output size of a convolution ``W' = (W - K + 2P) / S + 1`` (floored, as Keras does), with
  the effective kernel ``(K - 1) * D + 1`` of a dilated kernel;
- the padding that keeps the size, ``P = (K - 1) / 2``, and the asymmetric padding of
  ``padding="same"``;
- pooling and transposed convolution sizes;
- parameter counts ``K * K * C_in * C_out + C_out`` (standard, depthwise, pointwise, separable)
  and ``in_features * units + units`` for a dense layer;
- receptive fields, jumps and start offsets of a stack of layers or of a Keras model;
- ``trace_shapes``, a paper design of a network checked layer by layer.

This module is pure Python: importing it imports neither Keras, TensorFlow nor NumPy.  Only
``receptive_field(model)`` and ``trace_shapes(model)`` touch Keras: given a model, they import
``cnnlab.graph``, the one walker over Keras layer graphs (shared with ``cnnlab.counters``).
"""

from __future__ import annotations

import html
import math
import operator
from dataclasses import dataclass, replace
from fractions import Fraction

__all__ = [
    "LayerSpec",
    "ReceptiveField",
    "ShapeTrace",
    "conv_output_size",
    "conv_params",
    "conv_transpose_output_size",
    "dense_params",
    "padding_to_keep_size",
    "pool_output_size",
    "receptive_field",
    "same_padding",
    "trace_shapes",
]

_CONV_PADDINGS = ("valid", "same", "full", "causal")
_POOL_PADDINGS = ("valid", "same")
_TRANSPOSE_PADDINGS = ("valid", "same", "full")

_HINTS = {
    "n": "the input size in pixels along one axis, e.g. n=32",
    "kernel_size": "the kernel side in pixels, e.g. kernel_size=3",
    "pool_size": "the pooling window side in pixels, e.g. pool_size=2",
    "strides": "strides=1 moves the kernel one pixel at a time",
    "dilation_rate": "dilation_rate=1 is an ordinary (not dilated) kernel",
    "depth_multiplier": "depth_multiplier=1 gives one output channel per input channel",
    "in_channels": "the number of channels of the input, e.g. 3 for an RGB image",
    "filters": "the number of kernels, i.e. of output channels, e.g. filters=32",
    "units": "the number of neurons of the dense layer, e.g. units=10",
    "in_features": "the length of the flattened input, e.g. 28 * 28 = 784",
    "padding": "padding=0 adds no zeros",
    "output_padding": "output_padding=0 adds nothing",
}


# ----------------------------------------------------------------------------------------------
# Argument checking
# ----------------------------------------------------------------------------------------------


def _check_int(value, name, minimum=1):
    """Return ``value`` as an int >= minimum, or raise a TypeError/ValueError that teaches."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got the boolean {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(
            f"{name} must be an integer, got {value!r} ({type(value).__name__}); "
            f"{_HINTS.get(name.split('[')[0], 'pass a whole number')}"
        ) from None
    if value < minimum:
        raise ValueError(
            f"{name}={value} is not allowed: {name} must be an integer >= {minimum}; "
            f"{_HINTS.get(name.split('[')[0], 'pass a larger value')}"
        )
    return value


def _is_sequence(value):
    return isinstance(value, (tuple, list))


def _rank_of(**values):
    """Number of spatial axes given by the tuple-valued arguments, or None if all are ints."""
    rank, first = None, None
    for name, value in values.items():
        if _is_sequence(value):
            if rank is None:
                rank, first = len(value), name
                if rank == 0:
                    raise ValueError(f"{name}=() is empty; give one value per spatial axis")
            elif len(value) != rank:
                raise ValueError(
                    f"{name}={tuple(value)} has {len(value)} values but {first} has {rank}; "
                    "give one value per spatial axis (or a single int for all axes)"
                )
    return rank


def _per_axis(value, rank, name, minimum=1):
    """Broadcast an int to ``rank`` axes, or check a tuple has one value per axis."""
    if _is_sequence(value):
        if len(value) != rank:
            raise ValueError(
                f"{name}={tuple(value)} has {len(value)} values but the input has {rank} "
                "spatial axes; give one value per axis or a single int"
            )
        return tuple(_check_int(v, f"{name}[{i}]", minimum) for i, v in enumerate(value))
    return (_check_int(value, name, minimum),) * rank


def _check_pair(value, name):
    if not (_is_sequence(value) and len(value) == 2):
        raise ValueError(
            f"{name}={value!r} is not a (before, after) pair; write e.g. {name}=(1, 2)"
        )
    return (_check_int(value[0], f"{name}[0]", 0), _check_int(value[1], f"{name}[1]", 0))


def _padding_per_axis(padding, rank, allowed, name="padding"):
    """Normalise ``padding`` to one entry per axis: a lower-case string or a (before, after) pair.

    An int pads both sides of every axis.  For one spatial axis a pair is (before, after).  For
    two or more axes a tuple holds one entry per axis, each an int (both sides) or a
    (before, after) pair, as in ``keras.layers.ZeroPadding2D``.
    """
    if isinstance(padding, str):
        mode = padding.lower()
        if not allowed:
            raise ValueError(
                f"{name}={padding!r}: zero padding takes numbers of zeros, not a mode; use an "
                "int, a (before, after) pair, or one per axis, e.g. padding=((1, 1), (2, 2))"
            )
        if mode not in allowed:
            raise ValueError(
                f"{name}={padding!r} is not a padding mode; use one of "
                f"{', '.join(repr(a) for a in allowed)}, an int, or a (before, after) pair"
            )
        return (mode,) * rank
    if not _is_sequence(padding):
        p = _check_int(padding, name, 0)
        return ((p, p),) * rank
    if rank == 1:
        if len(padding) == 2 and not any(_is_sequence(v) for v in padding):
            return (_check_pair(padding, name),)
        if len(padding) == 1:
            return _padding_per_axis(padding[0], 1, allowed, f"{name}[0]")
        raise ValueError(
            f"{name}={padding!r} does not fit one spatial axis; use an int or a (before, after) "
            "pair, e.g. padding=(1, 2)"
        )
    if len(padding) != rank:
        raise ValueError(
            f"{name}={padding!r} has {len(padding)} entries but the input has {rank} spatial "
            "axes; give an int, or one int or (before, after) pair per axis, "
            "e.g. padding=((1, 1), (2, 2))"
        )
    out = []
    for i, entry in enumerate(padding):
        if _is_sequence(entry):
            out.append(_check_pair(entry, f"{name}[{i}]"))
        else:
            p = _check_int(entry, f"{name}[{i}]", 0)
            out.append((p, p))
    return tuple(out)


def _effective_kernel(kernel_size, dilation_rate):
    return (kernel_size - 1) * dilation_rate + 1


def _same_pair(n, k_eff, strides):
    """(before, after) zeros that Keras/TensorFlow add for padding='same' (extra one at the end)."""
    total = max((-(-n // strides) - 1) * strides + k_eff - n, 0)
    return total // 2, total - total // 2


def _explicit_pair(mode, n, k_eff, strides):
    """(before, after) for a padding entry that is not 'same' (or is, when n is known)."""
    if mode == "valid":
        return 0, 0
    if mode == "full":
        return k_eff - 1, k_eff - 1
    if mode == "causal":
        return k_eff - 1, 0
    if mode == "same":
        return _same_pair(n, k_eff, strides)
    return mode


def _pad_term(before, after):
    if before == after == 0:
        return ""
    if before == after:
        return f" + 2*{before}"
    return f" + {before} + {after}"


def _conv_axis(n, k, s, d, pad, strict, axis):
    """Output size along one axis; ``pad`` is a mode string or a (before, after) pair."""
    k_eff = _effective_kernel(k, d)
    where = "" if axis is None else f"axis {axis}: "
    if pad == "same":
        return -(-n // s)  # ceil(n / s): 'same' always fits, Keras pads what it needs
    before, after = _explicit_pair(pad, n, k_eff, s)
    padded = n + before + after
    if padded < k_eff:
        dilated = f" (dilated to {k_eff})" if d > 1 else ""
        padded_text = f"n={n}" if before == after == 0 else f"n={n} plus {before + after} zeros"
        raise ValueError(
            f"{where}kernel_size={k}{dilated} is larger than the padded input of {padded} pixels "
            f"({padded_text}); use a smaller kernel_size, more padding (padding='same' keeps "
            "the size) or a larger input"
        )
    steps, remainder = divmod(padded - k_eff, s)
    if strict and remainder:
        exact = (padded - k_eff) / s + 1
        raise ValueError(
            f"{where}stride {s} does not fit: ({n} - {k_eff}{_pad_term(before, after)}) / {s} "
            f"+ 1 = {exact:.2f} is not an integer; pad the input or change the stride"
        )
    return steps + 1


def _sliding_sizes(n, kernel_size, strides, padding, dilation_rate, strict, allowed, names):
    """Shared body of conv_output_size and pool_output_size."""
    rank = _rank_of(**{names[0]: n, names[1]: kernel_size, "strides": strides,
                       "dilation_rate": dilation_rate})
    scalar = rank is None
    if scalar:
        rank = 1
        if _is_sequence(padding) and len(padding) == 2 and _is_sequence(padding[0]):
            raise ValueError(
                f"padding={padding!r} has one entry per axis but n={n} is a single size; "
                "pass tuples for n and kernel_size, or a single (before, after) pair"
            )
    ns = _per_axis(n, rank, names[0])
    ks = _per_axis(kernel_size, rank, names[1])
    ss = _per_axis(strides, rank, "strides")
    ds = _per_axis(dilation_rate, rank, "dilation_rate")
    pads = _padding_per_axis(padding, rank, allowed)
    sizes = tuple(
        _conv_axis(ns[i], ks[i], ss[i], ds[i], pads[i], strict, None if scalar else i)
        for i in range(rank)
    )
    return sizes[0] if scalar else sizes


# ----------------------------------------------------------------------------------------------
# Output sizes and padding
# ----------------------------------------------------------------------------------------------


def conv_output_size(n, kernel_size, strides=1, padding="valid", dilation_rate=1, strict=False):
    """Output size of a convolution: the lecture's ``W' = (W - K + 2P) / S + 1``, as Keras does it.

    Args:
        n: input size in pixels (an int), or a tuple with one size per spatial axis.
        kernel_size: kernel side K (int or tuple).  A dilated kernel covers
            ``K_eff = (K - 1) * dilation_rate + 1`` pixels.
        strides: step S of the kernel (int or tuple).
        padding: ``"valid"`` (no zeros: ``floor((n - K_eff) / S) + 1``), ``"same"`` (Keras pads
            what is needed so that the output is ``ceil(n / S)``), ``"full"`` (``K_eff - 1``
            zeros on both sides), ``"causal"`` (``K_eff - 1`` zeros before, as Keras Conv1D),
            an int P (P zeros on both sides), or a ``(before, after)`` pair.  With tuple sizes,
            a tuple gives one int or pair per axis, as in ``keras.layers.ZeroPadding2D``.
        dilation_rate: spacing D between kernel taps (int or tuple).
        strict: if True, refuse a stride that does not fit, i.e. when ``(n - K_eff + 2P) / S``
            is not an integer and Keras would silently drop the last pixels.

    Returns:
        The output size, an int (or a tuple when any size argument is a tuple).

    >>> conv_output_size(7, 3, strides=2)
    3
    >>> conv_output_size((32, 32), 5, padding=2)
    (32, 32)

    Used in: labs/02_conv_arithmetic
    """
    return _sliding_sizes(n, kernel_size, strides, padding, dilation_rate, strict,
                          _CONV_PADDINGS, ("n", "kernel_size"))


def pool_output_size(n, pool_size, strides=None, padding="valid", strict=False):
    """Output size of a pooling layer, ``W' = (W - K) / S + 1`` (lecture's pooling facts).

    As in Keras, ``strides`` defaults to ``pool_size`` (non-overlapping windows), so
    ``pool_output_size(224, 2)`` is 112.  ``padding`` is ``"valid"``, ``"same"`` (output
    ``ceil(n / S)``), an int or a (before, after) pair; ``strict`` works as in
    ``conv_output_size``.  Sizes may be tuples, one value per spatial axis.

    Used in: no lab notebook directly; the reference of Lab 03's ``pooled_size``
    """
    if strides is None:
        strides = pool_size
    return _sliding_sizes(n, pool_size, strides, padding, 1, strict, _POOL_PADDINGS,
                          ("n", "pool_size"))


def same_padding(n, kernel_size, strides=1, dilation_rate=1):
    """Zeros ``(before, after)`` that ``padding="same"`` adds, as Keras/TensorFlow pads.

    The total is ``max((ceil(n / S) - 1) * S + K_eff - n, 0)``; ``before = total // 2`` and the
    extra zero of an odd total goes at the end (bottom/right).  For an odd kernel and stride 1
    this is the lecture's ``P = (K - 1) / 2`` on both sides.  With tuple sizes the result is a
    tuple of pairs, one per spatial axis.

    >>> same_padding(5, 3)
    (1, 1)
    >>> same_padding(224, 4)
    (1, 2)

    Used in: labs/02_conv_arithmetic
    """
    rank = _rank_of(n=n, kernel_size=kernel_size, strides=strides, dilation_rate=dilation_rate)
    scalar = rank is None
    rank = 1 if scalar else rank
    ns = _per_axis(n, rank, "n")
    ks = _per_axis(kernel_size, rank, "kernel_size")
    ss = _per_axis(strides, rank, "strides")
    ds = _per_axis(dilation_rate, rank, "dilation_rate")
    pairs = tuple(
        _same_pair(ns[i], _effective_kernel(ks[i], ds[i]), ss[i]) for i in range(rank)
    )
    return pairs[0] if scalar else pairs


def padding_to_keep_size(kernel_size, dilation_rate=1):
    """Zeros per side that keep the size with stride 1: the lecture's ``P = (K - 1) / 2``.

    Only odd (effective) kernels can keep the size with the same padding on both sides; an
    even kernel raises ``ValueError`` because it would need asymmetric padding, which is what
    ``padding="same"`` does (see ``same_padding``).  ``kernel_size`` may be a tuple.

    >>> padding_to_keep_size(5)
    2

    Used in: labs/02_conv_arithmetic
    """
    if _is_sequence(kernel_size) or _is_sequence(dilation_rate):
        rank = _rank_of(kernel_size=kernel_size, dilation_rate=dilation_rate)
        ks = _per_axis(kernel_size, rank, "kernel_size")
        ds = _per_axis(dilation_rate, rank, "dilation_rate")
        return tuple(padding_to_keep_size(k, d) for k, d in zip(ks, ds))
    k = _check_int(kernel_size, "kernel_size")
    d = _check_int(dilation_rate, "dilation_rate")
    k_eff = _effective_kernel(k, d)
    if k_eff % 2 == 0:
        dilated = f" (dilated to {k_eff})" if d > 1 else ""
        raise ValueError(
            f"kernel_size={k}{dilated} is even: keeping the size needs K - 1 = {k_eff - 1} "
            f"zeros in total, which cannot be split evenly between both sides "
            f"(P = (K - 1) / 2 = {(k_eff - 1) / 2}); use an odd kernel_size, or "
            f"padding='same', which pads asymmetrically ({(k_eff - 1) // 2} before, "
            f"{k_eff // 2} after)"
        )
    return (k_eff - 1) // 2


def _transpose_axis(n, k, s, pad, output_padding, d, axis):
    k_eff = _effective_kernel(k, d)
    where = "" if axis is None else f"axis {axis}: "
    if output_padding is not None and output_padding >= s:
        raise ValueError(
            f"{where}output_padding={output_padding} must be smaller than strides={s} (as "
            "Keras requires): it only chooses among the input sizes that a stride-"
            f"{s} convolution maps to the same output; use output_padding in 0..{s - 1}"
        )
    if pad == "valid":
        extra = max(k_eff, s) - k_eff if output_padding is None else output_padding
        size = (n - 1) * s + k_eff + extra
    elif pad == "same":
        if output_padding is None:
            size = n * s
        else:
            size = (n - 1) * s + k_eff % 2 + output_padding
    else:
        before, after = _explicit_pair(pad, n, k_eff, s)
        size = (n - 1) * s + k_eff - before - after + (output_padding or 0)
    if size < 1:
        raise ValueError(
            f"{where}the transposed convolution would give {size} pixels (n={n}, "
            f"kernel_size={k}, strides={s}, padding={pad!r}); use less padding or a larger "
            "output_padding"
        )
    return size


def conv_transpose_output_size(n, kernel_size, strides=1, padding="valid", output_padding=None,
                               dilation_rate=1):
    """Output size of a transposed convolution ("deconvolution"), as ``Conv2DTranspose`` does.

    A transposed convolution goes back from the output size of a convolution to its input
    size.  With ``K_eff = (K - 1) * D + 1`` and ``a = output_padding``:

    - ``"valid"``: ``(n - 1) * S + K_eff + a``; without ``a``, Keras uses
      ``max(K_eff, S) - K_eff`` so the output is ``(n - 1) * S + max(K_eff, S)``;
    - ``"same"``: ``n * S`` without ``a``, else ``(n - 1) * S + K_eff % 2 + a``;
    - an int P or a (before, after) pair is the padding of the *forward* convolution
      (Dumoulin & Visin's convention, as PyTorch's ConvTranspose): ``(n - 1) * S + K_eff - 2P
      + a``; ``"full"`` is ``P = K_eff - 1``.

    ``output_padding`` must be smaller than ``strides`` (Keras raises otherwise).  Sizes may be
    tuples, one value per spatial axis.  An output of 0 pixels raises ``ValueError``.  Note: for
    an even kernel with ``padding="same"`` and ``output_padding=0``, Keras reports
    ``(n - 1) * S`` (as returned here) but the TensorFlow backend refuses to run that layer.

    >>> conv_transpose_output_size(2, 3)
    4
    >>> conv_transpose_output_size(3, 3, strides=2, padding=1, output_padding=1)
    6

    Used in: labs/02_conv_arithmetic
    """
    rank = _rank_of(n=n, kernel_size=kernel_size, strides=strides, dilation_rate=dilation_rate,
                    output_padding=output_padding)
    scalar = rank is None
    rank = 1 if scalar else rank
    ns = _per_axis(n, rank, "n")
    ks = _per_axis(kernel_size, rank, "kernel_size")
    ss = _per_axis(strides, rank, "strides")
    ds = _per_axis(dilation_rate, rank, "dilation_rate")
    ops_ = (None,) * rank if output_padding is None else _per_axis(
        output_padding, rank, "output_padding", 0)
    pads = _padding_per_axis(padding, rank, _TRANSPOSE_PADDINGS)
    sizes = tuple(
        _transpose_axis(ns[i], ks[i], ss[i], pads[i], ops_[i], ds[i], None if scalar else i)
        for i in range(rank)
    )
    return sizes[0] if scalar else sizes


# ----------------------------------------------------------------------------------------------
# Parameter counts
# ----------------------------------------------------------------------------------------------

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
    rank = _check_int(rank, "rank")
    if _is_sequence(kernel_size):
        kernels = tuple(_check_int(k, f"kernel_size[{i}]") for i, k in enumerate(kernel_size))
        if not kernels:
            raise ValueError("kernel_size=() is empty; give one size per spatial axis")
    else:
        kernels = (_check_int(kernel_size, "kernel_size"),) * rank
    taps = math.prod(kernels)
    c_in = _check_int(in_channels, "in_channels")
    m = _check_int(depth_multiplier, "depth_multiplier")
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
        raise ValueError(f"filters is required for kind={kind!r}; {_HINTS['filters']}")
    c_out = _check_int(filters, "filters")
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
    if _is_sequence(in_features):
        if not in_features:
            raise ValueError("in_features=() is empty; give the input shape, e.g. (28, 28, 1)")
        features = math.prod(
            _check_int(v, f"in_features[{i}]") for i, v in enumerate(in_features))
    else:
        features = _check_int(in_features, "in_features")
    units = _check_int(units, "units")
    return features * units + (units if use_bias else 0)


# ----------------------------------------------------------------------------------------------
# Layer specifications (for receptive_field and trace_shapes)
# ----------------------------------------------------------------------------------------------

_KIND_ALIASES = {
    "conv": "conv", "conv1d": "conv", "conv2d": "conv", "conv3d": "conv", "standard": "conv",
    "depthwise": "depthwise_conv", "depthwise_conv": "depthwise_conv",
    "separable": "separable_conv", "separable_conv": "separable_conv",
    "conv_transpose": "conv_transpose", "transpose": "conv_transpose",
    "deconv": "conv_transpose",
    "pool": "max_pool", "max_pool": "max_pool", "maxpool": "max_pool",
    "max_pooling": "max_pool",
    "avg_pool": "avg_pool", "avgpool": "avg_pool", "average_pool": "avg_pool",
    "average_pooling": "avg_pool",
    "global_pool": "global_avg_pool", "global_avg_pool": "global_avg_pool",
    "global_average_pool": "global_avg_pool", "global_max_pool": "global_max_pool",
    "flatten": "flatten",
    "dense": "dense",
    "zero_padding": "zero_padding", "pad": "zero_padding",
    "batch_norm": "batch_norm", "batchnorm": "batch_norm", "batch_normalization": "batch_norm",
    "dropout": "dropout",
    "activation": "activation", "relu": "activation",
}
_SLIDING = ("conv", "depthwise_conv", "separable_conv", "max_pool", "avg_pool")
_POOLS = ("max_pool", "avg_pool")
_WHOLE = ("flatten", "global_avg_pool", "global_max_pool")
_SPEC_KEYS = ("kind", "kernel_size", "pool_size", "strides", "padding", "dilation_rate", "name",
              "filters", "units", "use_bias", "depth_multiplier", "output_padding")


@dataclass(frozen=True)
class LayerSpec:
    """One layer of a network designed on paper, for ``receptive_field`` and ``trace_shapes``.

    ``kind`` is ``"conv"``, ``"depthwise_conv"``, ``"separable_conv"``, ``"conv_transpose"``,
    ``"max_pool"`` (alias ``"pool"``), ``"avg_pool"``, ``"global_avg_pool"``,
    ``"global_max_pool"``, ``"flatten"``, ``"dense"``, ``"zero_padding"``, ``"batch_norm"``,
    ``"dropout"`` or ``"activation"``.  Geometry arguments mirror Keras; ``strides=None``
    means 1 for convolutions and ``kernel_size`` (the pool size) for pooling.  A plain dict
    with the same keys (``pool_size`` accepted for pooling) or a kind string such as
    ``"flatten"`` works wherever a ``LayerSpec`` does.

    Used in: no lab notebook directly; ``receptive_field`` and ``trace_shapes`` build them
    """

    kernel_size: int | tuple = 1
    strides: int | tuple | None = None
    padding: str | int | tuple = "valid"
    dilation_rate: int | tuple = 1
    name: str | None = None
    kind: str = "conv"
    filters: int | None = None
    units: int | None = None
    use_bias: bool = True
    depth_multiplier: int = 1
    output_padding: int | tuple | None = None


def _to_spec(spec, index):
    """Turn a LayerSpec, dict or kind string into a LayerSpec with a canonical kind and a name."""
    if isinstance(spec, str):
        spec = LayerSpec(kind=spec)
    elif isinstance(spec, dict):
        unknown = sorted(set(spec) - set(_SPEC_KEYS))
        if unknown:
            raise ValueError(
                f"layer {index}: unknown key(s) {unknown} in {spec!r}; the keys are "
                f"{', '.join(_SPEC_KEYS)}"
            )
        values = dict(spec)
        if "pool_size" in values:
            if "kernel_size" in values:
                raise ValueError(
                    f"layer {index}: give pool_size or kernel_size, not both, in {spec!r}")
            values["kernel_size"] = values.pop("pool_size")
        kind = values.pop("kind", "conv")
        spec = LayerSpec(kind=kind, **values)
    elif not isinstance(spec, LayerSpec):
        raise TypeError(
            f"layer {index}: {spec!r} is not a layer spec; use a dict such as "
            "{'kind': 'conv', 'filters': 32, 'kernel_size': 3}, a LayerSpec, or 'flatten'"
        )
    kind = _KIND_ALIASES.get(str(spec.kind).lower())
    if kind is None:
        raise ValueError(
            f"layer {index}: kind={spec.kind!r} is unknown; use one of "
            f"{', '.join(sorted(set(_KIND_ALIASES.values())))}"
        )
    strides = spec.strides
    if strides is None:
        strides = spec.kernel_size if kind in _POOLS else 1
    return replace(spec, kind=kind, strides=strides, name=spec.name or f"{kind}_{index}")


# ----------------------------------------------------------------------------------------------
# Receptive fields
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    """Receptive field state in input pixels (exact fractions): size, jump, start, whole.

    ``unknown`` names the layer after which the field could not be followed (a layer
    without a receptive-field rule); it stays unknown until a layer that sees the whole
    input (Flatten, global pooling), which is known whatever came before.
    """

    size: tuple
    jump: tuple
    start: tuple
    whole: bool = False
    unknown: str | None = None

    @classmethod
    def at_input(cls, rank):
        one, zero = (Fraction(1),) * rank, (Fraction(0),) * rank
        return cls(one, one, zero)

    @property
    def settled(self):
        """True when no layer can change the field any more: whole input, or unknown."""
        return self.whole or self.unknown is not None

    def key(self):
        return (self.whole, math.prod(self.size) if self.size else 0, self.size)

    def slide(self, kernels, strides, dilations, befores):
        """Forward recurrence: r += (K_eff - 1) j; start += ((K_eff - 1) / 2 - pad) j; j *= S."""
        if self.settled:
            return self
        size, jump, start = [], [], []
        for r, j, x, k, s, d, b in zip(self.size, self.jump, self.start, kernels, strides,
                                       dilations, befores):
            k_eff = _effective_kernel(k, d)
            size.append(r + (k_eff - 1) * j)
            start.append(x + (Fraction(k_eff - 1, 2) - b) * j)
            jump.append(j * s)
        return _Field(tuple(size), tuple(jump), tuple(start))

    def slide_transposed(self, kernels, strides, dilations, left_pads):
        """Transposed conv: output y reads inputs x with x*S in [y - L, y - L + K_eff - 1]."""
        if self.settled:
            return self
        size, jump, start = [], [], []
        for r, j, x, k, s, d, left in zip(self.size, self.jump, self.start, kernels, strides,
                                          dilations, left_pads):
            k_eff = _effective_kernel(k, d)
            size.append(r + ((k_eff - 1) // s) * j)
            start.append(x + (Fraction(k_eff - 1, 2) - left) / s * j)
            jump.append(j / s)
        return _Field(tuple(size), tuple(jump), tuple(start))

    def shift(self, befores):
        """Zero padding (before > 0) or cropping (before < 0): the first output moves."""
        if self.settled:
            return self
        start = tuple(x - b * j for x, b, j in zip(self.start, befores, self.jump))
        return _Field(self.size, self.jump, start)

    def upsample(self, factors):
        if self.settled:
            return self
        return _Field(self.size, tuple(j / f for j, f in zip(self.jump, factors)), self.start)

    def as_whole(self):
        return _Field(self.size, self.jump, self.start, True)

    def as_unknown(self, cause):
        return self if self.settled else replace(self, unknown=cause)


def _largest(fields):
    """The largest of several fields (of the calls of one layer): whole, else unknown, else
    the one with the most pixels."""
    for field in fields:
        if field.whole:
            return field
    for field in fields:
        if field.unknown is not None:
            return field
    return max(fields, key=_Field.key)


def _hull(fields):
    """Field of a unit that reads units with these fields (a merge such as Add, Concatenate):
    per axis, the smallest interval of input pixels holding all of theirs."""
    for field in fields:
        if field.whole:
            return field
    for field in fields:
        if field.unknown is not None:
            return field
    if len(fields) == 1:
        return fields[0]
    if len({field.jump for field in fields}) > 1:
        jumps = ", ".join(_format_axes([_plain(j) for j in f.jump], lambda j: f"{j:g}")
                          for f in fields)
        raise _NoRule(f"it merges inputs whose neighbouring units are different distances "
                      f"apart in the input (jumps {jumps}), so one unit's field depends on "
                      "its position")
    size, start = [], []
    for axis in range(len(fields[0].size)):
        low = min(f.start[axis] - (f.size[axis] - 1) / 2 for f in fields)
        high = max(f.start[axis] + (f.size[axis] - 1) / 2 for f in fields)
        size.append(high - low + 1)
        start.append((low + high) / 2)
    return _Field(tuple(size), fields[0].jump, tuple(start))


class _NoRule(Exception):
    """A layer (or a setting of it) that cnnlab has no receptive-field rule for."""


def _plain(value):
    value = Fraction(value)
    return int(value) if value.denominator == 1 else float(value)


def _row(name, field, input_sizes):
    """The public row dict of a field; 'whole input' rows report the input size."""
    rank = len(field.size)
    if field.unknown is not None:
        return {"name": name, "size": None, "jump": None, "start": None,
                "whole_input": False, "unknown": field.unknown}
    if field.whole:
        sizes = tuple(input_sizes) if input_sizes is not None else (None,) * rank
        return {
            "name": name,
            "size": sizes,
            "jump": (None,) * rank,
            "start": tuple(None if n is None else (n - 1) / 2 for n in sizes),
            "whole_input": True,
        }
    return {
        "name": name,
        "size": tuple(math.ceil(r) for r in field.size),
        "jump": tuple(_plain(j) for j in field.jump),
        "start": tuple(float(x) for x in field.start),
        "whole_input": False,
    }


def _format_axes(values, fmt=str):
    if values is None:
        return "-"
    return "x".join("?" if v is None else fmt(v) for v in values)


def _format_start(values):
    if not values:
        return "-"
    text = ", ".join("?" if v is None else f"{v:g}" for v in values)
    return f"({text})" if len(values) > 1 else text


def _text_table(headers, rows, right=()):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]

    def line(cells):
        parts = [str(c).rjust(w) if i in right else str(c).ljust(w)
                 for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts).rstrip()

    rule = "-" * len(line(["-" * w for w in widths]))
    return "\n".join([line(headers), rule] + [line(r) for r in rows])


def _html_table(headers, rows, caption=None, right=()):
    style = ' style="text-align:right"'
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(
            f"<td{style if i in right else ''}>{html.escape(str(c))}</td>"
            for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class _LayerTable:
    """Rows of per-layer dicts with a ``name``: lookup by name, length and iteration."""

    def __init__(self, rows):
        self.rows = list(rows)

    def row(self, name):
        for r in self.rows:
            if r["name"] == name:
                return r
        names = ", ".join(r["name"] for r in self.rows)
        raise KeyError(f"no layer named {name!r}; the layers are: {names}")

    def __len__(self):
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)


class ReceptiveField(_LayerTable):
    """Receptive field of every layer: what ``receptive_field`` returns.

    ``rows`` is a list of dicts with keys ``name``, ``size`` (field side in input pixels, one
    int per spatial axis), ``jump`` (distance in input pixels between neighbouring outputs),
    ``start`` (input coordinate of the centre of the first output's field, pixel 0 being at
    0.0; negative when the field starts in the zero padding) and ``whole_input`` (True after
    Flatten or global pooling: the unit sees the whole input; ``size`` is then the input size,
    None where unknown, and ``jump`` is None).  ``size`` is the largest field over all rows
    (per axis).  ``row(name)`` looks one row up.

    Used in: no lab notebook directly; ``receptive_field`` returns it
    """

    @property
    def size(self):
        sizes = [r["size"] for r in self.rows if r["size"] and None not in r["size"]]
        if not sizes:
            return None
        return tuple(max(axis) for axis in zip(*sizes))

    def _cells(self):
        cells = []
        for r in self.rows:
            if r["whole_input"]:
                cells.append([r["name"], f"whole input ({_format_axes(r['size'])})", "-", "-"])
            else:
                cells.append([r["name"], _format_axes(r["size"]),
                              _format_axes(r["jump"], lambda j: f"{j:g}"),
                              _format_start(r["start"])])
        return cells

    _HEADERS = ("layer", "receptive field", "jump", "start")

    def __str__(self):
        return _text_table(self._HEADERS, self._cells())

    def __repr__(self):
        return f"ReceptiveField(size={self.size}, layers={len(self.rows)})"

    def _repr_html_(self):
        return _html_table(self._HEADERS, self._cells(), caption="Receptive fields")


def _spec_rank(specs, input_shape):
    if input_shape is not None:
        return len(input_shape) - 1
    for spec in specs:
        for value in (spec.kernel_size, spec.strides, spec.dilation_rate):
            if _is_sequence(value):
                return len(value)
        padding = spec.padding
        if spec.kind == "zero_padding" and _is_sequence(padding) and padding and (
                _is_sequence(padding[0]) or len(padding) != 2):
            return len(padding)
    return 1


def _check_input_shape(input_shape, specs=()):
    if input_shape is None:
        return None
    if not _is_sequence(input_shape) or len(input_shape) < 1:
        raise ValueError(
            f"input_shape={input_shape!r} must be a tuple (spatial sizes..., channels) as in "
            "Keras, e.g. input_shape=(32, 32, 3)"
        )
    shape = tuple(_check_int(v, f"input_shape[{i}]") for i, v in enumerate(input_shape))
    rank = len(shape) - 1
    for spec in specs:
        for value in (spec.kernel_size, spec.strides, spec.dilation_rate):
            if _is_sequence(value) and len(value) != rank:
                hint = (" (input_shape includes the channels axis, e.g. (32, 32, 3))"
                        if len(value) == len(shape) else "")
                raise ValueError(
                    f"layer {spec.name!r} has {len(value)} spatial axes but "
                    f"input_shape={shape} has {rank}{hint}"
                )
    return shape


def _walk_specs(layers, input_shape):
    """Yield (spec, spatial sizes after the layer or None, field) for a list of specs."""
    if isinstance(layers, (str, dict, LayerSpec)) or not _is_sequence(layers):
        raise TypeError(
            f"layers must be a list of layer specs (dicts, LayerSpec or kind strings), got "
            f"{type(layers).__name__}"
        )
    specs = [_to_spec(s, i) for i, s in enumerate(layers, start=1)]
    shape = _check_input_shape(input_shape, specs)
    rank = _spec_rank(specs, shape)
    sizes = None if shape is None else shape[:-1]
    field = _Field.at_input(rank)
    for spec in specs:
        kind = spec.kind
        try:
            if kind in _WHOLE:
                field = field.as_whole()
                sizes = None
            elif kind in _SLIDING or kind == "conv_transpose" or kind == "zero_padding":
                if field.whole:
                    raise ValueError(
                        f"a {kind} layer needs a spatial input, but the input was already "
                        "flattened or globally pooled; put it before flatten/global pooling"
                    )
                field, sizes = _spec_step(spec, field, sizes, rank)
        except ValueError as error:
            raise ValueError(f"layer {spec.name!r} ({kind}): {error}") from None
        yield spec, sizes, field


def _spec_step(spec, field, sizes, rank):
    """Field and spatial sizes after one spatial layer given as a spec."""
    kind = spec.kind
    if kind == "zero_padding":
        pads = _padding_per_axis(spec.padding, rank, ())
        new_sizes = None if sizes is None else tuple(
            n + b + a for n, (b, a) in zip(sizes, pads))
        return field.shift([b for b, _ in pads]), new_sizes
    ks = _per_axis(spec.kernel_size, rank, "pool_size" if kind in _POOLS else "kernel_size")
    ss = _per_axis(spec.strides, rank, "strides")
    ds = _per_axis(spec.dilation_rate, rank, "dilation_rate")
    if kind in _POOLS and any(d != 1 for d in ds):
        raise ValueError("pooling has no dilation_rate; remove it")
    allowed = _POOL_PADDINGS if kind in _POOLS else (
        _TRANSPOSE_PADDINGS if kind == "conv_transpose" else _CONV_PADDINGS)
    pads = _padding_per_axis(spec.padding, rank, allowed)
    if kind == "conv_transpose":
        ops_ = (None,) * rank if spec.output_padding is None else _per_axis(
            spec.output_padding, rank, "output_padding", 0)
        lefts = [_transpose_left_pad(p, k, s, d, o)
                 for p, k, s, d, o in zip(pads, ks, ss, ds, ops_)]
        new_sizes = None if sizes is None else tuple(
            _transpose_axis(sizes[i], ks[i], ss[i], pads[i], ops_[i], ds[i],
                            None if rank == 1 else i)
            for i in range(rank))
        return field.slide_transposed(ks, ss, ds, lefts), new_sizes
    befores = []
    for i in range(rank):
        k_eff = _effective_kernel(ks[i], ds[i])
        if pads[i] == "same":
            if sizes is None:  # unknown size: assume it is a multiple of the stride
                befores.append(max(k_eff - ss[i], 0) // 2)
            else:
                befores.append(_same_pair(sizes[i], k_eff, ss[i])[0])
        else:
            befores.append(_explicit_pair(pads[i], 0, k_eff, ss[i])[0])
    new_sizes = None if sizes is None else tuple(
        _conv_axis(sizes[i], ks[i], ss[i], ds[i], pads[i], False, None if rank == 1 else i)
        for i in range(rank))
    return field.slide(ks, ss, ds, befores), new_sizes


def _transpose_left_pad(pad, k, s, d, output_padding):
    """Zeros before the stride-stretched input of a transposed conv (Keras' JAX convention)."""
    k_eff = _effective_kernel(k, d)
    if pad == "valid":
        return k_eff - 1
    if pad == "same":
        total = s + k_eff - 2 if output_padding is None else k_eff + k_eff % 2 - 2 + output_padding
        return min(total // 2 + total % 2, k_eff - 1)
    before = _explicit_pair(pad, 0, k_eff, s)[0]
    return k_eff - 1 - before


def receptive_field(layers, input_shape=None):
    """Receptive field, jump and start of every layer of a stack or of a Keras model.

    The lecture's "the deeper, the larger the receptive field of a unit", computed with the
    forward recurrence (``K_eff = (K - 1) * D + 1``, pad = zeros before the input)::

        r_out = r_in + (K_eff - 1) * j_in        # field side in input pixels
        j_out = j_in * S                          # jump: input pixels between two outputs
        start_out = start_in + ((K_eff - 1) / 2 - pad) * j_in

    ``start`` is the input coordinate of the centre of the first output's field (pixel 0 is
    at 0.0).  ``padding="same"`` pads as Keras/TensorFlow do (see ``same_padding``); when the
    input size is unknown and the stride is > 1, the size is assumed to be a multiple of the
    stride.

    Args:
        layers: a list of layer specs (dicts, ``LayerSpec`` or kind strings, see ``LayerSpec``)
            or a built Keras model (Sequential or Functional).
        input_shape: for a list of specs, the input shape as in Keras, spatial sizes then
            channels (``(224, 224, 3)``); optional, used by ``padding="same"`` with strides
            > 1.  Without it, int kernel sizes mean one spatial axis (fields are 1-tuples).

    Keras layers: Conv1D/2D/3D, DepthwiseConv, SeparableConv and pooling slide; ZeroPadding
    and Cropping move ``start``; UpSampling (nearest neighbour) divides the jump; Flatten,
    Reshape, Permute, global pooling and GroupNormalization see the whole input
    (``whole_input`` rows); Dense, activations, BatchNormalization, dropout and noise work
    pixel by pixel (field unchanged).  Where branches meet (Add, Concatenate on the channel
    axis, ...), the field is the smallest interval holding all of theirs.  cnnlab's own
    layers (``cnnlab.layers``) and any custom layer declare their geometry with a method
    ``receptive_field_step()`` (see ``cnnlab.graph``).  Any other layer raises a
    ``ValueError`` that names it and says how to fix it: nothing is silently passed through.
    After Flatten or global pooling every unit already sees the whole input, so layers there
    need no rule.  A nested model (a model used as a layer) is traversed and reported as one
    row.  Rows follow ``model.layers``, with the input layer first (field 1); a layer called
    several times reports its largest field.

    Transposed convolutions: output pixel ``y`` reads the inputs ``x`` with
    ``x * S`` in ``[y - L, y - L + K_eff - 1]`` (L = zeros before the stride-stretched input),
    so the field grows by ``floor((K_eff - 1) / S)`` input jumps (the most inputs one output
    reads), the jump is divided by S and ``start`` follows the centre of that interval.  Sizes
    that this makes fractional are rounded up to whole pixels.

    Returns:
        ReceptiveField: ``.rows`` (dicts: name, size, jump, start, whole_input), ``.size``,
        ``.row(name)``, and a printable table.

    >>> receptive_field([{"kernel_size": 3}, {"kernel_size": 3}]).size
    (5,)

    Used in: labs/02_conv_arithmetic, labs/05_architectures_and_cost
    """
    if _is_keras_model(layers):
        if input_shape is not None:
            raise ValueError("input_shape is only for a list of specs; a Keras model knows its "
                             "input shape")
        return ReceptiveField(_receptive_field_rows(_graph().trace_model(layers))[0])
    rows = []
    spatial = None if input_shape is None else tuple(input_shape)[:-1]
    for spec, _, field in _walk_specs(layers, input_shape):
        rows.append(_row(spec.name, field, spatial))
    return ReceptiveField(rows)


# ----------------------------------------------------------------------------------------------
# Keras models (Keras is only reached through cnnlab.graph, imported when a model is given)
# ----------------------------------------------------------------------------------------------


def _graph():
    from cnnlab import graph

    return graph


def _is_keras_model(value):
    return hasattr(value, "layers") and not isinstance(value, (list, tuple))


def _spatial_sizes(shape, data_format):
    if shape is None or len(shape) < 3:
        return None
    dims = shape[2:] if data_format == "channels_first" else shape[1:-1]
    return tuple(dims)


def _keras_pairs(value, rank):
    """Keras ZeroPadding/Cropping attribute -> ((before, after), ...) or None if not matching."""
    if not _is_sequence(value):
        return ((value, value),) * rank
    if rank == 1 and len(value) == 2 and not _is_sequence(value[0]):
        return (tuple(value),)
    if len(value) != rank:
        return None
    return tuple(tuple(v) if _is_sequence(v) else (v, v) for v in value)


def _axes_of(value, ndim):
    values = tuple(value) if _is_sequence(value) else (value,)
    return {v % ndim for v in values}


def _channel_axis(ndim, data_format):
    return 1 if data_format == "channels_first" and ndim > 2 else ndim - 1


def _sliding_field(layer, field, input_shape, rank):
    """Field after a Keras convolution or local pooling layer."""
    kernel = getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None)
    kernels = tuple(kernel) if _is_sequence(kernel) else (kernel,)
    if len(kernels) != rank:
        raise _NoRule(f"it slides over {len(kernels)} spatial axes but the model's input has "
                      f"{rank}")
    strides = _per_axis(tuple(layer.strides), rank, "strides")
    dilations = _per_axis(tuple(getattr(layer, "dilation_rate", None) or (1,) * rank), rank,
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
        factors = tuple(size) if _is_sequence(size) else (size,) * rank
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


def _receptive_field_rows(trace, expand_nested=False, strict=True):
    """Rows (dicts as in ReceptiveField) of the layers of a traced model, in model order, and
    {layer name: why its field is unknown}.  Used by cnnlab.counters for its RF column."""
    fields, unknown = _trace_fields(trace, strict)
    sizes = _trace_geometry(trace)[2]
    rows = []
    for name, _, calls in trace.rows(expand_nested):
        if calls:
            rows.append(_row(name, _largest([fields[call.index] for call in calls]), sizes))
    return rows, unknown


# ----------------------------------------------------------------------------------------------
# Paper design: shapes, parameters and receptive fields layer by layer
# ----------------------------------------------------------------------------------------------


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
        table = _text_table(self._HEADERS, self._cells(), right=(3,))
        return f"{table}\nTotal params: {self.total_params:,}"

    def __repr__(self):
        return (f"ShapeTrace(input_shape={self.input_shape}, output_shape={self.output_shape}, "
                f"total_params={self.total_params})")

    def _repr_html_(self):
        caption = f"Total params: {self.total_params:,}"
        return _html_table(self._HEADERS, self._cells(), caption=caption, right=(3,))


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
    if _is_keras_model(layers):
        return _model_shape_trace(layers, input_shape)
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


def _model_shape_trace(model, input_shape):
    """trace_shapes of a Keras model: one row per layer of ``model.layers``."""
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


def _spec_shape_params(spec, shape, sizes):
    """(output shape, parameter count) of one spec given the input shape (channels last)."""
    kind, channels = spec.kind, shape[-1]
    rank = len(shape) - 1
    if kind == "conv":
        filters = _require(spec.filters, "filters")
        return sizes + (filters,), conv_params(spec.kernel_size, channels, filters,
                                               spec.use_bias, "standard", rank=rank)
    if kind == "depthwise_conv":
        out = channels * _check_int(spec.depth_multiplier, "depth_multiplier")
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
        raise ValueError(f"{name} is missing; {_HINTS[name]}")
    return _check_int(value, name)
