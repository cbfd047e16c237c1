"""cnnlab.transfer: offline backbones, preprocessing contracts, BatchNorm and recompile semantics.

Runs under the TensorFlow backend (``make test``) and under ``KERAS_BACKEND=jax`` (``make
test-jax``): nothing here needs TensorFlow except where a test says so.
"""

import dataclasses
import hashlib
import inspect
import socket
import warnings

import cnnlab  # noqa: F401 - quiet TensorFlow first
import keras
import numpy as np
import pytest
from keras import layers

from cnnlab import transfer
from cnnlab.transfer import (
    BACKBONES, CorruptWeightsError, InferenceMode, PreprocessingWarning, WeightsUnavailableError,
    build_transfer_model, extract_features, fine_tune, freeze, load_backbone, preprocess_for,
    trainable_summary, unfreeze,
)

BACKEND = keras.backend.backend()
# XLA compile time dominates a tiny model's few steps with TensorFlow; JAX runs op by op
# (slowly) without jit, so it keeps it.
JIT = BACKEND == "jax"


def _numpy(variable):
    return np.array(keras.ops.convert_to_numpy(variable))


def _count(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


def tiny_backbone(seed=0):
    """Two conv-BN-ReLU blocks (names block1_*, block2_*), pooled: 16x16x3 -> 8 features."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 3))
    x = inputs
    for block in (1, 2):
        x = layers.Conv2D(8, 3, name=f"block{block}_conv")(x)
        x = layers.BatchNormalization(name=f"block{block}_bn")(x)
        x = layers.ReLU(name=f"block{block}_relu")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.Model(inputs, x, name="tiny")


@pytest.fixture(scope="module")
def synthetic_batch():
    """Synthetic (random, seeded) images whose statistics differ from BN's initial mean 0 /
    variance 1, so one training-mode step would visibly move the moving statistics."""
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(32, 16, 16, 3)).astype("float32")
    y = rng.integers(0, 3, size=32)
    return x, y


def _statistics(backbone):
    return {bn.name: (_numpy(bn.moving_mean), _numpy(bn.moving_variance))
            for bn in backbone.layers if isinstance(bn, layers.BatchNormalization)}


def _kernels(model):
    return {w.path: _numpy(w) for w in model.weights if "kernel" in w.path or "gamma" in w.path}


def _fit_once(model, x, y, learning_rate=1e-2):
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", jit_compile=JIT)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)


# --------------------------------------------------------------------------- weights and names


def test_weight_table_mirrors_the_installed_keras_applications():
    from keras.src.applications import efficientnet, mobilenet_v2, resnet, vgg16

    for depth in (50, 101, 152):
        spec = BACKBONES[f"resnet{depth}"]
        assert (spec.top_hash, spec.notop_hash) == resnet.WEIGHTS_HASHES[f"resnet{depth}"]
        assert spec.origin == resnet.BASE_WEIGHTS_PATH
    spec = BACKBONES["efficientnet_b0"]
    assert (spec.top_hash, spec.notop_hash) == efficientnet.WEIGHTS_HASHES["b0"]
    assert spec.origin == efficientnet.BASE_WEIGHTS_PATH
    vgg_source = inspect.getsource(vgg16)
    spec = BACKBONES["vgg16"]
    for fname, file_hash in ((spec.top_file, spec.top_hash), (spec.notop_file, spec.notop_hash)):
        assert f'file_hash="{file_hash}"' in vgg_source and fname in vgg_source
    assert vgg16.WEIGHTS_PATH_NO_TOP == spec.origin + spec.notop_file
    assert BACKBONES["mobilenet_v2"].origin == mobilenet_v2.BASE_WEIGHT_PATH
    assert "file_hash" not in inspect.getsource(mobilenet_v2)  # keras checks no hash either


def test_unknown_backbone_lists_the_known_ones():
    with pytest.raises(ValueError, match="resnet50.*efficientnet_lite0|efficientnet_lite0.*resnet"):
        load_backbone("resnet5")
    with pytest.raises(ValueError, match="did you mean 'resnet50'"):
        preprocess_for("resnet5")


MOBILENET_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5"


@pytest.fixture(scope="module")
def keras_cache(tmp_path_factory):
    """A temporary Keras home whose models/ folder holds MobileNetV2 (alpha 0.35, 96x96, no top)
    weights saved from a weights=None model, in the legacy HDF5 layout of the real files, under
    the name keras.applications downloads; shifted by 0.5 so loading them is visible."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    home = tmp_path_factory.mktemp("keras_home")
    (home / "models").mkdir()
    keras.utils.set_random_seed(1)
    source = keras.applications.MobileNetV2(weights=None, include_top=False, alpha=0.35,
                                            input_shape=(96, 96, 3), pooling="avg")
    source.set_weights([w + 0.5 for w in source.get_weights()])
    path = home / "models" / MOBILENET_FILE
    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, source)
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    return home, md5, source.get_weights()


