"""Publish an exported TRN (and optionally its PIN) to the Hugging Face Hub with a model card.

    python examples/push_to_hub.py --trn_dir outputs/run/trn --pin_dir outputs/run/pin \\
        --repo_id me/poi-r-synfer --results outputs/run/metrics.json --dry_run

The TRN goes to the root of the model repo ``--repo_id`` (so ``pipeline("image-classification", model=repo_id)``
works); the PIN, when given, goes to its ``pin/`` subfolder of the same repo (load it with
``PINForImageClassification.from_pretrained(repo_id, subfolder="pin")``), so the two networks of one run stay
together. Each folder is one ``HfApi.upload_folder`` commit.

Before uploading, each folder's README.md is regenerated in place with `poi_hf.hub.model_card` for ``--repo_id``
(``pipeline_tag: image-classification``, ``library_name: transformers``, tags, ``datasets`` when ``--dataset_id``
or the old card names one, and ``model-index``). Its numbers come from ``--results`` when given, else from the
folder's current card; dataset name, split and hyperparameters likewise fall back to the current card.
``--results`` is a ``metrics.json`` written by ``examples/train.py`` (its ``test`` metrics; the PIN card gets the
``pin_*`` ones), or any JSON (e.g. a robustness benchmark's) where ``--results_key`` (dotted, list indices
allowed) points at a mapping of metric name to a number or to ``{"mean": number, ...}``.

Only inference files are uploaded: ``allow_patterns`` keeps weights (``*.safetensors``), ``*.json`` configs,
remote-code ``*.py`` and README.md, and ``ignore_patterns`` drops training-only state even where it matches
(``optimizer.pt``, ``scheduler.pt``, ``scaler.pt``, ``rng_state*.pth``, ``trainer_state.json``,
``training_args.bin``, ``checkpoint-*`` folders). ``--dry_run`` prints exactly those files and the cards'
metadata, and neither writes nor uploads anything.
"""

import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import HfApi, ModelCard
from huggingface_hub.utils import filter_repo_objects, validate_repo_id
from transformers import PreTrainedModel

from poi_hf import PINForImageClassification, TRNForImageClassification
from poi_hf.hub import CARD_METRICS, model_card

ALLOW_PATTERNS = ("*.safetensors", "*.json", "*.py", "README.md")
TRAINING_ONLY_PATTERNS = ("optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state*.pth", "trainer_state.json",
                          "training_args.bin", "checkpoint-*", "*/checkpoint-*")
REQUIRED_FILES = ("model.safetensors", "config.json", "preprocessor_config.json")
HYPERPARAMETERS = re.compile(r"## Training hyperparameters\s*```json\s*(\{.*?\})\s*```", re.DOTALL)


@dataclass
class Results:
    """Evaluation results for the cards: TRN metrics (PIN ones prefixed ``pin_``), their split, hyperparameters."""

    metrics: dict[str, float]
    split: str | None = None
    hyperparameters: dict | None = None


@dataclass
class Upload:
    """One folder to upload: where it goes in the repo, its regenerated card and the files it sends (in ``folder``)."""

    folder: Path
    path_in_repo: str
    card: ModelCard
    files: list[str]

    @property
    def repo_files(self) -> list[str]:
        """``files`` as paths in the repo."""
        return [f"{self.path_in_repo}/{name}" if self.path_in_repo else name for name in self.files]


def upload_patterns() -> dict[str, list[str]]:
    """Both pattern lists, fresh: ``upload_folder`` extends its ``ignore_patterns`` list in place."""
    return {"allow_patterns": list(ALLOW_PATTERNS), "ignore_patterns": list(TRAINING_ONLY_PATTERNS)}


def given(**settings) -> dict:
    """``settings`` without the ones that are None."""
    return {name: value for name, value in settings.items() if value is not None}


def metric_value(value: object) -> float | None:
    """A number, or the ``mean`` of a ``{"mean": ..., "std": ...}`` summary; None for anything else."""
    value = value.get("mean") if isinstance(value, dict) else value
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def load_results(path: Path, key: str | None = None) -> Results:
    """Metrics from a results JSON: ``key`` (dotted path) if given, else a metrics.json's ``test``, else the top."""
    if not path.is_file():
        raise FileNotFoundError(f"--results {path} does not exist.")
    node = data = json.loads(path.read_text())
    top = data if isinstance(data, dict) else {}
    parts = key.split(".") if key else ["test"] if isinstance(top.get("test"), dict) else []
    for part in parts:
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise ValueError(f"--results {path} has no {key!r} (stopped at {part!r}).") from None
    if not isinstance(node, dict):
        raise ValueError(f"--results {path}: {key or 'the top level'} is not a mapping of metrics.")
    metrics = given(**{name: metric_value(value) for name, value in node.items()})
    if not set(metrics) & set(CARD_METRICS):
        raise ValueError(f"--results {path}: none of {CARD_METRICS} in {key or 'it'}; point --results_key at the "
                         "metrics of the run you upload.")
    return Results(metrics, top.get("test_split"), top.get("hyperparameters"))


