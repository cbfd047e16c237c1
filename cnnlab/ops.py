"""Convolution by hand: channels-last NumPy reference implementations.

Every function here is the plain-NumPy version of a Keras layer, written to be read
top to bottom and reimplemented by students:

=====================  =======================================================
``correlate2d``        one 2-D image, one 2-D kernel: what DL libraries call "convolution"
``convolve2d``         the same with the kernel flipped: convolution in the maths sense
``conv2d``             ``keras.layers.Conv2D`` (multi-channel, batch, strides, dilation)
``pool2d``             ``keras.layers.MaxPooling2D`` / ``AveragePooling2D``
``conv_matrix``        a convolution written as one dense matrix with shared weights
``conv_transpose2d``   ``keras.layers.Conv2DTranspose``: multiply by that matrix transposed
=====================  =======================================================

Arrays are channels-last, like Keras: images are ``(H, W, C)`` or ``(N, H, W, C)`` and
convolution kernels are ``(kh, kw, C_in, C_out)``.  The results are float64, so they can be
used as an exact reference for the float32 Keras layers.

Padding follows Keras (and TensorFlow): ``"valid"`` adds nothing; ``"same"`` gives
``ceil(n / s)`` outputs and adds ``pad_total = max((ceil(n/s) - 1) * s + (k - 1) * d + 1 - n, 0)``
zeros, ``pad_total // 2`` before and the rest (one more when it is odd) after, i.e. at the
bottom/right.  Only ``correlate2d``/``convolve2d`` also accept ``"full"`` (``k - 1`` zeros on
every side: every overlap of kernel and image).

Only NumPy is imported here; Keras is never needed to run this module.
"""

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cnnlab._checks import pair as _pair
from cnnlab._checks import renamed as _renamed

__all__ = [
    "correlate2d",
    "convolve2d",
    "conv2d",
    "pool2d",
    "conv_matrix",
    "conv_transpose2d",
]


# ----------------------------------------------------------------------------------------
# Argument checks and padding arithmetic (shared by every public function)
# ----------------------------------------------------------------------------------------

def _check_channels(images, kernel, axis, which):
    """``ValueError`` unless ``kernel``'s input-channel ``axis`` (Conv2D: 2, the third;
    Conv2DTranspose: 3, the last) equals the channels of ``images`` (their last axis)."""
    if kernel.shape[axis] != images.shape[-1]:
        raise ValueError(
            f"channel mismatch: images of shape {images.shape} have C_in={images.shape[-1]} "
            f"channels but kernel of shape {kernel.shape} expects C_in={kernel.shape[axis]}; "
            f"the {which} axis of kernel must equal the last axis of images"
        )


def _check_padding(padding, allowed=("valid", "same")):
    name = padding.lower() if isinstance(padding, str) else padding
    if name not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"padding={padding!r} is unknown: use one of {choices}")
    return name


def _pad_amounts(n, k, s, d, padding):
    """Zeros added ``(before, after)`` along one axis of length ``n``.

    ``k`` is the kernel (or pool window) size, ``s`` the stride, ``d`` the dilation rate.
    The effective (dilated) kernel covers ``(k - 1) * d + 1`` pixels.
    """
    span = (k - 1) * d + 1
    if padding == "valid":
        return 0, 0
    if padding == "full":
        return span - 1, span - 1
    out = math.ceil(n / s)  # "same": ceil(n / s) outputs, extra pixel at bottom/right
    pad_total = max((out - 1) * s + span - n, 0)
    return pad_total // 2, pad_total - pad_total // 2


def _spatial_padding(spatial_shape, kernel_size, strides, dilation_rate, padding, what):
    """Padding per axis, after checking that the kernel fits the padded input."""
    pads = []
    for axis, (n, k, s, d) in enumerate(zip(spatial_shape, kernel_size, strides, dilation_rate)):
        before, after = _pad_amounts(n, k, s, d, padding)
        span = (k - 1) * d + 1
        if n + before + after < span:
            dilated = "" if d == 1 else f" (dilated to {span})"
            raise ValueError(
                f"{what} of size {tuple(kernel_size)}{dilated} does not fit in the input of "
                f"spatial shape {tuple(spatial_shape)} with padding={padding!r} "
                f"({'rows' if axis == 0 else 'columns'}: {span} > {n + before + after}); "
                f"use padding='same', a smaller {what} or a larger input"
            )
        pads.append((before, after))
    return pads


