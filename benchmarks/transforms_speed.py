"""Does the training input pipeline keep ahead of a ResNet-18 training step?

Builds a RAF-DB-shaped folder of 100 x 100 JPEGs, loads it with ``load_rafdb``, and measures in one process run:

1. loader throughput: ``FERTrainTransform`` (112 px, all augmentations) + ``poi_collate`` through a ``DataLoader``
   with 2 workers, nothing else running;
2. model throughput: one training step (forward, backward, SGD) of transformers' ResNet-18-shaped
   ``ResNetForImageClassification`` on a fixed batch;
3. the same training step fed by that DataLoader, to see the stall a real run would have.

Only ratios are meaningful (the machine is shared); the target is loader / model >= 3.

    python benchmarks/transforms_speed.py [--output results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np
import torch
from PIL import Image as PILImage
from torch.utils.data import DataLoader
from transformers import ResNetConfig, ResNetForImageClassification

from poi_hf.data import CROP_STYLES, FERTrainTransform, load_rafdb, poi_collate


def make_rafdb(root: str, num_images: int) -> None:
    """A RAF-DB 'basic' folder of random 100 x 100 aligned JPEGs."""
    os.makedirs(os.path.join(root, "EmoLabel"))
    os.makedirs(os.path.join(root, "Image", "aligned"))
    rng = np.random.default_rng(0)
    lines = []
    for i in range(1, num_images + 1):
        pixels = rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)
        PILImage.fromarray(pixels).save(os.path.join(root, "Image", "aligned", f"train_{i:05d}_aligned.jpg"))
        lines.append(f"train_{i:05d}.jpg {rng.integers(1, 8)}")
    with open(os.path.join(root, "EmoLabel", "list_patition_label.txt"), "w") as handle:
        handle.write("\n".join(lines))


def images_per_second(batches, steps: int, batch_size: int, step=lambda batch: None) -> float:
    """Run ``step`` on ``steps`` batches after one warm-up batch; images per second."""
    iterator = iter(batches)
    step(next(iterator))
    start = time.perf_counter()
    for _ in range(steps):
        step(next(iterator))
    return steps * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--image_size", type=int, default=112)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--loader_batches", type=int, default=12)
    parser.add_argument("--model_steps", type=int, default=3)
    parser.add_argument("--output", help="write the numbers as JSON here")
    args = parser.parse_args()
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory() as root:
        make_rafdb(root, args.batch_size * 4)
        train = load_rafdb(root)["train"]
        train.set_transform(FERTrainTransform(image_size=args.image_size, crop_style=CROP_STYLES["rafdb"]))
        loader = DataLoader(
            train, batch_size=args.batch_size, shuffle=True, drop_last=True, num_workers=args.workers,
            collate_fn=poi_collate, persistent_workers=True,
        )

        def forever():
            while True:
                yield from loader

        config = ResNetConfig(layer_type="basic", depths=[2, 2, 2, 2], hidden_sizes=[64, 128, 256, 512], num_labels=7)
        model = ResNetForImageClassification(config).train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def train_step(batch):
            loss = model(pixel_values=batch["pixel_values"], labels=batch["labels"]).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()

        fixed = next(iter(loader))
        loader_rate = images_per_second(forever(), args.loader_batches, args.batch_size)
        model_rate = images_per_second(iter(lambda: fixed, None), args.model_steps, args.batch_size, train_step)
        fed_rate = images_per_second(forever(), args.model_steps, args.batch_size, train_step)

    results = {
        "loader_img_per_s": round(loader_rate, 1),
        "model_train_img_per_s": round(model_rate, 1),
        "loader_over_model": round(loader_rate / model_rate, 1),
        "train_img_per_s_fed_by_loader": round(fed_rate, 1),
        "stall_fraction": round(max(0.0, 1 - fed_rate / model_rate), 3),
        "batch_size": args.batch_size,
        "image_size": args.image_size,
        "workers": args.workers,
        "torch_threads": torch.get_num_threads(),
    }
    print("| " + " | ".join(results) + " |")
    print("|" + "---|" * len(results))
    print("| " + " | ".join(str(value) for value in results.values()) + " |")
    if args.output:
        with open(args.output, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
