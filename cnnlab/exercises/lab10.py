"""Lab 10 "Looking inside a ConvNet": exercises and their public cases (points and hidden cases:
:mod:`cnnlab.grading.hidden.lab10`).

Expected values come from hand computations written here with NumPy (the occlusion drops of a
linear score, the gradients of linear, quadratic and sine scores, Grad-CAM's weights by
``einsum``, FGSM's clipped step, the one-per-image top-k units written out by hand), from
``cnnlab.interpret`` (tested on its own against Keras, finite differences and brute-force
searches in ``tests/test_interpret.py``) run on small fixed-weight Keras models or arrays,
and from the rule for Grad-CAM's layer applied by hand to models whose layer names are written
here -- never from a notebook.  The probes use tiny models and arrays only (never
EfficientNet-Lite0), so every case runs in well under a second.
"""

from __future__ import annotations

import contextlib
import logging

import numpy as np

from cnnlab.exercise import Case, Exercise, allclose, equal

__all__ = [
    "EXERCISES",
    "reference_fgsm_step",
    "reference_grad_cam_heatmap",
    "reference_grad_cam_layer_name",
    "reference_occlusion_map_by_hand",
    "reference_saliency_by_finite_differences",
    "reference_top_patches",
]


def _uniform(seed, shape, low=0.0, high=1.0):
    return np.random.default_rng(seed).uniform(low, high, size=shape)


def _normal(seed, shape, scale=1.0):
    return np.random.default_rng(seed).normal(0.0, scale, size=shape)


