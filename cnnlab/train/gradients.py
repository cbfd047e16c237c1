"""Per-kernel gradient norms on one batch: ``gradient_norms`` and ``GradientNorms``.

The ISPR deck's vanishing gradients: the first layers of a deep plain net get tiny gradients;
residual connections and BatchNorm keep them up.  ``gradient_norms`` measures the L2 norm of
the loss gradient for every kernel, with one function per Keras backend (TensorFlow's
GradientTape, JAX's ``value_and_grad``, torch's autograd) chosen by
:func:`cnnlab.devices.for_backend`.  Lab 07 (labs/07_training_convnets_well) uses it.

Used in: no lab notebook directly; the labs import these names from cnnlab.train
"""

from __future__ import annotations

from collections.abc import Mapping

import keras
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from cnnlab._checks import renamed as _renamed
from cnnlab.devices import for_backend

__all__ = ["GradientNorms", "gradient_norms"]


class GradientNorms(Mapping):
    """Per-weight gradient L2 norms of one batch: a mapping ``weight path -> norm``.

    ``norms["conv2d/kernel"]`` is a float; ``norms.table`` a pandas DataFrame with one row per
    weight in model order (``layer``, ``weight``, ``shape``, ``norm``); ``norms.plot()`` draws
    them against depth.  ``gradient_norms`` returns it.
    """

    def __init__(self, rows, loss_value, model_name):
        self._rows = rows  # list of dicts in model order
        self._norms = {row["path"]: row["norm"] for row in rows}
        self.loss = loss_value
        self.model_name = model_name

    def __getitem__(self, path):
        return self._norms[path]

    def __iter__(self):
        return iter(self._norms)

    def __len__(self):
        return len(self._norms)

    @property
    def table(self):
        """One row per weight: layer, weight, shape, norm (a pandas DataFrame)."""
        import pandas as pd

        frame = pd.DataFrame(self._rows, columns=["layer", "weight", "shape", "norm", "path"])
        return frame.drop(columns="path")

    _HEADERS = ("layer", "weight", "shape", "norm")

    def _cells(self):
        """The rows of ``table`` as text cells, for cnnlab._tables."""
        return [[row["layer"], row["weight"], str(row["shape"]), f"{row['norm']:.4g}"]
                for row in self._rows]

    def __repr__(self):
        from cnnlab._tables import text_table

        title = f"GradientNorms of {self.model_name!r} (loss {self.loss:.4g} on one batch)"
        return f"{title}\n{text_table(self._HEADERS, self._cells(), right=(3,))}"

    def _repr_html_(self):
        import html

        from cnnlab._tables import html_table

        return (f"<p>Gradient L2 norms of <b>{html.escape(self.model_name)}</b> "
                f"(loss {self.loss:.4g} on one batch)</p>"
                f"{html_table(self._HEADERS, self._cells(), right=(3,))}")

    def plot(self, ax=None, label=None, log=True):
        """Draw norm against depth (input to output); returns the figure.

        Pass ``ax`` (and ``label``) to draw several models on one axes.
        """
        if ax is None:
            fig, ax = plt.subplots(figsize=(max(5.0, 0.5 * len(self) + 2.5), 4.8))
            own = True
        else:
            fig, own = ax.figure, False
        depth = np.arange(1, len(self) + 1)
        ax.plot(depth, list(self._norms.values()), marker="o", label=label or self.model_name)
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("weight (input -> output)")
        ax.set_ylabel("gradient L2 norm ‖∂L/∂W‖")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if own:
            ax.set_xticks(depth, [row["path"] for row in self._rows], rotation=45, ha="right",
                          fontsize="small")
            ax.set_title(f"Gradient norms, one batch: {self.model_name}")
        else:
            ax.legend()
        ax.grid(alpha=0.3)
        if own:
            fig.tight_layout()
            plt.close(fig)
        return fig


def _loss_callable(loss):
    """Return ``f(y_true, y_pred) -> scalar`` for a loss name, function or Loss object."""
    fn = keras.losses.get(loss) if isinstance(loss, (str, dict)) else loss
    if not callable(fn):
        raise TypeError(f"loss must be a name such as 'sparse_categorical_crossentropy', a keras "
                        f"Loss or a function (y_true, y_pred), got {loss!r}")
    return lambda y_true, y_pred: keras.ops.mean(fn(y_true, y_pred))


def _gradients(model, x, y, loss, training):
    """Return ``(loss value, gradients of model.trainable_variables)`` for the active backend.

    The model is left as it was: with the compiled loss the value is the one ``fit``
    differentiates (compiled loss + ``model.losses``, e.g. L2 penalties); with ``loss=`` it is
    that loss alone.  Moving statistics (BatchNorm) and RNG states are not advanced.
    """
    fn = None if loss is None else _loss_callable(loss)
    gradients = for_backend({"tensorflow": _tape_gradients, "jax": _jax_gradients,
                             "torch": _torch_gradients},
                            what="gradient_norms (automatic differentiation)")
    return gradients(model, x, y, fn, training)


