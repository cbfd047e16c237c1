"""cnnlab.arithmetic against real Keras layers, Dumoulin & Visin's guide and the lecture tables."""

import math
import pathlib
import subprocess
import sys

import cnnlab  # noqa: F401  (before keras: quiets TensorFlow's start-up log)
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab import arithmetic as A

MANY = settings(max_examples=200, deadline=None)
FEW = settings(max_examples=40, deadline=None)


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


def _keras_size(layer, input_shape):
    """Spatial output size Keras reports, or None where Keras refuses (ValueError)."""
    try:
        shape = layer.compute_output_shape(input_shape)
    except ValueError:
        return None
    return tuple(shape[1:-1])


def _ours(function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------
# Pure Python
# ---------------------------------------------------------------------------------------


def test_arithmetic_imports_no_keras_tensorflow_or_numpy():
    code = (
        "import sys, cnnlab.arithmetic as a; "
        "heavy = [m for m in ('keras', 'tensorflow', 'numpy') if m in sys.modules]; "
        "assert not heavy, heavy; print(a.conv_output_size(7, 3))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "5"


def test_only_the_keras_adapter_reaches_cnnlab_graph_and_only_inside_functions():
    root = pathlib.Path(A.__file__).parent
    reaching = sorted(path.name for path in root.glob("*.py")
                      if "from cnnlab import graph" in path.read_text()
                      or "cnnlab.graph import" in path.read_text())
    assert reaching == ["keras_adapter.py"]
    top_level = [line for line in (root / "keras_adapter.py").read_text().splitlines()
                 if line.startswith(("import ", "from ")) and "graph" in line]
    assert top_level == []  # imported lazily: `import cnnlab.arithmetic` stays pure Python


def test_no_module_imports_a_private_name_of_arithmetic():
    package = pathlib.Path(A.__file__).parent.parent
    for path in package.rglob("*.py"):
        if path.parent.name == "arithmetic":
            continue
        text = path.read_text()
        assert "from cnnlab.arithmetic import _" not in text, path
        assert "arithmetic._" not in text, path


def test_receptive_field_rows_of_a_traced_model_match_receptive_field(keras):
    from cnnlab import graph

    model = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Conv2D(2, 3, name="c1"),
                              keras.layers.MaxPooling2D(2, name="p1"),
                              keras.layers.Conv2D(2, 3, name="c2")])
    rows, unknown = A.receptive_field_rows(graph.trace_model(model))
    assert unknown == {}
    assert [(r["name"], r["size"]) for r in rows][-3:] == [
        ("c1", (3, 3)), ("p1", (4, 4)), ("c2", (8, 8))]  # 3, 3 + 1, 4 + 2 * 2
    assert rows == A.receptive_field(model).rows


def test_public_functions_say_where_they_are_used():
    # Every public name says which lab uses it, or that none does directly and what does;
    # tests/test_docs.py checks each claim against the notebooks.
    for name in A.__all__:
        doc = getattr(A, name).__doc__
        assert doc and ("Used in: labs/" in doc or "Used in: no lab notebook directly;" in doc), \
            name


# ---------------------------------------------------------------------------------------
# Lecture examples
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("strides, expected", [(1, 5), (2, 3)])
def test_lecture_7x7_input_3x3_filter_fits_strides_1_and_2(strides, expected):
    # 03-cnn-mlnn-7pam2021: (N - F) / stride + 1 with N = 7, F = 3.
    assert A.conv_output_size(7, 3, strides=strides, strict=True) == expected


def test_lecture_stride_3_does_not_fit_7x7_input():
    message = (
        "stride 3 does not fit: (7 - 3) / 3 + 1 = 2.33 is not an integer; "
        "pad the input or change the stride"
    )
    with pytest.raises(ValueError) as error:
        A.conv_output_size(7, 3, strides=3, strict=True)
    assert str(error.value) == message
    # Without strict, Keras floors: the last pixel is dropped.
    assert A.conv_output_size(7, 3, strides=3) == 2


def test_strict_message_shows_the_padding_term():
    with pytest.raises(ValueError, match=r"\(8 - 3 \+ 2\*1\) / 3 \+ 1 = 3\.33 is not"):
        A.conv_output_size(8, 3, strides=3, padding=1, strict=True)
    with pytest.raises(ValueError, match=r"axis 1: stride 2 does not fit"):
        A.conv_output_size((7, 8), 3, strides=2, strict=True)
    assert A.conv_output_size(8, 3, strides=3, padding=2, strict=True) == 4  # (8-3+4)/3+1


def test_lecture_zero_padding_keeps_7x7_with_p_equal_k_minus_1_over_2():
    for k in (1, 3, 5, 7):
        p = A.padding_to_keep_size(k)
        assert p == (k - 1) // 2
        assert A.conv_output_size(7, k, padding=p, strict=True) == 7


def test_padding_to_keep_size_refuses_even_kernels_and_explains_asymmetry():
    with pytest.raises(ValueError, match="even.*asymmetric.*1 before, 2 after"):
        A.padding_to_keep_size(4)
    assert A.padding_to_keep_size(2, dilation_rate=2) == 1  # dilated to 3 pixels
    assert A.padding_to_keep_size((3, 5)) == (1, 2)


def test_same_padding_puts_the_extra_zero_at_the_end_like_tensorflow():
    assert A.same_padding(5, 3) == (1, 1)
    assert A.same_padding(224, 4) == (1, 2)
    assert A.same_padding(224, 3, strides=2) == (0, 1)
    assert A.same_padding(225, 3, strides=2) == (1, 1)
    assert A.same_padding(5, 1, strides=4) == (0, 0)
    assert A.same_padding((224, 225), 3, strides=2) == ((0, 1), (1, 1))


