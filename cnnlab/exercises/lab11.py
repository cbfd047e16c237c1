"""Lab 11 "Beyond images": exercises and their public cases (points and hidden cases:
:mod:`cnnlab.grading.hidden.lab11`)."""

from __future__ import annotations

import numpy as np

from cnnlab.exercise import Case, Exercise, allclose, equal

__all__ = [
    "EXERCISES",
    "reference_causal_conv1d",
    "reference_iou_per_class",
    "reference_max_unpool",
    "reference_mutation_map",
    "reference_box_iou",
    "reference_non_max_suppression",
    "skip_merges",
]


def _array(seed, shape, low=-1.0, high=1.0):
    return np.random.default_rng(seed).uniform(low, high, size=shape)


# ----------------------------------------------------------------------------- 11.nms


def reference_box_iou(box, boxes):
    """IoU of one box (y1, x1, y2, x2) with each of ``boxes`` (N, 4): (N,) floats."""
    box = np.asarray(box, dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    height = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    width = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    intersection = height * width
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = (box[2] - box[0]) * (box[3] - box[1]) + areas - intersection
    return np.divide(intersection, union, out=np.zeros_like(union), where=union > 0)


def reference_non_max_suppression(boxes, scores, iou_threshold=0.5):
    """Greedy NMS: indices kept, highest score first (ties: lower index first); a box is
    suppressed when its IoU with a kept box is > iou_threshold."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    kept = []
    for index in order:
        if not kept or np.all(reference_box_iou(boxes[index], boxes[kept]) <= iou_threshold):
            kept.append(int(index))
    return kept


def _random_boxes(seed, n, size=100.0, min_side=5.0, max_side=40.0):
    """``n`` random boxes (y1, x1, y2, x2) inside a size x size image, and random scores."""
    rng = np.random.default_rng(seed)
    sides = rng.uniform(min_side, max_side, size=(n, 2))
    corners = rng.uniform(0, size - sides)
    boxes = np.concatenate([corners, corners + sides], axis=1)
    return boxes, rng.uniform(0, 1, size=n)


# Worked by hand (the lab's markdown): in score order 3 (0.95), 0 (0.9), 1 (0.8), 2 (0.7),
# 4 (0.6).  Keep 3; keep 0 (IoU with 3 = 50 / 150 = 0.33); drop 1 (IoU with 0 = 81 / 119 =
# 0.68); keep 2 (disjoint from 3 and 0); drop 4 (IoU with 2 = 81 / 119 = 0.68).
_HAND_BOXES = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 20, 10, 30], [0, 5, 10, 15],
                        [1, 21, 11, 31]], dtype=float)
_HAND_SCORES = np.array([0.9, 0.8, 0.7, 0.95, 0.6])
# A chain along x: IoU(0, 1) = IoU(1, 2) = 60 / 140 = 0.43, IoU(0, 2) = 20 / 180 = 0.11.  At
# threshold 0.4, 0 suppresses 1; 1, suppressed, suppresses nothing, so 2 is kept.
_CHAIN_BOXES = np.array([[0, 0, 10, 10], [0, 4, 10, 14], [0, 8, 10, 18]], dtype=float)
_CHAIN_SCORES = np.array([0.9, 0.8, 0.7])

_NMS_HINT = ("sort by score, highest first; keep the best box, drop every remaining box whose "
             "IoU with a kept box is > iou_threshold, repeat with the next box not dropped")


def _nms_case(name, make, iou_threshold, expected=None, hidden=False, hint=_NMS_HINT):
    return Case(
        name,
        probe=lambda f: [int(i) for i in np.ravel(np.asarray(f(*make(), iou_threshold)))],
        expected=expected or (lambda: reference_non_max_suppression(*make(), iou_threshold)),
        hidden=hidden, hint=hint)


NMS = Exercise(
    id="11.nms",
    name="non_max_suppression",
    title="Non-maximum suppression over scored boxes",
    reference=lambda: reference_non_max_suppression,
    cases=(
        _nms_case("five_boxes_by_hand", lambda: (_HAND_BOXES, _HAND_SCORES), 0.5,
                  expected=lambda: [3, 0, 2],
                  hint="in score order 3, 0, 1, 2, 4: keep 3, keep 0 (IoU 0.33 with 3), drop 1 "
                       "(IoU 0.68 with 0), keep 2, drop 4 (IoU 0.68 with 2): [3, 0, 2]"),
        _nms_case("a_suppressed_box_suppresses_nothing", lambda: (_CHAIN_BOXES, _CHAIN_SCORES),
                  0.4, expected=lambda: [0, 2],
                  hint="box 1 is dropped by box 0 (IoU 0.43 > 0.4); only KEPT boxes suppress, "
                       "so box 2 (IoU 0.11 with box 0) is kept: [0, 2]"),
        _nms_case("forty_random_boxes", lambda: _random_boxes(12, 40), 0.3,
                  hint="IoU = intersection area / (area 1 + area 2 - intersection area), with "
                       "boxes (y1, x1, y2, x2); an empty intersection has area 0, not a "
                       "negative one"),
    ),
)


# ----------------------------------------------------------------------------- 11.mutation_map


def reference_mutation_map(model, one_hot_sequence):
    """(4, L): score(sequence with position i set to base b) - score(sequence), 0 at the
    sequence's own base (cnnlab.sequences.mutation_map)."""
    from cnnlab.sequences import mutation_map

    return mutation_map(model, one_hot_sequence)


def _numpy_score(x, kernel, bias, dense, dense_bias, head, sigmoid):
    """The scanner's output for one-hot x (L, 4), in NumPy: a valid correlation, ReLU, then
    a global max pool ("pool") or the flattened map ("flatten"), a Dense(1)."""
    width = kernel.shape[0]
    maps = np.stack([np.einsum("ic,icf->f", x[t:t + width], kernel)
                     for t in range(len(x) - width + 1)]) + bias
    maps = np.maximum(maps, 0.0)
    features = maps.max(axis=0) if head == "pool" else maps.ravel()
    score = float(features @ dense[:, 0] + dense_bias[0])
    return 1 / (1 + np.exp(-score)) if sigmoid else score


def _numpy_mutation_map(x, *weights):
    base = _numpy_score(x, *weights)
    changes = np.zeros((4, len(x)))
    for i in range(len(x)):
        for b in range(4):
            mutant = x.copy()
            mutant[i] = np.eye(4)[b]
            changes[b, i] = _numpy_score(mutant, *weights) - base
    return changes


def _mutation_setup(seed, length, filters, width, head="pool", sigmoid=False):
    """(one-hot sequence, NumPy weights for _numpy_score) of a drawn scanner."""
    rng = np.random.default_rng(seed)
    sequence = np.eye(4)[rng.integers(0, 4, size=length)]
    kernel = rng.normal(0, 1, size=(width, 4, filters))
    bias = rng.normal(0, 0.5, size=filters)
    units = filters if head == "pool" else filters * (length - width + 1)
    dense = rng.normal(0, 1, size=(units, 1))
    return sequence, (kernel, bias, dense, rng.normal(0, 0.1, size=1), head, sigmoid)


def _keras_scanner(length, weights):
    import keras
    from keras import layers

    kernel, bias, dense, dense_bias, head, sigmoid = weights
    model = keras.Sequential([
        keras.Input(shape=(length, 4)),
        layers.Conv1D(kernel.shape[2], kernel.shape[0], activation="relu"),
        layers.GlobalMaxPooling1D() if head == "pool" else layers.Flatten(),
        layers.Dense(1, activation="sigmoid" if sigmoid else None),
    ])
    model.set_weights([w.astype("float32") for w in (kernel, bias, dense, dense_bias)])
    return model


def _mutation_case(name, make, hidden=False, expected=None, hint=""):
    def probe(f):
        sequence, weights = make()
        model = _keras_scanner(len(sequence), weights)
        return np.asarray(f(model, sequence.astype("float32")), dtype=np.float64)

    return Case(
        name, probe=probe,
        expected=expected or (lambda: _numpy_mutation_map(make()[0], *make()[1])),
        compare=allclose(1e-4, 1e-4), hidden=hidden,
        hint=hint or "for every position i and base b: copy the sequence, set row i to the "
                     "one-hot of b, score it with the model; subtract the original's score. "
                     "Return (4, L): rows A, C, G, T")


def _gat_counter():
    """By hand: a Conv1D(1, 3) that counts matches to 'GAT', a global max pool (no Dense)."""
    import keras
    from keras import layers

    kernel = np.zeros((3, 4, 1), dtype="float32")
    kernel[[0, 1, 2], [2, 0, 3], 0] = 1.0          # G at 0, A at 1, T at 2
    model = keras.Sequential([keras.Input(shape=(5, 4)),
                              layers.Conv1D(1, 3, use_bias=False),
                              layers.GlobalMaxPooling1D()])
    model.set_weights([kernel])
    return model


# AGATC holds GAT at positions 1-3 (score 3).  Any mutation there leaves 2 matches (-1);
# positions 0 and 4 only touch windows that score at most 1 (change 0).  Rows A, C, G, T.
_AGATC = np.eye(4)[[0, 2, 0, 3, 1]]
_AGATC_MAP = np.array([[0, -1, 0, -1, 0],
                       [0, -1, -1, -1, 0],
                       [0, 0, -1, -1, 0],
                       [0, -1, -1, 0, 0]], dtype=float)

MUTATION_MAP = Exercise(
    id="11.mutation_map",
    implementations=("cnnlab.sequences.mutation_map",),
    name="mutation_map",
    title="In-silico mutagenesis: a mutation map",
    reference=lambda: reference_mutation_map,
    cases=(
        Case("gat_counter_by_hand",
             probe=lambda f: np.asarray(f(_gat_counter(), _AGATC.astype("float32")),
                                        dtype=np.float64),
             expected=lambda: _AGATC_MAP, compare=allclose(1e-5),
             hint="AGATC holds GAT at positions 1-3: every mutation there costs one match "
                  "(-1); positions 0 and 4 change nothing; 0 at each reference base"),
        _mutation_case("random_scanner_length_20",
                       lambda: _mutation_setup(21, 20, 3, 4)),
    ),
)


# ----------------------------------------------------------------------------- 11.causal_conv


def reference_causal_conv1d(x, kernel, dilation_rate=1):
    """y[t, f] = sum_i sum_c kernel[i, c, f] * x[t - (k - 1 - i) * d, c], x[<0] = 0 (NumPy)."""
    x = np.asarray(x, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    k, d = kernel.shape[0], int(dilation_rate)
    padded = np.concatenate([np.zeros(((k - 1) * d, x.shape[1])), x])
    return sum(padded[i * d: i * d + len(x)] @ kernel[i] for i in range(k))


def _keras_causal(x, kernel, dilation_rate):
    import keras

    x = np.asarray(x, dtype=np.float32)
    kernel = np.asarray(kernel, dtype=np.float32)
    layer = keras.layers.Conv1D(kernel.shape[2], kernel.shape[0], padding="causal",
                                dilation_rate=dilation_rate, use_bias=False)
    layer.build((1,) + x.shape)
    layer.set_weights([kernel])
    return keras.ops.convert_to_numpy(layer(x[None]))[0]


def _conv_case(name, seed, length, channels, filters, k, d, hidden=False, hint=""):
    def make():
        return _array(seed, (length, channels)), _array(seed + 1, (k, channels, filters))

    return Case(
        name,
        probe=lambda f: np.asarray(f(*make(), d), dtype=np.float64),
        expected=lambda: _keras_causal(*make(), d),
        compare=allclose(1e-4),
        hidden=hidden,
        hint=hint or "pad (kernel_size - 1) x dilation_rate zeros at the start only; tap i "
                     "reads x[t - (kernel_size - 1 - i) x dilation_rate]",
    )


def _impulse():
    x = np.zeros((12, 1))
    x[5, 0] = 1.0
    kernel = np.array([1.0, 2.0, 3.0]).reshape(3, 1, 1)
    return x, kernel


# By hand: the impulse at t = 5 reaches the last tap (weight 3) at t = 5, the middle tap
# (weight 2) at t = 5 + 2 and the first tap (weight 1) at t = 5 + 4; nothing before t = 5.
_IMPULSE_RESPONSE = np.array([0, 0, 0, 0, 0, 3, 0, 2, 0, 1, 0, 0], dtype=float)[:, None]

CAUSAL_CONV = Exercise(
    id="11.causal_conv",
    name="causal_conv1d",
    title="A causal dilated convolution in NumPy",
    reference=lambda: reference_causal_conv1d,
    cases=(
        _conv_case("one_channel_kernel_2", 1, 10, 1, 1, 2, 1),
        _conv_case("dilation_4_two_channels_three_filters", 2, 16, 2, 3, 2, 4),
        Case("impulse_response_is_causal", probe=lambda f: np.asarray(f(*_impulse(), 2), float),
             expected=lambda: _IMPULSE_RESPONSE, compare=allclose(1e-6),
             hint="an impulse at t = 5 must give nothing before t = 5; with kernel [1, 2, 3] "
                  "and dilation 2 the output is 3 at t = 5, 2 at t = 7, 1 at t = 9 "
                  "(Keras correlates: the LAST tap sees the present)"),
    ),
)


# ----------------------------------------------------------------------------- 11.iou


def reference_iou_per_class(y_true, y_pred, num_classes):
    """IoU per class, NaN for classes absent from both (cnnlab.segmentation.iou)."""
    from cnnlab.segmentation import iou

    return iou(y_true, y_pred, num_classes)


def _sklearn_iou(y_true, y_pred, num_classes):
    """scikit-learn's Jaccard index per class, with -1 for classes absent from both."""
    from sklearn.metrics import jaccard_score

    y_true, y_pred = np.ravel(y_true), np.ravel(y_pred)
    labels = np.arange(num_classes)
    scores = jaccard_score(y_true, y_pred, labels=labels, average=None, zero_division=0.0)
    present = np.isin(labels, y_true) | np.isin(labels, y_pred)
    return np.where(present, scores, -1.0)


def _nan_as_minus_one(values):
    return np.nan_to_num(np.asarray(values, dtype=np.float64), nan=-1.0)


_TRUE = np.array([[0, 0, 1, 1], [0, 2, 2, 1], [0, 0, 2, 2]])
_PRED = np.array([[0, 1, 1, 1], [0, 2, 1, 1], [0, 0, 0, 2]])


def _noisy_masks(seed, shape, num_classes, keep=0.7):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, num_classes, size=shape)
    y_pred = np.where(rng.uniform(size=shape) < keep, y_true,
                      rng.integers(0, num_classes, size=shape))
    return y_true, y_pred


def _iou_case(name, make, num_classes, expected=None, hidden=False, hint=""):
    return Case(
        name,
        probe=lambda f: _nan_as_minus_one(f(*make(), num_classes)),
        expected=expected or (lambda: _sklearn_iou(*make(), num_classes)),
        compare=allclose(1e-6),
        hidden=hidden,
        hint=hint or "for each class c: pixels where both masks are c, divided by pixels "
                     "where either is c",
    )


IOU = Exercise(
    id="11.iou",
    implementations=("cnnlab.segmentation.iou", "cnnlab.segmentation.mean_iou"),
    name="iou_per_class",
    title="Intersection over union, class by class",
    reference=lambda: reference_iou_per_class,
    cases=(
        _iou_case("hand_masks_3x4", lambda: (_TRUE, _PRED), 3,
                  expected=lambda: np.array([4 / 6, 3 / 5, 2 / 4]),
                  hint="class 0: 4 pixels in both, 6 in either -> 4/6; class 1: 3/5; "
                       "class 2: 2/4"),
        _iou_case("class_absent_from_both_is_nan", lambda: (_TRUE, _PRED), 4,
                  expected=lambda: np.array([4 / 6, 3 / 5, 2 / 4, -1.0]),
                  hint="class 3 is in neither mask: its union is empty, return np.nan for it "
                       "(not 0, not 1)"),
        _iou_case("random_batch_of_masks", lambda: _noisy_masks(1, (5, 8, 8), 4), 4,
                  hint="count over all pixels of all images together (flatten both arrays)"),
    ),
)


# ----------------------------------------------------------------------------- 11.build_fcn


def _reference_build_skip_fcn():
    from cnnlab.segmentation import build_fcn

    def build_skip_fcn(input_shape, num_classes):
        return build_fcn(input_shape, num_classes, skip=True)

    return build_skip_fcn


def skip_merges(model):
    """How many Add / Concatenate layers of ``model`` fuse the upsampled coarse path with a
    finer map that skipped it: a merge at a resolution finer than the model's coarsest, with at
    least one input computed from a coarsest-resolution map and at least one not."""
    from cnnlab.graph import trace_model

    trace = trace_model(model)
    area = {key: shape[1] * shape[2] for key, shape in trace.shapes.items()
            if len(shape) == 4 and shape[1] is not None and shape[2] is not None}
    coarsest = min(area.values())
    from_coarsest = {key for key, value in area.items() if value == coarsest}
    for call in trace.calls:  # in order: each call after the calls it reads
        if any(key in from_coarsest for key in call.inputs):
            from_coarsest.update(call.outputs)
    merges = 0
    for call in trace.calls:
        if type(call.layer).__name__ in ("Add", "Concatenate") and len(call.inputs) >= 2:
            coarse = [key in from_coarsest for key in call.inputs]
            finer = all(area.get(key, 0) > coarsest for key in call.outputs)
            merges += int(any(coarse) and not all(coarse) and finer)
    return merges


def _structure_probe(input_shape, num_classes):
    def probe(build):
        model = build(input_shape, num_classes)
        return {"output_shape": [int(d) for d in model.output.shape[1:]],
                "skip_merges": int(skip_merges(model)),
                "params": int(model.count_params())}
    return probe


def _plain_fcn_params(input_shape, num_classes):
    from cnnlab.segmentation import build_fcn

    return int(build_fcn(input_shape, num_classes).count_params())


def _structure_expected(input_shape, num_classes):
    def expected():
        plain = _plain_fcn_params(input_shape, num_classes)
        return {"output_shape": [int(input_shape[0]), int(input_shape[1]), int(num_classes)],
                "params_range": [plain, 2 * plain]}
    return expected


def _structure_compare(got, expected):
    if type(got) is not dict or set(got) != {"output_shape", "skip_merges", "params"}:
        return False, "expected the structure of a model (the probe's dict)"
    if equal(got["output_shape"], expected["output_shape"])[0] is not True:
        return False, (f"output shape {got['output_shape']}, expected "
                       f"{expected['output_shape']} (input height and width, one channel per "
                       "class)")
    if not got["skip_merges"] >= 1:
        return False, ("no skip connection: no Add or Concatenate merges an upsampled map with "
                       "a finer encoder map that skipped the bottleneck")
    low, high = expected["params_range"]
    if not low <= got["params"] <= high:
        return False, (f"{got['params']:,} parameters; keep the plain FCN's layers and add one "
                       f"skip: between {low:,} (the plain FCN) and {high:,}")
    return True, "output shape, skip connection and parameter count as required"


def _structure_case(name, input_shape, num_classes, hidden=False, hint=""):
    return Case(name, probe=_structure_probe(input_shape, num_classes),
                expected=_structure_expected(input_shape, num_classes),
                compare=_structure_compare, hidden=hidden,
                hint=hint or "keep the FCN's layers; after the first Conv2DTranspose (H/2), "
                             "layers.Add()([upsampled, encoder_map]) with the second "
                             "Conv2D's output (H/2, before its pooling), or Concatenate")


def _per_pixel_softmax_probe(build):
    import keras

    model = build((16, 16, 1), 3)
    x = np.random.default_rng(6).uniform(0, 1, size=(2, 16, 16, 1)).astype("float32")
    probabilities = keras.ops.convert_to_numpy(model(x))
    return [list(probabilities.shape), float(np.abs(probabilities.sum(axis=-1) - 1).max() < 1e-4),
            float(probabilities.min() >= 0)]


def _drawn_shape(seed):
    rng = np.random.default_rng(seed)
    height, width = (int(v) for v in 4 * rng.integers(4, 17, size=2))
    return (height, width, int(rng.choice([1, 3]))), int(rng.integers(2, 9))


BUILD_FCN = Exercise(
    id="11.build_fcn",
    implementations=("cnnlab.segmentation.build_fcn",),
    name="build_skip_fcn",
    title="An FCN with a skip connection",
    reference=_reference_build_skip_fcn,
    cases=(
        _structure_case("skip_fcn_32x32_gray_4_classes", (32, 32, 1), 4),
        Case("softmax_over_classes_per_pixel", probe=_per_pixel_softmax_probe,
             expected=lambda: [[2, 16, 16, 3], 1.0, 1.0], hint="the output keeps the input's "
             "height and width, and every pixel's num_classes values sum to 1 (softmax)"),
    ),
)


# ----------------------------------------------------------------------------- 11.max_unpool


def reference_max_unpool(pooled, indices, output_shape):
    """Each pooled value at its flat index row * W + col of an (H, W) map of zeros."""
    output = np.zeros(int(np.prod(output_shape)), dtype=np.asarray(pooled).dtype)
    output[np.ravel(indices)] = np.ravel(pooled)
    return output.reshape(tuple(output_shape))


def _unpool_by_loop(x, p):
    """What SegNet's unpooling must give, from x itself: each window's max where it was."""
    expected = np.zeros_like(x, dtype=np.float64)
    for r in range(0, x.shape[0], p):
        for c in range(0, x.shape[1], p):
            window = x[r:r + p, c:c + p]
            dr, dc = np.unravel_index(np.argmax(window), window.shape)
            expected[r + dr, c + dc] = window[dr, dc]
    return expected


def _unpool_case(name, make, p, hidden=False, hint="", expected=None):
    def probe(f):
        from cnnlab.segmentation import max_pool_with_indices

        x = make()
        pooled, indices = max_pool_with_indices(x, pool_size=p)
        return np.asarray(f(pooled, indices, x.shape), dtype=np.float64)

    return Case(
        name, probe=probe, expected=expected or (lambda: _unpool_by_loop(make(), p)),
        compare=allclose(1e-9), hidden=hidden,
        hint=hint or "start from zeros of output_shape; put pooled[i, j] at the flat "
                     "position indices[i, j] = row * W + col (np.unravel_index or a "
                     "flattened view)",
    )


_HAND_MAP = np.array([[1, 5, 0, 2], [3, 2, 7, 1], [0, 0, 4, 4], [9, 1, 4, 3]], dtype=float)
_HAND_UNPOOLED = np.array([[0, 5, 0, 0], [0, 0, 7, 0], [0, 0, 4, 0], [9, 0, 0, 0]], dtype=float)

MAX_UNPOOL = Exercise(
    id="11.max_unpool",
    implementations=("cnnlab.segmentation.max_unpool",),
    name="max_unpool",
    title="SegNet's unpooling with the pooling indices",
    reference=lambda: reference_max_unpool,
    cases=(
        _unpool_case("hand_4x4_map", lambda: _HAND_MAP, 2, expected=lambda: _HAND_UNPOOLED,
                     hint="each 2x2 window's max goes back where it was (5 at (0, 1), 7 at "
                          "(1, 2), 9 at (3, 0), 4 at (2, 2)); every other pixel is 0"),
        _unpool_case("random_6x6_pool_2", lambda: _array(7, (6, 6)), 2),
    ),
)


EXERCISES = [MUTATION_MAP, CAUSAL_CONV, IOU, BUILD_FCN, MAX_UNPOOL, NMS]
