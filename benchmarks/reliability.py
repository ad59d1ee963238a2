"""Reliability benchmark (tiny BERT on CPU, the tests' fixtures):

1. kill and resume: a run SIGKILLed mid-epoch and resumed vs an uninterrupted run (weights, metrics, log);
2. one process vs two (`accelerate launch --multi_gpu --num_processes 2`, gloo), dropout off;
3. a launch whose rank 1 is SIGKILLed: seconds until the launcher exits (median of --repeats).

Usage:  .venv/bin/python benchmarks/reliability.py [--repeats 3] [--out benchmarks/results-reliability.json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import torch
import yaml
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from helpers import make_examples, recipe_dict, save_tiny_bert, write_recipe

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
LAUNCH = [
    str(Path(sys.executable).parent / "accelerate"),
    "launch",
    "--num_machines",
    "1",
    "--mixed_precision",
    "no",
    "--dynamo_backend",
    "no",
]


def write_data(folder: Path, train: int) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, count, seed in (("train", train, 0), ("validation", 16, 1)):
        paths[split] = str(folder / f"{split}.jsonl")
        Path(paths[split]).write_text("".join(json.dumps(row) + "\n" for row in make_examples(count, seed)))
    return paths


def steps_logged(log: Path) -> int:
    return (
        max((json.loads(line).get("step", 0) for line in log.read_text().splitlines()), default=0)
        if log.exists()
        else 0
    )


def weight_difference(a: Path, b: Path) -> tuple[int, int, float]:
    """(identical tensors, all tensors, largest absolute difference) between two saved models."""
    first, second = load_file(a / "model" / "model.safetensors"), load_file(b / "model" / "model.safetensors")
    same = sum(torch.equal(first[k], second[k]) for k in first)
    return same, len(first), max(float((first[k] - second[k]).abs().max()) for k in first)


def kill_and_resume(folder: Path, model: Path) -> dict:
    data = write_data(folder, 200)
    train = {"epochs": 2, "max_steps": None, "batch_size": 4, "save_every_steps": 5, "log_every_steps": 1}
    runs = {name: folder / name for name in ("reference", "killed")}
    recipes = {
        name: write_recipe(folder / f"{name}.yaml", recipe_dict(model, data, path, train=train))
        for name, path in runs.items()
    }
    subprocess.run(
        [sys.executable, "-m", "pipeline", "train", str(recipes["reference"])], check=True, env=ENV, capture_output=True
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "train", str(recipes["killed"])],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while process.poll() is None and steps_logged(runs["killed"] / "log.jsonl") < 33:
        time.sleep(0.02)
    killed_at = steps_logged(runs["killed"] / "log.jsonl")
    process.send_signal(signal.SIGKILL)
    process.wait()
    subprocess.run(
        [sys.executable, "-m", "pipeline", "train", str(recipes["killed"]), "--resume"],
        check=True,
        env=ENV,
        capture_output=True,
    )
    same, total, largest = weight_difference(runs["reference"], runs["killed"])
    metrics = [json.loads((runs[n] / "metrics.json").read_text()) for n in ("reference", "killed")]
    return {
        "killed_after_step": killed_at,
        "resumed_from_step": metrics[1]["train"]["resumed_from_step"],
        "identical_tensors": f"{same}/{total}",
        "max_abs_weight_difference": largest,
        "validation_metrics_equal": metrics[0]["validation"] == metrics[1]["validation"],
    }


def one_vs_two(folder: Path, model: Path) -> dict:
    data = write_data(folder, 48)
    scores, runs = {}, {}
    for processes, port in ((1, 29531), (2, 29532)):
        runs[processes] = folder / f"run-{processes}"
        recipe = write_recipe(
            folder / f"r{processes}.yaml",
            recipe_dict(
                model,
                data,
                runs[processes],
                train={"max_steps": 6, "batch_size": 8},
                layers={"token_embeddings": "freeze"},
            ),
        )
        flags = ["--multi_gpu", "--num_processes", "2"] if processes == 2 else ["--cpu", "--num_processes", "1"]
        subprocess.run(
            [*LAUNCH, *flags, "--main_process_port", str(port), "-m", "pipeline", "train", str(recipe)],
            check=True,
            env=ENV,
            capture_output=True,
        )
        scores[processes] = json.loads((runs[processes] / "metrics.json").read_text())
    same, total, largest = weight_difference(runs[1], runs[2])
    return {
        "validation_one_process": scores[1]["validation"],
        "validation_two_processes": scores[2]["validation"],
        "identical_tensors": f"{same}/{total}",
        "max_abs_weight_difference": largest,
        "frozen_tables_identical_across_processes": scores[2]["train"]["frozen_tables_identical_across_processes"],
    }


def failing_rank(folder: Path, model: Path, port: int) -> float:
    folder.mkdir(parents=True, exist_ok=True)
    data = str(folder / "train.jsonl")
    Path(data).write_text("".join(json.dumps(row) + "\n" for row in make_examples(4000, 0)))
    output_dir = folder / "run"
    recipe = write_recipe(
        folder / "r.yaml",
        recipe_dict(model, {"train": data}, output_dir, train={"epochs": 50, "max_steps": None, "batch_size": 8}),
    )
    launcher = subprocess.Popen(
        [
            *LAUNCH,
            "--multi_gpu",
            "--num_processes",
            "2",
            "--main_process_port",
            str(port),
            "-m",
            "pipeline",
            "train",
            str(recipe),
        ],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while not (output_dir / "log.jsonl").exists():
        time.sleep(0.1)
    worker = next(p for p in psutil.Process(launcher.pid).children(recursive=True) if p.environ().get("RANK") == "1")
    started = time.monotonic()
    worker.send_signal(signal.SIGKILL)
    code = launcher.wait(timeout=300)
    assert code != 0, "the launch did not fail"
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results-reliability.json")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="embedlab-reliability-"))
    model = save_tiny_bert(scratch / "tiny-bert")
    quiet_model = save_tiny_bert(
        scratch / "tiny-bert-nodrop", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
    )
    result = {"kill_and_resume": kill_and_resume(scratch / "resume", model)}
    print(yaml.safe_dump({"kill_and_resume": result["kill_and_resume"]}), flush=True)
    result["one_vs_two_processes"] = one_vs_two(scratch / "ddp", quiet_model)
    print(yaml.safe_dump({"one_vs_two_processes": result["one_vs_two_processes"]}), flush=True)
    exits = [failing_rank(scratch / f"fail-{i}", model, 29540 + i) for i in range(args.repeats)]
    result["failing_rank_exit_s"] = {"median": round(statistics.median(exits), 2), "runs": [round(t, 2) for t in exits]}
    print(yaml.safe_dump({"failing_rank_exit_s": result["failing_rank_exit_s"]}), flush=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
