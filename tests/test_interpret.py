"""cnnlab.interpret against independent references.

References: central finite differences of NumPy float64 forward passes of the small models
(input gradients, saliency, smoothgrad; saliency, Grad-CAM and FGSM under JAX); a NumPy
convolution (feature maps); a brute-force double loop (occlusion); the Grad-CAM formula with
the gradient worked out by hand (global average pooling then a dense layer:
d S_c / d A_k(i, j) = W[k, c] / (h w)) and with the Keras-io recipe on a ``tf.GradientTape``;
the ReLU backward rules written in NumPy on a two-layer network (guided backprop, DeConvNet);
``keras.losses`` on the softmax output, differentiated on a tape (FGSM; the tape tests run
under TensorFlow only); a model whose output depends on one image region only; and, for the
top-9 patches, loops over every unit of a two-convolution model in NumPy, with each crop fed
back alone.  One test measures FGSM on EfficientNet-Lite0 with chelsea.
"""

import os
import subprocess
import sys
import textwrap

import matplotlib

matplotlib.use("Agg")

import cnnlab  # noqa: E402,F401  (first: quiets TensorFlow's start-up log)
import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from keras import layers  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from skimage.transform import resize as skimage_resize  # noqa: E402

from cnnlab import interpret  # noqa: E402
from photos import imagenet_input  # noqa: E402

RNG = np.random.default_rng(0)
IMAGE = RNG.uniform(0.2, 0.8, size=(8, 8, 3)).astype(np.float32)


def _smooth_layers():
    """A small tanh ConvNet (no ReLU kinks, so finite differences are exact enough)."""
    return [
        layers.Conv2D(4, 3, activation="tanh", name="conv1"),
        layers.Conv2D(5, 3, activation="tanh", name="conv2"),
        layers.Flatten(name="flatten"),
        layers.Dense(3, activation="softmax", name="probs"),
    ]


def _functional(stack, input_shape):
    inputs = keras.Input(input_shape)
    x = inputs
    for layer in stack:
        x = layer(x)
    return keras.Model(inputs, x)


def _set_random_weights(model, seed, scale=0.6):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, scale, w.shape).astype(w.dtype)
                       for w in model.get_weights()])
    return model


@pytest.fixture(scope="module")
def smooth():
    """Functional tanh ConvNet ending in Dense(activation="softmax")."""
    return _set_random_weights(_functional(_smooth_layers(), (8, 8, 3)), 1)


@pytest.fixture(scope="module")
def smooth_sequential(smooth):
    model = keras.Sequential([keras.Input((8, 8, 3))] + _smooth_layers())
    model.set_weights(smooth.get_weights())
    return model


def _numpy_conv_tanh(batch, kernel, bias):
    """Valid cross-correlation of a batch (N, H, W, C), plus bias, then tanh: NumPy float64."""
    windows = np.lib.stride_tricks.sliding_window_view(batch, kernel.shape[:2], axis=(1, 2))
    return np.tanh(np.einsum("nijcab,abcf->nijf", windows, kernel) + bias)


@pytest.fixture(scope="module")
def logits64(smooth):
    """The logits of ``smooth`` computed in NumPy float64: the reference class scores."""
    k1, b1, k2, b2, w3, b3 = [w.astype(np.float64) for w in smooth.get_weights()]

    def logits(batch):
        maps = _numpy_conv_tanh(_numpy_conv_tanh(np.asarray(batch, np.float64), k1, b1), k2, b2)
        return maps.reshape(len(maps), -1) @ w3 + b3

    return logits


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _finite_difference_gradient(fn, x, h=1e-5):
    """Central differences of ``fn``, which maps a float64 batch to one number per image
    (all the shifted copies of ``x`` are evaluated in one batch)."""
    x = np.asarray(x, dtype=np.float64)
    shifts = np.eye(x.size).reshape((x.size,) + x.shape) * h
    values = np.asarray(fn(np.concatenate([x + shifts, x - shifts])), dtype=np.float64)
    return ((values[:x.size] - values[x.size:]) / (2 * h)).reshape(x.shape)


def _score64(logits, class_index):
    return lambda batch: logits(batch)[:, class_index]


needs_tensorflow = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                      reason="the reference is computed on a tf.GradientTape")


# --------------------------------------------------------------------------- gradients


def test_input_gradient_equals_finite_differences(logits64, smooth):
    # d p_1 / d x of the model as it is (softmax included), for a batch of two images.
    batch = np.stack([IMAGE, IMAGE[::-1]])
    grad = interpret.input_gradient(lambda t: smooth(t)[:, 1], batch)
    for image, got in zip(batch, grad):
        reference = _finite_difference_gradient(lambda b: _softmax(logits64(b))[:, 1], image)
        np.testing.assert_allclose(got, reference, atol=1e-5)


def test_input_gradient_on_a_backend_without_gradients_names_the_ones_to_set(monkeypatch,
                                                                            smooth):
    from cnnlab import devices

    monkeypatch.setattr(devices, "keras_backend", lambda: "numpy")
    with pytest.raises(ValueError, match="input_gradient is not available on the 'numpy' "
                                         "backend; set KERAS_BACKEND to jax or tensorflow or "
                                         "torch"):
        interpret.input_gradient(lambda t: smooth(t)[:, 1], IMAGE[None])


