"""Facts put right in the labs' prose (issue 15, section 3), pinned on the solution notebooks.

Each test fails on the old wording and passes on the new: the wrong claim is gone, the right one
is there, and where the prose quotes a number or a relation, the code that prints it is there
too (and, where it can be checked without running a lab, the relation is checked numerically).
"""

import re

import nbformat
import numpy as np

from cnnlab import kernels
from tests.conftest import ROOT


def _cells(stem: str, cell_type: str) -> list[str]:
    nb = nbformat.read(ROOT / "solutions" / f"{stem}.ipynb", as_version=4)
    return [c.source for c in nb.cells if c.cell_type == cell_type]


def _flat(text: str) -> str:
    return " ".join(text.split())


def _one_cell(cells: list[str], needle: str) -> str:
    hits = [c for c in cells if needle in c]
    assert len(hits) == 1, f"expected one cell containing {needle!r}, found {len(hits)}"
    return hits[0]


# ------------------------------------------------------------------ Lab 10: Grad-CAM and CAM


def test_lab10_says_grad_cam_is_cam_up_to_the_pooling_factor_and_the_relu():
    markdown = _cells("10_looking_inside", "markdown")
    text = _flat("\n".join(markdown))
    assert "exactly CAM" not in text
    assert "Grad-CAM is CAM." not in text, "the recap must say: up to 1/Z and the ReLU"
    assert r"Grad-CAM is CAM up to that factor and the ReLU" in text
    cell = _flat(_one_cell(markdown, "Zhou et al., 2016"))
    assert "1/Z" in cell and "ReLU" in cell
    assert r"\operatorname{ReLU}(M_c / Z)" in cell
    assert "Z = h \\times w = 49" in cell
    code = _one_cell(_cells("10_looking_inside", "code"), "EGYPTIAN_CAT] / (h * w)")
    # the lab prints Z (the 49 the prose quotes) and compares ReLU(CAM / Z) with Grad-CAM
    assert 'f"Z = h * w = {h * w}' in code
    assert "np.maximum(cam / (h * w), 0.0) - cams['chelsea']" in code


def test_grad_cam_of_a_linear_head_is_relu_of_cam_over_z():
    rng = np.random.default_rng(0)
    h, w, k = 7, 7, 16
    activations, weights = rng.normal(size=(h, w, k)), rng.normal(size=k)
    grad_cam = np.maximum((activations * weights / (h * w)).sum(axis=-1), 0.0)
    cam = (activations * weights).sum(axis=-1)
    np.testing.assert_allclose(grad_cam, np.maximum(cam / (h * w), 0.0))
    assert (cam < 0).any() and not np.allclose(grad_cam, cam), "not exactly CAM"


# ------------------------------------------------------------------ Lab 01: sharpen


def test_sharpen_is_identity_minus_the_tables_laplacian():
    np.testing.assert_array_equal(kernels.SHARPEN, kernels.IDENTITY - kernels.EDGE_LAPLACIAN_4)
    np.testing.assert_array_equal(kernels.EDGE_LAPLACIAN_4, [[0, 1, 0], [1, -4, 1], [0, 1, 0]])
    assert not np.array_equal(kernels.SHARPEN, kernels.IDENTITY + kernels.EDGE_LAPLACIAN_4)


def test_lab01_says_sharpen_is_identity_minus_the_laplacian_and_prints_it():
    text = _flat("\n".join(_cells("01_convolutions_by_hand", "markdown")))
    assert "identity plus a Laplacian" not in text
    assert "identity **minus** the table's Laplacian" in text
    assert "`SHARPEN = IDENTITY - EDGE_LAPLACIAN_4`" in text
    code = _one_cell(_cells("01_convolutions_by_hand", "code"), '"SHARPEN", "BOX_BLUR"')
    assert ("np.array_equal(kernels.SHARPEN, kernels.IDENTITY - kernels.EDGE_LAPLACIAN_4)"
            in _flat(code))


# ------------------------------------------------------------------ Lab 02: relative error


def _relative_error_from_lab02():
    code = _one_cell(_cells("02_conv_arithmetic", "code"), "def relative_error")
    source = re.search(r"def relative_error\(a, n\):\n(?:    .*\n?)+", code).group(0)
    namespace = {"np": np}
    exec(source, namespace)  # noqa: S102 - the lab's own three-line helper
    return namespace["relative_error"]


