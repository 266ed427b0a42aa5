"""POITrainer: `transformers.Trainer` with the POI-R joint loss, the epoch-aware transfer ramp, per-term logging,
FER metrics, and standalone TRN/PIN exports next to every checkpoint."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from transformers import EvalPrediction, PreTrainedModel, Trainer, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .baselines import BaselineSettings, baseline_losses, scn_relabel
from .cpu import cpu_has_native_bf16
from .data import class_balanced_sampler
from .hub import export_submodel, model_card
from .losses import transfer_weight
from .metrics import classification_metrics

logger = logging.getLogger(__name__)

SUMMARY_METRICS = ("accuracy", "mean_class_accuracy", "macro_f1", "nll", "ece", "kl_true", "pin_accuracy")


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def evaluation_targets(prediction: EvalPrediction, label_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """The labels to score against, (N,): the clean labels when the dataset has them (noise benchmarks), else the
    given ones; and the true distribution (N, C) when known. ``label_names`` are the trainer's, in order."""
    label_ids = prediction.label_ids if isinstance(prediction.label_ids, tuple) else (prediction.label_ids,)
    targets = dict(zip(label_names, label_ids))
    return targets.get("clean_labels", targets["labels"]).astype(np.int64), targets.get("true_distribution")


def build_compute_metrics(label_names: Sequence[str]) -> Callable[[EvalPrediction], dict[str, float]]:
    """Metrics of the TRN (plain names) and of PIN's soft label (``pin_*``) against the clean labels when the
    dataset has them (noise benchmarks), else the given labels; ``kl_true`` when a true distribution is known."""

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        logits, confidence, *pin = prediction.predictions  # a TRN-only baseline has no PIN output
        labels, true_distribution = evaluation_targets(prediction, label_names)
        metrics = classification_metrics(softmax(logits), labels, true_distribution)
        if pin:
            pin_metrics = classification_metrics(softmax(pin[0]), labels, true_distribution)
            metrics.update({f"pin_{name}": value for name, value in pin_metrics.items()})
        metrics["confidence_mean"] = float(np.mean(confidence))
        return metrics

    return compute_metrics


def summarize_history(log_history: Sequence[Mapping[str, Any]], last: int = 5) -> dict[str, dict[str, float]]:
    """Best epoch and mean of the last ``last`` evaluations (the field's convention) for each summary metric."""
    evaluations = [entry for entry in log_history if "eval_accuracy" in entry]
    if not evaluations:
        return {}
    best = max(evaluations, key=lambda entry: entry["eval_accuracy"])
    summary = {"best": {"epoch": best.get("epoch", 0.0)}, f"last{last}_mean": {}, f"last{last}_std": {}}
    for name in SUMMARY_METRICS:
        key = f"eval_{name}"
        if key not in best:
            continue
        tail = [entry[key] for entry in evaluations[-last:]]
        summary["best"][name] = best[key]
        summary[f"last{last}_mean"][name] = float(np.mean(tail))
        summary[f"last{last}_std"][name] = float(np.std(tail))
    return summary


@dataclass
class POITrainingArguments(TrainingArguments):
    """TrainingArguments with defaults for image FER (the bare command trains a real model on CPU in minutes)."""

    output_dir: str | None = field(default="outputs/poi-synfer")
    num_train_epochs: float = field(default=8.0)
    per_device_train_batch_size: int = field(default=64)
    per_device_eval_batch_size: int = field(default=128)
    learning_rate: float = field(default=2e-3)
    weight_decay: float = field(default=5e-4)
    lr_scheduler_type: str = field(default="cosine")
    warmup_steps: float = field(default=0.05)
    eval_strategy: str = field(default="epoch")
    save_strategy: str = field(default="epoch")
    save_total_limit: int | None = field(default=2)
    logging_steps: float = field(default=10)
    remove_unused_columns: bool = field(default=False)
    report_to: str | None = field(default="none")
    seed: int = field(default=42)

    bf16: bool | None = field(
        default=None,
        metadata={
            "help": "bf16 autocast (the loss math stays float32). Default: on for a CPU with native bf16 (AMX or "
            "AVX-512 BF16), where training runs ~1.6x faster at equal accuracy (docs/results.md); off elsewhere, GPUs "
            "included (pass True there)."
        },
    )
    channels_last: bool | None = field(
        default=None,
        metadata={"help": "Train in the channels_last memory format. Default: together with bf16 on the CPU."},
    )

    def __post_init__(self):
        gpu = torch.cuda.is_available() and not self.use_cpu
        if self.bf16 is None:
            self.bf16 = not gpu and not self.fp16 and cpu_has_native_bf16()
        if self.channels_last is None:
            self.channels_last = self.bf16 and not gpu
        # transformers refuses bf16 without a GPU unless use_cpu is set: on a machine without one, bf16 means bf16
        # autocast on the CPU.
        if self.bf16 and not torch.cuda.is_available():
            self.use_cpu = True
            if not cpu_has_native_bf16():
                logger.warning(
                    "--bf16 on a CPU without AMX / AVX-512 BF16: PyTorch emulates bf16 here and training is several "
                    "times slower than fp32; leave --bf16 off on this machine."
                )
        super().__post_init__()


