"""What the labs teach is true: each fact a student could have learned wrong, pinned.

Every Labs 01-05 test here fails on the old version of the lab (issue: "Labs 01-05 as students,
instructors and graders meet them"); the Lab 09 one pins the relations its prose teaches, within
bands (a training result is never compared with a literal).  Facts are checked against
independent references (Keras layers, NumPy, cnnlab's tested ops), and what the labs *print*
is read from the notebooks the grader executed once per session (``tests/lab_runs.py``), never
by running a lab again.
"""

import re

import keras
import nbformat
import numpy as np
import pytest
from keras import layers

from cnnlab import kernels, ops
from cnnlab.datasets import load_sample_image
from cnnlab.exercise import exercise, judge_record, probe_cases
from cnnlab.models import build_lenet5
from cnnlab.notebooks import exercise_id
from tests.conftest import ROOT


def _markdown(stem: str) -> str:
    nb = nbformat.read(ROOT / "solutions" / f"{stem}.ipynb", as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def _public_statuses(exercise_id_, obj):
    ex = exercise(exercise_id_)
    return {record["case"]: judge_record(ex, record)[0]
            for record in probe_cases(ex, obj, ex.public_cases())}


# ------------------------------------------------------------ Lab 02: the transposed convolution


def unrotated_transpose(y, kernel, input_size):
    """What a student who took 'pad and slide the kernel' literally would write."""
    kernel = np.asarray(kernel, dtype=float)
    return ops.correlate2d(np.pad(np.asarray(y, dtype=float), kernel.shape[0] - 1), kernel)


def rotated_transpose(y, kernel, input_size):
    kernel = np.asarray(kernel, dtype=float)
    return ops.correlate2d(np.pad(np.asarray(y, dtype=float),
                                  [(kernel.shape[0] - 1,) * 2, (kernel.shape[1] - 1,) * 2]),
                           kernel[::-1, ::-1])


def test_a_transposed_convolution_slides_the_kernel_rotated_by_180_degrees():
    rng = np.random.default_rng(0)
    g, w = rng.normal(size=(2, 2)), rng.normal(size=(3, 3))
    deconv = layers.Conv2DTranspose(1, 3, use_bias=False)
    deconv.build((None, 2, 2, 1))
    deconv.set_weights([w[:, :, None, None].astype("float32")])
    keras_out = keras.ops.convert_to_numpy(deconv(g[None, :, :, None].astype("float32")))[0, ..., 0]
    np.testing.assert_allclose(rotated_transpose(g, w, (4, 4)), keras_out, atol=1e-5)
    assert not np.allclose(unrotated_transpose(g, w, (4, 4)), keras_out, atol=1e-3)


def test_lab02_says_rotate_and_its_check_catches_the_unrotated_version():
    text = _markdown("02_conv_arithmetic")
    assert "rotated by 180°" in text
    statuses = _public_statuses("02.conv_transpose", unrotated_transpose)
    assert statuses["asymmetric_kernel_is_rotated"] == "fail"
    assert set(_public_statuses("02.conv_transpose", rotated_transpose).values()) == {"pass"}


@pytest.mark.slow
def test_lab02_prints_that_only_the_rotated_kernel_matches(lab_run):
    printed = lab_run("02").printed()
    assert "pad g, slide the kernel rotated by 180 degrees: True" in printed
    assert "pad g, slide the kernel as it is (wrong):        False" in printed


# ------------------------------------------------------------ Lab 02: dilation, one convention


def test_keras_dilation_is_a_cross_correlation_with_spread_taps():
    """y(i, j) = sum K(m, n) x(i + D m, j + D n): the '+' form, not the flipped '-' form."""
    rng = np.random.default_rng(1)
    x, k, d = rng.normal(size=(9, 9)), rng.normal(size=(3, 3)), 2
    conv = layers.Conv2D(1, 3, dilation_rate=d, use_bias=False)
    conv.build((None, 9, 9, 1))
    conv.set_weights([k[:, :, None, None].astype("float32")])
    keras_out = keras.ops.convert_to_numpy(conv(x[None, :, :, None].astype("float32")))[0, ..., 0]
    plus = np.array([[sum(k[m, n] * x[i + d * m, j + d * n] for m in range(3) for n in range(3))
                      for j in range(5)] for i in range(5)])
    flipped = np.array([[sum(k[m, n] * x[i + 4 - d * m, j + 4 - d * n]
                             for m in range(3) for n in range(3)) for j in range(5)]
                        for i in range(5)])
    np.testing.assert_allclose(plus, keras_out, atol=1e-4)
    assert not np.allclose(flipped, keras_out, atol=1e-2)


def test_lab02_writes_dilation_in_the_cross_correlation_form():
    text = _markdown("02_conv_arithmetic")
    assert r"I(i + Dm,\ j + Dn)" in text
    assert not re.search(r"I\(i\s*-\s*D\s*m", text)


# ------------------------------------------------------------ Lab 02: the effective receptive field


def _erf_table():
    """{(weights, L): (theoretical field, side of the centred square with 90% of the mass)} for
    Lab 02's stacks, by NumPy backpropagation (cnnlab.exercises.lab02's reference), not Keras."""
    from cnnlab.exercises.lab02 import reference_effective_receptive_field

    table = {}
    for weights, channels in (("uniform", 1), ("random", 8)):
        for depth in (2, 4, 8, 16):
            rng = np.random.default_rng(0)
            widths = [1] + [channels] * (depth - 1) + [1]
            kernels = [np.ones((3, 3, widths[i], widths[i + 1])) if weights == "uniform"
                       else rng.normal(size=(3, 3, widths[i], widths[i + 1]))
                       for i in range(depth)]
            erf = reference_effective_receptive_field(kernels, [1] * depth, (41, 41, 1))
            side = next(2 * r + 1 for r in range(21)
                        if erf[20 - r:21 + r, 20 - r:21 + r].sum() >= 0.9)
            table[weights, depth] = (2 * depth + 1, side)
    return table


@pytest.mark.slow
def test_lab02_prints_the_effective_receptive_fields_it_quotes(lab_run):
    table = _erf_table()
    printed = lab_run("02").printed()
    for (weights, depth), (field, side) in table.items():
        line = (f"{weights:8s} {depth:3d} {field:15d} {side:11d} {side / field:11.2f} "
                f"{(side / field) ** 2:11.2f}")
        assert line in printed, line
    assert "effective_receptive_field gives the same map: True" in printed
    text = _markdown("02_conv_arithmetic")
    uniform = {depth: table["uniform", depth] for depth in (4, 8, 16)}
    assert "**{}** of the\ntheoretical **{}** at $L = 4$".format(*uniform[4][::-1]) in text
    for depth in (8, 16):
        field, side = uniform[depth]
        assert f"**{side}** of **{field}** at $L = {depth}$" in text
    ratios = ", ".join(f"{side / field:.2f}" for field, side in uniform.values())
    assert f"**{ratios}**" in text
    assert f"**{(uniform[16][1] / uniform[16][0]) ** 2:.2f}** of the field's area" in text
    (f8, s8), (f16, s16) = table["random", 8], table["random", 16]
    assert f"**{s8}** of {f8} and\n**{s16}** of {f16}" in text
    assert f"(side ratios **{s8 / f8:.2f}** and **{s16 / f16:.2f}**)" in text
    # the path counts the prose quotes: two 3x3 kernels of ones reach the centre of the 5x5
    # field by 9 paths, a corner by 1 (shares of the 81 paths in all)
    from cnnlab.exercises.lab02 import reference_effective_receptive_field

    two = reference_effective_receptive_field([np.ones((3, 3, 1, 1))] * 2, [1, 1], (5, 5, 1))
    assert round(two[2, 2] * 81) == 9 and round(two[0, 0] * 81) == 1
    assert "centre pixel of the $5\\times5$ field is reached by\n9 paths, a corner by 1" in text
    # the relation taught: the 90% square grows slower than the theoretical field
    for weights in ("uniform", "random"):
        ratios = [side / field for field, side in (table[weights, d] for d in (4, 8, 16))]
        assert ratios == sorted(ratios, reverse=True) and ratios[-1] < 0.6


# ------------------------------------------------------------ Lab 03: what pooling damps


def _shift_responses(crop=96, max_shift=4):
    photo = load_sample_image("chelsea", as_gray=True).astype(float) / 255.0
    image = photo[40:40 + crop, 120:120 + crop + max_shift]

    def relative_change(shift, pool):
        a, b = image[:, :image.shape[1] - shift], image[:, shift:]
        fa, fb = ops.correlate2d(a, kernels.SOBEL_X), ops.correlate2d(b, kernels.SOBEL_X)
        if pool > 1:
            fa, fb = ops.pool2d(fa, pool), ops.pool2d(fb, pool)
        return np.linalg.norm(fb - fa) / np.linalg.norm(fa)

    return {pool: [round(relative_change(s, pool), 2) for s in range(max_shift + 1)]
            for pool in (1, 2, 4)}


def test_lab03_quotes_the_damping_it_measures_and_never_says_it_stops():
    measured = _shift_responses()
    text = _markdown("03_pooling_strides_invariance")
    assert "no longer damped" not in text
    conv, pool2, pool4 = measured[1], measured[2], measured[4]
    assert pool4[4] < conv[4]  # still damped when the shift equals the 4x4 window
    for value in (conv[1], pool2[1], pool4[1], *pool4[1:], conv[4], pool2[4]):
        assert f"{value:.2f}" in text, f"{value:.2f} (measured) is not what the lab says"
    assert f"**{pool4[1]:.2f}, {pool4[2]:.2f}, {pool4[3]:.2f}, {pool4[4]:.2f}**" in text


# ------------------------------------------------------------ Lab 03: the max-pooling backward pass


def _tf_pool_gradient(x, g, size, strides=None):
    import tensorflow as tf

    batch = tf.constant(x[None, :, :, None], dtype=tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(batch)
        y = layers.MaxPooling2D(size, strides=strides, dtype="float64")(batch)
        loss = tf.reduce_sum(y[0, :, :, 0] * g)
    return tape.gradient(loss, batch).numpy()[0, :, :, 0]


@pytest.mark.parametrize("shape, size, strides", [((8, 8), 2, None), ((9, 7), 3, None),
                                                  ((9, 9), 3, 2), ((7, 8), 2, 1)])
def test_tensorflow_sends_a_tied_windows_gradient_to_its_first_maximum_and_adds_overlaps(
        shape, size, strides):
    from cnnlab.exercises.lab03 import reference_max_pool2d_backward

    rng = np.random.default_rng(sum(shape) + size)
    for _ in range(5):
        x = rng.integers(0, 3, size=shape).astype(float)          # ties in most windows
        g = rng.normal(size=ops.pool2d(x, size, strides=strides).shape)
        np.testing.assert_allclose(reference_max_pool2d_backward(x, g, size, strides),
                                   _tf_pool_gradient(x, g, size, strides), atol=1e-12)


def _window_argmax_backward(choose, add=True):
    def backward(x, upstream_grad, size, strides=None):
        x, g = np.asarray(x, dtype=float), np.asarray(upstream_grad, dtype=float)
        strides = size if strides is None else strides
        dx = np.zeros_like(x)
        for i in range(g.shape[0]):
            for j in range(g.shape[1]):
                window = x[i * strides:i * strides + size, j * strides:j * strides + size]
                for (a, b), share in choose(window):
                    r, c = i * strides + a, j * strides + b
                    dx[r, c] = dx[r, c] + share * g[i, j] if add else share * g[i, j]
        return dx
    return backward


def _first(window):
    return [(np.unravel_index(np.argmax(window), window.shape), 1.0)]


def _last(window):
    flat = window.size - 1 - np.argmax(window.ravel()[::-1])
    return [(np.unravel_index(flat, window.shape), 1.0)]


def _split(window):
    winners = np.argwhere(window == window.max())
    return [(tuple(w), 1.0 / len(winners)) for w in winners]


def test_lab03_states_the_tie_rule_and_its_check_enforces_it():
    text = _markdown("03_pooling_strides_invariance")
    assert "first maximum in row-major order" in text
    assert "Labs 10 (DeConvNet's switches) and 11 (SegNet's unpooling" in text
    assert set(_public_statuses("03.max_pool2d_backward",
                                _window_argmax_backward(_first)).values()) == {"pass"}
    for wrong in (_window_argmax_backward(_last), _window_argmax_backward(_split)):
        assert _public_statuses("03.max_pool2d_backward",
                                wrong)["ties_go_to_the_first_maximum"] == "fail"
    overwrite = _public_statuses("03.max_pool2d_backward", _window_argmax_backward(_first, False))
    assert overwrite["overlapping_3x3_stride_2_add_up"] == "fail"
    assert overwrite["random_6x6_size_2"] == "pass"


@pytest.mark.slow
def test_lab03_prints_that_its_backward_pass_matches_numeric_and_keras_gradients(lab_run):
    printed = lab_run("03").printed()
    errors = re.findall(r"relative error against the numeric gradient (\S+); equals Keras' "
                        r"gradient: True", printed)
    assert len(errors) == 2 and all(float(e) < 1e-7 for e in errors), printed
    assert "equals max_pool2d_backward on ties: True" in printed
    assert "is not what Keras does: True" in printed


# ------------------------------------------------------------ Lab 04: LeNet-5's receptive fields


def test_lenet5_receptive_fields_follow_its_subsampling_layers():
    import cnnlab

    rows = {row["name"]: row["receptive_field"] for row in cnnlab.summary(build_lenet5()).rows}
    assert [tuple(rows[n]) for n in ("c1", "s2", "c3", "s4", "c5")] == [
        (5, 5), (6, 6), (14, 14), (16, 16), (32, 32)]


@pytest.mark.slow
def test_lab04_prints_the_true_receptive_fields_and_dates_lenet5_1998(lab_run):
    assert "receptive fields: C1 5, S2 6, C3 14, S4 16, C5 32" in lab_run("04").printed()
    text = _markdown("04_mlp_to_convnet")
    assert "1989/1998" not in text and "Haffner, 1998" in text


# ------------------------------------------------------------ Lab 01: luminance, not the mean


def test_a_filter_with_luminance_weighted_slices_sees_the_grayscale_image():
    rng = np.random.default_rng(2)
    rgb = rng.uniform(size=(8, 9, 3))
    luminance = np.array([0.2125, 0.7154, 0.0721])
    sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=float)
    bank = (sobel[:, :, None] * luminance)[:, :, :, None]
    np.testing.assert_allclose(ops.conv2d(rgb, bank)[:, :, 0],
                               ops.correlate2d(rgb @ luminance, sobel), atol=1e-12)
    mean_bank = np.repeat(sobel[:, :, None, None] / 3, 3, axis=2)
    assert not np.allclose(ops.conv2d(rgb, mean_bank)[:, :, 0],
                           ops.correlate2d(rgb @ luminance, sobel), atol=1e-3)


@pytest.mark.slow
def test_lab01_edge_filter_is_on_the_luminance(lab_run):
    printed = lab_run("01").printed()
    assert "feature map 1 equals the Sobel filter of the grayscale image: True" in printed


@pytest.mark.parametrize("name", ["conv2d_multi", "make_conv_layer"])
def test_lab01_exercise_parameters_are_called_kernel_not_kernels(name):
    nb = nbformat.read(ROOT / "solutions" / "01_convolutions_by_hand.ipynb", as_version=4)
    cell = next(c for c in nb.cells if exercise_id(c) and f"def {name}(" in c.source)
    assert f"def {name}(x, kernel," in cell.source or f"def {name}(kernel," in cell.source


# ------------------------------------------- Lab 09: digits 0-4 -> 5-9, what its prose claims


def _digit_table(printed: str) -> dict:
    """``{labels per class: (from scratch %, transferred %)}`` and ``"all"``: the head's %."""
    rows = {int(n): (int(a), int(b)) for n, a, b in
            re.findall(r"^\s+(\d+)\s+(\d+)%(?: ± \d+%)?\s+(\d+)%", printed, re.M)}
    rows["all"] = int(re.search(r"all [\d,]+:\s+(\d+)%\s+\(head on the frozen body\)",
                                printed).group(1))
    return rows


#: How far another CPU's smoke run may land from the figures the prose quotes ("about 70 %"),
#: in points of accuracy: one seed, about 500 test digits (one point is five digits), and
#: AVX2 against AVX-512 kernels change the last digits of every weight.
DIGIT_BAND = 12


@pytest.mark.slow
def test_lab09_digit_transfer_shows_the_relations_its_prose_teaches(lab_run):
    # Training results are pinned as the relations the lab teaches, within bands: never as the
    # literal percentages of one machine's run (issue 19: 70 % here, 71 % in the prose there).
    printed = lab_run("09").printed()
    table = _digit_table(printed)
    (scratch_10, transferred_10), (scratch_50, transferred_50) = table[10], table[50]
    assert transferred_10 > scratch_10, "10 labels per class: transfer must beat scratch"
    assert scratch_50 > transferred_50, "50 labels per class: scratch must beat transfer"
    assert table["all"] < scratch_50, "the frozen features cap the head below scratch at 50"
    assert min(scratch_10, transferred_10) > 20 + 10, "above chance (20 %) with 10 labels"
    # the printed reading agrees with the table it reads
    assert f"10 labels per class: transferred wins ({transferred_10}% transferred" in printed
    assert f"50 labels per class: from scratch wins ({transferred_50}% transferred" in printed
    # the prose quotes rounded figures and says where they came from; a re-run lands near them
    flat = " ".join(_markdown("09_transfer_learning").split())
    quoted = re.search(r"wins: about (\d+) % against about (\d+) % for the same ResNet from "
                       r"scratch in the smoke profile \(figures from a 2-core CPU", flat)
    assert quoted, "the prose must quote the smoke figures as 'about N %' and name the machine"
    about_50 = re.search(r"about (\d+) % from scratch against about (\d+) % transferred", flat)
    about_all = re.search(r"features reaches about (\d+) %", flat)
    assert about_50 and about_all
    pairs = [(transferred_10, quoted.group(1)), (scratch_10, quoted.group(2)),
             (scratch_50, about_50.group(1)), (transferred_50, about_50.group(2)),
             (table["all"], about_all.group(1))]
    for measured, about in pairs:
        assert abs(measured - int(about)) <= DIGIT_BAND, (measured, about)
    assert not re.search(r"\b\d+ % against \d+ % for the same", flat), "an exact literal again"


# ------------------------------------------------------------ Lab 05: the dense block


def _densenet121_block_params(stage):
    """Parameters of DenseNet-121's dense block ``stage`` (2..5), from Keras' own model."""
    reference = keras.applications.DenseNet121(weights=None)
    return sum(layer.count_params() for layer in reference.layers
               if layer.name.startswith(f"conv{stage}_block"))


@pytest.mark.slow
def test_lab05_prints_the_dense_block_counts_its_prose_quotes(lab_run):
    printed = lab_run("05").printed()
    text = _markdown("05_architectures_and_cost")
    plain_first = sum(4 * c + 9 * c * 32 for c in range(64, 256, 32))  # BN + 3x3, by hand
    plain_third = sum(4 * c + 9 * c * 32 for c in range(256, 1024, 32))
    b_first, b_third = _densenet121_block_params(2), _densenet121_block_params(4)
    assert (plain_first, b_first) == (252_288, 338_304)
    assert f"64 -> 256 channels, {plain_first:,} parameters" in printed
    assert f"first block : plain {plain_first:,}, DenseNet-B {b_first:,} parameters" in printed
    assert f"third block : plain {plain_third:,}, DenseNet-B {b_third:,} parameters" in printed
    assert f"DenseNet-B block: {b_first:,} parameters, 1.04 G MACs" in printed
    assert f"plain      block: {plain_first:,} parameters, 0.78 G MACs" in printed
    first_layer, sixth_layer = 4 * 64 + 9 * 64 * 32, 4 * 224 + 9 * 224 * 32
    assert re.search(rf"\n +1 +64 +96 +{first_layer:,} ", printed)
    assert re.search(rf"\n +6 +224 +256 +{sixth_layer:,} ", printed)
    for quoted in (f"{first_layer:,} parameters for the first layer",
                   f"{sixth_layer:,} for the sixth", f"with {plain_first:,}\nparameters",
                   f"({9 * 256 * 256:,} weights)", f"({b_first:,} parameters, 1.04 G MACs "
                   "against 0.78 G)", f"{plain_third / 1e6:.2f} M parameters plain and "
                   f"{b_third / 1e6:.2f} M with bottlenecks"):
        assert quoted in text, quoted
    # per layer reading c channels: 292 c plain; 132 c + 37,376 with the 1x1 to 4k = 128
    fixed = 4 * 128 + 9 * 128 * 32
    assert f"plain 292c, DenseNet-B 132c + {fixed:,}; equal at c = {fixed / 160:.1f}" in printed
    assert f"132\\,c + {fixed // 1000}{{,}}{fixed % 1000:03d}$" in text
    assert f"fewer only from about {round(fixed / 160)}\nchannels on" in text


# ------------------------------------------------------------ Lab 10: the top-9 patches


@pytest.mark.slow
def test_lab10_prints_the_top_patches_numbers_its_prose_quotes(lab_run):
    from cnnlab.datasets import SAMPLE_IMAGES, load_sample_image

    printed = lab_run("10").printed()
    text = _markdown("10_looking_inside")
    # by hand: 224x224 tiles on a grid, per photo
    sizes = [load_sample_image(name).shape[:2] for name in SAMPLE_IMAGES]
    per_photo = [(h // 224) * (w // 224) for h, w in sizes]
    tiles, photos = sum(per_photo), sum(1 for n in per_photo if n)
    assert f"{tiles} tiles of 224x224 from {photos} photos" in printed
    assert f"{tiles} tiles of {photos} real photos" in text
    assert f"{tiles} photo tiles" in text
    # block3b_add: stem 3x3/2, then the depthwise 3x3, 3x3/2, 3x3, 5x5/2, 5x5 of blocks 1a-3b
    size, jump = 1, 1
    for kernel, stride in [(3, 2), (3, 1), (3, 2), (3, 1), (5, 2), (5, 1)]:
        size, jump = size + (kernel - 1) * jump, jump * stride
    assert (size, jump) == (67, 8)
    assert (f"block3b_add: maps (28, 28, 40), receptive field {size}x{size} pixels, "
            f"jump {jump}, start 7") in printed
    assert "28x28 units in each of 40\nchannels; a unit sees a 67x67-pixel window" in text
    assert "the window 8 pixels further" in text
    # the prose reads channel 9's grid: eight of nine from hubble_deep_field, the ninth gravel
    assert "channel  9: hubble_deep_field x8, gravel x1;" in printed
    assert "eight of its nine crops are galaxies and stars of `hubble_deep_field`, the\nninth " \
           "is gravel" in text
    assert printed.count("finds the same nine crops") == 4


@pytest.mark.slow
def test_lab10_shows_the_top_patches_as_a_png_in_both_notebooks(lab_run):
    run = lab_run("10")
    for which in ("solution", "untouched"):
        cell = next(c for c in run.executed(which).cells
                    if c.cell_type == "code" and "plot_top_patches(top9)" in c.source)
        kinds = [kind for output in cell.outputs for kind in output.get("data", {})]
        assert "image/png" in kinds, (which, kinds)


# --------------------------------------- Lab 09: the two phases, a tenth of the rate, BN still


@pytest.mark.slow
def test_lab09_two_phases_print_a_tenth_of_the_rate_and_batchnorm_statistics_that_never_move(
        lab_run):
    # the prose: phase 2 at "a tenth" of the head's rate, a new Adam, BatchNorm frozen so its
    # moving statistics stay as they were; your function and fine_tune both print it
    printed = lab_run("09").printed()
    mine = re.search(r"BatchNorm moving statistics moved by at most (\S+); learning rate at the "
                     r"end (\S+);", printed)
    assert mine, "the two-phase cell prints the statistics' change and the final rate"
    assert float(mine.group(1)) == 0.0
    assert float(mine.group(2)) == pytest.approx(1e-3 / 10)
    rates = re.search(r"fine_tune: (\d+) head epochs, (\d+) fine-tuning epochs in \d+ s; "
                      r"learning rates \[([^\]]*)\]", printed)
    assert rates
    values = [float(v) for v in rates.group(3).split(",")]
    head, fine = int(rates.group(1)), int(rates.group(2))
    assert head >= 1 and fine >= 1 and len(values) == head + fine
    assert values[:head] == [1e-3] * head and values[head:] == pytest.approx([1e-4] * fine)
    flat = " ".join(_markdown("09_transfer_learning").split())
    assert r"$\text{head\_lr} / 10$" in flat and "Compile **again** with a new `Adam(lr / 10)`" \
        in flat
