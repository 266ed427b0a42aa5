"""Similarity alignment of detected faces to the canonical 5-point template used in training."""

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
from PIL import Image

from ..priors import landmark_template
from .detection import Face, FaceDetector
from .images import ImageInput, load_rgb_image

DEFAULT_CROP_SIZE = 112


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection) mapping ``source`` onto
    ``target`` (Umeyama, 1991).

    Args:
        source: (N, 2) points.
        target: (N, 2) points, N >= 2.

    Returns:
        (2, 3) float64 matrix ``M`` with ``target ≈ source @ M[:, :2].T + M[:, 2]``.
    """
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    if source.shape != target.shape or source.ndim != 2 or source.shape[1] != 2 or len(source) < 2:
        raise ValueError(f"Expected two (N>=2, 2) point sets of the same shape, got {source.shape} and {target.shape}.")
    source_mean, target_mean = source.mean(0), target.mean(0)
    source_centred, target_centred = source - source_mean, target - target_mean
    u, singular_values, vt = np.linalg.svd(target_centred.T @ source_centred / len(source))
    reflection = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rotation = u @ reflection @ vt
    scale = np.trace(np.diag(singular_values) @ reflection) / source_centred.var(0).sum()
    translation = target_mean - scale * rotation @ source_mean
    return np.hstack([scale * rotation, translation[:, None]])


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine ``matrix`` to (N, 2) ``points``."""
    return np.asarray(points, np.float64) @ matrix[:, :2].T + matrix[:, 2]


def warp_to_template(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Warp an (H, W, 3) uint8 ``image`` with ``matrix`` into a ``size``×``size`` crop.

    When the warp shrinks the face by more than 2×, the face region is first downscaled with area interpolation,
    so small crops from large photos are not aliased.
    """
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 0.5:
        corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64)
        inverse = cv2.invertAffineTransform(matrix)
        region = transform_points(corners, inverse)
        x0, y0 = np.clip(np.floor(region.min(0)).astype(int), 0, None)
        x1, y1 = np.ceil(region.max(0)).astype(int) + 1
        patch = image[y0:y1, x0:x1]
        if patch.size:
            image = cv2.resize(patch, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            matrix = np.hstack([matrix[:, :2] / scale, (matrix[:, 2] + matrix[:, :2] @ [x0, y0])[:, None]])
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


@dataclass
class FaceCrop:
    """An aligned face crop.

    Attributes:
        image: RGB `PIL.Image` of ``crop_size``×``crop_size``.
        landmarks: (5, 2) detected landmarks mapped into the crop, in pixels.
        face: the detection, in pixels of the input image.
        matrix: (2, 3) similarity transform from input-image pixels to crop pixels.
    """

    image: Image.Image
    landmarks: np.ndarray
    face: Face
    matrix: np.ndarray

    @property
    def normalized_landmarks(self) -> np.ndarray:
        """(5, 2) float32 landmarks in [0, 1] crop coordinates (the models' ``landmarks`` convention)."""
        return (self.landmarks / np.array(self.image.size, np.float64)).astype(np.float32)


def align_face(
    image: Image.Image | np.ndarray,
    face: Face,
    crop_size: int = DEFAULT_CROP_SIZE,
    crop_style: str | Sequence[Sequence[float]] = "arcface",
) -> FaceCrop:
    """Align one detected face of an RGB image to a 5-point template scaled to ``crop_size`` pixels: a
    ``crop_style`` name (see `poi_hf.priors.landmark_template`) or (5, 2) coordinates in [0, 1] (an image
    processor's ``crop_template``)."""
    points = landmark_template(crop_style) if isinstance(crop_style, str) else crop_style
    template = np.asarray(points, np.float64).reshape(5, 2) * crop_size
    matrix = similarity_transform(face.landmarks, template)
    crop = warp_to_template(np.asarray(image), matrix, crop_size)
    landmarks = transform_points(face.landmarks, matrix).astype(np.float32)
    return FaceCrop(image=Image.fromarray(crop), landmarks=landmarks, face=face, matrix=matrix)


def crop_faces(
    image: ImageInput,
    detector: FaceDetector,
    crop_size: int = DEFAULT_CROP_SIZE,
    crop_style: str | Sequence[Sequence[float]] = "arcface",
) -> list[FaceCrop]:
    """Detect and align every face of ``image`` (path, PIL image or array; see `load_rgb_image`).

    Coordinates in the returned `Face` objects refer to the loaded image, which is downscaled when its longer side
    exceeds `poi_hf.faces.images.MAX_IMAGE_SIDE`.
    """
    rgb = np.asarray(load_rgb_image(image))
    return [align_face(rgb, face, crop_size, crop_style) for face in detector(rgb)]
