"""Loading a recipe: the YAML read and validated against the schema (`pipeline.recipe`), then the checks that need
the registries of families, task types and metrics, all before anything is created. Loading imports no model code:
the registries hold each family's and task type's light spec, and the metric names.

Every problem ends as one `PipelineError` line naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError, did_you_mean
from pipeline.evaluation.metrics import KNOWN_METRICS, is_metric_path, metrics_for
from pipeline.extras import TRACKER_PACKAGES, installed, require
from pipeline.families.registry import family_spec
from pipeline.families.spec import FamilySpec
from pipeline.paths import is_gguf
from pipeline.recipe.io import parse_recipe, read_recipe
from pipeline.recipe.layers import LayersConfig
from pipeline.recipe.positions import FinetunedPositions, PositionPolicy
from pipeline.recipe.schema import Recipe
from pipeline.recipe.variants import either, union_members
from pipeline.tasks.registry import register_built_in_tasks, task_type


def check_metrics(recipe: Recipe) -> None:
    """Every metric is known (or a script the recipe trusts, or `hub:NAME`) and scores what the task predicts."""
    names = recipe.eval.metrics or []
    for name in names:
        if name not in KNOWN_METRICS and not name.startswith("hub:") and not is_metric_path(name):
            raise PipelineError(
                f"unknown metric '{name}'; {did_you_mean(name, KNOWN_METRICS)}known: {', '.join(KNOWN_METRICS)}, or "
                "hub:NAME",
                field="eval.metrics",
            )
    scripts = [name for name in names if name not in KNOWN_METRICS]
    if scripts and not recipe.eval.trust_metric_code:
        raise PipelineError(
            f"metric {scripts[0]!r} is a script that runs code when loaded; set eval.trust_metric_code: true to "
            "allow it",
            field="eval",
        )
    fitting = metrics_for(recipe.task.metric_inputs)
    wrong = [name for name in names if name in KNOWN_METRICS and name not in fitting]
    if wrong:
        raise PipelineError(
            f"{wrong[0]!r} does not apply to {recipe.task.type} (use {', '.join(fitting)})", field="eval.metrics"
        )


def check_family(recipe: Recipe) -> None:
    """The family is registered, and the recipe asks nothing of it that it does not have."""
    try:
        family = family_spec(recipe.model.family)
    except ValueError as error:
        raise PipelineError(str(error), field="model.family") from None
    if family.needs_max_length and recipe.model.max_length is None:
        raise PipelineError(
            f"family {family.name} has no position limit: set model.max_length (truncation, and block length for "
            "language modeling)",
            field="model.max_length",
        )
    objective = getattr(recipe.task, "objective", None)  # a language-modeling section names its objective
    if objective is not None and family.objective != objective:
        hint = (
            f"family {family.name} takes objective: {family.objective}"
            if family.objective
            else f"family {family.name} has no language-modeling objective yet"
        )
        raise PipelineError(f"{objective} does not fit model.family {family.name} ({hint})", field="task.objective")
    check_positions(family, recipe.layers.positions)


def check_positions(family: FamilySpec, policy: PositionPolicy) -> None:
    """A position policy the family takes (each variant says which kinds of positions it applies to)."""
    kind = family.position_kind
    if kind == "none":
        if policy != FinetunedPositions():
            raise PipelineError(f"not applicable to family {family.name} ({family.no_position_table}); remove it",
                                field="layers.positions")  # fmt: skip
        return
    described = "rotates queries and keys instead" if kind == "rotary" else "has a position table"
    if kind not in policy.applies_to:
        takes = either([v.tags["init"] for v in union_members(LayersConfig.model_fields["positions"])
                        if kind in v.applies_to and "init" in v.tags])  # fmt: skip
        what = "replaces a position table" if "table" in policy.applies_to else "applies to rotary decoders"
        raise PipelineError(
            f"init: {policy.tags['init']} {what}; family {family.name} {described} (its positions take init: {takes})",
            field="layers.positions.init",
        )
    stray = policy.fields_not_for(kind)
    if stray:
        raise PipelineError(
            f"{stray[0]} does not apply to init: {policy.tags['init']} on family {family.name}, which {described}",
            field=f"layers.positions.{stray[0]}",
        )


def check_body(recipe: Recipe) -> None:
    """`layers.encoder: lora` needs a family that names its linear layers (or targets given)."""
    if recipe.layers.encoder.needs_default_targets() and not family_spec(recipe.model.family).lora_targets:
        raise PipelineError(
            f"family {recipe.model.family} has no default LoRA targets: name target_modules (its linear layers)",
            field="layers.encoder.target_modules",
        )


def optional_libraries(recipe: Recipe) -> list[tuple[str, str, str]]:
    """(module, feature, field) for every optional library the recipe's features import (each layer variant says
    which it needs)."""
    needs = [
        (need.module, need.feature, ".".join(filter(None, ("layers", name, need.field))))
        for name in LayersConfig.model_fields
        for need in getattr(recipe.layers, name).needs()
    ]
    if isinstance(recipe.model.name_or_path, str) and is_gguf(recipe.model.name_or_path):
        needs.append(("gguf", "a .gguf checkpoint", "model.name_or_path"))
    if "tensorboard" in recipe.train.report_to:
        needs.append(("tensorboard", "report_to: tensorboard", "train.report_to"))
    return needs


def check_optional_libraries(recipe: Recipe) -> None:
    """Every optional library the recipe needs is installed (before anything is created), and every tracker."""
    for module, feature, field in optional_libraries(recipe):
        require(module, feature, field)
    for tracker in recipe.train.report_to:
        packages = TRACKER_PACKAGES[tracker]
        if not any(installed(package) for package in packages):
            raise PipelineError(f"{tracker} is not installed (pip install {packages[0]})", field="train.report_to")


def check_task(recipe: Recipe) -> None:
    """What the task type says of itself and the recipe must fit: a head that reads the token table needs one table
    shared by every position."""
    if recipe.layers.token_embeddings.per_position_tables() and task_type(recipe.task.type).reads_token_table:
        raise PipelineError(
            f"per_position gives every position a table of its own, and the {recipe.task.type} head reads the token "
            "table: use a task whose head does not",
            field="layers.token_embeddings.per_position",
        )


def check_recipe(recipe: Recipe) -> Recipe:
    """The checks that need registries (families, task types, metrics) or installed packages; returns the recipe."""
    check_family(recipe)
    check_task(recipe)
    check_metrics(recipe)
    check_body(recipe)
    check_optional_libraries(recipe)
    return recipe


def validate_recipe(raw: Any, source: str = "recipe") -> Recipe:
    """A raw recipe mapping, validated and checked."""
    recipe = parse_recipe(raw, source)
    try:
        return check_recipe(recipe)
    except PipelineError as error:
        raise PipelineError(f"{source}: {error}") from None


def load_recipe(path: str | Path, overrides: Sequence[str] = (), saved: bool = False) -> Recipe:
    """Read a recipe YAML file, apply `key=value` overrides, validate and check it (saved: a run folder's resolved
    recipe, see `pipeline.recipe.io.parse_recipe`)."""
    recipe = read_recipe(path, overrides, saved)
    try:
        return check_recipe(recipe)
    except PipelineError as error:
        raise PipelineError(f"{path}: {error}") from None


register_built_in_tasks()  # the task sections a recipe's `task` validates as, before any recipe is read
