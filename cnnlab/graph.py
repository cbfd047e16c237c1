"""The layer graph of a Keras model: which layer is called on which tensors, in which order.

Lecture idea: a CNN is a graph of layers, and what it costs (parameters, activations, MACs)
and what each unit sees (its receptive field) are read layer by layer along that graph,
from shapes alone, without running the model on data.

Why this module exists.  Keras 3 has no public API for the calls of a layer: ``layer.input``
and ``layer.output`` only give its first call, and nothing public says which call of a
shared layer feeds which.  So cnnlab has to read private Keras attributes
(``KerasTensor._keras_history``: the call that made a tensor; ``Operation._inbound_nodes``:
the calls of a layer; ``Node.arguments``: the arguments of one call).  All of that reading is
here, in one walker that ``cnnlab.counters`` (``summary``, ``count_macs``) and
``cnnlab.arithmetic`` (``receptive_field``, ``trace_shapes``) both use: a Keras change
touches this module only.  The same goes for the layers *inside* a layer: Keras tracks them in
the private ``Layer._layers`` and has no public recursive list (``model.layers`` stops at a
nested model and skips a custom layer's sublayers), so ``nested_layers`` reads it here, for
``cnnlab.train`` (kernel-only L2, the weight-scale sweep) and ``cnnlab.transfer`` (freezing a
backbone inside a model).  When an attribute this module reads is gone, it raises
``KerasInternalsError`` instead of silently seeing fewer layers (a freeze that skipped the
nested backbone would train it without a word).  Public Keras is used wherever it is enough
(``model.inputs``, ``model.outputs``, ``model.layers``, ``Node.input_tensors`` / ``outputs``,
``compute_output_spec``).

``trace_model(model)`` walks Sequential and Functional models, nested models (a backbone
used as a layer: its calls are listed inside it, named ``"backbone/conv1"``), shared layers
(one ``LayerCall`` per call), branches that merge (ResNet's ``Add``) and several inputs.
A nested model built for another input size gets the outer shapes, through each layer's
shape rule (``compute_output_spec``, i.e. ``compute_output_shape`` where a layer has one).

``layer_kind(layer)`` is the table of built-in Keras layers that cnnlab knows
(``KNOWN_LAYERS``); every other layer is *unknown*: cnnlab never treats it as doing nothing.
A custom layer makes itself known by declaring, as cnnlab's own layers do
(``cnnlab.layers``):

- ``receptive_field_step(self)``: the paper-design layer with the same geometry, a
  ``cnnlab.arithmetic.LayerSpec`` (or its dict / kind string): e.g.
  ``{"kind": "avg_pool", "pool_size": 2}`` for LeNet's subsampling, ``"activation"`` for a
  layer that works pixel by pixel, ``"flatten"`` for one that mixes all positions;
- ``count_macs(self, input_shape, output_shape)``: its multiply-accumulates with weights for
  one image (shapes with the batch axis), bias excluded;
- ``compute_output_shape(self, input_shape)``: Keras' own shape rule.

Used in: cnnlab.counters and cnnlab.arithmetic (not called from the labs directly).
"""

from dataclasses import dataclass

import keras

__all__ = [
    "KerasInternalsError",
    "KNOWN_LAYERS",
    "LAYER_KINDS",
    "LayerCall",
    "ModelTrace",
    "is_graph_model",
    "layer_kind",
    "layer_tensors",
    "nested_layers",
    "trace_model",
]

# kind -> the built-in Keras layers of that kind (class names in keras.layers).  The kind
# says everything counters and arithmetic need: how the layer moves a receptive field, its
# MAC rule, and whether its output is new memory.
LAYER_KINDS = {
    "input": ("InputLayer",),
    "conv": ("Conv1D", "Conv2D", "Conv3D"),
    "depthwise_conv": ("DepthwiseConv1D", "DepthwiseConv2D"),
    "separable_conv": ("SeparableConv1D", "SeparableConv2D"),
    "conv_transpose": ("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"),
    "pool": ("MaxPooling1D", "MaxPooling2D", "MaxPooling3D",
             "AveragePooling1D", "AveragePooling2D", "AveragePooling3D"),
    "global_pool": ("GlobalAveragePooling1D", "GlobalAveragePooling2D",
                    "GlobalAveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
                    "GlobalMaxPooling3D"),
    "zero_padding": ("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D"),
    "cropping": ("Cropping1D", "Cropping2D", "Cropping3D"),
    "upsampling": ("UpSampling1D", "UpSampling2D", "UpSampling3D"),
    # a view of the same values (not new memory); every output may come from anywhere
    "reshape": ("Flatten", "Reshape"),
    "permute": ("Permute",),
    "dense": ("Dense",),
    # per-channel constants at inference (BatchNormalization can be folded into the conv)
    "normalization": ("BatchNormalization", "Normalization"),
    # statistics over `axis` of each input: per pixel when that is the channel axis
    "axis_normalization": ("LayerNormalization", "UnitNormalization", "GroupNormalization",
                           "Softmax"),
    "activation": ("Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Rescaling"),
    # the identity at inference: their output is their input for one image at test time
    "identity": ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
                 "GaussianDropout", "AlphaDropout", "GaussianNoise", "ActivityRegularization",
                 "Identity", "RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom",
                 "RandomContrast", "RandomBrightness"),
    "merge": ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"),
}

