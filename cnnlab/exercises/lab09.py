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
    "reference_read_trainable_summary",
    "reference_two_phase_schedule",
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
    implementations=("cnnlab.transfer.preprocess_for", "cnnlab.pretrained.preprocess_lite0"),
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
    implementations=("cnnlab.transfer.unfreeze", "cnnlab.transfer.trainable_summary"),
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


# ---------------------------------------------------------------------- 09.read_trainable_summary


def reference_read_trainable_summary(table):
    """Totals and trainable blocks of a ``trainable_summary(model).table`` (a DataFrame with
    columns block, trainable, frozen, statistics)."""
    trainable = int(table["trainable"].sum())
    frozen = int(table["frozen"].sum())
    statistics = int(table["statistics"].sum())
    return {"trainable": trainable, "frozen": frozen, "statistics": statistics,
            "trainable_blocks": [str(b) for b, n in zip(table["block"], table["trainable"])
                                 if n > 0],
            "trainable_share": trainable / (trainable + frozen + statistics)}


_BACKBONE_FILTERS = (4, 8, 16)


def _summary_backbone(seed=0):
    """Three conv-BN-ReLU blocks named block1..3 (4, 8, 16 filters), 16x16x3, average-pooled."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 3))
    x = inputs
    for block, filters in enumerate(_BACKBONE_FILTERS, start=1):
        x = layers.Conv2D(filters, 3, padding="same", name=f"block{block}_conv")(x)
        x = layers.BatchNormalization(name=f"block{block}_bn")(x)
        x = layers.ReLU(name=f"block{block}_relu")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.Model(inputs, x, name="mini")


def _summary_model(setting, num_classes=3):
    from cnnlab import transfer

    model = transfer.build_transfer_model(_summary_backbone(), num_classes, dropout=0.0)
    if setting == "last_block":
        transfer.unfreeze(model, from_layer="block3_conv")
    elif setting == "all_with_batchnorm":
        transfer.unfreeze(model, keep_batchnorm_frozen=False)
    elif setting == "last_two_blocks":
        transfer.unfreeze(model, from_layer="block2_conv")
    return model


def _summary_probe(setting, num_classes=3):
    def probe(f):
        from cnnlab import transfer

        result = f(transfer.trainable_summary(_summary_model(setting, num_classes)).table)
        return {key: result[key] for key in ("trainable", "frozen", "statistics",
                                             "trainable_blocks", "trainable_share")}
    return probe


def _summary_expected(setting, num_classes=3):
    """From Keras: trainable = the sizes of model.trainable_weights; statistics = the moving
    means and variances; frozen = count_params() minus both.  Blocks by hand."""
    def expected():
        from keras import layers

        model = _summary_model(setting, num_classes)
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        backbone = model.get_layer("backbone").layer
        statistics = sum(int(np.prod(bn.moving_mean.shape)) + int(np.prod(bn.moving_variance.shape))
                         for bn in backbone.layers if isinstance(bn, layers.BatchNormalization))
        frozen = model.count_params() - trainable - statistics
        blocks = {"head": [], "last_block": ["mini/block3"],
                  "last_two_blocks": ["mini/block2", "mini/block3"],
                  "all_with_batchnorm": ["mini/block1", "mini/block2", "mini/block3"]}[setting]
        return {"trainable": trainable, "frozen": frozen, "statistics": statistics,
                "trainable_blocks": blocks + ["predictions"],
                "trainable_share": trainable / model.count_params()}
    return expected


def _summary_compare(got, expected):
    if not isinstance(got, dict):
        return False, f"expected a dict, got {type(got).__name__}"
    for key in ("trainable", "frozen", "statistics", "trainable_blocks"):
        if got.get(key) != expected[key]:
            return False, f"{key}: got {got.get(key)!r}"
    share = got.get("trainable_share")
    if not isinstance(share, (int, float)) or abs(share - expected["trainable_share"]) > 1e-9:
        return False, f"trainable_share: got {share!r}"
    return True, "all totals match"


def _summary_case(name, setting, hidden=False, hint="", num_classes=3):
    return Case(
        name,
        probe=_summary_probe(setting, num_classes),
        expected=_summary_expected(setting, num_classes),
        compare=_summary_compare,
        hidden=hidden,
        hint=hint or "sum each column of the table; the trainable blocks are the rows with "
                     "trainable > 0, in table order; the share divides trainable by all three "
                     "columns together",
    )


READ_TRAINABLE_SUMMARY = Exercise(
    id="09.read_trainable_summary",
    name="read_trainable_summary",
    title="Read a trainable summary into numbers",
    reference=lambda: reference_read_trainable_summary,
    cases=(
        _summary_case("frozen_backbone_only_the_head_trains", "head"),
        _summary_case("last_block_unfrozen", "last_block"),
    ),
)


# ------------------------------------------------------------------------ 09.two_phase_schedule


def reference_two_phase_schedule(head_epochs, fine_tune_epochs, head_lr=1e-3, factor=10):
    """Per-epoch learning rates and phases of head training then fine-tuning (``head_lr /
    factor``), and the index of the first fine-tuning epoch (None unless both phases run)."""
    epochs = [("head", head_lr)] * head_epochs + [("fine_tune", head_lr / factor)] * \
        fine_tune_epochs
    both = bool(head_epochs) and bool(fine_tune_epochs)
    return {"learning_rate": [rate for _, rate in epochs],
            "phase": [phase for phase, _ in epochs],
            "phase_boundary": head_epochs if both else None}


def _schedule_probe(args):
    def probe(f):
        result = f(*args)
        return {"learning_rate": [float(v) for v in result["learning_rate"]],
                "phase": [str(v) for v in result["phase"]],
                "phase_boundary": (None if result["phase_boundary"] is None
                                   else int(result["phase_boundary"]))}
    return probe


def _schedule_expected(head_epochs, fine_tune_epochs, head_lr=1e-3, factor=10):
    """By hand: the lecture's "smaller learning rate when fine tuning"."""
    def expected():
        rates = []
        for _ in range(head_epochs):
            rates.append(head_lr)
        for _ in range(fine_tune_epochs):
            rates.append(head_lr / factor)
        return {"learning_rate": rates,
                "phase": ["head"] * head_epochs + ["fine_tune"] * fine_tune_epochs,
                "phase_boundary": None if 0 in (head_epochs, fine_tune_epochs) else head_epochs}
    return expected


