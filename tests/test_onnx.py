"""examples/export_onnx.py: TRN -> ONNX with an onnxruntime parity check."""

import importlib.util
import json
from pathlib import Path

import pytest

from test_fer_pipeline import save_tiny_checkpoints

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnx onnxscript onnxruntime)")
pytest.importorskip("onnxscript", reason="onnxscript is not installed (the torch.export-based ONNX exporter needs it)")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "export_onnx.py"


def test_export_matches_pytorch(tmp_path, capsys):
    fer_checkpoint = save_tiny_checkpoints(tmp_path / "run")
    spec = importlib.util.spec_from_file_location("export_onnx", EXAMPLE)
    export_onnx = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(export_onnx)

    onnx_dir = tmp_path / "onnx"
    assert export_onnx.main(["--model", str(fer_checkpoint), "--output", str(onnx_dir)]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["max_abs_diff"]["logits"] < 1e-4 and report["max_abs_diff"]["confidence"] < 1e-5
    assert {"model.onnx", "config.json", "preprocessor_config.json"} <= {path.name for path in onnx_dir.iterdir()}
