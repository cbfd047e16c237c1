"""One matrix per image, one resampling per batch: the geometric core of ``cnnlab.augment``.

Every geometric augmentation Keras 2's ``ImageDataGenerator`` draws (rotation, shifts, shear,
zoom and the two flips) is an affine map of pixel coordinates, so all of them compose into one
3x3 matrix per image (:func:`transform_matrix`).  The matrix maps each *output* pixel
``(row, col, 1)`` to the *input* position it is read from, the way ``scipy.ndimage`` and
``tf.raw_ops.ImageProjectiveTransformV3`` describe a transform.  :func:`resample_batch` then
reads a whole batch with those matrices in one vectorised bilinear (or nearest) gather written
with ``keras.ops`` and compiled by the backend's own compiler (XLA through ``tf.function`` under
TensorFlow, ``jax.jit`` under JAX; other backends run it eagerly).  Composing matrices is cheap
NumPy; the gather is where the time goes, so it is the only part compiled.

The gather is written here rather than taken from ``keras.ops.image.affine_transform`` because
that op behaves differently per backend (the JAX version interpolates through the channel axis
and takes its edge modes from ``jax.scipy``; TensorFlow's is 3x slower on CPU than the compiled
gather) and the four edge modes must mean the same on every backend:

* ``"nearest"``: ``a a | a b c d | d d`` (clamp to the edge pixel);
* ``"reflect"``: ``b a | a b c d | d c`` (half-sample symmetric, as scipy and TensorFlow);
* ``"wrap"``: ``c d | a b c d | a b`` with period ``n`` (``np.take(..., mode="wrap")``);
* ``"constant"``: ``k k | a b c d | k k``; bilinear weights mix ``cval`` in for the neighbours
  that fall outside, as TensorFlow does.

Each of the four neighbours of a sample point is mapped into the image by the edge mode and then
interpolated, so ``wrap`` interpolates smoothly across the seam between the last and the first
column.
"""

from __future__ import annotations

import functools
import threading

import numpy as np

from cnnlab.devices import for_backend, keras_backend

__all__ = ["FILL_MODES", "transform_matrix", "batch_matrices", "resample_batch"]

FILL_MODES = ("constant", "nearest", "reflect", "wrap")

_IDENTITY6 = np.array([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])


def _as_float(params, key, default):
    value = params.get(key, default)
    return default if value is None else float(value)


