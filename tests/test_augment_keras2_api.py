"""cnnlab.augment has every public name of Keras 2's ``keras.preprocessing.image``, with its
signature and behaviour.

The independent reference is Keras 3's copy of Keras 2's module
(``keras.src.legacy.preprocessing.image``, SciPy per image and channel); where cnnlab fixes one
of Keras 2's bugs on purpose (centre, wrap period, shift axes) the comparison is set up so
the bug cannot show (square images, ``fill_mode="nearest"``) or the fix is spelled out.
"""

import inspect
import warnings

import numpy as np
import pytest

pytest.importorskip("scipy")
legacy = pytest.importorskip("keras.src.legacy.preprocessing.image")

import cnnlab.augment as augment  # noqa: E402
from cnnlab.augment import ImageDataGenerator  # noqa: E402

# Keras 2's keras.preprocessing.image names (tf-keras 2.x keras_export list).
KERAS2_NAMES = [
    "DataFrameIterator", "DirectoryIterator", "ImageDataGenerator", "Iterator",
    "NumpyArrayIterator", "apply_affine_transform", "apply_brightness_shift",
    "apply_channel_shift", "array_to_img", "flip_axis", "img_to_array", "load_img",
    "random_brightness", "random_channel_shift", "random_rotation", "random_shear",
    "random_shift", "random_zoom", "save_img", "smart_resize",
    "transform_matrix_offset_center",
]

# cnnlab's additions, only ever after Keras 2's parameters; and where a default differs on
# purpose (None: follow the generator, as flow() passes it in Keras 2).
EXTRA_PARAMETERS = {"on_error", "keep_aspect_ratio"}  # the latter: flow_from_dataframe
OWN_DEFAULTS = {("DataFrameIterator", "data_format"), ("DataFrameIterator", "dtype")}


def test_every_keras2_public_name_is_exported():
    missing = [name for name in KERAS2_NAMES if not hasattr(augment, name)]
    assert missing == []
    assert set(KERAS2_NAMES) <= set(augment.__all__)


def _callables():
    for name in KERAS2_NAMES:
        ours, theirs = getattr(augment, name), getattr(legacy, name, None)
        if theirs is None:
            continue
        if inspect.isclass(ours):
            yield name, ours.__init__, theirs.__init__
        else:
            yield name, ours, theirs
    for method in ("flow", "flow_from_directory", "flow_from_dataframe", "standardize",
                   "get_random_transform", "apply_transform", "random_transform", "fit"):
        yield (f"ImageDataGenerator.{method}", getattr(ImageDataGenerator, method),
               getattr(legacy.ImageDataGenerator, method))


@pytest.mark.parametrize("name,ours,theirs", list(_callables()), ids=lambda v: str(v)[:40])
def test_signature_is_keras2s(name, ours, theirs):
    mine = inspect.signature(ours).parameters
    ref = inspect.signature(theirs).parameters
    keras2 = [p for p in ref if p not in ("kwargs",)]
    assert list(mine)[:len(keras2)] == keras2, "Keras 2's parameters, in Keras 2's order"
    extra = set(list(mine)[len(keras2):]) - {"kwargs"}
    assert extra <= EXTRA_PARAMETERS
    for param in keras2:
        if (name, param) in OWN_DEFAULTS:
            continue
        assert mine[param].default == ref[param].default, param


# ------------------------------------------------------------------------------------------
# Module-level functions against the legacy copy (SciPy per channel)
# ------------------------------------------------------------------------------------------

def _image(shape, seed=0):
    rng = np.random.RandomState(seed)
    return (rng.rand(*shape) * 255).astype(np.float32)


@pytest.mark.parametrize("channels", [1, 2, 3, 5, 10])
def test_apply_affine_transform_matches_legacy_on_a_square_image(channels):
    x = _image((channels, 24, 24))  # Keras 2's default axes: channels first
    kwargs = dict(theta=23, tx=3.5, ty=-2.0, shear=7, zx=0.9, zy=1.15)
    ours = augment.apply_affine_transform(x, **kwargs)
    theirs = legacy.apply_affine_transform(x, **kwargs)
    assert ours.shape == theirs.shape and ours.dtype == x.dtype
    np.testing.assert_allclose(ours, theirs, atol=0.01)


def test_apply_affine_transform_channels_last_and_nearest_order_match_legacy():
    x = _image((20, 20, 3))
    axes = dict(row_axis=0, col_axis=1, channel_axis=2)
    for order in (0, 1):
        ours = augment.apply_affine_transform(x, theta=90, tx=2, order=order, **axes)
        theirs = legacy.apply_affine_transform(x, theta=90, tx=2, order=order, **axes)
        np.testing.assert_allclose(ours, theirs, atol=0.01)


