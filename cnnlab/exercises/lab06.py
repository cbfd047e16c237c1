"""Lab 06 "Data augmentation": exercises and their public cases (points and hidden cases:
:mod:`cnnlab.grading.hidden.lab06`).

Expected values come from ``cnnlab.augment`` (``transform_matrix`` and
``ImageDataGenerator.as_layers``, both tested against the legacy Keras generator, SciPy and
Keras's own layers), from image files decoded here with Pillow, from hand formulas (MixUp) and
from a hand answer key (which transforms keep a task's labels) -- never from a notebook.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile

import numpy as np

from cnnlab.exercise import Case, Exercise, allclose

__all__ = [
    "EXERCISES",
    "JUDGMENT_CALLS",
    "SAFE_TRANSFORMS",
    "TASKS",
    "TRANSFORMS",
    "reference_augmentation_layers",
    "reference_mixup_batch",
    "reference_validation_flow",
]


# ----------------------------------------------------------------------------- 06.transform_matrix


def _transform_matrix():
    from cnnlab.augment import transform_matrix

    return transform_matrix


def _matrix_case(name, params, image_size, hint, hidden=False):
    return Case(
        name,
        probe=lambda f: np.asarray(f(dict(params), tuple(image_size)), dtype=np.float64),
        expected=lambda: _transform_matrix()(dict(params), tuple(image_size)),
        compare=allclose(1e-6),
        hint=hint,
        hidden=hidden,
    )


_CENTRE_HINT = ("rotate, shear and zoom about the centre: move the centre ((h - 1) / 2, "
                "(w - 1) / 2) to the origin first (rightmost matrix, after the flip) and back "
                "last (leftmost); row is the first coordinate, so it pairs with h")

_ORDER_HINT = ("matrix products do not commute: compose in Keras 2's order, rotation, shift, "
               "shear, zoom, written left to right between the two centring matrices")

TRANSFORM_MATRIX = Exercise(
    id="06.transform_matrix",
    implementations=("cnnlab.augment._resampling.transform_matrix",),
    name="affine_matrix",
    title="One matrix per image: rotation, shift, shear, zoom and flips composed",
    reference=_transform_matrix,
    cases=(
        _matrix_case("rotation_90_square", {"theta": 90.0}, (5, 5),
                     "R(theta) in (row, col) is [[cos, sin, 0], [-sin, cos, 0], [0, 0, 1]] "
                     "with theta in degrees (np.deg2rad); a missing key means no change"),
        _matrix_case("shift_only", {"tx": 3.0, "ty": -2.0}, (8, 8),
                     "the shift matrix adds ty to the row and tx to the column: "
                     "[[1, 0, ty], [0, 1, tx], [0, 0, 1]]"),
        _matrix_case("zoom_about_the_centre_non_square", {"zx": 0.5, "zy": 2.0}, (40, 64),
                     "zy scales rows and zx columns: Z = diag(zy, zx, 1); " + _CENTRE_HINT),
        _matrix_case("horizontal_flip", {"flip_horizontal": True}, (6, 10),
                     "a horizontal flip reads column (w - 1) - col: [[1, 0, 0], "
                     "[0, -1, w - 1], [0, 0, 1]]"),
        # composed: each wrong order of the factors fails at least one of these
        # (tests/test_facts_lab06.py tries every order)
        _matrix_case("rotation_then_shift", {"theta": 30.0, "tx": 4.0, "ty": -3.0}, (20, 30),
                     _ORDER_HINT),
        _matrix_case("shear_then_zoom", {"shear": 25.0, "zx": 1.2, "zy": 0.75}, (24, 16),
                     _ORDER_HINT),
        _matrix_case("every_transform_then_the_flip",
                     {"theta": -20.0, "tx": 2.0, "ty": 5.0, "shear": 10.0, "zx": 0.9,
                      "zy": 1.3, "flip_horizontal": True}, (18, 26),
                     _ORDER_HINT + "; the flip matrix F is the rightmost factor (Keras 2 "
                     "flips the image after resampling it, so F acts first on the output "
                     "coordinates)"),
    ),
)


# ----------------------------------------------------------------------------- 06.label_preserving

#: The transforms students choose from (the names the exercise accepts).
TRANSFORMS = ("horizontal_flip", "vertical_flip", "rotate_small", "rotate_180", "shift", "zoom",
              "brightness")

#: The tasks, as the notebook describes them.
TASKS = {
    "digits": "handwritten digits 0-9 (MNIST)",
    "cats_vs_dogs": "photos of cats and dogs taken by people",
    "satellite": "land-cover tiles (forest, river, field...) seen from straight above",
    "day_or_night": "outdoor photos: was it taken by day or by night?",
}

#: The answer key of the tasks the public tests check: transforms that keep the label *and*
#: give images a test set could hold.  The other tasks' answers are the grader's
#: (``cnnlab.grading.hidden.lab06``), so the reference here leaves them empty.
SAFE_TRANSFORMS = {
    # A mirrored 2, 3, 7 is no digit; a 6 upside down is a 9, a vertically flipped 6 is no digit.
    "digits": ("rotate_small", "shift", "zoom", "brightness"),
    # A mirrored cat is a cat; an upside-down one keeps its label but no test photo looks so.
    "cats_vs_dogs": ("horizontal_flip", "rotate_small", "shift", "zoom", "brightness"),
}

#: Judgment calls: transforms accepted whether a task's answer holds them or not, because both
#: answers can be defended (the notebook names them).  Every other transform has one answer.
JUDGMENT_CALLS = {
    # MNIST strokes are always at full ink, so a darker digit is one no test set holds; but a
    # digit written with a lighter pen is still that digit.
    "digits": ("brightness",),
    "cats_vs_dogs": (),
}

_SAFE_HINTS = {
    "digits": "a mirrored 2 or 7 is no digit, and a 6 rotated by 180 degrees is a 9; small "
              "changes of angle, position and size keep every digit (brightness is a judgment "
              "call here, accepted either way)",
    "cats_vs_dogs": "a mirrored cat is still a cat; would a test photo ever show a cat upside "
                    "down?",
}


def _defensible(got, expected):
    """A comparison for a task's choice: every safe transform in, no unsafe one; the judgment
    calls count either way."""
    if not isinstance(got, list) or not all(isinstance(name, str) for name in got):
        return False, "expected a list of transform names"
    chosen, required = set(got), set(expected["safe"]) - set(expected["either"])
    missing = required - chosen
    unsafe = chosen - required - set(expected["either"])
    if not missing and not unsafe:
        return True, "a defensible choice"
    return False, (f"{len(missing)} safe transform(s) left out, {len(unsafe)} chosen that "
                   "change the label or make images no test set holds")


def _safe_case(task, hidden=False, hint=None, answer=None, either=None):
    def probe(value):
        chosen = value[task]
        if isinstance(chosen, str):
            raise TypeError(f"safe_transforms[{task!r}] must be a list or set of names, got "
                            f"the string {chosen!r}")
        return sorted({str(name) for name in chosen})

    def expected():
        return {"safe": sorted(SAFE_TRANSFORMS[task] if answer is None else answer),
                "either": sorted(JUDGMENT_CALLS[task] if either is None else either)}

    return Case(f"{task}_safe_transforms", probe=probe, expected=expected, compare=_defensible,
                hint=_SAFE_HINTS[task] if hint is None else hint, hidden=hidden)


def _names_probe(value):
    used = set()
    for chosen in value.values():
        used |= {str(name) for name in (chosen if not isinstance(chosen, str) else [chosen])}
    return {"tasks": sorted(str(task) for task in value),
            "unknown_names": sorted(used - set(TRANSFORMS))}


LABEL_PRESERVING = Exercise(
    id="06.label_preserving",
    name="safe_transforms",
    title="Label-preserving or label-changing: which transforms are safe for a task",
    reference=lambda: {task: sorted(SAFE_TRANSFORMS.get(task, ())) for task in TASKS},
    cases=(
        Case("every_task_with_known_names", probe=_names_probe,
             expected=lambda: {"tasks": sorted(TASKS), "unknown_names": []},
             hint="one key per task (" + ", ".join(TASKS) + "), each a list of names from "
                  "TRANSFORMS"),
        _safe_case("digits", hidden=False),
        _safe_case("cats_vs_dogs", hidden=False),
    ),
)


# ----------------------------------------------------------------------------- 06.validation_flow

_CLASS_MODES = {"sparse_categorical_crossentropy": "sparse",
                "categorical_crossentropy": "categorical",
                "binary_crossentropy": "binary"}


def reference_validation_flow(directory, image_size, channels, loss, batch_size=32):
    """Validation batches from ``directory/<class>/<image>``: rescaled, not augmented, in order."""
    from cnnlab.augment import ImageDataGenerator

    if loss not in _CLASS_MODES:
        raise ValueError(f"loss={loss!r}: use one of {sorted(_CLASS_MODES)}")
    if channels not in (1, 3):
        raise ValueError(f"channels={channels!r}: use 1 (grayscale) or 3 (rgb)")
    return ImageDataGenerator(rescale=1 / 255).flow_from_directory(
        directory, target_size=tuple(image_size),
        color_mode="grayscale" if channels == 1 else "rgb",
        class_mode=_CLASS_MODES[loss], batch_size=batch_size, shuffle=False)


def _file_pixels(seed, index, size, channels):
    """The pixels of one test file: smooth blobs (PNG is lossless, so they come back exact)."""
    rng = np.random.default_rng(seed * 1000 + index)
    height, width = size
    rows, cols = np.mgrid[0:height, 0:width]
    image = np.zeros((height, width, channels))
    for c in range(channels):
        r0, c0 = rng.uniform(0, height), rng.uniform(0, width)
        image[..., c] = 255 * np.exp(-((rows - r0) ** 2 + (cols - c0) ** 2) / (0.3 * height
                                                                              * width))
    return np.rint(image).astype(np.uint8)


def _write_folder(root, classes, per_class, file_size, seed):
    """``root/<class>/img_NN.png`` RGB files; returns their paths in Keras's (sorted) order."""
    from PIL import Image

    paths = []
    for label, name in enumerate(classes):
        os.makedirs(os.path.join(root, name))
        for i in range(per_class[label]):
            path = os.path.join(root, name, f"img_{i:02d}.png")
            Image.fromarray(_file_pixels(seed, 100 * label + i, file_size, 3)).save(path)
            paths.append((path, label))
    return paths


