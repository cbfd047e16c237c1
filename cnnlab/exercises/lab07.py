"""Lab 07 "Training ConvNets well": exercises and their public cases (points and hidden
cases: :mod:`cnnlab.grading.hidden.lab07`).

Expected values come from Keras itself (``layers.BatchNormalization`` called with
``training=True/False``, ``keras.losses.CategoricalCrossentropy(label_smoothing=...)``),
``cnnlab.models.build_factorized_convnet`` counted by Keras, and hand formulas of the lectures
(the Fix deck's schedule: lr 0.01 halved every 50 epochs) -- never from a notebook.  The
references that checkpoints put in place are written independently, with NumPy.
"""

from __future__ import annotations

import functools

import numpy as np

from cnnlab.exercise import Case, Exercise, allclose

__all__ = [
    "EXERCISES",
    "reference_batchnorm_forward",
    "reference_factorized_convnet_params",
    "reference_learning_rate_at",
    "reference_moving_average_update",
    "reference_smoothed_cross_entropy",
]


# ----------------------------------------------------------------------- 07.factorized_params


def reference_factorized_convnet_params(input_channels, num_classes, batch_norm):
    """Trainable and non-trainable parameters of the Fix deck's factorised ConvNet, by hand.

    Four ConvBlocks (2 x [Conv(1x3), Conv(3x1)], 32-32-128-128 channels), two Subs
    (Conv(3x3, stride 2), 32 then 128 channels), global average pooling, Linear.  With BN the
    convolutions drop their bias and every convolution is followed by a BN of 4 x C parameters,
    2 x C of them (moving mean and variance) non-trainable.
    """
    trainable = non_trainable = 0

    def conv(kernel_h, kernel_w, c_in, c_out):
        nonlocal trainable, non_trainable
        trainable += kernel_h * kernel_w * c_in * c_out
        if batch_norm:
            trainable += 2 * c_out        # gamma, beta
            non_trainable += 2 * c_out    # moving mean, moving variance
        else:
            trainable += c_out            # bias

    channels = int(input_channels)
    for width in (32, 32, "sub", 128, 128, "sub"):
        if width == "sub":
            conv(3, 3, channels, channels)
            continue
        for _ in range(2):
            conv(1, 3, channels, width)
            conv(3, 1, width, width)
            channels = width
    trainable += channels * int(num_classes) + int(num_classes)
    return {"trainable": trainable, "non_trainable": non_trainable}


@functools.lru_cache(maxsize=None)
def _keras_counts(input_channels, num_classes, batch_norm):
    """Keras's own count of ``build_factorized_convnet`` (built once per configuration)."""
    from cnnlab.models import build_factorized_convnet

    model = build_factorized_convnet((8, 8, input_channels), num_classes, batch_norm=batch_norm)
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    non_trainable = sum(int(np.prod(v.shape)) for v in model.non_trainable_weights)
    return {"trainable": trainable, "non_trainable": non_trainable}


def _params_case(name, input_channels, num_classes, batch_norm, hint, hidden=False):
    def probe(f):
        counts = f(input_channels, num_classes, batch_norm)
        return {key: int(counts[key]) for key in ("trainable", "non_trainable")}

    return Case(name, probe=probe,
                expected=lambda: dict(_keras_counts(input_channels, num_classes, batch_norm)),
                hint=hint, hidden=hidden)


_NO_BN_HINT = ("a (1 x 3) convolution has 1 * 3 * C_in * C_out weights + C_out biases; a "
               "ConvBlock is 2 x [1x3, 3x1] = 4 convolutions; Sub is one 3x3 convolution that "
               "keeps the channels; the Linear layer has 128 * classes + classes")
_BN_HINT = ("with BN the convolutions have no bias (BN's beta replaces it); each BN after a "
            "C-channel convolution has gamma and beta (2 C, trainable) and the moving mean and "
            "variance (2 C, non-trainable)")