def test_saliency_is_max_abs_logit_gradient_over_channels(smooth, smooth_sequential, logits64):
    reference = _finite_difference_gradient(_score64(logits64, 2), IMAGE)
    for model in (smooth, smooth_sequential):
        saliency, gradient = interpret.saliency_map(model, IMAGE, 2, return_gradient=True)
        np.testing.assert_allclose(gradient, reference, atol=2e-5)
        np.testing.assert_allclose(saliency, np.abs(reference).max(axis=-1), atol=2e-5)
        assert saliency.shape == (8, 8)


def test_saliency_uses_the_score_before_the_softmax_not_the_probability(smooth, logits64):
    def probability(batch):
        return _softmax(logits64(batch))[:, 2]

    of_probability = _finite_difference_gradient(probability, IMAGE)
    _, gradient = interpret.saliency_map(smooth, IMAGE, 2, return_gradient=True)
    assert np.abs(gradient - of_probability).max() > 10 * 2e-5


def test_smoothgrad_is_reproducible_with_its_seed(smooth):
    first = interpret.saliency_map(smooth, IMAGE, 0, method="smoothgrad", samples=6, seed=3)
    again = interpret.saliency_map(smooth, IMAGE, 0, method="smoothgrad", samples=6, seed=3,
                                   batch_size=4)
    other = interpret.saliency_map(smooth, IMAGE, 0, method="smoothgrad", samples=6, seed=4)
    np.testing.assert_allclose(first, again, rtol=1e-5, atol=1e-7)
    assert np.abs(first - other).max() > 1e-4


def test_smoothgrad_equals_the_mean_of_gradients_at_the_same_noisy_images(smooth, logits64):
    # Noise drawn here as documented: default_rng(seed).normal(0, noise * (max - min)).
    rng = np.random.default_rng(7)
    sigma = 0.1 * float(IMAGE.max() - IMAGE.min())
    noisy = IMAGE + rng.normal(0.0, sigma, size=(4,) + IMAGE.shape).astype(np.float32)
    reference = np.mean([_finite_difference_gradient(_score64(logits64, 1), n) for n in noisy],
                        axis=0)
    _, gradient = interpret.saliency_map(smooth, IMAGE, 1, method="smoothgrad", samples=4,
                                         noise=0.1, seed=7, return_gradient=True)
    np.testing.assert_allclose(gradient, reference, atol=2e-5)


def test_smoothgrad_without_noise_is_the_gradient(smooth):
    plain = interpret.saliency_map(smooth, IMAGE, 1)
    smooth_map = interpret.saliency_map(smooth, IMAGE, 1, method="smoothgrad", samples=3,
                                        noise=0.0)
    np.testing.assert_allclose(smooth_map, plain, rtol=1e-5, atol=1e-7)


@pytest.fixture(scope="module")
def relu_mlp():
    """4x4x1 image -> Dense(6, relu) -> Dense(3): small enough for the rules by hand."""
    inputs = keras.Input((4, 4, 1))
    hidden = layers.Dense(6, activation="relu", name="hidden")(layers.Flatten()(inputs))
    model = keras.Model(inputs, layers.Dense(3, name="scores")(hidden))
    return _set_random_weights(model, 5, scale=1.0)


def _hand_backward(model, image, class_index, rule):
    w1, b1, w2, _ = model.get_weights()
    z = image.reshape(-1) @ w1 + b1
    upstream = w2[:, class_index]
    if rule == "gradient":
        local = upstream * (z > 0)
    elif rule == "deconvnet":
        local = upstream * (upstream > 0)
    else:
        local = upstream * (z > 0) * (upstream > 0)
    return (w1 @ local).reshape(image.shape)


@pytest.mark.parametrize("rule", ["gradient", "deconvnet", "guided"])
def test_relu_backward_rules_equal_the_hand_rules(relu_mlp, rule):
    image = np.random.default_rng(3).normal(size=(4, 4, 1)).astype(np.float32)
    w1, b1, w2, _ = relu_mlp.get_weights()
    z, upstream = image.reshape(-1) @ w1 + b1, w2[:, 0]
    # The three rules differ on this input: hidden units of every kind.
    assert ((z > 0) & (upstream < 0)).any() and ((z < 0) & (upstream > 0)).any()
    assert ((z > 0) & (upstream > 0)).any()
    _, gradient = interpret.saliency_map(relu_mlp, image, 0, method=rule, return_gradient=True)
    np.testing.assert_allclose(gradient, _hand_backward(relu_mlp, image, 0, rule), atol=1e-5)


def test_the_three_relu_rules_give_different_pictures(relu_mlp):
    image = np.random.default_rng(3).normal(size=(4, 4, 1)).astype(np.float32)
    maps = [interpret.saliency_map(relu_mlp, image, 0, method=m, return_gradient=True)[1]
            for m in ("gradient", "deconvnet", "guided")]
    assert np.abs(maps[0] - maps[1]).max() > 1e-3
    assert np.abs(maps[0] - maps[2]).max() > 1e-3
    assert np.abs(maps[1] - maps[2]).max() > 1e-3


def test_guided_backprop_follows_relu6_layers_and_leaves_the_model_unchanged():
    inputs = keras.Input((4, 4, 1))
    x = layers.Flatten()(inputs)
    z = layers.Dense(6, name="hidden")(x)
    model = keras.Model(inputs, layers.Dense(3)(layers.ReLU(6.0)(z)))
    _set_random_weights(model, 9, scale=3.0)
    image = np.random.default_rng(4).normal(size=(4, 4, 1)).astype(np.float32)
    w1, b1, w2, _ = model.get_weights()
    pre = image.reshape(-1) @ w1 + b1
    assert (pre > 6).any() and (pre < 0).any()
    upstream = w2[:, 1]
    expected = (w1 @ (upstream * (pre > 0) * (pre < 6) * (upstream > 0))).reshape(4, 4, 1)
    before = model.predict(image[None], verbose=0)
    _, gradient = interpret.saliency_map(model, image, 1, method="guided", return_gradient=True)
    np.testing.assert_allclose(gradient, expected, atol=1e-5)
    np.testing.assert_array_equal(model.predict(image[None], verbose=0), before)