def _as_float_array(x, name):
    array = np.asarray(x)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise TypeError(f"{name} must hold numbers; got dtype {array.dtype}")
    return array.astype(np.float64)


def _windows(x_padded, window, strides, dilation_rate):
    """All windows of a padded ``(N, H, W, C)`` array, shape ``(N, H', W', C, kh, kw)``.

    ``sliding_window_view`` gives every window of the dilated span; slicing keeps every
    ``s``-th window position (strides) and every ``d``-th pixel inside a window (dilation).
    No data is copied.
    """
    (kh, kw), (sh, sw), (dh, dw) = window, strides, dilation_rate
    span = ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
    view = sliding_window_view(x_padded, span, axis=(1, 2))
    return view[:, ::sh, ::sw, :, ::dh, ::dw]


# ----------------------------------------------------------------------------------------
# Single-channel correlation and convolution
# ----------------------------------------------------------------------------------------

def correlate2d(image, kernel, strides=1, padding="valid"):
    """Slide ``kernel`` over a 2-D ``image`` and take the dot product at each position.

    This is **cross-correlation**: output ``[i, j] = sum_ab image[i*s + a, j*s + b] *
    kernel[a, b]``, with the kernel *not* flipped.  Deep-learning libraries (Keras' Conv2D,
    PyTorch's Conv2d) compute exactly this and still call it "convolution"; since the
    kernel is learned, flipping it would change nothing.  Compare with :func:`convolve2d`.

    Parameters
    ----------
    image : array of shape (H, W)
        One channel (a grayscale image or one feature map).
    kernel : array of shape (kh, kw)
    strides : int or pair
        Step between kernel positions (rows, columns).
    padding : "valid", "same" or "full"
        "valid": no padding, output ``floor((n - k) / s) + 1``.  "same": Keras' zero
        padding, output ``ceil(n / s)`` (the extra zero of an even kernel goes bottom/right).
        "full": ``k - 1`` zeros on each side, every overlap, output ``floor((n + k - 2)/s) + 1``.

    Returns
    -------
    float64 array of shape (H', W').

    Example: the lecture's 5x5 binary image with the kernel ``[[1,0,1],[0,1,0],[1,0,1]]``
    gives the 3x3 feature map ``[[4,3,4],[2,4,3],[2,3,4]]``.

    Used in: labs/01_convolutions_by_hand
    """
    image = _as_float_array(image, "image")
    kernel = _as_float_array(kernel, "kernel")
    if image.ndim != 2:
        raise ValueError(
            f"image must be 2-D (H, W); got shape {image.shape}. For a multi-channel image "
            f"use conv2d, or pass one channel, e.g. image[..., 0]"
        )
    if kernel.ndim != 2:
        raise ValueError(
            f"kernel must be 2-D (kh, kw); got shape {kernel.shape}. For a "
            f"(kh, kw, C_in, C_out) kernel use conv2d"
        )
    padding = _check_padding(padding, allowed=("valid", "same", "full"))
    strides = _pair(strides, "strides")
    _check_kernel_not_empty(kernel.shape, "kernel")
    pads = _spatial_padding(image.shape, kernel.shape, strides, (1, 1), padding, "kernel")
    padded = np.pad(image, pads)[None, :, :, None]
    windows = _windows(padded, kernel.shape, strides, (1, 1))  # (1, H', W', 1, kh, kw)
    return np.einsum("nhwcij,ij->hw", windows, kernel)


def convolve2d(image, kernel, strides=1, padding="valid"):
    """True 2-D **convolution**: :func:`correlate2d` with the kernel flipped.

    ``output[i, j] = sum_ab image[i*s - a, j*s - b] * kernel[a, b]`` (the mathematical
    convolution, as in signal processing), computed as ``correlate2d(image,
    kernel[::-1, ::-1], ...)``.  For a kernel that is symmetric under a 180-degree rotation
    (blur, Laplacian, the lecture's X-shaped kernel) both give the same result; for an
    asymmetric one (Sobel, diagonal edge detectors) they differ -- that difference is the
    whole point: DL libraries compute cross-correlation.

    Arguments and result as in :func:`correlate2d`.

    Used in: labs/01_convolutions_by_hand
    """
    kernel = np.asarray(kernel)
    if kernel.ndim != 2:
        raise ValueError(
            f"kernel must be 2-D (kh, kw); got shape {kernel.shape}. For a "
            f"(kh, kw, C_in, C_out) kernel use conv2d"
        )
    return correlate2d(image, kernel[::-1, ::-1], strides=strides, padding=padding)


