"""POI-R losses against hand-computed values; each switch removes exactly its term."""

import math

import pytest
import torch

from poi_hf import POIConfig, POIModel
from poi_hf.losses import (
    anchor_transition,
    clean_label_probability,
    joint_losses,
    kl_to_target,
    label_trust,
    noise_aware_trust,
    pin_losses,
    prediction_support,
    soft_cross_entropy,
    transfer_weight,
    trn_losses,
    uncertainty_regularizer,
)
from poi_hf.presets import tiny_pin_config, tiny_trn_config

LN3 = math.log(3.0)


def test_soft_cross_entropy_and_kl_by_hand():
    logits = torch.tensor([[0.0, LN3]])  # softmax = [0.25, 0.75]
    assert soft_cross_entropy(logits, torch.tensor([[0.0, 1.0]])).item() == pytest.approx(-math.log(0.75))
    assert soft_cross_entropy(logits, torch.tensor([[0.5, 0.5]])).item() == pytest.approx(
        -(0.5 * math.log(0.25) + 0.5 * math.log(0.75))
    )
    # T = 2: softmax([0, 2 ln 3] / 2) = [0.25, 0.75]; KL([1, 0] || that) = ln 4; times T^2 = 4
    assert kl_to_target(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2 * LN3]]), 2.0).item() == pytest.approx(
        4 * math.log(4.0)
    )
    assert kl_to_target(torch.tensor([[0.5, 0.5]]), torch.zeros(1, 2), 3.0).item() == pytest.approx(0.0, abs=1e-7)


def test_transfer_ramp():
    assert transfer_weight(0.0, 2.0, 4.0) == pytest.approx(2.0 * math.exp(-5.0))
    assert transfer_weight(2.0, 2.0, 4.0) == pytest.approx(2.0 * math.exp(-1.25))
    assert transfer_weight(4.0, 2.0, 4.0) == transfer_weight(9.0, 2.0, 4.0) == 2.0
    assert transfer_weight(0.0, 2.0, 4.0, dynamic=False) == 2.0
    weights = [transfer_weight(e / 4, 1.0, 4.0) for e in range(20)]
    assert weights == sorted(weights)


def test_uncertainty_regularizers_by_hand():
    assert uncertainty_regularizer(torch.tensor([0.5, 1.0]), "log").item() == pytest.approx(math.log(2) / 2)
    # rank: top 70% of 4 = 3 samples; margin 0.15 - (0.5 - 0.45) = 0.1
    assert uncertainty_regularizer(torch.tensor([0.5, 0.45, 0.5, 0.5]), "rank").item() == pytest.approx(0.1)
    assert uncertainty_regularizer(torch.tensor([0.9, 0.8, 0.7, 0.1]), "rank").item() == 0.0
    with pytest.raises(ValueError, match="Unknown uncertainty regularizer"):
        uncertainty_regularizer(torch.tensor([0.5]), "entropy")


def test_trn_losses_by_hand():
    logits = torch.tensor([[0.0, LN3]])
    terms = trn_losses(
        logits,
        torch.tensor([0.4]),
        torch.tensor([1]),
        torch.tensor([[1.0, 0.0]]),
        beta=0.5,
        temperature=2.0,
        mode="additive",
    )
    assert terms["ce"].item() == pytest.approx(0.4 * -math.log(0.75))
    # softmax([0, ln 3] / 2) = [1, sqrt 3] / (1 + sqrt 3): KL([1, 0] || .) = ln(1 + sqrt 3)
    assert terms["transfer"].item() == pytest.approx(0.5 * 0.6 * 4 * math.log(1 + math.sqrt(3)), rel=1e-5)
    assert "transfer" not in trn_losses(logits, torch.tensor([0.4]), torch.tensor([1]), None, 0.5, 2.0)
    # interpolate: the hard label keeps alpha + (1 - alpha)(1 - beta) = 0.4 + 0.6 * 0.5 = 0.7; transfer unchanged
    interpolated = trn_losses(
        logits, torch.tensor([0.4]), torch.tensor([1]), torch.tensor([[1.0, 0.0]]), beta=0.5, temperature=2.0
    )
    assert interpolated["ce"].item() == pytest.approx(0.7 * -math.log(0.75))
    assert interpolated["transfer"].item() == pytest.approx(terms["transfer"].item())
    # floor 0.5: PIN's share is 0.5 + 0.5 * (1 - 0.4) = 0.8, so the hard label keeps 1 - 0.5 * 0.8 = 0.6
    floored = trn_losses(
        logits, torch.tensor([0.4]), torch.tensor([1]), torch.tensor([[1.0, 0.0]]), 0.5, 2.0, floor=0.5
    )
    assert floored["ce"].item() == pytest.approx(0.6 * -math.log(0.75))
    assert floored["transfer"].item() == pytest.approx(0.5 * 0.8 * 4 * math.log(1 + math.sqrt(3)), rel=1e-5)
    with pytest.raises(ValueError, match="Unknown transfer mode"):
        trn_losses(logits, torch.tensor([0.4]), torch.tensor([1]), None, 0.5, 2.0, mode="sum")


