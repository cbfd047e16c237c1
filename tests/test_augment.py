"""cnnlab.augment against Keras 3's legacy ImageDataGenerator (the peer) and NumPy/SciPy."""

import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import cnnlab  # noqa: F401 - quiets TensorFlow before keras is imported
import keras
import numpy as np
import pytest
import scipy.ndimage
import skimage.data
from keras.src.legacy.preprocessing.image import ImageDataGenerator as LegacyGenerator
from PIL import Image

from cnnlab.augment import ImageDataGenerator, transform_matrix
from tests.conftest import ROOT

LECTURE = dict(rotation_range=40, width_shift_range=0.2, height_shift_range=0.2,
               shear_range=0.2, zoom_range=0.2, horizontal_flip=True, channel_shift_range=9,
               fill_mode="nearest")
FILL_MODES = ("nearest", "reflect", "wrap", "constant")
# Transforms without shifts (their axes differ from legacy's on purpose), with every other
# key, on square photos (where legacy's centre is right).
TRANSFORMS = [
    {"theta": 23.0},
    {"shear": 12.0, "zx": 0.85, "zy": 1.15},
    {"theta": -31.0, "shear": 5.0, "zx": 1.1, "zy": 0.9, "flip_horizontal": True,
     "channel_shift_intensity": 20.0},
    {"theta": 75.0, "flip_vertical": True, "brightness": 1.3},
]


def crops(name, size=64, count=1, step=37):
    photo = getattr(skimage.data, name)()
    return np.stack([photo[60 + i * step:60 + i * step + size, 80 + i * step:80 + i * step + size]
                     for i in range(count)])


@pytest.fixture(scope="module")
def photos():
    return {name: crops(name)[0] for name in ("astronaut", "chelsea", "coffee")}


@pytest.fixture(scope="module")
def photo_batch():
    x = np.concatenate([crops(name, count=6, step=25)
                        for name in ("astronaut", "chelsea", "coffee")])
    y = np.repeat(np.arange(3), 6)
    order = np.random.default_rng(0).permutation(len(x))
    return x[order], y[order]


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    """train/<class>/*.png|jpg written with Pillow from real photos (48 x 40, RGB)."""
    root = tmp_path_factory.mktemp("images") / "train"
    for name in ("astronaut", "chelsea", "coffee"):
        folder = root / name
        folder.mkdir(parents=True)
        for i, image in enumerate(crops(name, size=48, count=5, step=23)):
            picture = Image.fromarray(image[:, :40])
            picture.save(folder / (f"{i}.png" if i % 2 else f"{i}.jpg"), quality=95)
    return root


def source_coordinates(params, height, width):
    """Where each output pixel reads from, by the (independently tested) matrix."""
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    points = np.stack([rows.ravel(), cols.ravel(), np.ones(rows.size)])
    src = transform_matrix(params, (height, width)) @ points
    return src[0].reshape(height, width), src[1].reshape(height, width)


def comparable_to_legacy(fill_mode, src_r, src_c, n):
    """Pixels away from the edge band (and, for wrap, inside the image: legacy's period is off)."""
    eps = 1e-3

    def inside(v):
        return (v >= -eps) & (v <= n - 1 + eps)

    def far_outside(v):
        return (v <= -1 - eps) | (v >= n + eps)

    if fill_mode == "nearest":
        return np.ones_like(src_r, dtype=bool)
    if fill_mode == "wrap":
        return inside(src_r) & inside(src_c)
    both_inside = inside(src_r) & inside(src_c)
    if fill_mode == "constant":
        return both_inside | far_outside(src_r) | far_outside(src_c)
    return (inside(src_r) | far_outside(src_r)) & (inside(src_c) | far_outside(src_c))


# ------------------------------------------------------------------------------------------
# Pixels: against the legacy generator and against an independent reference
# ------------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("fill_mode", FILL_MODES)
def test_apply_transform_matches_legacy_on_photos_for_every_fill_mode(photos, fill_mode):
    ours = ImageDataGenerator(fill_mode=fill_mode, cval=40.0)
    legacy = LegacyGenerator(fill_mode=fill_mode, cval=40.0)
    for name, photo in photos.items():
        x = photo.astype("float32")
        for params in TRANSFORMS:
            if fill_mode == "wrap":  # the shift's clip range is the whole image's min/max,
                params = {k: v for k, v in params.items()  # and wrap's outside differs
                          if k != "channel_shift_intensity"}
            mine, theirs = ours.apply_transform(x, params), legacy.apply_transform(x, params)
            keep = comparable_to_legacy(fill_mode, *source_coordinates(params, 64, 64), 64)
            assert keep.mean() > 0.5, "the comparison must cover most of the image"
            diff = np.abs(mine - theirs)[keep]
            assert diff.max() <= 1.0, (name, params, diff.max())
            assert np.mean(diff) < 0.05, (name, params)


