"""cnnlab.viz and cnnlab.figures: convolution arithmetic pictures (Dumoulin & Visin)."""

import gc
import warnings

import matplotlib

matplotlib.use("Agg")

import cnnlab  # noqa: E402,F401  (before keras: quiets TensorFlow's start-up log)
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.animation import FuncAnimation  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402

from cnnlab import arithmetic, figures, viz  # noqa: E402

# Output sizes of Dumoulin & Visin's GIFs, read off the guide's figures (by hand).
DUMOULIN_OUTPUT_SIDES = {
    "no_padding_no_strides": 2,
    "arbitrary_padding_no_strides": 6,
    "same_padding_no_strides": 5,
    "full_padding_no_strides": 7,
    "no_padding_strides": 2,
    "padding_strides": 3,
    "dilation": 3,
    "no_padding_no_strides_transposed": 4,
    "arbitrary_padding_no_strides_transposed": 5,
    "same_padding_no_strides_transposed": 5,
    "no_padding_strides_transposed": 5,
}



@pytest.fixture(autouse=True)
def _collect_unplayed_animations():
    """Some tests only count frames; collect those animations now, without matplotlib's
    'Animation was deleted without rendering anything' warning at some later test."""
    yield
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Animation was deleted", UserWarning)
        gc.collect()


def _arithmetic_output_size(kwargs):
    """Output (h, w) by cnnlab.arithmetic, the formula module, for conv_animation kwargs."""
    kwargs = dict(kwargs)
    transposed = kwargs.pop("transposed", False)
    n = kwargs.pop("input_size")
    size = arithmetic.conv_transpose_output_size if transposed else arithmetic.conv_output_size
    out = size(n, kwargs.pop("kernel_size"), **kwargs)
    return out if isinstance(out, tuple) else (out, out)


@pytest.fixture(scope="module")
def written_gifs(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("conv_arithmetic")
    assert figures.main([str(outdir), "--dpi", "20"]) == 0
    return outdir


def test_conv_frame_returns_a_titled_figure():
    fig = viz.conv_frame(5, 3, strides=2, padding=1, step=4)
    assert isinstance(fig, Figure)
    title = fig.axes[0].get_title()
    assert title == "input 5x5, kernel 3x3, stride 2, padding 1 \u2192 output 3x3"


def test_conv_frame_draws_on_a_given_axes():
    fig = Figure()
    ax = fig.add_subplot()
    assert viz.conv_frame((4, 6), (2, 3), dilation_rate=(1, 2), ax=ax) is fig
    assert "dilation 1x2" in ax.get_title()
    assert "output 3x2" in ax.get_title()


def test_conv_frame_titles_name_transposed_and_string_padding():
    title = viz.conv_frame(3, 3, strides=2, padding="same", transposed=True).axes[0].get_title()
    assert title.startswith("transposed conv: input 3x3")
    assert "padding 'same'" in title and title.endswith("output 6x6")


def test_conv_frame_leaves_no_open_pyplot_figure():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    viz.conv_frame(4, 3)
    viz.conv_animation(4, 3)
    assert plt.get_fignums() == before


@pytest.mark.parametrize("name", list(figures.ANIMATIONS))
def test_animation_has_one_frame_per_output_cell(name):
    kwargs = figures.ANIMATIONS[name]
    side = DUMOULIN_OUTPUT_SIDES[name]
    assert _arithmetic_output_size(kwargs) == (side, side)
    animation = viz.conv_animation(**kwargs)
    assert isinstance(animation, FuncAnimation)
    assert len(list(animation.new_frame_seq())) == side * side
    assert animation.n_frames == side * side
    assert animation.output_size == (side, side)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(input_size=(5, 7), kernel_size=(3, 2), strides=2, padding="same"),
        dict(input_size=6, kernel_size=2, strides=(1, 3), padding=(0, 1)),
        dict(input_size=8, kernel_size=3, strides=3, padding="full", dilation_rate=2),
        dict(input_size=3, kernel_size=3, strides=2, padding="valid", transposed=True),
        dict(input_size=(2, 3), kernel_size=4, strides=3, padding=(1, 2), transposed=True),
    ],
)
def test_frame_count_matches_arithmetic_for_other_configurations(kwargs):
    h, w = _arithmetic_output_size(kwargs)
    assert viz.conv_animation(**kwargs).n_frames == h * w