def _with_hash(monkeypatch, file_hash):
    spec = dataclasses.replace(BACKBONES["mobilenet_v2"], notop_hash=file_hash)
    monkeypatch.setitem(BACKBONES, "mobilenet_v2", spec)


def _no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the network was touched")

    monkeypatch.setattr(keras.utils, "get_file", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.slow
def test_imagenet_weights_load_from_the_keras_cache_when_the_hash_matches(keras_cache,
                                                                           monkeypatch):
    home, md5, expected = keras_cache
    _with_hash(monkeypatch, md5)
    _no_network(monkeypatch)
    model = load_backbone("mobilenet_v2", input_shape=(96, 96, 3), alpha=0.35, cache_dir=home)
    assert model.name == "mobilenet_v2"
    for got, want in zip(model.get_weights(), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    monkeypatch.setenv("KERAS_HOME", str(home))  # found through $KERAS_HOME as well
    again = load_backbone("mobilenet_v2", input_shape=(96, 96, 3), alpha=0.35)
    np.testing.assert_array_equal(again.get_weights()[0], expected[0])


def test_imagenet_weights_with_the_wrong_hash_raise_a_clear_error(keras_cache, monkeypatch):
    home, _, _ = keras_cache
    _with_hash(monkeypatch, "0" * 32)
    _no_network(monkeypatch)
    with pytest.raises(CorruptWeightsError) as info:
        load_backbone("mobilenet_v2", input_shape=(96, 96, 3), alpha=0.35, cache_dir=home)
    message = str(info.value)
    assert MOBILENET_FILE in message and "0" * 32 in message
    assert "cnnlab fetch weights mobilenet_v2" in message


def test_missing_weights_offline_raise_weights_unavailable_naming_every_way_out(tmp_path,
                                                                               monkeypatch):
    def offline(*args, **kwargs):  # an air-gapped machine: name resolution fails at once
        raise socket.gaierror(-2, "Name or service not known")

    def no_download(*args, **kwargs):
        raise AssertionError("get_file must not be tried offline")

    monkeypatch.setattr(socket, "create_connection", offline)
    monkeypatch.setattr(keras.utils, "get_file", no_download)
    for download in (True, False):
        with pytest.raises(WeightsUnavailableError) as info:
            load_backbone("resnet50", cache_dir=tmp_path, download=download)
        message = str(info.value)
        fname = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
        assert fname in message
        assert str(tmp_path / "models" / fname) in message  # where to put it
        assert "cnnlab fetch weights resnet50" in message
        assert "efficientnet_lite0" in message  # the offline alternative
        assert BACKBONES["resnet50"].notop_hash in message
    assert "cannot be reached" in str(info.value) or "download=False" in str(info.value)


def test_cli_fetch_weights_reports_unknown_names_and_offline_failures(tmp_path, monkeypatch,
                                                                      capsys):
    from cnnlab.cli import main

    monkeypatch.setattr(transfer.backbones, "_network_reachable", lambda url: False)
    assert main(["fetch", "weights", "resnet5"]) == 2
    assert "did you mean 'resnet50'" in capsys.readouterr().err
    assert main(["fetch", "weights", "vgg16", "--cache-dir", str(tmp_path)]) == 1
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in capsys.readouterr().err
    assert main(["fetch", "weights", "efficientnet_lite0"]) == 0  # packaged: nothing to fetch
    assert "efficientnet-lite0" in capsys.readouterr().out


# --------------------------------------------------------------------------- preprocessing


def test_preprocess_for_resnet50_is_keras_caffe_preprocessing_without_touching_the_input():
    x = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3)).astype("float32")
    before = x.copy()
    got = preprocess_for("resnet50")(x)
    np.testing.assert_array_equal(x, before)
    want = keras.applications.resnet50.preprocess_input(x.copy())
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)
    # caffe by hand: RGB -> BGR, minus the ImageNet mean pixel
    np.testing.assert_allclose(got[..., 0], x[..., 2] - 103.939, atol=1e-3)
    np.testing.assert_allclose(got[..., 2], x[..., 0] - 123.68, atol=1e-3)