@pytest.mark.parametrize("fill_mode", FILL_MODES)
def test_every_pixel_matches_bilinear_on_a_padded_copy(photos, fill_mode):
    """Independent reference: np.pad with the fill mode's meaning, then SciPy's bilinear."""
    pad_mode = {"nearest": "edge", "reflect": "symmetric", "wrap": "wrap",
                "constant": "constant"}[fill_mode]
    x = photos["coffee"].astype("float64")
    gen = ImageDataGenerator(fill_mode=fill_mode, cval=40.0)
    params = {"theta": 33.0, "tx": 7.5, "ty": -4.25, "shear": 9.0, "zx": 1.2, "zy": 0.9}
    pad = 80
    extra = {"constant_values": 40.0} if pad_mode == "constant" else {}
    padded = np.pad(x, ((pad, pad), (pad, pad), (0, 0)), mode=pad_mode, **extra)
    src_r, src_c = source_coordinates(params, 64, 64)
    assert src_r.min() < -5 and src_c.max() > 70, "the transform must reach far outside"
    expected = np.stack([scipy.ndimage.map_coordinates(padded[..., k], [src_r + pad,
                                                                         src_c + pad], order=1)
                         for k in range(3)], axis=-1)
    np.testing.assert_allclose(gen.apply_transform(x, params), expected, atol=0.02)


def test_a_backend_without_a_compiler_runs_the_same_gather_eagerly(photos, monkeypatch):
    from cnnlab import devices
    from cnnlab.augment import _resampling

    x = photos["coffee"].astype("float64")
    params = {"theta": 33.0, "tx": 7.5, "ty": -4.25, "shear": 9.0, "zx": 1.2, "zy": 0.9}
    padded = np.pad(x, ((80, 80), (80, 80), (0, 0)), mode="edge")
    src_r, src_c = source_coordinates(params, 64, 64)
    expected = np.stack([scipy.ndimage.map_coordinates(padded[..., k], [src_r + 80,
                                                                         src_c + 80], order=1)
                         for k in range(3)], axis=-1)
    for backend in ("numpy", devices.keras_backend()):
        monkeypatch.setattr(_resampling, "_COMPILED", {})
        monkeypatch.setattr(devices, "keras_backend", lambda name=backend: name)
        monkeypatch.setattr(_resampling, "keras_backend", lambda name=backend: name)
        got = ImageDataGenerator(fill_mode="nearest").apply_transform(x, params)
        np.testing.assert_allclose(got, expected, atol=0.02)
        ((key, run),) = _resampling._COMPILED.items()
        assert key[0] == backend
        assert ("_eager" in run.__qualname__) is (backend == "numpy"), run.__qualname__


def test_wrap_repeats_with_period_n_where_legacy_uses_n_minus_1(photos):
    x = photos["chelsea"].astype("float32")
    shift = {"tx": 20.0}  # integer shift: output column c reads column c + 20
    expected = np.take(x, np.arange(64) + 20, axis=1, mode="wrap")
    np.testing.assert_allclose(ImageDataGenerator(fill_mode="wrap").apply_transform(x, shift),
                               expected, atol=1e-3)
    legacy = LegacyGenerator(fill_mode="wrap").apply_transform(x, shift)
    assert not np.allclose(legacy, expected, atol=1.0)
    source = np.arange(64) + 20  # SciPy's "wrap": column 63 is also column 0, 64 is 1, ...
    period_n_minus_1 = x[:, np.where(source <= 63, source, source - 63)]
    np.testing.assert_allclose(legacy, period_n_minus_1, atol=1e-3)


def test_rotation_by_90_about_the_centre_equals_rot90(photos):
    x = photos["astronaut"][:63, :63].astype("float32")  # odd size: the centre is a pixel
    rotated = ImageDataGenerator().apply_transform(x, {"theta": 90})
    np.testing.assert_allclose(rotated, np.rot90(x, k=1), atol=1e-3)


