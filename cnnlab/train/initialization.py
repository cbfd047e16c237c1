"""Initialisation against BatchNorm: ``weight_scale_sweep``.

CS231n's *Batch normalization and initialization*: one model trained from conv kernels drawn
at several scales, the state reset in between.  Without BatchNorm only a narrow band of scales
trains; with it, nearly any scale does.  Lab 07 (labs/07_training_convnets_well) uses it.

Used in: no lab notebook directly; the labs import these names from cnnlab.train
"""

from __future__ import annotations

import math

import numpy as np
from keras import layers

from cnnlab.graph import nested_layers

__all__ = ["weight_scale_sweep"]


_CONV_TYPES = (layers.Conv1D, layers.Conv2D, layers.Conv3D)


def _reset_for_scale(model, scale, rng, start=None):
    """Weights back to ``start`` (if given), then conv kernels ~ N(0, scale^2), conv biases 0,
    BatchNorm fresh, optimizer slots 0."""
    if start is not None:
        model.set_weights(start)
    for layer in nested_layers(model):
        if isinstance(layer, _CONV_TYPES):
            layer.kernel.assign(rng.normal(0.0, scale, layer.kernel.shape).astype("float32"))
            if layer.bias is not None:
                layer.bias.assign(np.zeros(layer.bias.shape, "float32"))
        elif isinstance(layer, layers.BatchNormalization):
            for weight, value in ((layer.gamma, 1.0), (layer.beta, 0.0),
                                  (layer.moving_mean, 0.0), (layer.moving_variance, 1.0)):
                if weight is not None:
                    weight.assign(np.full(weight.shape, value, "float32"))
    # the optimizer's state (step count, momentum or Adam's moments; built by the first fit)
    # starts again at 0; its learning rate, a variable too, is kept
    for variable in model.optimizer.variables:
        if variable.name != "learning_rate":
            variable.assign(np.zeros(variable.shape, variable.dtype))


def weight_scale_sweep(model, scales, x, y, epochs=3, batch_size=32, seed=0, progress=True):
    """Training loss per epoch of ``model`` started from conv kernels drawn at each scale.

    For every ``scale``: the convolution kernels are drawn from N(0, scale^2) (NumPy, ``seed``,
    the same draws for every model of the same shape), conv biases set to 0, BatchNorm layers
    reset (gamma 1, beta 0, moving mean 0, moving variance 1), every other weight (dense layers)
    put back to its value when the sweep began, and the optimizer's state set to 0 (its learning
    rate kept); then ``model.fit(x, y, epochs, batch_size, shuffle=False)``.  The compiled model
    is reused, so the sweep traces it once instead of once per scale.  ``model`` must be
    compiled; it is left trained at the last scale.

    CS231n's *Batch normalization and initialization*: a plain deep net trains only when its
    initial weights are near the right scale (too small, the signal vanishes; too large, it
    explodes), while with BatchNorm after every convolution the forward pass does not depend
    on the kernels' scale at all.  Returns a DataFrame, one row per scale (index ``scale``),
    columns ``epoch 1``, ..., ``epoch N`` (training loss) and ``accuracy`` (of the last epoch,
    when the model is compiled with it).

    Used in: labs/07_training_convnets_well
    """
    import pandas as pd
    from tqdm.auto import tqdm

    if getattr(model, "optimizer", None) is None or not getattr(model, "compiled", False):
        raise ValueError(f"compile {model.name!r} first (optimizer, loss), e.g. "
                         "model.compile(optimizer='adam', loss='sparse_categorical_crossentropy')")
    scales = [float(s) for s in np.atleast_1d(scales)]
    if not scales or not all(math.isfinite(s) and s > 0 for s in scales):
        raise ValueError(f"scales must be positive numbers, e.g. np.logspace(-4, 0, 5); "
                         f"got {scales!r}")
    if len(set(scales)) != len(scales):
        raise ValueError(f"scales repeat a value ({scales!r}); each scale is one row of the table")
    if not any(isinstance(layer, _CONV_TYPES)
               for layer in nested_layers(model)):
        raise ValueError(f"{model.name!r} has no Conv1D/2D/3D layer whose kernels could be drawn")
    start = model.get_weights()
    rows = {}
    for scale in tqdm(scales, desc="weight scales", disable=not progress):
        _reset_for_scale(model, scale, np.random.default_rng(seed), start)
        history = model.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=False,
                            verbose=0).history
        row = {f"epoch {i + 1}": float(v) for i, v in enumerate(history["loss"])}
        if "accuracy" in history:
            row["accuracy"] = float(history["accuracy"][-1])
        rows[scale] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "scale"
    return table
