"""Publish an exported TRN (and optionally its PIN) to the Hugging Face Hub with model cards.

    python examples/push_to_hub.py --trn_dir outputs/run/trn --pin_dir outputs/run/pin \\
        --repo_id me/poi-r-synfer --results outputs/run/metrics.json --dry_run

Each network gets its own model repo, with its code at the root: the TRN ``--repo_id`` and the PIN
``<repo_id>-pin``. Both then load anywhere with ``AutoModel`` or ``AutoModelForImageClassification`` and
``trust_remote_code=True``, without poi_hf; transformers looks for remote code only at a repo's root, so a PIN in a
subfolder of the TRN's repo would load only where poi_hf is installed. The TRN's config.json names its PIN
(``"pin_model": "<repo_id>-pin"``), and ``pipeline("facial-expression-recognition", model=repo_id)`` loads that PIN
for per-region explanations. Each repo gets one commit; the PIN's goes first, so the TRN never names a missing repo.

Each uploaded README.md is generated with `poi_hf.hub.model_card` for its repo (``pipeline_tag:
image-classification``, ``library_name: transformers``, tags, ``datasets`` when ``--dataset_id`` or the old card
names one, ``model-index``, a usage snippet and a link to the other network). Its numbers come from ``--results`` when
given, else from the folder's current card; dataset name, split and hyperparameters likewise fall back to the current
card. ``--results`` is a ``metrics.json`` written by ``examples/train.py`` (its ``test`` metrics; the PIN card gets
the ``pin_*`` ones), or any JSON (e.g. a robustness benchmark's) where ``--results_key`` (dotted, list indices
allowed) points at a mapping of metric name to a number or to ``{"mean": number, ...}``. The uploaded config.json
gets the ``pin_model`` link and an ``auto_map`` entry for ``AutoModel``; the local folders are not changed.

Only inference files are uploaded: ``allow_patterns`` keeps weights (``*.safetensors``), ``*.json`` configs,
remote-code ``*.py`` and README.md, and ``ignore_patterns`` drops training-only state even where it matches
(``optimizer.pt``, ``scheduler.pt``, ``scaler.pt``, ``rng_state*.pth``, ``trainer_state.json``,
``training_args.bin``, ``checkpoint-*`` folders). A folder must carry the remote code its configs name
(``configuration_*.py``, ``modeling_*.py``, ``image_processing_poi.py``, as exports do). ``--dry_run`` prints exactly
those files and the cards' metadata, and uploads nothing.
"""

import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi, ModelCard
from huggingface_hub.utils import filter_repo_objects, validate_repo_id
from transformers import PreTrainedModel

from poi_hf import PINForImageClassification, TRNForImageClassification
from poi_hf.hub import CARD_METRICS, PIN_MODEL_KEY, add_auto_model, config_json, model_card

ALLOW_PATTERNS = ("*.safetensors", "*.json", "*.py", "README.md")
TRAINING_ONLY_PATTERNS = ("optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state*.pth", "trainer_state.json",
                          "training_args.bin", "checkpoint-*", "*/checkpoint-*")
REQUIRED_FILES = ("model.safetensors", "config.json", "preprocessor_config.json")
REMOTE_CODE = {"config.json": ("AutoConfig", "AutoModelForImageClassification"),
               "preprocessor_config.json": ("AutoImageProcessor",)}
PIN_REPO_SUFFIX = "-pin"
HYPERPARAMETERS = re.compile(r"## Training hyperparameters\s*```json\s*(\{.*?\})\s*```", re.DOTALL)


@dataclass
class Results:
    """Evaluation results for the cards: TRN metrics (PIN ones prefixed ``pin_``), their split, hyperparameters."""

    metrics: dict[str, float]
    split: str | None = None
    hyperparameters: dict | None = None


@dataclass
class Upload:
    """One folder to upload: its repo, its new card and config.json, and the files it sends (in ``folder``)."""

    name: str
    folder: Path
    repo_id: str
    card: ModelCard
    config: dict
    files: list[str]

    def operations(self) -> list[CommitOperationAdd]:
        """The commit: ``files`` from ``folder``, with README.md and config.json replaced by the new ones."""
        generated = {"README.md": str(self.card).encode(), "config.json": config_json(self.config).encode()}
        return [CommitOperationAdd(name, generated.get(name, self.folder / name)) for name in self.files]


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
    for file_name, auto_classes in REMOTE_CODE.items():  # what trust_remote_code=True loads without poi_hf
        auto_map = json.loads((folder / file_name).read_text()).get("auto_map") or {}
        for auto_class in auto_classes:
            module = auto_map.get(auto_class, "").partition(".")[0]
            if not module:
                raise ValueError(f"{option} {folder}: {file_name} has no auto_map entry for {auto_class}, so the "
                                 "upload would not load without poi_hf; export it with poi_hf.hub.export_submodel.")
            if not (folder / f"{module}.py").is_file():
                raise FileNotFoundError(f"{option} {folder} lacks {module}.py, the remote code its {file_name} "
                                        f"names for {auto_class}; export it with poi_hf.hub.export_submodel.")