def _probe_folder(classes, per_class, file_size, image_size, channels, loss, batch_size, seed):
    """Probe a student's function on a folder it writes itself (then deletes)."""
    def run(f):
        with tempfile.TemporaryDirectory(prefix="cnnlab-06-") as root:
            _write_folder(root, classes, per_class, file_size, seed)
            with contextlib.redirect_stdout(io.StringIO()):
                iterator = f(root, image_size, channels, loss, batch_size=batch_size)
            batches = [iterator[i] for i in range(len(iterator))]
            return {
                "samples": int(iterator.samples),
                "class_indices": {str(k): int(v) for k, v in iterator.class_indices.items()},
                "batches": len(iterator),
                "x_shapes": [list(np.shape(x)) for x, _ in batches],
                "y_shapes": [list(np.shape(y)) for _, y in batches],
                "y": np.concatenate([np.asarray(y, dtype=np.float64) for _, y in batches]),
                "x": np.concatenate([np.asarray(x, dtype=np.float64) for x, _ in batches]),
            }
    return run


def _expected_folder(classes, per_class, file_size, image_size, channels, loss, batch_size,
                     seed):
    """The same facts computed by hand: Pillow decodes and resizes each file, labels by folder."""
    def expected():
        from PIL import Image

        with tempfile.TemporaryDirectory(prefix="cnnlab-06-") as root:
            files = _write_folder(root, classes, per_class, file_size, seed)
            pixels = []
            for path, _ in files:
                with Image.open(path) as image:
                    image = image.convert("L" if channels == 1 else "RGB")
                    image = image.resize((image_size[1], image_size[0]),
                                         Image.Resampling.NEAREST)
                    array = np.asarray(image, dtype=np.float64)
                pixels.append(array[..., None] if array.ndim == 2 else array)
        labels = np.array([label for _, label in files])
        n = len(files)
        sizes = [min(batch_size, n - start) for start in range(0, n, batch_size)]
        mode = _CLASS_MODES[loss]
        y = np.eye(len(classes))[labels] if mode == "categorical" else labels.astype(float)
        return {
            "samples": n,
            "class_indices": {name: i for i, name in enumerate(classes)},
            "batches": len(sizes),
            "x_shapes": [[b, *image_size, channels] for b in sizes],
            "y_shapes": [[b, len(classes)] if mode == "categorical" else [b] for b in sizes],
            "y": y,
            "x": np.stack(pixels) / 255.0,
        }
    return expected


