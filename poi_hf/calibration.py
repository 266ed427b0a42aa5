"""Temperature scaling (Guo et al., 2017) of a TRN, fitted on a validation split.

The TRN's eval-mode logits are divided by ``TRNConfig.calibration_temperature`` before any softmax; with
``mirror_average`` each view is tempered before the two views' probabilities are averaged, so the fit needs both
views' plain logits, not the averaged output. One scalar, fitted by NLL: the predicted class never changes for a
single view and rarely for the averaged one; probabilities, ``score`` and the flip ``confidence`` become calibrated.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from datasets import Dataset
from transformers import Trainer

from .metrics import expected_calibration_error
from .trn.modeling_trn import TRNForImageClassification

TEMPERATURE_RANGE = (0.05, 20.0)
"""Where the fit searches; a temperature at either end means the logits carry (almost) no information or the model
is (almost) never wrong on the split."""


@contextmanager
def plain_predictions(trn: TRNForImageClassification) -> Iterator[TRNForImageClassification]:
    """Within the block ``trn`` outputs its face-alone, untempered logits and its head's ``confidence``: one backbone
    pass, what training sees."""
    config = trn.config
    deployed = config.confidence_source, config.mirror_average, config.calibration_temperature
    config.confidence_source, config.mirror_average, config.calibration_temperature = "head", False, 1.0
    try:
        yield trn
    finally:
        config.confidence_source, config.mirror_average, config.calibration_temperature = deployed


def tempered_log_probs(view_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Log of the views' mean tempered probabilities: (V, N, C) logits of V views (the face, its mirror image) ->
    (N, C), ``log mean_v softmax(z_v / T)``; what the TRN's eval-mode ``logits`` are with ``calibration_temperature``
    ``T`` (V = 2 with ``mirror_average``, else V = 1)."""
    return (view_logits.float() / temperature).log_softmax(-1).logsumexp(0) - math.log(view_logits.shape[0])


def fit_temperature(view_logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature in `TEMPERATURE_RANGE` that minimises the NLL of ``labels`` (N,) under
    `tempered_log_probs` of ``view_logits`` (V, N, C): golden-section search on log T (the NLL is unimodal in it)."""
    if len(labels) == 0:
        raise ValueError("fit_temperature needs at least one labelled sample.")
    labels = labels.long()

    def nll(log_t: float) -> float:
        return float(-tempered_log_probs(view_logits, math.exp(log_t)).gather(1, labels[:, None]).mean())

    low, high = (math.log(t) for t in TEMPERATURE_RANGE)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    nll_a, nll_b = nll(a), nll(b)
    while high - low > 1e-4:
        if nll_a <= nll_b:
            high, b, nll_b = b, a, nll_a
            a = high - ratio * (high - low)
            nll_a = nll(a)
        else:
            low, a, nll_a = a, b, nll_b
            b = low + ratio * (high - low)
            nll_b = nll(b)
    return math.exp((low + high) / 2)


def predict_views(trainer: Trainer, dataset: Dataset, mirror: bool) -> torch.Tensor:
    """Plain logits (V, N, C) of the trainer's TRN on ``dataset`` in its order: the faces, and with ``mirror`` their
    mirror images too (V = 2). Runs ``trainer.predict`` (so DDP/FSDP gather as in evaluation) with the batches'
    ``pixel_values`` flipped by the collator for the second view."""
    trn = getattr(trainer.model, "trn", trainer.model)
    collate = trainer.data_collator

    def collate_mirrored(features: list[dict]) -> dict:
        batch = collate(features)
        return {**batch, "pixel_values": batch["pixel_values"].flip(-1)}

    views = []
    try:
        with plain_predictions(trn):
            for collator in (collate, collate_mirrored)[: 2 if mirror else 1]:
                trainer.data_collator = collator
                views.append(torch.from_numpy(trainer.predict(dataset, metric_key_prefix="calibration").predictions[0]))
    finally:
        trainer.data_collator = collate
    return torch.stack(views)


def calibrate_temperature(trainer: Trainer, dataset: Dataset) -> dict[str, float]:
    """Fit the trainer's TRN's ``calibration_temperature`` on ``dataset`` (a validation split), set it on the model,
    and return the temperature with the split's NLL and ECE before and after. The labels are the ones evaluation
    scores against (`poi_hf.trainer.evaluation_targets`): ``clean_label`` where the split has it (SynFER's
    subjective or noisy labels would teach the model the annotators' doubt), else ``label``."""
    trn = getattr(trainer.model, "trn", trainer.model)
    view_logits = predict_views(trainer, dataset, mirror=trn.config.mirror_average)
    column = "clean_label" if "clean_label" in dataset.column_names else "label"
    labels = torch.as_tensor(np.asarray(dataset.with_format(None)[column][:], dtype=np.int64))
    temperature = fit_temperature(view_logits, labels)
    report = {"temperature": temperature}
    for name, t in (("before", 1.0), ("after", temperature)):
        log_probs = tempered_log_probs(view_logits, t)
        report[f"nll_{name}"] = float(-log_probs.gather(1, labels[:, None]).mean())
        report[f"ece_{name}"] = expected_calibration_error(log_probs.exp().numpy(), labels.numpy())
    trn.config.calibration_temperature = temperature
    return report


__all__ = ["TEMPERATURE_RANGE", "calibrate_temperature", "fit_temperature", "plain_predictions", "predict_views",
           "tempered_log_probs"]
