"""Any FER dataset laid out as image folders, one folder per class, read with the ``datasets`` ``imagefolder`` builder.

Layout::

    <data_dir>/train/<class>/*.jpg      (also test/, validation/ or val/; without split folders all is "train")

Class folders are named by canonical names or common aliases (``angry``, ``happy``, ``sad``, ``surprised``,
``fearful``, ``disgusted``, case-insensitive), or ``class_names`` names them in sorted folder order (e.g. for
RAF-DB-style folders ``1`` .. ``7``). The class order is the sorted folder order.
"""

from __future__ import annotations

import os
from typing import Sequence

from datasets import ClassLabel, DatasetDict, Image, load_dataset

from ._common import BadRows, DatasetFormatError, ImageCheck, check_image
from ..priors import EMOTION_AUS, check_class_names

ALIASES: dict[str, str] = {
    "angry": "anger",
    "happy": "happiness",
    "sad": "sadness",
    "surprised": "surprise",
    "fearful": "fear",
    "disgusted": "disgust",
    **{name: name for name in EMOTION_AUS},
}


def _canonical(folders: Sequence[str], class_names: Sequence[str] | None, data_dir: str) -> list[str]:
    if class_names is not None:
        if len(class_names) != len(folders):
            raise DatasetFormatError(f"{data_dir}: {len(folders)} class folders {list(folders)}, "
                                     f"but {len(class_names)} class_names")
        return check_class_names(class_names)
    unknown = [folder for folder in folders if folder.lower() not in ALIASES]
    if unknown:
        raise DatasetFormatError(f"{data_dir}: class folders {unknown} are not emotion names; pass class_names "
                                 f"(one per folder, in sorted folder order {list(folders)})")
    return check_class_names([ALIASES[folder.lower()] for folder in folders])


def load_imagefolder(
    data_dir: str | os.PathLike,
    *,
    class_names: Sequence[str] | None = None,
    skip_bad: bool = False,
    check_images: ImageCheck = "full",
    cache_dir: str | None = None,
) -> DatasetDict:
    """Load class folders as a :class:`DatasetDict` (``train``, and ``validation`` / ``test`` where present).

    Args:
        class_names: canonical names of the class folders in sorted order; default: the folder names themselves.
        check_images: how far to check every image now (see :func:`check_image`); a bad one raises an error
            naming it, or with ``skip_bad=True`` is logged, counted and left out.

    Returns:
        columns ``image`` and ``label`` (canonical names, sorted-folder order).
    """
    data_dir = str(data_dir)
    dataset = load_dataset("imagefolder", data_dir=data_dir, cache_dir=cache_dir, keep_in_memory=True)
    first = next(iter(dataset.values()))
    if "label" not in first.column_names:
        raise DatasetFormatError(f"{data_dir}: no class folders found")
    names = _canonical(first.features["label"].names, class_names, data_dir)
    result = DatasetDict()
    for split, data in dataset.items():
        paths = [image["path"] for image in data.cast_column("image", Image(decode=False))["image"]]
        bad, good = BadRows(data_dir, skip_bad), []
        for index, path in enumerate(paths):
            with bad.at(None):
                check_image(path, check_images)
                good.append(index)
        bad.report()
        if len(good) < len(paths):
            data = data.select(good)
        result[split] = data.cast_column("label", ClassLabel(names=names))
    return result
