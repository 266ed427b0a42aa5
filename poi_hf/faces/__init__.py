"""Faces in the wild: image loading, detection with 5 landmarks, alignment to the training template."""

from .alignment import DEFAULT_CROP_SIZE, FaceCrop, align_face, crop_faces, similarity_transform, transform_points
from .drawing import annotate, face_color
from .detection import (
    Face,
    FaceDetector,
    HaarFaceDetector,
    NoFaceError,
    YuNetFaceDetector,
    load_face_detector,
    resolve_yunet_path,
)
from .images import MAX_IMAGE_SIDE, InvalidImageError, load_rgb_image

__all__ = [
    "DEFAULT_CROP_SIZE",
    "MAX_IMAGE_SIDE",
    "Face",
    "FaceCrop",
    "FaceDetector",
    "HaarFaceDetector",
    "InvalidImageError",
    "NoFaceError",
    "YuNetFaceDetector",
    "align_face",
    "annotate",
    "crop_faces",
    "face_color",
    "load_face_detector",
    "load_rgb_image",
    "resolve_yunet_path",
    "similarity_transform",
    "transform_points",
]
