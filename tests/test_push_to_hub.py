"""examples/push_to_hub.py: what goes to the Hub (files, repo, card metadata), with a fake `HfApi` and no network."""

import importlib.util
import inspect
import json
import os
import shutil
from pathlib import Path

import pytest
from huggingface_hub import HfApi, ModelCard
from huggingface_hub.utils import filter_repo_objects

from poi_hf import PINForImageClassification, POIImageProcessor, TRNForImageClassification
from poi_hf.hub import export_submodel, model_card
from poi_hf.presets import tiny_pin_config, tiny_trn_config

os.environ["HF_HUB_OFFLINE"] = "1"  # as conftest.py does before huggingface_hub loads; no test may reach the Hub

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "push_to_hub.py"
REPO_ID = "someone/poi-r-tiny"
EXPORT_METRICS = {"accuracy": 0.5, "nll": 1.25}
HYPERPARAMETERS = {"learning_rate": 0.001, "seed": 3}
TRAINING_ONLY = ("optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json", "training_args.bin",
                 "checkpoint-5/model.safetensors", "checkpoint-5/config.json")


def files_in(folder: Path) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())


class FakeHfApi:
    """Records `create_repo` and `upload_folder` calls (checked against the real `HfApi` signatures); each upload's
    files are the ones the real `upload_folder` would send (its own pattern filter, on the folder at call time)."""

    def __init__(self):
        self.connected = False
        self.token = None
        self.repos: list[dict] = []
        self.uploads: list[dict] = []

    def __call__(self, token=None) -> "FakeHfApi":
        """Stands in for the `HfApi` class: "constructing" it returns this recorder."""
        self.connected, self.token = True, token
        return self

    def create_repo(self, repo_id, **kwargs):
        inspect.signature(HfApi.create_repo).bind(self, repo_id, **kwargs)
        self.repos.append({"repo_id": repo_id, **kwargs})
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, *, folder_path, allow_patterns=None, ignore_patterns=None, **kwargs):
        inspect.signature(HfApi.upload_folder).bind(self, folder_path=folder_path, **kwargs)
        files = filter_repo_objects(files_in(Path(folder_path)), allow_patterns=allow_patterns,
                                    ignore_patterns=ignore_patterns)
        self.uploads.append({"folder": Path(folder_path), "files": list(files), **kwargs})


