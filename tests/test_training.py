"""POI-R training: the real script under `accelerate launch`, resume, overfit, exports, bad input, backbone weights."""

import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForImageClassification, HfArgumentParser, ResNetBackbone, TrainerCallback, pipeline

from poi_hf import PINConfig, POIConfig
from poi_hf.backbones import load_torchvision_resnet, torchvision_to_transformers_key
from poi_hf.checkpoints import resolve_checkpoint
from poi_hf.presets import backbone_config
from poi_hf.trainer import POITrainingArguments
from test_data_loaders import fer_dir, rafdb  # noqa: F401  (fixtures: published-format datasets)
from tiny_run import flat_parameters, tiny_model, tiny_synfer, tiny_trainer

ROOT = Path(__file__).resolve().parents[1]
TINY_ARGS = [
    "--preset",
    "tiny",
    "--synfer_train",
    "64",
    "--synfer_validation",
    "24",
    "--synfer_test",
    "24",
    "--num_train_epochs",
    "2",
    "--per_device_train_batch_size",
    "16",
    "--logging_steps",
    "1",
    "--disable_tqdm",
    "True",
]


def run_train(output_dir, *extra, launcher=("accelerate", "launch", "--num_processes", "1", "--cpu"), env=None):
    command = [*launcher, str(ROOT / "examples" / "train.py"), "--output_dir", str(output_dir), *TINY_ARGS, *extra]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=environment, cwd=ROOT)


@pytest.mark.slow
def test_accelerate_launch_train_script_and_pipeline(tmp_path, synfer_cache):
    output_dir = tmp_path / "run"
    result = run_train(output_dir, "--data_dir", str(synfer_cache))
    assert result.returncode == 0, result.stderr[-4000:]
    assert "TRN for pipeline" in result.stdout
    for name in (
        "metrics.json",
        "train_results.json",
        "test_results.json",
        "all_results.json",
        "trainer_state.json",
        "training_curves.png",
        "confusion_matrix.png",
        "trn/model.safetensors",
        "trn/preprocessor_config.json",
        "trn/README.md",
        "pin/model.safetensors",
        "config.json",
    ):
        assert (output_dir / name).is_file(), name
    checkpoints = sorted(output_dir.glob("checkpoint-*"))
    assert checkpoints and all((c / "trn" / "model.safetensors").is_file() for c in checkpoints)
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert {"accuracy", "mean_class_accuracy", "macro_f1", "nll", "ece", "kl_true"} <= set(metrics["test"])
    assert {"best", "last5_mean"} <= set(metrics)
    test_results = json.loads((output_dir / "test_results.json").read_text())  # the Trainer's save_metrics
    assert test_results["test_accuracy"] == metrics["test"]["accuracy"]
    assert json.loads((output_dir / "train_results.json").read_text())["train_runtime"] == metrics["train_runtime_s"]
    card = (output_dir / "trn" / "README.md").read_text()
    assert "model-index" in card and "pipeline_tag: image-classification" in card
    # the temperature fitted on validation is the saved TRN's, and lowers the validation NLL it was fitted on
    calibration = metrics["calibration"]
    saved = json.loads((output_dir / "trn" / "config.json").read_text())
    assert saved["calibration_temperature"] == pytest.approx(calibration["temperature"])
    assert calibration["nll_after"] <= calibration["nll_before"] and calibration["temperature"] != 1.0
    assert "temperature-scaled" in card and metrics["hyperparameters"]["fit_temperature"] is True

    classify = pipeline("image-classification", model=str(output_dir / "trn"))
    from PIL import Image

    scores = classify(Image.new("RGB", (64, 64), "gray"), top_k=7)
    assert len(scores) == 7 and abs(sum(s["score"] for s in scores) - 1) < 1e-5
    assert (
        type(AutoModelForImageClassification.from_pretrained(output_dir / "trn")).__name__
        == "TRNForImageClassification"
    )

    # An output dir with checkpoints is not trained over, and nothing in it changes.
    before = {p: p.stat().st_mtime_ns for p in output_dir.rglob("*") if p.is_file()}
    again = run_train(output_dir, "--data_dir", str(synfer_cache))
    assert again.returncode != 0 and "already holds checkpoints" in again.stderr
    assert before == {p: p.stat().st_mtime_ns for p in output_dir.rglob("*") if p.is_file()}


