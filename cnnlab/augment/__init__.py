"""Data augmentation the way the lectures teach it: Keras 2's ``ImageDataGenerator`` on Keras 3.

The DSI deck's *Data Augmentation* slides (the augmented cat, then the Keras snippet with
``rescale=1/255, rotation_range=40, width_shift_range=0.2, ..., fill_mode="nearest"``,
``flow_from_directory`` and ``fit_generator``) run with one import changed::

    from cnnlab.augment import ImageDataGenerator   # was keras.preprocessing.image

    image_gen = ImageDataGenerator(rescale=1 / 255, rotation_range=40, width_shift_range=0.2,
                                   height_shift_range=0.2, shear_range=0.2, zoom_range=0.2,
                                   horizontal_flip=True, channel_shift_range=9,
                                   fill_mode="nearest")
    train_flow = image_gen.flow_from_directory(train_folder)
    model.fit(train_flow, epochs=10)                 # fit_generator is gone from Keras 3

Keras 3 removed the generator; the copy it keeps (``keras.src.legacy.preprocessing.image``,
reachable as ``tensorflow.keras.preprocessing.image.ImageDataGenerator``) resamples one image
and one channel at a time with SciPy.  Here the arguments, methods, iterators and, for the same
parameters, the pixels are Keras 2's, and an epoch is several times faster:

* each image's rotation, shifts, shear, zoom and flips compose into **one** affine matrix
  (:func:`transform_matrix`), and a whole batch is resampled in **one** compiled call
  (a vectorised bilinear gather written with ``keras.ops``; XLA under TensorFlow, ``jax.jit``
  under JAX), see ``cnnlab.augment._resampling``;
* image files are decoded by a thread pool; the next batch is prepared in a background thread
  while the model trains on this one;
* the iterators are ``keras.utils.PyDataset`` s: ``model.fit``/``evaluate``/``predict`` take
  them on every backend, and ``next(it)`` works as in Keras 2.

Everything else Keras 2's ``keras.preprocessing.image`` exports is here too, with Keras 2's
signatures: the module-level functions (``random_rotation``, ``random_shift``,
``random_shear``, ``random_zoom``, ``apply_affine_transform``, ``apply_channel_shift``,
``random_channel_shift``, ``apply_brightness_shift``, ``random_brightness``, ``flip_axis``,
``transform_matrix_offset_center``; one image, axes named by ``row_axis``/``col_axis``/
``channel_axis``, the random ones drawing from NumPy's global generator as Keras 2's did),
``array_to_img``, ``img_to_array``, ``load_img``, ``save_img`` and ``smart_resize`` (Keras 3's
own, in ``keras.utils``), and the ``Iterator`` base class: a Keras 2 subclass
(``_get_batches_of_transformed_samples(index_array)``) runs unchanged.  Any channel count
works (2, 5, 10: multispectral images, stacked frames, feature maps); where Keras 2 warned
about one, this warns with Keras 2's words.  Errors that code matches start with Keras 2's
words, then say what to do; a batch index past the end raises :class:`BatchIndexError`, both
``ValueError`` (Keras 2) and ``IndexError``.

The generator's draw/apply protocol is public, and it is all the iterators use of it:
``get_random_transform(img_shape, seed)`` (``seed`` may be a ``np.random.RandomState``),
``apply_transform(x, params)`` and ``standardize(x)`` for one image as in Keras 2, and for a
batch ``apply_transform_batch(x, params_list)``, ``standardize_batch(x)`` and
``augment_batch(x, params_list)`` (both, with ``rescale`` folded into the one compiled
resampling).  Any object with ``get_random_transform``, ``augment_batch``, ``data_format``,
``dtype`` and ``validation_split`` can drive the iterators.

``ImageDataGenerator.as_layers()`` gives the nearest pipeline of Keras 3 preprocessing layers
(to augment inside the model) and ``ImageDataGenerator.preview(image)`` draws the lecture's
grid of augmented cats.  ``benchmarks/augment.py`` measures the speed against the legacy
generator and against that layer pipeline.

Same pixels, and where they differ
----------------------------------
With the same transform parameters, :meth:`ImageDataGenerator.apply_transform` gives the
legacy generator's pixels to within about one intensity level (float32 arithmetic), except:

* **a band about one pixel wide where a sample point leaves the image**: with
  ``fill_mode="constant"`` SciPy puts ``cval`` at every point outside ``[0, n - 1]``, here the
  bilinear weights blend ``cval`` in for the neighbours outside (as TensorFlow does), so the
  edge is anti-aliased instead of stair-stepped; at ``reflect`` seams and ``wrap`` seams the
  two interpolate across the seam differently within a pixel of it;
* the **fixes** below, which the module-level functions share (``apply_affine_transform``
  and the ``random_*`` geometric functions: centre and wrap; ``random_shift(x, wrg, hrg)``
  moves columns by ``wrg`` and rows by ``hrg``, where Keras 2 crossed them).

Where the legacy generator is wrong, this one is right
------------------------------------------------------
===========================================  ================================================
legacy (Keras 2 and Keras 3's legacy copy)   here
===========================================  ================================================
rotates, shears and zooms a non-square       about the true centre ``((h - 1) / 2,
image about the wrong centre (it swaps the   (w - 1) / 2)``
row and column of the centre)
``fill_mode="wrap"`` repeats with period     period ``n``, as documented and as TensorFlow
``n - 1`` (SciPy's ``"wrap"``; last and      does: ``np.take(x, i, mode="wrap")``
first column overlap)
``height_shift_range`` shifts across the     ``height_shift_range`` moves rows,
width and ``width_shift_range`` down the     ``width_shift_range`` moves columns
height (keras-team/keras#17398)              (``get_random_transform`` puts the height shift
                                             in ``ty``, the width shift in ``tx``)
a corrupt file fails mid-epoch with          every file is opened when the iterator is
"cannot identify image file <_io.BytesIO     built; unreadable ones are skipped with a
...>" and no name (keras-team/keras#8686)    warning naming each (``on_error="raise"`` stops)
an invalid ``fill_mode`` (or                 every argument is checked in the constructor
interpolation) fails at the first batch
an empty directory gives "Found 0 images"    ``ValueError`` naming the folder and the layout
and an empty iterator (keras#3946)           it expects
``flow(seed=...)`` reseeds NumPy's global    seeded local ``RandomState`` s; the global
generator (keras-preprocessing#342)          generator is never touched
``class_mode="binary"`` with 3 classes       ``ValueError``: binary needs exactly 2
yields labels 0, 1, 2
===========================================  ================================================

Other differences: ``interpolation_order`` is 1 (bilinear) or 0 (nearest); SciPy's spline orders
2-5 are not implemented (an error says so). A seeded ``Iterator`` shuffles from its own streams
and does not reseed NumPy's global generator (a Keras 2 subclass that draws from ``np.random``
itself is therefore not reproduced by the iterator's ``seed``). ``flow`` keeps ``x`` in its own
dtype in memory (Keras 2 copied it to float32). ``standardize`` on a batch takes samplewise
statistics per image. ``apply_transform`` returns the input's dtype also after a channel shift
(integer images are rounded and clipped). ``for batch in it`` is one epoch (Keras 3's
``PyDataset``), while ``next(it)`` cycles forever (Keras 2). With a ``seed``, the first epoch
has Keras 2's sample order and parameters; later epochs reshuffle from the seed and the batch
number, so the same seed gives the same epochs however the batches are fetched. Brightness goes
through whole 8-bit levels as in Keras 2 (it used a Pillow image), which is kept for identical
pixels.

Used in: labs/06_data_augmentation, labs/07_training_convnets_well
"""

