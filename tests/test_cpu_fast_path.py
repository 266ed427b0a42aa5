"""The CPU fast path: bf16 autocast + channels_last, on by default only where the CPU computes bf16 natively."""

import pytest
import torch

import poi_hf.trainer
from poi_hf import TRNForImageClassification
from poi_hf.trainer import POITrainingArguments
from tiny_run import tiny_synfer, tiny_trainer

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU defaults apply to machines without a GPU")


@pytest.mark.parametrize("native", [True, False])
def test_fast_path_is_the_default_only_on_a_cpu_with_native_bf16(tmp_path, monkeypatch, native):
    monkeypatch.setattr(poi_hf.trainer, "cpu_has_native_bf16", lambda: native)
    args = POITrainingArguments(output_dir=str(tmp_path))
    assert (args.bf16, args.channels_last) == (native, native)
    assert args.use_cpu == native  # transformers needs use_cpu for bf16 without a GPU


def test_explicit_flags_win_over_the_default(tmp_path, monkeypatch):
    monkeypatch.setattr(poi_hf.trainer, "cpu_has_native_bf16", lambda: True)
    args = POITrainingArguments(output_dir=str(tmp_path), bf16=False)
    assert not args.bf16 and not args.channels_last
    args = POITrainingArguments(output_dir=str(tmp_path), bf16=True, channels_last=False)
    assert args.bf16 and not args.channels_last
    monkeypatch.setattr(poi_hf.trainer, "cpu_has_native_bf16", lambda: False)
    assert POITrainingArguments(output_dir=str(tmp_path), bf16=True).bf16  # asked for: emulated, with a warning


def test_fast_path_trains_and_exports_ordinary_weights(tmp_path, synfer_cache):
    trainer = tiny_trainer(tmp_path, tiny_synfer(synfer_cache), bf16=True, channels_last=True, num_train_epochs=1)
    conv_weights = [m.weight for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in conv_weights)
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert losses and all(torch.isfinite(torch.tensor(losses)))

    trainer.model.trn.save_pretrained(tmp_path / "trn")
    reloaded = TRNForImageClassification.from_pretrained(tmp_path / "trn").eval()
    pixels = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(pixels).logits, trainer.model.trn.eval()(pixels).logits)
