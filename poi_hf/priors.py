"""Prior knowledge of facial expressions: AU-emotion relations, facial regions, landmark templates.

Everything here is keyed by *name* (emotion names, AU numbers, region names), never by a dataset's class index,
so any class order can ask for its rows with :func:`au_prior_table`.

Sources of the AU-emotion table ``EMOTION_AUS`` (1.0 = strongly present, 0.5 = often present):

* The AU-emotion prior table of AUE-CRL (Cui et al., ICRA 2021), AU order 1, 2, 4, 5, 6, 7, 9, 10, 12, 15, 16, 17,
  20, 23, 24, 25, 26. The six basic emotions and neutral follow that table.
* Du, Tao & Martinez, "Compound facial expressions of emotion", PNAS 111(15), 2014, Table 1 (prototypical AUs of
  the basic expressions): used as a cross-check. Where the two disagree we keep AUE-CRL; the one addition is
  fear AU26 at 0.5 (EMFACS fear with jaw drop).
* Contempt is not in AUE-CRL; EMFACS (Friesen & Ekman, 1983) codes it as unilateral AU12 + AU14. The table cannot
  express "unilateral"; the mouth regions below are split left/right so that a one-sided AU14/AU12 shows up as a
  disagreement between the two mouth branches.

Regions: five landmark-anchored boxes (left eye+brow, right eye+brow, glabella/nose root, mouth left, mouth right)
with the AUs that each can show (FACS muscle locations: Ekman, Friesen & Hager, FACS Manual, 2002).
"""

from __future__ import annotations

from typing import Sequence

CLASS_NAMES: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
)
"""Canonical lowercase class names (FERPlus order). Loaders keep their dataset's native order."""

BASIC_CLASS_NAMES: tuple[str, ...] = CLASS_NAMES[:7]

AU_NAMES: tuple[str, ...] = tuple(f"AU{n}" for n in (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 16, 17, 20, 23, 24, 25, 26))
"""The 18 action units PIN reasons about: AUE-CRL's 17 plus AU14 (dimpler) for contempt."""

AU_DESCRIPTIONS: dict[str, str] = {
    "AU1": "inner brow raiser",
    "AU2": "outer brow raiser",
    "AU4": "brow lowerer",
    "AU5": "upper lid raiser",
    "AU6": "cheek raiser",
    "AU7": "lid tightener",
    "AU9": "nose wrinkler",
    "AU10": "upper lip raiser",
    "AU12": "lip corner puller",
    "AU14": "dimpler",
    "AU15": "lip corner depressor",
    "AU16": "lower lip depressor",
    "AU17": "chin raiser",
    "AU20": "lip stretcher",
    "AU23": "lip tightener",
    "AU24": "lip pressor",
    "AU25": "lips part",
    "AU26": "jaw drop",
}

EMOTION_AUS: dict[str, dict[str, float]] = {
    "neutral": {},
    "happiness": {"AU6": 1.0, "AU12": 1.0, "AU7": 0.5, "AU25": 0.5},
    "surprise": {"AU1": 1.0, "AU2": 1.0, "AU5": 1.0, "AU25": 1.0, "AU26": 1.0, "AU16": 0.5},
    "sadness": {"AU1": 1.0, "AU7": 1.0, "AU15": 1.0, "AU4": 0.5, "AU6": 0.5, "AU17": 0.5},
    "anger": {"AU4": 1.0, "AU5": 1.0, "AU23": 1.0, "AU24": 1.0, "AU7": 0.5, "AU17": 0.5},
    "disgust": {"AU9": 1.0, "AU10": 1.0, "AU17": 0.5, "AU25": 0.5},
    "fear": {
        "AU1": 1.0,
        "AU2": 1.0,
        "AU4": 1.0,
        "AU5": 1.0,
        "AU7": 1.0,
        "AU20": 1.0,
        "AU23": 0.5,
        "AU25": 0.5,
        "AU26": 0.5,
    },
    "contempt": {"AU12": 1.0, "AU14": 1.0},
}

LANDMARK_NAMES: tuple[str, ...] = ("left_eye", "right_eye", "nose_tip", "mouth_left", "mouth_right")
"""Order of the 5 landmarks everywhere in the package; "left" means image left."""

# ArcFace alignment target for a 112x112 crop, in pixels (x, y), same order as LANDMARK_NAMES.
ARCFACE_TEMPLATE_112: tuple[tuple[float, float], ...] = (
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
)

# Loosely cropped datasets show more context around the face, so the same landmarks sit closer to the centre.
# Shrink factors about the crop centre; estimates, documented in docs/method.md, override per dataset if known.
TEMPLATE_SHRINK: dict[str, float] = {
    "arcface": 1.0,
    "rafdb": 0.85,  # RAF-DB "aligned" 100x100 crops
    "affectnet": 0.85,  # AffectNet face-box crops
    "synfer": 0.86,  # SynFER draws the whole head; its mean landmarks (exact per sample) are this shrink
}

