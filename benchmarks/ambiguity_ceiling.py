"""How far can any SynFER classifier's confidence follow the true distribution's ambiguity?

Issue 13 asks for a ``confidence`` whose Spearman correlation with the entropy of SynFER's true distribution is
<= -0.3; every trained TRN sits at -0.10 to -0.18, as does its max softmax. This script measures the ceiling of that
number without images: a classifier that sees a face's exact AU intensities (what the renderer draws, before pose,
blur, noise and occluders) is an upper bound on what an image model can perceive. It trains small MLPs on the AU
vectors of SynFER's own generator (same difficulty, classes and label streams) with each kind of supervision the
benchmarks use, and scores ``max softmax`` against the true entropy on held-out samples:

- ``true distribution`` (KL to the blend itself): the best any perceiver of the AUs can do, E[dist | AUs];
- ``votes`` (the 10 annotators' vote shares, FERPlus style), ``clean`` (argmax of the blend), ``subjective`` (one
  annotator's vote), ``clean + 30% symmetric noise``: the labels the robustness grid trains on;

and two label-free readings of the AUs through the prior table ``P`` (the generator's and PIN's): PIN's AU-evidence
rule (`au_evidence_logits`) and a non-negative least-squares inversion ``AUs ~ x @ P`` (`prior_inversion`).

Each at the benchmarks' 2,500 training samples and at 50,000 (enough to fit the posterior). With ``--runs``, the same
Spearman for finished POI-R runs on their SynFER test split, from images: the TRN's top probability (as deployed),
PIN's soft label, and PIN's predicted AUs read through the prior both ways. Run::

    OMP_NUM_THREADS=1 python benchmarks/ambiguity_ceiling.py --out benchmarks/results/ambiguity_ceiling.json
    OMP_NUM_THREADS=1 python benchmarks/ambiguity_ceiling.py --train_sizes --runs runs/noise30/poi/seed0 --out ...
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch
from pin_members import load_run_data, load_run_trn
from torch import nn

from poi_hf import PINForImageClassification
from poi_hf.data.noise import flip_labels
from poi_hf.data.synfer.dataset import SynFERConfig
from poi_hf.data.synfer.labels import sample_annotator_pool, sample_aus, sample_true_distributions, sample_votes
from poi_hf.metrics import spearman
from poi_hf.pin.modeling_pin import au_evidence_logits, region_mean_au_probabilities
from poi_hf.priors import au_prior_table


def synfer_aus(config: SynFERConfig, n: int, seed: int) -> dict[str, np.ndarray]:
    """``n`` samples of SynFER's label model: AUs (n, 2A) of both face sides, true distribution (n, C), votes (n, C)
    and the subjective label (n,), drawn as ``generate_split`` draws them (without rendering)."""
    rng = np.random.default_rng(seed)
    dist = sample_true_distributions(rng, n, config.class_names, config.difficulty)
    aus = sample_aus(rng, dist, config.class_names, config.difficulty).reshape(n, -1)
    pool = sample_annotator_pool(rng, config.class_names, config.num_annotators)
    votes, subjective = sample_votes(rng, pool, dist, config.num_votes)
    return {"aus": aus, "dist": dist, "votes": votes / votes.sum(1, keepdims=True), "subjective": subjective}


def entropy(dist: np.ndarray) -> np.ndarray:
    """Shannon entropy (n,) of rows of ``dist`` (n, C), 0 log 0 = 0."""
    return -(dist * np.log(np.clip(dist, 1e-12, None))).sum(1)


def prior_inversion(aus: torch.Tensor, prior: torch.Tensor, steps: int = 3000) -> torch.Tensor:
    """Blend (n, C) whose prototypes best explain the AUs: ``x = argmin_{x >= 0} |aus - x @ prior|^2`` by projected
    gradient descent (aus (n, A), prior (C, A)). Emotions with no AU (neutral's all-zero row) cannot be seen in the
    AUs: they share what the others leave of a full-intensity face, ``max(0, 1 - sum x)``; then rows sum to 1."""
    silent = prior.sum(1) == 0  # (C,)
    step = 1.0 / torch.linalg.eigvalsh(prior @ prior.T).max()
    x = torch.zeros(len(aus), len(prior))
    for _ in range(steps):
        x = (x - step * (x @ prior - aus) @ prior.T).clamp_min(0.0)
    if silent.any():
        x[:, silent] = (1.0 - x.sum(1, keepdim=True)).clamp_min(0.0) / silent.sum()
    x = x + 1e-6
    return x / x.sum(1, keepdim=True)


def ambiguity_scores(probs: np.ndarray, true_entropy: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy against ``labels`` and the Spearman of the top probability and of the entropy of ``probs`` (N, C) with
    ``true_entropy`` (N,)."""
    return {
        "accuracy": float((probs.argmax(1) == labels).mean()),
        "max_softmax_entropy_spearman": spearman(probs.max(1), true_entropy),
        "predicted_entropy_spearman": spearman(entropy(probs), true_entropy),
    }


@torch.no_grad()
def score_run(run: Path, batch_size: int = 256) -> dict:
    """A finished POI-R run's scores on its SynFER test split: the TRN as deployed, PIN's soft label, and PIN's AUs
    (the regions' mean AU probability) read through the prior by PIN's rule and by `prior_inversion`."""
    trn, report = load_run_trn(run)
    pin = PINForImageClassification.from_pretrained(run / "pin").eval()
    data = load_run_data(run, ("test",))["test"]
    batches = list(zip(data["pixel_values"].split(batch_size), data["landmarks"].split(batch_size)))
    trn_probs = torch.cat([trn(pixels).logits.float().softmax(-1) for pixels, _ in batches])
    outputs = [pin(pixels, landmarks=landmarks) for pixels, landmarks in batches]
    au_logits = torch.cat([output.au_logits.float() for output in outputs])
    region_aus, prior = pin.priors.region_aus, pin.priors.au_prior
    shown = region_aus.sum(0) > 0  # AUs some region shows
    pin_aus = region_mean_au_probabilities(au_logits, region_aus)
    readings = {
        "TRN (as deployed)": trn_probs,
        "PIN soft label": torch.cat([output.soft_labels.float() for output in outputs]),
        "PIN's AUs, AU-evidence rule": au_evidence_logits(au_logits, prior, region_aus).softmax(-1),
        "PIN's AUs, prior inversion": prior_inversion(pin_aus[:, shown], prior[:, shown]),
    }
    true_entropy, labels = entropy(data["true_distribution"].numpy()), data["clean_labels"].numpy()
    for name, probs in readings.items():
        report[name] = ambiguity_scores(probs.numpy(), true_entropy, labels)
    return report


def fit_mlp(x: np.ndarray, target: np.ndarray, epochs: int, seed: int) -> nn.Module:
    """A 2-hidden-layer MLP on ``x`` (n, D) fitted by cross-entropy to soft targets ``target`` (n, C) (one-hot for
    hard labels): AdamW, minibatches of 256, a cosine schedule."""
    torch.manual_seed(seed)
    width = 128
    model = nn.Sequential(
        nn.Linear(x.shape[1], width), nn.GELU(), nn.Linear(width, width), nn.GELU(), nn.Linear(width, target.shape[1])
    )
    x_t, y_t = torch.from_numpy(x), torch.from_numpy(target.astype(np.float32))
    steps = epochs * -(-len(x) // 256)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for rows in torch.randperm(len(x), generator=generator).split(256):
            loss = -(y_t[rows] * torch.log_softmax(model(x_t[rows]), 1)).sum(1).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return model.eval()


def seed_means(rows: list[dict], settings: tuple[str, ...], name) -> dict[str, dict[str, float]]:
    """Mean over seeds of every metric of ``rows`` (dicts of the ``settings`` keys, ``seed`` and float metrics): one
    entry per setting, in the order the rows first show it, keyed ``name(row)``."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row[key] for key in settings), []).append(row)
    return {
        name(picked[0]): {
            key: float(np.mean([r[key] for r in picked])) for key in picked[0] if key not in (*settings, "seed")
        }
        for picked in groups.values()
    }


def write_record(out: Path, script: str, sections: dict, image_models: list[dict]) -> None:
    """Write a ceiling benchmark's JSON: its command line, the machine, ``sections`` and, when runs were scored,
    ``image_models``."""
    record = {
        "command": " ".join(["python", f"benchmarks/{script}", *sys.argv[1:]]),
        "machine": f"{platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} thread(s)",
        **sections,
        **({"image_models": image_models} if image_models else {}),
    }
    out.write_text(json.dumps(record, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--difficulty", type=float, default=0.4)
    parser.add_argument("--train_sizes", type=int, nargs="*", default=[2500, 50000])
    parser.add_argument("--runs", type=Path, nargs="*", default=[], help="finished POI-R runs on SynFER to score")
    parser.add_argument("--num_test", type=int, default=20000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    config = SynFERConfig(difficulty=args.difficulty)
    num_classes = len(config.class_names)
    test = synfer_aus(config, args.num_test, seed=10_000)
    test_entropy = entropy(test["dist"])
    reference = {
        "true max probability (oracle)": spearman(test["dist"].max(1), test_entropy),
        "share of test samples that are blends": float((test_entropy > 0).mean()),
    }
    prior = torch.tensor(au_prior_table(config.class_names), dtype=torch.float32)  # (C, A)
    test_aus = torch.from_numpy(test["aus"]).view(len(test_entropy), 2, -1)  # (n, sides, A)
    label_free = {
        "AU-evidence rule on the true AUs (no labels)": torch.softmax(
            au_evidence_logits(torch.logit(test_aus.clamp(1e-4, 1 - 1e-4)), prior, torch.ones(2, prior.shape[1])), 1
        ),
        "prior inversion of the true AUs (no labels)": prior_inversion(test_aus.max(1).values, prior),
    }
    for name, probs in label_free.items():
        reference[name] = ambiguity_scores(probs.numpy(), test_entropy, test["dist"].argmax(1))
    print(f"SynFER difficulty {args.difficulty}, {num_classes} classes, {args.num_test} test samples")
    for name, value in reference.items():
        scores = value.items() if isinstance(value, dict) else [("", value)]
        print(f"  {name}: " + "  ".join(f"{k} {v:+.3f}" for k, v in scores))

    rows = []
    for size in args.train_sizes:
        for seed in args.seeds:
            train = synfer_aus(config, size, seed=seed)
            clean = train["dist"].argmax(1)
            targets = {
                "true distribution": train["dist"],
                "votes": train["votes"],
                "clean": np.eye(num_classes)[clean],
                "subjective": np.eye(num_classes)[train["subjective"]],
                "clean + 30% symmetric noise": np.eye(num_classes)[flip_labels(clean, num_classes, 0.3, seed=seed)],
            }
            epochs = max(10, 200_000 // size)  # about the same number of steps at every size
            for supervision, target in targets.items():
                model = fit_mlp(train["aus"], target, epochs, seed)
                with torch.no_grad():
                    probs = torch.softmax(model(torch.from_numpy(test["aus"])), 1).numpy()
                row = {
                    "train_size": size,
                    "seed": seed,
                    "supervision": supervision,
                    **ambiguity_scores(probs, test_entropy, test["dist"].argmax(1)),
                }
                rows.append(row)
                print(
                    f"  n={size:6d} seed {seed} {supervision:28s} acc {row['accuracy']:.3f}  Spearman: max softmax "
                    f"{row['max_softmax_entropy_spearman']:+.3f}, predicted entropy "
                    f"{row['predicted_entropy_spearman']:+.3f}",
                    flush=True,
                )

    summary = seed_means(rows, ("train_size", "supervision"), lambda r: f"{r['supervision']}, n={r['train_size']}")
    if summary:
        print("\nmeans over seeds:")
    for name, values in summary.items():
        print(f"  {name:42s} " + "  ".join(f"{k} {v:+.3f}" for k, v in values.items()))
    image_models = []
    for run in args.runs:
        image_models.append(score_run(run))
        print(f"\n{run} ({image_models[-1]['method']}), test split from images:")
        for name, values in image_models[-1].items():
            if isinstance(values, dict):
                print(f"  {name:30s} " + "  ".join(f"{k} {v:+.3f}" for k, v in values.items()))
    if args.out:
        write_record(
            args.out, "ambiguity_ceiling.py", {"reference": reference, "summary": summary, "runs": rows}, image_models
        )

if __name__ == "__main__":
    main()