def test_bad_arguments_give_clear_errors(tmp_path, synfer_cache):
    train = _train_module()
    with pytest.raises(ValueError, match="Unknown dataset 'fer2099'"):
        train.main(["--dataset", "fer2099", "--output_dir", str(tmp_path / "a")])
    with pytest.raises(ValueError, match="needs data_dir"):
        train.main(["--dataset", "rafdb", "--output_dir", str(tmp_path / "b")])
    with pytest.raises(ValueError, match="choose auto or one of"):
        train.main(["--preset", "huge", "--output_dir", str(tmp_path / "c")])
    # a checkpoint of another architecture
    other = tmp_path / "other" / "checkpoint-5"
    tiny_model().trn.save_pretrained(other)
    with pytest.raises(ValueError, match="is a 'poi_trn' checkpoint, not a 'poi' training checkpoint"):
        train.main(
            [
                "--output_dir",
                str(tmp_path / "other"),
                "--resume_from_checkpoint",
                str(other),
                "--data_dir",
                str(synfer_cache),
                *TINY_ARGS,
            ]
        )
    with pytest.raises(ValueError, match="no checkpoint-"):
        train.main(["--output_dir", str(tmp_path / "empty"), "--resume_from_checkpoint", "latest"])
    # Refused before any data is loaded: --dataset rafdb without --data_dir would fail there with "needs data_dir".
    no_data = ["--dataset", "rafdb", "--output_dir", str(tmp_path / "d")]
    for epochs in ("0", "-1"):
        with pytest.raises(ValueError, match=f"--num_train_epochs {epochs}.0 trains nothing"):
            train.main([*no_data, "--num_train_epochs", epochs])
    with pytest.raises(ValueError, match="needs data_dir"):  # a step budget alone is a valid run length
        train.main([*no_data, "--num_train_epochs", "0", "--max_steps", "3"])
    for rate in ("-0.1", "1.5", "nan"):
        with pytest.raises(ValueError, match=rf"--noise_rate must be a fraction .* in \[0, 1\], got {rate}"):
            train.main([*no_data, "--noise_rate", rate])
    a_file = tmp_path / "results.txt"
    a_file.write_text("not a folder")
    with pytest.raises(ValueError, match=r"--output_dir .*results.txt is an existing file; expected a folder"):
        train.main([*no_data, "--output_dir", str(a_file)])
    with pytest.raises(FileNotFoundError, match="No model folder at .*missing_teacher"):
        train.main([*no_data, "--method", "kd", "--teacher_path", str(tmp_path / "missing_teacher")])
    with pytest.raises(ValueError, match="--confidence_from_softmax is POI-R's: scn trains the uncertainty head"):
        train.main([*no_data, "--method", "scn", "--confidence_from_softmax", "True"])


class StopAfterFirstSave(TrainerCallback):
    """Ends training right after the first checkpoint, as a killed job would leave it on disk."""

    def on_save(self, args, state, control, **kwargs):
        control.should_training_stop = True
        return control


def test_interrupted_run_resumes_to_the_same_parameters(tmp_path, synfer_cache):
    dataset = tiny_synfer(synfer_cache)
    reference = tiny_trainer(tmp_path / "full", dataset)
    reference.train()
    expected = flat_parameters(reference.model)

    interrupted = tiny_trainer(tmp_path / "cut", dataset, callbacks=[StopAfterFirstSave()])
    interrupted.train()
    checkpoints = sorted((tmp_path / "cut").glob("checkpoint-*"))
    assert len(checkpoints) == 1 and interrupted.state.epoch == pytest.approx(1.0)
    assert (checkpoints[0] / "trn" / "config.json").is_file()

    resumed = tiny_trainer(tmp_path / "cut", dataset, model=tiny_model(seed=123))  # fresh weights, loaded back
    resumed.train(resume_from_checkpoint=str(checkpoints[0]))
    assert resumed.state.global_step == reference.state.global_step
    torch.testing.assert_close(flat_parameters(resumed.model), expected, rtol=0, atol=1e-6)
    logged = [entry["beta"] for entry in resumed.state.log_history if "beta" in entry]
    reference_logged = [entry["beta"] for entry in reference.state.log_history if "beta" in entry]
    assert logged[-1] == reference_logged[-1]  # the transfer ramp continued from the restored epoch