KNOWN_LAYERS = tuple(sorted(name for names in LAYER_KINDS.values() for name in names))

_CLASSES = tuple(
    (kind, tuple(getattr(keras.layers, name) for name in names if hasattr(keras.layers, name)))
    for kind, names in LAYER_KINDS.items())


def layer_kind(layer):
    """The kind of a built-in Keras layer (a key of ``LAYER_KINDS``), ``"model"`` for a
    nested Sequential/Functional model, or None for a layer cnnlab does not know.

    Subclasses of a known layer have its kind.  None is never "does nothing": callers show
    "unknown" or raise, unless the layer declares ``receptive_field_step`` /
    ``count_macs`` (see the module docstring).

    Used in: cnnlab.counters and cnnlab.arithmetic (not called from the labs directly).
    """
    if is_graph_model(layer):
        return "model"
    for kind, classes in _CLASSES:
        if isinstance(layer, classes):
            return kind
    return None


def is_graph_model(obj):
    """True for a built Sequential or Functional model (a graph of layers that can be walked).

    A subclassed ``keras.Model`` is not: its graph only exists inside ``call()``.

    Used in: cnnlab.counters and cnnlab.arithmetic (not called from the labs directly).
    """
    if not isinstance(obj, keras.Model):
        return False
    try:
        inputs, outputs = obj.inputs, obj.outputs
    except (AttributeError, ValueError):  # unbuilt Sequential, subclassed model
        return False
    return bool(inputs) and bool(outputs)


@dataclass(frozen=True)
class LayerCall:
    """One call of one layer while a model runs, with shapes (batch axis included).

    ``inputs`` and ``outputs`` are keys of the tensors it reads and writes (ints, the same
    key wherever the same tensor appears, across nested models too).  ``path`` is ``""`` at
    the top and ``"backbone/"`` inside a nested model named backbone.  A nested model has a
    call of its own (``nested=True``) listed after the calls inside it; its outputs are the
    keys of its inner outputs.  An input layer of the top model has a call with no inputs.

    Used in: cnnlab.counters and cnnlab.arithmetic (not called from the labs directly).
    """

    index: int
    layer: object
    path: str
    inputs: tuple
    outputs: tuple
    input_shapes: tuple
    output_shapes: tuple
    nested: bool = False

    @property
    def name(self):
        """The layer's name with the nested-model path, e.g. ``"backbone/conv1"``."""
        return f"{self.path}{self.layer.name}"

    @property
    def description(self):
        """``"layer 'c1' (Conv2D)"``, for messages; a keras.ops call is said to be one."""
        kind = type(self.layer).__name__
        if isinstance(self.layer, keras.layers.Layer):
            return f"layer {self.name!r} ({kind})"
        return f"operation {self.name!r} ({kind}, a keras.ops call in the model, not a layer)"


