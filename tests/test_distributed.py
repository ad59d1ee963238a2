"""`accelerate launch` with two CPU processes (gloo): one run folder, written once, same split of work."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import recipe_dict, write_recipe


@pytest.mark.skipif(shutil.which("accelerate") is None and not os.path.exists(os.path.join(os.path.dirname(sys.executable), "accelerate")), reason="accelerate CLI not installed")
def test_two_process_launch_writes_one_run_folder(tmp_path, jsonl_data, tiny_bert):
    output_dir = tmp_path / "run"
    recipe = write_recipe(tmp_path / "r.yaml", recipe_dict(tiny_bert, jsonl_data, output_dir, train={"max_steps": 3, "batch_size": 8}))
    launcher = os.path.join(os.path.dirname(sys.executable), "accelerate")
    command = [
        launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
        "--dynamo_backend", "no", "--main_process_port", "29517", "-m", "pipeline", "train", str(recipe),
    ]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    batching = json.loads((output_dir / "batching.json").read_text())
    assert batching["processes"] == 2 and batching["micro_batch_size"] == 4 and batching["accumulation_steps"] == 1
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert metrics["train"]["steps"] == 3
    predictions = (output_dir / "predictions-validation.jsonl").read_text().splitlines()
    assert len(predictions) == 16  # gathered from both ranks, without the padding duplicates
    assert result.stdout.count("run folder:") == 2  # both ranks finish; only rank 0 wrote files
    assert sorted(p.name for p in output_dir.iterdir()) == sorted(
        ["batching.json", "input_layers.json", "log.jsonl", "metrics.json", "model", "parameters.tsv", "predictions-validation.jsonl", "recipe.yaml"]
    )
