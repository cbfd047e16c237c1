"""cnnlab.graph: the one walker over Keras layer graphs, and the table of layers it knows.

References: the graphs Keras builds (tensor shapes, ``count_params``, ``layer.output`` of
layers called once), the Keras layer classes themselves, and cnnlab's golden LeNet-5 table
printed under the JAX backend.
"""

import os
import subprocess
import sys

import pytest

import cnnlab  # noqa: F401  (before keras: quiets TensorFlow's start-up log)
import keras
from keras import layers

from cnnlab import graph
from tests.conftest import ROOT


def _produced_before_use(trace):
    """True when every call reads only tensors made by earlier calls (or model inputs)."""
    made = set()
    for call in trace.calls:
        if not set(call.inputs) <= made:
            return False
        made.update(call.outputs)
    return True


def test_only_the_graph_module_reads_private_keras_attributes():
    """A Keras change to its graph internals touches cnnlab.graph alone."""
    import ast

    private = {"_keras_history", "_inbound_nodes", "_nodes_by_depth", "_functional",
               "_outbound_nodes", "_nodes", "_operation_node", "_layers", "_flatten_layers"}
    offenders = []
    for path in sorted((ROOT / "cnnlab").rglob("*.py")):
        if path.name == "graph.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in private:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
            if isinstance(node, ast.Constant) and node.value in private:  # getattr(x, "_nodes")
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("keras.src"):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} from {node.module}")
    assert not offenders, offenders
    assert "_keras_history" in (ROOT / "cnnlab" / "graph.py").read_text()


def _nested_model():
    """A functional model holding a Sequential that holds another Sequential."""
    innermost = keras.Sequential([layers.Conv2D(2, 3, name="deep_conv"),
                                  layers.ReLU(name="deep_relu")], name="innermost")
    block = keras.Sequential([keras.Input((8, 8, 3)), layers.Conv2D(3, 1, name="block_conv"),
                              innermost], name="block")
    inputs = keras.Input((8, 8, 3), name="image")
    x = block(inputs)
    outputs = layers.Dense(4, name="head")(layers.GlobalAveragePooling2D(name="gap")(x))
    return keras.Model(inputs, outputs, name="outer"), block, innermost


def _layers_by_public_api(model):
    """Independent walk: ``model.layers``, recursing into every nested keras.Model."""
    found = []
    for layer in model.layers:
        found.append(layer)
        if isinstance(layer, keras.Model):
            found.extend(_layers_by_public_api(layer))
    return found


def test_the_private_keras_attributes_graph_reads_still_exist():
    """Fails as soon as a Keras release renames what cnnlab.graph relies on."""
    model, block, innermost = _nested_model()
    for layer in (model, block, innermost, block.layers[0], model.get_layer("head")):
        assert isinstance(layer._layers, list), layer.name
    output = model.outputs[0]
    operation, node_index, _ = output._keras_history
    assert operation is model.get_layer("head") and node_index == 0
    node = operation._inbound_nodes[node_index]
    assert list(node.outputs) == [output] and callable(node.arguments.fill_in)


def test_nested_layers_finds_layers_inside_a_sequential_inside_a_functional_model():
    model, block, innermost = _nested_model()
    found = graph.nested_layers(model)
    names = [layer.name for layer in found]
    assert "deep_conv" in names and "block_conv" in names  # two levels down
    assert len(found) == len({id(layer) for layer in found})  # each once
    assert names.index("block") < names.index("block_conv") < names.index("innermost") \
        < names.index("deep_conv")  # a layer before its sublayers
    def without_inputs(found):
        return {id(layer) for layer in found if not isinstance(layer, layers.InputLayer)}

    assert without_inputs(found) == without_inputs(_layers_by_public_api(model))
    assert len(without_inputs(found)) == 7
    assert graph.nested_layers(model, include_self=True) == [model, *found]
    assert graph.nested_layers(innermost)[1:] == innermost.layers  # after its InputLayer


def test_nested_layers_finds_the_sublayers_of_a_custom_layer():
    class TwoConvs(layers.Layer):
        def __init__(self):
            super().__init__(name="two_convs")
            self.first, self.second = layers.Conv2D(2, 1), layers.Conv2D(2, 1)

        def call(self, x):
            return self.second(self.first(x))

    custom = TwoConvs()
    assert graph.nested_layers(custom) == [custom.first, custom.second]


def test_nested_layers_fails_loudly_when_keras_renames_layers(monkeypatch):
    model, _, innermost = _nested_model()
    monkeypatch.delattr(innermost, "_layers")
    with pytest.raises(graph.KerasInternalsError, match="'innermost' has no attribute '_layers'"):
        graph.nested_layers(model)


def test_nested_layers_refuses_what_is_not_a_layer():
    with pytest.raises(TypeError, match="keras Layer or Model"):
        graph.nested_layers([layers.Dense(2)])


def test_residual_block_calls_come_in_order_with_keras_shapes():
    inputs = keras.Input((8, 8, 4), name="x")
    left = layers.Conv2D(4, 3, padding="same", name="left")(inputs)
    right = layers.Conv2D(4, 1, name="right")(inputs)
    outputs = layers.Activation("relu", name="relu")(layers.Add(name="add")([left, right]))
    model = keras.Model(inputs, outputs)
    trace = graph.trace_model(model)
    assert _produced_before_use(trace)
    names = [call.name for call in trace.calls]
    assert names[0] == "x" and names[-2:] == ["add", "relu"]
    assert set(names) == {layer.name for layer in model.layers}
    for call in trace.calls[1:]:  # layers called once: Keras' own output shapes
        layer = model.get_layer(call.name)
        assert call.output_shapes == (tuple(layer.output.shape),), call.name
    (add,) = [call for call in trace.calls if call.name == "add"]
    assert len(add.inputs) == 2 and add.input_shapes == ((None, 8, 8, 4),) * 2
    assert trace.outputs == trace.calls[-1].outputs


