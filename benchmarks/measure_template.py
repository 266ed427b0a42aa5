"""Measure a dataset's 5-point crop template: run the package's YuNet detector on upscaled dataset images and take
robust statistics (the per-coordinate median) of the landmarks of every image with exactly one confident face.

FER2013 has no landmarks, and its 48 x 48 crops sit wider than the ArcFace target; the ``fer2013`` template in
``poi_hf.priors`` comes from this script:

    python benchmarks/measure_template.py --dataset fer2013 --data_dir /data/fer2013 --split train \
        --max_images 4000 --out benchmarks/results/template_fer2013.json

Writes the median template in [0, 1] coordinates of the crop, the interquartile range of every coordinate, the
detection rate, and (``--per_image``) per-image landmarks for the detected images.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from poi_hf.data import load_fer_dataset
from poi_hf.faces import load_face_detector
from poi_hf.priors import LANDMARK_NAMES


def measure(images, upscale: int = 4, score_threshold: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks (N, 5, 2) in [0, 1] of each image where YuNet finds exactly one face, and the mask of those."""
    detector = load_face_detector("yunet", score_threshold=score_threshold, min_face_size=8)
    points, found = [], []
    for image in images:
        size = image.width * upscale, image.height * upscale
        faces = detector(image.convert("RGB").resize(size, Image.Resampling.BICUBIC))
        found.append(len(faces) == 1)
        if len(faces) == 1:
            points.append(faces[0].landmarks / np.array(size, np.float32))
    return np.array(points, np.float32).reshape(-1, 5, 2), np.array(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="fer2013")
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--split", default="train")
    parser.add_argument("--max_images", type=int, default=4000)
    parser.add_argument("--upscale", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    data = load_fer_dataset(args.dataset, args.data_dir)[args.split]
    rows = np.random.default_rng(args.seed).permutation(len(data))[: args.max_images]
    points, found = measure((data[int(i)]["image"] for i in rows), args.upscale)
    # A horizontally mirrored face has the same template with left/right swapped: symmetrise about x = 0.5.
    mirrored = points[:, [1, 0, 2, 4, 3]] * np.array([-1.0, 1.0]) + np.array([1.0, 0.0])
    both = np.concatenate([points, mirrored])
    template = np.median(both, axis=0)
    q25, q75 = np.percentile(points, [25, 75], axis=0)
    result = {
        "dataset": args.dataset,
        "split": args.split,
        "images": int(len(rows)),
        "detected_one_face": int(found.sum()),
        "detection_rate": float(found.mean()),
        "upscale": args.upscale,
        "seed": args.seed,
        "landmark_names": list(LANDMARK_NAMES),
        "template": np.round(template, 4).tolist(),
        "iqr": np.round(q75 - q25, 4).tolist(),
        "inter_ocular_median": float(np.median(np.linalg.norm(points[:, 1] - points[:, 0], axis=-1))),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
