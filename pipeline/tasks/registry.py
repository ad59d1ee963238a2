"""Task types keyed by the recipe's `task.type`: a new task is one package (section, record, adapter) plus its
`register_task` call (for `pipeline sweep`'s run processes, from a module named in `EMBEDLAB_PLUGINS`).

The built-in task types are registered by `register_built_in_tasks`, which whatever reads a recipe calls first
(`pipeline.experiment.recipes`, the reference): importing this module registers nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.errors import did_you_mean
from pipeline.recipe.tasks import register_section
from pipeline.tasks import (
    language_modeling,
    multi_label,
    regression,
    sentence_embedding,
    sequence_classification,
    token_classification,
)
from pipeline.tasks.task_type import TaskType

if TYPE_CHECKING:
    from pipeline.families.base import Family
    from pipeline.recipe.schema import Recipe
    from pipeline.tasks.base import Task

TASK_TYPES: dict[str, TaskType] = {}


def register_task(task: TaskType) -> TaskType:
    """Make `task: {type: <task.name>, ...}` a valid recipe section, trained and compared as `task` says."""
    TASK_TYPES[task.name] = task
    register_section(task.name, task.section)
    return task


BUILT_IN = (
    sequence_classification,
    token_classification,
    regression,
    multi_label,
    language_modeling,
    sentence_embedding,
)


def register_built_in_tasks() -> dict[str, TaskType]:
    """Register the built-in task types (once; a plugin's own registration of a name is kept); returns them all."""
    for package in BUILT_IN:
        if package.TASK.name not in TASK_TYPES:
            register_task(package.TASK)
    return TASK_TYPES


def task_type(name: str) -> TaskType:
    register_built_in_tasks()
    if name in TASK_TYPES:
        return TASK_TYPES[name]
    raise ValueError(f"unknown task type '{name}'; {did_you_mean(name, TASK_TYPES)}one of {', '.join(TASK_TYPES)}")


def build_task(recipe: Recipe, family: Family) -> Task:
    """The adapter of the recipe's `task.type`, for a model of `family`."""
    return task_type(recipe.task.type).adapter()(recipe.task, family, recipe.eval)