# Templates measured on the data, in [0, 1] of the crop (benchmarks/measure_template.py: median YuNet landmarks of
# 2,875 of 3,000 random FER2013 training images upscaled 4x, made left/right symmetric; IQR ~0.07 per coordinate).
# FER2013's 48x48 crops are TIGHTER than ArcFace's (inter-ocular 0.38 vs 0.31 of the crop), not looser.
MEASURED_TEMPLATES: dict[str, tuple[tuple[float, float], ...]] = {
    "fer2013": ((0.3105, 0.3818), (0.6895, 0.3818), (0.5, 0.5911), (0.3512, 0.7501), (0.6488, 0.7501)),  # and FERPlus
}

# Regions: centre = sum_i anchors[i] * landmark_i + offset (in units of the inter-ocular distance d, along the
# eye axis u and its downward normal v); box size (width, height) in units of d. `mirror` samples the crop with
# the x axis reversed so that left and right regions of a symmetric face give identical crops.
REGIONS: tuple[dict, ...] = (
    {
        "name": "left_eye_brow",
        "anchors": [1.0, 0.0, 0.0, 0.0, 0.0],
        "offset": [0.0, -0.2],
        "size": [0.8, 0.75],
        "mirror": False,
        "aus": ["AU1", "AU2", "AU4", "AU5", "AU6", "AU7"],
    },
    {
        "name": "right_eye_brow",
        "anchors": [0.0, 1.0, 0.0, 0.0, 0.0],
        "offset": [0.0, -0.2],
        "size": [0.8, 0.75],
        "mirror": True,
        "aus": ["AU1", "AU2", "AU4", "AU5", "AU6", "AU7"],
    },
    {
        "name": "glabella_nose",
        "anchors": [0.35, 0.35, 0.3, 0.0, 0.0],
        "offset": [0.0, -0.15],
        "size": [0.7, 0.8],
        "mirror": False,
        "aus": ["AU1", "AU4", "AU9", "AU10"],
    },
    {
        "name": "mouth_left",
        "anchors": [0.0, 0.0, 0.0, 0.75, 0.25],
        "offset": [0.0, 0.05],
        "size": [0.75, 0.8],
        "mirror": False,
        "aus": ["AU10", "AU12", "AU14", "AU15", "AU16", "AU17", "AU20", "AU23", "AU24", "AU25", "AU26"],
    },
    {
        "name": "mouth_right",
        "anchors": [0.0, 0.0, 0.0, 0.25, 0.75],
        "offset": [0.0, 0.05],
        "size": [0.75, 0.8],
        "mirror": True,
        "aus": ["AU10", "AU12", "AU14", "AU15", "AU16", "AU17", "AU20", "AU23", "AU24", "AU25", "AU26"],
    },
)


def check_class_names(class_names: Sequence[str]) -> list[str]:
    """Return ``class_names`` as a list, or raise ``ValueError`` naming any name that is not canonical."""
    unknown = [name for name in class_names if name not in EMOTION_AUS]
    if unknown:
        raise ValueError(f"Unknown class name(s) {unknown}; canonical names are {list(CLASS_NAMES)}.")
    if len(set(class_names)) != len(class_names):
        raise ValueError(f"Duplicate class names in {list(class_names)}.")
    return list(class_names)


def au_prior_table(class_names: Sequence[str], au_names: Sequence[str] = AU_NAMES) -> list[list[float]]:
    """The AU-emotion prior ``P`` (C x A) for ``class_names`` in the given order, as plain lists.

    ``P[c][a]`` is 1.0 when AU ``a`` is strongly present in emotion ``c``, 0.5 when often present, else 0.0.
    """
    check_class_names(class_names)
    return [[EMOTION_AUS[name].get(au, 0.0) for au in au_names] for name in class_names]


def region_au_table(regions: Sequence[dict] = REGIONS, au_names: Sequence[str] = AU_NAMES) -> list[list[float]]:
    """The region-AU visibility ``G`` (K x A): 1.0 where region ``k`` can show AU ``a``."""
    unknown = sorted({au for region in regions for au in region["aus"]} - set(au_names))
    if unknown:
        raise ValueError(f"Regions name AUs {unknown} that are not in au_names {list(au_names)}.")
    return [[1.0 if au in region["aus"] else 0.0 for au in au_names] for region in regions]


def landmark_template(crop_style: str = "arcface") -> list[list[float]]:
    """Canonical 5-point template in [0, 1] coordinates of a square aligned crop.

    Args:
        crop_style: one of ``MEASURED_TEMPLATES`` or ``TEMPLATE_SHRINK`` (how loosely the dataset crops faces).

    Returns:
        5 x 2 list of (x, y) in [0, 1], order of ``LANDMARK_NAMES``.
    """
    if crop_style in MEASURED_TEMPLATES:
        return [list(point) for point in MEASURED_TEMPLATES[crop_style]]
    if crop_style not in TEMPLATE_SHRINK:
        styles = sorted({*TEMPLATE_SHRINK, *MEASURED_TEMPLATES})
        raise ValueError(f"Unknown crop_style {crop_style!r}; expected one of {styles}.")
    shrink = TEMPLATE_SHRINK[crop_style]
    return [[0.5 + shrink * (x / 112.0 - 0.5), 0.5 + shrink * (y / 112.0 - 0.5)] for x, y in ARCFACE_TEMPLATE_112]
