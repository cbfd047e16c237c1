"""Lab 09 "Transfer learning and fine-tuning on GPU": exercises and their public cases (points
and hidden cases: :mod:`cnnlab.grading.hidden.lab09`).

The references are computed here, in the grader, from independent sources: the lecture's
formulas and hand counts of the parameters, ``cnnlab.pretrained.preprocess_lite0`` (tested
against the packaged model), Keras' own ``trainable_weights`` and ``count_params``, and plain
Python sorting.  Every public probe builds its inputs from fixed seeds.
"""

from __future__ import annotations

import numpy as np

from cnnlab.exercise import Case, Exercise, allclose

__all__ = [
    "EXERCISES",
    "reference_build_linear_probe",
    "reference_freeze_all_but_last",
    "reference_preprocess_checked",
    "reference_two_phase_fine_tune",
    "reference_worst_predictions",
]


def _outcome(function, *args):
    """``[exception name or "no error", whether its message names the fix (mentions 255)]``.

    ``NotImplementedError`` is not caught: an untouched exercise stays ``not_attempted``."""
    try:
        function(*args)
    except NotImplementedError:
        raise
    except Exception as error:  # noqa: BLE001 - the student's code may raise anything
        return [type(error).__name__, "255" in str(error)]
    return ["no error", False]


# ----------------------------------------------------------------------- 09.preprocess_contract


def reference_preprocess_checked(images):
    """EfficientNet-Lite0's preprocessing with its input contract enforced.

    RGB channels last, values 0..255 (float or uint8); a batch whose values all lie in 0..1
    (already rescaled) or outside 0..255 (already preprocessed) raises ``ValueError`` naming
    the fix.  Returns ``(x - 127) / 128`` as float32; the input is never modified.
    """
    images = np.array(images, dtype=np.float32)
    if images.ndim < 3 or images.shape[-1] != 3:
        raise ValueError(f"expected RGB images (..., h, w, 3), got shape {images.shape}; "
                         "grayscale to RGB: np.repeat(x, 3, axis=-1)")
    low, high = float(images.min()), float(images.max())
    if low >= 0.0 and high <= 1.0:
        raise ValueError(f"the values are all in 0..1 (maximum {high:.3g}): the images look "
                         "rescaled already; pass the 0..255 images (or multiply by 255)")
    if low < 0.0 or high > 255.0:
        raise ValueError(f"the values span {low:.3g}..{high:.3g}, outside 0..255: already "
                         "preprocessed? preprocess RGB 0..255 images exactly once")
    return (images - 127.0) / 128.0


def _lite0_formula(images):
    """The packaged model's own preprocessing (cnnlab.pretrained, tested against the model)."""
    from cnnlab.pretrained import preprocess_lite0

    return np.asarray(preprocess_lite0(np.array(images, dtype=np.float32)), dtype=np.float64)


def _uint8_batch():
    """A fixed batch (2, 4, 4, 3) that holds 0, 127 and 255 and values in between."""
    values = np.array([0, 1, 64, 126, 127, 128, 200, 254, 255], dtype=np.uint8)
    return np.resize(values, (2, 4, 4, 3))


def _float_batch(seed, shape):
    return np.random.default_rng(seed).uniform(0, 255, size=shape).astype(np.float32)


def _values_case(name, make, hidden=False):
    return Case(
        name,
        probe=lambda f: np.asarray(f(make()), dtype=np.float64),
        expected=lambda: _lite0_formula(make()),
        compare=allclose(1e-5),
        hidden=hidden,
        hint="(x - 127) / 128 on the 0..255 values, same shape as the input",
    )


def _raises_case(name, make, hint, hidden=False, names_fix=True):
    return Case(
        name,
        probe=lambda f: _outcome(f, make())[:2 if names_fix else 1],
        expected=lambda: ["ValueError", True][:2 if names_fix else 1],
        hidden=hidden,
        hint=hint,
    )


_RESCALED_HINT = ("a batch whose values all lie in 0..1 was rescaled already: raise a ValueError "
                  "whose message says how to fix it (the model wants 0..255)")

