"""Baselines trained by the same code as POI-R (same TRN backbone, data, schedule, augmentation), one flag each:

- ``ce``: cross-entropy on the (noisy) hard labels;
- ``label_smoothing``: CE against ``(1 - eps) one_hot + eps / C`` (Szegedy et al., 2016);
- ``scn``: a Self-Cure-Network-style learner (Wang et al., CVPR 2020): the TRN's confidence head is SCN's attention
  weight alpha; the loss is CE of the alpha-scaled logits plus SCN's rank regularisation, and after
  ``relabel_epoch`` a sample is relabelled to the predicted class when ``p_max - p_label > relabel_margin``.
  SCN starts from a face-pretrained backbone; from scratch the alpha-scaled CE collapses (alpha -> 0 makes every
  output uniform, CE -> ln C, and the logits stop learning), so the first ``scn_warmup_epochs`` use plain CE;
- ``kd``: knowledge distillation from a plain CE-trained teacher (Hinton et al., 2015), to separate "any teacher"
  from "PIN's prior".

`poi_hf.trainer.BaselineLoss` (and `SCNLoss`, which keeps the relabelled labels) trains them with `FERTrainer`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.nn import functional as F

from .losses import kl_to_target, uncertainty_regularizer

METHODS = ("poi", "ce", "label_smoothing", "scn", "kd")


@dataclass
class BaselineSettings:
    """Hyperparameters of the baselines (SCN's defaults from its paper); each field is a flag of examples/train.py."""

    method: str = field(default="ce", metadata={"help": f"One of {METHODS[1:]}."})
    label_smoothing: float = field(default=0.1, metadata={"help": "label_smoothing: eps of the smoothed target."})
    scn_rank_margin: float = field(
        default=0.15, metadata={"help": "scn: how far the mean alpha of the high group must exceed the rest's."}
    )
    scn_high_ratio: float = field(default=0.7, metadata={"help": "scn: share of each batch in the high-alpha group."})
    scn_rank_weight: float = field(default=1.0, metadata={"help": "scn: weight of the rank regularisation."})
    scn_relabel_margin: float = field(
        default=0.2, metadata={"help": "scn: relabel a sample to the predicted class when p_max - p_label > this."}
    )
    scn_relabel_epoch: float = field(default=4.0, metadata={"help": "scn: epoch from which samples are relabelled."})
    scn_warmup_epochs: float = field(
        default=2.0, metadata={"help": "scn: epochs of plain CE before the alpha-scaled loss (from scratch)."}
    )
    kd_weight: float = field(default=0.5, metadata={"help": "kd: weight of the distillation term (CE gets 1 - it)."})
    kd_temperature: float = field(default=2.0, metadata={"help": "kd: temperature T of the teacher's soft labels."})

    def __post_init__(self):
        if self.method not in METHODS or self.method == "poi":
            raise ValueError(f"Baseline method must be one of {METHODS[1:]}, got {self.method!r}.")


def scn_relabel(probs: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """SCN's relabelling rule: (B,) new labels, ``argmax p`` where ``p_max - p_label > margin``, else ``labels``."""
    top_prob, top_class = probs.max(dim=-1)
    label_prob = probs.gather(1, labels[:, None]).squeeze(1)
    return torch.where(top_prob - label_prob > margin, top_class, labels)


def baseline_losses(
    settings: BaselineSettings,
    logits: torch.Tensor,
    confidence: torch.Tensor,
    labels: torch.Tensor,
    teacher_logits: torch.Tensor | None = None,
    warming_up: bool = False,
) -> dict[str, torch.Tensor]:
    """Loss terms of a baseline; ``loss`` is their sum.

    Args:
        logits: (B, C) TRN logits; confidence: (B,) TRN confidence head (SCN's attention weight alpha).
        labels: (B,) hard labels (for SCN: after relabelling).
        teacher_logits: (B, C) frozen teacher's logits (``kd`` only).
        warming_up: SCN's plain-CE warm-up (alpha not used yet).
    """
    logits, confidence = logits.float(), confidence.float()
    method = settings.method
    if method == "ce":
        terms = {"ce": F.cross_entropy(logits, labels)}
    elif method == "label_smoothing":
        terms = {"ce": F.cross_entropy(logits, labels, label_smoothing=settings.label_smoothing)}
    elif method == "scn" and warming_up:
        terms = {"ce": F.cross_entropy(logits, labels)}
    elif method == "scn":
        terms = {
            "ce": F.cross_entropy(confidence[:, None] * logits, labels),
            "rank": settings.scn_rank_weight
            * uncertainty_regularizer(confidence, "rank", settings.scn_rank_margin, settings.scn_high_ratio),
        }
    else:  # kd
        if teacher_logits is None:
            raise ValueError("The kd baseline needs teacher logits (train.py: --teacher_path).")
        teacher = F.softmax(teacher_logits.float() / settings.kd_temperature, dim=-1)
        terms = {
            "ce": (1.0 - settings.kd_weight) * F.cross_entropy(logits, labels),
            "kd": settings.kd_weight * kl_to_target(teacher, logits, settings.kd_temperature).mean(),
        }
    terms["loss"] = sum(terms.values())
    return terms
