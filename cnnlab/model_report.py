"""The cost table of ``cnnlab.summary``: ``ModelReport``, its columns and its footer.

``cnnlab.counters`` counts (parameters, activations, memory, MACs, receptive fields, layer by
layer: the lecture's VGG16 "Memory and Parameters" table); this module presents the counts,
as torchinfo splits its summary into statistics and formatting: one row of cells per layer
(drawn by ``cnnlab._tables``, as every table of the package), ``"unknown"`` where cnnlab has
no rule, and a footer with the totals and the conventions behind them.  Lab 05 (architectures
and cost) prints these reports; ``cnnlab.counters`` re-exports ``ModelReport``.
"""

import html

from cnnlab._tables import html_table, text_table

__all__ = ["FIX", "UNKNOWN", "ModelReport"]

UNKNOWN = "unknown"  # the cell (and the MACs) of a layer cnnlab has no rule for

FIX = ("cnnlab knows the built-in Keras layers of cnnlab.graph.KNOWN_LAYERS; a custom layer "
       "declares count_macs(input_shape, output_shape) and receptive_field_step(), as "
       "cnnlab.layers does")


def _fmt_int(value):
    return "-" if value is None else f"{value:,}"


def _fmt_si(value):
    for factor, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if value >= factor:
            return f"{value / factor:.2f} {unit}"
    return f"{value}"


def _fmt_bytes(value):
    for factor, unit in ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if value >= factor:
            return f"{value / factor:.2f} {unit}"
    return f"{value} B"


def _fmt_shape(shape):
    if shape is None:
        return "?"
    if isinstance(shape, list):
        return ", ".join(_fmt_shape(s) for s in shape)
    return "(" + ", ".join("None" if s is None else str(s) for s in shape) + ")"


def _fmt_receptive_field(row):
    size = row["receptive_field"]
    if "receptive_field" in row["unknown"]:
        return UNKNOWN
    if size is None:
        return "-"
    if len(set(size)) == 1:
        return str(size[0])
    return "x".join(str(s) for s in size)


def _fmt_activations(row):
    text = _fmt_int(row["activations"])
    return text if row["activations_counted"] or row["activations"] is None else f"({text})"


def _fmt_macs(row):
    if "macs" in row["unknown"]:
        return UNKNOWN
    if row["macs"] is None:
        return "not counted"
    return _fmt_int(row["macs"])


_COLUMNS = (  # header, cell function, right-aligned
    ("Layer", lambda r: r["name"], False),
    ("Type", lambda r: r["type"], False),
    ("Output shape", lambda r: _fmt_shape(r["output_shape"]), False),
    ("Activations", _fmt_activations, True),
    ("Trainable", lambda r: _fmt_int(r["trainable_params"]), True),
    ("Non-trainable", lambda r: _fmt_int(r["non_trainable_params"]), True),
    ("MACs", _fmt_macs, True),
    ("RF", _fmt_receptive_field, True),
)
_RIGHT = tuple(i for i, (_, _, right) in enumerate(_COLUMNS) if right)


# ---------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------

