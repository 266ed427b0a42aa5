"""The joint POI-R model: PIN and TRN side by side for training; the TRN alone is what gets deployed."""

from dataclasses import dataclass

import torch
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_poi import POIConfig
from .pin import PINForImageClassification
from .trn import TRNForImageClassification


@dataclass
class POIOutput(ModelOutput):
    """
    Args:
        logits (`torch.FloatTensor` of shape `(B, C)`): TRN logits (the deployed prediction).
        confidence (`torch.FloatTensor` of shape `(B,)`): TRN label-trust ``alpha``.
        pin_logits (`torch.FloatTensor` of shape `(B, C)`): log of PIN's soft label.
        pin_soft_labels (`torch.FloatTensor` of shape `(B, C)`): PIN's aggregated soft label ``s``.
        pin_member_logits (`torch.FloatTensor` of shape `(B, K + 1, C)`): PIN region branches, then global branch.
        pin_au_logits (`torch.FloatTensor` of shape `(B, K, A)`): PIN region AU logits.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    confidence: torch.FloatTensor | None = None
    pin_logits: torch.FloatTensor | None = None
    pin_soft_labels: torch.FloatTensor | None = None
    pin_member_logits: torch.FloatTensor | None = None
    pin_au_logits: torch.FloatTensor | None = None


class POIModel(PreTrainedModel):
    """PIN + TRN on the same batch. The loss lives in `poi_hf.losses` / `poi_hf.trainer.POITrainer`, which know
    the epoch for the transfer ramp; ``forward`` only runs both networks."""

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
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, landmarks: torch.Tensor | None = None, **kwargs) -> POIOutput:
        """
        Args:
            pixel_values: (B, 3, H, W).
            landmarks: (B, 5, 2) in [0, 1]; ignored when ``config.use_landmarks`` is off (template ablation).
        """
        pin = self.pin(pixel_values, landmarks=landmarks if self.config.use_landmarks else None)
        trn = self.trn(pixel_values)
        return POIOutput(
            logits=trn.logits,
            confidence=trn.confidence,
            pin_logits=pin.logits,
            pin_soft_labels=pin.soft_labels,
            pin_member_logits=torch.cat([pin.region_logits, pin.global_logits.unsqueeze(1)], dim=1),
            pin_au_logits=pin.au_logits,
        )


__all__ = ["POIModel", "POIOutput"]