def test_preprocess_for_lite0_and_mobilenet_v2_scale_to_minus_one_one():
    x = np.array([[[[0, 127, 255]] * 64] * 64], dtype=np.uint8)
    np.testing.assert_allclose(preprocess_for("efficientnet_lite0", (64, 64, 3))(x)[0, 0, 0],
                               [-127 / 128, 0, 1], atol=1e-6)
    np.testing.assert_allclose(preprocess_for("mobilenet_v2", (64, 64, 3))(x)[0, 0, 0],
                               [-1, 127 / 127.5 - 1, 1], atol=1e-6)


def test_an_already_rescaled_batch_gets_a_warning_that_says_so():
    rescaled = np.random.default_rng(0).uniform(0, 1, (2, 224, 224, 3)).astype("float32")
    with pytest.warns(PreprocessingWarning, match=r"0\.\.1"):
        preprocess_for("efficientnet_lite0")(rescaled)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        preprocess_for("efficientnet_lite0")(rescaled * 255)


def test_preprocess_rejects_wrong_size_and_channels_with_the_fix():
    with pytest.raises(ValueError, match=r"224x224.*Resizing"):
        preprocess_for("resnet50")(np.zeros((1, 96, 96, 3)) + 100)
    with pytest.raises(ValueError, match=r"np\.repeat"):
        preprocess_for("resnet50")(np.zeros((1, 224, 224, 1)) + 100)
    with pytest.raises(ValueError, match="moveaxis"):
        preprocess_for("resnet50")(np.zeros((1, 3, 224, 224)) + 100)


@pytest.fixture(scope="module")
def lite0_64():
    return load_backbone("efficientnet_lite0", input_shape=(64, 64, 3))


def test_preprocess_for_a_model_uses_its_input_size(lite0_64):
    out = preprocess_for(lite0_64)(np.full((1, 64, 64, 3), 127.0))
    np.testing.assert_allclose(out, 0.0)


# --------------------------------------------------------------------------- Lite0 and classify


@pytest.mark.slow
def test_classify_finds_a_cat_in_chelsea_and_draws_the_top_classes():
    from cnnlab.datasets import load_sample_image

    model = load_backbone("efficientnet_lite0", include_top=True)
    table, figure = transfer.classify(model, load_sample_image("chelsea"), top=5)
    assert list(table.columns) == ["image", "rank", "index", "class", "probability"]
    assert len(table) == 5 and list(table["rank"]) == [1, 2, 3, 4, 5]
    assert 281 <= table["index"][0] <= 285  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    assert table["probability"].is_monotonic_decreasing
    assert figure.axes[0].get_title(loc="left").startswith(table["class"][0].split(",")[0][:22])
    decoded = transfer.decode_predictions(np.eye(1000)[[281]], top=1)
    assert decoded[0][0][0] == 281 and "tabby" in decoded[0][0][1]


# --------------------------------------------------------------------------- BatchNorm


@pytest.mark.slow
def test_batchnorm_statistics_stay_put_when_the_backbone_is_unfrozen(synthetic_batch):
    x, y = synthetic_batch
    backbone = tiny_backbone()
    model = build_transfer_model(backbone, 3, dropout=0.0)
    unfreeze(model)
    before_stats, before = _statistics(backbone), _kernels(model)
    _fit_once(model, x, y)
    for name, (mean, variance) in _statistics(backbone).items():
        np.testing.assert_array_equal(mean, before_stats[name][0])
        np.testing.assert_array_equal(variance, before_stats[name][1])
    after = _kernels(model)
    changed = {path for path in before if not np.array_equal(before[path], after[path])}
    assert {"block1_conv/kernel", "block2_conv/kernel", "predictions/kernel"} <= changed
    assert not any("gamma" in path for path in changed)  # BN kept frozen: gamma untouched