def test_lecture_parameter_counts():
    # 10 filters 5x5 (stride 1, pad 2) on 32x32x3: (5*5*3 + 1) * 10.
    assert A.conv_params(5, 3, 10) == 760
    # AlexNet conv1, kernel (11, 11, 3, 96).
    assert A.conv_params(11, 3, 96) == 34_944
    assert A.conv_params((11, 11), 3, 96) == 34_944
    # Dense(1000) on a flattened 640x480x3 image.
    assert A.dense_params((640, 480, 3), 1000) == 921_601_000
    assert A.dense_params(640 * 480 * 3, 1000) == 921_601_000
    # VGG16 table (03-cnn-mlnn-7pam2021), weights only.
    assert A.conv_params(3, 3, 64, use_bias=False) == 1_728
    assert A.conv_params(3, 256, 512, use_bias=False) == 1_179_648
    assert A.dense_params((7, 7, 512), 4096, use_bias=False) == 102_760_448


@pytest.mark.parametrize("channels", [1, 16, 64])
def test_two_stacked_3x3_see_5x5_with_18k2_instead_of_25k2_params(channels):
    stacked = A.receptive_field([{"kernel_size": 3}, {"kernel_size": 3}])
    single = A.receptive_field([{"kernel_size": 5}])
    assert stacked.size == single.size == (5,)
    k2 = channels**2
    assert 2 * A.conv_params(3, channels, channels, use_bias=False) == 18 * k2
    assert A.conv_params(5, channels, channels, use_bias=False) == 25 * k2


def test_conv_params_kinds_by_hand():
    assert A.conv_params(3, 32, kind="depthwise") == 3 * 3 * 32 + 32
    assert A.conv_params(3, 32, 64, kind="depthwise", depth_multiplier=2) == 9 * 64 + 64
    assert A.conv_params(1, 32, 64, kind="pointwise") == 32 * 64 + 64
    assert A.conv_params(3, 32, 64, kind="separable") == 9 * 32 + 32 * 64 + 64
    assert A.conv_params(3, 4, 8, rank=1) == 3 * 4 * 8 + 8
    with pytest.raises(ValueError, match="filters=10 does not fit a depthwise"):
        A.conv_params(3, 32, 10, kind="depthwise")
    with pytest.raises(ValueError, match="pointwise.*kernel_size=1"):
        A.conv_params(3, 32, 64, kind="pointwise")


# ---------------------------------------------------------------------------------------
# Dumoulin & Visin, "A guide to convolution arithmetic for deep learning" (2016)
# ---------------------------------------------------------------------------------------

# (relationship, figure, function, arguments, expected) with the guide's numbers.  Transposed
# rows give i' (the convolution's output) and the *forward* convolution's k, s, p; a is the
# guide's a = (i + 2p - k) mod s, Keras' output_padding.
GUIDE = [
    (1, "2.1", "conv", dict(n=4, kernel_size=3), 2),
    (2, "2.2", "conv", dict(n=5, kernel_size=4, padding=2), 6),
    (3, "2.3", "conv", dict(n=5, kernel_size=3, padding=1), 5),
    (3, "2.3 same", "conv", dict(n=5, kernel_size=3, padding="same"), 5),
    (4, "2.4", "conv", dict(n=5, kernel_size=3, padding=2), 7),
    (4, "2.4 full", "conv", dict(n=5, kernel_size=3, padding="full"), 7),
    (5, "2.5", "conv", dict(n=5, kernel_size=3, strides=2), 2),
    (6, "2.6", "conv", dict(n=5, kernel_size=3, strides=2, padding=1), 3),
    (6, "2.7", "conv", dict(n=6, kernel_size=3, strides=2, padding=1), 3),
    (7, "1.5", "pool", dict(n=5, pool_size=3, strides=1), 3),
    (8, "4.1", "transpose", dict(n=2, kernel_size=3), 4),
    (9, "4.2", "transpose", dict(n=6, kernel_size=4, padding=2), 5),
    (10, "4.3", "transpose", dict(n=5, kernel_size=3, padding=1), 5),
    (11, "4.4", "transpose", dict(n=7, kernel_size=3, padding=2), 5),
    (11, "4.4 full", "transpose", dict(n=7, kernel_size=3, padding="full"), 5),
    (12, "4.5", "transpose", dict(n=2, kernel_size=3, strides=2), 5),
    (13, "4.6", "transpose", dict(n=3, kernel_size=3, strides=2, padding=1), 5),
    (14, "4.7", "transpose", dict(n=3, kernel_size=3, strides=2, padding=1, output_padding=1), 6),
    (15, "5.1", "conv", dict(n=7, kernel_size=3, dilation_rate=2), 3),
]
FUNCTIONS = {
    "conv": A.conv_output_size,
    "pool": A.pool_output_size,
    "transpose": A.conv_transpose_output_size,
}


@pytest.mark.parametrize("relationship, figure, kind, kwargs, expected", GUIDE,
                         ids=[f"rel{r[0]}-fig{r[1]}" for r in GUIDE])
def test_dumoulin_visin_relationships(relationship, figure, kind, kwargs, expected):
    assert FUNCTIONS[kind](**kwargs) == expected


@pytest.mark.parametrize("relationship, figure, kind, kwargs, expected",
                         [r for r in GUIDE if r[2] == "conv"])