def _tiny_classifier(input_shape, seed, classes=3, softmax=True):
    """Conv2D(4, 3, tanh) - GlobalAveragePooling2D - Dense(classes): fixed NumPy weights.

    Built the same way in the student's kernel (probe) and in the grader (expected).
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape)
    x = layers.Conv2D(4, 3, activation="tanh")(inputs)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(classes, activation="softmax" if softmax else None)(x)
    model = keras.Model(inputs, outputs)
    channels = input_shape[-1]
    model.set_weights([
        _normal(seed, (3, 3, channels, 4), 0.8).astype("float32"),
        _normal(seed + 1, (4,), 0.2).astype("float32"),
        _normal(seed + 2, (4, classes), 2.0).astype("float32"),
        _normal(seed + 3, (classes,), 0.2).astype("float32"),
    ])
    return model


@contextlib.contextmanager
def _quiet_retracing():
    """TensorFlow warns when predict is traced for many new models; each case builds one."""
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _keras_function(model):
    """The model as a NumPy function of a batch (what the notebook hands to the exercises)."""
    import keras

    def predict(batch):
        return keras.ops.convert_to_numpy(model(np.asarray(batch, dtype="float32"),
                                                training=False))
    return predict


# ----------------------------------------------------------------------------- 10.occlusion_loop


def reference_occlusion_map_by_hand(predict, image, class_index, patch, stride):
    """Zeiler & Fergus's occlusion map with a loop: output drop of ``class_index`` per square.

    ``predict`` maps a batch ``(N, H, W, C)`` to ``(N, classes)``; the square is filled with
    the image's mean colour; cell ``(i, j)`` covers rows ``i*stride .. i*stride+patch-1`` and
    columns ``j*stride .. j*stride+patch-1``.
    """
    image = np.asarray(image, dtype=np.float32)
    height, width = image.shape[:2]
    rows, cols = (height - patch) // stride + 1, (width - patch) // stride + 1
    colour = image.reshape(-1, image.shape[-1]).mean(axis=0)
    occluded = np.repeat(image[None], rows * cols, axis=0)
    for i in range(rows):
        for j in range(cols):
            occluded[i * cols + j, i * stride:i * stride + patch,
                     j * stride:j * stride + patch] = colour
    baseline = np.asarray(predict(image[None]))[0, class_index]
    scores = np.asarray(predict(occluded))[:, class_index]
    return (baseline - scores).reshape(rows, cols)


def _linear_scores(seed, shape, classes=2):
    weights = _normal(seed, (classes,) + tuple(shape))

    def predict(batch):
        batch = np.asarray(batch, dtype=np.float64)
        return np.stack([(batch * w).sum(axis=(1, 2, 3)) for w in weights], axis=1)
    return predict, weights


def _linear_drops_by_hand(seed, shape, class_index, patch, stride):
    """For a linear score S = sum(w * x) the drop of one square is sum_square w * (x - mean)."""
    _, weights = _linear_scores(seed, shape)
    image = _uniform(seed + 10, shape)
    colour = image.reshape(-1, shape[-1]).mean(axis=0)
    w = weights[class_index]
    rows, cols = (shape[0] - patch) // stride + 1, (shape[1] - patch) // stride + 1
    drops = np.zeros((rows, cols))
    for i in range(rows):
        for j in range(cols):
            square = (slice(i * stride, i * stride + patch), slice(j * stride, j * stride + patch))
            drops[i, j] = np.sum(w[square] * (image[square] - colour))
    return drops


def _linear_occlusion_case(name, seed, shape, class_index, patch, stride, hidden=False):
    def probe(f):
        predict, _ = _linear_scores(seed, shape)
        return np.asarray(f(predict, _uniform(seed + 10, shape), class_index, patch, stride),
                          dtype=np.float64)

    return Case(name, probe=probe,
                expected=lambda: _linear_drops_by_hand(seed, shape, class_index, patch, stride),
                compare=allclose(1e-5), hidden=hidden,
                hint="fill the square with the image's mean colour (one value per channel), "
                     "and return the score on the image minus the score on the occluded copy")


def _keras_occlusion_case(name, seed, shape, class_index, patch, stride, hidden=False,
                          hint=""):
    def probe(f):
        predict = _keras_function(_tiny_classifier(shape, seed))
        return np.asarray(f(predict, _uniform(seed + 10, shape), class_index, patch, stride),
                          dtype=np.float64)

    def expected():
        from cnnlab.interpret import occlusion_map

        with _quiet_retracing():
            return occlusion_map(_tiny_classifier(shape, seed), _uniform(seed + 10, shape),
                                 class_index, patch=patch, stride=stride, fill="mean",
                                 progress=False)

    return Case(name, probe=probe, expected=expected, compare=allclose(1e-5), hidden=hidden,
                hint=hint or "rows = (H - patch) // stride + 1 squares down, cols = "
                             "(W - patch) // stride + 1 across; square (i, j) starts at row "
                             "i * stride, column j * stride")


OCCLUSION_LOOP = Exercise(
    id="10.occlusion_loop",
    implementations=("cnnlab.interpret.attribution.occlusion_map",),
    name="occlusion_map_by_hand",
    title="Occlusion: slide a grey square and record the drop",
    reference=lambda: reference_occlusion_map_by_hand,
    cases=(
        _linear_occlusion_case("linear_score_by_hand_8x8", 1, (8, 8, 3), 0, 4, 4),
        _keras_occlusion_case("small_convnet_12x12_patch_4_stride_2", 2, (12, 12, 3), 1, 4, 2),
        _keras_occlusion_case("grayscale_non_square_10x14", 3, (10, 14, 1), 0, 4, 3,
                              hint="the map has (H - patch) // stride + 1 rows and "
                                   "(W - patch) // stride + 1 columns: H and W may differ"),
    ),
)


# ----------------------------------------------------------------------------- 10.saliency


def reference_saliency_by_finite_differences(score, image, h=1e-3):
    """max over channels of |dS/dx| by central differences, all perturbed copies in one batch."""
    image = np.asarray(image, dtype=np.float64)
    n = image.size
    steps = np.eye(n).reshape((n,) + image.shape) * h
    plus = score(image[None] + steps)
    minus = score(image[None] - steps)
    gradient = ((np.asarray(plus, np.float64) - np.asarray(minus, np.float64)) / (2 * h))
    return np.abs(gradient.reshape(image.shape)).max(axis=-1)


def _analytic_case(name, seed, shape, kind, hidden=False, hint=""):
    weights = _normal(seed, shape) * (3.0 if kind == "sine" else 1.0)
    image = _uniform(seed + 1, shape)

    def score(batch):
        batch = np.asarray(batch, dtype=np.float64)
        if kind == "linear":
            return (weights * batch).sum(axis=(1, 2, 3))
        if kind == "quadratic":
            return (weights * batch ** 2).sum(axis=(1, 2, 3))
        return np.sin(weights * batch).sum(axis=(1, 2, 3))

    def expected():  # the gradient by hand, then max over channels of its absolute value
        gradient = {"linear": weights, "quadratic": 2 * weights * image,
                    "sine": weights * np.cos(weights * image)}[kind]
        return np.abs(gradient).max(axis=-1)

    return Case(name, probe=lambda f: np.asarray(f(score, image), dtype=np.float64),
                expected=expected, compare=allclose(1e-4), hidden=hidden,
                hint=hint or "(S(x + h e) - S(x - h e)) / (2 h) for every pixel and channel, "
                             "then the absolute value, then the max over the channels")


def _keras_saliency_case(name, seed, shape, class_index, hidden=False):
    def probe(f):
        model = _tiny_classifier(shape, seed, softmax=False)
        predict = _keras_function(model)
        return np.asarray(f(lambda batch: predict(batch)[:, class_index],
                            _uniform(seed + 1, shape)), dtype=np.float64)

    def expected():
        from cnnlab.interpret import saliency_map

        return saliency_map(_tiny_classifier(shape, seed, softmax=False),
                            _uniform(seed + 1, shape), class_index)

    return Case(name, probe=probe, expected=expected, compare=allclose(2e-3), hidden=hidden,
                hint="score takes a batch and returns one score per image: put all the "
                     "perturbed copies in one batch (float64, then the model casts them)")


SALIENCY = Exercise(
    id="10.saliency",
    implementations=(
        "cnnlab.interpret.attribution.saliency_map",
        "cnnlab.interpret.surgery.input_gradient",
    ),
    name="saliency_by_finite_differences",
    title="Saliency is a gradient: finite differences",
    reference=lambda: reference_saliency_by_finite_differences,
    cases=(
        _analytic_case("linear_score_gradient_is_the_weights", 1, (4, 5, 3), "linear",
                       hint="for S = sum(w * x) the gradient is w: the map is the max over "
                            "channels of |w| (absolute value first, then the max)"),
        _analytic_case("quadratic_score", 2, (5, 5, 3), "quadratic"),
        _keras_saliency_case("small_convnet_logit", 3, (6, 6, 3), 1),
    ),
)


# ----------------------------------------------------------------------------- 10.gradcam_layer


_CONV_CLASSES = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose")


def reference_grad_cam_layer_name(model):
    """The last convolution, then on while the next layer keeps its output shape."""
    import keras

    tops = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    convs = [i for i, layer in enumerate(tops) if type(layer).__name__ in _CONV_CLASSES]
    if not convs:
        raise ValueError("the model has no convolution layer")
    i = convs[-1]
    while i + 1 < len(tops) and tuple(tops[i + 1].output.shape) == tuple(tops[i].output.shape):
        i += 1
    return tops[i].name


def _lecture_convnet():
    from cnnlab.models import build_convnet

    return build_convnet((28, 28, 1), 10)


def _conv_bn_relu():
    import keras
    from keras import layers

    return keras.Sequential([
        keras.Input((32, 32, 3)),
        layers.Conv2D(8, 3, name="conv_a"), layers.BatchNormalization(name="bn_a"),
        layers.ReLU(name="relu_a"),
        layers.Conv2D(16, 3, strides=2, name="conv_b"), layers.BatchNormalization(name="bn_b"),
        layers.ReLU(name="relu_b"),
        layers.GlobalAveragePooling2D(name="gap"), layers.Dense(5, name="logits"),
    ], name="conv_bn_relu")


def _layer_case(name, build, answer, hidden=False, hint=""):
    return Case(name, probe=lambda f: str(f(build())), expected=lambda: answer, compare=equal,
                hidden=hidden,
                hint=hint or "start at the last convolution layer, then move on while the next "
                             "layer's output has the same shape (batch norm, activation, "
                             "dropout); stop before pooling, flatten or dense")


GRADCAM_LAYER = Exercise(
    id="10.gradcam_layer",
    implementations=("cnnlab.interpret.attribution.grad_cam_layer",),
    name="grad_cam_layer_name",
    title="Which layer does Grad-CAM look at?",
    reference=lambda: reference_grad_cam_layer_name,
    cases=(
        _layer_case("lecture_convnet", _lecture_convnet, "conv2",
                    hint="the lecture's ConvNet: conv2 (with its ReLU built in) is followed "
                         "by a pooling layer, which changes the shape"),
        _layer_case("conv_bn_relu_then_global_pooling", _conv_bn_relu, "relu_b",
                    hint="batch norm and ReLU keep the convolution's output shape: take the "
                         "rectified maps, the last layer before global pooling"),
    ),
)


# ----------------------------------------------------------------------------- 10.gradcam_weights


def reference_grad_cam_heatmap(activations, gradients):
    """Grad-CAM at the layer's resolution: a_k = mean_ij G[i, j, k], ReLU(sum_k a_k A[..., k])."""
    activations = np.asarray(activations, dtype=np.float64)
    gradients = np.asarray(gradients, dtype=np.float64)
    alpha = gradients.mean(axis=(0, 1))
    return np.maximum(np.einsum("ijk,k->ij", activations, alpha), 0.0)