def test_pin_losses_by_hand():
    au_prior = torch.tensor([[1.0, 0.5], [0.0, 0.0]])  # class 0 shows AU a strongly, AU b often
    region_aus = torch.tensor([[1.0, 0.0]])  # the one region can only show AU a
    members = torch.zeros(1, 2, 2)
    terms = pin_losses(
        members, torch.zeros(1, 1, 2), torch.full((1, 2), 0.5), torch.tensor([0]), au_prior, region_aus, temperature=2.0
    )
    assert terms["ce"].item() == pytest.approx(math.log(2))
    assert terms["au"].item() == pytest.approx(math.log(2))  # BCE(0, 1) on AU a only; AU b is masked out
    assert terms["mutual"].item() == pytest.approx(0.0, abs=1e-7)
    soft = pin_losses(
        members + torch.tensor([0.0, LN3]),
        torch.zeros(1, 1, 2),
        torch.full((1, 2), 0.5),
        torch.tensor([0]),
        au_prior,
        region_aus,
        2.0,
        target_distribution=torch.tensor([[0.5, 0.5]]),
    )
    assert soft["ce"].item() == pytest.approx(-(0.5 * math.log(0.25) + 0.5 * math.log(0.75)))
    assert soft["au"].item() == pytest.approx(
        torch.nn.functional.binary_cross_entropy_with_logits(torch.zeros(1), torch.tensor([0.5])).item()
    )


@pytest.fixture(scope="module")
def joint_inputs():
    torch.manual_seed(0)
    model = POIModel(POIConfig(pin_config=tiny_pin_config(), trn_config=tiny_trn_config()))
    with torch.no_grad():
        outputs = model(torch.randn(6, 3, 48, 48))
    return model, outputs, torch.tensor([0, 1, 2, 3, 4, 5])


SWITCHES = {
    "use_au_loss": "pin_au",
    "use_mutual_learning": "pin_mutual",
    "use_pin_soft_labels": "trn_transfer",
    "use_uncertainty": "alpha_reg",
}


def _terms(model, outputs, labels, beta=0.7, **switches):
    config = POIConfig(pin_config=model.config.pin_config, trn_config=model.config.trn_config, **switches)
    return joint_losses(config, outputs, labels, model.pin.priors.au_prior, model.pin.priors.region_aus, beta)


def test_joint_total_is_sum_of_terms(joint_inputs):
    terms = _terms(*joint_inputs)
    parts = ("pin_ce", "pin_au", "pin_mutual", "trn_ce", "trn_transfer", "alpha_reg")
    assert set(parts) < set(terms)
    assert terms["loss"].item() == pytest.approx(sum(terms[name].item() for name in parts), rel=1e-6)


@pytest.mark.parametrize("switch, term", SWITCHES.items())
def test_each_switch_removes_exactly_its_term(joint_inputs, switch, term):
    full = _terms(*joint_inputs)
    ablated = _terms(*joint_inputs, **{switch: False})
    assert term not in ablated and term in full
    # Without uncertainty alpha is fixed, which re-weighs the alpha-dependent TRN terms (next test); without the
    # transfer the hard label keeps the whole weight (interpolate mode).
    alpha_terms = {"use_uncertainty": ("trn_ce", "trn_transfer", "alpha_mean"), "use_pin_soft_labels": ("trn_ce",)}.get(
        switch, ()
    )
    for name in set(full) - {term, "loss", *alpha_terms}:
        assert ablated[name].item() == pytest.approx(full[name].item(), rel=1e-6), name


def test_label_trust_by_hand():
    soft = torch.tensor([[0.5, 0.25, 0.25], [0.2, 0.2, 0.6]])
    assert label_trust(soft, torch.tensor([1, 2])).tolist() == [0.5, 1.0]
    assert label_trust(soft, torch.tensor([1, 0]), sharpness=2.0).tolist() == pytest.approx([0.25, 1 / 9])


