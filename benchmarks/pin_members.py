"""Where PIN's knowledge sits: clean test accuracy of every PIN member (`PINConfig.member_names`), of the aggregated
soft label and of other aggregations (for a reliability-pooled PIN: the same members pooled against each
`reliability_reference`, with the running training accuracies and, when test is scored, with each member's accuracy on
the held-out validation split instead), next to the TRN, for finished runs of `examples/train.py --method poi` (SynFER,
or a real dataset such as FER2013 read from the run's recorded data_dir); plus how well each aggregation's label trust
separates flipped from clean training labels (AUROC), and how well each uncertainty score on offer ranks the TRN's
test errors (error AUROC; on SynFER, Spearman with the true distribution's entropy): the TRN's `confidence`, its max
softmax probability, PIN's support of the TRN's prediction (`pin_support`), and a probe fitted after training on the
TRN's training features to predict that support (`support_probe`), and the same probe fitted on half of the scored
split's faces, which neither network trained on (`cross_fitted_probe`).

    python benchmarks/pin_members.py benchmarks/results/robustness/runs/noise30/poi/seed0 [more run folders]

The data is rebuilt from each run's recorded hyperparameters (metrics.json), so the numbers match the run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch.nn import functional as F

from poi_hf import PINForImageClassification, POIImageProcessor, TRNForImageClassification
from poi_hf.data import FEREvalTransform, load_fer_dataset, processor_transform_settings
from poi_hf.losses import label_trust
from poi_hf.metrics import auroc, spearman
from poi_hf.pin.configuration_pin import RELIABILITY_REFERENCES


def load_run_data(
    run: Path, splits: tuple[str, ...] = ("test", "train"), data_dir: Path | None = None, metrics: Path | None = None
) -> dict[str, dict[str, torch.Tensor]]:
    """The run's dataset ``splits`` after its evaluation transform (the one its saved image processor records), each
    as pixel_values, landmarks, labels and clean_labels tensors (the labels trained on and the annotated ones: equal
    outside a noisy train split), plus true_distribution where the data has one (SynFER). A real dataset is read from
    ``data_dir``, by default the folder the run recorded. The data's settings are the run's ``metrics.json``
    hyperparameters, or ``metrics``' for a bare checkpoint (a folder with the model and its image processor)."""
    h = json.loads((metrics or run / "metrics.json").read_text())["hyperparameters"]
    noise = {"noise_rate": h["noise_rate"], "noise_type": h["noise_type"], "noise_seed": h["noise_seed"]}
    if h["dataset"] == "synfer":
        dataset = load_fer_dataset(
            "synfer",
            None,
            num_train=h["synfer_train"],
            num_validation=h["synfer_validation"],
            num_test=h["synfer_test"],
            image_size=h["image_size"],
            label_mode=h["synfer_label_mode"],
            seed=h["synfer_seed"],
            **noise,
        )
    else:
        dataset = load_fer_dataset(h["dataset"], data_dir or h["data_dir"], **noise)
    processor = POIImageProcessor.from_pretrained(run)
    transform = FEREvalTransform(**processor_transform_settings(processor))
    data = {}
    for split in splits:
        rows = dataset[split]
        batch = rows.with_transform(transform)[:]
        data[split] = {key: torch.stack(batch[key]) for key in ("pixel_values", "landmarks", "labels")}
        data[split]["clean_labels"] = (
            torch.stack(batch["clean_labels"]) if "clean_labels" in batch else data[split]["labels"]
        )
        if "true_distribution" in rows.column_names:
            data[split]["true_distribution"] = torch.tensor(rows["true_distribution"], dtype=torch.float32)
    return data


def load_run_trn(run: Path, metrics: Path | None = None) -> tuple[TRNForImageClassification, dict]:
    """A finished run's TRN in eval mode (its ``trn/`` folder, or ``run`` itself for a bare checkpoint) and the head
    of its report: the run, its method and its dataset, from its ``metrics.json`` (or ``metrics``)."""
    trn = TRNForImageClassification.from_pretrained(run / "trn" if (run / "trn").is_dir() else run).eval()
    hyperparameters = json.loads((metrics or run / "metrics.json").read_text())["hyperparameters"]
    return trn, {"run": str(run), "method": hyperparameters["method"], "dataset": hyperparameters["dataset"]}


