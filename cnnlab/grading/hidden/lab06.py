"""Lab 06 "Data augmentation": points and hidden cases (instructor material).

Drawn cases reuse the public case builders of :mod:`cnnlab.exercises.lab06` with a seed from the
course secret (:func:`cnnlab.grading.hidden.case_seeds`): the pixels of the validation folder
and the MixUp batches are drawn; folder layouts, transform parameters, layer arguments and the
answer key stay fixed.
"""

from __future__ import annotations

import numpy as np

from cnnlab.exercise import Case, allclose
from cnnlab.exercises.lab06 import (
    SAFE_TRANSFORMS,
    TASKS,
    TRANSFORMS,
    _CENTRE_HINT,
    _MIX_HINT,
    _MODE_HINT,
    _STRUCTURE,
    _TEXTURES,
    _folder_case,
    _layers_case,
    _matrix_case,
    _mixup_case,
    _mixup_inputs,
    _safe_case,
)
from cnnlab.grading.hidden import Drawn

__all__ = ["POINTS", "HIDDEN", "REFERENCES", "HIDDEN_SAFE_TRANSFORMS", "HIDDEN_JUDGMENT_CALLS"]

#: The answer key of the tasks only hidden tests check (06.label_preserving).
HIDDEN_SAFE_TRANSFORMS = {
    # Seen from above there is no up, down, left or right: every flip and rotation is a view.
    "satellite": TRANSFORMS,
    # Brightness is the label here: darkening a day photo makes a night photo.
    "day_or_night": ("horizontal_flip", "rotate_small", "shift", "zoom"),
}

#: Their judgment calls, accepted either way (the notebook names them): tiles of one ground
#: resolution never show a field zoomed, but fields come in every size; sun and season change a
#: tile's brightness, but so does what grows on it.
HIDDEN_JUDGMENT_CALLS = {
    "satellite": ("zoom", "brightness"),
    "day_or_night": (),
}

#: References the grader uses in place of the public ones: the full answer key.
REFERENCES = {
    "06.label_preserving": lambda: {
        task: sorted(SAFE_TRANSFORMS.get(task, HIDDEN_SAFE_TRANSFORMS.get(task, ())))
        for task in TASKS},
}

POINTS = {
    "06.transform_matrix": 3,
    "06.label_preserving": 2,
    "06.validation_flow": 2,
    "06.augmentation_layers": 2,
    "06.mixup": 2,
}

# A draw of the kind get_random_transform makes for the lecture's generator on chelsea
# (300 x 451): every key, including the two that are not geometric (they must be ignored).
_LECTURE_DRAW = {"theta": -23.4, "tx": 31.7, "ty": -12.2, "shear": 0.13, "zx": 1.08,
                 "zy": 0.86, "flip_horizontal": True, "flip_vertical": False,
                 "channel_shift_intensity": 4.1, "brightness": None}

# (classes, files per class, file size, image_size, channels, loss, batch_size, seed)
_CATS_DOGS = (("cats", "dogs"), (3, 4), (30, 20), (10, 10), 3, "binary_crossentropy", 32, 3)
_BATCHES = (("a", "b", "c", "d"), (3, 3, 2, 2), (8, 8), (8, 8), 1,
            "sparse_categorical_crossentropy", 4, 4)


def _reseeded(folder, seed):
    """``folder`` with its pixel seed (the last entry) replaced by ``seed``."""
    return (*folder[:-1], seed)


_NO_FLIP_NO_ZOOM = (15, 0.1, 0.0, False)
_ZOOM_AND_FLIP = (0, 0.0, 0.3, True)


def _training_probe(f):
    import keras

    x = np.random.default_rng(7).uniform(0, 255, size=(4, 24, 32, 3)).astype("float32")
    model = f(40, 0.2, 0.2, True, seed=0)
    out = keras.ops.convert_to_numpy(model(x, training=True))
    return {"shape": list(out.shape),
            "changed": bool(out.shape == x.shape and np.abs(out - x).max() > 1.0)}


