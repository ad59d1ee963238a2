"""Early stopping for hyper-parameter grids: runs that are clearly worse than the others by their evaluation score
part-way through are stopped, so their compute goes to the runs that matter.

On the `local` backend the rule is the median stopping rule (Golovin et al., "Google Vizier", 2017): at each
evaluation a run whose best score so far is worse than the median of the completed runs' mean scores up to that
step is stopped, once at least `min_completed` runs have completed. On the `ray` backend Ray Tune's ASHA scheduler
decides from the same scores. Either way the scores are the evaluation lines a run writes to its `log.jsonl`
(every `train.eval_every_steps`), read as they appear.

This is for grids of hyper-parameters (which learning rate?), not for seed replicates of a comparison: a stopped
run has no final scores, so it leaves the comparison's intervals, and stopping by score would bias them.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

LOWER_IS_BETTER = ("loss", "perplexity", "mse", "mae")


@dataclass(frozen=True)
class Watched:
    """The score a rule reads: `metric` of the evaluation lines of `split`, and whether higher is better."""

    split: str
    metric: str

    @property
    def mode(self) -> str:
        return "min" if self.metric.endswith(LOWER_IS_BETTER) else "max"

    def better(self, a: float, b: float) -> bool:
        return a < b if self.mode == "min" else a > b


class EvalScores:
    """The (step, score) pairs a run's `log.jsonl` holds for the watched split and metric, read incrementally."""

    def __init__(self, log: Path, watched: Watched):
        self.log, self.watched, self.offset = log, watched, 0

    def new(self) -> list[tuple[int, float]]:
        """The pairs written since the last call (whole lines only: a line being written is read next time)."""
        if not self.log.is_file():
            return []
        with open(self.log, "rb") as handle:
            handle.seek(self.offset)
            chunk = handle.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        pairs = []
        for line in complete.decode("utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            value = record.get(self.watched.metric) if record.get("split") == self.watched.split else None
            if isinstance(value, int | float):
                pairs.append((int(record["step"]), float(value)))
        return pairs


class StoppingRule(Protocol):
    watched: Watched

    def should_stop(self, run: str, step: int, score: float) -> bool: ...
    def completed(self, run: str, scores: list[tuple[int, float]]) -> None: ...


@dataclass
class MedianStopping:
    """The median stopping rule (see the module docstring)."""

    watched: Watched
    min_completed: int = 3
    finished: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    best: dict[str, float] = field(default_factory=dict)

    def completed(self, run: str, scores: list[tuple[int, float]]) -> None:
        """A run that ran to its end: its scores set the median later runs are held to."""
        self.finished[run] = sorted(scores)

    def should_stop(self, run: str, step: int, score: float) -> bool:
        previous = self.best.get(run)
        self.best[run] = score if previous is None or self.watched.better(score, previous) else previous
        means = [
            statistics.fmean(v for s, v in scores if s <= step)
            for scores in self.finished.values()
            if any(s == step for s, _ in scores)
        ]
        if len(means) < self.min_completed:
            return False
        return self.watched.better(statistics.median(means), self.best[run])
