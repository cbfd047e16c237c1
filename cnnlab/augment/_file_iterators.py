"""``DirectoryIterator`` and ``DataFrameIterator``: batches decoded from image files, what
``flow_from_directory`` and ``flow_from_dataframe`` return (lecture idea: data augmentation on
a dataset too large for memory, Lab 06).

Both share one ``__init__`` (``_FileIterator``); part of the iterators of
:mod:`cnnlab.augment._iterators`, which re-exports them.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from cnnlab._checks import is_sequence, pair
from cnnlab.augment import _files
from cnnlab.augment._iterator_base import _GeneratorIterator, _formats

__all__ = ["DataFrameIterator", "DirectoryIterator"]


def _check_target_size(target_size):
    """``(height, width)`` in whole pixels (cnnlab._checks: a float is a TypeError, never
    rounded)."""
    if not is_sequence(target_size):
        raise ValueError(f"target_size={target_size!r} must be (height, width) in pixels, "
                         "e.g. target_size=(150, 150)")
    return pair(target_size, "target_size")


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