PREPROCESS_CONTRACT = Exercise(
    id="09.preprocess_contract",
    implementations=(
        "cnnlab.transfer.preprocessing.preprocess_for",
        "cnnlab.pretrained.preprocess_lite0",
    ),
    name="preprocess_checked",
    title="The preprocessing contract: check the input, then (x - 127) / 128",
    reference=lambda: reference_preprocess_checked,
    cases=(
        _values_case("values_of_a_fixed_uint8_batch", _uint8_batch),
        _raises_case("a_batch_rescaled_to_0_1_raises_and_names_the_fix",
                     lambda: _float_batch(1, (2, 8, 8, 3)) / 255.0, _RESCALED_HINT),
        _raises_case("a_grayscale_batch_raises", lambda: _float_batch(2, (2, 8, 8, 1)),
                     "the last axis must be the 3 RGB channels: raise a ValueError otherwise",
                     names_fix=False),
    ),
)


# ----------------------------------------------------------------------------- 09.linear_probe


def reference_build_linear_probe(num_features, num_classes):
    """A linear classifier on features: ``Input(num_features)`` -> softmax ``Dense``."""
    import keras
    from keras import layers

    # a Sequential model (the lab's solution uses the functional API): the same two layers
    return keras.Sequential(
        [keras.Input(shape=(int(num_features),), name="features"),
         layers.Dense(int(num_classes), activation="softmax", name="predictions")],
        name="linear_probe")


def _probe_params(num_features, num_classes):
    return lambda build: int(build(num_features, num_classes).count_params())


def _probe_weighted_layers(num_features, num_classes):
    def probe(build):
        model = build(num_features, num_classes)
        return [[type(layer).__name__, [list(w.shape) for w in layer.weights]]
                for layer in model.layers if layer.weights]
    return probe


def _probe_softmax_of_affine(num_features, num_classes, seed):
    """Output shape, and the largest gap between the model and softmax(x W + b) from its own
    Dense weights (0 for a linear classifier with a softmax)."""
    def probe(build):
        import keras

        model = build(num_features, num_classes)
        x = np.random.default_rng(seed).normal(size=(5, num_features)).astype("float32")
        got = np.asarray(keras.ops.convert_to_numpy(model(x)), dtype=np.float64)
        dense = [layer for layer in model.layers if layer.weights]
        if len(dense) != 1:
            return [list(got.shape), float("inf")]
        kernel, bias = (np.asarray(keras.ops.convert_to_numpy(w), dtype=np.float64)
                        for w in dense[0].weights)
        logits = x.astype(np.float64) @ kernel + bias
        logits -= logits.max(axis=1, keepdims=True)
        softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        return [list(got.shape), float(np.abs(got - softmax).max())]
    return probe


def _affine_close(got, expected):
    if not isinstance(got, list) or len(got) != 2:
        return False, f"unexpected result {got!r}"
    if got[0] != expected[0]:
        return False, f"output shape {got[0]}, expected {expected[0]}"
    if not got[1] <= 1e-5:
        return False, "the outputs are not softmax(x W + b) of one Dense layer"
    return True, "a linear layer with a softmax"


def _linear_case(name, num_features, num_classes, what, hidden=False):
    if what == "params":
        return Case(name, probe=_probe_params(num_features, num_classes),
                    expected=lambda: num_features * num_classes + num_classes, hidden=hidden,
                    hint="one Dense layer: num_features x num_classes weights + num_classes "
                         "biases, nothing else")
    if what == "layers":
        return Case(name, probe=_probe_weighted_layers(num_features, num_classes),
                    expected=lambda: [["Dense", [[num_features, num_classes], [num_classes]]]],
                    hidden=hidden,
                    hint="a linear probe has exactly one layer with weights: "
                         "Dense(num_classes) on the features (no hidden layer)")
    return Case(name, probe=_probe_softmax_of_affine(num_features, num_classes, seed=7),
                expected=lambda: [[5, num_classes], 0.0], compare=_affine_close, hidden=hidden,
                hint="activation='softmax' on the Dense layer: each row is softmax(x W + b)")


