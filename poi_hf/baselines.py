"""Baselines trained by the same code as POI-R (same TRN backbone, data, schedule, augmentation), one flag each:

- ``ce``: cross-entropy on the (noisy) hard labels;
- ``label_smoothing``: CE against ``(1 - eps) one_hot + eps / C`` (Szegedy et al., 2016);
- ``scn``: a Self-Cure-Network-style learner (Wang et al., CVPR 2020): the TRN's confidence head is SCN's attention
  weight alpha; the loss is CE of the alpha-scaled logits plus SCN's rank regularisation, and after
  ``relabel_epoch`` a sample is relabelled to the predicted class when ``p_max - p_label > relabel_margin``.
  SCN starts from a face-pretrained backbone; from scratch the alpha-scaled CE collapses (alpha -> 0 makes every
  output uniform, CE -> ln C, and the logits stop learning), so the first ``baseline_warmup_epochs`` use plain CE
  (RUL and EAC too, for the same reason);
- ``kd``: knowledge distillation from a plain CE-trained teacher (Hinton et al., 2015), to separate "any teacher"
  from "PIN's prior";
- ``rul``: Relative Uncertainty Learning (Zhang, Wang & Deng, NeurIPS 2021): each sample is paired with a random
  other one of its batch; their features are mixed with weights from their relative confidence (the TRN's
  confidence head), ``w_i = c_i / (c_i + c_j)``, and the mixture is classified against both labels with the same
  weights (the "add-up" loss, `rul_losses`);
- ``eac``: Erasing Attention Consistency (Zhang et al., ECCV 2022): CE on a randomly erased image plus the mean squared
  difference between its class activation maps and the mirrored maps of its horizontal flip (`eac_losses`).

`poi_hf.trainer.BaselineLoss` (and `SCNLoss`, which keeps the relabelled labels, `RULLoss` and `EACLoss`, which build
their pairs and flipped views from the batch) trains them with `FERTrainer`; docs/method.md has the details.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch.nn import functional as F

from .data import FERTrainTransform
from .losses import kl_to_target, uncertainty_regularizer

METHODS = ("poi", "ce", "label_smoothing", "scn", "kd", "rul", "eac")
# The methods whose training fits the TRN's uncertainty head (its `confidence`); the others leave it at its init.
CONFIDENCE_METHODS = ("poi", "scn", "rul")


@dataclass
class BaselineSettings:
    """Hyperparameters of the baselines (SCN's and EAC's defaults from their papers; RUL has none of its own); each
    field is a flag of examples/train.py."""

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
    baseline_warmup_epochs: float = field(
        default=2.0,
        metadata={
            "help": "scn, rul, eac: epochs of plain CE before the method's own loss. Their papers start from "
            "face-pretrained backbones; from scratch their losses stall at chance (docs/method.md)."
        },
    )
    kd_weight: float = field(default=0.5, metadata={"help": "kd: weight of the distillation term (CE gets 1 - it)."})
    kd_temperature: float = field(default=2.0, metadata={"help": "kd: temperature T of the teacher's soft labels."})
    eac_weight: float = field(
        default=5.0, metadata={"help": "eac: weight lambda of the flip consistency of the class activation maps."}
    )
    eac_erase_prob: float = field(
        default=0.5,
        metadata={
            "help": "eac: probability that a training image is randomly erased before it is flipped (0: only the "
            "training transforms' erasing, e.g. --augmentation strong)."
        },
    )
    eac_erase_area_min: float = field(default=0.02, metadata={"help": "eac: smallest erased share of the image."})
    eac_erase_area_max: float = field(default=0.25, metadata={"help": "eac: largest erased share of the image."})

    def __post_init__(self):
        if self.method not in METHODS or self.method == "poi":
            raise ValueError(f"Baseline method must be one of {METHODS[1:]}, got {self.method!r}.")
        self.check_ranges()

    def check_ranges(self) -> None:
        """Raise a `ValueError` naming the first setting outside its range."""
        if self.eac_weight < 0:
            raise ValueError(f"eac_weight={self.eac_weight}: expected a weight >= 0.")
        if not 0.0 <= self.eac_erase_prob <= 1.0:
            raise ValueError(f"eac_erase_prob={self.eac_erase_prob}: expected a probability in [0, 1].")
        if not 0.0 < self.eac_erase_area_min <= self.eac_erase_area_max <= 1.0:
            raise ValueError(
                f"eac_erase_area_min={self.eac_erase_area_min}, eac_erase_area_max={self.eac_erase_area_max}: "
                "expected 0 < min <= max <= 1 (shares of the image area)."
            )


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
        warming_up: the plain-CE warm-up of ``baseline_warmup_epochs`` (SCN's alpha not used yet).
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
    elif method == "kd":
        if teacher_logits is None:
            raise ValueError("The kd baseline needs teacher logits (train.py: --teacher_path).")
        teacher = F.softmax(teacher_logits.float() / settings.kd_temperature, dim=-1)
        terms = {
            "ce": (1.0 - settings.kd_weight) * F.cross_entropy(logits, labels),
            "kd": settings.kd_weight * kl_to_target(teacher, logits, settings.kd_temperature).mean(),
        }
    else:
        raise ValueError(
            f"The {method} baseline trains on pairs or flipped views of the batch: use rul_losses / eac_losses "
            "(poi_hf.trainer.RULLoss / EACLoss)."
        )
    terms["loss"] = sum(terms.values())
    return terms


def rul_losses(
    logits: torch.Tensor, confidence: torch.Tensor, labels: torch.Tensor, partner: torch.Tensor
) -> dict[str, torch.Tensor]:
    """RUL's add-up loss; ``loss`` is the ``add_up`` term.

    Sample i is mixed with sample ``partner[i]`` = j with weights ``w_i = c_i / (c_i + c_j)`` and ``w_j = 1 - w_i``
    from their confidences, and ``w_i CE(z_mix, y_i) + w_j CE(z_mix, y_j)`` is averaged over i. The mixture is taken
    on the logits: the TRN's classifier is affine, so ``classifier(w_i f_i + w_j f_j) = w_i z_i + w_j z_j`` is the
    prediction on the mixed pooled features.

    Args:
        logits: (B, C) TRN logits; confidence: (B,) TRN confidence head in (0, 1), RUL's per-sample weight.
        labels: (B,) hard labels; partner: (B,) index of each sample's partner (a permutation of the batch).
    """
    logits, confidence = logits.float(), confidence.float()
    weight = confidence / (confidence + confidence[partner]).clamp_min(torch.finfo(confidence.dtype).tiny)
    mixed = weight[:, None] * logits + (1.0 - weight[:, None]) * logits[partner]
    add_up = weight * F.cross_entropy(mixed, labels, reduction="none") + (1.0 - weight) * F.cross_entropy(
        mixed, labels[partner], reduction="none"
    )
    return {"add_up": add_up.mean(), "loss": add_up.mean()}


def class_activation_maps(feature_map: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Class activation maps: (B, D, h, w) feature map and (C, D) linear classifier weight -> (B, C, h, w), each
    position's class scores without the bias, so their spatial mean plus the bias is the classifier's output on the
    pooled feature."""
    return torch.einsum("bdhw,cd->bchw", feature_map.float(), weight.float())