def _folder_case(name, keys, folder, hint, compare=None, hidden=False):
    probe_all = _probe_folder(*folder)
    expected_all = _expected_folder(*folder)

    def pick(result):
        return {key: result[key] for key in keys} if len(keys) > 1 else result[keys[0]]

    kwargs = {"compare": compare} if compare is not None else {}
    return Case(name, probe=lambda f: pick(probe_all(f)), expected=lambda: pick(expected_all()),
                hint=hint, hidden=hidden, **kwargs)


# (classes, files per class, file size, image_size, channels, loss, batch_size, seed)
_DIGITS = (("five", "seven", "two"), (3, 2, 3), (20, 24), (16, 16), 1,
           "sparse_categorical_crossentropy", 32, 1)
_TEXTURES = (("brick", "grass", "gravel"), (2, 3, 2), (24, 24), (12, 20), 3,
             "categorical_crossentropy", 32, 2)

_STRUCTURE = ("samples", "class_indices", "x_shapes", "y_shapes")
_MODE_HINT = ("class_mode follows the loss: sparse_categorical_crossentropy -> 'sparse', "
              "categorical_crossentropy -> 'categorical' (one-hot), binary_crossentropy -> "
              "'binary'; color_mode 'grayscale' for 1 channel, 'rgb' for 3; target_size is "
              "image_size")

