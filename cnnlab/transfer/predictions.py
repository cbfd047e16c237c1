"""What a pre-trained classifier says: ImageNet class names for its outputs, and ``classify``.

The lectures' *Pre-trained models*: an ImageNet classifier outputs 1000 probabilities; read
them as class names.  :func:`decode_predictions` is cnnlab's one decoder (``cnnlab.pretrained``
re-exports it); it never downloads, the names come with pip.

Used in: no lab notebook directly; the labs import these names from cnnlab.transfer
"""

from __future__ import annotations

import math
from collections import namedtuple

import keras
import numpy as np

from cnnlab.pretrained import NUM_IMAGENET_CLASSES, imagenet_class_names
from cnnlab.transfer.preprocessing import _is_numpy_like, preprocess_for

__all__ = ["Classification", "classify", "decode_predictions"]


def decode_predictions(preds, top=5):
    """The ``top`` classes of each row of ImageNet probabilities: ``(index, name, probability)``.

    ``preds`` has shape ``(batch, 1000)`` (the softmax output of any ImageNet-1k classifier:
    all backbones here share the standard class order), NumPy or a backend tensor; returns one
    list per image, most probable first, of ``(int, str, float)`` tuples.  Unlike
    ``keras.applications.imagenet_utils.decode_predictions`` it never downloads (the names
    come from ``cnnlab.pretrained.imagenet_class_names``) and it gives the class index instead
    of the WordNet id.  Rows that are not probabilities (logits, e.g. from
    ``classifier_activation=None``) raise ``ValueError``: apply ``keras.ops.softmax`` first.

    Used in: labs/08_pretrained_convnets
    """
    if not _is_numpy_like(preds):
        preds = keras.ops.convert_to_numpy(preds)
    preds = np.asarray(preds, dtype=np.float64)
    if preds.ndim != 2 or preds.shape[1] != NUM_IMAGENET_CLASSES:
        hint = (" -- add the batch axis: preds[None]" if preds.shape == (NUM_IMAGENET_CLASSES,)
                else " (one column per ImageNet-1k class); use a 1000-class ImageNet model")
        raise ValueError(f"decode_predictions expects shape (batch, {NUM_IMAGENET_CLASSES}), "
                         f"got {preds.shape}{hint}")
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) \
            or not 1 <= top <= NUM_IMAGENET_CLASSES:
        raise ValueError(f"top must be an int from 1 to {NUM_IMAGENET_CLASSES}, got {top!r}")
    sums = preds.sum(axis=1)
    if preds.size and (preds.min() < 0 or np.abs(sums - 1).max() > 1e-2):
        raise ValueError(f"each row must be probabilities (>= 0, summing to 1); got sums from "
                         f"{sums.min():.3g} to {sums.max():.3g}: these look like logits, apply "
                         f"keras.ops.softmax first")
    names = imagenet_class_names()
    decoded = []
    for row in preds:
        order = np.argsort(-row, kind="stable")[:top]
        decoded.append([(int(index), names[index], float(row[index])) for index in order])
    return decoded


Classification = namedtuple("Classification", ["table", "figure"])
Classification.__doc__ = "What :func:`classify` returns: a pandas table and a figure."


def _as_image_list(images):
    if isinstance(images, np.ndarray) and images.ndim == 3:
        return [images]
    if isinstance(images, np.ndarray) and images.ndim == 4:
        return list(images)
    if isinstance(images, (list, tuple)) and images:
        return [np.asarray(image) for image in images]
    raise ValueError("images must be an image (h, w, 3), a batch (n, h, w, 3) or a list of "
                     f"images, got {type(images).__name__} {getattr(images, 'shape', '')}")


def classify(model, images, top=5, preprocess=None, class_names=None):
    """Classify photos with a pre-trained model: a table of the top classes and a figure.

    ``images``: an RGB image, a batch, or a list of images of any size, values 0..255; each
    is centre-cropped to the model's aspect ratio and resized to its input size
    (``keras.ops.image.resize``, antialiased).  ``preprocess`` defaults to
    ``preprocess_for(model)``.  ``class_names``: for a model that is not a 1000-class ImageNet
    classifier.  Returns ``Classification(table, figure)``: a pandas DataFrame with one row per
    image and rank (``image``, ``rank``, ``index``, ``class``, ``probability``) and a figure
    of the images titled with their top classes.

    Used in: labs/08_pretrained_convnets
    """
    import matplotlib.pyplot as plt
    import pandas as pd

    height, width = model.input_shape[1:3]
    if height is None or width is None:
        raise ValueError("the model has no fixed input size; build it with input_shape=...")
    if preprocess is None:
        preprocess = preprocess_for(model)
    shown = []
    for image in _as_image_list(images):
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"each image must be RGB (h, w, 3), got shape {image.shape}; "
                             "grayscale to RGB: np.repeat(x[..., None], 3, axis=-1)")
        resized = keras.ops.image.resize(image.astype("float32"), (height, width),
                                         crop_to_aspect_ratio=True, antialias=True)
        shown.append(np.clip(keras.ops.convert_to_numpy(resized), 0, 255))
    batch = np.stack(shown)
    inputs = preprocess(batch)
    preds = np.concatenate([  # a direct call: no compile step for the few images shown
        np.asarray(keras.ops.convert_to_numpy(model(inputs[start:start + 16], training=False)),
                   dtype=np.float64) for start in range(0, len(inputs), 16)])
    if preds.ndim != 2:
        raise ValueError(f"the model outputs shape {preds.shape}, not class probabilities; "
                         "load it with include_top=True")
    if class_names is None:
        if preds.shape[1] != NUM_IMAGENET_CLASSES:
            raise ValueError(f"the model has {preds.shape[1]} outputs, not the 1000 ImageNet "
                             "classes; pass class_names=[...]")
        decoded = decode_predictions(preds, top=top)
    else:
        class_names = list(class_names)
        if len(class_names) != preds.shape[1]:
            raise ValueError(f"class_names has {len(class_names)} names for the model's "
                             f"{preds.shape[1]} outputs")
        top = min(int(top), preds.shape[1])
        decoded = [[(int(i), class_names[i], float(row[i]))
                    for i in np.argsort(-row, kind="stable")[:top]] for row in preds]
    table = pd.DataFrame(
        [(image, rank, index, name, probability)
         for image, rows in enumerate(decoded)
         for rank, (index, name, probability) in enumerate(rows, start=1)],
        columns=["image", "rank", "index", "class", "probability"])
    columns = min(4, len(shown))
    rows = math.ceil(len(shown) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 3.9 * rows),
                                squeeze=False, layout="constrained")
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, rows_ in zip(axes.flat, shown, decoded):
        ax.imshow(image.astype(np.uint8))
        ax.set_title("\n".join(f"{name.split(',')[0][:22]} {probability:.0%}"
                               for _, name, probability in rows_[:3]), fontsize=9, loc="left")
    figure.suptitle(f"{model.name}: top classes")  # constrained layout keeps it off the titles
    return Classification(table, figure)