@pytest.mark.slow
def test_inference_mode_protects_the_statistics_even_of_trainable_batchnorm(synthetic_batch):
    x, y = synthetic_batch
    backbone = tiny_backbone()
    model = build_transfer_model(backbone, 3, dropout=0.0)
    unfreeze(model, keep_batchnorm_frozen=False)
    assert backbone.get_layer("block1_bn").trainable
    before_stats, before = _statistics(backbone), _kernels(model)
    _fit_once(model, x, y)
    for name, (mean, _) in _statistics(backbone).items():
        np.testing.assert_array_equal(mean, before_stats[name][0])
    assert not np.array_equal(before["block1_bn/gamma"], _kernels(model)["block1_bn/gamma"])


@pytest.mark.slow
def test_the_guides_training_false_does_not_protect_the_statistics_on_keras3(synthetic_batch):
    """The pitfall Lab 09 shows (keras-team/keras#20285): base(x, training=False) in a
    Functional model, base.trainable = True, fit -> the moving statistics move anyway."""
    x, y = synthetic_batch
    backbone = tiny_backbone()
    inputs = keras.Input((16, 16, 3))
    outputs = layers.Dense(3, activation="softmax")(backbone(inputs, training=False))
    model = keras.Model(inputs, outputs)
    backbone.trainable = True
    before = _statistics(backbone)
    _fit_once(model, x, y)
    moved = max(float(np.abs(mean - before[name][0]).max())
                for name, (mean, _) in _statistics(backbone).items())
    assert moved > 1e-3  # if Keras fixes #20285, this fails: update Lab 09's pitfall cell


@pytest.mark.slow
def test_frozen_batchnorm_alone_also_holds_without_inference_mode(synthetic_batch):
    x, y = synthetic_batch
    backbone = tiny_backbone()
    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, layers.Dense(3, activation="softmax")(backbone(inputs)))
    unfreeze(backbone)  # keep_batchnorm_frozen=True: BN trainable=False -> inference mode
    before = _statistics(backbone)
    _fit_once(model, x, y)
    for name, (mean, variance) in _statistics(backbone).items():
        np.testing.assert_array_equal(mean, before[name][0])
        np.testing.assert_array_equal(variance, before[name][1])


# --------------------------------------------------------------------------- recompile


@pytest.mark.slow
def test_changing_trainable_without_recompiling_is_ignored_or_fails(synthetic_batch):
    """Keras 3 fixes the trained weights at compile time.  TensorFlow: fit keeps training the
    old set (the unfrozen backbone does not move).  JAX: fit raises about optimizer_variables."""
    x, y = synthetic_batch
    backbone = tiny_backbone()
    model = build_transfer_model(backbone, 3, dropout=0.0)
    _fit_once(model, x, y)  # compiled with the backbone frozen
    unfreeze(model)
    kernel = _numpy(backbone.get_layer("block1_conv").kernel)
    if BACKEND == "jax":
        with pytest.raises(ValueError, match="optimizer_variables"):
            model.fit(x, y, epochs=1, batch_size=32, verbose=0)
        return
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)  # no recompile
    np.testing.assert_array_equal(_numpy(backbone.get_layer("block1_conv").kernel), kernel)
    _fit_once(model, x, y)  # recompiled: now it trains
    assert not np.array_equal(_numpy(backbone.get_layer("block1_conv").kernel), kernel)


def test_model_trainable_true_reaches_a_frozen_backbone_through_unfreeze():
    backbone = tiny_backbone()
    model = build_transfer_model(backbone, 3)
    assert not backbone.trainable and model.trainable
    unfreeze(model)  # plain model.trainable = True is skipped by the TF backend here
    assert backbone.trainable and backbone.get_layer("block2_conv").trainable
    assert not backbone.get_layer("block2_bn").trainable


# --------------------------------------------------------------------------- trainable counts


