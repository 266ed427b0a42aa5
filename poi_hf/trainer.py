"""FERTrainer: the `transformers.Trainer` every method trains with (POI-R and the baselines alike). Methods differ by
their loss object (`POILoss`, `BaselineLoss`, `SCNLoss`, `RULLoss`, `EACLoss`), which also holds the method's schedules
and per-sample state; the trainer logs the loss terms, computes FER metrics, samples class-balanced on request and
exports standalone TRN (and PIN) checkpoints with model cards next to every checkpoint."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from accelerate.utils import gather
from datasets import Dataset
from torch import nn
from torch.nn import functional as F
from transformers import EvalPrediction, PreTrainedModel, Trainer, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import ModelOutput

from .baselines import (
    BaselineSettings,
    baseline_losses,
    class_activation_maps,
    eac_losses,
    random_erase,
    rul_losses,
    scn_relabel,
)
from .configuration_poi import POIConfig
from .cpu import cpu_has_native_bf16, to_channels_last
from .data import class_balanced_sampler
from .hub import export_submodel, model_card
from .losses import transfer_weight
from .metrics import classification_metrics, uncertainty_metrics
from .modeling_poi import POIModel

logger = logging.getLogger(__name__)


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
        probs = softmax(logits)
        pin_probs = softmax(pin[0]) if pin else None
        metrics = classification_metrics(probs, labels, true_distribution)
        metrics.update(
            uncertainty_metrics(np.asarray(confidence).reshape(-1), probs, labels, true_distribution, pin_probs)
        )
        if pin:
            pin_metrics = classification_metrics(pin_probs, labels, true_distribution)
            metrics.update({f"pin_{name}": value for name, value in pin_metrics.items()})
        metrics["confidence_mean"] = float(np.mean(confidence))
        return metrics

    return compute_metrics


def _default(name: str, default: Any) -> Any:
    """A `TrainingArguments` field with another default and the same help text."""
    return field(default=default, metadata={"help": TrainingArguments.__dataclass_fields__[name].metadata["help"]})


@dataclass
class POITrainingArguments(TrainingArguments):
    """TrainingArguments with defaults for image FER (the bare command trains a real model on CPU in minutes)."""

    output_dir: str | None = _default("output_dir", "outputs/poi-synfer")
    num_train_epochs: float = _default("num_train_epochs", 8.0)
    per_device_train_batch_size: int = _default("per_device_train_batch_size", 64)
    per_device_eval_batch_size: int = _default("per_device_eval_batch_size", 128)
    learning_rate: float = _default("learning_rate", 2e-3)
    weight_decay: float = _default("weight_decay", 5e-4)
    lr_scheduler_type: str = _default("lr_scheduler_type", "cosine")
    warmup_steps: float = _default("warmup_steps", 0.05)
    eval_strategy: str = _default("eval_strategy", "epoch")
    save_strategy: str = _default("save_strategy", "epoch")
    save_total_limit: int | None = _default("save_total_limit", 2)
    logging_steps: float = _default("logging_steps", 10)
    remove_unused_columns: bool = _default("remove_unused_columns", False)
    report_to: str | None = _default("report_to", "none")
    seed: int = _default("seed", 42)

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


class FERLoss(nn.Module):
    """How a method turns a batch into its loss. A module, so that what it holds (e.g. a teacher) moves to the
    training device with it.

    ``forward(model, inputs, epoch)`` returns ``(loss, outputs, terms)``: the loss (a per-batch mean), the model's
    outputs (the Trainer keeps them as evaluation predictions) and the terms to log (their means over each logging
    interval); ``epoch`` is the fractional epoch, which a resumed run restores. ``schedule(epoch)`` gives the values
    of the method's schedules, logged with every training log.
    """

    def forward(
        self, model: nn.Module, inputs: Mapping[str, torch.Tensor], epoch: float
    ) -> tuple[torch.Tensor, ModelOutput, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def schedule(self, epoch: float) -> dict[str, float]:
        return {}


class POILoss(FERLoss):
    """POI-R's joint loss, which `POIModel.forward` computes from the labels. The transfer weight ``beta(e)`` ramps up
    with the epoch (`poi_hf.losses.transfer_weight`), which only the trainer knows, so it is a forward argument."""

    def __init__(self, config: POIConfig):
        super().__init__()
        self.config = config

    def beta(self, epoch: float) -> float:
        config = self.config
        return transfer_weight(epoch, config.transfer_beta, config.transfer_ramp_epochs, config.use_dynamic_transfer)

    def schedule(self, epoch: float) -> dict[str, float]:
        return {"beta": round(self.beta(epoch), 5)}

    def forward(self, model, inputs, epoch):
        # Evaluation columns of the batch (clean_labels, true_distribution) are no model inputs.
        outputs = model(
            pixel_values=inputs["pixel_values"],
            landmarks=inputs.get("landmarks"),
            labels=inputs["labels"],
            soft_labels=inputs.get("soft_labels"),
            sample_index=inputs.get("sample_index"),  # PIN's held-out samples (PINConfig.reliability_holdout)
            beta=self.beta(epoch),
        )
        return outputs.loss, outputs, outputs.loss_terms


class BaselineLoss(FERLoss):
    """A baseline's loss (`poi_hf.baselines.baseline_losses`) on a `TRNForImageClassification`.

    Args:
        settings: which baseline and its hyperparameters.
        teacher: the frozen CE-trained model whose logits the ``kd`` baseline distils (``kd`` only).
    """

    def __init__(self, settings: BaselineSettings, teacher: PreTrainedModel | None = None):
        super().__init__()
        if settings.method == "kd" and teacher is None:
            raise ValueError("The kd baseline needs a teacher: a trained TRN (train.py: --teacher_path).")
        self.settings = settings
        self.teacher = teacher.eval().requires_grad_(False) if teacher is not None else None

    def warming_up(self, epoch: float) -> bool:
        """True during the plain-CE warm-up that SCN, RUL and EAC need from scratch (``baseline_warmup_epochs``)."""
        return epoch < self.settings.baseline_warmup_epochs

    def targets(self, inputs: Mapping[str, torch.Tensor], outputs: ModelOutput, epoch: float) -> torch.Tensor:
        """The (B,) labels a training batch learns from."""
        return inputs["labels"]

    def forward(self, model, inputs, epoch):
        outputs = model(pixel_values=inputs["pixel_values"])
        labels = self.targets(inputs, outputs, epoch) if model.training else inputs["labels"]
        teacher_logits = None
        if self.teacher is not None:
            with torch.no_grad():
                teacher_logits = self.teacher(pixel_values=inputs["pixel_values"]).logits
        warming_up = self.warming_up(epoch)
        terms = baseline_losses(
            self.settings, outputs.logits, outputs.head_confidence, labels, teacher_logits, warming_up
        )
        terms["alpha_mean"] = outputs.head_confidence.detach().float().mean()
        return terms.pop("loss"), outputs, terms


class SCNLoss(BaselineLoss):
    """SCN: its baseline loss on labels it relabels as it trains (`poi_hf.baselines.scn_relabel`, from
    ``settings.scn_relabel_epoch``). Relabelling changes the training labels for good, so the loss keeps every
    training sample's current label, looked up by the batch's ``sample_index``: ``train_dataset`` needs an ``index``
    column of row numbers (`examples/train.py` adds it). Logs the share of relabelled samples as ``relabelled``.
    """

    def __init__(
        self, settings: BaselineSettings, train_dataset: Dataset | None, teacher: PreTrainedModel | None = None
    ):
        super().__init__(settings, teacher)
        if train_dataset is None or "index" not in train_dataset.column_names:
            columns = None if train_dataset is None else train_dataset.column_names
            raise ValueError(
                "SCN relabelling needs a training dataset with an 'index' column of row numbers (as examples/train.py "
                f"adds with add_column('index', range(len(train)))); got columns {columns}."
            )
        self.label_table = torch.tensor(list(train_dataset.with_format(None)["label"]), dtype=torch.long)
        self.original_labels = self.label_table.clone()

    def targets(self, inputs, outputs, epoch):
        index = inputs["sample_index"]
        labels = self.label_table.to(inputs["labels"].device)[index]
        if epoch >= self.settings.scn_relabel_epoch:
            attended = (outputs.head_confidence[:, None] * outputs.logits).detach().softmax(-1)
            relabelled = scn_relabel(attended, labels, self.settings.scn_relabel_margin)
            # Relabelled samples from every process, so all ranks keep the same table.
            self.label_table[gather(index).cpu()] = gather(relabelled).cpu()
        return labels

    def forward(self, model, inputs, epoch):
        loss, outputs, terms = super().forward(model, inputs, epoch)
        terms["relabelled"] = (self.label_table != self.original_labels).float().mean()
        return loss, outputs, terms


class RULLoss(BaselineLoss):
    """RUL (`poi_hf.baselines.rul_losses`) on a `TRNForImageClassification`: a training batch is paired with a random
    permutation of itself and trained on the confidence-weighted mixtures (the TRN's confidence head is RUL's
    uncertainty branch). Evaluation batches, and training batches during the warm-up, are classified unmixed and
    score plain CE."""

    def forward(self, model, inputs, epoch):
        outputs = model(pixel_values=inputs["pixel_values"])
        labels = inputs["labels"]
        if model.training and not self.warming_up(epoch):
            partner = torch.randperm(len(labels), device=labels.device)
            terms = rul_losses(outputs.logits, outputs.head_confidence, labels, partner)
        else:
            terms = {"loss": F.cross_entropy(outputs.logits.float(), labels)}
        terms["alpha_mean"] = outputs.head_confidence.detach().float().mean()
        return terms.pop("loss"), outputs, terms


class EACLoss(BaselineLoss):
    """EAC (`poi_hf.baselines.eac_losses`) on a `TRNForImageClassification`: a training batch is randomly erased
    (``eac_erase_prob``), and the erased images and their horizontal flips run as one batch of 2B with the last feature
    map; the class activation maps use the classifier's weight detached, so that the consistency shapes the features
    rather than shrinking the classifier. Evaluation batches, and training batches during the warm-up, are classified
    as they are and score plain CE.

    The weight is read from the unwrapped model (DDP's ``module``) outside its forward, where FSDP holds only a shard
    of it: EAC is not for FSDP runs.
    """

    def forward(self, model, inputs, epoch):
        labels = inputs["labels"]
        if not model.training or self.warming_up(epoch):
            outputs = model(pixel_values=inputs["pixel_values"])
            return F.cross_entropy(outputs.logits.float(), labels), outputs, {}
        settings, batch = self.settings, len(labels)
        area = (settings.eac_erase_area_min, settings.eac_erase_area_max)
        erased = random_erase(inputs["pixel_values"], settings.eac_erase_prob, area)
        both = model(pixel_values=torch.cat([erased, erased.flip(-1)]), output_feature_map=True)
        weight = getattr(model, "module", model).classifier.weight.detach()
        cams = class_activation_maps(both.feature_map, weight)
        terms = eac_losses(settings, both.logits[:batch], labels, cams[:batch], cams[batch:])
        outputs = type(both)(**{name: value[:batch] for name, value in both.items()})  # the erased images' outputs
        return terms.pop("loss"), outputs, terms


class FERTrainer(Trainer):
    """Trains any FER method: ``loss`` (a `FERLoss`) computes each batch's loss; the trainer logs the mean of every
    term it returns over each logging interval, with the loss's schedules. The loss is a per-batch mean, so the
    Trainer divides it by the gradient accumulation steps itself (``loss_is_scaled_for_ga = False``).

    Every checkpoint (and `export`) gets standalone exports with model cards: ``trn/``, and ``pin/`` for a
    `POIModel`.

    Args:
        loss: the method's loss.
        balanced_sampling: draw training samples with class-balanced weights (AffectNet's imbalance).
        card_info: ``dataset_name``, ``dataset_id``, ``repo_id``, ``hyperparameters`` and ``eval_split`` (the split
            that ``eval_dataset`` is, named in checkpoint cards; default "validation") for the model cards.
        Everything else goes to `transformers.Trainer`; pass the image processor as ``processing_class``.
    """

    loss_is_scaled_for_ga = False

    def __init__(
        self,
        *args,
        loss: FERLoss,
        balanced_sampling: bool = False,
        card_info: Mapping[str, Any] | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if self.args.channels_last:
            to_channels_last(self.model)  # convolutions then keep activations channels_last too
        self.loss = loss.to(self.args.device)
        self.balanced_sampling = balanced_sampling
        self.card_info = dict(card_info or {})
        self._term_sums: dict[str, torch.Tensor] = {}
        self._term_steps = 0

    def _get_train_sampler(self, train_dataset=None):
        if self.balanced_sampling:
            return class_balanced_sampler(train_dataset if train_dataset is not None else self.train_dataset)
        return super()._get_train_sampler(train_dataset)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, outputs, terms = self.loss(model, inputs, self.state.epoch or 0.0)
        if model.training:
            for name, value in terms.items():
                self._term_sums[name] = self._term_sums.get(name, 0.0) + value.detach()
            self._term_steps += 1
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._term_steps:  # a training log: add the mean of every term since the last one
            for name, total in self._term_sums.items():
                logs[name] = round(float(total) / self._term_steps, 5)
            logs.update(self.loss.schedule(self.state.epoch or 0.0))
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
        model = self.accelerator.unwrap_model(self.model)
        if isinstance(model, POIModel):
            return [("trn", model.trn, "trn."), ("pin", model.pin, "pin.")]
        return [("trn", model, "")]

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


class POITrainer(FERTrainer):
    """`FERTrainer` with POI-R's loss (`POILoss`), for a `POIModel` (PIN + TRN)."""

    def __init__(self, model: POIModel, args: TrainingArguments | None = None, **kwargs):
        super().__init__(model, args, loss=POILoss(model.config), **kwargs)


class BaselineTrainer(FERTrainer):
    """`FERTrainer` with a baseline's loss, for a `TRNForImageClassification`: `SCNLoss` for ``scn`` (``train_dataset``
    then needs an ``index`` column), `RULLoss` for ``rul``, `EACLoss` for ``eac``, else `BaselineLoss`.

    Args:
        baseline: which baseline and its hyperparameters.
        teacher: the frozen CE-trained model whose logits the ``kd`` baseline distils.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        args: TrainingArguments | None = None,
        *,
        baseline: BaselineSettings,
        teacher: PreTrainedModel | None = None,
        train_dataset: Dataset | None = None,
        **kwargs,
    ):
        if baseline.method == "scn":
            loss = SCNLoss(baseline, train_dataset, teacher)
        elif baseline.method == "rul":
            loss = RULLoss(baseline)
        elif baseline.method == "eac":
            loss = EACLoss(baseline)
        else:
            loss = BaselineLoss(baseline, teacher)
        super().__init__(model, args, train_dataset=train_dataset, loss=loss, **kwargs)
