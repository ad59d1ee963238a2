"""`pipeline sweep`: run a grid of cells × seeds, then report what differs and whether it is real (`pipeline
compare`, the same report on any finished run folders, is `pipeline.sweeps.compare`)."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.extras import require
from pipeline.locks import LOCK_NAME, folder_lock
from pipeline.recipe.schema import Recipe
from pipeline.sweeps.baselines import DEFAULT, check_methods_fit, classical_baselines
from pipeline.sweeps.intervals import CONFIDENCE
from pipeline.sweeps.plan import Cell, PlannedRun, baseline_cell, cells_of, parse_grid, plan_runs
from pipeline.sweeps.processes import Launch, Outcome, check_address
from pipeline.sweeps.progress import Manifest, Progress
from pipeline.sweeps.results import SweepSummary
from pipeline.sweeps.runner import run_local
from pipeline.sweeps.seeds import SeedPlan, why_stop
from pipeline.sweeps.statistics import RunResult, paired_comparison
from pipeline.sweeps.stopping import MedianStopping, StoppingRule, Watched
from pipeline.sweeps.summary import cell_in_words, load_run, write_summary
from pipeline.training.card import write_model_card
from pipeline.training.run_folder import check_output_location

log = logging.getLogger(__name__)
TEST_SPLIT = "test"


@dataclass(frozen=True)
class SweepOptions:
    """How a sweep runs and reports, beside its recipe, grid and seeds."""

    baseline: str | None = None  # KEY=V naming the cell the others are compared with (default: the first)
    backend: str = "local"  # local | ray
    parallel: int = 1  # runs at once on the local backend (the cores divided between them)
    ray_address: str | None = None
    gpus_per_trial: float = 0
    cpus_per_trial: int | None = None  # threads per run (default: the cores divided by `parallel`)
    classical: tuple[str, ...] | None = None  # the classical rows (tfidf, doc2vec, frozen-mean); None: DEFAULT
    early_stop: str | None = None  # "asha": stop runs that fall behind (median rule locally, ASHA on Ray)
    precision: float | None = None  # auto seeds: also go on while an interval is wider than this

    def threads(self) -> int:
        return self.cpus_per_trial or max(1, (os.cpu_count() or 1) // self.parallel)


@dataclass
class SweepState:
    """The runs planned so far, their outcomes, and per cell its seeds and why it got no more."""

    seeds_of: dict[str, list[int]]
    outcomes: dict[Path, Outcome] = field(default_factory=dict)
    decisions: dict[str, dict[str, Any]] = field(default_factory=dict)


def run_all(
    launch: Launch, runs: list[PlannedRun], manifest: Manifest, backend: str, stopping: StoppingRule | None = None
) -> list[Outcome]:
    """Every run of `runs` on the chosen backend; returns their outcomes in plan order."""
    progress = Progress(runs, manifest)
    try:
        if backend == "ray":
            from pipeline.sweeps.ray_backend import run_on_ray

            return run_on_ray(launch, runs, progress, stopping, manifest.path.parent)
        return run_local(launch, runs, progress, stopping)
    finally:
        progress.close()


def stopping_rule(kind: str | None, seeds: SeedPlan, recipe: Recipe) -> StoppingRule | None:
    """The early-stopping rule `--early-stop` asks for, on the recipe's first eval split and metric."""
    if kind is None:
        return None
    if seeds.auto:
        raise PipelineError(
            "early stopping is for hyper-parameter grids; with --seeds auto it would drop the runs the "
            "intervals need: give fixed seeds",
            field="--early-stop",
        )
    train = recipe.train
    if train.eval_every_steps is None and (train.max_steps is not None or train.epochs == 1):
        raise PipelineError(
            "early stopping reads the scores of evaluations during training: set train.eval_every_steps",
            field="--early-stop",
        )
    return MedianStopping(Watched(decision_split(recipe, "--early-stop"), (recipe.eval.metrics or ["accuracy"])[0]))


def decision_split(recipe: Recipe, option: str) -> str:
    """The split a sweep decides by (early stopping, adaptive seeds): the first evaluated split, which the runs also
    score during training, and never the test split: the test split is reported, not optimised."""
    first = recipe.eval.splits[0]
    if first == TEST_SPLIT:
        raise PipelineError(
            f"{option} decides by the first evaluated split, here '{first}': the test split is reported, never "
            "optimised; put a validation split first (eval.splits: [validation, test]; data.holdout carves one)",
            field=option,
        )
    return first


