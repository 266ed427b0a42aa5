"""AffectNet (Mollahosseini et al., IEEE TAC 2017), manually annotated part, in either published release.

* CSV release (the official download): ``Manually_Annotated_file_lists/training.csv`` and ``validation.csv``
  (or the two files directly in ``data_dir``) with columns ``subDirectory_filePath,face_x,face_y,face_width,
  face_height,facial_landmarks,expression,valence,arousal``; the download's ``validation.csv`` has no header row.
  Images under ``Manually_Annotated_Images/<subDirectory_filePath>`` or
  ``Manually_Annotated/Manually_Annotated_Images/<subDirectory_filePath>``; ``facial_landmarks`` is 136
  ``;``-separated floats (68 points x, y in image pixels). The face box is kept in ``face_box`` and cropped by the
  transforms.
* Per-image release: ``train_set/images/<id>.jpg`` with ``train_set/annotations/<id>_exp.npy`` (expression) and
  ``<id>_lnd.npy`` (68 points, pixels of the face crop), and the same under ``val_set/``.

``expression`` 0..10 = neutral, happiness, sadness, surprise, fear, disgust, anger, contempt, none, uncertain,
non-face: the first 7 or 8 are kept. The official validation set serves as the test set (split ``test``), as in
the FER literature. Classes are heavily imbalanced: see :func:`poi_hf.data.class_balanced_sampler`.
"""

from __future__ import annotations

import csv
import glob
import itertools
import logging
import os
from typing import Literal

import numpy as np
from datasets import DatasetDict

from ._common import (
    BadRows,
    DatasetFormatError,
    ImageCheck,
    RowError,
    build_dataset_dict,
    check_header,
    check_image,
    fer_features,
    image_size,
    landmarks_68_to_5,
    open_text,
    parse_int,
)

logger = logging.getLogger(__name__)

AFFECTNET_CLASSES: tuple[str, ...] = (
    "neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger", "contempt",
)
NUM_EXPRESSIONS = 11  # the 8 emotions + none, uncertain, non-face
CSV_HEADER: tuple[str, ...] = (
    "subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
    "facial_landmarks", "expression", "valence", "arousal",
)
CSV_SPLITS = {"train": "training.csv", "test": "validation.csv"}
NPY_SPLITS = {"train": "train_set", "test": "val_set"}
LIST_FOLDER = "Manually_Annotated_file_lists"
IMAGE_FOLDERS: tuple[str, ...] = (
    "Manually_Annotated_Images", os.path.join("Manually_Annotated", "Manually_Annotated_Images"),
)
LAYOUTS = (
    f"looked for {LIST_FOLDER}/training.csv and validation.csv (the official download) or the two files directly "
    f"in the folder, with the images in {' or '.join(name + '/' for name in IMAGE_FOLDERS)}; or the per-image "
    f"release train_set/ and val_set/ with images/<id>.jpg and annotations/<id>_exp.npy"
)


def _parse_landmarks(values: np.ndarray, box: tuple[float, float, float, float]) -> list[list[float]]:
    """136 floats (68 x, y pixels) -> 5 points in [0, 1] coordinates of ``box`` = (x, y, width, height)."""
    if values.size != 136:
        raise RowError(f"{values.size} landmark values, expected 136 (68 points)")
    x, y, width, height = box
    points = landmarks_68_to_5(values.reshape(68, 2))
    return ((points - np.array([x, y])) / np.array([width, height])).tolist()


class _Columns(dict):
    """Column lists of one split; a row is appended only once it fully parsed."""

    def __init__(self, with_box: bool, with_landmarks: bool):
        super().__init__(image=[], label=[])
        if with_box:
            self["face_box"] = []
        if with_landmarks:
            self["landmarks"] = []

    def append(self, **row) -> None:
        for name, values in self.items():
            values.append(row[name])


def _is_record(fields: list[str]) -> bool:
    """Whether a first row is already a record (its expression is a number) rather than the header."""
    return len(fields) == len(CSV_HEADER) and fields[6].strip().isdigit()


