"""Train POI-R (PIN + TRN jointly), or a baseline the same way, with `poi_hf.trainer.FERTrainer`.

    accelerate launch examples/train.py                      # SynFER, the CPU preset on a machine without a GPU
    accelerate launch examples/train.py --dataset rafdb --data_dir /data/RAF-DB/basic --preset paper --bf16 True
    accelerate launch --multi_gpu --num_processes 4 examples/train.py ...   # DDP (FSDP: `accelerate config`)
    accelerate launch examples/train.py --output_dir outputs/run --resume_from_checkpoint latest

Every POI component is one flag (``--use_uncertainty False``, ``--use_mutual_learning False``, ...); a baseline is
``--method ce | label_smoothing | scn | kd | rul | eac`` with its ``--scn_*``, ``--kd_*``, ``--eac_*`` flags; see
docs/method.md. Writes to ``--output_dir``: checkpoints (each with standalone ``trn/`` and ``pin/``), the final
``trn/`` (pipeline-ready) and ``pin/`` exports with model cards, ``metrics.json``, the Trainer's
``{train,test,all}_results.json`` and ``trainer_state.json``, ``training_curves.png`` and ``confusion_matrix.png``.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import HfArgumentParser, set_seed

from poi_hf import TRNForImageClassification
from poi_hf.backbones import load_torchvision_resnet
from poi_hf.baselines import CONFIDENCE_METHODS, METHODS, BaselineSettings
from poi_hf.calibration import calibrate_temperature
from poi_hf.checkpoints import resolve_checkpoint
from poi_hf.configuration_poi import POIConfig
from poi_hf.data import (
    CROP_STYLES,
    GRAYSCALE_DATASETS,
    LOADERS,
    FEREvalTransform,
    check_noise_rate,
    load_fer_dataset,
    poi_collate,
    processor_transform_settings,
    set_fer_transforms,
)
from poi_hf.hub import check_model_folder
from poi_hf.modeling_poi import POIModel
from poi_hf.presets import PRESETS, image_processor, pin_config, trn_config
from poi_hf.priors import check_class_names
from poi_hf.reporting import analyze_train_split, summarize_history, write_report
from poi_hf.trainer import BaselineTrainer, POITrainer, POITrainingArguments, build_compute_metrics

logger = logging.getLogger("poi_hf.train")


@dataclass
class MethodArguments(BaselineSettings):
    """The method: POI-R, or a baseline trained alike with its settings (`BaselineSettings`)."""

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
        self.check_ranges()


@dataclass
class ModelArguments:
    """The networks' size and initial weights."""

    preset: str = field(default="auto", metadata={"help": "paper | cpu | tiny | auto (paper on a GPU, else cpu)."})
    image_size: int | None = field(default=None, metadata={"help": "Override the preset's input size."})
    backbone_weights: str | None = field(
        default=None, metadata={"help": "torchvision-format ResNet state dict (e.g. MS-Celeb-1M) for both backbones."}
    )
    confidence_from_softmax: bool = field(
        default=False,
        metadata={"help": "poi: the TRN's confidence is its max softmax probability moved by the uncertainty head "
                  "(a logit offset) instead of the head's own score (TRNConfig.confidence_from_softmax)."},
    )
    confidence_source: str = field(
        default="flip_consistency",
        metadata={"help": "The saved TRN's `confidence` at inference: flip_consistency (the predicted class's mean "
                  "probability on the face and its mirror image; ranks errors better than max softmax, one more "
                  "backbone pass) or head (the uncertainty head's score). TRNConfig.confidence_source."},
    )
    mirror_average: bool = field(
        default=True,
        metadata={"help": "The saved TRN predicts from the face and its mirror image together (the log of their mean "
                  "probabilities; the same extra backbone pass as flip_consistency), in evaluation too. "
                  "TRNConfig.mirror_average."},
    )
    fit_temperature: bool = field(
        default=True,
        metadata={"help": "After training, fit the saved TRN's calibration temperature on the validation split (NLL; "
                  "TRNConfig.calibration_temperature, poi_hf.calibration) before the test split is scored."},
    )