@pytest.mark.slow
def test_generator_writes_every_gif_with_one_frame_per_output_cell(written_gifs):
    for name, side in DUMOULIN_OUTPUT_SIDES.items():
        with Image.open(written_gifs / f"{name}.gif") as gif:
            assert gif.n_frames == side * side, name
    assert sorted(p.stem for p in written_gifs.glob("*.gif")) == sorted(figures.ANIMATIONS)


@pytest.mark.slow
def test_generator_prints_one_line_per_file(tmp_path, capsys):
    figures.main([str(tmp_path), "--dpi", "20", "--only", "no_padding_strides", "dilation"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert "no_padding_strides.gif" in lines[0] and "4 frames" in lines[0]


def test_save_gif_keeps_frames_and_interval(tmp_path):
    animation = viz.conv_animation(4, 3, interval=250)
    path = viz.save_gif(animation, tmp_path / "sub" / "small.gif", dpi=20)
    with Image.open(path) as gif:
        assert gif.n_frames == 4
        assert gif.info["duration"] == 250


def test_animation_also_saves_with_matplotlibs_pillow_writer(tmp_path):
    animation = viz.conv_animation(3, 2, strides=2, padding=1)
    animation.save(tmp_path / "plain.gif", writer="pillow", dpi=20)
    with Image.open(tmp_path / "plain.gif") as gif:
        assert gif.n_frames == 4


def test_to_jshtml_and_notebook_display_give_an_html_player():
    animation = viz.conv_animation(3, 2)
    html = animation.to_jshtml()
    assert "<img" in html and "Animation" in html
    assert "<img" in animation._repr_html_()


def _transposed_conv_by_scatter(x, w, strides, padding):
    """Transposed convolution from its definition: each input spreads ``x * w`` on the output.

    ``padding`` is (before, after) of the direct convolution it transposes, per axis; the
    output size comes from Dumoulin & Visin's relation o = s (i - 1) + k - p_before - p_after.
    """
    (s_h, s_w), ((t, b), (left, r)) = strides, padding
    k_h, k_w = w.shape
    out = np.zeros((s_h * (x.shape[0] - 1) + k_h - t - b, s_w * (x.shape[1] - 1) + k_w - left - r))
    for i, j in np.ndindex(x.shape):
        for a, c in np.ndindex(w.shape):
            y, z = i * s_h + a - t, j * s_w + c - left
            if 0 <= y < out.shape[0] and 0 <= z < out.shape[1]:
                out[y, z] += x[i, j] * w[a, c]
    return out


@pytest.mark.parametrize(
    "input_size, kernel_size, strides, padding",
    [(2, 3, 1, 0), (6, 4, 1, 2), (3, 3, 2, 1), ((2, 3), (3, 2), (2, 3), ((0, 1), (1, 0)))],
)
def test_transposed_picture_is_the_equivalent_direct_convolution(
    input_size, kernel_size, strides, padding
):
    # The picture: a stride-1 correlation of the flipped kernel over the drawn grid (inputs in
    # the blue cells, zeros elsewhere) must give the transposed convolution.
    plan = viz._Plan(input_size, kernel_size, strides, padding, 1, transposed=True)
    rng = np.random.default_rng(0)
    x = rng.normal(size=plan.input_size)
    w = rng.normal(size=plan.kernel_size)
    grid = np.zeros(plan.grid_size)
    grid[np.array(plan.kinds) == "input"] = x.ravel()
    flipped = w[::-1, ::-1]
    k_h, k_w = w.shape
    drawn = np.array([
        [np.sum(grid[r:r + k_h, c:c + k_w] * flipped) for c in range(plan.output_size[1])]
        for r in range(plan.output_size[0])
    ])
    reference = _transposed_conv_by_scatter(x, w, plan.strides, plan.pads)
    np.testing.assert_allclose(drawn, reference)


def test_same_padding_pictures_match_keras_layers():
    keras = pytest.importorskip("keras")
    x = np.random.default_rng(1).normal(size=(1, 7, 5, 1)).astype("float32")
    for layer_class, transposed in ((keras.layers.Conv2D, False),
                                    (keras.layers.Conv2DTranspose, True)):
        layer = layer_class(1, 3, strides=2, padding="same", use_bias=False)
        expected = keras.ops.convert_to_numpy(layer(x))[0, :, :, 0]
        plan = viz._Plan((7, 5), 3, 2, "same", 1, transposed=transposed)
        assert plan.output_size == expected.shape
        w = keras.ops.convert_to_numpy(layer.kernel)[:, :, 0, 0]
        grid = np.zeros(plan.grid_size, dtype="float32")
        grid[np.array(plan.kinds) == "input"] = x[0, :, :, 0].ravel()
        kernel = w[::-1, ::-1] if transposed else w
        s_h, s_w = plan.kernel_step
        drawn = np.array([
            [np.sum(grid[r * s_h:r * s_h + 3, c * s_w:c * s_w + 3] * kernel)
             for c in range(plan.output_size[1])]
            for r in range(plan.output_size[0])
        ])
        np.testing.assert_allclose(drawn, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(input_size=3, kernel_size=5), "larger than the padded input"),
        (dict(input_size=5, kernel_size=3, dilation_rate=3), "larger than the padded input"),
        (dict(input_size=5, kernel_size=3, strides=0), "strides"),
        (dict(input_size=5, kernel_size=0), "kernel_size"),
        (dict(input_size=5, kernel_size=3, padding=-1), "padding"),
        (dict(input_size=5, kernel_size=3, padding="half"), "padding"),
        (dict(input_size=5, kernel_size=3, padding=3, transposed=True), "crop"),
    ],
)
def test_bad_configurations_raise_value_errors_that_name_the_argument(kwargs, words):
    with pytest.raises(ValueError, match=words):
        viz.conv_frame(**kwargs)
    with pytest.raises(ValueError, match=words):
        viz.conv_animation(**kwargs)


