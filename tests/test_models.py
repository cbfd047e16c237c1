"""cnnlab.models and cnnlab.layers against the lectures, the papers and keras.applications.

Every parameter count quoted in the lectures is pinned here.  Big models are built once
(``functools.lru_cache``) or inside a single test, with their random initialisers replaced by
zeros (``_zero_init``): counts and shapes do not depend on the values, and drawing the 10^8
random numbers of VGG would otherwise dominate the run time.
"""

import contextlib
import functools

import numpy as np
import pytest

import cnnlab  # noqa: F401  (first: quiets TensorFlow's start-up log)
import keras
from cnnlab import layers as cnn_layers
from cnnlab import models


@contextlib.contextmanager
def _zero_init():
    """Glorot/He/LeCun initialisers return zeros while the context is open."""
    def zeros(self, shape, dtype=None):
        return keras.ops.zeros(shape, dtype=dtype)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keras.initializers.VarianceScaling, "__call__", zeros)
        yield


@functools.lru_cache(maxsize=None)
def _resnet(depth, include_top=True, use_bias=True):
    with _zero_init():
        return models.build_resnet(depth, include_top=include_top, use_bias=use_bias)


@functools.lru_cache(maxsize=None)
def _resnet_cifar(depth, shortcut="A"):
    return models.build_resnet_cifar(depth, shortcut=shortcut)


@functools.lru_cache(maxsize=None)
def _keras_resnet50():
    with _zero_init():
        return keras.applications.ResNet50(weights=None)


def _trainable_count(model):
    return sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)


def _conv_bias_count(model):
    return sum(int(layer.bias.shape[0]) for layer in model.layers
               if isinstance(layer, keras.layers.Conv2D) and layer.use_bias)


def _assert_same_layers_as_keras(model, reference, skip=(keras.layers.Dropout,)):
    """Same layer names in the same order, same output shapes and per-layer counts."""
    ours = [layer for layer in model.layers
            if not isinstance(layer, (keras.layers.InputLayer,) + tuple(skip))]
    theirs = [layer for layer in reference.layers
              if not isinstance(layer, keras.layers.InputLayer)]
    assert [layer.name for layer in ours] == [layer.name for layer in theirs]
    for mine, ref in zip(ours, theirs):
        assert tuple(mine.output.shape) == tuple(ref.output.shape), mine.name
        assert mine.count_params() == ref.count_params(), mine.name


def _random_batch(shape, seed=0):
    return np.random.default_rng(seed).random((2,) + tuple(shape)).astype("float32")


# --------------------------------------------------------------------------------------
# Lecture 1: MLP and ConvNet
# --------------------------------------------------------------------------------------

def test_mlp_has_the_lectures_203530_parameters():
    model = models.build_mlp()
    assert model.count_params() == 203_530
    assert model.get_layer("fc1").count_params() == 28 * 28 * 256 + 256


def test_convnet_has_the_lectures_431754_parameters():
    model = models.build_convnet()
    assert model.count_params() == 431_754
    assert model.get_layer("pool2").output.shape == (None, 5, 5, 64)
    assert model.get_layer("fc1").count_params() == 5 * 5 * 64 * 256 + 256


# --------------------------------------------------------------------------------------
# LeNet-5 and its custom layers
# --------------------------------------------------------------------------------------

# Table I of LeCun et al. 1998 as printed: rows are the S2 maps 0-5, columns the C3 maps 0-15.
PAPER_TABLE_I = """
X...XXX..XXXX.XX
XX...XXX..XXXX.X
XXX...XXX..X.XXX
.XXX..XXXX..X.XX
..XXX..XXXX.XX.X
...XXX..XXXX.XXX
"""


def _paper_mask():
    return np.array([[cell == "X" for cell in row] for row in PAPER_TABLE_I.split()])


def test_lenet5_classic_layer_parameters_match_the_lecture_table():
    model = models.build_lenet5("classic")
    expected = {"c1": 156, "s2": 12, "c3": 1_516, "s4": 32, "c5": 48_120, "f6": 10_164}
    assert {name: model.get_layer(name).count_params() for name in expected} == expected
    shapes = {"c1": (28, 28, 6), "s2": (14, 14, 6), "c3": (10, 10, 16), "s4": (5, 5, 16),
              "c5": (1, 1, 120), "f6": (84,), "output": (10,)}
    for name, shape in shapes.items():
        assert tuple(model.get_layer(name).output.shape) == (None,) + shape, name
    assert model.count_params() == sum(expected.values()) + 84 * 10 + 10