@dataclass
class DataArguments:
    """The dataset, its label noise and augmentation."""

    dataset: str = field(default="synfer", metadata={"help": f"One of {sorted(LOADERS)}."})
    data_dir: str | None = field(default=None, metadata={"help": "The unpacked dataset (synfer: its cache folder)."})
    label_file: str | None = field(default=None, metadata={"help": "rafdb: another label file, e.g. EAC noise01.txt."})
    num_classes: int | None = field(default=None, metadata={"help": "synfer/ferplus/affectnet: 7 or 8 classes."})
    noise_rate: float = field(default=0.0, metadata={"help": "Fraction of train labels to flip (synthetic noise)."})
    noise_type: str = field(default="symmetric", metadata={"help": "symmetric | pair | asymmetric."})
    noise_seed: int = field(default=0, metadata={"help": "Seed of the label flips."})
    synfer_train: int = field(default=3000, metadata={"help": "synfer: training images."})
    synfer_validation: int = field(default=500, metadata={"help": "synfer: validation images."})
    synfer_test: int = field(default=1000, metadata={"help": "synfer: test images."})
    synfer_label_mode: str = field(default="subjective", metadata={"help": "subjective | majority | clean."})
    synfer_seed: int = field(default=0, metadata={"help": "synfer: seed of the generated faces and labels."})
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
    max_train_samples: int | None = field(default=None, metadata={"help": "Train on the first N samples only."})
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Evaluate and test on the first N samples of each split only."}
    )

    def __post_init__(self):
        check_noise_rate(self.noise_rate, "--noise_rate")


# Where the training recipe departs from the configs' own defaults (which keep the plain AU-prior mixture): PIN pools
# its members by measured reliability against the median member, with the AU-evidence member, and mutual learning
# pulls each member toward more reliable peers (backed by the 30-epoch runs of docs/results.md, December 2026).
RECIPE_DEFAULTS = {
    "member_weighting": "reliability",
    "reliability_reference": "median",
    "use_au_evidence": True,
    "mutual_target": "reliable_peers",
}
# POIArguments that set PIN's config, not POIConfig fields
PIN_FLAGS = (
    "use_au_prior",
    "member_weighting",
    "reliability_reference",
    "use_au_evidence",
    "reliability_holdout",
    "reliability_momentum",
)


