"""The `ray` backend of `pipeline sweep`: each run is a Ray Tune trial of a grid over the runs, launched as the same
`pipeline train` process the local backend starts (imported only when asked for: Ray is an optional extra).

With early stopping, each trial reports the run's evaluation scores as the run writes them, and Ray Tune's ASHA
scheduler stops the trials it gives up on: the trial's thread ends, and the run gets SIGTERM (it saves a checkpoint
and exits)."""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler

from pipeline.errors import PipelineError, first_line
from pipeline.sweeps.plan import PlannedRun
from pipeline.sweeps.processes import Launch, Outcome, RunProcess, run_environment
from pipeline.sweeps.progress import Progress
from pipeline.sweeps.runner import POLL_SECONDS, already_done
from pipeline.sweeps.stopping import StoppingRule

# What the callbacks drive (a progress bar holds locks, which cannot be pickled) stays in this process, found by a
# key: Ray pickles the tuner's callbacks with its state, and this module's classes pickle by reference.
_DRIVERS: dict[int, tuple[Progress, list[PlannedRun], dict[int, Outcome], dict[int, dict[str, Any]]]] = {}


class ReportToProgress(tune.Callback):
    """Reports each trial's start and outcome to the sweep's progress lines and manifest; a trial the scheduler ended
    before its run finished is recorded as stopped early, at the last score it reported."""

    def __init__(self, key: int):
        self.key = key

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        progress, runs, _, _ = _DRIVERS[self.key]
        progress.start(runs[trial.config["run"]])

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        progress, _, outcomes, last = _DRIVERS[self.key]
        number = trial.config["run"]
        if "outcome" in result:
            outcomes[number] = progress.end(Outcome(**result["outcome"]))
        elif "score" in result:
            last[number] = {"step": result["step"], "score": result["score"]}

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        progress, runs, outcomes, last = _DRIVERS[self.key]
        number = trial.config["run"]
        if number not in outcomes and number in last:
            run = runs[number]
            outcomes[number] = progress.end(
                Outcome(run.cell.name, run.seed, str(run.output_dir), "stopped", stopped_at=last[number])
            )


def trial_function(launch: Launch, runs: list[PlannedRun], watched: Any, driver_directory: str):
    """The function each trial runs: start the run, report its watched scores as they appear, then its outcome."""

    def trial(config: dict[str, Any]) -> None:
        os.chdir(driver_directory)  # Ray starts a trial in its own folder; the recipe's relative paths are the driver's
        process = RunProcess(launch, runs[config["run"]], run_environment(launch.threads), watched)
        # A scheduler reads its metric from every result, the last one too: that carries the last score reported
        # (the worst possible one where the run reported none, e.g. it failed before its first evaluation).
        last = {"score": float("-inf") if watched is None or watched.mode == "max" else float("inf"), "step": 0}
        try:
            while process.process.poll() is None:
                time.sleep(POLL_SECONDS)
                for step, score in process.scores.new() if process.scores else []:
                    last = {"score": score, "step": step}
                    tune.report(last)  # ASHA may end this thread here
            for step, score in process.scores.new() if process.scores else []:  # written as the run ended
                last = {"score": score, "step": step}
            tune.report({"outcome": asdict(process.outcome()), **last})
        finally:
            if process.process.poll() is None:
                process.process.terminate()
                process.process.wait()

    return trial


def connect(address: str | None) -> None:
    """Start or join Ray; a cluster that is not there is one line."""
    # Ray runs its workers at nice 15 by default, to keep them behind the driver; here the trials are the work, and
    # at nice 15 anything else on the machine starves them. Read by a Ray instance this process starts.
    os.environ.setdefault("RAY_worker_niceness", "0")
    try:
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, include_dashboard=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise PipelineError(f"cannot reach Ray at {address} ({first_line(error)})", field="--ray-address") from None


def run_on_ray(
    launch: Launch, runs: list[PlannedRun], progress: Progress, stopping: StoppingRule | None, output: Path
) -> list[Outcome]:
    """Each run as a Ray Tune trial, `launch.threads` CPUs and `launch.gpus_per_trial` GPUs each; outcomes in plan
    order. With `stopping`, ASHA on the watched score stops trials early (the local rule itself is not used)."""
    outcomes: dict[int, Outcome] = {}
    todo = []
    for number, run in enumerate(runs):
        done = already_done(run, progress.manifest)
        if done is None:
            todo.append(number)
        else:
            outcomes[number] = progress.end(done)
    if todo:
        connect(launch.ray_address)
        watched = stopping.watched if stopping is not None else None
        scheduler = (
            ASHAScheduler(metric="score", mode=watched.mode, grace_period=1, reduction_factor=3, max_t=10_000)
            if watched
            else None
        )
        key, last = id(progress), {}
        _DRIVERS[key] = progress, runs, outcomes, last
        trial = trial_function(launch, runs, watched, os.getcwd())
        tuner = tune.Tuner(
            tune.with_resources(trial, {"cpu": launch.threads, "gpu": launch.gpus_per_trial}),
            param_space={"run": tune.grid_search(todo)},
            tune_config=tune.TuneConfig(scheduler=scheduler),
            run_config=tune.RunConfig(
                name="ray-tune",
                storage_path=str((output / ".ray").resolve()),
                verbose=0,
                callbacks=[ReportToProgress(key)],
            ),
        )
        try:
            tuner.fit()
        finally:
            del _DRIVERS[key]
    for number, run in enumerate(runs):  # a trial that died without reporting
        if number not in outcomes:
            outcomes[number] = progress.end(
                Outcome(
                    run.cell.name, run.seed, str(run.output_dir), "failed", error="the Ray trial ended without a result"
                )
            )
    return [outcomes[number] for number in range(len(runs))]