def test_apply_affine_transform_keeps_integer_dtype_and_returns_x_when_nothing_is_asked():
    x = (np.arange(16).reshape(1, 4, 4) * 10).astype(np.uint8)
    assert augment.apply_affine_transform(x) is x
    out = augment.apply_affine_transform(x, theta=90)
    np.testing.assert_array_equal(out, legacy.apply_affine_transform(x, theta=90))
    assert out.dtype == np.uint8


def test_translation_moves_along_the_named_axes_as_keras2_documents():
    x = np.zeros((3, 4), int)
    x[1, 1] = 1
    left, up = np.zeros_like(x), np.zeros_like(x)
    left[1, 0] = 1
    up[0, 1] = 1
    first, last = x[None], x[..., None]
    cl = dict(row_axis=0, col_axis=1, channel_axis=2)
    cases = [
        (first, dict(tx=1), left), (first, dict(ty=1), up),
        (first, dict(ty=1, row_axis=2, col_axis=1), left),
        (first, dict(tx=1, row_axis=2, col_axis=1), up),
        (last, dict(tx=1, **cl), left), (last, dict(ty=1, **cl), up),
        (last, dict(ty=1, row_axis=1, col_axis=0, channel_axis=2), left),
        (last, dict(tx=1, row_axis=1, col_axis=0, channel_axis=2), up),
    ]
    for image, kwargs, expected in cases:
        got = np.squeeze(augment.apply_affine_transform(image, **kwargs))
        np.testing.assert_array_equal(got, expected, err_msg=str(kwargs))
        ref = np.squeeze(legacy.apply_affine_transform(image, **kwargs))
        np.testing.assert_array_equal(got, ref, err_msg=f"legacy {kwargs}")
        minus = {k: (-v if k in ("tx", "ty") else v) for k, v in kwargs.items()}
        np.testing.assert_array_equal(np.squeeze(augment.apply_affine_transform(image, **minus)),
                                      np.squeeze(legacy.apply_affine_transform(image, **minus)))


def test_rotation_by_90_degrees_turns_a_2x2_image_counter_clockwise():
    x = np.array([[0, 1], [0, 0]])[..., None]
    out = augment.apply_affine_transform(x, theta=90, row_axis=0, col_axis=1, channel_axis=2)
    np.testing.assert_array_equal(out[..., 0], [[1, 0], [0, 0]])


@pytest.mark.parametrize("function,args", [
    ("random_rotation", (40,)), ("random_shear", (20,)), ("random_zoom", ((0.7, 1.3),)),
])
def test_random_functions_draw_keras2s_parameters_from_numpys_global_generator(function,
                                                                                 args):
    x = _image((3, 28, 28))
    np.random.seed(5)
    ours = getattr(augment, function)(x, *args)
    after_ours = np.random.rand()
    np.random.seed(5)
    theirs = getattr(legacy, function)(x, *args)
    after_theirs = np.random.rand()
    np.testing.assert_allclose(ours, theirs, atol=0.01)
    assert after_ours == after_theirs  # the same number of draws


def test_random_shift_draws_like_keras2_but_moves_each_axis_by_its_own_range():
    x = _image((2, 30, 30))
    np.random.seed(3)
    ours = augment.random_shift(x, 0.1, 0.3)  # wrg (width), hrg (height)
    np.random.seed(3)
    first, second = np.random.uniform(-0.3, 0.3), np.random.uniform(-0.1, 0.1)
    fixed = legacy.apply_affine_transform(x, ty=first * 30, tx=second * 30)
    np.testing.assert_allclose(ours, fixed, atol=0.01)
    np.random.seed(3)
    keras2 = legacy.random_shift(x, 0.1, 0.3)  # the height draw moved the columns
    assert np.abs(ours - keras2).max() > 10


def test_random_zoom_of_one_is_the_identity_and_a_bad_range_is_keras2s_error():
    x = _image((2, 28, 28))
    np.testing.assert_array_equal(augment.random_zoom(x, (1, 1)), x)
    assert augment.random_zoom(x, (5, 5)).shape == x.shape
    with pytest.raises(ValueError, match=r"^`zoom_range` should be a tuple or list of two"):
        augment.random_zoom(0, zoom_range=[0])
    with pytest.raises(ValueError, match=r"^`zoom_range` should be a tuple or list of two"):
        augment.random_zoom(x, (0, 0, 0))