def random_erase(
    pixel_values: torch.Tensor,
    prob: float,
    area: tuple[float, float],
    ratio: tuple[float, float] = FERTrainTransform.erase_ratio,
) -> torch.Tensor:
    """Erase one random box (set it to 0, the mean colour of normalised images) in each image with probability
    ``prob``; a box covers a uniform share ``area`` of the image, its aspect ratio log-uniform in ``ratio`` (the
    training transforms' random erasing, drawn per image of the batch). (B, 3, H, W) -> a new tensor."""
    batch, _, height, width = pixel_values.shape
    device = pixel_values.device
    share = torch.empty(batch, device=device).uniform_(*area) * height * width
    aspect = torch.empty(batch, device=device).uniform_(math.log(ratio[0]), math.log(ratio[1])).exp()
    box_h = (share * aspect).sqrt().round().clamp(1, height)
    box_w = (share / aspect).sqrt().round().clamp(1, width)
    top = (torch.rand(batch, device=device) * (height - box_h + 1)).floor()
    left = (torch.rand(batch, device=device) * (width - box_w + 1)).floor()
    rows = torch.arange(height, device=device)[None, :]
    cols = torch.arange(width, device=device)[None, :]
    inside_rows = (rows >= top[:, None]) & (rows < (top + box_h)[:, None])
    inside_cols = (cols >= left[:, None]) & (cols < (left + box_w)[:, None])
    erased = torch.rand(batch, device=device) < prob
    mask = inside_rows[:, :, None] & inside_cols[:, None, :] & erased[:, None, None]
    return pixel_values.masked_fill(mask[:, None], 0.0)


def eac_losses(
    settings: BaselineSettings,
    logits: torch.Tensor,
    labels: torch.Tensor,
    cams: torch.Tensor,
    flipped_cams: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """EAC's loss terms; ``loss`` is their sum.

    Args:
        logits: (B, C) TRN logits of the (erased) images; labels: (B,) hard labels.
        cams: (B, C, h, w) class activation maps of those images; flipped_cams: those of their horizontal flips.

    ``ce`` is CE on the images (the flips only enter the consistency: EAC's "imbalanced" framework); ``consistency``
    is ``eac_weight`` times the mean over batch, classes and positions of ``(cams - flip(flipped_cams))^2``.
    """
    consistency = F.mse_loss(cams.float(), flipped_cams.float().flip(-1))
    terms = {"ce": F.cross_entropy(logits.float(), labels), "consistency": settings.eac_weight * consistency}
    terms["loss"] = sum(terms.values())
    return terms
