"""Training-curve and confusion-matrix figures (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_training_curves(log_history: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Loss terms per step (left) and evaluation accuracy of TRN and PIN per epoch (right)."""
    train = [entry for entry in log_history if "loss" in entry and "step" in entry]
    evaluations = [entry for entry in log_history if "eval_accuracy" in entry]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name in ("loss", "pin_ce", "trn_ce", "trn_transfer", "alpha_mean"):
        points = [(entry["step"], entry[name]) for entry in train if name in entry]
        if points:
            left.plot(*zip(*points), label=name)
    left.set_xlabel("step")
    left.set_title("training")
    left.legend(fontsize=8)
    for name, label in (("eval_accuracy", "TRN"), ("eval_pin_accuracy", "PIN soft label")):
        points = [(entry["epoch"], entry[name]) for entry in evaluations if name in entry]
        if points:
            right.plot(*zip(*points), marker="o", label=label)
    right.set_xlabel("epoch")
    right.set_title("evaluation accuracy")
    right.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return Path(path)


def plot_confusion_matrix(matrix: np.ndarray, class_names: Sequence[str], path: str | Path, title: str = "") -> Path:
    """Row-normalised confusion matrix (rows: true class) with counts in each cell."""
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    figure, axis = plt.subplots(figsize=(1.0 + 0.8 * len(class_names), 0.8 + 0.8 * len(class_names)))
    axis.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    axis.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    axis.set_yticks(range(len(class_names)), class_names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    for row in range(len(class_names)):
        for col in range(len(class_names)):
            axis.text(
                col,
                row,
                f"{matrix[row, col]}",
                ha="center",
                va="center",
                color="white" if rates[row, col] > 0.5 else "black",
                fontsize=8,
            )
    axis.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return Path(path)
