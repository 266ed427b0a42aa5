"""What this CPU runs fast. bf16 autocast only pays off on CPUs with native bf16 matrix units (Intel AMX or
AVX-512 BF16); elsewhere PyTorch emulates it and a training step gets several times slower (docs/results.md,
`benchmarks/cpu_precision.py`: 7x slower on an AVX2-only AMD EPYC)."""

from __future__ import annotations

import functools

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