def test_trainable_summary_counts_are_exact_after_unfreezing_the_last_block():
    backbone = tiny_backbone()
    model = build_transfer_model(backbone, 3)
    unfreeze(model, fraction=0.5)  # 2 blocks: the deepest one
    summary = trainable_summary(model)
    assert summary.trainable == _count(model.trainable_weights)
    assert summary.total == model.count_params()
    conv1, conv2 = 3 * 3 * 3 * 8 + 8, 3 * 3 * 8 * 8 + 8  # by hand
    head = 8 * 3 + 3
    assert summary.trainable == conv2 + head
    assert summary.frozen == conv1 + 2 * (8 + 8)  # conv1, and gamma/beta of both BN layers
    assert summary.statistics == 2 * (8 + 8)  # moving mean and variance of both BN layers
    rows = summary.table.set_index("block")
    assert rows.loc["tiny/block2", "trainable"] == conv2
    assert rows.loc["tiny/block1", "trainable"] == 0
    assert "trainable" in str(summary) and "<table" in summary._repr_html_()
    unfreeze(model, from_layer="block2_conv")
    assert trainable_summary(model).trainable == conv2 + head
    with pytest.raises(ValueError, match="block2_conv"):
        unfreeze(model, from_layer="block2_con")


def test_unfreezing_a_quarter_of_lite0_unfreezes_its_last_five_blocks_without_batchnorm(
        lite0_64):
    backbone = lite0_64
    model = build_transfer_model(backbone, 3)
    assert trainable_summary(model).trainable == 1280 * 3 + 3
    unfreeze(model, fraction=0.25)  # stem + 16 blocks + top = 18 blocks -> 5
    summary = trainable_summary(model).table.set_index("block")
    trainable = [block for block in summary.index if summary.loc[block, "trainable"]]
    assert trainable == ["efficientnet_lite0/block6b", "efficientnet_lite0/block6c",
                         "efficientnet_lite0/block6d", "efficientnet_lite0/block7a",
                         "efficientnet_lite0/top", "predictions"]
    assert not any(bn.trainable for bn in backbone.layers
                   if isinstance(bn, layers.BatchNormalization))
    assert summary["trainable"].sum() == _count(model.trainable_weights)
    by_hand = sum(_count(layer.weights) for layer in backbone.layers
                  if layer.name.startswith(("block6b", "block6c", "block6d", "block7a", "top"))
                  and isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D)))
    assert summary["trainable"].sum() == by_hand + 1280 * 3 + 3
    freeze(backbone)
    assert trainable_summary(model).trainable == 1280 * 3 + 3


# --------------------------------------------------------------------------- fine_tune


@pytest.mark.slow
def test_fine_tune_trains_the_head_then_the_unfrozen_blocks_and_merges_the_history(
        synthetic_batch):
    x, y = synthetic_batch
    backbone = tiny_backbone()
    model = build_transfer_model(backbone, 3, dropout=0.0)
    stats = _statistics(backbone)
    conv1 = _numpy(backbone.get_layer("block1_conv").kernel)
    conv2 = _numpy(backbone.get_layer("block2_conv").kernel)
    history = fine_tune(model, (x, y), (x[:16], y[:16]), head_epochs=2, fine_tune_epochs=2,
                        head_lr=1e-2, unfreeze=0.5, mixed_precision=False, patience=5,
                        jit_compile=JIT)
    assert history["phase"] == ["head", "head", "fine_tune", "fine_tune"]
    assert history["phase_boundary"] == 2
    np.testing.assert_allclose(history["learning_rate"], [1e-2, 1e-2, 1e-3, 1e-3])
    assert len(history["loss"]) == len(history["val_loss"]) == 4
    np.testing.assert_array_equal(_numpy(backbone.get_layer("block1_conv").kernel), conv1)
    assert not np.array_equal(_numpy(backbone.get_layer("block2_conv").kernel), conv2)
    for name, (mean, variance) in _statistics(backbone).items():
        np.testing.assert_array_equal(mean, stats[name][0])
        np.testing.assert_array_equal(variance, stats[name][1])
    from cnnlab.train import compare_histories

    figure = compare_histories({"fine_tune": history})
    assert figure.axes