def test_guided_backprop_without_relu_is_refused(smooth):
    with pytest.raises(ValueError, match="has none.*method='gradient'"):
        interpret.saliency_map(smooth, IMAGE, 0, method="guided")


# --------------------------------------------------------------------------- occlusion


def _output(model, image, class_index):
    return float(keras.ops.convert_to_numpy(model(image[None]))[0, class_index])


def _brute_force_occlusion(model, image, class_index, patch, stride, colour):
    base = _output(model, image, class_index)
    rows = []
    i = 0
    while i + patch <= image.shape[0]:
        row = []
        j = 0
        while j + patch <= image.shape[1]:
            occluded = image.copy()
            occluded[i:i + patch, j:j + patch, :] = colour
            row.append(base - _output(model, occluded, class_index))
            j += stride
        rows.append(row)
        i += stride
    return np.array(rows)


@pytest.mark.parametrize("fill", ["mean", "zero", 0.5])
def test_occlusion_map_equals_the_brute_force_double_loop(smooth, fill):
    colour = {"mean": IMAGE.mean(axis=(0, 1)), "zero": 0.0}.get(fill, fill)
    expected = _brute_force_occlusion(smooth, IMAGE, 1, patch=3, stride=2, colour=colour)
    got = interpret.occlusion_map(smooth, IMAGE, 1, patch=3, strides=2, fill=fill,
                                  batch_size=4, progress=False)
    assert got.shape == (3, 3) == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-6)
    scores = interpret.occlusion_map(smooth, IMAGE, 1, patch=3, strides=2, fill=fill,
                                     value="score", progress=False)
    base = _output(smooth, IMAGE, 1)
    np.testing.assert_allclose(scores, base - expected, atol=1e-6)


def test_occlusion_map_stride_is_a_deprecated_alias_of_strides(smooth):
    new = interpret.occlusion_map(smooth, IMAGE, 1, patch=3, strides=3, progress=False)
    with pytest.warns(DeprecationWarning, match="strides="):
        old = interpret.occlusion_map(smooth, IMAGE, 1, patch=3, stride=3, progress=False)
    assert new.shape == (2, 2)  # (8 - 3) // 3 + 1: the step is 3, not the default 8
    np.testing.assert_array_equal(old, new)
    with pytest.raises(TypeError, match="give strides= only"):
        interpret.occlusion_map(smooth, IMAGE, 1, patch=3, stride=3, strides=2)


# --------------------------------------------------------------------------- one region

# The region rows 4..7, columns 6..9 of a 16x16 image; everything else is cropped away.
REGION = (slice(4, 8), slice(6, 10))


@pytest.fixture(scope="module")
def region_model():
    crop = ((4, 8), (6, 6))
    inputs = keras.Input((16, 16, 3))
    x = layers.ZeroPadding2D(crop)(layers.Cropping2D(crop)(inputs))
    x = layers.Conv2D(4, 1, use_bias=False, activation="relu", name="conv")(x)
    x = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, layers.Dense(3, activation="softmax", name="probs")(x))
    rng = np.random.default_rng(11)
    kernel = np.abs(rng.normal(size=(1, 1, 3, 4))).astype(np.float32)
    dense = rng.normal(size=(4, 3)).astype(np.float32)
    dense[:, 0] = np.abs(dense[:, 0])  # class 0: positive weights, so Grad-CAM is positive
    model.set_weights([kernel, dense, np.zeros(3, np.float32)])
    return model


@pytest.fixture(scope="module")
def region_image():
    return np.random.default_rng(12).uniform(0.1, 1.0, size=(16, 16, 3)).astype(np.float32)


def _outside(mask_shape):
    outside = np.ones(mask_shape, dtype=bool)
    outside[REGION] = False
    return outside


@pytest.mark.parametrize("method", ["gradient", "guided", "smoothgrad"])
def test_saliency_puts_all_its_mass_on_the_region_the_output_depends_on(region_model,
                                                                        region_image, method):
    saliency = interpret.saliency_map(region_model, region_image, 0, method=method, samples=3)
    assert saliency[_outside(saliency.shape)].max() == 0
    assert (saliency[REGION] > 0).all()


def test_grad_cam_puts_all_its_mass_on_the_region(region_model, region_image):
    cam = interpret.grad_cam(region_model, region_image, 0)
    assert cam.shape == (16, 16)
    assert cam[_outside(cam.shape)].max() == 0
    assert (cam[REGION] > 0).all()


def test_occlusion_changes_only_where_the_patch_covers_the_region(region_model, region_image):
    drops = interpret.occlusion_map(region_model, region_image, 0, patch=4, strides=2,
                                    progress=False)
    assert drops.shape == (7, 7)
    # Patch (i, j) covers rows 2i..2i+3, columns 2j..2j+3: it meets the region for
    # i in 1..3 and j in 2..4.
    covers = np.zeros((7, 7), dtype=bool)
    covers[1:4, 2:5] = True
    np.testing.assert_allclose(drops[~covers], 0.0, atol=1e-6)
    assert (np.abs(drops[covers]) > 1e-4).all()


