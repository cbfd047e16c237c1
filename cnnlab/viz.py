"""Convolution arithmetic pictures in the style of Dumoulin & Visin (2016).

A convolution slides a kernel over a (zero-padded) input; every position of the kernel makes
one output cell.  ``conv_frame`` draws one position, ``conv_animation`` plays them all:

- blue cells: the input;  white dashed cells: zero padding;  light grey dotted cells: the
  zeros a transposed convolution inserts between input cells;
- dark squares: the kernel footprint (with dilation, the gaps between its taps stay light);
- cyan cells: the output, filled as they are computed, the current one dark and outlined.

A transposed convolution is drawn as Dumoulin & Visin draw it: as the equivalent direct
convolution (stride 1) over the input with ``strides - 1`` zeros inserted between input cells
and ``kernel_size - padding - 1`` cells of zero padding, so the output is larger than the input.

Only matplotlib is used (no LaTeX); figures are returned, never shown, and are closed in
pyplot so a notebook shows each picture once.
"""

import re
from io import BytesIO
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.animation import AbstractMovieWriter, FuncAnimation
from matplotlib.collections import PolyCollection
from matplotlib.patches import Rectangle
from PIL import Image

from cnnlab import arithmetic
from cnnlab._checks import pair as _pair

__all__ = ["ConvAnimation", "conv_animation", "conv_frame", "save_gif"]

_DPI = 80  # figure resolution on screen; GIFs choose their own in save_gif
_CELL_INCHES = 0.36  # size of one grid cell in the figure
_GAP = 1.6  # space between the input and output grids, in cells
_MARGIN = 0.05  # white border inside each cell, in cells

_COLORS = {
    "input": "#6fa8dc",  # blue
    "pad": "white",
    "zero": "#eeeeee",  # light grey: zeros inserted between the inputs
    "input_edge": "#2f5f8f",
    "pad_edge": "#8c8c8c",
    "kernel": "#0b2447",  # dark navy, drawn translucent on top of the input
    "pending": "white",
    "done": "#8ee3ea",  # cyan
    "current": "#139aa8",  # dark cyan
    "output_edge": "#139aa8",
}
_LINESTYLES = {"input": "solid", "pad": (0, (3, 2)), "zero": (0, (1, 1.5))}


# --------------------------------------------------------------------------- arguments


def _padding_pairs(padding, per_axis):
    """Return ``padding`` as ``((top, bottom), (left, right))``, or the mode string.

    As in ``cnnlab.arithmetic``: an int pads every side; when all sizes are ints a pair is
    ``(before, after)`` for both axes, and when a size is an ``(h, w)`` tuple a pair holds one
    int or ``(before, after)`` pair per axis (``keras.layers.ZeroPadding2D``).  Nested pairs
    ``((top, bottom), (left, right))`` are always per axis.
    """
    if isinstance(padding, str):
        if padding.lower() not in ("valid", "same", "full"):
            raise ValueError(
                f"padding must be 'valid', 'same', 'full', an int or a (before, after) pair, "
                f"got {padding!r}"
            )
        return padding.lower()
    if not isinstance(padding, (tuple, list)):
        before_after = _pair(padding, "padding", 0)
        return (before_after, before_after)
    if len(padding) != 2:
        raise ValueError(
            f"padding={padding!r} must be an int, a (before, after) pair or one entry per "
            "axis, e.g. padding=((1, 1), (2, 2))"
        )
    if per_axis or all(isinstance(p, (tuple, list)) for p in padding):
        return tuple(_pair(p, "padding", 0) for p in padding)
    before_after = _pair(tuple(padding), "padding", 0)
    return (before_after, before_after)


def _forward_pads(padding, n, k, s, d):
    """(before, after) zeros of a direct convolution with input size ``n`` along one axis."""
    if padding == "same":
        return arithmetic.same_padding(n, k, strides=s, dilation_rate=d)
    if padding == "full":
        return (d * (k - 1), d * (k - 1))
    if padding == "valid":
        return (0, 0)
    return padding


