"""Training helpers the labs share: curves, gradient norms, quiet fits, seeds, kernel-only L2.

The lectures' "training ConvNets well" story (Fix deck, CIFAR-100 ablation: base -> +BatchNorm
-> +augmentation -> +regularization; ISPR deck: vanishing gradients, ResNet, BatchNorm) needs
the same few tools in several labs, so they live here once instead of as copied loops:

- ``compare_histories`` draws train (solid) and validation (dashed) curves of several runs side
  by side, one subplot per metric; a ``"phase_boundary"`` key marks where fine-tuning starts.
- ``gradient_norms`` measures the L2 norm of the loss gradient for every kernel on one batch
  (vanishing gradients: the first layers of a deep plain net get tiny gradients; residual
  connections and BatchNorm keep them up).  One function, dispatching on the Keras backend.
- ``fit_quietly`` / ``EpochProgress`` print one line per epoch instead of Keras's progress bars.
- ``set_seed`` makes a run repeatable; ``set_deterministic`` makes it repeatable on any number
  of cores (one intra-op thread).
- ``weight_scale_sweep`` trains one model from kernels drawn at several scales, the state reset
  in between (CS231n's BatchNorm-against-initialisation sweep: without BatchNorm only a narrow
  band of scales trains; with it, nearly any scale does).
- ``l2_on_kernels_only`` puts weight decay on conv/dense kernels only, as the Fix deck does:
  "only the weights of the convolution and linear layers are regularized (not the bias, nor the
  coefficients of the Batch Norm)".
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping

import keras
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator
from keras import layers

from cnnlab._checks import renamed as _renamed
from cnnlab.devices import for_backend
from cnnlab.graph import nested_layers

__all__ = [
    "EpochProgress",
    "GradientNorms",
    "compare_histories",
    "fit_quietly",
    "gradient_norms",
    "l2_on_kernels_only",
    "set_deterministic",
    "set_seed",
    "weight_scale_sweep",
]

PHASE_BOUNDARY = "phase_boundary"  # history-dict key: 0-based index of the first fine-tuning epoch


# --------------------------------------------------------------------------- histories


def _history_dict(name, history):
    """Return ``(metrics dict, x positions, phase boundary)`` of one run."""
    if isinstance(history, keras.callbacks.History):
        values = dict(history.history)
        epochs = list(getattr(history, "epoch", []))
    elif isinstance(history, Mapping):
        values = dict(history)
        epochs = []
    else:
        raise TypeError(
            f"history {name!r} is a {type(history).__name__}; pass the keras History that fit() "
            "returns or a dict such as {'loss': [...], 'val_loss': [...]}"
        )
    boundary = values.pop(PHASE_BOUNDARY, None)
    lengths = {len(v) for v in values.values() if isinstance(v, (list, tuple, np.ndarray))}
    n = max(lengths, default=0)
    if epochs and len(epochs) == n:
        x = [int(e) + 1 for e in epochs]  # History.epoch is 0-based and knows initial_epoch
    else:
        x = list(range(1, n + 1))
    if boundary is not None:
        if isinstance(boundary, bool) or not isinstance(boundary, (int, np.integer)):
            raise TypeError(
                f"history {name!r}: {PHASE_BOUNDARY} must be an int (the 0-based index of the "
                f"first fine-tuning epoch, e.g. len(history1.epoch)), got {boundary!r}"
            )
        if not x or not x[0] - 1 < boundary < x[-1]:
            raise ValueError(
                f"history {name!r}: {PHASE_BOUNDARY}={boundary} does not split its {n} epochs "
                "in two; use the number of epochs of the first phase (len(history1.epoch))"
            )
    return values, x, boundary


def compare_histories(histories, metrics=("loss", "accuracy"), title=None):
    """Plot train (solid) and validation (dashed) curves of several runs, one subplot per metric.

    ``histories`` maps a run name to the ``keras.callbacks.History`` that ``fit`` returns, or to
    a plain dict of lists (``{"loss": [...], "val_loss": [...]}``, e.g. ``history.history`` or
    two phases merged by hand).  Each run keeps one colour in every subplot; epochs count from 1
    (a History fitted with ``initial_epoch`` starts where it started).  A dict may carry
    ``"phase_boundary"``: the 0-based index of the first epoch of the second phase (the
    ``initial_epoch`` of the fine-tuning ``fit``); a vertical dashed line labelled
    "fine-tuning starts" is drawn between the two phases.  A run without ``val_<metric>`` draws
    its training curve only.  Returns the figure.

    Used in: labs/06_data_augmentation, labs/07_training_convnets_well,
    labs/09_transfer_learning
    """
    if isinstance(histories, keras.callbacks.History) or not isinstance(histories, Mapping):
        raise TypeError(
            f"histories must be a dict {{name: History or dict}}, got {type(histories).__name__}; "
            "e.g. compare_histories({'base': history})"
        )
    if not histories:
        raise ValueError("histories is empty; pass at least one run, e.g. {'base': history}")
    if isinstance(metrics, str):
        metrics = (metrics,)
    metrics = tuple(metrics)
    if not metrics:
        raise ValueError("metrics is empty; e.g. metrics=('loss', 'accuracy')")
    for metric in metrics:
        if not isinstance(metric, str):
            raise TypeError(f"metrics must be names such as 'loss', got {metric!r}")
        if metric.startswith("val_"):
            raise ValueError(
                f"metric {metric!r}: give the training name {metric[4:]!r}; its validation curve "
                f"{metric!r} is drawn with it (dashed)"
            )

    runs = []
    for name, history in histories.items():
        values, x, boundary = _history_dict(name, history)
        for metric in metrics:
            if metric not in values:
                raise ValueError(
                    f"history {name!r} has no {metric!r}; it has {sorted(values)}. Pass metrics= "
                    "with names it has, or compile the model with metrics=[...] that log it"
                )
            for key in (metric, "val_" + metric):
                if key in values and len(values[key]) != len(x):
                    raise ValueError(
                        f"history {name!r}: {key!r} has {len(values[key])} values for "
                        f"{len(x)} epochs; validate every epoch (validation_freq=1)"
                    )
        runs.append((str(name), values, x, boundary))

    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    n_boundaries = sum(boundary is not None for *_, boundary in runs)
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.8 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for i, (name, values, x, boundary) in enumerate(runs):
            color = colors[i % len(colors)]
            ax.plot(x, values[metric], color=color, linestyle="-", label=f"{name} (train)")
            if "val_" + metric in values:
                ax.plot(x, values["val_" + metric], color=color, linestyle="--",
                        label=f"{name} (validation)")
            if boundary is not None:
                label = "fine-tuning starts" if n_boundaries == 1 else (
                    f"{name}: fine-tuning starts")
                ax.axvline(boundary + 0.5, color=color if n_boundaries > 1 else "grey",
                           linestyle="--", linewidth=1, label=label)
        ax.set_title(metric)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    handles = {}  # one legend for all subplots (a run may lack a curve in one of them)
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    axes[0][-1].legend(handles.values(), handles.keys(), fontsize="small")
    fig.suptitle(title or "Training (solid) and validation (dashed) curves")
    fig.tight_layout()
    plt.close(fig)  # returned to the caller: pyplot must not show it a second time
    return fig


# --------------------------------------------------------------------------- gradient norms


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


# --------------------------------------------------------------------------- quiet fits


class EpochProgress(keras.callbacks.Callback):
    """A callback that prints one line per epoch: epoch, seconds, metrics.

    ``progress=True`` shows one ``tqdm.auto`` bar over the epochs instead (one line in notebooks and
    terminals, metrics in its postfix).  Lines go to ``file`` (``sys.stdout`` when None).
    ``fit_quietly`` adds it; pass it to ``callbacks=`` yourself with ``fit(verbose=0)``.
    """

    @_renamed(bar="progress")
    def __init__(self, progress=False, file=None):
        super().__init__()
        self.progress = bool(progress)
        self.file = file
        self._bar = None
        self._start = None

    def _out(self):
        return sys.stdout if self.file is None else self.file

    def on_train_begin(self, logs=None):
        if self.progress:
            from tqdm.auto import tqdm

            epochs = self.params.get("epochs")
            self._bar = tqdm(total=epochs, unit="epoch", desc="fit", file=self._out())

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - (self._start or time.perf_counter())
        logs = {k: v for k, v in (logs or {}).items() if np.ndim(v) == 0}
        order = sorted(logs, key=lambda k: (k.startswith("val_"), k.removeprefix("val_") != "loss"))
        metrics = {k: float(logs[k]) for k in order}  # loss first, then validation
        if self._bar is not None:
            self._bar.n = epoch + 1
            self._bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items()}, refresh=False)
            self._bar.refresh()
            return
        epochs = self.params.get("epochs", "?")
        width = len(str(epochs))
        parts = [f"epoch {epoch + 1:>{width}}/{epochs}", f"{seconds:6.1f} s"]
        parts += [f"{k} {v:.4f}" for k, v in metrics.items()]
        print("  ".join(parts), file=self._out(), flush=True)

    def on_train_end(self, logs=None):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


@_renamed(bar="progress")
def fit_quietly(model, *args, progress=False, file=None, **kwargs):
    """Call ``model.fit(*args, **kwargs)`` with one printed line per epoch; return the History.

    Keras runs with ``verbose=0`` (no per-step progress bars filling notebook outputs); an
    ``EpochProgress`` callback is added to ``callbacks=``.  ``progress=True`` shows one tqdm bar
    over the epochs instead of lines.

    Used in: labs/06_data_augmentation, labs/07_training_convnets_well,
    labs/09_transfer_learning
    """
    if "verbose" in kwargs:
        raise TypeError("fit_quietly sets verbose=0 itself and prints one line per epoch; drop "
                        "verbose= (or call model.fit for Keras's own progress bars)")
    callbacks = list(kwargs.pop("callbacks", None) or [])
    callbacks.append(EpochProgress(progress=progress, file=file))
    return model.fit(*args, verbose=0, callbacks=callbacks, **kwargs)


def set_seed(seed):
    """Seed Python, NumPy and the Keras backend (``keras.utils.set_random_seed``); return seed.

    Two runs after the same ``set_seed`` build the same initial weights and shuffle the same way,
    so an ablation compares models, not luck.

    Used in: labs/06_data_augmentation, labs/07_training_convnets_well,
    labs/09_transfer_learning
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {seed!r}; e.g. set_seed(42)")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}; e.g. set_seed(42)")
    keras.utils.set_random_seed(int(seed))
    return int(seed)