def test_step_outside_the_output_raises():
    with pytest.raises(ValueError, match="step must be an output cell index in 0..8"):
        viz.conv_frame(5, 3, strides=2, padding=1, step=9)


def test_save_gif_refuses_other_formats(tmp_path):
    animation = viz.conv_animation(3, 2)
    with pytest.raises(ValueError, match=r"\.gif"):
        viz.save_gif(animation, tmp_path / "x.mp4")


def test_unknown_animation_name_raises():
    with pytest.raises(ValueError, match="unknown animation"):
        figures.write_gifs("unused", names=["nope"])


def test_the_inline_player_needs_no_network():
    """matplotlib's player links Font Awesome from a CDN; offline its buttons would be blank."""
    import re

    animation = viz.conv_animation(4, 3)
    html = animation._repr_html_()
    assert not re.findall(r"(?:href|src)=\"https?://", html)
    assert "fa fa-" not in html and "\u25b6" in html  # the play button is a Unicode symbol
    matplotlib.pyplot.close(animation._fig)


@pytest.mark.parametrize("kwargs, argument", [
    (dict(input_size=5, kernel_size=3, strides=1.5), "strides"),
    (dict(input_size=5, kernel_size=(2.5, 2.5)), r"kernel_size\[0\]"),
    (dict(input_size=5.0, kernel_size=3), "input_size"),
    (dict(input_size=5, kernel_size=3, padding=(1, 1.5)), r"padding\[1\]"),
])
def test_sizes_of_the_wrong_type_raise_type_errors_never_rounded(kwargs, argument):
    with pytest.raises(TypeError, match=argument):
        viz.conv_frame(**kwargs)
