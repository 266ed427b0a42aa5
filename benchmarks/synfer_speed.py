"""SynFER generation speed on one core: images per CPU-second, rendering alone and the full DatasetDict build.

CPU time (``time.process_time``) is the measure, so the figure means "per core" even on a busy machine; wall time
is printed beside it. Target: >= 300 images/s at 64 px for rendering::

    OMP_NUM_THREADS=1 python benchmarks/synfer_speed.py --num 2048 --out benchmarks/results/synfer_speed.json
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy is imported: one core

import argparse
import json
import time
from pathlib import Path

from poi_hf.data.synthetic import SynFERConfig, build_synfer, generate_split


def timed(fn) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of ``fn()``."""
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=2048, help="images per measurement")
    parser.add_argument("--image-size", type=int, nargs="+", default=[48, 64, 112])
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args()

    results = []
    for size in args.image_size:
        config = SynFERConfig(num_train=args.num, num_validation=0, num_test=0, image_size=size)
        generate_split(SynFERConfig(num_train=64, num_validation=0, num_test=0, image_size=size), "train")  # warm up
        render = min(timed(lambda: generate_split(config, "train")) for _ in range(args.repeats))
        build = min(timed(lambda: build_synfer(config)) for _ in range(args.repeats))
        results.append(
            {
                "image_size": size,
                "num_images": args.num,
                "render_images_per_cpu_s": round(args.num / render[0], 1),
                "render_images_per_wall_s": round(args.num / render[1], 1),
                "dataset_images_per_cpu_s": round(args.num / build[0], 1),
                "dataset_images_per_wall_s": round(args.num / build[1], 1),
            }
        )
    print("| size | render img/s (CPU) | render img/s (wall) | DatasetDict img/s (CPU) | DatasetDict img/s (wall) |")
    print("|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['image_size']} | {r['render_images_per_cpu_s']} | {r['render_images_per_wall_s']} "
            f"| {r['dataset_images_per_cpu_s']} | {r['dataset_images_per_wall_s']} |"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