def _stretched_axis(n, k, s, d, pads, output, axis):
    """Cells of a transposed convolution's input as Dumoulin draws it, along one axis.

    The equivalent direct convolution has stride 1, ``s - 1`` zeros between input cells and
    ``extent - 1 - pads[0]`` zeros in front; the zeros behind make its output ``output``
    (Keras' output padding included).
    """
    extent = d * (k - 1) + 1
    before = pads[0]
    stretched = ["zero" if i % s else "input" for i in range((n - 1) * s + 1)]
    outer_before = extent - 1 - before
    outer_after = output + extent - 1 - outer_before - len(stretched)
    if min(outer_before, outer_after) < 0:
        raise ValueError(
            f"padding {pads} along the {axis} is more than the kernel extent - 1 = "
            f"{extent - 1}: the transposed convolution would crop its input; "
            f"use padding <= {extent - 1}"
        )
    return ["pad"] * outer_before + stretched + ["pad"] * outer_after


class _Plan:
    """Everything a picture needs: the drawn input grid, kernel moves and output size."""

    def __init__(self, input_size, kernel_size, strides, padding, dilation_rate, transposed):
        self.input_size = _pair(input_size, "input_size", 1)
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.strides = _pair(strides, "strides", 1)
        self.dilation_rate = _pair(dilation_rate, "dilation_rate", 1)
        sized_per_axis = any(isinstance(v, (tuple, list))
                             for v in (input_size, kernel_size, strides, dilation_rate))
        self.padding = _padding_pairs(padding, sized_per_axis)
        self.transposed = bool(transposed)
        per_axis = list(zip(self.input_size, self.kernel_size, self.strides,
                            self.dilation_rate, ("rows", "columns")))
        axis_padding = [self.padding] * 2 if isinstance(self.padding, str) else self.padding
        if not self.transposed:
            self.pads = tuple(
                _forward_pads(p, n, k, s, d) for p, (n, k, s, d, _) in zip(axis_padding, per_axis)
            )
            self.output_size = arithmetic.conv_output_size(
                self.input_size, self.kernel_size, self.strides, self.pads, self.dilation_rate
            )
            rows, cols = (
                ["pad"] * before + ["input"] * n + ["pad"] * after
                for (before, after), (n, *_) in zip(self.pads, per_axis)
            )
            self.kernel_step = self.strides  # how far the kernel moves on the drawn grid
        else:
            self.output_size = arithmetic.conv_transpose_output_size(
                self.input_size, self.kernel_size, self.strides, self.padding,
                dilation_rate=self.dilation_rate,
            )
            # the padding of the direct convolution whose input is our output
            self.pads = tuple(
                _forward_pads(p, out, k, s, d)
                for p, out, (_, k, s, d, _) in zip(axis_padding, self.output_size, per_axis)
            )
            rows, cols = (
                _stretched_axis(n, k, s, d, pads, out, axis)
                for (n, k, s, d, axis), pads, out
                in zip(per_axis, self.pads, self.output_size)
            )
            self.kernel_step = (1, 1)
        self.kinds = [[_cell_kind(row_kind, col_kind) for col_kind in cols] for row_kind in rows]
        self.grid_size = (len(rows), len(cols))
        self.axis_kinds = (rows, cols)
        self.n_steps = self.output_size[0] * self.output_size[1]

    def title(self):
        def size(pair):
            return f"{pair[0]}x{pair[1]}"

        def number(pair, name):
            return f"{name} {pair[0]}" if pair[0] == pair[1] else f"{name} {size(pair)}"

        parts = [f"input {size(self.input_size)}", f"kernel {size(self.kernel_size)}"]
        parts.append(number(self.strides, "stride"))
        amount = _compact(self.pads)
        if isinstance(self.padding, str):
            amount = f"'{self.padding}' = {amount}"
        parts.append(f"padding {amount}")
        if self.dilation_rate != (1, 1):
            parts.append(number(self.dilation_rate, "dilation"))
        text = ", ".join(parts) + f" \u2192 output {size(self.output_size)}"
        if self.transposed:
            text = "transposed conv: " + text
        return text

    def input_label(self):
        label = f"input {self.input_size[0]}x{self.input_size[1]} (blue)"
        if any(kind == "pad" for row in self.kinds for kind in row):
            label += " + zero padding (dashed)"
        if self.transposed:
            outer = tuple((k.index("input"), k[::-1].index("input")) for k in self.axis_kinds)
            label += f"\nseen as a stride-1 conv: padding k - 1 - p = {_compact(outer)}"
            if self.strides != (1, 1):
                gaps = _compact(tuple(s - 1 for s in self.strides))
                label += f"\n+ stride - 1 = {gaps} zero(s) between inputs (grey)"
        return label


