"""SynFER: procedural faces with AU-driven expressions, known true emotion distributions and simulated annotators.

Modules: ``geometry`` (identity, scene and AU -> face geometry), ``render`` (batch anti-aliased renderer),
``labels`` (true distributions, AUs, annotators, noise), ``dataset`` (config, splits, cache), ``preview``.
"""

from .dataset import DEFAULT_DIFFICULTY, SynFERConfig, build_synfer, generate_split, load_synfer, synfer_info
from .preview import contact_sheet

__all__ = [
    "DEFAULT_DIFFICULTY",
    "SynFERConfig",
    "build_synfer",
    "contact_sheet",
    "generate_split",
    "load_synfer",
    "synfer_info",
]
