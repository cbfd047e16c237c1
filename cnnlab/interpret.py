"""Looking inside a ConvNet, and fooling it: filters, feature maps, occlusions, saliency,
Grad-CAM and adversarial examples.

The ISPR Pisa and Fix decks close with *interpreting* ConvNets; the Rennes deck with their
limits.  Each picture here is one function on a trained Keras model:

- :func:`plot_filters` -- the first-layer kernels drawn as images ("visualize kernel weights:
  works only for early convolutional layers"); :func:`feature_maps` and
  :func:`plot_feature_maps` -- what each convolution outputs for one image.
- :func:`occlusion_map` -- Zeiler & Fergus (2014): slide a grey square over the image and
  record how much the class score drops at each position.
- :func:`top_activating_patches` and :func:`plot_top_patches` -- Zeiler & Fergus's "top-9
  image patches" of a unit: over a set of images, the receptive-field crops where one channel
  of a mid-level layer responds most (:func:`top_k_activations`, :func:`field_window`,
  :func:`crop_window` are its NumPy steps).
- :func:`saliency_map` -- Simonyan, Vedaldi & Zisserman (2014): the gradient of the class
  score with respect to the input pixels, ``|d S_c / d x|`` (max over colour channels).
  ``method="deconvnet"`` and ``method="guided"`` change only how the backward pass crosses a
  ReLU (the Fix deck: "Deconvnet computes approximately the gradient ... It differs in the way
  the ReLu is integrated"; Springenberg et al. (2015) introduce guided backpropagation);
  ``method="smoothgrad"`` averages the gradient over noisy copies (Smilkov et al., 2017).
- :func:`grad_cam` -- Selvaraju et al. (2017): weights ``a_k = mean_ij d S_c / d A_k(i, j)``
  over the last convolutional feature maps ``A``, heat map ``ReLU(sum_k a_k A_k)``, resized to
  the image; :func:`overlay` draws any heat map over its image.
- :func:`effective_receptive_field` -- Luo et al. (2016), the Fix deck's *Effective receptive
  field*: ``|d y / d x|`` of the centre unit of a model's output, where the gradient of a unit
  actually falls inside its theoretical receptive field (Lab 02).
- :func:`fgsm` and :func:`pgd` -- adversarial examples (Goodfellow et al., 2015; Kurakin et
  al., 2017; Madry et al., 2018): the Rennes deck's macaw, "Ara 97 %" turned into
  "Bookshelf 99 %" by noise too small to see.

The class score ``S_c``
    Simonyan et al. differentiate the *unnormalised* class score, not the softmax probability
    (the probability of class c also rises when the other classes' scores fall).  When a model
    ends with a softmax -- a layer with ``activation="softmax"`` (``Dense``, ``Conv2D``...), a
    ``layers.Softmax`` or an ``Activation("softmax")`` -- the score is the logit before it:
    the softmax is dropped (for a layer with the activation built in, a copy of that layer with
    ``activation="linear"`` and the same weights).  A model without a final softmax is taken to
    output scores already.  :func:`saliency_map`, :func:`grad_cam`, :func:`fgsm` and
    :func:`pgd` use these logits (the attacks: the cross-entropy computed from them);
    :func:`occlusion_map` reports the model's own output (probabilities, with a softmax).

Gradients on every backend
    :func:`input_gradient` is the one place that differentiates: ``tf.GradientTape`` under
    TensorFlow, ``jax.grad`` under JAX, ``torch.autograd.grad`` under PyTorch (written but not
    tested here: no PyTorch in the kit).  Everything else is ``keras.ops``.  Models are always
    called with ``training=False`` (batch norm uses its moving statistics, dropout is off).

Pixels and ``preprocess``
    Every function takes the image as the model's *input*.  If the model expects preprocessed
    input (e.g. ``(x - 127) / 128`` for EfficientNet-Lite0) and you want gradients, maps and
    attacks in raw pixel units (0..255), pass ``preprocess=``: it is applied inside the
    differentiated function, so it must be written with ``keras.ops`` or plain arithmetic
    (``(x - 127.0) / 128.0`` is fine; ``np.asarray`` inside it is not).

Guided backpropagation and DeConvNet (their limits)
    The model is cloned (``keras.models.clone_model``, nested models included, weights copied)
    with every ReLU -- ``activation="relu"``/``"relu6"`` in any layer, ``layers.ReLU`` with
    ``negative_slope=0`` and ``threshold=0`` (``max_value`` allowed: ReLU6),
    ``Activation("relu")`` -- replaced by the same function with a custom gradient
    (``keras.ops.custom_gradient``): for the upstream gradient ``g`` at input ``z``, the
    ordinary rule passes ``g * [0 < z (< max)]``, DeConvNet ``g * [g > 0]``, guided
    backpropagation ``g * [0 < z (< max)] * [g > 0]``.  Max pooling keeps its ordinary
    gradient, which is DeConvNet's "switches".  Other activations (sigmoid, swish, leaky ReLU)
    keep their ordinary gradient, so on a swish network (EfficientNet-B0) the result is not
    guided backpropagation -- a model without any ReLU gets a ``ValueError``.  Subclassed models
    and custom layers that ``clone_model`` cannot rebuild from their config are not supported
    (``ValueError``).

Used in: labs/02_conv_arithmetic, labs/10_looking_inside
"""

from __future__ import annotations

import numbers

import keras
import matplotlib.pyplot as plt
import numpy as np
from keras import layers as klayers
from keras import ops
from PIL import Image
from tqdm.auto import tqdm

__all__ = [
    "crop_window",
    "effective_receptive_field",
    "feature_maps",
    "field_window",
    "fgsm",
    "grad_cam",
    "grad_cam_layer",
    "input_gradient",
    "occlusion_map",
    "overlay",
    "pgd",
    "plot_feature_maps",
    "plot_filters",
    "plot_top_patches",
    "saliency_map",
    "top_activating_patches",
    "top_k_activations",
]