def _compact(values):
    """``(1, 1)`` -> ``1``, ``((2, 2), (2, 2))`` -> ``2``; anything else unchanged."""
    while isinstance(values, tuple) and len(set(values)) == 1:
        values = values[0]
    return values


def _cell_kind(row_kind, col_kind):
    if "pad" in (row_kind, col_kind):
        return "pad"
    if "zero" in (row_kind, col_kind):
        return "zero"
    return "input"


# --------------------------------------------------------------------------- drawing


def _square(x, y):
    """Corners of one drawn cell whose top-left grid corner is (x, y)."""
    low, high = _MARGIN, 1 - _MARGIN
    return [(x + low, y + low), (x + high, y + low), (x + high, y + high), (x + low, y + high)]


class _Drawing:
    """Artists for one configuration on one Axes; ``show(step)`` moves the kernel.

    Cells are drawn as collections (one draw call per grid), so a GIF frame renders fast.
    """

    def __init__(self, plan, ax):
        self.plan = plan
        grid_h, grid_w = plan.grid_size
        out_h, out_w = plan.output_size
        height = max(grid_h, out_h)
        self.input_origin = (0.0, (height - grid_h) / 2)
        self.output_origin = (grid_w + _GAP, (height - out_h) / 2)

        x0, y0 = self.input_origin
        kinds = [kind for row in plan.kinds for kind in row]
        ax.add_collection(PolyCollection(
            [_square(x0 + c, y0 + r) for r in range(grid_h) for c in range(grid_w)],
            facecolors=[_COLORS[kind] for kind in kinds],
            edgecolors=[_COLORS["input_edge" if k == "input" else "pad_edge"] for k in kinds],
            linestyles=[_LINESTYLES[kind] for kind in kinds], linewidths=0.8,
        ))
        (k_h, k_w), (d_h, d_w) = plan.kernel_size, plan.dilation_rate
        self.taps = [(i * d_h, j * d_w) for i in range(k_h) for j in range(k_w)]
        self.kernel = ax.add_collection(PolyCollection(
            [], facecolors=_COLORS["kernel"], alpha=0.55, edgecolors="none"
        ))
        extent = (d_h * (k_h - 1) + 1, d_w * (k_w - 1) + 1)
        self.footprint = ax.add_patch(Rectangle(
            (0, 0), extent[1], extent[0], fill=False, edgecolor=_COLORS["kernel"], linewidth=1.6
        ))

        x0, y0 = self.output_origin
        self.outputs = ax.add_collection(PolyCollection(
            [_square(x0 + c, y0 + r) for r in range(out_h) for c in range(out_w)],
            facecolors=_COLORS["pending"], edgecolors=_COLORS["output_edge"], linewidths=0.8,
        ))
        self.current = ax.add_patch(Rectangle(
            (0, 0), 1 - 2 * _MARGIN, 1 - 2 * _MARGIN, facecolor=_COLORS["current"],
            edgecolor="black", linewidth=2.0, zorder=3,
        ))
        label_y = height + 0.35
        ax.text(grid_w / 2, label_y, plan.input_label(), ha="center", va="top", fontsize=8)
        self.step_text = ax.text(x0 + out_w / 2, label_y, "", ha="center", va="top",
                                 fontsize=8)
        ax.set_title(plan.title(), fontsize=9)
        ax.set_xlim(-0.2, x0 + out_w + 0.2)
        ax.set_ylim(height + 1.9 if plan.transposed else height + 1.3, -0.2)
        ax.set_aspect("equal")
        ax.set_axis_off()

    def show(self, step):
        """Put the kernel at output cell ``step`` (row-major) and fill the outputs so far."""
        out_h, out_w = self.plan.output_size
        row, col = divmod(step, out_w)
        top = row * self.plan.kernel_step[0] + self.input_origin[1]
        left = col * self.plan.kernel_step[1] + self.input_origin[0]
        self.kernel.set_verts([_square(left + j, top + i) for i, j in self.taps])
        self.footprint.set_xy((left, top))
        self.outputs.set_facecolor(
            [_COLORS["done" if index < step else "pending"] for index in range(out_h * out_w)]
        )
        x0, y0 = self.output_origin
        self.current.set_xy((x0 + col + _MARGIN, y0 + row + _MARGIN))
        self.step_text.set_text(
            f"output {out_h}x{out_w} (cyan)\nstep {step + 1}/{self.plan.n_steps}: "
            f"row {row}, column {col}"
        )
        return [self.kernel, self.footprint, self.outputs, self.current, self.step_text]