def _read_csv_split(path: str, image_root: str, num_classes: int, check: ImageCheck, bad: BadRows) -> _Columns:
    columns, filtered = _Columns(with_box=True, with_landmarks=True), 0
    with open_text(path) as handle:
        reader = csv.reader(handle)
        first = next(reader, [])
        if _is_record(first):  # the download's validation.csv starts with a record, it has no header
            records = itertools.chain([first], reader)
        else:
            check_header(path, first, CSV_HEADER)
            records = reader
        for fields in records:
            with bad.at(reader.line_num):
                if len(fields) != len(CSV_HEADER):
                    raise RowError(f"{len(fields)} fields, expected {len(CSV_HEADER)}")
                expression = parse_int(fields[6], "expression", 0, NUM_EXPRESSIONS - 1)
                if expression >= num_classes:
                    filtered += 1
                    continue
                try:
                    box = tuple(float(value) for value in fields[1:5])
                    landmarks = np.array(fields[5].split(";"), dtype=np.float64)
                except ValueError:
                    raise RowError("face box or facial_landmarks are not numbers") from None
                if box[2] <= 0 or box[3] <= 0:
                    raise RowError(f"empty face box {box}")
                image_path = os.path.join(image_root, fields[0])
                check_image(image_path, check)
                columns.append(image=image_path, label=expression, face_box=list(box),
                               landmarks=_parse_landmarks(landmarks, box))
    logger.info("%s: %d rows with expression >= %d left out.", path, filtered, num_classes)
    return columns


def _read_annotation(path: str) -> np.ndarray:
    """A ``.npy`` annotation as a flat float64 array. The release stores numbers as strings (``array('3')``)."""
    if not os.path.isfile(path):
        raise RowError(f"missing annotation {path}")
    try:
        return np.load(path, allow_pickle=False).astype(np.float64).ravel()
    except (OSError, ValueError) as error:
        raise RowError(f"unreadable annotation {path}: {error}") from None


def _sample_id(expression_file: str) -> str:
    return os.path.basename(expression_file)[: -len("_exp.npy")]


def _expression_files(folder: str) -> list[str]:
    files = sorted(glob.glob(os.path.join(folder, "annotations", "*_exp.npy")))
    if not files:
        raise DatasetFormatError(f"{folder}/annotations holds no *_exp.npy files")
    return files


def _read_npy_split(
    folder: str, num_classes: int, check: ImageCheck, bad: BadRows, with_landmarks: bool
) -> _Columns:
    columns, filtered = _Columns(with_box=False, with_landmarks=with_landmarks), 0
    for expression_file in _expression_files(folder):
        with bad.at(None):
            sample_id = _sample_id(expression_file)
            values = _read_annotation(expression_file)
            if values.size != 1:
                raise RowError(f"{expression_file} holds {values.size} values, expected 1")
            expression = parse_int(f"{values[0]:g}", f"expression in {expression_file}", 0, NUM_EXPRESSIONS - 1)
            if expression >= num_classes:
                filtered += 1
                continue
            image_path = os.path.join(folder, "images", f"{sample_id}.jpg")
            check_image(image_path, check)
            row = {"image": image_path, "label": expression}
            if with_landmarks:
                landmark_file = os.path.join(folder, "annotations", f"{sample_id}_lnd.npy")
                width, height = image_size(image_path)
                row["landmarks"] = _parse_landmarks(_read_annotation(landmark_file), (0.0, 0.0, width, height))
            columns.append(**row)
    logger.info("%s: %d images with expression >= %d left out.", folder, filtered, num_classes)
    return columns


def _find_list_folder(data_dir: str) -> str | None:
    """The folder holding ``training.csv``: the download's lists folder, or ``data_dir`` itself."""
    for folder in (os.path.join(data_dir, LIST_FOLDER), data_dir):
        if os.path.isfile(os.path.join(folder, CSV_SPLITS["train"])):
            return folder
    return None


