"""Facial expression recognition on photos: files, folders or globs -> JSON lines or CSV (one row per face).

    python examples/predict.py --model outputs/run/trn photos/ "more/*.jpg" --output faces.jsonl
    python examples/predict.py --model outputs/run/trn group.jpg --output faces.csv --annotate-dir annotated/

A ``pin/`` checkpoint next to the TRN one is used automatically for per-region contributions (``--no-pin`` skips
it). Each image's result is written (and flushed) as soon as it is done. Images that cannot be read (a broken link,
a damaged file) are reported on stderr and in the output (``error`` field) and do not stop the run; the exit status
is 1 when any image could not be read. A photo without a face gets an empty ``faces`` list (and a note on stderr). Annotated images mirror the inputs' folders below ``--annotate-dir``
(``a/face.jpg`` -> ``annotated/a/face.jpg.png``), so files with the same name do not overwrite each other.
"""

import argparse
import contextlib
import csv
import glob
import json
import os
import sys
from pathlib import Path
from typing import TextIO

from tqdm.auto import tqdm
from transformers import pipeline

from poi_hf.pipelines import FacialExpressionRecognitionPipeline  # importing it registers the task
from poi_hf.faces import InvalidImageError, annotate, load_rgb_image
from poi_hf.hub import check_model_folder

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files as given, folders searched recursively for images, glob patterns expanded; sorted, no duplicates."""
    paths: list[Path] = []
    for item in inputs:
        if glob.has_magic(item):
            matches = [Path(match) for match in glob.glob(item, recursive=True)]
            if not matches:
                raise FileNotFoundError(f"No file matches {item!r}.")
            paths += [match for match in matches if not match.is_dir()]
        elif Path(item).is_dir():
            paths += [path for path in Path(item).rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES]
        elif Path(item).is_file() or Path(item).is_symlink():  # a broken link is reported with the images
            paths.append(Path(item))
        else:
            raise FileNotFoundError(f"{item!r} is neither a file, a folder nor a glob pattern that matches.")
    return sorted(set(paths))


def csv_rows(record: dict) -> list[dict]:
    """One flat row per face, numbered from 1 as in the annotated images (one row for an image without faces)."""
    if not record["faces"]:
        return [{"file": record["file"], "error": record["error"]}]
    rows = []
    for number, face in enumerate(record["faces"], start=1):
        row = {"file": record["file"], "face": number, **face["box"], "detection_score": face["detection_score"],
               "label": face["label"], "score": face["score"], "confidence": face["confidence"], "error": None}
        row.update({f"p_{label}": probability for label, probability in face["distribution"].items()})
        row.update({f"region_{region['name']}": region["contribution"] for region in face.get("regions", [])})
        rows.append(row)
    return rows


def csv_fieldnames(fer: FacialExpressionRecognitionPipeline) -> list[str]:
    """Every column `csv_rows` can fill, known before the first image so rows can be written as they come."""
    id2label = fer.model.config.id2label
    regions = fer.pin_model.config.member_names if fer.pin_model is not None else []
    return ["file", "face", "xmin", "ymin", "xmax", "ymax", "detection_score", "label", "score", "confidence",
            "error", *(f"p_{id2label[i]}" for i in range(len(id2label))), *(f"region_{name}" for name in regions)]


class RecordWriter:
    """Writes each image's record as soon as it is done and flushes it, so an interrupted run keeps every finished
    image: a JSON line per image, or CSV rows (one per face) when given ``fieldnames``."""

    def __init__(self, stream: TextIO, fieldnames: list[str] | None = None):
        self.stream = stream
        self.csv = csv.DictWriter(stream, fieldnames) if fieldnames else None
        if self.csv:
            self.csv.writeheader()

    def write(self, record: dict) -> None:
        if self.csv:
            self.csv.writerows(csv_rows(record))
        else:
            self.stream.write(json.dumps(record) + "\n")
        self.stream.flush()


def open_outputs(output: str, annotate_dir: Path | None) -> contextlib.AbstractContextManager[TextIO]:
    """Open ``output`` (stdout for "-") and create ``annotate_dir`` before any model work, so a path that cannot be
    written fails at once rather than after inference."""
    try:
        if annotate_dir is not None:
            annotate_dir.mkdir(parents=True, exist_ok=True)
        return contextlib.nullcontext(sys.stdout) if output == "-" else open(output, "w", newline="")
    except OSError as error:
        raise OSError(
            f"Cannot write {error.filename!r}: {error.strerror}. --output must be a .jsonl or .csv file in an "
            "existing, writable folder ('-' for stdout) and --annotate-dir a folder that can be created; no image was "
            "processed."
        ) from error


def annotated_paths(paths: list[Path], annotate_dir: Path) -> dict[Path, Path]:
    """Where each image's annotated copy goes: its path below the inputs' common folder, under ``annotate_dir``, with
    ".png" appended, so ``a/face.jpg`` and ``b/face.jpg`` (or ``face.jpg`` and ``face.png``) stay apart."""
    absolute = [Path(os.path.abspath(path)) for path in paths]
    root = os.path.commonpath([path.parent for path in absolute]) if paths else ""
    return {path: annotate_dir / f"{full.relative_to(root)}.png" for path, full in zip(paths, absolute)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", help="image files, folders (searched recursively) or glob patterns")
    parser.add_argument("--model", required=True, help="TRN checkpoint folder or Hub id")
    parser.add_argument("--pin", default=None, help="PIN checkpoint (default: a sibling pin/ folder, if any)")
    parser.add_argument("--no-pin", action="store_true", help="do not load a PIN (no region contributions)")
    parser.add_argument("--output", default="-", help="*.jsonl or *.csv file; '-' prints JSON lines (default)")
    parser.add_argument("--annotate-dir", type=Path, help="also write annotated images (boxes, labels, α) here")
    parser.add_argument("--detector", default="auto", choices=["auto", "yunet", "haar"])
    parser.add_argument("--device", default="cpu")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    paths = expand_inputs(args.inputs)
    check_model_folder(args.model)  # the pipeline checks --pin itself
    targets = annotated_paths(paths, args.annotate_dir) if args.annotate_dir else {}
    with open_outputs(args.output, args.annotate_dir) as stream:
        fer = pipeline("facial-expression-recognition", model=args.model, pin_model=False if args.no_pin else args.pin,
                       face_detector=args.detector, device=args.device, trust_remote_code=False)
        writer = RecordWriter(stream, csv_fieldnames(fer) if args.output.endswith(".csv") else None)
        failed = faces = 0
        for path in tqdm(paths, desc="images", unit="img", disable=None):
            record = {"file": str(path), "faces": [], "error": None}
            try:
                image = load_rgb_image(path)
            except (InvalidImageError, OSError) as error:  # a broken link, a damaged or unreadable file
                record["error"] = str(error)
            else:
                record["faces"] = fer(image, allow_no_face=True)
                if not record["faces"]:  # an answer, not a failure: said on stderr, an empty list in the output
                    tqdm.write(f"{path}: no face found", file=sys.stderr)
            if record["faces"] and path in targets:
                targets[path].parent.mkdir(parents=True, exist_ok=True)
                annotate(image, record["faces"]).save(targets[path])
            writer.write(record)
            faces += len(record["faces"])
            if record["error"]:
                failed += 1
                tqdm.write(f"{path}: {record['error']}", file=sys.stderr)
    print(f"{len(paths)} images, {faces} faces, {failed} unreadable.", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
