"""Argument checks shared by the whole package: one rule for every size, stride and pair.

Every function that takes a kernel size, a stride, a pool size or a padding pair checks it
here, so the same mistake gets the same error everywhere (Labs 01-03 call these functions with
the lecture's numbers, and students' typos land here first):

- a value of the wrong *type* (a float, a bool, a string where an int belongs) raises
  ``TypeError``; a value of the right type but out of range (``strides=0``) raises
  ``ValueError``; a tuple of the wrong length raises ``ValueError``;
- nothing is ever converted silently: ``(2.5, 2.5)`` is an error, never ``(2, 2)``;
- every message names the argument, what was given, and what to write instead.

One name for one idea across the package (``image`` for one image, ``images`` for a batch,
``kernel`` for the weights, ``strides``, ``include_bias``, ``progress``): when an argument is
renamed to follow that rule, :func:`renamed` keeps the old keyword working for a while, with a
``DeprecationWarning`` that names the new argument.

Pure Python (and NumPy's integer types), so the pure-NumPy modules can use it.  It never
imports NumPy itself: a NumPy value can only exist once NumPy is imported, so the checks look
it up in ``sys.modules`` and ``cnnlab.arithmetic`` stays free of NumPy.
"""

from __future__ import annotations

import functools
import operator
import sys
import warnings

__all__ = ["HINTS", "integer", "is_sequence", "per_axis", "pair", "before_after", "number_pair",
           "choice", "renamed"]

#: What each argument means, appended to its error message.
HINTS = {
    "input_size": "e.g. input_size=5 or input_size=(5, 7)",
    "kernel_size": "e.g. kernel_size=3",
    "pool_size": "e.g. pool_size=2 or pool_size=(2, 2)",
    "strides": "strides=1 moves the kernel one pixel at a time, 2 skips every other pixel",
    "dilation_rate": "dilation_rate=1 is an ordinary (not dilated) kernel",
    "in_channels": "the number of channels of the input, e.g. 3 for an RGB image",
    "filters": "the number of kernels, i.e. of output channels, e.g. filters=32",
    "units": "the number of neurons of the dense layer, e.g. units=10",
    "in_features": "the length of the flattened input, e.g. 28 * 28 = 784",
    "n": "the input size in pixels along one axis, e.g. n=32",
    "depth_multiplier": "depth_multiplier=1 gives one output channel per input channel",
    "padding": "padding=0 adds no zeros",
    "output_padding": "output_padding=0 adds nothing",
}


def _numpy():
    """The NumPy module if something imported it, else None (no NumPy value can exist)."""
    return sys.modules.get("numpy")


def _hint(name: str, fallback: str) -> str:
    return HINTS.get(name.split("[")[0], fallback)


def integer(value, name: str, minimum: int = 1) -> int:
    """``value`` as an ``int`` >= ``minimum``: ``TypeError`` unless it is an integer (a bool
    or a float is not, even ``2.0``), ``ValueError`` when it is smaller than ``minimum``."""
    np = _numpy()
    if isinstance(value, bool) or (np is not None and isinstance(value, np.bool_)):
        raise TypeError(f"{name} must be an integer, got the boolean {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(
            f"{name} must be an integer, got {value!r} ({type(value).__name__}); "
            f"{_hint(name, 'pass a whole number')}") from None
    if number < minimum:
        raise ValueError(
            f"{name}={number} is not allowed: {name} must be an integer >= {minimum}; "
            f"{_hint(name, 'pass a larger value')}")
    return int(number)


def is_sequence(value) -> bool:
    """Whether ``value`` is given per axis: a tuple, a list or a 1-D NumPy array."""
    if isinstance(value, (tuple, list)):
        return True
    np = _numpy()
    return np is not None and isinstance(value, np.ndarray) and value.ndim == 1


def per_axis(value, rank: int, name: str, minimum: int = 1) -> tuple[int, ...]:
    """``value`` as one int per spatial axis: an int is broadcast to ``rank`` axes, a sequence
    must hold exactly ``rank`` integers (each >= ``minimum``)."""
    if is_sequence(value):
        items = list(value)
        if len(items) != rank:
            raise ValueError(
                f"{name}={tuple(items)} has {len(items)} values but the input has {rank} "
                f"spatial axes; give one value per axis or a single int "
                f"({_hint(name, 'e.g. ' + name + '=2')})")
        return tuple(integer(v, f"{name}[{i}]", minimum) for i, v in enumerate(items))
    return (integer(value, name, minimum),) * rank


def pair(value, name: str, minimum: int = 1) -> tuple[int, int]:
    """``value`` as ``(rows, columns)``: one int for both, or a pair of ints >= ``minimum``."""
    return per_axis(value, 2, name, minimum)


def before_after(value, name: str) -> tuple[int, int]:
    """A ``(before, after)`` pair of ints >= 0 (zeros added on each side of one axis)."""
    if not (is_sequence(value) and len(value) == 2):
        raise ValueError(f"{name}={value!r} is not a (before, after) pair; write e.g. "
                         f"{name}=(1, 2)")
    return integer(value[0], f"{name}[0]", 0), integer(value[1], f"{name}[1]", 0)


def number_pair(value, name: str) -> tuple:
    """``value`` as ``(rows, columns)`` of real numbers, kept as given (a receptive field's
    start may be a half pixel, a ``Fraction``): one number for both, or a pair.
    ``TypeError`` for anything else, a ``ValueError`` for a sequence of the wrong length."""
    import numbers

    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return (value, value)
    if not is_sequence(value):
        raise TypeError(f"{name} must be a number or a (rows, cols) pair, got {value!r}")
    items = tuple(value)
    if len(items) != 2:
        raise ValueError(f"{name}={value!r} has {len(items)} values; give a number or a "
                         f"(rows, cols) pair")
    for item in items:
        if isinstance(item, bool) or not isinstance(item, numbers.Real):
            raise TypeError(f"{name} must be a number or a (rows, cols) pair, got {value!r}")
    return items


def choice(value, name: str, allowed) -> str:
    """``value`` lower-cased when it is one of the ``allowed`` strings (case-insensitive)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {', '.join(map(repr, allowed))}; "
                        f"got {value!r}")
    if value.lower() not in allowed:
        raise ValueError(f"{name}={value!r} is unknown: use one of "
                         f"{', '.join(repr(a) for a in allowed)}")
    return value.lower()


def renamed(**new_names):
    """Decorator: each old keyword ``old=new`` still works, as a deprecated alias of ``new``.

    ``@renamed(x="images", kernels="kernel")`` on ``conv2d(images, kernel, ...)`` lets
    ``conv2d(x=..., kernels=...)`` run as before, with a ``DeprecationWarning`` that names the
    new argument and points at the caller's line.  Giving both names is a ``TypeError``, as
    Python's own "got multiple values for argument".  Positional calls are untouched.
    """
    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            for old, new in new_names.items():
                if old not in kwargs:
                    continue
                if new in kwargs:
                    raise TypeError(f"{func.__qualname__}() got both {old}= and {new}=; "
                                    f"{old}= is the old name of {new}=, pass {new}= only")
                warnings.warn(f"{func.__qualname__}(): the argument {old}= is now called "
                              f"{new}=; write {new}=... ({old}= will be removed)",
                              DeprecationWarning, stacklevel=2)
                kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        wrapper.renamed_arguments = dict(new_names)
        return wrapper
    return decorate