def test_non_square_images_turn_about_their_true_centre_unlike_legacy(photos):
    x = photos["coffee"][:40, :64].astype("float32")
    half_turn = {"theta": 180.0}
    np.testing.assert_allclose(ImageDataGenerator().apply_transform(x, half_turn),
                               x[::-1, ::-1], atol=1e-3)
    legacy = LegacyGenerator().apply_transform(x, half_turn)
    assert np.abs(legacy - x[::-1, ::-1]).max() > 50  # legacy swaps the centre's row and col
    # A zoom keeps the true centre fixed: the centre of a 41 x 63 crop stays where it is.
    odd = photos["coffee"][:41, :63].astype("float32")
    zoomed = ImageDataGenerator().apply_transform(odd, {"zx": 0.5, "zy": 0.5})
    np.testing.assert_allclose(zoomed[20, 31], odd[20, 31], atol=1e-3)


def test_height_shift_moves_rows_and_width_shift_moves_columns(photos):
    x = photos["astronaut"].astype("float32")
    gen = ImageDataGenerator(height_shift_range=[5], fill_mode="wrap")
    params = gen.get_random_transform(x.shape, seed=3)
    assert params["tx"] == 0 and abs(params["ty"]) == 5
    rows = np.arange(64) + int(params["ty"])
    np.testing.assert_allclose(gen.apply_transform(x, params),
                               np.take(x, rows, axis=0, mode="wrap"), atol=1e-3)
    gen = ImageDataGenerator(width_shift_range=[5], fill_mode="wrap")
    params = gen.get_random_transform(x.shape, seed=3)
    assert params["ty"] == 0 and abs(params["tx"]) == 5
    cols = np.arange(64) + int(params["tx"])
    np.testing.assert_allclose(gen.random_transform(x, seed=3),
                               np.take(x, cols, axis=1, mode="wrap"), atol=1e-3)
    # keras-team/keras#17398: legacy's height_shift_range moves columns.
    legacy = LegacyGenerator(height_shift_range=[5], fill_mode="nearest")
    moved = legacy.random_transform(x, seed=3)
    shift = int(legacy.get_random_transform(x.shape, seed=3)["tx"])
    np.testing.assert_allclose(moved, np.take(x, np.arange(64) + shift, axis=1, mode="clip"),
                               atol=1e-3)


def test_get_random_transform_draws_keras2_values_with_the_shift_axes_fixed():
    kwargs = dict(LECTURE, vertical_flip=True, brightness_range=(0.5, 1.5))
    for shape in [(64, 64, 3), (40, 90, 3)]:
        for seed in range(5):
            mine = ImageDataGenerator(**kwargs).get_random_transform(shape, seed=seed)
            theirs = LegacyGenerator(**kwargs).get_random_transform(shape, seed=seed)
            theirs["tx"], theirs["ty"] = theirs["ty"], theirs["tx"]
            assert mine.keys() == theirs.keys()
            for key in mine:
                assert mine[key] == pytest.approx(theirs[key]), (shape, seed, key)


def test_interpolation_order_0_matches_legacy(photos):
    x = photos["chelsea"].astype("float32")
    params = {"theta": 17.0, "zx": 0.9, "zy": 1.1}
    mine = ImageDataGenerator(interpolation_order=0).apply_transform(x, params)
    theirs = LegacyGenerator(interpolation_order=0).apply_transform(x, params)
    assert np.mean(mine == theirs) > 0.99  # ties at exactly .5 may round differently
    assert set(np.unique(mine)) <= set(np.unique(x))  # nearest: no new values


def test_apply_transform_keeps_uint8_and_channels_first_gives_the_same_pixels(photos):
    x = photos["coffee"]
    params = {"theta": 20.0, "tx": 3.0, "zx": 1.1, "zy": 1.1}
    out = ImageDataGenerator().apply_transform(x, params)
    assert out.dtype == np.uint8
    floats = ImageDataGenerator().apply_transform(x.astype("float32"), params)
    assert np.abs(out.astype(float) - floats).max() <= 0.5 + 1e-3
    first = ImageDataGenerator(data_format="channels_first").apply_transform(
        x.transpose(2, 0, 1).astype("float32"), params)
    np.testing.assert_allclose(first.transpose(1, 2, 0), floats, atol=1e-3)


# ------------------------------------------------------------------------------------------
# flow(): seeds, shuffling, subsets, against the legacy generator
# ------------------------------------------------------------------------------------------

# Brightness floors to whole 8-bit levels, which turns float noise into a level now and
# then: its pixels are compared in the apply_transform tests, its draws in
# test_get_random_transform_draws_keras2_values_with_the_shift_axes_fixed.
NO_SHIFTS = dict(rotation_range=40, shear_range=10, zoom_range=0.2, horizontal_flip=True,
                 vertical_flip=True, channel_shift_range=9, fill_mode="nearest",
                 rescale=1 / 255)
