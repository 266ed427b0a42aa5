"""Export a TRN checkpoint to ONNX and check it against PyTorch with onnxruntime.

    python examples/export_onnx.py --model outputs/run/trn --output onnx/trn

writes ``onnx/trn/model.onnx`` (input ``pixel_values`` (batch, 3, H, W); outputs ``logits`` (batch, C) and
``confidence`` (batch,)), plus ``config.json`` (labels) and ``preprocessor_config.json`` (resize/normalise settings)
for deployments outside Python. Faces must be aligned as in `poi_hf.faces` first. The parity check runs both
models on random batches of several sizes and prints the max abs differences; it fails above ``--tolerance``.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import AutoImageProcessor, PretrainedConfig

from poi_hf import TRNForImageClassification
from poi_hf.hub import check_model_folder


class TRNForOnnx(nn.Module):
    """``pixel_values`` (B, 3, H, W) -> (``logits`` (B, C), ``confidence`` (B,)): the TRN without its optional
    outputs, as plain tensors."""

    def __init__(self, model: TRNForImageClassification):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        output = self.model(pixel_values=pixel_values)
        return output.logits, output.confidence


def check_is_trn(name_or_path: str) -> None:
    """Refuse a checkpoint that is not a TRN: ``from_pretrained`` would load a PIN or POI-R folder into a TRN with
    random heads, whose export passes the parity check but predicts nothing useful."""
    trn_type = TRNForImageClassification.config_class.model_type
    model_type = PretrainedConfig.get_config_dict(name_or_path)[0].get("model_type")
    if model_type == trn_type:
        return
    kind = {"poi_pin": "a PIN", "poi": "a POI-R training"}.get(model_type, f"a {model_type!r}")
    folder = Path(name_or_path)
    trn = next((path for path in (folder / "trn", folder.parent / "trn") if (path / "config.json").is_file()), None)
    hint = f" Its TRN is {trn}; export that." if trn else " Pass a run's trn/ folder (examples/train.py writes one)."
    raise ValueError(
        f"--model {name_or_path} is {kind} checkpoint (model_type {model_type!r}), not a TRN ({trn_type!r}); only "
        f"the TRN is exported to ONNX.{hint}"
    )


def export(model: TRNForImageClassification, path: Path, opset: int = 18) -> None:
    """Export ``model`` to ``path`` with a dynamic batch axis (torch.export-based exporter; needs onnxscript)."""
    size = model.config.image_size
    example = torch.zeros(2, model.config.num_channels, size, size)
    batch = torch.export.Dim("batch", min=1, max=4096)
    torch.onnx.export(TRNForOnnx(model).eval(), (example,), str(path), input_names=["pixel_values"],
                      output_names=["logits", "confidence"], dynamic_shapes=({0: batch},), opset_version=opset,
                      dynamo=True, external_data=False)


def parity(model: TRNForImageClassification, path: Path, batch_sizes: tuple[int, ...] = (1, 4)) -> dict[str, float]:
    """Max abs differences between PyTorch and onnxruntime (CPU) on random ``pixel_values`` batches."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    size = model.config.image_size
    generator = torch.Generator().manual_seed(0)
    diffs = {"logits": 0.0, "probabilities": 0.0, "confidence": 0.0}
    for batch_size in batch_sizes:
        pixel_values = torch.randn(batch_size, model.config.num_channels, size, size, generator=generator)
        with torch.no_grad():
            expected = model(pixel_values=pixel_values)
        logits, confidence = session.run(None, {"pixel_values": pixel_values.numpy()})
        probabilities = torch.from_numpy(logits).softmax(-1).numpy()
        for name, got, want in (("logits", logits, expected.logits), ("confidence", confidence, expected.confidence),
                                ("probabilities", probabilities, expected.logits.softmax(-1))):
            diffs[name] = max(diffs[name], float(np.abs(got - want.numpy()).max()))
    return diffs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="TRN checkpoint folder or Hub id")
    parser.add_argument("--output", required=True, type=Path, help="folder for model.onnx and its configs")
    parser.add_argument("--opset", type=int, default=18)
    parser.add_argument("--tolerance", type=float, default=1e-4, help="max abs logit difference allowed")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_model_folder(args.model)
    check_is_trn(args.model)
    model = TRNForImageClassification.from_pretrained(args.model).eval()
    args.output.mkdir(parents=True, exist_ok=True)
    path = args.output / "model.onnx"
    export(model, path, args.opset)
    model.config.save_pretrained(args.output)
    AutoImageProcessor.from_pretrained(args.model).save_pretrained(args.output)
    diffs = parity(model, path)
    print(json.dumps({"onnx": str(path), "max_abs_diff": diffs, "tolerance": args.tolerance}))
    if diffs["logits"] > args.tolerance:
        print(f"Parity check failed: max |logits difference| {diffs['logits']:.3g} > {args.tolerance}.",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
