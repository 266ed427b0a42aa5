"""TRNConfig.confidence_source="flip_consistency": at inference the TRN's ``confidence`` is the predicted class's mean
probability on the image and its mirror image; training and the losses keep using the uncertainty head."""

import pytest
import torch

from poi_hf import POIConfig, POIModel, TRNConfig, TRNForImageClassification
from poi_hf.presets import tiny_pin_config, tiny_trn_config


def tiny_trn(source: str = "flip_consistency", mirror_average: bool = False) -> TRNForImageClassification:
    torch.manual_seed(0)
    config = tiny_trn_config(confidence_source=source, mirror_average=mirror_average)
    return TRNForImageClassification(config).eval()


def images(batch: int = 6) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(batch, 3, 48, 48)


@torch.no_grad()
def test_confidence_is_the_mean_probability_of_the_prediction_on_both_views():
    trn = tiny_trn()
    output = trn(images())
    head = tiny_trn("head")
    head.load_state_dict(trn.state_dict())
    plain, mirrored = head(images()), head(images().flip(-1))
    predicted = plain.logits.argmax(-1, keepdim=True)
    expected = (plain.logits.softmax(-1).gather(1, predicted) + mirrored.logits.softmax(-1).gather(1, predicted)) / 2
    assert torch.allclose(output.logits, plain.logits, atol=1e-5)  # the prediction is the unmirrored image's
    assert torch.allclose(output.confidence, expected.squeeze(1), atol=1e-5)
    assert torch.allclose(output.head_confidence, plain.confidence, atol=1e-5)
    assert output.pooler_output.shape[0] == 6 and trn(images(), output_feature_map=True).feature_map.shape[0] == 6
    assert not torch.allclose(output.confidence, plain.confidence)  # not the head's score


@torch.no_grad()
def test_a_mirror_symmetric_face_gets_its_max_softmax_probability():
    half = images()[..., :24]
    symmetric = torch.cat([half, half.flip(-1)], dim=-1)
    output = tiny_trn()(symmetric)
    assert torch.allclose(output.confidence, output.logits.softmax(-1).amax(-1), atol=1e-5)


def test_training_sees_the_head_and_one_backbone_pass():
    trn = tiny_trn().train()
    batch_sizes = []
    trn.backbone.register_forward_hook(lambda module, inputs, output: batch_sizes.append(inputs[0].shape[0]))
    output = trn(images())
    assert batch_sizes == [6] and torch.equal(output.confidence, output.head_confidence)
    trn.eval()
    with torch.no_grad():
        trn(images())
    assert batch_sizes == [6, 12]


@torch.no_grad()
def test_the_joint_loss_reads_the_head_whatever_is_deployed():
    """POI-R's loss fits and weighs with the head (head_confidence), so the evaluation loss does not change with the
    deployed confidence source."""
    torch.manual_seed(0)
    batch = {
        "pixel_values": images(4),
        "landmarks": torch.rand(4, 5, 2),
        "labels": torch.tensor([0, 1, 2, 3]),
    }
    losses = {}
    for source in ("head", "flip_consistency"):
        torch.manual_seed(0)
        config = POIConfig(pin_config=tiny_pin_config(), trn_config=tiny_trn_config(confidence_source=source))
        model = POIModel(config).eval()
        output = model(**batch)
        losses[source] = output.loss
        assert output.head_confidence.shape == (4,) and output.confidence.shape == (4,)
    assert torch.allclose(losses["head"], losses["flip_consistency"])


def test_an_unknown_source_is_refused():
    with pytest.raises(ValueError, match=r"confidence_source='mirror'; expected one of \['head', 'flip_consistency'\]"):
        TRNConfig(confidence_source="mirror")


def test_the_source_survives_save(tmp_path):
    trn = tiny_trn()
    trn.save_pretrained(tmp_path)
    reloaded = TRNForImageClassification.from_pretrained(tmp_path).eval()
    assert reloaded.config.confidence_source == "flip_consistency"
    with torch.no_grad():
        assert torch.allclose(reloaded(images()).confidence, trn(images()).confidence)


@torch.no_grad()
@pytest.mark.parametrize("source", ["flip_consistency", "head"])
def test_mirror_average_predicts_from_both_views(source):
    """mirror_average: the logits are the log of the two views' mean probabilities; with the flip consistency the
    confidence is then that mean's top probability, with the head it is the head's score on the plain image."""
    trn = tiny_trn(source, mirror_average=True)
    plain = tiny_trn("head")
    plain.load_state_dict(trn.state_dict())
    views = torch.stack([plain(images()).logits.softmax(-1), plain(images().flip(-1)).logits.softmax(-1)])
    output = trn(images())
    assert torch.allclose(output.logits.softmax(-1), views.mean(0), atol=1e-6)
    assert torch.allclose(output.logits.exp().sum(-1), torch.ones(6), atol=1e-6)  # log-probabilities
    assert not torch.allclose(output.logits.softmax(-1), views[0], atol=1e-4)  # the mirror moved the prediction
    expected = views.mean(0).amax(-1) if source == "flip_consistency" else plain(images()).confidence
    assert torch.allclose(output.confidence, expected, atol=1e-6)
    assert torch.allclose(output.head_confidence, plain(images()).confidence, atol=1e-6)
    assert torch.allclose(trn.train()(images()).logits, plain.train()(images()).logits)  # training never mirrors
