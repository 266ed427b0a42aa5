"""PIN's held-out reliability (PINConfig.reliability_holdout): every N-th training sample is kept out of PIN's label
losses, and only those samples measure the members, so memorising a noisy label earns a member no weight."""

import pytest
import torch
from torch.nn import functional as F

from poi_hf import PINForImageClassification, POIConfig, POIModel
from poi_hf.presets import tiny_pin_config, tiny_trn_config
from tiny_run import HOLDOUT, holdout_batch, tiny_synfer, tiny_trainer


def holdout_model(seed: int = 0) -> POIModel:
    torch.manual_seed(seed)
    return POIModel(POIConfig(pin_config=tiny_pin_config(**HOLDOUT), trn_config=tiny_trn_config())).train()


@pytest.mark.parametrize("folds", [1, -2])
def test_holdout_must_be_off_or_at_least_two_folds(folds):
    with pytest.raises(ValueError, match="reliability_holdout must be 0"):
        tiny_pin_config(member_weighting="reliability", reliability_holdout=folds)


def test_holdout_needs_measured_reliabilities():
    with pytest.raises(ValueError, match="member_weighting='reliability'"):
        tiny_pin_config(reliability_holdout=10)


def test_only_held_out_samples_move_the_member_accuracies():
    pin = PINForImageClassification(tiny_pin_config(**HOLDOUT))
    members, classes = len(pin.config.member_names), pin.config.num_labels
    labels = torch.tensor([0, 1, 2, 3])
    held_out = pin.holdout_mask(torch.tensor([4, 7, 10, 13]))
    assert held_out.tolist() == [True, False, True, False]
    logits = torch.zeros(4, members, classes)
    logits[:, 0] = F.one_hot(labels, classes) * 5.0  # member 0 right everywhere
    logits[:, 1] = F.one_hot((labels + 1) % classes, classes) * 5.0  # member 1 wrong everywhere
    logits[:, 2] = F.one_hot(torch.tensor([0, 1, 3, 3]), classes) * 5.0  # member 2: wrong on held-out row 2 only
    pin.update_member_accuracy(logits, labels, held_out)
    chance = 1.0 / classes
    assert pin.member_accuracy[:3].tolist() == pytest.approx([0.5 * chance + 0.5, 0.5 * chance, 0.5 * chance + 0.25])

    before = pin.member_accuracy.clone()
    pin.update_member_accuracy(logits, labels, torch.zeros(4, dtype=torch.bool))
    assert torch.equal(pin.member_accuracy, before)  # a batch without held-out samples measures nothing


def test_held_out_labels_train_the_trn_but_not_pin():
    model, inputs = holdout_model(), holdout_batch()
    outputs = model(**inputs)
    fitted = torch.tensor([False, True, False, True])
    members = outputs.pin_member_logits.shape[1]
    member_ce = F.cross_entropy(
        outputs.pin_member_logits.transpose(1, 2), inputs["labels"][:, None].expand(-1, members), reduction="none"
    ).mean(1)
    weight = model.config.pin_loss_weight
    assert outputs.loss_terms["pin_ce"].item() == pytest.approx(weight * member_ce[fitted].mean().item(), rel=1e-5)

    relabelled = dict(inputs, labels=inputs["labels"].clone())
    relabelled["labels"][~fitted] = torch.tensor([5, 6])  # other labels on the held-out rows
    again = holdout_model()(**relabelled)
    for name in ("pin_ce", "pin_au"):
        assert torch.allclose(again.loss_terms[name], outputs.loss_terms[name])
    assert not torch.allclose(again.loss_terms["trn_ce"], outputs.loss_terms["trn_ce"])


def test_the_held_out_rows_measure_the_members_in_joint_training():
    model, inputs = holdout_model(), holdout_batch()
    before = model.pin.member_accuracy.clone()
    outputs = model(**inputs)
    held_out = torch.tensor([True, False, True, False])
    correct = (outputs.pin_member_logits[held_out].argmax(-1) == inputs["labels"][held_out, None]).float().mean(0)
    assert torch.allclose(model.pin.member_accuracy, before.lerp(correct, 0.5))

    fitted_relabelled = dict(inputs, labels=inputs["labels"].clone())
    fitted_relabelled["labels"][~held_out] = torch.tensor([6, 5])
    other = holdout_model()
    other(**fitted_relabelled)
    assert torch.equal(other.pin.member_accuracy, model.pin.member_accuracy)  # fitted labels measure nothing


def test_training_without_row_numbers_is_refused_and_evaluation_needs_none():
    model, inputs = holdout_model(), holdout_batch()
    del inputs["sample_index"]
    with pytest.raises(ValueError, match="pass sample_index"):
        model(**inputs)
    model.eval()(**inputs)  # evaluation keeps nothing out


def test_standalone_pin_fits_only_the_other_samples():
    torch.manual_seed(0)
    pin = PINForImageClassification(tiny_pin_config(**HOLDOUT)).train()
    inputs = holdout_batch()
    outputs = pin(inputs["pixel_values"], labels=inputs["labels"], sample_index=inputs["sample_index"])
    members = outputs.member_logits.shape[1]
    per_sample = F.cross_entropy(
        outputs.member_logits.transpose(1, 2), inputs["labels"][:, None].expand(-1, members), reduction="none"
    ).mean(1)
    assert outputs.loss.item() == pytest.approx(per_sample[[1, 3]].mean().item(), rel=1e-5)

    all_held_out = pin(inputs["pixel_values"], labels=inputs["labels"], sample_index=torch.tensor([0, 2, 4, 6]))
    assert all_held_out.loss.item() == 0.0
    all_held_out.loss.backward()  # still a graph: a batch with nothing to fit is no error


def test_trainer_passes_the_row_numbers(tmp_path, synfer_cache):
    dataset = tiny_synfer(synfer_cache, num_train=32, num_eval=8, augment=False)
    model = holdout_model()
    before = model.pin.member_accuracy.clone()
    tiny_trainer(tmp_path, dataset, model=model, num_train_epochs=1, save_strategy="no").train()
    assert not torch.equal(model.pin.member_accuracy, before)  # without the row numbers training would raise
