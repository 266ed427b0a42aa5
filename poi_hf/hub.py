"""Exports and model cards: standalone TRN/PIN folders (safetensors + config + preprocessor config + README.md +
remote code), and the check that a local model folder can be loaded from."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Mapping

import torch
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from safetensors import SafetensorError, safe_open
from transformers import BaseImageProcessor, PreTrainedModel

from .version import __version__

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
"""A Hub repo id, "owner/name"."""

CARD_METRICS = ("accuracy", "mean_class_accuracy", "macro_f1", "nll", "ece", "kl_true")

PIN_MODEL_KEY = "pin_model"
"""Key of a TRN's config.json naming the PIN of the same run (a Hub id). transformers loads remote code only from a
repo's root, so a published TRN and its PIN live in two repos and the TRN's config points to the PIN's."""

CARD_TEMPLATE = """
# {title}

{summary}

- **Method**: {method_line}
- **Classes** (in output order): {classes}
- **Input**: {image_size}x{image_size} RGB face crops, aligned like the training data (the image processor converts
  grayscale/RGBA to RGB and resizes).
- **Training data**: {dataset}

## Use

```python
import poi_hf  # or pass trust_remote_code=True without poi_hf installed
{usage}
```
{extra}
## Evaluation

{metrics_table}

## Training hyperparameters

```json
{hyperparameters}
```
"""


TRN_USAGE = """from transformers import pipeline

classify = pipeline("image-classification", model="{repo_id}")
classify("face.jpg", top_k={num_labels})"""

PIN_USAGE = """from PIL import Image
from transformers import AutoImageProcessor, AutoModelForImageClassification

processor = AutoImageProcessor.from_pretrained("{repo_id}")
pin = AutoModelForImageClassification.from_pretrained("{repo_id}")
inputs = processor(Image.open("face.jpg"), return_tensors="pt")  # an aligned face crop
out = pin(**inputs)  # landmarks=(B, 5, 2) in [0, 1] of the crop place the regions; default: the template
out.soft_labels, out.region_contributions  # (B, C) distribution, (B, M, C) share of each member"""


POI_METHOD = """POI-R, a documented reconstruction of "Prior-based Objective Inference Mining Potential Uncertainty
  for Facial Expression Recognition" (Liu et al., arXiv 2411.13024), trained with poi_hf {version}. The package's
  `docs/method.md` lists every choice the paper's abstract does not fix."""

BASELINE_METHOD = """the `{method}` baseline of poi_hf on POI-R's TRN architecture (not POI-R's joint PIN + TRN
  training), trained with poi_hf {version}; the package's `docs/method.md` describes it."""

