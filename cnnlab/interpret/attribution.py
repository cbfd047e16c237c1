"""Which pixels a decision depends on: occlusion, saliency, Grad-CAM, effective receptive field.

- :func:`occlusion_map` -- Zeiler & Fergus (2014): slide a grey square over the image and
  record how much the class score drops at each position;
- :func:`saliency_map` -- Simonyan, Vedaldi & Zisserman (2014): ``|d S_c / d x|``, with the
  DeConvNet, guided-backpropagation and SmoothGrad variants;
- :func:`grad_cam` -- Selvaraju et al. (2017): ``ReLU(sum_k a_k A_k)`` over the last
  convolutional maps, drawn over the image by :func:`overlay`;
- :func:`effective_receptive_field` -- Luo et al. (2016): where the gradient of one unit
  actually falls inside its theoretical receptive field.

Lab 10 (looking inside) uses the first three, Lab 02 the effective receptive field.
"""

from __future__ import annotations

import numbers
import warnings

import keras
import matplotlib.pyplot as plt
import numpy as np
from keras import ops
from PIL import Image
from tqdm.auto import tqdm

from cnnlab.interpret.surgery import (
    _CONV_TYPES,
    _choose_layers,
    _class_index,
    _cut,
    _fit_images,
    _input_shape,
    _output_shape,
    _predict,
    _preprocessed,
    _rule_model,
    _scores,
    _tensor_of,
    input_gradient,
)

__all__ = [
    "effective_receptive_field",
    "grad_cam",
    "grad_cam_layer",
    "occlusion_map",
    "overlay",
    "saliency_map",
]

_SALIENCY_METHODS = ("gradient", "smoothgrad", "deconvnet", "guided")