# By hand: A[..., 0] = [[1, 2], [3, 4]], A[..., 1] = [[0, 2], [1, 0]]; the gradients average to
# a_0 = 0.5 and a_1 = -1, so 0.5 A_0 - A_1 = [[0.5, -1], [0.5, 2]] and the ReLU gives:
_BY_HAND_A = np.stack([[[1.0, 2.0], [3.0, 4.0]], [[0.0, 2.0], [1.0, 0.0]]], axis=-1)
_BY_HAND_G = np.stack([[[0.5, 0.5], [0.5, 0.5]], [[-2.0, 0.0], [0.0, -2.0]]], axis=-1)
_BY_HAND_CAM = np.array([[0.5, 0.0], [0.5, 2.0]])


def _cam_case(name, make, expected=None, hidden=False, hint=""):
    return Case(name, probe=lambda f: np.asarray(f(*make()), dtype=np.float64),
                expected=expected or (lambda: reference_grad_cam_heatmap(*make())),
                compare=allclose(1e-6), hidden=hidden,
                hint=hint or "a_k is the mean of the gradients over the positions (i, j) of "
                             "map k: one weight per channel; then the weighted sum of the "
                             "maps over k, then the ReLU")


def _random_maps(seed, shape, negative=False):
    activations = np.maximum(_normal(seed, shape), 0.0)  # rectified feature maps
    gradients = _normal(seed + 1, shape, 0.1) + 0.02
    return activations, (-np.abs(gradients) if negative else gradients)


