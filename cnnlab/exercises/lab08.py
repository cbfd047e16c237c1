"""Lab 08 "Pretrained ConvNets": exercises and their public cases (points and hidden cases:
:mod:`cnnlab.grading.hidden.lab08`).

Expected values come from independent references: NumPy slicing and Pillow's bilinear resize
(the centre crop), ``keras.applications.resnet50.preprocess_input`` (caffe preprocessing),
``numpy.argsort`` (top-k) and ``sklearn.neighbors.NearestNeighbors(metric="cosine")``
(nearest neighbours) -- never a notebook.
"""

from __future__ import annotations

import numpy as np

from cnnlab.exercise import Case, Exercise, allclose

__all__ = [
    "EXERCISES",
    "IMAGENET_MEAN_BGR",
    "reference_center_crop_resize",
    "reference_cosine_neighbours",
    "reference_preprocess_caffe",
    "reference_top_k",
]

#: The ImageNet mean pixel of the caffe models (ResNet50, VGG16), in BGR order, as
#: keras/src/applications/imagenet_utils.py subtracts it.
IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)


# ------------------------------------------------------------------------ 08.center_crop_resize


def _centre_square(image):
    image = np.asarray(image)
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return image[top:top + side, left:left + side]


def reference_center_crop_resize(image, size=224):
    """The largest centred square of an RGB image, resized to ``size`` x ``size`` with
    Pillow's bilinear filter; float32 values 0..255."""
    from PIL import Image

    square = np.ascontiguousarray(_centre_square(np.asarray(image).astype(np.uint8)))
    resized = Image.fromarray(square).resize((int(size), int(size)), Image.BILINEAR)
    return np.asarray(resized, dtype=np.float32)


def _chelsea():
    from cnnlab.datasets import load_sample_image

    return load_sample_image("chelsea")


