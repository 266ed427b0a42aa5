"""A tiny real training setup (SynFER data, tiny PIN + TRN with POITrainer, or the tiny TRN with BaselineTrainer)
shared by the training tests and the DDP worker script."""

from __future__ import annotations

import torch
from transformers import set_seed

from poi_hf import POIConfig, POIImageProcessor, POIModel, TRNForImageClassification
from poi_hf.baselines import BaselineSettings
from poi_hf.data import load_fer_dataset, poi_collate, set_fer_transforms
from poi_hf.presets import tiny_pin_config, tiny_trn_config
from poi_hf.trainer import BaselineTrainer, POITrainer, POITrainingArguments, build_compute_metrics

IMAGE_SIZE = 48


def tiny_synfer(cache_dir, num_train=64, num_eval=37, augment=True):
    dataset = load_fer_dataset(
        "synfer",
        str(cache_dir),
        num_train=num_train,
        num_validation=num_eval,
        num_test=num_eval,
        image_size=IMAGE_SIZE,
        seed=0,
    )
    dataset["train"] = dataset["train"].add_column("index", list(range(num_train)))  # as examples/train.py does
    # Without augmentation every split gets the evaluation transform (no split is named as the training one).
    return set_fer_transforms(
        dataset, train_split="train" if augment else "", image_size=IMAGE_SIZE, crop_style="synfer"
    )


def tiny_model(seed: int = 0, **poi_settings) -> POIModel:
    set_seed(seed)
    return POIModel(POIConfig(pin_config=tiny_pin_config(), trn_config=tiny_trn_config(), **poi_settings))


# A tiny PIN whose every second training sample (sample_index % 2 == 0) is held out of its label losses.
HOLDOUT = {"member_weighting": "reliability", "reliability_holdout": 2, "reliability_momentum": 0.5}


def holdout_batch(size: int = 4) -> dict:
    """A random training batch with row numbers: rows 0 and 2 are held out under `HOLDOUT`."""
    torch.manual_seed(1)
    side = tiny_pin_config().image_size
    return {
        "pixel_values": torch.randn(size, 3, side, side),
        "labels": torch.arange(size),
        "sample_index": torch.arange(size),  # rows 0 and 2 are held out (index % 2 == 0)
    }


def tiny_trainer_inputs(output_dir, dataset, **overrides) -> dict:
    """Everything but the model (and the method) that the tiny trainers share; ``overrides`` go to the arguments."""
    settings = dict(
        output_dir=str(output_dir),
        num_train_epochs=2,
        per_device_train_batch_size=16,
        per_device_eval_batch_size=16,
        eval_strategy="no",
        save_strategy="epoch",
        logging_steps=1,
        learning_rate=5e-3,
        warmup_steps=0,
        seed=0,
        use_cpu=True,
        dataloader_num_workers=0,
        label_names=["labels", "clean_labels", "true_distribution"],
        disable_tqdm=True,
    )
    settings.update(overrides)
    args = POITrainingArguments(**settings)
    return dict(
        args=args,
        train_dataset=dataset["train"],
        eval_dataset=dataset["validation"],
        data_collator=poi_collate,
        processing_class=POIImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}),
        compute_metrics=build_compute_metrics(args.label_names),
    )


def tiny_trainer(output_dir, dataset, model=None, callbacks=(), **overrides) -> POITrainer:
    model = model if model is not None else tiny_model()
    return POITrainer(model=model, callbacks=list(callbacks), **tiny_trainer_inputs(output_dir, dataset, **overrides))


def tiny_baseline_trainer(
    output_dir, dataset, settings: BaselineSettings, teacher=None, **overrides
) -> BaselineTrainer:
    """A baseline on the tiny TRN (seeded weights), set up as `tiny_trainer`."""
    torch.manual_seed(0)
    model = TRNForImageClassification(tiny_trn_config())
    inputs = tiny_trainer_inputs(output_dir, dataset, **overrides)
    return BaselineTrainer(model=model, baseline=settings, teacher=teacher, **inputs)


def flat_parameters(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])