# --------------------------------------------------------------------------- Grad-CAM


@pytest.fixture(scope="module")
def gap_model():
    """conv - conv (relu) - global average pooling - Dense(softmax)."""
    inputs = keras.Input((10, 10, 3))
    x = layers.Conv2D(4, 3, activation="relu", name="c1")(inputs)
    x = layers.Conv2D(5, 3, activation="relu", name="c2")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inputs, layers.Dense(3, activation="softmax", name="probs")(x))
    return _set_random_weights(model, 21)


GAP_IMAGE = np.random.default_rng(22).uniform(0, 1, size=(10, 10, 3)).astype(np.float32)


def test_grad_cam_equals_the_formula_with_the_gradient_worked_out_by_hand(gap_model):
    # After global average pooling and a dense layer, d logit_c / d A_k(i, j) = W[k, c] / 36
    # on the 6x6 maps of c2, so the weights are a_k = W[k, c] / 36.
    maps = keras.Model(gap_model.inputs[0], gap_model.get_layer("c2").output)
    activations = keras.ops.convert_to_numpy(maps(GAP_IMAGE[None]))[0]
    kernel = gap_model.get_layer("probs").get_weights()[0]
    for class_index in range(3):
        weights = kernel[:, class_index] / 36.0
        expected = np.maximum((activations * weights).sum(axis=-1), 0.0)
        got = interpret.grad_cam(gap_model, GAP_IMAGE, class_index, resize=False)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
        resized = interpret.grad_cam(gap_model, GAP_IMAGE, class_index)
        reference = skimage_resize(expected, (10, 10), order=1, mode="edge",
                                   anti_aliasing=False)
        np.testing.assert_allclose(resized, reference, atol=1e-5)


@needs_tensorflow
def test_grad_cam_equals_the_keras_io_recipe_on_a_gradient_tape():
    import tensorflow as tf

    inputs = keras.Input((10, 10, 3))
    x = layers.Conv2D(4, 3, activation="tanh", name="c1")(inputs)
    conv = layers.Conv2D(5, 3, activation="relu", name="c2")(x)
    x = layers.Dense(6, activation="tanh")(layers.Flatten()(conv))
    logits = layers.Dense(3, name="logits")(x)
    model = keras.Model(inputs, layers.Activation("softmax")(logits))
    _set_random_weights(model, 23)
    grad_model = keras.Model(inputs, [conv, logits])
    image = tf.convert_to_tensor(GAP_IMAGE[None])
    with tf.GradientTape() as tape:
        activations, scores = grad_model(image)
        score = scores[:, 1]
    grads = tape.gradient(score, activations)[0].numpy()
    activations = activations[0].numpy()
    expected = np.maximum((activations * grads.mean(axis=(0, 1))).sum(axis=-1), 0.0)
    assert expected.max() > 0
    got = interpret.grad_cam(model, GAP_IMAGE, 1, resize=False)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


def test_grad_cam_without_class_index_explains_the_top_class(gap_model):
    top = int(gap_model.predict(GAP_IMAGE[None], verbose=0).argmax())
    np.testing.assert_allclose(interpret.grad_cam(gap_model, GAP_IMAGE),
                               interpret.grad_cam(gap_model, GAP_IMAGE, top))


def test_grad_cam_layer_is_the_last_conv_and_the_elementwise_layers_after_it():
    inputs = keras.Input((12, 12, 3))
    x = layers.Conv2D(4, 3, name="c1")(inputs)
    x = layers.ReLU(name="r1")(layers.BatchNormalization(name="bn1")(x))
    x = layers.MaxPooling2D(name="pool")(x)
    x = layers.Conv2D(6, 3, name="c2")(x)
    x = layers.BatchNormalization(name="bn2")(x)
    x = layers.ReLU(name="r2")(x)
    x = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, layers.Dense(3)(x))
    assert interpret.grad_cam_layer(model).name == "r2"
    sequential = keras.Sequential([keras.Input((12, 12, 3)), layers.Conv2D(4, 3, name="c"),
                                   layers.Activation("relu", name="a"),
                                   layers.MaxPooling2D(name="p"), layers.Flatten(),
                                   layers.Dense(2)])
    assert interpret.grad_cam_layer(sequential).name == "a"


def test_grad_cam_looks_inside_a_nested_base_model(gap_model):
    base = keras.Model(gap_model.inputs[0], gap_model.get_layer("c2").output, name="base")
    head = gap_model.get_layer("probs")
    inputs = keras.Input((10, 10, 3))
    nested = keras.Model(inputs, head(layers.GlobalAveragePooling2D()(base(inputs))))
    stacked = keras.Sequential([keras.Input((10, 10, 3)), base,
                                layers.GlobalAveragePooling2D(), head])
    expected = interpret.grad_cam(gap_model, GAP_IMAGE, 2)
    for model in (nested, stacked):
        assert interpret.grad_cam_layer(model) is base
        np.testing.assert_allclose(interpret.grad_cam(model, GAP_IMAGE, 2), expected,
                                   rtol=1e-5, atol=1e-7)


def test_grad_cam_on_a_model_without_convolution_asks_for_layer():
    model = keras.Sequential([keras.Input((8, 8, 1)), layers.Flatten(), layers.Dense(4)])
    with pytest.raises(ValueError, match="no convolutional layer.*pass layer="):
        interpret.grad_cam(model, np.zeros((8, 8, 1)))


