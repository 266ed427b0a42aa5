"""POIModel computes the joint loss in forward; PIN, TRN and POIModel forwards reject unknown keyword arguments."""

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_run import tiny_model, tiny_synfer, tiny_trainer
from transformers import pipeline

from poi_hf import PINForImageClassification, POIImageProcessor, POIOutput, TRNForImageClassification
from poi_hf.losses import joint_losses
from poi_hf.presets import tiny_pin_config, tiny_trn_config

BATCH = 6
BETA = 0.37  # mid-ramp: every beta-weighted term is on and neither 0 nor 1


@pytest.fixture(scope="module")
def batch():
    generator = torch.Generator().manual_seed(0)
    return {
        "pixel_values": torch.randn(BATCH, 3, 48, 48, generator=generator),
        "landmarks": tiny_model().pin.priors.landmark_template.expand(BATCH, 5, 2) + 0.01,
        "labels": torch.tensor([0, 1, 2, 3, 4, 5]),
        "soft_labels": torch.rand(BATCH, 7, generator=generator).softmax(-1),
    }


def direct_joint_losses(model, outputs, batch, beta, soft_labels=None):
    priors = model.pin.priors
    return joint_losses(model.config, outputs, batch["labels"], priors.au_prior, priors.region_aus, beta, soft_labels)


def assert_same_terms(outputs, expected):
    assert {"loss": outputs.loss, **outputs.loss_terms}.keys() == expected.keys()
    assert torch.equal(outputs.loss, expected["loss"])
    for name, value in outputs.loss_terms.items():
        assert torch.equal(value, expected[name]), name


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"transfer_mode": "additive", "uncertainty_regularizer": "log", "transfer_floor": 0.2},
        {"uncertainty_regularizer": "rank"},
        {"use_uncertainty": False},
        {"use_pin_soft_labels": False, "use_uncertainty": False, "use_au_loss": False},
        {"use_landmarks": False, "use_mutual_learning": False},
    ],
)
@pytest.mark.parametrize("with_soft_labels", [False, True])
def test_forward_loss_is_joint_losses_bit_for_bit(batch, settings, with_soft_labels):
    model = tiny_model(**settings)
    soft_labels = batch["soft_labels"] if with_soft_labels else None
    outputs = model(
        batch["pixel_values"], landmarks=batch["landmarks"], labels=batch["labels"], soft_labels=soft_labels, beta=BETA
    )
    assert_same_terms(outputs, direct_joint_losses(model, outputs, batch, BETA, soft_labels))


def test_forward_loss_stays_float32_under_autocast(batch):
    # The Trainer's bf16 runs forward under autocast; the loss must equal the one computed outside it (as before,
    # when the trainer computed it), e.g. the AU target's matmul must not drop to bf16.
    model = tiny_model()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = model(**batch, beta=BETA)
    assert_same_terms(outputs, direct_joint_losses(model, outputs, batch, BETA, batch["soft_labels"]))


def test_forward_without_beta_uses_the_ramp_end_and_without_labels_gives_no_loss(batch):
    model = tiny_model(transfer_beta=0.8).eval()
    outputs = model(batch["pixel_values"], labels=batch["labels"])
    assert_same_terms(outputs, direct_joint_losses(model, outputs, batch, 0.8))
    plain = model(batch["pixel_values"])
    assert plain.loss is None and plain.loss_terms is None
    assert torch.equal(plain.logits, outputs.logits)


def test_forward_tuple_output_starts_with_the_loss(batch):
    model = tiny_model().eval()
    outputs = model(batch["pixel_values"], labels=batch["labels"], beta=BETA)
    as_tuple = model(batch["pixel_values"], labels=batch["labels"], beta=BETA, return_dict=False)
    assert isinstance(outputs, POIOutput) and isinstance(as_tuple, tuple)
    assert torch.equal(as_tuple[0], outputs.loss) and torch.equal(as_tuple[1], outputs.logits)


def test_forward_rejects_labels_outside_the_classes(batch):
    with pytest.raises(ValueError, match=r"labels \[7\] are outside the 7 classes"):
        tiny_model()(batch["pixel_values"], labels=torch.tensor([0, 1, 2, 3, 4, 7]))


MODELS = {
    "pin": lambda: PINForImageClassification(tiny_pin_config()),
    "trn": lambda: TRNForImageClassification(tiny_trn_config()),
    "poi": tiny_model,
}


@pytest.mark.parametrize("name", MODELS)
def test_unknown_keyword_argument_raises(batch, name):
    model = MODELS[name]()
    with pytest.raises(TypeError, match=rf"{type(model).__name__}.forward\(\) got unexpected .*\['landmark'\]"):
        model(batch["pixel_values"], landmark=batch["landmarks"])  # typo of landmarks=


def test_trn_rejects_landmarks(batch):
    # The TRN runs on pixels alone: landmarks given to it are a mistake, not something to ignore.
    with pytest.raises(TypeError, match=r"\['landmarks'\]"):
        MODELS["trn"]()(batch["pixel_values"], landmarks=batch["landmarks"])


@pytest.mark.parametrize("name", MODELS)
def test_transformers_keyword_arguments_are_accepted(batch, name):
    model = MODELS[name]().eval()
    plain = model(batch["pixel_values"])
    extra = model(
        batch["pixel_values"],
        num_items_in_batch=torch.tensor(BATCH),
        output_hidden_states=False,
        output_attentions=False,
        return_dict=True,
    )
    assert torch.equal(extra.logits, plain.logits)


@pytest.mark.parametrize("name", ["pin", "trn"])
def test_image_classification_pipeline_still_runs(tmp_path, name):
    model = MODELS[name]().eval()
    model.save_pretrained(tmp_path)
    POIImageProcessor(size={"height": 48, "width": 48}).save_pretrained(tmp_path)
    classify = pipeline("image-classification", model=str(tmp_path))
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 48, 3), dtype=np.uint8))
    scores = classify(image, top_k=7)
    assert len(scores) == 7 and sum(score["score"] for score in scores) == pytest.approx(1.0, abs=1e-5)


def test_tiny_trainer_logs_the_terms_the_model_returns(synfer_cache, tmp_path):
    dataset = tiny_synfer(synfer_cache, num_train=32, num_eval=8)
    trainer = tiny_trainer(tmp_path, dataset, num_train_epochs=1, eval_strategy="epoch", save_strategy="no")
    trainer.train()  # 2 steps of 16, then an evaluation through compute_loss(return_outputs=True)
    train_logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(train_logs) == 2
    terms = ("pin_ce", "pin_au", "pin_mutual", "trn_ce", "trn_transfer", "alpha_reg", "alpha_mean", "pin_agreement")
    for entry in train_logs:
        assert set(terms) | {"beta", "confidence_head_mean"} <= entry.keys()
        assert all(np.isfinite(entry[name]) for name in terms)
    evaluation = next(entry for entry in trainer.state.log_history if "eval_loss" in entry)
    assert {"eval_accuracy", "eval_pin_accuracy", "eval_confidence_mean"} <= evaluation.keys()
