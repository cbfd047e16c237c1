"""Output sizes and padding: the lecture's ``W' = (W - K + 2P) / S + 1``, as Keras computes it.

- output size of a convolution, floored as Keras does, with the effective kernel
  ``(K - 1) * D + 1`` of a dilated kernel (``conv_output_size``);
- the padding that keeps the size, ``P = (K - 1) / 2`` (``padding_to_keep_size``), and the
  asymmetric padding of ``padding="same"`` (``same_padding``);
- pooling and transposed convolution sizes (``pool_output_size``,
  ``conv_transpose_output_size``).

Lab 02 (convolution arithmetic) computes each of them by hand, then checks it here; Labs 03
and 05 reuse them.  Pure Python; arguments are checked by ``cnnlab._checks``.
"""

from __future__ import annotations

from cnnlab._checks import before_after, integer, is_sequence, per_axis

__all__ = [
    "conv_output_size",
    "conv_transpose_output_size",
    "padding_to_keep_size",
    "pool_output_size",
    "same_padding",
]


_CONV_PADDINGS = ("valid", "same", "full", "causal")
_POOL_PADDINGS = ("valid", "same")
_TRANSPOSE_PADDINGS = ("valid", "same", "full")


def _rank_of(**values):
    """Number of spatial axes given by the tuple-valued arguments, or None if all are ints."""
    rank, first = None, None
    for name, value in values.items():
        if is_sequence(value):
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
    if not is_sequence(padding):
        p = integer(padding, name, 0)
        return ((p, p),) * rank
    if rank == 1:
        if len(padding) == 2 and not any(is_sequence(v) for v in padding):
            return (before_after(padding, name),)
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
        if is_sequence(entry):
            out.append(before_after(entry, f"{name}[{i}]"))
        else:
            p = integer(entry, f"{name}[{i}]", 0)
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
        if is_sequence(padding) and len(padding) == 2 and is_sequence(padding[0]):
            raise ValueError(
                f"padding={padding!r} has one entry per axis but n={n} is a single size; "
                "pass tuples for n and kernel_size, or a single (before, after) pair"
            )
    ns = per_axis(n, rank, names[0])
    ks = per_axis(kernel_size, rank, names[1])
    ss = per_axis(strides, rank, "strides")
    ds = per_axis(dilation_rate, rank, "dilation_rate")
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


def _window_axes(n, kernel_size, strides, dilation_rate, **others):
    """``(scalar, rank, ns, ks, ss, ds)``: the sizes of a sliding window, one int per spatial
    axis (``scalar``: every size was one int, the result is one value too).  ``others`` are
    further per-axis arguments that count for the rank (checked by their callers)."""
    rank = _rank_of(n=n, kernel_size=kernel_size, strides=strides, dilation_rate=dilation_rate,
                    **others)
    scalar = rank is None
    rank = 1 if scalar else rank
    return (scalar, rank, per_axis(n, rank, "n"), per_axis(kernel_size, rank, "kernel_size"),
            per_axis(strides, rank, "strides"), per_axis(dilation_rate, rank, "dilation_rate"))


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
    scalar, rank, ns, ks, ss, ds = _window_axes(n, kernel_size, strides, dilation_rate)
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
    if is_sequence(kernel_size) or is_sequence(dilation_rate):
        rank = _rank_of(kernel_size=kernel_size, dilation_rate=dilation_rate)
        ks = per_axis(kernel_size, rank, "kernel_size")
        ds = per_axis(dilation_rate, rank, "dilation_rate")
        return tuple(padding_to_keep_size(k, d) for k, d in zip(ks, ds))
    k = integer(kernel_size, "kernel_size")
    d = integer(dilation_rate, "dilation_rate")
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
    scalar, rank, ns, ks, ss, ds = _window_axes(n, kernel_size, strides, dilation_rate,
                                                output_padding=output_padding)
    ops_ = (None,) * rank if output_padding is None else per_axis(
        output_padding, rank, "output_padding", 0)
    pads = _padding_per_axis(padding, rank, _TRANSPOSE_PADDINGS)
    sizes = tuple(
        _transpose_axis(ns[i], ks[i], ss[i], pads[i], ops_[i], ds[i], None if scalar else i)
        for i in range(rank)
    )
    return sizes[0] if scalar else sizes
