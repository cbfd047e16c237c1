"""Fine-tuning in two phases: the new head on a frozen backbone, then its deepest blocks.

The lectures' *Transfer learning* slides: train the head first (a randomly initialised head
would send large gradients into the pre-trained weights), then unfreeze the deepest blocks and
train on with a small learning rate.  One classic failure is handled here: **forgetting to
recompile** after changing ``trainable``.  Keras 3 compiles the training step once: with the
TensorFlow backend ``fit`` silently keeps training the *old* set of weights; with JAX it
raises a ``ValueError`` about ``optimizer_variables`` and leaves the model's variables empty.
:func:`fine_tune` recompiles after every trainability change.

Used in: no lab notebook directly; the labs import fine_tune from cnnlab.transfer
"""

from __future__ import annotations

import math
import warnings

import keras
import numpy as np

from cnnlab.devices import device_report
from cnnlab.graph import nested_layers
from cnnlab.transfer.heads import _find_backbone, freeze, unfreeze

__all__ = ["fine_tune"]

_UNSET = object()


def _apply_mixed_precision(model) -> None:
    """Compute in float16 with float32 variables; the output layer stays float32."""
    output_layers = {id(layer) for layer in model.layers if layer.name == "predictions"}
    for layer in nested_layers(model, include_self=True):
        if id(layer) not in output_layers and layer.dtype_policy.name == "float32":
            layer.dtype_policy = "mixed_float16"


def _use_mixed_precision(mixed_precision) -> bool:
    if mixed_precision == "auto":
        return device_report().mixed_precision_helps
    if isinstance(mixed_precision, bool):
        return mixed_precision
    raise ValueError(f"mixed_precision must be 'auto', True or False, got {mixed_precision!r}")


def _fit_arguments(data, batch_size):
    """``(x, y)`` tuples become fit(x, y, batch_size=...); a dataset is passed through."""
    if isinstance(data, tuple) and len(data) == 2:
        return {"x": data[0], "y": data[1], "batch_size": batch_size, "shuffle": True}
    return {"x": data}


def _phase_unfreeze(model, unfreeze_spec):
    if unfreeze_spec is None or unfreeze_spec == "all":
        return unfreeze(model)
    if isinstance(unfreeze_spec, dict):
        return unfreeze(model, **unfreeze_spec)
    if isinstance(unfreeze_spec, float):
        return unfreeze(model, fraction=unfreeze_spec)
    if isinstance(unfreeze_spec, str):
        return unfreeze(model, from_layer=unfreeze_spec)
    raise TypeError(f"unfreeze must be a fraction of blocks (0.25), a layer name, or a dict of "
                    f"unfreeze() arguments, got {unfreeze_spec!r}")