FACTORIZED_PARAMS = Exercise(
    id="07.factorized_params",
    implementations=(
        "cnnlab.models.factorized.build_factorized_convnet",
        "cnnlab.counters.count_params",
    ),
    name="factorized_convnet_params",
    title="The factorised ConvNet's parameters, by hand",
    reference=lambda: reference_factorized_convnet_params,
    cases=(
        _params_case("cifar100_without_batchnorm", 3, 100, False, _NO_BN_HINT),
        _params_case("cifar100_with_batchnorm", 3, 100, True, _BN_HINT),
    ),
)


# ----------------------------------------------------------------------- 07.batchnorm_forward


def reference_batchnorm_forward(x, gamma, beta, moving_mean, moving_variance, training,
                                epsilon=1e-3):
    """BatchNormalization over the last axis, with NumPy: batch statistics when ``training``,
    the moving averages otherwise; y = gamma * (x - mean) / sqrt(var + epsilon) + beta."""
    x = np.asarray(x, dtype=np.float64)
    if training:
        axes = tuple(range(x.ndim - 1))
        mean, variance = x.mean(axis=axes), x.var(axis=axes)
    else:
        mean = np.asarray(moving_mean, dtype=np.float64)
        variance = np.asarray(moving_variance, dtype=np.float64)
    return np.asarray(gamma) * (x - mean) / np.sqrt(variance + epsilon) + np.asarray(beta)


def _bn_inputs(seed, shape):
    """A batch far from zero mean / unit variance, and BN weights that are not the defaults."""
    rng = np.random.default_rng(seed)
    channels = shape[-1]
    x = rng.normal(2.0, 3.0, size=shape).astype("float32")
    gamma = rng.uniform(0.5, 2.0, channels).astype("float32")
    beta = rng.normal(0.0, 1.0, channels).astype("float32")
    moving_mean = rng.normal(1.0, 1.0, channels).astype("float32")
    moving_variance = rng.uniform(0.5, 4.0, channels).astype("float32")
    return x, gamma, beta, moving_mean, moving_variance


def _keras_bn_layer(input_shape, weights, epsilon=1e-3, momentum=0.99):
    import keras

    layer = keras.layers.BatchNormalization(epsilon=epsilon, momentum=momentum)
    layer.build(tuple(input_shape))
    layer.set_weights(list(weights))
    return layer


def _bn_case(name, seed, shape, training, epsilon=None, hint="", hidden=False,
             small_variance=False):
    def inputs():
        x, gamma, beta, mean, variance = _bn_inputs(seed, shape)
        if small_variance:  # epsilon matters when the variance is small
            x = (x * 0.01).astype("float32")
            variance = (variance * 1e-3).astype("float32")
        return x, gamma, beta, mean, variance

    def probe(f):
        x, gamma, beta, mean, variance = inputs()
        kwargs = {} if epsilon is None else {"epsilon": epsilon}
        return np.asarray(f(x, gamma, beta, mean, variance, training=training, **kwargs),
                          dtype=np.float64)

    def expected():
        import keras

        x, gamma, beta, mean, variance = inputs()
        layer = _keras_bn_layer(x.shape, (gamma, beta, mean, variance),
                                epsilon=1e-3 if epsilon is None else epsilon)
        return keras.ops.convert_to_numpy(layer(x, training=training)).astype(np.float64)

    return Case(name, probe=probe, expected=expected, compare=allclose(2e-4, 1e-4),
                hint=hint, hidden=hidden)


_TRAIN_HINT = ("training=True: normalise with the mean and variance of this batch, taken over "
               "every axis except the last (channels), the biased variance (divide by N)")
_INFER_HINT = ("training=False: normalise with moving_mean and moving_variance, not with the "
               "batch's own statistics")

