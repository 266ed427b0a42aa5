"""Baselines' losses against hand-computed values; SCN relabels exactly the samples its margin rule selects."""

import math

import numpy as np
import pytest
import torch

from poi_hf.baselines import BaselineSettings, baseline_losses, scn_relabel
from poi_hf.metrics import auroc, spearman, uncertainty_metrics
from poi_hf.trainer import SCNLoss
from tiny_run import tiny_baseline_trainer, tiny_synfer

LN3 = math.log(3.0)
LOGITS = torch.tensor([[0.0, LN3]])  # softmax = [0.25, 0.75]


def test_ce_and_label_smoothing_by_hand():
    labels = torch.tensor([1])
    ce = baseline_losses(BaselineSettings("ce"), LOGITS, torch.ones(1), labels)
    assert ce["loss"].item() == pytest.approx(-math.log(0.75))
    smooth = baseline_losses(BaselineSettings("label_smoothing", label_smoothing=0.2), LOGITS, torch.ones(1), labels)
    # target (1 - 0.2) * [0, 1] + 0.2 / 2 = [0.1, 0.9]
    assert smooth["loss"].item() == pytest.approx(-(0.1 * math.log(0.25) + 0.9 * math.log(0.75)))


def test_scn_loss_by_hand():
    settings = BaselineSettings("scn", scn_rank_margin=0.15, scn_high_ratio=0.5)
    logits = torch.tensor([[0.0, 2 * LN3], [0.0, 2 * LN3]])
    confidence = torch.tensor([0.5, 0.45])
    terms = baseline_losses(settings, logits, confidence, torch.tensor([1, 1]))
    # alpha-scaled logits: [0, ln 3] -> p = 0.75; [0, 0.9 ln 3] -> p = 3^0.9 / (1 + 3^0.9)
    expected_ce = -(math.log(0.75) + math.log(3**0.9 / (1 + 3**0.9))) / 2
    assert terms["ce"].item() == pytest.approx(expected_ce, rel=1e-6)
    assert terms["rank"].item() == pytest.approx(0.15 - 0.05)  # high half 0.5, low half 0.45
    assert terms["loss"].item() == pytest.approx(expected_ce + 0.1, rel=1e-6)
    warm = baseline_losses(settings, logits, confidence, torch.tensor([1, 1]), warming_up=True)
    assert set(warm) == {"ce", "loss"} and warm["ce"].item() == pytest.approx(-math.log(0.9))  # softmax([0, 2 ln 3])


def test_kd_by_hand():
    settings = BaselineSettings("kd", kd_weight=0.25, kd_temperature=2.0)
    terms = baseline_losses(
        settings, torch.zeros(1, 2), torch.ones(1), torch.tensor([0]), teacher_logits=torch.tensor([[2 * LN3, 0.0]])
    )
    # teacher at T=2: softmax([ln 3, 0]) = [0.75, 0.25]; student uniform; KL = 0.75 ln 1.5 + 0.25 ln 0.5; x T^2
    kl = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert terms["ce"].item() == pytest.approx(0.75 * math.log(2))
    assert terms["kd"].item() == pytest.approx(0.25 * 4 * kl, rel=1e-6)
    with pytest.raises(ValueError, match="teacher logits"):
        baseline_losses(settings, torch.zeros(1, 2), torch.ones(1), torch.tensor([0]))


def test_scn_relabel_only_where_margin_holds():
    probs = torch.tensor(
        [
            [0.70, 0.20, 0.10],  # label 1: 0.70 - 0.20 = 0.50 > 0.2 -> relabel to 0
            [0.45, 0.30, 0.25],  # label 1: 0.15 <= 0.2 -> keep
            [0.10, 0.10, 0.80],  # label 2 is the top class -> keep
            [0.41, 0.39, 0.20],  # label 2: 0.21 > 0.2 -> relabel to 0
        ]
    )
    labels = torch.tensor([1, 1, 2, 2])
    assert scn_relabel(probs, labels, 0.2).tolist() == [0, 1, 2, 0]
    assert scn_relabel(probs, labels, 0.6).tolist() == [1, 1, 2, 2]