def test_lenet5_c3_connection_table_is_table_one_of_the_paper():
    mask = _paper_mask()
    assert mask.shape == (6, 16)
    table = [tuple(np.flatnonzero(mask[:, column])) for column in range(16)]
    assert table == [tuple(row) for row in cnn_layers.LENET5_C3_TABLE]
    c3 = models.build_lenet5("classic").get_layer("c3")
    np.testing.assert_array_equal(c3.connection_mask(6), mask)
    # 6 maps see 3 inputs, 9 see 4, one sees all 6: 60 connections of 25 weights.
    assert sorted(mask.sum(axis=0)) == [3] * 6 + [4] * 9 + [6]
    assert c3.num_connections * 25 + 16 == 1_516


def test_partially_connected_conv_equals_a_full_conv_with_zeroed_kernels():
    layer = cnn_layers.PartiallyConnectedConv2D(16, 5, cnn_layers.LENET5_C3_TABLE)
    inputs = _random_batch((9, 11, 6))
    outputs = keras.ops.convert_to_numpy(layer(inputs))
    connected, bias = (keras.ops.convert_to_numpy(w) for w in layer.weights)
    full = np.zeros((5, 5, 6, 16), dtype="float32")
    k = 0
    for output_map, input_maps in enumerate(cnn_layers.LENET5_C3_TABLE):
        for input_map in input_maps:
            full[:, :, input_map, output_map] = connected[:, :, k]
            k += 1
    reference = keras.layers.Conv2D(16, 5)
    reference.build(inputs.shape)
    reference.set_weights([full, bias])
    np.testing.assert_allclose(outputs, keras.ops.convert_to_numpy(reference(inputs)),
                               rtol=1e-5, atol=1e-5)
    assert outputs.shape == (2, 5, 7, 16)


def test_subsampling_sums_each_window_then_scales_and_shifts_each_map():
    layer = cnn_layers.Subsampling2D(2)
    inputs = _random_batch((6, 8, 3))
    layer.build(inputs.shape)
    coefficient = np.array([0.5, -1.0, 2.0], dtype="float32")
    bias = np.array([0.1, 0.0, -0.3], dtype="float32")
    layer.set_weights([coefficient, bias])
    window_sums = inputs.reshape(2, 3, 2, 4, 2, 3).sum(axis=(2, 4))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(inputs)),
                               window_sums * coefficient + bias, rtol=1e-5, atol=1e-6)
    assert layer.count_params() == 2 * 3


def test_scaled_tanh_maps_plus_and_minus_one_to_themselves():
    values = keras.ops.convert_to_numpy(cnn_layers.scaled_tanh(np.array([-1.0, 0.0, 1.0])))
    np.testing.assert_allclose(values, [-1.0, 0.0, 1.0], atol=1e-4)


def test_euclidean_rbf_penalties_are_squared_distances_to_the_prototypes():
    layer = cnn_layers.EuclideanRBF(10, seed=1, return_penalties=True)
    inputs = np.random.default_rng(0).normal(size=(3, 84)).astype("float32")
    penalties = keras.ops.convert_to_numpy(layer(inputs))
    centers = keras.ops.convert_to_numpy(layer.centers)
    assert set(np.unique(centers)) == {-1.0, 1.0}
    expected = ((inputs[:, :, None] - centers[None]) ** 2).sum(axis=1)
    np.testing.assert_allclose(penalties, expected, rtol=1e-4)
    assert layer.count_params() == 840 and not layer.trainable_weights


