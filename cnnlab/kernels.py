"""The named 3x3 kernels of the lectures ("Simple Kernels / Filters").

A kernel is a small grid of weights; sliding it over an image (:func:`cnnlab.ops.correlate2d`)
turns each neighbourhood into one number.  Hand-made kernels like these show what a
convolutional layer can compute; a CNN *learns* its kernels instead, and the first layer of
a trained network often ends up with edge detectors and blurs that look much like them.

=====================  ======================================  =====  ===========================
name                   weights                                 sum    effect
=====================  ======================================  =====  ===========================
``IDENTITY``           ``[[0,0,0],[0,1,0],[0,0,0]]``           1      unchanged image
``EDGE_DIAGONAL``      ``[[1,0,-1],[0,0,0],[-1,0,1]]``         0      diagonal edges
``EDGE_LAPLACIAN_4``   ``[[0,1,0],[1,-4,1],[0,1,0]]``          0      edges in all directions
``EDGE_STRONG``        ``[[-1,-1,-1],[-1,8,-1],[-1,-1,-1]]``   0      stronger, 8-neighbour edges
``SHARPEN``            ``[[0,-1,0],[-1,5,-1],[0,-1,0]]``       1      sharper image
``BOX_BLUR``           ``1/9 [[1,1,1],[1,1,1],[1,1,1]]``       1      mean of the 3x3 window
``GAUSSIAN_BLUR``      ``1/16 [[1,2,1],[2,4,2],[1,2,1]]``      1      smoother blur
``LAPLACIAN``          ``[[0,1,0],[1,-4,1],[0,1,0]]``          0      discrete Laplacian
``SOBEL_X``            ``[[-1,0,1],[-2,0,2],[-1,0,1]]``        0      vertical edges (d/dx)
``SOBEL_Y``            ``[[-1,-2,-1],[0,0,0],[1,2,1]]``        0      horizontal edges (d/dy)
=====================  ======================================  =====  ===========================

Edge detectors sum to 0 (a flat region gives 0); blurs and sharpen sum to 1 (a flat region
keeps its brightness).  The constants are read-only float32 arrays; :func:`kernel` returns a
writable copy.  Only NumPy is imported.
"""

import numpy as np

__all__ = [
    "IDENTITY",
    "EDGE_DIAGONAL",
    "EDGE_LAPLACIAN_4",
    "EDGE_STRONG",
    "SHARPEN",
    "BOX_BLUR",
    "GAUSSIAN_BLUR",
    "LAPLACIAN",
    "SOBEL_X",
    "SOBEL_Y",
    "KERNELS",
    "DESCRIPTIONS",
    "kernel",
]


def _constant(rows, scale=1.0):
    array = np.asarray(rows, dtype=np.float32) * np.float32(scale)
    array.flags.writeable = False
    return array


IDENTITY = _constant([[0, 0, 0], [0, 1, 0], [0, 0, 0]])
EDGE_DIAGONAL = _constant([[1, 0, -1], [0, 0, 0], [-1, 0, 1]])
EDGE_LAPLACIAN_4 = _constant([[0, 1, 0], [1, -4, 1], [0, 1, 0]])
EDGE_STRONG = _constant([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]])
SHARPEN = _constant([[0, -1, 0], [-1, 5, -1], [0, -1, 0]])
BOX_BLUR = _constant([[1, 1, 1], [1, 1, 1], [1, 1, 1]], scale=1 / 9)
GAUSSIAN_BLUR = _constant([[1, 2, 1], [2, 4, 2], [1, 2, 1]], scale=1 / 16)
LAPLACIAN = _constant([[0, 1, 0], [1, -4, 1], [0, 1, 0]])
SOBEL_X = _constant([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
SOBEL_Y = _constant([[-1, -2, -1], [0, 0, 0], [1, 2, 1]])

KERNELS = {
    "IDENTITY": IDENTITY,
    "EDGE_DIAGONAL": EDGE_DIAGONAL,
    "EDGE_LAPLACIAN_4": EDGE_LAPLACIAN_4,
    "EDGE_STRONG": EDGE_STRONG,
    "SHARPEN": SHARPEN,
    "BOX_BLUR": BOX_BLUR,
    "GAUSSIAN_BLUR": GAUSSIAN_BLUR,
    "LAPLACIAN": LAPLACIAN,
    "SOBEL_X": SOBEL_X,
    "SOBEL_Y": SOBEL_Y,
}

DESCRIPTIONS = {
    "IDENTITY": "Copies the centre pixel: the image comes out unchanged.",
    "EDGE_DIAGONAL": (
        "Compares opposite corners of the window: responds to diagonal edges, "
        "0 on flat regions."
    ),
    "EDGE_LAPLACIAN_4": (
        "Centre against its 4 neighbours (up, down, left, right): edges in every "
        "direction, 0 on flat regions and on linear ramps."
    ),
    "EDGE_STRONG": (
        "Centre against all 8 neighbours: a stronger edge detector than the "
        "4-neighbour one, also picking up diagonals."
    ),
    "SHARPEN": (
        "Identity plus the negated 4-neighbour Laplacian: boosts edges and fine detail, "
        "keeps the brightness of flat regions."
    ),
    "BOX_BLUR": "Mean of the 3x3 window (normalised to sum 1): blurs and removes noise.",
    "GAUSSIAN_BLUR": (
        "Weighted mean favouring the centre (approximates a Gaussian, sums to 1): "
        "a smoother blur than the box blur."
    ),
    "LAPLACIAN": (
        "The discrete Laplacian d2/dx2 + d2/dy2 (5-point stencil, same weights as "
        "EDGE_LAPLACIAN_4): second derivative, large where the intensity bends."
    ),
    "SOBEL_X": (
        "Horizontal derivative smoothed vertically: responds to vertical edges, positive "
        "where the image gets brighter to the right (under correlate2d)."
    ),
    "SOBEL_Y": (
        "Vertical derivative smoothed horizontally: responds to horizontal edges, positive "
        "where the image gets brighter downwards (under correlate2d)."
    ),
}


def kernel(name):
    """A writable float32 copy of the named lecture kernel.

    ``name`` is one of ``KERNELS`` (case-insensitive; spaces and dashes count as
    underscores, so ``"box blur"`` works).  What each kernel does is in ``DESCRIPTIONS``.  Example::

        from cnnlab import kernels, ops
        edges = ops.correlate2d(image, kernels.kernel("edge_strong"), padding="same")

    Used in: labs/01_convolutions_by_hand
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string such as 'SHARPEN'; got {name!r}")
    key = name.strip().upper().replace(" ", "_").replace("-", "_")
    if key not in KERNELS:
        known = ", ".join(KERNELS)
        raise ValueError(f"unknown kernel name {name!r}: use one of {known}")
    return KERNELS[key].copy()
