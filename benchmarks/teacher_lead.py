"""Is PIN still the better teacher? Per epoch of finished POI-R runs: the validation accuracy of PIN's soft label and
of the TRN (clean validation labels on SynFER), their gap, and the mean transfer weight ``beta`` the TRN loss used in
that epoch (``transfer_weight``; with ``--transfer_schedule pin_lead`` it follows PIN's lead measured on held-out
training faces). Reads each run's ``trainer_state.json``; trains nothing.

    python benchmarks/teacher_lead.py runs/median_30ep/runs/noise30/poi-au-median/seed0 [more run folders] \
        --epochs 3 6 12 30 --out teacher_lead.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def epoch_curves(run: Path) -> list[dict]:
    """One row per evaluated epoch: epoch, pin_accuracy, trn_accuracy (validation) and the epoch's mean logged
    transfer weight (None where the run logged none)."""
    history = json.loads((run / "trainer_state.json").read_text())["log_history"]
    rows = []
    for record in history:
        if "eval_pin_accuracy" not in record:
            continue
        epoch = record["epoch"]
        # runs before transfer_weight was logged have the ramp's "beta", which is the weight they used
        weights = [
            r.get("transfer_weight", r.get("beta"))
            for r in history
            if ("transfer_weight" in r or "beta" in r) and epoch - 1 < r["epoch"] <= epoch
        ]
        rows.append(
            {
                "epoch": round(epoch, 2),
                "pin_accuracy": record["eval_pin_accuracy"],
                "trn_accuracy": record["eval_accuracy"],
                "transfer_weight": sum(weights) / len(weights) if weights else None,
            }
        )
    if not rows:
        raise ValueError(
            f"{run}: no evaluation with PIN's accuracy in trainer_state.json (a POI-R run evaluated per epoch?)"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run folders of examples/train.py --method poi")
    parser.add_argument("--epochs", nargs="+", type=float, default=None, help="the epochs to show (default: all)")
    parser.add_argument("--out", type=Path, default=None, help="write every run's curves here as JSON")
    args = parser.parse_args()
    curves = {str(run): epoch_curves(run) for run in args.runs}
    print("| run | epoch | PIN val acc % | TRN val acc % | PIN − TRN | mean transfer weight |")
    print("|---|---|---|---|---|---|")
    for run, rows in curves.items():
        for row in rows:
            if args.epochs and not any(math.isclose(row["epoch"], e) for e in args.epochs):
                continue
            weight = "–" if row["transfer_weight"] is None else f"{row['transfer_weight']:.2f}"
            pin, trn = 100 * row["pin_accuracy"], 100 * row["trn_accuracy"]
            print(f"| {run} | {row['epoch']:g} | {pin:.1f} | {trn:.1f} | {pin - trn:+.1f} | {weight} |")
    if args.out:
        args.out.write_text(json.dumps(curves, indent=1))


if __name__ == "__main__":
    main()