def test_lenet5_summary_counts_the_macs_of_every_layer_by_hand():
    report = cnnlab.summary(models.build_lenet5("classic"))
    expected = {
        "image": 0,
        "c1": 28 * 28 * 6 * 25,        # 117,600: outputs x (5 x 5 x 1)
        "s2": 14 * 14 * 6,             # 1,176: one coefficient per output
        "c3": 10 * 10 * 60 * 25,       # 150,000: positions x connections x (5 x 5)
        "s4": 5 * 5 * 16,              # 400
        "c5": 120 * 400,               # 48,000: 120 maps x (5 x 5 x 16)
        "flatten": 0,
        "f6": 84 * 120,                # 10,080
        "output": 10 * 84,             # 840
    }
    assert {row["name"]: row["macs"] for row in report.rows} == expected
    assert report.totals["macs"] == sum(expected.values()) == 328_096
    assert report.totals["macs_not_counted"] == ()
    assert "not counted" not in str(report)
    assert all("MACs not counted" not in row["notes"] for row in report.rows)


def test_lenet5_rbf_output_counts_units_times_features():
    report = cnnlab.summary(models.build_lenet5("classic", output="rbf"))
    (row,) = [row for row in report.rows if row["name"] == "output"]
    assert row["type"] == "EuclideanRBF" and row["macs"] == 10 * 84
    assert report.totals["macs_not_counted"] == ()


def test_partial_convolution_macs_are_a_full_convolutions_times_the_connected_fraction():
    # Reference: Keras Conv2D counted by cnnlab's own rule, scaled by 60 of 96 connections.
    inputs = keras.Input((13, 17, 6))
    partial = cnn_layers.PartiallyConnectedConv2D(16, (5, 3), cnn_layers.LENET5_C3_TABLE,
                                                  strides=2, name="partial")(inputs)
    full = keras.layers.Conv2D(16, (5, 3), strides=2, name="full")(inputs)
    pooled = cnn_layers.Subsampling2D(2, strides=1, name="pool")(inputs)
    report = cnnlab.summary(keras.Model(inputs, [partial, full, pooled]))
    macs = {row["name"]: row["macs"] for row in report.rows}
    assert macs["partial"] * 6 * 16 == macs["full"] * 60
    assert macs["partial"] == 5 * 8 * 60 * 15
    assert macs["pool"] == 12 * 16 * 6  # overlapping windows: still one product per output


def test_lenet5_modern_uses_relu_max_pooling_and_a_full_c3():
    model = models.build_lenet5("modern")
    assert isinstance(model.get_layer("s2"), keras.layers.MaxPooling2D)
    assert model.get_layer("c3").count_params() == 5 * 5 * 6 * 16 + 16
    assert model.count_params() == 61_706


def test_lenet5_rejects_28x28_mnist_and_says_to_pad_to_32():
    with pytest.raises(ValueError, match=r"input_shape.*32"):
        models.build_lenet5(input_shape=(28, 28, 1))


# --------------------------------------------------------------------------------------
# Forward passes and saving of the small models
# --------------------------------------------------------------------------------------

SMALL_MODELS = {
    "mlp": (lambda: models.build_mlp(), (28, 28, 1), 10),
    "convnet": (lambda: models.build_convnet(), (28, 28, 1), 10),
    "lenet5_classic": (lambda: models.build_lenet5("classic"), (32, 32, 1), 10),
    "lenet5_rbf": (lambda: models.build_lenet5("classic", output="rbf"), (32, 32, 1), 10),
    "lenet5_modern": (lambda: models.build_lenet5("modern"), (32, 32, 1), 10),
    "resnet20_cifar": (lambda: _resnet_cifar(20), (32, 32, 3), 10),
    "resnet8_cifar": (lambda: models.build_resnet_cifar(8), (32, 32, 3), 10),
    "factorized": (lambda: models.build_factorized_convnet(dropout=0.5, l2=1e-3),
                   (32, 32, 3), 100),
}


@pytest.mark.parametrize("key", sorted(set(SMALL_MODELS) - {"resnet8_cifar"}))
def test_small_models_map_a_tiny_batch_to_class_probabilities(key):
    build, input_shape, num_classes = SMALL_MODELS[key]
    probabilities = keras.ops.convert_to_numpy(build()(_random_batch(input_shape)))
    assert probabilities.shape == (2, num_classes)
    assert np.all(np.isfinite(probabilities))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("key", ["lenet5_classic", "lenet5_rbf", "resnet8_cifar"])
