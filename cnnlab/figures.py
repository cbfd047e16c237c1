"""Regenerate the convolution arithmetic GIFs of images/conv_arithmetic/.

The configurations of Dumoulin & Visin's "A guide to convolution arithmetic" (the GIFs the
lectures show), drawn by ``cnnlab.viz``.  From the repository root::

    python -m cnnlab.figures                 # writes images/conv_arithmetic/*.gif
    python -m cnnlab.figures /tmp/gifs --dpi 50 --only dilation padding_strides
"""

import argparse
import sys
from pathlib import Path

from cnnlab import viz

__all__ = ["ANIMATIONS", "main", "write_gifs"]

DEFAULT_OUTDIR = Path("images") / "conv_arithmetic"

# name -> conv_animation keyword arguments.  For the transposed ones, input_size is the input
# of the transposed convolution (the output of the direct one) and padding that of the direct
# convolution, so each undoes the size change of the GIF it is named after.
ANIMATIONS = {
    "no_padding_no_strides": dict(input_size=4, kernel_size=3),
    "arbitrary_padding_no_strides": dict(input_size=5, kernel_size=4, padding=2),
    "same_padding_no_strides": dict(input_size=5, kernel_size=3, padding=1),
    "full_padding_no_strides": dict(input_size=5, kernel_size=3, padding=2),
    "no_padding_strides": dict(input_size=5, kernel_size=3, strides=2),
    "padding_strides": dict(input_size=5, kernel_size=3, strides=2, padding=1),
    "dilation": dict(input_size=7, kernel_size=3, dilation_rate=2),
    "no_padding_no_strides_transposed": dict(input_size=2, kernel_size=3, transposed=True),
    "arbitrary_padding_no_strides_transposed": dict(
        input_size=6, kernel_size=4, padding=2, transposed=True
    ),
    "same_padding_no_strides_transposed": dict(
        input_size=5, kernel_size=3, padding=1, transposed=True
    ),
    "no_padding_strides_transposed": dict(
        input_size=2, kernel_size=3, strides=2, transposed=True
    ),
}


def write_gifs(outdir=DEFAULT_OUTDIR, names=None, dpi=70, interval=500, log=print):
    """Write ``<outdir>/<name>.gif`` for each name of ``ANIMATIONS`` (all by default).

    The convolution arithmetic animations of the lectures (Dumoulin & Visin), one frame per
    output cell.  Calls ``log`` with one line per file written; returns the paths.

    Used in: no lab notebook directly; ``make images`` (the GIFs Lab 02 shows)
    """
    names = list(ANIMATIONS) if names is None else list(names)
    unknown = [name for name in names if name not in ANIMATIONS]
    if unknown:
        raise ValueError(
            f"unknown animation name(s) {unknown}; choose among {', '.join(ANIMATIONS)}"
        )
    paths = []
    for name in names:
        animation = viz.conv_animation(**ANIMATIONS[name], interval=interval)
        path = viz.save_gif(animation, Path(outdir) / f"{name}.gif", dpi=dpi)
        log(f"wrote {path} ({animation.n_frames} frames, {path.stat().st_size / 1024:.0f} KB)")
        paths.append(path)
    return paths


def main(argv=None):
    """Command line: ``python -m cnnlab.figures [OUTDIR] [--dpi 70] [--only NAME ...]``.

    Used in: no lab notebook directly; ``make images``
    """
    parser = argparse.ArgumentParser(
        prog="python -m cnnlab.figures",
        description="Regenerate the convolution arithmetic GIFs (Dumoulin & Visin).",
    )
    parser.add_argument("outdir", nargs="?", default=str(DEFAULT_OUTDIR),
                        help=f"folder for the GIFs (default: {DEFAULT_OUTDIR})")
    parser.add_argument("--dpi", type=int, default=70, help="resolution (default: 70)")
    parser.add_argument("--only", nargs="+", choices=list(ANIMATIONS), metavar="NAME",
                        help="write only these animations")
    args = parser.parse_args(argv)
    write_gifs(args.outdir, names=args.only, dpi=args.dpi)
    return 0


if __name__ == "__main__":
    sys.exit(main())