def test_shared_layer_has_one_call_per_use_on_different_tensors():
    inputs = keras.Input((5,))
    shared = layers.Dense(5, name="shared")
    model = keras.Model(inputs, shared(shared(inputs)))
    trace = graph.trace_model(model)
    calls = [call for call in trace.calls if call.name == "shared"]
    assert len(calls) == 2 and calls[0].outputs == calls[1].inputs
    (row,) = [row for row in trace.rows() if row[0] == "shared"]
    assert row[2] == calls


def test_nested_model_is_expanded_and_gets_the_outer_input_size():
    x = keras.Input((None, None, 3))
    backbone = keras.Model(x, layers.Conv2D(3, 3, name="conv")(x), name="backbone")
    inputs = keras.Input((16, 16, 3))
    outputs = layers.GlobalAveragePooling2D(name="gap")(backbone(backbone(inputs)))
    trace = graph.trace_model(keras.Model(inputs, outputs))
    assert _produced_before_use(trace)
    convs = [call for call in trace.calls if call.name == "backbone/conv"]
    # Keras recorded (None, None, None, 3); the shape rule gives the outer sizes
    assert [call.output_shapes for call in convs] == [((None, 14, 14, 3),),
                                                      ((None, 12, 12, 3),)]
    nested = [call for call in trace.calls if call.nested]
    assert [call.outputs for call in nested] == [call.outputs for call in convs]
    assert [name for name, _, _ in trace.rows()][1:] == ["backbone/conv", "gap"]
    assert [name for name, _, _ in trace.rows(expand_nested=False)][1:] == ["backbone", "gap"]


def test_two_inputs_each_get_an_input_call():
    image, extra = keras.Input((4, 4, 1), name="image"), keras.Input((3,), name="extra")
    joined = layers.Concatenate(name="join")([layers.Flatten(name="flat")(image), extra])
    trace = graph.trace_model(keras.Model([image, extra], joined))
    assert [call.name for call in trace.calls[:2]] == ["image", "extra"]
    assert trace.calls[0].output_shapes == ((None, 4, 4, 1),) and not trace.calls[1].inputs
    assert [call.name for call in trace.calls][-1] == "join"
    assert _produced_before_use(trace)


def test_layer_tensors_are_the_calls_in_that_model():
    inner_input = keras.Input((6,))
    dense = layers.Dense(6, name="dense")
    inner = keras.Model(inner_input, dense(inner_input), name="inner")
    inputs = keras.Input((6,))
    outer = keras.Model(inputs, dense(inner(inputs)))
    ((ins, outs),) = graph.layer_tensors(outer, dense)
    assert outs == outer.outputs  # not the call inside `inner`, which dense.output gives
    assert dense.output is not outer.outputs[0]
    assert graph.layer_tensors(inner, dense) == [([inner_input], inner.outputs)]


def test_every_known_layer_name_is_a_keras_layer():
    for kind, names in graph.LAYER_KINDS.items():
        for name in names:
            assert issubclass(getattr(layers, name), layers.Layer), (kind, name)
    assert len(graph.KNOWN_LAYERS) == len(set(graph.KNOWN_LAYERS))


def test_layer_kind_knows_builtins_and_subclasses_but_not_custom_layers():
    class MyConv(layers.Conv2D):
        pass

    class Custom(layers.Layer):
        def call(self, inputs):
            return inputs

    assert graph.layer_kind(layers.Conv2D(2, 3)) == "conv"
    assert graph.layer_kind(MyConv(2, 3)) == "conv"
    assert graph.layer_kind(layers.SpatialDropout2D(0.1)) == "identity"
    assert graph.layer_kind(layers.GlobalMaxPooling1D()) == "global_pool"
    assert graph.layer_kind(Custom()) is None
    assert graph.layer_kind(layers.Lambda(lambda x: x)) is None
    assert graph.layer_kind(keras.Sequential([keras.Input((2,)), layers.Dense(1)])) == "model"


def test_models_that_cannot_be_walked_are_refused_with_the_fix():
    class Net(keras.Model):
        def call(self, inputs):
            return inputs

    with pytest.raises(TypeError, match="keras.Model"):
        graph.trace_model(layers.Dense(2))
    with pytest.raises(ValueError, match=r"no input shape yet.*keras.Input"):
        graph.trace_model(keras.Sequential([layers.Dense(2)]))
    with pytest.raises(ValueError, match=r"subclassed keras.Model.*keras.Model\(inputs"):
        graph.trace_model(Net())


@pytest.mark.jax
def test_lenet5_table_is_the_same_on_the_jax_backend():
    pytest.importorskip("jax")
    code = ("import cnnlab; from cnnlab.models import build_lenet5; "
            "import keras; assert keras.backend.backend() == 'jax'; "
            "print(cnnlab.summary(build_lenet5()))")
    env = dict(os.environ, KERAS_BACKEND="jax")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    golden = (ROOT / "tests" / "golden" / "lenet5_summary.txt").read_text()
    assert result.stdout == golden