def test_grad_cam_accepts_a_named_layer(gap_model):
    cam = interpret.grad_cam(gap_model, GAP_IMAGE, 0, layer="c1", resize=False)
    assert cam.shape == (8, 8)
    with pytest.raises(ValueError, match="4-D"):
        interpret.grad_cam(gap_model, GAP_IMAGE, 0, layer="gap")


# --------------------------------------------------------------------------- attacks


def _loss_gradient_from_probabilities(model, x, labels):
    """Cross-entropy of the softmax output (keras.losses), differentiated on a tape."""
    import tensorflow as tf

    tensor = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(tensor)
        loss = keras.losses.sparse_categorical_crossentropy(labels, model(tensor))
    return tape.gradient(loss, tensor).numpy()


@needs_tensorflow
def test_fgsm_equals_epsilon_times_the_sign_of_the_loss_gradient(smooth):
    batch = np.stack([IMAGE, IMAGE[::-1]])
    labels = np.array([0, 2])
    gradient = _loss_gradient_from_probabilities(smooth, batch, labels)
    assert np.abs(gradient).min() > 1e-7  # no sign ties
    adversarial, delta = interpret.fgsm(smooth, batch, labels, 0.05, clip=(0, 1),
                                        return_perturbation=True)
    np.testing.assert_allclose(adversarial, batch + 0.05 * np.sign(gradient), atol=1e-7)
    np.testing.assert_allclose(delta, 0.05 * np.sign(gradient), atol=1e-7)
    target = _loss_gradient_from_probabilities(smooth, IMAGE[None], np.array([1]))[0]
    targeted = interpret.fgsm(smooth, IMAGE, 1, 0.05, targeted=True, clip=(0, 1))
    np.testing.assert_allclose(targeted, IMAGE - 0.05 * np.sign(target), atol=1e-7)


@needs_tensorflow
def test_fgsm_clips_to_the_pixel_range(smooth):
    image = IMAGE.copy()
    image[:4] = 0.0
    image[4:] = 1.0
    gradient = _loss_gradient_from_probabilities(smooth, image[None], np.array([0]))[0]
    adversarial = interpret.fgsm(smooth, image, 0, 0.1, clip=(0, 1))
    np.testing.assert_allclose(adversarial, np.clip(image + 0.1 * np.sign(gradient), 0, 1),
                               atol=1e-7)
    assert adversarial.min() >= 0 and adversarial.max() <= 1


def _loss(model, x, label):
    probs = keras.ops.convert_to_numpy(model(x[None]))
    return float(keras.ops.convert_to_numpy(
        keras.losses.sparse_categorical_crossentropy(np.array([label]), probs))[0])


@pytest.mark.slow
def test_pgd_stays_in_the_ball_and_the_range_and_beats_fgsm(smooth):
    image = IMAGE.copy()
    image[0] = 0.0
    for random_start in (False, True):
        adversarial = interpret.pgd(smooth, image, 0, 0.05, steps=6, clip=(0, 1),
                                    random_start=random_start, seed=1)
        assert np.abs(adversarial - image).max() <= 0.05 + 1e-6
        assert adversarial.min() >= 0 and adversarial.max() <= 1
        assert _loss(smooth, adversarial, 0) > _loss(smooth, image, 0)
    bim = interpret.pgd(smooth, image, 0, 0.05, steps=6, clip=(0, 1))
    once = interpret.fgsm(smooth, image, 0, 0.05, clip=(0, 1))
    assert _loss(smooth, bim, 0) >= _loss(smooth, once, 0) - 1e-6
    targeted = interpret.pgd(smooth, image, 2, 0.05, steps=6, targeted=True, clip=(0, 1))
    assert _loss(smooth, targeted, 2) < _loss(smooth, image, 2)


def test_pgd_with_one_full_step_is_fgsm_and_random_starts_follow_the_seed(smooth):
    np.testing.assert_allclose(interpret.pgd(smooth, IMAGE, 1, 0.05, step=0.05, steps=1,
                                             clip=(0, 1)),
                               interpret.fgsm(smooth, IMAGE, 1, 0.05, clip=(0, 1)), atol=1e-7)
    first = interpret.pgd(smooth, IMAGE, 1, 0.05, steps=2, clip=(0, 1), random_start=True,
                          seed=5)
    again = interpret.pgd(smooth, IMAGE, 1, 0.05, steps=2, clip=(0, 1), random_start=True,
                          seed=5)
    np.testing.assert_array_equal(first, again)


@pytest.mark.parametrize("epsilon", [0, -1.0, 256.0])
def test_epsilon_outside_the_pixel_range_is_refused(smooth, epsilon):
    image = np.full((8, 8, 3), 100.0, np.float32)
    with pytest.raises(ValueError, match=r"epsilon .* outside the pixel range.*<= 255"):
        interpret.fgsm(smooth, image, 0, epsilon)
    with pytest.raises(ValueError, match="outside the pixel range"):
        interpret.pgd(smooth, image, 0, epsilon)


def test_images_outside_the_clip_range_are_refused(smooth):
    with pytest.raises(ValueError, match=r"outside clip=\(0, 1\).*preprocess="):
        interpret.fgsm(smooth, IMAGE * 5, 0, 0.1, clip=(0, 1))


# --------------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def gray_model():
    return keras.Sequential([keras.Input((8, 8, 1)), layers.Conv2D(2, 3), layers.Flatten(),
                             layers.Dense(4)])


