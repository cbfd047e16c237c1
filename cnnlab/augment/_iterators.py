"""The iterators: Keras 2's public ``Iterator`` base class and the three that the generator's
``flow``, ``flow_from_directory`` and ``flow_from_dataframe`` return (lecture idea: data
augmentation draws a new transform of every image at every pass; Labs 06 and 07 train on
these iterators).

One module per job, all re-exported here:

========================  ===============================================================
``_iterator_base``        ``Iterator`` (batches, passes, seeds, prefetching) and the
                          generator protocol every cnnlab iterator shares
``_array_iterator``       ``NumpyArrayIterator``: arrays in memory (``flow``)
``_file_iterators``       ``DirectoryIterator`` and ``DataFrameIterator``: image files
========================  ===============================================================

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

from cnnlab.augment._array_iterator import NumpyArrayIterator
from cnnlab.augment._file_iterators import DataFrameIterator, DirectoryIterator
from cnnlab.augment._iterator_base import BatchIndexError, Iterator

__all__ = ["BatchIndexError", "DataFrameIterator", "DirectoryIterator", "Iterator",
           "NumpyArrayIterator"]
