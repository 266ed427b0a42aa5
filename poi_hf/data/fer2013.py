"""FER2013 (Goodfellow et al., ICML 2013 challenge) in either of its two published layouts.

1. The ICML CSV, ``fer2013.csv``: header ``emotion,pixels,Usage``; ``emotion`` 0..6 (:data:`FER2013_CLASSES`);
   ``pixels`` 2,304 space-separated ints, a 48 x 48 grayscale image in row-major order; ``Usage`` Training /
   PublicTest / PrivateTest.
2. The Kaggle image-folder release: ``train/<class>/*.jpg``, ``test/<class>/*.jpg`` and optionally
   ``validation/<class>/*.jpg``, class folders ``angry disgust fear happy neutral sad surprise``, 48 x 48 grayscale
   files named ``Training_<id>.jpg``, ``PublicTest_<id>.jpg`` or ``PrivateTest_<id>.jpg``.

Both map to the ICML splits train (Training, 28,709) / validation (PublicTest, 3,589, for model selection) /
test (PrivateTest, 3,589, reported once). In the folder layout a file's name prefix decides its split, so a
``test/`` folder that holds both PublicTest and PrivateTest files is split the way the literature does.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass

import numpy as np
from datasets import DatasetDict
from PIL import Image as PILImage

from ._common import (
    BadRows,
    DatasetFormatError,
    ImageCheck,
    RowError,
    build_dataset_dict,
    check_header,
    check_image,
    fer_features,
    open_text,
    parse_int,
)

FER2013_CLASSES: tuple[str, ...] = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
FER2013_HEADER: tuple[str, ...] = ("emotion", "pixels", "Usage")
USAGE_TO_SPLIT: dict[str, str] = {"Training": "train", "PublicTest": "validation", "PrivateTest": "test"}
IMAGE_SIZE = 48
# Kaggle release: class folder -> canonical name; split folders it may have; file-name prefix -> split.
FOLDER_CLASSES: dict[str, str] = {
    "angry": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happiness",
    "sad": "sadness",
    "surprise": "surprise",
    "neutral": "neutral",
}
SPLIT_FOLDERS: tuple[str, ...] = ("train", "validation", "test")
PREFIX_TO_SPLIT: dict[str, str] = {f"{usage}_": split for usage, split in USAGE_TO_SPLIT.items()}
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png")


@dataclass
class FER2013Row:
    emotion: int
    image: PILImage.Image
    split: str


def parse_pixels(text: str) -> PILImage.Image:
    """2,304 space-separated ints in 0..255 -> a 48 x 48 grayscale (mode "L") PIL image."""
    try:
        values = np.array(text.split(), dtype=np.int64)
    except ValueError:
        raise RowError("pixels are not all integers") from None
    if values.size != IMAGE_SIZE * IMAGE_SIZE:
        raise RowError(f"{values.size} pixel values, expected {IMAGE_SIZE * IMAGE_SIZE}")
    if values.min() < 0 or values.max() > 255:
        raise RowError("pixel values outside 0..255")
    return PILImage.fromarray(values.reshape(IMAGE_SIZE, IMAGE_SIZE).astype(np.uint8))


def read_fer2013(path: str | os.PathLike, skip_bad: bool = False) -> list[FER2013Row | None]:
    """All data rows of ``fer2013.csv`` in file order; a skipped bad row is ``None`` so that row indices stay
    aligned with FERPlus's ``fer2013new.csv``."""
    rows: list[FER2013Row | None] = []
    bad = BadRows(path, skip_bad)
    with open_text(path) as handle:
        reader = csv.reader(handle)
        check_header(path, next(reader, []), FER2013_HEADER)
        for fields in reader:
            rows.append(None)
            with bad.at(reader.line_num):
                if len(fields) != len(FER2013_HEADER):
                    raise RowError(f"{len(fields)} fields, expected {len(FER2013_HEADER)}")
                emotion, pixels, usage = fields
                if usage not in USAGE_TO_SPLIT:
                    raise RowError(f"Usage {usage!r} is not one of {sorted(USAGE_TO_SPLIT)}")
                label = parse_int(emotion, "emotion", 0, len(FER2013_CLASSES) - 1)
                rows[-1] = FER2013Row(label, parse_pixels(pixels), USAGE_TO_SPLIT[usage])
    bad.report()
    return rows


