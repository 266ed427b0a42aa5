"""examples/push_to_hub.py: what goes to the Hub (files, repos, configs, card metadata), with a fake `HfApi` that
writes the commits into a local Hugging Face cache, and no network."""

import hashlib
import importlib.util
import inspect
import json
import os
import shutil
from pathlib import Path

import pytest
from huggingface_hub import HfApi, ModelCard, snapshot_download

from poi_hf import PINForImageClassification, POIImageProcessor, TRNForImageClassification
from poi_hf.baselines import CONFIDENCE_METHODS
from poi_hf.hub import (
    AVERAGED_CONFIDENCE,
    CONFIDENCE_MEANING,
    FLIP_CONFIDENCE,
    MIRROR_AVERAGE,
    PIN_MODEL_KEY,
    export_submodel,
    model_card,
)
from poi_hf.presets import tiny_pin_config, tiny_trn_config

os.environ["HF_HUB_OFFLINE"] = "1"  # as conftest.py does before huggingface_hub loads; no test may reach the Hub

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "push_to_hub.py"
REPO_ID = "someone/poi-r-tiny"
PIN_REPO_ID = "someone/poi-r-tiny-pin"
EXPORT_METRICS = {"accuracy": 0.5, "nll": 1.25}
HYPERPARAMETERS = {"learning_rate": 0.001, "seed": 3}
TRAINING_ONLY = ("optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json", "training_args.bin",
                 "checkpoint-5/model.safetensors", "checkpoint-5/config.json")


def files_in(folder: Path) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())


class FakeHfApi:
    """Records `create_repo` and `create_commit` calls (checked against the real `HfApi` signatures) and writes each
    commit into ``cache`` as a download leaves a repo in the Hugging Face cache, so ``from_pretrained(repo_id)`` with
    ``HF_HUB_CACHE=cache`` (offline) loads what was "uploaded", and `hub_snapshot` finds its folder."""

    def __init__(self, cache: Path):
        self.cache = cache
        self.connected = False
        self.token = None
        self.repos: list[dict] = []
        self.commits: list[dict] = []

    def __call__(self, token=None) -> "FakeHfApi":
        """Stands in for the `HfApi` class: "constructing" it returns this recorder."""
        self.connected, self.token = True, token
        return self

    def create_repo(self, repo_id, **kwargs):
        inspect.signature(HfApi.create_repo).bind(self, repo_id, **kwargs)
        self.repos.append({"repo_id": repo_id, **kwargs})
        return f"https://huggingface.co/{repo_id}"

    def create_commit(self, repo_id, operations, **kwargs):
        inspect.signature(HfApi.create_commit).bind(self, repo_id, operations, **kwargs)
        repo = self.cache / f"models--{repo_id.replace('/', '--')}"
        revision = hashlib.sha1(f"{repo_id} {len(self.commits)}".encode()).hexdigest()
        for operation in operations:
            target = repo / "snapshots" / revision / operation.path_in_repo
            target.parent.mkdir(parents=True, exist_ok=True)
            with operation.as_file() as content:
                target.write_bytes(content.read())
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text(revision)
        self.commits.append({"repo_id": repo_id, "files": [operation.path_in_repo for operation in operations],
                             **kwargs})


def hub_snapshot(api: FakeHfApi, repo_id: str) -> Path:
    """The folder of ``repo_id``'s latest commit in the fake Hub's cache, found as transformers finds it offline."""
    return Path(snapshot_download(repo_id, cache_dir=api.cache, local_files_only=True))