def fine_tune(model, train, val, head_epochs=5, fine_tune_epochs=5, head_lr=1e-3,
              fine_tune_lr=None, unfreeze=0.25, mixed_precision="auto", callbacks=None, *,
              batch_size=32, loss=None, metrics=("accuracy",), patience=3, jit_compile="auto",
              progress=False, verbose=_UNSET):
    """Train a transfer model in two phases and return one merged history.

    ``model`` comes from :func:`build_transfer_model`.  ``train`` / ``val``: ``(x, y)`` arrays
    (already preprocessed; batched with ``batch_size`` and shuffled) or datasets of batches;
    ``val=None`` monitors the training loss instead.  Phase 1 freezes the backbone and trains
    the head for up to ``head_epochs`` at ``head_lr``.  Phase 2 unfreezes the deepest blocks
    (``unfreeze``: a fraction of the blocks, a layer name, ``"all"``, or a dict of
    :func:`unfreeze` arguments; BatchNorm stays frozen unless the dict says otherwise) and
    trains up to ``fine_tune_epochs`` more at ``fine_tune_lr`` (default ``head_lr / 10``).
    Each phase compiles the model again (a fresh Adam), because Keras fixes the trained weights
    when it compiles.  Each phase stops early after ``patience`` epochs without improvement of
    ``val_loss`` and restores its best weights; if fine-tuning never beats the head's best
    ``val_loss``, the head's weights are restored.  ``mixed_precision``: ``"auto"`` uses
    float16 compute where :func:`device_report` says it helps (a GPU with tensor cores),
    ``True`` / ``False`` force it (it changes the layers' dtype policy in place).  ``loss``
    defaults to sparse categorical cross-entropy (binary for one output unit); ``jit_compile``
    goes to ``compile`` (``False`` skips XLA's compile time, worth it for a few short epochs
    on a CPU).  ``progress=True`` shows one bar per phase (``cnnlab.train.EpochProgress``);
    ``verbose=`` (Keras's ``fit`` output) is deprecated: use ``progress=``.

    Returns a dict of per-epoch lists (``loss``, ``accuracy``, ``val_loss``, ...,
    ``learning_rate``, ``phase``: "head" or "fine_tune") plus ``phase_boundary``: the index
    of the first fine-tuning epoch (absent when phase 2 ran no epoch), which
    ``cnnlab.train.compare_histories`` draws as a line.

    Used in: labs/09_transfer_learning
    """
    if verbose is _UNSET:
        verbose = 0
    else:
        warnings.warn("fine_tune(verbose=...) is deprecated; use progress=True (a bar per phase) "
                      "or progress=False", DeprecationWarning, stacklevel=2)
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True or False, got {progress!r}")
    if progress:
        from cnnlab.train import EpochProgress

        callbacks = [*(callbacks or []), EpochProgress(progress=True)]
    backbone = _find_backbone(model)
    if backbone is model:
        raise ValueError("fine_tune expects a model from build_transfer_model(backbone, ...), "
                         "whose backbone it can freeze and unfreeze")
    for argument, value in (("head_epochs", head_epochs), ("fine_tune_epochs", fine_tune_epochs)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{argument} must be an integer >= 0, got {value!r}")
    fine_tune_lr = head_lr / 10 if fine_tune_lr is None else fine_tune_lr
    if _use_mixed_precision(mixed_precision):
        _apply_mixed_precision(model)
    if loss is None:
        loss = ("binary_crossentropy" if model.output_shape[-1] == 1
                else "sparse_categorical_crossentropy")
    monitor = "val_loss" if val is not None else "loss"
    history = {}
    best = (math.inf, None)  # (best monitored value, weights) over the phases

    def run(phase, epochs, learning_rate, initial_epoch):
        nonlocal best
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss,
                      metrics=list(metrics), jit_compile=jit_compile)
        stopper = keras.callbacks.EarlyStopping(monitor=monitor, patience=patience,
                                                restore_best_weights=True)
        result = model.fit(**_fit_arguments(train, batch_size),
                           **({} if val is None else {"validation_data": val}),
                           epochs=initial_epoch + epochs, initial_epoch=initial_epoch,
                           callbacks=[stopper, *(callbacks or [])], verbose=verbose)
        ran = len(result.epoch)
        for key, values in result.history.items():
            history.setdefault(key, []).extend(float(v) for v in values)
        history.setdefault("learning_rate", []).extend([float(learning_rate)] * ran)
        history.setdefault("phase", []).extend([phase] * ran)
        if ran and stopper.best is not None and stopper.best < best[0]:
            best = (float(stopper.best), model.get_weights())
        return ran

    freeze(backbone)
    ran = run("head", int(head_epochs), head_lr, 0)
    if fine_tune_epochs:
        _phase_unfreeze(model, unfreeze)
        best_head = best
        ran_fine = run("fine_tune", int(fine_tune_epochs), fine_tune_lr, ran)
        if ran_fine and ran:
            history["phase_boundary"] = ran
        if best is best_head and best[1] is not None:  # fine-tuning never did better
            model.set_weights(best[1])
    return history


