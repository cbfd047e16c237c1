"""The iterators: Keras 2's public ``Iterator`` base class and the three that the generator's
``flow``, ``flow_from_directory`` and ``flow_from_dataframe`` return.

All are ``keras.utils.PyDataset`` s (``model.fit``/``evaluate``/``predict`` take them directly)
that also keep Keras 2's iterator protocol: ``next(it)`` cycles through the data forever,
reshuffling at the start of every pass, so ``x, y = next(train_flow)`` runs as it did.  A Keras
2 subclass of ``Iterator`` (``__init__`` calling ``super().__init__(n, batch_size, shuffle,
seed)`` and a ``_get_batches_of_transformed_samples(index_array)``) runs unchanged.

Randomness without global state
-------------------------------
A batch is a pure function of ``(seed, pass, batch index)``: batch ``i`` of the pass that
starts at global batch ``t0`` draws its shuffle order (at ``i == 0``) and its transforms from
``np.random.RandomState(seed + t0 + i)``, the stream Keras 2 got by reseeding NumPy's global
generator with ``seed + total_batches_seen``.  So with the same ``seed`` the first epoch holds
the same images in the same order with the same transform parameters as the legacy generator
(up to the fixes listed in ``cnnlab.augment``), NumPy's global generator is never touched
(keras-preprocessing#342), and a batch prepared early in a background thread, fetched twice or
fetched out of order (``model.fit`` shuffles batch order) is still the same batch.  Without a
``seed`` the iterator draws one at random when it is built.

The generator protocol
----------------------
The iterators talk to the generator only through its public draw/apply protocol:
``get_random_transform(image_shape, seed=rs)`` once per image and
``augment_batch(batch, params, pad_to=batch_size)`` once per batch (transform and
standardise), plus its ``data_format``, ``dtype`` and ``validation_split``.  Any object with
those works as ``image_data_generator``; None (as Keras 2 allowed) loads and batches only.
This module does not import the generator's module.

Speed
-----
Each batch is decoded (files: in parallel), transformed with one matrix per image and one
compiled resampling per batch, and the next batch is prepared in a background thread while the
caller works on this one.
"""

from __future__ import annotations

import math
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from keras.utils import PyDataset

from cnnlab.augment import _arrays, _files

__all__ = ["BatchIndexError", "DataFrameIterator", "DirectoryIterator", "Iterator",
           "NumpyArrayIterator"]


class BatchIndexError(ValueError, IndexError):
    """A batch index past the end: Keras 2 raised ``ValueError``, Python sequences raise
    ``IndexError``; this is both, so code catching either keeps working."""


def _check_batch_size(batch_size, allow_zero=False):
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < (0 if allow_zero else 1):
        raise ValueError(f"batch_size={batch_size!r} must be a positive int, e.g. 32")
    return int(batch_size)


def _check_seed(seed):
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed={seed!r} must be None or a non-negative int, e.g. seed=0")
    return int(seed)


def _check_save_to_dir(save_to_dir, save_format):
    if save_to_dir is None:
        return None
    save_to_dir = os.fspath(save_to_dir)
    if not os.path.isdir(save_to_dir):
        raise ValueError(
            f"save_to_dir={save_to_dir!r} is not a directory: create it first "
            f"(os.makedirs({save_to_dir!r}, exist_ok=True))"
        )
    if save_format.lower() not in ("png", "jpg", "jpeg", "bmp", "gif", "tif", "tiff", "webp"):
        raise ValueError(f"save_format={save_format!r} is not an image format; use 'png'")
    return save_to_dir


def _formats(generator, data_format, dtype):
    """The iterator's data_format and dtype: given, else the generator's, else Keras's."""
    import keras

    own = getattr(generator, "data_format", None) if generator is not None else None
    if data_format is None:
        data_format = own or keras.config.image_data_format()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"data_format={data_format!r} is not valid: use 'channels_last' or "
                         "'channels_first'")
    if own is not None and data_format != own:
        raise ValueError(
            f"data_format={data_format!r} differs from the generator's {own!r}: the generator "
            "would transform the wrong axes; leave data_format out (it follows the generator)"
        )
    if dtype is None:
        dtype = getattr(generator, "dtype", None) if generator is not None else None
        dtype = dtype or keras.config.floatx()
    return data_format, np.dtype(dtype).name