CONFIDENCE_MEANING = {
    "poi": "Besides `logits` it returns `confidence`, the uncertainty head's estimate of how far POI-R's prior "
    "inference network (PIN) backs the predicted label: low values flag likely errors, but on SynFER (30% label noise) "
    "it ranks the TRN's errors a little worse than the top softmax probability (error AUROC 0.70 vs 0.74 at 12 "
    "epochs, 0.77 vs 0.80 at 30), and it does not track how ambiguous a face is. PIN's own support of the label "
    "ranks them best there (0.78-0.89), less so on FER2013, where PIN is no better than the TRN (0.748 vs 0.745): "
    "the `facial-expression-recognition` pipeline returns it as `pin_support` when the paired PIN is loaded. Numbers "
    "and commands: the package's docs/method.md and docs/results.md.",
    "scn": "Besides `logits` it returns `confidence`, SCN's learned per-sample importance weight.",
    "rul": "Besides `logits` it returns `confidence`, RUL's learned relative uncertainty weight.",
}
"""What a TRN's ``confidence`` means, for each method whose training sets its head (`poi_hf.baselines.CONFIDENCE_METHODS`;
the others leave it at its random start)."""
FLIP_CONFIDENCE = (
    "Besides `logits` it returns `confidence`, the predicted class's mean probability on the face and on its mirror "
    "image (`config.confidence_source=\"flip_consistency\"`: one more backbone pass per face). Low values flag "
    "likely errors. It ranks the TRN's errors better than the top softmax probability: on SynFER (noisy labels, 30 "
    "epochs, 14 runs of POI-R, CE and KD) on the validation split in 13 runs of 14 and on test in all 14 (error AUROC "
    "0.84 vs 0.82 for POI-R), on FER2013 by a little (0.77-0.80 vs 0.76-0.79, 5 runs). Like every score measured, it "
    "hardly follows how ambiguous a face is. With POI-R's PIN loaded, the `facial-expression-recognition` pipeline "
    "also returns PIN's support of the label (`pin_support`), better still on SynFER (0.86). Numbers and commands: "
    "the package's docs/method.md."
)
"""What a TRN's ``confidence`` means when it is the flip consistency (`TRNConfig.confidence_source`), whatever the
method: it needs no trained head."""
MIRROR_AVERAGE = (
    "It predicts from the face and its mirror image together (`config.mirror_average`, one more backbone pass per "
    "face): `logits` are the log of the two views' mean probabilities. Chosen on validation splits: +1.5 accuracy "
    "points on SynFER (20 of 23 runs gain; NLL and KL to the true distribution lower in all 23) and +0.5 on FER2013 "
    "PublicTest (4 of 4 runs)."
)
"""What a TRN's prediction is when it averages the face and its mirror image (`TRNConfig.mirror_average`)."""
AVERAGED_CONFIDENCE = (
    "Besides `logits` it returns `confidence`, the top probability of that mean "
    "(`config.confidence_source=\"flip_consistency\"`); low values flag likely errors. The errors left are ranked a "
    "little less well than the face-alone prediction's mirror consistency ranked its own (SynFER error AUROC 0.82 vs "
    "0.84), while accuracy and ranking together (the area under the risk-coverage curve) still improve. Numbers and "
    "commands: the package's docs/method.md."
)
"""The flip consistency of a mirror-averaged prediction: its top probability."""
CALIBRATED = (
    "Its probabilities are temperature-scaled: the logits are divided by T = {temperature:.3g} "
    "(`config.calibration_temperature`), fitted by NLL on the validation split after training, before the test split "
    "was scored."
)
"""What a TRN's probabilities are when it carries a calibration temperature (`TRNConfig.calibration_temperature`)."""


def pin_pooling(config) -> str:
    """How a PIN config's members make its soft label, in words for its card."""
    if config.member_weighting == "prior":
        return "facial-region branches and a global branch, mixed per emotion by an AU-emotion prior table,"
    evidence = (
        ", an AU-evidence member (predicted AUs scored against the AU-emotion prior table)"
        if config.use_au_evidence
        else ""
    )
    return (
        f"facial-region branches, a global branch{evidence}, pooled by each member's measured accuracy "
        f"(against the {config.reliability_reference} member)"
    )


def metrics_table(metrics: Mapping[str, float]) -> str:
    """A markdown table of the metrics a card reports."""
    rows = [f"| {name} | {metrics[name]:.4f} |" for name in CARD_METRICS if name in metrics]
    return "\n".join(["| metric | value |", "|---|---|", *rows]) if rows else "No evaluation results recorded."