@pytest.mark.parametrize("call", [
    lambda m, x: interpret.saliency_map(m, x, 4),
    lambda m, x: interpret.occlusion_map(m, x, 4, patch=2, progress=False),
    lambda m, x: interpret.grad_cam(m, x, 4),
    lambda m, x: interpret.fgsm(m, x, 4, 1.0),
    lambda m, x: interpret.saliency_map(m, x, -1),
], ids=["saliency", "occlusion", "grad_cam", "fgsm", "negative"])
def test_class_index_outside_the_model_classes_is_refused(gray_model, call):
    with pytest.raises(ValueError, match=r"outside the model's 4 classes: use 0\.\.3"):
        call(gray_model, np.zeros((8, 8, 1), np.float32))


def test_an_rgb_image_for_a_grayscale_model_names_both_shapes(gray_model):
    with pytest.raises(ValueError, match=r"shape \(8, 8, 3\).*input \(8, 8, 1\).*1 channel"):
        interpret.saliency_map(gray_model, np.zeros((8, 8, 3)), 0)
    # a 2-D grayscale image is accepted for a one-channel model
    assert interpret.saliency_map(gray_model, np.zeros((8, 8)), 0).shape == (8, 8)


def test_a_wrong_size_for_a_fixed_size_model_names_both_shapes(smooth):
    with pytest.raises(ValueError, match=r"shape \(9, 8, 3\).*\(8, 8, 3\).*resize it to 8x8"):
        interpret.grad_cam(smooth, np.zeros((9, 8, 3)), 0)
    with pytest.raises(ValueError, match=r"batch of 2 images"):
        interpret.saliency_map(smooth, np.zeros((2, 8, 8, 3)), 0)


# --------------------------------------------------------------------------- feature maps


def test_feature_maps_equal_a_numpy_convolution(smooth, smooth_sequential):
    kernel, bias = smooth.get_layer("conv1").get_weights()
    first = _numpy_conv_tanh(IMAGE[None].astype(np.float64), kernel, bias)
    kernel2, bias2 = smooth.get_layer("conv2").get_weights()
    second = _numpy_conv_tanh(first, kernel2, bias2)[0]
    first = first[0]
    for model in (smooth, smooth_sequential):
        maps = interpret.feature_maps(model, IMAGE)
        assert list(maps) == ["conv1", "conv2"]
        np.testing.assert_allclose(maps["conv1"], first, atol=1e-5)
        np.testing.assert_allclose(maps["conv2"], second, atol=1e-5)
    batch = interpret.feature_maps(smooth, np.stack([IMAGE, IMAGE]), layers=["conv2"])
    assert batch["conv2"].shape == (2, 4, 4, 5)
    picked = interpret.feature_maps(smooth, IMAGE, layers=[smooth.get_layer("flatten")])
    assert picked["flatten"].shape == (80,)
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        interpret.feature_maps(smooth, IMAGE, layers=["nope"])


# --------------------------------------------------------------------------- plots


def test_plot_filters_draws_rgb_patches_scaled_per_filter(smooth):
    fig = interpret.plot_filters(smooth.get_layer("conv1"))
    assert isinstance(fig, Figure)
    images = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(images) == 4
    kernel = smooth.get_layer("conv1").get_weights()[0]
    for k, image in enumerate(images):
        patch = kernel[..., k]
        np.testing.assert_allclose(image, (patch - patch.min()) / (patch.max() - patch.min()),
                                   atol=1e-6)
    assert "scaled to its own min" in fig.texts[0].get_text()
    assert "RGB" in fig.texts[0].get_text()


def test_plot_filters_draws_grayscale_for_one_input_channel():
    kernel = np.random.default_rng(3).normal(size=(5, 5, 1, 70))
    fig = interpret.plot_filters(kernel, max_filters=10)
    images = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(images) == 10 and images[0].shape == (5, 5)
    assert "10 of 70" in fig.texts[0].get_text() and "grayscale" in fig.texts[0].get_text()


def test_plot_feature_maps_titles_layers_and_limits_channels(smooth):
    fig = interpret.plot_feature_maps(smooth, IMAGE, max_channels=3)
    drawn = [ax for ax in fig.axes if ax.images]
    assert len(drawn) == 6  # 3 channels of conv1, 3 of conv2
    titles = " ".join(ax.get_title(loc="left") for ax in drawn)
    assert "conv1 6x6x4" in titles and "conv2 4x4x5" in titles


def test_overlay_returns_a_titled_figure_at_the_image_size(gap_model):
    cam = interpret.grad_cam(gap_model, GAP_IMAGE, 0, resize=False)
    fig = interpret.overlay(GAP_IMAGE, cam, title="Grad-CAM")
    heat = fig.axes[0].images[1].get_array()
    assert heat.shape == (10, 10) and np.isclose(heat.max(), 1.0)
    assert fig.axes[0].get_title() == "Grad-CAM"


# --------------------------------------------------------------------------- JAX backend