def test_unknown_baseline():
    with pytest.raises(ValueError, match="Baseline method must be one of"):
        BaselineSettings("mixup")


def test_auroc_by_hand():
    assert auroc([0.9, 0.8, 0.3, 0.1], [True, True, False, False]) == 1.0
    assert auroc([0.1, 0.9, 0.3, 0.8], [True, True, False, False]) == 0.5
    assert auroc([0.5, 0.5, 0.5], [True, False, False]) == 0.5  # ties count half
    assert math.isnan(auroc([0.1, 0.2], [True, True]))


def test_spearman_and_uncertainty_metrics_by_hand():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 45]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(np.sqrt(0.9))  # ties take their average rank
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.45, 0.55]])
    labels = np.array([0, 1, 1, 0])  # right, wrong, right, wrong
    flat, peaked = np.full(2, 0.5), np.array([1.0, 0.0])
    true = np.stack([peaked, flat, peaked, flat])  # the wrong ones are the ambiguous ones
    metrics = uncertainty_metrics(np.array([0.8, 0.2, 0.7, 0.1]), probs, labels, true)
    assert metrics["confidence_error_auroc"] == 1.0
    assert metrics["max_softmax_error_auroc"] == 0.75  # right 0.9, 0.7 vs wrong 0.8, 0.55: one pair of four misordered
    assert metrics["confidence_entropy_spearman"] == pytest.approx(-np.sqrt(0.8))
    assert "pin_support_error_auroc" not in metrics
    # PIN's support of the TRN's predictions (classes 0, 0, 1, 1): 0.6, 0.9, 0.8, 0.3 -> right 0.6, 0.8 vs wrong 0.9, 0.3
    pin_probs = np.array([[0.6, 0.4], [0.9, 0.1], [0.2, 0.8], [0.7, 0.3]])
    with_pin = uncertainty_metrics(np.array([0.8, 0.2, 0.7, 0.1]), probs, labels, true, pin_probs)
    assert with_pin["pin_support_error_auroc"] == 0.5
    assert with_pin["pin_support_entropy_spearman"] == pytest.approx(spearman([0.6, 0.9, 0.8, 0.3], [0, 1, 0, 1]))


def test_scn_trainer_relabels_training_samples(tmp_path):
    """With relabelling from the first step and margin -1 (always true) every seen sample takes the predicted class,
    in the SCN loss's label table that later batches read."""
    dataset = tiny_synfer(tmp_path / "synfer", num_train=32, num_eval=8)
    settings = BaselineSettings("scn", scn_relabel_epoch=0.0, scn_relabel_margin=-1.0, baseline_warmup_epochs=0.0)
    trainer = tiny_baseline_trainer(tmp_path / "run", dataset, settings, num_train_epochs=1, save_strategy="no")
    before = trainer.loss.label_table.clone()
    trainer.train()
    assert not torch.equal(trainer.loss.label_table, before)
    assert [entry["relabelled"] for entry in trainer.state.log_history if "relabelled" in entry][-1] > 0


def test_scn_needs_row_numbers_and_kd_a_teacher(tmp_path, synfer_cache):
    dataset = tiny_synfer(synfer_cache, num_train=16, num_eval=8)
    dataset["train"] = dataset["train"].remove_columns("index")
    with pytest.raises(ValueError, match=r"SCN relabelling needs a training dataset with an 'index' column.*got "):
        tiny_baseline_trainer(tmp_path, dataset, BaselineSettings("scn"))
    with pytest.raises(ValueError, match=r"needs a training dataset .* got columns None"):
        SCNLoss(BaselineSettings("scn"), None)
    with pytest.raises(ValueError, match=r"The kd baseline needs a teacher: a trained TRN \(train.py: --teacher_path"):
        tiny_baseline_trainer(tmp_path, dataset, BaselineSettings("kd"))