def _new_figure(plan):
    grid_h, grid_w = plan.grid_size
    out_h, out_w = plan.output_size
    width_cells = grid_w + _GAP + out_w + 0.4
    height_cells = max(grid_h, out_h) + (2.1 if plan.transposed else 1.5)
    width = max(width_cells * _CELL_INCHES, 5.4)
    height = height_cells * _CELL_INCHES + 0.45
    fig = plt.figure(figsize=(width, height), dpi=_DPI)
    plt.close(fig)  # returned to the caller: pyplot must not show it a second time
    ax = fig.add_axes((0.02, 0.02, 0.96, 1 - 0.02 - 0.45 / height))
    return fig, ax


def conv_frame(input_size, kernel_size, strides=1, padding=0, dilation_rate=1,
               transposed=False, step=0, ax=None):
    """Draw one step of a convolution: input, padding, kernel footprint and output.

    The lecture's convolution arithmetic (Dumoulin & Visin): the kernel at output cell
    ``step`` (counted row by row from 0) covers the dark cells of the padded input, and the
    output has ``floor((n + 2p - d(k - 1) - 1) / s) + 1`` cells per axis.  Sizes are ints or
    ``(h, w)`` pairs; ``padding`` is "valid", "same", "full", an int, or as in
    ``cnnlab.arithmetic.conv_output_size`` a ``(before, after)`` pair (all sizes ints) or one
    entry per axis (``((top, bottom), (left, right))``, or ``(h, w)`` when a size is a pair).
    With ``transposed=True``, ``input_size`` is the input of the transposed
    convolution and ``padding`` and ``strides`` those of Keras' ``Conv2DTranspose`` (the direct
    convolution it reverses); it is drawn as the equivalent stride-1 convolution over the input
    with ``strides - 1`` zeros inserted between cells and ``kernel_size - 1 - padding`` padding.

    Returns the matplotlib Figure (drawn on ``ax`` when given).  Raises ValueError when the
    kernel does not fit the padded input, a stride or size is not positive, or ``step`` is
    not an output cell.

    Example: ``conv_frame(5, 3, strides=2, padding=1, step=4)``.

    Used in: labs/02_conv_arithmetic
    """
    plan = _Plan(input_size, kernel_size, strides, padding, dilation_rate, transposed)
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step < plan.n_steps:
        raise ValueError(
            f"step must be an output cell index in 0..{plan.n_steps - 1} (the output is "
            f"{plan.output_size[0]}x{plan.output_size[1]}), got {step!r}"
        )
    if ax is None:
        fig, ax = _new_figure(plan)
    else:
        fig = ax.figure
    _Drawing(plan, ax).show(step)
    return fig


class ConvAnimation(FuncAnimation):
    """A FuncAnimation that plays as an HTML widget when it ends a notebook cell.

    Returned by ``conv_animation``.  ``n_frames`` is the number of frames (one per output
    cell), ``output_size`` the output's (h, w) and ``interval`` the milliseconds between frames.

    Used in: no lab notebook directly; ``conv_animation`` returns it
    """

    def __init__(self, fig, func, n_frames, output_size, interval):
        self.n_frames = n_frames
        self.output_size = output_size
        self.interval = interval
        super().__init__(fig, func, frames=n_frames, interval=interval, blit=False)

    def _repr_html_(self):
        """Jupyter display: the JavaScript player with every frame embedded, fully offline.

        matplotlib's player links Font Awesome from a CDN for its button icons; offline (lab
        machines, CI) that request fails and the buttons are blank.  We drop the link and draw
        the icons with Unicode symbols instead.
        """
        return offline_player_html(self.to_jshtml())