def plan_upload(folder: Path, model_class: type[PreTrainedModel], option: str, repo_id: str,
                paired_repo_id: str | None, args: argparse.Namespace, results: Results | None,
                metric_prefix: str = "") -> Upload:
    """Check ``folder`` and build its new card and config.json and the list of files it sends to ``repo_id``."""
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
    card = model_card(model_class.from_pretrained(folder), repo_id=repo_id, paired_repo_id=paired_repo_id, **settings)
    config = add_auto_model(json.loads((folder / "config.json").read_text()))
    local = {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()} | {"README.md"}
    kept = filter_repo_objects(sorted(local), allow_patterns=ALLOW_PATTERNS, ignore_patterns=TRAINING_ONLY_PATTERNS)
    return Upload(model_class.config_class.__name__.removesuffix("Config"), folder, repo_id, card, config, list(kept))


def plan(args: argparse.Namespace) -> list[Upload]:
    """Validate the arguments and plan the TRN upload (``--repo_id``) and the PIN one (``<repo_id>-pin``)."""
    validate_repo_id(args.repo_id)
    if "/" not in args.repo_id:  # a bare name means the user's namespace only to create_repo, not to downloads
        raise ValueError(f"--repo_id {args.repo_id!r} needs its namespace, 'namespace/name' (e.g. you/poi-r): the "
                         "cards' snippets and the TRN's link to its PIN name the repo in full.")
    pin_repo_id = args.repo_id + PIN_REPO_SUFFIX if args.pin_dir else None
    if pin_repo_id:
        validate_repo_id(pin_repo_id)
    if args.results_key and not args.results:
        raise ValueError("--results_key needs --results.")
    results = load_results(args.results, args.results_key) if args.results else None
    trn = plan_upload(args.trn_dir, TRNForImageClassification, "--trn_dir", args.repo_id, pin_repo_id, args, results)
    if not trn.card.data.eval_results:
        raise ValueError("The TRN card would have no model-index: pass --results (e.g. the run's metrics.json).")
    trn.config.pop(PIN_MODEL_KEY, None)  # a TRN names only the PIN published with it
    if not pin_repo_id:
        return [trn]
    trn.config[PIN_MODEL_KEY] = pin_repo_id
    pin = plan_upload(args.pin_dir, PINForImageClassification, "--pin_dir", pin_repo_id, args.repo_id, args, results,
                      "pin_")
    return [trn, pin]


def parse_args(argv: list[str] | None = None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    """The command line, and its parser (for error messages)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trn_dir", type=Path, required=True, help="exported TRN folder (e.g. outputs/run/trn)")
    parser.add_argument("--pin_dir", type=Path, help="exported PIN folder, uploaded to the repo <repo_id>-pin")
    parser.add_argument("--repo_id", required=True, help="Hub model repo of the TRN, 'namespace/name'")
    parser.add_argument("--private", action="store_true", help="create the repos private (if they do not exist)")
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
        print(f"{upload.folder} -> {upload.repo_id}:", *(f"+ {name}" for name in upload.files), sep="\n  ")
        if PIN_MODEL_KEY in upload.config:
            print(f"config.json {PIN_MODEL_KEY}: {upload.config[PIN_MODEL_KEY]}")
        print(f"card metadata ({upload.repo_id}/README.md):", upload.card.data.to_yaml(), sep="\n")
    if args.dry_run:
        return 0
    api = HfApi(token=args.token)
    for upload in reversed(uploads):  # the PIN first: the TRN's config names its repo
        url = api.create_repo(upload.repo_id, repo_type="model", private=args.private, exist_ok=True)
        api.create_commit(upload.repo_id, upload.operations(), repo_type="model",
                          commit_message=args.commit_message or f"Upload POI-R {upload.name}")
        print(f"uploaded the {upload.name} to {url}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
