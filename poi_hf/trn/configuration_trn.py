"""Configuration of the Target Recognition Network (TRN), the deployed POI-R classifier."""

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

RESNET18_KWARGS = {
    "layer_type": "basic",
    "depths": [2, 2, 2, 2],
    "hidden_sizes": [64, 128, 256, 512],
    "embedding_size": 64,
}

# Copied from poi_hf.pin.configuration_pin.CLASS_NAMES
CLASS_NAMES: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
)

CONFIDENCE_SOURCES = ("head", "flip_consistency")


def check_backbone_channels(config: PreTrainedConfig) -> None:
    """Raise a `ValueError` unless ``config.backbone_config`` takes the ``config.num_channels`` input channels."""
    if config.backbone_config.num_channels != config.num_channels:
        raise ValueError(
            f"backbone_config.num_channels={config.backbone_config.num_channels} but {type(config).__name__}."
            f"num_channels={config.num_channels}; they must agree."
        )


class TRNConfig(PreTrainedConfig):
    r"""
    Configuration of [`TRNForImageClassification`]: a backbone, a linear classifier and an uncertainty head.

    Args:
        backbone_config (`dict` or `PreTrainedConfig`, *optional*):
            Any transformers backbone config; defaults to a ResNet-18-shaped `ResNetConfig`. Its last stage feeds
            the heads (``out_features`` is set to the last stage).
        image_size (`int`, defaults to 112): side of the square face crop the model was trained on.
        num_channels (`int`, defaults to 3): channels of ``pixel_values``; anything else raises a `ValueError`.
        classifier_dropout (`float`, defaults to 0.0): dropout before the classifier.
        uncertainty_hidden_size (`int`, defaults to 128): width of the uncertainty MLP that outputs ``confidence``.
        confidence_trained (`bool`, defaults to `True`): whether training fitted the uncertainty head (POI-R, SCN,
            RUL). A baseline that leaves it untrained (CE, label smoothing, KD, EAC) saves `False`, and the pipelines
            then report no ``confidence``.
        confidence_from_softmax (`bool`, defaults to `False`): the uncertainty head outputs a logit offset on the
            TRN's own top probability, ``confidence = sigmoid(head(h) + logit(max_c softmax(logits)_c))`` (the
            probability detached), so ``confidence`` starts as the free max-softmax score and training moves it only
            where the head has learned something (POI-R: where PIN backs the TRN's prediction more or less). `False`:
            ``confidence = sigmoid(head(h))``, scored from scratch.
        confidence_source (`str`, defaults to `"head"`): what the model outputs as ``confidence`` at inference (in
            eval mode; training always sees the head's score, ``head_confidence``). `"head"`: the uncertainty head's
            score. `"flip_consistency"`: the mean of the softmax probability of the predicted class on the image and
            on its mirror image, ``(p(x)[y] + p(flip(x))[y]) / 2`` with ``y = argmax logits(x)``: one more backbone
            pass on the mirrored batch, and low where the model's answer does not survive the mirror (it ranks the
            model's errors better than its max softmax probability; docs/method.md measures it). ``logits`` are the
            unmirrored image's unless ``mirror_average``.
        mirror_average (`bool`, defaults to `False`): in eval mode, predict from the image and its mirror image
            together: ``logits`` are ``log((softmax(z(x)) + softmax(z(flip(x)))) / 2)``, the log of the two views' mean
            probabilities (softmax of them gives that mean), from the same extra backbone pass the flip consistency
            uses. With ``confidence_source="flip_consistency"`` the confidence is then the mean probability of the
            averaged prediction, its top probability. Training never mirrors (the augmentation already flips).
        calibration_temperature (`float`, defaults to 1.0): in eval mode the classifier's logits are divided by it
            before any softmax (of each view when ``mirror_average``), so probabilities, ``score`` and the flip
            ``confidence`` are calibrated; ``> 1`` softens over-confident models. `examples/train.py` fits it on the
            validation split after training (`poi_hf.calibration.fit_temperature`). Training never uses it.
        uncertainty_head_detached (`bool`, defaults to `False`): the uncertainty head reads the pooled features
            detached, so its loss trains the head alone, never the backbone the classifier shares (POI-R's
            ``confidence_target="correctness"`` fits it on faces the TRN must not learn from).

    Class names live in ``id2label`` / ``label2id`` (canonical lowercase emotion names in the training data's order).
    """

    model_type = "poi_trn"
    keys_to_ignore_at_inference = ["head_confidence", "pooler_output", "feature_map"]
    sub_configs_defaults = {
        "backbone_config": SubConfigSpec(config_class=AutoConfig, model_type="resnet", init_kwargs=RESNET18_KWARGS),
    }

    backbone_config: dict | PreTrainedConfig | None = None
    image_size: int = 112
    num_channels: int = 3
    classifier_dropout: float = 0.0
    uncertainty_hidden_size: int = 128
    confidence_trained: bool = True
    confidence_from_softmax: bool = False
    confidence_source: str = "head"
    mirror_average: bool = False
    calibration_temperature: float = 1.0
    uncertainty_head_detached: bool = False

    def __post_init__(self, **kwargs):
        if self.id2label is None and kwargs.get("num_labels") is None:
            # The seven basic emotions (poi_hf.priors.BASIC_CLASS_NAMES), canonical names as in PIN's defaults.
            self.id2label = dict(enumerate(CLASS_NAMES[:7]))
        super().__post_init__(**kwargs)
        if self.label2id is None:
            self.label2id = {name: index for index, name in self.id2label.items()}
        last_stage = self.backbone_config.stage_names[-1]
        self.backbone_config.set_output_features_output_indices(out_features=[last_stage], out_indices=None)
        check_backbone_channels(self)
        if self.confidence_source not in CONFIDENCE_SOURCES:
            raise ValueError(
                f"confidence_source={self.confidence_source!r}; expected one of {list(CONFIDENCE_SOURCES)}."
            )
        if not self.calibration_temperature > 0:
            raise ValueError(f"calibration_temperature={self.calibration_temperature!r}; it must be > 0.")


__all__ = ["CONFIDENCE_SOURCES", "TRNConfig"]