def card_settings(card: ModelCard) -> dict:
    """The `poi_hf.hub.model_card` arguments an existing card shows (model-index, datasets, hyperparameters)."""
    evals = card.data.eval_results or []
    found = HYPERPARAMETERS.search(card.text)
    return given(
        dataset_name=evals[0].dataset_name if evals else None,
        dataset_id=(card.data.datasets or [None])[0],
        metrics={result.metric_type: result.metric_value for result in evals},
        split=evals[0].dataset_split if evals else None,
        hyperparameters=json.loads(found.group(1)) if found else None,
    )


def check_folder(folder: Path, model_class: type[PreTrainedModel], option: str) -> None:
    """Raise a clear error unless ``folder`` is an exported checkpoint of ``model_class``."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{option} {folder} is not a folder.")
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{option} {folder} lacks {', '.join(missing)}: export it with examples/train.py "
                                "or poi_hf.hub.export_submodel.")
    model_type = json.loads((folder / "config.json").read_text()).get("model_type")
    expected = model_class.config_class.model_type
    if model_type != expected:
        raise ValueError(f"{option} {folder} holds a {model_type!r} model, not {expected!r}.")


def plan_upload(folder: Path, model_class: type[PreTrainedModel], option: str, path_in_repo: str,
                args: argparse.Namespace, results: Results | None, metric_prefix: str = "") -> Upload:
    """Check ``folder`` and build its new card and the list of files it sends (paths in the repo)."""
    check_folder(folder, model_class, option)
    readme = folder / "README.md"
    settings = card_settings(ModelCard.load(readme)) if readme.is_file() else {}
    settings |= given(dataset_name=args.dataset_name, dataset_id=args.dataset_id)
    if results:
        metrics = {name[len(metric_prefix):]: value for name, value in results.metrics.items()
                   if name.startswith(metric_prefix)}
        settings |= given(metrics=metrics, split=results.split, hyperparameters=results.hyperparameters)
    if "dataset_name" not in settings:
        raise ValueError(f"{option} {folder} has no model card naming its training data: pass --dataset_name.")
    card = model_card(model_class.from_pretrained(folder), repo_id=args.repo_id, **settings)
    local = {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()} | {"README.md"}
    kept = filter_repo_objects(sorted(local), **upload_patterns())
    return Upload(folder, path_in_repo, card, list(kept))


def plan(args: argparse.Namespace) -> list[Upload]:
    """Validate the arguments and plan the TRN upload (repo root) and the PIN one (``pin/``)."""
    validate_repo_id(args.repo_id)
    if args.results_key and not args.results:
        raise ValueError("--results_key needs --results.")
    results = load_results(args.results, args.results_key) if args.results else None
    uploads = [plan_upload(args.trn_dir, TRNForImageClassification, "--trn_dir", "", args, results)]
    if not uploads[0].card.data.eval_results:
        raise ValueError("The TRN card would have no model-index: pass --results (e.g. the run's metrics.json).")
    if args.pin_dir:
        uploads.append(plan_upload(args.pin_dir, PINForImageClassification, "--pin_dir", "pin", args, results, "pin_"))
    return uploads


def parse_args(argv: list[str] | None = None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    """The command line, and its parser (for error messages)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trn_dir", type=Path, required=True, help="exported TRN folder (e.g. outputs/run/trn)")
    parser.add_argument("--pin_dir", type=Path, help="exported PIN folder, uploaded to the repo's pin/ subfolder")
    parser.add_argument("--repo_id", required=True, help="Hub model repo, 'namespace/name' or 'name'")
    parser.add_argument("--private", action="store_true", help="create the repo private (if it does not exist)")
    parser.add_argument("--token", help="Hub token (default: HF_TOKEN or the `hf auth login` token)")
    parser.add_argument("--results", type=Path, help="metrics.json or benchmark JSON for the cards' model-index")
    parser.add_argument("--results_key", help="dotted path to the metrics inside --results, e.g. runs.3.test")
    parser.add_argument("--dataset_name", help="training data shown on the card (default: the current card's)")
    parser.add_argument("--dataset_id", help="Hub dataset id for the card's `datasets` field")
    parser.add_argument("--commit_message", help="commit message (default: 'Upload POI-R TRN'/'... PIN')")
    parser.add_argument("--dry_run", action="store_true", help="print the files and card metadata; upload nothing")
    return parser, parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    parser, args = parse_args(argv)
    try:
        uploads = plan(args)
    except (ValueError, FileNotFoundError) as error:  # HFValidationError (bad repo id) is a ValueError
        parser.error(str(error))
    for upload in uploads:
        print(f"{upload.folder} -> {args.repo_id}:", *(f"+ {name}" for name in upload.repo_files), sep="\n  ")
        card_path = Path(upload.path_in_repo, "README.md").as_posix()
        print(f"card metadata ({card_path}):", upload.card.data.to_yaml(), sep="\n")
    if args.dry_run:
        return 0
    api = HfApi(token=args.token)
    url = api.create_repo(args.repo_id, repo_type="model", private=args.private, exist_ok=True)
    for upload, name in zip(uploads, ("TRN", "PIN")):
        upload.card.save(upload.folder / "README.md")
        api.upload_folder(repo_id=args.repo_id, repo_type="model", folder_path=upload.folder,
                          path_in_repo=upload.path_in_repo,
                          commit_message=args.commit_message or f"Upload POI-R {name}",
                          **upload_patterns())
    print(f"uploaded to {url}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
