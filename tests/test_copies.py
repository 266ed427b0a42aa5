"""Code copied between the self-contained model folders stays equal to its source (utils/check_copies.py), and the
folders really are self-contained: their files alone build a default config and model where poi_hf is absent."""

import importlib.util
import inspect
import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from poi_hf import PINConfig, PINForImageClassification, TRNConfig, TRNForImageClassification, TRNPreTrainedModel
from poi_hf.presets import tiny_pin_config, tiny_trn_config
from without_poi_hf import HIDE_POI_HF

REPO = Path(__file__).resolve().parents[1]
CHECKER = REPO / "utils" / "check_copies.py"
_spec = importlib.util.spec_from_file_location("check_copies", CHECKER)
check_copies = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_copies)

# Every duplicate the model folders carry (copy -> source); removing a marker would silently drop its guard.
GUARDED_COPIES = {
    "poi_hf.pin.configuration_pin.RESNET18_KWARGS": "poi_hf.trn.configuration_trn.RESNET18_KWARGS",
    "poi_hf.pin.configuration_pin.check_backbone_channels": "poi_hf.trn.configuration_trn.check_backbone_channels",
    "poi_hf.pin.modeling_pin.check_pixel_values": "poi_hf.trn.modeling_trn.check_pixel_values",
    "poi_hf.pin.modeling_pin.check_labels": "poi_hf.trn.modeling_trn.check_labels",
    "poi_hf.trn.configuration_trn.CLASS_NAMES": "poi_hf.pin.configuration_pin.CLASS_NAMES",
}


def run_checker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CHECKER), *args], capture_output=True, text=True, timeout=60)


def test_package_copies_match_their_sources():
    result = run_checker()
    assert result.returncode == 0, result.stdout + result.stderr
    for copy, source in GUARDED_COPIES.items():
        module, name = copy.rsplit(".", 1)
        path = REPO / (module.replace(".", "/") + ".py")
        marked = rf"^# Copied from {re.escape(source)}\n(def |class )?{name}\b"
        assert re.search(marked, path.read_text(), re.MULTILINE), f"{copy} lost its marker"


def test_checker_reports_and_fixes_an_altered_copy(tmp_path):
    original = (REPO / "poi_hf/pin/modeling_pin.py").read_text()
    marker = original.splitlines().index("# Copied from poi_hf.trn.modeling_trn.check_labels") + 1
    altered = original.replace("are outside the {num_labels} classes", "are not among the {num_labels} classes")
    copy = tmp_path / "modeling_pin.py"
    copy.write_text(altered)

    [problem] = check_copies.check_file(copy)
    assert (problem.path, problem.line, problem.name) == (copy, marker, "check_labels")
    assert problem.message == "differs from its source poi_hf.trn.modeling_trn.check_labels"
    assert "+        raise ValueError(f\"labels {bad} are not among the" in problem.diff

    result = run_checker(str(copy))
    assert result.returncode == 1
    assert f"{copy}:{marker}: check_labels: differs from its source" in result.stdout
    assert "1 problem(s)" in result.stderr and "--fix" in result.stderr

    result = run_checker(str(copy), "--fix")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{copy}:{marker}: check_labels: rewritten from its source" in result.stdout
    assert copy.read_text() == original
    assert run_checker(str(copy)).returncode == 0


TRN_BASE = "# Copied from poi_hf.trn.modeling_trn.TRNPreTrainedModel with TRN->PIN, trn->pin\n" + inspect.getsource(
    TRNPreTrainedModel
).replace("TRN", "PIN").replace("trn", "pin")