def test_transposed_convolution_goes_back_to_the_input_size(relationship, figure, kind, kwargs,
                                                            expected):
    # The transposed convolution of a convolution i -> o maps o back to i (with a = leftover).
    n, k = kwargs["n"], kwargs["kernel_size"]
    s, p = kwargs.get("strides", 1), kwargs.get("padding", 0)
    d = kwargs.get("dilation_rate", 1)
    p = {"same": (k - 1) // 2, "full": k - 1}.get(p, p)
    a = (n + 2 * p - ((k - 1) * d + 1)) % s
    back = A.conv_transpose_output_size(expected, k, s, p, output_padding=a, dilation_rate=d)
    assert back == n


# ---------------------------------------------------------------------------------------
# Output sizes against real Keras layers
# ---------------------------------------------------------------------------------------


@st.composite
def conv_geometry(draw, rank):
    """Kernel, strides, dilation (Keras forbids strides > 1 with dilation > 1), input sizes."""
    sizes = tuple(draw(st.integers(1, 64)) for _ in range(rank))
    kernels = tuple(draw(st.integers(1, 7)) for _ in range(rank))
    if draw(st.booleans()):
        strides, dilations = tuple(draw(st.integers(1, 4)) for _ in range(rank)), (1,) * rank
    else:
        strides, dilations = (1,) * rank, tuple(draw(st.integers(1, 3)) for _ in range(rank))
    padding = draw(st.sampled_from(["valid", "same"]))
    return sizes, kernels, strides, dilations, padding


@MANY
@given(conv_geometry(rank=1), st.sampled_from(["valid", "same", "causal"]))
def test_conv_output_size_matches_keras_conv1d(keras, geometry, padding):
    (n,), (k,), (s,), (d,), _ = geometry
    layer = keras.layers.Conv1D(2, k, strides=s, padding=padding, dilation_rate=d)
    expected = _keras_size(layer, (1, n, 3))
    ours = _ours(A.conv_output_size, n, k, strides=s, padding=padding, dilation_rate=d)
    assert (ours,) == expected if expected is not None else ours is None


@MANY
@given(conv_geometry(rank=2))
def test_conv_output_size_matches_keras_conv2d(keras, geometry):
    sizes, kernels, strides, dilations, padding = geometry
    layer = keras.layers.Conv2D(2, kernels, strides=strides, padding=padding,
                                dilation_rate=dilations)
    expected = _keras_size(layer, (1, *sizes, 3))
    ours = _ours(A.conv_output_size, sizes, kernels, strides, padding, dilations)
    assert ours == expected


@MANY
@given(st.integers(1, 64), st.integers(1, 7), st.none() | st.integers(1, 4),
       st.sampled_from(["valid", "same"]), st.sampled_from(["Max", "Average"]))
def test_pool_output_size_matches_keras_pooling1d(keras, n, pool, strides, padding, kind):
    layer = getattr(keras.layers, f"{kind}Pooling1D")(pool, strides=strides, padding=padding)
    expected = _keras_size(layer, (1, n, 3))
    ours = _ours(A.pool_output_size, n, pool, strides, padding)
    assert (ours,) == expected if expected is not None else ours is None


@MANY
@given(st.tuples(st.integers(1, 64), st.integers(1, 64)),
       st.tuples(st.integers(1, 7), st.integers(1, 7)),
       st.none() | st.tuples(st.integers(1, 4), st.integers(1, 4)),
       st.sampled_from(["valid", "same"]), st.sampled_from(["Max", "Average"]))
def test_pool_output_size_matches_keras_pooling2d(keras, sizes, pool, strides, padding, kind):
    layer = getattr(keras.layers, f"{kind}Pooling2D")(pool, strides=strides, padding=padding)
    expected = _keras_size(layer, (1, *sizes, 3))
    assert _ours(A.pool_output_size, sizes, pool, strides, padding) == expected


@st.composite
def transpose_geometry(draw):
    n = draw(st.integers(1, 64))
    k = draw(st.integers(1, 7))
    s = draw(st.integers(1, 4))
    d = draw(st.integers(1, 3)) if s == 1 else 1
    padding = draw(st.sampled_from(["valid", "same"]))
    output_padding = draw(st.none() | st.integers(0, s - 1))
    return n, k, s, d, padding, output_padding


@MANY
@given(transpose_geometry(), st.integers(1, 64))
def test_conv_transpose_output_size_matches_keras_conv2d_transpose(keras, geometry, width):
    n, k, s, d, padding, output_padding = geometry
    layer = keras.layers.Conv2DTranspose(
        2, k, strides=s, padding=padding, dilation_rate=d,
        output_padding=None if output_padding is None else (output_padding, 0))
    expected = _keras_size(layer, (1, n, width, 3))
    ours = _ours(A.conv_transpose_output_size, (n, width), k, s, padding,
                 None if output_padding is None else (output_padding, 0), d)
    if ours is None:  # we refuse an empty output; Keras reports 0 pixels
        assert expected is None or min(expected) <= 0
    else:
        assert ours == expected


@pytest.mark.parametrize("k, s, padding, output_padding",
                         [(3, 2, "valid", None), (3, 2, "same", None), (4, 2, "same", None),
                          (3, 2, "same", 1), (5, 3, "valid", 2), (2, 3, "valid", None),
                          (3, 1, "same", 0)])
def test_conv_transpose_output_size_matches_a_real_run(keras, k, s, padding, output_padding):
    # compute_output_shape is what summary() shows; check the backend agrees on zeros.
    # (Even kernels with padding="same" and output_padding=0 are reported by Keras but
    # refused by TensorFlow at run time, so they are not in this list.)
    import numpy as np

    layer = keras.layers.Conv2DTranspose(1, k, strides=s, padding=padding,
                                         output_padding=output_padding)
    out = layer(np.zeros((1, 5, 6, 1), dtype="float32"))
    assert tuple(out.shape[1:3]) == A.conv_transpose_output_size(
        (5, 6), k, s, padding, output_padding)


# ---------------------------------------------------------------------------------------
# Parameter counts against Keras count_params()
# ---------------------------------------------------------------------------------------


def _count(layer, input_shape):
    layer.build(input_shape)
    return layer.count_params()


@pytest.mark.slow
@MANY
@given(st.integers(1, 7), st.integers(1, 7), st.integers(1, 16), st.integers(1, 16),
       st.booleans())
def test_conv_params_matches_keras_conv2d(keras, kh, kw, c_in, filters, use_bias):
    layer = keras.layers.Conv2D(filters, (kh, kw), use_bias=use_bias)
    assert A.conv_params((kh, kw), c_in, filters, use_bias) == _count(layer, (None, 9, 9, c_in))
    transposed = keras.layers.Conv2DTranspose(filters, (kh, kw), use_bias=use_bias)
    assert A.conv_params((kh, kw), c_in, filters, use_bias) == _count(transposed,
                                                                       (None, 9, 9, c_in))


@pytest.mark.slow
@MANY
@given(st.integers(1, 7), st.integers(1, 16), st.integers(1, 16), st.booleans())
def test_conv_params_matches_keras_conv1d(keras, k, c_in, filters, use_bias):
    layer = keras.layers.Conv1D(filters, k, use_bias=use_bias)
    assert A.conv_params(k, c_in, filters, use_bias, rank=1) == _count(layer, (None, 9, c_in))


@pytest.mark.slow
@MANY
@given(st.integers(1, 7), st.integers(1, 16), st.integers(1, 3), st.booleans())
def test_conv_params_matches_keras_depthwise_conv2d(keras, k, c_in, multiplier, use_bias):
    layer = keras.layers.DepthwiseConv2D(k, depth_multiplier=multiplier, use_bias=use_bias)
    expected = _count(layer, (None, 9, 9, c_in))
    assert A.conv_params(k, c_in, None, use_bias, "depthwise", multiplier) == expected
    assert A.conv_params(k, c_in, c_in * multiplier, use_bias, "depthwise",
                         multiplier) == expected


@pytest.mark.slow
@MANY
@given(st.integers(1, 7), st.integers(1, 16), st.integers(1, 16), st.integers(1, 3),
       st.booleans())
def test_conv_params_matches_keras_separable_conv2d(keras, k, c_in, filters, multiplier,
                                                    use_bias):
    layer = keras.layers.SeparableConv2D(filters, k, depth_multiplier=multiplier,
                                         use_bias=use_bias)
    expected = _count(layer, (None, 9, 9, c_in))
    assert A.conv_params(k, c_in, filters, use_bias, "separable", multiplier) == expected


@pytest.mark.slow
@MANY
@given(st.integers(1, 16), st.integers(1, 16), st.booleans())
def test_pointwise_and_dense_params_match_keras(keras, c_in, units, use_bias):
    conv = keras.layers.Conv2D(units, 1, use_bias=use_bias)
    assert A.conv_params(1, c_in, units, use_bias, "pointwise") == _count(conv,
                                                                          (None, 4, 4, c_in))
    dense = keras.layers.Dense(units, use_bias=use_bias)
    assert A.dense_params(c_in, units, use_bias) == _count(dense, (None, c_in))


# ---------------------------------------------------------------------------------------
# Receptive fields
# ---------------------------------------------------------------------------------------


def test_receptive_field_of_keras_vgg16(keras):
    model = keras.applications.VGG16(weights=None, include_top=False,
                                     input_shape=(224, 224, 3))
    field = A.receptive_field(model)
    assert field.rows[0]["name"] == model.layers[0].name
    assert field.rows[0]["size"] == (1, 1)
    assert [r["name"] for r in field.rows] == [layer.name for layer in model.layers]
    expected = {"block1_conv1": 3, "block1_conv2": 5, "block1_pool": 6, "block2_conv2": 14,
                "block3_conv3": 40, "block4_pool": 100, "block5_conv3": 196,
                "block5_pool": 212}
    for name, size in expected.items():
        assert field.row(name)["size"] == (size, size), name
    assert field.row("block5_pool")["jump"] == (32, 32)
    assert field.row("block5_pool")["start"] == (15.5, 15.5)
    assert field.size == (212, 212)
    assert "block5_pool" in str(field) and "212x212" in str(field)


def test_receptive_field_of_specs_matches_vgg16_numbers():
    specs = []
    for block, convs in enumerate([2, 2, 3, 3, 3], start=1):
        specs += [{"kernel_size": 3, "padding": "same", "name": f"block{block}_conv{i}"}
                  for i in range(1, convs + 1)]
        specs.append({"kind": "pool", "pool_size": 2, "name": f"block{block}_pool"})
    field = A.receptive_field(specs, input_shape=(224, 224, 3))
    assert field.row("block5_conv3")["size"] == (196, 196)
    assert field.row("block5_pool")["size"] == (212, 212)
    assert A.receptive_field(specs).row("block5_pool")["size"] == (212,)


def test_receptive_field_rows_follow_the_forward_recurrence_by_hand():
    specs = [A.LayerSpec(kernel_size=3, strides=2, padding=1, name="c1"),
             A.LayerSpec(kernel_size=3, dilation_rate=2, name="c2"),
             A.LayerSpec(kind="avg_pool", kernel_size=2, name="p")]
    rows = A.receptive_field(specs).rows
    # c1: r = 1 + 2*1 = 3, j = 2, start = 0 + (1 - 1)*1 = 0
    # c2: k_eff = 5, r = 3 + 4*2 = 11, j = 2, start = 0 + 2*2 = 4
    # p : r = 11 + 1*2 = 13, j = 4, start = 4 + 0.5*2 = 5
    assert [(r["size"], r["jump"], r["start"]) for r in rows] == [
        ((3,), (2,), (0.0,)), ((11,), (2,), (4.0,)), ((13,), (4,), (5.0,))]


def test_receptive_field_of_branches_keeps_the_largest_and_walks_nested_models(keras):
    layers = keras.layers
    inputs = keras.Input((32, 32, 3))
    small = layers.Conv2D(4, 3, padding="same", name="small")(inputs)
    large = layers.Conv2D(4, 5, padding="same", name="large")(inputs)
    merged = layers.Concatenate(name="merged")([small, large])
    inner = keras.Sequential([keras.Input((32, 32, 8)), layers.Conv2D(4, 3, name="inner_conv"),
                              layers.MaxPooling2D(2, name="inner_pool")], name="inner")
    features = inner(merged)
    pooled = layers.GlobalAveragePooling2D(name="gap")(features)
    outputs = layers.Dense(3, name="out")(pooled)
    field = A.receptive_field(keras.Model(inputs, outputs))
    assert field.row("merged")["size"] == (5, 5)
    assert field.row("inner")["size"] == (8, 8)  # 5 + 2, then pool 2 adds 1
    assert field.row("inner")["jump"] == (2, 2)
    assert field.row("gap")["whole_input"] and field.row("gap")["size"] == (32, 32)
    assert field.row("out")["size"] == (32, 32)
    with pytest.raises(KeyError, match="no layer named 'nope'"):
        field.row("nope")


def test_receptive_field_of_sequential_includes_the_input_row_and_padding_shift(keras):
    layers = keras.layers
    model = keras.Sequential([keras.Input((28, 28, 1)), layers.ZeroPadding2D(2, name="pad"),
                              layers.Conv2D(6, 5, name="c1"),
                              layers.AveragePooling2D(2, name="s2"),
                              layers.Conv2D(16, 5, name="c3"), layers.Flatten(name="flat"),
                              layers.Dense(10, name="f")])
    field = A.receptive_field(model)
    assert [r["name"] for r in field.rows][1:] == ["pad", "c1", "s2", "c3", "flat", "f"]
    assert field.rows[0]["size"] == (1, 1)
    assert field.row("pad")["start"] == (-2.0, -2.0)
    assert field.row("c1")["start"] == (0.0, 0.0)
    assert field.row("c3")["size"] == (14, 14)
    unbuilt = keras.Sequential([layers.Conv2D(2, 3)])
    with pytest.raises(ValueError, match="no input shape yet"):
        A.receptive_field(unbuilt)


@st.composite
def stacks_1d(draw):
    """1-D stacks of Conv1D / pooling / ZeroPadding1D layers as specs."""
    specs = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["conv", "conv", "max_pool", "avg_pool", "zero_padding"]))
        if kind == "zero_padding":
            specs.append({"kind": kind, "padding": (draw(st.integers(0, 2)),
                                                    draw(st.integers(0, 2)))})
        elif kind == "conv":
            strides = draw(st.integers(1, 3))
            dilation = draw(st.integers(1, 2)) if strides == 1 else 1
            specs.append({"kind": kind, "kernel_size": draw(st.integers(1, 5)),
                          "strides": strides, "dilation_rate": dilation,
                          "padding": draw(st.sampled_from(["valid", "same", "causal"]))})
        else:
            specs.append({"kind": kind, "pool_size": draw(st.integers(1, 4)),
                          "strides": draw(st.integers(1, 3)),
                          "padding": draw(st.sampled_from(["valid", "same"]))})
    return specs, draw(st.integers(0, 40))


