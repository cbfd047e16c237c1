"""The configurations the count-only exercises of Labs 01-04 draw (issue 15 §2): every drawn
configuration is one Keras builds, and the exercises' references agree with Keras' own counts
and shapes on it (the references themselves use cnnlab.arithmetic: Keras is the independent
check)."""

import keras
import pytest
from keras import layers

from cnnlab.exercises import lab01, lab02, lab03, lab04

SEEDS = (0, 1, 2)


def _built(model_layers, input_shape):
    model = keras.Sequential([keras.Input(input_shape), *model_layers])
    return model


@pytest.mark.parametrize("seed", SEEDS)
def test_filter_shapes_reference_matches_keras_kernels(seed):
    channels, stack = lab01._random_layers(seed)
    convs = [layers.Conv2D(f, k, padding="same", name=name) for name, (f, k) in stack.items()]
    _built(convs, (16, 16, channels))
    answer = lab01.reference_filter_shapes(channels, stack)
    for conv in convs:
        assert answer["shapes"][conv.name] == tuple(conv.kernel.shape)
        assert answer["params"][conv.name] == conv.count_params()


@pytest.mark.parametrize("seed", SEEDS)
def test_predicted_shapes_and_params_match_keras_on_drawn_networks(seed):
    input_shape, specs = lab02._random_network(seed)
    convs = [layers.Conv2D(s["filters"], s["kernel_size"], strides=s.get("strides", 1),
                           padding=s.get("padding", "valid"),
                           dilation_rate=s.get("dilation_rate", 1)) for s in specs]
    _built(convs, input_shape)
    assert lab02.reference_predict_shapes(input_shape, specs) == [
        tuple(conv.output.shape[1:]) for conv in convs]
    assert lab02.reference_predict_params(input_shape, specs) == [
        conv.count_params() for conv in convs]


def test_pooled_size_reference_matches_keras_on_drawn_questions():
    for n, k, s, padding in lab03._random_pool_questions(0, 40).values():
        pool = layers.MaxPooling2D(k, strides=s, padding=padding)
        assert lab03.reference_pooled_size(n, k, s, padding) == pool.compute_output_shape(
            (None, n, n, 1))[1], (n, k, s, padding)


@pytest.mark.parametrize("seed", SEEDS)
def test_downsampling_costs_reference_matches_keras_and_the_counters(seed):
    from cnnlab import counters

    input_shape, filters, k = lab03._random_downsampling(seed)
    costs = lab03.reference_downsampling_costs(input_shape, filters, k)
    models = {
        "conv_then_pool": _built([layers.Conv2D(filters, k, padding="same"),
                                  layers.MaxPooling2D(2)], input_shape),
        "strided_conv": _built([layers.Conv2D(filters, k, strides=2, padding="same")],
                               input_shape),
    }
    for name, model in models.items():
        assert costs[name]["output_shape"] == tuple(
            model.compute_output_shape((None, *input_shape))[1:])
        assert costs[name]["params"] == model.count_params()
        assert costs[name]["macs"] == counters.count_macs(model)


@pytest.mark.parametrize("seed", SEEDS)
def test_param_counts_reference_matches_the_lectures_models(seed):
    from cnnlab.models import build_convnet, build_mlp

    input_shape, num_classes = lab04._random_input(seed)
    counts = lab04.reference_param_counts(input_shape, num_classes)
    convnet = build_convnet(input_shape, num_classes)
    fc1 = [layer for layer in convnet.layers if isinstance(layer, layers.Dense)][0]
    assert counts == {"mlp": build_mlp(input_shape, num_classes).count_params(),
                      "convnet": convnet.count_params(), "convnet_fc1": fc1.count_params()}


@pytest.mark.parametrize("seed", SEEDS)
def test_lenet5_counts_reference_matches_cnnlabs_layers(seed):
    from cnnlab.layers import PartiallyConnectedConv2D, Subsampling2D

    c1_maps, table, c5_maps, f6_units = lab04._random_lenet5(seed)
    named = {"C1": layers.Conv2D(c1_maps, 5), "S2": Subsampling2D(2),
             "C3": PartiallyConnectedConv2D(len(table), 5, table), "S4": Subsampling2D(2),
             "C5": layers.Conv2D(c5_maps, 5), "F6": layers.Dense(f6_units)}
    _built([*named.values()][:5] + [layers.Flatten(), named["F6"]], (32, 32, 1))
    assert lab04.reference_lenet5_param_counts(c1_maps, table, c5_maps, f6_units) == {
        name: layer.count_params() for name, layer in named.items()}
