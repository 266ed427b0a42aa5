"""Shared pieces of the dataset loaders: errors that name file and line, image checks, feature schemas."""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Iterator, Literal, Mapping, Sequence, TextIO

import numpy as np
from datasets import Array2D, ClassLabel, Dataset, DatasetDict, Features, Image, List, Value
from PIL import Image as PILImage

from ..priors import check_class_names

logger = logging.getLogger(__name__)

# 68-point (iBUG 300-W) indices of the 5 package landmarks; "left" = image left, so the image-left eye is the
# subject's right eye, points 36-41.
IBUG68_TO_5: tuple[Sequence[int], ...] = (range(36, 42), range(42, 48), (30,), (48,), (54,))


class DatasetFormatError(ValueError):
    """A dataset file does not have the published format. The message names the file and, where known, the line."""


class RowError(ValueError):
    """One record is unusable; :class:`BadRows` turns it into a :class:`DatasetFormatError` or a logged skip."""


class BadRows:
    """Collects bad records of one file: raise at the first one, or, with ``skip_bad=True``, log and count them.

    Usage::

        bad = BadRows("fer2013.csv", skip_bad)
        for line, row in enumerate(rows, start=2):
            with bad.at(line):
                ...  # parse; raise RowError("why") on a bad record; append only at the end of the block
        bad.report()
    """

    def __init__(self, path: str | os.PathLike, skip_bad: bool = False):
        self.path = str(path)
        self.skip_bad = skip_bad
        self.count = 0

    @contextlib.contextmanager
    def at(self, line: int | None) -> Iterator[None]:
        try:
            yield
        except RowError as error:
            where = self.path if line is None else f"{self.path}, line {line}"
            if not self.skip_bad:
                raise DatasetFormatError(f"{where}: {error} (pass skip_bad=True to skip bad records)") from error
            self.count += 1
            logger.warning("Skipping %s: %s", where, error)

    def report(self) -> int:
        """Log the number of skipped records and return it."""
        if self.count:
            logger.warning("Skipped %d bad record(s) of %s.", self.count, self.path)
        return self.count


def open_text(path: str | os.PathLike) -> TextIO:
    """Open a label file (csv or txt) for reading. "utf-8-sig" drops the byte-order mark that Windows tools write,
    which would otherwise stick to the first header field or image name; ``newline=""`` is what `csv` expects."""
    return open(path, newline="", encoding="utf-8-sig")


def check_header(path: str | os.PathLike, header: Sequence[str], expected: Sequence[str]) -> None:
    """Raise a :class:`DatasetFormatError` naming ``path`` unless ``header`` equals ``expected``."""
    if [name.strip() for name in header] != list(expected):
        raise DatasetFormatError(f"{path}, line 1: header {list(header)} is not the expected {list(expected)}")


def parse_int(text: str, what: str, low: int, high: int) -> int:
    """``int(text)`` checked to lie in ``[low, high]``; raises :class:`RowError` otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise RowError(f"{what} {text!r} is not an integer") from None
    if not low <= value <= high:
        raise RowError(f"{what} {value} is outside {low}..{high}")
    return value


ImageCheck = Literal["exists", "header", "full"]


def check_image(path: str | os.PathLike, level: ImageCheck = "full") -> None:
    """Raise :class:`RowError` if an image file is missing or, depending on ``level``, corrupt.

    ``"exists"`` only looks for the file; ``"header"`` also opens it (the format is recognised); ``"full"`` also
    decodes the pixels (JPEGs at 1/8 scale, which is cheap), so truncated files fail here rather than in a
    DataLoader worker mid-epoch.
    """
    if not os.path.isfile(path):
        raise RowError(f"missing image {path}")
    if level != "exists":
        image_size(path, decode=level == "full")


def image_size(path: str | os.PathLike, decode: bool = False) -> tuple[int, int]:
    """(width, height) of an image file from its header, after decoding it when ``decode``; :class:`RowError` if
    it cannot be read."""
    try:
        with PILImage.open(path) as image:
            size = image.size
            if decode:
                image.draft(image.mode, (max(1, size[0] // 8), max(1, size[1] // 8)))  # draft changes .size
                image.load()
            return size
    except (OSError, SyntaxError, ValueError, PILImage.DecompressionBombError) as error:
        raise RowError(f"corrupt image {path}: {error}") from None


def landmarks_68_to_5(points: np.ndarray) -> np.ndarray:
    """(68, 2) iBUG landmarks -> (5, 2): eye centres (mean of each eye's 6 points), nose tip, mouth corners."""
    return np.stack([points[list(indices)].mean(axis=0) for indices in IBUG68_TO_5]).astype(np.float32)


def fer_features(
    class_names: Sequence[str],
    *,
    landmarks: bool = False,
    face_box: bool = False,
    soft_labels: bool = False,
    votes: bool = False,
    extra: Mapping[str, object] | None = None,
) -> Features:
    """The feature schema shared by all loaders.

    Columns: ``image`` (Image), ``label`` (ClassLabel, native order), and optionally ``landmarks`` (5 x 2 float32 in
    [0, 1] of the image, or of ``face_box`` when present), ``face_box`` (x, y, width, height in pixels of the image:
    the face region the transforms crop), ``soft_labels`` (C float32), ``votes`` (C int32 annotator counts).
    """
    names = check_class_names(class_names)
    num_classes = len(names)
    features = {"image": Image(), "label": ClassLabel(names=names)}
    if landmarks:
        features["landmarks"] = Array2D((5, 2), "float32")
    if face_box:
        features["face_box"] = List(Value("float32"), length=4)
    if soft_labels:
        features["soft_labels"] = List(Value("float32"), length=num_classes)
    if votes:
        features["votes"] = List(Value("int32"), length=num_classes)
    features.update(extra or {})
    return Features(features)


def build_dataset_dict(splits: Mapping[str, Mapping[str, list]], features: Features) -> DatasetDict:
    """One in-memory :class:`Dataset` per split from column lists; empty splits are left out."""
    result = DatasetDict()
    for split, columns in splits.items():
        if columns["label"]:
            result[split] = Dataset.from_dict(dict(columns), features=features)
        else:
            logger.warning("Split %r has no examples and is left out.", split)
    if not result:
        raise DatasetFormatError(f"No usable examples in any split of {sorted(splits)}.")
    return result
