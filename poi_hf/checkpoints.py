"""Where a training run resumes from: the newest complete checkpoint, and checks that a checkpoint can be resumed."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import get_last_checkpoint, sort_checkpoints

from .hub import check_model_folder

logger = logging.getLogger(__name__)


def incomplete_reason(checkpoint: Path) -> str | None:
    """Why ``checkpoint`` cannot be resumed from, or None when it is complete.

    `Trainer._save_checkpoint` writes the model (config.json, model.safetensors), then the optimizer (optimizer.pt, or
    FSDP/DeepSpeed's own files), scheduler.pt and the RNG state, and trainer_state.json last: a run killed while
    saving leaves a folder without trainer_state.json. The weights are checked too, for a truncated copy."""
    state = checkpoint / TRAINER_STATE_NAME
    if not state.is_file():
        return f"no {TRAINER_STATE_NAME}, which the Trainer writes last"
    try:
        json.loads(state.read_text())
    except ValueError as error:
        return f"{TRAINER_STATE_NAME} is not valid JSON ({error})"
    try:
        check_model_folder(checkpoint)
    except OSError as error:
        return str(error)
    return None


def latest_complete_checkpoint(output_dir: Path) -> str | None:
    """The newest checkpoint-* folder in ``output_dir`` that can be resumed from; newer incomplete ones (a run killed
    while saving) are skipped with a warning and left in place."""
    checkpoints = [Path(path) for path in sort_checkpoints(str(output_dir))]
    skipped = []
    for checkpoint in reversed(checkpoints):
        reason = incomplete_reason(checkpoint)
        if reason is None:
            for newer, why in skipped:
                logger.warning(
                    "Skipping %s: incomplete (%s), probably cut off while saving; resuming from %s.",
                    newer,
                    why,
                    checkpoint,
                )
            return str(checkpoint)
        skipped.append((checkpoint, reason))
    if skipped:
        details = "; ".join(f"{newer.name}: {why}" for newer, why in skipped)
        raise ValueError(f"--resume_from_checkpoint latest: no complete checkpoint in {output_dir} ({details}).")
    return None


def resolve_checkpoint(output_dir: Path, resume: str | None, model_type: str) -> str | None:
    """The checkpoint to resume from ("latest" = the newest complete one in output_dir), checked to be a complete
    training checkpoint of ``model_type``; refuses to start over an output_dir that already holds checkpoints, so
    nothing saved is lost."""
    existing = get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
    if resume in (None, "", "False", "false"):
        if existing is not None:
            raise ValueError(
                f"{output_dir} already holds checkpoints ({existing}); pass --resume_from_checkpoint latest to "
                "continue that run, or choose another --output_dir. Nothing was changed."
            )
        return None
    checkpoint = latest_complete_checkpoint(output_dir) if resume in ("latest", "True", "true") else resume
    if checkpoint is None:
        raise ValueError(f"--resume_from_checkpoint {resume}: no checkpoint-* folder in {output_dir}.")
    config_file = Path(checkpoint) / "config.json"
    if not config_file.is_file():
        raise ValueError(f"--resume_from_checkpoint {checkpoint}: no config.json there, not a checkpoint.")
    found = json.loads(config_file.read_text()).get("model_type")
    if found != model_type:
        raise ValueError(
            f"--resume_from_checkpoint {checkpoint} is a {found!r} checkpoint, not a {model_type!r} training "
            "checkpoint of this method; point it at a checkpoint-* folder this script wrote for the same --method."
        )
    reason = incomplete_reason(Path(checkpoint))
    if reason is not None:
        raise ValueError(
            f"--resume_from_checkpoint {checkpoint} is incomplete ({reason}), probably cut off while saving; pass "
            "an earlier checkpoint, or 'latest' for the newest complete one."
        )
    return checkpoint