def finished_results(planned: dict[tuple[str, int], PlannedRun], state: SweepState) -> dict[str, list[RunResult]]:
    """Cell → its finished runs, among the seeds the cell has now (a run the early-stopping rule stopped is left out,
    even if it wrote its scores before the stop took effect)."""
    results: dict[str, list[RunResult]] = {}
    for cell, seeds in state.seeds_of.items():
        for seed in seeds:
            folder = planned[(cell, seed)].output_dir
            outcome = state.outcomes.get(folder)
            if outcome is not None and outcome.status == "stopped":
                continue
            run = load_run(folder, cell)
            if run is not None:
                results.setdefault(cell, []).append(run)
    return results


def add_seeds(
    state: SweepState,
    results: dict[str, list[RunResult]],
    base: str,
    seeds: SeedPlan,
    precision: float | None,
    split: str,
) -> bool:
    """One more seed for every cell whose comparison on `split` (a validation split: `decision_split`) is still
    open (and the baseline, to pair it); True if any."""
    if base not in results:
        return False
    confidence = seeds.confidence(CONFIDENCE)
    grown = False
    for cell, own in state.seeds_of.items():
        if cell == base or cell in state.decisions:
            continue
        comparison = (
            paired_comparison(results.get(cell, []), results[base], split, confidence) if results.get(cell) else {}
        )
        entry = next(iter(comparison.values()), None)
        why = why_stop(entry, len(own), seeds, precision, confidence)
        if why is not None:
            state.decisions[cell] = {
                "seeds": len(own),
                "stopped_because": why,
                "deciding_score": next(iter(comparison), None),
                "deciding_split": split,
                "interval": None if entry is None else [entry.ci_low, entry.ci_high],
                "examples": None if entry is None else entry.examples,
            }
            continue
        own.append(len(own))
        if own[-1] not in state.seeds_of[base]:
            state.seeds_of[base].append(own[-1])
        grown = True
    if not grown:
        state.decisions[base] = {
            "seeds": len(state.seeds_of[base]),
            "stopped_because": "the baseline: as many seeds as the cells compared with it",
        }
    return grown


def check_sweep_output(output: Path, ours: tuple[str, ...] = ("sweep.json",)) -> None:
    """A sweep (or compare) writes only into a folder of its own: not the working directory or a folder above it,
    not a file, not a link, not a folder holding anything but an earlier report of ours (a file of `ours`)."""
    check_output_location(output, "--output")
    if output.is_symlink():
        raise PipelineError(f"'{output}' is a symbolic link; give a folder of its own", field="--output")
    held = sorted(entry.name for entry in output.iterdir() if entry.name != LOCK_NAME) if output.is_dir() else []
    if held and not any((output / name).is_file() for name in ours):
        raise PipelineError(
            f"'{output}' holds files a sweep did not write ({', '.join(held[:3])}{' ...' if len(held) > 3 else ''}); "
            "give a new or empty folder",
            field="--output",
        )


def fixed_seeds(described: Any) -> set[str] | None:
    """The seeds of a fixed seed list as `sweep.json` describes it (`0,1,2`); None for `auto`."""
    return None if not isinstance(described, str) or described.startswith("auto") else set(described.split(","))


def check_same_sweep(manifest_path: Path, plan: dict[str, Any], output: Path) -> None:
    """A sweep folder is continued only by the same sweep: the same recipe, overrides and grid, and the same seeds or
    more of them (seeds added to a finished sweep train only the new runs)."""
    if manifest_path.is_file():
        previous = json.loads(manifest_path.read_text())
        keys = ("recipe", "overrides", "grid")
        before, now = fixed_seeds(previous.get("seeds")), fixed_seeds(plan["seeds"])
        more_seeds = before is not None and now is not None and before <= now
        if {k: previous.get(k) for k in keys} != {k: plan[k] for k in keys} or not (
            previous.get("seeds") == plan["seeds"] or more_seeds
        ):
            raise PipelineError(
                f"{output} holds another sweep (its recipe, grid or seeds differ; adding seeds is allowed); give a new "
                "--output",
                field="--output",
            )


