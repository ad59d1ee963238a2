"""`pipeline compare`: the report of a sweep on any set of finished run folders (or sweep folders): runs whose
recipes differ only in seed and folder form one cell, named by the settings in which the cells differ."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.experiment.recipes import load_recipe
from pipeline.recipe.io import flatten, read_yaml
from pipeline.recipe.variants import variant_tag_keys
from pipeline.sweeps.baselines import DEFAULT, check_methods_fit, classical_baselines
from pipeline.sweeps.comparable import check_comparable, distinct_runs
from pipeline.sweeps.plan import slug
from pipeline.sweeps.results import SweepSummary
from pipeline.sweeps.statistics import RunResult
from pipeline.sweeps.summary import load_run, write_summary
from pipeline.sweeps.sweep import check_sweep_output

log = logging.getLogger(__name__)


def collect(paths: list[Path]) -> list[Path]:
    """The finished run folders named by `paths`: a run folder, or a sweep folder (every run its `sweep.json` lists)."""
    folders = []
    for path in paths:
        if (path / "sweep.json").is_file():  # as the sweep's own summary: a run it stopped early stays out
            runs = json.loads((path / "sweep.json").read_text())["runs"]
            folders += [run_folder_in(path, run["output_dir"]) for run in runs if run.get("status") != "stopped"]
        elif (path / "metrics.json").is_file():
            folders.append(path)
        else:
            raise PipelineError(f"'{path}' is neither a finished run folder nor a sweep folder")
    return [folder for folder in dict.fromkeys(folders) if (folder / "metrics.json").is_file()]


def run_folder_in(sweep_folder: Path, recorded: str) -> Path:
    """A run folder of a sweep: under the sweep folder as given (`CELL/seed=N`, the layout every sweep writes),
    whatever working directory the sweep was started from and its `sweep.json` recorded paths against; else the
    path as recorded."""
    recorded_path = Path(recorded)
    inside = sweep_folder / recorded_path.parent.name / recorded_path.name
    return inside if inside.is_dir() else recorded_path


def setting_name(key: str) -> str:
    """A flattened recipe key as a cell name shows it: its section and a trailing `policy` left out
    (`layers.token_embeddings.policy` → `token_embeddings`, `layers.positions.init` → `positions.init`)."""
    return key.split(".", 1)[-1].removesuffix(".policy")


def compare(
    paths: list[Path], output: Path, baseline: Path | None = None, classical: Sequence[str] | None = None
) -> SweepSummary:
    """The summary and plots of any finished runs: runs whose recipes differ only in seed and folder form one cell,
    named by the settings in which the cells differ."""
    check_sweep_output(output, ("summary.json", "sweep.json"))
    folders = distinct_runs(collect([*paths, *([baseline] if baseline else [])]))
    if not folders:
        raise PipelineError("no finished run among the folders given")
    check_comparable(folders)
    settings = {}
    for folder in folders:
        recipe = flatten(read_yaml((folder / "recipe.yaml").read_text()))
        settings[folder] = {key: value for key, value in recipe.items() if key not in ("output_dir", "train.seed")}
    differing = differing_settings(list(settings.values()))

    # A setting that is a section (`layers.positions: {policy: replace, init: rope, theta: ...}`) names the cell
    # once, by the values of its differing keys, as a sweep names it: `positions=replace-rope-400000.0`.
    order = {key: i for i, key in enumerate(dict.fromkeys(k for folder in folders for k in settings[folder]))}
    differing = sorted(differing, key=order.__getitem__)  # the recipe's order: `policy` before `init`
    groups = list(dict.fromkeys(".".join(key.split(".")[:2]) for key in differing))

    def name(folder: Path) -> str:
        parts = []
        for group in groups:
            keys = [key for key in differing if key == group or key.startswith(f"{group}.")]
            values = [settings[folder].get(key) for key in keys]
            shown = [value for value in values if value is not None] or [None]
            parts.append(f"{setting_name(group)}={'-'.join(slug(value) for value in shown)}")
        return ",".join(parts) or "runs"

    results: dict[str, list[RunResult]] = {}
    for folder in folders:
        run = load_run(folder, name(folder))
        results.setdefault(run.cell, []).append(run)
    base = name(collect([baseline])[0]) if baseline else next(iter(results))
    return write_summary(results, base, output, compared_baselines(folders[0], classical))


def differing_settings(settings: list[dict[str, Any]]) -> list[str]:
    """The flat recipe keys whose values differ between runs. A key only some runs have is a field of one policy
    variant (`then` of a replaced table): it differs only where it picks the variant (`policy`, `init`...) or where
    two runs that have it disagree, so `finetune` against `replace` with `init: random` is named by those two."""
    tags = variant_tag_keys()
    differing = set()
    for key in {key for setting in settings for key in setting}:
        present = {json.dumps(setting[key], sort_keys=True) for setting in settings if key in setting}
        missing = any(key not in setting for setting in settings)
        if len(present) > 1 or (missing and key.rsplit(".", 1)[-1] in tags):
            differing.add(key)
    return sorted(differing)


def compared_baselines(folder: Path, classical: Sequence[str] | None) -> list[dict[str, Any]]:
    """The classical rows of a comparison, on the data of the first run's recipe. Only these need the data: none
    asked, the recipe is not even read; by default (`classical` None) they are left out with one warning where the
    data is gone (run folders received from someone else), and asked for by name, a missing file is an error."""
    if classical is not None and not classical:
        return []
    try:
        recipe = load_recipe(folder / "recipe.yaml", saved=True)
    except PipelineError as error:
        if classical is not None:
            raise
        log.warning("classical rows left out (--no-baseline to say so): %s", error)
        return []
    check_methods_fit(recipe, classical or ())
    return classical_baselines(recipe, DEFAULT if classical is None else classical)