def effective_receptive_field(model, input_shape=None):
    """Effective receptive field of the centre unit of ``model``'s output, as a map that sums to 1.

    Luo, Li, Urtasun & Zemel (2016), the Fix deck's *Effective receptive field*: the gradient of
    one output unit with respect to the input, ``|d y / d x|``, is not spread evenly over the
    theoretical receptive field (:func:`cnnlab.arithmetic.receptive_field`); in a stack of
    convolutions it concentrates in a Gaussian-like bump around the centre.  The unit is the
    centre of the output's first channel, ``y[0, H_out // 2, W_out // 2, 0]``; the map is the sum
    over input channels of ``|d unit / d x|`` at an input of zeros, divided by its total, so
    each value is the share of the gradient's mass that reaches that input pixel.

    At an input of zeros a ReLU passes no gradient: the map is meant for stacks of linear
    convolutions (no activation), whose gradient does not depend on the input.

    Args:
        model: a Keras model taking ``(batch, H, W, C)`` images and returning
            ``(batch, H_out, W_out, channels)`` maps.
        input_shape: ``(H, W, C)``; by default the model's own input shape.

    Returns:
        np.ndarray of shape ``(H, W)``, non-negative, summing to 1.

    Used in: labs/02_conv_arithmetic
    """
    shape = _input_shape(model)[1:] if input_shape is None else tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(n, numbers.Integral) and n > 0 for n in shape):
        raise ValueError(f"input_shape must be (H, W, C) with whole sizes, got {shape}; pass "
                         "e.g. input_shape=(33, 33, 1) when the model accepts any size")

    def centre_unit(tensor):
        y = model(tensor, training=False)
        if len(y.shape) != 4:
            raise ValueError(f"the model's output has shape {tuple(y.shape)}; the effective "
                             "receptive field needs (batch, H_out, W_out, channels) maps")
        return y[:, y.shape[1] // 2, y.shape[2] // 2, 0]

    grad = np.abs(input_gradient(centre_unit, np.zeros((1, *shape), dtype=np.float32)))
    field = grad[0].sum(axis=-1).astype(np.float64)
    total = field.sum()
    if total == 0:
        raise ValueError("the centre unit's gradient is zero everywhere (at an input of zeros a "
                         "ReLU passes no gradient): use a stack of linear convolutions")
    return field / total


# --------------------------------------------------------------------------- occlusions


def occlusion_map(model, image, class_index, patch=16, strides=8, fill="mean", batch_size=64,
                  value="drop", preprocess=None, progress=True, *, stride=None):
    """Zeiler & Fergus's occlusion map: the class score with a square of the image covered.

    A ``patch`` x ``patch`` square, filled with ``fill`` (``"mean"``: the image's mean colour,
    the grey square of the paper; ``"zero"``; or a number), is slid over the image with
    ``strides`` pixels per step (as Keras' ``strides``).  Cell ``(i, j)`` of the returned
    ``(rows, cols)`` map is for the square covering rows ``i*strides .. i*strides+patch-1`` and
    columns ``j*strides .. j*strides+patch-1``, with
    ``rows = (H - patch) // strides + 1`` (squares run off no edge; pixels past the last full
    square are not covered).  ``value="drop"`` (default): the model's output for
    ``class_index`` on the image minus the output on the occluded image (a probability if the
    model ends with a softmax; large = this region matters); ``value="score"``: the output on
    the occluded image itself.  Occluded copies are predicted ``batch_size`` at a time, with a
    progress bar unless ``progress=False``.  ``stride=`` is the deprecated old name of
    ``strides=`` (it still works, with a ``DeprecationWarning``).

    Used in: labs/10_looking_inside
    """
    if stride is not None:
        if strides not in (8, stride):
            raise TypeError(f"occlusion_map got stride={stride!r} and strides={strides!r}; "
                            "give strides= only (stride= is its deprecated old name)")
        warnings.warn("occlusion_map(stride=...) is deprecated: write strides=..., the name "
                      "Keras and the rest of cnnlab use", DeprecationWarning, stacklevel=2)
        strides = stride
    batch, _ = _fit_images(model, image)
    image = batch[0]
    class_index = _class_index(model, class_index)
    height, width = image.shape[:2]
    for label, number in (("patch", patch), ("strides", strides), ("batch_size", batch_size)):
        if not isinstance(number, numbers.Integral) or isinstance(number, bool) or number < 1:
            raise ValueError(f"{label} must be a positive integer, got {number!r}")
    if patch > min(height, width):
        raise ValueError(f"patch {patch} is larger than the image ({height}x{width}); "
                         "use a smaller patch")
    if value not in ("drop", "score"):
        raise ValueError(f"value must be 'drop' or 'score', got {value!r}")
    if isinstance(fill, str):
        if fill == "mean":
            colour = image.reshape(-1, image.shape[-1]).mean(axis=0)
        elif fill == "zero":
            colour = np.zeros(image.shape[-1], dtype=np.float32)
        else:
            raise ValueError(f"fill must be 'mean', 'zero' or a number, got {fill!r}")
    elif isinstance(fill, numbers.Real):
        colour = np.full(image.shape[-1], float(fill), dtype=np.float32)
    else:
        raise ValueError(f"fill must be 'mean', 'zero' or a number, got {fill!r}")
    preprocess = _preprocessed(preprocess)
    rows = (height - patch) // strides + 1
    cols = (width - patch) // strides + 1
    positions = [(i, j) for i in range(rows) for j in range(cols)]
    baseline = float(_predict(model, batch, preprocess)[0, class_index])
    scores = np.empty(len(positions), dtype=np.float32)
    with tqdm(total=len(positions), desc="occlusion", unit="patch", disable=not progress) as bar:
        for begin in range(0, len(positions), batch_size):
            chunk = positions[begin:begin + batch_size]
            occluded = np.repeat(batch, len(chunk), axis=0)
            for n, (i, j) in enumerate(chunk):
                top, left = i * strides, j * strides
                occluded[n, top:top + patch, left:left + patch] = colour
            out = _predict(model, occluded, preprocess)
            scores[begin:begin + len(chunk)] = out[:, class_index]
            bar.update(len(chunk))
    scores = scores.reshape(rows, cols)
    return baseline - scores if value == "drop" else scores


# --------------------------------------------------------------------------- saliency


def saliency_map(model, image, class_index, method="gradient", samples=25, noise=0.15, seed=0,
                 batch_size=16, preprocess=None, return_gradient=False):
    """Simonyan et al.'s saliency: ``max over channels of |d S_c / d x|``, an ``(H, W)`` map.

    ``S_c`` is the score of ``class_index`` before any final softmax (see the module
    docstring).  ``method``:

    - ``"gradient"``: the plain gradient (Simonyan et al., 2014);
    - ``"smoothgrad"``: the mean gradient over ``samples`` copies of the image with Gaussian
      noise of standard deviation ``noise * (max - min)`` of the image (Smilkov et al., 2017),
      drawn from ``numpy.random.default_rng(seed)`` (same seed, same map), ``batch_size``
      copies per gradient;
    - ``"deconvnet"``: Zeiler & Fergus's DeConvNet backward rule at each ReLU (keep only
      positive upstream signal), the Fix deck's "approximately the gradient";
    - ``"guided"``: guided backpropagation (Springenberg et al., 2015): the ReLU's gradient
      *and* positive upstream signal only.

    ``return_gradient=True`` also returns the raw ``(H, W, C)`` gradient (signed; for guided
    backprop that is the picture usually shown).  Limits of the two ReLU rules: see the module
    docstring.

    Used in: labs/10_looking_inside
    """
    if method not in _SALIENCY_METHODS:
        raise ValueError(f"method must be one of {', '.join(_SALIENCY_METHODS)}; got {method!r}")
    batch, _ = _fit_images(model, image)
    class_index = _class_index(model, class_index)
    preprocess = _preprocessed(preprocess)
    target = _rule_model(model, method) if method in ("deconvnet", "guided") else model
    scores = _scores(target)

    def score(t):
        return scores(preprocess(t))[:, class_index]

    if method == "smoothgrad":
        if not isinstance(samples, numbers.Integral) or samples < 1:
            raise ValueError(f"samples must be a positive integer, got {samples!r}")
        if not noise >= 0:
            raise ValueError(f"noise must be >= 0 (a fraction of the pixel range), got {noise!r}")
        rng = np.random.default_rng(seed)
        sigma = noise * float(batch.max() - batch.min())
        noisy = batch + rng.normal(0.0, sigma, size=(samples,) + batch.shape[1:]).astype(
            np.float32)
        total = np.zeros(batch.shape[1:], dtype=np.float32)
        for begin in range(0, samples, batch_size):
            total += input_gradient(score, noisy[begin:begin + batch_size]).sum(axis=0)
        gradient = total / samples
    else:
        gradient = input_gradient(score, batch)[0]
    saliency = np.abs(gradient).max(axis=-1)
    return (saliency, gradient) if return_gradient else saliency


# --------------------------------------------------------------------------- Grad-CAM


def _contains_conv(layer):
    if isinstance(layer, _CONV_TYPES):
        return True
    if isinstance(layer, keras.Model):
        return any(_contains_conv(inner) for inner in layer.layers)
    return False


def _feeds(model, before, after):
    if isinstance(model, keras.Sequential):
        return True
    try:
        return _tensor_of(model, after, "input") is _tensor_of(model, before, "output")
    except (AttributeError, ValueError):
        return False


def grad_cam_layer(model):
    """The layer whose feature maps :func:`grad_cam` uses when ``layer=`` is not given.

    The last top-level convolution -- Conv2D, DepthwiseConv2D, SeparableConv2D,
    Conv2DTranspose, or a nested model that contains one (a pretrained base inside a transfer
    model) -- then, as long as the next layer takes its output and keeps its 4-D shape (batch
    norm, activation, dropout), that next layer: the rectified feature maps that the
    classifier head (pooling or flatten, then dense layers) sees.  A model without a
    convolution gets a ``ValueError`` asking for ``layer=``.

    Used in: labs/10_looking_inside
    """
    tops = model.layers
    convs = [i for i, layer in enumerate(tops) if _contains_conv(layer)]
    shapes = [_output_shape(model, layer) for layer in tops]
    convs = [i for i in convs if shapes[i] is not None and len(shapes[i]) == 4]
    if not convs:
        raise ValueError(
            f"model {model.name!r} has no convolutional layer with 4-D (batch, height, width, "
            "channels) output for Grad-CAM to find; pass layer= (a layer name or object whose "
            "output is a 4-D feature map)"
        )
    i = convs[-1]
    while i + 1 < len(tops) and shapes[i + 1] == shapes[i] and _feeds(model, tops[i],
                                                                        tops[i + 1]):
        i += 1
    return tops[i]


def _resize(array, height, width):
    """Bilinear resize of a 2-D float map (Pillow)."""
    if array.shape == (height, width):
        return array.astype(np.float32)
    picture = Image.fromarray(np.ascontiguousarray(array, dtype=np.float32))
    return np.asarray(picture.resize((width, height), Image.Resampling.BILINEAR),
                      dtype=np.float32)


def grad_cam(model, image, class_index=None, layer=None, resize=True, preprocess=None):
    """Grad-CAM heat map (Selvaraju et al., 2017) of ``class_index`` for one image.

    With ``A`` the feature maps of ``layer`` (default :func:`grad_cam_layer`) and ``S_c`` the
    class score before any final softmax: weights ``a_k = mean over (i, j) of
    d S_c / d A_k(i, j)``, heat map ``ReLU(sum_k a_k A_k)`` -- computed at the layer's
    resolution, then (``resize=True``) resized bilinearly to the image's ``(H, W)``.  Not
    normalised (divide by its max to compare images); :func:`overlay` draws it.
    ``class_index=None``: the model's top class.  ``layer``: a name or layer object (top-level)
    with a 4-D output that every path to the output goes through.

    Used in: labs/10_looking_inside
    """
    batch, _ = _fit_images(model, image)
    preprocess = _preprocessed(preprocess)
    if layer is None:
        layer = grad_cam_layer(model)
    else:
        layer = _choose_layers(model, layer)[0]
        shape = _output_shape(model, layer)
        if shape is None or len(shape) != 4:
            raise ValueError(f"layer {layer.name!r} has output shape {shape}; Grad-CAM needs "
                             "a 4-D (batch, height, width, channels) feature map")
    features = _cut(model, end=layer)
    head = _cut(model, start=layer)
    activations = np.asarray(ops.convert_to_numpy(features(
        ops.convert_to_tensor(preprocess(batch)))))
    if class_index is None:
        logits = ops.convert_to_numpy(head(ops.convert_to_tensor(activations)))
        class_index = int(np.argmax(logits[0]))
    else:
        class_index = _class_index(model, class_index)
    gradient = input_gradient(lambda a: head(a)[:, class_index], activations)[0]
    weights = gradient.mean(axis=(0, 1))
    cam = np.maximum((activations[0] * weights).sum(axis=-1), 0.0)
    if resize:
        cam = _resize(cam, batch.shape[1], batch.shape[2])
    return cam


def overlay(image, heatmap, alpha=0.45, cmap="jet", title=None, ax=None):
    """Figure of ``heatmap`` (any 2-D map: Grad-CAM, saliency, occlusion) over ``image``.

    The map is resized bilinearly to the image and scaled by its maximum absolute value, so
    1 (red with ``jet``) marks the most important pixels; the image is shown as is (0..255 or
    0..1 values both work).  Returns the figure (of ``ax`` if given).

    Used in: labs/10_looking_inside
    """
    picture = np.asarray(image, dtype=np.float32)
    if picture.ndim == 4 and picture.shape[0] == 1:
        picture = picture[0]
    if picture.ndim == 3 and picture.shape[-1] == 1:
        picture = picture[..., 0]
    if picture.ndim not in (2, 3):
        raise ValueError(f"image shape {np.shape(image)} is not (H, W) or (H, W, C)")
    heat = np.asarray(heatmap, dtype=np.float32)
    if heat.ndim != 2:
        raise ValueError(f"heatmap shape {heat.shape} is not 2-D (H, W)")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in 0..1, got {alpha}")
    heat = _resize(heat, picture.shape[0], picture.shape[1])
    top = float(np.abs(heat).max())
    heat = heat / top if top > 0 else heat
    shown = picture / 255.0 if picture.max() > 1.0 else picture
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.2, 4))
        plt.close(fig)
    else:
        fig = ax.figure
    ax.imshow(np.clip(shown, 0, 1), cmap="gray" if shown.ndim == 2 else None)
    mappable = ax.imshow(heat, cmap=cmap, alpha=alpha, vmin=0 if heat.min() >= 0 else -1,
                         vmax=1)
    fig.colorbar(mappable, ax=ax, fraction=0.046, pad=0.04, label="heat / max heat")
    ax.set_title(title or "heat map over the image")
    ax.set_xlabel("x (pixels)")
    ax.set_ylabel("y (pixels)")
    return fig
