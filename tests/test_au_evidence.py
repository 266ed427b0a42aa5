"""PIN's AU-evidence member (use_au_evidence): predicted AUs scored against each emotion's AU-prior row, pooled with
the other members by measured reliability, trained through the prior table, saved, and explained by the pipeline."""

import math

import pytest
import torch
from transformers import pipeline

from poi_hf import PINForImageClassification, POIConfig, POIImageProcessor, POIModel
from poi_hf.pin.modeling_pin import au_evidence_logits
from poi_hf.presets import tiny_pin_config, tiny_trn_config
from test_fer_pipeline import RAFDB_ORDER, save_tiny_checkpoints
from test_faces import sample_photos_or_skip


def evidence_pin(**overrides) -> PINForImageClassification:
    return PINForImageClassification(tiny_pin_config(member_weighting="reliability", use_au_evidence=True, **overrides))


def bernoulli_kl(p: float, q: float) -> float:
    return sum(a * math.log(a / b) for a, b in ((p, q), (1 - p, 1 - q)) if a > 0)


def test_evidence_is_minus_the_bernoulli_kl_from_each_prior_row():
    # 2 classes x 3 AUs; AU 2 is shown by no region, so it is left out
    au_prior = torch.tensor([[1.0, 0.5, 1.0], [0.0, 1.0, 0.0]])
    region_aus = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    probabilities = torch.tensor([[[0.8, 0.3, 0.9], [0.6, 0.1, 0.2]]])  # (B=1, K=2, A=3)
    logits = au_evidence_logits(torch.logit(probabilities), au_prior, region_aus)
    q = [(0.8 + 0.6) / 2, 0.1]  # AU 0 from both regions, AU 1 from region 1 only
    expected = [-sum(bernoulli_kl(au_prior[c, a].item(), q[a]) for a in range(2)) for c in range(2)]
    assert logits.tolist() == [pytest.approx(expected, rel=1e-5)]
    moved = probabilities.clone()
    moved[..., 2] = 0.01
    assert torch.equal(au_evidence_logits(torch.logit(moved), au_prior, region_aus), logits)


def test_each_emotions_own_au_pattern_points_to_it():
    pin = evidence_pin()
    prior, region_aus = pin.priors.au_prior, pin.priors.region_aus
    patterns = torch.logit(prior.clamp(1e-3, 1 - 1e-3))[:, None].expand(-1, pin.config.num_regions, -1)
    logits = au_evidence_logits(patterns, prior, region_aus)
    assert logits.argmax(-1).tolist() == list(range(pin.config.num_labels))
    assert logits.diagonal().abs().max() < 0.1  # an exact match costs (almost) nothing


def test_the_evidence_member_is_pooled_measured_and_saved(tmp_path):
    torch.manual_seed(0)
    pin = evidence_pin().train()
    config = pin.config
    assert config.member_names == [*config.region_names, "global", "au_evidence"]
    size = config.image_size
    output = pin(torch.randn(4, 3, size, size), labels=torch.tensor([0, 1, 2, 3]))
    members = config.num_regions + 2
    assert output.member_logits.shape == (4, members, config.num_labels)
    assert output.region_contributions.shape == (4, members, config.num_labels)
    assert torch.allclose(
        output.member_logits[:, -1], au_evidence_logits(output.au_logits, pin.priors.au_prior, pin.priors.region_aus)
    )
    assert pin.member_accuracy.shape == (members,)
    pin.save_pretrained(tmp_path / "pin")
    reloaded = PINForImageClassification.from_pretrained(tmp_path / "pin")
    assert reloaded.config.use_au_evidence and torch.equal(reloaded.member_accuracy, pin.member_accuracy)


def test_emotion_labels_reach_the_au_heads_through_the_prior_only():
    """Without the AU loss the AU heads learn only from the evidence member's CE, i.e. through the prior table."""
    torch.manual_seed(0)
    config = POIConfig(
        pin_config=tiny_pin_config(member_weighting="reliability", use_au_evidence=True),
        trn_config=tiny_trn_config(),
        use_au_loss=False,
    )
    model = POIModel(config).train()
    size = config.pin_config.image_size
    model(pixel_values=torch.randn(4, 3, size, size), labels=torch.tensor([0, 1, 2, 3])).loss.backward()
    assert model.pin.region_branches.au_head.weight.grad.abs().sum() > 0
    without = POIModel(POIConfig(pin_config=tiny_pin_config(), trn_config=tiny_trn_config(), use_au_loss=False))
    without.train()(pixel_values=torch.randn(4, 3, size, size), labels=torch.tensor([0, 1, 2, 3])).loss.backward()
    assert without.pin.region_branches.au_head.weight.grad is None  # prior pooling never reads the AU logits


def test_au_evidence_needs_reliability_pooling():
    with pytest.raises(ValueError, match="use_au_evidence .* member_weighting='reliability'"):
        tiny_pin_config(use_au_evidence=True)


def test_pipeline_names_the_evidence_member(tmp_path):
    photos = sample_photos_or_skip()
    trn = save_tiny_checkpoints(tmp_path)
    pin = PINForImageClassification(
        tiny_pin_config(RAFDB_ORDER, member_weighting="reliability", use_au_evidence=True)
    )
    size = pin.config.image_size
    pin.save_pretrained(tmp_path / "evidence_pin")
    POIImageProcessor(size={"height": size, "width": size}).save_pretrained(tmp_path / "evidence_pin")
    fer = pipeline("facial-expression-recognition", model=str(trn), pin_model=str(tmp_path / "evidence_pin"))
    (face,) = fer(str(photos["single_face.jpg"]))
    names = [region["name"] for region in face["regions"]]
    assert names == [*pin.config.region_names, "global", "au_evidence"]
    assert sum(region["contribution"] for region in face["regions"]) == pytest.approx(1.0, abs=1e-5)
    assert all(("polygon" in region) == (region["name"] in pin.config.region_names) for region in face["regions"])
