"""Pre-staging datasets on a connected machine: ``fetch``, so that the labs then run offline.

``cnnlab fetch mnist cifar10 ...`` (:mod:`cnnlab.cli`) calls :func:`fetch`.

Used in: no lab notebook directly; ``cnnlab fetch``
"""

from __future__ import annotations

from pathlib import Path

from cnnlab.datasets.catalog import DATASETS, _dataset_name
from cnnlab.datasets.cats_vs_dogs import _cats_vs_dogs_folder
from cnnlab.datasets.download import _ensure_dataset
from cnnlab.datasets.parsers import _read_fashion

__all__ = ["chosen_datasets", "fetch"]


def chosen_datasets(names) -> list[str]:
    """The dataset keys ``names`` (one name, a list, ``"all"``) stand for, in order, once each.

    Unknown names raise ``ValueError`` listing the known ones; an empty list too.

    Used in: no lab notebook directly; ``cnnlab fetch`` checks its names with it
    """
    if isinstance(names, str):
        names = [names]
    chosen = []
    for name in names:
        for dataset in (DATASETS if str(name).strip().lower() == "all" else [_dataset_name(name)]):
            if dataset not in chosen:
                chosen.append(dataset)
    if not chosen:
        raise ValueError(f"names is empty; give one or more of {', '.join(DATASETS)} or 'all'")
    return chosen


def fetch(names, cache_dir=None, progress: bool = True) -> dict[str, list[Path]]:
    """Download and verify datasets into the cache, so that the labs later run offline.

    ``names``: one name or a list (``"mnist"``, ``"fashion_mnist"``, ``"cifar10"``,
    ``"cifar100"``, or ``"all"``).  Files already cached and verified are kept; missing or
    corrupt ones are downloaded from their official origin to a temporary file, checked
    (SHA-256 where known, idx format for Fashion-MNIST) and renamed into place.  Returns
    ``{name: [paths]}``.  Run it (or ``cnnlab fetch NAME ...``) on a connected machine, then
    copy the cache folder (``$CNNLAB_DATA`` or ``~/.keras/datasets``) to the offline one.

    Used in: no lab notebook directly; ``cnnlab fetch``
    """
    fetched = {}
    for dataset in chosen_datasets(names):
        paths = _ensure_dataset(dataset, "download", cache_dir, progress=progress)
        if dataset == "fashion_mnist":  # no hash: at least parse the idx headers
            _read_fashion(paths)
        if dataset == "cats_vs_dogs":  # no published hash: layout, then a recorded sha256
            _cats_vs_dogs_folder(paths[0])
        fetched[dataset] = paths
    return fetched