BATCHNORM_FORWARD = Exercise(
    id="07.batchnorm_forward",
    name="batchnorm_forward",
    title="BatchNorm by hand, in training and in inference mode",
    reference=lambda: reference_batchnorm_forward,
    cases=(
        _bn_case("training_mode_feature_maps", 1, (16, 5, 5, 3), True, 1e-3, _TRAIN_HINT),
        _bn_case("inference_mode_feature_maps", 2, (16, 5, 5, 3), False, 1e-3, _INFER_HINT),
        _bn_case("default_epsilon_is_keras_0.001", 3, (8, 4), False, None,
                 "the default epsilon is Keras's 1e-3 (PyTorch uses 1e-5); it goes inside the "
                 "square root: sqrt(variance + epsilon)", small_variance=True),
    ),
)


# ------------------------------------------------------------------- 07.moving_average_update


def reference_moving_average_update(moving_mean, moving_variance, x, momentum=0.99):
    """One training step of BN's moving statistics, with NumPy:
    new = momentum * old + (1 - momentum) * batch statistic (biased batch variance)."""
    # per channel over every other axis; written as "old moves towards the batch statistic"
    channels = np.asarray(x, dtype=np.float64).reshape(-1, np.shape(x)[-1])
    old_mean, old_variance = np.asarray(moving_mean), np.asarray(moving_variance)
    return (old_mean + (1 - momentum) * (channels.mean(axis=0) - old_mean),
            old_variance + (1 - momentum) * (channels.var(axis=0) - old_variance))


def _moving_case(name, seed, shape, momentum=None, steps=1, hint="", hidden=False):
    def inputs():
        _, gamma, beta, mean, variance = _bn_inputs(seed, shape)
        rng = np.random.default_rng(seed + 100)
        batches = [rng.normal(3.0, 2.0, size=shape).astype("float32") for _ in range(steps)]
        return gamma, beta, mean, variance, batches

    def probe(f):
        _, _, mean, variance, batches = inputs()
        kwargs = {} if momentum is None else {"momentum": momentum}
        for batch in batches:
            mean, variance = f(mean, variance, batch, **kwargs)
        return np.stack([np.asarray(mean, dtype=np.float64),
                         np.asarray(variance, dtype=np.float64)])

    def expected():
        import keras

        gamma, beta, mean, variance, batches = inputs()
        layer = _keras_bn_layer(shape, (gamma, beta, mean, variance),
                                momentum=0.99 if momentum is None else momentum)
        for batch in batches:
            layer(batch, training=True)
        return np.stack([keras.ops.convert_to_numpy(layer.moving_mean),
                         keras.ops.convert_to_numpy(layer.moving_variance)]).astype(np.float64)

    return Case(name, probe=probe, expected=expected, compare=allclose(1e-4, 1e-4),
                hint=hint, hidden=hidden)


_MOVING_HINT = ("new = momentum * old + (1 - momentum) * batch statistic, per channel; the batch "
                "variance is the biased one (divide by N), as Keras computes it")

MOVING_AVERAGE_UPDATE = Exercise(
    id="07.moving_average_update",
    name="moving_average_update",
    title="BatchNorm's moving averages after one training step",
    reference=lambda: reference_moving_average_update,
    cases=(
        _moving_case("one_step_default_momentum_0.99", 11, (16, 4, 4, 3), None,
                     hint=_MOVING_HINT + "; Keras's default momentum is 0.99"),
        _moving_case("one_step_momentum_0.9", 12, (32, 5), 0.9, hint=_MOVING_HINT),
    ),
)


# ----------------------------------------------------------------------- 07.label_smoothing


def reference_smoothed_cross_entropy(y_true, y_pred, label_smoothing):
    """Per-sample cross-entropy against smoothed targets (1 - eps) * y_true + eps / K."""
    y_true = np.asarray(y_true, dtype=np.float64)
    log_p = np.log(np.asarray(y_pred, dtype=np.float64))
    # the plain cross-entropy, plus eps times the mean over classes of -log p, less eps times it
    plain = -np.sum(y_true * log_p, axis=-1)
    uniform = -np.mean(log_p, axis=-1)
    return (1.0 - label_smoothing) * plain + label_smoothing * uniform


