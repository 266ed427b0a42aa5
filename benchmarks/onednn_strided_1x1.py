"""Which strided 1x1 convolutions crash oneDNN's weight gradient on this machine? Each case runs in its own process
(a heap corruption kills it) for a few hundred forward/backward steps with two threads; the table says which died.
`poi_hf.cpu.keep_fragile_convolutions_contiguous` exists because of the cases marked "crash" on AVX-512 CPUs.

    python benchmarks/onednn_strided_1x1.py --out benchmarks/results/onednn_strided_1x1.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import subprocess
import sys
from pathlib import Path

import torch

from poi_hf.cpu import cpu_flags

CASE = """
import sys, torch
from torch.nn import functional as F
torch.set_num_threads({threads})
dtype, fmt = torch.{dtype}, torch.{memory_format}
for _ in range({steps}):
    x = torch.randn({batch}, {channels}, 12, 12, dtype=dtype).contiguous(memory_format=fmt).requires_grad_()
    w = torch.randn(8, {channels}, 1, 1, dtype=dtype).contiguous(memory_format=fmt).requires_grad_()
    F.conv2d(x, w, stride=2).sum().backward()
"""


def run_case(steps: int, **case) -> str:
    """'ok', or 'crash (exit code)' where the process died."""
    done = subprocess.run([sys.executable, "-c", CASE.format(steps=steps, **case)], capture_output=True)
    return "ok" if done.returncode == 0 else f"crash ({done.returncode})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    grid = itertools.product(["float32", "bfloat16"], ["channels_last", "contiguous_format"], [8, 16], [3, 4], [1, 2])
    rows = []
    for dtype, memory_format, channels, batch, threads in grid:
        case = dict(dtype=dtype, memory_format=memory_format, channels=channels, batch=batch, threads=threads)
        rows.append({**case, "result": run_case(args.steps, **case)})
        print(" ".join(f"{key}={value}" for key, value in rows[-1].items()), flush=True)
    flags = sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16"})
    report = {"machine": {"cpu": platform.processor() or platform.machine(), "flags": flags,
                          "torch": torch.__version__, "steps": args.steps}, "cases": rows}
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
