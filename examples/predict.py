"""Facial expression recognition on photos: files, folders or globs -> JSON lines or CSV (one row per face).

    python examples/predict.py --model outputs/run/trn photos/ "more/*.jpg" --output faces.jsonl
    python examples/predict.py --model outputs/run/trn group.jpg --output faces.csv --annotate-dir annotated/

A ``pin/`` checkpoint next to the TRN one is used automatically for per-region contributions (``--no-pin`` skips
it). Images that cannot be read or have no face are reported in the output (``error`` field) and do not stop the run.
"""

import argparse
import contextlib
import csv
import glob
import json
import sys
from pathlib import Path

from tqdm.auto import tqdm
from transformers import pipeline

import poi_hf.pipelines  # noqa: F401  (registers "facial-expression-recognition")
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
            paths += [match for match in matches if match.is_file()]
        elif Path(item).is_dir():
            paths += [path for path in Path(item).rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES]
        elif Path(item).is_file():
            paths.append(Path(item))
        else:
            raise FileNotFoundError(f"{item!r} is neither a file, a folder nor a glob pattern that matches.")
    return sorted(set(paths))


def csv_rows(record: dict) -> list[dict]:
    """One flat row per face (one row with the error for an image without faces)."""
    if not record["faces"]:
        return [{"file": record["file"], "error": record["error"]}]
    rows = []
    for index, face in enumerate(record["faces"]):
        row = {"file": record["file"], "face": index, **face["box"], "detection_score": face["detection_score"],
               "label": face["label"], "score": face["score"], "confidence": face["confidence"], "error": None}
        row.update({f"p_{label}": probability for label, probability in face["distribution"].items()})
        row.update({f"region_{region['name']}": region["contribution"] for region in face.get("regions", [])})
        rows.append(row)
    return rows


def write_records(records: list[dict], output: str) -> None:
    """JSON lines (one image per line) to ``output`` or stdout (``"-"``), or CSV rows when it ends in ``.csv``."""
    with contextlib.nullcontext(sys.stdout) if output == "-" else open(output, "w", newline="") as stream:
        if output.endswith(".csv"):
            rows = [row for record in records for row in csv_rows(record)]
            writer = csv.DictWriter(stream, fieldnames=list(dict.fromkeys(key for row in rows for key in row)))
            writer.writeheader()
            writer.writerows(rows)
        else:
            stream.writelines(json.dumps(record) + "\n" for record in records)


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
    fer = pipeline("facial-expression-recognition", model=args.model, pin_model=False if args.no_pin else args.pin,
                   face_detector=args.detector, device=args.device, trust_remote_code=False)
    records = []
    for path in tqdm(paths, desc="images", unit="img", disable=None):
        record = {"file": str(path), "faces": [], "error": None}
        try:
            image = load_rgb_image(path)
            record["faces"] = fer(image, allow_no_face=True)
            record["error"] = None if record["faces"] else "no face found"
        except InvalidImageError as error:
            record["error"] = str(error)
        if args.annotate_dir and record["faces"]:
            args.annotate_dir.mkdir(parents=True, exist_ok=True)
            annotate(image, record["faces"]).save(args.annotate_dir / f"{path.stem}_fer.png")
        records.append(record)

    write_records(records, args.output)
    failed = sum(record["error"] is not None for record in records)
    print(f"{len(records)} images, {sum(len(r['faces']) for r in records)} faces, {failed} without a face or "
          f"unreadable.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
