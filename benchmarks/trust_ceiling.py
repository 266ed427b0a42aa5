"""How well can a label trust tell SynFER's flipped training labels from clean ones, and what limits POI-R's?

Issue 13 asks for a label-trust AUROC >= 0.90 (flipped vs clean training labels) under 30% asymmetric noise, where
each class flips to its most confusable partner (`poi_hf.data.noise.CONFUSABLE`). POI-R's PIN reaches 0.92-0.95
with symmetric noise but 0.82-0.86 with asymmetric noise. As `ambiguity_ceiling.py` does for the entropy target,
this script measures it without images, on the AU intensities SynFER's generator draws (a perfect perceiver: no
pose, blur, noise or occluders), and on worse perceivers (Gaussian noise on the AUs, ``--au_noise``) down to
PIN's accuracy. Each perceiver is an MLP fitted to the noisy labels, read ``in-sample`` (it scores its own training
samples, as PIN's trust is read after training by `poi_hf.reporting.analyze_train_split`) and ``cross-fitted`` (two
folds, each scored by an MLP fitted to the other: no memorisation). Four trusts are read from its posterior
(`trust_readings`): POI-R's ``p[y] / max p`` (`poi_hf.losses.label_trust`), ``p[y]``, and the probability that the
given label is clean once the noise is undone with the transition matrix (`poi_hf.losses.noise_aware_trust`, the
trust of ``--label_trust noise_aware``), estimated without clean labels from anchor points
(`poi_hf.losses.anchor_transition`) or, as an oracle, counted from the flips. A second oracle
reads the clean posterior (an MLP fitted to the clean labels) with the true transition matrix: the most the AUs
allow. With ``--runs``, the same four trusts from finished POI-R runs' PIN soft labels on their training faces.

    OMP_NUM_THREADS=1 python benchmarks/trust_ceiling.py --out benchmarks/results/trust_ceiling.json
    OMP_NUM_THREADS=1 python benchmarks/trust_ceiling.py --train_sizes --runs runs/asym30/poi/seed0 --out ...
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import torch
from ambiguity_ceiling import fit_mlp, seed_means, synfer_aus, write_record
from pin_members import load_run_data, pin_soft_labels

from poi_hf import PINForImageClassification
from poi_hf.data.noise import flip_labels
from poi_hf.data.synfer.dataset import SynFERConfig
from poi_hf.losses import anchor_transition, clean_label_probability, label_trust, noise_aware_trust
from poi_hf.metrics import auroc

SETTING = ("noise_type", "train_size", "au_noise", "seed")  # what a row is of; the rest are its metrics


def predict(model: torch.nn.Module, x: np.ndarray) -> torch.Tensor:
    """Class probabilities (n, C) of a fitted MLP for inputs ``x`` (n, D)."""
    with torch.no_grad():
        return torch.softmax(model(torch.from_numpy(x)), 1)


def cross_fitted(x: np.ndarray, target: np.ndarray, epochs: int, seed: int) -> torch.Tensor:
    """Probabilities (n, C) for every sample from an MLP fitted to ``target`` (n, C) on the other half of ``x``."""
    folds = np.random.default_rng(seed).permutation(len(x)) % 2
    probs = torch.empty(len(x), target.shape[1])
    for fold in (0, 1):
        scored, fitted = folds == fold, folds != fold
        probs[torch.from_numpy(scored)] = predict(fit_mlp(x[fitted], target[fitted], epochs, seed), x[scored])
    return probs


def transition_counts(clean: np.ndarray, given: np.ndarray, num_classes: int) -> np.ndarray:
    """The noise's transition matrix (C, C), ``T[c, c'] = P(given c' | clean c)``, counted from the labels."""
    transition = np.zeros((num_classes, num_classes))
    np.add.at(transition, (clean, given), 1.0)
    return transition / transition.sum(1, keepdims=True).clip(1.0)


def trust_readings(noisy_posterior: torch.Tensor, given: np.ndarray, clean: np.ndarray) -> dict[str, float]:
    """AUROC (clean vs flipped labels) of four trusts read from a posterior (n, C) fitted to the noisy labels:
    POI-R's ``p[y] / max p``, ``p[y]``, and `noise_aware_trust` with the transition matrix estimated by
    `anchor_transition` and with the true one (an oracle)."""
    given_t, is_clean = torch.from_numpy(given), given == clean
    true_transition = transition_counts(clean, given, noisy_posterior.shape[1])
    trusts = {
        "p[y]/max p": label_trust(noisy_posterior, given_t),
        "p[y]": noisy_posterior[torch.arange(len(given)), given_t],
        "estimated noise": noise_aware_trust(noisy_posterior, given_t, anchor_transition(noisy_posterior)),
        "known noise": noise_aware_trust(noisy_posterior, given_t, torch.from_numpy(true_transition)),
    }
    return {name: auroc(trust.numpy(), is_clean) for name, trust in trusts.items()}


def trust_aurocs(x: np.ndarray, clean: np.ndarray, given: np.ndarray, num_classes: int, seed: int) -> dict:
    """`trust_readings` of MLPs fitted to the noisy labels (in-sample and cross-fitted), the cross-fitted one's
    accuracy against the clean labels (how well this perceiver knows the classes), and the oracle: the cross-fitted
    clean posterior with the true transition matrix."""
    epochs = max(10, 200_000 // len(x))  # the step budget of ambiguity_ceiling.py
    one_hot = np.eye(num_classes, dtype=np.float32)
    scores = {}
    for reading, probs in (
        ("in-sample", predict(fit_mlp(x, one_hot[given], epochs, seed), x)),
        ("cross-fitted", cross_fitted(x, one_hot[given], epochs, seed)),
    ):
        scores.update({f"{reading}, {k}": v for k, v in trust_readings(probs, given, clean).items()})
    scores["cross-fitted accuracy"] = float((probs.argmax(1).numpy() == clean).mean())
    posterior = cross_fitted(x, one_hot[clean], epochs, seed)
    transition = torch.from_numpy(transition_counts(clean, given, num_classes)).float()
    clean_probability = clean_label_probability(posterior, torch.from_numpy(given), transition)
    scores["oracle: clean posterior, known noise"] = auroc(clean_probability.numpy(), given == clean)
    scores["oracle's accuracy"] = float((posterior.argmax(1).numpy() == clean).mean())
    return scores


def score_run(run: Path) -> dict:
    """`trust_readings` of a finished POI-R run's PIN soft labels on its training faces (evaluation transform), as
    `poi_hf.reporting.analyze_train_split` reads POI-R's trust, and PIN's accuracy there against the clean labels."""
    pin = PINForImageClassification.from_pretrained(run / "pin").eval()
    train = load_run_data(run, ("train",))["train"]
    soft_labels = pin_soft_labels(pin, train)
    given, clean = train["labels"].numpy(), train["clean_labels"].numpy()
    report = {
        "run": str(run),
        "pin accuracy (clean training labels)": float((soft_labels.argmax(1).numpy() == clean).mean()),
    }
    report.update(trust_readings(soft_labels, given, clean))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--difficulty", type=float, default=0.4)
    parser.add_argument("--noise_rate", type=float, default=0.3)
    parser.add_argument("--noise_types", nargs="+", default=["symmetric", "asymmetric"])
    parser.add_argument("--train_sizes", type=int, nargs="*", default=[2500])
    parser.add_argument(
        "--au_noise",
        type=float,
        nargs="+",
        default=[0.0, 0.1, 0.2, 0.3],
        help="std of Gaussian noise added to the AUs (intensities in [0, 1]): worse perceivers",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--runs", type=Path, nargs="*", default=[], help="finished POI-R runs on SynFER to score")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    config = SynFERConfig(difficulty=args.difficulty)
    num_classes = len(config.class_names)
    rows = []
    for noise_type in args.noise_types:
        for size, sigma, seed in itertools.product(args.train_sizes, args.au_noise, args.seeds):
            train = synfer_aus(config, size, seed=seed)
            aus = train["aus"] + sigma * np.random.default_rng(seed).standard_normal(train["aus"].shape, np.float32)
            clean = train["dist"].argmax(1)
            given = flip_labels(clean, num_classes, args.noise_rate, noise_type, seed, config.class_names)
            row = {"noise_type": noise_type, "train_size": size, "au_noise": sigma, "seed": seed}
            row.update(trust_aurocs(aus, clean, given, num_classes, seed))
            rows.append(row)
            print(
                f"{noise_type:10s} n={size:6d} AU noise {sigma:.2f} seed {seed}: "
                + "  ".join(f"{k} {v:.3f}" for k, v in row.items() if k not in SETTING),
                flush=True,
            )
    summary = seed_means(
        rows,
        SETTING[:-1],
        lambda r: f"{r['noise_type']} {args.noise_rate:.0%}, n={r['train_size']}, AU noise {r['au_noise']:.2f}",
    )
    if summary:
        print("\nmeans over seeds:")
    for name, values in summary.items():
        print(f"  {name:44s} " + "  ".join(f"{k} {v:.3f}" for k, v in values.items()))
    image_models = [score_run(run) for run in args.runs]
    for report in image_models:
        print(
            f"\n{report['run']}, PIN's soft labels on the training faces: "
            + "  ".join(f"{k} {v:.3f}" for k, v in report.items() if k != "run")
        )
    if args.out:
        write_record(args.out, "trust_ceiling.py", {"summary": summary, "runs": rows}, image_models)


if __name__ == "__main__":
    main()