def _keras_stack(keras, specs, n):
    layers = keras.layers
    stack = [keras.Input((n, 1))]
    for spec in specs:
        if spec["kind"] == "conv":
            stack.append(layers.Conv1D(1, spec["kernel_size"], strides=spec["strides"],
                                       padding=spec["padding"],
                                       dilation_rate=spec["dilation_rate"], use_bias=False,
                                       kernel_initializer="ones"))
        elif spec["kind"] == "zero_padding":
            stack.append(layers.ZeroPadding1D(spec["padding"]))
        else:
            pool = layers.MaxPooling1D if spec["kind"] == "max_pool" else layers.AveragePooling1D
            stack.append(pool(spec["pool_size"], strides=spec["strides"],
                              padding=spec["padding"]))
    return keras.Sequential(stack)


def _impulse_responses(model, n):
    """reads[p] = input pixels whose impulse reaches output p (weights >= 0, so no cancelling)."""
    import numpy as np

    impulses = np.eye(n, dtype="float32")[:, :, None]
    out = np.asarray(model(impulses))[:, :, 0]  # (input pixel, output position)
    return [np.flatnonzero(out[:, p] > 0) for p in range(out.shape[1])]


@FEW
@given(stacks_1d())
def test_receptive_field_matches_impulse_responses_of_keras_1d_stacks(keras, stack):
    specs, extra = stack
    size = A.receptive_field(specs).size[0]
    n = size + extra
    try:
        rows = A.receptive_field(specs, input_shape=(n, 1)).rows
    except ValueError:
        return  # input too small for this stack; Keras refuses it as well
    model = _keras_stack(keras, specs, n)
    from_model = A.receptive_field(model).rows[1:]
    assert [(r["size"], r["jump"], r["start"]) for r in from_model] == [
        (r["size"], r["jump"], r["start"]) for r in rows]
    (r,), (jump,), (start,) = rows[-1]["size"], rows[-1]["jump"], rows[-1]["start"]
    interior = 0
    for p, reads in enumerate(_impulse_responses(model, n)):
        low, high = start + p * jump - (r - 1) / 2, start + p * jump + (r - 1) / 2
        assert len(reads) == 0 or (low <= reads.min() and reads.max() <= high), p
        if low >= 0 and high <= n - 1:
            interior += 1
            assert (reads.min(), reads.max()) == (low, high), p
    assert interior > 0 or n < r + jump


