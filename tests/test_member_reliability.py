"""PIN's reliability pooling (member_weighting="reliability"): running member accuracies, their log-odds weights,
the weighted geometric mean, and that the accuracies are trained and saved."""

import math

import pytest
import torch
from torch.nn import functional as F

from poi_hf import PINForImageClassification, POIConfig, POIModel
from poi_hf.losses import peer_mutual_loss
from poi_hf.presets import tiny_pin_config, tiny_trn_config


def reliability_pin(**overrides) -> PINForImageClassification:
    settings = {"member_weighting": "reliability", "use_confidence_weighting": False, **overrides}
    return PINForImageClassification(tiny_pin_config(**settings))


def test_member_accuracy_starts_at_chance_and_follows_the_batches():
    pin = reliability_pin(reliability_momentum=0.5)
    members, classes = pin.config.num_regions + 1, pin.config.num_labels
    assert torch.allclose(pin.member_accuracy, torch.full((members,), 1.0 / classes))
    labels = torch.tensor([0, 1, 2, 3])
    logits = torch.zeros(4, members, classes)
    logits[:, 0] = F.one_hot(labels, classes) * 5.0  # member 0 right on all four
    logits[:, 1] = F.one_hot((labels + 1) % classes, classes) * 5.0  # member 1 always wrong
    logits[:2, 2] = F.one_hot(labels[:2], classes) * 5.0  # member 2 right on half
    logits[2:, 2] = F.one_hot((labels[2:] + 1) % classes, classes) * 5.0
    pin.update_member_accuracy(logits, labels)
    chance = 1.0 / classes
    assert pin.member_accuracy[:3].tolist() == pytest.approx([0.5 * chance + 0.5, 0.5 * chance, 0.5 * chance + 0.25])


def test_reliability_is_the_log_odds_over_chance():
    pin = reliability_pin()
    classes = pin.config.num_labels
    pin.member_accuracy.copy_(torch.tensor([0.5, 1.0 / classes, 0.0, 0.8, 0.5, 0.5]))
    expected_half = math.log(classes - 1)  # odds 1 against a chance member's 1 / (C - 1)
    assert pin.member_reliability().tolist() == pytest.approx(
        [expected_half, 1e-3, 1e-3, math.log(4.0 * (classes - 1)), expected_half, expected_half], rel=1e-5
    )


def test_soft_label_is_the_weighted_geometric_mean_of_the_tempered_members():
    pin = reliability_pin()
    members, classes = pin.config.num_regions + 1, pin.config.num_labels
    torch.manual_seed(0)
    logits = torch.randn(3, members, classes) * 3
    pin.member_accuracy.copy_(torch.linspace(0.3, 0.8, members))
    soft, weights, contributions = pin.aggregate(logits)

    w = pin.member_reliability() / pin.member_reliability().sum()
    tempered = F.softmax(logits / pin.config.temperature, dim=-1)
    pooled = (tempered ** w[None, :, None]).prod(dim=1)
    assert torch.allclose(soft, pooled / pooled.sum(-1, keepdim=True), atol=1e-6)
    assert torch.allclose(weights, w[None, :, None].expand(3, members, classes))
    assert torch.allclose(contributions.sum(1), torch.ones(3, classes), atol=1e-6)


def test_median_reference_gives_only_the_excess_over_the_typical_member_a_say():
    pin = reliability_pin(reliability_reference="median")
    members, classes = pin.config.num_regions + 1, pin.config.num_labels
    pin.member_accuracy.copy_(torch.tensor([0.40, 0.45, 0.50, 0.60, 0.70, 0.42]))
    reliability = pin.member_reliability()
    median = reliability.sort().values[2]  # the lower middle of six: the member at 0.45
    excess = (reliability - median).clamp_min(1e-3)
    assert excess[[0, 1, 5]].tolist() == pytest.approx([1e-3] * 3)  # the typical member and those below it
    torch.manual_seed(0)
    logits = torch.randn(3, members, classes) * 3
    soft, weights, _ = pin.aggregate(logits)
    w = excess / excess.sum()
    pooled = (F.softmax(logits / pin.config.temperature, dim=-1) ** w[None, :, None]).prod(dim=1)
    assert torch.allclose(soft, pooled / pooled.sum(-1, keepdim=True), atol=1e-6)
    assert torch.allclose(weights[0, :, 0], w)
    assert torch.equal(pin.member_reliability(), reliability)  # the mutual-learning gaps keep the chance reference


def test_unknown_reliability_reference_is_refused():
    with pytest.raises(ValueError, match="reliability_reference must be one of"):
        tiny_pin_config(member_weighting="reliability", reliability_reference="best")