LINEAR_PROBE = Exercise(
    id="09.linear_probe",
    name="build_linear_probe",
    title="A linear classifier on the backbone's features",
    reference=lambda: reference_build_linear_probe,
    cases=(
        _linear_case("parameters_1280_features_3_classes", 1280, 3, "params"),
        _linear_case("one_dense_layer_on_the_features", 1280, 3, "layers"),
        _linear_case("outputs_are_softmax_of_an_affine_map", 1280, 3, "softmax"),
    ),
)


# --------------------------------------------------------------------------- 09.freeze_to_count

_BLOCK_FILTERS = (4, 8, 8, 16, 16, 32)


def _block_model(num_blocks=4, input_shape=(16, 16, 3), num_classes=3, seed=0):
    """The small model of the freezing exercise: ``num_blocks`` blocks ``blockK_conv`` (3x3,
    same padding) - ``blockK_bn`` - ``blockK_relu``, then ``avg_pool`` and ``predictions``.

    Filters per block: 4, 8, 8, 16, 16, 32 (the first ``num_blocks``)."""
    import keras
    from keras import layers

    if not 1 <= num_blocks <= len(_BLOCK_FILTERS):
        raise ValueError(f"num_blocks must be 1..{len(_BLOCK_FILTERS)}, got {num_blocks}")
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for block, filters in enumerate(_BLOCK_FILTERS[:num_blocks], start=1):
        x = layers.Conv2D(filters, 3, padding="same", name=f"block{block}_conv")(x)
        x = layers.BatchNormalization(name=f"block{block}_bn")(x)
        x = layers.ReLU(name=f"block{block}_relu")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"block_model_{num_blocks}")


def reference_freeze_all_but_last(model, n_blocks):
    """Freeze the blocks (layers named ``blockK_...``) except the last ``n_blocks``; keep every
    BatchNormalization frozen and the other layers (the head) trainable.  Returns the number of
    parameters ``fit`` will update (``model.trainable_weights``)."""
    from keras import layers

    blocks = []
    for layer in model.layers:
        if layer.name.startswith("block"):
            block = layer.name.split("_")[0]
            if block not in blocks:
                blocks.append(block)
    kept = set(blocks[len(blocks) - n_blocks:]) if n_blocks > 0 else set()
    for layer in model.layers:
        if layer.name.startswith("block"):
            layer.trainable = (layer.name.split("_")[0] in kept
                               and not isinstance(layer, layers.BatchNormalization))
        else:
            layer.trainable = True
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def _freeze_probe(num_blocks, n_blocks, input_channels=3, num_classes=3):
    def probe(f):
        model = _block_model(num_blocks, input_shape=(16, 16, input_channels),
                            num_classes=num_classes)
        returned = f(model, n_blocks)
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        layer_names = sorted({layer.name for layer in model.layers
                              if any(w is t for w in layer.weights
                                     for t in model.trainable_weights)})
        return {"returned": int(returned), "trainable_weights": trainable,
                "trainable_layers": layer_names}
    return probe


def _freeze_expected(num_blocks, n_blocks, input_channels=3, num_classes=3):
    """By hand: a 3x3 convolution has 3 x 3 x C_in x C_out + C_out parameters; the head
    Dense(num_classes) on the last block's channels; BatchNorm stays frozen."""
    def expected():
        channels = (input_channels,) + _BLOCK_FILTERS[:num_blocks]
        kept = range(num_blocks - n_blocks + 1, num_blocks + 1) if n_blocks > 0 else range(0)
        convs = sum(3 * 3 * channels[k - 1] * channels[k] + channels[k] for k in kept)
        head = channels[-1] * num_classes + num_classes
        names = sorted([f"block{k}_conv" for k in kept] + ["predictions"])
        return {"returned": convs + head, "trainable_weights": convs + head,
                "trainable_layers": names}
    return expected


def _freeze_case(name, num_blocks, n_blocks, hidden=False, hint="", **options):
    return Case(
        name,
        probe=_freeze_probe(num_blocks, n_blocks, **options),
        expected=_freeze_expected(num_blocks, n_blocks, **options),
        hidden=hidden,
        hint=hint or "the convolutions of the last n_blocks blocks and the head train; every "
                     "BatchNormalization and the earlier blocks are frozen; return the total "
                     "size of model.trainable_weights",
    )