def _jax_gradients(model, x, y, fn, training):
    """:func:`_gradients` under JAX: ``jax.value_and_grad`` of a stateless call, jitted."""
    import jax

    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    if fn is None:
        metrics = [v.value for v in model.metrics_variables]
        optimizer = getattr(model, "optimizer", None)
        optimizer_vars = [v.value for v in optimizer.variables] if optimizer else None

        def value(tv):
            return model.compute_loss_and_updates(
                tv, non_trainable, metrics, x, y, None, training=training,
                optimizer_variables=optimizer_vars)[0]
    else:
        def value(tv):
            y_pred, _ = model.stateless_call(tv, non_trainable, x, training=training)
            return fn(y, y_pred)

    loss_value, grads = jax.jit(jax.value_and_grad(value))(trainable)
    return float(loss_value), list(grads)


def _tape_gradients(model, x, y, fn, training):
    """:func:`_gradients` under TensorFlow: ``tf.GradientTape`` around a forward pass."""
    import tensorflow as tf

    def differentiate(value, variables):
        with tf.GradientTape() as tape:
            loss_value = value()
        return loss_value, tape.gradient(loss_value, variables)

    return _stateful_gradients(model, x, y, fn, training, differentiate)


def _torch_gradients(model, x, y, fn, training):
    """:func:`_gradients` under PyTorch: ``torch.autograd.grad`` of a forward pass (not
    exercised by the test suite, which has no torch)."""
    import torch

    def differentiate(value, variables):
        loss_value = value()
        return loss_value, torch.autograd.grad(loss_value, [v.value for v in variables],
                                               allow_unused=True)

    return _stateful_gradients(model, x, y, fn, training, differentiate)


def _stateful_gradients(model, x, y, fn, training, differentiate):
    """One forward pass differentiated by ``differentiate(value, variables) -> (loss,
    gradients)``, with the non-trainable variables (BatchNorm's moving statistics) put back."""
    variables = model.trainable_variables
    saved = [keras.ops.convert_to_numpy(v.value) for v in model.non_trainable_variables]

    def value():
        y_pred = model(x, training=training)
        if fn is None:
            return model.compute_loss(x=x, y=y, y_pred=y_pred, training=training)
        return fn(y, y_pred)

    try:
        loss_value, grads = differentiate(value, variables)
    finally:
        for v, old in zip(model.non_trainable_variables, saved):
            v.assign(old)
    return float(keras.ops.convert_to_numpy(loss_value)), list(grads)


@_renamed(include_biases="include_bias")
def gradient_norms(model, x, y, loss=None, include_bias=False, training=True):
    """Return the L2 norm of the loss gradient of every kernel, for one batch ``(x, y)``.

    The loss is the model's compiled one (plus ``model.losses``, as ``fit`` sees it) unless
    ``loss=`` (a name, Loss or function) is given; ``training=True`` runs the layers as ``fit``
    does (BatchNorm on batch statistics, dropout on), without updating the model.  Kernels are
    the trainable weights named ``kernel`` (also ``depthwise_kernel``, ``pointwise_kernel``,
    ``recurrent_kernel``); ``include_bias=True`` adds ``bias`` weights.  One function for every
    backend: TensorFlow (GradientTape), JAX (``jax.value_and_grad`` of the model's stateless
    loss) and torch (autograd).  Returns a ``GradientNorms`` mapping ``"layer/kernel" -> norm``
    in model order, with ``.table`` and ``.plot()``.

    Used in: labs/07_training_convnets_well
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}")
    if not model.built:
        raise ValueError(f"model {model.name!r} is not built; give it an Input shape or call it "
                         "on a batch first")
    if loss is None and (not getattr(model, "compiled", False) or model.loss is None):
        raise ValueError(f"model {model.name!r} has no compiled loss; call model.compile(loss=...) "
                         "or pass loss='sparse_categorical_crossentropy' (or another loss)")
    wanted = ("kernel", "bias") if include_bias else ("kernel",)
    chosen = [i for i, v in enumerate(model.trainable_variables)
              if v.name.endswith("kernel") or (v.name == "bias" and "bias" in wanted)]
    if not chosen:
        raise ValueError(f"model {model.name!r} has no trainable kernels to measure; unfreeze a "
                         "layer (layer.trainable = True) or pass include_bias=True")
    x = keras.tree.map_structure(keras.ops.convert_to_tensor, x)
    y = keras.tree.map_structure(keras.ops.convert_to_tensor, y)
    loss_value, grads = _gradients(model, x, y, loss, training)
    rows = []
    for i in chosen:
        v, g = model.trainable_variables[i], grads[i]
        g = np.zeros(v.shape) if g is None else keras.ops.convert_to_numpy(g).astype(np.float64)
        path = v.path.removeprefix(model.name + "/")  # Sequential paths start with the model
        rows.append({"layer": path.rsplit("/", 1)[0] if "/" in path else path,
                     "weight": v.name, "shape": tuple(v.shape),
                     "norm": float(np.sqrt(np.sum(g * g))), "path": path})
    return GradientNorms(rows, loss_value, model.name)
