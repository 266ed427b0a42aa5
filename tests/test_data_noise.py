"""Synthetic label noise: rate, never the same class, reproducible, train split only, clean labels kept."""

import logging

import numpy as np
import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features

from poi_hf.data import add_label_noise, flip_labels, noise_rate_of, replace_labels
from poi_hf.data.rafdb import RAFDB_CLASSES

LABELS = np.random.default_rng(0).integers(0, 7, size=5000)


@pytest.mark.parametrize("noise_type", ["symmetric", "pair", "asymmetric"])
@pytest.mark.parametrize("rate", [0.0, 0.1, 0.3, 1.0])
def test_rate_and_never_same_class(noise_type, rate):
    noisy = flip_labels(LABELS, 7, rate, noise_type, seed=1, class_names=RAFDB_CLASSES)
    changed = noisy != LABELS
    assert changed.sum() == round(rate * len(LABELS))  # every chosen label moves to another class
    assert noisy.min() >= 0 and noisy.max() < 7


def test_symmetric_targets_are_uniform_over_other_classes():
    noisy = flip_labels(LABELS, 7, 1.0, "symmetric", seed=2)
    for c in range(7):
        targets = np.bincount(noisy[LABELS == c], minlength=7)
        assert targets[c] == 0
        expected = (LABELS == c).sum() / 6
        assert (np.abs(np.delete(targets, c) - expected) < 5 * np.sqrt(expected)).all()


def test_pair_and_asymmetric_mappings():
    pair = flip_labels(LABELS, 7, 1.0, "pair", seed=0)
    np.testing.assert_array_equal(pair, (LABELS + 1) % 7)
    asymmetric = flip_labels(LABELS, 7, 1.0, "asymmetric", seed=0, class_names=RAFDB_CLASSES)
    names = np.array(RAFDB_CLASSES)
    pairs = set(zip(names[LABELS], names[asymmetric]))
    assert ("surprise", "fear") in pairs and ("anger", "disgust") in pairs and ("neutral", "sadness") in pairs
    with pytest.raises(ValueError, match="class_names"):
        flip_labels(LABELS, 7, 0.1, "asymmetric")


def test_seeded():
    first = flip_labels(LABELS, 7, 0.2, seed=3)
    np.testing.assert_array_equal(first, flip_labels(LABELS, 7, 0.2, seed=3))
    assert (first != flip_labels(LABELS, 7, 0.2, seed=4)).any()


def test_add_label_noise_touches_train_only_and_reports(caplog):
    features = Features({"label": ClassLabel(names=list(RAFDB_CLASSES))})
    clean = DatasetDict(
        train=Dataset.from_dict({"label": LABELS[:1000].tolist()}, features=features),
        test=Dataset.from_dict({"label": LABELS[1000:1100].tolist()}, features=features),
    )
    with caplog.at_level(logging.INFO, logger="poi_hf.data.noise"):
        noisy, rate = add_label_noise(clean, 0.2, "symmetric", seed=0)
    assert rate == pytest.approx(0.2) and noise_rate_of(noisy["train"]) == pytest.approx(0.2)
    assert "achieved 0.2000" in caplog.text
    assert noisy["train"]["clean_label"][:] == LABELS[:1000].tolist()
    assert noisy["train"].features["clean_label"] == features["label"]
    assert noisy["test"] is clean["test"] and "clean_label" not in noisy["test"].column_names

    # Noise on top of noise keeps the first clean labels (as for SynFER, which ships its own clean_label).
    again, _ = add_label_noise(noisy, 0.1, seed=1)
    assert again["train"]["clean_label"][:] == LABELS[:1000].tolist()


def test_replace_labels_checks_length():
    dataset = Dataset.from_dict({"label": [0, 1]}, features=Features({"label": ClassLabel(names=["a", "b"])}))
    with pytest.raises(ValueError, match="3 labels"):
        replace_labels(dataset, [0, 1, 1])