def load_push_to_hub():
    """examples/push_to_hub.py as a module."""
    spec = importlib.util.spec_from_file_location("push_to_hub", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def push_to_hub():
    return load_push_to_hub()


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
def api(push_to_hub, monkeypatch, tmp_path) -> FakeHfApi:
    fake = FakeHfApi(tmp_path / "hub_cache")
    monkeypatch.setattr(push_to_hub, "HfApi", fake)
    return fake


@pytest.mark.parametrize("method", ["poi", "rul", "ce"])
def test_trn_cards_say_what_confidence_means_for_their_method(method):
    assert set(CONFIDENCE_MEANING) == set(CONFIDENCE_METHODS)
    card = model_card(TRNForImageClassification(tiny_trn_config()), repo_id="run", dataset_name="SynFER",
                      hyperparameters={"method": method})
    expected = CONFIDENCE_MEANING.get(method, "is not trained by the `ce` baseline: ignore it")
    assert expected in card.text
    if method == "poi":
        assert "pin_support" in card.text and "error AUROC" in card.text
    flip = model_card(
        TRNForImageClassification(tiny_trn_config(confidence_source="flip_consistency")), repo_id="run",
        dataset_name="SynFER", hyperparameters={"method": method},
    )
    assert FLIP_CONFIDENCE in flip.text and expected not in flip.text  # the mirror needs no trained head
    assert MIRROR_AVERAGE not in flip.text
    averaged = model_card(
        TRNForImageClassification(tiny_trn_config(confidence_source="flip_consistency", mirror_average=True)),
        repo_id="run", dataset_name="SynFER", hyperparameters={"method": method},
    )
    assert MIRROR_AVERAGE in averaged.text and AVERAGED_CONFIDENCE in averaged.text
    assert FLIP_CONFIDENCE not in averaged.text  # its claim over max softmax is the face-alone prediction's


def test_pin_cards_say_how_the_members_are_pooled():
    prior = model_card(PINForImageClassification(tiny_pin_config()), repo_id="pin", dataset_name="SynFER")
    assert "mixed per emotion by an AU-emotion prior table" in prior.text
    recipe = tiny_pin_config(member_weighting="reliability", use_au_evidence=True, reliability_reference="median")
    card = model_card(PINForImageClassification(recipe), repo_id="pin", dataset_name="SynFER")
    assert "an AU-evidence member" in card.text and "measured accuracy (against the median member)" in card.text


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
    local = {name: (run / name / "README.md").read_text() for name in ("trn", "pin")}
    assert push_to_hub.main(argv) == 0

    assert api.token == "hf_test"
    # two repos, each with its remote code at the root; the PIN's first, as the TRN's config names it
    assert api.repos == [{"repo_id": repo_id, "repo_type": "model", "private": True, "exist_ok": True}
                         for repo_id in (PIN_REPO_ID, REPO_ID)]
    pin, trn = api.commits
    assert (pin["repo_id"], trn["repo_id"]) == (PIN_REPO_ID, REPO_ID)
    assert (pin["commit_message"], trn["commit_message"]) == ("Upload POI-R PIN", "Upload POI-R TRN")
    # exactly what the export wrote (weights, configs, remote code, card), none of the training-only files
    assert trn["files"] == files_in(export / "trn") and pin["files"] == files_in(export / "pin")
    assert {"model.safetensors", "config.json", "preprocessor_config.json", "README.md", "modeling_trn.py"} <= set(
        trn["files"])
    assert not set(trn["files"]) & set(TRAINING_ONLY)
    assert {commit["repo_type"] for commit in api.commits} == {"model"}
    trn_repo, pin_repo = hub_snapshot(api, REPO_ID), hub_snapshot(api, PIN_REPO_ID)
    assert files_in(trn_repo) == trn["files"] and files_in(pin_repo) == pin["files"]
    assert (trn_repo / "model.safetensors").read_bytes() == (run / "trn" / "model.safetensors").read_bytes()
    # the local folders stay as they were
    assert {name: (run / name / "README.md").read_text() for name in ("trn", "pin")} == local

    trn_config, pin_config = (json.loads((repo / "config.json").read_text()) for repo in (trn_repo, pin_repo))
    assert trn_config[PIN_MODEL_KEY] == PIN_REPO_ID and PIN_MODEL_KEY not in pin_config
    for config, module in ((trn_config, "modeling_trn"), (pin_config, "modeling_pin")):
        assert config["auto_map"]["AutoModel"] == config["auto_map"]["AutoModelForImageClassification"]
        assert config["auto_map"]["AutoModel"].startswith(f"{module}.")

    trn_card, pin_card = (ModelCard.load(repo / "README.md") for repo in (trn_repo, pin_repo))
    for card in (trn_card, pin_card):
        assert card.data.pipeline_tag == "image-classification" and card.data.library_name == "transformers"
        assert "facial-expression-recognition" in card.data.tags and card.data.datasets == ["someone/synfer"]
        assert '"learning_rate": 0.01' in card.text
    # each card names its own repo (model-index, snippet) and links the other network's
    assert trn_card.data.model_name == REPO_ID and f'model="{REPO_ID}"' in trn_card.text
    assert f"https://huggingface.co/{PIN_REPO_ID}" in trn_card.text
    assert pin_card.data.model_name == PIN_REPO_ID
    assert f'AutoModelForImageClassification.from_pretrained("{PIN_REPO_ID}")' in pin_card.text
    assert f'pipeline("facial-expression-recognition", model="{REPO_ID}")' in pin_card.text
    assert f'"image-classification", model="{REPO_ID}"' not in pin_card.text
    assert card_metrics(trn_card) == {"accuracy": 0.8125, "macro_f1": 0.7, "nll": 0.625, "ece": 0.05, "kl_true": 0.2}
    assert card_metrics(pin_card) == {"accuracy": 0.75, "nll": 0.875}
    assert {result.dataset_split for result in trn_card.data.eval_results} == {"test"}


def test_without_results_the_card_keeps_the_exported_numbers(push_to_hub, run, api):
    # a TRN re-published from a download names a PIN, but only the PIN published with it may stay named
    config = json.loads((run / "trn" / "config.json").read_text())
    (run / "trn" / "config.json").write_text(json.dumps({**config, PIN_MODEL_KEY: "someone/old-pin"}))
    assert push_to_hub.main(["--trn_dir", str(run / "trn"), "--repo_id", REPO_ID,
                             "--commit_message", "First model"]) == 0
    (commit,) = api.commits
    assert commit["commit_message"] == "First model" and commit["repo_id"] == REPO_ID
    repo = hub_snapshot(api, REPO_ID)
    assert PIN_MODEL_KEY not in json.loads((repo / "config.json").read_text())
    card = ModelCard.load(repo / "README.md")
    assert card_metrics(card) == EXPORT_METRICS and card.data.model_name == REPO_ID
    assert card.data.datasets is None and card.data.eval_results[0].dataset_name == "SynFER (30% symmetric noise)"
    assert '"learning_rate": 0.001' in card.text and "Its PIN is" not in card.text


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
    assert listed == trn_files + files_in(run / "pin")
    assert f"-> {REPO_ID}:" in out and f"-> {PIN_REPO_ID}:" in out and f"{PIN_MODEL_KEY}: {PIN_REPO_ID}" in out
    assert "pipeline_tag: image-classification" in out and "library_name: transformers" in out
    assert "value: 0.6875" in out and "value: 0.03" in out and f"card metadata ({PIN_REPO_ID}/README.md)" in out


@pytest.mark.parametrize("case, message", [
    ("missing_folder", "is not a folder"),
    ("no_preprocessor", "lacks preprocessor_config.json"),
    ("pin_as_trn", "holds a 'poi_pin' model, not 'poi_trn'"),
    ("trn_as_pin", "holds a 'poi_trn' model, not 'poi_pin'"),
    ("bad_repo_id", "Repo id must"),
    ("nested_repo_id", "namespace/repo_name"),
    ("bare_repo_id", "needs its namespace, 'namespace/name'"),
    ("no_remote_code", "lacks modeling_trn.py, the remote code its config.json names for "
                       "AutoModelForImageClassification"),
    ("no_auto_map", "preprocessor_config.json has no auto_map entry for AutoImageProcessor"),
    ("no_metrics", "none of"),
    ("bad_results_key", "has no 'runs.7.test'"),
    ("no_results_file", "does not exist"),
])
def test_bad_inputs_fail_with_clear_errors(push_to_hub, run, api, tmp_path, capsys, case, message):
    if case == "no_preprocessor":
        (run / "trn" / "preprocessor_config.json").unlink()
    if case == "no_remote_code":
        (run / "trn" / "modeling_trn.py").unlink()
    if case == "no_auto_map":  # e.g. saved by a processor class that is not registered for remote code
        processor = json.loads((run / "trn" / "preprocessor_config.json").read_text())
        (run / "trn" / "preprocessor_config.json").write_text(json.dumps({**processor, "auto_map": {}}))
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"runs": [{"test": {"loss": 1.0}}]}))
    argv = {  # appended to valid arguments; argparse keeps an option's last value
        "missing_folder": ["--trn_dir", str(tmp_path / "nowhere")],
        "no_preprocessor": [],
        "pin_as_trn": ["--trn_dir", str(run / "pin")],
        "trn_as_pin": ["--pin_dir", str(run / "trn")],
        "bad_repo_id": ["--repo_id", "some one/poi r"],
        "nested_repo_id": ["--repo_id", "a/b/c"],
        "bare_repo_id": ["--repo_id", "poi-r-tiny"],
        "no_remote_code": [],
        "no_auto_map": [],
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