def set_deterministic(threads=1):
    """Make this kernel's training give the same numbers whatever the machine's core count.

    ``set_seed`` fixes the random draws, but a float sum taken in another order gives other
    last digits: TensorFlow splits a convolution's gradient over its intra-op threads, so the
    same seeded fit ends with other weights on one core than on two (measured: Lab 09's digit
    ResNet after two epochs differs in every weight).  This pins TensorFlow's intra-op thread
    pool to ``threads``; with it, the same seeded fit gives the same weights bit for bit on a
    1-core and a 2-core setting (``TF_NUM_INTRAOP_THREADS``/``OMP_NUM_THREADS``), run after run.

    It does not call ``tf.config.experimental.enable_op_determinism``: on a CPU that gave the
    same weights here, and it makes every ``fit`` on NumPy arrays log a C++ error line about
    tf.data's parallel map into the notebook.  Another CPU model (AVX2 against AVX-512 kernels)
    can still differ in the last digits: pin training results as relations, not literals.  The
    JAX and torch backends are left as they are; returns the thread count in force, or
    ``None`` for another backend.

    Call it before the first TensorFlow operation of the kernel (a parameters cell): TensorFlow
    fixes its thread pools then.  Calling it again with the same count is harmless.

    Used in: labs/09_transfer_learning
    """
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads must be a whole number >= 1, got {threads!r}; "
                         "e.g. set_deterministic(threads=1)")
    pin = for_backend({"tensorflow": _pin_tensorflow_threads}, default=None)
    return None if pin is None else pin(int(threads))