def test_a_chance_level_member_has_no_say():
    pin = reliability_pin()
    members, classes = pin.config.num_regions + 1, pin.config.num_labels
    pin.member_accuracy.fill_(1.0 / classes)
    pin.member_accuracy[2] = 0.7
    logits = torch.randn(2, members, classes) * 4
    soft, _, _ = pin.aggregate(logits)
    assert torch.allclose(soft, F.softmax(logits[:, 2] / pin.config.temperature, dim=-1), atol=1e-2)


def test_joint_training_updates_and_saves_the_member_accuracies(tmp_path):
    torch.manual_seed(0)
    config = POIConfig(pin_config=tiny_pin_config(member_weighting="reliability"), trn_config=tiny_trn_config())
    model = POIModel(config).train()
    before = model.pin.member_accuracy.clone()
    size = config.pin_config.image_size
    model(pixel_values=torch.randn(4, 3, size, size), labels=torch.tensor([0, 1, 2, 3]))
    assert not torch.equal(model.pin.member_accuracy, before)
    model.eval()(pixel_values=torch.randn(2, 3, size, size), labels=torch.tensor([0, 1]))
    after_training = model.pin.member_accuracy.clone()
    model(pixel_values=torch.randn(2, 3, size, size), labels=torch.tensor([4, 5]))
    assert torch.equal(model.pin.member_accuracy, after_training)  # evaluation measures, it does not learn

    model.pin.save_pretrained(tmp_path / "pin")
    reloaded = PINForImageClassification.from_pretrained(tmp_path / "pin")
    assert reloaded.config.member_weighting == "reliability"
    assert torch.equal(reloaded.member_accuracy, model.pin.member_accuracy)


def test_prior_weighted_checkpoints_keep_their_keys():
    assert "member_accuracy" not in PINForImageClassification(tiny_pin_config()).state_dict()


def test_unknown_member_weighting_is_refused():
    with pytest.raises(ValueError, match="member_weighting must be one of"):
        tiny_pin_config(member_weighting="votes")


def test_peer_mutual_loss_is_the_gap_weighted_pairwise_kl():
    torch.manual_seed(0)
    batch, members, classes, temperature = 3, 4, 5, 2.0
    logits = torch.randn(batch, members, classes) * 2
    reliability = torch.tensor([1.0, 2.5, 0.5, 2.5])
    expected = 0.0
    probs = F.softmax(logits / temperature, dim=-1)
    for k in range(members):
        for j in range(members):
            gap = max(float(reliability[j] - reliability[k]), 0.0)
            kl = (probs[:, j] * (probs[:, j].log() - probs[:, k].log())).sum(-1).mean()
            expected += gap * temperature**2 * kl / members
    assert peer_mutual_loss(logits, reliability, temperature).item() == pytest.approx(float(expected), rel=1e-5)


def test_only_less_reliable_members_are_pulled_and_equal_members_not_at_all():
    logits = torch.randn(2, 3, 4, requires_grad=True)
    peer_mutual_loss(logits, torch.tensor([0.5, 2.0, 1.0]), 2.0).backward()
    pulled = logits.grad.abs().sum(dim=(0, 2))
    assert pulled[1] == 0 and pulled[0] > 0 and pulled[2] > 0  # the most reliable member learns from nobody
    assert peer_mutual_loss(logits, torch.full((3,), 1.5), 2.0).item() == 0.0  # at the start: all at chance


def test_joint_training_with_reliable_peers_uses_the_running_reliabilities():
    torch.manual_seed(0)
    pin = tiny_pin_config(member_weighting="reliability")
    # evaluation mode keeps the running accuracies where the test puts them
    model = POIModel(POIConfig(pin_config=pin, trn_config=tiny_trn_config(), mutual_target="reliable_peers")).eval()
    size = pin.image_size
    pixels, labels = torch.randn(4, 3, size, size), torch.tensor([0, 1, 2, 3])
    at_chance = model(pixel_values=pixels, labels=labels).loss_terms["pin_mutual"]
    assert at_chance.item() == pytest.approx(0.0, abs=1e-4)  # nobody is more reliable yet: no pull
    model.pin.member_accuracy.copy_(torch.linspace(0.2, 0.8, pin.num_regions + 1))
    outputs = model(pixel_values=pixels, labels=labels)
    expected = peer_mutual_loss(outputs.pin_member_logits, model.pin.member_reliability(), pin.temperature)
    assert outputs.loss_terms["pin_mutual"].item() == pytest.approx(expected.item(), rel=1e-4)
    outputs.loss.backward()


def test_reliable_peers_needs_measured_reliabilities():
    with pytest.raises(ValueError, match="member_weighting='reliability'"):
        POIConfig(pin_config=tiny_pin_config(), trn_config=tiny_trn_config(), mutual_target="reliable_peers")
    with pytest.raises(ValueError, match="mutual_target must be one of"):
        POIConfig(pin_config=tiny_pin_config(), trn_config=tiny_trn_config(), mutual_target="everyone")