GRADCAM_WEIGHTS = Exercise(
    id="10.gradcam_weights",
    implementations=("cnnlab.interpret.attribution.grad_cam",),
    name="grad_cam_heatmap",
    title="Grad-CAM's weights and heat map",
    reference=lambda: reference_grad_cam_heatmap,
    cases=(
        _cam_case("two_by_two_by_hand", lambda: (_BY_HAND_A, _BY_HAND_G),
                  expected=lambda: _BY_HAND_CAM,
                  hint="by hand: a_0 = 0.5, a_1 = -1; 0.5 A_0 - A_1 = [[0.5, -1], [0.5, 2]], "
                       "and the ReLU sets the -1 to 0"),
        _cam_case("random_7x7x16", lambda: _random_maps(1, (7, 7, 16))),
    ),
)


# ----------------------------------------------------------------------------- 10.fgsm_step


def reference_fgsm_step(x, gradient, epsilon):
    """x + epsilon * sign(gradient), clipped to the pixel range 0..255, as floats."""
    x = np.asarray(x, dtype=np.float64)
    return np.clip(x + float(epsilon) * np.sign(np.asarray(gradient, dtype=np.float64)), 0, 255)


# By hand, epsilon = 1: 0 - 1 clips to 0; 100 + 1; 254.5 + 1 clips to 255; 255 + 1 clips to
# 255; a zero gradient leaves 30 alone (sign(0) = 0).
_FIVE_X = np.array([0.0, 100.0, 254.5, 255.0, 30.0])
_FIVE_G = np.array([-1.0, 0.3, 2.0, 1e-6, 0.0])
_FIVE_EXPECTED = np.array([0.0, 101.0, 255.0, 255.0, 30.0])