LEVEL = 0.05 / 255  # a twentieth of an intensity level, after rescale


def test_flow_with_a_seed_gives_legacys_first_epoch(photo_batch):
    x, y = photo_batch
    mine = ImageDataGenerator(**NO_SHIFTS).flow(x, y, batch_size=8, seed=5)
    theirs = LegacyGenerator(**NO_SHIFTS).flow(x, y, batch_size=8, seed=5)
    assert len(mine) == len(theirs) == 3
    for i in range(len(mine)):
        (xa, ya), (xb, yb) = mine[i], theirs[i]
        np.testing.assert_array_equal(ya, yb)
        assert xa.shape == xb.shape and xa.dtype == xb.dtype == np.float32
        assert np.abs(xa - xb).max() <= LEVEL


def test_next_cycles_through_epochs_like_legacy(photo_batch):
    x, y = photo_batch
    mine = ImageDataGenerator(**NO_SHIFTS).flow(x, y, batch_size=8, seed=11)
    theirs = LegacyGenerator(**NO_SHIFTS).flow(x, y, batch_size=8, seed=11)
    for step in range(9):  # three passes of 3 batches, each reshuffled; reset() mid-pass
        if step == 5:
            mine.reset(), theirs.reset()
        (xa, ya), (xb, yb) = next(mine), next(theirs)
        np.testing.assert_array_equal(ya, yb)
        assert np.abs(xa - xb).max() <= LEVEL
    assert len(list(mine)) == 3  # `for batch in it` is one epoch (Keras 3's PyDataset)


def test_flow_batches_depend_only_on_seed_and_position(photo_batch):
    x, y = photo_batch
    gen = ImageDataGenerator(**LECTURE)
    first = gen.flow(x, y, batch_size=4, seed=3)
    second = gen.flow(x, y, batch_size=4, seed=3)
    backwards = [second[i] for i in reversed(range(len(second)))][::-1]
    for i, (xb, yb) in enumerate(backwards):
        xa, ya = first[i]
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(xa, xb)
    other = gen.flow(x, y, batch_size=4, seed=4)[0][0]
    assert np.abs(other - first[0][0]).mean() > 1.0


def test_flow_never_touches_numpys_global_generator(photo_batch):
    x, y = photo_batch
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    it = ImageDataGenerator(**LECTURE).flow(x, y, batch_size=8, seed=0)
    it[0], next(it)
    it.on_epoch_end()
    it[1]
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    LegacyGenerator(**LECTURE).flow(x, y, batch_size=8, seed=0)[0]
    assert not np.array_equal(np.random.get_state()[1], before)  # keras-preprocessing#342


def test_on_epoch_end_reshuffles_and_shuffle_false_keeps_order(photo_batch):
    x, y = photo_batch
    it = ImageDataGenerator().flow(x, np.arange(len(x)), batch_size=len(x), seed=0)
    first = it[0][1]
    it.on_epoch_end()
    second = it[0][1]
    assert sorted(first) == sorted(second) == list(range(len(x)))
    assert not np.array_equal(first, second)
    ordered = ImageDataGenerator().flow(x, np.arange(len(x)), batch_size=5, shuffle=False)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in ordered]), np.arange(len(x)))
    assert len(ordered) == math.ceil(len(x) / 5) and ordered.n == len(x)
    assert ordered.batch_size == 5 and len(ordered[len(ordered) - 1][1]) == len(x) % 5


def test_flow_subsets_match_legacy(photo_batch):
    x, y = photo_batch
    for subset in ("training", "validation"):
        mine = ImageDataGenerator(validation_split=0.25).flow(x, y, batch_size=4,
                                                              shuffle=False, subset=subset)
        theirs = LegacyGenerator(validation_split=0.25).flow(x, y, batch_size=4,
                                                             shuffle=False, subset=subset)
        assert mine.n == theirs.n
        for i in range(len(mine)):
            np.testing.assert_array_equal(mine[i][1], theirs[i][1])
            np.testing.assert_allclose(mine[i][0], theirs[i][0])
    with pytest.raises(ValueError, match="^Training and validation subsets have different "
                                         "number of classes.*Shuffle x and y"):
        ImageDataGenerator(validation_split=0.25).flow(x, np.sort(y), subset="training")


