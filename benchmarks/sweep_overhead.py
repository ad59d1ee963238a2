"""Where a sweep's time goes beyond training, before and after the sweep-statistics change, and what `--parallel`
and `--early-stop` save, with the real MiniLM on the Brown genre task (1,500 training sentences, 1 epoch, 2,000
test sentences, scored once at the end: the calibration benchmark's setup).

Parts (each one `pipeline sweep`, the TF-IDF row left out, one CPU thread per run unless said):
  before      the checkout given by `--before` (e.g. a worktree of 39befee, before the change), seeds 0,1
  after       this checkout, the same sweep
  parallel-1  this checkout, seeds 0..3, `--parallel 1` (the run takes both cores)
  parallel-2  this checkout, seeds 0..3, `--parallel 2` (one core each)
  fresh-after, fresh-parallel-1, fresh-parallel-2
              the same, every run a fresh interpreter (`EMBEDLAB_FRESH_PROCESSES=1`) rather than forked from the
              sweep's fork server, which imported the libraries once
  lr-grid     `--grid train.lr=...` (5 rates) on 600 training sentences, 2 epochs, evaluated every 10 steps on the
              validation file (2,000 sentences; test reported), seed 0, with and without `--early-stop asha` (the
              local median stopping rule)
  profile     one `pipeline train` of the setup under cProfile (2 threads): the run's wall time by phase
Per part: the sweep's wall time, and per run its training time (`metrics.json`) and the rest (process start, model
load, tokenising, evaluation, writing), from `sweep.json`'s run wall times where the checkout records them.

Writes `--out` (JSON). Usage:
    git worktree add /tmp/before-21 39befee
    .venv/bin/python benchmarks/sweep_overhead.py --before /tmp/before-21 [--parts ...]
Needs the `examples` extra (MiniLM) and the Brown files in ../shared/data/brown.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from calibration import ONCE, genre_recipe

RATES = "1.0e-5,5.0e-5,2.0e-4,1.0e-3,5.0e-3"
# (phase, file, function) of a run, as cProfile names them; their cumulative times may nest (building the data is
# part of building the experiment), so each is reported against the whole.
PHASES = [
    ("whole run (main)", "cli.py", "main"),
    ("build the experiment", "build.py", "build_experiment"),
    ("  read the data", "data.py", "raw_splits"),
    ("  load tokenizer", "modeling.py", "load_tokenizer"),
    ("  load model", "modeling.py", "build_model"),
    ("  tokenize (or read the encoding cache)", "data.py", "encoded_data"),
    ("  load metrics", "build.py", "build_metrics"),
    ("prepare training (optimizer, Accelerate)", "state.py", "prepare_training"),
    ("train", "loop.py", "fit"),
    ("save the model", "checkpointing.py", "save_model"),
    ("final evaluation, predictions, plots", "final.py", "write_final_evaluation"),
]


def profile(recipe: Path, output: Path) -> dict[str, Any]:
    """One run under cProfile; the cumulative seconds of each phase, and the process's wall time."""
    stats_file = output.parent / "profile.pstats"
    command = [sys.executable, "-m", "cProfile", "-o", str(stats_file), "-m", "pipeline", "train", str(recipe), *ONCE,
               f"output_dir={output}", "--overwrite"]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=output.parent, env={**os.environ, "PYTHONPATH": str(REPO)})
    wall = time.perf_counter() - started
    stats = pstats.Stats(str(stats_file)).stats  # (file, line, function) → (calls, _, own, cumulative, callers)
    phases = {}
    for phase, file, function in PHASES:
        times = [entry[3] for (path, _, name), entry in stats.items() if path.endswith(file) and name == function]
        phases[phase] = round(max(times), 1) if times else None
    return {"process_wall_s": round(wall, 1), "phases_s": phases}


def sweep(checkout: Path, recipe: Path, extra: list[str], output: Path, fresh: bool = False) -> float:
    """`pipeline sweep` of `checkout`'s package in a fresh process; returns its wall time in seconds. fresh: every
    run a fresh interpreter (`EMBEDLAB_FRESH_PROCESSES=1`), not forked from the sweep's fork server."""
    command = [sys.executable, "-m", "pipeline", "sweep", str(recipe), *ONCE, "--output", str(output), "--no-baseline"]
    env = {**os.environ, "PYTHONPATH": str(checkout), "EMBEDLAB_FRESH_PROCESSES": "1" if fresh else "0"}
    started = time.perf_counter()
    subprocess.run([*command, *extra], check=True, cwd=output.parent, env=env)
    return time.perf_counter() - started


