"""Stack transformed examples into a batch."""

from __future__ import annotations

from typing import Mapping, Sequence

import torch


def poi_collate(examples: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack the per-example tensors of :class:`~poi_hf.data.FERTrainTransform` / ``FEREvalTransform``.

    Returns:
        ``pixel_values`` (B, 3, S, S) float32, ``labels`` (B,) int64, ``landmarks`` (B, 5, 2) float32, and where
        the examples have them ``soft_labels`` (B, C), ``clean_labels`` (B,), ``true_distribution`` (B, C).
        Usable as a ``DataLoader`` ``collate_fn`` and as a ``Trainer`` ``data_collator``.
    """
    keys = examples[0].keys()
    missing = {key for example in examples for key in keys if key not in example}
    if missing:
        raise ValueError(f"Examples of one batch differ: some lack {sorted(missing)}")
    return {key: torch.stack([torch.as_tensor(example[key]) for example in examples]) for key in keys}