def _find_image_folder(data_dir: str, list_folder: str, image_dir: str | None) -> str:
    """The image folder, in ``data_dir`` or next to the lists folder (when ``data_dir`` is the lists folder)."""
    roots = dict.fromkeys((os.path.abspath(data_dir), os.path.dirname(os.path.abspath(list_folder))))
    names = IMAGE_FOLDERS if image_dir is None else (image_dir,)
    candidates = [os.path.join(root, name) for root in roots for name in names]
    for folder in candidates:
        if os.path.isdir(folder):
            return folder
    raise DatasetFormatError(
        f"{list_folder} holds the AffectNet CSV lists but no image folder was found: looked for {candidates}. "
        f"Unpack the images there or pass image_dir."
    )


def load_affectnet(
    data_dir: str | os.PathLike,
    *,
    num_classes: Literal[7, 8] = 8,
    release: Literal["auto", "csv", "npy"] = "auto",
    image_dir: str | None = None,
    skip_bad: bool = False,
    check_images: ImageCheck = "header",
) -> DatasetDict:
    """Load AffectNet as a :class:`DatasetDict` with splits ``train`` and ``test`` (the official validation set).

    ``data_dir`` is the AffectNet root (holding ``Manually_Annotated_file_lists/`` and the image folder), the folder
    holding ``training.csv`` and ``validation.csv``, or that of the per-image release (see the module docstring).

    Args:
        num_classes: 8, or 7 to leave out contempt.
        release: ``"csv"`` (``training.csv``), ``"npy"`` (``train_set/annotations``), or ``"auto"`` to detect.
        image_dir: for the CSV release, the image folder relative to ``data_dir`` (or to the folder holding the
            lists folder); by default the first of :data:`IMAGE_FOLDERS` found there.
        check_images: how far to check every image now (see :func:`check_image`); ``"full"`` decodes all
            ~290k images, which takes a while.

    Returns:
        columns ``image``, ``label`` (:data:`AFFECTNET_CLASSES` order), ``landmarks`` (5 x 2 in [0, 1] of the face
        box, or of the image in the per-image release), and for the CSV release ``face_box`` (x, y, w, h pixels).

    Raises:
        FileNotFoundError: ``data_dir`` does not exist.
        DatasetFormatError: ``data_dir`` holds none of the releases, the CSV lists have no image folder, or a record
            is bad (unless ``skip_bad``).
    """
    if num_classes not in (7, 8):
        raise ValueError(f"num_classes must be 7 or 8, got {num_classes}")
    if release not in ("auto", "csv", "npy"):
        raise ValueError(f"release must be auto, csv or npy, got {release!r}")
    data_dir = str(data_dir)
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"AffectNet folder {data_dir!r} does not exist ({LAYOUTS}).")
    list_folder = _find_list_folder(data_dir)
    if release == "auto" and list_folder is None and os.path.isdir(os.path.join(data_dir, NPY_SPLITS["train"])):
        release = "npy"
    splits = {}
    if release == "npy":
        # The landmark files are optional in this release: use them if the first training image has one.
        train_folder = os.path.join(data_dir, NPY_SPLITS["train"])
        first_id = _sample_id(_expression_files(train_folder)[0])
        with_landmarks = os.path.isfile(os.path.join(train_folder, "annotations", f"{first_id}_lnd.npy"))
        for split, name in NPY_SPLITS.items():
            folder = os.path.join(data_dir, name)
            bad = BadRows(folder, skip_bad)
            splits[split] = _read_npy_split(folder, num_classes, check_images, bad, with_landmarks)
            bad.report()
    elif list_folder is not None:
        image_root = _find_image_folder(data_dir, list_folder, image_dir)
        for split, name in CSV_SPLITS.items():
            path = os.path.join(list_folder, name)
            bad = BadRows(path, skip_bad)
            splits[split] = _read_csv_split(path, image_root, num_classes, check_images, bad)
            bad.report()
    else:
        found = sorted(os.listdir(data_dir))
        raise DatasetFormatError(
            f"{data_dir} holds no AffectNet release ({LAYOUTS}); it {f'holds {found}' if found else 'is empty'}."
        )
    first = next(iter(splits.values()))
    features = fer_features(
        AFFECTNET_CLASSES[:num_classes], landmarks="landmarks" in first, face_box="face_box" in first
    )
    return build_dataset_dict(splits, features)
