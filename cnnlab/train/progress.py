"""One printed line per epoch instead of Keras's progress bars: ``EpochProgress``, ``fit_quietly``.

A notebook that trains several models (the Fix deck's ablations) stays readable when each
``fit`` prints one line per epoch (or one tqdm bar over the epochs).  Labs 06, 07 and 09 fit
with it; ``cnnlab.transfer.fine_tune`` shows its phases with ``EpochProgress``.

Used in: no lab notebook directly; the labs import these names from cnnlab.train
"""

from __future__ import annotations

import sys
import time

import keras
import numpy as np

from cnnlab._checks import renamed as _renamed

__all__ = ["EpochProgress", "fit_quietly"]


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
