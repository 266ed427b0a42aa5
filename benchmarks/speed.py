"""Speed and memory of POI-R against same-shaped transformers peers, measured in one process (ratios, not absolute
times, are what carries over between machines).

    python benchmarks/speed.py                       # paper preset (ResNet-18, 112 px), batch 32, CPU or GPU
    python benchmarks/speed.py --preset cpu --image_size 64 --batch_size 64 --repeats 7
    python benchmarks/speed.py --out benchmarks/results/speed.json

Measures (interleaved, so machine-load drift hits both sides alike), in fp32 and on the fast path (bf16 autocast,
plus channels_last on the CPU: what `POITrainingArguments` turns on by default where the CPU has native bf16):
- training step: a joint POI-R step (PIN + TRN forward, joint loss, backward, AdamW) vs a plain cross-entropy step
  of `ResNetForImageClassification` with the TRN's backbone shape, same batch and precision;
- inference: TRN vs `ResNetForImageClassification` at batch 1 and batch 32, images/s, same precision;
- peak memory of each training step in a fresh subprocess (CUDA: max allocated; CPU: peak RSS growth).
Each ratio reports min / median / max over the repeats.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from transformers import ResNetConfig, ResNetForImageClassification

from poi_hf import POIConfig, POIModel, TRNForImageClassification
from poi_hf.cpu import to_channels_last
from poi_hf.losses import joint_losses
from poi_hf.presets import PRESETS, pin_config, trn_config


PRECISIONS = ("fp32", "fast")


def autocast(precision: str, device: torch.device):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "fast")


def build(preset: str, image_size: int, device: torch.device, precision: str = "fp32"):
    config = POIConfig(
        pin_config=pin_config(preset, image_size=image_size), trn_config=trn_config(preset, image_size=image_size)
    )
    poi = POIModel(config).to(device)
    backbone = config.trn_config.backbone_config.to_dict()
    resnet_config = ResNetConfig(
        **{k: backbone[k] for k in ("layer_type", "depths", "hidden_sizes", "embedding_size")},
        num_labels=config.trn_config.num_labels,
    )
    resnet = ResNetForImageClassification(resnet_config).to(device)
    if precision == "fast" and device.type == "cpu":
        poi, resnet = to_channels_last(poi), to_channels_last(resnet)
    return poi, resnet


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def joint_step(poi: POIModel, optimizer, pixels, landmarks, labels, precision: str = "fp32") -> None:
    with autocast(precision, pixels.device):
        outputs = poi(pixels, landmarks)
        terms = joint_losses(poi.config, outputs, labels, poi.pin.priors.au_prior, poi.pin.priors.region_aus, beta=1.0)
    optimizer.zero_grad(set_to_none=True)
    terms["loss"].backward()
    optimizer.step()


def ce_step(resnet, optimizer, pixels, labels, precision: str = "fp32") -> None:
    with autocast(precision, pixels.device):
        loss = resnet(pixel_values=pixels, labels=labels).loss
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def timed(fn, device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def batch(size: int, image_size: int, num_labels: int, device: torch.device):
    pixels = torch.randn(size, 3, image_size, image_size, device=device)
    landmarks = torch.tensor(pin_config("tiny").landmark_template, device=device).expand(size, 5, 2)
    labels = torch.randint(0, num_labels, (size,), device=device)
    return pixels, landmarks, labels


def measure_training(args, device) -> dict:
    models = {precision: build(args.preset, args.image_size, device, precision) for precision in PRECISIONS}
    optimizers = {
        precision: (torch.optim.AdamW(poi.parameters()), torch.optim.AdamW(resnet.parameters()))
        for precision, (poi, resnet) in models.items()
    }
    pixels, landmarks, labels = batch(args.batch_size, args.image_size, models["fp32"][0].config.num_labels, device)

    def steps(precision: str) -> tuple[float, float]:
        (poi, resnet), (poi_opt, resnet_opt) = models[precision], optimizers[precision]
        joint = timed(lambda: joint_step(poi, poi_opt, pixels, landmarks, labels, precision), device)
        return joint, timed(lambda: ce_step(resnet, resnet_opt, pixels, labels, precision), device)

    for _ in range(args.warmup):
        for precision in PRECISIONS:
            steps(precision)
    times = {precision: {"joint": [], "ce": []} for precision in PRECISIONS}
    for _ in range(args.repeats):
        for precision in PRECISIONS:
            joint, ce = steps(precision)
            times[precision]["joint"].append(joint)
            times[precision]["ce"].append(ce)
    report = {
        precision: {
            "joint_step_s": spread(t["joint"]),
            "ce_step_s": spread(t["ce"]),
            "joint_over_ce": spread([j / c for j, c in zip(t["joint"], t["ce"])]),
        }
        for precision, t in times.items()
    }
    report["fast_speedup"] = {
        kind: spread([slow / fast for slow, fast in zip(times["fp32"][kind], times["fast"][kind])])
        for kind in ("joint", "ce")
    }
    poi, resnet = models["fp32"]
    report["params_M"] = {
        "poi": sum(p.numel() for p in poi.parameters()) / 1e6,
        "resnet": sum(p.numel() for p in resnet.parameters()) / 1e6,
    }
    return report


@torch.inference_mode()
def measure_inference(args, device) -> dict:
    models = {}
    for precision in PRECISIONS:
        poi, resnet = build(args.preset, args.image_size, device, precision)
        models[precision] = (poi.trn.eval(), resnet.eval())
    results = {}
    for size in (1, 32):
        pixels = torch.randn(size, 3, args.image_size, args.image_size, device=device)
        iterations = max(1, args.inference_images // size)

        def rates(precision: str) -> tuple[float, float]:
            trn, resnet = models[precision]
            with autocast(precision, device):
                trn_time = timed(lambda: [trn(pixels) for _ in range(iterations)], device)
                resnet_time = timed(lambda: [resnet(pixel_values=pixels) for _ in range(iterations)], device)
            return size * iterations / trn_time, size * iterations / resnet_time

        for _ in range(args.warmup):
            for precision in PRECISIONS:
                rates(precision)
        measured = {precision: ([], []) for precision in PRECISIONS}
        for _ in range(args.repeats):
            for precision in PRECISIONS:
                trn_rate, resnet_rate = rates(precision)
                measured[precision][0].append(trn_rate)
                measured[precision][1].append(resnet_rate)
        results[f"batch{size}"] = {
            precision: {
                "trn_img_s": spread(trn_rates),
                "resnet_img_s": spread(resnet_rates),
                "trn_over_resnet": spread([t / r for t, r in zip(trn_rates, resnet_rates)]),
            }
            for precision, (trn_rates, resnet_rates) in measured.items()
        }
        results[f"batch{size}"]["trn_fast_speedup"] = spread(
            [fast / slow for fast, slow in zip(measured["fast"][0], measured["fp32"][0])]
        )
    return results


def proc_status_bytes(field: str) -> int:
    """A memory field of /proc/self/status (e.g. VmRSS, VmHWM) in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_child(args, kind: str) -> None:
    """Run in a subprocess: peak memory of a few training steps of one kind."""
    device = torch.device(args.device)
    poi, resnet = build(args.preset, args.image_size, device)
    model, num_labels = (poi if kind == "joint" else resnet), poi.config.num_labels
    del poi, resnet  # only the measured model stays alive
    optimizer = torch.optim.AdamW(model.parameters())
    pixels, landmarks, labels = batch(args.batch_size, args.image_size, num_labels, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: reset the peak-RSS mark (VmHWM) after model building
        base = proc_status_bytes("VmRSS")
    for _ in range(3):
        if kind == "joint":
            joint_step(model, optimizer, pixels, landmarks, labels)
        else:
            ce_step(model, optimizer, pixels, labels)
    synchronize(device)
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else proc_status_bytes("VmHWM")
    print(json.dumps({"peak_bytes": peak - base}))


def measure_memory(args) -> dict:
    peaks = {}
    for kind in ("joint", "ce"):
        command = [
            sys.executable,
            __file__,
            "--memory_child",
            kind,
            "--preset",
            args.preset,
            "--image_size",
            str(args.image_size),
            "--batch_size",
            str(args.batch_size),
            "--device",
            args.device,
        ]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        peaks[kind] = json.loads(output)["peak_bytes"] / 2**20
    return {
        "joint_peak_MiB": peaks["joint"],
        "ce_peak_MiB": peaks["ce"],
        "joint_over_ce": peaks["joint"] / peaks["ce"],
        "method": "torch.cuda.max_memory_allocated"
        if args.device.startswith("cuda")
        else "peak RSS growth over the steps (VmHWM - VmRSS after building)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="paper", choices=sorted(PRESETS))
    parser.add_argument("--image_size", type=int, default=None)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--inference_images", type=int, default=64, help="images per timed inference repeat")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--skip", nargs="*", default=[], choices=["training", "inference", "memory"])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--memory_child", choices=["joint", "ce"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.image_size = args.image_size or PRESETS[args.preset]["image_size"]
    torch.manual_seed(0)
    if args.memory_child:
        memory_child(args, args.memory_child)
        return
    device = torch.device(args.device)
    report = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "device": str(device),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None,
        },
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "memory_child")},
    }
    if "training" not in args.skip:
        report["training_step"] = measure_training(args, device)
    if "inference" not in args.skip:
        report["inference"] = measure_inference(args, device)
    if "memory" not in args.skip:
        report["memory"] = measure_memory(args)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
