"""What this CPU runs fast. bf16 autocast only pays off on CPUs with native bf16 matrix units (Intel AMX or
AVX-512 BF16); elsewhere PyTorch emulates it and a training step gets several times slower (docs/results.md,
`benchmarks/cpu_precision.py`: 7x slower on an AVX2-only AMD EPYC)."""

from __future__ import annotations

import functools

import torch
from torch import nn

NATIVE_BF16_FLAGS: frozenset[str] = frozenset({"amx_bf16", "avx512_bf16"})


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The feature flags of this CPU from /proc/cpuinfo (empty where that file does not exist)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bf16 matrix products natively (AMX or AVX-512 BF16)."""
    return bool(cpu_flags() & NATIVE_BF16_FLAGS)


# The smallest input width (per group) at which oneDNN's channels_last backward of a strided 1x1 convolution is safe.
SAFE_STRIDED_1X1_CHANNELS = 16


class ContiguousConv2d(nn.Conv2d):
    """A Conv2d that computes on contiguous (NCHW) tensors whatever its input's memory format; same parameters."""

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        # clone, not contiguous(): a 1x1 weight with channels_last strides counts as contiguous, and PyTorch would
        # still pick the channels_last kernel for it.
        weight = self.weight.clone(memory_format=torch.contiguous_format)
        return self._conv_forward(hidden.contiguous(), weight, self.bias)


def keep_fragile_convolutions_contiguous(model: nn.Module) -> list[str]:
    """Makes every strided 1x1 convolution of ``model`` with fewer than 16 input channels per group a
    `ContiguousConv2d` (in place, weights untouched) and returns their names.

    The oneDNN bundled with PyTorch 2.13 corrupts the heap (segmentation fault, "double free") in the weight gradient
    of such a convolution on channels_last tensors on AVX-512 CPUs, fp32 and bf16 alike, when the minibatch is odd and
    more than one thread runs it: ResNet shortcuts of narrow models (the ``tiny`` preset) on a ragged last batch.
    NCHW tensors, 16 or more input channels, even minibatches and one thread were unaffected
    (``benchmarks/onednn_strided_1x1.py`` reruns the check).
    """
    replaced = []
    for name, module in model.named_modules():
        if (
            type(module) is nn.Conv2d
            and module.kernel_size == (1, 1)
            and module.stride != (1, 1)
            and module.in_channels // module.groups < SAFE_STRIDED_1X1_CHANNELS
        ):
            module.__class__ = ContiguousConv2d
            replaced.append(name)
    return replaced


def to_channels_last(model: nn.Module) -> nn.Module:
    """``model`` in the channels_last memory format (in place, returned), with the convolutions that oneDNN cannot train
    that way kept NCHW (`keep_fragile_convolutions_contiguous`). What the trainer and the speed benchmarks use."""
    model.to(memory_format=torch.channels_last)
    keep_fragile_convolutions_contiguous(model)
    return model
