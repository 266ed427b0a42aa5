"""Does ``pipeline("facial-expression-recognition")`` reproduce training-time evaluation? tests/test_pipeline_parity.py
over several seeds, and with YuNet instead of the known faces.

    OMP_NUM_THREADS=1 python benchmarks/pipeline_parity.py   # writes benchmarks/results/pipeline_parity.json

Per seed (other faces, other initial weights), a tiny TRN is trained on SynFER (3 classes, default difficulty) as
examples/train.py trains, and its test images are scored (1) through the evaluation transform built from the
image processor it saves, (2) through the pipeline on full photos (`render_photo`) with the known landmarks and the
processor's template, (3) the same with the ArcFace template, with ImageNet's mean/std instead of the processor's, or
with grey input, (4) through the pipeline with its own detector, YuNet: how many faces it finds, how far its landmarks
are from the true ones (mean point error over the inter-ocular distance), and the accuracies on the faces it found.
``agreement``: share of images whose top class equals the evaluation transform's; ``distance``: mean L1 distance to
its class distribution.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import pipeline

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_pipeline_parity import (  # noqa: E402  (the test's own measurement)
    CLASSES,
    NUM_TEST,
    NUM_TRAIN,
    UPSCALE,
    KnownFaces,
    best_faces,
    compare,
    evaluation_probabilities,
    photos,
    probabilities,
    synfer,
    train_tiny_trn,
)

from poi_hf import POIImageProcessor  # noqa: E402
from poi_hf.data import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402
from poi_hf.pipelines import TASK  # noqa: E402


def landmark_errors(faces: list[dict | None], truth: np.ndarray) -> np.ndarray:
    """Per found face: mean distance of its 5 landmarks to the true ones (N, 5, 2), over the true inter-ocular
    distance."""
    found = [index for index, face in enumerate(faces) if face is not None]
    detected = np.array([faces[index]["landmarks"] for index in found])
    true = truth[found]
    return np.linalg.norm(detected - true, axis=2).mean(1) / np.linalg.norm(true[:, 0] - true[:, 1], axis=1)


def measure(seed: int, num_test: int, work_dir: Path) -> dict:
    dataset = synfer(work_dir / "synfer", seed, num_test)
    start = time.perf_counter()
    checkpoint = train_tiny_trn(dataset, work_dir / f"seed{seed}", seed)
    result = {"seed": seed, "train_s": round(time.perf_counter() - start, 1)}

    known = KnownFaces()
    fer = pipeline(TASK, model=str(checkpoint), pin_model=False, face_detector=known)
    test = dataset["test"]
    labels = np.asarray(test.with_format(None)["label"])
    reference = evaluation_probabilities(fer.model, test)
    names = list(fer.model.config.id2label.values())
    result["evaluation_transform_accuracy"] = compare(reference, reference, labels)["accuracy"]

    def run(name: str, known_or_none: KnownFaces | None, **settings) -> list[dict | None]:
        fer = pipeline(TASK, model=str(checkpoint), pin_model=False, **settings)
        start = time.perf_counter()
        faces = best_faces(fer, photos(test, known_or_none))
        result[name] = {**compare(probabilities(faces, names), reference, labels),
                        "seconds": round(time.perf_counter() - start, 1)}
        return faces

    run("pipeline", known, face_detector=known)  # registers every photo's face with `known`
    run("arcface_template", None, face_detector=known, crop_style="arcface")
    # What the test's distance bound catches: a processor that lost the mean/std or the colour mode.
    for name, change in (("imagenet_mean_std", {"image_mean": IMAGENET_MEAN, "image_std": IMAGENET_STD}),
                         ("grayscale", {"do_grayscale": True})):
        run(name, None, face_detector=known, image_processor=POIImageProcessor.from_pretrained(checkpoint, **change))
    faces = run("yunet", None, face_detector="yunet")
    found = np.array([face is not None for face in faces])
    errors = landmark_errors(faces, np.stack([face.landmarks for face in known.faces.values()]))
    result["yunet"].update(
        found=float(found.mean()),
        landmark_error_median=float(np.median(errors)),
        landmark_error_mean=float(errors.mean()),
        evaluation_transform_accuracy_on_found=compare(reference[found], reference[found], labels[found])["accuracy"],
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--num_test", type=int, default=NUM_TEST)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "pipeline_parity.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work_dir:
        runs = [measure(seed, args.num_test, Path(work_dir)) for seed in args.seeds]
    for run in runs:
        print(json.dumps(run))
    results = {
        "setup": {"classes": CLASSES, "num_train": NUM_TRAIN, "num_test": args.num_test, "upscale": UPSCALE,
                  "torch": torch.__version__, "threads": torch.get_num_threads()},
        "runs": runs,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
