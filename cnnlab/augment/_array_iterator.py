"""``NumpyArrayIterator``: batches of augmented images (and labels) from arrays in memory, what
``ImageDataGenerator.flow`` returns (lecture idea: data augmentation, Labs 06 and 07).

Part of the iterators of :mod:`cnnlab.augment._iterators`, which re-exports it.
"""

from __future__ import annotations

import numpy as np

from cnnlab.augment import _arrays
from cnnlab.augment._iterator_base import _GeneratorIterator, _formats

__all__ = ["NumpyArrayIterator"]


class NumpyArrayIterator(_GeneratorIterator):
    """Batches of augmented images (and labels) from arrays in memory: what ``flow`` returns.

    Keras 2's signature.  Yields ``x`` alone when there are no labels, else ``(x, y)`` or
    ``(x, y, sample_weight)`` (``x`` may also be ``[x, extra, ...]`` with extra inputs, as in
    Keras 2).  Any channel count works (other than 1, 3 or 4 it warns, as Keras 2 did).
    Unlike Keras 2, ``x`` keeps its dtype in memory (uint8 stays uint8) and is converted
    batch by batch.

    Used in: labs/06_data_augmentation, labs/07_training_convnets_well
    """

    def __init__(self, x, y, image_data_generator, batch_size=32, shuffle=False,
                 sample_weight=None, seed=None, data_format=None, save_to_dir=None,
                 save_prefix="", save_format="png", subset=None, ignore_class_split=False,
                 dtype=None):
        generator = image_data_generator
        data_format, dtype = _formats(generator, data_format, dtype)
        x_misc = []
        if isinstance(x, (tuple, list)):
            if len(x) != 2:
                raise ValueError(
                    "x as a list/tuple must be (images, extra_inputs) with extra_inputs one "
                    f"array or a list of arrays; got {len(x)} items. For a plain batch of "
                    "images pass one array: np.stack(images)"
                )
            extras = x[1] if isinstance(x[1], list) else [x[1]]
            x_misc = [np.asarray(extra) for extra in extras]
            x = x[0]
        for extra in x_misc:
            if len(extra) != len(x):
                raise ValueError(
                    "All of the arrays in `x` should have the same length. Found a pair "
                    f"with: len(x[0]) = {len(x)}, len(x[?]) = {len(extra)}; every extra "
                    "input needs one row per image"
                )
        if y is not None and len(x) != len(y):
            raise ValueError(
                "`x` (images tensor) and `y` (labels) should have the same length. Found: "
                f"x.shape = {np.shape(x)}, y.shape = {np.shape(y)}; give one label per image"
            )
        if sample_weight is not None and len(x) != len(sample_weight):
            raise ValueError(
                "`x` (images tensor) and `sample_weight` should have the same length. Found: "
                f"x.shape = {np.shape(x)}, sample_weight.shape = {np.shape(sample_weight)}; "
                "give one weight per image"
            )
        x = _arrays.check_images(x, data_format)
        y = np.asarray(y) if y is not None else None
        sample_weight = np.asarray(sample_weight) if sample_weight is not None else None
        if len(x) == 0:
            raise ValueError("x holds no images (shape {}); pass at least one".format(x.shape))
        if subset is not None:
            if subset not in ("training", "validation"):
                raise ValueError(f'Invalid subset name: {subset}; expected "training" or '
                                 '"validation".')
            split = getattr(generator, "validation_split", 0.0) if generator else 0.0
            if not split:
                raise ValueError(
                    f"subset={subset!r} needs a validation split: build the generator with "
                    "ImageDataGenerator(validation_split=0.2, ...)"
                )
            split_idx = int(len(x) * split)
            if y is not None and not ignore_class_split and not np.array_equal(
                    np.unique(y[:split_idx]), np.unique(y[split_idx:])):
                raise ValueError(
                    "Training and validation subsets have different number of classes after "
                    "the split. If your numpy arrays are sorted by the label, you might want "
                    f"to shuffle them: the validation subset is the first {split:.0%} of the "
                    f"rows (split at row {split_idx}). Shuffle x and y together first "
                    "(rng.permutation), or pass ignore_class_split=True"
                )
            part = slice(0, split_idx) if subset == "validation" else slice(split_idx, None)
            x, x_misc = x[part], [extra[part] for extra in x_misc]
            y = y[part] if y is not None else None
            sample_weight = sample_weight[part] if sample_weight is not None else None
            if len(x) == 0:
                raise ValueError(f"the {subset} subset is empty ({len(x)} rows); use a "
                                 "validation_split that leaves images on both sides")
        self.x = x
        self.samples = len(x)
        self.x_misc = x_misc
        self.y = y
        self.sample_weight = sample_weight
        self.subset = subset
        self._set_generator(generator, data_format, dtype, save_to_dir, save_prefix,
                            save_format)
        super().__init__(len(x), batch_size, shuffle, seed)

    def _load_x(self, index_array):
        batch = self.x[index_array]  # uint8 stays uint8 until the compiled kernel
        if batch.dtype != np.uint8:
            batch = batch.astype(self.dtype)
        return batch

    def _outputs(self, index_array, batch_x):
        misc = [extra[index_array] for extra in self.x_misc]
        inputs = [batch_x] + misc if misc else batch_x
        if self.y is None:
            return inputs
        if self.sample_weight is None:
            return inputs, self.y[index_array]
        return inputs, self.y[index_array], self.sample_weight[index_array]

