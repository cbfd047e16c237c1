"""The ImageNet input the pretrained-model tests share, prepared independently of cnnlab.transfer.

A centre square crop and a Pillow bilinear resize to 224x224 (float32 RGB 0..255): written here
with Pillow alone, so a bug in cnnlab's own preprocessing cannot hide in the reference.
"""

import numpy as np
from PIL import Image

from cnnlab.datasets import load_sample_image


def imagenet_input(name: str, size: int = 224) -> np.ndarray:
    """The skimage photo ``name``, centre square crop, Pillow bilinear resize, float32 0..255."""
    image = load_sample_image(name)
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = Image.fromarray(image[top:top + side, left:left + side])
    return np.asarray(square.resize((size, size), Image.BILINEAR), dtype=np.float32)