VALIDATION_FLOW = Exercise(
    id="06.validation_flow",
    name="validation_flow",
    title="A flow_from_directory pipeline for validation, with the right class_mode",
    reference=lambda: reference_validation_flow,
    cases=(
        _folder_case("grayscale_sparse_structure", _STRUCTURE, _DIGITS, _MODE_HINT),
        _folder_case("grayscale_sparse_labels_in_file_order", ("y",), _DIGITS,
                     "validation batches must come in file order (shuffle=False), labels "
                     "as class indices", compare=allclose(0)),
        _folder_case("pixels_rescaled_not_augmented", ("x",), _DIGITS,
                     "validation images are rescaled to [0, 1] (rescale=1/255) and never "
                     "augmented: no rotation, shift, zoom or flip", compare=allclose(1e-5)),
        _folder_case("rgb_categorical_structure", _STRUCTURE, _TEXTURES, _MODE_HINT),
    ),
)


# ------------------------------------------------------------------------- 06.augmentation_layers


def reference_augmentation_layers(rotation_range, shift_range, zoom_range, horizontal_flip,
                                  seed=None):
    """Keras 3 layers for Keras 2's rotation/shift/zoom/flip arguments, in Keras 2's order."""
    import keras
    from keras import layers

    stack = []
    if rotation_range:
        stack.append(layers.RandomRotation(rotation_range / 360, fill_mode="nearest",
                                           seed=seed))
    if shift_range:
        stack.append(layers.RandomTranslation(shift_range, shift_range, fill_mode="nearest",
                                              seed=seed))
    if zoom_range:
        stack.append(layers.RandomZoom((-zoom_range, zoom_range), (-zoom_range, zoom_range),
                                       fill_mode="nearest", seed=seed))
    if horizontal_flip:
        stack.append(layers.RandomFlip("horizontal", seed=seed))
    return keras.Sequential(stack, name="augmentation")