def _fgsm_case(name, make, epsilon, expected=None, hidden=False, hint=""):
    return Case(name, probe=lambda f: np.asarray(f(*make(), epsilon), dtype=np.float64),
                expected=expected or (lambda: reference_fgsm_step(*make(), epsilon)),
                compare=allclose(1e-6), hidden=hidden,
                hint=hint or "every pixel moves by exactly epsilon in the direction of the sign "
                             "of its gradient, then np.clip to 0..255")


def _image_and_gradient(seed, shape, dtype="uint8"):
    x = np.random.default_rng(seed).integers(0, 256, size=shape).astype(dtype)
    return x, _normal(seed + 1, shape, 1e-3)


FGSM_STEP = Exercise(
    id="10.fgsm_step",
    implementations=("cnnlab.interpret.adversarial.fgsm", "cnnlab.interpret.adversarial.pgd"),
    name="fgsm_step",
    title="The fast gradient sign step",
    reference=lambda: reference_fgsm_step,
    cases=(
        _fgsm_case("five_pixels_by_hand", lambda: (_FIVE_X, _FIVE_G), 1.0,
                   expected=lambda: _FIVE_EXPECTED,
                   hint="the size of the gradient does not matter, only its sign (and "
                        "sign(0) = 0); clip to 0..255 afterwards"),
        _fgsm_case("random_image_epsilon_2", lambda: _image_and_gradient(1, (8, 8, 3), "float32"),
                   2.0),
    ),
)


# ----------------------------------------------------------------------------- 10.top_patches


def reference_top_patches(activations, images, k, size, jump, start):
    """Zeiler & Fergus's top-k patches of one channel, one per image, through
    ``cnnlab.interpret`` (:func:`~cnnlab.interpret.top_k_activations`,
    :func:`~cnnlab.interpret.field_window`, :func:`~cnnlab.interpret.crop_window`)."""
    from cnnlab import interpret

    top = interpret.top_k_activations(activations, k=k, one_per_image=True)
    crops = [interpret.crop_window(images[n], interpret.field_window(r, c, size, jump, start))
             for n, r, c in zip(top["images"], top["rows"], top["cols"])]
    return {"images": [int(n) for n in top["images"]],
            "values": [float(v) for v in top["values"]], "crops": np.stack(crops)}


def _patch_inputs(seed, count=7, map_size=(5, 4), image_size=(11, 9), channels=2):
    """Distinct activations (no ties) and images, drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    activations = rng.permutation(count * map_size[0] * map_size[1]).reshape(
        count, *map_size).astype(np.float64) / 10 - 3.0
    images = rng.uniform(0, 255, size=(count, *image_size, channels)).round()
    return activations, images


# image 0 holds the two largest values (9 and 8): one per image, so image 2's 7 comes second
_HAND_ACTIVATIONS = np.array([
    [[9.0, 0.0, 0.0], [0.0, 8.0, 0.0], [0.0, 0.0, 0.0]],
    [[1.0, 2.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
    [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 7.0]],
])


def _by_hand_top_images(activations, k):
    """The selection written out: each image's largest value, then the k largest of those."""
    best = [(max(image.ravel()), n) for n, image in enumerate(np.asarray(activations))]
    best.sort(key=lambda pair: (-pair[0], pair[1]))
    return {"images": [n for _, n in best[:k]], "values": [float(v) for v, _ in best[:k]]}


