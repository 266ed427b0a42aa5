"""Training augmentation and evaluation preprocessing for FER images with 5-point landmarks, in PIL + torch.

All geometric operations of an example (face-box crop, random resized crop, rotation, scale, translation,
horizontal flip) are composed into ONE affine map, so the image is resampled once (one PIL ``transform`` call)
and the landmarks are moved by exactly the same map. Photometric operations (colour jitter, random grayscale,
random erasing) then run on the tensor. No torchvision.

Apply them lazily per split::

    dataset["train"].set_transform(FERTrainTransform(image_size=112, crop_style="rafdb"))
    dataset["test"].set_transform(FEREvalTransform(image_size=112, crop_style="rafdb"))

Randomness comes from torch's global generator, which a ``DataLoader`` seeds differently in each worker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from datasets import DatasetDict
from PIL import Image as PILImage

from ..image_processing_poi import POIImageProcessor, to_8bit
from ..priors import landmark_template

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
FLIP_ORDER: tuple[int, ...] = (1, 0, 2, 4, 3)  # a mirrored face's left eye / mouth corner is the old right one
LUMA = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)

# Optional input columns copied to the output: name in the dataset -> (name in the batch, dtype).
PASSTHROUGH: dict[str, tuple[str, torch.dtype]] = {
    "soft_labels": ("soft_labels", torch.float32),
    "clean_label": ("clean_labels", torch.int64),
    "true_distribution": ("true_distribution", torch.float32),
    "index": ("sample_index", torch.int64),  # row number, for learners that keep per-sample state (SCN)
}


def _translate(x: float, y: float) -> np.ndarray:
    return np.array([[1.0, 0.0, x], [0.0, 1.0, y], [0.0, 0.0, 1.0]])


def _scale(x: float, y: float) -> np.ndarray:
    return np.diag([x, y, 1.0])


def _rotate(degrees: float) -> np.ndarray:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@dataclass
class FEREvalTransform:
    """Evaluation preprocessing: crop the face box (or take the whole image), resize, normalise.

    Input batch columns (as given by ``Dataset.set_transform``): ``image`` (PIL, any mode), ``label``, and optional
    ``landmarks`` (5 x 2 in [0, 1] of the image or face box), ``face_box`` (x, y, w, h pixels), ``soft_labels``,
    ``clean_label``, ``true_distribution``.

    Output per example: ``pixel_values`` float32 (3, S, S) normalised with ``mean`` / ``std``; ``labels`` int64;
    ``landmarks`` float32 (5, 2) in [0, 1] of the output image (the dataset's, else the ``crop_style`` template;
    augmentation can push a point slightly outside [0, 1]); and, when present, ``soft_labels`` (C,),
    ``clean_labels`` int64, ``true_distribution`` (C,).
    """

    image_size: int = 112
    mean: Sequence[float] = IMAGENET_MEAN
    std: Sequence[float] = IMAGENET_STD
    crop_style: str = "arcface"

    def __post_init__(self) -> None:
        self.template = np.array(landmark_template(self.crop_style), dtype=np.float64)
        self._mean = torch.tensor(self.mean, dtype=torch.float32).view(3, 1, 1)
        self._std = torch.tensor(self.std, dtype=torch.float32).view(3, 1, 1)

    def __call__(self, batch: dict[str, list]) -> dict[str, list[torch.Tensor]]:
        output: dict[str, list[torch.Tensor]] = {"pixel_values": [], "labels": [], "landmarks": []}
        for i, image in enumerate(batch["image"]):
            landmarks = batch["landmarks"][i] if "landmarks" in batch else self.template
            box = batch["face_box"][i] if "face_box" in batch else (0.0, 0.0, image.width, image.height)
            pixels, landmarks = self.transform(image, landmarks, box)
            output["pixel_values"].append(pixels)
            output["landmarks"].append(landmarks)
            output["labels"].append(torch.tensor(batch["label"][i], dtype=torch.int64))
        for column, (name, dtype) in PASSTHROUGH.items():
            if column in batch:
                output[name] = [torch.tensor(value, dtype=dtype) for value in batch[column]]
        return output

    def transform(
        self, image: PILImage.Image, landmarks: Any, box: Sequence[float]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One example: PIL image, (5, 2) landmarks in [0, 1] of ``box`` -> ((3, S, S) pixels, (5, 2) landmarks)."""
        size = self.image_size
        x, y, width, height = (float(value) for value in box)
        geometry, flip = self.sample_geometry()
        pixels = self._warp(image, _translate(x, y) @ _scale(width, height) @ geometry @ _scale(1 / size, 1 / size))
        points = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
        points = (np.c_[points, np.ones(5)] @ np.linalg.inv(geometry).T)[:, :2]
        if flip:
            points = points[list(FLIP_ORDER)]
        return self.normalise(self.photometric(pixels)), torch.from_numpy(points.astype(np.float32))

    def sample_geometry(self) -> tuple[np.ndarray, bool]:
        """A 3 x 3 map from [0, 1] output coordinates to [0, 1] box coordinates, and whether it mirrors.

        Evaluation maps the whole box onto the output.
        """
        return np.eye(3), False

    def photometric(self, pixels: torch.Tensor) -> torch.Tensor:
        """Colour changes on (3, S, S) pixels in [0, 1]; none at evaluation."""
        return pixels

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        return (pixels - self._mean) / self._std

    def _warp(self, image: PILImage.Image, to_source: np.ndarray) -> torch.Tensor:
        """Resample ``image`` through the output->source pixel map; returns float (3, S, S) in [0, 1]."""
        image = to_8bit(image)
        if image.mode not in ("L", "RGB"):
            image = image.convert("RGB")
        # Bilinear sampling does not low-pass filter: shrink by an integer factor first when downscaling > 2x.
        factor = int(math.sqrt(abs(np.linalg.det(to_source[:2, :2]))))
        if factor >= 2:
            image = image.reduce(factor)
            to_source = _scale(1.0 / factor, 1.0 / factor) @ to_source
        warped = image.transform(
            (self.image_size, self.image_size),
            PILImage.Transform.AFFINE,
            data=tuple(to_source[:2].ravel()),
            resample=PILImage.Resampling.BILINEAR,
            fillcolor=0,
        )
        array = torch.from_numpy(np.asarray(warped).copy())
        array = array.unsqueeze(0).expand(3, -1, -1) if array.ndim == 2 else array.permute(2, 0, 1)
        return array.float().div_(255.0)