def test_flow_yields_sample_weights_and_extra_inputs(photo_batch):
    x, y = photo_batch
    weights = np.linspace(0.1, 1.8, len(x))
    it = ImageDataGenerator().flow(x, y, sample_weight=weights, batch_size=6, shuffle=False)
    xb, yb, wb = it[1]
    np.testing.assert_allclose(wb, weights[6:12])
    extra = np.arange(len(x) * 2).reshape(len(x), 2)
    (images, misc), labels = ImageDataGenerator().flow([x, extra], y, batch_size=6,
                                                       shuffle=False)[0]
    np.testing.assert_array_equal(misc, extra[:6])
    assert images.shape == (6, 64, 64, 3)


def test_save_to_dir_writes_the_augmented_images(photo_batch, tmp_path):
    x, y = photo_batch
    it = ImageDataGenerator(rotation_range=30).flow(x, y, batch_size=4, seed=0,
                                                    save_to_dir=tmp_path, save_prefix="aug")
    it[0]
    files = sorted(tmp_path.glob("aug_*.png"))
    assert len(files) == 4
    assert np.asarray(Image.open(files[0])).shape == (64, 64, 3)


def test_fit_statistics_and_standardize_match_legacy(photo_batch):
    x, _ = photo_batch
    x = x[:, ::4, ::4].astype("float32")  # 16 x 16: small enough for ZCA
    for kwargs in [dict(featurewise_center=True, featurewise_std_normalization=True,
                        rescale=1 / 255),
                   dict(zca_whitening=True), dict(samplewise_center=True,
                                                  samplewise_std_normalization=True)]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mine, theirs = ImageDataGenerator(**kwargs), LegacyGenerator(**kwargs)
        mine.fit(x)
        theirs.fit(x)
        for attr in ("mean", "std"):
            if getattr(theirs, attr) is not None:
                np.testing.assert_allclose(getattr(mine, attr), getattr(theirs, attr),
                                           rtol=1e-4, atol=1e-5)
        image = x[3].copy()
        np.testing.assert_allclose(mine.standardize(image.copy()),
                                   theirs.standardize(image.copy()), rtol=1e-3, atol=1e-3)


# ------------------------------------------------------------------------------------------
# Files: flow_from_directory and flow_from_dataframe against the legacy generator
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("color_mode,class_mode", [
    ("rgb", "categorical"), ("grayscale", "sparse"), ("rgba", "input"), ("rgb", None),
])
def test_flow_from_directory_matches_legacy(image_dir, color_mode, class_mode):
    kwargs = dict(target_size=(32, 32), color_mode=color_mode, class_mode=class_mode,
                  batch_size=4, shuffle=True, seed=2)
    mine = ImageDataGenerator().flow_from_directory(image_dir, **kwargs)
    theirs = LegacyGenerator().flow_from_directory(image_dir, **kwargs)
    assert mine.filenames == theirs.filenames and mine.samples == theirs.samples == 15
    assert mine.class_indices == theirs.class_indices == {"astronaut": 0, "chelsea": 1,
                                                          "coffee": 2}
    np.testing.assert_array_equal(mine.classes, theirs.classes)
    assert len(mine) == len(theirs) == 4
    for i in (0, 3):
        a, b = mine[i], theirs[i]
        a, b = (a, b) if isinstance(a, tuple) else ((a,), (b,))
        for part_a, part_b in zip(a, b):
            assert part_a.shape == part_b.shape and part_a.dtype == part_b.dtype
            np.testing.assert_allclose(part_a, part_b)


def test_flow_from_directory_subsets_binary_and_augmentation_match_legacy(image_dir, tmp_path):
    for subset in ("training", "validation"):
        kw = dict(target_size=(32, 32), batch_size=3, shuffle=False, subset=subset)
        mine = ImageDataGenerator(validation_split=0.4, **NO_SHIFTS).flow_from_directory(
            image_dir, seed=1, **kw)
        theirs = LegacyGenerator(validation_split=0.4, **NO_SHIFTS).flow_from_directory(
            image_dir, seed=1, **kw)
        assert mine.filenames == theirs.filenames
        (xa, ya), (xb, yb) = mine[0], theirs[0]
        np.testing.assert_array_equal(ya, yb)
        assert np.abs(xa - xb).max() <= LEVEL
    two = tmp_path / "two"
    two.mkdir()
    for name in ("chelsea", "coffee"):
        (two / name).symlink_to(image_dir / name)
    mine = ImageDataGenerator().flow_from_directory(two, target_size=(8, 8), class_mode="binary",
                                                    follow_links=True, shuffle=False)
    theirs = LegacyGenerator().flow_from_directory(two, target_size=(8, 8),
                                                   class_mode="binary", follow_links=True,
                                                   shuffle=False)
    np.testing.assert_array_equal(mine[0][1], theirs[0][1])
    assert set(mine[0][1]) == {0.0, 1.0}