FREEZE_TO_COUNT = Exercise(
    id="09.freeze_to_count",
    implementations=("cnnlab.transfer.heads.unfreeze", "cnnlab.transfer.heads.trainable_summary"),
    name="freeze_all_but_last",
    title="Freeze all but the last blocks, and count what still trains",
    reference=lambda: reference_freeze_all_but_last,
    cases=(
        _freeze_case("four_blocks_keep_the_last_two", 4, 2),
        _freeze_case("four_blocks_keep_none_only_the_head_trains", 4, 0,
                     hint="n_blocks=0: only the head (predictions) trains"),
        _freeze_case("four_blocks_keep_all_batchnorm_still_frozen", 4, 4,
                     hint="even in the blocks that train, BatchNormalization stays frozen "
                          "(trainable=False)"),
    ),
)


# ------------------------------------------------------------------------ 09.two_phase_fine_tune


def reference_two_phase_fine_tune(model, backbone, data, n_blocks, head_lr, head_epochs=1,
                                  fine_tune_epochs=1, batch_size=16):
    """The lecture's two phases in plain Keras, on ``model`` (``backbone`` nested in it, then
    the head).  Phase 1: freeze the backbone, compile with ``Adam(head_lr)``, fit the head.
    Phase 2: unfreeze the last ``n_blocks`` blocks of the backbone (blocks as
    :func:`cnnlab.transfer.unfreeze` finds them), every BatchNormalization kept frozen, compile
    again with a new ``Adam(head_lr / 10)``, fit.  ``data``: ``(x, y)``, integer labels.
    Returns the model."""
    import keras

    from cnnlab import transfer

    x, y = data
    transfer.freeze(backbone)
    model.compile(optimizer=keras.optimizers.Adam(head_lr),
                  loss="sparse_categorical_crossentropy", jit_compile=False)
    model.fit(x, y, batch_size=batch_size, epochs=head_epochs, verbose=0)
    blocks = _weighted_blocks(backbone)
    if n_blocks > 0:
        transfer.unfreeze(backbone, from_layer=blocks[-n_blocks][1][0].name)
    model.compile(optimizer=keras.optimizers.Adam(head_lr / 10),
                  loss="sparse_categorical_crossentropy", jit_compile=False)
    model.fit(x, y, batch_size=batch_size, epochs=fine_tune_epochs, verbose=0)
    return model


def _weighted_blocks(backbone):
    """``[(block, [layers])]`` of the backbone that hold weights, in order: cnnlab.transfer's
    block detection (``blockK_...`` layers form block ``blockK``)."""
    from cnnlab.transfer import backbone_blocks

    return [(block, group) for block, group in backbone_blocks(backbone)
            if any(layer.weights for layer in group)]


