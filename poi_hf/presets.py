"""Named model sizes: ``paper`` (ResNet-18, 112 px; GPUs and real data), ``cpu`` (narrow, 64 px; the bare main job
on a machine without a GPU) and ``tiny`` (widths 8-16, 48 px; tests).

DESIGN.md §9 has the measured costs behind these choices (2-core CPU: ResNet-18 at 112 px trains ~21 img/s, the
narrow 64 px network ~215 img/s).
"""

from typing import Sequence

from transformers import ResNetConfig

from .image_processing_poi import POIImageProcessor
from .pin import PINConfig
from .priors import BASIC_CLASS_NAMES, check_class_names, landmark_template
from .trn import TRNConfig
from .trn.configuration_trn import RESNET18_KWARGS

PRESETS: dict[str, dict] = {
    "paper": {
        "image_size": 112,
        "backbone": RESNET18_KWARGS,
        "pin": {"branch_channels": 64, "embedding_size": 128, "region_crop_size": 7},
        "trn": {"uncertainty_hidden_size": 128},
    },
    "cpu": {
        "image_size": 64,
        "backbone": {**RESNET18_KWARGS, "hidden_sizes": [32, 64, 128, 256], "embedding_size": 32},
        "pin": {"branch_channels": 48, "embedding_size": 64, "region_crop_size": 5},
        "trn": {"uncertainty_hidden_size": 64},
    },
    "tiny": {
        "image_size": 48,
        "backbone": {**RESNET18_KWARGS, "hidden_sizes": [8, 8, 16, 16], "embedding_size": 8},
        "pin": {"branch_channels": 8, "embedding_size": 16, "region_crop_size": 3, "branch_blocks": 1},
        "trn": {"uncertainty_hidden_size": 16},
    },
}


def _preset(name: str) -> dict:
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}; choose one of {sorted(PRESETS)}.")
    return PRESETS[name]


def backbone_config(preset: str = "paper") -> ResNetConfig:
    """A BasicBlock ResNet (depths 2-2-2-2) of the preset's widths."""
    return ResNetConfig(**_preset(preset)["backbone"])


def _labels(class_names: Sequence[str]) -> dict:
    names = check_class_names(class_names)
    return {"id2label": dict(enumerate(names)), "label2id": {name: index for index, name in enumerate(names)}}


def trn_config(preset: str = "paper", class_names: Sequence[str] = BASIC_CLASS_NAMES, **overrides) -> TRNConfig:
    """TRN config of a named size for ``class_names`` (canonical names, the dataset's order)."""
    settings = _preset(preset)
    kwargs = {"image_size": settings["image_size"], **settings["trn"], **_labels(class_names), **overrides}
    return TRNConfig(backbone_config=backbone_config(preset), **kwargs)


def pin_config(preset: str = "paper", class_names: Sequence[str] = BASIC_CLASS_NAMES, **overrides) -> PINConfig:
    """PIN config of a named size for ``class_names``; prior tables come from `poi_hf.priors` by name."""
    settings = _preset(preset)
    kwargs = {"image_size": settings["image_size"], **settings["pin"], **_labels(class_names), **overrides}
    return PINConfig(backbone_config=backbone_config(preset), **kwargs)


def image_processor(image_size: int, crop_style: str = "arcface", grayscale: bool = False) -> POIImageProcessor:
    """The image processor that records a model's evaluation preprocessing: ``image_size`` px, ImageNet-standard
    mean/std, grayscale or not, and the crop template (``crop_style`` and its coordinates) faces are aligned to."""
    return POIImageProcessor(
        size={"height": image_size, "width": image_size},
        do_grayscale=grayscale,
        crop_style=crop_style,
        crop_template=landmark_template(crop_style),
    )


def tiny_trn_config(class_names: Sequence[str] = BASIC_CLASS_NAMES, **overrides) -> TRNConfig:
    """A few-thousand-parameter TRN config for tests."""
    return trn_config("tiny", class_names, **overrides)


def tiny_pin_config(class_names: Sequence[str] = BASIC_CLASS_NAMES, **overrides) -> PINConfig:
    """A small PIN config for tests."""
    return pin_config("tiny", class_names, **overrides)
