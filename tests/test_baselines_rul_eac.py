"""RUL and EAC baselines: their losses against hand-computed values, the TRN's feature map and exact class activation
maps, the loss objects' wiring, bad settings, and a tiny examples/train.py run of each that exports a working trn/."""

import json
import math
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F
from transformers import pipeline

from poi_hf import TRNForImageClassification
from poi_hf.baselines import (
    BaselineSettings,
    baseline_losses,
    class_activation_maps,
    eac_losses,
    random_erase,
    rul_losses,
)
from poi_hf.presets import tiny_trn_config
from poi_hf.trainer import EACLoss, RULLoss
from tiny_run import tiny_baseline_trainer, tiny_synfer

ROOT = Path(__file__).resolve().parents[1]
LN3 = math.log(3.0)


@pytest.fixture(scope="module")
def batch(synfer_cache):
    dataset = tiny_synfer(synfer_cache, num_train=16, num_eval=8, augment=False)
    return {name: torch.stack([dataset["train"][i][name] for i in range(6)]) for name in ("pixel_values", "labels")}


def tiny_trn() -> TRNForImageClassification:
    torch.manual_seed(0)
    return TRNForImageClassification(tiny_trn_config())


def test_rul_add_up_loss_by_hand():
    logits = torch.tensor([[0.0, LN3], [LN3, 0.0]])
    confidence = torch.tensor([0.75, 0.25], requires_grad=True)
    labels = torch.tensor([1, 0])
    terms = rul_losses(logits, confidence, labels, partner=torch.tensor([1, 0]))
    # w_0 = 0.75 / (0.75 + 0.25) = 0.75, w_1 = 0.25; both pairs mix to 0.75 z_0 + 0.25 z_1 = [ln 3 / 4, 3 ln 3 / 4],
    # softmax [1 / (1 + sqrt 3), sqrt 3 / (1 + sqrt 3)]: CE for class 1 is a, for class 0 is b.
    a, b = math.log(1 + math.sqrt(3)) - LN3 / 2, math.log(1 + math.sqrt(3))
    assert terms["add_up"].item() == pytest.approx(0.75 * a + 0.25 * b, rel=1e-6)
    assert terms["loss"].item() == terms["add_up"].item()
    # The mixture favours class 1, so a higher weight on sample 1 (labelled 0) costs: its confidence is pushed down.
    terms["loss"].backward()
    assert confidence.grad[1] > 0 > confidence.grad[0]
    # A sample paired with itself (w = 1/2 twice, one label) is plain CE.
    alone = rul_losses(logits, confidence.detach(), labels, partner=torch.tensor([0, 1]))
    assert alone["add_up"].item() == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-6)


def test_rul_logit_mixture_is_the_classifier_on_the_mixed_pooled_feature(batch):
    model = tiny_trn().eval()
    outputs = model(batch["pixel_values"][:2])
    pooled = 0.3 * outputs.pooler_output[0] + 0.7 * outputs.pooler_output[1]
    mixed = 0.3 * outputs.logits[0] + 0.7 * outputs.logits[1]
    torch.testing.assert_close(model.classifier(pooled), mixed)


def test_class_activation_maps_and_flip_consistency_by_hand():
    # one image, D = 2 channels on a 1 x 2 map: position 0 has features [1, 2], position 1 has [3, 0]
    feature_map = torch.tensor([[[[1.0, 3.0]], [[2.0, 0.0]]]])
    weight = torch.tensor([[1.0, 0.0], [1.0, -1.0]])  # C = 2 classes
    cams = class_activation_maps(feature_map, weight)
    assert cams.tolist() == [[[[1.0, 3.0]], [[-1.0, 3.0]]]]  # class 0: [1, 3]; class 1: [1 - 2, 3 - 0]
    settings = BaselineSettings("eac", eac_weight=2.0)
    logits = torch.tensor([[0.0, LN3]])  # softmax [0.25, 0.75]
    mirrored = eac_losses(settings, logits, torch.tensor([1]), cams, cams.flip(-1))
    assert mirrored["consistency"].item() == 0.0 and mirrored["ce"].item() == pytest.approx(-math.log(0.75))
    # flipped maps all 1: after the flip back, differences [0, 2] and [-2, 2] -> mean square 12 / 4 = 3, x lambda 2
    terms = eac_losses(settings, logits, torch.tensor([1]), cams, torch.ones_like(cams))
    assert terms["consistency"].item() == pytest.approx(6.0)
    assert terms["loss"].item() == pytest.approx(6.0 - math.log(0.75))