@FEW
@given(st.integers(1, 6), st.integers(1, 3), st.sampled_from(["valid", "same"]),
       st.data())
def test_receptive_field_of_conv1d_transpose_matches_impulse_responses(keras, k, s, padding,
                                                                     data):
    output_padding = data.draw(st.none() | st.integers(0, s - 1))
    if padding == "same" and k % 2 == 0 and output_padding == 0:
        output_padding = None  # Keras reports this case but TensorFlow refuses to run it
    n = 12
    model = keras.Sequential([
        keras.Input((n, 1)),
        keras.layers.Conv1DTranspose(1, k, strides=s, padding=padding,
                                     output_padding=output_padding, use_bias=False,
                                     kernel_initializer="ones", name="up")])
    row = A.receptive_field(model).row("up")
    (r,), (jump,), (start,) = row["size"], row["jump"], row["start"]
    assert jump == pytest.approx(1 / s)
    half = (k - 1) / (2 * s)  # half-width of the input interval one output reads
    spans = []
    for y, reads in enumerate(_impulse_responses(model, n)):
        if len(reads):
            centre = start + y * jump
            assert centre - half - 1e-9 <= reads.min() and reads.max() <= centre + half + 1e-9
            spans.append(reads.max() - reads.min() + 1)
    assert max(spans) == r


def test_receptive_field_marks_flatten_and_global_pooling_as_whole_input():
    specs = [{"kernel_size": 3}, "flatten", {"kind": "dense", "units": 4}]
    rows = A.receptive_field(specs, input_shape=(10, 10, 1)).rows
    assert not rows[0]["whole_input"]
    assert rows[1]["whole_input"] and rows[1]["size"] == (10, 10)
    assert rows[2]["whole_input"] and rows[2]["jump"] == (None, None)
    unknown = A.receptive_field([{"kernel_size": 3}, "global_max_pool"]).rows[1]
    assert unknown["whole_input"] and unknown["size"] == (None,)


# ---------------------------------------------------------------------------------------
# trace_shapes against a Keras model built from the same design
# ---------------------------------------------------------------------------------------

