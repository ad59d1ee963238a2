"""A sweep's plan: the factorial product of the grids, times the seeds; each cell × seed one ordinary run folder,
named readably from its overrides (`token_embeddings=freeze/seed=1`). The whole plan is validated before any run.

Keys joined by `+` in one grid vary together instead of crossing (`model.add_tokens+layers.token_embeddings=
[null, finetune],[{from_data: 100}, {policy: finetune, rows: new}]`): for designs where not every combination is
valid or wanted.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import PipelineError, unusable
from pipeline.experiment.recipes import load_recipe
from pipeline.recipe.io import holds_recipe, read_yaml
from pipeline.recipe.schema import Recipe


@dataclass(frozen=True)
class Cell:
    """One combination of grid values: its overrides (`key=value`, YAML) and its readable name."""

    name: str
    overrides: tuple[str, ...]


@dataclass
class PlannedRun:
    cell: Cell
    seed: int
    output_dir: Path
    recipe: Recipe  # resolved: the recipe, the sweep's own overrides, the cell's, the seed and the output folder

    @property
    def overrides(self) -> list[str]:
        return run_overrides(self.cell, self.seed, self.output_dir)


def run_overrides(cell: Cell, seed: int, folder: Path) -> list[str]:
    """The overrides that make a run of the sweep's recipe this cell × seed (the folder quoted: YAML reads it as
    text)."""
    return [*cell.overrides, f"train.seed={seed}", f"output_dir={json.dumps(str(folder))}"]


def parse_grid(text: str) -> tuple[str, list[Any]]:
    """`KEY=V1,V2,...`: the values are a YAML flow sequence, so one may be a whole mapping (`{policy: replace,
    ...}`)."""
    key, sep, values = text.partition("=")
    if not sep or not key or not values:
        raise PipelineError(f"--grid '{text}' must look like KEY=V1,V2 (e.g. layers.token_embeddings=finetune,freeze)")
    try:
        parsed = read_yaml(f"[{values}]")
    except yaml.YAMLError as error:
        raise unusable(f"--grid '{text}': the values are not valid YAML", error) from None
    if not parsed:
        raise PipelineError(f"--grid '{text}' lists no value")
    joined = key.split("+")
    if len(joined) > 1 and any(not isinstance(value, list) or len(value) != len(joined) for value in parsed):
        raise PipelineError(
            f"--grid '{text}': {len(joined)} keys joined by + vary together, so each value is a list of "
            f"{len(joined)} (e.g. 'a+b=[1, x],[2, y]')"
        )
    return key, parsed


def assignments(key: str, value: Any) -> list[tuple[str, Any]]:
    """A grid value as (key, value) pairs: one, or one per key of keys joined by + (which vary together)."""
    keys = key.split("+")
    return list(zip(keys, value, strict=True)) if len(keys) > 1 else [(key, value)]


def slug(value: Any) -> str:
    """A short, file-name-safe text for a grid value: `freeze`, `replace-sinusoidal`, `0.0001`."""
    if isinstance(value, dict):
        text = "-".join(slug(item) for item in value.values())
    elif isinstance(value, list):
        text = "+".join(slug(item) for item in value)
    else:
        text = str(value).lower() if isinstance(value, bool) else str(value)
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_") or "none"


NAME_LIMIT = 120  # characters of a cell's folder name (file systems allow 255 bytes; the path adds the rest)
NOT_GRID_KEYS = {"train.seed": "use --seeds", "output_dir": "a sweep places each run in --output"}


def check_grid_keys(grids: list[tuple[str, list[Any]]]) -> None:
    """Each recipe key in one grid only, and none that the sweep itself sets."""
    keys = [part for key, _ in grids for part in key.split("+")]
    for key in keys:
        if key in NOT_GRID_KEYS:
            raise PipelineError(f"--grid {key}: not a grid key ({NOT_GRID_KEYS[key]})", field="--grid")
        if keys.count(key) > 1:
            raise PipelineError(f"--grid {key} is given twice; list all its values in one --grid", field="--grid")


def cell_name(pairs: list[tuple[str, Any]]) -> str:
    """A readable, file-name-safe folder name for a cell; a long one is cut and ends in a hash of the whole."""
    name = ",".join(f"{slug(key.rsplit('.', 1)[-1])}={slug(value)}" for key, value in pairs) or "recipe"
    if len(name) > NAME_LIMIT:
        digest = hashlib.sha256(name.encode()).hexdigest()[:12]
        name = f"{name[: NAME_LIMIT - 13]}-{digest}"
    return name


def cells_of(grids: list[tuple[str, list[Any]]]) -> list[Cell]:
    """The factorial product of the grids, in the order the values were given."""
    check_grid_keys(grids)
    cells = []
    for values in itertools.product(*(values for _, values in grids)):
        keys = (key for key, _ in grids)
        pairs = [pair for key, value in zip(keys, values, strict=True) for pair in assignments(key, value)]
        name = cell_name(pairs)
        overrides = tuple(
            f"{key}={yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}"
            for key, value in pairs
        )
        cells.append(Cell(name, overrides))
    names = [cell.name for cell in cells]
    if len(set(names)) != len(names):
        raise PipelineError("two grid cells get the same folder name; give the grid values that differ more plainly")
    return cells


def plan_runs(
    recipe_path: Path, overrides: list[str], cells: list[Cell], seeds: list[int], output: Path
) -> list[PlannedRun]:
    """Every run the sweep may train (cells × seeds), each recipe validated: a bad value is one line naming its cell."""
    runs = []
    for cell in cells:
        for seed in seeds:
            folder = output / cell.name / f"seed={seed}"
            try:
                recipe = load_recipe(recipe_path, [*overrides, *run_overrides(cell, seed, folder)])
            except PipelineError as error:
                raise PipelineError(f"cell {cell.name}: {error}") from None
            runs.append(PlannedRun(cell, seed, folder, recipe))
    return runs


def baseline_cell(cells: list[Cell], baseline: str | None) -> Cell:
    """The cell the others are compared with: the one whose overrides include `baseline` (`KEY=V`), else the first."""
    if baseline is None:
        return cells[0]
    key, _, value = baseline.partition("=")
    wanted = f"{key}={yaml.safe_dump(read_yaml(value), default_flow_style=True).strip().removesuffix('...').strip()}"
    matching = [cell for cell in cells if wanted in cell.overrides]
    if len(matching) != 1:
        raise PipelineError(
            f"--baseline {baseline} names {len(matching)} cells; it must name exactly one (cells: "
            f"{', '.join(c.name for c in cells)})"
        )
    return matching[0]


def run_state(run: PlannedRun) -> str:
    """`finished` (metrics.json, same recipe), `interrupted` (same recipe, unfinished: resume), or `new`."""
    saved = run.output_dir / "recipe.yaml"
    if not saved.is_file():
        return "new"
    if not holds_recipe(saved, run.recipe):
        raise PipelineError(
            f"{run.output_dir} holds a run of another recipe; give the sweep a new --output", field="--output"
        )
    return "finished" if (run.output_dir / "metrics.json").is_file() else "interrupted"
