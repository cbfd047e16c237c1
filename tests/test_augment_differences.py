"""Each deliberate difference from Keras 2 listed in ``cnnlab.augment``'s docstring, pinned.

Every case checks cnnlab's behaviour and, where the legacy copy of Keras 2 still runs, that
the legacy copy really does the other thing, so a test here fails if cnnlab starts behaving
like the bug (or if the reference stops showing it, which would make the pin meaningless).
"""

import numpy as np
import pytest
from PIL import Image

legacy = pytest.importorskip("keras.src.legacy.preprocessing.image")

import cnnlab.augment as augment  # noqa: E402
from cnnlab.augment import ImageDataGenerator  # noqa: E402

# The phrase of each row of the table (and of the paragraph after it) that a test pins.
PINNED = {
    "centre": "about the true centre",
    "wrap": "period ``n``, as documented",
    "shift_axes": "``height_shift_range`` moves rows",
    "corrupt_file": "every file is opened when the iterator is",
    "fill_mode_checked": "every argument is checked in the constructor",
    "empty_directory": "``ValueError`` naming the folder",
    "global_seed": "the global",
    "binary_three_classes": "binary needs exactly 2",
    "constant_edge": "the edge is anti-aliased",
    "spline_orders": "SciPy's spline orders 2-5 are not implemented",
    "module_functions": "the module-level functions",
}


def test_every_pinned_difference_is_in_the_module_docstring():
    doc = " ".join(augment.__doc__.split())
    missing = [key for key, phrase in PINNED.items() if " ".join(phrase.split()) not in doc]
    assert missing == []


def _ramp(height, width, channels=1):
    return np.arange(height * width * channels, dtype=np.float32).reshape(
        height, width, channels)


def test_centre_rotation_of_a_non_square_image_is_about_its_true_centre():
    x = _ramp(8, 14)
    half_turn = x[::-1, ::-1]
    gen = ImageDataGenerator(fill_mode="constant")
    np.testing.assert_allclose(gen.apply_transform(x, {"theta": 180}), half_turn, atol=1e-3)
    ours = augment.apply_affine_transform(x, theta=180, row_axis=0, col_axis=1,
                                          channel_axis=2, fill_mode="constant")
    np.testing.assert_allclose(ours, half_turn, atol=1e-3)
    keras2 = legacy.ImageDataGenerator(fill_mode="constant").apply_transform(x, {"theta": 180})
    assert np.abs(keras2 - half_turn).max() > 1  # Keras 2 swaps the centre's row and column


def test_wrap_repeats_with_period_n():
    x = _ramp(6, 9, 2)
    gen = ImageDataGenerator(fill_mode="wrap")
    expected = np.roll(x, -3, axis=1)  # tx=3 reads 3 columns further on, wrapping round
    np.testing.assert_allclose(gen.apply_transform(x, {"tx": 3}), expected, atol=1e-3)
    ours = augment.apply_affine_transform(x, tx=3, row_axis=0, col_axis=1, channel_axis=2,
                                          fill_mode="wrap")
    np.testing.assert_allclose(ours, expected, atol=1e-3)
    keras2 = legacy.ImageDataGenerator(fill_mode="wrap").apply_transform(x, {"tx": 3})
    assert np.abs(keras2 - expected).max() > 1  # SciPy's "wrap": period n - 1


