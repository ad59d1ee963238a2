"""The `local` backend of `pipeline sweep`: `parallel` runs at a time on this machine, the cores divided between them
(with several GPUs, one run per GPU at a time), each its own `pipeline train` process (so a crash stays in its run;
on Linux forked from a server that imported the libraries once, `pipeline.sweeps.forkserver`), skipped when
finished, resumed when interrupted, recorded with its error when it fails while the others go on. An early-stopping
rule reads each run's evaluation scores from its `log.jsonl` as they are written and stops a run it gives up on
(SIGTERM: the run saves a checkpoint and exits).
"""

from __future__ import annotations

import time

from pipeline.locks import wait_until_free
from pipeline.sweeps import forkserver
from pipeline.sweeps.plan import PlannedRun, run_state
from pipeline.sweeps.processes import Launch, Outcome, RunProcess, run_environment, scores_of
from pipeline.sweeps.progress import Manifest, Progress
from pipeline.sweeps.stopping import EvalScores, StoppingRule

POLL_SECONDS = 0.5
RUN_RELEASE_WAIT_S = 120  # how long a run folder held by another process (a killed sweep's run) is waited for


def already_done(run: PlannedRun, manifest: Manifest) -> Outcome | None:
    """A run that needs no process: stopped early by an earlier invocation (even if it reached its end before the
    stop took effect), or finished before."""
    stopped = manifest.stopped(run)
    if stopped is not None:
        return stopped
    if run_state(run) == "finished":
        return Outcome(run.cell.name, run.seed, str(run.output_dir), "skipped", scores=scores_of(run.output_dir))
    return None


def apply_rule(stopping: StoppingRule, process: RunProcess, finished: bool) -> None:
    """Feed the run's new evaluation scores to the rule; stop the run when it says so, or report a run that ended."""
    key = str(process.run.output_dir)
    for step, score in process.scores.new():
        process.history.append((step, score))
        if not finished and stopping.should_stop(key, step, score):
            process.stop(step, score)
    if finished and process.stopped_at is None and process.process.returncode == 0:
        stopping.completed(key, process.history)


def run_local(
    launch: Launch, runs: list[PlannedRun], progress: Progress, stopping: StoppingRule | None
) -> list[Outcome]:
    """`launch.parallel` runs at a time (one per GPU when several are visible), polled for evaluation lines."""
    gpus = _gpu_count()
    # never more slots than runs: `--parallel` is a bound, not a count to allocate
    slots: list[int | None] = list(range(gpus)) if gpus > 1 else [None] * min(launch.parallel, max(1, len(runs)))
    server = LazyServer(forkserver.wanted())
    try:
        outcomes = _run_slots(launch, runs, progress, stopping, slots, server)
    except BaseException:  # the sweep stops (a signal, an error): its runs get SIGTERM, as when they were its children
        if server.started is not None:
            server.started.process.terminate()  # they die with their parent: each saves a checkpoint and exits
        raise
    if server.started is not None:
        server.started.close()
    return outcomes


class LazyServer:
    """The sweep's fork server, started when the first run that needs training starts (a sweep whose runs are all
    finished imports nothing it does not use)."""

    def __init__(self, wanted: bool):
        self.wanted, self.started = wanted, None

    def get(self) -> forkserver.ForkServer | None:
        if self.wanted and self.started is None:
            self.started = forkserver.ForkServer()
        return self.started


def _run_slots(
    launch: Launch,
    runs: list[PlannedRun],
    progress: Progress,
    stopping: StoppingRule | None,
    slots: list[int | None],
    server: LazyServer,
) -> list[Outcome]:
    pending, active, outcomes = list(runs), {}, {}
    while pending or active:
        while pending and len(active) < len(slots):
            run = pending.pop(0)
            # A run of a sweep that was killed may still be saving its checkpoint: wait for it to let go.
            wait_until_free(run.output_dir, RUN_RELEASE_WAIT_S)
            done = already_done(run, progress.manifest)
            if done is not None:
                if stopping is not None and done.status == "skipped":  # a finished run still sets the median
                    stopping.completed(
                        str(run.output_dir), EvalScores(run.output_dir / "log.jsonl", stopping.watched).new()
                    )
                outcomes[run.output_dir] = progress.end(done)
                continue
            slot = next(s for s in range(len(slots)) if s not in active)
            progress.start(run)
            active[slot] = RunProcess(
                launch, run, run_environment(launch.threads, slots[slot]), stopping and stopping.watched, server.get()
            )
        time.sleep(POLL_SECONDS if active else 0)
        for slot, process in list(active.items()):
            finished = process.process.poll() is not None  # read after the last line the run wrote
            if stopping is not None:
                apply_rule(stopping, process, finished)
            if finished:
                outcomes[process.run.output_dir] = progress.end(process.outcome())
                del active[slot]
    return [outcomes[run.output_dir] for run in runs]


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0