def _layers_of(model):
    import keras

    found = getattr(model, "layers", None)
    if found is None:
        raise TypeError(f"expected a keras.Sequential of augmentation layers, got "
                        f"{type(model).__name__}")
    return [layer for layer in found if not isinstance(layer, keras.layers.InputLayer)]


def _pair(lower, upper):
    return [round(float(lower), 6), round(float(upper), 6)]


def _factors(model):
    """The ranges each layer draws from, by layer type (what Keras 2's arguments became)."""
    out = {}
    for layer in _layers_of(model):
        kind = type(layer).__name__
        if kind == "RandomRotation":
            factor = layer.factor
            out["rotation"] = _pair(*factor) if isinstance(factor, (list, tuple)) else \
                _pair(-factor, factor)
        elif kind == "RandomTranslation":
            out["translation_height"] = _pair(layer.height_lower, layer.height_upper)
            out["translation_width"] = _pair(layer.width_lower, layer.width_upper)
        elif kind == "RandomZoom":
            out["zoom_height"] = _pair(layer.height_lower, layer.height_upper)
            out["zoom_width"] = (_pair(layer.width_lower, layer.width_upper)
                                 if layer.width_factor is not None else
                                 "aspect ratio kept (no width_factor)")
        elif kind == "RandomFlip":
            out["flip"] = str(layer.mode)
    return out


def _describe(rotation_range, shift_range, zoom_range, horizontal_flip, what):
    def describe(model):
        if what == "types":
            return [type(layer).__name__ for layer in _layers_of(model)]
        if what == "factors":
            return _factors(model)
        if what == "fill_modes":
            return [str(layer.fill_mode) for layer in _layers_of(model)
                    if hasattr(layer, "fill_mode")]
        raise ValueError(what)

    def probe(f):
        return describe(f(rotation_range, shift_range, zoom_range, horizontal_flip, seed=0))

    def expected():
        from cnnlab.augment import ImageDataGenerator

        generator = ImageDataGenerator(rotation_range=rotation_range,
                                       width_shift_range=shift_range,
                                       height_shift_range=shift_range, zoom_range=zoom_range,
                                       horizontal_flip=horizontal_flip)
        return describe(generator.as_layers(seed=0))

    return probe, expected


def _layers_case(name, args, what, hint, hidden=False):
    probe, expected = _describe(*args, what)
    return Case(name, probe=probe, expected=expected, hint=hint, hidden=hidden)


def _inference_probe(f):
    import keras

    x = np.random.default_rng(6).uniform(0, 255, size=(2, 24, 32, 3)).astype("float32")
    model = f(40, 0.2, 0.2, True, seed=0)
    out = keras.ops.convert_to_numpy(model(x, training=False))
    return float(np.abs(out - x).max()) if out.shape == x.shape else float("inf")


_LECTURE_ARGS = (40, 0.2, 0.2, True)