def test_noise_aware_trust_by_hand():
    """Class 0's labels flip to class 1 a third of the time, class 1's never flip: a face PIN finds equally likely to
    be 0 or 1 keeps full trust in a label 0 (nothing flips into 0), while its label 1 is clean with Bayes'
    probability; undoing the noise in a posterior fitted to the noisy labels gives the same trust."""
    transition = torch.tensor([[2 / 3, 1 / 3], [0.0, 1.0]])
    clean_posterior = torch.tensor([[0.5, 0.5], [0.5, 0.5]])
    labels = torch.tensor([0, 1])
    expected = [1.0, 0.5 / (0.5 + 0.5 / 3)]  # label 1: p(1) * 1 / (p(1) * 1 + p(0) * 1/3)
    assert clean_label_probability(clean_posterior, labels, transition).tolist() == pytest.approx(expected)
    noisy_posterior = clean_posterior @ transition  # what a network fitted to the noisy labels learns
    assert noise_aware_trust(noisy_posterior, labels, transition).tolist() == pytest.approx(expected, abs=1e-6)
    # with no noise the trust is 1 for any label the posterior allows
    assert noise_aware_trust(noisy_posterior, labels, torch.eye(2)).tolist() == pytest.approx([1.0, 1.0])


def test_anchor_transition_reads_the_surest_faces():
    posterior = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]])
    # one anchor per class (share 1/4): row 0 is the face surest of class 0, row 1 the face surest of class 1
    torch.testing.assert_close(anchor_transition(posterior, share=0.25), torch.tensor([[0.9, 0.1], [0.2, 0.8]]))
    torch.testing.assert_close(anchor_transition(posterior, share=0.5), torch.tensor([[0.75, 0.25], [0.25, 0.75]]))


def test_noise_aware_trust_in_the_joint_loss(joint_inputs):
    """label_trust="noise_aware" weighs each label by `noise_aware_trust` with the transition estimate it is given;
    POIModel keeps that estimate as a buffer, moved toward each training batch's anchors."""
    model, outputs, labels = joint_inputs
    classes = model.config.num_labels
    transition = torch.full((classes, classes), 0.1) + 0.4 * torch.eye(classes)
    config = POIConfig(
        pin_config=model.config.pin_config, trn_config=model.config.trn_config, label_trust="noise_aware"
    )
    terms = joint_losses(
        config, outputs, labels, model.pin.priors.au_prior, model.pin.priors.region_aus, 0.7,
        noise_transition=transition,
    )
    trust = noise_aware_trust(outputs.pin_soft_labels, labels, transition)
    assert terms["alpha_mean"].item() == pytest.approx(trust.mean().item(), rel=1e-6)
    with pytest.raises(ValueError, match="needs the noise transition"):
        joint_losses(config, outputs, labels, model.pin.priors.au_prior, model.pin.priors.region_aus, 0.7)

    torch.manual_seed(0)
    noise_aware = POIModel(config).train()
    assert noise_aware.noise_transition.tolist() == torch.eye(classes).tolist()
    output = noise_aware(torch.randn(8, 3, 48, 48), labels=torch.arange(8) % classes)
    step = 1.0 - config.transition_momentum
    expected = torch.eye(classes).lerp(anchor_transition(output.pin_soft_labels), step)
    torch.testing.assert_close(noise_aware.noise_transition, expected)
    assert "noise_transition" in noise_aware.state_dict() and "noise_transition" not in model.state_dict()
    noise_aware.eval()(torch.randn(8, 3, 48, 48), labels=torch.arange(8) % classes)  # evaluation leaves it alone
    torch.testing.assert_close(noise_aware.noise_transition, expected)


def test_pin_agreement_weights_and_head_target(joint_inputs):
    """The sample weights are PIN's support of the label; with confidence_target="label_trust" the head is fitted to
    them (BCE)."""
    model, outputs, labels = joint_inputs
    trust = label_trust(outputs.pin_soft_labels, labels)
    terms = _terms(*joint_inputs, beta=0.7, confidence_target="label_trust")
    ce = torch.nn.functional.cross_entropy(outputs.logits, labels, reduction="none")
    assert terms["trn_ce"].item() == pytest.approx(((trust + (1 - trust) * 0.3) * ce).mean().item(), rel=1e-5)
    assert terms["alpha_mean"].item() == pytest.approx(trust.mean().item(), rel=1e-6)
    bce = torch.nn.functional.binary_cross_entropy(outputs.confidence, trust).item()
    assert terms["alpha_reg"].item() == pytest.approx(bce, rel=1e-5)
    head = _terms(*joint_inputs, uncertainty_regularizer="log")
    assert head["alpha_mean"].item() == pytest.approx(outputs.confidence.mean().item(), rel=1e-6)
    assert head["alpha_reg"].item() == pytest.approx(-outputs.confidence.log().mean().item(), rel=1e-5)


def test_prediction_support_by_hand():
    soft = torch.tensor([[0.5, 0.3, 0.2], [0.2, 0.2, 0.6]])
    logits = torch.tensor([[0.0, 2.0, 1.0], [0.0, 0.0, 3.0]])  # the TRN predicts classes 1 and 2
    assert prediction_support(soft, logits).tolist() == pytest.approx([0.3, 0.6])