@pytest.mark.parametrize(
    "code, message",
    [
        (TRN_BASE, None),
        (TRN_BASE.replace('"pin"', '"trn"'), "differs from its source poi_hf.trn.modeling_trn.TRNPreTrainedModel"),
        (
            "class Holder:\n    # Copied from poi_hf.pin.modeling_pin.RegionLinear.forward\n"
            "    def forward(self, inputs: torch.Tensor) -> torch.Tensor:\n"
            '        return torch.einsum("bki,kio->bko", inputs, self.weight) + self.bias\n',
            None,
        ),
        (
            TRN_BASE.replace("TRN->PIN, trn->pin", "TRN -> PIN"),
            "malformed marker '# Copied from poi_hf.trn.modeling_trn.TRNPreTrainedModel with TRN -> PIN'",
        ),
        (
            "# Copied from poi_hf.trn.modeling_trn.check_label\ndef check_label(): ...\n",
            "cannot find the source: poi_hf/trn/modeling_trn.py defines no 'check_label'",
        ),
        (
            "# Copied from poi_hf.trn.modeling_trn.check_labels\n\ndef check_labels(): ...\n",
            "the marker for poi_hf.trn.modeling_trn.check_labels is not directly above a def, class or single-name",
        ),
    ],
    ids=["replacements", "altered", "method", "malformed", "unknown-name", "detached"],
)
def test_checker_cases(tmp_path, monkeypatch, code, message):
    monkeypatch.chdir(REPO)  # sources are reported relative to the working directory
    path = tmp_path / "copy.py"
    path.write_text(code)
    problems = check_copies.check_file(path)
    if message is None:
        assert problems == []
    else:
        [problem] = problems
        assert problem.message.startswith(message), problem.message


@pytest.mark.parametrize("bad", [[0, 9], [-1, 2], [0.0, 1.0], [[0, 1]]], ids=["high", "negative", "float", "2-D"])
def test_pin_and_trn_reject_bad_labels_alike(bad):
    """PIN used its own inline label check, with other messages; now both run the same (copied) check_labels."""
    pixels, labels = torch.randn(2, 3, 48, 48), torch.tensor(bad)
    messages = []
    for model in (PINForImageClassification(tiny_pin_config()), TRNForImageClassification(tiny_trn_config())):
        with pytest.raises(ValueError, match="^labels ") as error:
            model(pixels, labels=labels)
        messages.append(str(error.value))
    assert messages[0] == messages[1]


@pytest.mark.parametrize("config_class", [PINConfig, TRNConfig])
def test_pin_and_trn_configs_check_backbone_channels_alike(config_class):
    """Only TRNConfig checked that its backbone takes num_channels; PIN failed later inside the backbone."""
    expected = f"backbone_config.num_channels=3 but {config_class.__name__}.num_channels=1; they must agree."
    with pytest.raises(ValueError, match=re.escape(expected)):
        config_class(num_channels=1)


@pytest.mark.parametrize(
    "folder, config_class, model_class",
    [("pin", PINConfig, PINForImageClassification), ("trn", TRNConfig, TRNForImageClassification)],
)
def test_model_folder_alone_builds_a_default_config_and_model(tmp_path, folder, config_class, model_class):
    """The folder's .py files, as a package of another name where poi_hf cannot be imported, build a fresh default
    config equal to the package's (PIN's prior tables included) and a model that runs."""
    package = tmp_path / f"remote_{folder}"
    package.mkdir()
    for source in (REPO / "poi_hf" / folder).glob("*.py"):
        shutil.copy(source, package)
    expected = config_class().to_dict()
    script = HIDE_POI_HF + textwrap.dedent(f"""
        import json
        import torch
        from remote_{folder} import {config_class.__name__}, {model_class.__name__}

        config = {config_class.__name__}()
        model = {model_class.__name__}(config).eval()
        with torch.no_grad():
            logits = model(torch.zeros(1, 3, config.image_size, config.image_size)).logits
        assert logits.shape == (1, config.num_labels), logits.shape
        assert not any(name.split(".")[0] == "poi_hf" for name in sys.modules)
        print(json.dumps(config.to_dict()))
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    built = json.loads(result.stdout.strip().splitlines()[-1])
    assert built == json.loads(json.dumps(expected))


def test_pin_config_builds_only_the_missing_priors():
    """Default tables come from the PIN folder and only fill what is missing: classes outside the canonical names
    work with their own au_prior, and a default au_prior follows custom au_names."""
    config = PINConfig(id2label={0: "calm", 1: "joy"}, au_prior=[[0.0] * 18, [1.0] * 18])
    assert config.au_prior[1][0] == 1.0 and len(config.region_aus) == 5
    with pytest.raises(ValueError, match=r"id2label: Unknown class name\(s\) \['joy'\].*pass au_prior"):
        PINConfig(id2label={0: "anger", 1: "joy"})
    config = PINConfig(au_names=["AU12", "AU6"], region_aus=[[1.0, 1.0]] * 5)
    assert config.au_prior[config.label2id["happiness"]] == [1.0, 1.0]
    assert config.au_prior[config.label2id["sadness"]] == [0.0, 0.5]