def _two_phase_setup(num_blocks, side, num_classes, samples, seed):
    """A tiny model for the exercise: a backbone ``tiny_backbone`` of ``num_blocks`` blocks
    ``blockK_conv`` (3x3) - ``blockK_bn`` - ``blockK_relu`` and ``avg_pool``, nested in a model
    with the head ``predictions`` (Dense, softmax); synthetic images (uniform 0..1) and labels."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(side, side, 3), name="image")
    x = inputs
    for block, filters in enumerate(_BLOCK_FILTERS[:num_blocks], start=1):
        x = layers.Conv2D(filters, 3, padding="same", name=f"block{block}_conv")(x)
        x = layers.BatchNormalization(name=f"block{block}_bn")(x)
        x = layers.ReLU(name=f"block{block}_relu")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    backbone = keras.Model(inputs, x, name="tiny_backbone")
    image = keras.Input(shape=(side, side, 3), name="image")
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(backbone(image))
    model = keras.Model(image, outputs, name="tiny_transfer")
    rng = np.random.default_rng(seed)
    data = (rng.uniform(0, 1, size=(samples, side, side, 3)).astype("float32"),
            rng.integers(0, num_classes, size=samples))
    return model, backbone, data


def _leaf_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers"):
            yield from _leaf_layers(layer)
        else:
            yield layer


def _weight_snapshot(model):
    """``{layer: ([trainable-kind weights], [BatchNorm moving mean and variance])}`` as arrays."""
    import keras
    from keras import layers

    def values(weights):
        return [np.array(keras.ops.convert_to_numpy(w)) for w in weights]

    snapshot = {}
    for layer in _leaf_layers(model):
        if not layer.weights:
            continue
        if isinstance(layer, layers.BatchNormalization):
            statistics = [layer.moving_mean, layer.moving_variance]
            others = [w for w in layer.weights if all(w is not s for s in statistics)]
            snapshot[layer.name] = (values(others), values(statistics))
        else:
            snapshot[layer.name] = (values(layer.weights), [])
    return snapshot


def _moved(before, after, which):
    return sorted(name for name in before
                  if any(not np.array_equal(a, b)
                         for a, b in zip(before[name][which], after[name][which])))


def _two_phase_probe(num_blocks, n_blocks, head_lr, side=8, num_classes=3, samples=32, seed=0):
    """Runs the student's function on a tiny model with ``model.fit`` watched: each ``fit``
    call notes the optimizer and the weights before and after.  Consecutive calls with the same
    optimizer are one phase.  Per phase: the layers whose weights changed (``trained``), the
    BatchNorm layers whose moving statistics changed, the optimizer's learning rate after it."""
    def probe(f):
        import keras

        model, backbone, data = _two_phase_setup(num_blocks, side, num_classes, samples, seed)
        fit, calls = model.fit, []

        def watched_fit(*args, **kwargs):
            before = _weight_snapshot(model)
            result = fit(*args, **kwargs)
            calls.append((model.optimizer, before, _weight_snapshot(model)))
            return result

        model.fit = watched_fit
        f(model, backbone, data, n_blocks, head_lr, 1, 1)
        phases = []
        for optimizer, before, after in calls:
            if phases and phases[-1][0] is optimizer:
                phases[-1][2] = after
            else:
                phases.append([optimizer, before, after])
        return {"phases": len(phases),
                "trained": [_moved(before, after, 0) for _, before, after in phases],
                "statistics_moved": [_moved(before, after, 1) for _, before, after in phases],
                "learning_rate": [float(keras.ops.convert_to_numpy(optimizer.learning_rate))
                                  for optimizer, _, _ in phases]}
    return probe


def _two_phase_expected(num_blocks, n_blocks, head_lr, side=8, num_classes=3, samples=32,
                        seed=0):
    """Phase 1 trains the head alone at head_lr; phase 2, a new optimizer at head_lr / 10,
    trains the head and the layers with weights of the last n_blocks blocks (cnnlab.transfer's
    block detection), BatchNorm excepted; no moving statistic moves."""
    def expected():
        from keras import layers

        _, backbone, _ = _two_phase_setup(num_blocks, side, num_classes, 2, seed)
        kept = _weighted_blocks(backbone)[len(_weighted_blocks(backbone)) - n_blocks:]
        unfrozen = [layer.name for _, group in kept for layer in group
                    if layer.weights and not isinstance(layer, layers.BatchNormalization)]
        return {"phases": 2, "trained": [["predictions"], sorted(unfrozen + ["predictions"])],
                "statistics_moved": [[], []], "learning_rate": [head_lr, head_lr / 10]}
    return expected


def _two_phase_compare(got, expected):
    if not isinstance(got, dict) or set(got) != set(expected):
        return False, f"unexpected result {got!r}"
    if got["phases"] != 2:
        if got["phases"] == 1:
            return False, ("both fits used one optimizer: phase 2 did not compile again. Keras "
                           "fixes what trains when it compiles: compile (a new optimizer) after "
                           "changing trainable")
        return False, f"{got['phases']} phases (fits with a new optimizer), expected 2"
    for phase, moved in enumerate(got["statistics_moved"], start=1):
        if moved:
            return False, (f"phase {phase} moved the BatchNorm moving statistics of {moved}: keep "
                           "every BatchNormalization frozen (trainable = False)")
    head, fine = got["trained"]
    if head != expected["trained"][0]:
        return False, (f"phase 1 trained {head}: only the head (predictions) should train, the "
                       "backbone frozen")
    if fine != expected["trained"][1]:
        return False, (f"phase 2 trained {fine}, expected {expected['trained'][1]}: the head "
                       "and the layers of the last n_blocks blocks, BatchNorm excepted")
    rates, want = got["learning_rate"], expected["learning_rate"]
    if not np.allclose(rates, want, rtol=1e-5, atol=0):
        return False, (f"learning rates {rates} after the two phases, expected {want}: the head "
                       "at lr, then a new optimizer at lr / 10")
    return True, "the head alone, then the last blocks at a tenth of the rate, BatchNorm frozen"