class ModelReport:
    """The cost table of a model: ``print`` it, show it in a notebook, or read ``.rows``.

    ``rows`` is a list of plain dicts (one per layer, nested models expanded as
    ``"backbone/conv1"``) with keys ``name``, ``type``, ``output_shape``, ``activations``
    (values per image), ``activations_counted``, ``params``, ``trainable_params``,
    ``non_trainable_params``, ``macs`` (None = not counted), ``receptive_field`` (size per
    spatial axis, or None), ``unknown`` (the columns cnnlab has no rule for in this row:
    ``"macs"``, ``"receptive_field"``), ``calls`` and ``notes``.  ``totals`` is a dict (see
    ``summary``).

    Used in: no lab notebook directly; ``cnnlab.summary`` returns it
    """

    def __init__(self, name, rows, totals, include_bias):
        self.name = name
        self.rows = rows
        self.totals = totals
        self.include_bias = include_bias

    def footer_lines(self):
        """The totals and conventions printed under the table, as a list of strings."""
        t = self.totals
        size = t["bytes_per_value"]
        lines = [
            f"Params: {t['params']:,} (trainable {t['trainable_params']:,}; "
            f"non-trainable {t['non_trainable_params']:,})"
            + ("" if self.include_bias else "; biases not shown (include_bias=False)"),
            f"MACs per image: {t['macs']:,} ({_fmt_si(t['macs'])}); "
            f"FLOPs = 2 x MACs = {t['flops']:,} ({_fmt_si(t['flops'])})",
            "  MACs = multiply-accumulates of conv/dense weights (biases, BatchNorm, pooling,"
            " activations, add: 0).",
            "  Papers often quote MACs as 'FLOPs' (VGG16 15.3 G, ResNet-50 3.8 G).",
        ]
        if t["macs_not_counted"]:
            lines.append("  MACs not counted for (the total leaves them out): "
                         + ", ".join(t["macs_not_counted"]))
        if t["unknown_layers"]:
            named = [f"{name} ({kind}: {', '.join(columns)})"
                     for name, (kind, columns) in t["unknown_layers"].items()]
            lines += [
                "Unknown to cnnlab (cells 'unknown', not 0; their parameters are Keras' own; "
                "RF after them is unknown until Flatten or global pooling): " + ", ".join(named),
                f"  {FIX}",
            ]
        reasons = [reason for reason in ("reshape view", "identity at inference")
                   if any(f"{reason}: activations not added" in row["notes"]
                          for row in self.rows if not row["activations_counted"])]
        if "identity at inference" in reasons:  # name the layers: "identity" alone puzzles
            reasons[-1] = "identity at inference (dropout, noise)"
        lines += [
            f"Activations per image: {t['activations']:,} values (input included"
            + (f", (n) = {' or '.join(reasons)}, not added" if reasons else "")
            + f") x {size} B = {_fmt_bytes(t['activations'] * size)}",
            f"  x batch_size {t['batch_size']} = {_fmt_bytes(t['activation_bytes'])}; "
            f"x 2 for the backward pass = {_fmt_bytes(t['activation_bytes_backward'])}",
            f"Parameter memory: {t['params_in_memory']:,} weights x {size} B = "
            f"{_fmt_bytes(t['param_bytes'])}",
            "  training (weights + gradients + optimizer slots of trainable weights): "
            f"SGD x2 = {_fmt_bytes(t['training_bytes_sgd'])}, "
            f"momentum x3 = {_fmt_bytes(t['training_bytes_momentum'])}, "
            f"Adam x4 = {_fmt_bytes(t['training_bytes_adam'])}",
            f"  optimizer={t['optimizer']!r}: training_bytes = {_fmt_bytes(t['training_bytes'])}"
            f"; with activations (backward, batch {t['batch_size']}) = "
            f"{_fmt_bytes(t['total_training_bytes'])}",
        ]
        return lines

    def _cells(self):
        return [[cell(row) for _, cell, _ in _COLUMNS] for row in self.rows]

    def __str__(self):
        return text_table([header for header, _, _ in _COLUMNS], self._cells(), right=_RIGHT,
                          title=f'Model: "{self.name}"', footer=self.footer_lines())

    def __repr__(self):
        return self.__str__()

    def _repr_html_(self):
        table = html_table([header for header, _, _ in _COLUMNS], self._cells(), right=_RIGHT)
        footer = "<br>".join(html.escape(text) for text in self.footer_lines())
        return (f"<div><b>Model: {html.escape(self.name)}</b>{table}"
                f'<p style="font-family:monospace">{footer}</p></div>')

    def to_dataframe(self):
        """The rows as a pandas DataFrame (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as error:
            raise ImportError(
                "ModelReport.to_dataframe() needs pandas: pip install pandas "
                "(or use report.rows, a list of plain dicts)") from error
        return pd.DataFrame(self.rows)
