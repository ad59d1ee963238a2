"""Running a sweep's runs: each one an ordinary `pipeline train` process (so a crash stays in its run), skipped when
finished, resumed when interrupted, recorded with its error when it fails while the others go on.

Backends: `local` runs one run at a time (on a machine with several GPUs, one run per GPU at a time); `ray` runs
them as Ray Tune trials, each with `cpus_per_trial` CPUs and `gpus_per_trial` GPUs, on a local Ray instance or an
existing cluster (`ray_address`). Both run the same command with the same threads, so their results are the same.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from pipeline.errors import PipelineError
from pipeline.sweeps.plan import PlannedRun, run_state


@dataclass
class Outcome:
    cell: str
    seed: int
    output_dir: str
    status: str  # finished | skipped (finished before) | failed
    wall_s: float = 0.0
    error: str | None = None
    scores: dict[str, Any] = field(default_factory=dict)


def command_of(recipe: Path, overrides: list[str], run: PlannedRun, resume: bool) -> list[str]:
    return [sys.executable, "-m", "pipeline", "train", str(recipe), *overrides, *run.overrides, *(["--resume"] if resume else [])]


def execute(command: list[str], env: dict[str, str]) -> tuple[str, float, str | None]:
    """Run one `pipeline train` process; (status, wall seconds, error line)."""
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = round(time.perf_counter() - started, 1)
    if result.returncode == 0:
        return "finished", wall, None
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    return "failed", wall, (errors or lines or [f"exit code {result.returncode}"])[-1][:500]


def scores_of(output_dir: Path) -> dict[str, Any]:
    path = output_dir / "metrics.json"
    return {key: value for key, value in json.loads(path.read_text()).items() if key != "train"} if path.is_file() else {}


def run_environment(threads: int, gpu: int | None = None) -> dict[str, str]:
    """The same threads for every run, whichever backend starts it: results then agree to the last bit."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"}
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    return env


class Manifest:
    """`sweep.json`: the plan and every run's outcome, rewritten (atomically) after each run."""

    def __init__(self, path: Path, plan: dict[str, Any]):
        self.path, self.plan, self.outcomes = path, plan, {}
        self.lock = threading.Lock()

    def record(self, outcome: Outcome) -> None:
        with self.lock:
            self.outcomes[(outcome.cell, outcome.seed)] = outcome
            partial = self.path.with_name(f".{self.path.name}.partial")
            partial.write_text(json.dumps({**self.plan, "runs": [asdict(o) for o in self.outcomes.values()]}, indent=2) + "\n")
            partial.replace(self.path)


def headline(scores: dict[str, Any]) -> str:
    """The first score of the last split, for the progress line."""
    if not scores:
        return ""
    split, values = list(scores.items())[-1]
    name, value = next(iter(values.items()))
    return f"{split} {name}={value:.4f}" if isinstance(value, int | float) else ""


def launch(recipe: Path, overrides: list[str], run: PlannedRun, env: dict[str, str]) -> Outcome:
    """One run, as its folder says: skipped when finished, resumed when interrupted, else trained."""
    state = run_state(run)
    if state == "finished":
        return Outcome(run.cell.name, run.seed, str(run.output_dir), "skipped", scores=scores_of(run.output_dir))
    status, wall, error = execute(command_of(recipe, overrides, run, resume=state == "interrupted"), env)
    return Outcome(run.cell.name, run.seed, str(run.output_dir), status, wall, error, scores_of(run.output_dir))


class Progress:
    """One line per run as it starts and ends, an overall bar, and the manifest (in the process that drives the sweep)."""

    def __init__(self, runs: list[PlannedRun], manifest: Manifest):
        self.numbers = {(run.cell.name, run.seed): number for number, run in enumerate(runs, start=1)}
        self.manifest, self.bar = manifest, tqdm(total=len(runs), desc="sweep", unit="run")

    def say(self, line: str) -> None:
        self.bar.write(line, file=sys.stderr)  # beside the bar, so stdout keeps only the command's result

    def label(self, cell: str, seed: int) -> str:
        return f"[{self.numbers[(cell, seed)]}/{len(self.numbers)}] {cell} seed={seed}"

    def start(self, run: PlannedRun) -> None:
        self.say(f"{self.label(run.cell.name, run.seed)}: starting")

    def end(self, outcome: Outcome) -> Outcome:
        label = self.label(outcome.cell, outcome.seed)
        if outcome.status == "skipped":
            self.say(f"{label}: finished before, skipped")
        elif outcome.status == "finished":
            self.say(f"{label}: finished in {outcome.wall_s:.0f} s, {headline(outcome.scores)}")
        else:
            self.say(f"{label}: failed after {outcome.wall_s:.0f} s: {outcome.error}")
        self.manifest.record(outcome)
        self.bar.update(1)
        return outcome


def run_all(recipe: Path, overrides: list[str], runs: list[PlannedRun], manifest: Manifest, backend: str,
            threads: int, gpus_per_trial: float = 0, ray_address: str | None = None) -> list[Outcome]:
    """Every run of the sweep; returns their outcomes in plan order."""
    progress = Progress(runs, manifest)
    try:
        if backend == "ray":
            if importlib.util.find_spec("ray") is None:
                raise PipelineError("the ray backend needs Ray Tune: pip install 'embedlab[ray]'", field="--backend")
            from pipeline.sweeps.ray_backend import run_on_ray

            return run_on_ray(recipe, overrides, runs, progress, threads, gpus_per_trial, ray_address, manifest.path.parent)
        gpus = _gpu_count()
        if gpus > 1:  # one run per GPU at a time
            free, lock = list(range(gpus)), threading.Lock()

            def on_a_gpu(run: PlannedRun) -> Outcome:
                with lock:
                    gpu = free.pop()
                try:
                    progress.start(run)
                    return progress.end(launch(recipe, overrides, run, run_environment(threads, gpu)))
                finally:
                    with lock:
                        free.append(gpu)

            with ThreadPoolExecutor(max_workers=gpus) as pool:
                return list(pool.map(on_a_gpu, runs))
        outcomes = []
        for run in runs:
            progress.start(run)
            outcomes.append(progress.end(launch(recipe, overrides, run, run_environment(threads))))
        return outcomes
    finally:
        progress.bar.close()


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0