def _schedule_compare(got, expected):
    if not isinstance(got, dict):
        return False, f"expected a dict, got {type(got).__name__}"
    if got["phase"] != expected["phase"]:
        return False, f"phase: got {got['phase']}"
    if got["phase_boundary"] != expected["phase_boundary"]:
        return False, f"phase_boundary: got {got['phase_boundary']!r}"
    rates, want = got["learning_rate"], expected["learning_rate"]
    if len(rates) != len(want) or not np.allclose(rates, want, rtol=1e-9, atol=0):
        return False, f"learning_rate: got {rates}"
    return True, "same schedule"


def _schedule_case(name, args, hidden=False, hint=""):
    return Case(
        name,
        probe=_schedule_probe(args),
        expected=_schedule_expected(*args),
        compare=_schedule_compare,
        hidden=hidden,
        hint=hint or "head_epochs epochs at head_lr, then fine_tune_epochs epochs at "
                     "head_lr / factor; phase names 'head' and 'fine_tune'",
    )


TWO_PHASE_SCHEDULE = Exercise(
    id="09.two_phase_schedule",
    name="two_phase_schedule",
    title="The two-phase schedule: a new head, then a smaller learning rate",
    reference=lambda: reference_two_phase_schedule,
    cases=(
        _schedule_case("five_head_epochs_then_three_at_a_tenth", (5, 3)),
        _schedule_case("no_fine_tuning_no_boundary", (4, 0),
                       hint="phase_boundary is the index of the first fine-tuning epoch, "
                            "None when one of the phases runs no epoch"),
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

EXERCISES = [PREPROCESS_CONTRACT, LINEAR_PROBE, FREEZE_TO_COUNT, READ_TRAINABLE_SUMMARY,
             TWO_PHASE_SCHEDULE, WORST_PREDICTIONS]