_SALIENCY_METHODS = ("gradient", "smoothgrad", "deconvnet", "guided")
_CONV_TYPES = (
    klayers.Conv2D,
    klayers.DepthwiseConv2D,
    klayers.SeparableConv2D,
    klayers.Conv2DTranspose,
)
_RELU_NAMES = ("relu", "relu6")


# --------------------------------------------------------------------------- gradients


def input_gradient(fn, x):
    """Gradient of ``sum(fn(x))`` with respect to ``x``, as a NumPy array shaped like ``x``.

    ``fn`` maps a tensor to a tensor (a model, or e.g. ``lambda t: model(t)[:, 3]`` for the
    class-3 score of every image in a batch).  The images of a batch do not interact at
    inference, so the gradient of the sum holds each image's own gradient.  One function for
    every backend: ``tf.GradientTape`` (TensorFlow), ``jax.grad`` (JAX),
    ``torch.autograd.grad`` (PyTorch).  Under JAX the function runs op by op (not jitted, so
    any ``fn`` works): the first gradient through a large model compiles each operation once
    (about a minute for EfficientNet-Lite0 on a 2-core CPU), later ones reuse them (seconds).

    Used in: labs/10_looking_inside
    """
    x = np.asarray(x, dtype=np.float32)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tensor = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(tensor)
            total = ops.sum(fn(tensor))
        grad = tape.gradient(total, tensor)
        if grad is None:
            raise ValueError(
                "the function's output does not depend on its input through differentiable "
                "operations; if a preprocess= function uses NumPy, write it with keras.ops or "
                "plain arithmetic (e.g. (x - 127.0) / 128.0)"
            )
    elif backend == "jax":
        import jax

        grad = jax.grad(lambda t: ops.sum(fn(t)))(ops.convert_to_tensor(x))
    elif backend == "torch":
        import torch

        tensor = ops.convert_to_tensor(x).detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(ops.sum(fn(tensor)), tensor, allow_unused=True)
        if grad is None:
            grad = torch.zeros_like(tensor)
    else:
        raise ValueError(
            f"gradients are not available on the {backend!r} backend; "
            "set KERAS_BACKEND to tensorflow, jax or torch"
        )
    return np.asarray(ops.convert_to_numpy(grad), dtype=np.float32)


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


# --------------------------------------------------------------------------- validation


def _input_shape(model):
    try:
        shape = model.input_shape
    except (AttributeError, ValueError) as exc:
        raise ValueError(
            f"the model has no known input shape ({exc}); build it with keras.Input(shape=...) "
            "or call it once on an image first"
        ) from None
    if isinstance(shape, list):
        raise ValueError("models with several inputs are not supported: pass a one-input model")
    return tuple(shape)


def _num_classes(model):
    shape = tuple(model.output_shape) if not isinstance(model.output_shape, list) else None
    if shape is None or len(shape) != 2 or shape[-1] is None:
        raise ValueError(
            f"the model's output {model.output_shape} is not (batch, classes); "
            "these functions need a classifier with one output vector per image"
        )
    return int(shape[-1])


def _class_index(model, class_index, name="class_index"):
    n = _num_classes(model)
    values = np.atleast_1d(np.asarray(class_index))
    if values.dtype == bool or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"{name} must be an integer class index 0..{n - 1}, got {class_index!r}")
    bad = values[(values < 0) | (values >= n)]
    if bad.size:
        raise ValueError(
            f"{name} {int(bad[0])} is outside the model's {n} classes: use 0..{n - 1}"
        )
    return values.astype(int) if np.ndim(class_index) else int(values[0])


def _fit_images(model, x, name="image", batch=False):
    """x as float32 with a batch axis, checked against the model's input shape.

    Returns ``(batch, had_batch_axis)``.  With ``batch=False`` only one image is accepted
    (a batch axis of length 1 is allowed).
    """
    x = np.asarray(x, dtype=np.float32)
    expected = _input_shape(model)[1:]
    shape = x.shape
    if x.ndim == len(expected) - 1 and expected[-1] == 1:
        x = x[..., None]  # a grayscale (H, W) image for a one-channel model
    if x.ndim == len(expected):
        had_batch = False
        x = x[None]
    elif x.ndim == len(expected) + 1:
        had_batch = True
        if not batch and x.shape[0] != 1:
            raise ValueError(
                f"{name} has shape {shape}: a batch of {x.shape[0]} images; "
                f"pass one image of shape {_shape_text(expected)}"
            )
    else:
        raise ValueError(
            f"{name} shape {shape} does not fit the model's input {_shape_text(expected)}: "
            f"expected {len(expected)} axes (height, width, channels)"
            + (" or a batch of them" if batch else "")
        )
    got = x.shape[1:]
    for axis, (want, have) in enumerate(zip(expected, got)):
        if want is None or want == have:
            continue
        if axis == len(expected) - 1:
            problem = f"the model takes {want} channel{'s' if want != 1 else ''}, " \
                f"the image has {have}"
            fix = ("convert it to grayscale, e.g. load_sample_image(name, as_gray=True)"
                   if want == 1 else f"give it {want} channels (e.g. RGB)")
        else:
            problem = f"the model takes {_size_text(expected)} images, " \
                f"the image is {_size_text(got)}"
            fix = f"resize it to {_size_text(expected)} (e.g. keras.ops.image.resize)"
        raise ValueError(f"{name} shape {shape} does not fit the model's input "
                         f"{_shape_text(expected)}: {problem}; {fix}")
    return x, had_batch


def _size_text(shape):
    return "x".join("?" if d is None else str(d) for d in shape[:-1])


