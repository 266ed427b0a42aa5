"""RAF-DB basic emotion subset (Li, Deng & Du, CVPR 2017), read from the files as published.

Layout::

    <data_dir>/EmoLabel/list_patition_label.txt   "train_00001.jpg 5" per line, labels 1..7 (the last line may
                                                  lack its newline)
    <data_dir>/Image/aligned/train_00001_aligned.jpg   100 x 100 aligned faces

Any label file of the same format replaces the labels of the rows it lists, e.g. the noisy-label files
``noise01.txt`` .. ``noise03.txt`` of EAC (Zhang et al., ECCV 2022; train rows only): the result then has the
file's labels in ``label`` and those of ``list_patition_label.txt`` in ``clean_label``.
"""

from __future__ import annotations

import logging
import os

from datasets import DatasetDict

from ._common import (
    BadRows,
    DatasetFormatError,
    ImageCheck,
    RowError,
    build_dataset_dict,
    check_image,
    fer_features,
    open_text,
    parse_int,
)
from .noise import replace_labels

logger = logging.getLogger(__name__)

RAFDB_CLASSES: tuple[str, ...] = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
"""Native order of RAF-DB basic: file label ``k`` is ``RAFDB_CLASSES[k - 1]``."""

LABEL_FILE = os.path.join("EmoLabel", "list_patition_label.txt")
SPLITS = {"train": "train", "test": "test"}  # image-name prefix -> split

LabelRows = dict[str, dict[str, tuple[int, int]]]  # split -> image name -> (0-based label, line number)


def read_label_file(path: str | os.PathLike, skip_bad: bool = False) -> LabelRows:
    """Parse a ``list_patition_label.txt``-format file into ``{split: {image name: (label, line)}}``.

    Labels are converted from 1-based to 0-based. Blank lines are ignored; any other malformed line raises a
    :class:`DatasetFormatError` naming the file and line (or is logged and skipped with ``skip_bad=True``).
    """
    rows: LabelRows = {split: {} for split in SPLITS.values()}
    bad = BadRows(path, skip_bad)
    with open_text(path) as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            with bad.at(line_number):
                fields = line.split()
                if len(fields) != 2:
                    raise RowError(f"expected '<image name> <label>', got {line.rstrip()!r}")
                name, label = fields
                split = SPLITS.get(name.split("_", 1)[0])
                if split is None:
                    raise RowError(f"image name {name!r} starts with neither 'train_' nor 'test_'")
                if name in rows[split]:
                    raise RowError(f"image {name!r} is listed twice")
                rows[split][name] = (parse_int(label, "label", 1, len(RAFDB_CLASSES)) - 1, line_number)
    bad.report()
    return rows


def _resolve(data_dir: str, label_file: str | os.PathLike) -> str:
    """``label_file`` as given, else relative to ``data_dir`` or ``data_dir/EmoLabel``."""
    for candidate in (label_file, os.path.join(data_dir, label_file), os.path.join(data_dir, "EmoLabel", label_file)):
        if os.path.isfile(candidate):
            return str(candidate)
    raise FileNotFoundError(f"Label file {label_file!r} not found as given, in {data_dir} or in its EmoLabel/.")


def load_rafdb(
    data_dir: str | os.PathLike,
    label_file: str | os.PathLike | None = None,
    *,
    image_dir: str = os.path.join("Image", "aligned"),
    skip_bad: bool = False,
    check_images: ImageCheck = "full",
) -> DatasetDict:
    """Load RAF-DB basic as a :class:`DatasetDict` with splits ``train`` (12,271) and ``test`` (3,068).

    Args:
        data_dir: the unpacked ``basic/`` folder (holding ``EmoLabel/`` and ``Image/``).
        label_file: a file in ``list_patition_label.txt`` format whose rows replace the official labels, e.g. EAC's
            ``noise01.txt``; a path, or a name inside ``data_dir`` or ``data_dir/EmoLabel``.
        image_dir: folder of the aligned images, relative to ``data_dir``.
        skip_bad: log and skip bad rows (missing/corrupt images, bad labels) instead of raising.
        check_images: how far to check every image now (see :func:`check_image`), so bad files fail here and
            not mid-training.

    Returns:
        columns ``image`` (100 x 100 RGB), ``label`` (7 classes, :data:`RAFDB_CLASSES` order), and with
        ``label_file`` also ``clean_label`` on the rows it replaces.
    """
    data_dir = str(data_dir)
    official_path = os.path.join(data_dir, LABEL_FILE)
    official = read_label_file(official_path, skip_bad) if os.path.isfile(official_path) else None
    override_path = _resolve(data_dir, label_file) if label_file is not None else None
    override = read_label_file(override_path, skip_bad) if override_path else None
    if official is None and override is None:
        raise DatasetFormatError(f"{official_path} not found: is {data_dir} the RAF-DB 'basic' folder?")

    splits, replaced = {}, {}
    for split in SPLITS.values():
        use_override = override is not None and bool(override[split])
        if not use_override and official is None:
            continue
        source_path, rows = (override_path, override[split]) if use_override else (official_path, official[split])
        bad = BadRows(source_path, skip_bad)
        columns, new_labels = {"image": [], "label": []}, []
        for name, (label, line_number) in rows.items():
            with bad.at(line_number):
                stem, extension = os.path.splitext(name)
                image_path = os.path.join(data_dir, image_dir, f"{stem}_aligned{extension}")
                check_image(image_path, check_images)
                clean = label
                if use_override and official is not None:
                    if name not in official[split]:
                        raise RowError(f"image {name!r} is not in {official_path}")
                    clean = official[split][name][0]
                columns["image"].append(image_path)
                columns["label"].append(clean)
                new_labels.append(label)
        bad.report()
        splits[split] = columns
        if use_override and official is not None:
            replaced[split] = new_labels

    dataset = build_dataset_dict(splits, fer_features(RAFDB_CLASSES))
    for split, labels in replaced.items():
        dataset[split], rate = replace_labels(dataset[split], labels)
        logger.info("RAF-DB %s labels of %s differ from the official ones on %.4f of rows.", split, override_path, rate)
    return dataset