AUGMENTATION_LAYERS = Exercise(
    id="06.augmentation_layers",
    implementations=("cnnlab.augment._generator.ImageDataGenerator",),
    name="augmentation_layers",
    title="The lecture's augmentation as Keras 3 layers inside the model",
    reference=lambda: reference_augmentation_layers,
    cases=(
        _layers_case("lecture_layer_types", _LECTURE_ARGS, "types",
                     "one layer per argument, in Keras 2's order: RandomRotation, "
                     "RandomTranslation, RandomZoom, RandomFlip"),
        _layers_case("lecture_factors", _LECTURE_ARGS, "factors",
                     "RandomRotation takes a fraction of a full turn (degrees / 360); "
                     "Keras 2's zoom_range=z draws height and width zooms independently "
                     "from [1 - z, 1 + z]: give both factors as (-z, z)"),
        _layers_case("fill_mode_nearest", _LECTURE_ARGS, "fill_modes",
                     "Keras 2's default fill_mode is 'nearest'; the Keras 3 layers default "
                     "to 'reflect': pass fill_mode='nearest' to each geometric layer"),
        Case("identity_at_inference", probe=_inference_probe, expected=lambda: 0.0,
             compare=allclose(1e-5),
             hint="augmentation layers must pass images through unchanged when "
                  "training=False (no Rescaling or other layer that always acts)"),
    ),
)


# ----------------------------------------------------------------------------- 06.mixup


def reference_mixup_batch(images, labels, mix_weight, permutation):
    """MixUp (Zhang et al. 2018) with a given weight and partner order, as keras.layers.MixUp.

    ``x_i' = w_i x_i + (1 - w_i) x_perm[i]`` and the same for the one-hot labels.
    """
    images = np.asarray(images, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    permutation = np.asarray(permutation, dtype=int)
    weight = np.asarray(mix_weight, dtype=np.float64)
    if weight.ndim == 0:
        weight = np.full(len(images), float(weight))
    w_images = weight.reshape((-1,) + (1,) * (images.ndim - 1))
    w_labels = weight.reshape((-1,) + (1,) * (labels.ndim - 1))
    return (w_images * images + (1 - w_images) * images[permutation],
            w_labels * labels + (1 - w_labels) * labels[permutation])


def _mixup_inputs(seed, shape, classes, scalar=False, permutation=None):
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 255, size=shape).astype("float32")
    labels = np.eye(classes, dtype="float32")[rng.integers(0, classes, size=shape[0])]
    weight = 0.3 if scalar else rng.beta(0.4, 0.4, size=shape[0])
    order = rng.permutation(shape[0]) if permutation is None else np.asarray(permutation)
    return images, labels, weight, order


def _mixup_case(name, inputs, part, hint, hidden=False):
    index = 0 if part == "images" else 1

    def probe(f):
        return np.asarray(f(*inputs())[index], dtype=np.float64)

    return Case(name, probe=probe,
                expected=lambda: reference_mixup_batch(*inputs())[index],
                compare=allclose(1e-3), hint=hint, hidden=hidden)


_MIX_HINT = ("each image i is mixed with its partner images[permutation[i]]: "
             "w_i * x_i + (1 - w_i) * x_partner, with w_i broadcast over height, width and "
             "channels (reshape to (-1, 1, 1, 1))")
_LABEL_HINT = ("the labels are mixed with the same weights and partners as the images: "
               "w_i * y_i + (1 - w_i) * y_partner, each row still sums to 1")

MIXUP = Exercise(
    id="06.mixup",
    name="mixup_batch",
    title="MixUp: convex combinations of images and of their one-hot labels",
    reference=lambda: reference_mixup_batch,
    cases=(
        _mixup_case("rgb_batch_images", lambda: _mixup_inputs(1, (6, 8, 8, 3), 4), "images",
                    _MIX_HINT),
        _mixup_case("rgb_batch_labels", lambda: _mixup_inputs(1, (6, 8, 8, 3), 4), "labels",
                    _LABEL_HINT),
    ),
)

EXERCISES = [TRANSFORM_MATRIX, LABEL_PRESERVING, VALIDATION_FLOW, AUGMENTATION_LAYERS, MIXUP]
