"""One run of a sweep as a process: the `pipeline train` command it runs, its environment (threads, GPU), and
what became of it (`Outcome`). Used by both backends (`runner` locally, `ray_backend` in Ray trials)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.sweeps.forkserver import ForkedRun, ForkServer, die_with_parent
from pipeline.sweeps.plan import PlannedRun, run_state
from pipeline.sweeps.stopping import EvalScores, Watched


@dataclass
class Outcome:
    cell: str
    seed: int
    output_dir: str
    status: str  # finished | skipped (finished before) | failed | stopped (by the early-stopping rule)
    wall_s: float = 0.0
    error: str | None = None
    scores: dict[str, Any] = field(default_factory=dict)
    stopped_at: dict[str, Any] | None = None  # the evaluation (step, score) at which the rule stopped the run


@dataclass(frozen=True)
class Launch:
    """How every run of a sweep is started: the recipe and its overrides, threads per run, parallel runs, GPUs."""

    recipe: Path
    overrides: tuple[str, ...]
    threads: int
    parallel: int = 1
    gpus_per_trial: float = 0
    ray_address: str | None = None

    def arguments(self, run: PlannedRun, resume: bool) -> list[str]:
        """What the run gives `pipeline`: `train RECIPE OVERRIDES... [--resume]`."""
        return ["train", str(self.recipe), *self.overrides, *run.overrides, *(["--resume"] if resume else [])]

    def command(self, run: PlannedRun, resume: bool) -> list[str]:
        # -P: the working directory is not put on the import path, so a `pipeline.py` or `tqdm.py` lying in the folder
        # the sweep was started from is never run in place of the package or a library (Python >= 3.11).
        return [sys.executable, "-P", "-m", "pipeline", *self.arguments(run, resume)]


def run_environment(threads: int, gpu: int | None = None) -> dict[str, str]:
    """The same threads for every run, whichever backend starts it: results then agree to the last bit."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "TOKENIZERS_PARALLELISM": "false",
    }
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    return env


class RunProcess:
    """One `pipeline train` process: started, its new evaluation lines read (`scores`, when a score is watched),
    stopped."""

    def __init__(
        self,
        launch: Launch,
        run: PlannedRun,
        env: dict[str, str],
        watched: Watched | None = None,
        server: ForkServer | None = None,
    ):
        self.run, self.started = run, time.perf_counter()
        self.scores = EvalScores(run.output_dir / "log.jsonl", watched) if watched is not None else None
        # Open for the process's life (removed in `outcome`): the run writes its stderr here, not to a pipe that fills.
        self.stderr = tempfile.NamedTemporaryFile(mode="w+", encoding="utf-8", prefix="run-", delete=False)  # noqa: SIM115
        self.stopped_at: dict[str, Any] | None = None
        self.history: list[tuple[int, float]] = []  # the watched scores read so far
        resume = run_state(run) == "interrupted"
        self.process: subprocess.Popen | ForkedRun
        if server is not None:  # forked from the sweep's server, which imported the libraries once
            self.process = server.start(launch.arguments(run, resume), env, self.stderr.name)
        else:
            self.process = subprocess.Popen(
                launch.command(run, resume),
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=self.stderr,
                preexec_fn=die_with_parent if sys.platform.startswith("linux") else None,
            )

    def stop(self, step: int, score: float) -> None:
        """Ask the run to stop (it saves a checkpoint first); remembered as stopped by the rule."""
        if self.stopped_at is None:
            self.stopped_at = {"step": step, "score": score}
            self.process.send_signal(signal.SIGTERM)

    def outcome(self) -> Outcome:
        """Wait for the process; what became of the run."""
        code = self.process.wait()
        wall = round(time.perf_counter() - self.started, 1)
        self.stderr.seek(0)
        lines = [line for line in self.stderr.read().strip().splitlines() if line.strip()]
        self.stderr.close()
        os.unlink(self.stderr.name)
        run = self.run
        base = {
            "cell": run.cell.name,
            "seed": run.seed,
            "output_dir": str(run.output_dir),
            "wall_s": wall,
            "scores": scores_of(run.output_dir),
        }
        # Stopped by the rule even where the run got to its end before the signal took effect: the rule's decision
        # is a function of the scores, the timing is not, and the report must not depend on the timing.
        if self.stopped_at is not None:
            return Outcome(status="stopped", stopped_at=self.stopped_at, **base)
        if code == 0 and (run.output_dir / "metrics.json").is_file():
            return Outcome(status="finished", **base)
        if code == 0:  # a run's last write is metrics.json: exit 0 without it is a run that did not end
            return Outcome(status="failed", error="exited 0 without writing metrics.json (the run did not end)", **base)
        errors = [line for line in lines if line.startswith("error: ")]
        return Outcome(status="failed", error=(errors or lines or [f"exit code {code}"])[-1][:500], **base)


def scores_of(output_dir: Path) -> dict[str, Any]:
    path = output_dir / "metrics.json"
    return (
        {key: value for key, value in json.loads(path.read_text()).items() if key != "train"} if path.is_file() else {}
    )


CONNECT_TIMEOUT_S = 3.0


def check_address(address: str | None) -> None:
    """`--ray-address`: `auto`, or HOST:PORT (optionally `ray://`) where something listens; checked in seconds,
    before any run, so a typo is one line rather than a long wait."""
    if address is None or address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise PipelineError(f"'{address}' is not a Ray address (auto, or HOST:PORT)", field="--ray-address")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise PipelineError(
            f"nothing answers at {host}:{port} ({error.strerror or error}); is the Ray cluster up?",
            field="--ray-address",
        ) from None
