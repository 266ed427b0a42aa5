"""Target Recognition Network (TRN): backbone -> emotion logits + per-sample label-trust ``confidence``.

The TRN is the model POI-R deploys: it runs on ``pixel_values`` alone, so `pipeline("image-classification")` works.
During joint training (`poi_hf.losses`) each sample's hard label and PIN's soft label are weighed by a label trust
``alpha``, by default PIN's support of the given label, which the uncertainty head learns to predict: the deployed
``confidence``. Standalone, ``labels`` give a plain cross-entropy.
"""

import inspect
import math
from dataclasses import dataclass
from typing import Unpack

import torch
from torch import nn
from torch.nn import functional as F
from transformers import AutoBackbone, PreTrainedModel
from transformers.utils import ModelOutput, TransformersKwargs, logging

from .configuration_trn import TRNConfig

logger = logging.get_logger(__name__)


@dataclass
class TRNOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*): cross-entropy on ``labels`` when they are given.
        logits (`torch.FloatTensor` of shape `(B, C)`): emotion logits; in eval mode divided by
            ``config.calibration_temperature``, and with ``config.mirror_average`` the log of the mean probabilities
            over the image and its mirror image.
        confidence (`torch.FloatTensor` of shape `(B,)`): the deployed per-image score in (0, 1), low where the
            prediction is likely wrong: ``head_confidence``, or in eval mode with ``config.confidence_source=
            "flip_consistency"`` the predicted class's mean probability on the image and its mirror image
            (docs/method.md measures both).
        pooler_output (`torch.FloatTensor` of shape `(B, D)`): pooled backbone features.
        head_confidence (`torch.FloatTensor` of shape `(B,)`): the uncertainty head's output in (0, 1), the score
            training fits and weighs with (POI-R: an estimate of how far PIN backs the predicted label; SCN, RUL: the
            sample weight).
        feature_map (`torch.FloatTensor` of shape `(B, D, h, w)`, *optional*): the backbone's last feature map, whose
            spatial mean is ``pooler_output``; only with ``output_feature_map=True`` (class activation maps, EAC).
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    confidence: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    head_confidence: torch.FloatTensor | None = None  # after the older fields, so tuple positions stay
    feature_map: torch.FloatTensor | None = None


def check_pixel_values(pixel_values: torch.Tensor, num_channels: int, image_size: int) -> None:
    """Raise a `ValueError` unless ``pixel_values`` is a non-empty floating-point (B, num_channels, H, W) tensor; warn
    once per size when H x W is not the ``image_size`` the model was trained on (the model runs at any size)."""
    if not pixel_values.is_floating_point():
        raise ValueError(
            f"pixel_values must be a floating-point tensor of normalised pixels, got {pixel_values.dtype}. Raw 0..255 "
            "images should go through the model's image processor, which rescales and normalises them."
        )
    if pixel_values.ndim != 4 or pixel_values.shape[1] != num_channels:
        raise ValueError(
            f"pixel_values must have shape (batch, {num_channels}, height, width), got {tuple(pixel_values.shape)}. "
            "Grayscale or RGBA images should go through the image processor, which converts them to RGB."
        )
    height, width = pixel_values.shape[2:]
    if height == 0 or width == 0:
        raise ValueError(f"pixel_values are empty ({height}x{width} pixels); expected {image_size}x{image_size}.")
    if (height, width) != (image_size, image_size):
        logger.warning_once(
            f"pixel_values are {height}x{width} but this model was trained on {image_size}x{image_size} images "
            "(config.image_size); predictions at other sizes are less reliable. Resize with the model's image "
            "processor."
        )


def check_labels(labels: torch.Tensor, num_labels: int) -> None:
    """Raise a `ValueError` unless ``labels`` are class indices in [0, num_labels)."""
    if labels.ndim != 1 or labels.dtype.is_floating_point:
        raise ValueError(
            f"labels must be a 1-D integer tensor of class indices, got {labels.dtype} {tuple(labels.shape)}."
        )
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_labels):
        bad = labels[(labels < 0) | (labels >= num_labels)].unique().tolist()
        raise ValueError(f"labels {bad} are outside the {num_labels} classes [0, {num_labels - 1}].")


def check_forward_kwargs(model: nn.Module, kwargs: dict) -> None:
    """Raise a `TypeError` for a keyword argument that ``model.forward`` neither names nor takes from transformers'
    common forward arguments (`TransformersKwargs`, e.g. the Trainer's ``num_items_in_batch``; accepted and unused),
    so that a typo such as ``landmark=`` fails instead of being ignored."""
    unknown = sorted(set(kwargs) - set(TransformersKwargs.__annotations__))
    if unknown:
        named = [name for name in inspect.signature(model.forward).parameters if name != "kwargs"]
        raise TypeError(
            f"{type(model).__name__}.forward() got unexpected keyword argument(s) {unknown}; it takes {named} and "
            f"transformers' {sorted(TransformersKwargs.__annotations__)}."
        )


