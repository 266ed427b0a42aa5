"""Run by tests/test_ddp.py under `accelerate launch --multi_gpu --num_processes 2` (CPU, gloo): trains a tiny POI-R
model with POITrainer and writes what each rank ended with to <out>/rank<k>.json and rank<k>.pt."""

import json
import sys
from pathlib import Path

import torch
from transformers import EvalPrediction

from tiny_run import flat_parameters, tiny_synfer, tiny_trainer


def main(out: Path, cache: Path) -> None:
    dataset = tiny_synfer(cache, num_train=64, num_eval=37)  # 37: odd, so DDP must drop the padding it adds
    trainer = tiny_trainer(
        out / "run", dataset, per_device_train_batch_size=8, eval_strategy="epoch", save_strategy="no"
    )
    seen = []
    compute = trainer.compute_metrics

    def recording_metrics(prediction: EvalPrediction):
        seen.append(len(prediction.predictions[0]))
        return compute(prediction)

    trainer.compute_metrics = recording_metrics
    trainer.train()
    metrics = trainer.evaluate()
    rank = trainer.args.process_index
    torch.save(flat_parameters(trainer.model), out / f"rank{rank}.pt")
    (out / f"rank{rank}.json").write_text(
        json.dumps(
            {
                "rank": rank,
                "world_size": trainer.args.world_size,
                "global_step": trainer.state.global_step,
                "eval_sizes": seen,
                "eval_accuracy": metrics["eval_accuracy"],
            }
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
