"""POIConfig.confidence_target="correctness": the TRN's uncertainty head learns whether the TRN is right, on the
held-out faces of PIN's reliability_holdout, which the TRN does not train on; the head reads detached features."""

import pytest
import torch
from torch.nn import functional as F

from poi_hf import POIConfig, POIModel, TRNForImageClassification
from poi_hf.presets import tiny_pin_config, tiny_trn_config
from tiny_run import HOLDOUT, holdout_batch, tiny_synfer, tiny_trainer

HELD_OUT = torch.tensor([True, False, True, False])  # the rows of holdout_batch() that HOLDOUT keeps out


def correctness_model(**overrides) -> POIModel:
    torch.manual_seed(0)
    config = POIConfig(
        pin_config=tiny_pin_config(**HOLDOUT),
        trn_config=tiny_trn_config(uncertainty_head_detached=True, confidence_from_softmax=True),
        confidence_target="correctness",
        **overrides,
    )
    return POIModel(config).train()


def test_correctness_needs_a_holdout_and_a_detached_head():
    with pytest.raises(ValueError, match="reliability_holdout >= 2"):
        POIConfig(
            pin_config=tiny_pin_config(member_weighting="reliability"),
            trn_config=tiny_trn_config(uncertainty_head_detached=True),
            confidence_target="correctness",
        )
    with pytest.raises(ValueError, match="uncertainty_head_detached=True"):
        POIConfig(pin_config=tiny_pin_config(**HOLDOUT), trn_config=tiny_trn_config(), confidence_target="correctness")


def test_the_head_learns_whether_the_trn_is_right_on_the_held_out_rows_only():
    model, inputs = correctness_model(), holdout_batch()
    outputs = model(**inputs)
    right = (outputs.logits.argmax(-1) == inputs["labels"]).float()
    bce = F.binary_cross_entropy(outputs.confidence, right, reduction="none")
    assert torch.allclose(outputs.loss_terms["alpha_reg"], bce[HELD_OUT].mean())


def gradients(model: POIModel, inputs: dict) -> dict[str, torch.Tensor]:
    model.zero_grad()
    model(**inputs).loss.backward()
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def test_held_out_labels_train_the_head_and_nothing_else():
    inputs = holdout_batch()
    with torch.no_grad():
        predicted = correctness_model()(**inputs).logits.argmax(-1)
    relabelled = dict(inputs, labels=inputs["labels"].clone())
    assert (predicted[HELD_OUT] != inputs["labels"][HELD_OUT]).any()
    relabelled["labels"][HELD_OUT] = predicted[HELD_OUT]  # the TRN is right on them now, and was not before
    first, second = gradients(correctness_model(), inputs), gradients(correctness_model(), relabelled)
    moved = {name for name in first if not torch.allclose(first[name], second[name])}
    assert moved and all(name.startswith("trn.uncertainty_head.") for name in moved), moved

    fitted = dict(inputs, labels=inputs["labels"].clone())
    fitted["labels"][~HELD_OUT] = torch.tensor([6, 5])
    third = gradients(correctness_model(), fitted)
    assert not torch.allclose(third["trn.classifier.weight"], first["trn.classifier.weight"])


def test_a_detached_head_sends_no_gradient_to_the_backbone():
    torch.manual_seed(0)
    trn = TRNForImageClassification(tiny_trn_config(uncertainty_head_detached=True)).train()
    trn(holdout_batch()["pixel_values"]).confidence.sum().backward()
    assert all(p.grad is None or not p.grad.any() for p in trn.backbone.parameters())
    assert trn.uncertainty_head[0].weight.grad.any()


def test_a_trainer_run_fits_the_head_and_saves_the_setting(tmp_path, synfer_cache):
    dataset = tiny_synfer(synfer_cache, num_train=32, num_eval=8, augment=False)
    model = correctness_model()
    head_before = model.trn.uncertainty_head[0].weight.detach().clone()
    tiny_trainer(tmp_path, dataset, model=model, num_train_epochs=1, save_strategy="no").train()
    assert not torch.equal(model.trn.uncertainty_head[0].weight, head_before)
    model.trn.save_pretrained(tmp_path / "trn")
    reloaded = TRNForImageClassification.from_pretrained(tmp_path / "trn")
    assert reloaded.config.uncertainty_head_detached and reloaded.config.confidence_from_softmax
