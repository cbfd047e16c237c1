"""Training curves side by side: ``compare_histories``.

The Fix deck's CIFAR-100 ablation (base -> +BatchNorm -> +augmentation -> +regularization) is
read off train (solid) and validation (dashed) curves of several runs, one subplot per metric;
a ``"phase_boundary"`` key marks where fine-tuning starts (Lab 09's two-phase transfer).
Labs 06, 07 and 09 draw their runs with it (imported from ``cnnlab.train``).

Used in: no lab notebook directly; the labs import these names from cnnlab.train
"""

from __future__ import annotations

from collections.abc import Mapping

import keras
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

__all__ = ["compare_histories"]


PHASE_BOUNDARY = "phase_boundary"  # history-dict key: 0-based index of the first fine-tuning epoch


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