def _check_kernel_not_empty(shape, name):
    if min(shape[:2]) < 1:
        raise ValueError(
            f"{name} has an empty spatial shape {tuple(shape[:2])}: "
            f"give at least one row and one column"
        )


# ----------------------------------------------------------------------------------------
# Multi-channel convolution (keras.layers.Conv2D)
# ----------------------------------------------------------------------------------------

@_renamed(x="images", kernels="kernel")
def conv2d(images, kernel, bias=None, strides=1, padding="valid", dilation_rate=1):
    """A convolutional layer's forward pass, exactly as ``keras.layers.Conv2D`` computes it.

    Each output channel ``o`` is a cross-correlation summed over all input channels plus a
    bias: ``y[n, i, j, o] = b[o] + sum_{a,b,c} x_pad[n, i*s + a*d, j*s + b*d, c] *
    kernel[a, b, c, o]``.  One filter spans the full depth ``C_in`` of its input, and the
    layer has ``C_out`` filters, so its output is ``C_out`` feature maps.

    Parameters
    ----------
    images : array of shape (H, W, C_in) or (N, H, W, C_in)
    kernel : array of shape (kh, kw, C_in, C_out)
        Same layout as ``Conv2D(...).kernel``, so ``layer.get_weights()[0]`` fits directly.
    bias : None or array of shape (C_out,)
    strides, dilation_rate : int or pair
        Dilation spreads the kernel taps ``d`` pixels apart, covering ``(k - 1) * d + 1``
        pixels.  (Keras refuses ``strides > 1`` together with ``dilation_rate > 1``; this
        NumPy version accepts it.)
    padding : "valid" or "same"
        Keras/TensorFlow semantics; "same" gives ``ceil(n / s)`` outputs and puts the odd
        extra zero row/column at the bottom/right.

    Returns
    -------
    float64 array of shape (H', W', C_out), or (N, H', W', C_out) for batched ``images``.

    Vectorised: the windows are a strided view of the padded input (no copy) contracted
    with the kernel by one ``einsum``.

    Used in: no lab notebook directly; the reference of Lab 01's ``conv2d_multi`` exercise
    """
    images = _as_float_array(images, "images")
    kernel = _as_float_array(kernel, "kernel")
    if images.ndim not in (3, 4):
        hint = (" add a channel axis with images[..., None] or use correlate2d"
                if images.ndim == 2 else "")
        raise ValueError(f"images must have shape (H, W, C_in) or (N, H, W, C_in); got shape "
                         f"{images.shape}.{hint}")
    if kernel.ndim != 4:
        hint = " for one 2-D kernel use kernel[:, :, None, None]" if kernel.ndim == 2 else ""
        raise ValueError(
            f"kernel must have shape (kh, kw, C_in, C_out) like Conv2D.kernel; "
            f"got shape {kernel.shape}.{hint}"
        )
    _check_channels(images, kernel, axis=2, which="third")
    _check_kernel_not_empty(kernel.shape, "kernel")
    padding = _check_padding(padding)
    strides = _pair(strides, "strides")
    dilation_rate = _pair(dilation_rate, "dilation_rate")
    c_out = kernel.shape[3]
    if bias is not None:
        bias = _as_float_array(bias, "bias")
        if bias.shape != (c_out,):
            raise ValueError(
                f"bias must have shape (C_out,) = ({c_out},) to match kernel of shape "
                f"{kernel.shape}; got shape {bias.shape}"
            )

    batched = images.ndim == 4
    if not batched:
        images = images[None]
    pads = _spatial_padding(
        images.shape[1:3], kernel.shape[:2], strides, dilation_rate, padding, "kernel"
    )
    padded = np.pad(images, [(0, 0), *pads, (0, 0)])
    windows = _windows(padded, kernel.shape[:2], strides, dilation_rate)
    y = np.einsum("nhwcij,ijco->nhwo", windows, kernel, optimize=True)
    if bias is not None:
        y = y + bias
    return y if batched else y[0]


# ----------------------------------------------------------------------------------------
# Pooling (keras.layers.MaxPooling2D / AveragePooling2D)
# ----------------------------------------------------------------------------------------