@dataclass
class FERTrainTransform(FEREvalTransform):
    """Training augmentation; same inputs and outputs as :class:`FEREvalTransform`.

    Geometry (one affine per example): a random resized crop of the face box (``crop_scale`` of its area,
    aspect ``crop_ratio``), then rotation by up to ``rotation`` degrees, zoom by ``zoom``, translation by up to
    ``translate`` of the image size, and a horizontal flip with probability ``flip_p`` (which also swaps the
    left/right landmarks). Colour: brightness / contrast / saturation jitter, grayscale with ``grayscale_p``, and
    random erasing (``erase_p``, area fraction ``erase_scale``, aspect ``erase_ratio``; filled with the mean
    colour, i.e. 0 after normalisation). Hue jitter is left out: it costs an HSV round trip per image and
    matters little for faces.
    """

    crop_scale: tuple[float, float] = (0.8, 1.0)
    crop_ratio: tuple[float, float] = (0.9, 1.1)
    rotation: float = 15.0
    zoom: tuple[float, float] = (0.9, 1.1)
    translate: float = 0.05
    flip_p: float = 0.5
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    grayscale_p: float = 0.1
    erase_p: float = 0.5
    erase_scale: tuple[float, float] = (0.02, 0.25)
    erase_ratio: tuple[float, float] = (0.3, 3.3)

    def sample_geometry(self) -> tuple[np.ndarray, bool]:
        u = torch.rand(10).tolist()
        area = _uniform(u[0], self.crop_scale)
        ratio = math.exp(_uniform(u[1], [math.log(r) for r in self.crop_ratio]))
        crop_w, crop_h = min(1.0, math.sqrt(area * ratio)), min(1.0, math.sqrt(area / ratio))
        centre_x, centre_y = _uniform(u[2], (crop_w / 2, 1 - crop_w / 2)), _uniform(u[3], (crop_h / 2, 1 - crop_h / 2))
        angle = _uniform(u[4], (-self.rotation, self.rotation))
        zoom = _uniform(u[5], self.zoom)
        shift_x, shift_y = (_uniform(v, (-self.translate, self.translate)) for v in u[6:8])
        flip = u[8] < self.flip_p
        # Read right to left: output -> centred -> unmirrored -> unshifted -> unrotated -> unzoomed -> crop -> box.
        geometry = (
            _translate(centre_x, centre_y)
            @ _scale(crop_w, crop_h)
            @ _rotate(-angle)
            @ _scale(1 / zoom, 1 / zoom)
            @ _translate(-shift_x, -shift_y)
            @ _scale(-1.0 if flip else 1.0, 1.0)
            @ _translate(-0.5, -0.5)
        )
        return geometry, flip

    def photometric(self, pixels: torch.Tensor) -> torch.Tensor:
        brightness, contrast, saturation, gray, erase, area, log_ratio, top, left = torch.rand(9).tolist()
        pixels = pixels * _uniform(brightness, (1 - self.brightness, 1 + self.brightness))
        # Contrast blends with the mean grey level, saturation with the per-pixel grey level (as torchvision does).
        contrast = _uniform(contrast, (1 - self.contrast, 1 + self.contrast))
        pixels = _gray(pixels).mean() + contrast * (pixels - _gray(pixels).mean())
        saturation = _uniform(saturation, (1 - self.saturation, 1 + self.saturation))
        pixels = (_gray(pixels) + saturation * (pixels - _gray(pixels))).clamp_(0.0, 1.0)
        if gray < self.grayscale_p:
            pixels = _gray(pixels).expand(3, -1, -1)
        if erase < self.erase_p:
            size = self.image_size
            area = _uniform(area, self.erase_scale) * size * size
            ratio = math.exp(_uniform(log_ratio, [math.log(r) for r in self.erase_ratio]))
            height, width = min(size, round(math.sqrt(area * ratio))), min(size, round(math.sqrt(area / ratio)))
            top, left = int(top * (size - height + 1)), int(left * (size - width + 1))
            pixels = pixels.clone()
            pixels[:, top : top + height, left : left + width] = self._mean
        return pixels