@pytest.mark.slow
def test_fine_tune_keeps_the_head_when_fine_tuning_only_makes_it_worse(synthetic_batch):
    x, y = synthetic_batch
    model = build_transfer_model(tiny_backbone(), 3, dropout=0.0)
    history = fine_tune(model, (x, y), (x, y), head_epochs=3, fine_tune_epochs=2,
                        head_lr=1e-2, fine_tune_lr=50.0, unfreeze=1.0, mixed_precision=False,
                        jit_compile=JIT)
    head_best = min(history["val_loss"][:history["phase_boundary"]])
    assert min(history["val_loss"][history["phase_boundary"]:]) > head_best
    model.compile(loss="sparse_categorical_crossentropy")
    restored = model.evaluate(x, y, verbose=0, batch_size=32, return_dict=True)["loss"]
    np.testing.assert_allclose(restored, head_best, rtol=1e-4)


@pytest.mark.slow
def test_fine_tune_with_mixed_precision_computes_in_float16_with_a_float32_output(
        synthetic_batch):
    x, y = synthetic_batch
    backbone = tiny_backbone()
    model = build_transfer_model(backbone, 3)
    fine_tune(model, (x, y), None, head_epochs=1, fine_tune_epochs=1, mixed_precision=True,
              jit_compile=JIT)
    assert backbone.get_layer("block1_conv").compute_dtype == "float16"
    assert backbone.get_layer("block1_conv").kernel.dtype == "float32"
    assert model.get_layer("predictions").compute_dtype == "float32"
    assert "LossScale" in type(model.optimizer).__name__
    assert model.predict(x[:2], verbose=0).dtype == np.float32


@pytest.mark.slow
def test_fine_tune_progress_shows_a_bar_and_verbose_is_a_deprecated_alias(synthetic_batch,
                                                                          capsys):
    x, y = synthetic_batch
    model = build_transfer_model(tiny_backbone(), 3, dropout=0.0)
    fine_tune(model, (x, y), None, head_epochs=1, fine_tune_epochs=0, mixed_precision=False,
              jit_compile=JIT, progress=True)
    shown = capsys.readouterr()
    assert "epoch" in (shown.out + shown.err).lower()  # EpochProgress's bar
    with pytest.warns(DeprecationWarning, match="use progress="):
        history = fine_tune(model, (x, y), None, head_epochs=1, fine_tune_epochs=0,
                            mixed_precision=False, jit_compile=JIT, verbose=0)
    assert history["phase"] == ["head"]
    with warnings.catch_warnings(record=True) as caught:  # progress= alone: no such warning
        warnings.simplefilter("always")
        fine_tune(model, (x, y), None, head_epochs=1, fine_tune_epochs=0,
                  mixed_precision=False, jit_compile=JIT)
    assert not [w for w in caught if "progress=" in str(w.message)]
    with pytest.raises(TypeError, match="progress must be True or False"):
        fine_tune(model, (x, y), None, progress="bar")


@pytest.mark.slow
def test_a_transfer_model_saves_and_loads_with_its_inference_mode(tmp_path, synthetic_batch):
    x, _ = synthetic_batch
    model = build_transfer_model(tiny_backbone(), 3)
    path = tmp_path / "transfer.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.get_layer("backbone"), InferenceMode)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-6)


# --------------------------------------------------------------------------- features


def test_extract_features_caches_by_model_and_data(tmp_path):
    backbone = tiny_backbone()
    calls = []
    original = backbone.predict_on_batch

    def counting(batch):
        calls.append(len(batch))
        return original(batch)

    backbone.predict_on_batch = counting
    images = np.random.default_rng(0).uniform(0, 255, (10, 16, 16, 3)).astype("float32")
    first = extract_features(backbone, images, batch_size=4, cache=tmp_path, progress=False)
    assert first.shape == (10, 8) and calls == [4, 4, 4]  # last batch padded to 4
    np.testing.assert_allclose(first, keras.ops.convert_to_numpy(backbone(images)), atol=1e-5)
    second = extract_features(backbone, images, batch_size=4, cache=tmp_path, progress=False)
    assert len(calls) == 3  # from disk, the model was not run
    np.testing.assert_array_equal(first, second)
    extract_features(backbone, images[:9], batch_size=4, cache=tmp_path, progress=False)
    assert len(calls) == 6  # other data: computed
    backbone.get_layer("block1_conv").kernel.assign(
        backbone.get_layer("block1_conv").kernel * 2)
    extract_features(backbone, images, batch_size=4, cache=tmp_path, progress=False)
    assert len(calls) == 9  # other weights: computed
    assert len(list(tmp_path.glob("features-tiny-*.npy"))) == 3
    features, labels = extract_features(backbone, [(images[:5], np.arange(5)),
                                                   (images[5:], np.arange(5, 10))],
                                        batch_size=4, progress=False)
    np.testing.assert_array_equal(labels, np.arange(10))


