"""SynFER labels: true emotion distributions, the AU vectors they produce, simulated annotators.

A sample's true distribution blends a primary emotion with (often) a secondary one; its AUs follow the blend of the
emotions' prototypes (``poi_hf.priors.EMOTION_AUS``, keyed by name) at a sampled intensity, plus noise. Annotators
see the true distribution through their own confusion biases and lapses:

    p(vote = k | d, annotator j) = (1 - lapse_j) * (d @ M_j)[k] + lapse_j / C

with ``M_j`` row-stochastic. Each sample gets ``N`` votes from distinct annotators of a fixed pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ...priors import AU_NAMES, au_prior_table

CONFUSABLE_PAIRS: dict[str, tuple[str, ...]] = {
    "neutral": ("sadness", "contempt"),
    "happiness": ("surprise", "contempt"),
    "surprise": ("fear", "happiness"),
    "sadness": ("neutral", "fear"),
    "anger": ("disgust", "contempt"),
    "disgust": ("anger", "contempt"),
    "fear": ("surprise", "sadness"),
    "contempt": ("neutral", "happiness", "disgust"),
}
"""Emotions commonly mistaken for each other (FERPlus/RAF-DB confusion matrices): where secondary emotions of blends
and annotators' biases go."""

UNILATERAL: dict[str, tuple[str, ...]] = {"contempt": ("AU12", "AU14")}
"""AUs an emotion shows on one side of the face only (EMFACS contempt); the side is drawn per sample."""


def _confusable_matrix(class_names: Sequence[str]) -> np.ndarray:
    """(C, C) 0/1 matrix of the ``CONFUSABLE_PAIRS`` pairs among ``class_names``."""
    index = {name: i for i, name in enumerate(class_names)}
    table = np.zeros((len(class_names),) * 2, dtype=np.float64)
    for name, others in CONFUSABLE_PAIRS.items():
        for other in others:
            if name in index and other in index:
                table[index[name], index[other]] = 1.0
    return table


def sample_true_distributions(
    rng: np.random.Generator, n: int, class_names: Sequence[str], difficulty: float
) -> np.ndarray:
    """True emotion distributions (n, C) float32: primary weight ``1 - w``, secondary ``w < 0.5``, so the argmax is
    the primary. Blends are more frequent and more even at higher ``difficulty``."""
    num_classes = len(class_names)
    primary = rng.integers(num_classes, size=n)
    # secondary: a confusable emotion with probability 0.7, else any other one
    confusable = _confusable_matrix(class_names)
    others = (1 - np.eye(num_classes)) / (num_classes - 1)
    count = confusable.sum(1, keepdims=True)
    choice = np.where(count > 0, 0.7 * confusable / np.maximum(count, 1) + 0.3 * others, others)
    cdf = np.cumsum(choice, axis=1)
    secondary = np.minimum((rng.random((n, 1)) > cdf[primary]).sum(1), num_classes - 1)
    blended = rng.random(n) < 0.3 + 0.5 * difficulty
    weight = np.where(blended, rng.uniform(0.05, 0.25 + 0.2 * difficulty, n), 0.0)
    dist = np.zeros((n, num_classes), dtype=np.float32)
    rows = np.arange(n)
    dist[rows, primary] = 1 - weight
    dist[rows, secondary] += weight
    return dist