def test_trn_feature_map_only_on_request_and_its_cams_give_the_logits(batch):
    model = tiny_trn().eval()
    pixel_values = batch["pixel_values"]
    plain = model(pixel_values)
    # logits, confidence, pooler_output, head_confidence
    assert plain.feature_map is None and len(model(pixel_values, return_dict=False)) == 4
    outputs = model(pixel_values, output_feature_map=True)
    torch.testing.assert_close(outputs.logits, plain.logits)
    torch.testing.assert_close(outputs.feature_map.mean(dim=(2, 3)), outputs.pooler_output)
    cams = class_activation_maps(outputs.feature_map, model.classifier.weight)
    torch.testing.assert_close(cams.mean(dim=(2, 3)) + model.classifier.bias, outputs.logits)
    assert "feature_map" in model.config.keys_to_ignore_at_inference  # never gathered as an evaluation prediction


def test_random_erase_by_hand():
    images = torch.ones(3, 3, 4, 4)
    torch.testing.assert_close(random_erase(images, 0.0, (0.25, 0.25)), images)
    erased = random_erase(images, 1.0, (0.25, 0.25), ratio=(1.0, 1.0))  # area 4 of 16 pixels, square: a 2 x 2 box
    zeros = erased == 0
    assert torch.equal(zeros[:, 0], zeros[:, 2])  # the same box in every channel
    for mask in zeros[:, 0]:
        rows, cols = mask.nonzero(as_tuple=True)
        assert len(rows) == 4 and rows.max() - rows.min() == 1 and cols.max() - cols.min() == 1
    assert torch.equal(images, torch.ones(3, 3, 4, 4))  # the input is left as it was


def freeze_batch_norm(model: nn.Module) -> nn.Module:
    """Training mode, but batch norm on its running statistics: a 2B batch then gives each image the B-batch outputs."""
    model.train()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eval()
    return model


def test_eac_loss_runs_the_erased_images_and_their_flips(batch):
    model = freeze_batch_norm(tiny_trn())
    pixel_values, labels = batch["pixel_values"], batch["labels"]
    loss = EACLoss(BaselineSettings("eac", eac_weight=3.0, eac_erase_prob=0.0))  # after the 2-epoch warm-up:
    value, outputs, terms = loss(model, batch, 2.0)
    plain = model(pixel_values, output_feature_map=True)
    flipped = model(pixel_values.flip(-1), output_feature_map=True)
    weight = model.classifier.weight
    consistency = F.mse_loss(
        class_activation_maps(plain.feature_map, weight), class_activation_maps(flipped.feature_map, weight).flip(-1)
    )
    assert terms["ce"].item() == pytest.approx(F.cross_entropy(plain.logits, labels).item(), rel=1e-5)
    assert terms["consistency"].item() == pytest.approx(3.0 * consistency.item(), rel=1e-4)
    assert value.item() == pytest.approx(terms["ce"].item() + terms["consistency"].item(), rel=1e-6)
    assert outputs.logits.shape == (6, 7)  # the images' outputs, not their flips'
    terms["consistency"].backward()
    assert model.classifier.weight.grad is None  # the maps use the classifier's weight detached
    assert model.backbone.embedder.embedder.convolution.weight.grad.abs().sum() > 0  # they shape the features
    # Evaluation: the plain prediction, plain CE, no feature map.
    value, outputs, terms = loss(model.eval(), batch, 0.0)
    assert value.item() == pytest.approx(F.cross_entropy(outputs.logits, labels).item())
    assert outputs.feature_map is None and terms == {}


def test_rul_loss_mixes_a_random_permutation_in_training_only(batch):
    model = freeze_batch_norm(tiny_trn())
    loss = RULLoss(BaselineSettings("rul"))
    torch.manual_seed(3)
    value, _, terms = loss(model, batch, 2.0)  # after the 2-epoch warm-up
    torch.manual_seed(3)
    outputs = model(batch["pixel_values"])
    partner = torch.randperm(6)
    expected = rul_losses(outputs.logits, outputs.confidence, batch["labels"], partner)
    assert value.item() == pytest.approx(expected["loss"].item(), rel=1e-6)
    assert terms["alpha_mean"].item() == pytest.approx(outputs.confidence.mean().item())
    value, outputs, _ = loss(model.eval(), batch, 0.0)
    assert value.item() == pytest.approx(F.cross_entropy(outputs.logits, batch["labels"]).item())