# matplotlib's player buttons (Font Awesome 4 class names) -> Unicode symbols
_PLAYER_ICONS = {
    "fa fa-minus": "\u2212", "fa fa-fast-backward": "\u23ee", "fa fa-step-backward": "\u25c0",
    "fa fa-play fa-flip-horizontal": "\u25c1", "fa fa-pause": "\u23f8", "fa fa-play": "\u25b6",
    "fa fa-step-forward": "\u25b6\u258f", "fa fa-fast-forward": "\u23ed", "fa fa-plus": "+",
}


def offline_player_html(html: str) -> str:
    """matplotlib's ``to_jshtml`` output without its CDN stylesheet, icons as Unicode symbols."""
    html = re.sub(r'<link rel="stylesheet"\s+href="https?://[^"]*font-awesome[^"]*">', "", html)
    for css_class, symbol in _PLAYER_ICONS.items():
        html = html.replace(f'<i class="{css_class}"></i>', f"<span>{symbol}</span>")
    return html


def conv_animation(input_size, kernel_size, strides=1, padding=0, dilation_rate=1,
                   transposed=False, interval=500):
    """Animate a convolution, one frame per output cell, as Dumoulin & Visin's GIFs do.

    Same arguments as ``conv_frame`` (see there for ``padding`` and ``transposed``);
    ``interval`` is the time between frames in milliseconds.  Returns a ``ConvAnimation``
    (a matplotlib ``FuncAnimation``): as the last expression of a notebook cell it plays
    inline (``to_jshtml``); ``save_gif(anim, "conv.gif")`` (or
    ``anim.save("conv.gif", writer="pillow")``) writes a GIF.

    Example: ``conv_animation(5, 3, strides=2, padding=1)`` has 3 x 3 = 9 frames.

    Used in: labs/02_conv_arithmetic
    """
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0:
        raise ValueError(f"interval must be a positive number of milliseconds, got {interval!r}")
    plan = _Plan(input_size, kernel_size, strides, padding, dilation_rate, transposed)
    fig, ax = _new_figure(plan)
    drawing = _Drawing(plan, ax)
    drawing.show(0)
    return ConvAnimation(fig, drawing.show, plan.n_steps, plan.output_size, interval)


class _GifWriter(AbstractMovieWriter):
    """Pillow GIF writer with one shared palette and no dithering: small files.

    Matplotlib's PillowWriter lets Pillow dither each frame on its own palette, so every
    pixel changes from frame to frame and the GIF is large; flat-coloured grids need neither.
    """

    def setup(self, fig, outfile, dpi=None):
        super().setup(fig, outfile, dpi=dpi)
        self._frames = []

    def grab_frame(self, **savefig_kwargs):
        buffer = BytesIO()
        self.fig.savefig(buffer, **{**savefig_kwargs, "format": "rgba", "dpi": self.dpi})
        frame = Image.frombuffer("RGBA", self.frame_size, buffer.getbuffer(), "raw", "RGBA", 0, 1)
        self._frames.append(frame.convert("RGB"))

    def finish(self):
        width, height = self._frames[0].size
        montage = Image.new("RGB", (width, height * len(self._frames)))
        for i, frame in enumerate(self._frames):
            montage.paste(frame, (0, i * height))
        palette = montage.quantize(colors=32, dither=Image.Dither.NONE)
        frames = [frame.quantize(palette=palette, dither=Image.Dither.NONE)
                  for frame in self._frames]
        frames[0].save(self.outfile, save_all=True, append_images=frames[1:],
                       duration=round(1000 / self.fps), loop=0)


def save_gif(animation, path, dpi=70):
    """Write an animation from ``conv_animation`` to ``path`` as a looping GIF (Pillow).

    Keeps the animation's frame interval; ``dpi`` sets the size (70 gives GIFs of a few tens
    of KB).  Creates missing folders and returns the path as a ``Path``.  Any matplotlib
    animation also saves with ``animation.save(path, writer="pillow")``, in larger files.

    Used in: no lab notebook directly; ``make images``
    """
    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise ValueError(f"path must end in .gif, got {str(path)!r}; e.g. 'conv.gif'")
    path.parent.mkdir(parents=True, exist_ok=True)
    interval = getattr(animation, "interval", 500)
    animation.save(path, writer=_GifWriter(fps=1000 / interval), dpi=dpi)
    return path