# --------------------------------------------------------------------------- devices


def test_device_report_says_what_runs_and_never_hides_a_gpu_silently(monkeypatch):
    report = transfer.device_report()
    assert report.backend == BACKEND
    assert isinstance(report.mixed_precision_helps, bool) and report.reason
    assert BACKEND in str(report) and "<ul>" in report._repr_html_()
    if not report.gpus:
        assert not report.mixed_precision_helps and "no GPU" in report.reason
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert any("CUDA_VISIBLE_DEVICES" in note for note in transfer.device_report().notes)


def test_for_backend_picks_the_active_backends_entry_or_names_the_ones_that_have_it():
    from cnnlab import devices

    assert devices.keras_backend() == BACKEND
    choices = {name: f"run on {name}" for name in devices.BACKENDS}
    assert devices.for_backend(choices) == f"run on {BACKEND}"
    others = {name: name for name in ("tensorflow", "jax", "torch", "numpy") if name != BACKEND}
    assert devices.for_backend(others, default="fallback") == "fallback"
    with pytest.raises(ValueError, match=f"gradients is not available on the '{BACKEND}' "
                                         "backend; set KERAS_BACKEND to"):
        devices.for_backend(others, what="gradients")
    with pytest.raises(TypeError, match="dict of backend name"):
        devices.for_backend(["tensorflow"])


def test_one_gpu_probe_serves_the_report_and_the_profiles(monkeypatch):
    from cnnlab import devices, profiles

    devices_seen, gpus, _ = devices.gpu_probe()
    assert devices.has_gpu() is bool(gpus)
    assert profiles.has_gpu is devices.has_gpu
    assert transfer.device_report is devices.device_report
    assert transfer.device_report().devices == devices_seen
    fake = [("Fake GPU", (8, 0))]
    monkeypatch.setattr(devices, "gpu_probe", lambda: (["gpu:0 Fake GPU"], fake, []))
    report = devices.device_report()
    assert devices.has_gpu() and report.mixed_precision_helps and "tensor cores" in report.reason
    monkeypatch.setenv("CNNLAB_PROFILE", "")
    assert profiles.profile() == "full"


# --------------------------------------------------------------------------- textures


