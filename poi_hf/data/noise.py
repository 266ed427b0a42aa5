"""Synthetic label noise for robustness experiments: symmetric, pair and asymmetric flips, or labels from a file.

Noise touches the training split only. The annotated label stays in a ``clean_label`` column (kept as it is when a
dataset already has one, e.g. SynFER), ``label`` becomes the noisy one, and the achieved rate is logged and
returned. Annotations that describe the clean label (FERPlus ``soft_labels`` and ``votes``) are dropped from the
noisy split: a method that trains on them would otherwise see clean supervision while the others see noise. Exactly ``round(rate * N)`` samples are flipped, so the achieved rate equals the requested one up to
rounding, and never to the same class.
"""

from __future__ import annotations

import logging
from typing import Literal, Mapping, Sequence

import numpy as np
from datasets import Dataset, DatasetDict

logger = logging.getLogger(__name__)

NoiseType = Literal["symmetric", "pair", "asymmetric"]

# Asymmetric noise flips each class to the class it is most often confused with in in-the-wild FER (the dominant
# off-diagonal cells of published RAF-DB / FERPlus / AffectNet confusion matrices).
CONFUSABLE: dict[str, str] = {
    "neutral": "sadness",
    "happiness": "neutral",
    "surprise": "fear",
    "sadness": "neutral",
    "anger": "disgust",
    "disgust": "anger",
    "fear": "surprise",
    "contempt": "neutral",
}


def check_noise_rate(rate: float, name: str = "noise_rate") -> None:
    """Raise a `ValueError` unless ``rate`` (called ``name`` in the message) is a fraction in [0, 1]."""
    if not 0.0 <= rate <= 1.0:  # also catches NaN
        raise ValueError(f"{name} must be a fraction of the training labels in [0, 1], got {rate}.")


def flip_labels(
    labels: np.ndarray,
    num_classes: int,
    rate: float,
    noise_type: NoiseType = "symmetric",
    seed: int = 0,
    class_names: Sequence[str] | None = None,
    mapping: Mapping[str, str] | None = None,
) -> np.ndarray:
    """Flip exactly ``round(rate * N)`` randomly chosen labels to another class.

    Args:
        labels: (N,) int labels in ``[0, num_classes)``.
        noise_type: ``"symmetric"``: to a uniformly random *other* class; ``"pair"``: class c to c+1 mod C
            (Co-teaching's pair flip); ``"asymmetric"``: to the most confusable class by name (``mapping``, default
            :data:`CONFUSABLE`; a class whose partner is not in ``class_names`` falls back to pair).
        class_names: names of the classes, needed for ``"asymmetric"``.

    Returns:
        (N,) int64 noisy labels; ``noisy != labels`` exactly at the flipped positions.
    """
    labels = np.asarray(labels, dtype=np.int64)
    check_noise_rate(rate)
    if num_classes < 2:
        raise ValueError("label noise needs at least 2 classes")
    rng = np.random.default_rng(seed)
    flipped = rng.permutation(len(labels))[: round(rate * len(labels))]
    noisy = labels.copy()
    if noise_type == "symmetric":
        # Adding 1..C-1 modulo C is uniform over the other classes.
        noisy[flipped] = (labels[flipped] + rng.integers(1, num_classes, size=len(flipped))) % num_classes
    elif noise_type in ("pair", "asymmetric"):
        target = (np.arange(num_classes) + 1) % num_classes
        if noise_type == "asymmetric":
            if class_names is None:
                raise ValueError("asymmetric noise needs class_names")
            mapping = CONFUSABLE if mapping is None else mapping
            index = {name: i for i, name in enumerate(class_names)}
            for name, partner in mapping.items():
                if name in index and partner in index and partner != name:
                    target[index[name]] = index[partner]
        noisy[flipped] = target[labels[flipped]]
    else:
        raise ValueError(f"Unknown noise_type {noise_type!r}; expected symmetric, pair or asymmetric.")
    return noisy


CLEAN_ANNOTATIONS = ("soft_labels", "votes")
"""Columns that carry the annotators' view of the clean label; `replace_labels` removes them."""


def replace_labels(dataset: Dataset, labels: Sequence[int]) -> tuple[Dataset, float]:
    """Set ``label`` to ``labels``, keep the previous one in ``clean_label`` (unless it already exists) and drop the
    :data:`CLEAN_ANNOTATIONS` columns.

    Returns:
        the new dataset and the achieved noise rate, the fraction of rows where ``label != clean_label``.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) != len(dataset):
        raise ValueError(f"{len(labels)} labels for a dataset of {len(dataset)} rows")
    if "clean_label" not in dataset.column_names:
        dataset = dataset.add_column("clean_label", dataset["label"][:], feature=dataset.features["label"])
    label_feature = dataset.features["label"]
    dataset = dataset.remove_columns([name for name in CLEAN_ANNOTATIONS if name in dataset.column_names])
    dataset = dataset.remove_columns("label").add_column("label", labels.tolist(), feature=label_feature)
    return dataset, noise_rate_of(dataset)


def noise_rate_of(dataset: Dataset) -> float:
    """The fraction of rows whose ``label`` differs from ``clean_label`` (0.0 without a ``clean_label`` column)."""
    if "clean_label" not in dataset.column_names or len(dataset) == 0:
        return 0.0
    table = dataset.with_format("numpy", columns=["label", "clean_label"])
    return float(np.mean(table["label"][:] != table["clean_label"][:]))


def add_label_noise(
    dataset: DatasetDict,
    rate: float,
    noise_type: NoiseType = "symmetric",
    seed: int = 0,
    split: str = "train",
    mapping: Mapping[str, str] | None = None,
) -> tuple[DatasetDict, float]:
    """Inject synthetic noise into ``dataset[split]`` (see :func:`flip_labels`); other splits are untouched.

    Returns:
        the new :class:`DatasetDict` and the achieved rate, the fraction of that split's labels this call changed
        (logged, with the overall ``label != clean_label`` rate, which differs when the labels were noisy already).
    """
    train = dataset[split]
    names = train.features["label"].names
    labels = np.asarray(train["label"][:], dtype=np.int64)
    noisy = flip_labels(labels, len(names), rate, noise_type, seed, names, mapping)
    achieved = float(np.mean(noisy != labels)) if len(labels) else 0.0
    result = DatasetDict(dataset)
    result[split], disagreement = replace_labels(train, noisy)
    logger.info("%s noise on %r: requested %.4f, achieved %.4f (seed %d); label != clean_label on %.4f.",
                noise_type, split, rate, achieved, seed, disagreement)
    return result, achieved
