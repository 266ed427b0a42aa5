"""Does predicting from the face and its mirror image together (`TRNConfig.mirror_average`) pay? Scores finished
runs of `examples/train.py` (or a bare checkpoint with ``--metrics``) on their validation split (where the setting
is chosen) and test split (scored once, reported), each way, against the clean labels: the training metrics
(accuracy, mean class accuracy, macro-F1, NLL, ECE; KL(true || pred) on SynFER), the error AUROC of the
flip-consistency confidence (which, with the averaged prediction, is that prediction's top probability) and the area
under the risk-coverage curve of prediction and confidence together, plus on SynFER the confidence's Spearman with
the entropy of the true distribution.

    python benchmarks/mirror_averaging.py runs/noise30/poi/seed0 runs/noise30/ce/seed0 \\
        --out benchmarks/results/mirror_averaging.json
    python benchmarks/mirror_averaging.py spaces/checkpoint/trn \\
        --metrics benchmarks/results/fer2013_96px/ce_seed0_metrics.json   # the shipped model, bare
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch
from pin_members import add_run_arguments, load_run_data, load_run_trn, uncertainty_scores

from poi_hf import TRNForImageClassification
from poi_hf.metrics import classification_metrics

SPLITS = ("validation", "test")
SETTINGS = {"plain": False, "mirror_average": True}


def risk_coverage_area(confidence: np.ndarray, right: np.ndarray) -> float:
    """Area under the risk-coverage curve (Geifman & El-Yaniv, 2017): the mean, over coverages k / N, of the error
    rate among the k most confident predictions. Lower is better; it weighs accuracy and the confidence's ranking
    together, so that predictors with different errors compare. (N,), (N,) bool -> float."""
    errors = ~right[np.argsort(-confidence, kind="stable")]
    return float(np.mean(np.cumsum(errors) / np.arange(1, len(errors) + 1)))


@torch.no_grad()
def score(trn: TRNForImageClassification, data: dict, batch_size: int = 256) -> dict:
    """The training metrics (`poi_hf.metrics.classification_metrics`: accuracy, mean class accuracy, macro-F1, NLL,
    ECE, and KL(true || pred) on SynFER) of ``trn`` as configured, the risk-coverage area, and the confidence's error
    AUROC (and on SynFER its Spearman with the true distribution's entropy)."""
    batches = [trn(pixels) for pixels in data["pixel_values"].split(batch_size)]
    probabilities = torch.cat([batch.logits.float() for batch in batches]).softmax(-1).numpy()
    confidence = torch.cat([batch.confidence.float() for batch in batches]).numpy()
    labels = data["clean_labels"].numpy()
    true_distribution = data["true_distribution"].numpy() if "true_distribution" in data else None
    right = probabilities.argmax(-1) == labels
    return {
        **classification_metrics(probabilities, labels, true_distribution),
        "risk_coverage_area": risk_coverage_area(confidence, right),
        **uncertainty_scores({"confidence": torch.from_numpy(confidence)}, right, true_distribution)["confidence"],
    }


def analyse(run: Path, data_dir: Path | None = None, metrics: Path | None = None) -> dict:
    """Per split and setting, `score` of the run's TRN with the flip-consistency confidence."""
    trn, report = load_run_trn(run, metrics)
    trn.config.confidence_source = "flip_consistency"
    for split, data in load_run_data(run, SPLITS, data_dir, metrics).items():
        report[split] = {}
        for name, mirror_average in SETTINGS.items():
            trn.config.mirror_average = mirror_average
            report[split][name] = score(trn, data)
    return report


def summary(reports: list[dict]) -> dict:
    """Per split: the mean change (averaged minus plain) of every figure, and how many runs gain accuracy."""
    result = {}
    for split in SPLITS:
        keys = reports[0][split]["plain"].keys()
        change = {
            key: [report[split]["mirror_average"][key] - report[split]["plain"][key] for report in reports]
            for key in keys
        }
        result[split] = {f"mean_change_{key}": float(np.mean(values)) for key, values in change.items()}
        result[split]["runs_gaining_accuracy"] = int(np.sum(np.array(change["accuracy"]) > 0))
        result[split]["runs_losing_accuracy"] = int(np.sum(np.array(change["accuracy"]) < 0))
        result[split]["runs"] = len(reports)
    return result


def score_runs(script: str, description: str, analyse, summary, describe=lambda report: "") -> list[dict]:
    """The loop of a benchmark that scores settings of finished runs per split: parses the run arguments
    (`add_run_arguments`), calls ``analyse(run, data_dir, metrics)`` (a report with ``report[split][setting]`` figures)
    for each run on one thread, prints them (``describe(report)`` after the run's name) and writes the reports with
    ``summary(reports)`` to ``--out`` as it goes, so a long list of runs leaves its finished part behind."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(1)
    command = " ".join(["python", f"benchmarks/{script}", *sys.argv[1:]])
    header = {"machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores", "command": command}
    reports = []
    for run in args.runs:
        reports.append(analyse(run, args.data_dir, args.metrics))
        print(f"\n{run} ({reports[-1]['method']}, {reports[-1]['dataset']}){describe(reports[-1])}")
        for split in SPLITS:
            for name, entry in reports[-1][split].items():
                print(f"  {split:10s} {name:15s} " + "  ".join(f"{key} {value:.4f}" for key, value in entry.items()))
        if args.out:
            args.out.write_text(json.dumps({**header, "runs": reports, "summary": summary(reports)}, indent=1))
    return reports


def main() -> None:
    reports = score_runs("mirror_averaging.py", __doc__, analyse, summary)
    for split, entry in summary(reports).items():
        print(f"{split}: " + ", ".join(f"{key} {value:+.4f}" for key, value in entry.items()))

if __name__ == "__main__":
    main()
