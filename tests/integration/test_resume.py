"""Checkpoints and resume: atomic, checked, pruned; SIGKILL mid-epoch then --resume ends bit-identical to an
uninterrupted run; a non-finite loss stops (after saving) or is skipped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from helpers import make_examples, recipe_dict, write_recipe
from pipeline.errors import TrainingStopped
from pipeline.recipe.io import parse_recipe
from pipeline.training.experiment import setup
from pipeline.training.run import train_experiment


def long_recipe(tmp_path: Path, tiny_bert: Path, output_dir: Path) -> Path:
    """Two epochs of 50 steps each over 200 examples, a checkpoint every 5 steps."""
    data = {}
    for split, count, seed in (("train", 200, 0), ("validation", 16, 1)):
        data[split] = str(tmp_path / f"{split}.jsonl")
        Path(data[split]).write_text("".join(json.dumps(row) + "\n" for row in make_examples(count, seed)))
    train = {"epochs": 2, "max_steps": None, "batch_size": 4, "save_every_steps": 5, "keep_checkpoints": 3, "log_every_steps": 1}
    return write_recipe(tmp_path / "r.yaml", recipe_dict(tiny_bert, data, output_dir, train=train))


def pipeline_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", *args]


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path, tiny_bert):
    reference = long_recipe(tmp_path, tiny_bert, tmp_path / "reference")
    subprocess.run(pipeline_command("train", str(reference)), check=True, env=ENV, capture_output=True)

    killed = write_recipe(tmp_path / "k.yaml", {**__import__("yaml").safe_load(reference.read_text()), "output_dir": str(tmp_path / "killed")})
    process = subprocess.Popen(pipeline_command("train", str(killed)), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / "killed" / "log.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        steps = [json.loads(line).get("step", 0) for line in log.read_text().splitlines()] if log.exists() else []
        if steps and max(steps) >= 33:  # epoch 1 of 0..1, between checkpoints 30 and 35
            break
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "killed" / "metrics.json").exists()

    resumed = subprocess.run(pipeline_command("train", str(killed), "--resume"), env=ENV, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stdout
    first, second = load_file(tmp_path / "reference" / "model" / "model.safetensors"), load_file(tmp_path / "killed" / "model" / "model.safetensors")
    assert first.keys() == second.keys()
    assert all(torch.equal(first[key], second[key]) for key in first), "weights differ"
    metrics = [json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("reference", "killed")]
    assert metrics[0]["validation"] == metrics[1]["validation"]
    assert metrics[1]["train"]["resumed_from_step"] in (30, 35)

    def without_times(path: Path) -> list[dict]:
        return [{k: v for k, v in json.loads(line).items() if k != "elapsed_s"} for line in path.read_text().splitlines()]

    assert without_times(tmp_path / "reference" / "log.jsonl") == without_times(log)
    kept = sorted(p.name for p in (tmp_path / "killed" / "checkpoints").iterdir())
    assert kept == ["step-0000090", "step-0000095", "step-0000100"]  # the newest three, no partial folders


def test_resume_refuses_a_changed_recipe(tmp_path, tiny_bert, jsonl_data, capsys):
    from pipeline.cli import main

    path = write_recipe(tmp_path / "r.yaml", recipe_dict(tiny_bert, jsonl_data, tmp_path / "run", train={"max_steps": 2}))
    assert main(["train", str(path)]) == 0
    assert main(["train", str(path), "--resume", "train.lr=0.5"]) == 2
    assert "resume needs the same recipe" in capsys.readouterr().err


def nan_after(model: torch.nn.Module, calls: int) -> None:
    """Make the classifier's output NaN from its `calls`-th forward on (a stand-in for a diverging run)."""
    seen = {"n": 0}

    def hook(module, inputs, output):
        seen["n"] += 1
        return output * float("nan") if seen["n"] >= calls else output

    model.classifier.register_forward_hook(hook)


def test_nonfinite_loss_stops_after_saving_the_last_good_state(tmp_path, tiny_bert, jsonl_data):
    exp = setup(parse_recipe(recipe_dict(tiny_bert, jsonl_data, tmp_path / "run", train={"max_steps": 6})))
    nan_after(exp.model, calls=3)
    with pytest.raises(TrainingStopped, match="non-finite loss or gradient at step 3"):
        train_experiment(exp, tmp_path / "run")
    saved = load_file(tmp_path / "run" / "checkpoints" / "step-0000003" / "model" / "model.safetensors")
    assert all(torch.isfinite(tensor).all() for tensor in saved.values())
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_nonfinite_steps_can_be_skipped(tmp_path, tiny_bert, jsonl_data):
    exp = setup(parse_recipe(recipe_dict(tiny_bert, jsonl_data, tmp_path / "run", train={"max_steps": 4, "on_nonfinite": "skip"})))
    nan_after(exp.model, calls=3)
    train_experiment(exp, tmp_path / "run")
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert {"step": 3, "epoch": 0, "nonfinite_gradient": True, "action": "skip"} in log
    saved = load_file(tmp_path / "run" / "model" / "model.safetensors")
    assert all(torch.isfinite(tensor).all() for tensor in saved.values())
