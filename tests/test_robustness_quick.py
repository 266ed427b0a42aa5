"""`benchmarks/robustness.py --quick` end to end: every method trains through examples/train.py and the JSON has
every field the results tables report."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PIN_REGIONS = ["left_eye_brow", "right_eye_brow", "glabella_nose", "mouth_left", "mouth_right"]
RUN_FIELDS = {
    "test_accuracy",
    "test_mean_class_accuracy",
    "test_macro_f1",
    "test_nll",
    "test_ece",
    "test_kl_true",
    "test_confidence_error_auroc",
    "test_max_softmax_error_auroc",
    "test_confidence_entropy_spearman",
    "best_accuracy",
    "last5_accuracy",
    "alpha_auroc",
    "pin_train_accuracy",
    "achieved_noise_rate",
}


@pytest.mark.slow
def test_robustness_quick(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "POI_HF_CACHE": str(tmp_path / "cache")}
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "robustness.py"),
        "--quick",
        "--out_dir",
        str(tmp_path / "out"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1500, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(results["aggregates"]) == {"noise30", "single_annotator"}
    for setting, methods in results["runs"].items():
        assert set(methods) == {"ce", "label_smoothing", "scn", "kd", "rul", "eac", "poi"}, setting
        for method, seeds in methods.items():
            row = seeds["seed0"]
            expected = (
                RUN_FIELDS
                - ({"pin_train_accuracy"} if method != "poi" else set())
                - ({"alpha_auroc"} if method not in ("poi", "scn", "rul") else set())
            )
            missing = {name for name in expected if row.get(name) is None}
            assert not missing, (setting, method, missing)
            assert 0.0 <= row["test_accuracy"] <= 1.0
    noise30 = results["aggregates"]["noise30"]["poi"]
    assert noise30["test_accuracy"]["n"] == 1 and {"mean", "std"} <= set(noise30["test_accuracy"])
    assert abs(results["runs"]["noise30"]["ce"]["seed0"]["achieved_noise_rate"] - 0.3) < 0.02
    table = (tmp_path / "out" / "results.md").read_text()
    assert "| noise30 | poi |" in table and "α AUROC" in table
    # what the runs were trained with comes from their own metrics.json, so a merged report still says it
    assert results["hyperparameters"]["noise30"]["poi"]["seed0"]["synfer_train"] == 96
    assert "Runs trained with: dataset synfer, synfer_train 96, image_size 48, epochs 2.0, batch_size 32" in table
    assert (tmp_path / "out" / "accuracy_vs_noise.png").is_file()
    assert (tmp_path / "out" / "alpha_histogram.png").is_file()

    # --report_only trains nothing: it reports the finished runs (seed 0) and skips the missing ones (seed 1)
    for seed, expected_runs in (("1", {}), ("0", results["runs"])):
        report = subprocess.run([*command, "--seeds", seed, "--report_only"], capture_output=True, text=True, env=env)
        assert report.returncode == 0, report.stderr[-3000:]
        assert "run noise30" not in report.stdout
        assert json.loads((tmp_path / "out" / "results.json").read_text())["runs"] == expected_runs
    assert not (tmp_path / "out" / "runs" / "noise30" / "ce" / "seed1").exists()

    # benchmarks/pin_members.py on the finished POI-R run: every member, the aggregations, the trust AUROC
    poi_run = tmp_path / "out" / "runs" / "noise30" / "poi" / "seed0"
    members = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "pin_members.py"),
            str(poi_run),
            "--out",
            str(tmp_path / "pin.json"),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert members.returncode == 0, members.stderr[-3000:]
    (report,) = json.loads((tmp_path / "pin.json").read_text())
    assert list(report["member_accuracy"]) == [*PIN_REGIONS, "global", "au_evidence"]  # train.py's recipe
    probes = ("trn probe of pin_support", "trn probe of pin_support, fitted on unseen faces")
    assert all(0.0 <= report["uncertainty_scores"][name]["error_auroc"] <= 1.0 for name in probes)
    soft = report["aggregations"]["pin soft label"]
    assert 0.0 <= soft["test_accuracy"] <= 1.0 and 0.0 <= soft["trust_auroc_clean_vs_flipped"] <= 1.0
    # PIN's own soft label, re-computed here from the saved PIN, gives the run's recorded trust AUROC
    recorded = results["runs"]["noise30"]["poi"]["seed0"]["alpha_auroc"]
    assert soft["trust_auroc_clean_vs_flipped"] == pytest.approx(recorded, abs=1e-3)

    # benchmarks/teacher_lead.py: PIN vs TRN validation accuracy per epoch, with the transfer weight the run used
    lead = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "teacher_lead.py"), str(poi_run), "--out", str(tmp_path / "l.json")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert lead.returncode == 0, lead.stderr[-3000:]
    (curve,) = json.loads((tmp_path / "l.json").read_text()).values()
    assert [row["epoch"] for row in curve] == [1.0, 2.0]
    best = results["runs"]["noise30"]["poi"]["seed0"]["best_accuracy"]
    assert max(row["trn_accuracy"] for row in curve) == pytest.approx(best)
    # an epoch of 3 steps logs nothing at --logging_steps 20, so it has no weight to show
    assert all(row["transfer_weight"] is None or 0.0 <= row["transfer_weight"] <= 1.0 for row in curve)


def test_settings_name_each_noise_type_and_pass_it_to_train():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import robustness
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    table = robustness.settings([0.0, 0.3], single_annotator=True, noise_type="asymmetric")
    assert table == {
        "asym00": ["--synfer_label_mode", "clean", "--noise_rate", "0.0"],
        "asym30": ["--synfer_label_mode", "clean", "--noise_rate", "0.3", "--noise_type", "asymmetric"],
        "single_annotator": ["--synfer_label_mode", "subjective"],
    }
    assert list(robustness.settings([0.2], single_annotator=False)) == ["noise20"]
    assert robustness.settings([], single_annotator=False) == {}


def results_file(path: Path, seed: int, accuracy: float) -> Path:
    """A results.json as robustness.py writes it, with one noise30 CE run of ``seed``."""
    row = {"test_accuracy": accuracy, "best_accuracy": accuracy - 0.01, "alpha_auroc": None}
    recorded = {"dataset": "synfer", "synfer_train": 96, "image_size": 32, "epochs": 2.0, "batch_size": 32, "bf16": False}
    results = {
        "machine": "test 2 cores",
        "seeds": [seed],
        "command": "python benchmarks/robustness.py --quick",
        "settings": {},
        "runs": {"noise30": {"ce": {f"seed{seed}": row}}},
        "hyperparameters": {"noise30": {"ce": {f"seed{seed}": recorded}}},
        "aggregates": {},
    }
    path.write_text(json.dumps(results))
    return path


def test_merge_aggregates_seeds_trained_apart(tmp_path):
    files = [results_file(tmp_path / f"seed{seed}.json", seed, accuracy) for seed, accuracy in ((0, 0.5), (1, 0.7))]
    command = [sys.executable, str(ROOT / "benchmarks" / "robustness.py"), "--merge", *map(str, files)]
    subprocess.run([*command, "--merged", str(tmp_path / "both.json")], check=True, capture_output=True)
    merged = json.loads((tmp_path / "both.json").read_text())
    assert merged["seeds"] == [0, 1] and set(merged["hyperparameters"]["noise30"]["ce"]) == {"seed0", "seed1"}
    cell = merged["aggregates"]["noise30"]["ce"]["test_accuracy"]
    assert cell == {"mean": pytest.approx(0.6), "std": pytest.approx(0.1), "n": 2}
    assert "| noise30 | ce | 60.0 ± 10.0 | 59.0 ± 10.0 |" in (tmp_path / "both.md").read_text()
    # the same run with other numbers in two files is refused
    results_file(tmp_path / "again.json", 1, 0.8)
    failed = subprocess.run(
        [*command, str(tmp_path / "again.json"), "--merged", str(tmp_path / "bad.json")], capture_output=True, text=True
    )
    assert failed.returncode != 0 and "noise30/ce/seed1 differs from that run in an earlier file" in failed.stderr