HIDDEN = {
    # fixed inputs on purpose: each is a chosen configuration (a true centre, a shear, a flip
    # composed with a rotation, the lecture's draw) whose matrix is the thing tested
    "06.transform_matrix": (
        _matrix_case("rotation_non_square_true_centre", {"theta": 30.0}, (40, 64),
                     _CENTRE_HINT),
        _matrix_case("shear_20_degrees", {"shear": 20.0}, (32, 32),
                     "S(s) = [[cos s, 0, 0], [-sin s, 1, 0], [0, 0, 1]], s in degrees"),
        _matrix_case("vertical_flip_and_rotation", {"theta": -45.0, "flip_vertical": True},
                     (21, 33), "the flip is the rightmost factor: applied to the output "
                     "coordinates first"),
        _matrix_case("lecture_draw_every_key", _LECTURE_DRAW, (300, 451),
                     "M = C+ R T S Z C- F in that order; ignore the keys that are not "
                     "geometric"),
    ),
    # fixed on purpose: the answer key of the two other tasks is the thing tested (their
    # judgment calls accepted either way)
    "06.label_preserving": (
        _safe_case("satellite", answer=HIDDEN_SAFE_TRANSFORMS["satellite"],
                   either=HIDDEN_JUDGMENT_CALLS["satellite"],
                   hint="seen from straight above, does the tile have an up or a left?"),
        _safe_case("day_or_night", answer=HIDDEN_SAFE_TRANSFORMS["day_or_night"],
                   either=HIDDEN_JUDGMENT_CALLS["day_or_night"],
                   hint="which transform changes what the label is about?"),
    ),
    # labels, shapes and batches follow from the folder layout (fixed), not from the pixels:
    # only the pixel case draws its files from the seed
    "06.validation_flow": (
        _folder_case("rgb_categorical_one_hot_labels", ("y",), _TEXTURES,
                     "categorical_crossentropy needs one-hot labels", compare=allclose(0)),
        _folder_case("binary_two_classes", _STRUCTURE, _CATS_DOGS, _MODE_HINT),
        _folder_case("binary_labels", ("y",), _CATS_DOGS,
                     "binary_crossentropy needs one label per image, 0 or 1",
                     compare=allclose(0)),
        Drawn("rgb_pixels_resized", 3,
              lambda name, seed: _folder_case(
                  name, ("x",), _reseeded(_CATS_DOGS, seed),
                  "images are resized to image_size and rescaled to [0, 1]",
                  compare=allclose(1e-5))),
        _folder_case("batch_size_is_used", ("batches", "x_shapes", "y"), _BATCHES,
                     "pass batch_size on to flow_from_directory; the last batch is smaller"),
    ),
    # fixed on purpose: chosen argument sets (zero ranges, no flip) decide which layers exist;
    # the training case only asks that the images change and keep their shape
    "06.augmentation_layers": (
        _layers_case("no_flip_no_zoom_types", _NO_FLIP_NO_ZOOM, "types",
                     "leave out the layer of a range that is 0 and the flip when "
                     "horizontal_flip is False"),
        _layers_case("no_flip_no_zoom_factors", _NO_FLIP_NO_ZOOM, "factors",
                     "use the arguments, not the lecture's numbers"),
        _layers_case("zoom_and_flip_only", _ZOOM_AND_FLIP, "types",
                     "leave out the layer of a range that is 0"),
        Case("augments_in_training", probe=_training_probe,
             expected=lambda: {"shape": [4, 24, 32, 3], "changed": True},
             hint="with training=True the layers change the images and keep their shape"),
    ),
    "06.mixup": (
        Drawn("grayscale_batch_images", 2,
              lambda name, seed: _mixup_case(
                  name, lambda: _mixup_inputs(seed, (5, 28, 28, 1), 10), "images", _MIX_HINT)),
        Drawn("scalar_weight_for_the_batch", 3,
              lambda name, seed: _mixup_case(
                  name, lambda: _mixup_inputs(seed, (4, 6, 6, 3), 3, scalar=True), "images",
                  "mix_weight may be one number for the whole batch")),
        Drawn("scalar_weight_labels", 3,
              lambda name, seed: _mixup_case(
                  name, lambda: _mixup_inputs(seed, (4, 6, 6, 3), 3, scalar=True), "labels",
                  "mix_weight may be one number for the whole batch")),
        Drawn("identity_permutation_gives_the_batch_back", 4,
              lambda name, seed: _mixup_case(
                  name, lambda: _mixup_inputs(seed, (5, 4, 4, 3), 5, permutation=np.arange(5)),
                  "images", "an image mixed with itself is itself")),
    ),
}
