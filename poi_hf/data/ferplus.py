"""FERPlus (Barsoum et al., ICMI 2016): FER2013 images re-annotated by 10 crowd workers each.

Files (both in ``data_dir``):

* ``fer2013.csv``: the images (see :mod:`.fer2013`);
* ``fer2013new.csv``: header ``Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,
  unknown,NF``, row ``i`` describes row ``i`` of ``fer2013.csv``; ``Image name`` is ``fer%07d.png`` of the
  0-based row, or empty for the 173 images FERPlus dropped; the ten columns are vote counts.

Label modes follow the official reader (``FERPlus/src/ferplus.py``, ``_process_data``): single votes are dropped
as outliers, then ``majority`` keeps images whose top emotion has more than half of the votes, ``crossentropy``
and ``probability`` keep the top (up to 3) emotions covering 75% of the votes, ``multi_target`` keeps every
emotion with at least 30% of the votes; an image is dropped when what is kept is not more than half of the votes
or when its top vote is ``unknown`` or ``NF``.
"""

from __future__ import annotations

import csv
import logging
import os
from typing import Literal

import numpy as np
from datasets import DatasetDict

from ._common import (
    BadRows,
    DatasetFormatError,
    RowError,
    build_dataset_dict,
    check_header,
    fer_features,
    open_text,
    parse_int,
)
from .fer2013 import USAGE_TO_SPLIT, read_fer2013

logger = logging.getLogger(__name__)

FERPLUS_CLASSES: tuple[str, ...] = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
)
VOTE_COLUMNS: tuple[str, ...] = FERPLUS_CLASSES + ("unknown", "NF")
FERPLUS_HEADER: tuple[str, ...] = ("Usage", "Image name") + VOTE_COLUMNS
LabelMode = Literal["majority", "probability", "crossentropy", "multi_target"]


def ferplus_target(votes: np.ndarray, mode: LabelMode) -> np.ndarray | None:
    """The official FERPlus training target of one image, or ``None`` when the image is dropped.

    Args:
        votes: (10,) vote counts in :data:`VOTE_COLUMNS` order.

    Returns:
        (8,) distribution over :data:`FERPLUS_CLASSES`: one-hot for ``majority``, the kept votes renormalised for
        ``probability`` / ``crossentropy`` (the official ``probability`` mode samples a one-hot target from it
        each epoch: this is its expectation), uniform over the kept emotions for ``multi_target``.
    """
    votes = np.where(votes > 1, votes, 0).astype(np.float64)  # single votes are outliers
    total = votes.sum()
    kept = np.zeros_like(votes)
    if mode == "majority":
        top = int(votes.argmax())
        kept[top] = votes[top] if votes[top] > 0.5 * total else 0.0
    elif mode in ("probability", "crossentropy"):
        # Take emotions in order of votes (ties together) until 75% of the votes or 3 emotions are covered; a tie
        # with unknown/NF ends the search and drops unknown/NF unless something was taken before it.
        remaining, count, valid = votes.copy(), 0, True
        while kept.sum() < 0.75 * total and count < 3 and valid:
            top_votes = remaining.max()
            for i in np.flatnonzero(remaining == top_votes):
                kept[i], remaining[i], count = top_votes, 0.0, count + 1
                if i >= len(FERPLUS_CLASSES):
                    valid = False
                    if kept.sum() > top_votes:
                        kept[i], count = 0.0, count - 1
                    break
        if count > 3:
            kept[:] = 0.0
    elif mode == "multi_target":
        kept = np.where(votes >= 0.3 * total, votes, 0.0)
    else:
        raise ValueError(f"Unknown label_mode {mode!r}; expected majority, probability, crossentropy or multi_target.")
    if total == 0 or kept.sum() <= 0.5 * total or kept.argmax() >= len(FERPLUS_CLASSES):
        return None
    kept = kept[: len(FERPLUS_CLASSES)]
    if mode in ("majority", "multi_target"):
        kept = (kept > 0).astype(np.float64)
    return kept / kept.sum()


