"""Two real processes (DDP on CPU through `accelerate launch --multi_gpu`): both ranks train, gradients are
synchronised, and evaluation gathers each sample exactly once."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent


@pytest.mark.slow
def test_two_process_ddp_training(tmp_path):
    env = {
        **os.environ,
        "ACCELERATE_USE_CPU": "1",
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        "29531",
        str(HERE / "ddp_worker.py"),
        str(tmp_path),
        str(tmp_path / "synfer"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=HERE.parent)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]

    reports = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [r["rank"] for r in reports] == [0, 1] and all(r["world_size"] == 2 for r in reports)
    # 64 samples, 8 per device, 2 devices: 4 steps per epoch, 2 epochs
    assert all(r["global_step"] == 8 for r in reports)
    # each evaluation (2 epoch ends + the final one) saw the 37 samples once, not 2 x 19 padded ones
    assert all(r["eval_sizes"] == [37, 37, 37] for r in reports)
    assert reports[0]["eval_accuracy"] == reports[1]["eval_accuracy"]
    first, second = (torch.load(tmp_path / f"rank{rank}.pt", weights_only=True) for rank in (0, 1))
    torch.testing.assert_close(first, second, rtol=0, atol=0)