class ModelTrace:
    """The calls of a model, in an order where each call comes after the calls it reads.

    ``calls`` (a list of ``LayerCall``), ``inputs`` / ``outputs`` (tensor keys of the model's
    inputs and outputs), ``shapes`` (tensor key -> shape with the batch axis) and
    ``rows(expand_nested)``: the layers in ``model.layers`` order with their calls.

    Used in: cnnlab.counters and cnnlab.arithmetic (not called from the labs directly).
    """

    def __init__(self, model):
        self.model = model
        self.calls = []
        self.shapes = {}
        self._specs = {}  # tensor key -> KerasTensor with that shape
        self.inputs = ()
        self.outputs = ()

    def rows(self, expand_nested=True):
        """``[(name, layer, [LayerCall, ...])]``: input layers first, then ``model.layers``.

        With ``expand_nested`` a nested model is replaced by its own layers, named
        ``"backbone/conv1"`` (its input layers are left out: they are the outer tensors);
        without, it is one row whose calls are its ``nested=True`` calls.
        """
        by_layer = {}
        for call in self.calls:
            by_layer.setdefault((call.path, id(call.layer)), []).append(call)
        rows = []
        self._add_rows(self.model, "", by_layer, expand_nested, rows, top=True)
        return rows

    def _add_rows(self, model, path, by_layer, expand_nested, rows, top):
        inputs = [_input_layer(x) for x in model.inputs] if top else []
        layers = inputs + [layer for layer in model.layers
                           if all(layer is not i for i in inputs)]
        for layer in layers:
            if isinstance(layer, keras.layers.InputLayer) and not top:
                continue
            if expand_nested and is_graph_model(layer):
                self._add_rows(layer, f"{path}{layer.name}/", by_layer, expand_nested, rows,
                               top=False)
            else:
                rows.append((f"{path}{layer.name}", layer,
                             by_layer.get((path, id(layer)), [])))


