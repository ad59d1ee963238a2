"""The `ray` backend of `pipeline sweep`: each run is a Ray Tune trial of a grid over the runs, launched as the same
`pipeline train` process the local backend starts (imported only when asked for: Ray is an optional extra)."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import ray
from ray import tune

from pipeline.sweeps.plan import PlannedRun
from pipeline.sweeps.runner import Outcome, Progress, launch, run_environment

# What the callbacks drive (a progress bar holds locks, which cannot be pickled) stays in this process, found by a
# key: Ray pickles the tuner's callbacks with its state, and this module's classes pickle by reference.
_DRIVERS: dict[int, tuple[Progress, list[PlannedRun], dict[int, Outcome]]] = {}


class ReportToProgress(tune.Callback):
    """Reports each trial's start and result to the sweep's progress lines and manifest."""

    def __init__(self, key: int):
        self.key = key

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        progress, runs, _ = _DRIVERS[self.key]
        progress.start(runs[trial.config["run"]])

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        progress, _, outcomes = _DRIVERS[self.key]
        outcomes[trial.config["run"]] = progress.end(Outcome(**result["outcome"]))


def run_on_ray(recipe: Path, overrides: list[str], runs: list[PlannedRun], progress: Progress, threads: int,
               gpus_per_trial: float, address: str | None, output: Path) -> list[Outcome]:
    """Each run as a Ray Tune trial, `threads` CPUs and `gpus_per_trial` GPUs each; outcomes in plan order.

    address: an existing cluster (e.g. "auto"); None starts a local Ray instance."""
    ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, include_dashboard=False)
    env, driver_directory = run_environment(threads), os.getcwd()

    def trial(config: dict[str, Any]) -> None:
        os.chdir(driver_directory)  # Ray starts a trial in its own folder; the recipe's relative paths are the driver's
        tune.report({"outcome": asdict(launch(recipe, overrides, runs[config["run"]], env))})

    outcomes: dict[int, Outcome] = {}
    key = id(progress)
    _DRIVERS[key] = progress, runs, outcomes
    tuner = tune.Tuner(
        tune.with_resources(trial, {"cpu": threads, "gpu": gpus_per_trial}),
        param_space={"run": tune.grid_search(list(range(len(runs))))},
        run_config=tune.RunConfig(name="ray-tune", storage_path=str((output / ".ray").resolve()), verbose=0,
                                  callbacks=[ReportToProgress(key)]),
    )
    try:
        tuner.fit()
    finally:
        del _DRIVERS[key]
    for number, run in enumerate(runs):  # a trial that died without reporting
        if number not in outcomes:
            outcomes[number] = progress.end(Outcome(run.cell.name, run.seed, str(run.output_dir), "failed", error="the Ray trial ended without a result"))
    return [outcomes[number] for number in range(len(runs))]
