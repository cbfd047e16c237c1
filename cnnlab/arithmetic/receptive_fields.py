"""Receptive fields of a stack of layers designed on paper: ``LayerSpec`` and the engine.

The lecture's "the deeper, the larger the receptive field of a unit", with the forward
recurrence ``r_out = r_in + (K_eff - 1) * j_in``, ``j_out = j_in * S`` and the start offset
of the first unit's field.  ``receptive_field(specs)`` follows a list of ``LayerSpec`` (or
dicts, or kind strings) layer by layer; given a Keras model it hands over to
``cnnlab.arithmetic.keras_adapter``, which feeds the same engine (``_Field``) one Keras layer
at a time.  Lab 02 (and Labs 05, 10, 11 on real models) read the tables it returns.

Pure Python: the Keras adapter is imported only when a model is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction

from cnnlab._checks import integer, is_sequence, per_axis
from cnnlab._tables import html_table, text_table
from cnnlab.arithmetic.sizes import (
    _CONV_PADDINGS,
    _POOL_PADDINGS,
    _TRANSPOSE_PADDINGS,
    _conv_axis,
    _effective_kernel,
    _explicit_pair,
    _padding_per_axis,
    _same_pair,
    _transpose_axis,
)

__all__ = ["LayerSpec", "ReceptiveField", "receptive_field"]


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
        return text_table(self._HEADERS, self._cells())

    def __repr__(self):
        return f"ReceptiveField(size={self.size}, layers={len(self.rows)})"

    def _repr_html_(self):
        return html_table(self._HEADERS, self._cells(), caption="Receptive fields")


def _spec_rank(specs, input_shape):
    if input_shape is not None:
        return len(input_shape) - 1
    for spec in specs:
        for value in (spec.kernel_size, spec.strides, spec.dilation_rate):
            if is_sequence(value):
                return len(value)
        padding = spec.padding
        if spec.kind == "zero_padding" and is_sequence(padding) and padding and (
                is_sequence(padding[0]) or len(padding) != 2):
            return len(padding)
    return 1


def _check_input_shape(input_shape, specs=()):
    if input_shape is None:
        return None
    if not is_sequence(input_shape) or len(input_shape) < 1:
        raise ValueError(
            f"input_shape={input_shape!r} must be a tuple (spatial sizes..., channels) as in "
            "Keras, e.g. input_shape=(32, 32, 3)"
        )
    shape = tuple(integer(v, f"input_shape[{i}]") for i, v in enumerate(input_shape))
    rank = len(shape) - 1
    for spec in specs:
        for value in (spec.kernel_size, spec.strides, spec.dilation_rate):
            if is_sequence(value) and len(value) != rank:
                hint = (" (input_shape includes the channels axis, e.g. (32, 32, 3))"
                        if len(value) == len(shape) else "")
                raise ValueError(
                    f"layer {spec.name!r} has {len(value)} spatial axes but "
                    f"input_shape={shape} has {rank}{hint}"
                )
    return shape


def _walk_specs(layers, input_shape):
    """Yield (spec, spatial sizes after the layer or None, field) for a list of specs."""
    if isinstance(layers, (str, dict, LayerSpec)) or not is_sequence(layers):
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
    ks = per_axis(spec.kernel_size, rank, "pool_size" if kind in _POOLS else "kernel_size")
    ss = per_axis(spec.strides, rank, "strides")
    ds = per_axis(spec.dilation_rate, rank, "dilation_rate")
    if kind in _POOLS and any(d != 1 for d in ds):
        raise ValueError("pooling has no dilation_rate; remove it")
    allowed = _POOL_PADDINGS if kind in _POOLS else (
        _TRANSPOSE_PADDINGS if kind == "conv_transpose" else _CONV_PADDINGS)
    pads = _padding_per_axis(spec.padding, rank, allowed)
    if kind == "conv_transpose":
        ops_ = (None,) * rank if spec.output_padding is None else per_axis(
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
    from cnnlab.arithmetic import keras_adapter  # imports no Keras until a model is given

    if keras_adapter.is_keras_model(layers):
        if input_shape is not None:
            raise ValueError("input_shape is only for a list of specs; a Keras model knows its "
                             "input shape")
        return keras_adapter.model_receptive_field(layers)
    rows = []
    spatial = None if input_shape is None else tuple(input_shape)[:-1]
    for spec, _, field in _walk_specs(layers, input_shape):
        rows.append(_row(spec.name, field, spatial))
    return ReceptiveField(rows)