def _pin_tensorflow_threads(threads):
    """:func:`set_deterministic` under TensorFlow: its intra-op pool set to ``threads``."""
    import tensorflow as tf

    threading = tf.config.threading
    if threading.get_intra_op_parallelism_threads() != threads:
        try:
            threading.set_intra_op_parallelism_threads(threads)
        except RuntimeError as exc:
            raise RuntimeError(
                f"TensorFlow already runs with {threading.get_intra_op_parallelism_threads()} "
                f"intra-op threads (0 = one per core) and cannot change them now ({exc}); "
                "restart the kernel and call set_deterministic() before the first TensorFlow "
                "operation, e.g. in the parameters cell") from None
    return threads


# --------------------------------------------------------------------------- weight-scale sweep

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


# --------------------------------------------------------------------------- kernel-only L2

# layer type -> (regularizer attribute, weight name) pairs that hold its kernels
_KERNEL_SLOTS = (
    ((layers.SeparableConv1D, layers.SeparableConv2D),
     (("depthwise_regularizer", "depthwise_kernel"),
      ("pointwise_regularizer", "pointwise_kernel"))),
    ((layers.DepthwiseConv1D, layers.DepthwiseConv2D),
     (("depthwise_regularizer", "kernel"),)),
    ((layers.Conv1D, layers.Conv2D, layers.Conv3D,
      layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose,
      layers.Dense, layers.EinsumDense),
     (("kernel_regularizer", "kernel"),)),
)


