"""Transfer learning: ImageNet backbones offline, their preprocessing, freezing and fine-tuning.

The lectures' *Transfer learning* slides: a ConvNet trained on ImageNet has learned features
that transfer; on a small dataset, freeze it, train a new head, then (maybe) fine-tune its
deepest blocks with a small learning rate.  "Do not forget the input normalization!"  This
module makes the right way the easy way and names the three classic failures:

* **Wrong preprocessing** gives confident nonsense without any error.  ``preprocess_for(name)``
  returns the model's own preprocessing and checks the input contract (RGB, 0..255, the right
  size); a batch already scaled to 0..1 gets a :class:`PreprocessingWarning`.
* **BatchNorm statistics wrecked by fine-tuning.**  The Keras transfer-learning guide calls the
  base with ``base(x, training=False)``.  On Keras 3 that flag is *overridden*: ``fit`` calls a
  Functional model with ``training=True`` and the Functional graph passes that value to every
  layer, whatever the node recorded (keras-team/keras#20285; reproduced on Keras 3.15.1 with
  the TensorFlow and JAX backends: the moving statistics change).  Two things do hold, and
  ``build_transfer_model`` / ``unfreeze`` use both: a BatchNormalization layer with
  ``trainable=False`` always normalises with its moving statistics (Keras 3 runs it in
  inference mode), and :class:`InferenceMode`, a layer whose ``call`` fixes ``training=False``
  for the backbone inside it, so no outer flag reaches it.
* **Forgetting to recompile** after changing ``trainable``.  Keras 3 compiles the training
  step once: with the TensorFlow backend ``fit`` silently keeps training the *old* set of
  weights; with JAX it raises a ``ValueError`` about ``optimizer_variables`` and leaves the
  model's variables empty.  ``fine_tune`` recompiles after every trainability change.

Offline: ``weights="imagenet"`` for ``keras.applications`` models reads the Keras cache
(``$KERAS_HOME/models`` or ``~/.keras/models``), verified with the hashes keras.applications
itself uses; a missing file raises :class:`WeightsUnavailableError` at once, naming the file,
where to put it, ``cnnlab fetch weights NAME`` and the offline alternative
``efficientnet_lite0``, whose ImageNet weights ship with a pip package (``cnnlab.pretrained``).

Everything here runs on any Keras backend (``keras.ops``); only the optional tf.data inputs
need TensorFlow.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import math
import os
import re
import shutil
import socket
import sys
import tempfile
import urllib.parse
import warnings
from collections import namedtuple
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
from keras import layers

from cnnlab.datasets import _file_digest

__all__ = [
    "BACKBONES",
    "Classification",
    "CorruptWeightsError",
    "DeviceReport",
    "InferenceMode",
    "PreprocessingWarning",
    "TrainableSummary",
    "WeightsUnavailableError",
    "build_transfer_model",
    "classify",
    "decode_predictions",
    "device_report",
    "extract_features",
    "fetch_weights",
    "fetch_weights_main",
    "fine_tune",
    "freeze",
    "load_backbone",
    "preprocess_for",
    "trainable_summary",
    "unfreeze",
]


class WeightsUnavailableError(RuntimeError):
    """ImageNet weights are neither in the Keras cache nor downloadable here."""


class CorruptWeightsError(WeightsUnavailableError):
    """A cached weights file does not have the hash keras.applications expects."""


class PreprocessingWarning(UserWarning):
    """The input of a preprocessing function breaks its contract (e.g. already scaled to 0..1)."""


# --------------------------------------------------------------------------- the backbones


@dataclass(frozen=True)
class _Backbone:
    constructor: str    # keras.applications attribute ("" for the packaged Lite0)
    module: str         # keras.applications.<module>.preprocess_input
    preprocessing: str  # what that preprocessing does, for docs and errors
    origin: str = ""    # folder the weight files are downloaded from
    top_file: str = ""
    notop_file: str = ""
    top_hash: str | None = None     # md5 (32 hex digits) or sha256 (64), as keras uses
    notop_hash: str | None = None


_KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/keras-applications/"
_CAFFE = "caffe: RGB -> BGR, minus the ImageNet mean pixel (103.939, 116.779, 123.68), no scaling"


def _resnet(depth, top_hash, notop_hash):
    stem = f"resnet{depth}_weights_tf_dim_ordering_tf_kernels"
    return _Backbone(f"ResNet{depth}", "resnet", _CAFFE, _KERAS_ORIGIN + "resnet/",
                     f"{stem}.h5", f"{stem}_notop.h5", top_hash, notop_hash)


# File names, origins and hashes as keras.applications 3.15 uses them: WEIGHTS_HASHES in
# keras/src/applications/resnet.py and efficientnet.py, the file_hash= literals of
# keras/src/applications/vgg16.py (tests/test_transfer.py checks this table against the
# installed keras).  keras/src/applications/mobilenet_v2.py downloads without a hash, so
# mobilenet_v2 has none here either; its file name depends on alpha and the input size.
BACKBONES = {
    "efficientnet_lite0": _Backbone(
        "", "", "(x - 127) / 128: RGB 0..255 to about -1..1 (cnnlab.pretrained.preprocess_lite0)"),
    "resnet50": _resnet(50, "2cb95161c43110f7111970584f804107",
                        "4d473c1dd8becc155b73f8504c6f6626"),
    "resnet101": _resnet(101, "f1aeb4b969a6efcfb50fad2f0c20cfc5",
                         "88cf7a10940856eca736dc7b7e228a21"),
    "resnet152": _resnet(152, "100835be76be38e30d865e96f2aaae62",
                         "ee4c566cf9a93f14d82f913c2dc6dd0c"),
    "vgg16": _Backbone(
        "VGG16", "vgg16", _CAFFE, _KERAS_ORIGIN + "vgg16/",
        "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "64373286793e3c8b2b4e3219cbf3544b", "6d6bbae143d832006294945121d1f1fc"),
    "mobilenet_v2": _Backbone(
        "MobileNetV2", "mobilenet_v2", "tf: x / 127.5 - 1, RGB 0..255 to -1..1",
        _KERAS_ORIGIN + "mobilenet_v2/",
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_{rows}.h5",
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_{rows}_no_top.h5"),
    "efficientnet_b0": _Backbone(
        "EfficientNetB0", "efficientnet",
        "none outside the model: EfficientNetB0 rescales and normalises RGB 0..255 inside",
        "https://storage.googleapis.com/keras-applications/",
        "efficientnetb0.h5", "efficientnetb0_notop.h5",
        "902e53a9f72be733fc0bcb005b3ebbac", "50bc09e76180e00e4465e1a485ddc09d"),
}
_MOBILENET_V2_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
_MOBILENET_V2_ROWS = (96, 128, 160, 192, 224)
_DEFAULT_SIZE = 224
_MIN_SIDE = 32
_NUM_IMAGENET_CLASSES = 1000
_NETWORK_TIMEOUT_S = 5.0


def _backbone_key(name) -> str:
    """The registry key of ``name`` ("ResNet50", "efficientnet-lite0" ... or a model)."""
    if isinstance(name, keras.Model):
        name = name.name
    if not isinstance(name, str):
        raise TypeError(f"backbone name must be a string such as 'resnet50', got {name!r}")
    squashed = name.strip().lower().replace("-", "").replace("_", "")
    for key in BACKBONES:
        if squashed == key.replace("_", ""):
            return key
    close = difflib.get_close_matches(name.strip().lower(), list(BACKBONES), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(f"backbone {name!r} is unknown{hint}; known backbones: "
                     f"{', '.join(BACKBONES)}")


def _check_image_shape(input_shape, key, include_top, weights, options) -> tuple:
    if input_shape is None:
        input_shape = (_DEFAULT_SIZE, _DEFAULT_SIZE, 3)
    try:
        input_shape = tuple(int(side) for side in input_shape)
    except (TypeError, ValueError):
        raise ValueError(f"input_shape must be (height, width, 3), got {input_shape!r}") from None
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), channels last, got "
                         f"{input_shape}")
    if weights is not None and input_shape[2] != 3:
        raise ValueError(f"input_shape={input_shape}: ImageNet weights expect 3 (RGB) channels; "
                         "repeat grayscale images: np.repeat(x, 3, axis=-1)")
    if min(input_shape[:2]) < _MIN_SIDE:
        raise ValueError(f"input_shape={input_shape}: {key} downsamples by 32, so each side "
                         f"must be at least {_MIN_SIDE}; resize the images "
                         f"(keras.layers.Resizing({_MIN_SIDE}, {_MIN_SIDE}) or larger)")
    if include_top and weights is not None:
        allowed = ({(rows, rows, 3) for rows in _MOBILENET_V2_ROWS} if key == "mobilenet_v2"
                   else {(_DEFAULT_SIZE, _DEFAULT_SIZE, 3)})
        if input_shape not in allowed:
            raise ValueError(f"input_shape={input_shape} needs include_top=False: the ImageNet "
                             f"top of {key} was trained on {sorted(allowed)[-1]} images; resize "
                             f"the images or drop the top")
    if key == "mobilenet_v2" and weights == "imagenet":
        alpha = options.get("alpha", 1.0)
        if alpha not in _MOBILENET_V2_ALPHAS:
            raise ValueError(f"alpha={alpha!r}: ImageNet weights of mobilenet_v2 exist for alpha "
                             f"in {_MOBILENET_V2_ALPHAS}")
    return input_shape


def _weights_file(key, include_top, input_shape, options):
    """``(file name, url, expected hash or None)`` of the ImageNet weights of ``key``."""
    spec = BACKBONES[key]
    fname = spec.top_file if include_top else spec.notop_file
    if key == "mobilenet_v2":  # keras/src/applications/mobilenet_v2.py: alpha and rows
        rows = input_shape[0]
        if input_shape[0] != input_shape[1] or rows not in _MOBILENET_V2_ROWS:
            rows = _DEFAULT_SIZE  # what Keras loads too (it warns)
        fname = fname.format(alpha=float(options.get("alpha", 1.0)), rows=rows)
    return fname, spec.origin + fname, spec.top_hash if include_top else spec.notop_hash


def _keras_homes(cache_dir=None) -> list[Path]:
    """Keras cache folders, searched in order: ``cache_dir``, else ``$KERAS_HOME`` or
    ``~/.keras``, then ``/tmp/.keras`` (where ``keras.utils.get_file`` writes when the home
    folder is read-only)."""
    if cache_dir is not None:
        return [Path(cache_dir).expanduser()]
    home = Path(os.environ.get("KERAS_HOME") or "~/.keras").expanduser()
    fallback = Path(tempfile.gettempdir()) / ".keras"
    return [home] if fallback == home else [home, fallback]


def _file_hash(path: Path, expected: str) -> str:
    """md5 or sha256 of ``path``, picked like ``keras.utils.get_file`` ("auto": 64 hex digits
    is sha256, anything else md5)."""
    return _file_digest(path, "sha256" if len(expected) == 64 else "md5")


def _network_reachable(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname
    try:
        with socket.create_connection((host, 443), timeout=_NETWORK_TIMEOUT_S):
            return True
    except OSError:
        return False


def _unavailable_message(key, fname, url, file_hash, target: Path, reason: str) -> str:
    checked = f" (md5/sha256 {file_hash})" if file_hash else ""
    return (
        f"ImageNet weights for {key} are not in the Keras cache ({reason}).\n"
        f"  file:   {fname}{checked}\n"
        f"  put it: {target}\n"
        f"  from:   {url}\n"
        f"On a connected machine run `cnnlab fetch weights {key}` and copy "
        f"{target.parent} to this machine (or set KERAS_HOME, or pass weights='path/to/{fname}'"
        "). Offline alternative with ImageNet weights that ship with pip: "
        "load_backbone('efficientnet_lite0').")


def _imagenet_weights_path(key, include_top, input_shape, options, cache_dir, download) -> Path:
    fname, url, file_hash = _weights_file(key, include_top, input_shape, options)
    homes = _keras_homes(cache_dir)
    for home in homes:
        candidate = home / "models" / fname
        if candidate.is_file():
            if file_hash is not None:
                actual = _file_hash(candidate, file_hash)
                if actual != file_hash:
                    raise CorruptWeightsError(
                        f"{candidate} is not the file keras.applications expects for {key}: "
                        f"hash {actual}, expected {file_hash}. Delete it and run "
                        f"`cnnlab fetch weights {key}` on a connected machine, or pass "
                        "weights=None to start from random weights.")
            return candidate
    target = homes[0] / "models" / fname
    if not download:
        raise WeightsUnavailableError(_unavailable_message(
            key, fname, url, file_hash, target, "download=False"))
    if not _network_reachable(url):
        raise WeightsUnavailableError(_unavailable_message(
            key, fname, url, file_hash, target,
            f"{urllib.parse.urlsplit(url).hostname} cannot be reached: offline"))
    return _download_weights(key, fname, url, file_hash, homes[0], target)


def _download_weights(key, fname, url, file_hash, home: Path, target: Path) -> Path:
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(60.0)  # urlretrieve has no timeout of its own
    try:
        return Path(keras.utils.get_file(fname, url, cache_subdir="models", file_hash=file_hash,
                                         cache_dir=str(home)))
    except Exception as err:  # get_file raises a bare Exception on URL errors
        raise WeightsUnavailableError(_unavailable_message(
            key, fname, url, file_hash, target, f"the download failed: {err}")) from err
    finally:
        socket.setdefaulttimeout(previous)


def load_backbone(name, weights="imagenet", input_shape=None, include_top=False, pooling="avg",
                  *, cache_dir=None, download=True, **options):
    """A pre-trained ConvNet by name: ``efficientnet_lite0`` offline, or a keras.applications model.

    ``name``: ``efficientnet_lite0`` (ImageNet weights shipped by pip, see
    ``cnnlab.pretrained``; no network ever) or ``resnet50``, ``resnet101``, ``resnet152``,
    ``vgg16``, ``mobilenet_v2``, ``efficientnet_b0`` (``BACKBONES`` lists them; unknown names
    raise ``ValueError`` listing them).  ``weights``: ``"imagenet"``, ``None`` (random
    initialisation) or the path of a weights file.  ``input_shape`` defaults to
    ``(224, 224, 3)``; without the top any ``(h, w, 3)`` with sides >= 32 works.
    ``include_top=False`` (default) drops the ImageNet classifier and ``pooling`` (``"avg"``,
    ``"max"`` or ``None`` for the feature maps) pools the last block.  ``options`` go to the
    keras.applications constructor (``alpha=0.35`` for mobilenet_v2).  The model is named
    ``name``, so ``preprocess_for(model)`` finds its preprocessing.

    ImageNet weights of keras.applications models come from the Keras cache
    (``cache_dir``/models, else ``$KERAS_HOME/models`` or ``~/.keras/models``), checked with
    the hash keras.applications uses (a wrong file raises :class:`CorruptWeightsError`).
    A missing file is downloaded with ``keras.utils.get_file`` only when ``download`` is true
    and the server answers; offline it raises :class:`WeightsUnavailableError` at once,
    naming the file, where to put it, ``cnnlab fetch weights NAME`` and the offline
    alternative ``efficientnet_lite0``.

    Used in: labs/08_pretrained_convnets, labs/09_transfer_learning
    """
    key = _backbone_key(name)
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling={pooling!r} is not None, 'avg' or 'max'")
    if not (weights is None or weights == "imagenet" or isinstance(weights, (str, Path))):
        raise ValueError(f"weights must be 'imagenet', None or the path of a weights file, got "
                         f"{weights!r}")
    if isinstance(weights, (str, Path)) and weights != "imagenet" and not Path(weights).is_file():
        raise FileNotFoundError(f"weights={str(weights)!r} is not a file; pass 'imagenet', None "
                                "or the path of a saved weights file")
    input_shape = _check_image_shape(input_shape, key, include_top, weights, options)
    pooling = None if include_top else pooling
    if key == "efficientnet_lite0":
        if options:
            raise TypeError(f"efficientnet_lite0 takes no options, got {sorted(options)}")
        from cnnlab.pretrained import efficientnet_lite0

        return efficientnet_lite0(
            weights=weights if weights in (None, "imagenet") else str(weights),
            include_top=include_top, input_shape=input_shape, pooling=pooling)
    spec = BACKBONES[key]
    path = None
    if weights == "imagenet":
        path = _imagenet_weights_path(key, include_top, input_shape, options, cache_dir,
                                      download)
    elif weights is not None:
        path = Path(weights)
    constructor = getattr(keras.applications, spec.constructor)
    model = constructor(weights=None, include_top=include_top, input_shape=input_shape,
                        pooling=pooling, name=key, **options)
    if path is not None:
        model.load_weights(str(path))
    return model


# --------------------------------------------------------------------------- preprocessing


def _is_numpy_like(x) -> bool:
    return isinstance(x, (np.ndarray, list, tuple, np.generic))


def _check_contract(array: np.ndarray, key: str, size) -> None:
    if array.ndim not in (3, 4):
        raise ValueError(f"{key} expects an image (h, w, 3) or a batch (n, h, w, 3), got shape "
                         f"{array.shape}")
    if array.shape[-1] != 3:
        hint = ("; the batch looks channels-first: np.moveaxis(x, 1, -1)" if array.ndim == 4
                and array.shape[1] == 3 else
                "; grayscale to RGB: np.repeat(x, 3, axis=-1); RGBA: x[..., :3]")
        raise ValueError(f"{key} expects RGB images with 3 channels last, got shape "
                         f"{array.shape}{hint}")
    got = tuple(array.shape[-3:-1])
    if size is not None and got != tuple(size):
        raise ValueError(
            f"{key} expects {size[0]}x{size[1]} images, got {got[0]}x{got[1]}; resize them "
            f"(keras.layers.Resizing({size[0]}, {size[1]})), or, without the ImageNet top, "
            f"pass input_shape=({got[0]}, {got[1]}, 3) to preprocess_for and load_backbone")
    if array.size:
        low, high = float(array.min()), float(array.max())
        if high <= 1.0 and low >= 0.0:
            warnings.warn(
                f"{key} expects RGB values 0..255, but this batch's maximum is {high:.3g} <= 1: "
                "it looks already rescaled to 0..1 (e.g. by ImageDataGenerator(rescale=1/255) "
                "or Rescaling(1/255)). The model will still answer, with confident nonsense; "
                "pass the 0..255 images (or multiply by 255)", PreprocessingWarning, stacklevel=3)
        elif low < 0.0 or high > 255.0:
            warnings.warn(
                f"{key} expects RGB values 0..255, got {low:.3g}..{high:.3g}: already "
                "preprocessed? Apply the preprocessing exactly once, to 0..255 images",
                PreprocessingWarning, stacklevel=3)


def preprocess_for(name, input_shape=None):
    """The preprocessing function of a backbone, with its input contract enforced.

    ``name``: a backbone name (``"resnet50"``, ``"efficientnet_lite0"``...) or a model from
    :func:`load_backbone` (its name and input size are used).  The function takes RGB images,
    channels last, float (or ``uint8``) values 0..255, ``(h, w, 3)`` or ``(n, h, w, 3)``, of
    the model's size (``input_shape``, default 224 x 224), and returns what the model was
    trained on: resnet/vgg16 ``caffe`` (RGB -> BGR, ImageNet mean pixel subtracted; exactly
    ``keras.applications.resnet50.preprocess_input``), mobilenet_v2 ``tf`` (-1..1),
    efficientnet_b0 unchanged (it normalises inside), efficientnet_lite0 ``(x - 127) / 128``.
    NumPy input is copied (never modified) and checked: wrong channels or size raise
    ``ValueError`` with the fix; values that look already rescaled (maximum <= 1) or already
    preprocessed (negative) raise a :class:`PreprocessingWarning`, because that mistake gives
    confident nonsense, not an error.  Backend tensors (e.g. in a data pipeline) are checked
    for shape only.

    Used in: labs/08_pretrained_convnets, labs/09_transfer_learning
    """
    if isinstance(name, keras.Model) and input_shape is None:
        input_shape = name.input_shape[1:]
    key = _backbone_key(name)
    size = ((_DEFAULT_SIZE, _DEFAULT_SIZE) if input_shape is None
            else tuple(int(side) for side in tuple(input_shape)[:2]))
    if key == "efficientnet_lite0":
        from cnnlab.pretrained import preprocess_lite0 as base
    else:
        base = getattr(keras.applications, BACKBONES[key].module).preprocess_input

    def preprocess(x):
        if _is_numpy_like(x):
            array = np.array(x, dtype=np.float32)  # a copy: Keras preprocesses NumPy in place
            _check_contract(array, key, size)
            with warnings.catch_warnings():  # the contract was checked (and warned) above
                warnings.simplefilter("ignore")
                return np.asarray(base(array), dtype=np.float32)
        shape = tuple(x.shape)
        if len(shape) < 3 or shape[-1] != 3:
            raise ValueError(f"{key} expects RGB images with 3 channels last, got shape {shape}")
        return base(keras.ops.cast(x, "float32"))

    preprocess.__name__ = preprocess.__qualname__ = f"preprocess_{key}"
    preprocess.__doc__ = (f"{key}'s preprocessing: {BACKBONES[key].preprocessing}. Input: RGB "
                          f"0..255, channels last, {size[0]}x{size[1]}.")
    preprocess.backbone = key
    return preprocess


def decode_predictions(preds, top=5):
    """The ``top`` ImageNet classes of each row of ``preds``: lists of (index, name, probability).

    ``preds``: ``(batch, 1000)`` softmax probabilities of any ImageNet-1k classifier (all
    backbones here share the standard class order).  Never downloads: the names come with pip
    (``cnnlab.pretrained.decode_predictions``, which this is).

    Used in: labs/08_pretrained_convnets
    """
    from cnnlab.pretrained import decode_predictions as decode

    return decode(keras.ops.convert_to_numpy(preds) if not _is_numpy_like(preds) else preds,
                  top=top)


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
        if preds.shape[1] != _NUM_IMAGENET_CLASSES:
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


# --------------------------------------------------------------------------- transfer models


@keras.saving.register_keras_serializable(package="cnnlab")
class InferenceMode(keras.layers.Wrapper):
    """Runs the wrapped backbone in inference mode, whatever ``training`` flag ``fit`` passes.

    BatchNormalization inside normalises with its moving statistics and never updates them;
    dropout inside is off.  Its weights still train when they are trainable.  This is what
    the guide's ``base(x, training=False)`` means, made to hold on Keras 3: the Functional
    graph overrides a recorded ``training=False`` (keras-team/keras#20285), but not a
    ``training=False`` fixed inside a layer's ``call``.

    Used in: labs/09_transfer_learning
    """

    def call(self, inputs, training=None):
        return self.layer(inputs, training=False)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)


def _find_backbone(model):
    """The backbone inside a model from :func:`build_transfer_model`, else ``model`` itself."""
    if isinstance(model, InferenceMode):
        return model.layer
    wrappers = [layer for layer in getattr(model, "layers", []) if isinstance(layer, InferenceMode)]
    if len(wrappers) == 1:
        return wrappers[0].layer
    return model


def _is_transfer_model(model) -> bool:
    return _find_backbone(model) is not model


def build_transfer_model(backbone, num_classes, dropout=0.2, augmentation=None, name=None):
    """A new classifier on a pre-trained backbone: image -> [augmentation] -> backbone -> head.

    The backbone is wrapped in :class:`InferenceMode` (layer ``"backbone"``; the backbone is
    ``model.get_layer("backbone").layer``), so its BatchNormalization layers keep their
    moving statistics even when it is unfrozen, and it starts **frozen**.  ``augmentation``:
    a Keras layer (e.g. a ``keras.Sequential`` of ``RandomFlip``...) or a list of layers,
    active only in training.  Head: global average pooling (when the backbone gives feature
    maps), ``Dropout(dropout)``, ``Dense(num_classes, softmax)`` (``num_classes=1``: sigmoid,
    for binary labels), computed in float32 under mixed precision.  Inputs are what
    ``preprocess_for(backbone)`` returns.  Train it with :func:`fine_tune`, or compile and
    fit; after any ``trainable`` change, compile again.

    Used in: labs/09_transfer_learning
    """
    if not isinstance(backbone, keras.Model):
        raise TypeError(f"backbone must be a keras Model (e.g. load_backbone('efficientnet_lite0'"
                        f")), got {type(backbone).__name__}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) \
            or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a rate in [0, 1), got {dropout!r}")
    shape = tuple(backbone.input_shape[1:])
    if None in shape:
        raise ValueError(f"the backbone's input shape {shape} is not fixed; load it with "
                         "input_shape=(h, w, 3)")
    inputs = keras.Input(shape=shape, name="image")
    x = inputs
    if augmentation is not None:
        steps = augmentation if isinstance(augmentation, (list, tuple)) else [augmentation]
        for step in steps:
            if not callable(step):
                raise TypeError(f"augmentation must be Keras layers, got {step!r}")
            x = step(x)
    freeze(backbone)
    x = InferenceMode(backbone, name="backbone")(x)
    if len(x.shape) == 4:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif len(x.shape) != 2:
        raise ValueError(f"the backbone outputs shape {x.shape}; expected feature maps "
                         "(n, h, w, c) or pooled features (n, c)")
    if dropout:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    activation = "sigmoid" if num_classes == 1 else "softmax"
    outputs = layers.Dense(int(num_classes), activation=activation, dtype="float32",
                           name="predictions")(x)
    return keras.Model(inputs, outputs, name=name or f"{backbone.name}_transfer")


def _walk(layer):
    """``layer`` and every layer nested inside it (depth first)."""
    yield layer
    for sub in getattr(layer, "_layers", []):
        yield from _walk(sub)


def _set_trainable(layer, value: bool) -> None:
    """``trainable = value`` on ``layer`` and on every layer inside it.

    Not just ``layer.trainable = value``: with the TensorFlow backend, Keras 3 skips that
    assignment when ``layer.trainable`` already has the value (its attribute tracking
    short-circuits ``self.x = x``), so ``model.trainable = True`` on a trainable model does not
    reach a backbone frozen inside it."""
    for sub in _walk(layer):
        sub.trainable = value


def _batch_norms(layer):
    return [sub for sub in _walk(layer) if isinstance(sub, layers.BatchNormalization)]


def freeze(model):
    """Freeze every layer of ``model`` (``model.trainable = False``) and return it.

    ``freeze(backbone)`` before training a new head; ``freeze(model)`` freezes a whole model.
    Compile (again) afterwards: Keras fixes the trained weights when it compiles.

    Used in: labs/09_transfer_learning
    """
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"freeze expects a Keras model or layer, got {type(model).__name__}")
    _set_trainable(model, False)
    return model


# Block names in keras.applications / cnnlab layer names: conv4_block2 (ResNet), block_13 /
# expanded_conv (MobileNetV2), block5 (VGG), block6a (EfficientNet, Lite0), stem, top.
_BLOCK_PATTERNS = (re.compile(r"^(conv\d+_block\d+)_"), re.compile(r"^(conv\d+)_"),
                   re.compile(r"^(block_?\d+[a-z]?)_"), re.compile(r"^(expanded_conv)_"),
                   re.compile(r"^(stem|top)_"))


def _blocks(model) -> list[tuple[str, list]]:
    """``[(block name, [layers])]`` of a flat model, in order, InputLayers left out.

    Layers whose names match no block pattern belong to the block before them ("stem" before
    the first block, "top" after the last); in a model with no block names at all, every
    layer is its own block."""
    members = [layer for layer in model.layers if not isinstance(layer, layers.InputLayer)]
    names = []
    for layer in members:
        match = next((p.match(layer.name) for p in _BLOCK_PATTERNS if p.match(layer.name)), None)
        names.append(match.group(1) if match else None)
    if not any(names):
        return [(layer.name, [layer]) for layer in members]
    last = max(i for i, block in enumerate(names) if block)
    blocks, current = [], "stem"
    for i, (layer, block) in enumerate(zip(members, names)):
        block = block or ("top" if i > last else current)
        current = block
        if blocks and blocks[-1][0] == block:
            blocks[-1][1].append(layer)
        else:
            blocks.append((block, [layer]))
    return blocks


def unfreeze(backbone, from_layer=None, fraction=None, keep_batchnorm_frozen=True):
    """Make (part of) a backbone trainable again, for fine-tuning; returns the backbone.

    ``backbone``: a backbone, or a model from :func:`build_transfer_model` (then its backbone,
    and the head stays trainable).  Which layers: all (default); from ``from_layer`` (a layer
    name or index) to the end; or the deepest ``fraction`` of the backbone's blocks
    (``fraction=0.25``: the last quarter, at least one block; blocks as in
    :func:`trainable_summary`).  ``keep_batchnorm_frozen=True`` (default) keeps every
    BatchNormalization layer at ``trainable=False``: Keras 3 then normalises with the moving
    statistics and never updates them, and gamma/beta stay fixed.  With ``False`` the
    BatchNorm layers train (and, outside :class:`InferenceMode`, their statistics drift to
    the new small batches: the classic failure).  Compile again afterwards.

    Used in: labs/09_transfer_learning
    """
    if from_layer is not None and fraction is not None:
        raise ValueError("give from_layer or fraction, not both")
    target = _find_backbone(backbone)
    if not isinstance(target, keras.Model):
        raise TypeError(f"unfreeze expects a Keras model, got {type(target).__name__}")
    members = [layer for layer in target.layers if not isinstance(layer, layers.InputLayer)]
    start = 0
    if from_layer is not None:
        if isinstance(from_layer, str):
            names = [layer.name for layer in members]
            if from_layer not in names:
                close = difflib.get_close_matches(from_layer, names, n=3)
                raise ValueError(f"{target.name} has no layer {from_layer!r}"
                                 + (f"; close names: {', '.join(close)}" if close else "")
                                 + "; see [layer.name for layer in backbone.layers]")
            start = names.index(from_layer)
        elif isinstance(from_layer, (int, np.integer)) and not isinstance(from_layer, bool):
            if not -len(members) <= from_layer < len(members):
                raise ValueError(f"from_layer={from_layer} is out of range: {target.name} has "
                                 f"{len(members)} layers")
            start = int(from_layer) % len(members)
        else:
            raise TypeError(f"from_layer must be a layer name or index, got {from_layer!r}")
    elif fraction is not None:
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) \
                or not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], e.g. 0.25 for the deepest quarter "
                             f"of the blocks, got {fraction!r}")
        blocks = [(block, group) for block, group in _blocks(target)
                  if any(layer.weights for layer in group)]
        count = max(1, math.ceil(fraction * len(blocks)))
        start = members.index(blocks[-count][1][0])
    _set_trainable(backbone if _is_transfer_model(backbone) else target, True)
    for layer in members[:start]:
        _set_trainable(layer, False)
    if keep_batchnorm_frozen:
        for layer in _batch_norms(target):
            _set_trainable(layer, False)
    return target


@dataclass
class TrainableSummary:
    """What :func:`trainable_summary` returns: per-block parameter counts, as a table.

    ``table``: a pandas DataFrame (``block``, ``trainable``, ``frozen``, ``statistics``);
    ``trainable`` / ``frozen`` / ``statistics``: the totals.  ``frozen`` counts weights that
    could train but are frozen now; ``statistics`` counts BatchNorm moving means and variances
    (and Normalization state), which no optimizer ever trains.
    """

    model_name: str
    table: object
    trainable: int
    frozen: int
    statistics: int

    @property
    def total(self) -> int:
        return self.trainable + self.frozen + self.statistics

    def __str__(self) -> str:
        lines = [f"{self.model_name}: {self.trainable:,} trainable, {self.frozen:,} frozen, "
                 f"{self.statistics:,} statistics ({self.total:,} parameters)"]
        lines.append(self.table.to_string(index=False, formatters={
            column: "{:,}".format for column in ("trainable", "frozen", "statistics")}))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return (f"<p><b>{self.model_name}</b>: {self.trainable:,} trainable, {self.frozen:,} "
                f"frozen, {self.statistics:,} statistics ({self.total:,} parameters)</p>"
                + self.table.to_html(index=False))


def _statistics_ids(model) -> set:
    ids = set()
    for layer in _walk(model):
        if isinstance(layer, layers.BatchNormalization):
            ids.update(id(v) for v in (layer.moving_mean, layer.moving_variance))
        elif isinstance(layer, layers.Normalization):
            ids.update(id(v) for v in layer.weights)
    return ids


def trainable_summary(model):
    """Trainable, frozen and statistics parameters per block of a (transfer) model.

    Rows: the blocks of the backbone inside (``"resnet50/conv5_block3"``, ``"backbone/top"``
    ...; see :func:`unfreeze` for how blocks are found) and the other layers by name; layers
    without weights are left out.  A weight is ``trainable`` exactly when it is in
    ``model.trainable_weights`` (what ``fit`` will update), so the ``trainable`` total equals
    ``sum(np.prod(w.shape) for w in model.trainable_weights)`` and the three totals add up to
    ``model.count_params()``.  Returns a :class:`TrainableSummary` (text, HTML, ``.table``).

    Used in: labs/09_transfer_learning
    """
    import pandas as pd

    if not isinstance(model, keras.Model):
        raise TypeError(f"trainable_summary expects a Keras model, got {type(model).__name__}")
    trainable_ids = {id(w) for w in model.trainable_weights}
    statistics_ids = _statistics_ids(model)
    seen = set()
    rows = []

    def add(block, group):
        counts = {"trainable": 0, "frozen": 0, "statistics": 0}
        for layer in group:
            for weight in layer.weights:
                if id(weight) in seen:
                    continue
                seen.add(id(weight))
                size = int(np.prod(weight.shape))
                kind = ("trainable" if id(weight) in trainable_ids else
                        "statistics" if id(weight) in statistics_ids else "frozen")
                counts[kind] += size
        if any(counts.values()):
            rows.append({"block": block, **counts})

    nested = [layer for layer in model.layers
              if isinstance(layer, (InferenceMode, keras.Model))]
    if not nested:  # a backbone itself: its blocks
        for block, group in _blocks(model):
            add(block, group)
    for layer in model.layers:
        inner = layer.layer if isinstance(layer, InferenceMode) else layer
        if isinstance(inner, keras.Model):
            for block, group in _blocks(inner):
                add(f"{inner.name}/{block}", group)
        add(layer.name, [layer])  # the layer's own weights (or whatever the blocks missed)
    table = pd.DataFrame(rows, columns=["block", "trainable", "frozen", "statistics"])
    return TrainableSummary(model.name, table, int(table["trainable"].sum()),
                            int(table["frozen"].sum()), int(table["statistics"].sum()))


# --------------------------------------------------------------------------- fine-tuning


def _apply_mixed_precision(model) -> None:
    """Compute in float16 with float32 variables; the output layer stays float32."""
    output_layers = {id(layer) for layer in model.layers if layer.name == "predictions"}
    for layer in _walk(model):
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
              verbose=0):
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
    on a CPU).

    Returns a dict of per-epoch lists (``loss``, ``accuracy``, ``val_loss``, ...,
    ``learning_rate``, ``phase``: "head" or "fine_tune") plus ``phase_boundary``: the index
    of the first fine-tuning epoch (absent when phase 2 ran no epoch), which
    ``cnnlab.train.compare_histories`` draws as a line.

    Used in: labs/09_transfer_learning
    """
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


# --------------------------------------------------------------------------- features


def _materialize(data):
    """``(images, labels or None)`` from an array, a list, or an iterable of batches."""
    if isinstance(data, np.ndarray):
        return data, None
    if isinstance(data, (list, tuple)) and data and isinstance(data[0], np.ndarray) \
            and data[0].ndim == 3:
        return np.stack(data), None
    if hasattr(data, "as_numpy_iterator"):
        data = data.as_numpy_iterator()
    images, labels = [], []
    try:
        for batch in data:
            if isinstance(batch, (tuple, list)):
                images.append(np.asarray(batch[0]))
                labels.append(np.asarray(batch[1]))
            else:
                images.append(np.asarray(batch))
    except TypeError:
        raise TypeError(f"data must be an array of images (n, h, w, c) or an iterable of batches"
                        f", got {type(data).__name__}") from None
    if not images:
        raise ValueError("data is empty")
    return np.concatenate(images), (np.concatenate(labels) if labels else None)


def _model_fingerprint(model) -> str:
    digest = hashlib.sha256()
    digest.update(f"{model.name}|{model.input_shape}|{model.output_shape}|".encode())
    for weight in model.weights:
        value = np.ascontiguousarray(keras.ops.convert_to_numpy(weight))
        digest.update(f"{weight.path}{value.shape}{value.dtype}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def _default_feature_cache() -> Path:
    if os.environ.get("CNNLAB_DATA"):
        return Path(os.environ["CNNLAB_DATA"]).expanduser() / "features"
    return _keras_homes()[0] / "cnnlab-features"


def extract_features(backbone, data, batch_size=64, cache=None, preprocess=None, progress=True):
    """Run a (frozen) backbone over images once: the features for a small classifier.

    ``data``: images ``(n, h, w, c)`` or an iterable of batches (a ``tf.data.Dataset`` of
    images or ``(images, labels)``; read into memory).  ``preprocess`` (e.g.
    ``preprocess_for(backbone)``) is applied batch by batch; without it the images must already
    be preprocessed.  Returns the features ``(n, ...)`` as float32 NumPy (and the labels when
    ``data`` yields them).  A progress bar (``tqdm.auto``) shows the batches.

    ``cache``: ``None`` (compute), a folder, or ``True`` (``$CNNLAB_DATA/features``, else
    ``~/.keras/cnnlab-features``).  The file name holds a SHA-256 of the model (name, shapes,
    every weight) and of the data (bytes, shape, dtype) and the preprocessing's name, so a
    second call with the same model and data loads from disk without running the model, and
    changing either computes afresh.

    Used in: labs/08_pretrained_convnets, labs/09_transfer_learning
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    images, labels = _materialize(data)
    if images.ndim != 4:
        raise ValueError(f"data must be a batch of images (n, h, w, c), got shape {images.shape}")
    path = None
    if cache is not None and cache is not False:
        folder = _default_feature_cache() if cache is True else Path(cache).expanduser()
        digest = hashlib.sha256()
        digest.update(_model_fingerprint(backbone).encode())
        prep = "none" if preprocess is None else getattr(preprocess, "__qualname__",
                                                         repr(preprocess))
        digest.update(f"|{prep}|{images.shape}|{images.dtype}|".encode())
        digest.update(np.ascontiguousarray(images).tobytes())
        path = folder / f"features-{backbone.name}-{digest.hexdigest()[:24]}.npy"
        if path.is_file():
            try:
                features = np.load(path, allow_pickle=False)
                if len(features) == len(images):
                    return features if labels is None else (features, labels)
            except (OSError, ValueError):
                pass  # unreadable: compute again and overwrite
    from tqdm.auto import tqdm

    parts = []
    starts = range(0, len(images), batch_size)
    for start in tqdm(starts, desc=f"features ({backbone.name})", unit="batch",
                      disable=not progress):
        batch = images[start:start + batch_size]
        count = len(batch)
        if count < batch_size:  # always the same shape: the model is traced only once
            batch = np.concatenate([batch, np.repeat(batch[-1:], batch_size - count, axis=0)])
        if preprocess is not None:
            batch = preprocess(batch)
        output = backbone.predict_on_batch(batch)
        parts.append(np.asarray(keras.ops.convert_to_numpy(output), dtype=np.float32)[:count])
    features = np.concatenate(parts)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part",
                                                 dir=path.parent)
            with os.fdopen(handle, "wb") as out:
                np.save(out, features)
            os.replace(temporary, path)
        except OSError as err:
            warnings.warn(f"could not write the feature cache {path} ({err}); features were "
                          "computed but not cached", stacklevel=2)
    return features if labels is None else (features, labels)


# --------------------------------------------------------------------------- devices


@dataclass
class DeviceReport:
    """What :func:`device_report` returns: backend, devices and whether float16 will help."""

    backend: str
    devices: list = field(default_factory=list)
    gpus: list = field(default_factory=list)
    mixed_precision_helps: bool = False
    reason: str = ""
    notes: list = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"Keras backend: {self.backend}",
                 "devices: " + (", ".join(self.devices) or "none found"),
                 f"mixed precision helps: {'yes' if self.mixed_precision_helps else 'no'} "
                 f"({self.reason})"]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from html import escape

        items = "".join(f"<li>{escape(line)}</li>" for line in str(self).splitlines())
        return f"<ul>{items}</ul>"


def _gpus_tensorflow():
    import tensorflow as tf

    devices, gpus = [], []
    for device in tf.config.list_physical_devices():
        devices.append(f"{device.device_type}:{device.name.rsplit(':', 1)[-1]}")
        if device.device_type == "GPU":
            details = tf.config.experimental.get_device_details(device)
            capability = details.get("compute_capability")
            gpus.append((details.get("device_name", device.name), capability))
    return devices, gpus, []


def _gpus_jax():
    import jax

    devices, gpus, tpus = [], [], []
    for device in jax.devices():
        devices.append(f"{device.platform}:{device.id} {getattr(device, 'device_kind', '')}"
                       .strip())
        if device.platform == "gpu":
            capability = getattr(device, "compute_capability", None)
            if isinstance(capability, str):
                capability = tuple(int(part) for part in capability.split(".")[:2])
            gpus.append((getattr(device, "device_kind", "GPU"), capability))
        elif device.platform == "tpu":
            tpus.append(device)
    return devices, gpus, tpus


def _gpus_torch():
    import torch

    devices, gpus = ["cpu"], []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            name = torch.cuda.get_device_name(index)
            devices.append(f"cuda:{index} {name}")
            gpus.append((name, tuple(torch.cuda.get_device_capability(index))))
    return devices, gpus, []


def _nvidia_driver_present() -> bool:
    return Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi") is not None


def device_report():
    """Which backend and devices Keras will use, and whether mixed precision will help.

    Returns a :class:`DeviceReport` (text, HTML; fields ``backend``, ``devices``, ``gpus``
    as (name, compute capability), ``mixed_precision_helps`` with its ``reason``, ``notes``).
    float16 pays off on GPUs with tensor cores (compute capability 7.0 or more: about 2-3x
    for convolutions); on a CPU it is emulated and slower.  cnnlab never hides a GPU: the
    notes say when ``CUDA_VISIBLE_DEVICES`` hides one, or when an NVIDIA driver is installed
    but the backend sees no GPU (a CPU-only build), with the fix.

    Used in: labs/09_transfer_learning
    """
    backend = keras.backend.backend()
    probe = {"tensorflow": _gpus_tensorflow, "jax": _gpus_jax, "torch": _gpus_torch}.get(backend)
    notes = []
    devices, gpus, tpus = probe() if probe else ([], [], [])
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        notes.append(f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU from this process; "
                     "unset it to use them")
    if not gpus and _nvidia_driver_present() and not (visible is not None
                                                      and visible.strip() in ("", "-1")):
        fix = {"tensorflow": "pip install 'tensorflow[and-cuda]'",
               "jax": "pip install 'jax[cuda12]'", "torch": "a CUDA build of torch"}
        notes.append(f"an NVIDIA driver is installed but {backend} sees no GPU: this is a "
                     f"CPU-only build; install {fix.get(backend, 'a GPU build')}")
    if tpus:
        helps, reason = True, "TPU: use mixed_bfloat16"
    elif gpus:
        capabilities = [cap for _, cap in gpus if cap]
        best = max(capabilities) if capabilities else None
        if best is not None and tuple(best) >= (7, 0):
            helps = True
            reason = (f"{gpus[0][0]} has tensor cores (compute capability "
                      f"{best[0]}.{best[1]}): float16 convolutions run about 2-3x faster")
        else:
            helps = False
            reason = ("GPU without tensor cores (compute capability "
                      f"{'unknown' if best is None else f'{best[0]}.{best[1]}'} < 7.0)")
    else:
        helps, reason = False, "no GPU: float16 on a CPU is emulated and slower; keep float32"
    return DeviceReport(backend, devices, [f"{name} ({'.'.join(map(str, cap)) if cap else '?'})"
                                           for name, cap in gpus], helps, reason, notes)


# --------------------------------------------------------------------------- fetch weights


def fetch_weights(names, include_top=False, cache_dir=None, **options):
    """Download and verify ImageNet weights into the Keras cache, so that labs run offline.

    ``names``: one backbone name or a list (``"all"``: every keras.applications backbone).
    Uses ``keras.utils.get_file`` with the hash keras.applications checks, into
    ``cache_dir``/models (default ``$KERAS_HOME`` or ``~/.keras``); files already there and
    verified are kept.  ``options``: ``alpha`` / ``input_shape`` for mobilenet_v2's file
    name.  Returns ``{name: path}``; ``efficientnet_lite0`` needs nothing (it ships with pip)
    and maps to its packaged file.  Run ``cnnlab fetch weights NAME`` on a connected machine,
    then copy ``~/.keras/models`` to the offline one.

    Used in: no lab notebook directly; ``cnnlab fetch weights NAME``
    """
    names = [names] if isinstance(names, str) else list(names)
    if any(str(name).strip().lower() == "all" for name in names):
        names = [key for key in BACKBONES if key != "efficientnet_lite0"]
    if not names:
        raise ValueError(f"names is empty; give one or more of {', '.join(BACKBONES)}")
    input_shape = options.pop("input_shape", None)
    paths = {}
    for name in names:
        key = _backbone_key(name)
        if key == "efficientnet_lite0":
            from cnnlab.pretrained import lite0_weights_path

            paths[key] = Path(lite0_weights_path())
            continue
        shape = _check_image_shape(input_shape, key, include_top, "imagenet", options)
        try:
            paths[key] = _imagenet_weights_path(key, include_top, shape, options, cache_dir,
                                                download=True)
        except CorruptWeightsError:
            fname, url, file_hash = _weights_file(key, include_top, shape, options)
            home = _keras_homes(cache_dir)[0]
            (home / "models" / fname).unlink(missing_ok=True)  # a bad copy: fetch it again
            paths[key] = _download_weights(key, fname, url, file_hash, home,
                                           home / "models" / fname)
    return paths


def fetch_weights_main(argv=None) -> int:
    """``cnnlab fetch weights NAME ... [--include-top] [--cache-dir DIR]``.

    Prints one line per backbone (path, size) and returns 0 when all are in place, 1 when one
    could not be fetched, 2 for an unknown name.

    Used in: no lab notebook directly; ``cnnlab fetch weights NAME``
    """
    parser = argparse.ArgumentParser(
        prog="cnnlab fetch weights",
        description="Download and verify keras.applications ImageNet weights into the Keras "
                    "cache so that the labs run offline.")
    parser.add_argument("names", nargs="+", metavar="NAME",
                        help=f"backbones: {', '.join(BACKBONES)}, or all")
    parser.add_argument("--include-top", action="store_true",
                        help="the weights with the ImageNet classifier (default: without)")
    parser.add_argument("--cache-dir", default=None,
                        help="Keras home folder (default $KERAS_HOME or ~/.keras)")
    args = parser.parse_args(argv)
    try:
        keys = [key for name in args.names
                for key in ([k for k in BACKBONES if k != "efficientnet_lite0"]
                            if name.strip().lower() == "all" else [_backbone_key(name)])]
    except (ValueError, TypeError) as err:
        print(f"cnnlab fetch weights: {err}", file=sys.stderr)
        return 2
    failures = 0
    for key in dict.fromkeys(keys):
        try:
            path = fetch_weights(key, include_top=args.include_top,
                                 cache_dir=args.cache_dir)[key]
        except WeightsUnavailableError as err:
            print(f"cnnlab fetch weights: {key}: {err}", file=sys.stderr)
            failures += 1
            continue
        print(f"{key:<18} {path}  {path.stat().st_size / 2**20:.1f} MiB  verified")
    return 1 if failures else 0