def _shape_text(shape):
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _preprocessed(preprocess):
    if preprocess is None:
        return lambda t: t
    if not callable(preprocess):
        raise TypeError(f"preprocess must be a function of the image, got {preprocess!r}")
    return preprocess


def _predict(model, x, preprocess):
    return np.asarray(ops.convert_to_numpy(model.predict_on_batch(preprocess(x))))


# --------------------------------------------------------------------------- model surgery


def _is_softmax(fn):
    return getattr(fn, "__name__", None) == "softmax"


def _tensor_of(model, layer, kind):
    """The KerasTensor that ``layer`` takes (``kind="input"``) or makes in ``model``.

    A shared layer or a nested model has one call per graph, and a nested Functional model's
    ``.output`` is its own inner output, not the tensor of the outer graph: the outer graph's
    call comes from :func:`cnnlab.graph.layer_tensors` (the one module that reads Keras'
    graph internals).
    """
    from cnnlab import graph

    calls = graph.layer_tensors(model, layer) if graph.is_graph_model(model) else []
    if not calls:
        return getattr(layer, kind)
    tensors = calls[0][0] if kind == "input" else calls[0][1]
    if len(tensors) != 1:
        raise ValueError(f"layer {layer.name!r} has {len(tensors)} {kind}s; pick a layer "
                         f"with one {kind} tensor")
    return tensors[0]


def _last_layer(model):
    if not model.layers:
        raise ValueError("the model has no layers")
    last = model.layers[-1]
    if not isinstance(model, keras.Sequential):
        try:
            if _tensor_of(model, last, "output") is not model.outputs[0]:
                return None
        except (AttributeError, ValueError):
            return None
    return last


def _softmax_kind(model):
    """'layer' (a Softmax or Activation('softmax') layer ends the model), 'built_in' (the last
    layer has activation='softmax'), or None."""
    last = _last_layer(model)
    if last is None:
        return None, None
    if isinstance(last, klayers.Softmax):
        return "layer", last
    if isinstance(last, klayers.Activation) and _is_softmax(last.activation):
        return "layer", last
    if _is_softmax(getattr(last, "activation", None)):
        return "built_in", last
    return None, last


def _zero_initializers(config):
    """A layer config whose initializers are all zeros: for copies whose weights are overwritten
    at once (under JAX each random initializer compiles one XLA program per shape)."""
    return {key: "zeros" if key.endswith("_initializer") and value is not None else value
            for key, value in config.items()}


def _linear_copy(model, layer):
    """The layer with ``activation="linear"`` and the same weights (its pre-softmax output)."""
    config = _zero_initializers(layer.get_config())
    config["activation"] = "linear"
    copy = layer.__class__.from_config(config)
    copy.build(tuple(_tensor_of(model, layer, "input").shape))
    copy.set_weights(layer.get_weights())
    return copy


def _position(model, layer):
    for i, candidate in enumerate(model.layers):
        if candidate is layer:
            return i
    raise ValueError(
        f"layer {layer.name!r} is not a top-level layer of model {model.name!r}; "
        "for a layer inside a nested model, pass that nested model"
    )


def _cut(model, start=None, end=None):
    """A function from the activation of layer ``start`` (None: the model input) to the
    activation of layer ``end`` (None: the class scores, the softmax dropped)."""
    kind, last = _softmax_kind(model) if end is None else (None, None)
    tail = _linear_copy(model, last) if kind == "built_in" else None
    if isinstance(model, keras.Sequential):
        begin = 0 if start is None else _position(model, start) + 1
        if end is not None:
            stop = _position(model, end) + 1
        else:
            stop = len(model.layers) - (1 if kind else 0)
        chain = model.layers[begin:stop]

        def run(t):
            for layer in chain:
                t = layer(t, training=False)
            return tail(t) if tail is not None else t

        return run
    inputs = model.inputs[0] if start is None else _tensor_of(model, start, "output")
    if end is not None:
        outputs = _tensor_of(model, end, "output")
    elif kind:
        outputs = _tensor_of(model, last, "input")
    else:
        outputs = model.outputs[0]
    if outputs is inputs:
        body = None
    else:
        try:
            body = keras.Model(inputs, outputs)
        except ValueError as exc:
            where = "the input" if start is None else f"layer {start.name!r}"
            raise ValueError(
                f"cannot cut the model at {where}: the output needs tensors that do not pass "
                f"through it ({exc}); pick a layer that every path to the output goes through"
            ) from None

    def run_functional(t):
        if body is not None:
            t = body(t, training=False)
        return tail(t) if tail is not None else t

    return run_functional


def _scores(model):
    """Function: model input -> class scores (logits)."""
    return _cut(model)


def _relu_max_value(layer):
    """None if the layer is not a ReLU; else its max_value (inf for a plain ReLU)."""
    if isinstance(layer, klayers.ReLU):
        config = layer.get_config()
        if config.get("negative_slope", 0) or config.get("threshold", 0):
            return None
        top = config.get("max_value")
        return np.inf if top is None else float(top)
    name = getattr(getattr(layer, "activation", None), "__name__", None)
    if name in _RELU_NAMES:
        return 6.0 if name == "relu6" else np.inf
    return None


def _rule_activation(rule, max_value):
    """A ReLU (clipped at max_value) whose backward pass follows ``rule``."""

    @ops.custom_gradient
    def relu(z):
        out = ops.relu(z) if np.isinf(max_value) else ops.clip(z, 0.0, max_value)

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            dtype = upstream.dtype
            passes = ops.cast(z > 0, dtype)
            if not np.isinf(max_value):
                passes = passes * ops.cast(z < max_value, dtype)
            positive = ops.cast(upstream > 0, dtype)
            if rule == "deconvnet":
                return upstream * positive
            return upstream * passes * positive  # guided

        return out, grad

    relu.__name__ = f"{rule}_relu"
    return relu


