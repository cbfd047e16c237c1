"""Offline real photos for transfer learning: texture patches, LFW faces, Cats vs Dogs plumbing."""

import zipfile

import cnnlab  # noqa: F401 - quiet TensorFlow first
import numpy as np
import pytest

from cnnlab import _cache, datasets
from cnnlab.datasets import cats_vs_dogs
from cnnlab.datasets import load_faces, load_sample_image, load_textures


def _rows_of(patch, photo):
    """Every row at which ``patch`` (gray) sits in ``photo``, found by brute force."""
    height, width = patch.shape
    candidates = np.argwhere(photo[:photo.shape[0] - height + 1, :photo.shape[1] - width + 1]
                             == patch[0, 0])
    return {int(r) for r, c in candidates
            if np.array_equal(photo[r:r + height, c:c + width], patch)}


@pytest.mark.slow
def test_texture_patches_are_crops_of_the_real_photos_with_test_rows_held_out():
    (x_train, y_train), (x_test, y_test) = load_textures(patch_size=64, patches_per_image=8,
                                                         test_fraction=0.25, seed=3)
    assert x_train.shape == (18, 64, 64, 3) and x_test.shape == (6, 64, 64, 3)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64
    assert np.bincount(y_train).tolist() == [6, 6, 6] and np.bincount(y_test).tolist() == [2, 2, 2]
    np.testing.assert_array_equal(x_train[..., 0], x_train[..., 2])  # gray in 3 channels
    split = 384  # 512 * (1 - 0.25)
    for images, labels, rows_ok in ((x_train, y_train, lambda r: r + 64 <= split),
                                    (x_test, y_test, lambda r: r >= split)):
        for image, label in zip(images, labels):
            photo = load_sample_image(datasets.CLASS_NAMES["textures"][label])
            rows = _rows_of(image[..., 0], photo)
            assert rows and any(rows_ok(r) for r in rows)


def test_texture_patches_depend_on_the_seed_only():
    first = load_textures(patch_size=32, patches_per_image=4, seed=1)
    again = load_textures(patch_size=32, patches_per_image=4, seed=1)
    other = load_textures(patch_size=32, patches_per_image=4, seed=2)
    np.testing.assert_array_equal(first[0][0], again[0][0])
    assert not np.array_equal(first[0][0], other[0][0])
    assert load_textures(patch_size=32, patches_per_image=4, rgb=False)[0][0].shape[-1] == 1


def test_a_patch_too_big_for_the_test_rows_says_how_to_fix_it():
    with pytest.raises(ValueError, match="smaller patch_size or a test_fraction"):
        load_textures(patch_size=200, test_fraction=0.25)
    with pytest.raises(ValueError, match="patches_per_image"):
        load_textures(patches_per_image=1)


def test_faces_are_the_lfw_subset_split_per_class():
    import skimage.data

    (x_train, y_train), (x_test, y_test) = load_faces(seed=0)
    assert x_train.shape == (150, 25, 25, 1) and x_test.shape == (50, 25, 25, 1)
    assert y_train.sum() == 75 and y_test.sum() == 25  # label 1 = face, half of each split
    reference = np.rint(skimage.data.lfw_subset() * 255).astype(np.uint8)
    faces = {image.tobytes() for image in reference[:100]}
    for image, label in zip(x_test, y_test):
        assert (image[..., 0].tobytes() in faces) == bool(label)


# --------------------------------------------------------------------------- Cats vs Dogs


def _fake_cats_vs_dogs_zip(path, per_folder=None):
    """A zip with the filtered Cats vs Dogs layout, holding *synthetic* 4x4 JPEGs (only the
    plumbing is tested here; the real photos need `cnnlab fetch cats_vs_dogs`)."""
    import io

    from PIL import Image

    per_folder = per_folder or cats_vs_dogs._CATS_VS_DOGS_LAYOUT
    buffer = io.BytesIO()
    Image.fromarray(np.full((4, 4, 3), 128, np.uint8)).save(buffer, format="JPEG")
    with zipfile.ZipFile(path, "w") as bundle:
        for (split, animal), count in per_folder.items():
            for index in range(count):
                bundle.writestr(f"cats_and_dogs_filtered/{split}/{animal}/{animal[:-1]}."
                                f"{index}.jpg", buffer.getvalue())


@pytest.mark.slow
def test_cats_vs_dogs_records_its_hash_on_first_use_and_verifies_it_after(tmp_path):
    archive = tmp_path / "cats_and_dogs_filtered.zip"
    _fake_cats_vs_dogs_zip(archive)
    (x_train, y_train), (x_val, y_val) = datasets.load_cats_vs_dogs(
        image_size=(8, 8), source="cache", cache_dir=tmp_path)
    assert x_train.shape == (2000, 8, 8, 3) and x_val.shape == (1000, 8, 8, 3)
    assert np.bincount(y_train).tolist() == [1000, 1000]
    recorded = tmp_path / "cats_and_dogs_filtered.zip.sha256"
    assert recorded.read_text().split()[0] == _cache.file_digest(archive)
    with zipfile.ZipFile(archive, "a") as bundle:  # the file changes after the first use
        bundle.writestr("cats_and_dogs_filtered/extra.txt", "x")
    with pytest.raises(datasets.CorruptDatasetError, match="changed since it was first"):
        datasets.load_cats_vs_dogs(image_size=(8, 8), source="cache", cache_dir=tmp_path)


def test_cats_vs_dogs_with_the_wrong_layout_is_refused(tmp_path):
    _fake_cats_vs_dogs_zip(tmp_path / "cats_and_dogs_filtered.zip",
                           {("train", "cats"): 3, ("validation", "dogs"): 2})
    with pytest.raises(datasets.CorruptDatasetError, match="1000/1000 train"):
        datasets.load_cats_vs_dogs(source="cache", cache_dir=tmp_path)
    assert not (tmp_path / "cats_and_dogs_filtered.zip.sha256").exists()


def test_cats_vs_dogs_offline_names_the_fetch_command(tmp_path):
    with pytest.raises(datasets.DatasetUnavailableError, match="cnnlab fetch cats_vs_dogs"):
        datasets.load_cats_vs_dogs(source="cache", cache_dir=tmp_path)
    assert datasets.class_names("cats_vs_dogs") == ["cat", "dog"]


def test_class_names_know_the_offline_sets_in_label_order():
    assert datasets.class_names("textures") == ["brick", "grass", "gravel"]
    (_, y_train), _ = load_textures(patch_size=32, patches_per_image=4)
    assert sorted(set(y_train.tolist())) == [0, 1, 2]
    assert len(datasets.class_names("faces")) == 2
    with pytest.raises(ValueError, match="known datasets"):
        datasets.class_names("textiles")
