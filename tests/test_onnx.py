"""examples/export_onnx.py: TRN -> ONNX with an onnxruntime parity check."""

import importlib.util
import json
from pathlib import Path

import pytest

from poi_hf import PINForImageClassification
from poi_hf.presets import tiny_pin_config
from test_fer_pipeline import save_tiny_checkpoints

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnx onnxscript onnxruntime)")
pytest.importorskip("onnxscript", reason="onnxscript is not installed (the torch.export-based ONNX exporter needs it)")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "export_onnx.py"


def load_export_script():
    spec = importlib.util.spec_from_file_location("export_onnx", EXAMPLE)
    export_onnx = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(export_onnx)
    return export_onnx


def test_export_matches_pytorch(tmp_path, capsys):
    fer_checkpoint = save_tiny_checkpoints(tmp_path / "run")
    export_onnx = load_export_script()

    onnx_dir = tmp_path / "onnx"
    assert export_onnx.main(["--model", str(fer_checkpoint), "--output", str(onnx_dir)]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["max_abs_diff"]["logits"] < 1e-4 and report["max_abs_diff"]["confidence"] < 1e-5
    assert {"model.onnx", "config.json", "preprocessor_config.json"} <= {path.name for path in onnx_dir.iterdir()}


@pytest.mark.parametrize(
    "setting",
    [
        {"confidence_from_softmax": True},
        {"confidence_source": "flip_consistency"},
        {"mirror_average": True, "confidence_source": "flip_consistency"},
    ],
    ids=lambda setting: "+".join(setting),
)
def test_other_confidences_export(setting, tmp_path, capsys):
    """A TRN with confidence_from_softmax (the top probability's logit written with log/log1p), the flip consistency
    (a mirrored copy of the batch through the backbone) or the mirror-averaged prediction exports and matches PyTorch
    (logits and confidence); what the settings compute is tests/test_confidence_from_softmax.py's and
    tests/test_confidence_flip.py's check."""
    trn_dir = save_tiny_checkpoints(tmp_path / "run")
    config = json.loads((trn_dir / "config.json").read_text())
    (trn_dir / "config.json").write_text(json.dumps({**config, **setting}))
    assert load_export_script().main(["--model", str(trn_dir), "--output", str(tmp_path / "onnx")]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["max_abs_diff"]["confidence"] < 1e-5 and report["max_abs_diff"]["logits"] < 1e-4


def test_only_a_trn_is_exported(tmp_path):
    """A PIN folder would load as a TRN with random heads and pass the parity check: it is refused before export,
    pointing at the run's trn/ when there is one."""
    export_onnx = load_export_script()
    onnx_dir = tmp_path / "onnx"
    pin = save_tiny_checkpoints(tmp_path / "run").parent / "pin"
    with pytest.raises(ValueError, match=rf"is a PIN checkpoint \(model_type 'poi_pin'\), not a TRN \('poi_trn'\).*"
                                         rf"Its TRN is {tmp_path / 'run' / 'trn'}; export that"):
        export_onnx.main(["--model", str(pin), "--output", str(onnx_dir)])
    lone_pin = tmp_path / "lone_pin"
    PINForImageClassification(tiny_pin_config()).save_pretrained(lone_pin)
    with pytest.raises(ValueError, match="is a PIN checkpoint .* Pass a run's trn/ folder"):
        export_onnx.main(["--model", str(lone_pin), "--output", str(onnx_dir)])
    with pytest.raises(FileNotFoundError, match="No model folder at .*missing"):
        export_onnx.main(["--model", str(tmp_path / "missing"), "--output", str(onnx_dir)])
    assert not onnx_dir.exists()
