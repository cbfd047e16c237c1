"""The iterators' shared core: Keras 2's public ``Iterator`` base class (batches, passes,
seeds, prefetching) and ``_GeneratorIterator``, which loads a batch and augments it through the
generator's public draw/apply protocol.

Lecture idea: data augmentation draws a new random transform of every image at every pass,
reproducibly from a seed (Labs 06 and 07).  How batches, seeds and the protocol work is told
in :mod:`cnnlab.augment._iterators`, which re-exports every iterator.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from keras.utils import PyDataset

from cnnlab.augment import _files

__all__ = ["BatchIndexError", "Iterator"]


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