def test_shift_ranges_move_their_own_axes():
    gen = ImageDataGenerator(height_shift_range=[4])  # 4 pixels, random sign
    ours = gen.get_random_transform((20, 40, 3), seed=11)
    keras2 = legacy.ImageDataGenerator(height_shift_range=[4]).get_random_transform(
        (20, 40, 3), seed=11)
    assert ours["tx"] == 0 and ours["ty"] != 0
    assert keras2["ty"] == 0 and keras2["tx"] != 0  # the height shift went across the width
    assert ours["ty"] == pytest.approx(keras2["tx"])  # the same draw, on its own axis
    x = _ramp(20, 40)
    moved = gen.apply_transform(x, ours)
    rows = int(round(ours["ty"]))
    inner = slice(abs(rows), 20 - abs(rows))
    np.testing.assert_allclose(moved[inner], np.roll(x, -rows, axis=0)[inner], atol=1e-3)
    np.random.seed(0)
    shifted = augment.random_shift(x, 0.0, 0.3, row_axis=0, col_axis=1, channel_axis=2)
    np.testing.assert_allclose(shifted[:, 0], shifted[:, 5] - 5, atol=1e-3)  # columns intact


def _folder(root, classes, per_class=2):
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(np.full((8, 8, 3), 30 * i, np.uint8)).save(root / name / f"{i}.png")
    return root


def test_a_corrupt_file_is_named_when_the_iterator_is_built(tmp_path):
    root = _folder(tmp_path / "data", ["a", "b"])
    (root / "a" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.warns(UserWarning, match="broken.png"):
        it = ImageDataGenerator().flow_from_directory(root, target_size=(8, 8))
    assert it.samples == 4
    with pytest.raises(ValueError, match="broken.png"):
        ImageDataGenerator().flow_from_directory(root, on_error="raise")


def test_an_invalid_fill_mode_fails_in_the_constructor():
    with pytest.raises(ValueError, match="fill_mode='mirror'"):
        ImageDataGenerator(fill_mode="mirror")
    legacy.ImageDataGenerator(fill_mode="mirror")  # Keras 2 fails only at the first batch


def test_an_empty_directory_is_an_error_naming_it(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no class subfolders.*empty"):
        ImageDataGenerator().flow_from_directory(tmp_path / "empty")
    keras2 = legacy.ImageDataGenerator().flow_from_directory(tmp_path / "empty")
    assert keras2.samples == 0


def test_flow_seed_never_touches_numpys_global_generator():
    x = np.random.RandomState(0).rand(8, 6, 6, 3)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    it = ImageDataGenerator(rotation_range=30).flow(x, batch_size=4, seed=5)
    it[0], next(it), it[1]
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    legacy.ImageDataGenerator(rotation_range=30).flow(x, batch_size=4, seed=5)[0]
    assert not np.array_equal(np.random.get_state()[1], before)  # Keras 2 reseeded it


def test_binary_class_mode_with_three_classes_is_an_error(tmp_path):
    root = _folder(tmp_path / "three", ["a", "b", "c"])
    with pytest.raises(ValueError, match="exactly 2 classes, found 3"):
        ImageDataGenerator().flow_from_directory(root, class_mode="binary", target_size=(8, 8))
    keras2 = legacy.ImageDataGenerator().flow_from_directory(
        root, class_mode="binary", target_size=(8, 8), shuffle=False)
    assert sorted(set(keras2[0][1].tolist())) == [0.0, 1.0, 2.0]


def test_constant_fill_blends_cval_in_at_the_edge_where_scipy_stair_steps():
    x = np.ones((3, 3, 3))
    kwargs = dict(theta=45, row_axis=0, col_axis=1, channel_axis=2, fill_mode="constant")
    ours = augment.apply_affine_transform(x, **kwargs)
    keras2 = legacy.apply_affine_transform(x, **kwargs)
    assert keras2[0, 0, 0] == 0.0
    assert ours[0, 0, 0] == pytest.approx(2 - np.sqrt(2), abs=1e-5)  # weight of the inside
    np.testing.assert_allclose(ours[1], keras2[1], atol=1e-6)  # away from the corners: same


def test_spline_orders_above_one_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="interpolation_order=3.*0 \\(nearest\\)"):
        ImageDataGenerator(interpolation_order=3)
    with pytest.raises(ValueError, match="interpolation_order=2.*1 \\(bilinear"):
        augment.random_rotation(np.zeros((1, 4, 4)), 10, interpolation_order=2)