def test_models_with_custom_layers_survive_save_and_load(key, tmp_path):
    build, input_shape, _ = SMALL_MODELS[key]
    model = build()
    batch = _random_batch(input_shape)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert loaded.count_params() == model.count_params()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(batch)),
                               keras.ops.convert_to_numpy(model(batch)), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------
# AlexNet and VGG
# --------------------------------------------------------------------------------------

def test_alexnet_matches_the_lecture_62_3_million_with_6_percent_in_convolutions():
    with _zero_init():
        model = models.build_alexnet()
    conv1 = model.get_layer("conv1")
    assert conv1.count_params() == 34_944
    assert tuple(conv1.kernel.shape) == (11, 11, 3, 96)
    assert conv1.output.shape == (None, 55, 55, 96)
    assert model.get_layer("conv2").output.shape == (None, 27, 27, 256)
    assert model.get_layer("pool3").output.shape == (None, 6, 6, 256)
    assert model.count_params() == 62_378_344
    conv = sum(layer.count_params() for layer in model.layers
               if isinstance(layer, keras.layers.Conv2D))
    assert round(100 * conv / model.count_params()) == 6


@pytest.mark.slow
@pytest.mark.parametrize("config, millions, keras_name", [
    ("A", 133, None), ("B", 133, None), ("C", 134, None), ("D", 138, "VGG16"),
    ("E", 144, "VGG19"),
])
def test_vgg_totals_match_the_paper_and_keras_applications(config, millions, keras_name):
    with _zero_init():
        model = models.build_vgg(config)
        assert round(model.count_params() / 1e6) == millions
        if keras_name is not None:
            reference = getattr(keras.applications, keras_name)(weights=None)
            assert model.count_params() == reference.count_params()
            _assert_same_layers_as_keras(model, reference)
    if config == "C":
        assert tuple(model.get_layer("block3_conv3").kernel.shape) == (1, 1, 256, 256)
    if config == "D":
        assert model.count_params() == 138_357_544
        assert model.get_layer("fc1").count_params() == 102_760_448 + 4096
    if config == "E":
        assert model.count_params() == 143_667_240


def test_vgg_block_stacks_same_convolutions_then_halves_the_map():
    inputs = keras.Input((32, 32, 3))
    outputs = models.vgg_block(inputs, 64, 2, name="block1")
    model = keras.Model(inputs, outputs)
    assert outputs.shape == (None, 16, 16, 64)
    assert [layer.name for layer in model.layers[1:]] == [
        "block1_conv1", "block1_conv2", "block1_pool"]
    assert model.count_params() == (3 * 3 * 3 * 64 + 64) + (3 * 3 * 64 * 64 + 64)


# --------------------------------------------------------------------------------------
# ResNet
# --------------------------------------------------------------------------------------

@pytest.mark.slow
def test_resnet50_equals_keras_resnet50_layer_by_layer():
    model, reference = _resnet(50), _keras_resnet50()
    assert model.count_params() == reference.count_params() == 25_636_712
    _assert_same_layers_as_keras(model, reference)


@pytest.mark.slow
def test_resnet50_without_top_equals_keras_without_its_classifier():
    model = _resnet(50, include_top=False)
    reference = _keras_resnet50()
    expected = reference.count_params() - reference.get_layer("predictions").count_params()
    assert model.count_params() == expected == 23_587_712
    assert model.output.shape == (None, 7, 7, 2048)


# Trainable parameters of torchvision's ResNets, whose convolutions have no bias.
TORCHVISION_COUNTS = {18: 11_689_512, 34: 21_797_672, 50: 25_557_032, 101: 44_549_160,
                      152: 60_192_808}


@pytest.mark.slow
@pytest.mark.parametrize("depth", sorted(TORCHVISION_COUNTS))
def test_resnet_counts_equal_torchvision_once_conv_biases_are_removed(depth):
    # 18 and 34 are built without conv biases (torchvision's convention); 50, 101 and 152
    # with them (Keras' convention), and the biases are subtracted.
    use_bias = depth >= 50
    model = _resnet(depth, use_bias=use_bias)
    expected = TORCHVISION_COUNTS[depth]
    assert (_conv_bias_count(model) > 0) == use_bias
    assert _trainable_count(model) - _conv_bias_count(model) == expected
    assert abs(model.count_params() - expected) / expected < 0.01
    assert model.get_layer("conv5_block1_out").output.shape[1:3] == (7, 7)


