"""Does a calibration temperature fitted on validation (`poi_hf.calibration`, `TRNConfig.calibration_temperature`)
pay on test? Scores finished runs of `examples/train.py` (or a bare checkpoint with ``--metrics``) as deployed (the
checkpoint's own ``mirror_average``, the flip-consistency confidence) at T = 1 and at the temperature fitted on the
validation split by NLL, as `examples/train.py --fit_temperature` fits it; the test split is scored once, each way:
the training metrics (accuracy, mean class accuracy, macro-F1, NLL, ECE; KL(true || pred) on SynFER), the
confidence's error AUROC and the risk-coverage area (`mirror_averaging.score`).

    python benchmarks/temperature_scaling.py runs/noise30/poi/seed0 runs/noise30/ce/seed0 \\
        --out benchmarks/results/temperature_scaling.json
    python benchmarks/temperature_scaling.py spaces/checkpoint/trn \\
        --metrics benchmarks/results/fer2013_96px/ce_seed0_metrics.json   # the shipped model, bare
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from mirror_averaging import SPLITS, score, score_runs
from pin_members import load_run_data, load_run_trn

from poi_hf.calibration import fit_temperature, plain_predictions


@torch.no_grad()
def view_logits(trn, data: dict, batch_size: int = 256) -> torch.Tensor:
    """Plain logits (V, N, C) of the face and, with ``mirror_average``, of its mirror image (V = 2)."""
    views, flips = [], (False, True)[: 2 if trn.config.mirror_average else 1]
    with plain_predictions(trn) as plain:
        for flip in flips:
            batches = data["pixel_values"].split(batch_size)
            views.append(torch.cat([plain(pixels.flip(-1) if flip else pixels).logits.float() for pixels in batches]))
    return torch.stack(views)


def analyse(run: Path, data_dir: Path | None = None, metrics: Path | None = None) -> dict:
    """The temperature fitted on validation, and per split `score` at T = 1 and at that temperature."""
    trn, report = load_run_trn(run, metrics)
    trn.config.confidence_source = "flip_consistency"
    data = load_run_data(run, SPLITS, data_dir, metrics)
    report["mirror_average"] = trn.config.mirror_average
    report["temperature"] = fit_temperature(view_logits(trn, data["validation"]), data["validation"]["clean_labels"])
    for split in SPLITS:
        report[split] = {}
        for name, temperature in (("t1", 1.0), ("fitted", report["temperature"])):
            trn.config.calibration_temperature = temperature
            report[split][name] = score(trn, data[split])
    return report


def summary(reports: list[dict]) -> dict:
    """Per split: the mean of every figure at T = 1 and fitted, and how many runs lower their ECE."""
    result = {}
    for split in SPLITS:
        result[split] = {
            f"{name}_{key}": float(np.mean([report[split][name][key] for report in reports]))
            for name in ("t1", "fitted")
            for key in reports[0][split][name]
        }
        result[split]["runs_lowering_ece"] = int(
            sum(report[split]["fitted"]["ece"] < report[split]["t1"]["ece"] for report in reports)
        )
        result[split]["runs"] = len(reports)
    return result


def main() -> None:
    score_runs("temperature_scaling.py", __doc__, analyse, summary, lambda report: f": T = {report['temperature']:.3f}")

if __name__ == "__main__":
    main()
