"""Pre-trained backbones by name: the registry, the ImageNet weights offline, ``load_backbone``.

The lectures' *Transfer learning* slides: a ConvNet trained on ImageNet has learned features
that transfer.  ``BACKBONES`` lists the backbones cnnlab knows; ``load_backbone(name)``
builds one with its ImageNet weights.

Offline: ``weights="imagenet"`` for ``keras.applications`` models reads the Keras cache
(``$KERAS_HOME/models`` or ``~/.keras/models``), verified with the hashes keras.applications
itself uses; a missing file raises :class:`WeightsUnavailableError` at once, naming the file,
where to put it, ``cnnlab fetch weights NAME`` and the offline alternative
``efficientnet_lite0``, whose ImageNet weights ship with a pip package
(:mod:`cnnlab.transfer.lite0`).  :func:`fetch_weights` fills that cache on a connected machine.

Used in: no lab notebook directly; the labs import these names from cnnlab.transfer
"""

from __future__ import annotations

import difflib
import tempfile
import socket
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import keras

from cnnlab import _cache
from cnnlab.transfer.lite0 import efficientnet_lite0

__all__ = [
    "BACKBONES",
    "CorruptWeightsError",
    "WeightsUnavailableError",
    "backbone_key",
    "fetch_weights",
    "load_backbone",
]


class WeightsUnavailableError(RuntimeError):
    """ImageNet weights are neither in the Keras cache nor downloadable here."""


class CorruptWeightsError(WeightsUnavailableError):
    """A cached weights file does not have the hash keras.applications expects."""


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
_NETWORK_TIMEOUT_S = 5.0


def backbone_key(name) -> str:
    """The registry key of ``name`` ("ResNet50", "efficientnet-lite0" ... or a model).

    Case, ``-`` and ``_`` do not matter; an unknown name raises ``ValueError`` listing the
    known ones (with the closest, if any); a non-string ``TypeError``.

    Used in: no lab notebook directly; ``cnnlab fetch weights NAME`` checks the names with it
    """
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
    home = _cache.keras_home()
    fallback = Path(tempfile.gettempdir()) / ".keras"
    return [home] if fallback == home else [home, fallback]


def _file_hash(path: Path, expected: str) -> str:
    """md5 or sha256 of ``path``, picked like ``keras.utils.get_file`` ("auto": 64 hex digits
    is sha256, anything else md5)."""
    return _cache.file_digest(path, "sha256" if len(expected) == 64 else "md5")


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
    key = backbone_key(name)
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
        key = backbone_key(name)
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