def test_lab02_uses_one_relative_error_in_its_text_and_its_code():
    markdown = _cells("02_conv_arithmetic", "markdown")
    definitions = [c for c in markdown if "|a - n|" in c]
    assert definitions and all(r"|a - n| / \max(|a|, |n|)" in c for c in definitions)
    assert not any("|a| + |n|" in c for c in markdown)
    codes = [c for c in _cells("02_conv_arithmetic", "code") if "relative_error" in c]
    assert len([c for c in codes if "def relative_error" in c]) == 1
    assert not any("np.abs(a) + np.abs(n)" in c for c in codes)
    relative_error = _relative_error_from_lab02()
    a, n = np.array([1.0, -2.0, 3.0]), np.array([1.5, -2.0, 2.0])
    expected = np.max(np.abs(a - n) / np.maximum(np.abs(a), np.abs(n)))
    assert relative_error(a, n) == expected          # |a-n| / max(|a|, |n|): 1/3
    assert relative_error(np.zeros(2), np.zeros(2)) == 0.0


def test_lab02_has_no_orphaned_sentence_in_the_dilation_section():
    cell = _one_cell(_cells("02_conv_arithmetic", "markdown"), "## 6. Dilation")
    paragraphs = [p.strip() for p in cell.split("\n\n") if p.strip()]
    assert not [p for p in paragraphs if re.match(r"so\b", p)], "a paragraph starts mid-sentence"
    assert "kernel covers $K_{\\text{eff}} = (K-1)D + 1$ pixels" in _flat(cell)


# ------------------------------------------------------------------ Lab 07: L2 vs weight decay


def test_keras_l2_of_half_the_weight_decay_gives_the_same_gradient():
    import keras

    weight_decay, w, h = 0.0025, np.array([0.3, -1.2, 2.0]), 1e-6
    penalty = keras.regularizers.L2(weight_decay / 2)

    def value(v):
        return float(keras.ops.convert_to_numpy(penalty(keras.ops.convert_to_tensor(v))))

    gradient = [(value(w + h * e) - value(w - h * e)) / (2 * h) for e in np.eye(len(w))]
    np.testing.assert_allclose(gradient, weight_decay * w, rtol=1e-3)


def test_lab07_uses_keras_l2_00125_for_the_slides_weight_decay_00025():
    markdown = _cells("07_training_convnets_well", "markdown")
    code = "\n".join(_cells("07_training_convnets_well", "code"))
    assert "l2_on_kernels_only(net, 0.00125)" in code
    assert not re.search(r"l2_on_kernels_only\([^)]*0\.0025\)", code)
    assert not re.search(r"l2_on_kernels_only\([^)]*0\.0025\)", "\n".join(markdown))
    regularization = _flat(_one_cell(markdown, "### Regularization: Dropout"))
    assert "$+\\,0.0025 \\sum w^2$" not in regularization
    assert "0.0025 / 2 = 0.00125" in regularization and "weight_decay" in regularization
    table = _one_cell(markdown, "| +regularization |")
    assert "L2 0.00125 on kernels" in table and "L2 0.0025 on kernels" not in table
    # the prose quotes the penalty of the initial weights: the lab prints it
    assert 'print(f"L2 penalty of the initial weights: {start_penalty:.2f} "' in code
    assert "about 3.5 at the start" not in _flat("\n".join(markdown))
    assert "about 1.7 for the initial weights" in _flat("\n".join(markdown))


# ------------------------------------------------------------------ Lab 08: the rocket


def test_lab08_does_not_put_the_rocket_outside_imagenet():
    from cnnlab.pretrained import imagenet_class_names

    text = _flat("\n".join(_cells("08_pretrained_convnets", "markdown")))
    assert "none for a rocket" not in text
    assert not re.search(r"(not in|outside) ImageNet", text)
    cell = _flat(_one_cell(_cells("08_pretrained_convnets", "markdown"), "Read the answers"))
    names = {name.split(",")[0] for name in imagenet_class_names()}
    named = [c for c in ("missile", "projectile", "space shuttle") if f"`{c}`" in cell]
    assert named and all(c in names for c in named)


# ------------------------------------------------------------------ Lab 09: a tenth for fine-tuning


def test_lab09_does_not_cite_alexnet_for_the_fine_tuning_rate():
    cell = _flat(_one_cell(_cells("09_transfer_learning", "markdown"), "### The two phases"))
    assert "Krizhevsky" not in cell and "AlexNet" not in cell
    assert "use a smaller learning rate when fine tuning" in cell
    assert "common choice in practice" in cell
