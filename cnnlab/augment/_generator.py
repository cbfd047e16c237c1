"""``ImageDataGenerator``: Keras 2's augmentation generator, rebuilt for Keras 3."""

from __future__ import annotations

import math
import textwrap
import warnings

import numpy as np

from cnnlab.augment import _arrays, _iterators, _resampling, _transforms
from cnnlab.augment import _generator_arguments as _arguments

__all__ = ["ImageDataGenerator"]


class ImageDataGenerator:
    """Keras 2's ``ImageDataGenerator``, same arguments and defaults, fast and fixed.

    Arguments (all as in Keras 2):

    * ``featurewise_center``, ``featurewise_std_normalization``, ``zca_whitening`` (with
      ``zca_epsilon``): statistics of the training set, computed by :meth:`fit`;
    * ``samplewise_center``, ``samplewise_std_normalization``: per image;
    * ``rotation_range`` (degrees), ``width_shift_range``/``height_shift_range`` (a float is a
      fraction of the image if < 1, else pixels; an int ``n`` draws whole pixels from
      ``(-n, n)``; a list draws from its values with a random sign), ``shear_range``
      (**degrees**, as later Keras 2 reads it: the lecture's 0.2 is a fifth of a degree here;
      Keras 1 and early Keras 2 documented radians, where it meant about 11.5 degrees),
      ``zoom_range`` (float ``z`` for
      ``[1 - z, 1 + z]`` or a pair; above 1 zooms out; width and height are drawn
      independently), ``horizontal_flip``, ``vertical_flip``;
    * ``channel_shift_range`` (adds one random offset to every channel, clipped to the image's
      own range), ``brightness_range`` (a pair of factors);
    * ``fill_mode`` (``"constant"``, ``"nearest"``, ``"reflect"``, ``"wrap"``) and ``cval``;
    * ``rescale`` (applied after the augmentation), ``preprocessing_function`` (one image in,
      one image out, after the augmentation), ``data_format``, ``validation_split``,
      ``interpolation_order`` (1 bilinear, 0 nearest), ``dtype``.

    Arguments are checked here, not at the first batch.  See the ``cnnlab.augment`` module
    docstring for what differs from Keras 2 and why.

    Used in: labs/06_data_augmentation, labs/07_training_convnets_well
    """

    def __init__(self, featurewise_center=False, samplewise_center=False,
                 featurewise_std_normalization=False, samplewise_std_normalization=False,
                 zca_whitening=False, zca_epsilon=1e-6, rotation_range=0,
                 width_shift_range=0.0, height_shift_range=0.0, brightness_range=None,
                 shear_range=0.0, zoom_range=0.0, channel_shift_range=0.0, fill_mode="nearest",
                 cval=0.0, horizontal_flip=False, vertical_flip=False, rescale=None,
                 preprocessing_function=None, data_format=None, validation_split=0.0,
                 interpolation_order=1, dtype=None):
        data_format, np_dtype = _arguments.checked_format_and_dtype(data_format, dtype)
        _arguments.check_arguments(
            fill_mode=fill_mode, interpolation_order=interpolation_order,
            validation_split=validation_split, rotation_range=rotation_range,
            shear_range=shear_range, channel_shift_range=channel_shift_range, cval=cval,
            zca_epsilon=zca_epsilon, rescale=rescale,
            preprocessing_function=preprocessing_function, horizontal_flip=horizontal_flip,
            vertical_flip=vertical_flip)

        self.samplewise_std_normalization = bool(samplewise_std_normalization)
        self.zca_whitening = bool(zca_whitening)
        self.zca_epsilon = zca_epsilon
        self.rotation_range = rotation_range
        self.width_shift_range = _arguments.shift_range("width_shift_range", width_shift_range)
        self.height_shift_range = _arguments.shift_range("height_shift_range",
                                                         height_shift_range)
        self.shear_range = shear_range
        self.channel_shift_range = channel_shift_range
        self.fill_mode = fill_mode
        self.cval = cval
        self.horizontal_flip = bool(horizontal_flip)
        self.vertical_flip = bool(vertical_flip)
        self.rescale = rescale
        self.preprocessing_function = preprocessing_function
        self.data_format = data_format
        self.dtype = np_dtype.name
        self.interpolation_order = int(interpolation_order)
        self.validation_split = validation_split
        if data_format == "channels_last":
            self.channel_axis, self.row_axis, self.col_axis = 3, 1, 2
        else:
            self.channel_axis, self.row_axis, self.col_axis = 1, 2, 3
        self.zoom_range = _arguments.zoom_pair(zoom_range)
        self.brightness_range = _arguments.brightness_pair(brightness_range)
        # zca_whitening and the std normalizations need (and turn on) their centering
        (self.featurewise_center, self.featurewise_std_normalization,
         self.samplewise_center) = _arguments.statistics_flags(
            bool(featurewise_center), bool(featurewise_std_normalization),
            bool(samplewise_center), self.samplewise_std_normalization, self.zca_whitening)

        self.mean = None
        self.std = None
        self.zca_whitening_matrix = None
        self._rng = np.random.RandomState(np.random.SeedSequence().generate_state(1)[0])

    @property
    def _validation_split(self):
        """Keras 2's name of ``validation_split`` (Keras 2 code reads it)."""
        return self.validation_split

    def __repr__(self):
        defaults = ImageDataGenerator.__init__.__defaults__
        names = ImageDataGenerator.__init__.__code__.co_varnames[1:len(defaults) + 1]
        given = {
            "zoom_range": self.zoom_range if self.zoom_range != [1, 1] else 0.0,
            "validation_split": self.validation_split,
        }
        parts = []
        for name, default in zip(names, defaults):
            value = given.get(name, getattr(self, name, default))
            if name in ("data_format", "dtype") or value == default:
                continue
            if name == "zoom_range" and value == 0.0:
                continue
            parts.append(f"{name}={value!r}")
        return f"ImageDataGenerator({', '.join(parts)})"

    # ------------------------------------------------------------------------------------
    # Iterators
    # ------------------------------------------------------------------------------------

    def flow(self, x, y=None, batch_size=32, shuffle=True, sample_weight=None, seed=None,
             save_to_dir=None, save_prefix="", save_format="png", ignore_class_split=False,
             subset=None):
        """Augmented batches from arrays: a ``NumpyArrayIterator`` (a ``PyDataset``).

        ``x``: images ``(N, height, width, channels)`` (uint8 or float; ``[x, extra]`` adds
        extra inputs), ``y``: labels, ``subset="training"``/``"validation"`` with the
        generator's ``validation_split`` (validation is the *first* part of the rows, as in
        Keras 2).  ``seed`` makes the batches reproducible without touching NumPy's global
        generator.  ``model.fit(gen.flow(x, y))`` trains on it; ``next(it)`` gives a batch.

        Used in: labs/06_data_augmentation, labs/07_training_convnets_well
        """
        return _iterators.NumpyArrayIterator(
            x, y, self, batch_size=batch_size, shuffle=shuffle, sample_weight=sample_weight,
            seed=seed, save_to_dir=save_to_dir, save_prefix=save_prefix,
            save_format=save_format, subset=subset, ignore_class_split=ignore_class_split)

    def flow_from_directory(self, directory, target_size=(256, 256), color_mode="rgb",
                            classes=None, class_mode="categorical", batch_size=32,
                            shuffle=True, seed=None, save_to_dir=None, save_prefix="",
                            save_format="png", follow_links=False, subset=None,
                            interpolation="nearest", keep_aspect_ratio=False, on_error="warn"):
        """Augmented batches from ``directory/<class>/<image>``: a ``DirectoryIterator``.

        As Keras 2 (classes alphabetical, ``class_mode`` ``"categorical"``/``"binary"``/
        ``"sparse"``/``"input"``/None, ``color_mode`` ``"rgb"``/``"rgba"``/``"grayscale"``,
        images resized to ``target_size`` with Pillow's ``interpolation``), plus
        ``on_error``: ``"warn"`` skips unreadable files naming each one, ``"raise"`` stops.

        Used in: labs/06_data_augmentation
        """
        return _iterators.DirectoryIterator(
            directory, self, target_size=target_size, color_mode=color_mode, classes=classes,
            class_mode=class_mode, batch_size=batch_size, shuffle=shuffle, seed=seed,
            save_to_dir=save_to_dir, save_prefix=save_prefix, save_format=save_format,
            follow_links=follow_links, subset=subset, interpolation=interpolation,
            keep_aspect_ratio=keep_aspect_ratio, on_error=on_error)

    def flow_from_dataframe(self, dataframe, directory=None, x_col="filename", y_col="class",
                            weight_col=None, target_size=(256, 256), color_mode="rgb",
                            classes=None, class_mode="categorical", batch_size=32,
                            shuffle=True, seed=None, save_to_dir=None, save_prefix="",
                            save_format="png", subset=None, interpolation="nearest",
                            validate_filenames=True, keep_aspect_ratio=False, on_error="warn",
                            **kwargs):
        """Augmented batches from files listed in a DataFrame: a ``DataFrameIterator``.

        As Keras 2: ``x_col`` file names (relative to ``directory``), ``y_col`` labels,
        ``class_mode`` one of ``"categorical"``, ``"binary"``, ``"sparse"``, ``"raw"``,
        ``"multi_output"``, ``"input"``, None (``"other"`` is the old name of ``"raw"``),
        ``validate_filenames`` drops missing files (with a warning that names them).

        Used in: labs/06_data_augmentation
        """
        for old in ("has_ext", "sort", "drop_duplicates"):
            if old in kwargs:
                warnings.warn(f"{old}= was removed from flow_from_dataframe in Keras 2.2 and "
                              "is ignored", DeprecationWarning, stacklevel=2)
                kwargs.pop(old)
        if kwargs:
            raise TypeError(f"flow_from_dataframe() got unexpected arguments {sorted(kwargs)}")
        if class_mode == "other":
            warnings.warn("class_mode='other' is the old name of class_mode='raw'",
                          DeprecationWarning, stacklevel=2)
            class_mode = "raw"
        return _iterators.DataFrameIterator(
            dataframe, directory, self, x_col=x_col, y_col=y_col, weight_col=weight_col,
            target_size=target_size, color_mode=color_mode, classes=classes,
            class_mode=class_mode, batch_size=batch_size, shuffle=shuffle, seed=seed,
            save_to_dir=save_to_dir, save_prefix=save_prefix, save_format=save_format,
            subset=subset, interpolation=interpolation, keep_aspect_ratio=keep_aspect_ratio,
            validate_filenames=validate_filenames, on_error=on_error)

    # ------------------------------------------------------------------------------------
    # Random parameters and transforms
    # ------------------------------------------------------------------------------------

    def _size_of(self, img_shape):
        shape = tuple(int(v) for v in img_shape)
        if len(shape) == 2:
            return shape
        if len(shape) != 3:
            raise ValueError(f"img_shape={img_shape!r} must be one image's shape, e.g. "
                             "(height, width, channels)")
        return shape[self.row_axis - 1], shape[self.col_axis - 1]

    def _draw_transform(self, rs, img_shape):
        """Keras 2's draws, in Keras 2's order, from the RandomState ``rs``."""
        height, width = self._size_of(img_shape)
        theta = rs.uniform(-self.rotation_range, self.rotation_range) \
            if self.rotation_range else 0.0
        # Keras 2 drew the height shift first and then applied it across the width (and the
        # width shift down the height): same draws here, each applied along its own axis.
        ty = _arguments.draw_shift(rs, self.height_shift_range, height)
        tx = _arguments.draw_shift(rs, self.width_shift_range, width)
        shear = rs.uniform(-self.shear_range, self.shear_range) if self.shear_range else 0.0
        if self.zoom_range[0] == 1 and self.zoom_range[1] == 1:
            zx, zy = 1.0, 1.0
        else:
            zx, zy = rs.uniform(self.zoom_range[0], self.zoom_range[1], 2)
        flip_horizontal = bool(rs.random_sample() < 0.5) and self.horizontal_flip
        flip_vertical = bool(rs.random_sample() < 0.5) and self.vertical_flip
        channel_shift = None
        if self.channel_shift_range != 0:
            channel_shift = float(rs.uniform(-self.channel_shift_range,
                                             self.channel_shift_range))
        brightness = None
        if self.brightness_range is not None:
            brightness = float(rs.uniform(*self.brightness_range))
        return {
            "theta": float(theta), "tx": tx, "ty": ty, "shear": float(shear),
            "zx": float(zx), "zy": float(zy), "flip_horizontal": flip_horizontal,
            "flip_vertical": flip_vertical, "channel_shift_intensity": channel_shift,
            "brightness": brightness,
        }

    def get_random_transform(self, img_shape, seed=None):
        """Random transform parameters for one image of shape ``img_shape``, as a dict.

        ``seed``: None (the generator's own stream), an int (Keras 2), or a
        ``np.random.RandomState`` to draw from (the iterators pass each batch's stream).

        Keys as in Keras 2: ``theta`` (degrees), ``tx`` (horizontal shift, pixels), ``ty``
        (vertical shift, pixels), ``shear`` (degrees), ``zx``, ``zy``, ``flip_horizontal``,
        ``flip_vertical``, ``channel_shift_intensity``, ``brightness``.  With the same
        ``seed`` the values are Keras 2's, except that Keras 2 put the height shift in ``tx``
        (a horizontal shift) and the width shift in ``ty``; here ``ty`` comes from
        ``height_shift_range`` and ``tx`` from ``width_shift_range``.

        Used in: labs/06_data_augmentation
        """
        if isinstance(seed, np.random.RandomState):
            rs = seed
        else:
            rs = self._rng if seed is None else np.random.RandomState(int(seed) % 2 ** 32)
        return self._draw_transform(rs, img_shape)

    def apply_transform(self, x, transform_parameters):
        """Apply ``transform_parameters`` (a dict as from get_random_transform) to one image.

        Order as in Keras 2: one affine resampling (rotation, shifts, shear, zoom, flips),
        then the channel shift, then the brightness factor.  Returns the input's dtype
        (integer images are rounded and clipped, as scipy did for Keras 2).

        Used in: labs/06_data_augmentation
        """
        image = self._check_one_image(x)
        if not isinstance(transform_parameters, dict):
            raise TypeError("transform_parameters must be a dict such as "
                            "get_random_transform() returns")
        out = self.apply_transform_batch(image[None].astype(np.float32),
                                         [transform_parameters])[0]
        return _transforms.to_input_dtype(out, image.dtype)

    def random_transform(self, x, seed=None):
        """One randomly augmented copy of the image ``x`` (rank 3).

        Used in: labs/06_data_augmentation
        """
        image = self._check_one_image(x)
        return self.apply_transform(image, self.get_random_transform(image.shape, seed))

    def _check_one_image(self, x):
        image = np.asarray(x)
        if image.ndim != 3:
            hint = " For a grayscale image add a channel axis: x[..., None]." \
                if image.ndim == 2 else ""
            raise ValueError(f"x must be one image of rank 3 ({self.data_format}), got shape "
                             f"{image.shape}.{hint} For a batch use flow().")
        if not np.issubdtype(image.dtype, np.number):
            raise TypeError(f"x must hold numbers, got dtype {image.dtype}")
        return image

    # -- the batched protocol: what the iterators call, once per batch

    def apply_transform_batch(self, x, transform_parameters, pad_to=None):
        """:meth:`apply_transform` for a whole batch ``x`` (N images in ``data_format``) with
        one dict per image, in one compiled resampling; returns the generator's ``dtype``.

        ``pad_to`` pads a short last batch internally so the compiled kernel is reused.

        Used in: labs/06_data_augmentation
        """
        return self._transform_batch(x, transform_parameters, pad_to)[0]

    def standardize_batch(self, x):
        """:meth:`standardize` for a batch, as the iterators apply it: the
        ``preprocessing_function`` gets one image at a time (Keras 2's iterators called
        ``standardize`` per image) and samplewise statistics are per image.

        Used in: labs/06_data_augmentation
        """
        batch = np.asarray(x)
        if batch.ndim != 4:
            raise ValueError(f"x must be a batch of images (rank 4), got shape {batch.shape}")
        if not np.issubdtype(batch.dtype, np.floating) or not batch.flags.writeable:
            batch = batch.astype(self.dtype)
        return self._standardize_batch(batch)

    def augment_batch(self, x, transform_parameters, pad_to=None):
        """``standardize_batch(apply_transform_batch(x, transform_parameters))`` in one go:
        Keras 2's per-image ``apply_transform`` then ``standardize``, for a batch, with
        ``rescale`` folded into the compiled resampling when nothing comes between the two.
        This is the call the iterators make for every batch.

        Used in: labs/06_data_augmentation
        """
        out, rescaled = self._transform_batch(x, transform_parameters, pad_to, rescale=True)
        return self._standardize_batch(out, rescaled=rescaled)

    def _transform_batch(self, x, params, pad_to=None, rescale=False):
        """Augment a batch (in data_format): one resampling, then shift and brightness.

        ``rescale=True`` also applies the generator's ``rescale`` inside the compiled call
        when nothing (brightness, preprocessing_function) comes between the two.  Returns
        ``(batch, whether it rescaled)``.
        """
        if not isinstance(params, (list, tuple)) or not all(isinstance(p, dict)
                                                            for p in params):
            raise TypeError("transform_parameters must be a list of dicts such as "
                            "get_random_transform() returns, one per image")
        x = np.asarray(x)
        if x.ndim != 4 or len(params) != len(x):
            raise ValueError(f"x must be a batch of images (rank 4) with one dict of "
                             f"transform_parameters per image; got shape {x.shape} and "
                             f"{len(params)} dicts")
        channels_first = self.data_format == "channels_first"
        batch = np.ascontiguousarray(np.asarray(x).transpose(0, 2, 3, 1)) if channels_first \
            else x
        height, width = batch.shape[1:3]
        matrices = _resampling.batch_matrices(params, height, width)
        shifts = np.array([np.nan if p.get("channel_shift_intensity") is None
                           else float(p["channel_shift_intensity"]) for p in params])
        factors = np.array([np.nan if p.get("brightness") is None else float(p["brightness"])
                            for p in params])
        has_brightness = bool(np.isfinite(factors).any())
        fused = rescale and bool(self.rescale) and not has_brightness \
            and self.preprocessing_function is None
        out = _resampling.resample_batch(
            batch, matrices, fill_mode=self.fill_mode, cval=self.cval,
            order=self.interpolation_order, pad_to=pad_to, channel_shifts=shifts,
            scale=self.rescale if fused else 1.0)
        if has_brightness:
            out = _transforms.brightness_batch(out, factors)
        out = out.astype(self.dtype, copy=False)
        if channels_first:
            out = np.ascontiguousarray(out.transpose(0, 3, 1, 2))
        return out, fused

    # ------------------------------------------------------------------------------------
    # Normalisation
    # ------------------------------------------------------------------------------------

    def standardize(self, x):
        """Apply preprocessing_function, rescale and the centring/normalisation to ``x``.

        ``x`` is one image or a batch; a float array is changed in place and returned, as in
        Keras 2 (pass ``np.copy(x)`` to keep yours).  Samplewise statistics are taken per
        image, also for a batch (Keras 2 took them over the whole array it was given).

        Used in: labs/06_data_augmentation
        """
        array = np.asarray(x)
        if array.ndim not in (3, 4):
            raise ValueError(f"x must be one image (rank 3) or a batch (rank 4), got shape "
                             f"{array.shape}")
        if not (isinstance(x, np.ndarray) and np.issubdtype(array.dtype, np.floating)
                and array.flags.writeable):
            array = array.astype(self.dtype)
        if self.preprocessing_function:
            array = np.asarray(self.preprocessing_function(array))
        batch = array if array.ndim == 4 else array[None]
        out = self._normalize(batch)
        return out if array.ndim == 4 else out[0]

    def _standardize_batch(self, x, rescaled=False):
        if self.preprocessing_function:
            x = np.stack([np.asarray(self.preprocessing_function(image)) for image in x])
            x = x.astype(self.dtype, copy=False)
        return self._normalize(x, rescaled=rescaled)

    def _normalize(self, x, rescaled=False):
        if not np.issubdtype(x.dtype, np.floating):
            x = x.astype(self.dtype)
        if self.rescale and not rescaled:
            x *= self.rescale
        image_axes = tuple(range(1, x.ndim))
        if self.samplewise_center:
            x -= np.mean(x, axis=image_axes, keepdims=True)
        if self.samplewise_std_normalization:
            x /= np.std(x, axis=image_axes, keepdims=True) + 1e-6
        if self.featurewise_center:
            if self.mean is None:
                warnings.warn("featurewise_center=True but the generator was not fitted: call "
                              "gen.fit(x_train) first", UserWarning, stacklevel=3)
            else:
                x -= self.mean
        if self.featurewise_std_normalization:
            if self.std is None:
                warnings.warn("featurewise_std_normalization=True but the generator was not "
                              "fitted: call gen.fit(x_train) first", UserWarning, stacklevel=3)
            else:
                x /= self.std + 1e-6
        if self.zca_whitening:
            if self.zca_whitening_matrix is None:
                warnings.warn("zca_whitening=True but the generator was not fitted: call "
                              "gen.fit(x_train) first", UserWarning, stacklevel=3)
            else:
                flat = x.reshape(len(x), -1)
                x = (flat @ self.zca_whitening_matrix).reshape(x.shape).astype(x.dtype)
        return x

    def fit(self, x, augment=False, rounds=1, seed=None):
        """Compute the featurewise mean/std and the ZCA matrix from training images ``x``.

        Needed only for ``featurewise_center``, ``featurewise_std_normalization`` or
        ``zca_whitening``.  ``rescale`` is applied first; ``augment=True`` fits on ``rounds``
        augmented copies of ``x``.

        Used in: labs/06_data_augmentation
        """
        x = _arrays.check_images(x, self.data_format, caller="fit").astype(self.dtype)
        if not isinstance(rounds, (int, np.integer)) or rounds < 1:
            raise ValueError(f"rounds={rounds!r} must be a positive int")
        rs = self._rng if seed is None else np.random.RandomState(int(seed) % 2 ** 32)
        if self.rescale:
            x *= self.rescale
        if augment:
            copies = []
            for _ in range(rounds):
                params = [self._draw_transform(rs, image.shape) for image in x]
                for start in range(0, len(x), 32):
                    copies.append(self.apply_transform_batch(
                        x[start:start + 32], params[start:start + 32], pad_to=32))
            x = np.concatenate(copies)
        axes = (0, self.row_axis, self.col_axis)
        shape = [1, 1, 1]
        shape[self.channel_axis - 1] = x.shape[self.channel_axis]
        if self.featurewise_center:
            self.mean = np.mean(x, axis=axes).reshape(shape).astype(self.dtype)
            x = x - self.mean
        if self.featurewise_std_normalization:
            self.std = np.std(x, axis=axes).reshape(shape).astype(self.dtype)
            x = x / (self.std + 1e-6)
        if self.zca_whitening:
            flat = x.reshape(len(x), -1).astype(np.float64)
            u, s, _ = np.linalg.svd(flat.T, full_matrices=False)
            s_inv = np.sqrt(len(x)) / (s + self.zca_epsilon)
            self.zca_whitening_matrix = ((u * s_inv) @ u.T).astype(self.dtype)
        return self

    # ------------------------------------------------------------------------------------
    # Keras 3 layers and a picture
    # ------------------------------------------------------------------------------------

    def as_layers(self, image_size=None, seed=None):
        """The nearest ``keras.Sequential`` of Keras 3 preprocessing layers.

        For augmenting inside the model: the layers act only when called with
        ``training=True`` (``fit``), and pass images through in ``predict``.  Each layer
        resamples on its own, in Keras 2's order, with this generator's ``fill_mode``,
        ``cval`` and interpolation.  ``image_size`` (height, width) is needed only when a
        shift is given in pixels; ``seed`` seeds the layers (``seed``, ``seed + 1``, ...).
        Arguments with no layer are left out with a warning that names them.

        ===========================  ==============================  =========================
        Keras 2 argument             Keras 3 layer                   how close
        ===========================  ==============================  =========================
        ``rotation_range=r``         ``RandomRotation(r / 360)``     exact: uniform in
                                                                     ``[-r, r]`` degrees,
                                                                     about the centre
        ``height/width_shift_range`` ``RandomTranslation(h, w)``     exact for fractions
        (fraction)                                                   (uniform); pixels and
                                                                     lists become the largest
                                                                     shift / ``image_size``,
                                                                     drawn uniformly
        ``shear_range=s`` (degrees)  ``RandomShear(x_factor=(0,      approximate: a shear
                                     sin s))``                       factor, not an angle;
                                                                     about the top-left
                                                                     corner (the image also
                                                                     slides sideways); no
                                                                     ``cos s`` squeeze
        ``zoom_range=(lo, hi)``      ``RandomZoom((lo-1, hi-1),      exact: independent
                                     (lo-1, hi-1))``                 uniform zooms, > 1 zooms
                                                                     out
        ``horizontal_flip``,         ``RandomFlip``                  exact
        ``vertical_flip``
        ``channel_shift_range=c``    ``RandomBrightness(c / 255,     close: one offset for all
                                     value_range=(0, 255))``         channels as in Keras 2,
                                                                     but clipped to 0..255,
                                                                     not the image's range
        ``brightness_range=(a, b)``  ``RandomBrightness((a-1,        approximate: adds up to
                                     b-1), value_range=(0, 255))``   ``(b-1)*255``; Keras 2
                                                                     multiplied by ``b``
        ``rescale``                  ``Rescaling``                   exact (applied last, as
                                                                     in Keras 2)
        featurewise center/std       ``Normalization(mean,           exact (after ``fit``)
                                     variance)``
        ``fill_mode``, ``cval``      each layer's ``fill_mode``,     same four modes; but
                                     ``fill_value``                  every layer fills on its
                                                                     own, so the corners a
                                                                     rotation filled are
                                                                     shifted and zoomed again
        ``interpolation_order``      ``interpolation``               exact: 1 bilinear,
                                                                     0 nearest
        samplewise center/std,       none                            left out (warning)
        ``zca_whitening``,
        ``preprocessing_function``
        ===========================  ==============================  =========================

        Used in: labs/06_data_augmentation, labs/07_training_convnets_well
        """
        from cnnlab.augment import _layers

        return _layers.nearest_layers(self, image_size=image_size, seed=seed)

    def preview(self, image, n=9, seed=0):
        """A grid of ``n`` augmented versions of ``image``: the lecture's augmented cat.

        ``image``: (height, width, channels) or (height, width), uint8 or float in 0..255.
        Each panel is titled with its rotation, shifts and zoom.  Returns the figure.

        Used in: labs/06_data_augmentation
        """
        import matplotlib.pyplot as plt

        array = np.asarray(image)
        if array.ndim == 2:
            array = array[:, :, None] if self.data_format == "channels_last" else array[None]
        array = self._check_one_image(array)
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n={n!r} must be a positive int, e.g. 9")
        rs = np.random.RandomState(int(seed) % 2 ** 32)
        params = [self._draw_transform(rs, array.shape) for _ in range(n)]
        batch = np.repeat(array[None].astype(np.float32), n, axis=0)
        out = self.apply_transform_batch(batch, params)
        if self.data_format == "channels_first":
            out = out.transpose(0, 2, 3, 1)
        cols = math.ceil(math.sqrt(n))
        rows = math.ceil(n / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.6 * rows), squeeze=False)
        scale = 255.0 if np.nanmax(np.abs(out)) > 1.5 else 1.0
        for ax, picture, p in zip(axes.ravel(), out, params):
            picture = np.clip(picture / scale, 0.0, 1.0)
            if picture.shape[-1] == 1:
                ax.imshow(picture[:, :, 0], cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(picture)
            flips = ("H" if p["flip_horizontal"] else "") + ("V" if p["flip_vertical"] else "")
            ax.set_title(f"θ={p['theta']:.0f}° tx={p['tx']:.0f} ty={p['ty']:.0f} px\n"
                         f"zoom {p['zx']:.2f}×{p['zy']:.2f}" + (f" flip {flips}" if flips
                                                                 else ""), fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        for ax in axes.ravel()[n:]:
            ax.axis("off")
        fig.suptitle(f"{n} augmented versions (seed={seed})\n"
                     + textwrap.fill(repr(self), width=30 * cols), fontsize=9)
        fig.tight_layout()
        return fig