@pytest.mark.parametrize("depth, millions", [(20, 0.27), (32, 0.46)])
def test_resnet_cifar_matches_he_et_al_table_6(depth, millions):
    model = _resnet_cifar(depth)
    assert round(_trainable_count(model) / 1e6, 2) == millions
    if depth == 20:
        assert 260_000 <= model.count_params() <= 280_000
        assert model.get_layer("stage3_block3_out").output.shape == (None, 8, 8, 64)
        # Option A: the shortcuts that change shape carry no parameters.
        assert model.get_layer("stage2_block1_0_pad").count_params() == 0


@pytest.mark.slow
def test_resnet_cifar_option_b_adds_projection_shortcuts():
    model_a = _resnet_cifar(20, shortcut="A")
    model_b = _resnet_cifar(20, shortcut="B")
    projections = (16 * 32 + 4 * 32) + (32 * 64 + 4 * 64)  # 1x1 conv + BN, stages 2 and 3
    assert model_b.count_params() - model_a.count_params() == projections


def test_residual_block_projects_only_when_the_shape_changes():
    inputs = keras.Input((8, 8, 16))
    same = models.residual_block(inputs, 16, name="same")
    assert keras.Model(inputs, same).count_params() == 2 * (9 * 16 * 16 + 16 + 4 * 16)
    down = models.residual_block(inputs, 32, strides=2, name="down")
    model = keras.Model(inputs, down)
    assert down.shape == (None, 4, 4, 32)
    assert model.get_layer("down_0_conv").count_params() == 16 * 32 + 32
    forced = keras.Model(inputs, models.residual_block(inputs, 16, projection=True, name="c"))
    assert forced.get_layer("c_0_conv").count_params() == 16 * 16 + 16
    free = models.residual_block(inputs, 32, strides=2, projection=False, name="a")
    assert free.shape == (None, 4, 4, 32)
    assert not [layer for layer in keras.Model(inputs, free).layers if layer.name == "a_0_conv"]


def test_bottleneck_block_expands_to_four_times_the_filters():
    inputs = keras.Input((8, 8, 64))
    x = models.bottleneck_block(inputs, 64, name="first")
    y = models.bottleneck_block(x, 64, name="second")
    model = keras.Model(inputs, y)
    assert y.shape == (None, 8, 8, 256)
    assert model.get_layer("first_0_conv").count_params() == 64 * 256 + 256
    assert "second_0_conv" not in [layer.name for layer in model.layers]


def test_zero_pad_shortcut_subsamples_and_appends_zero_channels():
    inputs = _random_batch((5, 5, 2))
    outputs = keras.ops.convert_to_numpy(cnn_layers.ZeroPadShortcut(4, 2)(inputs))
    assert outputs.shape == (2, 3, 3, 4)
    np.testing.assert_array_equal(outputs[..., :2], inputs[:, ::2, ::2, :])
    assert not outputs[..., 2:].any()


# --------------------------------------------------------------------------------------
# GoogLeNet, MobileNet
# --------------------------------------------------------------------------------------

@pytest.mark.slow
def test_dense_block_b_equals_the_first_block_of_keras_densenet121_layer_by_layer():
    with _zero_init():
        reference = keras.applications.DenseNet121(weights=None)
        inputs = keras.Input((56, 56, 64))
        ours = keras.Model(inputs, models.dense_block(inputs, 6, 32, bottleneck=True,
                                                      name="conv2"))
    theirs = {layer.name: layer for layer in reference.layers
              if layer.name.startswith("conv2_block")}
    mine = {layer.name: layer for layer in ours.layers[1:]}  # the input layer left out
    assert sorted(mine) == sorted(theirs)
    for name, layer in theirs.items():
        assert type(mine[name]) is type(layer), name
        assert mine[name].count_params() == layer.count_params(), name
        assert tuple(mine[name].output.shape) == tuple(layer.output.shape), name
    assert ours.output.shape == (None, 56, 56, 256)


