"""Can a trained PIN tell how noisy its training labels are? A label trust that relaxes on clean labels (where PIN's
disagreements are its own errors) needs that estimate. For finished POI-R runs of `examples/train.py` this scores,
on the training split, the maximum-likelihood symmetric noise rate with PIN's untempered distribution
``p = softmax(T log s)`` as the belief about each face's class, found by EM from 0.1:

    rho <- mean_i  rho (1 - p_i[y_i]) / (C - 1) / (rho (1 - p_i[y_i]) / (C - 1) + (1 - rho) p_i[y_i])

next to the true share of flipped labels and PIN's disagreement with the labels. The EM estimate is exact for a
calibrated PIN (a face of belief p is of class c with probability p[c]).

    python benchmarks/noise_rate_estimate.py runs/noise00/poi/seed1 runs/noise30/poi/seed0 \\
        --out benchmarks/results/noise_rate_estimate.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from pin_members import load_run_data, pin_soft_labels

from poi_hf import PINForImageClassification


def em_noise_rate(soft_labels: torch.Tensor, labels: torch.Tensor, temperature: float, steps: int = 300) -> float:
    """The EM fixed point above. soft_labels (N, C) PIN's tempered output, labels (N,)."""
    beliefs = (temperature * soft_labels.clamp_min(1e-12).log()).softmax(-1)
    support = beliefs.gather(1, labels[:, None]).squeeze(1)
    rate = torch.tensor(0.1)
    for _ in range(steps):
        flipped = rate * (1.0 - support) / (beliefs.shape[-1] - 1)
        rate = (flipped / (flipped + (1.0 - rate) * support).clamp_min(1e-12)).mean()
    return float(rate)


@torch.no_grad()
def analyse(run: Path) -> dict:
    pin = PINForImageClassification.from_pretrained(run / "pin").eval()
    data = load_run_data(run, ("train",))["train"]
    soft_labels = pin_soft_labels(pin, data)
    return {
        "run": str(run),
        "flipped_share": float((data["labels"] != data["clean_labels"]).float().mean()),
        "em_noise_rate": em_noise_rate(soft_labels, data["labels"], pin.config.temperature),
        "pin_disagreement": float((soft_labels.argmax(-1) != data["labels"]).float().mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="output folders of finished POI-R runs")
    parser.add_argument("--out", type=Path, help="write the reports as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    command = " ".join(["python", "benchmarks/noise_rate_estimate.py", *sys.argv[1:]])
    reports = []
    for run in args.runs:
        reports.append(analyse(run))
        print(reports[-1], flush=True)
        if args.out:
            args.out.write_text(json.dumps({"command": command, "runs": reports}, indent=1))


if __name__ == "__main__":
    main()
