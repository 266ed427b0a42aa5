"""Train POI-R (PIN + TRN jointly) with `POITrainer`.

    accelerate launch examples/train.py                      # SynFER, the CPU preset on a machine without a GPU
    accelerate launch examples/train.py --dataset rafdb --data_dir /data/RAF-DB/basic --preset paper --bf16 True
    accelerate launch --multi_gpu --num_processes 4 examples/train.py ...   # DDP (FSDP: `accelerate config`)
    accelerate launch examples/train.py --output_dir outputs/run --resume_from_checkpoint latest

Every POI component is one flag (``--use_uncertainty False``, ``--use_mutual_learning False``, ...); see
docs/method.md. Writes to ``--output_dir``: checkpoints (each with standalone ``trn/`` and ``pin/``), the final
``trn/`` (pipeline-ready) and ``pin/`` exports with model cards, ``metrics.json``, ``training_curves.png`` and
``confusion_matrix.png``.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict, dataclass, field, fields, make_dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import HfArgumentParser, set_seed
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import get_last_checkpoint, sort_checkpoints

from poi_hf import TRNForImageClassification
from poi_hf.backbones import load_torchvision_resnet
from poi_hf.baselines import METHODS, BaselineSettings
from poi_hf.configuration_poi import POIConfig
from poi_hf.data import (
    CROP_STYLES,
    GRAYSCALE_DATASETS,
    LOADERS,
    FEREvalTransform,
    check_noise_rate,
    load_fer_dataset,
    poi_collate,
    set_fer_transforms,
)
from poi_hf.hub import check_model_folder
from poi_hf.losses import label_trust
from poi_hf.metrics import auroc, confusion_matrix
from poi_hf.modeling_poi import POIModel
from poi_hf.plots import plot_confusion_matrix, plot_training_curves
from poi_hf.presets import PRESETS, image_processor, pin_config, trn_config
from poi_hf.priors import check_class_names
from poi_hf.trainer import (
    BaselineTrainer,
    POITrainer,
    POITrainingArguments,
    build_compute_metrics,
    evaluation_targets,
    softmax,
    summarize_history,
)

logger = logging.getLogger("poi_hf.train")


@dataclass
class MethodArguments(BaselineSettings):
    method: str = field(default="poi", metadata={"help": f"One of {METHODS}: POI-R or a baseline trained alike."})
    teacher_path: str | None = field(
        default=None, metadata={"help": "kd: a trained TRN folder (e.g. a ce run's trn/)."}
    )
    analyze_train: bool = field(
        default=True,
        metadata={"help": "After training, score the train split: alpha AUROC flipped vs clean, PIN accuracy."},
    )

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"--method {self.method!r}: choose one of {METHODS}.")
        if self.method == "kd" and not self.teacher_path:
            raise ValueError("--method kd needs --teacher_path, a trained TRN folder.")
        if self.method == "kd":
            check_model_folder(self.teacher_path)


@dataclass
class ModelArguments:
    preset: str = field(default="auto", metadata={"help": "paper | cpu | tiny | auto (paper on a GPU, else cpu)."})
    image_size: int | None = field(default=None, metadata={"help": "Override the preset's input size."})
    backbone_weights: str | None = field(
        default=None, metadata={"help": "torchvision-format ResNet state dict (e.g. MS-Celeb-1M) for both backbones."}
    )


@dataclass
class DataArguments:
    dataset: str = field(default="synfer", metadata={"help": f"One of {sorted(LOADERS)}."})
    data_dir: str | None = field(default=None, metadata={"help": "The unpacked dataset (synfer: its cache folder)."})
    label_file: str | None = field(default=None, metadata={"help": "rafdb: another label file, e.g. EAC noise01.txt."})
    num_classes: int | None = field(default=None, metadata={"help": "synfer/ferplus/affectnet: 7 or 8 classes."})
    noise_rate: float = field(default=0.0, metadata={"help": "Fraction of train labels to flip (synthetic noise)."})
    noise_type: str = field(default="symmetric", metadata={"help": "symmetric | pair | asymmetric."})
    noise_seed: int = 0
    synfer_train: int = 3000
    synfer_validation: int = 500
    synfer_test: int = 1000
    synfer_label_mode: str = field(default="subjective", metadata={"help": "subjective | majority | clean."})
    synfer_seed: int = 0
    augmentation: str = field(
        default="auto", metadata={"help": "strong | light | none | auto (light for synfer, strong for real data)."}
    )
    balanced_sampling: bool = field(default=False, metadata={"help": "Class-balanced sampler (AffectNet)."})
    eval_on_test: bool = field(
        default=False,
        metadata={
            "help": "Evaluate every epoch on the test split (the FER papers' best/last-5 convention) instead "
            "of the validation split."
        },
    )
    max_train_samples: int | None = None
    max_eval_samples: int | None = None

    def __post_init__(self):
        check_noise_rate(self.noise_rate, "--noise_rate")


# The POI-R settings are POIConfig's own fields (one flag each, e.g. --use_uncertainty False), plus --use_au_prior,
# which switches the AU prior in both places it acts: PIN's aggregation and PIN's AU loss.
POIArguments = make_dataclass(
    "POIArguments",
    [
        *[
            (f.name, f.type, field(default=f.default))
            for f in fields(POIConfig)
            if f.name in vars(POIConfig)["__annotations__"]
            and f.name not in ("pin_config", "trn_config", "use_au_loss")
        ],
        (
            "use_au_prior",
            bool,
            field(default=True, metadata={"help": "AU prior in PIN's aggregation and its AU loss."}),
        ),
    ],
)


def check_training_arguments(args: POITrainingArguments) -> None:
    """Refuse a run that would train nothing or could not write its results, before any data or model is built."""
    if args.max_steps <= 0 and args.num_train_epochs <= 0:
        raise ValueError(
            f"--num_train_epochs {args.num_train_epochs} trains nothing and would export an untrained model: pass a "
            "positive number of epochs (or --max_steps > 0)."
        )
    if Path(args.output_dir).exists() and not Path(args.output_dir).is_dir():
        raise ValueError(f"--output_dir {args.output_dir} is an existing file; expected a folder to write the run to.")


def incomplete_reason(checkpoint: Path) -> str | None:
    """Why ``checkpoint`` cannot be resumed from, or None when it is complete.

    `Trainer._save_checkpoint` writes the model (config.json, model.safetensors), then the optimizer (optimizer.pt, or
    FSDP/DeepSpeed's own files), scheduler.pt and the RNG state, and trainer_state.json last: a run killed while
    saving leaves a folder without trainer_state.json. The weights are checked too, for a truncated copy."""
    state = checkpoint / TRAINER_STATE_NAME
    if not state.is_file():
        return f"no {TRAINER_STATE_NAME}, which the Trainer writes last"
    try:
        json.loads(state.read_text())
    except ValueError as error:
        return f"{TRAINER_STATE_NAME} is not valid JSON ({error})"
    try:
        check_model_folder(checkpoint)
    except OSError as error:
        return str(error)
    return None


def latest_complete_checkpoint(output_dir: Path) -> str | None:
    """The newest checkpoint-* folder in ``output_dir`` that can be resumed from; newer incomplete ones (a run killed
    while saving) are skipped with a warning and left in place."""
    checkpoints = [Path(path) for path in sort_checkpoints(str(output_dir))]
    skipped = []
    for checkpoint in reversed(checkpoints):
        reason = incomplete_reason(checkpoint)
        if reason is None:
            for newer, why in skipped:
                logger.warning("Skipping %s: incomplete (%s), probably cut off while saving; resuming from %s.",
                               newer, why, checkpoint)
            return str(checkpoint)
        skipped.append((checkpoint, reason))
    if skipped:
        details = "; ".join(f"{newer.name}: {why}" for newer, why in skipped)
        raise ValueError(f"--resume_from_checkpoint latest: no complete checkpoint in {output_dir} ({details}).")
    return None


def resolve_checkpoint(output_dir: Path, resume: str | None, model_type: str) -> str | None:
    """The checkpoint to resume from ("latest" = the newest complete one in output_dir), checked to be a complete
    training checkpoint of ``model_type``; refuses to start over an output_dir that already holds checkpoints, so
    nothing saved is lost."""
    existing = get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
    if resume in (None, "", "False", "false"):
        if existing is not None:
            raise ValueError(
                f"{output_dir} already holds checkpoints ({existing}); pass --resume_from_checkpoint latest to "
                "continue that run, or choose another --output_dir. Nothing was changed."
            )
        return None
    checkpoint = latest_complete_checkpoint(output_dir) if resume in ("latest", "True", "true") else resume
    if checkpoint is None:
        raise ValueError(f"--resume_from_checkpoint {resume}: no checkpoint-* folder in {output_dir}.")
    config_file = Path(checkpoint) / "config.json"
    if not config_file.is_file():
        raise ValueError(f"--resume_from_checkpoint {checkpoint}: no config.json there, not a checkpoint.")
    found = json.loads(config_file.read_text()).get("model_type")
    if found != model_type:
        raise ValueError(
            f"--resume_from_checkpoint {checkpoint} is a {found!r} checkpoint, not a {model_type!r} training "
            "checkpoint of this method; point it at a checkpoint-* folder this script wrote for the same --method."
        )
    reason = incomplete_reason(Path(checkpoint))
    if reason is not None:
        raise ValueError(
            f"--resume_from_checkpoint {checkpoint} is incomplete ({reason}), probably cut off while saving; pass "
            "an earlier checkpoint, or 'latest' for the newest complete one."
        )
    return checkpoint


def load_data(data_args: DataArguments, image_size: int):
    """The DatasetDict and the names of its training / evaluation / test splits."""
    kwargs = {}
    if data_args.dataset == "synfer":
        kwargs = {
            "num_train": data_args.synfer_train,
            "num_validation": data_args.synfer_validation,
            "num_test": data_args.synfer_test,
            "image_size": image_size,
            "label_mode": data_args.synfer_label_mode,
            "seed": data_args.synfer_seed,
        }
    if data_args.num_classes is not None:
        if data_args.dataset not in ("synfer", "ferplus", "affectnet"):
            raise ValueError(
                f"--num_classes applies to synfer, ferplus and affectnet; {data_args.dataset} has fixed classes."
            )
        kwargs["num_classes"] = data_args.num_classes
    if data_args.label_file is not None:
        kwargs["label_file"] = data_args.label_file
    dataset = load_fer_dataset(
        data_args.dataset,
        data_args.data_dir,
        noise_rate=data_args.noise_rate,
        noise_type=data_args.noise_type,
        noise_seed=data_args.noise_seed,
        **kwargs,
    )
    if "train" not in dataset:
        raise ValueError(f"Dataset {data_args.dataset!r} has no train split (splits: {list(dataset)}).")
    test_split = "test" if "test" in dataset else "validation"
    eval_split = "validation" if "validation" in dataset and not data_args.eval_on_test else test_split
    for split, limit in (
        ("train", data_args.max_train_samples),
        (eval_split, data_args.max_eval_samples),
        (test_split, data_args.max_eval_samples),
    ):
        if limit is not None:
            dataset[split] = dataset[split].select(range(min(limit, len(dataset[split]))))
        if len(dataset[split]) == 0:
            raise ValueError(f"The {split!r} split of {data_args.dataset!r} is empty.")
    return dataset, eval_split, test_split


def build_model(
    model_args: ModelArguments, poi_args: POIArguments, method: str, class_names, preset: str, image_size: int
) -> POIModel | TRNForImageClassification:
    """POI-R's PIN + TRN, or the TRN alone for a baseline (same backbone, same size)."""
    trn = trn_config(preset, class_names, image_size=image_size)
    if method != "poi":
        model = TRNForImageClassification(trn)
        backbones = {"trn": model.backbone}
    else:
        config = POIConfig(
            pin_config=pin_config(preset, class_names, image_size=image_size, use_au_prior=poi_args.use_au_prior),
            trn_config=trn,
            use_au_loss=poi_args.use_au_prior,
            **{name: value for name, value in asdict(poi_args).items() if name != "use_au_prior"},
        )
        model = POIModel(config)
        backbones = {"pin": model.pin.backbone, "trn": model.trn.backbone}
    if model_args.backbone_weights:
        for name, backbone in backbones.items():
            report = load_torchvision_resnet(backbone, model_args.backbone_weights)
            logger.info("%s backbone <- %s: %s", name, model_args.backbone_weights, report)
    return model


def analyze_train_split(trainer, train_split, output_dir: Path) -> dict:
    """Score the training split with the eval transform: how well the TRN confidence separates flipped from clean
    labels (AUROC), and how often PIN's soft label / the TRN recover the clean label. Writes train_analysis.npz."""
    if "clean_label" not in train_split.column_names:
        return {}
    label_names, trainer.label_names = trainer.label_names, ["labels", "clean_labels"]
    compute_metrics, trainer.compute_metrics = trainer.compute_metrics, None  # raw predictions are all we need
    try:
        prediction = trainer.predict(train_split, metric_key_prefix="train")
    finally:
        trainer.label_names, trainer.compute_metrics = label_names, compute_metrics
    given, clean = (ids.astype(np.int64) for ids in prediction.label_ids)
    logits, confidence, *pin = prediction.predictions
    flipped = given != clean
    analysis = {
        "noise_rate": float(flipped.mean()),
        "alpha_auroc_clean_vs_flipped": auroc(confidence, ~flipped),
        "alpha_mean_clean": float(confidence[~flipped].mean()) if (~flipped).any() else float("nan"),
        "alpha_mean_flipped": float(confidence[flipped].mean()) if flipped.any() else float("nan"),
        "trn_train_accuracy_clean": float((logits.argmax(-1) == clean).mean()),
        "trn_train_fits_given": float((logits.argmax(-1) == given).mean()),
    }
    if pin:
        # the sample weights POI-R trained with
        sharpness = trainer.model.config.trust_sharpness
        trust = label_trust(torch.from_numpy(softmax(pin[0])), torch.from_numpy(given), sharpness).numpy()
        analysis["trust_auroc_clean_vs_flipped"] = auroc(trust, ~flipped)
        analysis["pin_train_accuracy_clean"] = float((pin[0].argmax(-1) == clean).mean())
        analysis["pin_train_agrees_given"] = float((pin[0].argmax(-1) == given).mean())
    if trainer.is_world_process_zero():
        arrays = {"confidence": confidence, "flipped": flipped, **({"trust": trust} if pin else {})}
        np.savez_compressed(output_dir / "train_analysis.npz", **arrays)
    return analysis


def main(argv: list[str] | None = None) -> dict:
    parser = HfArgumentParser((MethodArguments, ModelArguments, DataArguments, POIArguments, POITrainingArguments))
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith(".json"):
        method_args, model_args, data_args, poi_args, training_args = parser.parse_json_file(argv[0])
    else:
        method_args, model_args, data_args, poi_args, training_args = parser.parse_args_into_dataclasses(argv)
    logging.basicConfig(
        level=logging.INFO if training_args.should_log else logging.WARNING, format="%(asctime)s %(name)s: %(message)s"
    )
    method = method_args.method
    check_training_arguments(training_args)

    preset = model_args.preset if model_args.preset != "auto" else ("paper" if torch.cuda.is_available() else "cpu")
    if preset not in PRESETS:
        raise ValueError(f"--preset {preset!r}: choose auto or one of {sorted(PRESETS)}.")
    image_size = model_args.image_size or PRESETS[preset]["image_size"]
    output_dir = Path(training_args.output_dir)
    model_type = POIConfig.model_type if method == "poi" else TRNForImageClassification.config_class.model_type
    checkpoint = resolve_checkpoint(output_dir, training_args.resume_from_checkpoint, model_type)
    set_seed(training_args.seed)

    dataset, eval_split, test_split = load_data(data_args, image_size)
    class_names = check_class_names(dataset["train"].features["label"].names)
    model = build_model(model_args, poi_args, method, class_names, preset, image_size)
    if checkpoint is not None:
        saved = type(model.config).from_pretrained(checkpoint)
        if saved.id2label != model.config.id2label:
            raise ValueError(
                f"Checkpoint {checkpoint} was trained on classes {saved.id2label}, this data has "
                f"{model.config.id2label}."
            )

    # The saved image processor is the one record of evaluation preprocessing; the transforms are built from it.
    processor = image_processor(image_size, CROP_STYLES[data_args.dataset], data_args.dataset in GRAYSCALE_DATASETS)
    transform = {
        "image_size": processor.size["height"],
        "mean": tuple(processor.image_mean),
        "std": tuple(processor.image_std),
        "crop_style": processor.crop_style,
    }
    dataset["train"] = dataset["train"].add_column("index", list(range(len(dataset["train"]))))
    augmentation = data_args.augmentation
    if augmentation == "auto":
        augmentation = "light" if data_args.dataset == "synfer" else "strong"
    set_fer_transforms(dataset, augmentation=augmentation, **transform)
    columns = dataset[eval_split].column_names
    training_args.label_names = ["labels"] + [
        name
        for column, name in (("clean_label", "clean_labels"), ("true_distribution", "true_distribution"))
        if column in columns
    ]
    noise = f" ({data_args.noise_rate:.0%} {data_args.noise_type} noise)" if data_args.noise_rate else ""
    hyperparameters = {
        "method": method,
        "preset": preset,
        "image_size": image_size,
        **asdict(data_args),
        **(asdict(poi_args) if method == "poi" else asdict(method_args)),
        "epochs": training_args.num_train_epochs,
        "batch_size": training_args.per_device_train_batch_size,
        "learning_rate": training_args.learning_rate,
        "seed": training_args.seed,
    }
    common = dict(
        model=model,
        args=training_args,
        train_dataset=dataset["train"],
        eval_dataset=dataset[eval_split],
        data_collator=poi_collate,
        processing_class=processor,
        compute_metrics=build_compute_metrics(training_args.label_names),
        balanced_sampling=data_args.balanced_sampling,
        card_info={
            "dataset_name": data_args.dataset + noise,
            "repo_id": output_dir.name,
            "hyperparameters": hyperparameters,
            "eval_split": eval_split,
        },
    )
    if method == "poi":
        trainer = POITrainer(**common)
    else:
        settings = BaselineSettings(**{f.name: getattr(method_args, f.name) for f in fields(BaselineSettings)})
        teacher = TRNForImageClassification.from_pretrained(method_args.teacher_path) if method == "kd" else None
        trainer = BaselineTrainer(**common, baseline=settings, teacher=teacher)
    trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_state()  # trainer_state.json: the full log history, also when no checkpoint was kept

    prediction = trainer.predict(dataset[test_split], metric_key_prefix="test")
    test_metrics = {key[len("test_") :]: value for key, value in prediction.metrics.items()}
    trainer.save_model(str(output_dir))
    trainer.export(output_dir, test_metrics, split=test_split)
    results = {
        "method": method,
        "test_split": test_split,
        "test": test_metrics,
        **summarize_history(trainer.state.log_history),
        "train_runtime_s": next((e["train_runtime"] for e in trainer.state.log_history if "train_runtime" in e), None),
        "hyperparameters": hyperparameters,
    }
    if method_args.analyze_train:
        results["train_analysis"] = analyze_train_split(
            trainer, dataset["train"].with_transform(FEREvalTransform(**transform)), output_dir
        )
    if trainer.is_world_process_zero():
        (output_dir / "metrics.json").write_text(json.dumps(results, indent=2, default=str))
        plot_training_curves(trainer.state.log_history, output_dir / "training_curves.png")
        labels, _ = evaluation_targets(prediction, training_args.label_names)
        predicted = prediction.predictions[0].argmax(-1)
        plot_confusion_matrix(
            confusion_matrix(labels, predicted, len(class_names)),
            class_names,
            output_dir / "confusion_matrix.png",
            title=f"TRN on {test_split}",
        )
        print_summary(results, output_dir)
    return results


def print_summary(results: dict, output_dir: Path) -> None:
    rows = [("test", results["test"])] + [(name, results[name]) for name in ("best", "last5_mean") if name in results]
    names = ("accuracy", "mean_class_accuracy", "macro_f1", "nll", "ece", "kl_true", "pin_accuracy")
    print("\n" + " | ".join(["split".ljust(11)] + [name[:14].rjust(14) for name in names]))
    for label, metrics in rows:
        cells = [f"{metrics[name]:.4f}".rjust(14) if name in metrics else "-".rjust(14) for name in names]
        print(" | ".join([label.ljust(11)] + cells))
    if results.get("train_analysis"):
        print("train split:", ", ".join(f"{k} {v:.4f}" for k, v in results["train_analysis"].items()))
    print(f"\nTRN for pipeline('image-classification'): {output_dir / 'trn'}\nmetrics: {output_dir / 'metrics.json'}")


if __name__ == "__main__":
    main()
