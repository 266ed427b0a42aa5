"""The joint POI-R model: PIN and TRN side by side for training; the TRN alone is what gets deployed."""

from dataclasses import dataclass
from typing import Unpack

import torch
from transformers import PreTrainedModel
from transformers.utils import ModelOutput, TransformersKwargs

from .configuration_poi import POIConfig
from .losses import anchor_transition, joint_losses
from .pin import PINForImageClassification
from .trn import TRNForImageClassification
from .trn.modeling_trn import check_forward_kwargs, check_labels


@dataclass
class POIOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*): the joint POI-R loss, when ``labels`` are given.
        logits (`torch.FloatTensor` of shape `(B, C)`): TRN logits (the deployed prediction).
        confidence (`torch.FloatTensor` of shape `(B,)`): the TRN's deployed ``confidence`` (`TRNOutput`).
        pin_logits (`torch.FloatTensor` of shape `(B, C)`): log of PIN's soft label.
        pin_soft_labels (`torch.FloatTensor` of shape `(B, C)`): PIN's aggregated soft label ``s``.
        pin_member_logits (`torch.FloatTensor` of shape `(B, M, C)`): PIN's members (`PINConfig.member_names`).
        pin_au_logits (`torch.FloatTensor` of shape `(B, K, A)`): PIN region AU logits.
        head_confidence (`torch.FloatTensor` of shape `(B,)`): the TRN's uncertainty head, which the loss fits (by
            default to PIN's support of the TRN's prediction, `POIConfig.confidence_target`).
        loss_terms (`dict[str, torch.FloatTensor]`, *optional*): with ``labels``, the weighted terms of ``loss`` and
            the detached statistics that `poi_hf.losses.joint_losses` returns (without the total), for logging.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    confidence: torch.FloatTensor | None = None
    pin_logits: torch.FloatTensor | None = None
    pin_soft_labels: torch.FloatTensor | None = None
    pin_member_logits: torch.FloatTensor | None = None
    pin_au_logits: torch.FloatTensor | None = None
    head_confidence: torch.FloatTensor | None = None  # after the older fields, so tuple positions stay
    loss_terms: dict[str, torch.FloatTensor] | None = None