from keras.preprocessing.image import smart_resize
from keras.utils import array_to_img, img_to_array, load_img, save_img

from cnnlab.augment._generator import ImageDataGenerator
from cnnlab.augment._iterators import (
    BatchIndexError,
    DataFrameIterator,
    DirectoryIterator,
    Iterator,
    NumpyArrayIterator,
)
from cnnlab.augment._resampling import transform_matrix
from cnnlab.augment._transforms import (
    apply_affine_transform,
    apply_brightness_shift,
    apply_channel_shift,
    flip_axis,
    random_brightness,
    random_channel_shift,
    random_rotation,
    random_shear,
    random_shift,
    random_zoom,
    transform_matrix_offset_center,
)

__all__ = [
    "BatchIndexError",
    "DataFrameIterator",
    "DirectoryIterator",
    "ImageDataGenerator",
    "Iterator",
    "NumpyArrayIterator",
    "apply_affine_transform",
    "apply_brightness_shift",
    "apply_channel_shift",
    "array_to_img",
    "flip_axis",
    "img_to_array",
    "load_img",
    "random_brightness",
    "random_channel_shift",
    "random_rotation",
    "random_shear",
    "random_shift",
    "random_zoom",
    "save_img",
    "smart_resize",
    "transform_matrix",
    "transform_matrix_offset_center",
]