def load_fer2013(
    data_dir: str | os.PathLike,
    *,
    csv_name: str = "fer2013.csv",
    skip_bad: bool = False,
    check_images: ImageCheck = "full",
) -> DatasetDict:
    """Load FER2013 as a :class:`DatasetDict`: ``train``, ``validation`` (PublicTest), ``test`` (PrivateTest).

    ``data_dir`` holds ``csv_name`` (the ICML CSV) or the Kaggle folders ``train/`` and ``test/`` (see the module
    docstring); the CSV wins when both are there.

    Args:
        check_images: folder layout only: how far every image is checked now (see :func:`check_image`).

    Returns:
        columns ``image`` (48 x 48, mode "L"; the transforms make it RGB) and ``label`` (7 classes,
        :data:`FER2013_CLASSES` order).
    """
    data_dir = str(data_dir)
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"FER2013 folder {data_dir!r} does not exist.")
    if not os.path.isfile(os.path.join(data_dir, csv_name)):
        if os.path.isdir(os.path.join(data_dir, "train")):
            return load_fer2013_folders(data_dir, skip_bad=skip_bad, check_images=check_images)
        raise DatasetFormatError(
            f"{data_dir}: neither {csv_name} (the ICML CSV) nor a train/ folder (the Kaggle image-folder release: "
            f"train/ and test/ with class folders {sorted(FOLDER_CLASSES)}); found {sorted(os.listdir(data_dir))}"
        )
    splits = {split: {"image": [], "label": []} for split in USAGE_TO_SPLIT.values()}
    for row in read_fer2013(os.path.join(data_dir, csv_name), skip_bad):
        if row is not None:
            splits[row.split]["image"].append(row.image)
            splits[row.split]["label"].append(row.emotion)
    return build_dataset_dict(splits, fer_features(FER2013_CLASSES))


def _split_of(name: str, folder: str) -> str:
    """The ICML split of a file: its name prefix where it has one, else the folder it sits in."""
    for prefix, split in PREFIX_TO_SPLIT.items():
        if name.startswith(prefix):
            return split
    return folder


def load_fer2013_folders(
    data_dir: str | os.PathLike, *, skip_bad: bool = False, check_images: ImageCheck = "full"
) -> DatasetDict:
    """The Kaggle image-folder release (``train/``, ``test/``, optional ``validation/``) as ICML splits.

    Files go to the split their name prefix says (``PublicTest_*`` -> validation, ``PrivateTest_*`` -> test);
    unprefixed files to the split of their folder. A bad image raises an error naming it, or with
    ``skip_bad=True`` is logged and left out.
    """
    data_dir = str(data_dir)
    present = [folder for folder in SPLIT_FOLDERS if os.path.isdir(os.path.join(data_dir, folder))]
    for required in ("train", "test"):
        if required not in present:
            raise DatasetFormatError(
                f"{data_dir}: no {required}/ folder; the Kaggle FER2013 layout has train/ and test/ (and optionally "
                f"validation/), each with class folders {sorted(FOLDER_CLASSES)}"
            )
    index_of = {folder: FER2013_CLASSES.index(name) for folder, name in FOLDER_CLASSES.items()}
    splits = {split: {"image": [], "label": []} for split in USAGE_TO_SPLIT.values()}
    for folder in present:
        root = os.path.join(data_dir, folder)
        classes = sorted(entry.name for entry in os.scandir(root) if entry.is_dir())
        unknown = [name for name in classes if name.lower() not in index_of]
        missing = sorted(set(index_of) - {name.lower() for name in classes})
        if unknown or missing:
            raise DatasetFormatError(
                f"{root}: class folders {classes}; expected {sorted(index_of)}"
                + (f" (unknown: {unknown})" if unknown else "")
                + (f" (missing: {missing})" if missing else "")
            )
        bad = BadRows(root, skip_bad)
        for class_folder in classes:
            label = index_of[class_folder.lower()]
            for entry in sorted(os.scandir(os.path.join(root, class_folder)), key=lambda e: e.name):
                if not entry.name.lower().endswith(IMAGE_SUFFIXES):
                    continue
                with bad.at(None):
                    check_image(entry.path, check_images)
                    split = _split_of(entry.name, folder)
                    splits[split]["image"].append(entry.path)
                    splits[split]["label"].append(label)
        bad.report()
    for split in ("train", "test"):
        if not splits[split]["label"]:
            raise DatasetFormatError(f"{data_dir}: no {split} images found in the class folders")
    return build_dataset_dict(splits, fer_features(FER2013_CLASSES))