def _probe_accuracy(features, labels, test_features, test_labels):
    """A linear probe (what phase 1 of fine_tune trains, as scikit-learn's logistic
    regression: fast and the same on every backend)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(features)
    probe = LogisticRegression(max_iter=2000).fit(scaler.transform(features), labels)
    return probe.score(scaler.transform(test_features), test_labels)


def _untrained_copy(model, seed=0):
    """The same network re-initialised as Keras initialises it (glorot-uniform kernels, BN at
    identity), drawn with NumPy: building with weights=None costs ~20 s of JAX compiles."""
    copy = load_backbone("efficientnet_lite0", input_shape=model.input_shape[1:])
    rng = np.random.default_rng(seed)
    for weight in copy.weights:
        name, shape = weight.path.rsplit("/", 1)[-1], tuple(weight.shape)
        if name in ("gamma", "moving_variance"):
            value = np.ones(shape)
        elif len(shape) >= 2:  # keras.initializers.GlorotUniform's fans
            receptive = int(np.prod(shape[:-2]))
            limit = np.sqrt(6 / (shape[-2] * receptive + shape[-1] * receptive))
            value = rng.uniform(-limit, limit, shape)
        else:
            value = np.zeros(shape)
        weight.assign(value.astype("float32"))
    return copy


@pytest.mark.slow
def test_imagenet_features_beat_the_same_network_untrained_on_real_textures(lite0_64,
                                                                            tmp_path_factory):
    """Phase 1 of fine_tune (a new linear head on the frozen backbone), on cached features:
    10 real texture patches per class, 60 test patches from held-out rows, three seeds.
    Measured over 8 seeds (TensorFlow and JAX alike): ImageNet Lite0 0.98-1.00; the same
    network with random weights 0.52-0.73 (margin 0.25 at the least).  A small CNN trained from
    scratch on the images reaches about 1.00 on this easy task too; the margin pinned here is
    what the ImageNet weights bring to the same network."""
    from cnnlab.datasets import load_textures

    cache = tmp_path_factory.mktemp("features")
    untrained = _untrained_copy(lite0_64)
    preprocess = preprocess_for(lite0_64)
    margins = []
    for seed in (0, 1, 2):
        (x, y), (x_test, y_test) = load_textures(patch_size=64, patches_per_image=80, seed=seed)
        keep = np.concatenate([np.flatnonzero(y == label)[:10] for label in range(3)])
        accuracy = {}
        for name, backbone in (("imagenet", lite0_64), ("untrained", untrained)):
            features, test_features = (
                extract_features(backbone, images, batch_size=32, preprocess=preprocess,
                                 cache=cache, progress=False) for images in (x[keep], x_test))
            accuracy[name] = _probe_accuracy(features, y[keep], test_features, y_test)
        assert accuracy["imagenet"] >= 0.95, accuracy
        margins.append(accuracy["imagenet"] - accuracy["untrained"])
    assert min(margins) >= 0.1, margins


# --------------------------------------------------------------------------- one home per name


def test_every_old_name_of_cnnlab_transfer_still_imports_from_the_package():
    import cnnlab.transfer as package

    for name in package.__all__:
        assert getattr(package, name) is not None, name
    assert not hasattr(package, "_blocks"), "lab09 reads the public backbone_blocks"


def test_the_old_fetch_weights_main_is_the_command_line_with_a_deprecation_warning():
    from cnnlab import cli

    with pytest.warns(DeprecationWarning, match="cnnlab.cli.fetch_weights_main"):
        assert transfer.fetch_weights_main is cli.fetch_weights_main
    with pytest.raises(AttributeError, match="no attribute 'fetch_nothing'"):
        transfer.fetch_nothing  # noqa: B018


def test_lite0_and_decode_predictions_have_one_home_each():
    from cnnlab import pretrained
    from cnnlab.transfer import lite0, predictions

    assert pretrained.efficientnet_lite0 is lite0.efficientnet_lite0
    assert pretrained.decode_predictions is transfer.decode_predictions \
        is predictions.decode_predictions
    probabilities = np.full((1, 1000), 0.5 / 999)
    probabilities[0, 285] = 0.5
    tensor = keras.ops.convert_to_tensor(probabilities)
    assert transfer.decode_predictions(tensor, top=1)[0][0][:2] == (285, "Egyptian cat")


def test_the_feature_cache_and_the_datasets_share_one_cache_root(tmp_path, monkeypatch):
    from cnnlab import _cache
    from cnnlab.transfer import features

    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "data"))
    assert features._default_feature_cache() == tmp_path / "data" / "features"
    assert _cache.cache_root() == tmp_path / "data"
    monkeypatch.delenv("CNNLAB_DATA")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    assert features._default_feature_cache() == tmp_path / "keras" / "cnnlab-features"
    assert _cache.cache_root() == tmp_path / "keras" / "datasets"
    assert _cache.cache_root(tmp_path / "mine") == tmp_path / "mine"
    data = b"cnnlab" * 1000
    (tmp_path / "f.bin").write_bytes(data)
    assert _cache.file_digest(tmp_path / "f.bin") == hashlib.sha256(data).hexdigest()
    assert _cache.file_digest(tmp_path / "f.bin", "md5") == hashlib.md5(data).hexdigest()


@pytest.mark.parametrize("visible, notes", [
    (None, ["CPU-only build"]),                 # a driver, no GPU seen: the build is to blame
    ("-1", ["hides every GPU"]),                # hidden on purpose: that note alone
    ("0", ["CPU-only build"]),
])
def test_device_report_says_why_a_gpu_is_not_used(monkeypatch, visible, notes):
    from cnnlab import devices

    monkeypatch.setattr(devices, "gpu_probe", lambda: (["CPU:0"], [], []))
    monkeypatch.setattr(devices, "_nvidia_driver_present", lambda: True)
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    report = devices.device_report()
    assert len(report.notes) == len(notes)
    for note, expected in zip(report.notes, notes):
        assert expected in note
    assert not report.mixed_precision_helps