def model_card(
    model: PreTrainedModel,
    *,
    repo_id: str,
    dataset_name: str,
    dataset_id: str | None = None,
    metrics: Mapping[str, float] | None = None,
    split: str = "test",
    hyperparameters: Mapping | None = None,
    notes: str = "",
    paired_repo_id: str | None = None,
) -> ModelCard:
    """A model card with `model-index` for a standalone TRN or PIN checkpoint.

    Args:
        model: the exported `TRNForImageClassification` or `PINForImageClassification`.
        repo_id: the Hub id (or local name) of this checkpoint: the card's model-index name and usage snippet.
        dataset_name: human-readable training data, e.g. "SynFER (30% symmetric noise)".
        dataset_id: Hub dataset id for the card's ``datasets`` field, when there is one.
        metrics: evaluation results (keys from `poi_hf.metrics.classification_metrics`) on ``split``.
        notes: markdown appended to the card (training data, preprocessing, limitations).
        paired_repo_id: the Hub id of the other network of the run (a TRN's PIN, a PIN's TRN), linked from the card.
    """
    config = model.config
    is_trn = config.model_type == "poi_trn"
    metrics = dict(metrics or {})
    eval_results = [
        EvalResult(
            task_type="image-classification",
            task_name="Facial expression recognition",
            dataset_type=dataset_id or dataset_name.split()[0].lower(),
            dataset_name=dataset_name,
            dataset_split=split,
            metric_type=name,
            metric_name=name.replace("_", " "),
            metric_value=round(float(metrics[name]), 4),
        )
        for name in CARD_METRICS
        if name in metrics
    ]
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag="image-classification",
        license="apache-2.0",
        tags=["facial-expression-recognition", "emotion", "poi-r", "label-noise", "poi_hf"],
        datasets=[dataset_id] if dataset_id else None,
        metrics=[name for name in CARD_METRICS if name in metrics] or None,
        model_name=repo_id,
        eval_results=eval_results or None,
    )
    method = dict(hyperparameters or {}).get("method", "poi")
    if not is_trn or method == "poi":
        method_line = POI_METHOD.format(version=__version__)
    else:
        method_line = BASELINE_METHOD.format(method=method, version=__version__)
    mirror_average = getattr(config, "mirror_average", False)
    if getattr(config, "confidence_source", "head") == "flip_consistency":
        confidence = AVERAGED_CONFIDENCE if mirror_average else FLIP_CONFIDENCE
    else:
        confidence = CONFIDENCE_MEANING.get(
            method, f"Its `confidence` output is not trained by the `{method}` baseline: ignore it."
        )
    if mirror_average:
        confidence = f"{MIRROR_AVERAGE} {confidence}"
    temperature = getattr(config, "calibration_temperature", 1.0)
    if temperature != 1.0:
        confidence = f"{confidence} {CALIBRATED.format(temperature=temperature)}"
    summary = (
        f"Target Recognition Network (TRN) of POI-R: the deployed facial expression classifier. {confidence}"
        if is_trn
        else f"Prior Inference Network (PIN) of POI-R: {pin_pooling(config)} into an emotion distribution "
        "(`soft_labels`), with each member's contribution (`region_contributions`)."
    )
    usage = (TRN_USAGE if is_trn else PIN_USAGE).format(repo_id=repo_id, num_labels=config.num_labels)
    extra = ""
    if paired_repo_id:
        link = f"[`{paired_repo_id}`](https://huggingface.co/{paired_repo_id})"
        extra = (
            f"\nIts PIN is {link} (`{PIN_MODEL_KEY}` in config.json): with poi_hf, "
            f'`pipeline("facial-expression-recognition", model="{repo_id}")` detects and aligns the faces of a photo, '
            "classifies them and explains each with the PIN's facial regions.\n"
            if is_trn
            else f"\nThe classifier of the same run is {link}; this PIN explains its predictions, and "
            f'`pipeline("facial-expression-recognition", model="{paired_repo_id}")` (poi_hf) loads both.\n'
        )
    text = CARD_TEMPLATE.format(
        title=f"{'TRN' if is_trn else 'PIN'} — POI-R facial expression recognition",
        summary=summary,
        method_line=method_line,
        classes=", ".join(config.id2label[i] for i in range(config.num_labels)),
        image_size=config.image_size,
        dataset=dataset_name,
        usage=usage,
        extra=extra,
        metrics_table=metrics_table(metrics),
        hyperparameters=json.dumps(dict(hyperparameters or {}), indent=2, sort_keys=True, default=str),
    )
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{text}" + (f"\n{notes.strip()}\n" if notes else ""))


