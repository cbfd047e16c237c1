"""cnnlab.segmentation against hand computations, scikit-learn, loops and Keras."""

import cnnlab  # noqa: F401  (quiet TensorFlow first)
import numpy as np
import pytest
from sklearn.metrics import jaccard_score

from cnnlab import segmentation

# A hand example: 3 classes on a 3x4 map.
TRUE = np.array([[0, 0, 1, 1],
                 [0, 2, 2, 1],
                 [0, 0, 2, 2]])
PRED = np.array([[0, 1, 1, 1],
                 [0, 2, 1, 1],
                 [0, 0, 0, 2]])


def test_pixel_accuracy_of_hand_masks():
    # 9 of the 12 pixels agree
    assert segmentation.pixel_accuracy(TRUE, PRED) == pytest.approx(9 / 12)
    assert segmentation.pixel_accuracy(TRUE, TRUE) == 1.0


def test_iou_of_hand_masks_by_hand_and_by_scikit_learn():
    # class 0: true 5 px, pred 5 px, both 4 -> 4 / 6; class 1: true 3, pred 5, both 3 -> 3 / 5;
    # class 2: true 4, pred 2, both 2 -> 2 / 4
    hand = [4 / 6, 3 / 5, 2 / 4]
    got = segmentation.iou(TRUE, PRED, 3)
    np.testing.assert_allclose(got, hand)
    np.testing.assert_allclose(got, jaccard_score(TRUE.ravel(), PRED.ravel(), average=None))
    assert segmentation.mean_iou(TRUE, PRED, 3) == pytest.approx(np.mean(hand))


def test_iou_of_random_batches_matches_scikit_learn():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, size=(5, 8, 8))
    y_pred = np.where(rng.uniform(size=y_true.shape) < 0.6, y_true,
                      rng.integers(0, 4, size=y_true.shape))
    np.testing.assert_allclose(segmentation.iou(y_true, y_pred, 4),
                               jaccard_score(y_true.ravel(), y_pred.ravel(), average=None))


def test_iou_of_a_class_absent_from_both_is_nan_and_mean_iou_skips_it():
    got = segmentation.iou(TRUE, PRED, 5)
    assert np.isnan(got[3]) and np.isnan(got[4])
    assert segmentation.mean_iou(TRUE, PRED, 5) == pytest.approx(np.mean([4 / 6, 3 / 5, 2 / 4]))
    # present in the prediction only: IoU 0, and it counts
    assert segmentation.iou([0, 0], [0, 3], 4)[3] == 0.0


def test_metrics_refuse_probabilities_and_labels_outside_the_classes():
    with pytest.raises(ValueError, match="argmax"):
        segmentation.iou(TRUE, np.zeros(TRUE.shape + (3,)), 3)
    with pytest.raises(ValueError, match="outside"):
        segmentation.iou(TRUE, PRED, 2)