def batch_matrices(params_list, height, width):
    """Stack of ``(N, 3, 3)`` matrices (output ``(row, col, 1)`` -> input) for ``params_list``.

    ``params_list`` holds dicts with the keys of ``ImageDataGenerator.get_random_transform``:
    ``theta`` and ``shear`` in degrees, ``tx``/``ty`` the horizontal/vertical shift in pixels
    (positive ``tx`` reads from the right, so the content moves left, as in Keras 2),
    ``zx``/``zy`` the horizontal/vertical zoom (above 1 zooms out), and the two flips.  The
    composition is Keras 2's: ``rotation @ shift @ shear @ zoom`` about the image centre
    ``((width - 1) / 2, (height - 1) / 2)``, followed by the flips (which Keras 2 applied after
    resampling; as index permutations they fold into the matrix exactly).
    """
    n = len(params_list)
    theta = np.deg2rad([_as_float(p, "theta", 0.0) for p in params_list])
    tx = np.array([_as_float(p, "tx", 0.0) for p in params_list])
    ty = np.array([_as_float(p, "ty", 0.0) for p in params_list])
    shear = np.deg2rad([_as_float(p, "shear", 0.0) for p in params_list])
    zx = np.array([_as_float(p, "zx", 1.0) for p in params_list])
    zy = np.array([_as_float(p, "zy", 1.0) for p in params_list])
    flip_h = np.array([bool(p.get("flip_horizontal", False)) for p in params_list])
    flip_v = np.array([bool(p.get("flip_vertical", False)) for p in params_list])

    def stack(rows):  # rows: 3x3 nested lists of (N,) arrays or scalars
        out = np.zeros((n, 3, 3))
        for i in range(3):
            for j in range(3):
                out[:, i, j] = rows[i][j]
        return out

    zero, one = np.zeros(n), np.ones(n)
    # Keras 2's matrices, in (x, y) = (col, row) coordinates.
    rotation = stack([[np.cos(theta), -np.sin(theta), zero],
                      [np.sin(theta), np.cos(theta), zero], [zero, zero, one]])
    shift = stack([[one, zero, tx], [zero, one, ty], [zero, zero, one]])
    shear_m = stack([[one, -np.sin(shear), zero], [zero, np.cos(shear), zero],
                     [zero, zero, one]])
    zoom = stack([[zx, zero, zero], [zero, zy, zero], [zero, zero, one]])
    x_c, y_c = (width - 1) / 2.0, (height - 1) / 2.0
    to_centre = stack([[one, zero, -x_c * one], [zero, one, -y_c * one], [zero, zero, one]])
    from_centre = stack([[one, zero, x_c * one], [zero, one, y_c * one], [zero, zero, one]])
    flip = stack([[np.where(flip_h, -1.0, 1.0), zero, np.where(flip_h, width - 1.0, 0.0)],
                  [zero, np.where(flip_v, -1.0, 1.0), np.where(flip_v, height - 1.0, 0.0)],
                  [zero, zero, one]])
    xy = from_centre @ rotation @ shift @ shear_m @ zoom @ to_centre @ flip
    swap = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    return swap @ xy @ swap  # (row, col) coordinates


def transform_matrix(transform_parameters, image_size):
    """The 3x3 matrix that maps an output pixel ``(row, col, 1)`` to where it is read from.

    ``transform_parameters`` is a dict as returned by
    ``ImageDataGenerator.get_random_transform`` (``theta``, ``tx``, ``ty``, ``shear``, ``zx``,
    ``zy``, ``flip_horizontal``, ``flip_vertical``; missing keys mean "no change") and
    ``image_size`` is ``(height, width)``.  Rotation, shifts, shear, zoom and flips are all in
    this one matrix, which is why one resampling per image is enough::

        m = transform_matrix({"theta": 90}, (5, 5))
        m @ [0, 0, 1]  # -> [0, 4, 1]: the top-left pixel shows the input's top-right one
                       #    (positive theta turns the picture counter-clockwise)

    The centre of rotation, shear and zoom is the true image centre
    ``((height - 1) / 2, (width - 1) / 2)``; Keras 2 swapped the two for non-square images.

    Used in: labs/06_data_augmentation
    """
    if not isinstance(transform_parameters, dict):
        raise TypeError(
            f"transform_parameters must be a dict such as get_random_transform() returns, "
            f"e.g. {{'theta': 30, 'tx': 4}}; got {type(transform_parameters).__name__}"
        )
    height, width = _image_size(image_size)
    return batch_matrices([transform_parameters], height, width)[0]


def _image_size(image_size):
    try:
        height, width = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise ValueError(
            f"image_size={image_size!r} is not valid: give (height, width), e.g. (128, 128)"
        ) from None
    if height < 1 or width < 1:
        raise ValueError(f"image_size={image_size!r} must be positive: (height, width)")
    return height, width


# ------------------------------------------------------------------------------------------
# The batched gather, written once with keras.ops and compiled per backend
# ------------------------------------------------------------------------------------------

def _edge_index(index, size, fill_mode):
    """Map integer positions into ``[0, size)``; for "constant" also return the in-bounds mask."""
    from keras import ops

    if fill_mode == "nearest":
        return ops.clip(index, 0, size - 1), None
    if fill_mode == "wrap":
        return ops.mod(index, size), None
    if fill_mode == "reflect":
        folded = ops.mod(index, 2 * size)
        return ops.where(folded >= size, 2 * size - 1 - folded, folded), None
    inside = ops.logical_and(index >= 0, index < size)
    return ops.clip(index, 0, size - 1), inside