DESIGNS = {
    "lenet5": ((32, 32, 1), [
        {"kind": "conv", "filters": 6, "kernel_size": 5, "name": "c1"},
        {"kind": "avg_pool", "pool_size": 2, "name": "s2"},
        {"kind": "conv", "filters": 16, "kernel_size": 5, "name": "c3"},
        {"kind": "avg_pool", "pool_size": 2, "name": "s4"},
        "flatten",
        {"kind": "dense", "units": 120},
        {"kind": "dense", "units": 84},
        {"kind": "dense", "units": 10},
    ]),
    "mobile_like": ((33, 31, 3), [
        {"kind": "zero_padding", "padding": ((1, 0), (0, 2))},
        {"kind": "conv", "filters": 8, "kernel_size": 3, "strides": 2, "padding": "same"},
        "batch_norm",
        "activation",
        {"kind": "depthwise_conv", "kernel_size": 3, "depth_multiplier": 2, "padding": "same"},
        {"kind": "separable_conv", "filters": 12, "kernel_size": (3, 5), "strides": 2},
        {"kind": "max_pool", "pool_size": 3, "strides": 2, "padding": "same"},
        {"kind": "conv_transpose", "filters": 4, "kernel_size": 3, "strides": 2,
         "padding": "same", "output_padding": 1},
        "dropout",
        "global_avg_pool",
        {"kind": "dense", "units": 5, "use_bias": False},
    ]),
    "signal_1d": ((100, 2), [
        {"kind": "conv", "filters": 4, "kernel_size": 7, "dilation_rate": 2, "padding": "causal"},
        {"kind": "max_pool", "pool_size": 3},
        {"kind": "conv", "filters": 8, "kernel_size": 3, "strides": 2},
        {"kind": "dense", "units": 3},
        "global_max_pool",
    ]),
}


def _keras_layer(keras, spec, rank):
    """The Keras layer that a trace_shapes spec describes."""
    layers = keras.layers
    spec = {"kind": spec} if isinstance(spec, str) else dict(spec)
    spec.pop("name", None)
    kind, suffix = spec.pop("kind"), f"{rank}D"
    builders = {
        "conv": lambda: getattr(layers, f"Conv{suffix}")(**spec),
        "depthwise_conv": lambda: getattr(layers, f"DepthwiseConv{suffix}")(**spec),
        "separable_conv": lambda: getattr(layers, f"SeparableConv{suffix}")(**spec),
        "conv_transpose": lambda: getattr(layers, f"Conv{suffix}Transpose")(**spec),
        "max_pool": lambda: getattr(layers, f"MaxPooling{suffix}")(**spec),
        "avg_pool": lambda: getattr(layers, f"AveragePooling{suffix}")(**spec),
        "zero_padding": lambda: getattr(layers, f"ZeroPadding{suffix}")(**spec),
        "global_avg_pool": lambda: getattr(layers, f"GlobalAveragePooling{suffix}")(),
        "global_max_pool": lambda: getattr(layers, f"GlobalMaxPooling{suffix}")(),
        "flatten": lambda: layers.Flatten(),
        "dense": lambda: layers.Dense(**spec),
        "batch_norm": lambda: layers.BatchNormalization(),
        "activation": lambda: layers.Activation("relu"),
        "dropout": lambda: layers.Dropout(0.5),
    }
    return builders[kind]()


@pytest.mark.parametrize("design", sorted(DESIGNS))
def test_trace_shapes_matches_keras_summary_row_by_row(keras, design):
    input_shape, specs = DESIGNS[design]
    rank = len(input_shape) - 1
    trace = A.trace_shapes(specs, input_shape)
    model = keras.Sequential([keras.Input(input_shape)]
                             + [_keras_layer(keras, spec, rank) for spec in specs])
    assert len(trace.rows) == len(model.layers)
    for row, layer in zip(trace.rows, model.layers):
        assert row["output_shape"] == tuple(layer.output.shape[1:]), row["name"]
        assert row["params"] == layer.count_params(), row["name"]
    assert trace.total_params == model.count_params()
    fields = A.receptive_field(model).rows[1:]
    for row, field in zip(trace.rows, fields):
        assert row["receptive_field"] == field["size"], row["name"]
    assert f"Total params: {model.count_params():,}" in str(trace)
    assert "<table>" in trace._repr_html_()


def test_trace_shapes_table_is_aligned_and_shows_keras_style_shapes():
    trace = A.trace_shapes(DESIGNS["lenet5"][1], (32, 32, 1))
    lines = str(trace).splitlines()
    assert lines[0].split() == ["layer", "kind", "output", "shape", "params", "receptive",
                                "field"]
    assert "(None, 28, 28, 6)" in lines[3] and "5x5" in lines[3]
    body = lines[2:-1]
    assert len({line.index("(None") for line in body}) == 1  # aligned column
    assert trace.row("c3")["receptive_field"] == (14, 14)
    assert trace.output_shape == (10,)
    assert trace.total_params == 61_706  # LeNet-5 with biases


# ---------------------------------------------------------------------------------------
# Bad input: ValueError/TypeError naming the argument and the fix
# ---------------------------------------------------------------------------------------