JAX_SCRIPT = textwrap.dedent("""
    import cnnlab
    import keras
    import numpy as np
    from keras import layers
    from cnnlab import interpret
    assert keras.backend.backend() == "jax"

    zeros = dict(kernel_initializer="zeros")  # weights set below; no XLA compile per shape
    inputs = keras.Input((6, 6, 2))
    x = layers.Conv2D(3, 3, activation="tanh", **zeros)(inputs)
    x = layers.Conv2D(4, 3, activation="relu", name="last", **zeros)(x)
    x = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, layers.Dense(3, activation="softmax", **zeros)(x))
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 0.7, w.shape).astype("float32")
                       for w in model.get_weights()])
    k1, b1, k2, b2, w3, b3 = [w.astype("float64") for w in model.get_weights()]
    image = rng.uniform(0.2, 0.8, (6, 6, 2))

    def conv(x, k, b):  # valid cross-correlation of a batch, NumPy float64
        windows = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(1, 2))
        return np.einsum("nijcab,abcf->nijf", windows, k) + b

    def logits(batch):  # the model's logits, in NumPy float64
        maps = np.maximum(conv(np.tanh(conv(batch, k1, b1)), k2, b2), 0)
        return maps.mean(axis=(1, 2)) @ w3 + b3

    def fd(fn, x, h=1e-6):
        shifts = np.eye(x.size).reshape((x.size,) + x.shape) * h
        values = fn(np.concatenate([x + shifts, x - shifts]))
        return ((values[:x.size] - values[x.size:]) / (2 * h)).reshape(x.shape)

    _, grad = interpret.saliency_map(model, image, 1, return_gradient=True)
    np.testing.assert_allclose(grad, fd(lambda b: logits(b)[:, 1], image), atol=1e-5)

    maps = np.maximum(conv(np.tanh(conv(image[None], k1, b1)), k2, b2), 0)[0]
    for c in range(3):
        expected = np.maximum((maps * w3[:, c] / maps[..., 0].size).sum(-1), 0)
        got = interpret.grad_cam(model, image, c, resize=False)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)

    def loss(batch, label):
        z = logits(batch)
        return np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1) - z[:, label]

    g = fd(lambda b: loss(b, 2), image)
    adversarial = interpret.fgsm(model, image, 2, 0.03, clip=(0, 1))
    big = np.abs(g) > 1e-4
    assert big.mean() > 0.5
    np.testing.assert_allclose(adversarial[big], (image + 0.03 * np.sign(g))[big], atol=1e-6)
    guided = interpret.saliency_map(model, image, 0, method="guided")
    assert guided.shape == (6, 6) and np.isfinite(guided).all()
    print("JAX OK")
""")