@_renamed(x="images")
def pool2d(images, pool_size=2, strides=None, padding="valid", mode="max"):
    """Max or average pooling over each channel independently, like Keras' pooling layers.

    Pooling shrinks feature maps: each window of ``pool_size`` pixels becomes one number,
    its maximum (``mode="max"``, ``MaxPooling2D``: keeps the strongest response) or its mean
    (``mode="avg"``, ``AveragePooling2D``).  It has no weights and never mixes channels.

    Parameters
    ----------
    images : array of shape (H, W), (H, W, C) or (N, H, W, C)
    pool_size : int or pair
    strides : None, int or pair
        ``None`` means ``strides = pool_size`` (non-overlapping windows, the Keras default).
    padding : "valid" or "same"
        With "same", padded positions never count: max ignores them and average divides by
        the number of *real* pixels in the window (as TensorFlow does).
    mode : "max" or "avg"

    Returns
    -------
    float64 array with the same number of axes as ``images``.

    Example: the lecture's 4x4 map ``[[4,3,1,5],[1,3,4,8],[4,5,4,3],[6,5,9,4]]`` max-pools
    (2x2, stride 2) to ``[[4,8],[6,9]]``.

    Used in: labs/03_pooling_strides_invariance
    """
    images = _as_float_array(images, "images")
    if images.ndim not in (2, 3, 4):
        raise ValueError(
            f"images must have shape (H, W), (H, W, C) or (N, H, W, C); got shape "
            f"{images.shape}"
        )
    mode_name = mode.lower() if isinstance(mode, str) else mode
    if mode_name in ("average", "mean"):
        mode_name = "avg"
    if mode_name not in ("max", "avg"):
        raise ValueError(f"mode={mode!r} is unknown: use 'max' or 'avg'")
    padding = _check_padding(padding)
    pool_size = _pair(pool_size, "pool_size")
    strides = pool_size if strides is None else _pair(strides, "strides")

    original_ndim = images.ndim
    if images.ndim == 2:
        images = images[:, :, None]
    if images.ndim == 3:
        images = images[None]
    pads = _spatial_padding(images.shape[1:3], pool_size, strides, (1, 1), padding,
                            "pool window")
    pads = [(0, 0), *pads, (0, 0)]
    if mode_name == "max":
        padded = np.pad(images, pads, constant_values=-np.inf)  # a padded -inf never wins
        y = _windows(padded, pool_size, strides, (1, 1)).max(axis=(-2, -1))
    else:
        total = _windows(np.pad(images, pads), pool_size, strides, (1, 1)).sum(axis=(-2, -1))
        real = np.pad(np.ones_like(images[:1, :, :, :1]), pads)  # 1 = real pixel, 0 = padding
        count = _windows(real, pool_size, strides, (1, 1)).sum(axis=(-2, -1))
        y = total / count
    if original_ndim == 2:
        return y[0, :, :, 0]
    return y[0] if original_ndim == 3 else y


# ----------------------------------------------------------------------------------------
# Convolution as a matrix, and its transpose (keras.layers.Conv2DTranspose)
# ----------------------------------------------------------------------------------------

def conv_matrix(input_shape, kernel, strides=1, padding="valid"):
    """Write a 2-D correlation as one dense matrix with shared weights.

    Returns ``W`` of shape ``(H' * W', H * W)`` such that ``W @ x.ravel()`` equals
    ``correlate2d(x, kernel, strides, padding).ravel()`` for every ``x`` of shape
    ``input_shape``.  Row ``r`` holds the kernel placed at output position ``r`` (row-major),
    zeros elsewhere: every row has the same weights, shifted -- weight sharing made
    visible.  For a 4x4 input and a 3x3 kernel this is the lecture's 4x16 matrix.

    Backpropagation through the convolution multiplies the output gradient by ``W.T``; the
    same ``W.T`` is the transposed convolution (:func:`conv_transpose2d`).

    Parameters
    ----------
    input_shape : pair (H, W)
    kernel : array of shape (kh, kw)
    strides : int or pair
    padding : "valid" or "same"
        With "same", the columns for the padded zeros are dropped (they multiply zeros).

    Used in: labs/02_conv_arithmetic
    """
    height, width = _pair(input_shape, "input_shape")
    kernel = _as_float_array(kernel, "kernel")
    if kernel.ndim != 2:
        raise ValueError(f"kernel must be 2-D (kh, kw); got shape {kernel.shape}")
    _check_kernel_not_empty(kernel.shape, "kernel")
    padding = _check_padding(padding)
    strides = _pair(strides, "strides")
    (top, bottom), (left, right) = _spatial_padding(
        (height, width), kernel.shape, strides, (1, 1), padding, "kernel"
    )
    padded_h, padded_w = height + top + bottom, width + left + right
    kh, kw = kernel.shape
    out_h = (padded_h - kh) // strides[0] + 1
    out_w = (padded_w - kw) // strides[1] + 1

    matrix = np.zeros((out_h, out_w, padded_h, padded_w))
    for i in range(out_h):
        for j in range(out_w):
            row, col = i * strides[0], j * strides[1]
            matrix[i, j, row:row + kh, col:col + kw] = kernel
    matrix = matrix[:, :, top:top + height, left:left + width]  # drop the padding columns
    return matrix.reshape(out_h * out_w, height * width)


