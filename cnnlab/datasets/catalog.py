"""What datasets cnnlab knows: their names, class names, and the errors its loaders raise.

The label contract of every loader: label ``k`` is ``class_names(name)[k]``; reading a
classifier's softmax output means mapping the arg-max index back to one of these names.

Used in: no lab notebook directly; the labs import these names from cnnlab.datasets
"""

from __future__ import annotations

__all__ = [
    "CLASS_NAMES",
    "DATASETS",
    "SOURCES",
    "CacheNotWritableError",
    "CorruptDatasetError",
    "DatasetUnavailableError",
    "SubsetWarning",
    "class_names",
]

DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100", "cats_vs_dogs")
SOURCES = ("auto", "download", "cache", "fallback")

CLASS_NAMES = {
    "mnist": tuple(str(digit) for digit in range(10)),
    "fashion_mnist": (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),
    "cifar10": (
        "airplane", "automobile", "bird", "cat", "deer",
        "dog", "frog", "horse", "ship", "truck",
    ),
    "cifar100": (
        "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
        "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
        "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
        "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest",
        "fox", "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower",
        "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
        "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear",
        "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine", "possum", "rabbit",
        "raccoon", "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk",
        "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar", "sunflower",
        "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor", "train",
        "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
    ),
    "cifar100_coarse": (
        "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
        "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
        "large_man-made_outdoor_things", "large_natural_outdoor_scenes",
        "large_omnivores_and_herbivores", "medium_mammals", "non-insect_invertebrates",
        "people", "reptiles", "small_mammals", "trees", "vehicles_1", "vehicles_2",
    ),
    # image_dataset_from_directory order (folders cats/, dogs/ sorted): 0 = cat, 1 = dog.
    "cats_vs_dogs": ("cat", "dog"),
    # load_textures: the three skimage texture photos, label = index.
    "textures": ("brick", "grass", "gravel"),
    # load_faces: skimage.data.lfw_subset(), label 1 = face.
    "faces": ("non-face", "face"),
}


class DatasetUnavailableError(RuntimeError):
    """The dataset is neither in the cache nor downloadable, and has no offline copy."""


class CorruptDatasetError(DatasetUnavailableError):
    """A cached or downloaded file fails its SHA-256 check or cannot be parsed."""


class CacheNotWritableError(PermissionError):
    """The cache folder cannot be created or written to."""


class SubsetWarning(UserWarning):
    """A loader returned a documented subset of a dataset instead of the full dataset."""


_DISPLAY_NAMES = {
    "mnist": "MNIST", "fashion_mnist": "Fashion-MNIST",
    "cifar10": "CIFAR-10", "cifar100": "CIFAR-100",
    "cats_vs_dogs": "Cats vs Dogs (filtered)",
}


def _dataset_name(name) -> str:
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a string such as 'mnist', got {name!r}")
    key = name.strip().lower().replace("-", "").replace("_", "")
    for known in DATASETS:
        if key == known.replace("_", ""):
            return known
    raise ValueError(f"dataset {name!r} is unknown; known datasets: {', '.join(DATASETS)}")


def _check_source(source) -> str:
    if source not in SOURCES:
        raise ValueError(
            f"source={source!r} is not one of {', '.join(map(repr, SOURCES))}; use 'auto' "
            "(cache, then download, then the MNIST subset) unless you need another")
    return source


def class_names(name: str, label_mode: str = "fine") -> list[str]:
    """The class names of a dataset, in label order (label ``k`` is ``class_names(name)[k]``).

    MNIST: ``"0"`` .. ``"9"``; Fashion-MNIST, CIFAR-10: their 10 names; CIFAR-100: its 100
    fine names, or with ``label_mode="coarse"`` its 20 superclasses.  Reading a classifier's
    softmax output means mapping the arg-max index back to one of these names.

    Used in: no lab notebook directly (Lab 08 reads ImageNet's names from
    ``cnnlab.pretrained.imagenet_class_names``; textures and faces have theirs here)
    """
    offline_sets = {k for k in CLASS_NAMES if k not in DATASETS and not k.endswith("_coarse")}
    if isinstance(name, str) and name.strip().lower() in offline_sets:  # textures, faces...
        dataset = name.strip().lower()
    else:
        dataset = _dataset_name(name)
    if label_mode not in ("fine", "coarse"):
        raise ValueError(f"label_mode={label_mode!r} is not 'fine' or 'coarse'")
    if label_mode == "coarse":
        if dataset != "cifar100":
            raise ValueError(
                f"label_mode='coarse' exists only for cifar100, not {dataset}; use 'fine'")
        return list(CLASS_NAMES["cifar100_coarse"])
    return list(CLASS_NAMES[dataset])


