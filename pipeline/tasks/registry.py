"""Task adapters keyed by the recipe's `task.type`: a new task is one module plus its entry here (and its recipe
section in `pipeline.recipe.tasks`)."""

from __future__ import annotations

from pipeline.families.base import Family
from pipeline.recipe.schema import Recipe
from pipeline.tasks.base import Task
from pipeline.tasks.language_modeling import LanguageModeling
from pipeline.tasks.multi_label import MultiLabel
from pipeline.tasks.regression import Regression
from pipeline.tasks.sequence_classification import SequenceClassification
from pipeline.tasks.token_classification import TokenClassification

TASKS: dict[str, type] = {
    "sequence-classification": SequenceClassification,
    "token-classification": TokenClassification,
    "regression": Regression,
    "multi-label": MultiLabel,
    "language-modeling": LanguageModeling,
}


def build_task(recipe: Recipe, family: Family) -> Task:
    """The task adapter registered for the recipe's `task.type`, for a model of `family`."""
    return TASKS[recipe.task.type](recipe.task, family, recipe.eval)