@pytest.mark.parametrize("shape,axis", [((3, 8, 8), 0), ((8, 8, 5), 2), ((2, 6, 6), 2)])
def test_channel_shift_is_keras2s_for_any_channel_count(shape, axis):
    x = _image(shape)
    for intensity in (-40.0, 0.0, 25.5):
        ours = augment.apply_channel_shift(x, intensity, axis)
        theirs = legacy.apply_channel_shift(x, intensity, axis)
        np.testing.assert_array_equal(ours, theirs)
        assert ours.dtype == theirs.dtype
    np.random.seed(1)
    ours = augment.random_channel_shift(x, 30.0, axis)
    np.random.seed(1)
    np.testing.assert_array_equal(ours, legacy.random_channel_shift(x, 30.0, axis))


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("low,high", [(0, 255), (0.2, 180.7), (-1024, 1024), (30, 3000)])
def test_brightness_shift_is_keras2s_pillow_arithmetic(channels, low, high):
    x = np.random.RandomState(2).uniform(low, high, (5, 7, channels)).astype(np.float32)
    for factor in (0.4, 1.0, 1.7):
        for scale in (True, False):
            ours = augment.apply_brightness_shift(x, factor, scale)
            theirs = legacy.apply_brightness_shift(x, factor, scale)
            np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-3,
                                       err_msg=f"{factor} {scale}")


def test_random_brightness_keeps_or_stretches_levels_like_keras2():
    for value in (128.0, 1024.0, -1024.0):
        img = np.full((1, 1, 3), value)
        np.testing.assert_array_equal(augment.random_brightness(img, [1, 1], False), img)
        np.testing.assert_array_equal(augment.random_brightness(img, [1, 1], True), 0 * img)
    with pytest.raises(ValueError, match=r"^`brightness_range should be tuple or list"):
        augment.random_brightness(0, [0])
    x = _image((6, 6, 5))  # five channels: Keras 2's Pillow refused them, here they work
    assert augment.apply_brightness_shift(x, 1.5).shape == (6, 6, 5)


def test_flip_axis_and_transform_matrix_offset_center_are_keras2s():
    x = _image((3, 4, 5))
    for axis in range(3):
        np.testing.assert_array_equal(augment.flip_axis(x, axis), legacy.flip_axis(x, axis))
    m = np.array([[0.8, -0.3, 2.0], [0.4, 1.1, -1.0], [0, 0, 1]])
    np.testing.assert_allclose(augment.transform_matrix_offset_center(m, 7, 12),
                               legacy.transform_matrix_offset_center(m, 7, 12))


def test_axis_checks_raise_keras2s_errors_first():
    x = _image((3, 8, 8))
    cases = [
        (dict(row_axis=1, col_axis=1), r"^'row_axis', 'col_axis', and 'channel_axis' must be"),
        (dict(row_axis=3, col_axis=1, channel_axis=0), r"^Invalid axis' indices: \{3\}"),
        (dict(row_axis=0, col_axis=2, channel_axis=1), "^Channels are allowed and the first"),
    ]
    for kwargs, pattern in cases:
        with pytest.raises(ValueError, match=pattern):
            augment.apply_affine_transform(x, theta=10, **kwargs)
    with pytest.raises(ValueError, match="^Input arrays must be multi-channel 2D images.*x"):
        augment.apply_affine_transform(x[0], theta=10)
    with pytest.raises(ValueError, match="order=3 is not supported.*0 \\(nearest\\)"):
        augment.apply_affine_transform(x, theta=10, order=3)


def test_image_file_helpers_round_trip_as_keras2s(tmp_path):
    x = (np.random.RandomState(0).rand(6, 9, 3) * 255).astype(np.uint8)
    augment.save_img(tmp_path / "a.png", x, scale=False)
    img = augment.load_img(tmp_path / "a.png", target_size=(6, 9))
    np.testing.assert_array_equal(augment.img_to_array(img), x.astype(np.float32))
    assert augment.array_to_img(x).size == (9, 6)
    assert augment.smart_resize(x.astype(np.float32), (3, 3)).shape == (3, 3, 3)


# ------------------------------------------------------------------------------------------
# Any channel count, where Keras 2 warned
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("channels", [2, 5, 10])
def test_any_channel_count_flows_fits_and_standardizes_with_keras2s_warning(channels):
    x = _image((6, 12, 12, channels))
    gen = ImageDataGenerator(featurewise_center=True, featurewise_std_normalization=True,
                             rotation_range=20, horizontal_flip=True, channel_shift_range=5)
    with pytest.warns(UserWarning, match=r"^Expected input to be images .*"
                                         rf"\({channels} channels\)"):
        gen.fit(x)
    assert gen.mean.shape == (1, 1, channels)
    with pytest.warns(UserWarning, match=r"^NumpyArrayIterator is set to use the data format"
                                         rf".*\({channels} channels\)"):
        it = gen.flow(x, np.arange(6), batch_size=3, seed=0)
    batch, labels = it[0]
    assert batch.shape == (3, 12, 12, channels) and np.isfinite(batch).all()
    one = gen.standardize(np.copy(x[0]))
    assert one.shape == (12, 12, channels)
    out = gen.apply_transform(x[0], {"theta": 90})
    np.testing.assert_allclose(out, np.rot90(x[0]), atol=1e-3)