def _parse_votes(fields: list[str]) -> np.ndarray:
    return np.array([parse_int(value, f"{name} votes", 0, 10**6) for name, value in zip(VOTE_COLUMNS, fields)])


def load_ferplus(
    data_dir: str | os.PathLike,
    *,
    label_mode: LabelMode = "majority",
    eval_label_mode: LabelMode = "majority",
    num_classes: Literal[7, 8] = 8,
    fer2013_csv: str = "fer2013.csv",
    ferplus_csv: str = "fer2013new.csv",
    skip_bad: bool = False,
) -> DatasetDict:
    """Load FERPlus as a :class:`DatasetDict`: ``train``, ``validation`` (PublicTest), ``test`` (PrivateTest).

    Args:
        label_mode: which images are kept and which target they get on the train split (see module docstring).
        eval_label_mode: the same for validation and test; the official code evaluates with ``majority``.
        num_classes: 8, or 7 to drop contempt (images whose label is contempt are dropped, the rest renormalised).

    Returns:
        columns ``image`` (48 x 48, mode "L"), ``label`` (argmax of the target, :data:`FERPLUS_CLASSES` order),
        ``soft_labels`` (C floats summing to 1: the mode's target; for ``majority``, whose target is one-hot, the
        raw vote distribution over the C emotions instead) and ``votes`` (C raw vote counts).
    """
    if num_classes not in (7, 8):
        raise ValueError(f"num_classes must be 7 or 8, got {num_classes}")
    images = read_fer2013(os.path.join(data_dir, fer2013_csv), skip_bad)
    path = os.path.join(data_dir, ferplus_csv)
    bad = BadRows(path, skip_bad)
    splits = {split: {"image": [], "label": [], "soft_labels": [], "votes": []} for split in USAGE_TO_SPLIT.values()}
    dropped = {"empty image name": 0, "no valid label": 0, "contempt (7 classes)": 0}
    with open_text(path) as handle:
        reader = csv.reader(handle)
        check_header(path, next(reader, []), FERPLUS_HEADER)
        row_index = -1
        for row_index, fields in enumerate(reader):
            with bad.at(reader.line_num):
                if len(fields) != len(FERPLUS_HEADER):
                    raise RowError(f"{len(fields)} fields, expected {len(FERPLUS_HEADER)}")
                usage, name, votes = fields[0], fields[1].strip(), _parse_votes(fields[2:])
                if row_index >= len(images):
                    raise RowError(f"{fer2013_csv} has only {len(images)} data rows")
                if not name:
                    dropped["empty image name"] += 1
                    continue
                if name != f"fer{row_index:07d}.png":
                    raise RowError(f"image name {name!r} does not match row {row_index} (fer{row_index:07d}.png)")
                image = images[row_index]
                if image is None:
                    raise RowError(f"its image row in {fer2013_csv} was skipped as bad")
                if USAGE_TO_SPLIT.get(usage) != image.split:
                    raise RowError(f"Usage {usage!r} differs from {fer2013_csv}'s for this row")
                mode = label_mode if image.split == "train" else eval_label_mode
                target = ferplus_target(votes, mode)
                if target is None:
                    dropped["no valid label"] += 1
                    continue
                label = int(target.argmax())
                if mode == "majority":  # its one-hot target says nothing the label does not: expose the votes
                    target = votes[: len(FERPLUS_CLASSES)] / votes[: len(FERPLUS_CLASSES)].sum()
                if label >= num_classes:
                    dropped["contempt (7 classes)"] += 1
                    continue
                columns = splits[image.split]
                columns["image"].append(image.image)
                columns["label"].append(label)
                columns["soft_labels"].append((target[:num_classes] / target[:num_classes].sum()).tolist())
                columns["votes"].append(votes[:num_classes].tolist())
    bad.report()
    if row_index + 1 != len(images):
        raise DatasetFormatError(f"{path} has {row_index + 1} data rows but {fer2013_csv} has {len(images)}")
    logger.info("FERPlus (%s, %d classes): dropped %s.", label_mode, num_classes, dropped)
    features = fer_features(FERPLUS_CLASSES[:num_classes], soft_labels=True, votes=True)
    return build_dataset_dict(splits, features)