@pytest.fixture(scope="module")
def frame(image_dir):
    import pandas as pd

    rows = []
    for path in sorted(image_dir.rglob("*.*")):
        index = int(path.stem)
        rows.append({"filename": f"{path.parent.name}/{path.name}", "class": path.parent.name,
                     "score": float(index) / 4, "size": index % 2,
                     "binary": "odd" if index % 2 else "even"})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("class_mode,y_col", [
    ("categorical", "class"), ("binary", "binary"), ("sparse", "class"), ("raw", "score"),
    ("raw", ["score", "size"]), ("multi_output", ["score", "size"]), ("input", "class"),
    (None, "class"),
])
def test_flow_from_dataframe_matches_legacy(image_dir, frame, class_mode, y_col):
    kwargs = dict(directory=str(image_dir), y_col=y_col, class_mode=class_mode,
                  target_size=(24, 24), batch_size=5, seed=0)
    mine = ImageDataGenerator(validation_split=0.2).flow_from_dataframe(
        frame, subset="training", **kwargs)
    theirs = LegacyGenerator(validation_split=0.2).flow_from_dataframe(
        frame, subset="training", **kwargs)
    assert mine.filenames == theirs.filenames and mine.samples == theirs.samples == 12
    a, b = mine[1], theirs[1]
    a, b = (a, b) if isinstance(a, tuple) else ((a,), (b,))
    for part_a, part_b in zip(a, b):
        if isinstance(part_b, list):
            for out_a, out_b in zip(part_a, part_b):
                np.testing.assert_allclose(out_a, out_b)
        else:
            np.testing.assert_allclose(part_a, part_b)


def test_flow_from_dataframe_drops_missing_files_naming_them(image_dir, frame):
    import pandas as pd

    broken = pd.concat([frame, pd.DataFrame([{"filename": "coffee/missing.png",
                                              "class": "coffee"}])], ignore_index=True)
    with pytest.warns(UserWarning, match="missing.png"):
        it = ImageDataGenerator().flow_from_dataframe(broken, directory=str(image_dir),
                                                      target_size=(8, 8))
    assert it.samples == 15
    with pytest.raises(ValueError, match="missing.png"):
        ImageDataGenerator().flow_from_dataframe(broken, directory=str(image_dir),
                                                 on_error="raise")


def test_corrupt_files_are_skipped_with_a_warning_naming_each(image_dir, tmp_path):
    root = tmp_path / "train"
    for name in ("chelsea", "coffee"):
        (root / name).mkdir(parents=True)
        for path in (image_dir / name).iterdir():
            (root / name / path.name).write_bytes(path.read_bytes())
    (root / "chelsea" / "broken.jpg").write_bytes(b"this is not a JPEG")
    (root / "coffee" / "empty.png").write_bytes(b"")
    with pytest.warns(UserWarning, match="(?s)skipped 2.*broken.jpg.*empty.png"):
        it = ImageDataGenerator().flow_from_directory(root, target_size=(16, 16))
    assert it.samples == 10 and len(it.filenames) == 10
    assert sorted(Path(p).name for p in it.skipped) == ["broken.jpg", "empty.png"]
    assert it[0][0].shape == (10, 16, 16, 3)
    with pytest.raises(ValueError, match="broken.jpg"):
        ImageDataGenerator().flow_from_directory(root, on_error="raise")


# ------------------------------------------------------------------------------------------
# Bad input: every error names the problem and the fix
# ------------------------------------------------------------------------------------------

