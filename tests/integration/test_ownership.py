"""Who may write where: one writer per run folder (two real processes racing), a full disk mid-run (a small tmpfs),
a run folder from someone else that asks to run code, --overwrite through a symbolic link, and a sweep killed and
started again at once."""

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
from helpers import make_examples, recipe_dict, write_jsonl, write_recipe
from safetensors.torch import load_file

from pipeline.cli import main

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}


def pipeline(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", *args]


def recipe(tmp_path: Path, tiny_bert: Path, output: Path, **train) -> Path:
    data = {
        split: write_jsonl(tmp_path / f"{split}.jsonl", make_examples(count, seed))
        for split, count, seed in (("train", 64, 0), ("validation", 16, 1))
    }
    return write_recipe(tmp_path / f"{output.name}.yaml", recipe_dict(tiny_bert, data, output, train=train))


def wait_for(predicate, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def logged_steps(run: Path) -> int:
    log = run / "log.jsonl"
    return len(log.read_text().splitlines()) if log.is_file() else 0


@pytest.mark.slow
def test_two_processes_racing_for_one_run_folder(tmp_path, tiny_bert):
    run = tmp_path / "run"
    path = recipe(tmp_path, tiny_bert, run, max_steps=2000, save_every_steps=5, log_every_steps=1)
    first = subprocess.Popen(pipeline("train", str(path)), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: logged_steps(run) >= 6)
        for extra in (["--resume"], ["--overwrite"]):
            second = subprocess.run(pipeline("train", str(path), *extra), env=ENV, capture_output=True, text=True)
            last = second.stderr.strip().splitlines()[-1]
            assert second.returncode == 2 and f"is in use by process {first.pid} " in last, second.stderr[-500:]
        assert first.poll() is None and (run / "recipe.yaml").is_file()  # the first run and its folder untouched
    finally:
        first.kill()
        first.wait()
    # Killed: the kernel dropped its lock, so the folder can be resumed at once.
    resumed = subprocess.run(pipeline("train", str(path), "--resume", "train.max_steps=12"), env=ENV,
                             capture_output=True, text=True)  # fmt: skip
    assert resumed.returncode == 2 and "the recipe differs" in resumed.stderr  # not the lock: the recipe check


def mount_tmpfs(folder: Path, size: str) -> None:
    folder.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({result.stderr.decode().strip() or 'not permitted'})")


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a tmpfs needs Linux")
def test_a_full_disk_ends_in_one_line_keeps_the_last_checkpoint_and_resume_finishes(tmp_path, tiny_bert):
    reference = tmp_path / "reference"
    subprocess.run(pipeline("train", str(recipe(tmp_path, tiny_bert, reference, max_steps=8, save_every_steps=2))),
                   env=ENV, check=True, capture_output=True)  # fmt: skip
    disk = tmp_path / "disk"
    mount_tmpfs(disk, "700k")  # room for the first checkpoint, not for the second beside it
    try:
        path = recipe(tmp_path, tiny_bert, disk / "run", max_steps=8, save_every_steps=2)
        full = subprocess.run(pipeline("train", str(path)), env=ENV, capture_output=True, text=True)
        errors = [line for line in full.stderr.splitlines() if line.startswith("error: ")]
        assert full.returncode == 2 and len(errors) == 1 and "no space left on the device" in errors[0]
        assert "Traceback" not in full.stderr
        checkpoints = sorted(p.name for p in (disk / "run" / "checkpoints").iterdir())
        assert checkpoints == ["step-0000002"]  # the whole one kept, the partial one gone
        assert (disk / "run" / "checkpoints" / "step-0000002" / "complete.json").is_file()
        subprocess.run(["mount", "-o", "remount,size=20m", str(disk)], check=True)
        resumed = subprocess.run(pipeline("train", str(path), "--resume"), env=ENV, capture_output=True, text=True)
        assert resumed.returncode == 0, resumed.stderr[-1000:]
        first, second = (load_file(folder / "model" / "model.safetensors") for folder in (reference, disk / "run"))
        assert all(torch.equal(first[key], second[key]) for key in first)  # as if the disk had never filled
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=False)


def finished_run(tmp_path: Path, tiny_bert: Path) -> Path:
    run = tmp_path / "run"
    assert main(["train", str(recipe(tmp_path, tiny_bert, run, max_steps=2))]) == 0
    return run


def test_a_run_folder_that_asks_to_run_code_is_refused_unless_the_command_trusts_it(tmp_path, tiny_bert, capsys):
    run = finished_run(tmp_path, tiny_bert)
    forged = yaml.safe_load((run / "recipe.yaml").read_text())
    forged["model"]["trust_remote_code"] = True
    (run / "recipe.yaml").write_text(yaml.safe_dump(forged))
    capsys.readouterr()
    for command in (["eval", str(run)], ["diagnose", str(run)]):
        assert main(command) == 2
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert "asks to run code when loaded (model.trust_remote_code); pass --trust-code" in last
    assert main(["eval", str(run), "--trust-code"]) == 0
    config = json.loads((run / "model" / "config.json").read_text())
    (run / "model" / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModel": "evil.Model"}}))
    forged["model"]["trust_remote_code"] = False
    (run / "recipe.yaml").write_text(yaml.safe_dump(forged))
    assert main(["eval", str(run)]) == 2
    assert "auto_map: the model's own code" in capsys.readouterr().err


def test_overwrite_through_a_symbolic_link_deletes_nothing(tmp_path, tiny_bert, capsys):
    run = finished_run(tmp_path, tiny_bert)
    link = tmp_path / "link"
    link.symlink_to(run)
    before = sorted(p.name for p in run.iterdir())
    path = recipe(tmp_path, tiny_bert, link, max_steps=2)
    assert main(["train", str(path), "--overwrite"]) == 2
    assert "is a symbolic link; --overwrite does not delete through links" in capsys.readouterr().err
    assert sorted(p.name for p in run.iterdir()) == before


@pytest.mark.slow
def test_a_sweep_killed_and_started_again_runs_and_counts_each_run_once(tmp_path, tiny_bert):
    path = recipe(tmp_path, tiny_bert, tmp_path / "unused", max_steps=60, save_every_steps=5, log_every_steps=1)
    output = tmp_path / "sweep"
    command = pipeline("sweep", str(path), "--grid", "train.lr=0.001,0.002", "--seeds", "0", "--output", str(output),
                       "--no-baseline")  # fmt: skip
    first = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = [output / "lr=0.001" / "seed=0", output / "lr=0.002" / "seed=0"]
    wait_for(lambda: logged_steps(runs[0]) >= 12)
    first.send_signal(signal.SIGKILL)  # the parent only: its run gets SIGTERM from the kernel and checkpoints
    first.wait()
    again = subprocess.run(command, env=ENV, capture_output=True, text=True)  # at once: the old run may still be up
    assert again.returncode == 0, again.stderr[-1500:]
    manifest = json.loads((output / "sweep.json").read_text())
    assert sorted((run["cell"], run["seed"], run["status"]) for run in manifest["runs"]) == [
        ("lr=0.001", 0, "finished"),
        ("lr=0.002", 0, "finished"),
    ]
    summary = json.loads((output / "summary.json").read_text())
    assert sorted(cell["n"] for cell in summary["cells"].values()) == [1, 1]
    for run in runs:  # each step trained once: the log has no step twice
        steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
        train_steps = [step for step, line in zip(steps, (run / "log.jsonl").read_text().splitlines(), strict=True)
                       if "loss" in json.loads(line) and "split" not in json.loads(line)]  # fmt: skip
        assert len(train_steps) == len(set(train_steps)) == 60
