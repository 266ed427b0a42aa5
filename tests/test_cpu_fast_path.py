"""The CPU fast path: bf16 autocast + channels_last, on by default only where the CPU computes bf16 natively."""

import subprocess
import sys

import pytest
import torch

import poi_hf.trainer
from poi_hf import TRNForImageClassification
from poi_hf.cpu import ContiguousConv2d
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


def test_narrow_strided_1x1_convolutions_stay_nchw(tmp_path, synfer_cache):
    """The oneDNN workaround (poi_hf.cpu.keep_fragile_convolutions_contiguous): under channels_last, exactly the
    strided 1x1 convolutions with < 16 input channels compute in NCHW, with the same weights and outputs."""
    trainer = tiny_trainer(tmp_path, tiny_synfer(synfer_cache), bf16=True, channels_last=True, num_train_epochs=1)
    convs = {name: m for name, m in trainer.model.named_modules() if isinstance(m, torch.nn.Conv2d)}
    kept = {name for name, m in convs.items() if isinstance(m, ContiguousConv2d)}
    fragile = {
        name for name, m in convs.items() if m.kernel_size == (1, 1) and m.stride != (1, 1) and m.in_channels < 16
    }
    assert kept == fragile and kept  # the tiny backbone's shortcuts into its 8-channel stages

    plain = TRNForImageClassification(trainer.model.trn.config).eval()
    plain.load_state_dict(trainer.model.trn.state_dict())
    pixels = torch.randn(3, 3, 48, 48).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        torch.testing.assert_close(trainer.model.trn.eval()(pixels).logits, plain(pixels).logits)


BATCH_OF_THREE_ON_TWO_THREADS = """
import torch
from poi_hf import TRNForImageClassification
from poi_hf.cpu import keep_fragile_convolutions_contiguous
from poi_hf.presets import tiny_trn_config

torch.set_num_threads(2)
torch.manual_seed(0)
model = TRNForImageClassification(tiny_trn_config()).to(memory_format=torch.channels_last)
assert keep_fragile_convolutions_contiguous(model)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
for _ in range(40):
    pixels = torch.randn(3, 3, 48, 48).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(pixels, labels=torch.tensor([0, 1, 2])).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
"""


def test_channels_last_training_survives_an_odd_batch_on_two_threads():
    """The crash the workaround prevents, in its own process: a narrow channels_last backbone trained on a batch of 3
    with two threads died of heap corruption on an AVX-512 EPYC before it (benchmarks/onednn_strided_1x1.py)."""
    done = subprocess.run([sys.executable, "-c", BATCH_OF_THREE_ON_TWO_THREADS], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
