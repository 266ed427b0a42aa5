"""What a finished training run reports: the summary of its evaluations (best epoch, mean of the last five), how its
confidence separates flipped from clean training labels, ``metrics.json``, the training curves and the confusion
matrix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from datasets import Dataset
from transformers.trainer_utils import PredictionOutput

from .calibration import plain_predictions
from .losses import poi_label_trust
from .metrics import auroc, confusion_matrix
from .plots import plot_confusion_matrix, plot_training_curves
from .trainer import FERTrainer, evaluation_targets, softmax

SUMMARY_METRICS = ("accuracy", "mean_class_accuracy", "macro_f1", "nll", "ece", "kl_true", "pin_accuracy")


def summarize_history(log_history: Sequence[Mapping[str, Any]], last: int = 5) -> dict[str, dict[str, float]]:
    """Best epoch and mean of the last ``last`` evaluations (the field's convention) for each summary metric."""
    evaluations = [entry for entry in log_history if "eval_accuracy" in entry]
    if not evaluations:
        return {}
    best = max(evaluations, key=lambda entry: entry["eval_accuracy"])
    summary = {"best": {"epoch": best.get("epoch", 0.0)}, f"last{last}_mean": {}, f"last{last}_std": {}}
    for name in SUMMARY_METRICS:
        key = f"eval_{name}"
        if key not in best:
            continue
        tail = [entry[key] for entry in evaluations[-last:]]
        summary["best"][name] = best[key]
        summary[f"last{last}_mean"][name] = float(np.mean(tail))
        summary[f"last{last}_std"][name] = float(np.std(tail))
    return summary


def analyze_train_split(trainer: FERTrainer, train_split: Dataset, output_dir: Path) -> dict[str, float]:
    """Score the training split (``train_split`` with the evaluation transform): how well the TRN's uncertainty head
    (whatever ``confidence_source`` the model deploys) separates flipped from clean labels (AUROC), and how often
    PIN's soft label / the TRN recover the clean label.
    Writes ``train_analysis.npz``. Empty when the split has no ``clean_label`` column."""
    if "clean_label" not in train_split.column_names:
        return {}
    trn = getattr(trainer.model, "trn", trainer.model)
    with plain_predictions(trn):  # the score training weighed with and the plain prediction, one backbone pass
        logits, confidence, *pin = trainer.predict(train_split, metric_key_prefix="train").predictions
    columns = train_split.with_format(None)  # predictions come in dataset order
    given = np.asarray(columns["label"][:], dtype=np.int64)
    clean = np.asarray(columns["clean_label"][:], dtype=np.int64)
    flipped = given != clean
    analysis = {
        "noise_rate": float(flipped.mean()),
        "alpha_auroc_clean_vs_flipped": auroc(confidence, ~flipped),
        "alpha_mean_clean": float(confidence[~flipped].mean()) if (~flipped).any() else float("nan"),
        "alpha_mean_flipped": float(confidence[flipped].mean()) if flipped.any() else float("nan"),
        "trn_train_accuracy_clean": float((logits.argmax(-1) == clean).mean()),
        "trn_train_fits_given": float((logits.argmax(-1) == given).mean()),
    }
    arrays = {"confidence": confidence, "flipped": flipped}
    if pin:
        # the sample weights POI-R trained with
        model = trainer.model
        arrays["trust"] = poi_label_trust(
            model.config, torch.from_numpy(softmax(pin[0])), torch.from_numpy(given), model.noise_transition.cpu()
        ).numpy()
        analysis["trust_auroc_clean_vs_flipped"] = auroc(arrays["trust"], ~flipped)
        analysis["pin_train_accuracy_clean"] = float((pin[0].argmax(-1) == clean).mean())
        analysis["pin_train_agrees_given"] = float((pin[0].argmax(-1) == given).mean())
    if trainer.is_world_process_zero():
        np.savez_compressed(output_dir / "train_analysis.npz", **arrays)
    return analysis


def write_report(
    trainer: FERTrainer,
    results: Mapping[str, Any],
    test_prediction: PredictionOutput,
    class_names: Sequence[str],
    output_dir: Path,
) -> None:
    """Write ``metrics.json`` (``results``), ``training_curves.png`` and ``confusion_matrix.png`` (of the TRN on
    the test split, ``results["test_split"]``) into ``output_dir`` and print the summary; rank 0 only."""
    if not trainer.is_world_process_zero():
        return
    (output_dir / "metrics.json").write_text(json.dumps(results, indent=2, default=str))
    plot_training_curves(trainer.state.log_history, output_dir / "training_curves.png")
    labels, _ = evaluation_targets(test_prediction, trainer.label_names)
    predicted = test_prediction.predictions[0].argmax(-1)
    plot_confusion_matrix(
        confusion_matrix(labels, predicted, len(class_names)),
        class_names,
        output_dir / "confusion_matrix.png",
        title=f"TRN on {results['test_split']}",
    )
    print_summary(results, output_dir)


def print_summary(results: Mapping[str, Any], output_dir: Path) -> None:
    rows = [("test", results["test"])] + [(name, results[name]) for name in ("best", "last5_mean") if name in results]
    print("\n" + " | ".join(["split".ljust(11)] + [name[:14].rjust(14) for name in SUMMARY_METRICS]))
    for label, metrics in rows:
        cells = [f"{metrics[name]:.4f}".rjust(14) if name in metrics else "-".rjust(14) for name in SUMMARY_METRICS]
        print(" | ".join([label.ljust(11)] + cells))
    if results.get("train_analysis"):
        print("train split:", ", ".join(f"{k} {v:.4f}" for k, v in results["train_analysis"].items()))
    print(f"\nTRN for pipeline('image-classification'): {output_dir / 'trn'}\nmetrics: {output_dir / 'metrics.json'}")