def bad_inputs(image_dir, tmp_path):
    x = np.zeros((4, 16, 16, 3), "uint8")
    gen = ImageDataGenerator()
    (tmp_path / "empty").mkdir()
    (tmp_path / "no_images" / "cats").mkdir(parents=True)
    (tmp_path / "no_images" / "cats" / "notes.txt").write_text("not an image")
    return [
        (lambda: gen.flow(x[0]), ValueError, r"rank 4.*x\[None\]"),
        (lambda: gen.flow(x[..., 0]), ValueError, r"rank 4.*x\[\.\.\., None\]"),
        (lambda: gen.flow(x, np.arange(3)), ValueError,
         r"^`x` \(images tensor\) and `y` \(labels\) should have the same length.*one label"),
        (lambda: gen.flow(x, subset="training"), ValueError, "validation_split=0.2"),
        (lambda: gen.flow(x, batch_size=0), ValueError, "batch_size"),
        (lambda: ImageDataGenerator(fill_mode="mirror"), ValueError, "fill_mode.*'wrap'"),
        (lambda: ImageDataGenerator(validation_split=1.0), ValueError,
         "^`validation_split` must be strictly between 0 and 1.*0.2"),
        (lambda: ImageDataGenerator(validation_split=-0.1), ValueError,
         "^`validation_split` must be strictly between 0 and 1"),
        (lambda: ImageDataGenerator(interpolation_order=3), ValueError, "0 \\(nearest\\)"),
        (lambda: ImageDataGenerator(zoom_range=1.0), ValueError, "above 0"),
        (lambda: ImageDataGenerator(width_shift_range="0.2"), ValueError, "fraction"),
        (lambda: ImageDataGenerator(brightness_range=1.2), ValueError, r"\(0.5, 1.5\)"),
        (lambda: gen.flow_from_directory(image_dir, target_size=150), ValueError,
         r"\(height, width\).*target_size=\(150, 150\)"),
        (lambda: gen.flow_from_directory(image_dir, target_size=(150.5, 150)), TypeError,
         r"target_size\[0\] must be an integer"),
        (lambda: gen.flow_from_directory(image_dir, target_size=(0, 150)), ValueError,
         r"target_size\[0\]=0"),
        (lambda: gen.flow_from_directory(image_dir, class_mode="onehot"), ValueError,
         "class_mode='onehot'.*categorical"),
        (lambda: gen.flow_from_directory(image_dir, color_mode="RGB"), ValueError,
         "color_mode='RGB'.*grayscale"),
        (lambda: gen.flow_from_directory(image_dir, class_mode="binary"), ValueError,
         "exactly 2 classes, found 3"),
        (lambda: gen.flow_from_directory(image_dir, subset="validation"), ValueError,
         "validation_split"),
        (lambda: gen.flow_from_directory(image_dir, interpolation="cubic"), ValueError,
         "bicubic"),
        (lambda: gen.flow_from_directory(tmp_path / "nowhere"), FileNotFoundError,
         "does not exist.*one subfolder per class"),
        (lambda: gen.flow_from_directory(tmp_path / "empty"), ValueError,
         "no class subfolders.*cats"),
        (lambda: gen.flow_from_directory(tmp_path / "no_images"), ValueError,
         "no images found.*png"),
        (lambda: gen.apply_transform(x, {}), ValueError, "one image of rank 3.*flow"),
        (lambda: transform_matrix([30], (8, 8)), TypeError, "dict"),
    ]


def test_bad_input_gets_an_error_with_the_fix(image_dir, tmp_path):
    cases = bad_inputs(image_dir, tmp_path)
    assert len(cases) >= 20
    for call, error, pattern in cases:
        with pytest.raises(error, match=pattern):
            call()


# ------------------------------------------------------------------------------------------
# Training on the iterators, Keras 3 layers, the preview
# ------------------------------------------------------------------------------------------

def tiny_model(input_shape, outputs, activation):
    from keras import layers

    model = keras.Sequential([keras.Input(input_shape), layers.Conv2D(2, 3),
                              layers.GlobalAveragePooling2D(),
                              layers.Dense(outputs, activation=activation)])
    return model