def _gather_kernel(images, matrices, cval, shifts, scale, fill_mode, order, channel_shift):
    """Resample ``images`` (N, H, W, C) at ``matrices`` (N, 6): the body that gets compiled.

    ``matrices[:, :3]`` gives the input row of each output pixel (``a*row + b*col + c``),
    ``matrices[:, 3:]`` its input column.  Then, fused into the same compiled call, Keras 2's
    channel shift (``shifts[:, 0]`` added where ``shifts[:, 1]`` is 1, clipped to each image's
    own range) and a final ``* scale`` (the generator's ``rescale`` when nothing else comes
    between the two).
    """
    from keras import ops

    n, height, width, channels = images.shape
    dtype = "float64" if images.dtype == "float64" else "float32"
    images = ops.cast(images, dtype)
    rows = ops.reshape(ops.arange(height, dtype=dtype), (1, height, 1))
    cols = ops.reshape(ops.arange(width, dtype=dtype), (1, 1, width))
    m = [ops.reshape(matrices[:, i], (-1, 1, 1)) for i in range(6)]
    src_r = m[0] * rows + m[1] * cols + m[2]  # (N, H, W)
    src_c = m[3] * rows + m[4] * cols + m[5]
    flat = ops.reshape(images, (-1, channels))
    base = ops.reshape(ops.arange(n, dtype="int32") * (height * width), (-1, 1, 1))

    def read(r, c):
        r, inside_r = _edge_index(r, height, fill_mode)
        c, inside_c = _edge_index(c, width, fill_mode)
        values = ops.take(flat, ops.reshape(base + r * width + c, (-1,)), axis=0)
        values = ops.reshape(values, (n, height, width, channels))
        if inside_r is not None:
            inside = ops.expand_dims(ops.logical_and(inside_r, inside_c), -1)
            values = ops.where(inside, values, ops.cast(cval, dtype))
        return values

    if order == 0:
        r = ops.cast(ops.floor(src_r + 0.5), "int32")
        c = ops.cast(ops.floor(src_c + 0.5), "int32")
        out = read(r, c)
    else:
        r0f, c0f = ops.floor(src_r), ops.floor(src_c)
        fr = ops.expand_dims(src_r - r0f, -1)
        fc = ops.expand_dims(src_c - c0f, -1)
        r0, c0 = ops.cast(r0f, "int32"), ops.cast(c0f, "int32")
        top_left, top_right = read(r0, c0), read(r0, c0 + 1)
        bottom_left, bottom_right = read(r0 + 1, c0), read(r0 + 1, c0 + 1)
        top = top_left + fc * (top_right - top_left)
        bottom = bottom_left + fc * (bottom_right - bottom_left)
        out = top + fr * (bottom - top)
    if channel_shift:
        low = ops.min(out, axis=(1, 2, 3), keepdims=True)
        high = ops.max(out, axis=(1, 2, 3), keepdims=True)
        offset = ops.reshape(ops.cast(shifts[:, 0], dtype), (-1, 1, 1, 1))
        use = ops.reshape(shifts[:, 1] > 0, (-1, 1, 1, 1))
        shifted = ops.minimum(ops.maximum(out + offset, low), high)
        out = ops.where(use, shifted, out)
    return out * ops.cast(scale, dtype)


_COMPILED = {}
_COMPILED_LOCK = threading.Lock()