def _pool_loop(x, p):
    h, w = x.shape
    pooled = np.zeros((h // p, w // p))
    where = np.zeros((h // p, w // p), dtype=int)
    for i in range(h // p):
        for j in range(w // p):
            best = None
            for di in range(p):
                for dj in range(p):
                    r, c = i * p + di, j * p + dj
                    if best is None or x[r, c] > x[best]:
                        best = (r, c)
            pooled[i, j] = x[best]
            where[i, j] = best[0] * w + best[1]
    return pooled, where


def test_max_pool_with_indices_matches_a_loop_per_channel():
    x = np.random.default_rng(1).normal(size=(6, 9, 2))
    pooled, indices = segmentation.max_pool_with_indices(x, pool_size=3)
    assert pooled.shape == indices.shape == (2, 3, 2)
    for c in range(2):
        loop_pooled, loop_indices = _pool_loop(x[:, :, c], 3)
        np.testing.assert_array_equal(pooled[:, :, c], loop_pooled)
        np.testing.assert_array_equal(indices[:, :, c], loop_indices)


def test_max_pool_with_indices_of_a_hand_map():
    x = np.array([[1, 5, 0, 2],
                  [3, 2, 7, 1],
                  [0, 0, 4, 4],
                  [9, 1, 4, 3]])
    pooled, indices = segmentation.max_pool_with_indices(x)
    np.testing.assert_array_equal(pooled, [[5, 7], [9, 4]])
    # flat positions row * 4 + col; the tie of 4s keeps the first (row 2, col 2)
    np.testing.assert_array_equal(indices, [[1, 6], [12, 10]])


def test_unpool_of_pool_keeps_each_window_max_at_its_argmax_and_zeros_elsewhere():
    x = np.random.default_rng(2).uniform(1, 2, size=(8, 6, 3))
    pooled, indices = segmentation.max_pool_with_indices(x, pool_size=2)
    restored = segmentation.max_unpool(pooled, indices, x.shape)
    expected = np.zeros_like(x)
    for r in range(0, 8, 2):
        for c in range(0, 6, 2):
            for ch in range(3):
                window = x[r:r + 2, c:c + 2, ch]
                dr, dc = np.unravel_index(np.argmax(window), window.shape)
                expected[r + dr, c + dc, ch] = window[dr, dc]
    np.testing.assert_array_equal(restored, expected)
    assert np.count_nonzero(restored) == pooled.size


def test_pooling_and_unpooling_refuse_bad_shapes():
    with pytest.raises(ValueError, match="multiple of pool_size"):
        segmentation.max_pool_with_indices(np.zeros((5, 4)))
    with pytest.raises(ValueError, match="same channels|before pooling"):
        segmentation.max_unpool(np.zeros((2, 2)), np.zeros((2, 2), dtype=int), (4, 4, 1))


def test_pool_size_must_be_a_whole_number_never_rounded():
    with pytest.raises(TypeError, match="pool_size must be an integer"):
        segmentation.max_pool_with_indices(np.zeros((4, 4)), pool_size=2.5)
    with pytest.raises(ValueError, match="pool_size=0"):
        segmentation.max_pool_with_indices(np.zeros((4, 4)), pool_size=0)
    with pytest.raises(ValueError, match="image must be a map"):
        segmentation.max_pool_with_indices(np.zeros((1, 4, 4, 1)))


def test_the_old_argument_name_x_of_max_pool_with_indices_warns_and_still_works():
    image = np.arange(16.0).reshape(4, 4)
    expected = segmentation.max_pool_with_indices(image=image)
    with pytest.warns(DeprecationWarning, match="x= is now called image="):
        pooled, indices = segmentation.max_pool_with_indices(x=image)
    np.testing.assert_array_equal(pooled, expected[0])
    np.testing.assert_array_equal(indices, expected[1])
    np.testing.assert_array_equal(pooled, [[5, 7], [13, 15]])


def test_synthetic_shapes_masks_match_the_drawn_pixels():
    images, masks = segmentation.synthetic_shapes_dataset(40, size=32, seed=0, max_shapes=3)
    assert images.shape == (40, 32, 32, 1) and images.dtype == np.float32
    assert masks.shape == (40, 32, 32) and set(np.unique(masks)) <= {0, 1, 2, 3}
    # every drawn pixel (ink > 0) is in the mask of a shape, and only those
    np.testing.assert_array_equal(images[..., 0] > 0, masks > 0)
    assert images.min() == 0.0 and images[masks > 0].min() >= 1 - 200 / 255 - 1e-6
    assert set(np.unique(masks)) == {0, 1, 2, 3}
    again, again_masks = segmentation.synthetic_shapes_dataset(40, size=32, seed=0, max_shapes=3)
    np.testing.assert_array_equal(again, images)
    np.testing.assert_array_equal(again_masks, masks)


def test_synthetic_shapes_classes_are_the_shapes_skimage_draws():
    from skimage.draw import random_shapes
    from skimage.measure import label as connected

    _, masks = segmentation.synthetic_shapes_dataset(30, size=32, seed=5, max_shapes=1,
                                                     classes=("rectangle", "circle"))
    for mask in masks:
        if not mask.any():
            continue
        rows, cols = np.nonzero(mask)
        box = mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1] > 0
        assert connected(box).max() == 1  # one shape, in one piece
        is_rectangle = box.all()
        assert is_rectangle == (mask.max() == 1), "class 1 = rectangle fills its bounding box"
    # a rectangle really is a filled box in skimage
    drawn, _ = random_shapes((16, 16), 1, shape="rectangle", channel_axis=None, rng=0)
    rows, cols = np.nonzero(drawn != 255)
    assert (drawn[rows.min():rows.max() + 1, cols.min():cols.max() + 1] != 255).all()


def test_build_fcn_keeps_the_input_size_and_gives_probabilities_per_pixel():
    import keras

    from cnnlab import arithmetic

    model = segmentation.build_fcn((16, 16, 1), 4)
    assert model.output.shape[1:] == (16, 16, 4)
    # 3x3 convs 1->16, 16->32, 32->32; 2x2 transposed 32->32, 32->16; 1x1 16->4
    assert model.count_params() == (160 + 4640 + 9248 + 4128 + 2064 + 68)
    x = np.random.default_rng(0).uniform(size=(2, 16, 16, 1)).astype("float32")
    probabilities = keras.ops.convert_to_numpy(model(x))
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)

    dilated = segmentation.build_fcn((15, 15, 3), 2, dilated=True)
    assert dilated.output.shape[1:] == (15, 15, 2)
    assert not any(isinstance(layer, keras.layers.MaxPooling2D) for layer in dilated.layers)
    assert arithmetic.receptive_field(dilated).size == (15, 15)
    with pytest.raises(ValueError, match="multiples of 4"):
        segmentation.build_fcn((30, 30, 1), 3)


@pytest.mark.jax
def test_build_fcn_runs_under_jax_too():
    """The models are keras.ops only: the GPU machine runs KERAS_BACKEND=jax."""
    import os
    import subprocess
    import sys

    code = ("import cnnlab, keras, numpy as np\n"
            "from cnnlab import segmentation\n"
            "assert keras.backend.backend() == 'jax'\n"
            "for dilated in (False, True):\n"
            "    m = segmentation.build_fcn((16, 16, 1), 3, dilated=dilated)\n"
            "    p = keras.ops.convert_to_numpy(m(np.zeros((1, 16, 16, 1), 'float32')))\n"
            "    print(p.shape, m.count_params(), round(float(p.sum()), 3))\n")
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    # by hand: 160 + 4640 + 9248 + 4128 + 2064 + (16 x 3 + 3); 320 + 9248 + 9248 + (32 x 3 + 3);
    # 16 x 16 pixels of probabilities sum to 256
    assert result.stdout.split("\n")[:2] == ["(1, 16, 16, 3) 20291 256.0",
                                             "(1, 16, 16, 3) 18915 256.0"]


def test_build_fcn_skip_adds_the_finer_encoder_map_to_the_upsampled_one():
    import keras

    plain = segmentation.build_fcn((24, 40, 3), 5)
    skip = segmentation.build_fcn((24, 40, 3), 5, skip=True)
    fuse = skip.get_layer("fuse")
    assert isinstance(fuse, keras.layers.Add)
    # the two inputs of the Add: the first transposed convolution and enc2, before pool2
    sources = {t._keras_history[0].name for t in fuse.input}
    assert sources == {"up1", "enc2"}
    assert tuple(fuse.output.shape) == (None, 12, 20, 32)
    assert skip.count_params() == plain.count_params()          # Add has no weights
    assert tuple(skip.output.shape) == (None, 24, 40, 5)
    # the skip changes what the network computes: enc2's map reaches the decoder directly
    x = np.random.default_rng(0).uniform(size=(1, 24, 40, 3)).astype("float32")
    skip.set_weights(plain.get_weights())
    assert not np.allclose(keras.ops.convert_to_numpy(skip(x)),
                           keras.ops.convert_to_numpy(plain(x)), atol=1e-6)
    with pytest.raises(ValueError, match="one of dilated, skip"):
        segmentation.build_fcn((16, 16, 1), 3, dilated=True, skip=True)
