"""Prior knowledge of facial expressions: AU-emotion relations, facial regions, landmark templates.

Everything here is keyed by *name* (emotion names, AU numbers, region names), never by a dataset's class index,
so any class order can ask for its rows with :func:`au_prior_table`.

The tables PIN builds its default config from (``CLASS_NAMES``, ``AU_NAMES``, ``EMOTION_AUS``, ``REGIONS``,
``LANDMARK_NAMES``, ``ARCFACE_TEMPLATE_112``) and the functions that turn them into config values are defined in
`poi_hf.pin.configuration_pin`, with their sources, so that the PIN folder ships alone as remote code; they are
re-exported here. This module adds what only the rest of the package needs (AU descriptions, dataset crop
templates).
"""

from .pin.configuration_pin import (
    ARCFACE_TEMPLATE_112,
    AU_NAMES,
    CLASS_NAMES,
    EMOTION_AUS,
    LANDMARK_NAMES,
    REGIONS,
    arcface_template,
    au_prior_table,
    check_class_names,
    region_au_table,
)

BASIC_CLASS_NAMES: tuple[str, ...] = CLASS_NAMES[:7]

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
    return arcface_template(TEMPLATE_SHRINK[crop_style])


__all__ = [
    "ARCFACE_TEMPLATE_112",
    "AU_DESCRIPTIONS",
    "AU_NAMES",
    "BASIC_CLASS_NAMES",
    "CLASS_NAMES",
    "EMOTION_AUS",
    "LANDMARK_NAMES",
    "MEASURED_TEMPLATES",
    "REGIONS",
    "TEMPLATE_SHRINK",
    "arcface_template",
    "au_prior_table",
    "check_class_names",
    "landmark_template",
    "region_au_table",
]