def _compiled_kernel(fill_mode, order, channel_shift):
    """The gather for this backend, compiled once per static option set and cached.

    TensorFlow: ``tf.function(jit_compile=True)`` (XLA), falling back to a plain graph if XLA
    is unavailable; JAX: ``jax.jit``; any other backend: eager ``keras.ops``, one function each
    chosen by ``cnnlab.devices.for_backend``.  This is the one place cnnlab.augment names a
    backend: compiling is backend-specific, the kernel is not.
    """
    key = (keras_backend(), fill_mode, order, channel_shift)
    with _COMPILED_LOCK:
        if key in _COMPILED:
            return _COMPILED[key]
        kernel = functools.partial(_gather_kernel, fill_mode=fill_mode, order=order,
                                   channel_shift=channel_shift)
        compile_kernel = for_backend({"tensorflow": _xla_compiled, "jax": _jax_compiled},
                                     default=_eager)
        run = _COMPILED[key] = compile_kernel(kernel)
        return run


def _xla_compiled(kernel):
    """``kernel`` under TensorFlow: ``tf.function(jit_compile=True)`` (XLA), falling back to a
    plain graph the first time XLA fails (missing on this build); returns NumPy."""
    import tensorflow as tf  # data-pipeline code: the compiled augmentation kernel

    xla = tf.function(kernel, jit_compile=True)
    graph = tf.function(kernel)
    state = {"xla": True}

    def run(*args):
        if state["xla"]:
            try:
                return xla(*args).numpy()
            except Exception:  # XLA missing on this build: keep the plain graph
                state["xla"] = False
        return graph(*args).numpy()

    return run


def _jax_compiled(kernel):
    """``kernel`` under JAX: ``jax.jit``; returns NumPy."""
    import jax

    jitted = jax.jit(kernel)

    def run(*args):
        return np.asarray(jitted(*args))

    return run


def _eager(kernel):
    """``kernel`` on any other backend: eager ``keras.ops``; returns NumPy."""
    import keras

    def run(*args):
        return keras.ops.convert_to_numpy(kernel(*args))

    return run


def resample_batch(images, matrices, fill_mode="nearest", cval=0.0, order=1, pad_to=None,
                   channel_shifts=None, scale=1.0):
    """Resample a channels-last batch ``images`` (N, H, W, C) with ``matrices`` (N, 3, 3).

    One compiled call for the whole batch; ``images`` may be uint8 (converted inside).
    ``channel_shifts`` (N,) adds Keras 2's channel shift (NaN: none for that image) and
    ``scale`` multiplies the result, in the same call.  Returns float32 (float64 stays
    float64).  ``pad_to`` pads a short last batch to the usual batch size with identity
    transforms, so the compiled kernel is reused instead of compiled again for one odd shape.
    """
    images = np.asarray(images)
    dtype = np.float64 if images.dtype == np.float64 else np.float32
    n = len(images)
    flat = np.asarray(matrices, dtype=np.float64)[:, :2, :].reshape(n, 6)
    shifts = np.zeros((n, 2), dtype)
    if channel_shifts is not None:
        given = np.isfinite(channel_shifts)
        shifts[:, 0] = np.where(given, channel_shifts, 0.0)
        shifts[:, 1] = given
    use_shift = bool(shifts[:, 1].any())
    if np.allclose(flat, _IDENTITY6, rtol=0.0, atol=1e-12) and not use_shift:
        out = images.astype(dtype)  # nothing to resample: a copy
        return out * dtype(scale) if scale != 1 else out
    if pad_to is not None and n < pad_to:
        pad = pad_to - n
        images = np.concatenate([images, np.zeros((pad,) + images.shape[1:], images.dtype)])
        flat = np.concatenate([flat, np.tile(_IDENTITY6, (pad, 1))])
        shifts = np.concatenate([shifts, np.zeros((pad, 2), dtype)])
    if not (np.issubdtype(images.dtype, np.floating) or images.dtype == np.uint8):
        images = images.astype(dtype)
    run = _compiled_kernel(fill_mode, int(order), use_shift)
    out = run(np.ascontiguousarray(images), flat.astype(dtype), np.asarray(cval, dtype),
              shifts, np.asarray(scale, dtype))
    return out[:n]