def _synthetic_pattern(height, width, seed):
    """A synthetic uint8 RGB image whose every position has its own value (a ramp per channel
    plus seeded noise), so that a crop at the wrong place cannot match."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width]
    base = np.stack([rows * 7 + cols * 3, rows * 2 + cols * 11, (rows + cols) * 5], axis=-1)
    return ((base + rng.integers(0, 40, size=(height, width, 3))) % 256).astype(np.uint8)


def _smooth(height, width):
    """A synthetic smooth uint8 RGB image (sines of different periods per channel): resizing it
    gives the same block means whichever bilinear variant does it."""
    rows, cols = np.mgrid[0:height, 0:width] / max(height, width)
    channels = [np.sin(2 * np.pi * (1.5 * rows + 0.5 * cols)),
                np.cos(2 * np.pi * (0.7 * rows - 1.3 * cols)),
                np.sin(2 * np.pi * 2.0 * rows * cols)]
    return np.rint(127.5 + 120 * np.stack(channels, axis=-1)).astype(np.uint8)


def _block_means(image, blocks):
    """Mean of each of ``blocks`` x ``blocks`` tiles of an (s, s, 3) image: robust to the
    interpolation details (bilinear, antialiased or not, Pillow, Keras or scikit-image; even
    nearest neighbour and a half-pixel rounding of the crop offset pass on chelsea: largest
    error 2.8 with 8 x 8 tiles), not to the crop (3 pixels off: 8.8; the whole photo squashed
    or the top-left square: more than 70)."""
    image = np.asarray(image, dtype=np.float64)
    side = image.shape[0]
    tile = side // blocks
    trimmed = image[:tile * blocks, :tile * blocks]
    return trimmed.reshape(blocks, tile, blocks, tile, -1).mean(axis=(1, 3))


def _shape_probe(make, size):
    return lambda f: list(np.shape(f(make(), size)))


def _range_probe(f):
    out = np.asarray(f(_chelsea(), 224), dtype=np.float64)
    return [float(out.min()) >= -0.5, float(out.max()) > 1.5, float(out.max()) <= 255.5]


def _exact_probe(make, size):
    return lambda f: np.asarray(f(make(), size), dtype=np.float64)


def _blocks_probe(make, size, blocks):
    return lambda f: _block_means(f(make(), size), blocks)


def _blocks_expected(make, size, blocks):
    return lambda: _block_means(reference_center_crop_resize(make(), size), blocks)


_CROP_HINT = ("crop the largest centred square first: side = min(h, w), "
              "top = (h - side) // 2, left = (w - side) // 2; then resize that square")

CENTER_CROP_RESIZE = Exercise(
    id="08.center_crop_resize",
    name="center_crop_resize",
    title="The input every ImageNet model expects: centre square, 224 x 224",
    reference=lambda: reference_center_crop_resize,
    cases=(
        Case("chelsea_gives_224x224x3", probe=_shape_probe(_chelsea, 224),
             expected=lambda: [224, 224, 3],
             hint="return an array of shape (size, size, 3): crop a square, resize it to "
                  "size x size, keep the 3 channels"),
        Case("values_stay_0_to_255", probe=_range_probe, expected=lambda: [True, True, True],
             hint="keep the values 0..255: the model's own preprocessing rescales them later "
                  "(skimage.transform.resize returns 0..1 unless preserve_range=True)"),
        Case("same_size_is_the_exact_centre_square",
             probe=_exact_probe(lambda: _synthetic_pattern(6, 10, 1), 6),
             expected=lambda: _centre_square(_synthetic_pattern(6, 10, 1)).astype(np.float64),
             compare=allclose(1e-3), hint=_CROP_HINT),
        Case("chelsea_matches_a_bilinear_resize",
             probe=_blocks_probe(_chelsea, 224, 8),
             expected=_blocks_expected(_chelsea, 224, 8), compare=allclose(4.0),
             hint=_CROP_HINT + " (do not squash the whole photo into a square)"),
    ),
)


# ------------------------------------------------------------------------------------ 08.top_k


def reference_top_k(probabilities, k=5):
    """The ``k`` largest entries of a 1-D row: (indices, values), largest first."""
    row = np.asarray(probabilities, dtype=np.float64).ravel()
    order = np.argsort(-row, kind="stable")[:k]
    return order, row[order]


def _row(seed, classes=1000):
    return np.random.default_rng(seed).dirichlet(np.full(classes, 0.05))


def _top_k_probe(make, k, part):
    def probe(f):
        indices, values = f(make(), k)
        return (np.asarray(indices).astype(np.int64) if part == 0
                else np.asarray(values, dtype=np.float64))
    return probe


def _top_k_case(name, make, k, part=0, hidden=False, hint=""):
    return Case(
        name, probe=_top_k_probe(make, k, part),
        expected=lambda: reference_top_k(make(), k)[part],
        compare=allclose(0) if part == 0 else allclose(1e-9),
        hidden=hidden,
        hint=hint or "sort the probabilities from the largest down and keep the first k: "
                     "np.argsort sorts ascending",
    )


TOP_K = Exercise(
    id="08.top_k",
    implementations=(
        "cnnlab.transfer.predictions.decode_predictions",
        "cnnlab.transfer.predictions.classify",
    ),
    name="top_k",
    title="Top-k classes of one prediction row",
    reference=lambda: reference_top_k,
    cases=(
        _top_k_case("top5_indices_largest_first", lambda: _row(0), 5),
        _top_k_case("top5_probabilities", lambda: _row(0), 5, part=1,
                    hint="return the probabilities of those k classes, in the same order "
                         "as the indices"),
        _top_k_case("top1_is_the_argmax", lambda: _row(1), 1,
                    hint="with k=1 return one index: the argmax"),
    ),
)


# ---------------------------------------------------------------------------- 08.preprocess_caffe


def reference_preprocess_caffe(images):
    """keras.applications.resnet50.preprocess_input on a float copy (it changes float NumPy
    arrays in place)."""
    import keras

    x = np.array(images, dtype=np.float32, copy=True)
    return np.asarray(keras.applications.resnet50.preprocess_input(x), dtype=np.float64)


def _photo_batch():
    """Two real photos (chelsea, coffee), centre-cropped and shrunk to 32 x 32.  (The probes
    that call this never hold 08.center_crop_resize's reference: it is imported here, when the
    inputs are made; see cnnlab.grading.export.kernel_probes.)"""
    from cnnlab.datasets import load_sample_image
    from cnnlab.exercises.lab08 import reference_center_crop_resize as crop

    return np.stack([crop(load_sample_image(name), 32)
                     for name in ("chelsea", "coffee")])


def _solid(colour, shape=(1, 2, 2)):
    return np.broadcast_to(np.asarray(colour, dtype=np.float32), (*shape, 3)).copy()


def _caffe_probe(make):
    return lambda f: np.asarray(f(make()), dtype=np.float64)


def _caffe_expected(make):
    return lambda: reference_preprocess_caffe(make())


def _unchanged_probe(f):
    x = _photo_batch()
    before = x.copy()
    f(x)
    return float(np.abs(x - before).max())


_CAFFE_HINT = ("caffe mode: reverse the channels (RGB -> BGR: x[..., ::-1]), then subtract "
               "the mean pixel (103.939, 116.779, 123.68) given in BGR order; no scaling")

PREPROCESS_CAFFE = Exercise(
    id="08.preprocess_caffe",
    implementations=("cnnlab.transfer.preprocessing.preprocess_for",),
    name="preprocess_caffe",
    title="ResNet50's input normalization: RGB to BGR, minus the ImageNet mean",
    reference=lambda: reference_preprocess_caffe,
    cases=(
        Case("two_photos_match_keras", probe=_caffe_probe(_photo_batch),
             expected=_caffe_expected(_photo_batch), compare=allclose(1e-3), hint=_CAFFE_HINT),
        Case("pure_red_comes_out_in_the_last_channel",
             probe=_caffe_probe(lambda: _solid((255, 0, 0))),
             expected=_caffe_expected(lambda: _solid((255, 0, 0))), compare=allclose(1e-3),
             hint="the channels come out in BGR order: red is the LAST output channel, and "
                  "each channel loses the mean of its own colour"),
        Case("the_input_is_left_unchanged", probe=_unchanged_probe, expected=lambda: 0.0,
             compare=allclose(0),
             hint="work on a copy (np.array(images, dtype='float32')): "
                  "keras.applications' preprocess_input changes a float NumPy array in place"),
    ),
)


# -------------------------------------------------------------------------- 08.cosine_neighbours


def reference_cosine_neighbours(queries, database, k=5):
    """Indices (n_queries, k) of the ``k`` database rows most similar to each query by cosine
    similarity, most similar first, and those similarities (scikit-learn's cosine distance
    is 1 - similarity)."""
    from sklearn.neighbors import NearestNeighbors

    queries = np.atleast_2d(np.asarray(queries, dtype=np.float64))
    database = np.atleast_2d(np.asarray(database, dtype=np.float64))
    search = NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute").fit(database)
    distances, indices = search.kneighbors(queries)
    return indices, 1.0 - distances


def _features(seed, n, dim, relu=False):
    x = np.random.default_rng(seed).normal(size=(n, dim))
    return np.maximum(x, 0) if relu else x


def _scaled(seed, n, dim):
    """The rows of ``_features(seed, n, dim)`` multiplied by very different positive lengths."""
    scales = np.random.default_rng(seed + 100).uniform(0.05, 20.0, size=(n, 1))
    return _features(seed, n, dim) * scales


def _cos_probe(make, k, part):
    def probe(f):
        queries, database = make()
        indices, similarities = f(queries, database, k)
        return (np.asarray(indices).astype(np.int64) if part == 0
                else np.asarray(similarities, dtype=np.float64))
    return probe


def _cos_case(name, make, k, part=0, expected_make=None, hidden=False, hint=""):
    reference_input = expected_make or make
    return Case(
        name, probe=_cos_probe(make, k, part),
        expected=lambda: reference_cosine_neighbours(*reference_input(), k)[part],
        compare=allclose(0) if part == 0 else allclose(1e-6),
        hidden=hidden,
        hint=hint or "cosine similarity = dot product of the rows divided by both lengths; "
                     "sort it from the largest down, keep k per query",
    )


COSINE_NEIGHBOURS = Exercise(
    id="08.cosine_neighbours",
    name="cosine_neighbours",
    title="Nearest neighbours of embeddings by cosine similarity",
    reference=lambda: reference_cosine_neighbours,
    cases=(
        _cos_case("indices_most_similar_first",
                  lambda: (_features(10, 6, 16), _features(11, 40, 16)), 3),
        _cos_case("similarities_are_cosines",
                  lambda: (_features(10, 6, 16), _features(11, 40, 16)), 3, part=1,
                  hint="return the cosine similarities (1 = same direction), not distances, "
                       "in the same order as the indices"),
        _cos_case("the_length_of_a_vector_does_not_matter",
                  lambda: (_features(12, 5, 32), _scaled(13, 50, 32)), 4,
                  expected_make=lambda: (_features(12, 5, 32), _features(13, 50, 32)),
                  hint="normalise each row to length 1 before the dot product: a longer "
                       "vector is not more similar (and Euclidean distance is not cosine)"),
    ),
)

EXERCISES = [CENTER_CROP_RESIZE, TOP_K, PREPROCESS_CAFFE, COSINE_NEIGHBOURS]