def _two_phase_case(name, num_blocks, n_blocks, head_lr, hidden=False, hint="", **options):
    return Case(
        name,
        probe=_two_phase_probe(num_blocks, n_blocks, head_lr, **options),
        expected=_two_phase_expected(num_blocks, n_blocks, head_lr, **options),
        compare=_two_phase_compare,
        hidden=hidden,
        hint=hint or "phase 1: backbone.trainable = False, compile(Adam(lr)), fit; phase 2: "
                     "unfreeze the layers of the last n_blocks blocks except BatchNormalization, "
                     "compile(Adam(lr / 10)) again, fit",
    )


TWO_PHASE_FINE_TUNE = Exercise(
    id="09.two_phase_fine_tune",
    implementations=("cnnlab.transfer.fine_tuning.fine_tune", "cnnlab.transfer.heads.unfreeze"),
    name="two_phase_fine_tune",
    title="Fine-tune in two phases: the head, then the last blocks at a tenth of the rate",
    reference=lambda: reference_two_phase_fine_tune,
    cases=(
        _two_phase_case("three_blocks_fine_tune_the_last_one", 3, 1, 1e-3),
        _two_phase_case("four_blocks_fine_tune_the_last_two", 4, 2, 1e-2),
    ),
)


# ------------------------------------------------------------------------ 09.worst_predictions


def reference_worst_predictions(probabilities, labels, k=8):
    """Indices of the ``k`` samples whose true class got the lowest probability, worst first
    (ties: the lower index first)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels).astype(int).ravel()
    true_class = np.take_along_axis(probabilities, labels[:, None], axis=1)[:, 0]
    # sort by probability, then by index (np.lexsort sorts by its last key first)
    return np.lexsort((np.arange(len(true_class)), true_class))[:k]


def _worst_inputs(seed, n, classes):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, classes)) * 3
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return probabilities.astype(np.float32), rng.integers(0, classes, size=n)


_TIES = (np.array([[0.5, 0.5], [0.9, 0.1], [0.5, 0.5], [0.2, 0.8], [0.1, 0.9]]),
         np.array([0, 1, 1, 1, 0]))


def _worst_expected(make, k):
    """By hand in plain Python: sort the indices by (probability of the true class, index)."""
    def expected():
        probabilities, labels = make()
        order = sorted(range(len(labels)),
                       key=lambda i: (float(probabilities[i][int(labels[i])]), i))
        return order[:k]
    return expected


def _worst_case(name, make, k, hidden=False):
    return Case(
        name,
        probe=lambda f: [int(i) for i in np.asarray(f(*make(), k)).ravel()],
        expected=_worst_expected(make, k),
        hidden=hidden,
        hint="rank the samples by the probability of their TRUE class (not by their highest "
             "probability), lowest first, ties by the lower index; return k indices (fewer when "
             "there are fewer samples)",
    )


WORST_PREDICTIONS = Exercise(
    id="09.worst_predictions",
    name="worst_predictions",
    title="The worst predictions: lowest probability of the true class",
    reference=lambda: reference_worst_predictions,
    cases=(
        _worst_case("five_samples_with_ties", lambda: _TIES, 3),
        _worst_case("random_three_classes", lambda: _worst_inputs(0, 40, 3), 8),
    ),
)

EXERCISES = [PREPROCESS_CONTRACT, LINEAR_PROBE, FREEZE_TO_COUNT, TWO_PHASE_FINE_TUNE,
             WORST_PREDICTIONS]
