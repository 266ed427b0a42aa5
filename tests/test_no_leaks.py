"""Every method sees the same supervision: the evaluation-only columns of a training batch (``clean_labels``,
SynFER's ``true_distribution``) never change a training loss."""

import pytest
import torch

from poi_hf import TRNForImageClassification
from poi_hf.baselines import BaselineSettings
from poi_hf.data import poi_collate
from poi_hf.presets import tiny_trn_config
from poi_hf.trainer import BaselineTrainer
from tiny_run import tiny_synfer, tiny_trainer

METHODS = ("poi", "ce", "label_smoothing", "scn", "kd", "rul", "eac")


def method_trainer(method: str, output_dir, dataset):
    poi = tiny_trainer(output_dir, dataset, save_strategy="no", bf16=False)
    if method == "poi":
        return poi
    torch.manual_seed(0)
    teacher = TRNForImageClassification(tiny_trn_config()) if method == "kd" else None
    return BaselineTrainer(
        model=TRNForImageClassification(tiny_trn_config()),
        args=poi.args,
        train_dataset=dataset["train"],
        data_collator=poi_collate,
        processing_class=poi.processing_class,
        baseline=BaselineSettings(method, baseline_warmup_epochs=0.0),  # SCN: its ranking loss from the first step
        teacher=teacher,
    )


@pytest.mark.parametrize("method", METHODS)
def test_clean_columns_do_not_change_the_training_loss(tmp_path, synfer_cache, method):
    dataset = tiny_synfer(synfer_cache, num_train=16, num_eval=8, augment=False)
    trainer = method_trainer(method, tmp_path, dataset)
    batch = poi_collate([dataset["train"][i] for i in range(16)])
    batch["sample_index"] = torch.arange(16)
    assert {"clean_labels", "true_distribution"} <= set(batch)
    shuffled = dict(batch)
    order = torch.randperm(16, generator=torch.Generator().manual_seed(1))
    shuffled["clean_labels"] = (batch["clean_labels"][order] + 1) % trainer.model.config.num_labels
    shuffled["true_distribution"] = batch["true_distribution"][order]

    model = trainer.model.train()
    losses = []
    for inputs in (batch, shuffled):
        torch.manual_seed(0)
        losses.append(trainer.compute_loss(model, inputs).detach())
    torch.testing.assert_close(losses[0], losses[1], rtol=0, atol=0)