@pytest.mark.jax
def test_saliency_grad_cam_and_fgsm_agree_with_references_under_jax():
    pytest.importorskip("jax")
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    result = subprocess.run([sys.executable, "-c", JAX_SCRIPT], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "JAX OK" in result.stdout


# --------------------------------------------------------------------------- Lite0

# Measured (TensorFlow backend): chelsea's top-3 is Egyptian cat 0.396, tiger cat 0.326,
# tabby 0.165; after FGSM with epsilon = 0.5 intensity levels (of 0..255) it is tiger cat
# 0.595, tabby 0.212, Egyptian cat 0.036.  epsilon = 1 (an image that is still uint8) gives
# tiger cat 0.568, tabby 0.236, lynx 0.025.


@pytest.fixture(scope="module")
def lite0(lite0_imagenet):
    try:
        from cnnlab import pretrained
    except ModuleNotFoundError as exc:
        if exc.name != "cnnlab.pretrained":
            raise
        pytest.skip("cnnlab.pretrained (EfficientNet-Lite0 weights) is not written yet")
    return pretrained, lite0_imagenet  # weights="imagenet", built once per session (conftest)


@pytest.mark.slow
def test_fgsm_flips_lite0_on_chelsea_with_a_few_intensity_levels(lite0):
    pretrained, model = lite0
    chelsea = imagenet_input("chelsea")

    def top3(x):
        probs = model.predict(pretrained.preprocess_lite0(x[None]), verbose=0)
        return [index for index, _, _ in pretrained.decode_predictions(probs, top=3)[0]]

    assert top3(chelsea)[0] == 285
    flipped_at = None
    for epsilon in (0.5, 1, 2, 4):
        adversarial = interpret.fgsm(model, chelsea, 285, epsilon,
                                     preprocess=pretrained.preprocess_lite0)
        assert np.abs(adversarial - chelsea).max() <= epsilon + 1e-4
        if top3(adversarial)[0] != 285:
            flipped_at = epsilon
            break
    assert flipped_at == 0.5
    # One intensity level, rounded to uint8 (a real image file), flips it too.
    one_level = interpret.fgsm(model, chelsea, 285, 1.0, preprocess=pretrained.preprocess_lite0)
    as_uint8 = np.rint(one_level).astype(np.uint8).astype(np.float32)
    np.testing.assert_array_equal(as_uint8, one_level)
    assert top3(as_uint8)[0] != 285


# ------------------------------------------------------------------ top-9 patches (Zeiler & Fergus)


def _two_conv_model(seed=3):
    """conv 3x3 (valid, ReLU) then conv 3x3 stride 2 (valid): field 5, jump 2, start 2."""
    rng = np.random.default_rng(seed)
    inputs = keras.Input((13, 11, 2))
    x = layers.Conv2D(3, 3, activation="relu", name="c1")(inputs)
    x = layers.Conv2D(4, 3, strides=2, name="c2")(x)
    model = keras.Model(inputs, layers.GlobalAveragePooling2D()(x))
    for layer in model.layers:
        for weight in layer.weights:
            weight.assign(rng.normal(size=tuple(weight.shape)).astype("float32"))
    return model


def _brute_force_maps(model, images):
    """Both valid convolutions written as loops over the output pixels, in float64."""
    k1, b1 = (np.asarray(w, dtype=np.float64) for w in model.get_layer("c1").get_weights())
    k2, b2 = (np.asarray(w, dtype=np.float64) for w in model.get_layer("c2").get_weights())
    n, height, width, _ = images.shape
    first = np.zeros((n, height - 2, width - 2, 3))
    for i in range(height - 2):
        for j in range(width - 2):
            window = images[:, i:i + 3, j:j + 3, :]
            first[:, i, j] = np.einsum("nabc,abcf->nf", window, k1) + b1
    first = np.maximum(first, 0.0)
    rows, cols = (first.shape[1] - 3) // 2 + 1, (first.shape[2] - 3) // 2 + 1
    second = np.zeros((n, rows, cols, 4))
    for i in range(rows):
        for j in range(cols):
            window = first[:, 2 * i:2 * i + 3, 2 * j:2 * j + 3, :]
            second[:, i, j] = np.einsum("nabc,abcf->nf", window, k2) + b2
    return second


def test_top_patches_equal_a_brute_force_search_and_each_crop_alone_reproduces_its_unit():
    model = _two_conv_model()
    images = np.random.default_rng(4).uniform(0, 1, size=(6, 13, 11, 2)).astype(np.float32)
    found = interpret.top_activating_patches(model, "c2", images, [1, 3], k=4, progress=False)
    assert found["field"] == {"size": (5, 5), "jump": (2, 2), "start": (2.0, 2.0)}
    maps = _brute_force_maps(model, images.astype(np.float64))
    for index, channel in enumerate([1, 3]):
        # brute force: every image's best unit by a loop, then the images sorted by it
        best = []
        for n in range(len(images)):
            value, r, c = max((maps[n, r, c, channel], r, c) for r in range(maps.shape[1])
                              for c in range(maps.shape[2]))
            best.append((value, n, r, c))
        best.sort(key=lambda entry: -entry[0])
        entry = found["channels"][channel]
        assert list(entry["images"]) == [n for _, n, _, _ in best[:4]]
        assert list(entry["rows"]) == [r for _, _, r, _ in best[:4]]
        assert list(entry["cols"]) == [c for _, _, _, c in best[:4]]
        np.testing.assert_allclose(entry["values"], [v for v, *_ in best[:4]], rtol=1e-4)
        np.testing.assert_allclose(found["activations"][..., index], maps[..., channel],
                                   rtol=1e-4, atol=1e-4)
        for (value, n, r, c), crop, window in zip(best, entry["crops"], entry["windows"]):
            assert tuple(window) == (2 * r, 2 * c, 2 * r + 5, 2 * c + 5)  # valid: no padding
            np.testing.assert_array_equal(crop, images[n, 2 * r:2 * r + 5, 2 * c:2 * c + 5])
            # the crop is all the unit sees: on the crop alone, the layer gives the same value
            alone = _brute_force_maps(model, crop[None].astype(np.float64))
            assert alone.shape[1:3] == (1, 1)
            np.testing.assert_allclose(alone[0, 0, 0, channel], value, rtol=1e-9)
    figure = interpret.plot_top_patches(found)
    assert isinstance(figure, Figure)
    assert "Top-4 image patches of c2" in figure._suptitle.get_text()


def test_top_k_activations_all_positions_and_one_per_image():
    activations = np.zeros((3, 2, 2))
    activations[0, 0, 1], activations[0, 1, 0], activations[2, 1, 1] = 5.0, 4.0, 3.0
    each = interpret.top_k_activations(activations, k=2)
    assert list(each["images"]) == [0, 2] and list(each["values"]) == [5.0, 3.0]
    anywhere = interpret.top_k_activations(activations, k=2, one_per_image=False)
    assert list(anywhere["images"]) == [0, 0]
    assert list(zip(anywhere["rows"], anywhere["cols"])) == [(0, 1), (1, 0)]
    with pytest.raises(ValueError, match="maps\\[..., c\\]"):
        interpret.top_k_activations(np.zeros((2, 3, 3, 4)))


def test_field_windows_with_same_padding_start_in_the_padding_and_crops_fill_it():
    # conv 3x3 same then conv 3x3 stride 2 same on 8x8 (Keras pads 0 before, 1 after for the
    # stride-2 layer): field 5, jump 2, start 1 -> unit 0 sees rows -1..3
    window = interpret.field_window(0, 3, size=5, jump=2, start=1.0)
    assert window == (-1, 5, 4, 10)
    image = np.arange(64, dtype=np.float32).reshape(8, 8)
    crop = interpret.crop_window(image, window, fill=-1.0)
    expected = np.full((5, 5), -1.0)
    expected[1:, :3] = image[0:4, 5:8]
    np.testing.assert_array_equal(crop, expected)


def test_inside_keeps_only_units_whose_field_is_inside_the_image():
    inputs = keras.Input((8, 8, 1))
    x = layers.Conv2D(2, 3, padding="same", name="a")(inputs)
    x = layers.Conv2D(2, 3, strides=2, padding="same", name="b")(x)
    model = keras.Model(inputs, x)
    images = np.random.default_rng(5).uniform(size=(3, 8, 8, 1)).astype(np.float32)
    found = interpret.top_activating_patches(model, "b", images, [0], k=3, inside=True,
                                             progress=False)
    # field 5, jump 2, start 1: rows -1..3 for unit 0 (out), 1..5 and 3..7 (in), 5..9 (out)
    kept = np.isfinite(found["activations"][0, ..., 0])
    assert kept.tolist() == [[r in (1, 2) and c in (1, 2) for c in range(4)] for r in range(4)]
    for window in found["channels"][0]["windows"]:
        assert window[0] >= 0 and window[1] >= 0 and window[2] <= 8 and window[3] <= 8
    with pytest.raises(ValueError, match="channels \\[2\\]"):
        interpret.top_activating_patches(model, "b", images, [2], progress=False)