def _rule_model(model, rule):
    """Clone of the model where every ReLU backpropagates by ``rule`` (same weights)."""
    replaced = []

    def clone(layer):
        config = _zero_initializers(layer.get_config())
        max_value = _relu_max_value(layer)
        if max_value is None:
            return layer.__class__.from_config(config)
        replaced.append(layer.name)
        fn = _rule_activation(rule, max_value)
        if isinstance(layer, (klayers.ReLU, klayers.Activation)):
            return klayers.Activation(fn, name=layer.name, dtype=layer.dtype_policy)
        config["activation"] = fn
        return layer.__class__.from_config(config)

    try:
        copy = keras.models.clone_model(model, clone_function=clone, recursive=True)
        copy.set_weights(model.get_weights())
    except (TypeError, ValueError, NotImplementedError) as exc:
        raise ValueError(
            f"method={rule!r} needs a copy of the model with its ReLUs replaced, and "
            f"keras.models.clone_model could not copy this one ({exc}); use a Sequential or "
            "Functional model of built-in layers, or method='gradient'"
        ) from None
    if not replaced:
        raise ValueError(
            f"method={rule!r} changes how gradients cross ReLUs, and this model has none "
            "(relu/relu6 activations or ReLU layers); use method='gradient' or 'smoothgrad'"
        )
    return copy


# --------------------------------------------------------------------------- feature maps


def _choose_layers(model, layers):
    if layers is None:
        chosen = [layer for layer in model.layers if isinstance(layer, _CONV_TYPES)]
        if not chosen:
            raise ValueError(
                f"model {model.name!r} has no top-level convolution layer; pass layers= "
                "(names or layer objects), or, for a pretrained base nested inside, "
                "feature_maps(base, image)"
            )
        return chosen
    if isinstance(layers, (str, klayers.Layer)):
        layers = [layers]
    chosen = []
    names = [layer.name for layer in model.layers]
    for item in layers:
        if isinstance(item, str):
            if item not in names:
                raise ValueError(f"no layer named {item!r} in the model; layers: {names}")
            item = model.layers[names.index(item)]
        _position(model, item)
        chosen.append(item)
    return chosen


def feature_maps(model, image, layers=None, preprocess=None):
    """Activations of ``layers`` for ``image``: a dict layer name -> NumPy array.

    ``layers``: names or layer objects (top-level layers of ``model``); default every
    convolution layer (Conv2D, DepthwiseConv2D, SeparableConv2D, Conv2DTranspose), in model
    order.  One image ``(H, W, C)`` gives arrays without a batch axis ``(h, w, channels)``; a
    batch ``(N, H, W, C)`` keeps it.

    Used in: labs/10_looking_inside
    """
    batch, had_batch = _fit_images(model, image, batch=True)
    chosen = _choose_layers(model, layers)
    x = ops.convert_to_tensor(_preprocessed(preprocess)(batch))
    if isinstance(model, keras.Sequential):
        wanted = {id(layer) for layer in chosen}
        found = {}
        for layer in model.layers[: max(_position(model, c) for c in chosen) + 1]:
            x = layer(x, training=False)
            if id(layer) in wanted:
                found[layer.name] = x
        outputs = [found[layer.name] for layer in chosen]
    else:
        extractor = keras.Model(model.inputs[0],
                                [_tensor_of(model, layer, "output") for layer in chosen])
        outputs = extractor(x, training=False)
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]  # one layer: Keras returns the tensor itself
    maps = {}
    for layer, out in zip(chosen, outputs):
        array = np.asarray(ops.convert_to_numpy(out))
        maps[layer.name] = array if had_batch else array[0]
    return maps