def run_times(output: Path) -> list[dict[str, Any]]:
    """Per run folder: training seconds (metrics.json) and, where sweep.json records it, the run's wall seconds."""
    walls = {}
    if (output / "sweep.json").is_file():
        for run in json.loads((output / "sweep.json").read_text()).get("runs", []):
            folder = Path(run["output_dir"])
            walls[f"{folder.parent.name}/{folder.name}"] = run.get("wall_s")
    times = []
    for metrics in sorted(output.glob("*/seed=*/metrics.json")):
        run = f"{metrics.parent.parent.name}/{metrics.parent.name}"
        train = json.loads(metrics.read_text())["train"]
        times.append(
            {
                "run": run,
                "train_s": train["train_wall_time_s"],
                "steps": train["steps"],
                "run_wall_s": walls.get(run),
                "eval_s": train.get("eval_wall_time_s"),
            }  # (the final evaluation; recorded since 2026-12)
        )
    return times


def summarise(wall: float, times: list[dict[str, Any]]) -> dict[str, Any]:
    train = [t["train_s"] for t in times]
    result = {"sweep_wall_s": round(wall, 1), "runs": len(times), "median_train_s": round(statistics.median(train), 1)}
    result["sweep_wall_per_run_s"] = round(wall / len(times), 1)
    result["rest_per_run_s"] = round(wall / len(times) - statistics.mean(train), 1)  # of the sweep's wall time
    outside = [t["run_wall_s"] - t["train_s"] - t["eval_s"] for t in times if t["run_wall_s"] and t["eval_s"]]
    if outside:  # each run's own wall time less its training and final evaluation: start-up, loading, writing
        result["outside_train_and_eval_per_run_s"] = round(statistics.mean(outside), 1)
        result["median_eval_s"] = round(statistics.median(t["eval_s"] for t in times if t["eval_s"]), 1)
    return {**result, "per_run": times}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, help="the checkout before the change (skips `before` if not given)")
    parser.add_argument(
        "--parts", nargs="*", default=["profile", "before", "after", "parallel-1", "parallel-2", "lr-grid"]
    )
    parser.add_argument("--brown", type=Path, default=REPO.parent / "shared" / "data" / "brown")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/embedlab-sweep-overhead"))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results-sweep-overhead.json")
    args = parser.parse_args()
    args.scratch.mkdir(parents=True, exist_ok=True)
    recipe = genre_recipe(args.scratch, args.brown.resolve())
    one_thread = ["--cpus-per-trial", "1"]
    # Early stopping decides on validation scores, never on test: the grid evaluates the Brown validation file first.
    validation = f"data.files.validation={args.brown.resolve() / 'genre-validation.jsonl'}"
    grid = ["--grid", f"train.lr={RATES}", "data.max_train_samples=600", "train.epochs=2",
            "train.eval_every_steps=10", validation, "eval.splits=[validation,test]", "--seeds", "0"]  # fmt: skip
    parts = {
        "before": (args.before, ["--seeds", "0,1", *one_thread]),
        "after": (REPO, ["--seeds", "0,1", *one_thread]),
        "fresh-after": (REPO, ["--seeds", "0,1", *one_thread]),
        "parallel-1": (REPO, ["--seeds", "0,1,2,3", "--parallel", "1"]),
        "parallel-2": (REPO, ["--seeds", "0,1,2,3", "--parallel", "2"]),
        "fresh-parallel-1": (REPO, ["--seeds", "0,1,2,3", "--parallel", "1"]),
        "fresh-parallel-2": (REPO, ["--seeds", "0,1,2,3", "--parallel", "2"]),
        "lr-grid": (REPO, grid),
        "lr-grid-early-stop": (REPO, [*grid, "--early-stop", "asha"]),
    }
    asked = set(args.parts) | ({"lr-grid-early-stop"} if "lr-grid" in args.parts else set())
    chosen = [name for name in parts if name in asked]
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    if "profile" in args.parts:
        results["profile"] = profile(recipe, args.scratch / "profile-run")
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(results["profile"], indent=1), flush=True)
    for name in chosen:
        checkout, extra = parts[name]
        if checkout is None:
            continue
        output = args.scratch / name
        shutil.rmtree(output, ignore_errors=True)  # a sweep skips the runs it finds finished
        wall = sweep(checkout.resolve(), recipe, extra, output, fresh=name.startswith("fresh-"))
        results[name] = summarise(wall, run_times(output))
        results[name]["command_extra"] = " ".join(extra)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"{name}: {wall:.0f} s, {results[name]['rest_per_run_s']} s per run beyond training", flush=True)


if __name__ == "__main__":
    main()
