"""Class-balanced sampling for imbalanced datasets (AffectNet: ~135k happiness vs ~4k contempt images)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from datasets import Dataset
from torch.utils.data import WeightedRandomSampler


def class_balanced_sampler(
    labels: Dataset | Sequence[int] | np.ndarray,
    power: float = 1.0,
    num_samples: int | None = None,
    generator: torch.Generator | None = None,
) -> WeightedRandomSampler:
    """A sampler that draws each example with weight ``1 / count(label) ** power`` (with replacement).

    ``power=1`` makes every class equally likely per draw; ``power=0.5`` is a milder square-root rebalancing.

    Args:
        labels: a :class:`datasets.Dataset` (its ``label`` column is read, ignoring any transform) or (N,) ints.
        num_samples: draws per epoch; default the dataset size.

    To use it with a ``transformers.Trainer``, override its sampler hook::

        class BalancedTrainer(Trainer):
            def _get_train_sampler(self, train_dataset=None):
                return class_balanced_sampler(train_dataset if train_dataset is not None else self.train_dataset)
    """
    if isinstance(labels, Dataset):
        labels = labels.with_format(None)["label"][:]
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels)
    weights = counts[labels].astype(np.float64) ** -power
    return WeightedRandomSampler(
        torch.from_numpy(weights), num_samples=num_samples or len(labels), replacement=True, generator=generator
    )