class Iterator(PyDataset):
    """Keras 2's base class for image iterators: subclass it as in Keras 2.

    ``Iterator(n, batch_size, shuffle, seed, **kwargs)`` (``kwargs`` go to ``PyDataset``:
    ``workers``, ``use_multiprocessing``, ``max_queue_size``); a subclass implements
    ``_get_batches_of_transformed_samples(index_array)``, the batch of the samples at
    ``index_array``.  Then ``it[i]`` (an out-of-range ``i`` raises :class:`BatchIndexError`,
    both ``ValueError`` and ``IndexError``), ``len(it)``, ``next(it)`` (cycling forever),
    ``it.index_generator``, ``on_epoch_end()`` (a new shuffle), ``reset()``, ``n``,
    ``batch_size``, ``shuffle``, ``seed``, ``batch_index`` and ``total_batches_seen`` are
    Keras 2's, and ``model.fit(it)`` trains on it.  Unlike Keras 2, a ``seed`` seeds the
    iterator's own shuffle streams and never NumPy's global generator.

    Used in: labs/06_data_augmentation
    """

    white_list_formats = _files.IMAGE_EXTENSIONS
    _prefetch_batches = False  # Keras 2 subclasses: each batch when it is asked for

    def __init__(self, n, batch_size, shuffle, seed, **kwargs):
        super().__init__(**kwargs)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n={n!r} must be the number of samples, an int >= 0")
        self.n = int(n)
        self.batch_size = _check_batch_size(batch_size, allow_zero=self.n == 0)
        self.shuffle = bool(shuffle)
        self.seed = _check_seed(seed)
        self._base_seed = self.seed if self.seed is not None else int(
            np.random.SeedSequence().generate_state(1)[0])
        self.epoch = 0
        self.batch_index = 0
        self.total_batches_seen = 0
        self._pass_start = 0
        self._index_generator = None
        self._init_threading()

    # -- state that does not pickle (PyDataset may copy the iterator into worker processes)
    def _init_threading(self):
        self.lock = threading.Lock()
        self._orders = {}
        self._pending = {}
        self._executor = None

    def __getstate__(self):
        state = self.__dict__.copy()
        for key in ("lock", "_orders", "_pending", "_executor", "_index_generator"):
            state.pop(key, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._index_generator = None
        self._init_threading()

    def __del__(self):
        executor = getattr(self, "_executor", None)
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    # -- the PyDataset protocol
    def __len__(self):
        if self.n == 0:
            return 0
        return math.ceil(self.n / self.batch_size)

    def __getitem__(self, idx):
        """Batch ``idx`` of the current epoch (``on_epoch_end`` starts the next one)."""
        if isinstance(idx, bool) or not isinstance(idx, (int, np.integer)):
            raise TypeError(f"batch index must be an int, got {type(idx).__name__}")
        length = len(self)
        asked = int(idx)
        if idx < 0:
            idx += length
        if not 0 <= idx < length:
            raise BatchIndexError(
                f"Asked to retrieve element {asked}, but the Sequence has length {length}: "
                f"this iterator has {length} batches (ceil({self.n} samples / batch_size "
                f"{self.batch_size})), numbered 0 to {length - 1} (or -{length} to -1)"
            )
        t0 = self.epoch * length
        batch = self._fetch(t0, int(idx))
        for ahead in range(int(idx) + 1, min(int(idx) + 1 + self._prefetch_depth(), length)):
            self._prefetch(t0, ahead)
        return batch

    def on_epoch_end(self):
        """Start a new epoch: the next ``__getitem__`` calls see a fresh shuffle."""
        self.epoch += 1

    @property
    def index_array(self):
        """The order of the samples in the current epoch (shuffled if ``shuffle``)."""
        return self._order(self.epoch * len(self))

    # -- Keras 2's iterator protocol
    def reset(self):
        """Make the next ``next()`` start a new pass (Keras 2's ``reset``)."""
        self.batch_index = 0

    def _advance(self):
        """Claim the next batch of Keras 2's endless pass: ``(pass start, batch index)``."""
        length = len(self)
        with self.lock:
            idx = self.batch_index
            if idx == 0:
                self._pass_start = self.total_batches_seen
            t0 = self._pass_start
            self.batch_index = idx + 1 if idx + 1 < length else 0
            self.total_batches_seen += 1
        return t0, idx

    def _flow_index(self):
        """Keras 2's endless generator of index arrays (what ``next(it)`` batches)."""
        self.reset()
        while True:
            t0, idx = self._advance()
            yield self._order(t0)[idx * self.batch_size:(idx + 1) * self.batch_size]

    @property
    def index_generator(self):
        """Keras 2's ``index_generator``: ``next(it.index_generator)`` is the next index array."""
        if self._index_generator is None:
            self._index_generator = self._flow_index()
        return self._index_generator

    def __next__(self):
        """The next batch, cycling forever like Keras 2's iterators (``x, y = next(it)``)."""
        length = len(self)
        t0, idx = self._advance()
        batch = self._fetch(t0, idx)
        for ahead in range(idx + 1, idx + 1 + self._prefetch_depth()):
            self._prefetch(t0 + (ahead // length) * length, ahead % length)
        return batch

    def next(self):
        """Keras 2 spelling of ``next(it)``."""
        return self.__next__()

    def _get_batches_of_transformed_samples(self, index_array):
        """The batch of the samples at ``index_array``: what a subclass implements."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement _get_batches_of_transformed_samples("
            "index_array), returning the batch of the samples at index_array"
        )

    # -- seeded, pure batches
    def _stream(self, t):
        return np.random.RandomState((self._base_seed + t) % (2 ** 32))

    def _order(self, t0, rs=None):
        if not self.shuffle:
            return np.arange(self.n)
        with self.lock:
            order = self._orders.get(t0)
        if order is None:
            order = (rs if rs is not None else self._stream(t0)).permutation(self.n)
            with self.lock:
                self._orders[t0] = order
                for key in sorted(self._orders)[:-3]:
                    del self._orders[key]
        elif rs is not None:
            rs.permutation(self.n)  # keep the stream where Keras 2 had it
        return order

    def _make_batch(self, t0, idx):
        rs = self._stream(t0 + idx)
        order = self._order(t0, rs if idx == 0 else None)
        index_array = order[idx * self.batch_size:(idx + 1) * self.batch_size]
        return self._batch_from(index_array, rs)

    def _batch_from(self, index_array, rs):
        """The batch at ``index_array``; ``rs`` is this batch's stream (Keras 2 subclasses
        draw from NumPy themselves, so the base class hands them only the indices)."""
        return self._get_batches_of_transformed_samples(index_array)

    def _fetch(self, t0, idx):
        with self.lock:
            future = self._pending.pop((t0, idx), None)
        if future is not None:
            return future.result()
        return self._make_batch(t0, idx)

    def _prefetch_depth(self):
        """How many batches to prepare ahead: one per core (up to 4), each in its own thread.

        The compiled resampling of one batch runs on one core and releases the GIL, so
        batches prepared side by side use every core of a single process."""
        if not self._prefetch_batches:
            return 0
        return max(1, min(4, os.cpu_count() or 1))

    def _prefetch(self, t0, idx):
        if not self._prefetch_batches:
            return
        key = (t0, idx)
        with self.lock:
            if key in self._pending:
                return
            for stale in [k for k in self._pending if k[0] < t0]:
                self._pending.pop(stale).cancel()
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self._prefetch_depth(),
                    thread_name_prefix="cnnlab-augment-prefetch")
            self._pending[key] = self._executor.submit(self._make_batch, t0, idx)


class _GeneratorIterator(Iterator):
    """cnnlab's iterators: load a batch, augment it through the generator's protocol, save."""

    _save_hash_high = 10_000
    _prefetch_batches = True

    def _set_generator(self, generator, data_format, dtype, save_to_dir, save_prefix,
                       save_format):
        self.image_data_generator = generator
        self.data_format, self.dtype = _formats(generator, data_format, dtype)
        self.save_to_dir = _check_save_to_dir(save_to_dir, save_format)
        self.save_prefix = save_prefix
        self.save_format = save_format
        if save_to_dir:
            self._prefetch_batches = False  # never write files for a batch nobody asked for

    def _batch_from(self, index_array, rs):
        generator = self.image_data_generator
        batch_x = self._load_x(index_array)
        if generator is None:
            batch_x = batch_x.astype(self.dtype)
        else:
            params = [generator.get_random_transform(batch_x.shape[1:], seed=rs)
                      for _ in range(len(batch_x))]
            batch_x = generator.augment_batch(batch_x, params, pad_to=self.batch_size)
            batch_x = batch_x.astype(self.dtype, copy=False)
        if self.save_to_dir:
            _files.save_batch(batch_x, index_array, self.save_to_dir, self.save_prefix,
                              self.save_format, self.data_format, rs, self._save_hash_high)
        return self._outputs(index_array, batch_x)

    def _get_batches_of_transformed_samples(self, index_array):
        """The augmented batch of the samples at ``index_array`` (Keras 2's hook): drawn from
        the iterator's next stream, so repeated calls give fresh transforms."""
        with self.lock:
            t = self.total_batches_seen
            self.total_batches_seen += 1
        return self._batch_from(np.asarray(index_array, dtype=int), self._stream(t))

    # -- what subclasses provide
    def _load_x(self, index_array):
        raise NotImplementedError

    def _outputs(self, index_array, batch_x):
        raise NotImplementedError


# ------------------------------------------------------------------------------------------
# Arrays in memory
# ------------------------------------------------------------------------------------------

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


# ------------------------------------------------------------------------------------------
# Image files
# ------------------------------------------------------------------------------------------

def _check_target_size(target_size):
    try:
        height, width = (int(v) for v in target_size)
        ok = height >= 1 and width >= 1 and len(tuple(target_size)) == 2
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"target_size={target_size!r} must be (height, width) in pixels, "
                         "e.g. target_size=(150, 150)")
    return (height, width)


def _split_bounds(generator, subset):
    if subset is None:
        return None
    if subset not in ("training", "validation"):
        raise ValueError(f"subset={subset!r} is not valid: use 'training' or 'validation'")
    split = getattr(generator, "validation_split", 0.0) if generator is not None else 0.0
    if not split:
        raise ValueError(
            f"subset={subset!r} needs a validation split: build the generator with "
            "ImageDataGenerator(validation_split=0.2, ...)"
        )
    return (0.0, split) if subset == "validation" else (split, 1.0)


def _skip_unreadable(paths, on_error, where):
    """Drop files Pillow cannot open, warning with every name (or raise, on_error="raise")."""
    bad = _files.check_files(paths)
    if not bad:
        return paths, []
    listing = "\n".join(f"  {path}: {reason}" for path, reason in bad)
    if on_error == "raise":
        raise ValueError(
            f"{len(bad)} file(s) in {where} are not readable images:\n{listing}\n"
            "Delete or replace them, or pass on_error='warn' to skip them with a warning."
        )
    warnings.warn(
        f"skipped {len(bad)} unreadable file(s) in {where} (samples counts only the "
        f"readable images):\n{listing}",
        UserWarning,
        stacklevel=4,
    )
    bad_set = {path for path, _ in bad}
    return [path for path in paths if path not in bad_set], bad


class _FileIterator(_GeneratorIterator):
    """Batches decoded from image files (shared by the directory and dataframe iterators).

    The one ``__init__`` of both: it checks the options they share, asks the subclass's
    ``_list_samples()`` for the files (it sets ``filenames``, ``_filepaths`` and ``classes``
    and returns the "Found ..." line), prints that line as Keras 2 did and starts the
    iteration.
    """

    _save_hash_high = 10_000_000
    white_list_formats = _files.IMAGE_EXTENSIONS
    skipped = ()  # paths left out because they could not be read

    def __init__(self, image_data_generator, target_size, color_mode, class_mode, batch_size,
                 shuffle, seed, data_format, save_to_dir, save_prefix, save_format, subset,
                 interpolation, keep_aspect_ratio, dtype, on_error):
        generator = image_data_generator
        data_format, dtype = _formats(generator, data_format, dtype)
        self._set_file_options(data_format, target_size, color_mode, interpolation,
                               keep_aspect_ratio, on_error)
        self.class_mode = self._check_class_mode(class_mode)
        self.split = _split_bounds(generator, subset)
        self.subset = subset
        self.data_format = data_format
        self.dtype = dtype
        found = self._list_samples()
        self.samples = len(self.filenames)
        print(found)
        self._set_generator(generator, data_format, dtype, save_to_dir, save_prefix,
                            save_format)
        super().__init__(self.samples, batch_size, shuffle, seed)

    def _list_samples(self):
        raise NotImplementedError

    def _set_file_options(self, data_format, target_size, color_mode, interpolation,
                          keep_aspect_ratio, on_error):
        self.target_size = _check_target_size(target_size)
        if color_mode not in _files.COLOR_MODES:
            raise ValueError(f"color_mode={color_mode!r} is not valid: use one of "
                             f"{sorted(_files.COLOR_MODES)}")
        if interpolation not in _files.INTERPOLATIONS:
            raise ValueError(f"interpolation={interpolation!r} is not valid: use one of "
                             f"{list(_files.INTERPOLATIONS)} (Pillow's resampling filters)")
        if on_error not in ("warn", "raise"):
            raise ValueError(f"on_error={on_error!r} is not valid: use 'warn' or 'raise'")
        self.color_mode = color_mode
        self.interpolation = interpolation
        self.keep_aspect_ratio = bool(keep_aspect_ratio)
        self.on_error = on_error
        channels = _files.COLOR_MODES[color_mode]
        if data_format == "channels_last":
            self.image_shape = self.target_size + (channels,)
        else:
            self.image_shape = (channels,) + self.target_size

    def _check_class_mode(self, class_mode):
        if class_mode not in self.allowed_class_modes:
            allowed = sorted(m for m in self.allowed_class_modes if m is not None) + [None]
            raise ValueError(f"class_mode={class_mode!r} is not valid: use one of {allowed}")
        return class_mode

    @property
    def filepaths(self):
        """Paths of the image files, in sample order."""
        return self._filepaths

    @property
    def labels(self):
        """The label of every sample (class indices, or the raw targets)."""
        return self.classes

    def _load_x(self, index_array):
        paths = [self._filepaths[i] for i in index_array]
        batch = _files.decode_files(paths, self.color_mode, self.target_size,
                                    self.interpolation, self.keep_aspect_ratio, self.dtype)
        if self.data_format == "channels_first":
            batch = np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
        return batch

    def _class_targets(self, index_array, batch_x):
        mode = self.class_mode
        if mode == "input":
            return batch_x.copy()
        if mode in ("binary", "sparse"):
            return np.asarray([self.classes[i] for i in index_array], dtype=self.dtype)
        if mode == "categorical":
            y = np.zeros((len(index_array), len(self.class_indices)), dtype=self.dtype)
            for row, i in enumerate(index_array):
                y[row, self.classes[i]] = 1.0
            return y
        if mode == "multi_output":
            return [output[index_array] for output in self._targets]
        if mode == "raw":
            return self._targets[index_array]
        return None

    def _outputs(self, index_array, batch_x):
        y = self._class_targets(index_array, batch_x)
        if y is None:
            return batch_x
        weights = getattr(self, "_sample_weight", None)
        if weights is None:
            return batch_x, y
        return batch_x, y, weights[index_array]


class DirectoryIterator(_FileIterator):
    """Batches from ``directory/<class>/<image>`` files: what ``flow_from_directory`` returns.

    Classes are the subfolders (alphabetical unless ``classes`` lists them), images are found
    recursively (png, jpg, jpeg, bmp, ppm, tif, tiff).  Every file is opened once when the
    iterator is built; unreadable ones are skipped with a warning naming each one (or raise,
    ``on_error="raise"``) and ``samples`` counts only the readable images.

    Used in: labs/06_data_augmentation
    """

    allowed_class_modes = {"categorical", "binary", "sparse", "input", None}

    def __init__(self, directory, image_data_generator, target_size=(256, 256),
                 color_mode="rgb", classes=None, class_mode="categorical", batch_size=32,
                 shuffle=True, seed=None, data_format=None, save_to_dir=None, save_prefix="",
                 save_format="png", follow_links=False, subset=None, interpolation="nearest",
                 keep_aspect_ratio=False, dtype=None, on_error="warn"):
        self._source = (directory, classes, follow_links)
        super().__init__(image_data_generator, target_size, color_mode, class_mode,
                         batch_size, shuffle, seed, data_format, save_to_dir, save_prefix,
                         save_format, subset, interpolation, keep_aspect_ratio, dtype,
                         on_error)

    def _list_samples(self):
        directory, classes, follow_links = self._source
        class_mode, subset, on_error = self.class_mode, self.subset, self.on_error
        directory = os.fspath(directory)
        if not os.path.isdir(directory):
            what = "is a file, not a directory" if os.path.exists(directory) else \
                "does not exist"
            raise FileNotFoundError(
                f"directory {directory!r} {what} (working directory: {os.getcwd()!r}); "
                "flow_from_directory expects a folder with one subfolder per class, e.g. "
                "train/cats/*.jpg and train/dogs/*.jpg"
            )
        self.directory = directory
        if classes is None:
            classes = sorted(name for name in os.listdir(directory)
                             if os.path.isdir(os.path.join(directory, name)))
            if not classes:
                raise ValueError(
                    f"directory {directory!r} has no class subfolders: put the images of "
                    f"each class in their own subfolder ({directory}/cats/*.jpg, "
                    f"{directory}/dogs/*.jpg); for unlabelled images put them all in one "
                    "subfolder and use class_mode=None"
                )
        else:
            classes = list(classes)
            missing = [c for c in classes if not os.path.isdir(os.path.join(directory, c))]
            if missing:
                raise ValueError(f"classes {missing} have no subfolder in {directory!r}; "
                                 "create them or remove them from classes=")
        self.num_classes = len(classes)
        self.class_indices = {name: i for i, name in enumerate(classes)}
        if class_mode == "binary" and self.num_classes != 2:
            raise ValueError(
                f"class_mode='binary' needs exactly 2 classes, found {self.num_classes} "
                f"({classes}); use class_mode='categorical' or 'sparse' for more"
            )
        per_class = [(name, _files.list_class_files(os.path.join(directory, name),
                                                     follow_links)) for name in classes]
        every_path = [path for _, paths in per_class for path in paths]
        if not every_path:
            raise ValueError(
                f"no images found in the class subfolders of {directory!r} ({classes}); "
                f"image files must end in {', '.join(_files.IMAGE_EXTENSIONS)}"
            )
        _, bad = _skip_unreadable(every_path, on_error, repr(directory))
        bad_set = {path for path, _ in bad}
        self.filenames, labels = [], []
        for name, paths in per_class:
            paths = [p for p in paths if p not in bad_set]
            if not paths:
                warnings.warn(f"class {name!r} has no readable images in {directory!r}",
                              UserWarning, stacklevel=3)
            if self.split is not None:
                start, stop = (int(bound * len(paths)) for bound in self.split)
                paths = paths[start:stop]
            for path in paths:
                self.filenames.append(os.path.relpath(path, directory))
                labels.append(self.class_indices[name])
        self.skipped = [path for path, _ in bad]
        if not self.filenames:
            raise ValueError(f"the {subset} subset of {directory!r} is empty; lower or raise "
                             "validation_split so both subsets keep images")
        self.classes = np.asarray(labels, dtype="int32")
        self._filepaths = [os.path.join(directory, name) for name in self.filenames]
        return (f"Found {len(self.filenames)} images belonging to {self.num_classes} classes."
                + (f" Skipped {len(bad)} unreadable file(s)." if bad else ""))


class DataFrameIterator(_FileIterator):
    """Batches from image files listed in a pandas DataFrame: what ``flow_from_dataframe``
    returns.

    ``x_col`` holds the file names (relative to ``directory``, or full paths when
    ``directory`` is None); ``y_col`` the labels.  class_mode: ``"categorical"`` (one-hot;
    a list of labels per row gives a multi-hot row), ``"binary"`` and ``"sparse"`` (class
    index as a float), ``"raw"`` (the column's values; ``y_col`` may list several columns),
    ``"multi_output"`` (one array per column of ``y_col``), ``"input"`` (the images
    themselves) or None (images only).

    Used in: labs/06_data_augmentation
    """

    allowed_class_modes = {"binary", "categorical", "input", "multi_output", "raw", "sparse",
                           None}

    def __init__(self, dataframe, directory=None, image_data_generator=None, x_col="filename",
                 y_col="class", weight_col=None, target_size=(256, 256), color_mode="rgb",
                 classes=None, class_mode="categorical", batch_size=32, shuffle=True,
                 seed=None, data_format=None, save_to_dir=None, save_prefix="",
                 save_format="png", subset=None, interpolation="nearest",
                 keep_aspect_ratio=False, dtype=None, validate_filenames=True,
                 on_error="warn"):
        self._source = (dataframe, directory, x_col, y_col, weight_col, classes,
                        validate_filenames)
        super().__init__(image_data_generator, target_size, color_mode, class_mode,
                         batch_size, shuffle, seed, data_format, save_to_dir, save_prefix,
                         save_format, subset, interpolation, keep_aspect_ratio, dtype,
                         on_error)

    def _list_samples(self):
        dataframe, directory, x_col, y_col, weight_col, classes, validate_filenames = \
            self._source
        class_mode, subset = self.class_mode, self.subset
        if not hasattr(dataframe, "columns") or not hasattr(dataframe, "iloc"):
            raise TypeError(f"dataframe must be a pandas DataFrame, got "
                            f"{type(dataframe).__name__}")
        df = dataframe.copy()
        self.directory = os.fspath(directory) if directory is not None else ""
        if self.directory and not os.path.isdir(self.directory):
            raise FileNotFoundError(f"directory {self.directory!r} does not exist; pass the "
                                    "folder the x_col file names are relative to, or None")
        self._check_columns(df, x_col, y_col, weight_col, classes)
        if validate_filenames:
            df = self._keep_valid_files(df, x_col)
        labelled = class_mode not in ("input", "multi_output", "raw", None)
        if labelled:
            df, classes = self._filter_classes(df, y_col, classes)
            self.class_indices = {name: i for i, name in enumerate(classes)}
            self.num_classes = len(classes)
        if self.split is not None:
            start, stop = (int(bound * len(df)) for bound in self.split)
            df = df.iloc[start:stop]
        if len(df) == 0:
            raise ValueError("no rows left to read: " + (
                f"the {subset} subset is empty" if subset else
                "every file name was invalid or every label was filtered out by classes="))
        if labelled:
            self.classes = self._class_indices_of(df[y_col])
        self.filenames = df[x_col].tolist()
        self._sample_weight = df[weight_col].values if weight_col else None
        if class_mode == "multi_output":
            self._targets = [np.array(df[col].tolist()) for col in y_col]
            self.classes = self._targets
        elif class_mode == "raw":
            self._targets = df[y_col].values
            self.classes = self._targets
        elif not labelled:
            self.classes = None
        self._filepaths = [os.path.join(self.directory, name) for name in self.filenames]
        validated = "validated" if validate_filenames else "non-validated"
        suffix = f" belonging to {self.num_classes} classes." if labelled else "."
        return f"Found {len(self.filenames)} {validated} image filenames{suffix}"

    def _check_columns(self, df, x_col, y_col, weight_col, classes):
        mode = self.class_mode
        needed = [x_col] + ([weight_col] if weight_col else [])
        if mode not in (None, "input"):
            needed += list(y_col) if isinstance(y_col, (list, tuple)) else [y_col]
        missing = [c for c in needed if c not in df.columns]
        if missing:
            raise ValueError(f"dataframe has no column(s) {missing}; its columns are "
                             f"{list(df.columns)} (set x_col=, y_col=, weight_col=)")
        if mode == "multi_output" and not isinstance(y_col, list):
            raise TypeError("class_mode='multi_output' needs y_col as a list of columns, one "
                            f"per output; got {type(y_col).__name__}")
        if not all(isinstance(v, str) for v in df[x_col]):
            raise TypeError(f"every value of x_col={x_col!r} must be a file name string")
        if mode in ("binary", "sparse") and not all(isinstance(v, str) for v in df[y_col]):
            raise TypeError(f"class_mode={mode!r} needs string labels in y_col={y_col!r}; "
                            "convert them with df[y_col].astype(str), or use "
                            "class_mode='raw' for numeric targets")
        if mode == "categorical" and not all(isinstance(v, (str, list, tuple))
                                             for v in df[y_col]):
            raise TypeError(f"class_mode='categorical' needs y_col={y_col!r} values that are "
                            "strings (or lists of strings for multi-label rows); use "
                            "df[y_col].astype(str), or class_mode='raw' for numbers")
        if mode == "binary":
            count = len(set(classes)) if classes else df[y_col].nunique()
            if count != 2:
                raise ValueError(f"class_mode='binary' needs exactly 2 classes, found {count}; "
                                 "use class_mode='categorical' or 'sparse' for more")
        if classes and mode in ("input", "multi_output", "raw", None):
            warnings.warn(f"classes= is ignored with class_mode={mode!r}", UserWarning,
                          stacklevel=4)
        if weight_col and not np.issubdtype(df[weight_col].dtype, np.number):
            raise TypeError(f"weight_col={weight_col!r} must hold numbers")

    def _keep_valid_files(self, df, x_col):
        paths = [os.path.join(self.directory, name) for name in df[x_col]]
        usable = np.array([_files.has_image_extension(p) and os.path.isfile(p)
                           for p in paths], dtype=bool)
        missing = [p for p, ok in zip(paths, usable) if not ok]
        if missing:
            listing = "\n".join(f"  {p}" for p in missing)
            if self.on_error == "raise":
                raise ValueError(f"{len(missing)} file name(s) in x_col={x_col!r} are missing "
                                 f"or not image files:\n{listing}")
            warnings.warn(f"skipped {len(missing)} file name(s) in x_col={x_col!r} that are "
                          f"missing or not image files:\n{listing}", UserWarning, stacklevel=4)
        readable = [p for p, ok in zip(paths, usable) if ok]
        _, bad = _skip_unreadable(readable, self.on_error, f"x_col={x_col!r}")
        bad_set = {path for path, _ in bad}
        keep = usable & np.array([p not in bad_set for p in paths], dtype=bool)
        self.skipped = missing + [path for path, _ in bad]
        return df[keep]

    @staticmethod
    def _filter_classes(df, y_col, classes):
        df = df.copy()
        if classes:
            classes = list(dict.fromkeys(classes))
            wanted = set(classes)

            def keep(labels):
                if isinstance(labels, (list, tuple)):
                    return [c for c in labels if c in wanted] or None
                return labels if labels in wanted else None

            df[y_col] = df[y_col].apply(keep)
        else:
            found = set()
            for labels in df[y_col]:
                found.update(labels if isinstance(labels, (list, tuple)) else [labels])
            classes = sorted(found)
        return df.dropna(subset=[y_col]), classes

    def _class_indices_of(self, column):
        labels = []
        for value in column:
            if isinstance(value, (list, tuple)):
                labels.append([self.class_indices[v] for v in value])
            else:
                labels.append(self.class_indices[value])
        if all(isinstance(v, int) for v in labels):
            return np.asarray(labels, dtype="int32")
        return labels

    @property
    def labels(self):
        return self.classes