@pytest.mark.parametrize("loss_type", [RULLoss, EACLoss])
def test_rul_and_eac_start_with_plain_ce(batch, loss_type):
    """From scratch neither loss leaves the initial plateau, so the first baseline_warmup_epochs train plain CE on the
    batch as it is (no pairs, no erasing, no flips)."""
    model = freeze_batch_norm(tiny_trn())
    method = "rul" if loss_type is RULLoss else "eac"
    loss = loss_type(BaselineSettings(method, baseline_warmup_epochs=1.5))
    value, outputs, terms = loss(model, batch, 1.4)
    plain = model(batch["pixel_values"])
    assert value.item() == pytest.approx(F.cross_entropy(plain.logits, batch["labels"]).item(), rel=1e-6)
    assert not {"add_up", "consistency"} & set(terms)
    _, _, terms = loss(model, batch, 1.5)
    assert {"add_up", "consistency"} & set(terms)


def test_baseline_trainer_picks_the_rul_and_eac_losses(tmp_path, synfer_cache):
    dataset = tiny_synfer(synfer_cache, num_train=16, num_eval=8, augment=False)
    for method, loss_type in (("rul", RULLoss), ("eac", EACLoss)):
        trainer = tiny_baseline_trainer(tmp_path / method, dataset, BaselineSettings(method))
        assert type(trainer.loss) is loss_type


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"eac_weight": -1.0}, r"eac_weight=-1.0: expected a weight >= 0"),
        ({"eac_erase_prob": 1.5}, r"eac_erase_prob=1.5: expected a probability in \[0, 1\]"),
        ({"eac_erase_area_min": 0.3}, r"eac_erase_area_min=0.3, eac_erase_area_max=0.25: expected 0 < min <= max"),
        ({"eac_erase_area_min": 0.0}, r"expected 0 < min <= max <= 1"),
    ],
)
def test_bad_eac_settings(settings, message):
    with pytest.raises(ValueError, match=message):
        BaselineSettings("eac", **settings)


def test_pair_and_flip_baselines_refuse_the_per_sample_loss():
    with pytest.raises(ValueError, match="The rul baseline trains on pairs or flipped views of the batch"):
        baseline_losses(BaselineSettings("rul"), torch.zeros(1, 2), torch.ones(1), torch.tensor([0]))


def _train_module():
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import train
    finally:
        sys.path.pop(0)
    return train


def test_train_script_refuses_a_bad_eac_flag(tmp_path):
    with pytest.raises(ValueError, match="eac_erase_prob=2.0"):
        _train_module().main(["--method", "eac", "--eac_erase_prob", "2", "--output_dir", str(tmp_path)])
    assert not tmp_path.joinpath("trn").exists()


@pytest.mark.parametrize("method, term", [("rul", "add_up"), ("eac", "consistency")])
def test_train_script_trains_and_exports_a_working_trn(tmp_path, synfer_cache, method, term):
    output_dir = tmp_path / method
    results = _train_module().main(
        [
            "--method",
            method,
            "--output_dir",
            str(output_dir),
            "--data_dir",
            str(synfer_cache),
            "--preset",
            "tiny",
            "--synfer_train",
            "32",
            "--synfer_validation",
            "8",
            "--synfer_test",
            "8",
            "--num_train_epochs",
            "2",
            "--baseline_warmup_epochs",
            "1",
            "--per_device_train_batch_size",
            "16",
            "--save_strategy",
            "no",
            "--logging_steps",
            "1",
            "--disable_tqdm",
            "True",
            "--analyze_train",
            "False",
        ]
    )
    assert results["method"] == method and 0.0 <= results["test"]["accuracy"] <= 1.0
    history = json.loads((output_dir / "trainer_state.json").read_text())["log_history"]
    assert any(term in entry for entry in history)
    classify = pipeline("image-classification", model=str(output_dir / "trn"))
    scores = classify(Image.new("RGB", (48, 48), "gray"), top_k=7)
    assert len(scores) == 7 and sum(score["score"] for score in scores) == pytest.approx(1.0, abs=1e-5)