class TRNPreTrainedModel(PreTrainedModel):
    config: TRNConfig
    config_class = TRNConfig
    base_model_prefix = "trn"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    # The loss is a per-batch mean: the Trainer passes no num_items_in_batch and divides the loss by the gradient
    # accumulation steps itself.
    accepts_loss_kwargs = False


class TRNForImageClassification(TRNPreTrainedModel):
    """Backbone -> global average pool -> (classifier, uncertainty MLP)."""

    def __init__(self, config: TRNConfig):
        super().__init__(config)
        self.backbone = AutoBackbone.from_config(config.backbone_config)
        feature_size = self.backbone.channels[-1]
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(feature_size, config.num_labels)
        self.uncertainty_head = nn.Sequential(
            nn.Linear(feature_size, config.uncertainty_hidden_size),
            nn.ReLU(),
            nn.Linear(config.uncertainty_hidden_size, 1),
        )
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_feature_map: bool = False,
        return_dict: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> TRNOutput | tuple:
        """
        Args:
            pixel_values: (B, 3, H, W) normalised images.
            labels: (B,) class indices, optional.
            output_feature_map: also return the last feature map (``feature_map``). The classifier is linear on its
                spatial mean, so ``classifier.weight @ feature_map`` at each position is the class activation map
                whose mean plus ``classifier.bias`` is ``logits`` (without dropout).
            return_dict: return a `TRNOutput` (default: ``config.return_dict``) or a tuple.
            kwargs: transformers' common forward arguments (e.g. the Trainer's ``num_items_in_batch``), accepted and
                unused; any other name raises a `TypeError`.

        Returns:
            `TRNOutput` with ``logits`` (B, C), ``confidence`` (B,), ``head_confidence`` (B,), ``pooler_output``
            (B, D), ``loss`` when ``labels`` are given, ``feature_map`` (B, D, h, w) when ``output_feature_map``.
        """
        check_forward_kwargs(self, kwargs)
        check_pixel_values(pixel_values, self.config.num_channels, self.config.image_size)
        pixel_values = pixel_values.to(self.dtype)  # e.g. float64 arrays, or a half-precision model
        flip_confidence = self.config.confidence_source == "flip_consistency"
        mirrored = not self.training and (flip_confidence or self.config.mirror_average)
        batch_size = pixel_values.shape[0]
        if mirrored:  # one backbone pass over the images and their mirror images
            pixel_values = torch.cat([pixel_values, pixel_values.flip(-1)])
        feature_map = self.backbone(pixel_values).feature_maps[-1]
        pooled = feature_map.mean(dim=(2, 3))
        logits = self.classifier(self.dropout(pooled))
        if not self.training and self.config.calibration_temperature != 1.0:
            logits = logits / self.config.calibration_temperature
        if mirrored:  # sliced, not chunked, so an ONNX export keeps its dynamic batch axis
            view_log_probs = torch.stack([logits[:batch_size], logits[batch_size:]]).float().log_softmax(-1)
            feature_map, pooled, logits = feature_map[:batch_size], pooled[:batch_size], logits[:batch_size]
            if self.config.mirror_average:  # log of the views' mean probabilities
                logits = (view_log_probs.logsumexp(0) - math.log(2.0)).to(logits.dtype)
        head_input = pooled.detach() if self.config.uncertainty_head_detached else pooled
        confidence_logit = self.uncertainty_head(head_input).squeeze(-1)
        if self.config.confidence_from_softmax:
            top_probability = logits.detach().float().softmax(-1).amax(-1).clamp(1e-6, 1 - 1e-6)
            top_logit = top_probability.log() - (-top_probability).log1p()  # logit, written out for ONNX export
            confidence_logit = confidence_logit + top_logit.to(confidence_logit.dtype)
        head_confidence = torch.sigmoid(confidence_logit)
        confidence = head_confidence
        if mirrored and flip_confidence:  # the views' mean probability of the predicted class
            predicted = logits.argmax(-1, keepdim=True).expand(2, -1, -1)  # (2, B, 1)
            confidence = view_log_probs.gather(2, predicted).exp().mean(0).squeeze(1).to(head_confidence.dtype)

        loss = None
        if labels is not None:
            check_labels(labels, self.config.num_labels)
            loss = F.cross_entropy(logits, labels)

        output = TRNOutput(
            loss=loss,
            logits=logits,
            confidence=confidence,
            head_confidence=head_confidence,
            pooler_output=pooled,
            feature_map=feature_map if output_feature_map else None,
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()


__all__ = ["TRNForImageClassification", "TRNOutput", "TRNPreTrainedModel"]