class POITrainer(Trainer):
    """Trains a `POIModel` (PIN + TRN).

    ``compute_loss`` passes the batch and ``beta(e)`` to the model, which returns the joint loss and its terms
    (logged as their means over each logging interval). The loss is a per-batch mean, so the Trainer divides it by
    the gradient accumulation steps itself (``loss_is_scaled_for_ga = False``). ``beta(e)`` reads the fractional epoch
    from the trainer state, which a resumed run restores.

    Args:
        balanced_sampling: draw training samples with class-balanced weights (AffectNet's imbalance).
        card_info: ``dataset_name``, ``dataset_id``, ``repo_id``, ``hyperparameters`` and ``eval_split`` (the split
            that ``eval_dataset`` is, named in checkpoint cards; default "validation") for the model cards.
        Everything else goes to `transformers.Trainer`; pass the image processor as ``processing_class``.
    """

    loss_is_scaled_for_ga = False

    def __init__(self, *args, balanced_sampling: bool = False, card_info: Mapping[str, Any] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if self.args.channels_last:
            self.model.to(memory_format=torch.channels_last)  # convolutions then keep activations channels_last too
        self.balanced_sampling = balanced_sampling
        self.card_info = dict(card_info or {})
        self._term_sums: dict[str, torch.Tensor] = {}
        self._term_steps = 0

    def _get_train_sampler(self, train_dataset=None):
        if self.balanced_sampling:
            return class_balanced_sampler(train_dataset if train_dataset is not None else self.train_dataset)
        return super()._get_train_sampler(train_dataset)

    def current_beta(self) -> float:
        config = self.accelerator.unwrap_model(self.model).config
        return transfer_weight(
            self.state.epoch or 0.0, config.transfer_beta, config.transfer_ramp_epochs, config.use_dynamic_transfer
        )

    def schedule_logs(self) -> dict[str, float]:
        """Schedule values logged with every training log."""
        return {"beta": round(self.current_beta(), 5)}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # The model computes the joint loss; beta(e) depends on the epoch, which only the trainer knows. Evaluation
        # columns of the batch (clean_labels, true_distribution, sample_index) are no model inputs.
        outputs = model(
            pixel_values=inputs["pixel_values"],
            landmarks=inputs.get("landmarks"),
            labels=inputs["labels"],
            soft_labels=inputs.get("soft_labels"),
            beta=self.current_beta(),
        )
        if model.training:
            for name, value in outputs.loss_terms.items():
                self._term_sums[name] = self._term_sums.get(name, 0.0) + value.detach()
            self._term_steps += 1
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._term_steps:  # a training log: add the mean of every term since the last one
            for name, total in self._term_sums.items():
                if name != "loss":
                    logs[name] = round(float(total) / self._term_steps, 5)
            logs.update(self.schedule_logs())
            self._term_sums, self._term_steps = {}, 0
        super().log(logs, start_time)

    def _save_checkpoint(self, model, trial) -> None:
        super()._save_checkpoint(model, trial)
        checkpoint_dir = os.path.join(
            self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        )
        latest = next((entry for entry in reversed(self.state.log_history) if "eval_accuracy" in entry), {})
        metrics = {name[len("eval_") :]: value for name, value in latest.items()}
        self.export(checkpoint_dir, metrics, split=self.card_info.get("eval_split", "validation"))

    def exported_models(self) -> list[tuple[str, PreTrainedModel, str]]:
        """(folder name, model, its key prefix in the trained model's state dict) of each standalone export."""
        unwrapped = self.accelerator.unwrap_model(self.model)
        return [("trn", unwrapped.trn, "trn."), ("pin", unwrapped.pin, "pin.")]

    def export(
        self, output_dir: str | os.PathLike, metrics: Mapping[str, float] | None = None, split: str = "test"
    ) -> None:
        """Write standalone checkpoints (``trn/``, and ``pin/`` for POI-R) with model cards into ``output_dir``.

        Collective under FSDP (the full state dict is gathered), so every rank must call it; rank 0 writes.
        """
        state_dict = self.accelerator.get_state_dict(self.model)
        if not self.args.should_save:
            return
        metrics = dict(metrics or {})
        for name, submodel, prefix in self.exported_models():
            sub_state = {key[len(prefix) :]: value for key, value in state_dict.items() if key.startswith(prefix)}
            sub_metrics = (
                metrics
                if name == "trn"
                else {key[len("pin_") :]: value for key, value in metrics.items() if key.startswith("pin_")}
            )
            card = model_card(
                submodel,
                repo_id=self.card_info.get("repo_id", f"poi-r-{name}"),
                dataset_name=self.card_info.get("dataset_name", "unknown"),
                dataset_id=self.card_info.get("dataset_id"),
                metrics=sub_metrics,
                split=split,
                hyperparameters=self.card_info.get("hyperparameters"),
            )
            export_submodel(submodel, Path(output_dir) / name, self.processing_class, card, sub_state)


class BaselineTrainer(POITrainer):
    """Trains a `TRNForImageClassification` alone with a baseline loss (`poi_hf.baselines`), with the same data,
    schedule, logging and exports as POI-R.

    Args:
        baseline: which baseline and its hyperparameters.
        teacher: the frozen CE-trained model whose logits the ``kd`` baseline distils.
        SCN relabelling needs a ``sample_index`` in every training batch (``examples/train.py`` adds it).
    """

    def __init__(self, *args, baseline: BaselineSettings, teacher: PreTrainedModel | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.baseline = baseline
        self.teacher = teacher.to(self.args.device).eval().requires_grad_(False) if teacher is not None else None
        self.label_table = None
        if baseline.method == "scn":
            # SCN's relabelling changes the training labels for good: keep every sample's current label here.
            self.label_table = torch.tensor(list(self.train_dataset.with_format(None)["label"]), dtype=torch.long)
            self.original_labels = self.label_table.clone()

    def exported_models(self) -> list[tuple[str, PreTrainedModel, str]]:
        return [("trn", self.accelerator.unwrap_model(self.model), "")]

    def schedule_logs(self) -> dict[str, float]:
        return {}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(pixel_values=inputs["pixel_values"])
        labels = inputs["labels"]
        relabel = self.label_table is not None and model.training
        if relabel:
            index = inputs["sample_index"]
            labels = self.label_table.to(labels.device)[index]
            if (self.state.epoch or 0.0) >= self.baseline.scn_relabel_epoch:
                attended = (outputs.confidence[:, None] * outputs.logits).detach().softmax(-1)
                self._update_labels(index, scn_relabel(attended, labels, self.baseline.scn_relabel_margin))
        teacher_logits = None
        if self.teacher is not None:
            with torch.no_grad():
                teacher_logits = self.teacher(pixel_values=inputs["pixel_values"]).logits
        warming_up = (self.state.epoch or 0.0) < self.baseline.scn_warmup_epochs
        terms = baseline_losses(self.baseline, outputs.logits, outputs.confidence, labels, teacher_logits, warming_up)
        if model.training:
            terms["alpha_mean"] = outputs.confidence.detach().float().mean()
            if relabel:
                terms["relabelled"] = (self.label_table != self.original_labels).float().mean()
            for name, value in terms.items():
                self._term_sums[name] = self._term_sums.get(name, 0.0) + value.detach()
            self._term_steps += 1
        return (terms["loss"], outputs) if return_outputs else terms["loss"]

    def _update_labels(self, index: torch.Tensor, labels: torch.Tensor) -> None:
        """Store relabelled samples from every process, so all ranks keep the same label table."""
        index, labels = self.accelerator.gather(index).cpu(), self.accelerator.gather(labels).cpu()
        self.label_table[index] = labels