def test_plain_dense_block_counts_4_plus_9k_per_input_channel_and_reads_all_earlier_maps():
    inputs = keras.Input((9, 7, 5))
    block = keras.Model(inputs, models.dense_block(inputs, 4, 3, name="d"))
    assert block.output.shape == (None, 9, 7, 5 + 4 * 3)
    reads = [5 + 3 * index for index in range(4)]
    assert [tuple(block.get_layer(f"d_block{index + 1}_2_conv").kernel.shape)
            for index in range(4)] == [(3, 3, c, 3) for c in reads]
    assert block.count_params() == sum(4 * c + 9 * c * 3 for c in reads)
    # the paper's order: BN, then ReLU, then the convolution, on the concatenation
    kinds = [type(layer).__name__ for layer in block.layers[1:5]]
    assert kinds == ["BatchNormalization", "Activation", "Conv2D", "Concatenate"]


def test_inception_3a_concatenates_four_branches_to_256_channels():
    inputs = keras.Input((28, 28, 192))
    outputs = models.inception_block(inputs, 64, 96, 128, 16, 32, 32, name="inception_3a")
    assert outputs.shape == (None, 28, 28, 256)
    weights = 192 * 64 + 192 * 96 + 9 * 96 * 128 + 192 * 16 + 25 * 16 * 32 + 192 * 32
    biases = 64 + 96 + 128 + 16 + 32 + 32
    assert keras.Model(inputs, outputs).count_params() == weights + biases


def test_googlenet_has_about_the_papers_6_8_million_parameters():
    with _zero_init():
        model = models.build_googlenet()
    assert 6.6e6 <= model.count_params() <= 7.1e6
    channels = {"inception_3a": 256, "inception_3b": 480, "inception_4a": 512,
                "inception_4e": 832, "inception_5b": 1024}
    for name, depth in channels.items():
        assert model.get_layer(name).output.shape[-1] == depth
    assert model.get_layer("inception_5b").output.shape == (None, 7, 7, 1024)
    assert model.get_layer("pool2").output.shape == (None, 28, 28, 192)


def test_googlenet_aux_heads_add_two_classifier_outputs():
    with _zero_init():
        model = models.build_googlenet(num_classes=10, aux_heads=True)
    assert [tuple(output.shape) for output in model.outputs] == [(None, 10)] * 3
    assert model.get_layer("aux1_avg_pool").output.shape == (None, 4, 4, 512)


@pytest.mark.slow
def test_mobilenet_equals_keras_mobilenet_in_parameters():
    with _zero_init():
        model = models.build_mobilenet()
        reference = keras.applications.MobileNet(weights=None, alpha=1.0)
    assert model.count_params() == reference.count_params() == 4_253_864
    ours = sorted(layer.count_params() for layer in model.layers if layer.count_params())
    theirs = sorted(layer.count_params() for layer in reference.layers if layer.count_params())
    assert ours == theirs
    assert model.get_layer("block13_pw_relu").output.shape == (None, 7, 7, 1024)


def test_depthwise_separable_block_costs_9c_plus_c_times_f():
    inputs = keras.Input((8, 8, 32))
    outputs = models.depthwise_separable_block(inputs, 64, strides=2, name="sep")
    assert outputs.shape == (None, 4, 4, 64)
    batch_norms = 4 * 32 + 4 * 64
    assert keras.Model(inputs, outputs).count_params() == 9 * 32 + 32 * 64 + batch_norms
    thin = models.depthwise_separable_block(inputs, 64, alpha=0.5, name="thin")
    assert thin.shape == (None, 8, 8, 32)


# --------------------------------------------------------------------------------------
# Lecture 5: the factorised CIFAR-100 network
# --------------------------------------------------------------------------------------

