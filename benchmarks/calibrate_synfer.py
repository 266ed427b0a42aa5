"""Difficulty calibration of SynFER: test accuracy of a narrow ResNet trained with plain CE on *clean* labels.

The default difficulty should land in the 75-92% band (docs/synfer.md records the runs). Results are appended to a
JSON-lines file after every epoch, so a run can be watched (and survives being stopped)::

    HF_HUB_OFFLINE=1 nohup python benchmarks/calibrate_synfer.py --difficulty 0.4 \
        --out benchmarks/results/synfer_calibration.jsonl > calibrate.log 2>&1 &
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from transformers import ResNetConfig, ResNetForImageClassification

from poi_hf.data.synthetic import DEFAULT_DIFFICULTY, load_synfer


def to_tensors(split) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, H, W) float in [-1, 1] and labels (N,) int64 of a SynFER split."""
    columns = split.with_format("numpy")[:]
    images = torch.from_numpy(np.stack(columns["image"])).permute(0, 3, 1, 2).float().div(127.5).sub(1)
    return images, torch.from_numpy(columns["label"]).long()


@torch.no_grad()
def accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 256) -> float:
    model.eval()
    predictions = torch.cat([model(pixel_values=x).logits.argmax(-1) for x in images.split(batch_size)])
    return (predictions == labels).float().mean().item()


def calibrate(difficulty: float, args: argparse.Namespace) -> None:
    start = time.time()
    data = load_synfer(
        num_train=args.num_train,
        num_validation=0,
        num_test=args.num_test,
        image_size=args.image_size,
        label_mode="clean",
        difficulty=difficulty,
        seed=args.seed,
        cache_dir=args.cache_dir,
    )
    train_x, train_y = to_tensors(data["train"])
    test_x, test_y = to_tensors(data["test"])
    generated = time.time() - start

    torch.manual_seed(args.seed)
    config = ResNetConfig(
        layer_type="basic",
        depths=[2, 2, 2, 2],
        hidden_sizes=[32, 64, 128, 256],
        embedding_size=32,
        num_labels=data["train"].features["label"].num_classes,
    )
    model = ResNetForImageClassification(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    steps = args.epochs * -(-len(train_x) // args.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=steps, pct_start=0.15)
    history = []
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.randperm(len(train_x))
        losses = []
        for batch in order.split(args.batch_size):
            x = train_x[batch]
            flip = torch.rand(len(x)) < 0.5  # horizontal flip: the only augmentation
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            loss = model(pixel_values=x, labels=train_y[batch]).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
        history.append(accuracy(model, test_x, test_y))
        record = {
            "difficulty": difficulty,
            "epoch": epoch,
            "train_loss": float(np.mean(losses)),
            "test_accuracy": history[-1],
            "seconds": round(time.time() - start, 1),
        }
        write(args.out, record)
    write(
        args.out,
        {
            "difficulty": difficulty,
            "summary": True,
            "best_test_accuracy": max(history),
            "last5_mean_test_accuracy": float(np.mean(history[-5:])),
            "num_train": args.num_train,
            "num_test": args.num_test,
            "epochs": args.epochs,
            "seed": args.seed,
            "generation_seconds": round(generated, 1),
            "seconds": round(time.time() - start, 1),
        },
    )


def write(path: Path, record: dict) -> None:
    print(json.dumps(record), flush=True)
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--difficulty", type=float, nargs="+", default=[DEFAULT_DIFFICULTY])
    parser.add_argument("--num-train", type=int, default=4000)
    parser.add_argument("--num-test", type=int, default=1000)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="1 is fastest on a shared 2-core box")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/synfer_calibration.jsonl"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for difficulty in args.difficulty:
        calibrate(difficulty, args)


if __name__ == "__main__":
    main()
