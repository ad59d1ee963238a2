"""`pipeline sweep` and `pipeline compare`: run a grid of cells × seeds, then report what differs and whether it is
real; or report on any set of finished run folders."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.recipe.io import flatten, read_yaml
from pipeline.sweeps.classical import classical_baseline
from pipeline.sweeps.plan import baseline_cell, plan_sweep, slug
from pipeline.sweeps.runner import Manifest, run_all
from pipeline.sweeps.statistics import RunResult
from pipeline.sweeps.summary import load_run, write_summary


def sweep(recipe: Path, overrides: list[str], grids: list[str], seeds: list[int], output: Path, baseline: str | None = None,
          backend: str = "local", ray_address: str | None = None, gpus_per_trial: float = 0, cpus_per_trial: int | None = None,
          classical: bool = True) -> dict[str, Any]:
    """Run every cell × seed (skipping finished runs, resuming interrupted ones), then write the summary and plots
    into `output`; returns the summary. A run that fails is recorded in `sweep.json` and the others go on."""
    runs = plan_sweep(recipe, overrides, grids, seeds, output)
    cells = list(dict.fromkeys(run.cell for run in runs))
    base = baseline_cell(cells, baseline)
    plan = {"recipe": str(recipe), "overrides": overrides, "grid": grids, "seeds": seeds, "baseline": base.name,
            "cells": {cell.name: list(cell.overrides) for cell in cells}, "backend": backend}
    manifest_path = output / "sweep.json"
    if manifest_path.is_file():
        previous = json.loads(manifest_path.read_text())
        if {k: previous.get(k) for k in ("recipe", "overrides", "grid", "seeds")} != {k: plan[k] for k in ("recipe", "overrides", "grid", "seeds")}:
            raise PipelineError(f"{output} holds another sweep (sweep.json differs); give a new --output", field="--output")
    output.mkdir(parents=True, exist_ok=True)
    threads = cpus_per_trial or os.cpu_count() or 1
    outcomes = run_all(recipe, overrides, runs, Manifest(manifest_path, plan), backend, threads, gpus_per_trial, ray_address)
    results: dict[str, list[RunResult]] = {cell.name: [] for cell in cells}
    for run in runs:
        finished = load_run(run.output_dir, run.cell.name)
        if finished is not None:
            results[run.cell.name].append(finished)
    results = {cell: members for cell, members in results.items() if members}
    if not results:
        raise PipelineError(f"no run of the sweep finished; see {manifest_path}")
    reference = runs[0].recipe
    summary = write_summary(results, base.name, output, classical_baseline(reference) if classical else None)
    failed = [outcome for outcome in outcomes if outcome.status == "failed"]
    summary["failed_runs"] = len(failed)
    if failed:
        raise PipelineError(f"{len(failed)} of {len(outcomes)} runs failed (first: {failed[0].cell} seed={failed[0].seed}: {failed[0].error}); "
                            f"the summary covers the rest; see {manifest_path}, and run the sweep again to retry them")
    return summary


def collect(paths: list[Path]) -> list[Path]:
    """The finished run folders named by `paths`: a run folder, or a sweep folder (every run its `sweep.json` lists)."""
    folders = []
    for path in paths:
        if (path / "sweep.json").is_file():
            folders += [Path(run["output_dir"]) for run in json.loads((path / "sweep.json").read_text())["runs"]]
        elif (path / "metrics.json").is_file():
            folders.append(path)
        else:
            raise PipelineError(f"'{path}' is neither a finished run folder nor a sweep folder")
    return [folder for folder in dict.fromkeys(folders) if (folder / "metrics.json").is_file()]


def setting_name(key: str) -> str:
    """A flattened recipe key as a cell name shows it: its section and a trailing `policy` left out
    (`layers.token_embeddings.policy` → `token_embeddings`, `layers.positions.init` → `positions.init`)."""
    return key.split(".", 1)[-1].removesuffix(".policy")


def compare(paths: list[Path], output: Path, baseline: Path | None = None, classical: bool = True) -> dict[str, Any]:
    """The summary and plots of any finished runs: runs whose recipes differ only in seed and folder form one cell,
    named by the settings in which the cells differ."""
    folders = collect([*paths, *([baseline] if baseline else [])])
    if not folders:
        raise PipelineError("no finished run among the folders given")
    settings = {}
    for folder in folders:
        recipe = flatten(read_yaml((folder / "recipe.yaml").read_text()))
        settings[folder] = {key: value for key, value in recipe.items() if key not in ("output_dir", "train.seed")}
    differing = sorted({key for s in settings.values() for key in s if len({json.dumps(t.get(key), sort_keys=True) for t in settings.values()}) > 1})
    def name(folder: Path) -> str:
        return ",".join(f"{setting_name(key)}={slug(settings[folder].get(key))}" for key in differing) or "runs"
    results: dict[str, list[RunResult]] = {}
    for folder in folders:
        run = load_run(folder, name(folder))
        results.setdefault(run.cell, []).append(run)
    base = name(collect([baseline])[0]) if baseline else next(iter(results))
    reference = None
    if classical:
        from pipeline.recipe.io import load_recipe

        reference = classical_baseline(load_recipe(folders[0] / "recipe.yaml"))
    return write_summary(results, base, output, reference)
