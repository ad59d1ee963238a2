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
import yaml
from helpers import make_examples, recipe_dict, write_recipe
from safetensors.torch import load_file

from pipeline.errors import TrainingStopped
from pipeline.experiment.build import build_experiment
from pipeline.experiment.recipes import validate_recipe
from pipeline.training.run import start_run, train_experiment

pytestmark = pytest.mark.slow  # many runs or processes: the full suite (CI) runs them, `-m "not slow"` skips them


def long_recipe(tmp_path: Path, tiny_bert: Path, output_dir: Path) -> Path:
    """Two epochs of 50 steps each over 200 examples, a checkpoint every 5 steps."""
    data = {}
    for split, count, seed in (("train", 200, 0), ("validation", 16, 1)):
        data[split] = str(tmp_path / f"{split}.jsonl")
        Path(data[split]).write_text("".join(json.dumps(row) + "\n" for row in make_examples(count, seed)))
    train = {
        "epochs": 2,
        "max_steps": None,
        "batch_size": 4,
        "save_every_steps": 5,
        "keep_checkpoints": 3,
        "log_every_steps": 1,
    }
    return write_recipe(tmp_path / "r.yaml", recipe_dict(tiny_bert, data, output_dir, train=train))


def pipeline_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", *args]


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, tiny_bert) -> tuple[Path, Path]:
    """An uninterrupted run of the long recipe: (its recipe, its run folder)."""
    folder = tmp_path_factory.mktemp("reference")
    recipe = long_recipe(folder, tiny_bert, folder / "run")
    subprocess.run(pipeline_command("train", str(recipe)), check=True, env=ENV, capture_output=True)
    return recipe, folder / "run"


def interrupt_at_step(recipe: Path, run_dir: Path, step: int, signal_number: int) -> subprocess.CompletedProcess:
    """Start the recipe, send `signal_number` once its log reaches `step`, and wait for it to end."""
    process = subprocess.Popen(
        pipeline_command("train", str(recipe)), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    log = run_dir / "log.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        steps = [json.loads(line).get("step", 0) for line in log.read_text().splitlines()] if log.exists() else []
        if steps and max(steps) >= step:
            break
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be interrupted"
    os.kill(process.pid, signal_number)
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def assert_resumes_to_the_reference(reference_dir: Path, run_dir: Path, recipe: Path) -> dict:
    """--resume, then the same weights, scores and log as the uninterrupted run; returns the train summary."""
    resumed = subprocess.run(
        pipeline_command("train", str(recipe), "--resume"), env=ENV, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stdout
    first, second = (
        load_file(reference_dir / "model" / "model.safetensors"),
        load_file(run_dir / "model" / "model.safetensors"),
    )
    assert first.keys() == second.keys()
    assert all(torch.equal(first[key], second[key]) for key in first), "weights differ"
    metrics = [json.loads((folder / "metrics.json").read_text()) for folder in (reference_dir, run_dir)]
    assert metrics[0]["validation"] == metrics[1]["validation"]

    def without_times(path: Path) -> list[dict]:
        return [
            {k: v for k, v in json.loads(line).items() if k != "elapsed_s"} for line in path.read_text().splitlines()
        ]

    assert without_times(reference_dir / "log.jsonl") == without_times(run_dir / "log.jsonl")
    kept = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert kept == ["step-0000090", "step-0000095", "step-0000100"]  # the newest three, no partial folders
    return metrics[1]["train"]


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path, reference_run):
    reference, reference_dir = reference_run
    killed = write_recipe(
        tmp_path / "k.yaml", {**yaml.safe_load(reference.read_text()), "output_dir": str(tmp_path / "killed")}
    )
    interrupt_at_step(killed, tmp_path / "killed", 33, signal.SIGKILL)  # epoch 1 of 0..1, between checkpoints 30 and 35
    assert not (tmp_path / "killed" / "metrics.json").exists()
    summary = assert_resumes_to_the_reference(reference_dir, tmp_path / "killed", killed)
    assert summary["resumed_from_step"] in (30, 35)


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_saves_a_checkpoint_at_the_next_step_then_resume_matches(tmp_path, reference_run, signal_number):
    reference, reference_dir = reference_run
    stopped = write_recipe(
        tmp_path / "s.yaml", {**yaml.safe_load(reference.read_text()), "output_dir": str(tmp_path / "stopped")}
    )
    result = interrupt_at_step(stopped, tmp_path / "stopped", 33, signal_number)
    assert result.returncode == 128 + signal_number
    last = result.stderr.strip().splitlines()[-1]
    name = signal.Signals(signal_number).name
    assert (
        last.startswith(f"error: stopped by {name} at step ")
        and "continue with `pipeline train RECIPE --resume`" in last
    )
    step = int(last.split(" at step ")[1].split()[0])
    assert (tmp_path / "stopped" / "checkpoints" / f"step-{step:07d}" / "complete.json").is_file()
    summary = assert_resumes_to_the_reference(reference_dir, tmp_path / "stopped", stopped)
    assert summary["resumed_from_step"] == step


def test_resume_refuses_a_changed_recipe(tmp_path, tiny_bert, jsonl_data, capsys):
    from pipeline.cli import main

    path = write_recipe(
        tmp_path / "r.yaml", recipe_dict(tiny_bert, jsonl_data, tmp_path / "run", train={"max_steps": 2})
    )
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
    exp = build_experiment(
        validate_recipe(recipe_dict(tiny_bert, jsonl_data, tmp_path / "run", train={"max_steps": 6}))
    )
    nan_after(exp.model, calls=3)
    with pytest.raises(TrainingStopped, match="non-finite loss or gradient at step 3"):
        train_experiment(exp, start_run(exp.recipe, overwrite=False, resume=False))
    saved = load_file(tmp_path / "run" / "checkpoints" / "step-0000003" / "model" / "model.safetensors")
    assert all(torch.isfinite(tensor).all() for tensor in saved.values())
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_nonfinite_steps_can_be_skipped(tmp_path, tiny_bert, jsonl_data):
    exp = build_experiment(
        validate_recipe(
            recipe_dict(tiny_bert, jsonl_data, tmp_path / "run", train={"max_steps": 4, "on_nonfinite": "skip"})
        )
    )
    nan_after(exp.model, calls=3)
    train_experiment(exp, start_run(exp.recipe, overwrite=False, resume=False))
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert {"step": 3, "epoch": 0, "nonfinite_gradient": True, "action": "skip"} in log
    saved = load_file(tmp_path / "run" / "model" / "model.safetensors")
    assert all(torch.isfinite(tensor).all() for tensor in saved.values())
