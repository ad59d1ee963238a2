"""Task adapters keyed by the recipe's `task.type`: a new task is one module plus its entry here (and its recipe
section in `pipeline.recipe.tasks`)."""

from __future__ import annotations

from pipeline.families.base import Family
from pipeline.recipe.tasks import LanguageModelingTask, SequenceClassificationTask, TokenClassificationTask
from pipeline.tasks.base import Task
from pipeline.tasks.language_modeling import LanguageModeling
from pipeline.tasks.sequence_classification import SequenceClassification
from pipeline.tasks.token_classification import TokenClassification

TASKS: dict[str, type] = {
    "sequence-classification": SequenceClassification,
    "token-classification": TokenClassification,
    "language-modeling": LanguageModeling,
}


def build_task(cfg: SequenceClassificationTask | TokenClassificationTask | LanguageModelingTask, family: Family) -> Task:
    """The task adapter registered for `cfg.type`, for a model of `family`."""
    return TASKS[cfg.type](cfg, family)