def test_prediction_support_target_changes_the_head_only(joint_inputs):
    """The default confidence_target="prediction_support": the head learns PIN's support of the TRN's own prediction;
    the sample weights, and so every classification term, stay PIN's support of the given label."""
    model, outputs, labels = joint_inputs
    trust_target, support_target = _terms(*joint_inputs, confidence_target="label_trust"), _terms(*joint_inputs)
    for name in set(trust_target) - {"alpha_reg", "loss"}:
        assert support_target[name].item() == pytest.approx(trust_target[name].item(), rel=1e-6), name
    support = prediction_support(outputs.pin_soft_labels, outputs.logits)
    bce = torch.nn.functional.binary_cross_entropy(outputs.confidence, support).item()
    assert support_target["alpha_reg"].item() == pytest.approx(bce, rel=1e-5)
    with pytest.raises(ValueError, match="confidence_target must be one of"):
        POIConfig(pin_config=model.config.pin_config, trn_config=model.config.trn_config, confidence_target="x")


def test_uncertainty_off_fixes_alpha(joint_inputs):
    model, outputs, labels = joint_inputs
    plain_ce = torch.nn.functional.cross_entropy(outputs.logits, labels).item()
    # alpha = 0.5, beta = 0.7: hard-label weight 0.5 + 0.5 * 0.3 (interpolate) or 0.5 (additive)
    assert _terms(*joint_inputs, use_uncertainty=False)["trn_ce"].item() == pytest.approx(0.65 * plain_ce, rel=1e-6)
    additive = _terms(*joint_inputs, use_uncertainty=False, transfer_mode="additive")
    assert additive["trn_ce"].item() == pytest.approx(0.5 * plain_ce, rel=1e-6)
    no_transfer = _terms(*joint_inputs, use_uncertainty=False, use_pin_soft_labels=False)
    assert no_transfer["trn_ce"].item() == pytest.approx(plain_ce, rel=1e-6)


def test_beta_moves_the_untrusted_share_to_pin(joint_inputs):
    model, outputs, labels = joint_inputs
    low, high = _terms(*joint_inputs, beta=0.1), _terms(*joint_inputs, beta=0.4)
    assert high["trn_transfer"].item() == pytest.approx(4 * low["trn_transfer"].item(), rel=1e-5)
    ce = torch.nn.functional.cross_entropy(outputs.logits, labels, reduction="none")
    alpha = label_trust(outputs.pin_soft_labels, labels)
    for beta, terms in ((0.1, low), (0.4, high)):
        expected = ((alpha + (1 - alpha) * (1 - beta)) * ce).mean().item()
        assert terms["trn_ce"].item() == pytest.approx(expected, rel=1e-5)
    additive_low = _terms(*joint_inputs, beta=0.1, transfer_mode="additive")
    additive_high = _terms(*joint_inputs, beta=0.4, transfer_mode="additive")
    assert additive_low["trn_ce"].item() == pytest.approx(additive_high["trn_ce"].item())


def test_weights_scale_their_terms(joint_inputs):
    base = _terms(*joint_inputs)
    scaled = _terms(*joint_inputs, au_loss_weight=0.3, mutual_weight=2.0, uncertainty_weight=0.5)
    assert scaled["pin_au"].item() == pytest.approx(3 * base["pin_au"].item(), rel=1e-6)
    assert scaled["pin_mutual"].item() == pytest.approx(2 * base["pin_mutual"].item(), rel=1e-6)
    assert scaled["alpha_reg"].item() == pytest.approx(0.5 * base["alpha_reg"].item(), rel=1e-6)


def test_poi_config_checks():
    with pytest.raises(ValueError, match="share their classes"):
        POIConfig(pin_config=tiny_pin_config(), trn_config=tiny_trn_config(["happiness", "sadness"]))
    with pytest.raises(ValueError, match="share in"):
        POIConfig(pin_config=tiny_pin_config(), trn_config=tiny_trn_config(), transfer_beta=2.0)
    with pytest.raises(ValueError, match="transfer_floor is a share"):
        POIConfig(pin_config=tiny_pin_config(), trn_config=tiny_trn_config(), transfer_floor=-0.1)
    with pytest.raises(ValueError, match="label_trust must be one of"):
        POIConfig(pin_config=tiny_pin_config(), trn_config=tiny_trn_config(), label_trust="x")
    with pytest.raises(ValueError, match="transition_momentum must be in"):
        POIConfig(pin_config=tiny_pin_config(), trn_config=tiny_trn_config(), transition_momentum=1.0)
    with pytest.raises(ValueError, match="trust_sharpness must be positive"):
        POIConfig(pin_config=tiny_pin_config(), trn_config=tiny_trn_config(), trust_sharpness=0.0)
    with pytest.raises(ValueError, match="uncertainty_regularizer"):
        POIConfig(pin_config=tiny_pin_config(), trn_config=tiny_trn_config(), uncertainty_regularizer="x")
