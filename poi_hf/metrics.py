"""FER metrics in numpy (no Hub: `evaluate.load(...)` needs the internet).

All functions take ``probs`` (N, C) predicted distributions and ``labels`` (N,) class indices.
"""

import numpy as np


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) counts; rows are true classes, columns predicted classes."""
    return np.bincount(labels * num_classes + predictions, minlength=num_classes**2).reshape(num_classes, num_classes)


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, num_bins: int = 15) -> float:
    """ECE with equal-width confidence bins (Guo et al., 2017)."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    bins = np.minimum((confidence * num_bins).astype(int), num_bins - 1)
    counts = np.bincount(bins, minlength=num_bins)
    gap = np.abs(
        np.bincount(bins, weights=confidence, minlength=num_bins)
        - np.bincount(bins, weights=correct, minlength=num_bins)
    )
    return float(gap.sum() / max(len(labels), 1)) if counts.sum() else 0.0


def kl_divergence(target: np.ndarray, probs: np.ndarray) -> float:
    """Mean KL(target || probs) over samples, in nats."""
    target = np.clip(target, 1e-12, None)
    return float(np.mean(np.sum(target * (np.log(target) - np.log(np.clip(probs, 1e-12, None))), axis=1)))


def classification_metrics(probs: np.ndarray, labels: np.ndarray, true_distribution: np.ndarray | None = None) -> dict:
    """accuracy, mean class accuracy, macro-F1, NLL, ECE, and KL(true || pred) when a true distribution is given.

    Classes absent from ``labels`` are left out of the mean class accuracy; F1 counts them (F1 = 0 if predicted).
    """
    num_classes = probs.shape[1]
    predictions = probs.argmax(axis=1)
    matrix = confusion_matrix(labels, predictions, num_classes)
    support, predicted, hits = matrix.sum(axis=1), matrix.sum(axis=0), np.diag(matrix)
    recall = np.divide(hits, support, out=np.zeros(num_classes), where=support > 0)
    precision = np.divide(hits, predicted, out=np.zeros(num_classes), where=predicted > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(num_classes), where=precision + recall > 0)
    present = (support > 0) | (predicted > 0)
    metrics = {
        "accuracy": float((predictions == labels).mean()),
        "mean_class_accuracy": float(recall[support > 0].mean()),
        "macro_f1": float(f1[present].mean()),
        "nll": float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)))),
        "ece": expected_calibration_error(probs, labels),
    }
    if true_distribution is not None:
        metrics["kl_true"] = kl_divergence(true_distribution, probs)
    return metrics


def auroc(scores: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` (N,) separating ``positives`` (N,) bool from the rest (Mann-Whitney U,
    ties counted half). NaN when one group is empty."""
    positives = np.asarray(positives, dtype=bool)
    num_pos, num_neg = positives.sum(), (~positives).sum()
    if num_pos == 0 or num_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    _, groups, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ranks = (np.bincount(groups, weights=ranks) / counts)[groups]  # average rank within ties
    return float((ranks[positives].sum() - num_pos * (num_pos + 1) / 2) / (num_pos * num_neg))