def _selection_probe(args):
    def probe(f):
        result = f(*args)
        return {"images": [int(n) for n in result["images"]],
                "values": [float(v) for v in result["values"]]}

    return probe


def _selection_compare(got, expected):
    if got["images"] != expected["images"]:
        return False, f"images {got['images']}, expected {expected['images']}"
    return allclose(1e-9)(got["values"], expected["values"])


_SELECTION_HINT = ("take the largest activation of each image (np.argmax of that image's map), "
                   "then the k images with the largest of these, strongest first: one patch "
                   "per image, as Zeiler & Fergus")
_CROP_HINT = ("unit (r, c) sees rows start + r*jump - (size-1)//2 ... + size - 1 (and columns "
              "alike); copy the part inside the image into a (size, size, C) array of zeros")


def _selection_case(label, seed, k, hidden=False, **sizes):
    activations, images = _patch_inputs(seed, **sizes)
    args = (activations, images, k, 5, 2, 1)
    return Case(label, probe=_selection_probe(args),
                expected=lambda: _by_hand_top_images(activations, k),
                compare=_selection_compare, hidden=hidden, hint=_SELECTION_HINT)


def _crop_case(label, seed, k, size, jump, start, hidden=False, **sizes):
    activations, images = _patch_inputs(seed, **sizes)
    args = (activations, images, k, size, jump, start)
    return Case(label, probe=lambda f: np.asarray(f(*args)["crops"], dtype=np.float64),
                expected=lambda: reference_top_patches(*args)["crops"],
                compare=allclose(1e-6), hidden=hidden, hint=_CROP_HINT)


def _drawn_patch_sizes(seed):
    rng = np.random.default_rng(seed + 1)
    count = int(rng.integers(4, 10))
    sizes = {"count": count, "map_size": (int(rng.integers(3, 7)), int(rng.integers(3, 7))),
             "image_size": (int(rng.integers(8, 15)), int(rng.integers(8, 15))),
             "channels": int(rng.integers(1, 4))}
    field = {"size": int(rng.choice([3, 5, 7])), "jump": int(rng.integers(1, 4)),
             "start": int(rng.integers(0, 4))}
    return int(rng.integers(1, count + 1)), sizes, field


TOP_PATCHES = Exercise(
    id="10.top_patches",
    implementations=("cnnlab.interpret.features.top_activating_patches",
                     "cnnlab.interpret.features.top_k_activations"),
    name="top_patches",
    title="Zeiler & Fergus's top-k patches of a channel",
    reference=lambda: reference_top_patches,
    cases=(
        Case("one_patch_per_image",
             probe=_selection_probe((_HAND_ACTIVATIONS, np.zeros((3, 8, 8, 1)), 2, 3, 2, 1)),
             expected=lambda: {"images": [0, 2], "values": [9.0, 7.0]},
             compare=_selection_compare,
             hint="image 0 holds the two largest values (9 and 8) but gives one patch only; "
                  "image 2's 7 comes next"),
        _selection_case("strongest_images_first", seed=100, k=4),
        _crop_case("receptive_field_crops", seed=101, k=4, size=5, jump=2, start=1),
        _crop_case("crops_past_the_border_are_zero", seed=102, k=7, size=7, jump=2, start=0),
    ),
)


EXERCISES = [OCCLUSION_LOOP, SALIENCY, GRADCAM_LAYER, GRADCAM_WEIGHTS, FGSM_STEP,
             TOP_PATCHES]