@torch.no_grad()
def pin_soft_labels(pin: PINForImageClassification, data: dict, batch_size: int = 256) -> torch.Tensor:
    """PIN's soft labels (N, C) float32 for a split of `load_run_data`, in batches."""
    batches = zip(data["pixel_values"].split(batch_size), data["landmarks"].split(batch_size))
    return torch.cat([pin(pixels, landmarks=landmarks).soft_labels.float() for pixels, landmarks in batches])


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of a benchmark that scores finished runs or a bare checkpoint: runs, --out, --data_dir,
    --metrics."""
    parser.add_argument("runs", nargs="+", type=Path, help="output folders of finished examples/train.py runs")
    parser.add_argument("--out", type=Path, help="write the reports as JSON here")
    parser.add_argument("--data_dir", type=Path, help="a real dataset's folder, if not where the runs recorded it")
    parser.add_argument(
        "--metrics", type=Path, help="a bare checkpoint's training metrics.json (the runs' own by default)"
    )


def uncertainty_scores(
    scores: dict[str, torch.Tensor], right: np.ndarray, true_distribution: np.ndarray | None = None
) -> dict:
    """Per score (N,): AUROC for "the TRN's prediction is right" and, where the data has a true distribution (N, C),
    Spearman with its entropy."""
    report = {name: {"error_auroc": auroc(score.numpy(), right)} for name, score in scores.items()}
    if true_distribution is not None:
        entropy = -(true_distribution * np.log(np.clip(true_distribution, 1e-12, None))).sum(-1)
        for name, score in scores.items():
            report[name]["entropy_spearman"] = spearman(score.numpy(), entropy)
    return report


@torch.enable_grad()
def support_probe(train_output, train_soft_labels: torch.Tensor, test_features: torch.Tensor) -> torch.Tensor:
    """A fresh MLP (D -> 128 -> 1, the shape of the TRN's uncertainty head) fitted on the final TRN's pooled training
    features to PIN's support of the TRN's prediction (BCE, 600 Adam steps, seed 0); its scores on the test features.
    If the TRN's features held more about its errors than its softmax, this probe would show it."""
    torch.manual_seed(0)
    features = train_output.pooler_output.float()
    target = train_soft_labels.gather(1, train_output.logits.float().argmax(-1, keepdim=True)).squeeze(1)
    probe = torch.nn.Sequential(torch.nn.Linear(features.shape[1], 128), torch.nn.ReLU(), torch.nn.Linear(128, 1))
    optimizer = torch.optim.Adam(probe.parameters(), lr=3e-3, weight_decay=1e-4)
    for _ in range(600):
        optimizer.zero_grad()
        F.binary_cross_entropy_with_logits(probe(features).squeeze(-1), target).backward()
        optimizer.step()
    with torch.no_grad():
        return torch.sigmoid(probe(test_features).squeeze(-1))


def cross_fitted_probe(output, soft_labels: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """`support_probe` fitted on faces neither network trained on: on a random half of the scored split (to PIN's
    support of the TRN's prediction there, so no label is used), scored on the other half, and the other way round.
    If a head fitted on unseen faces knew more of PIN's view than one fitted on training faces, this would show it."""
    halves = torch.randperm(len(soft_labels), generator=torch.Generator().manual_seed(seed)).chunk(2)
    features, scores = output.pooler_output.float(), torch.empty(len(soft_labels))
    for fit, scored in (halves, halves[::-1]):
        fitted = SimpleNamespace(pooler_output=features[fit], logits=output.logits[fit])
        scores[scored] = support_probe(fitted, soft_labels[fit], features[scored])
    return scores


@torch.no_grad()
def analyse(run: Path, eval_split: str = "test") -> dict:
    pin = PINForImageClassification.from_pretrained(run / "pin").eval()
    trn = TRNForImageClassification.from_pretrained(run / "trn").eval()
    report: dict = {"run": str(run), "split": eval_split}  # "test_accuracy" entries are on this split
    # the run's own precision, so the numbers match those it recorded (bf16 is the default on CPUs with AMX)
    bf16 = json.loads((run / "metrics.json").read_text())["hyperparameters"].get("bf16", False)
    trn_outputs = {}
    splits = load_run_data(run, (eval_split, "train", "validation") if eval_split == "test" else (eval_split, "train"))
    held_out_accuracy = None
    if eval_split == "test":  # each member's accuracy on held-out faces, for the pooling the memorisation spares
        validation = splits.pop("validation")
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            held_out = pin(validation["pixel_values"], landmarks=validation["landmarks"]).member_logits.float()
        held_out_accuracy = (held_out.argmax(-1) == validation["labels"][:, None]).float().mean(0)
    for split, data in splits.items():  # the scored split first: it picks the best member
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            output = pin(data["pixel_values"], landmarks=data["landmarks"])
            trn_outputs[split] = trn(data["pixel_values"])
        members = output.member_logits.float()
        if split == eval_split:
            accuracy = (members.argmax(-1) == data["clean_labels"][:, None]).float().mean(0)
            best_member = int(accuracy.argmax())
            member_names = pin.config.member_names
            report["member_accuracy"] = dict(zip(member_names, accuracy.tolist()))
            report["best_member"] = member_names[best_member]
            trn_output = trn_outputs[split]
            trn_probs = trn_output.logits.float().softmax(-1)
            predicted = trn_probs.argmax(-1)
            report["trn_accuracy"] = float((predicted == data["clean_labels"]).float().mean())
            scored_soft_labels = output.soft_labels.float()
            scored_truth = {
                "right": (predicted == data["clean_labels"]).numpy(),
                "true_distribution": data["true_distribution"].numpy() if "true_distribution" in data else None,
            }
            report["uncertainty_scores"] = uncertainty_scores(
                {
                    "trn confidence": trn_output.confidence.float(),
                    "trn max softmax": trn_probs.max(-1).values,
                    "pin_support": output.soft_labels.float().gather(1, predicted[:, None]).squeeze(1),
                },
                **scored_truth,
            )
        else:  # what the TRN's features know of PIN's support, fitted on the training images after training
            test_features = trn_outputs[eval_split].pooler_output.float()
            probes = {
                "trn probe of pin_support": support_probe(trn_outputs[split], output.soft_labels.float(), test_features),
                "trn probe of pin_support, fitted on unseen faces": cross_fitted_probe(
                    trn_outputs[eval_split], scored_soft_labels
                ),
            }
            report["uncertainty_scores"].update(uncertainty_scores(probes, **scored_truth))
        probs = F.softmax(members / pin.config.temperature, dim=-1)
        candidates = {
            "pin soft label": output.soft_labels,
            "mean of members": probs.mean(1),
            f"best member ({report['best_member']})": probs[:, best_member],
        }
        if pin.config.member_weighting == "reliability":  # the same members pooled against each reference
            trained_with, running_accuracy = pin.config.reliability_reference, pin.member_accuracy.clone()
            for reference in RELIABILITY_REFERENCES:
                pin.config.reliability_reference = reference
                candidates[f"pooled vs {reference}"] = pin.aggregate(members)[0]
                if held_out_accuracy is not None:
                    pin.member_accuracy.copy_(held_out_accuracy)
                    candidates[f"pooled vs {reference}, validation weights"] = pin.aggregate(members)[0]
                    pin.member_accuracy.copy_(running_accuracy)
            pin.config.reliability_reference = trained_with
        for name, distribution in candidates.items():
            entry = report.setdefault("aggregations", {}).setdefault(name, {})
            if split == eval_split:
                entry["test_accuracy"] = float((distribution.argmax(-1) == data["clean_labels"]).float().mean())
                entry["entropy"] = float(-(distribution * distribution.clamp_min(1e-12).log()).sum(-1).mean())
            else:
                flipped = (data["labels"] != data["clean_labels"]).numpy()
                trust = label_trust(distribution, data["labels"]).numpy()
                entry["trust_auroc_clean_vs_flipped"] = auroc(trust, ~flipped) if flipped.any() else None
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="output folders of finished poi runs")
    parser.add_argument("--out", type=Path, help="write the reports as JSON here")
    parser.add_argument(
        "--split", default="test", choices=("test", "validation"),
        help="the split to score (validation: to choose a setting without looking at test)",
    )
    args = parser.parse_args()
    reports = [analyse(run, args.split) for run in args.runs]
    for report in reports:
        split = report["split"]
        print(f"\n{report['run']}\n  TRN {split} accuracy {100 * report['trn_accuracy']:.1f}%")
        print("  members: " + ", ".join(f"{n} {100 * a:.1f}%" for n, a in report["member_accuracy"].items()))
        for name, entry in report["aggregations"].items():
            auroc_text = entry.get("trust_auroc_clean_vs_flipped")
            auroc_text = "–" if auroc_text is None or np.isnan(auroc_text) else f"{auroc_text:.3f}"
            print(
                f"  {name:16s} {split} acc {100 * entry['test_accuracy']:.1f}%  entropy {entry['entropy']:.2f}"
                f"  trust AUROC {auroc_text}"
            )
        for name, entry in report["uncertainty_scores"].items():
            spearman_text = (
                f"  Spearman with true entropy {entry['entropy_spearman']:+.2f}" if "entropy_spearman" in entry else ""
            )
            print(f"  {name:16s} error AUROC {entry['error_auroc']:.3f}{spearman_text}")
    if args.out:
        args.out.write_text(json.dumps(reports, indent=2))


if __name__ == "__main__":
    main()
