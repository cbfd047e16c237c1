"""Gradients and model surgery: what every picture of ``cnnlab.interpret`` is built on.

- :func:`input_gradient` -- the one place that differentiates (``tf.GradientTape``,
  ``jax.grad`` or ``torch.autograd.grad``): the saliency maps, Grad-CAM, the effective
  receptive field and the attacks all take ``d S / d x`` from it;
- the checks of a model's input, classes and images (errors that say how to fix the image);
- model surgery: cutting a model between two layers (``_cut``), dropping its final softmax to
  get the class scores ``S_c`` (the lecture's *unnormalised* score of Simonyan et al.), and
  cloning it with every ReLU's backward pass replaced (DeConvNet, guided backpropagation).

The Keras graph internals are read only through ``cnnlab.graph`` (``layer_tensors``).
Labs 02 and 10 use :func:`input_gradient` (through the maps of Lab 10).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers as klayers
from keras import ops

from cnnlab.devices import for_backend

__all__ = ["input_gradient"]

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
    gradient = for_backend({"tensorflow": _tape_gradient, "jax": _jax_gradient,
                            "torch": _torch_gradient}, what="input_gradient")
    return np.asarray(ops.convert_to_numpy(gradient(fn, x)), dtype=np.float32)


def _tape_gradient(fn, x):
    """``d sum(fn(x)) / d x`` with ``tf.GradientTape`` (TensorFlow)."""
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
    return grad


def _jax_gradient(fn, x):
    """``d sum(fn(x)) / d x`` with ``jax.grad`` (JAX), op by op (not jitted)."""
    import jax

    return jax.grad(lambda t: ops.sum(fn(t)))(ops.convert_to_tensor(x))


def _torch_gradient(fn, x):
    """``d sum(fn(x)) / d x`` with ``torch.autograd.grad`` (PyTorch); zeros when ``fn``
    does not use ``x``."""
    import torch

    tensor = ops.convert_to_tensor(x).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(ops.sum(fn(tensor)), tensor, allow_unused=True)
    return torch.zeros_like(tensor) if grad is None else grad


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


# --------------------------------------------------------------------------- layers


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


def _output_shape(model, layer):
    try:
        return tuple(_tensor_of(model, layer, "output").shape)
    except (AttributeError, ValueError):
        return None