def export_submodel(
    model: PreTrainedModel,
    output_dir: str | Path,
    image_processor: BaseImageProcessor,
    card: ModelCard,
    state_dict: Mapping[str, torch.Tensor] | None = None,
) -> Path:
    """Write a standalone checkpoint: safetensors + config + preprocessor config + README.md (+ remote code that
    loads through `AutoModel` and `AutoModelForImageClassification`)."""
    output_dir = Path(output_dir)
    model.save_pretrained(output_dir, state_dict=dict(state_dict) if state_dict is not None else None)
    config_file = output_dir / "config.json"
    config_file.write_text(config_json(add_auto_model(json.loads(config_file.read_text()))))
    image_processor.save_pretrained(output_dir)
    card.save(output_dir / "README.md")
    return output_dir


def add_auto_model(config: Mapping) -> dict:
    """A config.json's content whose remote-code ``auto_map`` also serves `AutoModel`, with the image-classification
    class (what poi_hf registers locally): ``register_for_auto_class`` records one Auto class per model class."""
    auto_map = dict(config.get("auto_map") or {})
    if "AutoModelForImageClassification" not in auto_map:
        return dict(config)
    auto_map.setdefault("AutoModel", auto_map["AutoModelForImageClassification"])
    return {**config, "auto_map": auto_map}


def config_json(config: Mapping) -> str:
    """A config.json's text, formatted as transformers writes it."""
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def _is_local_path(name_or_path: str | os.PathLike) -> bool:
    """Whether ``name_or_path`` means a local folder: a `Path`, an existing path, an absolute path, one starting with
    "." (Hub ids cannot), or one with a path separator that is not shaped like a Hub id "owner/name"."""
    name = os.fspath(name_or_path)
    separators = [sep for sep in (os.sep, os.altsep) if sep]
    return (
        isinstance(name_or_path, os.PathLike)
        or os.path.exists(name)
        or os.path.isabs(name)
        or name.startswith(".")
        or (any(sep in name for sep in separators) and not HUB_ID.fullmatch(name))
    )


def check_model_folder(name_or_path: str | os.PathLike) -> None:
    """Before ``from_pretrained``: raise a clear error when ``name_or_path`` is a local path that holds no loadable
    model (transformers would report a malformed Hub id instead). Hub ids pass unchecked.

    Raises:
        FileNotFoundError: the folder, its ``config.json`` or its weights (``model.safetensors``, a sharded index or
            ``pytorch_model.bin``) do not exist.
        NotADirectoryError: the path is a file.
        OSError: ``model.safetensors`` is empty, truncated or not a safetensors file.
    """
    if not _is_local_path(name_or_path):
        return
    folder = Path(name_or_path)
    if not folder.exists():
        raise FileNotFoundError(
            f"No model folder at {str(folder)!r} (resolved to {folder.resolve()}). Pass a folder written by "
            "save_pretrained, e.g. a training run's trn/ or pin/, or a Hub id 'owner/name'."
        )
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is a file; expected a model folder with config.json and model.safetensors.")
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"{folder} has no config.json, so it is not a model folder written by save_pretrained (examples/train.py "
            "writes the deployable ones to <output_dir>/trn and <output_dir>/pin)."
        )
    weights = folder / "model.safetensors"
    if weights.is_file():
        try:
            with safe_open(weights, "pt"):  # reads the header only; it checks the file covers every tensor
                pass
        except SafetensorError as error:
            message = f"{weights} is empty, truncated or not a safetensors file ({error}); save or download it again."
            raise OSError(message) from error
    elif not any((folder / name).is_file() for name in ("model.safetensors.index.json", "pytorch_model.bin")):
        raise FileNotFoundError(f"{folder} has config.json but no weights: model.safetensors is missing.")