@_renamed(y="images")
def conv_transpose2d(images, kernel, strides=1, padding="valid"):
    """Transposed convolution ("deconvolution"), as ``keras.layers.Conv2DTranspose`` computes it.

    Each input pixel ``y[i, j]`` stamps a copy of the kernel, scaled by ``y[i, j]``, onto the
    output at ``(i * s, j * s)``; overlapping stamps add up.  That is multiplication by the
    transpose of the convolution matrix: ``conv_transpose2d(y, k, s, p)`` equals
    ``(conv_matrix((H, W), k, s, p).T @ y.ravel()).reshape(H, W)``.  It restores the *shape*
    of the convolution's input, not its values (it is not an inverse).  The output size is
    Keras' default: ``H = H' * s + max(k - s, 0)`` for "valid" (that is ``(H' - 1) * s + k``
    when ``k >= s``) and ``H = H' * s`` for "same".

    Parameters
    ----------
    images : array of shape (H', W'), or (H', W', C_in) / (N, H', W', C_in)
        The feature maps ``y`` to spread back out (a convolution's output).
    kernel : array of shape (kh, kw) for a 2-D ``images``, else (kh, kw, C_out, C_in)
        The multi-channel layout is ``Conv2DTranspose(...).kernel``'s: output channels
        come *before* input channels (the transpose of a Conv2D kernel).
    strides : int or pair
    padding : "valid" or "same"

    Returns
    -------
    float64 array of shape (H, W), (H, W, C_out) or (N, H, W, C_out).

    Used in: labs/02_conv_arithmetic
    """
    images = _as_float_array(images, "images")
    kernel = _as_float_array(kernel, "kernel")
    single = images.ndim == 2
    if single:
        if kernel.ndim != 2:
            raise ValueError(
                f"2-D images of shape {images.shape} need a 2-D kernel (kh, kw); got shape "
                f"{kernel.shape}. For channels give images as (H', W', C_in)"
            )
        images, kernel = images[None, :, :, None], kernel[:, :, None, None]
    elif images.ndim in (3, 4):
        if kernel.ndim != 4:
            raise ValueError(
                f"kernel must have shape (kh, kw, C_out, C_in) like Conv2DTranspose.kernel "
                f"for images of shape {images.shape}; got shape {kernel.shape}"
            )
        _check_channels(images, kernel, axis=3, which="last")
    else:
        raise ValueError(
            f"images must have shape (H', W'), (H', W', C_in) or (N, H', W', C_in); got shape "
            f"{images.shape}"
        )
    batched = images.ndim == 4 and not single
    if images.ndim == 3:
        images = images[None]
    _check_kernel_not_empty(kernel.shape, "kernel")
    padding = _check_padding(padding)
    strides = _pair(strides, "strides")

    n, in_h, in_w, _ = images.shape
    kh, kw, c_out, _ = kernel.shape
    sh, sw = strides
    out_h = in_h * sh + (max(kh - sh, 0) if padding == "valid" else 0)
    out_w = in_w * sw + (max(kw - sw, 0) if padding == "valid" else 0)
    # The forward convolution this transposes maps (out_h, out_w) back to (in_h, in_w).
    (top, bottom), (left, right) = _spatial_padding(
        (out_h, out_w), (kh, kw), strides, (1, 1), padding, "kernel"
    )
    canvas = np.zeros((n, out_h + top + bottom, out_w + left + right, c_out))
    for a in range(kh):
        for b in range(kw):
            # Kernel tap (a, b) of every input pixel lands at (i * s + a, j * s + b).
            stamp = np.einsum("nijc,oc->nijo", images, kernel[a, b])
            canvas[:, a:a + (in_h - 1) * sh + 1:sh, b:b + (in_w - 1) * sw + 1:sw, :] += stamp
    out = canvas[:, top:top + out_h, left:left + out_w, :]  # drop the padded border
    if single:
        return out[0, :, :, 0]
    return out if batched else out[0]
