"""Would averaging a TRN's prediction over the face and its mirror image (test-time augmentation) pay? A TRN whose
`confidence_source` is "flip_consistency" already runs the mirrored face; this scores finished runs of
`examples/train.py` on their validation and test splits with the plain prediction, ``argmax p(x)``, and the
mirror-averaged one, ``argmax (p(x) + p(flip(x)))``, against the clean labels (a measurement; the package predicts
from ``p(x)``).

    python benchmarks/mirror_averaging.py runs/noise30/poi/seed0 runs/noise30/ce/seed0 \\
        --out benchmarks/results/mirror_averaging.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from pin_members import load_run_data

from poi_hf import TRNForImageClassification

SPLITS = ("validation", "test")


@torch.no_grad()
def accuracies(run: Path) -> dict:
    """Per split: (plain accuracy, mirror-averaged accuracy)."""
    trn = TRNForImageClassification.from_pretrained(run / "trn").eval()
    trn.config.confidence_source = "head"  # one view per call
    report = {"run": str(run)}
    for split, data in load_run_data(run, SPLITS).items():
        views = [
            torch.cat([trn(batch).logits.float().softmax(-1) for batch in pixel_values.split(256)])
            for pixel_values in (data["pixel_values"], data["pixel_values"].flip(-1))
        ]
        labels = data["clean_labels"]
        plain = (views[0].argmax(-1) == labels).float().mean()
        averaged = ((views[0] + views[1]).argmax(-1) == labels).float().mean()
        report[split] = (float(plain), float(averaged))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="output folders of finished examples/train.py runs")
    parser.add_argument("--out", type=Path, help="write the reports as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    reports = []
    for run in args.runs:
        reports.append(accuracies(run))
        print(reports[-1], flush=True)
        if args.out:
            command = " ".join(["python", "benchmarks/mirror_averaging.py", *sys.argv[1:]])
            args.out.write_text(json.dumps({"command": command, "runs": reports}, indent=1))
    for split in SPLITS:
        gain = 100 * np.array([report[split][1] - report[split][0] for report in reports])
        print(f"{split}: mean gain {gain.mean():+.2f} points, {np.sum(gain > 0)} of {len(gain)} runs gain")


if __name__ == "__main__":
    main()
