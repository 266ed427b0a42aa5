"""Robustness of POI-R vs baselines on SynFER (or a real dataset such as FER2013): symmetric noise levels, SynFER's
ambiguous single-annotator labels, several seeds, and POI-R ablations at the highest noise level. Every run is `examples/train.py` in a subprocess (the same code
a user runs); finished runs are skipped, so an interrupted benchmark continues where it stopped.

    python benchmarks/robustness.py --quick                        # CI-sized: tiny preset, a few minutes
    python benchmarks/robustness.py --seeds 0 1 2 --ablations      # the full table (hours on a 2-core CPU)
    python benchmarks/robustness.py --seeds 0 1 2 --report_only    # tables of the finished runs, trains nothing
    python benchmarks/robustness.py --dataset fer2013 --data_dir /data/fer2013 --image_size 48 --noise 0.0 0.3 \
        --methods ce kd poi --seeds 0 --epochs 20 --out_dir benchmarks/results/fer2013   # real faces (docs/results.md)
    python benchmarks/robustness.py --noise 0.3 --methods poi poi-reliability ...  # a POI-R variant (VARIANTS)
    python benchmarks/robustness.py --merge A/results.json B/results.json --merged AB.json  # seeds trained apart

Every dataset is watched on its validation split (SynFER: 500 images with annotated, unflipped labels; FER2013:
PublicTest), and its test split is scored once, after training; the "best" and "last-5" columns are validation
accuracies. The error-AUROC columns say how well a method's confidence (and, for comparison, the free max-softmax
probability) tells its right test predictions from its wrong ones.

Writes into --out_dir: runs/<setting>/<method>/seed<k>/ (each run's output folder), results.json (every run and the
aggregates), results.md (tables), accuracy_vs_noise.png, alpha_histogram.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# kd distils the ce run of the same setting and seed; rul and eac run with their papers' defaults (BaselineSettings)
METHODS = ("ce", "label_smoothing", "scn", "kd", "rul", "eac", "poi")


def _pin_recipe(weighting: str, mutual_target: str, au_evidence: bool, reference: str = "chance") -> list[str]:
    """The train.py flags of one PIN recipe (`PINConfig` pooling, mutual-learning target, AU-evidence member)."""
    return [
        "--member_weighting", weighting, "--mutual_target", mutual_target, "--use_au_evidence", str(au_evidence),
        "--reliability_reference", reference,
    ]


# POI-R with a setting other than the defaults, run like a method: name -> its extra train.py flags. Each spells out
# its whole PIN recipe, so that a name means the same runs before and after train.py's defaults moved to
# poi-au-median (December 2026; "poi" in older result folders is today's poi-prior).
_AU_MEDIAN = _pin_recipe("reliability", "reliable_peers", True, "median")  # train.py's defaults since December 2026
VARIANTS = {
    "poi-prior": _pin_recipe("prior", "ensemble", False),
    "poi-reliability": _pin_recipe("reliability", "ensemble", False),
    "poi-peers": _pin_recipe("reliability", "reliable_peers", False),
    "poi-au": _pin_recipe("reliability", "reliable_peers", True),
    "poi-au-median": _AU_MEDIAN,
    "poi-au-median-k3": [*_AU_MEDIAN, "--trust_sharpness", "3"],  # label trust (s[y] / max s) ** 3
    # PIN's soft label keeps half of every target, as the kd baseline's teacher does (POIConfig.transfer_floor)
    "poi-au-median-floor50": [*_AU_MEDIAN, "--transfer_floor", "0.5"],
    "poi-au-median-holdout": [*_AU_MEDIAN, "--reliability_holdout", "10"],  # members measured on unfitted faces
    # the same with a 5x longer memory of the accuracies (~640 held-out faces instead of ~130 at batch 64)
    "poi-au-median-holdout-m99": [*_AU_MEDIAN, "--reliability_holdout", "10", "--reliability_momentum", "0.99"],
    # beta follows PIN's lead over the TRN on held-out faces that train neither (POIConfig.transfer_schedule)
    "poi-au-median-lead": [*_AU_MEDIAN, "--reliability_holdout", "10", "--transfer_schedule", "pin_lead"],
    # alpha = P(label clean) under the noise PIN's anchors show (POIConfig.label_trust)
    "poi-au-median-noise-aware": [*_AU_MEDIAN, "--label_trust", "noise_aware"],
    # confidence = the TRN's max softmax moved by the uncertainty head (TRNConfig.confidence_from_softmax)
    "poi-au-median-softmax-conf": [*_AU_MEDIAN, "--confidence_from_softmax", "True"],
    # the same, its offset fitted for the TRN's correctness on held-out faces the TRN does not train on
    "poi-au-median-holdout-correct": [
        *_AU_MEDIAN, "--reliability_holdout", "10", "--confidence_target", "correctness",
        "--confidence_from_softmax", "True",
    ],
}
ABLATIONS = (
    "use_au_prior",
    "use_au_evidence",
    "use_mutual_learning",
    "use_uncertainty",
    "use_dynamic_transfer",
    "use_pin_soft_labels",
    "use_landmarks",
)
WEIGHTING_METHODS = ("poi", "scn", "rul")  # methods that train a per-sample weight (their confidence head)
TEST_METRICS = (
    "accuracy",
    "mean_class_accuracy",
    "macro_f1",
    "nll",
    "ece",
    "kl_true",
    "confidence_error_auroc",
    "max_softmax_error_auroc",
    "pin_support_error_auroc",
    "confidence_entropy_spearman",
)


# Setting-name prefix of each noise type: "noise30" is 30% symmetric noise, "asym30" 30% asymmetric noise.
NOISE_PREFIXES = {"symmetric": "noise", "asymmetric": "asym", "pair": "pair"}


def noise_setting(rate: float, noise_type: str = "symmetric") -> str:
    """The setting name of a noise rate and type, e.g. 0.3 asymmetric -> "asym30"."""
    return f"{NOISE_PREFIXES[noise_type]}{round(rate * 100):02d}"


def settings(
    noise_levels: list[float], single_annotator: bool, synfer: bool = True, noise_type: str = "symmetric"
) -> dict[str, list[str]]:
    """Setting name -> the train.py flags that make its training labels (real data: its own labels + noise)."""
    clean = ["--synfer_label_mode", "clean"] if synfer else []
    flip = ["--noise_type", noise_type]
    table = {
        noise_setting(rate, noise_type): [*clean, "--noise_rate", str(rate), *(flip if rate else [])]
        for rate in noise_levels
    }
    if single_annotator and synfer:
        table["single_annotator"] = ["--synfer_label_mode", "subjective"]
    return table


def run_one(
    run_dir: Path, method: str, seed: int, label_flags: list[str], common: list[str], extra: list[str], log
) -> dict:
    metrics_file = run_dir / "metrics.json"
    if metrics_file.is_file():
        return json.loads(metrics_file.read_text())
    if run_dir.exists():  # an interrupted run: start it again from scratch
        subprocess.run(["rm", "-rf", str(run_dir)], check=True)
    command = [
        sys.executable,
        str(ROOT / "examples" / "train.py"),
        "--method",
        method,
        "--output_dir",
        str(run_dir),
        "--seed",
        str(seed),
        "--synfer_seed",
        "0",
        "--noise_seed",
        str(seed),
        *label_flags,
        *common,
        *extra,
    ]
    start = time.time()
    log(f"run {run_dir.relative_to(run_dir.parents[2])}: {' '.join(command[2:])}")
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if result.returncode != 0:
        raise RuntimeError(f"{run_dir} failed:\n{result.stderr[-3000:]}")
    log(f"  done in {time.time() - start:.0f}s")
    return json.loads(metrics_file.read_text())


def summarize_run(metrics: dict) -> dict:
    """The fields of one run that the tables report."""
    test, analysis = metrics["test"], metrics.get("train_analysis", {})
    row = {f"test_{name}": test.get(name) for name in TEST_METRICS}
    row.update(
        {
            "best_accuracy": metrics.get("best", {}).get("accuracy"),
            "last5_accuracy": metrics.get("last5_mean", {}).get("accuracy"),
            # alpha = the sample weights of training: POI-R's PIN label trust, SCN's attention, RUL's uncertainty
            # weight; only these methods train their confidence head (the others' is untouched noise)
            "alpha_auroc": analysis.get(
                "trust_auroc_clean_vs_flipped" if metrics["method"] == "poi" else "alpha_auroc_clean_vs_flipped"
            )
            if metrics["method"] in WEIGHTING_METHODS
            else None,
            "head_auroc": analysis.get("alpha_auroc_clean_vs_flipped")
            if metrics["method"] in WEIGHTING_METHODS
            else None,
            "pin_train_accuracy": analysis.get("pin_train_accuracy_clean"),
            "achieved_noise_rate": analysis.get("noise_rate"),
            "train_runtime_s": metrics.get("train_runtime_s"),
        }
    )
    return row


def aggregate(rows: list[dict]) -> dict:
    """mean and std over seeds of every numeric field (NaN/None left out)."""
    out = {}
    for key in rows[0]:
        values = [r[key] for r in rows if isinstance(r[key], (int, float)) and not np.isnan(r[key])]
        if values:
            out[key] = {"mean": float(np.mean(values)), "std": float(np.std(values)), "n": len(values)}
    return out


def fmt(cell: dict | None, scale: float = 1.0, digits: int = 1) -> str:
    if not cell:
        return "–"
    return f"{cell['mean'] * scale:.{digits}f} ± {cell['std'] * scale:.{digits}f}"


RECORDED_HYPERPARAMETERS = ("dataset", "synfer_train", "image_size", "epochs", "batch_size", "bf16")


def trained_with(results: dict) -> str:
    """The values of `RECORDED_HYPERPARAMETERS` the table's runs were trained with, from each run's metrics.json
    (a report merges run folders, so its own command line need not say)."""
    runs = [h for methods in results["hyperparameters"].values() for seeds in methods.values() for h in seeds.values()]
    if not runs:
        return "no finished run"
    values = {name: sorted({str(h.get(name)) for h in runs}) for name in RECORDED_HYPERPARAMETERS}
    return ", ".join(f"{name} {' / '.join(found)}" for name, found in values.items())


def markdown(results: dict) -> str:
    lines = [f"Machine: {results['machine']}. Seeds: {results['seeds']}. Command: `{results['command']}`."]
    lines += [f"Runs trained with: {trained_with(results)}.", ""]
    lines += [
        "| setting | method | test acc % | best val acc % | last-5 val acc % | mean class acc % | macro-F1 % | NLL "
        "| ECE % | KL(true‖pred) | α AUROC | head AUROC | PIN train acc % | error AUROC: confidence | error AUROC: "
        "max-softmax | error AUROC: PIN support | confidence vs true entropy (Spearman) |",
        "|" + "---|" * 17,
    ]
    for setting, methods in results["aggregates"].items():
        for method, agg in methods.items():
            lines.append(
                f"| {setting} | {method} | {fmt(agg.get('test_accuracy'), 100)} | {fmt(agg.get('best_accuracy'), 100)} "
                f"| {fmt(agg.get('last5_accuracy'), 100)} | {fmt(agg.get('test_mean_class_accuracy'), 100)} "
                f"| {fmt(agg.get('test_macro_f1'), 100)} | {fmt(agg.get('test_nll'), 1, 3)} "
                f"| {fmt(agg.get('test_ece'), 100)} "
                f"| {fmt(agg.get('test_kl_true'), 1, 3)} | {fmt(agg.get('alpha_auroc'), 1, 3)} "
                f"| {fmt(agg.get('head_auroc'), 1, 3)} "
                f"| {fmt(agg.get('pin_train_accuracy'), 100)} | {fmt(agg.get('test_confidence_error_auroc'), 1, 3)} "
                f"| {fmt(agg.get('test_max_softmax_error_auroc'), 1, 3)} "
                f"| {fmt(agg.get('test_pin_support_error_auroc'), 1, 3)} "
                f"| {fmt(agg.get('test_confidence_entropy_spearman'), 1, 2)} |"
            )
    return "\n".join(lines) + "\n"


def write_results(results: dict, out_dir: Path, name: str = "results") -> None:
    (out_dir / f"{name}.json").write_text(json.dumps(results, indent=2))
    (out_dir / f"{name}.md").write_text(markdown(results))


def merge(files: list[Path], command: str) -> dict:
    """One results dict from the results.json of several benchmarks (e.g. seeds trained in separate runs): every
    run row and its recorded hyperparameters, aggregated anew. A run (setting, method, seed) found in two files must
    hold the same numbers in both."""
    machines = []
    merged = {"command": command, "settings": {"merged": [str(f) for f in files]}}
    merged |= {"runs": {}, "hyperparameters": {}, "aggregates": {}}
    for file in files:
        results = json.loads(file.read_text())
        if results["machine"] not in machines:
            machines.append(results["machine"])
        for setting, methods in results["runs"].items():
            for method, rows in methods.items():
                runs = merged["runs"].setdefault(setting, {}).setdefault(method, {})
                recorded = merged["hyperparameters"].setdefault(setting, {}).setdefault(method, {})
                for seed, row in rows.items():
                    if runs.get(seed, row) != row:
                        raise ValueError(f"{file}: {setting}/{method}/{seed} differs from that run in an earlier file")
                    runs[seed] = row
                    recorded[seed] = results["hyperparameters"][setting][method][seed]
    for setting, methods in merged["runs"].items():
        for method, rows in methods.items():
            merged["aggregates"].setdefault(setting, {})[method] = aggregate([rows[seed] for seed in sorted(rows)])
    seeds = {seed for methods in merged["runs"].values() for rows in methods.values() for seed in rows}
    seeds = sorted(int(seed.removeprefix("seed")) for seed in seeds)
    return {"machine": " / ".join(machines), "seeds": seeds, **merged}


def plot(results: dict, out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    noise_settings = sorted(s for s in results["aggregates"] if s.startswith("noise"))
    if noise_settings:  # a curve over symmetric noise rates (asymmetric and single-annotator runs have none)
        figure, axis = plt.subplots(figsize=(6, 4))
        for method in [*METHODS, *VARIANTS]:
            points = [
                (int(s[5:]), results["aggregates"][s][method]["test_accuracy"])
                for s in noise_settings
                if method in results["aggregates"][s] and "test_accuracy" in results["aggregates"][s][method]
            ]
            if points:
                xs, cells = zip(*points)
                axis.errorbar(
                    xs,
                    [100 * c["mean"] for c in cells],
                    yerr=[100 * c["std"] for c in cells],
                    marker="o",
                    capsize=3,
                    label=method,
                )
        axis.set_xlabel("symmetric label noise (%)")
        axis.set_ylabel("clean test accuracy (%)")
        axis.legend()
        figure.tight_layout()
        figure.savefig(out_dir / "accuracy_vs_noise.png", dpi=110)
        plt.close(figure)

    histograms = (
        [
            (method, out_dir / "runs" / noise_settings[-1] / method / "seed0" / "train_analysis.npz")
            for method in ("poi", "scn")
        ]
        if noise_settings
        else []
    )
    histograms = [(m, p) for m, p in histograms if p.is_file()]
    if histograms:
        figure, axes = plt.subplots(1, len(histograms), figsize=(5 * len(histograms), 3.5), squeeze=False)
        for axis, (method, path) in zip(axes[0], histograms):
            data = np.load(path)
            bins = np.linspace(0, 1, 31)
            alpha = data["trust"] if "trust" in data else data["confidence"]  # the weights training used
            axis.hist(alpha[~data["flipped"]], bins=bins, alpha=0.6, density=True, label="clean label")
            axis.hist(alpha[data["flipped"]], bins=bins, alpha=0.6, density=True, label="flipped label")
            axis.set_title(f"{method}: α on the train split ({noise_settings[-1]})")
            axis.set_xlabel("α (training sample weight)")
            axis.legend()
        figure.tight_layout()
        figure.savefig(out_dir / "alpha_histogram.png", dpi=110)
        plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CI-sized run: tiny preset, little data, 1 seed")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=[*METHODS, *VARIANTS])
    parser.add_argument(
        "--noise", nargs="*", type=float, default=[0.0, 0.1, 0.2, 0.3], help="noise rates; none: single-annotator only"
    )
    parser.add_argument("--noise_type", default="symmetric", choices=list(NOISE_PREFIXES), help="how labels flip")
    parser.add_argument("--no_single_annotator", action="store_true")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--ablations", action="store_true", help="POI-R with each component off, at the top noise")
    parser.add_argument(
        "--report_only",
        action="store_true",
        help="aggregate the finished runs of the grid (with --ablations: ablations at every setting); train nothing",
    )
    parser.add_argument("--dataset", default="synfer", help="synfer, or a real dataset of examples/train.py")
    parser.add_argument("--data_dir", default=None, help="the real dataset's folder")
    parser.add_argument("--image_size", type=int, default=None, help="override the preset's input size")
    parser.add_argument("--bf16", default=None, choices=["True", "False"], help="default: train.py's (auto)")
    parser.add_argument(
        "--mirror_average",
        default=None,
        choices=["True", "False"],
        help="predict (and select epochs) from the face and its mirror image together; default: train.py's (True). "
        "False compares with runs from before December 2026",
    )
    parser.add_argument(
        "--fit_temperature",
        default=None,
        choices=["True", "False"],
        help="fit the TRN's calibration temperature on the validation split before test is scored; default: "
        "train.py's (True). False compares with runs from before December 2026",
    )
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--train_size", type=int, default=2000)
    parser.add_argument("--validation_size", type=int, default=500, help="SynFER: images that select")
    parser.add_argument("--test_size", type=int, default=1000)
    parser.add_argument("--epochs", type=float, default=12)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--out_dir", type=Path, default=ROOT / "benchmarks" / "results" / "robustness")
    parser.add_argument("--merge", nargs="+", type=Path, help="results.json files to merge (--merged); trains nothing")
    parser.add_argument("--merged", type=Path, help="with --merge: the merged results' .json path (and .md beside it)")
    args = parser.parse_args()
    if args.merge:
        if args.merged is None or args.merged.suffix != ".json":
            parser.error("--merge needs --merged PATH.json")
        results = merge(args.merge, " ".join(["python", "benchmarks/robustness.py", *sys.argv[1:]]))
        write_results(results, args.merged.parent, args.merged.stem)
        print(markdown(results))
        return
    if args.quick:
        args.preset, args.train_size, args.test_size, args.epochs, args.seeds = "tiny", 96, 48, 2, args.seeds[:1]
        args.validation_size = 48
        args.noise, args.batch_size = [0.3], 32
    if args.dataset != "synfer" and not args.data_dir:
        parser.error(f"--dataset {args.dataset} needs --data_dir")
    if "kd" in args.methods and "ce" not in args.methods:
        parser.error("kd distils the ce run of the same setting: include ce in --methods")
    methods = [m for m in [*METHODS, *VARIANTS] if m in args.methods]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    log_file = (args.out_dir / "benchmark.log").open("a")

    def log(message: str) -> None:
        print(message, flush=True)
        log_file.write(message + "\n")
        log_file.flush()

    synfer = args.dataset == "synfer"
    if synfer:
        data_flags = ["--synfer_train", str(args.train_size), "--synfer_validation", str(args.validation_size)]
        data_flags += ["--synfer_test", str(args.test_size)]
    else:
        data_flags = ["--dataset", args.dataset, "--data_dir", str(args.data_dir)]
    common = [
        "--preset",
        args.preset,
        *data_flags,
        *(["--image_size", str(args.image_size)] if args.image_size else []),
        *(["--bf16", args.bf16] if args.bf16 else []),
        *(["--mirror_average", args.mirror_average] if args.mirror_average else []),
        *(["--fit_temperature", args.fit_temperature] if args.fit_temperature else []),
        "--num_train_epochs",
        str(args.epochs),
        "--per_device_train_batch_size",
        str(args.batch_size),
        "--save_strategy",
        "no",
        "--disable_tqdm",
        "True",
        "--logging_steps",
        "20",
        "--baseline_warmup_epochs",
        str(args.epochs / 3),
        "--scn_relabel_epoch",
        str(args.epochs * 2 / 3),
    ]
    label_settings = settings(args.noise, not args.no_single_annotator, synfer, args.noise_type)
    if not label_settings:
        parser.error("no setting to run: give --noise rates or drop --no_single_annotator")
    jobs = [(setting, method, VARIANTS.get(method, [])) for setting in label_settings for method in methods]
    # ablations are trained at the top noise level; a report also shows those finished at other settings
    ablated = list(label_settings) if args.report_only else [noise_setting(max(args.noise, default=0), args.noise_type)]
    if args.ablations:
        jobs += [(s, f"poi-no_{flag[4:]}", [f"--{flag}", "False"]) for s in ablated for flag in ABLATIONS]

    results = {
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "seeds": args.seeds,
        "command": " ".join(["python", "benchmarks/robustness.py", *sys.argv[1:]]),
        "settings": {k: v for k, v in vars(args).items() if k != "out_dir"},
        "runs": {},
        "hyperparameters": {},  # each run's, as its metrics.json records them
        "aggregates": {},
    }
    for seed in args.seeds:
        for setting, method, extra in jobs:
            run_dir = args.out_dir / "runs" / setting / method / f"seed{seed}"
            if args.report_only and not (run_dir / "metrics.json").is_file():
                continue
            base = method.split("-")[0]
            if base == "kd":
                extra = [*extra, "--teacher_path", str(args.out_dir / "runs" / setting / "ce" / f"seed{seed}" / "trn")]
            metrics = run_one(run_dir, base, seed, label_settings[setting], common, extra, log)
            results["runs"].setdefault(setting, {}).setdefault(method, {})[f"seed{seed}"] = summarize_run(metrics)
            recorded = {name: metrics["hyperparameters"].get(name) for name in RECORDED_HYPERPARAMETERS}
            results["hyperparameters"].setdefault(setting, {}).setdefault(method, {})[f"seed{seed}"] = recorded
            results["aggregates"].setdefault(setting, {})[method] = aggregate(
                list(results["runs"][setting][method].values())
            )
            write_results(results, args.out_dir)  # after every run, so a long benchmark shows results as it goes
    write_results(results, args.out_dir)
    plot(results, args.out_dir)
    log(markdown(results))


if __name__ == "__main__":
    main()