def trace_model(model):
    """Every layer call of a built Sequential or Functional model, with its shapes.

    Raises TypeError for something that is not a ``keras.Model`` and ValueError, with the
    fix, for a model without an input shape or a subclassed model.

    Used in: cnnlab.counters and cnnlab.arithmetic (not called from the labs directly).
    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"model must be a keras.Model, got {type(model).__name__}; build one with "
            "keras.Sequential([keras.Input(shape=...), ...]) or keras.Model(inputs, outputs)")
    if not is_graph_model(model):
        if isinstance(model, keras.Sequential):
            raise ValueError(
                f"model {model.name!r} has no input shape yet, so its layers have no output "
                "shapes; start it with keras.Input(shape=...) or call "
                "model.build(input_shape=(None, height, width, channels)) first")
        raise ValueError(
            f"model {model.name!r} ({type(model).__name__}) is a subclassed keras.Model: its "
            "layer graph only exists inside call(), so it cannot be followed; build it as "
            "keras.Sequential([keras.Input(shape=...), ...]) or keras.Model(inputs, outputs)")
    trace = ModelTrace(model)
    keys = []
    for x in model.inputs:
        key = len(trace.shapes)
        trace.shapes[key] = tuple(x.shape)
        trace._specs[key] = x
        keys.append(key)
        trace.calls.append(LayerCall(len(trace.calls), _input_layer(x), "", (), (key,), (),
                                     (tuple(x.shape),)))
    trace.inputs = tuple(keys)
    trace.outputs = tuple(_walk(model, keys, [x for x in model.inputs], "", trace))
    return trace


def layer_tensors(model, layer):
    """``[(input tensors, output tensors)]``, one pair per call of ``layer`` in ``model``'s own
    graph (not inside nested models), as the KerasTensors of that graph.

    ``layer.input`` / ``layer.output`` only give a layer's first call, which for a shared
    layer or a nested model may belong to another graph; this gives the calls of ``model``
    (for model surgery such as cnnlab.interpret's, without private Keras attributes there).

    Used in: no lab directly; for cnnlab modules that need a layer's tensors in one model.
    """
    if not is_graph_model(model):
        trace_model(model)  # raises the TypeError / ValueError that says what to do
    return [(list(node.input_tensors), list(node.outputs))
            for node in _nodes_in_order(model) if node.operation is layer]


class KerasInternalsError(RuntimeError):
    """A private Keras attribute that cnnlab.graph reads is gone (a Keras release renamed it):
    cnnlab stops rather than silently doing less.  Install the Keras version that
    cnnlab's requirements pin, or update cnnlab.graph for the new Keras."""


def _private(obj, attribute):
    """``obj.<attribute>``, or ``KerasInternalsError`` naming it when Keras no longer has it."""
    try:
        return getattr(obj, attribute)
    except AttributeError:
        raise KerasInternalsError(
            f"{type(obj).__name__} object {getattr(obj, 'name', obj)!r} has no attribute "
            f"{attribute!r}, which cnnlab.graph reads (Keras {keras.__version__}); this Keras "
            "release changed its internals: install the Keras version cnnlab's requirements "
            "pin, or update cnnlab.graph") from None


def nested_layers(layer_or_model, include_self=False):
    """Every layer inside ``layer_or_model``, recursively: the layers of nested models and the
    sublayers of custom layers too, each once, depth first (a layer before its sublayers);
    ``include_self=True`` puts ``layer_or_model`` itself first.

    ``model.layers`` lists only the top level (a backbone used as a layer is one entry);
    Keras keeps the tracked sublayers of every layer in the private ``Layer._layers``, and
    this is the one place in cnnlab that reads it.  Input layers are included.  Raises
    ``KerasInternalsError`` if a layer has no ``_layers`` (a Keras release renamed it) rather
    than returning fewer layers.

    Used in: no lab directly; cnnlab.train (l2_on_kernels_only, weight_scale_sweep) and
    cnnlab.transfer (freezing) walk models with it.
    """
    if not isinstance(layer_or_model, keras.layers.Layer):
        raise TypeError(f"layer_or_model must be a keras Layer or Model, got "
                        f"{type(layer_or_model).__name__}")
    found = [layer_or_model] if include_self else []
    seen = {id(layer_or_model)}
    stack = list(reversed(_private(layer_or_model, "_layers")))
    while stack:  # iterative: deep models exceed Python's recursion limit
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        found.append(layer)
        stack.extend(reversed(_private(layer, "_layers")))
    return found


def _input_layer(tensor):
    """The InputLayer that made a model input."""
    return _private(tensor, "_keras_history")[0]


def _producer(tensor):
    """The node (one call of one operation) that made ``tensor``, or None."""
    history = getattr(tensor, "_keras_history", None)  # set by Keras on every layer output
    if history is None:
        return None
    operation, node_index = history[0], history[1]
    return _private(operation, "_inbound_nodes")[node_index]


def _nodes_in_order(model):
    """The nodes between ``model.inputs`` and ``model.outputs``, each after its parents.

    Iterative post-order from the outputs (deep models exceed Python's recursion limit).
    """
    done = {id(x) for x in model.inputs}
    order, stack = [], list(model.outputs)
    while stack:
        tensor = stack[-1]
        if id(tensor) in done:
            stack.pop()
            continue
        node = _producer(tensor)
        if node is None or node.is_input:
            raise ValueError(
                f"model {model.name!r}: tensor {tensor.name!r} comes from no layer and is not "
                "one of model.inputs; build the model from keras.Input tensors only")
        parents = [t for t in node.input_tensors if id(t) not in done]
        if parents:
            stack.extend(parents)
            continue
        stack.pop()
        order.append(node)
        done.update(id(t) for t in node.outputs)
    return order


def _walk(model, input_keys, input_specs, path, trace):
    """Append the calls of ``model`` to ``trace``; return the keys of its outputs."""
    keys = {id(x): key for x, key in zip(model.inputs, input_keys)}
    specs = {id(x): spec for x, spec in zip(model.inputs, input_specs)}
    for node in _nodes_in_order(model):
        operation = node.operation
        in_keys = tuple(keys[id(t)] for t in node.input_tensors)
        in_specs = [specs[id(t)] for t in node.input_tensors]
        if is_graph_model(operation):
            if len(in_keys) != len(operation.inputs):
                raise ValueError(
                    f"nested model {operation.name!r} has {len(operation.inputs)} inputs but "
                    f"is called on {len(in_keys)} tensors; call it on a list in the order of "
                    "its keras.Input tensors")
            out_keys = _walk(operation, in_keys, in_specs, f"{path}{operation.name}/", trace)
            out_specs = [trace._specs[k] for k in out_keys]
            nested = True
        else:
            if all(tuple(a.shape) == tuple(b.shape) for a, b in zip(in_specs,
                                                                     node.input_tensors)):
                out_specs = list(node.outputs)  # the shapes Keras recorded
            else:  # e.g. a backbone built for any size, called on fixed-size inputs
                args, kwargs = node.arguments.fill_in(
                    {id(t): spec for t, spec in zip(node.input_tensors, in_specs)})
                out_specs = keras.tree.flatten(operation.compute_output_spec(*args, **kwargs))
            out_keys = []
            for spec in out_specs:
                key = len(trace.shapes)
                trace.shapes[key] = tuple(spec.shape)
                trace._specs[key] = spec
                out_keys.append(key)
            nested = False
        for tensor, key, spec in zip(node.outputs, out_keys, out_specs):
            keys[id(tensor)] = key
            specs[id(tensor)] = spec
        trace.calls.append(LayerCall(
            len(trace.calls), operation, path, in_keys, tuple(out_keys),
            tuple(trace.shapes[k] for k in in_keys), tuple(trace.shapes[k] for k in out_keys),
            nested))
    return [keys[id(x)] for x in model.outputs]