BAD = [
    (A.conv_output_size, (0, 3), {}, ValueError, r"n=0 .*n must be an integer >= 1"),
    (A.conv_output_size, (-5, 3), {}, ValueError, r"n=-5"),
    (A.conv_output_size, (7, 0), {}, ValueError, r"kernel_size=0"),
    (A.conv_output_size, (7, 3), {"strides": 0}, ValueError, r"strides=0.*strides=1"),
    (A.conv_output_size, (7, 3), {"dilation_rate": 0}, ValueError, r"dilation_rate=0"),
    (A.conv_output_size, (3, 5), {}, ValueError, r"kernel_size=5 is larger than the padded "
                                                 r"input.*padding='same'"),
    (A.conv_output_size, (3, 3), {"dilation_rate": 2}, ValueError, r"dilated to 5"),
    (A.conv_output_size, (7, 3), {"padding": "half"}, ValueError,
     r"padding='half' is not a padding mode.*'valid', 'same'"),
    (A.conv_output_size, (7, 3), {"padding": -1}, ValueError, r"padding=-1"),
    (A.conv_output_size, ((7, 7), (3, 3, 3)), {}, ValueError,
     r"kernel_size=\(3, 3, 3\) has 3 values but n has 2"),
    (A.conv_output_size, ((7, 7), 3), {"padding": (1, 1, 1)}, ValueError,
     r"padding=\(1, 1, 1\) has 3 entries but the input has 2"),
    (A.conv_output_size, (7.5, 3), {}, TypeError, r"n must be an integer"),
    (A.pool_output_size, (7, 2), {"padding": "full"}, ValueError, r"padding='full'"),
    (A.conv_transpose_output_size, (4, 3), {"strides": 2, "output_padding": 2}, ValueError,
     r"output_padding=2 must be smaller than strides=2"),
    (A.conv_params, (3, 3), {}, ValueError, r"filters is required"),
    (A.conv_params, (3, 3, 8), {"kind": "grouped"}, ValueError, r"kind='grouped'"),
    (A.dense_params, (0, 10), {}, ValueError, r"in_features=0"),
    (A.same_padding, (5, 3), {"strides": 0}, ValueError, r"strides=0"),
    (A.trace_shapes, ([{"kind": "conv", "kernel_size": 3}], (8, 8, 1)), {}, ValueError,
     r"layer 'conv_1' \(conv\): filters is missing"),
    (A.trace_shapes, (["flatten", {"kind": "conv", "filters": 2, "kernel_size": 3}],
                      (8, 8, 1)), {}, ValueError, r"conv_2.*needs a spatial input"),
    (A.trace_shapes, ([{"kind": "conv", "filters": 2, "kernel_size": 9}], (8, 8, 1)), {},
     ValueError, r"layer 'conv_1' \(conv\): axis 0: kernel_size=9 is larger"),
    (A.receptive_field, ([{"kind": "conv", "kernal_size": 3}],), {}, ValueError,
     r"unknown key\(s\) \['kernal_size'\]"),
    (A.receptive_field, ([{"kind": "maxpoool"}],), {}, ValueError, r"kind='maxpoool'"),
    (A.receptive_field, ([{"kernel_size": (3, 3)}],), {"input_shape": (32, 32)}, ValueError,
     r"input_shape includes the channels axis"),
]


@pytest.mark.parametrize("function, args, kwargs, error, message", BAD,
                         ids=[f"{b[0].__name__}-{i}" for i, b in enumerate(BAD)])
def test_bad_input_raises_an_error_that_names_the_argument(function, args, kwargs, error,
                                                           message):
    with pytest.raises(error, match=message):
        function(*args, **kwargs)


def test_tuple_sizes_give_tuples_and_ints_give_ints():
    assert A.conv_output_size(32, 3) == 30
    assert A.conv_output_size((32, 16), (3, 5), strides=(1, 2), padding=((1, 1), 0)) == (32, 6)
    assert A.conv_output_size((32, 32, 8), 3, padding="same", strides=2) == (16, 16, 4)
    assert A.pool_output_size((224, 224), 2) == (112, 112)
    assert A.conv_output_size(10, 3, padding=(2, 0)) == 10
    assert A.conv_output_size(10, 3, padding=2) == 12
    assert A.conv_transpose_output_size((4, 5), (3, 2), strides=2) == (9, 10)


# ---------------------------------------------------------------------------------------
# Keras models: every layer is known or refused, and fields match the model's own behaviour
# ---------------------------------------------------------------------------------------


