"""A new head on a frozen backbone: ``InferenceMode``, freezing, unfreezing, what will train.

The lectures' *Transfer learning* slides: on a small dataset, freeze the backbone, train a
new head, then (maybe) fine-tune its deepest blocks.  Two classic failures are named here:

* **BatchNorm statistics wrecked by fine-tuning.**  The Keras transfer-learning guide calls the
  base with ``base(x, training=False)``.  On Keras 3 that flag is *overridden*: ``fit`` calls a
  Functional model with ``training=True`` and the Functional graph passes that value to every
  layer, whatever the node recorded (keras-team/keras#20285; reproduced on Keras 3.15.1 with
  the TensorFlow and JAX backends: the moving statistics change).  Two things do hold, and
  ``build_transfer_model`` / ``unfreeze`` use both: a BatchNormalization layer with
  ``trainable=False`` always normalises with its moving statistics (Keras 3 runs it in
  inference mode), and :class:`InferenceMode`, a layer whose ``call`` fixes ``training=False``
  for the backbone inside it, so no outer flag reaches it.
* **Trainability you cannot see.**  :func:`trainable_summary` counts, per block, what ``fit``
  will update, what is frozen and the BatchNorm statistics no optimizer trains.

Used in: no lab notebook directly; the labs import these names from cnnlab.transfer
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers

from cnnlab.graph import nested_layers  # the one reader of private Keras attributes

__all__ = [
    "InferenceMode",
    "TrainableSummary",
    "backbone_blocks",
    "build_transfer_model",
    "freeze",
    "trainable_summary",
    "unfreeze",
]


@keras.saving.register_keras_serializable(package="cnnlab")
class InferenceMode(keras.layers.Wrapper):
    """Runs the wrapped backbone in inference mode, whatever ``training`` flag ``fit`` passes.

    BatchNormalization inside normalises with its moving statistics and never updates them;
    dropout inside is off.  Its weights still train when they are trainable.  This is what
    the guide's ``base(x, training=False)`` means, made to hold on Keras 3: the Functional
    graph overrides a recorded ``training=False`` (keras-team/keras#20285), but not a
    ``training=False`` fixed inside a layer's ``call``.

    Used in: labs/09_transfer_learning
    """

    def call(self, inputs, training=None):
        return self.layer(inputs, training=False)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)


def _find_backbone(model):
    """The backbone inside a model from :func:`build_transfer_model`, else ``model`` itself."""
    if isinstance(model, InferenceMode):
        return model.layer
    wrappers = [layer for layer in getattr(model, "layers", []) if isinstance(layer, InferenceMode)]
    if len(wrappers) == 1:
        return wrappers[0].layer
    return model


def _is_transfer_model(model) -> bool:
    return _find_backbone(model) is not model


def build_transfer_model(backbone, num_classes, dropout=0.2, augmentation=None, name=None):
    """A new classifier on a pre-trained backbone: image -> [augmentation] -> backbone -> head.

    The backbone is wrapped in :class:`InferenceMode` (layer ``"backbone"``; the backbone is
    ``model.get_layer("backbone").layer``), so its BatchNormalization layers keep their
    moving statistics even when it is unfrozen, and it starts **frozen**.  ``augmentation``:
    a Keras layer (e.g. a ``keras.Sequential`` of ``RandomFlip``...) or a list of layers,
    active only in training.  Head: global average pooling (when the backbone gives feature
    maps), ``Dropout(dropout)``, ``Dense(num_classes, softmax)`` (``num_classes=1``: sigmoid,
    for binary labels), computed in float32 under mixed precision.  Inputs are what
    ``preprocess_for(backbone)`` returns.  Train it with :func:`fine_tune`, or compile and
    fit; after any ``trainable`` change, compile again.

    Used in: labs/09_transfer_learning
    """
    if not isinstance(backbone, keras.Model):
        raise TypeError(f"backbone must be a keras Model (e.g. load_backbone('efficientnet_lite0'"
                        f")), got {type(backbone).__name__}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) \
            or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a rate in [0, 1), got {dropout!r}")
    shape = tuple(backbone.input_shape[1:])
    if None in shape:
        raise ValueError(f"the backbone's input shape {shape} is not fixed; load it with "
                         "input_shape=(h, w, 3)")
    inputs = keras.Input(shape=shape, name="image")
    x = inputs
    if augmentation is not None:
        steps = augmentation if isinstance(augmentation, (list, tuple)) else [augmentation]
        for step in steps:
            if not callable(step):
                raise TypeError(f"augmentation must be Keras layers, got {step!r}")
            x = step(x)
    freeze(backbone)
    x = InferenceMode(backbone, name="backbone")(x)
    if len(x.shape) == 4:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif len(x.shape) != 2:
        raise ValueError(f"the backbone outputs shape {x.shape}; expected feature maps "
                         "(n, h, w, c) or pooled features (n, c)")
    if dropout:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    activation = "sigmoid" if num_classes == 1 else "softmax"
    outputs = layers.Dense(int(num_classes), activation=activation, dtype="float32",
                           name="predictions")(x)
    return keras.Model(inputs, outputs, name=name or f"{backbone.name}_transfer")


def _set_trainable(layer, value: bool) -> None:
    """``trainable = value`` on ``layer`` and on every layer inside it.

    Not just ``layer.trainable = value``: with the TensorFlow backend, Keras 3 skips that
    assignment when ``layer.trainable`` already has the value (its attribute tracking
    short-circuits ``self.x = x``), so ``model.trainable = True`` on a trainable model does not
    reach a backbone frozen inside it."""
    for sub in nested_layers(layer, include_self=True):
        sub.trainable = value


def _batch_norms(layer):
    return [sub for sub in nested_layers(layer, include_self=True)
            if isinstance(sub, layers.BatchNormalization)]


def freeze(model):
    """Freeze every layer of ``model`` (``model.trainable = False``) and return it.

    ``freeze(backbone)`` before training a new head; ``freeze(model)`` freezes a whole model.
    Compile (again) afterwards: Keras fixes the trained weights when it compiles.

    Used in: labs/09_transfer_learning
    """
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"freeze expects a Keras model or layer, got {type(model).__name__}")
    _set_trainable(model, False)
    return model


# Block names in keras.applications / cnnlab layer names: conv4_block2 (ResNet), block_13 /
# expanded_conv (MobileNetV2), block5 (VGG), block6a (EfficientNet, Lite0), stem, top.
_BLOCK_PATTERNS = (re.compile(r"^(conv\d+_block\d+)_"), re.compile(r"^(conv\d+)_"),
                   re.compile(r"^(block_?\d+[a-z]?)_"), re.compile(r"^(expanded_conv)_"),
                   re.compile(r"^(stem|top)_"))


def backbone_blocks(model) -> list[tuple[str, list]]:
    """``[(block name, [layers])]`` of a flat model (a backbone), in order, InputLayers left out.

    Blocks are found from the layer names keras.applications and cnnlab use: ``conv4_block2``
    (ResNet), ``block_13`` / ``expanded_conv`` (MobileNetV2), ``block5`` (VGG), ``block6a``
    (EfficientNet, Lite0), ``stem``, ``top``.  Layers whose names match no block pattern
    belong to the block before them ("stem" before the first block, "top" after the last); in
    a model with no block names at all, every layer is its own block.  What
    :func:`unfreeze` (``fraction=``) and :func:`trainable_summary` count in.

    Used in: no lab notebook directly; the freezing exercise's checks read it
    """
    members = [layer for layer in model.layers if not isinstance(layer, layers.InputLayer)]
    names = []
    for layer in members:
        match = next((p.match(layer.name) for p in _BLOCK_PATTERNS if p.match(layer.name)), None)
        names.append(match.group(1) if match else None)
    if not any(names):
        return [(layer.name, [layer]) for layer in members]
    last = max(i for i, block in enumerate(names) if block)
    blocks, current = [], "stem"
    for i, (layer, block) in enumerate(zip(members, names)):
        block = block or ("top" if i > last else current)
        current = block
        if blocks and blocks[-1][0] == block:
            blocks[-1][1].append(layer)
        else:
            blocks.append((block, [layer]))
    return blocks


def unfreeze(backbone, from_layer=None, fraction=None, keep_batchnorm_frozen=True):
    """Make (part of) a backbone trainable again, for fine-tuning; returns the backbone.

    ``backbone``: a backbone, or a model from :func:`build_transfer_model` (then its backbone,
    and the head stays trainable).  Which layers: all (default); from ``from_layer`` (a layer
    name or index) to the end; or the deepest ``fraction`` of the backbone's blocks
    (``fraction=0.25``: the last quarter, at least one block; blocks as in
    :func:`trainable_summary`).  ``keep_batchnorm_frozen=True`` (default) keeps every
    BatchNormalization layer at ``trainable=False``: Keras 3 then normalises with the moving
    statistics and never updates them, and gamma/beta stay fixed.  With ``False`` the
    BatchNorm layers train (and, outside :class:`InferenceMode`, their statistics drift to
    the new small batches: the classic failure).  Compile again afterwards.

    Used in: labs/09_transfer_learning
    """
    if from_layer is not None and fraction is not None:
        raise ValueError("give from_layer or fraction, not both")
    target = _find_backbone(backbone)
    if not isinstance(target, keras.Model):
        raise TypeError(f"unfreeze expects a Keras model, got {type(target).__name__}")
    members = [layer for layer in target.layers if not isinstance(layer, layers.InputLayer)]
    start = 0
    if from_layer is not None:
        if isinstance(from_layer, str):
            names = [layer.name for layer in members]
            if from_layer not in names:
                close = difflib.get_close_matches(from_layer, names, n=3)
                raise ValueError(f"{target.name} has no layer {from_layer!r}"
                                 + (f"; close names: {', '.join(close)}" if close else "")
                                 + "; see [layer.name for layer in backbone.layers]")
            start = names.index(from_layer)
        elif isinstance(from_layer, (int, np.integer)) and not isinstance(from_layer, bool):
            if not -len(members) <= from_layer < len(members):
                raise ValueError(f"from_layer={from_layer} is out of range: {target.name} has "
                                 f"{len(members)} layers")
            start = int(from_layer) % len(members)
        else:
            raise TypeError(f"from_layer must be a layer name or index, got {from_layer!r}")
    elif fraction is not None:
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) \
                or not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], e.g. 0.25 for the deepest quarter "
                             f"of the blocks, got {fraction!r}")
        blocks = [(block, group) for block, group in backbone_blocks(target)
                  if any(layer.weights for layer in group)]
        count = max(1, math.ceil(fraction * len(blocks)))
        start = members.index(blocks[-count][1][0])
    _set_trainable(backbone if _is_transfer_model(backbone) else target, True)
    for layer in members[:start]:
        _set_trainable(layer, False)
    if keep_batchnorm_frozen:
        for layer in _batch_norms(target):
            _set_trainable(layer, False)
    return target


@dataclass
class TrainableSummary:
    """What :func:`trainable_summary` returns: per-block parameter counts, as a table.

    ``table``: a pandas DataFrame (``block``, ``trainable``, ``frozen``, ``statistics``);
    ``trainable`` / ``frozen`` / ``statistics``: the totals.  ``frozen`` counts weights that
    could train but are frozen now; ``statistics`` counts BatchNorm moving means and variances
    (and Normalization state), which no optimizer ever trains.
    """

    model_name: str
    table: object
    trainable: int
    frozen: int
    statistics: int

    @property
    def total(self) -> int:
        return self.trainable + self.frozen + self.statistics

    def __str__(self) -> str:
        lines = [f"{self.model_name}: {self.trainable:,} trainable, {self.frozen:,} frozen, "
                 f"{self.statistics:,} statistics ({self.total:,} parameters)"]
        lines.append(self.table.to_string(index=False, formatters={
            column: "{:,}".format for column in ("trainable", "frozen", "statistics")}))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return (f"<p><b>{self.model_name}</b>: {self.trainable:,} trainable, {self.frozen:,} "
                f"frozen, {self.statistics:,} statistics ({self.total:,} parameters)</p>"
                + self.table.to_html(index=False))


def _statistics_ids(model) -> set:
    ids = set()
    for layer in nested_layers(model, include_self=True):
        if isinstance(layer, layers.BatchNormalization):
            ids.update(id(v) for v in (layer.moving_mean, layer.moving_variance))
        elif isinstance(layer, layers.Normalization):
            ids.update(id(v) for v in layer.weights)
    return ids


def trainable_summary(model):
    """Trainable, frozen and statistics parameters per block of a (transfer) model.

    Rows: the blocks of the backbone inside (``"resnet50/conv5_block3"``, ``"backbone/top"``
    ...; see :func:`unfreeze` for how blocks are found) and the other layers by name; layers
    without weights are left out.  A weight is ``trainable`` exactly when it is in
    ``model.trainable_weights`` (what ``fit`` will update), so the ``trainable`` total equals
    ``sum(np.prod(w.shape) for w in model.trainable_weights)`` and the three totals add up to
    ``model.count_params()``.  Returns a :class:`TrainableSummary` (text, HTML, ``.table``).

    Used in: labs/09_transfer_learning
    """
    import pandas as pd

    if not isinstance(model, keras.Model):
        raise TypeError(f"trainable_summary expects a Keras model, got {type(model).__name__}")
    trainable_ids = {id(w) for w in model.trainable_weights}
    statistics_ids = _statistics_ids(model)
    seen = set()
    rows = []

    def add(block, group):
        counts = {"trainable": 0, "frozen": 0, "statistics": 0}
        for layer in group:
            for weight in layer.weights:
                if id(weight) in seen:
                    continue
                seen.add(id(weight))
                size = int(np.prod(weight.shape))
                kind = ("trainable" if id(weight) in trainable_ids else
                        "statistics" if id(weight) in statistics_ids else "frozen")
                counts[kind] += size
        if any(counts.values()):
            rows.append({"block": block, **counts})

    nested = [layer for layer in model.layers
              if isinstance(layer, (InferenceMode, keras.Model))]
    if not nested:  # a backbone itself: its blocks
        for block, group in backbone_blocks(model):
            add(block, group)
    for layer in model.layers:
        inner = layer.layer if isinstance(layer, InferenceMode) else layer
        if isinstance(inner, keras.Model):
            for block, group in backbone_blocks(inner):
                add(f"{inner.name}/{block}", group)
        add(layer.name, [layer])  # the layer's own weights (or whatever the blocks missed)
    table = pd.DataFrame(rows, columns=["block", "trainable", "frozen", "statistics"])
    return TrainableSummary(model.name, table, int(table["trainable"].sum()),
                            int(table["frozen"].sum()), int(table["statistics"].sum()))