def plot_feature_maps(maps_or_model, image=None, layers=None, max_channels=16, cols=8,
                      preprocess=None):
    """Figure of the first ``max_channels`` channels of each layer's feature maps.

    ``maps_or_model``: a dict from :func:`feature_maps`, or a model (then ``image`` is needed
    and ``layers``/``preprocess`` are passed on).  One row block per layer, titled with its name
    and shape; each map is scaled to its own min..max (viridis: dark = low, yellow = high).

    Used in: labs/10_looking_inside
    """
    if isinstance(maps_or_model, dict):
        maps = maps_or_model
    else:
        if image is None:
            raise ValueError("pass the image whose feature maps to draw: plot_feature_maps("
                             "model, image)")
        maps = feature_maps(maps_or_model, image, layers=layers, preprocess=preprocess)
    if not maps:
        raise ValueError("no feature maps to draw")
    if max_channels < 1 or cols < 1:
        raise ValueError(f"max_channels and cols must be at least 1, got {max_channels}, {cols}")
    blocks = []
    for name, array in maps.items():
        array = np.asarray(array)
        if array.ndim == 4:
            array = array[0]  # a batch: draw its first image
        if array.ndim != 3:
            raise ValueError(f"feature maps of {name!r} have shape {array.shape}; expected "
                             "(height, width, channels) from a convolutional layer")
        blocks.append((name, array, min(array.shape[-1], max_channels)))
    ncols = min(cols, max(n for _, _, n in blocks))
    rows = [(-(-n // ncols)) for _, _, n in blocks]
    fig, axes = plt.subplots(sum(rows), ncols, figsize=(1.4 * ncols, 1.55 * sum(rows) + 0.6),
                             squeeze=False)
    row = 0
    for (name, array, n), nrows in zip(blocks, rows):
        for k in range(nrows * ncols):
            ax = axes[row + k // ncols][k % ncols]
            ax.set_xticks([])
            ax.set_yticks([])
            if k >= n:
                ax.axis("off")
                continue
            ax.imshow(array[..., k], cmap="viridis")
            label = f"ch {k}"
            if k == 0:
                h, w, c = array.shape
                label = f"{name} {h}x{w}x{c}\nch 0"
            ax.set_title(label, fontsize=7, loc="left")
        row += nrows
    fig.suptitle(f"Feature maps: first {max_channels} channels per layer "
                 "(each map scaled to its own min..max)", fontsize=9)
    fig.tight_layout()
    plt.close(fig)  # returned to the caller: pyplot must not show it a second time
    return fig


def _kernel_of(layer_or_kernel):
    if isinstance(layer_or_kernel, klayers.Layer):
        layer = layer_or_kernel
        if isinstance(layer, klayers.DepthwiseConv2D):
            kernel = np.asarray(ops.convert_to_numpy(layer.kernel))
            kh, kw, cin, mult = kernel.shape
            return kernel.reshape(kh, kw, 1, cin * mult), f"{layer.name} (depthwise)"
        if isinstance(layer, klayers.SeparableConv2D):
            kernel = np.asarray(ops.convert_to_numpy(layer.depthwise_kernel))
            kh, kw, cin, mult = kernel.shape
            return kernel.reshape(kh, kw, 1, cin * mult), f"{layer.name} (depthwise part)"
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            raise TypeError(f"layer {layer.name!r} has no kernel; pass a Conv2D layer or a "
                            "kernel array (kh, kw, in_channels, filters)")
        return np.asarray(ops.convert_to_numpy(kernel)), layer.name
    return np.asarray(layer_or_kernel, dtype=np.float32), "kernel"


def plot_filters(layer_or_kernel, max_filters=64, cols=8, input_channel=0):
    """Figure of a convolution's filters, one small image per filter.

    ``layer_or_kernel``: a Conv2D-like layer or a kernel array ``(kh, kw, in_channels,
    filters)``.  Three input channels: each filter drawn as an RGB colour patch; one input
    channel (or a depthwise kernel): grayscale; otherwise the slice ``input_channel`` of each
    filter in grayscale.  Each filter is scaled to 0..1 on its own: ``(w - min) / (max - min)``
    over all its values (jointly over R, G, B, so the colours keep their balance), so black is
    that filter's most negative weight and white its most positive.

    Used in: labs/10_looking_inside
    """
    kernel, name = _kernel_of(layer_or_kernel)
    if kernel.ndim != 4:
        raise ValueError(f"kernel shape {kernel.shape} is not (kh, kw, in_channels, filters): "
                         "pass a 2-D convolution layer or its kernel")
    if max_filters < 1 or cols < 1:
        raise ValueError(f"max_filters and cols must be at least 1, got {max_filters}, {cols}")
    kh, kw, cin, count = kernel.shape
    if cin == 3:
        mode, patches = "RGB", kernel
    elif cin == 1:
        mode, patches = "grayscale", kernel
    else:
        if not 0 <= input_channel < cin:
            raise ValueError(f"input_channel {input_channel} is outside 0..{cin - 1}")
        mode, patches = f"grayscale, input channel {input_channel} of {cin}", \
            kernel[:, :, input_channel:input_channel + 1]
    shown = min(count, max_filters)
    ncols = min(cols, shown)
    nrows = -(-shown // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.1 * ncols, 1.1 * nrows + 0.7),
                             squeeze=False)
    for k in range(nrows * ncols):
        ax = axes[k // ncols][k % ncols]
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= shown:
            ax.axis("off")
            continue
        patch = patches[..., k]
        low, high = float(patch.min()), float(patch.max())
        scaled = (patch - low) / (high - low) if high > low else np.full_like(patch, 0.5)
        if scaled.shape[-1] == 3:
            ax.imshow(scaled, interpolation="nearest")
        else:
            ax.imshow(scaled[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(str(k), fontsize=7)
    fig.suptitle(f"{name}: {shown} of {count} filters {kh}x{kw} ({mode}); each filter scaled "
                 "to its own min (black) .. max (white)", fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


# --------------------------------------------------------------------------- occlusions


def occlusion_map(model, image, class_index, patch=16, stride=8, fill="mean", batch_size=64,
                  value="drop", preprocess=None, progress=True):
    """Zeiler & Fergus's occlusion map: the class score with a square of the image covered.

    A ``patch`` x ``patch`` square, filled with ``fill`` (``"mean"``: the image's mean colour,
    the grey square of the paper; ``"zero"``; or a number), is slid over the image with
    ``stride``.  Cell ``(i, j)`` of the returned ``(rows, cols)`` map is for the square covering
    rows ``i*stride .. i*stride+patch-1`` and columns ``j*stride .. j*stride+patch-1``, with
    ``rows = (H - patch) // stride + 1`` (squares run off no edge; pixels past the last full
    square are not covered).  ``value="drop"`` (default): the model's output for
    ``class_index`` on the image minus the output on the occluded image (a probability if the
    model ends with a softmax; large = this region matters); ``value="score"``: the output on
    the occluded image itself.  Occluded copies are predicted ``batch_size`` at a time, with a
    progress bar unless ``progress=False``.

    Used in: labs/10_looking_inside
    """
    batch, _ = _fit_images(model, image)
    image = batch[0]
    class_index = _class_index(model, class_index)
    height, width = image.shape[:2]
    for label, number in (("patch", patch), ("stride", stride), ("batch_size", batch_size)):
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
    rows = (height - patch) // stride + 1
    cols = (width - patch) // stride + 1
    positions = [(i, j) for i in range(rows) for j in range(cols)]
    baseline = float(_predict(model, batch, preprocess)[0, class_index])
    scores = np.empty(len(positions), dtype=np.float32)
    with tqdm(total=len(positions), desc="occlusion", unit="patch", disable=not progress) as bar:
        for begin in range(0, len(positions), batch_size):
            chunk = positions[begin:begin + batch_size]
            occluded = np.repeat(batch, len(chunk), axis=0)
            for n, (i, j) in enumerate(chunk):
                occluded[n, i * stride:i * stride + patch, j * stride:j * stride + patch] = colour
            out = _predict(model, occluded, preprocess)
            scores[begin:begin + len(chunk)] = out[:, class_index]
            bar.update(len(chunk))
    scores = scores.reshape(rows, cols)
    return baseline - scores if value == "drop" else scores


# --------------------------------------------------------------------------- top-9 patches


def top_k_activations(activations, k=9, one_per_image=True):
    """Where one channel responds most over a set of images: Zeiler & Fergus's top-k units.

    ``activations``: ``(N, h, w)``, the channel's feature map for each of ``N`` images.  With
    ``one_per_image=True`` (Zeiler & Fergus: each patch from a different image) every image
    contributes its strongest position (the first in row-major order on a tie), then the
    ``k`` images with the largest of these are kept; with ``False``, the ``k`` largest over
    every ``(image, row, col)``.  Order: decreasing value, ties in ``(image, row, col)`` order.
    Returns ``{"images", "rows", "cols"}`` (int arrays) and ``"values"`` (float), each of
    length ``min(k, candidates)``.

    Used in: no lab notebook directly; ``top_activating_patches`` and the reference of
    exercise 10.top_patches
    """
    a = np.asarray(activations, dtype=np.float64)
    if a.ndim != 3 or 0 in a.shape:
        raise ValueError(f"activations must have shape (images, height, width), got {a.shape}; "
                         "for one channel c of feature maps (N, h, w, C) pass maps[..., c]")
    if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    count, height, width = a.shape
    flat = a.reshape(count, height * width)
    if one_per_image:
        best = flat.argmax(axis=1)
        values = flat[np.arange(count), best]
        images = np.argsort(-values, kind="stable")[:k]
        positions = best[images]
    else:
        order = np.argsort(-flat.ravel(), kind="stable")[:k]
        images, positions = np.divmod(order, height * width)
    rows, cols = np.divmod(positions, width)
    return {"images": images.astype(int), "rows": rows.astype(int), "cols": cols.astype(int),
            "values": a[images, rows, cols]}


def _pair(value, name):
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return (value, value)
    try:
        pair = tuple(value)
    except TypeError:
        pair = ()
    if len(pair) != 2 or not all(isinstance(v, numbers.Real) for v in pair):
        raise ValueError(f"{name} must be a number or a (rows, cols) pair, got {value!r}")
    return pair


def field_window(row, col, size, jump, start):
    """``(top, left, bottom, right)``: the input pixels that unit ``(row, col)`` of a layer sees.

    ``size``, ``jump`` and ``start`` are the layer's receptive field, jump and start (a number
    or a ``(rows, cols)`` pair, as ``cnnlab.arithmetic.receptive_field`` gives them): the
    unit's field is centred on pixel ``start + row * jump``, so it spans
    ``top = start + row * jump - (size - 1) / 2`` to ``bottom = top + size`` (exclusive).
    The window is not clipped: it may begin before pixel 0 or end past the image, in the
    zero padding.

    Used in: no lab notebook directly; ``top_activating_patches`` and the reference of
    exercise 10.top_patches
    """
    (size_r, size_c), (jump_r, jump_c), (start_r, start_c) = (
        _pair(size, "size"), _pair(jump, "jump"), _pair(start, "start"))
    top = int(round(start_r + row * jump_r - (size_r - 1) / 2))
    left = int(round(start_c + col * jump_c - (size_c - 1) / 2))
    return top, left, top + int(size_r), left + int(size_c)


def crop_window(image, window, fill=0.0):
    """The pixels of ``image`` (``(H, W)`` or ``(H, W, C)``) inside ``window`` (``(top, left,
    bottom, right)``, :func:`field_window`), float32, the part outside the image set to ``fill``
    (the network's zero padding, in the input's units).

    Used in: no lab notebook directly; ``top_activating_patches`` and the reference of
    exercise 10.top_patches
    """
    image = np.asarray(image, dtype=np.float32)
    top, left, bottom, right = (int(v) for v in window)
    if bottom <= top or right <= left:
        raise ValueError(f"window {window} is empty: it must be (top, left, bottom, right) with "
                         "bottom > top and right > left")
    crop = np.full((bottom - top, right - left) + image.shape[2:], fill, dtype=np.float32)
    height, width = image.shape[:2]
    r0, r1, c0, c1 = max(top, 0), min(bottom, height), max(left, 0), min(right, width)
    if r0 < r1 and c0 < c1:
        crop[r0 - top:r1 - top, c0 - left:c1 - left] = image[r0:r1, c0:c1]
    return crop


def top_activating_patches(model, layer, images, channels, k=9, one_per_image=True,
                           inside=False, preprocess=None, batch_size=16, fill=0.0,
                           progress=True):
    """Zeiler & Fergus's "top-9 image patches": what a few units of a mid-level layer respond to.

    The ISPR Pisa deck (*Inspect Deconvolution Layers*: "Corresponding top-9 image patches"):
    for each channel of ``layer`` in ``channels``, the ``k`` units (one per image by default,
    :func:`top_k_activations`) with the largest activation over ``images`` (a batch ``(N, H, W,
    C)`` in the model's input units; ``preprocess`` is applied first, ``batch_size`` images at a
    time), and the crop of the input each of those units sees: its receptive field
    (:func:`cnnlab.arithmetic.receptive_field` of the model, :func:`field_window`), outside the
    image filled with ``fill`` (:func:`crop_window`).  ``inside=True`` keeps only the units whose
    whole field lies inside the image: a unit at the border also sees the zero padding, an
    edge that no photo has.

    Returns a dict: ``"layer"``, ``"field"`` (``{"size", "jump", "start"}`` of the layer, per
    axis), ``"activations"`` (``(N, h, w, len(channels))``, the chosen channels' maps, ``-inf``
    at the units ``inside=True`` leaves out), ``"one_per_image"``, ``"inside"`` and
    ``"channels"``: ``{channel: {"images", "rows", "cols", "values", "windows",
    "crops"}}``, ``crops`` of shape ``(k, size, size, C)`` in the input's units, strongest first.

    Used in: labs/10_looking_inside
    """
    from cnnlab.arithmetic import receptive_field

    batch, _ = _fit_images(model, images, name="images", batch=True)
    name = layer if isinstance(layer, str) else layer.name
    depth = _output_shape(model, _choose_layers(model, name)[0])[-1]
    channels = [int(c) for c in np.atleast_1d(channels)]
    bad = [c for c in channels if not 0 <= c < depth]
    if not channels or bad:
        raise ValueError(f"channels {bad or channels} are not channels of layer {name!r}, which "
                         f"has {depth}; pick indices in 0..{depth - 1}")
    if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool) \
            or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    field = receptive_field(model).row(name)
    if field["whole_input"]:
        raise ValueError(f"layer {name!r} sees the whole input (after Flatten or global "
                         "pooling): pick a convolutional layer before it")
    chunks = []
    starts = range(0, len(batch), batch_size)
    for begin in tqdm(starts, desc="activations", unit="batch", disable=not progress):
        maps = feature_maps(model, batch[begin:begin + batch_size], layers=name,
                            preprocess=preprocess)[name]
        chunks.append(maps[..., channels])
    maps = np.concatenate(chunks)
    if inside:
        height, width = batch.shape[1:3]
        windows = [[field_window(r, c, field["size"], field["jump"], field["start"])
                    for c in range(maps.shape[2])] for r in range(maps.shape[1])]
        keep = np.array([[w[0] >= 0 and w[1] >= 0 and w[2] <= height and w[3] <= width
                          for w in row] for row in windows])
        if not keep.any():
            raise ValueError(f"no unit of {name!r} has its whole field ({field['size']}) inside "
                             f"{height}x{width} images: use inside=False or larger images")
        maps = np.where(keep[None, :, :, None], maps, -np.inf)
    found = {}
    for index, channel in enumerate(channels):
        top = top_k_activations(maps[..., index], k=k, one_per_image=one_per_image)
        windows = [field_window(r, c, field["size"], field["jump"], field["start"])
                   for r, c in zip(top["rows"], top["cols"])]
        crops = np.stack([crop_window(batch[n], w, fill) for n, w in zip(top["images"], windows)])
        found[channel] = {**top, "windows": np.array(windows), "crops": crops}
    return {"layer": name, "field": {"size": tuple(field["size"]), "jump": tuple(field["jump"]),
                                     "start": tuple(field["start"])},
            "activations": maps, "one_per_image": bool(one_per_image), "inside": bool(inside),
            "channels": found}


def plot_top_patches(patches, cols=3, blocks_per_row=4, title=None):
    """Figure of :func:`top_activating_patches`: one ``cols``-wide grid of crops per channel.

    Each block is titled with its channel, each crop with its image index and activation
    (strongest top left, row by row).  Crops with values above 1 are drawn as 0..255 pixels;
    crops that are not RGB show their first channel in gray.

    Used in: labs/10_looking_inside
    """
    found = patches["channels"]
    if not found:
        raise ValueError("no channels to draw: pass the result of top_activating_patches")
    k = max(len(entry["values"]) for entry in found.values())
    rows = -(-k // cols)
    n_blocks = len(found)
    across = min(blocks_per_row, n_blocks)
    down = -(-n_blocks // across)
    fig = plt.figure(figsize=(2.9 * across, 3.2 * down + 0.5), layout="constrained")
    subfigs = np.atleast_1d(fig.subfigures(down, across, wspace=0.04, hspace=0.04)).ravel()
    size = patches["field"]["size"]
    for subfig, (channel, entry) in zip(subfigs, found.items()):
        axes = np.atleast_1d(subfig.subplots(rows, cols)).ravel()
        for n, ax in enumerate(axes):
            ax.set_xticks([])
            ax.set_yticks([])
            if n >= len(entry["values"]):
                ax.axis("off")
                continue
            crop = entry["crops"][n]
            if crop.ndim == 3 and crop.shape[-1] != 3:
                crop = crop[..., 0]  # not RGB: the first channel, in gray
            if crop.max() > 1.0:
                crop = np.clip(crop, 0, 255).astype(np.uint8)
            ax.imshow(crop, cmap="gray" if crop.ndim == 2 else None)
            ax.set_title(f"img {entry['images'][n]}: {entry['values'][n]:.2f}", fontsize=7)
        axes[(rows - 1) * cols].set_xlabel(f"{size[1]} px", fontsize=7)
        axes[(rows - 1) * cols].set_ylabel(f"{size[0]} px", fontsize=7)
        subfig.suptitle(f"channel {channel}", fontsize=9)
    for subfig in subfigs[n_blocks:]:
        subfig.set_visible(False)
    each = "; one per image" if patches.get("one_per_image") else ""
    fig.suptitle(title or f"Top-{k} image patches of {patches['layer']} (receptive field "
                 f"{size[0]}x{size[1]} pixels{each})", fontsize=10)
    plt.close(fig)  # returned to the caller: pyplot must not show it a second time
    return fig


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


def _output_shape(model, layer):
    try:
        return tuple(_tensor_of(model, layer, "output").shape)
    except (AttributeError, ValueError):
        return None


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


# --------------------------------------------------------------------------- attacks


def _check_attack(model, x, y, epsilon, clip):
    batch, had_batch = _fit_images(model, x, name="x", batch=True)
    labels = np.broadcast_to(np.atleast_1d(_class_index(model, y, name="y")), (len(batch),))
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real):
        raise ValueError(f"epsilon must be a number of pixel-value units, got {epsilon!r}")
    if clip is None:
        if not epsilon > 0:
            raise ValueError(f"epsilon {epsilon} must be > 0")
        return batch, had_batch, labels, None
    low, high = (float(v) for v in clip)
    if not low < high:
        raise ValueError(f"clip={clip} must be (low, high) with low < high")
    if not 0 < epsilon <= high - low:
        raise ValueError(
            f"epsilon {epsilon} is outside the pixel range: use 0 < epsilon <= {high - low:g} "
            f"(clip={clip}); e.g. epsilon=2 is 2 intensity levels of 0..255"
        )
    if batch.min() < low or batch.max() > high:
        raise ValueError(
            f"x has values in [{batch.min():g}, {batch.max():g}], outside clip={clip}: pass "
            "the raw pixels (and preprocess= for the model's preprocessing) or set clip="
        )
    return batch, had_batch, labels, (low, high)


def _loss_gradient(model, batch, labels, preprocess):
    """Gradient of the cross-entropy of ``labels`` (from the logits) w.r.t. the batch."""
    scores = _scores(model)
    onehot = ops.convert_to_tensor(np.eye(_num_classes(model), dtype=np.float32)[labels])

    def loss(t):
        return -ops.sum(onehot * ops.log_softmax(scores(preprocess(t)), axis=-1), axis=-1)

    return input_gradient(loss, batch)


def _clip(batch, bounds):
    return batch if bounds is None else np.clip(batch, bounds[0], bounds[1])


def _attack_result(original, adversarial, had_batch, return_perturbation):
    adversarial = adversarial.astype(np.float32)
    delta = adversarial - original
    if not had_batch:
        adversarial, delta = adversarial[0], delta[0]
    return (adversarial, delta) if return_perturbation else adversarial


def fgsm(model, x, y, epsilon, targeted=False, clip=(0, 255), preprocess=None,
         return_perturbation=False):
    """Fast gradient sign method (Goodfellow et al., 2015): one step of size ``epsilon``.

    Untargeted (``y`` = the true labels): ``x + epsilon * sign(grad_x L(x, y))`` climbs the
    cross-entropy of the true class; targeted (``y`` = the wanted labels): ``x - epsilon *
    sign(grad_x L(x, y))`` descends the loss of the target.  ``L`` is the cross-entropy
    computed from the logits (see the module docstring).  The result is clipped to ``clip``,
    the valid pixel range (``None``: no clip).  ``epsilon`` is in the units of ``x``: with
    0..255 pixels, ``epsilon=1`` changes every pixel by at most one intensity level, and
    integer pixels stay integers.  ``x``: one image or a batch; ``y``: one label or one per
    image.  ``return_perturbation=True`` also returns ``x_adv - x``.

    Measured on EfficientNet-Lite0 (``cnnlab.pretrained``, ``preprocess=preprocess_lite0``)
    with chelsea centre-cropped to 224x224: Egyptian cat 0.396, tiger cat 0.326, tabby 0.165
    becomes, with ``epsilon=0.5`` (half an intensity level, the smallest of 0.5, 1, 2, 4
    tried), tiger cat 0.595, tabby 0.212, Egyptian cat 0.036; with ``epsilon=1`` (still a
    uint8 image) tiger cat 0.568, tabby 0.236, lynx 0.025 (TensorFlow and JAX agree to 1e-6;
    pinned by ``tests/test_interpret.py``).

    Used in: labs/10_looking_inside
    """
    batch, had_batch, labels, bounds = _check_attack(model, x, y, epsilon, clip)
    gradient = _loss_gradient(model, batch, labels, _preprocessed(preprocess))
    direction = -np.sign(gradient) if targeted else np.sign(gradient)
    adversarial = _clip(batch + float(epsilon) * direction, bounds)
    return _attack_result(batch, adversarial, had_batch, return_perturbation)


def pgd(model, x, y, epsilon, step=None, steps=10, targeted=False, clip=(0, 255),
        random_start=False, seed=None, preprocess=None, progress=False,
        return_perturbation=False):
    """Iterative FGSM: BIM (Kurakin et al., 2017), or PGD (Madry et al., 2018) with a random
    start.

    ``steps`` signed-gradient steps of size ``step`` (default ``2.5 * epsilon / steps``, Madry
    et al.'s choice); after each, the image is projected back into the L-infinity ball
    ``|x_adv - x| <= epsilon`` and clipped to ``clip``, the valid pixel range.
    ``random_start=True`` starts from ``x + uniform(-epsilon, epsilon)`` drawn from
    ``numpy.random.default_rng(seed)``; without it this is BIM, and one step of size
    ``epsilon`` is :func:`fgsm`.  ``targeted``, ``y``, ``preprocess``, ``return_perturbation``:
    as in :func:`fgsm`.

    Used in: labs/10_looking_inside
    """
    batch, had_batch, labels, bounds = _check_attack(model, x, y, epsilon, clip)
    if not isinstance(steps, numbers.Integral) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    step = 2.5 * float(epsilon) / steps if step is None else step
    if isinstance(step, bool) or not isinstance(step, numbers.Real) or not step > 0:
        raise ValueError(f"step must be a positive number, got {step!r}")
    preprocess = _preprocessed(preprocess)
    epsilon = float(epsilon)
    adversarial = batch.copy()
    if random_start:
        rng = np.random.default_rng(seed)
        adversarial = _clip(batch + rng.uniform(-epsilon, epsilon, batch.shape), bounds)
    for _ in tqdm(range(steps), desc="pgd", unit="step", disable=not progress):
        gradient = _loss_gradient(model, adversarial.astype(np.float32), labels, preprocess)
        direction = -np.sign(gradient) if targeted else np.sign(gradient)
        adversarial = adversarial + float(step) * direction
        adversarial = np.clip(adversarial, batch - epsilon, batch + epsilon)
        adversarial = _clip(adversarial, bounds)
    return _attack_result(batch, adversarial, had_batch, return_perturbation)