class POIModel(PreTrainedModel):
    """PIN + TRN on the same batch; with ``labels`` also the joint POI-R loss (the pattern of transformers'
    `VisionEncoderDecoderModel`). The transfer weight ``beta(e)`` depends on the epoch, so the caller passes it
    (`poi_hf.trainer.POILoss` does, from the trainer's state)."""

    config: POIConfig
    config_class = POIConfig
    base_model_prefix = "poi"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    accepts_loss_kwargs = False

    def __init__(
        self,
        config: POIConfig,
        pin: PINForImageClassification | None = None,
        trn: TRNForImageClassification | None = None,
    ):
        super().__init__(config)
        self.pin = pin if pin is not None else PINForImageClassification(config.pin_config)
        self.trn = trn if trn is not None else TRNForImageClassification(config.trn_config)
        # Running accuracies of PIN's soft label and of the TRN on the held-out training faces, starting at chance
        # (transfer_schedule="pin_lead"; saved only there, so other checkpoints keep their keys).
        self.register_buffer(
            "heldout_accuracy",
            torch.full((2,), 1.0 / config.num_labels),
            persistent=config.transfer_schedule == "pin_lead",
        )
        # Running estimate of the label noise's transition matrix from PIN's anchors, starting at "no noise"
        # (label_trust="noise_aware"; saved only there).
        self.register_buffer(
            "noise_transition", torch.eye(config.num_labels), persistent=config.label_trust == "noise_aware"
        )
        self.post_init()

    @torch.no_grad()
    def update_heldout_accuracy(self, output: "POIOutput", labels: torch.Tensor, held_out: torch.Tensor) -> None:
        """Move the running accuracies of PIN's soft label and the TRN toward this batch's on ``held_out`` (B,) bool
        (with the PIN's ``reliability_momentum``); a batch without held-out samples leaves them as they are."""
        if not bool(held_out.any()):
            return
        predictions = torch.stack([output.pin_soft_labels.argmax(-1), output.logits.argmax(-1)])[:, held_out]
        correct = (predictions == labels[held_out]).float().mean(1)
        self.heldout_accuracy.lerp_(correct, 1.0 - self.config.pin_config.reliability_momentum)

    @torch.no_grad()
    def update_noise_transition(self, pin_soft_labels: torch.Tensor) -> None:
        """Move `noise_transition` toward this batch's anchor estimate (`poi_hf.losses.anchor_transition` of PIN's
        soft labels (B, C)), with ``config.transition_momentum``. Call in training."""
        batch_estimate = anchor_transition(pin_soft_labels)
        self.noise_transition.lerp_(batch_estimate.to(self.noise_transition), 1.0 - self.config.transition_momentum)

    def pin_lead(self) -> torch.Tensor:
        """``min(1, rho)``, ``rho = (a_PIN - 1/C) / (a_TRN - 1/C)`` from `heldout_accuracy` (a scalar tensor): 0 while
        PIN is at chance, 1 while it is at least as far above chance as the TRN."""
        excess = (self.heldout_accuracy - 1.0 / self.config.num_labels).clamp_min(0.0)
        return (excess[0] / excess[1].clamp_min(1e-3)).clamp(max=1.0)

    def forward(
        self,
        pixel_values: torch.Tensor,
        landmarks: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        soft_labels: torch.Tensor | None = None,
        sample_index: torch.Tensor | None = None,
        beta: float | None = None,
        return_dict: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> POIOutput | tuple:
        """
        Args:
            pixel_values: (B, 3, H, W).
            landmarks: (B, 5, 2) in [0, 1]; ignored when ``config.use_landmarks`` is off (template ablation).
            labels: (B,) hard (possibly noisy) class indices; when given, ``loss`` and ``loss_terms`` are computed.
            soft_labels: (B, C) the dataset's annotation distribution (e.g. FERPlus votes), used instead of
                ``labels`` as the CE target; not PIN's soft label.
            sample_index: (B,) the samples' row numbers in the training set; needed in training when PIN keeps
                samples out to measure its members (`PINConfig.reliability_holdout`).
            beta: the transfer weight ``beta(e)`` of this step (`poi_hf.losses.transfer_weight`); default
                ``config.transfer_beta``, its value once the ramp is over. With ``transfer_schedule="pin_lead"`` it is
                multiplied by `pin_lead` (``loss_terms["transfer_weight"]`` is the weight used).
            return_dict: return a `POIOutput` (default: ``config.return_dict``) or a tuple.
            kwargs: transformers' common forward arguments (e.g. the Trainer's ``num_items_in_batch``), accepted and
                unused; any other name (e.g. ``landmark=``) raises a `TypeError`.
        """
        check_forward_kwargs(self, kwargs)
        pin = self.pin(pixel_values, landmarks=landmarks if self.config.use_landmarks else None)
        trn = self.trn(pixel_values)
        output = POIOutput(
            logits=trn.logits,
            confidence=trn.confidence,
            head_confidence=trn.head_confidence,
            pin_logits=pin.logits,
            pin_soft_labels=pin.soft_labels,
            pin_member_logits=pin.member_logits,
            pin_au_logits=pin.au_logits,
        )
        if labels is not None:
            check_labels(labels, self.config.num_labels)
            held_out = self.pin.measure_members(output.pin_member_logits, labels, sample_index)
            beta = self.config.transfer_beta if beta is None else beta
            # in training, the held-out faces of pin_lead / correctness train neither network (only the detached head)
            trn_supervised = ~held_out if held_out is not None and self.config.trn_holds_out else None
            if self.config.transfer_schedule == "pin_lead":
                if held_out is not None:
                    self.update_heldout_accuracy(output, labels, held_out)
                beta = beta * float(self.pin_lead())
            if self.config.label_trust == "noise_aware" and self.training:
                self.update_noise_transition(output.pin_soft_labels)
            # The loss math stays float32 under bf16/fp16 autocast (the Trainer's mixed precision wraps forward).
            with torch.autocast(pixel_values.device.type, enabled=False):
                terms = joint_losses(
                    self.config,
                    output,
                    labels,
                    self.pin.priors.au_prior,
                    self.pin.priors.region_aus,
                    beta,
                    soft_labels,
                    self.pin.member_reliability() if self.config.mutual_target == "reliable_peers" else None,
                    None if held_out is None else ~held_out,
                    trn_supervised,
                    self.noise_transition,
                )
            output = POIOutput(loss=terms.pop("loss"), loss_terms=terms, **output)  # fields in declared order
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()


__all__ = ["POIModel", "POIOutput"]