def _measured_fields(keras, model, input_shape, seed=0):
    """{(i, j): ((row_min, row_max), (col_min, col_max))} of output unit (i, j) of ``model``.

    Reference: the model itself, by finite perturbation.  Each image of the batch is a random
    image plus 1.0 at one pixel (all channels); the unit's field is the set of pixels whose
    change moves the unit (any channel) at all.
    """
    import numpy as np

    height, width, _ = input_shape
    base = np.random.default_rng(seed).normal(size=input_shape).astype("float32")
    batch = np.repeat(base[None], height * width + 1, axis=0)
    for pixel in range(height * width):
        batch[pixel + 1, pixel // width, pixel % width, :] += 1.0
    out = keras.ops.convert_to_numpy(model(batch))
    changed = np.abs(out[1:] - out[:1]).max(axis=-1) > 1e-5  # (pixel, i, j)
    fields = {}
    for i in range(changed.shape[1]):
        for j in range(changed.shape[2]):
            rows, cols = np.nonzero(changed[:, i, j].reshape(height, width))
            fields[i, j] = ((rows.min(), rows.max()), (cols.min(), cols.max()))
    return fields


def _declared_fields(row, input_shape, output_shape):
    """The same extents from a receptive_field row: centre start + p * jump, clipped."""
    def extent(axis, p):
        n = input_shape[axis]
        if row["whole_input"]:
            return (0, n - 1)
        centre = row["start"][axis] + p * row["jump"][axis]
        half = (row["size"][axis] - 1) / 2
        return (max(0, math.ceil(centre - half)), min(n - 1, math.floor(centre + half)))

    return {(i, j): (extent(0, i), extent(1, j))
            for i in range(output_shape[0]) for j in range(output_shape[1])}


def _cnnlab_layer_cases(keras):
    from cnnlab import layers as cnn

    return {
        "subsampling_2x2": ((10, 12, 3), cnn.Subsampling2D(2, activation="tanh")),
        "subsampling_3_stride_2": ((11, 9, 2), cnn.Subsampling2D(3, strides=2)),
        "partial_conv_valid": ((12, 11, 6), cnn.PartiallyConnectedConv2D(
            16, 5, cnn.LENET5_C3_TABLE)),
        "partial_conv_same_strided": ((13, 11, 6), cnn.PartiallyConnectedConv2D(
            16, (5, 3), cnn.LENET5_C3_TABLE, strides=2, padding="same")),
        "euclidean_rbf": ((5, 4, 6), cnn.EuclideanRBF(3, seed=0, return_penalties=True)),
        "zero_pad_shortcut": ((7, 8, 4), cnn.ZeroPadShortcut(8, strides=2)),
    }


@pytest.mark.parametrize("case", ["subsampling_2x2", "subsampling_3_stride_2",
                                  "partial_conv_valid", "partial_conv_same_strided",
                                  "euclidean_rbf", "zero_pad_shortcut"])
def test_cnnlab_layers_declare_the_receptive_field_they_really_have(keras, case):
    input_shape, layer = _cnnlab_layer_cases(keras)[case]
    model = keras.Sequential([keras.Input(input_shape), layer])
    row = A.receptive_field(model).row(layer.name)
    output_shape = tuple(model.outputs[0].shape[1:3])
    assert _measured_fields(keras, model, input_shape) == _declared_fields(
        row, input_shape, output_shape)


def test_lenet5_receptive_fields_are_the_papers(keras):
    from cnnlab.models import build_lenet5

    field = A.receptive_field(build_lenet5())
    # C1 5; S2 + (2 - 1) x 1 = 6, jump 2; C3 + 4 x 2 = 14; S4 + 1 x 2 = 16, jump 4;
    # C5 + 4 x 4 = 32: the whole 32 x 32 input, as LeCun et al. (1998) designed it.
    sizes = {name: field.row(name)["size"][0] for name in ("c1", "s2", "c3", "s4", "c5")}
    assert sizes == {"c1": 5, "s2": 6, "c3": 14, "s4": 16, "c5": 32}
    assert field.row("s4")["jump"] == (4, 4)
    assert field.row("f6")["whole_input"] and field.row("f6")["size"] == (32, 32)


def test_trace_shapes_of_a_model_uses_keras_shapes_and_parameters(keras):
    from cnnlab.models import build_lenet5

    model = build_lenet5()
    trace = A.trace_shapes(model)
    layers = [layer for layer in model.layers if layer.name != "image"]
    assert [row["name"] for row in trace.rows] == [layer.name for layer in layers]
    for row, layer in zip(trace.rows, layers):
        assert row["output_shape"] == tuple(layer.output.shape[1:]), row["name"]
        assert row["params"] == layer.count_params(), row["name"]
    assert trace.row("s2")["kind"] == "Subsampling2D"
    assert [trace.row(n)["receptive_field"] for n in ("c3", "s4")] == [(14, 14), (16, 16)]
    assert trace.total_params == model.count_params() == 60_850
    assert "whole input (32x32)" in str(trace)
    with pytest.raises(ValueError, match="not the model's input shape"):
        A.trace_shapes(model, (28, 28, 1))


def _scale_layer(keras):
    class Scale(keras.layers.Layer):
        """A custom layer with no receptive-field rule."""

        def call(self, inputs):
            return inputs * 2.0

    return Scale(name="scale")


def test_unknown_layer_is_refused_with_its_name_class_and_the_fix(keras):
    layers = keras.layers
    model = keras.Sequential([keras.Input((8, 8, 1)), layers.Conv2D(2, 3, name="conv"),
                              _scale_layer(keras), layers.Conv2D(2, 3, name="after")])
    pattern = (r"layer 'scale' \(Scale\) has no receptive-field rule.*KNOWN_LAYERS.*"
               r"receptive_field_step\(self\)")
    with pytest.raises(ValueError, match=pattern):
        A.receptive_field(model)
    with pytest.raises(ValueError, match=pattern):
        A.trace_shapes(model)


def test_unknown_layer_after_global_pooling_needs_no_rule(keras):
    layers = keras.layers
    model = keras.Sequential([keras.Input((8, 8, 1)), layers.Conv2D(2, 3),
                              layers.GlobalMaxPooling2D(), _scale_layer(keras)])
    row = A.receptive_field(model).row("scale")
    assert row["whole_input"] and row["size"] == (8, 8)  # a unit cannot see more than that


@pytest.mark.parametrize("build, message", [
    (lambda L: L.UpSampling2D(2, interpolation="bilinear"), "interpolation='bilinear'"),
    (lambda L: L.Lambda(lambda x: x), r"\(Lambda\) has no receptive-field rule"),
    (lambda L: L.LayerNormalization(axis=(1, 3)), "some spatial axes but not all"),
])
def test_builtin_layers_without_a_rule_are_refused(keras, build, message):
    model = keras.Sequential([keras.Input((6, 6, 2)), build(keras.layers)])
    with pytest.raises(ValueError, match=message):
        A.receptive_field(model)


def test_concatenate_along_a_spatial_axis_is_refused(keras):
    layers = keras.layers
    inputs = keras.Input((6, 6, 2))
    model = keras.Model(inputs, layers.Concatenate(axis=1)([inputs, inputs]))
    with pytest.raises(ValueError, match="not the channel axis"):
        A.receptive_field(model)


def test_merged_branches_see_the_union_of_their_fields(keras):
    # Branch a reads pixels 0..2 for unit 0; branch b (same conv, then 2 pixels cropped)
    # reads 1..3.  The sum reads 0..3: 4 pixels, more than either branch (3).
    layers = keras.layers
    inputs = keras.Input((10, 10, 1))
    a = layers.Conv2D(1, 3, name="a")(inputs)
    b = layers.Cropping2D(((2, 0), (2, 0)), name="b")(
        layers.Conv2D(1, 3, padding="same", name="b_conv")(inputs))
    model = keras.Model(inputs, layers.Add(name="sum")([a, b]))
    row = A.receptive_field(model).row("sum")
    assert (row["size"], row["start"]) == ((4, 4), (1.5, 1.5))
    assert _measured_fields(keras, model, (10, 10, 1)) == _declared_fields(
        row, (10, 10, 1), (8, 8))


@pytest.mark.parametrize("normalization, whole", [
    (lambda L: L.GroupNormalization(groups=2), True),   # statistics over all positions
    (lambda L: L.LayerNormalization(), False),          # over the channels of each pixel
    (lambda L: L.BatchNormalization(), False),          # per-channel constants at inference
])
def test_normalization_fields_match_impulse_responses(keras, normalization, whole):
    layers = keras.layers
    model = keras.Sequential([keras.Input((6, 6, 2)), layers.Conv2D(4, 3, name="conv"),
                              normalization(layers)])
    row = A.receptive_field(model).rows[-1]
    assert row["whole_input"] is whole
    assert _measured_fields(keras, model, (6, 6, 2)) == _declared_fields(
        row, (6, 6, 2), (4, 4))