@dataclass
class POIArguments:
    """POI-R's loss settings: `POIConfig`'s fields (see its docstring and docs/method.md), one flag each, plus
    ``use_au_prior``, which switches the AU prior in both places it acts: PIN's AU loss and, with the prior pooling,
    PIN's aggregation, and
    ``member_weighting``, ``reliability_reference``, ``use_au_evidence``, ``reliability_holdout`` and
    ``reliability_momentum``, PIN's (`PINConfig`).

    The defaults are the configs', except ``RECIPE_DEFAULTS``: the configs keep the plain AU-prior mixture
    (``--member_weighting prior --mutual_target ensemble --use_au_evidence False`` here)."""

    temperature: float = field(default=2.0, metadata={"help": "T of the PIN -> TRN transfer."})
    transfer_beta: float = field(default=1.0, metadata={"help": "beta_max, the weight of PIN's soft labels."})
    transfer_mode: str = field(default="interpolate", metadata={"help": "interpolate | additive."})
    transfer_floor: float = field(
        default=0.0, metadata={"help": "gamma, PIN's share in the target of a fully trusted label, in [0, 1]."}
    )
    transfer_ramp_epochs: float = field(default=3.0, metadata={"help": "Epochs of beta's ramp from 0 to beta_max."})
    transfer_schedule: str = field(
        default="ramp",
        metadata={"help": "What sets beta after its ramp: ramp (the clock) | pin_lead (times PIN's lead over the TRN "
                  "on the held-out faces of --reliability_holdout, which then train neither network)."},
    )
    uncertainty_weight: float = field(default=1.0, metadata={"help": "lambda of the uncertainty-head loss."})
    uncertainty_regularizer: str = field(
        default="pin_agreement", metadata={"help": "How alpha is made: pin_agreement | log | rank."}
    )
    label_trust: str = field(
        default="relative",
        metadata={"help": "The label trust alpha: relative (PIN's s[y] / max s) | noise_aware (the probability that "
                  "the label is clean under the label noise PIN's anchors show; docs/method.md)."},
    )
    transition_momentum: float = field(
        default=0.98, metadata={"help": "Momentum of the running noise-transition estimate (noise_aware trust)."}
    )
    trust_sharpness: float = field(default=1.0, metadata={"help": "Exponent k of the label trust alpha ** k."})
    confidence_target: str = field(
        default="prediction_support",
        metadata={"help": "What the uncertainty head predicts: label_trust | prediction_support | correctness (whether "
                  "the TRN is right, fitted on the held-out faces of --reliability_holdout, which then do not train "
                  "the TRN; its head reads detached features) (docs/method.md)."},
    )
    au_loss_weight: float = field(default=0.1, metadata={"help": "Weight of the AU-prior BCE in the PIN loss."})
    mutual_weight: float = field(default=1.0, metadata={"help": "Weight of mutual learning in the PIN loss."})
    mutual_target: str = field(
        default=RECIPE_DEFAULTS["mutual_target"],
        metadata={"help": "What mutual learning pulls PIN's members toward: reliable_peers (needs "
                  "--member_weighting reliability) | ensemble."},
    )
    pin_loss_weight: float = field(default=1.0, metadata={"help": "Weight of the PIN loss in the joint loss."})
    use_pin_soft_labels: bool = field(default=True, metadata={"help": "Transfer PIN's soft labels to the TRN."})
    use_uncertainty: bool = field(default=True, metadata={"help": "Weigh each label by its trust alpha."})
    use_dynamic_transfer: bool = field(default=True, metadata={"help": "Ramp beta up (off: beta_max throughout)."})
    use_mutual_learning: bool = field(default=True, metadata={"help": "Pull PIN's branches toward their ensemble."})
    use_landmarks: bool = field(default=True, metadata={"help": "Feed landmarks to PIN (off: the template)."})
    use_au_prior: bool = field(
        default=True,
        metadata={"help": "AU prior in PIN's AU loss and, with --member_weighting prior, its aggregation (the "
                  "AU-evidence member has its own flag)."},
    )
    member_weighting: str = field(
        default=RECIPE_DEFAULTS["member_weighting"],
        metadata={"help": "How PIN pools its members: reliability (running accuracy) | prior (the AU-prior mixture; "
                  "with --mutual_target ensemble --use_au_evidence False, the recipe before December 2026)."},
    )
    reliability_reference: str = field(
        default=RECIPE_DEFAULTS["reliability_reference"],
        metadata={"help": "With --member_weighting reliability, what a member's weight is measured against: median "
                  "(only the excess over the median member votes) | chance (log-odds over chance)."},
    )
    use_au_evidence: bool = field(
        default=RECIPE_DEFAULTS["use_au_evidence"],
        metadata={"help": "Add PIN's AU-evidence member: predicted AUs scored against each emotion's AU-prior row "
                  "(needs --member_weighting reliability)."},
    )
    reliability_holdout: int = field(
        default=0,
        metadata={"help": "With --member_weighting reliability: 0 measures PIN's members on every training sample; "
                  "N >= 2 keeps every N-th training sample out of PIN's label losses and measures them there only."},
    )
    reliability_momentum: float = field(
        default=0.95,
        metadata={"help": "Momentum per training batch of PIN's running member accuracies (with a holdout, per "
                  "batch that holds a held-out sample)."},
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
    trn = trn_config(
        preset,
        class_names,
        image_size=image_size,
        confidence_trained=method in CONFIDENCE_METHODS,
        confidence_from_softmax=model_args.confidence_from_softmax,
        confidence_source=model_args.confidence_source,
        mirror_average=model_args.mirror_average,
        uncertainty_head_detached=method == "poi" and poi_args.confidence_target == "correctness",
    )
    if method != "poi":
        model = TRNForImageClassification(trn)
        backbones = {"trn": model.backbone}
    else:
        config = POIConfig(
            pin_config=pin_config(
                preset,
                class_names,
                image_size=image_size,
                **{name: getattr(poi_args, name) for name in PIN_FLAGS},
            ),
            trn_config=trn,
            use_au_loss=poi_args.use_au_prior,
            **{name: value for name, value in asdict(poi_args).items() if name not in PIN_FLAGS},
        )
        model = POIModel(config)
        backbones = {"pin": model.pin.backbone, "trn": model.trn.backbone}
    if model_args.backbone_weights:
        for name, backbone in backbones.items():
            report = load_torchvision_resnet(backbone, model_args.backbone_weights)
            logger.info("%s backbone <- %s: %s", name, model_args.backbone_weights, report)
    return model


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

    # Model size and the checkpoint to resume from, checked before any data is read.
    preset = model_args.preset if model_args.preset != "auto" else ("paper" if torch.cuda.is_available() else "cpu")
    if preset not in PRESETS:
        raise ValueError(f"--preset {preset!r}: choose auto or one of {sorted(PRESETS)}.")
    image_size = model_args.image_size or PRESETS[preset]["image_size"]
    if model_args.confidence_from_softmax and method != "poi":
        raise ValueError(
            f"--confidence_from_softmax is POI-R's: {method} trains the uncertainty head as its own sample weight."
        )
    output_dir = Path(training_args.output_dir)
    model_type = POIConfig.model_type if method == "poi" else TRNForImageClassification.config_class.model_type
    checkpoint = resolve_checkpoint(output_dir, training_args.resume_from_checkpoint, model_type)
    set_seed(training_args.seed)

    # Data and model.
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
    transform = processor_transform_settings(processor)
    dataset["train"] = dataset["train"].add_column("index", list(range(len(dataset["train"]))))  # SCN's label table
    augmentation = data_args.augmentation
    if augmentation == "auto":
        augmentation = "light" if data_args.dataset == "synfer" else "strong"
    set_fer_transforms(dataset, augmentation=augmentation, **transform)
    # Evaluation scores against the clean labels and the true distribution where the data has them.
    columns = dataset[eval_split].column_names
    training_args.label_names = ["labels"] + [
        name
        for column, name in (("clean_label", "clean_labels"), ("true_distribution", "true_distribution"))
        if column in columns
    ]

    # Trainer: the same for every method but for its loss.
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
        "bf16": training_args.bf16,
        "confidence_source": model_args.confidence_source,
        "mirror_average": model_args.mirror_average,  # evaluation (and best-epoch selection) predicts from both views
        "fit_temperature": model_args.fit_temperature,
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
        teacher = None
        if method == "kd":  # the teacher's plain logits, one backbone pass, as KD has always distilled
            teacher = TRNForImageClassification.from_pretrained(
                method_args.teacher_path,
                confidence_source="head",
                mirror_average=False,
                calibration_temperature=1.0,
            )
        trainer = BaselineTrainer(**common, baseline=method_args, teacher=teacher)

    # Training.
    train_result = trainer.train(resume_from_checkpoint=checkpoint)
    trainer.log_metrics("train", train_result.metrics)
    trainer.save_metrics("train", train_result.metrics)
    trainer.save_state()  # trainer_state.json: the full log history, also when no checkpoint was kept

    # Calibration on the validation split (the split that chose the epoch), then test, scored once, and the final
    # model with its standalone exports.
    calibration = None
    if model_args.fit_temperature and eval_split == test_split:
        logger.warning(
            "The run evaluates on its test split (no validation split, or --eval_on_test): no calibration temperature "
            "is fitted, so that nothing is fitted on test; the saved TRN keeps T = 1."
        )
    elif model_args.fit_temperature:
        calibration = calibrate_temperature(trainer, dataset[eval_split])
        logger.info("Calibration temperature fitted on %s: %s", eval_split, calibration)
    prediction = trainer.predict(dataset[test_split], metric_key_prefix="test")
    trainer.log_metrics("test", prediction.metrics)
    trainer.save_metrics("test", prediction.metrics)
    test_metrics = {key[len("test_") :]: value for key, value in prediction.metrics.items()}
    trainer.save_model(str(output_dir))
    trainer.export(output_dir, test_metrics, split=test_split)

    # metrics.json (read by benchmarks/robustness.py and examples/ship_model.py), plots and summary.
    results = {
        "method": method,
        "test_split": test_split,
        "test": test_metrics,
        **summarize_history(trainer.state.log_history),
        "train_runtime_s": train_result.metrics.get("train_runtime"),
        **({"calibration": calibration} if calibration else {}),
        "hyperparameters": hyperparameters,
    }
    if method_args.analyze_train:
        results["train_analysis"] = analyze_train_split(
            trainer, dataset["train"].with_transform(FEREvalTransform(**transform)), output_dir
        )
    write_report(trainer, results, prediction, class_names, output_dir)
    return results


if __name__ == "__main__":
    main()
