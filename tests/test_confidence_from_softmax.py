"""TRNConfig.confidence_from_softmax: the uncertainty head moves the TRN's own max softmax probability (a logit
offset) instead of scoring from scratch."""

import torch

from poi_hf import POIConfig, POIModel, TRNForImageClassification
from poi_hf.presets import tiny_pin_config, tiny_trn_config


def tiny_trn(**overrides) -> TRNForImageClassification:
    torch.manual_seed(0)
    return TRNForImageClassification(tiny_trn_config(confidence_from_softmax=True, **overrides)).eval()


def images(batch: int = 5) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(batch, 3, 48, 48)


def test_an_untrained_offset_gives_the_max_softmax_probability():
    trn = tiny_trn()
    last = trn.uncertainty_head[-1]
    torch.nn.init.zeros_(last.weight), torch.nn.init.zeros_(last.bias)
    with torch.no_grad():
        output = trn(images())
    assert torch.allclose(output.confidence, output.logits.softmax(-1).amax(-1), atol=1e-6)


def test_the_offset_is_added_in_logit_space():
    trn = tiny_trn()
    torch.nn.init.zeros_(trn.uncertainty_head[-1].weight)
    torch.nn.init.constant_(trn.uncertainty_head[-1].bias, 1.5)
    with torch.no_grad():
        output = trn(images())
    top = output.logits.softmax(-1).amax(-1)
    assert torch.allclose(output.confidence, torch.sigmoid(torch.logit(top) + 1.5), atol=1e-6)
    plain = TRNForImageClassification(tiny_trn_config()).eval()
    plain.load_state_dict(trn.state_dict())
    with torch.no_grad():  # the same weights without the flag: the head's own score, sigmoid(1.5) for every face
        assert torch.allclose(plain(images()).confidence, torch.full((5,), torch.sigmoid(torch.tensor(1.5)).item()))


def test_fitting_the_confidence_does_not_move_the_classifier():
    """The top probability is detached: the head's loss trains the head (and the shared features), never the logits'
    own layer, so a confidence target cannot change which class the TRN outputs through the classifier."""
    trn = tiny_trn().train()
    trn(images()).confidence.sum().backward()
    assert trn.classifier.weight.grad is None or torch.count_nonzero(trn.classifier.weight.grad) == 0
    assert torch.count_nonzero(trn.uncertainty_head[-1].weight.grad) > 0


def test_the_setting_survives_save_and_the_joint_model(tmp_path):
    trn = tiny_trn()
    trn.save_pretrained(tmp_path / "trn")
    reloaded = TRNForImageClassification.from_pretrained(tmp_path / "trn").eval()
    assert reloaded.config.confidence_from_softmax
    with torch.no_grad():
        assert torch.allclose(reloaded(images()).confidence, trn(images()).confidence)
    model = POIModel(POIConfig(pin_config=tiny_pin_config(), trn_config=tiny_trn_config(confidence_from_softmax=True)))
    assert model.trn.config.confidence_from_softmax
