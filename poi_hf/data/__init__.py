"""FER datasets as ``datasets.DatasetDict``: loaders for the published formats, label noise, augmentation.

Every loader returns splits among ``train`` / ``validation`` / ``test`` with an ``image`` (Image) column and a
``label`` (ClassLabel) column in the dataset's native class order with canonical names, plus ``landmarks``,
``face_box``, ``soft_labels``, ``votes`` or ``clean_label`` where the dataset has them. See docs/datasets.md.

Example::

    from torch.utils.data import DataLoader
    from poi_hf.data import CROP_STYLES, load_fer_dataset, poi_collate, set_fer_transforms

    dataset = load_fer_dataset("rafdb", "/data/RAF-DB/basic", noise_rate=0.2, noise_seed=0)
    names = dataset["train"].features["label"].names      # surprise, fear, ..., neutral
    set_fer_transforms(dataset, image_size=112, crop_style=CROP_STYLES["rafdb"])
    loader = DataLoader(dataset["train"], batch_size=64, shuffle=True, num_workers=2, collate_fn=poi_collate)
    batch = next(iter(loader))  # pixel_values (64, 3, 112, 112), labels (64,), landmarks (64, 5, 2), clean_labels
"""

from __future__ import annotations

import os
from typing import Any, Callable

from datasets import Dataset, DatasetDict

from ._common import DatasetFormatError
from .affectnet import AFFECTNET_CLASSES, load_affectnet
from .collate import poi_collate
from .fer2013 import FER2013_CLASSES, load_fer2013
from .ferplus import FERPLUS_CLASSES, ferplus_target, load_ferplus
from .imagefolder import load_imagefolder
from .noise import NoiseType, add_label_noise, check_noise_rate, flip_labels, noise_rate_of, replace_labels
from .rafdb import RAFDB_CLASSES, load_rafdb, read_label_file
from .sampler import class_balanced_sampler
from .transforms import (
    AUGMENTATIONS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    FEREvalTransform,
    FERTrainTransform,
    processor_transform_settings,
    set_fer_transforms,
)


def _load_synfer(data_dir: str | None = None, **kwargs: Any) -> DatasetDict:
    from .synthetic import load_synfer  # generated data: imported only when asked for

    if data_dir is not None:
        kwargs.setdefault("cache_dir", data_dir)
    return load_synfer(**kwargs)


LOADERS: dict[str, Callable[..., DatasetDict]] = {
    "rafdb": load_rafdb,
    "ferplus": load_ferplus,
    "fer2013": load_fer2013,
    "affectnet": load_affectnet,
    "imagefolder": load_imagefolder,
    "synfer": _load_synfer,
}

CROP_STYLES: dict[str, str] = {
    "rafdb": "rafdb",
    "ferplus": "fer2013",
    "fer2013": "fer2013",
    "affectnet": "affectnet",
    "imagefolder": "arcface",
    "synfer": "synfer",
}
"""Landmark template (``poi_hf.priors.landmark_template``) the transforms use for a dataset without landmarks."""

GRAYSCALE_DATASETS: frozenset[str] = frozenset({"fer2013", "ferplus"})
"""Datasets of grayscale images: their models see grayscale at inference too (the image processor's do_grayscale)."""


def load_fer_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    noise_rate: float = 0.0,
    noise_type: NoiseType = "symmetric",
    noise_seed: int = 0,
    **kwargs: Any,
) -> DatasetDict:
    """Load a FER dataset by name, optionally with synthetic label noise on its ``train`` split.

    Args:
        name: one of :data:`LOADERS`: ``rafdb``, ``ferplus``, ``fer2013``, ``affectnet``, ``imagefolder``, ``synfer``.
        data_dir: the unpacked dataset folder (for ``synfer``: its cache folder, optional).
        noise_rate: fraction of training labels to flip (see :func:`add_label_noise`); the clean labels go to
            ``clean_label``. For ``synfer`` this replaces the generator's own ``noise_rate``.
        kwargs: passed to the loader, e.g. ``label_file="noise01.txt"`` (rafdb), ``label_mode="crossentropy"``
            (ferplus), ``num_classes=7`` (ferplus, affectnet), ``skip_bad=True``.
    """
    if name not in LOADERS:
        raise ValueError(f"Unknown dataset {name!r}; expected one of {sorted(LOADERS)}.")
    if data_dir is None and name != "synfer":
        raise ValueError(f"Dataset {name!r} needs data_dir, the folder of its unpacked download.")
    check_noise_rate(noise_rate)
    dataset = LOADERS[name](str(data_dir) if data_dir is not None else None, **kwargs)
    if noise_rate > 0:
        dataset, _ = add_label_noise(dataset, noise_rate, noise_type, noise_seed)
    return dataset


def label_maps(dataset: Dataset | DatasetDict) -> tuple[dict[int, str], dict[str, int]]:
    """``(id2label, label2id)`` of a dataset's ``label`` column, for a model config."""
    if isinstance(dataset, DatasetDict):
        dataset = next(iter(dataset.values()))
    names = dataset.features["label"].names
    return dict(enumerate(names)), {label: index for index, label in enumerate(names)}


__all__ = [
    "AUGMENTATIONS",
    "AFFECTNET_CLASSES",
    "CROP_STYLES",
    "DatasetFormatError",
    "FER2013_CLASSES",
    "FERPLUS_CLASSES",
    "GRAYSCALE_DATASETS",
    "FEREvalTransform",
    "FERTrainTransform",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LOADERS",
    "RAFDB_CLASSES",
    "add_label_noise",
    "check_noise_rate",
    "class_balanced_sampler",
    "ferplus_target",
    "flip_labels",
    "label_maps",
    "load_affectnet",
    "load_fer2013",
    "load_fer_dataset",
    "load_ferplus",
    "load_imagefolder",
    "load_rafdb",
    "noise_rate_of",
    "poi_collate",
    "read_label_file",
    "replace_labels",
    "processor_transform_settings",
    "set_fer_transforms",
]