def _kernel_slots(layer):
    for types, slots in _KERNEL_SLOTS:
        if isinstance(layer, types):
            return slots
    return ()


@_renamed(factor="l2")
def l2_on_kernels_only(model, l2):
    """Put an L2 penalty ``l2 * sum(kernel**2)`` on every conv/dense kernel; return the model.

    Kernels of Conv1D/2D/3D (and Transpose), Dense, EinsumDense, DepthwiseConv (its depthwise
    kernel) and SeparableConv (depthwise and pointwise kernels) get ``keras.regularizers.L2``
    (replacing any kernel regularizer they had; ``l2=0`` removes them; ``l2`` is the argument
    of ``keras.regularizers.L2`` and of ``cnnlab.models.build_factorized_convnet``).  Biases and
    BatchNorm's gamma/beta are left alone, as in the Fix deck's ablation ("only the weights of
    the convolution and linear layers are regularized (not the bias, nor the coefficients of the
    Batch Norm)"): a bias only shifts a unit and gamma/beta only set the scale and offset of
    normalized activations, so pulling them to zero does not limit how sharply the function
    varies with its input the way shrinking weights does; it only biases units towards zero
    output (and decaying gamma fights the normalization).

    Works on built models: in Keras 3 a weight's penalty is ``variable.regularizer``, which
    ``add_weight`` copies from ``layer.kernel_regularizer`` only when the layer is built, so
    setting the layer attribute afterwards adds no loss.  This sets both (the attribute keeps the
    penalty in ``get_config``, ``clone_model`` and saved files), and drops the model's traced
    train/test steps, as ``compile`` does, so the next ``fit``/``evaluate`` sees the penalty.
    ``model.losses`` then holds one term per trainable kernel (frozen kernels count only
    while trainable).  The model is changed in place.

    Used in: labs/07_training_convnets_well
    """
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"model must be a keras Model or Layer, got {type(model).__name__}")
    if isinstance(l2, bool) or not isinstance(l2, (int, float, np.number)):
        raise TypeError(f"l2 must be a number such as 5e-4, got {l2!r}")
    if not (math.isfinite(l2) and l2 >= 0):
        raise ValueError(f"l2 must be a finite number >= 0 (e.g. 5e-4; 0 removes the "
                         f"penalty), got {l2!r}")
    # every tracked layer, as Layer.losses itself walks them (nested models, custom layers)
    found = 0
    for layer in nested_layers(model, include_self=True):
        for attribute, weight_name in _kernel_slots(layer):
            regularizer = keras.regularizers.L2(float(l2)) if l2 > 0 else None
            setattr(layer, attribute, regularizer)
            found += 1
            if layer.built:
                for v in layer.weights:
                    if v.name == weight_name:
                        v.regularizer = regularizer
    if not found:
        raise ValueError(f"{model.name!r} has no Conv/Dense kernels to regularize; "
                         "l2_on_kernels_only needs Conv*, Dense, DepthwiseConv* or SeparableConv*")
    for name in ("train_function", "test_function"):
        if getattr(model, name, None) is not None:
            setattr(model, name, None)
    return model