def sample_aus(rng: np.random.Generator, dist: np.ndarray, class_names: Sequence[str], difficulty: float) -> np.ndarray:
    """AU intensities (n, 2, A) per face side for true distributions ``dist`` (n, C).

    ``aus = clip(intensity * dist @ P + noise, 0, 1)`` with ``P`` the prototype table; ``intensity`` in
    ``[0.7 - 0.5 * difficulty, 1]`` (weak expressions drift towards neutral), Gaussian noise of std
    ``0.05 + 0.2 * difficulty`` shared by both sides plus a smaller per-side part. ``UNILATERAL`` AUs go to one side.
    """
    n = len(dist)
    prior = np.asarray(au_prior_table(class_names), dtype=np.float32)  # (C, A)
    sides = np.repeat(prior[None], 2, axis=0)  # (2, C, A): prototype per face side
    unilateral = np.zeros((len(class_names), len(AU_NAMES)), dtype=bool)
    for emotion, aus in UNILATERAL.items():
        if emotion in class_names:
            unilateral[list(class_names).index(emotion), [AU_NAMES.index(au) for au in aus]] = True
    strong_side = rng.integers(2, size=n)  # where unilateral AUs show
    weak = np.where(unilateral, 0.15, 1.0).astype(np.float32)  # what is left on the other side
    per_side = np.einsum("nc,sca->nsa", dist, sides)  # (n, 2, A)
    weak_part = np.einsum("nc,ca->na", dist, prior * weak)
    rows = np.arange(n)
    per_side[rows, 1 - strong_side] = weak_part
    intensity = rng.uniform(0.7 - 0.5 * difficulty, 1.0, (n, 1, 1))
    sigma = 0.05 + 0.2 * difficulty
    shared, own = rng.standard_normal((n, 1, len(AU_NAMES))), rng.standard_normal((n, 2, len(AU_NAMES)))
    noise = sigma * (shared + 0.3 * own)
    return np.clip(intensity * per_side + noise, 0, 1).astype(np.float32)


@dataclass
class AnnotatorPool:
    """Simulated annotators: ``confusion`` (M, C, C) row-stochastic, ``lapse`` (M,) rate of uniform random votes."""

    confusion: np.ndarray
    lapse: np.ndarray

    def vote_probabilities(self, dist: np.ndarray, annotators: np.ndarray) -> np.ndarray:
        """p(vote) (n, k, C) of annotators (n, k) for true distributions (n, C)."""
        lapse = self.lapse[annotators][..., None]
        return (1 - lapse) * np.einsum("nc,nkcd->nkd", dist, self.confusion[annotators]) + lapse / dist.shape[1]

    def expected_votes(self, dist: np.ndarray) -> np.ndarray:
        """Mean vote distribution (n, C) of an annotator drawn uniformly from the pool."""
        everyone = np.broadcast_to(np.arange(len(self.lapse)), (len(dist), len(self.lapse)))
        return self.vote_probabilities(dist, everyone).mean(1)


def sample_annotator_pool(rng: np.random.Generator, class_names: Sequence[str], size: int = 40) -> AnnotatorPool:
    """Each annotator moves up to 30% of a class's perception to each confusable class it is biased on (each bias
    present with probability 1/2), and lapses (votes uniformly at random) at a rate in [0.02, 0.12]."""
    pairs = _confusable_matrix(class_names)
    bias = pairs * rng.uniform(0, 0.3, (size,) + pairs.shape) * (rng.random((size,) + pairs.shape) < 0.5)
    bias /= np.maximum(bias.sum(2, keepdims=True), 1.0)  # never move more than the whole class
    confusion = bias + np.eye(len(class_names)) * (1 - bias.sum(2, keepdims=True))
    return AnnotatorPool(confusion=confusion, lapse=rng.uniform(0.02, 0.12, size))


def sample_votes(
    rng: np.random.Generator, pool: AnnotatorPool, dist: np.ndarray, num_votes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Votes of ``num_votes`` distinct pool annotators per sample.

    Returns:
        counts: (n, C) int64 vote counts.
        first: (n,) the first annotator's vote (the "subjective" single label).
    """
    n, num_classes = dist.shape
    annotators = np.argsort(rng.random((n, len(pool.lapse))), axis=1)[:, :num_votes]
    cdf = np.cumsum(pool.vote_probabilities(dist, annotators), axis=-1)
    votes = np.minimum((rng.random((n, num_votes, 1)) > cdf).sum(-1), num_classes - 1)
    counts = (votes[..., None] == np.arange(num_classes)).sum(1)
    return counts, votes[:, 0]


def majority(rng: np.random.Generator, counts: np.ndarray) -> np.ndarray:
    """Most voted class per row; ties broken uniformly at random."""
    return np.argmax(counts + rng.uniform(0, 0.5, counts.shape), axis=1)
