"""Which per-face score tells a trained TRN's right answers from its wrong ones: every `TRNConfig.confidence_source`
(the uncertainty head, and the flip consistency ``(p(x)[y] + p(flip(x))[y]) / 2``) next to the free max softmax
probability and, for POI-R runs, PIN's support of the prediction; on the validation split (where a source is
chosen) and on test (scored once, reported), for finished runs of `examples/train.py` (any method; SynFER or a real
dataset read from the run's recorded data_dir). Also the TRN's inference throughput with each source, measured in
the same process, since the flip costs a second backbone pass. The prediction scored is the face's alone (with
`TRNConfig.mirror_average` the flip consistency is the averaged prediction's max softmax;
`benchmarks/mirror_averaging.py` scores that one).

    python benchmarks/confidence_sources.py runs/noise30/poi/seed0 runs/noise30/ce/seed0 \\
        --out benchmarks/results/confidence_sources.json
    python benchmarks/confidence_sources.py spaces/checkpoint/trn \\
        --metrics benchmarks/results/fer2013_96px/ce_seed0_metrics.json   # the shipped model, bare

Error AUROC: how well a score ranks the TRN's right predictions above its wrong ones (0.5 = chance); Spearman:
with the entropy of SynFER's true distribution (negative = the score falls on ambiguous faces).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from pin_members import add_run_arguments, load_run_data, load_run_trn, pin_soft_labels, uncertainty_scores

from poi_hf import PINForImageClassification, TRNForImageClassification
from poi_hf.trn.configuration_trn import CONFIDENCE_SOURCES

SPLITS = ("validation", "test")


@torch.no_grad()
def trn_outputs(trn: TRNForImageClassification, pixel_values: torch.Tensor, batch_size: int = 256) -> dict:
    """Logits (N, C) and ``confidence`` (N,) under every confidence source, in batches: one pass with the flip
    consistency, whose output also carries the head's score (``head_confidence``)."""
    trn.config.confidence_source, trn.config.mirror_average = "flip_consistency", False
    batches = [trn(batch) for batch in pixel_values.split(batch_size)]
    fields = {"logits": "logits", "flip_consistency": "confidence", "head": "head_confidence"}
    assert set(fields) - {"logits"} == set(CONFIDENCE_SOURCES), "a new confidence source needs its field here"
    return {key: torch.cat([getattr(batch, field).float() for batch in batches]) for key, field in fields.items()}


@torch.no_grad()
def throughput(trn: TRNForImageClassification, pixel_values: torch.Tensor, repeats: int = 5) -> dict[str, float]:
    """Images per second of the TRN's forward on batches of 64 under each confidence source (median of
    ``repeats``, after one warm-up pass), interleaved so that both see the same machine load."""
    batch = pixel_values[:64]
    timings = {source: [] for source in CONFIDENCE_SOURCES}
    for repeat in range(repeats + 1):
        for source in CONFIDENCE_SOURCES:
            trn.config.confidence_source = source
            start = time.perf_counter()
            trn(batch)
            if repeat:  # the first pass warms up the kernels
                timings[source].append(time.perf_counter() - start)
    return {source: len(batch) / float(np.median(seconds)) for source, seconds in timings.items()}


@torch.no_grad()
def analyse(run: Path, data_dir: Path | None = None, metrics: Path | None = None) -> dict:
    trn, report = load_run_trn(run, metrics)
    pin = PINForImageClassification.from_pretrained(run / "pin").eval() if (run / "pin").is_dir() else None
    deployed_source = trn.config.confidence_source
    for split, data in load_run_data(run, SPLITS, data_dir, metrics).items():
        outputs = trn_outputs(trn, data["pixel_values"])
        probabilities = outputs["logits"].softmax(-1)
        predicted = probabilities.argmax(-1)
        scores = {"max softmax": probabilities.amax(-1)}
        scores.update({f"confidence ({source})": outputs[source] for source in CONFIDENCE_SOURCES})
        if pin is not None:
            scores["pin support"] = pin_soft_labels(pin, data).gather(1, predicted[:, None]).squeeze(1)
        right = (predicted == data["clean_labels"]).numpy()
        true_distribution = data["true_distribution"].numpy() if "true_distribution" in data else None
        report[split] = {
            "accuracy": float(right.mean()),
            "scores": uncertainty_scores(scores, right, true_distribution),
        }
        if split == "test":
            report["images_per_second"] = throughput(trn, data["pixel_values"])
    trn.config.confidence_source = deployed_source
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the throughput figures depend on it)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    command = " ".join(["python", "benchmarks/confidence_sources.py", *sys.argv[1:]])
    reports = []
    for run in args.runs:
        report = analyse(run, args.data_dir, args.metrics)
        reports.append(report)
        print(f"\n{run} ({report['method']}, {report['dataset']})")
        for split in SPLITS:
            print(f"  {split}: TRN accuracy {100 * report[split]['accuracy']:.1f}%")
            for name, entry in report[split]["scores"].items():
                spearman = f"  Spearman {entry['entropy_spearman']:+.3f}" if "entropy_spearman" in entry else ""
                print(f"    {name:32s} error AUROC {entry['error_auroc']:.3f}{spearman}")
        print("  images/s, batch 64: " + ", ".join(f"{s} {v:.0f}" for s, v in report["images_per_second"].items()))
        if args.out:  # written as it goes, so a long list of runs leaves its finished part behind
            header = {"machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores", "command": command}
            args.out.write_text(json.dumps({**header, "threads": args.threads, "runs": reports}, indent=2))


if __name__ == "__main__":
    main()
