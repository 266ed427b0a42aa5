"""One FERTrainer for every method: a method is its loss object (loss, logged terms, schedules, per-sample state);
exports follow the model; the train-split analysis leaves the trainer as it was."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F
from transformers import AutoModelForImageClassification

from poi_hf import TRNForImageClassification
from poi_hf.baselines import BaselineSettings
from poi_hf.data import poi_collate
from poi_hf.losses import transfer_weight
from poi_hf.presets import tiny_trn_config
from poi_hf.reporting import analyze_train_split
from poi_hf.trainer import FERLoss, FERTrainer, POILoss, SCNLoss
from tiny_run import tiny_baseline_trainer, tiny_model, tiny_synfer, tiny_trainer, tiny_trainer_inputs


@pytest.fixture(scope="module")
def dataset(synfer_cache):
    return tiny_synfer(synfer_cache, num_train=32, num_eval=8, augment=False)


def first_batch(dataset, size=8) -> dict:
    return poi_collate([dataset["train"][i] for i in range(size)])


def test_poi_loss_is_the_model_loss_at_the_ramp_beta_of_the_epoch(dataset):
    model = tiny_model(transfer_ramp_epochs=3.0).eval()
    batch, epoch = first_batch(dataset), 1.25
    beta = transfer_weight(epoch, beta_max=1.0, ramp_epochs=3.0)
    loss = POILoss(model.config)
    assert 0 < beta < 1 and loss.schedule(epoch) == {"beta": round(beta, 5)}
    value, _, terms = loss(model, batch, epoch)
    expected = model(
        batch["pixel_values"],
        landmarks=batch["landmarks"],
        labels=batch["labels"],
        soft_labels=batch.get("soft_labels"),
        beta=beta,
    )
    assert torch.equal(value, expected.loss)
    assert all(torch.equal(terms[name], term) for name, term in expected.loss_terms.items())


class EpochWeightedCE(FERLoss):
    """A made-up method: CE weighted by ``1 + epoch`` (a schedule), logging its CE and the epoch it saw."""

    def schedule(self, epoch):
        return {"weight": 1.0 + epoch}

    def forward(self, model, inputs, epoch):
        outputs = model(pixel_values=inputs["pixel_values"])
        ce = F.cross_entropy(outputs.logits, inputs["labels"])
        return (1.0 + epoch) * ce, outputs, {"ce": ce, "seen_epoch": torch.tensor(epoch)}


def test_a_method_is_a_loss_object_whose_terms_and_schedules_are_logged(tmp_path, dataset):
    inputs = tiny_trainer_inputs(
        tmp_path, dataset, num_train_epochs=1, per_device_train_batch_size=8, logging_steps=2, save_strategy="no"
    )
    trainer = FERTrainer(model=TRNForImageClassification(tiny_trn_config()), loss=EpochWeightedCE(), **inputs)
    trainer.train()  # 4 steps, starting at epochs 0, 0.25, 0.5, 0.75; a log every 2
    logs = [entry for entry in trainer.state.log_history if "ce" in entry]
    assert [entry["step"] for entry in logs] == [2, 4]
    assert [entry["seen_epoch"] for entry in logs] == [0.125, 0.625]  # means over each logging interval
    assert [entry["weight"] for entry in logs] == [1.5, 2.0]  # the schedule at the log's epoch
    assert all("beta" not in entry for entry in trainer.state.log_history)  # POI-R's ramp is POILoss's alone


def test_exports_follow_the_model(tmp_path, dataset):
    poi = tiny_trainer(tmp_path / "poi", dataset)
    poi.export(tmp_path / "poi")
    baseline = tiny_baseline_trainer(tmp_path / "ce", dataset, BaselineSettings("ce"))
    baseline.export(tmp_path / "ce")
    assert sorted(path.name for path in (tmp_path / "poi").iterdir()) == ["pin", "trn"]
    assert sorted(path.name for path in (tmp_path / "ce").iterdir()) == ["trn"]
    for folder, model in ((tmp_path / "poi" / "trn", poi.model.trn), (tmp_path / "ce" / "trn", baseline.model)):
        exported = AutoModelForImageClassification.from_pretrained(folder).state_dict()
        assert all(torch.equal(exported[name], value) for name, value in model.state_dict().items())


def test_scn_loss_relabels_the_batch_rows_in_training_only(dataset):
    settings = BaselineSettings("scn", scn_relabel_epoch=0.0, scn_relabel_margin=-1.0, baseline_warmup_epochs=0.0)
    loss = SCNLoss(settings, dataset["train"])
    model, batch = TRNForImageClassification(tiny_trn_config()), first_batch(dataset)
    loss(model.eval(), batch, 1.0)
    assert torch.equal(loss.label_table, loss.original_labels)
    *_, terms = loss(model.train(), batch, 1.0)
    relabelled = loss.label_table != loss.original_labels
    assert relabelled[:8].any() and not relabelled[8:].any()
    assert terms["relabelled"].item() == pytest.approx(relabelled.float().mean().item())


def test_train_split_analysis_reads_the_labels_in_prediction_order(tmp_path, dataset):
    trainer = tiny_trainer(tmp_path, dataset, per_device_eval_batch_size=5)  # a short last batch
    label_names, compute_metrics = trainer.label_names, trainer.compute_metrics
    analysis = analyze_train_split(trainer, dataset["train"], tmp_path)
    assert trainer.label_names is label_names and trainer.compute_metrics is compute_metrics

    # The given and clean labels as the Trainer hands them out next to each prediction.
    reference = tiny_trainer(tmp_path / "ref", dataset, model=trainer.model, label_names=["labels", "clean_labels"])
    prediction = reference.predict(dataset["train"])
    given, clean = prediction.label_ids
    arrays = np.load(tmp_path / "train_analysis.npz")
    assert 0 < arrays["flipped"].sum() < len(arrays["flipped"])
    np.testing.assert_array_equal(arrays["flipped"], given != clean)
    np.testing.assert_array_equal(arrays["confidence"], prediction.predictions[1])
    assert analysis["noise_rate"] == arrays["flipped"].mean()
    assert {"trust_auroc_clean_vs_flipped", "pin_train_accuracy_clean"} <= analysis.keys()  # POI-R's PIN


def test_train_split_analysis_reads_the_head_whatever_is_deployed(tmp_path, dataset):
    """The flip consistency is a property of predictions; the training-label analysis scores the head training
    weighed with, and leaves the deployed source as it was."""
    trainer = tiny_trainer(tmp_path, dataset)
    trainer.model.trn.config.confidence_source = "flip_consistency"
    analyze_train_split(trainer, dataset["train"], tmp_path)
    assert trainer.model.trn.config.confidence_source == "flip_consistency"
    deployed = trainer.predict(dataset["train"]).predictions[1]
    trainer.model.trn.config.confidence_source = "head"
    head = trainer.predict(dataset["train"]).predictions[1]
    np.testing.assert_array_equal(np.load(tmp_path / "train_analysis.npz")["confidence"], head)
    assert not np.allclose(deployed, head)