def _smoothing_inputs(seed, samples, classes):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.5, size=(samples, classes))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    y_true = np.eye(classes)[rng.integers(0, classes, size=samples)]
    return y_true.astype("float32"), probabilities.astype("float32")


def _smoothing_case(name, seed, samples, classes, label_smoothing, hint, hidden=False):
    def probe(f):
        y_true, y_pred = _smoothing_inputs(seed, samples, classes)
        return np.asarray(f(y_true, y_pred, label_smoothing), dtype=np.float64).reshape(-1)

    def expected():
        import keras

        y_true, y_pred = _smoothing_inputs(seed, samples, classes)
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing,
                                                    reduction=None)
        return keras.ops.convert_to_numpy(loss(y_true, y_pred)).astype(np.float64)

    return Case(name, probe=probe, expected=expected, compare=allclose(1e-5, 1e-5), hint=hint,
                hidden=hidden)


_SMOOTH_HINT = ("smoothed target = (1 - eps) * y_true + eps / K with K the number of classes "
                "(every class gets eps / K, the true one also keeps 1 - eps); then one loss per "
                "sample: -sum(target * log(p)) over the classes")

LABEL_SMOOTHING = Exercise(
    id="07.label_smoothing",
    name="smoothed_cross_entropy",
    title="Cross-entropy with label smoothing",
    reference=lambda: reference_smoothed_cross_entropy,
    cases=(
        _smoothing_case("no_smoothing_is_plain_cross_entropy", 21, 6, 4, 0.0,
                        "with eps = 0 it is the usual cross-entropy, -log p[true class], one "
                        "value per sample"),
        _smoothing_case("slide_smoothing_0.1_ten_classes", 22, 8, 10, 0.1, _SMOOTH_HINT),
    ),
)


# -------------------------------------------------------------------------- 07.lr_schedule


def reference_learning_rate_at(epoch, initial_lr=0.01, halve_every=50):
    """The Fix deck's step schedule: ``initial_lr`` halved every ``halve_every`` epochs
    (epochs count from 0, as ``keras.callbacks.LearningRateScheduler`` passes them)."""
    return float(initial_lr) * 0.5 ** (int(epoch) // int(halve_every))


def _lr_case(name, epochs, kwargs, hint, hidden=False):
    def probe(f):
        return [float(f(epoch, **kwargs)) for epoch in epochs]

    def expected():  # the hand formula, written out: lr_0 / 2 ** floor(epoch / period)
        initial = kwargs.get("initial_lr", 0.01)
        period = kwargs.get("halve_every", 50)
        return [initial / 2 ** (epoch // period) for epoch in epochs]

    return Case(name, probe=probe, expected=expected, compare=allclose(1e-12, 1e-9), hint=hint,
                hidden=hidden)


LR_SCHEDULE = Exercise(
    id="07.lr_schedule",
    name="learning_rate_at",
    title="The learning rate halved on a schedule",
    reference=lambda: reference_learning_rate_at,
    cases=(
        _lr_case("slide_schedule_0.01_halved_every_50", [0, 1, 49, 50, 51, 99, 100, 149], {},
                 "the slide's schedule is a staircase, not a smooth decay: the rate stays the "
                 "same for halve_every whole epochs, then drops to half of what it was; "
                 "how many halvings have happened by a given epoch?"),
        _lr_case("other_start_and_period", list(range(10)), {"initial_lr": 0.1, "halve_every": 3},
                 "use the arguments initial_lr and halve_every, not 0.01 and 50"),
    ),
)


EXERCISES = [FACTORIZED_PARAMS, BATCHNORM_FORWARD, MOVING_AVERAGE_UPDATE, LABEL_SMOOTHING,
             LR_SCHEDULE]
