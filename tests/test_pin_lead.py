"""POIConfig.transfer_schedule="pin_lead": the held-out faces of PIN's reliability_holdout train neither network and
measure both, and the transfer weight is the ramp times PIN's lead over the TRN on them."""

import pytest
import torch

from poi_hf import POIConfig, POIModel
from poi_hf.presets import tiny_pin_config, tiny_trn_config
from tiny_run import HOLDOUT, holdout_batch, tiny_synfer, tiny_trainer


def lead_model(seed: int = 0, momentum: float = 0.5, **overrides) -> POIModel:
    torch.manual_seed(seed)
    config = POIConfig(
        pin_config=tiny_pin_config(**{**HOLDOUT, "reliability_momentum": momentum}),
        trn_config=tiny_trn_config(),
        transfer_schedule="pin_lead",
        **overrides,
    )
    return POIModel(config).train()


def test_pin_lead_needs_a_holdout_and_the_transfer():
    with pytest.raises(ValueError, match="reliability_holdout >= 2"):
        POIConfig(
            pin_config=tiny_pin_config(member_weighting="reliability"),
            trn_config=tiny_trn_config(),
            transfer_schedule="pin_lead",
        )
    with pytest.raises(ValueError, match="use_pin_soft_labels"):
        lead_model(use_pin_soft_labels=False)
    with pytest.raises(ValueError, match="transfer_schedule must be one of"):
        POIConfig(pin_config=tiny_pin_config(), trn_config=tiny_trn_config(), transfer_schedule="clock")


def far_ahead_model() -> POIModel:
    """A PIN so far ahead that one batch cannot change the lead (1): held-out labels then only measure."""
    model = lead_model(momentum=0.9)
    model.heldout_accuracy.copy_(torch.tensor([0.95, 0.2]))
    return model


def test_held_out_labels_train_neither_network():
    inputs = holdout_batch()
    outputs = far_ahead_model()(**inputs)
    relabelled = dict(inputs, labels=inputs["labels"].clone())
    relabelled["labels"][[0, 2]] = torch.tensor([5, 6])  # other labels on the held-out rows
    again = far_ahead_model()(**relabelled)
    for name in ("pin_ce", "pin_au", "trn_ce", "trn_transfer", "alpha_reg", "transfer_weight"):
        assert torch.allclose(again.loss_terms[name], outputs.loss_terms[name]), name

    fitted = dict(inputs, labels=inputs["labels"].clone())
    fitted["labels"][[1, 3]] = torch.tensor([6, 5])
    other = far_ahead_model()(**fitted)
    assert not torch.allclose(other.loss_terms["trn_ce"], outputs.loss_terms["trn_ce"])


def test_held_out_rows_measure_pin_and_the_trn():
    model, inputs = lead_model(), holdout_batch()
    outputs = model(**inputs)
    held_out = torch.tensor([True, False, True, False])
    labels = inputs["labels"][held_out]
    correct = torch.stack(
        [
            (outputs.pin_soft_labels[held_out].argmax(-1) == labels).float().mean(),
            (outputs.logits[held_out].argmax(-1) == labels).float().mean(),
        ]
    )
    chance = torch.full((2,), 1.0 / model.config.num_labels)
    assert torch.allclose(model.heldout_accuracy, chance.lerp(correct, 0.5))


@pytest.mark.parametrize(
    "accuracies, lead",
    [
        ((1 / 7, 0.6), 0.0),  # PIN at chance: no transfer
        ((0.8, 0.6), 1.0),  # PIN ahead: the full ramp
        ((0.4, 0.6), (0.4 - 1 / 7) / (0.6 - 1 / 7)),  # PIN behind: its share of the TRN's excess over chance
        ((0.5, 1 / 7), 1.0),  # TRN at chance, PIN above: full
    ],
)
def test_the_transfer_weight_is_the_ramp_times_the_lead(accuracies, lead):
    model = lead_model().eval()  # evaluation measures nothing, so the set accuracies hold
    model.heldout_accuracy.copy_(torch.tensor(accuracies))
    outputs = model(**holdout_batch(), beta=0.5)
    assert outputs.loss_terms["transfer_weight"].item() == pytest.approx(0.5 * lead, abs=1e-6)


def test_the_ramp_schedule_keeps_the_given_weight():
    torch.manual_seed(0)
    model = POIModel(POIConfig(pin_config=tiny_pin_config(), trn_config=tiny_trn_config())).train()
    inputs = holdout_batch()
    del inputs["sample_index"]
    assert model(**inputs, beta=0.25).loss_terms["transfer_weight"].item() == pytest.approx(0.25)
    assert "heldout_accuracy" not in model.state_dict()  # other checkpoints keep their keys


def test_training_moves_the_accuracies_and_a_checkpoint_keeps_them(tmp_path, synfer_cache):
    dataset = tiny_synfer(synfer_cache, num_train=32, num_eval=8, augment=False)
    model = lead_model()
    tiny_trainer(tmp_path, dataset, model=model, num_train_epochs=1, save_strategy="no").train()
    chance = torch.full((2,), 1.0 / model.config.num_labels)
    assert not torch.equal(model.heldout_accuracy, chance)
    model.save_pretrained(tmp_path / "poi")
    reloaded = POIModel.from_pretrained(tmp_path / "poi")
    assert torch.equal(reloaded.heldout_accuracy, model.heldout_accuracy)