def _gray(pixels: torch.Tensor) -> torch.Tensor:
    """(3, H, W) -> (1, H, W) luminance."""
    return (LUMA * pixels).sum(0, keepdim=True)


def _uniform(u: float, bounds: Sequence[float]) -> float:
    """Map ``u`` in [0, 1) to the interval ``bounds``."""
    return bounds[0] + u * (bounds[1] - bounds[0])


AUGMENTATIONS: dict[str, dict[str, Any]] = {
    "strong": {},  # FERTrainTransform's defaults: the usual in-the-wild FER recipe
    # Data that already varies pose, lighting and occlusion (SynFER): geometry jitter and flips only, so that small
    # expression cues (brows, lip corners) are not erased or rotated away at 48-64 px.
    "light": {"crop_scale": (0.9, 1.0), "rotation": 5.0, "zoom": (0.95, 1.05), "translate": 0.03, "brightness": 0.15,
              "contrast": 0.15, "saturation": 0.15, "grayscale_p": 0.0, "erase_p": 0.0},
    "none": {"crop_scale": (1.0, 1.0), "crop_ratio": (1.0, 1.0), "rotation": 0.0, "zoom": (1.0, 1.0), "translate": 0.0,
             "flip_p": 0.0, "brightness": 0.0, "contrast": 0.0, "saturation": 0.0, "grayscale_p": 0.0, "erase_p": 0.0},
}
"""Named training-augmentation strengths for :func:`set_fer_transforms` (``augmentation=``)."""


def processor_transform_settings(processor: POIImageProcessor) -> dict[str, Any]:
    """The transform settings a saved image processor records (``image_size``, ``mean``, ``std``, ``crop_style``), so
    training and evaluation preprocess as the exported model's processor does."""
    return {
        "image_size": processor.size["height"],
        "mean": tuple(processor.image_mean),
        "std": tuple(processor.image_std),
        "crop_style": processor.crop_style,
    }


def set_fer_transforms(
    dataset: DatasetDict, train_split: str = "train", augmentation: str = "strong", **kwargs: Any
) -> DatasetDict:
    """Set :class:`FERTrainTransform` on ``train_split`` and :class:`FEREvalTransform` on the other splits (lazily).

    ``augmentation`` names a preset of :data:`AUGMENTATIONS`; ``kwargs`` go to the transforms (``image_size``,
    ``mean``, ``std``, ``crop_style``; augmentation options, which override the preset, only to the training one).
    Modifies and returns ``dataset``.
    """
    if augmentation not in AUGMENTATIONS:
        raise ValueError(f"Unknown augmentation {augmentation!r}; choose one of {sorted(AUGMENTATIONS)}.")
    kwargs = {**AUGMENTATIONS[augmentation], **kwargs}
    eval_kwargs = {name: kwargs[name] for name in ("image_size", "mean", "std", "crop_style") if name in kwargs}
    for split, data in dataset.items():
        data.set_transform(FERTrainTransform(**kwargs) if split == train_split else FEREvalTransform(**eval_kwargs))
    return dataset
