"""What a sweep records as it goes: `sweep.json` (the plan and every run's outcome) and one line per run on the
terminal, with an overall progress bar."""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from pipeline.storage import atomic_write_text
from pipeline.sweeps.plan import PlannedRun
from pipeline.sweeps.processes import Outcome


class Manifest:
    """`sweep.json`: the plan and every run's outcome, rewritten (atomically) after each run."""

    def __init__(self, path: Path, plan: dict[str, Any]):
        self.path, self.plan, self.outcomes = path, plan, {}
        self.lock = threading.Lock()
        if path.is_file():  # a rerun keeps what earlier invocations recorded (runs stopped early stay stopped)
            for entry in json.loads(path.read_text()).get("runs", []):
                self.outcomes[(entry["cell"], entry["seed"])] = Outcome(**entry)

    def record(self, outcome: Outcome) -> None:
        with self.lock:
            self.outcomes[(outcome.cell, outcome.seed)] = outcome
            self.write()

    def write(self) -> None:
        atomic_write_text(
            self.path, json.dumps({**self.plan, "runs": [asdict(o) for o in self.outcomes.values()]}, indent=2) + "\n"
        )

    def stopped(self, run: PlannedRun) -> Outcome | None:
        """The earlier outcome of a run the early-stopping rule stopped (it is not resumed), else None."""
        earlier = self.outcomes.get((run.cell.name, run.seed))
        return earlier if earlier is not None and earlier.status == "stopped" else None


def headline(scores: dict[str, Any]) -> str:
    """The first score of the last split, for the progress line."""
    if not scores:
        return ""
    split, values = list(scores.items())[-1]
    name, value = next(iter(values.items()))
    return f"{split} {name}={value:.4f}" if isinstance(value, int | float) else ""


class Progress:
    """One line per run as it starts and ends, an overall bar, and the manifest (in the process that drives the
    sweep)."""

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
        elif outcome.status == "stopped":
            at = outcome.stopped_at or {}
            self.say(
                f"{label}: stopped early at step {at.get('step')} (score {at.get('score')}), after "
                f"{outcome.wall_s:.0f} s"
            )
        else:
            self.say(f"{label}: failed after {outcome.wall_s:.0f} s: {outcome.error}")
        self.manifest.record(outcome)
        self.bar.update(1)
        return outcome

    def close(self) -> None:
        self.bar.close()
