"""Does bf16 autocast pay off on this CPU? Training-step throughput of the TRN's backbone (transformers ResNet,
a preset's widths) in fp32 and bf16 autocast, each with and without channels_last, one thread, in one process.

    python benchmarks/cpu_precision.py --preset cpu --image_size 48 --out benchmarks/results/cpu_precision.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from transformers import ResNetForImageClassification

from poi_hf.cpu import cpu_flags, cpu_has_native_bf16, to_channels_last
from poi_hf.presets import backbone_config

SETTINGS = {
    "fp32": (False, False),
    "fp32_channels_last": (False, True),
    "bf16": (True, False),
    "bf16_channels_last": (True, True),
}


def throughput(bf16: bool, channels_last: bool, preset: str, image_size: int, batch: int, steps: int,
               seed: int = 0) -> float:
    """Images per second of AdamW training steps after one warm-up step."""
    torch.manual_seed(seed)
    config = backbone_config(preset)
    config.num_labels = 7
    model = ResNetForImageClassification(config)
    pixels, labels = torch.randn(batch, 3, image_size, image_size), torch.randint(0, 7, (batch,))
    if channels_last:
        model, pixels = to_channels_last(model), pixels.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters())

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(pixel_values=pixels, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="cpu", help="backbone widths: a poi_hf.presets name")
    parser.add_argument("--image_size", type=int, default=48)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rates = {name: throughput(*flags, args.preset, args.image_size, args.batch_size, args.steps) for name, flags in SETTINGS.items()}
    result = {
        "cpu": platform.processor() or platform.machine(),
        "native_bf16": cpu_has_native_bf16(),
        "avx512": any(flag.startswith("avx512") for flag in cpu_flags()),
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "preset": args.preset,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "img_per_s": {name: round(rate, 1) for name, rate in rates.items()},
        "speedup_vs_fp32": {name: round(rate / rates["fp32"], 2) for name, rate in rates.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
