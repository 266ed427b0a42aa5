"""Load torchvision-format ResNet weights (e.g. the MS-Celeb-1M ResNet-18/50 that FER papers start from) into a
transformers `ResNetBackbone`, with an explicit key map and a report of what did not match."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Mapping

import torch
from torch import nn

# torchvision name (after stripping a "module." prefix) -> transformers ResNetBackbone name
_STEM = {"conv1.": "embedder.embedder.convolution.", "bn1.": "embedder.embedder.normalization."}
_BLOCK = re.compile(r"^layer(\d)\.(\d+)\.(conv|bn)(\d)\.(.+)$")
_DOWNSAMPLE = re.compile(r"^layer(\d)\.(\d+)\.downsample\.([01])\.(.+)$")
_CLASSIFIER = re.compile(r"^(fc|classifier|head)\.")


@dataclass
class LoadReport:
    """What a weight load did: tensors loaded, backbone tensors left at their init, source tensors not used."""

    loaded: int = 0
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    skipped_classifier: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.loaded} tensors loaded, {len(self.missing)} missing {self.missing[:5]}, "
            f"{len(self.unexpected)} unexpected {self.unexpected[:5]}, classifier skipped {self.skipped_classifier}"
        )


def torchvision_to_transformers_key(key: str) -> str | None:
    """Map one torchvision ResNet key to its transformers `ResNetBackbone` key (None for unknown keys).

    ``layer2.0.conv1.weight`` -> ``encoder.stages.1.layers.0.layer.0.convolution.weight``;
    ``layer2.0.downsample.1.running_mean`` -> ``encoder.stages.1.layers.0.shortcut.normalization.running_mean``.
    """
    for prefix, target in _STEM.items():
        if key.startswith(prefix):
            return target + key[len(prefix) :]
    if match := _BLOCK.match(key):
        stage, block, kind, index, rest = match.groups()
        module = "convolution" if kind == "conv" else "normalization"
        return f"encoder.stages.{int(stage) - 1}.layers.{block}.layer.{int(index) - 1}.{module}.{rest}"
    if match := _DOWNSAMPLE.match(key):
        stage, block, index, rest = match.groups()
        module = "convolution" if index == "0" else "normalization"
        return f"encoder.stages.{int(stage) - 1}.layers.{block}.shortcut.{module}.{rest}"
    return None


def read_state_dict(source: str | os.PathLike | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A plain state dict from a file (``torch.load(weights_only=True)``) or mapping; unwraps ``{"state_dict": ...}``
    and strips DataParallel's ``module.`` prefix."""
    state = (
        torch.load(source, map_location="cpu", weights_only=True) if isinstance(source, (str, os.PathLike)) else source
    )
    if "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    return {key.removeprefix("module."): value for key, value in state.items() if isinstance(value, torch.Tensor)}


def load_torchvision_resnet(
    backbone: nn.Module, source: str | os.PathLike | Mapping[str, torch.Tensor], strict: bool = False
) -> LoadReport:
    """Copy torchvision-layout ResNet weights into a transformers ``ResNetBackbone``.

    Args:
        backbone: a `transformers.ResNetBackbone` of the same depth/width as the source network.
        source: path of a ``.pth``/``.pt`` file or a state dict; plain, ``module.``-prefixed, or under ``state_dict``.
        strict: raise a `ValueError` when any backbone tensor stays missing or a source tensor is unused.

    Returns:
        A `LoadReport`. Shape mismatches always raise a `ValueError` naming the key.
    """
    source_state = read_state_dict(source)
    target_state = backbone.state_dict()
    report, mapped = LoadReport(), {}
    for key, value in source_state.items():
        if _CLASSIFIER.match(key):
            report.skipped_classifier.append(key)
            continue
        target = torchvision_to_transformers_key(key)
        if target is None or target not in target_state:
            report.unexpected.append(key)
            continue
        if target_state[target].shape != value.shape:
            raise ValueError(
                f"{key} has shape {tuple(value.shape)} but the backbone's {target} is "
                f"{tuple(target_state[target].shape)}: the checkpoint is a different ResNet."
            )
        mapped[target] = value
    report.loaded = len(mapped)
    report.missing = sorted(set(target_state) - set(mapped))
    if strict and (report.missing or report.unexpected):
        raise ValueError(f"Weights do not cover the backbone: {report}")
    if not mapped:
        raise ValueError(f"No tensor of {source!r} matched a torchvision ResNet key; is it a ResNet checkpoint?")
    backbone.load_state_dict(mapped, strict=False)
    return report