def test_latest_resumes_from_the_newest_complete_checkpoint(tmp_path, synfer_cache, caplog):
    """A run killed while writing a checkpoint leaves it without trainer_state.json (the Trainer writes that last);
    a damaged copy may have truncated weights. "latest" skips both with a warning and deletes nothing."""
    output_dir = tmp_path / "run"
    tiny_trainer(output_dir, tiny_synfer(synfer_cache, num_train=32, num_eval=8)).train()  # 2 epochs of 2 steps
    complete = output_dir / "checkpoint-4"
    assert sorted(path.name for path in output_dir.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    weights = (complete / "model.safetensors").read_bytes()
    killed = output_dir / "checkpoint-6"  # cut off while writing the weights
    killed.mkdir()
    shutil.copy(complete / "config.json", killed)
    (killed / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    damaged = shutil.copytree(complete, output_dir / "checkpoint-8")
    (damaged / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    before = sorted(path.relative_to(output_dir) for path in output_dir.rglob("*"))

    with caplog.at_level(logging.WARNING, logger="poi_hf.checkpoints"):
        assert resolve_checkpoint(output_dir, "latest", "poi") == str(complete)
    assert f"Skipping {killed}: incomplete (no trainer_state.json, which the Trainer writes last)" in caplog.text
    assert f"Skipping {damaged}: incomplete ({damaged / 'model.safetensors'} is empty, truncated" in caplog.text
    assert f"resuming from {complete}" in caplog.text
    assert sorted(path.relative_to(output_dir) for path in output_dir.rglob("*")) == before

    with pytest.raises(ValueError, match=r"checkpoint-6 is incomplete \(no trainer_state.json.*pass an earlier"):
        resolve_checkpoint(output_dir, str(killed), "poi")
    for checkpoint in ("checkpoint-2", "checkpoint-4"):
        (output_dir / checkpoint / "trainer_state.json").unlink()
    with pytest.raises(ValueError, match=r"latest: no complete checkpoint in .*checkpoint-8: .* checkpoint-2: no trai"):
        resolve_checkpoint(output_dir, "latest", "poi")


def test_overfits_a_few_dozen_images(tmp_path, synfer_cache):
    dataset = tiny_synfer(synfer_cache, num_train=32, augment=False)
    dataset["train"] = dataset["train"].select(range(32))
    trainer = tiny_trainer(
        tmp_path,
        dataset,
        tiny_model(transfer_ramp_epochs=0.0),
        num_train_epochs=60,
        per_device_train_batch_size=32,
        learning_rate=1e-2,
        save_strategy="no",
        logging_steps=5,
        weight_decay=0.0,
    )
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert losses[-1] < 0.5 * losses[0]
    trainer.model.eval()
    batch = trainer.data_collator([dataset["train"][i] for i in range(32)])
    with torch.no_grad():
        predicted = trainer.model(batch["pixel_values"], batch["landmarks"]).logits.argmax(-1)
    assert (predicted == batch["labels"]).float().mean().item() == 1.0


class TorchvisionStyleResNet18(torch.nn.Module):
    """The module layout (and so the state-dict keys) of torchvision's resnet18, written out for the test."""

    class Block(torch.nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            nn = torch.nn
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = (
                nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                if stride != 1 or cin != cout
                else None
            )

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(out)) + identity)

    def __init__(self, widths=(8, 8, 16, 16), stem=8):
        super().__init__()
        nn = torch.nn
        self.conv1 = nn.Conv2d(3, stem, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = stem
        for index, width in enumerate(widths, start=1):
            stride = 1 if index == 1 else 2
            setattr(self, f"layer{index}", nn.Sequential(self.Block(cin, width, stride), self.Block(width, width, 1)))
            cin = width
        self.fc = nn.Linear(cin, 10)

    def forward(self, x):
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


@pytest.mark.parametrize("wrap", ["plain", "module", "state_dict"])
def test_torchvision_resnet_weights_load_into_backbone(tmp_path, wrap):
    source = TorchvisionStyleResNet18().eval()
    for module in source.modules():  # non-trivial BN statistics so a wrong mapping shows
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    state = source.state_dict()
    if wrap == "module":
        state = {f"module.{key}": value for key, value in state.items()}
    elif wrap == "state_dict":
        state = {"state_dict": state, "epoch": torch.tensor(3)}
    torch.save(state, tmp_path / "resnet18_msceleb.pth")

    backbone = ResNetBackbone(backbone_config("tiny")).eval()
    report = load_torchvision_resnet(backbone, tmp_path / "resnet18_msceleb.pth", strict=True)
    assert report.missing == [] and report.unexpected == []
    assert sorted(report.skipped_classifier) == ["fc.bias", "fc.weight"]
    pixels = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(backbone(pixels).feature_maps[-1], source(pixels), rtol=1e-4, atol=1e-5)


def test_backbone_weight_errors(tmp_path):
    backbone = ResNetBackbone(backbone_config("tiny"))
    wider = TorchvisionStyleResNet18(widths=(16, 16, 32, 32)).state_dict()
    with pytest.raises(ValueError, match="different ResNet"):
        load_torchvision_resnet(backbone, wider)
    with pytest.raises(ValueError, match="No tensor"):
        load_torchvision_resnet(backbone, {"encoder.weight": torch.zeros(2)})
    partial = {k: v for k, v in TorchvisionStyleResNet18().state_dict().items() if not k.startswith("layer4")}
    assert load_torchvision_resnet(backbone, partial).missing
    with pytest.raises(ValueError, match="do not cover"):
        load_torchvision_resnet(backbone, partial, strict=True)
    assert (
        torchvision_to_transformers_key("layer2.0.downsample.1.running_mean")
        == "encoder.stages.1.layers.0.shortcut.normalization.running_mean"
    )


def test_every_flag_has_help_and_the_poi_flags_are_the_config_settings():
    train = _train_module()
    parser = HfArgumentParser(
        (train.MethodArguments, train.ModelArguments, train.DataArguments, train.POIArguments, POITrainingArguments)
    )
    assert [action.option_strings for action in parser._actions if not action.help] == []
    # POIArguments is written out with help; its defaults must stay POIConfig's, except the training recipe's.
    settings = {f.name: f.default for f in fields(POIConfig) if f.name in vars(POIConfig)["__annotations__"]}
    recipe = dict(train.RECIPE_DEFAULTS)
    flags = {f.name: f.default for f in fields(train.POIArguments)}
    assert flags.pop("use_au_prior") == settings.pop("use_au_loss")  # the AU prior switches PIN's prior and AU loss
    for name in set(train.PIN_FLAGS) - {"use_au_prior"}:  # PIN settings
        assert flags.pop(name) == recipe.pop(name, getattr(PINConfig, name))
    settings.update(recipe)
    assert flags == {name: value for name, value in settings.items() if name not in ("pin_config", "trn_config")}


def _train_module():
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import train
    finally:
        sys.path.pop(0)
    return train


@pytest.mark.parametrize("name", ["rafdb", "ferplus"])
def test_train_on_published_formats(tmp_path, name, request):
    """train.py on byte-for-byte-shaped RAF-DB and FERPlus fixtures (FERPlus brings vote distributions, which PIN and
    TRN take as soft targets), at the default precision: bf16 autocast + channels_last where the CPU computes bf16
    natively, fp32 elsewhere. On an AVX-512 CPU this test's ragged last batch once crashed oneDNN (see
    poi_hf.cpu.keep_fragile_convolutions_contiguous and tests/test_cpu_fast_path.py)."""
    data_dir = request.getfixturevalue("rafdb" if name == "rafdb" else "fer_dir")
    results = _train_module().main(
        [
            "--dataset",
            name,
            "--data_dir",
            str(data_dir),
            "--output_dir",
            str(tmp_path / "out"),
            "--preset",
            "tiny",
            "--num_train_epochs",
            "1",
            "--per_device_train_batch_size",
            "4",
            "--disable_tqdm",
            "True",
            "--logging_steps",
            "1",
        ]
    )
    assert set(results["test"]) >= {"accuracy", "macro_f1", "pin_accuracy"}
    config = json.loads((tmp_path / "out" / "trn" / "config.json").read_text())
    expected = {
        "rafdb": ["surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral"],
        "ferplus": ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"],
    }[name]
    assert [config["id2label"][str(i)] for i in range(len(expected))] == expected