@pytest.mark.slow
def test_model_fit_takes_every_iterator(photo_batch, image_dir, frame):
    x, y = photo_batch
    gen = ImageDataGenerator(**LECTURE, rescale=1 / 255)
    flows = [
        (gen.flow(x, y, batch_size=6, seed=0), (64, 64, 3), 3, "sparse_categorical_crossentropy"),
        (gen.flow_from_directory(image_dir, target_size=(16, 16), batch_size=6, seed=0),
         (16, 16, 3), 3, "categorical_crossentropy"),
        (gen.flow_from_dataframe(frame, directory=str(image_dir), y_col="score",
                                 class_mode="raw", target_size=(16, 16), batch_size=6),
         (16, 16, 3), 1, "mse"),
    ]
    for it, shape, outputs, loss in flows:
        assert isinstance(it, keras.utils.PyDataset)
        model = tiny_model(shape, outputs, None if loss == "mse" else "softmax")
        model.compile(optimizer="sgd", loss=loss)
        history = model.fit(it, steps_per_epoch=1, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
    assert model.predict(flows[2][0], steps=1, verbose=0).shape == (6, 1)


def test_as_layers_gives_the_nearest_keras3_pipeline(photo_batch):
    from keras import layers

    gen = ImageDataGenerator(**LECTURE, rescale=1 / 255)
    pipeline = gen.as_layers(seed=0)
    kinds = [type(layer) for layer in pipeline.layers]
    assert kinds == [layers.RandomRotation, layers.RandomTranslation, layers.RandomShear,
                     layers.RandomZoom, layers.RandomFlip, layers.RandomBrightness,
                     layers.Rescaling]
    rotation, translation, shear, zoom = pipeline.layers[:4]
    assert rotation.factor == pytest.approx((-40 / 360, 40 / 360))
    assert (translation.height_lower, translation.width_upper) == pytest.approx((-0.2, 0.2))
    assert shear.x_factor == pytest.approx((0.0, math.sin(math.radians(0.2))))
    assert (zoom.height_lower, zoom.height_upper) == pytest.approx((-0.2, 0.2))
    assert rotation.fill_mode == "nearest"
    out = keras.ops.convert_to_numpy(pipeline(photo_batch[0][:2].astype("float32"),
                                              training=True))
    assert out.shape == (2, 64, 64, 3) and 0 <= out.min() and out.max() <= 1.0 + 1e-6
    with pytest.raises(ValueError, match="image_size"):
        ImageDataGenerator(width_shift_range=8).as_layers()
    assert ImageDataGenerator(width_shift_range=8).as_layers(image_size=(64, 64)).layers[0] \
        .width_upper == pytest.approx(0.125)
    with pytest.warns(UserWarning, match="samplewise"):
        ImageDataGenerator(samplewise_center=True).as_layers()


def test_preview_draws_n_augmented_cats():
    cat = skimage.data.chelsea()[::4, ::4]
    fig = ImageDataGenerator(**LECTURE).preview(cat, n=4, seed=0)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 4 and all(ax.get_title() for ax in panels)
    assert panels[0].images[0].get_array().shape == cat.shape
    import matplotlib.pyplot as plt

    plt.close(fig)


JAX_SCRIPT = r"""
import json, sys
import cnnlab, keras, numpy as np, skimage.data
from cnnlab.augment import ImageDataGenerator
assert keras.backend.backend() == "jax"
photo = skimage.data.chelsea()[60:124, 80:144].astype("float32")
params = {"theta": 23.0, "tx": 4.5, "shear": 7.0, "zx": 1.1, "zy": 0.9,
          "channel_shift_intensity": 12.0}
out = {}
for mode in ("constant", "wrap"):
    out[mode] = ImageDataGenerator(fill_mode=mode, cval=9.0).apply_transform(photo, params)
x = np.stack([photo, photo[::-1]]).astype("uint8")
it = ImageDataGenerator(rotation_range=40, zoom_range=0.2, rescale=1 / 255).flow(
    x, np.array([0, 1]), batch_size=2, seed=4)
xb, yb = it[0]
model = keras.Sequential([keras.Input((64, 64, 3)), keras.layers.Flatten(),
                          keras.layers.Dense(2, activation="softmax")])
model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
loss = model.fit(it, epochs=1, verbose=0).history["loss"][0]
np.savez(sys.argv[1], batch=xb, labels=yb, loss=loss, **out)
"""


@pytest.mark.jax
def test_the_same_pixels_under_the_jax_backend(tmp_path):
    pytest.importorskip("jax")
    target = tmp_path / "jax.npz"
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", JAX_SCRIPT, str(target)], env=env,
                          capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    result = np.load(target)
    assert np.isfinite(float(result["loss"]))
    photo = skimage.data.chelsea()[60:124, 80:144].astype("float32")
    params = {"theta": 23.0, "tx": 4.5, "shear": 7.0, "zx": 1.1, "zy": 0.9,
              "channel_shift_intensity": 12.0}
    for mode in ("constant", "wrap"):
        here = ImageDataGenerator(fill_mode=mode, cval=9.0).apply_transform(photo, params)
        np.testing.assert_allclose(result[mode], here, atol=0.02)
    x = np.stack([photo, photo[::-1]]).astype("uint8")
    xb, yb = ImageDataGenerator(rotation_range=40, zoom_range=0.2, rescale=1 / 255).flow(
        x, np.array([0, 1]), batch_size=2, seed=4)[0]
    np.testing.assert_array_equal(result["labels"], yb)
    np.testing.assert_allclose(result["batch"], xb, atol=1e-4)