def test_channels_first_with_two_channels_works_too():
    x = _image((4, 2, 10, 10))
    gen = ImageDataGenerator(data_format="channels_first", vertical_flip=True)
    with pytest.warns(UserWarning, match="channels on axis 1"):
        it = gen.flow(x, batch_size=4, shuffle=False, seed=1)
    assert it[0].shape == (4, 2, 10, 10)


# ------------------------------------------------------------------------------------------
# Errors users match: Keras 2's words first, then cnnlab's explanation
# ------------------------------------------------------------------------------------------

def test_batch_index_past_the_end_is_both_valueerror_and_indexerror():
    it = ImageDataGenerator().flow(np.zeros((27, 4, 4, 3)), batch_size=2)
    assert len(it) == 14
    for error in (ValueError, IndexError, augment.BatchIndexError):
        with pytest.raises(error, match=r"^Asked to retrieve element 14, but the Sequence "
                                        r"has length 14: .*numbered 0 to 13"):
            it[14]
    assert it[-1].shape == (1, 4, 4, 3)  # Python's negative indices still work


def test_error_messages_start_with_keras2s_words():
    gen = ImageDataGenerator(validation_split=0.5)
    x = np.zeros((10, 4, 4, 3))
    cases = [
        (lambda: gen.flow([x, np.zeros((9, 2))]),
         r"^All of the arrays in `x` should have the same length\. Found a pair with: "
         r"len\(x\[0\]\) = 10, len\(x\[\?\]\) = 9"),
        (lambda: gen.flow(x, np.zeros(9)),
         r"^`x` \(images tensor\) and `y` \(labels\) should have the same length\. Found: "
         r"x\.shape = \(10, 4, 4, 3\), y\.shape = \(9,\)"),
        (lambda: gen.flow(x, np.zeros(10), sample_weight=np.ones(3)),
         r"^`x` \(images tensor\) and `sample_weight` should have the same length"),
        (lambda: gen.flow(x, np.repeat([0, 1], 5), subset="validation"),
         r"^Training and validation subsets have different number of classes after the "
         r"split\. If your numpy arrays are sorted by the label, you might want to shuffle "
         r"them.*ignore_class_split=True"),
        (lambda: gen.flow(x, subset="test"), r'^Invalid subset name: test; expected '
                                             r'"training" or "validation"'),
        (lambda: gen.flow(np.arange(5)), r"^Input data in `NumpyArrayIterator` should have "
                                         r"rank 4"),
        (lambda: gen.fit(np.zeros((3, 10, 10))), r"^Input to `\.fit\(\)` should have rank 4"),
        (lambda: ImageDataGenerator(validation_split=5), r"^`validation_split` must be "
                                                         r"strictly between 0 and 1"),
        (lambda: ImageDataGenerator(data_format="unknown"), r'^`data_format` should be '
                                                            r'`"channels_last"`'),
        (lambda: ImageDataGenerator(zoom_range=(1, 2, 3)), r"^`zoom_range` should be a float "
                                                           r"or a tuple or list of two floats"),
        (lambda: ImageDataGenerator(brightness_range=1.2), r"^`brightness_range should be "
                                                           r"tuple or list of two floats"),
    ]
    for call, pattern in cases:
        with pytest.raises(ValueError, match=pattern):
            call()
    # and Keras 2's legacy copy says the same (so the pinned words are really Keras 2's)
    lgen = legacy.ImageDataGenerator(validation_split=0.5)
    with pytest.raises(ValueError, match=r"^`x` \(images tensor\) and `y` \(labels\) should"):
        lgen.flow(x, np.zeros(9))
    with pytest.raises(ValueError, match="^Training and validation subsets have different"):
        lgen.flow(x, np.repeat([0, 1], 5), subset="validation")


def test_zca_and_featurewise_std_warn_like_keras2_and_zoom_pair_is_accepted():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ImageDataGenerator(zca_whitening=True, featurewise_std_normalization=True)
    assert len(caught) == 2
    assert ImageDataGenerator(zoom_range=(2.0, 2.0)).zoom_range == [2.0, 2.0]
