"""What the labs teach is true: each fact a student could have learned wrong, pinned.

Every Labs 01-05 test here fails on the old version of the lab (issue: "Labs 01-05 as students,
instructors and graders meet them"); the Lab 09 one pins the relations its prose teaches, within
bands (a training result is never compared with a literal).  Facts are checked against
independent references (Keras layers, NumPy, cnnlab's tested ops), and what the labs *print*
is read from the notebooks the grader executed once per session (``tests/lab_runs.py``), never
by running a lab again.
"""

import re
from pathlib import Path

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

ROOT = Path(__file__).resolve().parent.parent


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


# ------------------------------------------------------------ Lab 04: LeNet-5's receptive fields


def test_lenet5_receptive_fields_follow_its_subsampling_layers():
    import cnnlab

    rows = {row["name"]: row["receptive_field"] for row in cnnlab.summary(build_lenet5()).rows}
    assert [tuple(rows[n]) for n in ("c1", "s2", "c3", "s4", "c5")] == [
        (5, 5), (6, 6), (14, 14), (16, 16), (32, 32)]


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


# --------------------------------------- Lab 09: the two phases, a tenth of the rate, BN still


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