def sweep(
    recipe: Path,
    overrides: list[str],
    grids: list[str],
    seeds: SeedPlan,
    output: Path,
    options: SweepOptions = SweepOptions(),
) -> SweepSummary:
    """Run every cell × seed (skipping finished runs, resuming interrupted ones; with auto seeds, adding seeds where
    the answer is open), then write the summary and plots into `output`; returns the summary. A run that fails is
    recorded in `sweep.json` and the others go on."""
    check_sweep_output(output)
    if options.backend == "ray":
        require("ray", "the ray backend", "--backend")
        check_address(options.ray_address)
    cells = cells_of([parse_grid(grid) for grid in grids])
    planned = {(run.cell.name, run.seed): run for run in plan_runs(recipe, overrides, cells, seeds.every(), output)}
    base = baseline_cell(cells, options.baseline)
    reference = next(iter(planned.values())).recipe
    stopping = stopping_rule(options.early_stop, seeds, reference)
    deciding = decision_split(reference, "--seeds") if seeds.auto else ""  # refused before anything is written
    check_methods_fit(reference, options.classical or ())
    # The classical rows first: they need no run, and one that cannot be computed is refused before any run trains.
    classical = classical_baselines(reference, DEFAULT if options.classical is None else options.classical)
    plan = {
        "recipe": str(recipe),
        "overrides": overrides,
        "grid": grids,
        "seeds": seeds.describe(),
        "baseline": base.name,
        "cells": {cell.name: list(cell.overrides) for cell in cells},
        "backend": options.backend,
    }
    manifest_path = output / "sweep.json"
    check_same_sweep(manifest_path, plan, output)
    output.mkdir(parents=True, exist_ok=True)
    with folder_lock(output, "--output"):  # one sweep in a folder at a time
        launch = Launch(
            recipe, tuple(overrides), options.threads(), options.parallel, options.gpus_per_trial, options.ray_address
        )
        manifest = Manifest(manifest_path, plan)
        manifest.write()  # at once: the folder is this sweep's, even if it is killed before a run ends
        state = SweepState({cell.name: seeds.initial() for cell in cells})
        while True:
            batch = [
                planned[(c, s)]
                for c, own in state.seeds_of.items()
                for s in own
                if planned[(c, s)].output_dir not in state.outcomes
            ]
            for run, outcome in zip(batch, run_all(launch, batch, manifest, options.backend, stopping), strict=True):
                state.outcomes[run.output_dir] = outcome
            results = finished_results(planned, state)
            if not seeds.auto or not add_seeds(state, results, base.name, seeds, options.precision, deciding):
                break
        return report(state, results, base, manifest, classical, seeds)


def report(
    state: SweepState,
    results: dict[str, list[RunResult]],
    base: Cell,
    manifest: Manifest,
    classical: list[dict[str, Any]],
    seeds: SeedPlan,
) -> SweepSummary:
    """The summary of a sweep that ran (and `sweep.json` with each cell's seed decisions); failures raise after it."""
    if not results:
        raise PipelineError(f"no run of the sweep finished; see {manifest.path}")
    stopped = [
        {"cell": o.cell, "seed": o.seed, **(o.stopped_at or {})}
        for o in state.outcomes.values()
        if o.status == "stopped"
    ]
    if state.decisions:
        manifest.plan["seed_decisions"] = state.decisions
        manifest.write()
    summary = write_summary(
        results,
        base.name,
        manifest.path.parent,
        classical,
        confidence=seeds.confidence(CONFIDENCE),
        seed_decisions=state.decisions,
        stopped_early=stopped,
    )
    for cell, members in results.items():  # each run's model card gets its cell's intervals
        lines = cell_in_words(cell, summary.cells[cell], summary, manifest.path.parent)
        for member in members:
            write_model_card(member.folder, lines)
    failed = [outcome for outcome in state.outcomes.values() if outcome.status == "failed"]
    summary.failed_runs = len(failed)
    if failed:
        raise PipelineError(
            f"{len(failed)} of {len(state.outcomes)} runs failed (first: {failed[0].cell} seed={failed[0].seed}: "
            f"{failed[0].error}); "
            f"the summary covers the rest; see {manifest.path}, and run the sweep again to retry them"
        )
    return summary
