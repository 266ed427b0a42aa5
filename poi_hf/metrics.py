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


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values`` (N,), ties sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    _, groups, counts = np.unique(values, return_inverse=True, return_counts=True)
    return (np.bincount(groups, weights=ranks) / counts)[groups]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two (N,) arrays; NaN when either is constant."""
    ranks_a, ranks_b = _ranks(np.asarray(a, dtype=float)), _ranks(np.asarray(b, dtype=float))
    if ranks_a.std() == 0 or ranks_b.std() == 0:
        return float("nan")
    return float(np.corrcoef(ranks_a, ranks_b)[0, 1])


def uncertainty_metrics(
    confidence: np.ndarray,
    probs: np.ndarray,
    labels: np.ndarray,
    true_distribution: np.ndarray | None = None,
    pin_probs: np.ndarray | None = None,
) -> dict:
    """How well a per-image ``confidence`` (N,) tells the classifier's right answers from its errors, next to the
    free baseline, the max softmax probability of ``probs`` (N, C): AUROC of each for "prediction is right" (0.5 =
    chance). With a known true distribution (N, C), the Spearman correlation of confidence with its entropy (an
    estimate worth exposing falls on ambiguous faces, i.e. is negative). With PIN's distribution ``pin_probs``
    (N, C), the same for PIN's support of the prediction, ``pin_probs[argmax probs]`` (the FER pipeline's
    ``pin_support``)."""
    right = probs.argmax(axis=1) == labels
    scores = {"confidence": confidence, "max_softmax": probs.max(axis=1)}
    if pin_probs is not None:
        scores["pin_support"] = pin_probs[np.arange(len(probs)), probs.argmax(axis=1)]
    metrics = {f"{name}_error_auroc": auroc(score, right) for name, score in scores.items()}
    if true_distribution is not None:
        entropy = -np.sum(true_distribution * np.log(np.clip(true_distribution, 1e-12, None)), axis=1)
        metrics["confidence_entropy_spearman"] = spearman(confidence, entropy)
        if pin_probs is not None:
            metrics["pin_support_entropy_spearman"] = spearman(scores["pin_support"], entropy)
    return metrics


def auroc(scores: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` (N,) separating ``positives`` (N,) bool from the rest (Mann-Whitney U,
    ties counted half). NaN when one group is empty."""
    positives = np.asarray(positives, dtype=bool)
    num_pos, num_neg = positives.sum(), (~positives).sum()
    if num_pos == 0 or num_neg == 0:
        return float("nan")
    ranks = _ranks(np.asarray(scores, dtype=float))
    return float((ranks[positives].sum() - num_pos * (num_pos + 1) / 2) / (num_pos * num_neg))
