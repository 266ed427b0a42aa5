"""FER2013 (Goodfellow et al., ICML 2013 challenge), read from ``fer2013.csv`` as published on Kaggle.

``fer2013.csv``: header ``emotion,pixels,Usage``; ``emotion`` 0..6 (:data:`FER2013_CLASSES`); ``pixels`` 2,304
space-separated ints, a 48 x 48 grayscale image in row-major order; ``Usage`` Training / PublicTest / PrivateTest,
mapped to the splits train (28,709) / validation (3,589) / test (3,589).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass

import numpy as np
from datasets import DatasetDict
from PIL import Image as PILImage

from ._common import BadRows, RowError, build_dataset_dict, check_header, fer_features, parse_int

FER2013_CLASSES: tuple[str, ...] = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
FER2013_HEADER: tuple[str, ...] = ("emotion", "pixels", "Usage")
USAGE_TO_SPLIT: dict[str, str] = {"Training": "train", "PublicTest": "validation", "PrivateTest": "test"}
IMAGE_SIZE = 48


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
    with open(path, newline="", encoding="utf-8") as handle:
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


def load_fer2013(data_dir: str | os.PathLike, *, csv_name: str = "fer2013.csv", skip_bad: bool = False) -> DatasetDict:
    """Load FER2013 as a :class:`DatasetDict`: ``train``, ``validation`` (PublicTest), ``test`` (PrivateTest).

    Returns:
        columns ``image`` (48 x 48, mode "L"; the transforms make it RGB) and ``label`` (7 classes,
        :data:`FER2013_CLASSES` order).
    """
    splits = {split: {"image": [], "label": []} for split in USAGE_TO_SPLIT.values()}
    for row in read_fer2013(os.path.join(data_dir, csv_name), skip_bad):
        if row is not None:
            splits[row.split]["image"].append(row.image)
            splits[row.split]["label"].append(row.emotion)
    return build_dataset_dict(splits, fer_features(FER2013_CLASSES))