@pytest.fixture(scope="module")
def push_to_hub():
    spec = importlib.util.spec_from_file_location("push_to_hub", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    """A tiny run as examples/train.py exports it: ``trn/`` and ``pin/`` with model cards."""
    run = tmp_path_factory.mktemp("run")
    for name, model in (("trn", TRNForImageClassification(tiny_trn_config())),
                        ("pin", PINForImageClassification(tiny_pin_config()))):
        card = model_card(model, repo_id="run", dataset_name="SynFER (30% symmetric noise)",
                          metrics=EXPORT_METRICS, hyperparameters=HYPERPARAMETERS)
        size = model.config.image_size
        export_submodel(model, run / name, POIImageProcessor(size={"height": size, "width": size}), card)
    return run


@pytest.fixture
def run(export, tmp_path) -> Path:
    """A fresh copy of the export (the script rewrites README.md), with training-only files in ``trn/``."""
    run = Path(shutil.copytree(export, tmp_path / "run"))
    for name in TRAINING_ONLY:
        (run / "trn" / name).parent.mkdir(exist_ok=True)
        (run / "trn" / name).write_bytes(b"training state")
    return run


@pytest.fixture
def api(push_to_hub, monkeypatch) -> FakeHfApi:
    fake = FakeHfApi()
    monkeypatch.setattr(push_to_hub, "HfApi", fake)
    return fake


def card_metrics(card: ModelCard) -> dict[str, float]:
    return {result.metric_type: result.metric_value for result in card.data.eval_results}


def test_uploads_inference_files_and_results_card(push_to_hub, export, run, api, tmp_path):
    results = tmp_path / "metrics.json"
    results.write_text(json.dumps({
        "method": "poi", "test_split": "test",
        "test": {"accuracy": 0.8125, "macro_f1": 0.7, "nll": 0.625, "ece": 0.05, "kl_true": 0.2, "loss": 1.5,
                 "pin_accuracy": 0.75, "pin_nll": 0.875},
        "hyperparameters": {"learning_rate": 0.01, "seed": 0},
    }))
    argv = ["--trn_dir", str(run / "trn"), "--pin_dir", str(run / "pin"), "--repo_id", REPO_ID, "--private",
            "--token", "hf_test", "--results", str(results), "--dataset_id", "someone/synfer"]
    assert push_to_hub.main(argv) == 0

    assert api.token == "hf_test"
    assert api.repos == [{"repo_id": REPO_ID, "repo_type": "model", "private": True, "exist_ok": True}]
    trn, pin = api.uploads
    # exactly what the export wrote (weights, configs, remote code, card), none of the training-only files
    assert trn["files"] == files_in(export / "trn") and pin["files"] == files_in(export / "pin")
    assert {"model.safetensors", "config.json", "preprocessor_config.json", "README.md", "modeling_trn.py"} <= set(
        trn["files"])
    assert not set(trn["files"]) & set(TRAINING_ONLY)
    assert (trn["folder"], trn["path_in_repo"], pin["folder"], pin["path_in_repo"]) == (
        run / "trn", "", run / "pin", "pin")
    assert {upload["repo_id"] for upload in api.uploads} == {REPO_ID}
    assert {upload["repo_type"] for upload in api.uploads} == {"model"}

    trn_card, pin_card = (ModelCard.load(run / name / "README.md") for name in ("trn", "pin"))
    for card in (trn_card, pin_card):
        assert card.data.pipeline_tag == "image-classification" and card.data.library_name == "transformers"
        assert "facial-expression-recognition" in card.data.tags and card.data.datasets == ["someone/synfer"]
        assert card.data.model_name == REPO_ID and f'model="{REPO_ID}"' in card.text
        assert '"learning_rate": 0.01' in card.text
    assert card_metrics(trn_card) == {"accuracy": 0.8125, "macro_f1": 0.7, "nll": 0.625, "ece": 0.05, "kl_true": 0.2}
    assert card_metrics(pin_card) == {"accuracy": 0.75, "nll": 0.875}
    assert {result.dataset_split for result in trn_card.data.eval_results} == {"test"}


def test_without_results_the_card_keeps_the_exported_numbers(push_to_hub, run, api):
    assert push_to_hub.main(["--trn_dir", str(run / "trn"), "--repo_id", "poi-r-tiny",
                             "--commit_message", "First model"]) == 0
    (upload,) = api.uploads
    assert upload["commit_message"] == "First model" and upload["repo_id"] == "poi-r-tiny"
    card = ModelCard.load(run / "trn" / "README.md")
    assert card_metrics(card) == EXPORT_METRICS and card.data.model_name == "poi-r-tiny"
    assert card.data.datasets is None and card.data.eval_results[0].dataset_name == "SynFER (30% symmetric noise)"
    assert '"learning_rate": 0.001' in card.text


def test_dry_run_prints_files_and_card_and_changes_nothing(push_to_hub, run, api, tmp_path, capsys):
    benchmark = tmp_path / "robustness.json"
    benchmark.write_text(json.dumps({"runs": [
        {"method": "ce", "noise_rate": 0.3, "test": {"accuracy": {"mean": 0.5, "std": 0.02}}},
        {"method": "poi", "noise_rate": 0.3, "test": {"accuracy": {"mean": 0.6875, "std": 0.01}, "ece": 0.03}},
    ]}))
    readme = (run / "trn" / "README.md").read_text()
    argv = ["--trn_dir", str(run / "trn"), "--pin_dir", str(run / "pin"), "--repo_id", REPO_ID,
            "--results", str(benchmark), "--results_key", "runs.1.test", "--dry_run"]
    assert push_to_hub.main(argv) == 0

    out = capsys.readouterr().out
    assert not api.connected and (run / "trn" / "README.md").read_text() == readme
    listed = [line[len("  + "):] for line in out.splitlines() if line.startswith("  + ")]
    trn_files = [name for name in files_in(run / "trn") if name not in TRAINING_ONLY]
    assert listed == trn_files + [f"pin/{name}" for name in files_in(run / "pin")]
    assert "pipeline_tag: image-classification" in out and "library_name: transformers" in out
    assert "value: 0.6875" in out and "value: 0.03" in out and "card metadata (pin/README.md)" in out


@pytest.mark.parametrize("case, message", [
    ("missing_folder", "is not a folder"),
    ("no_preprocessor", "lacks preprocessor_config.json"),
    ("pin_as_trn", "holds a 'poi_pin' model, not 'poi_trn'"),
    ("trn_as_pin", "holds a 'poi_trn' model, not 'poi_pin'"),
    ("bad_repo_id", "Repo id must"),
    ("nested_repo_id", "namespace/repo_name"),
    ("no_metrics", "none of"),
    ("bad_results_key", "has no 'runs.7.test'"),
    ("no_results_file", "does not exist"),
])
def test_bad_inputs_fail_with_clear_errors(push_to_hub, run, api, tmp_path, capsys, case, message):
    if case == "no_preprocessor":
        (run / "trn" / "preprocessor_config.json").unlink()
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"runs": [{"test": {"loss": 1.0}}]}))
    argv = {  # appended to valid arguments; argparse keeps an option's last value
        "missing_folder": ["--trn_dir", str(tmp_path / "nowhere")],
        "no_preprocessor": [],
        "pin_as_trn": ["--trn_dir", str(run / "pin")],
        "trn_as_pin": ["--pin_dir", str(run / "trn")],
        "bad_repo_id": ["--repo_id", "some one/poi r"],
        "nested_repo_id": ["--repo_id", "a/b/c"],
        "no_metrics": ["--results", str(results), "--results_key", "runs.0.test"],
        "bad_results_key": ["--results", str(results), "--results_key", "runs.7.test"],
        "no_results_file": ["--results", str(tmp_path / "missing.json")],
    }[case]
    with pytest.raises(SystemExit) as exit_info:
        push_to_hub.main(["--trn_dir", str(run / "trn"), "--repo_id", REPO_ID, *argv])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not api.connected


@pytest.mark.parametrize("eval_split", ["validation", "test"])
def test_checkpoint_cards_name_the_split_that_was_evaluated(tmp_path, synfer_cache, eval_split):
    from tiny_run import tiny_synfer, tiny_trainer

    trainer = tiny_trainer(tmp_path, tiny_synfer(synfer_cache, num_train=16, num_eval=8), num_train_epochs=1,
                           eval_strategy="epoch")
    trainer.card_info["eval_split"] = eval_split
    trainer.train()
    (checkpoint,) = tmp_path.glob("checkpoint-*")
    card = ModelCard.load(checkpoint / "trn" / "README.md")
    assert {result.dataset_split for result in card.data.eval_results} == {eval_split}