@pytest.mark.slow
def test_factorized_convnet_has_the_documented_half_million_parameters():
    def conv(c_in, c_out, taps=3):
        """Weights and biases of a conv with `taps` taps (1x3 or 3x1: 3; 3x3: 9)."""
        return taps * c_in * c_out + c_out

    plain = models.build_factorized_convnet(batch_norm=False)
    # Hand count: a ConvBlock is 4 factorised convs (1x3, 3x1, 1x3, 3x1).
    block32 = conv(3, 32) + 3 * conv(32, 32)
    block32b = 4 * conv(32, 32)
    block128 = conv(32, 128) + 3 * conv(128, 128)
    block128b = 4 * conv(128, 128)
    expected = (block32 + block32b + conv(32, 32, 9) + block128 + block128b
                + conv(128, 128, 9) + 128 * 100 + 100)
    assert plain.count_params() == expected == 549_156
    assert plain.get_layer("sub1_relu").output.shape == (None, 16, 16, 32)
    assert plain.get_layer("sub2_relu").output.shape == (None, 8, 8, 128)
    with_bn = models.build_factorized_convnet(batch_norm=True)
    assert with_bn.count_params() == 553_476
    assert "553,476" in models.build_factorized_convnet.__doc__


def test_factorized_convnet_l2_penalises_kernels_only():
    model = models.build_factorized_convnet(l2=0.0025, dropout=0.5)
    kernels = [layer for layer in model.layers
               if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
    assert len(kernels) == 4 * 4 + 2 + 1
    assert all(layer.kernel_regularizer is not None for layer in kernels)
    assert all(layer.bias_regularizer is None for layer in kernels)
    assert all(layer.gamma_regularizer is None and layer.beta_regularizer is None
               for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization))
    assert len(model.losses) == len(kernels)
    assert model.get_layer("dropout").rate == 0.5


# --------------------------------------------------------------------------------------
# Errors and API
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, argument", [
    (lambda: models.build_vgg(config="F"), "config"),
    (lambda: models.build_resnet(depth=42), "depth"),
    (lambda: models.build_resnet_cifar(depth=21), "depth"),
    (lambda: models.build_lenet5(variant="new"), "variant"),
    (lambda: models.build_mlp(num_classes=0), "num_classes"),
    (lambda: models.build_convnet(input_shape=(28, 28)), "input_shape"),
    (lambda: models.build_alexnet(input_shape=(32, 32, 3)), "input_shape"),
    (lambda: models.build_mobilenet(alpha=0), "alpha"),
    (lambda: models.build_factorized_convnet(dropout=1.5), "dropout"),
    (lambda: models.residual_block(keras.Input((8, 8, 3)), 8, projection="yes"), "projection"),
    (lambda: models.vgg_block(np.zeros((8, 8)), 8, 2), "x"),
    (lambda: cnn_layers.PartiallyConnectedConv2D(3, 5, [(0,)]), "connection_table"),
])
def test_bad_arguments_raise_value_errors_that_name_the_argument(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()


@pytest.mark.parametrize("call, argument", [
    (lambda: cnn_layers.Subsampling2D(pool_size=(2.5, 2.5)), r"pool_size\[0\]"),
    (lambda: cnn_layers.Subsampling2D(2, strides=1.5), "strides"),
    (lambda: cnn_layers.PartiallyConnectedConv2D(16, 5.0, cnn_layers.LENET5_C3_TABLE),
     "kernel_size"),
    (lambda: cnn_layers.ZeroPadShortcut(4, strides="2"), "strides"),
    (lambda: models.build_mlp(num_classes=10.0), "num_classes must be an integer"),
    (lambda: models.build_convnet(input_shape=(28.0, 28, 1)), r"input_shape\[0\]"),
    (lambda: models.vgg_block(keras.Input((8, 8, 3)), 8, 2.5), "num_convs"),
])
def test_layers_and_builders_refuse_non_integer_sizes_instead_of_rounding_them(call, argument):
    """(2.5, 2.5) used to become (2, 2) silently; cnnlab._checks makes it a TypeError."""
    with pytest.raises(TypeError, match=argument):
        call()


def test_every_public_function_says_which_lab_uses_it():
    for module in (models, cnn_layers):
        for name in module.__all__:
            obj = getattr(module, name)
            if callable(obj):
                # the claims themselves are checked against the notebooks in tests/test_docs.py
                assert ("Used in: labs/" in obj.__doc__
                        or "Used in: no lab notebook directly;" in obj.__doc__), \
                    f"{module.__name__}.{name}"
