"""The recipe's `task` section: the base every task type's section derives from, and the registry of sections.

Each task type owns its section (in its package under `pipeline.tasks`) and registers it here
(`register_section`, called by `pipeline.tasks.registry.register_task`); the recipe schema validates `task` as the
section its `type` names. The recipe stays data: it imports no task code.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import model_validator

from pipeline.errors import did_you_mean
from pipeline.recipe.base import Strict

# What a column must hold, per row: `text` a string (null: an empty text), `label` a string or integer (never
# missing), `number` a number, `label_set` a list of labels (or one string of them, split by a delimiter),
# `words` a list of strings, `tags` a list of strings or integers as long as the words.
ColumnKind = Literal["text", "label", "number", "label_set", "words", "tags"]


class TaskSection(Strict):
    """Base of the task sections: the columns a task reads, each with what it must hold, and all different.

    `metric_inputs`: the kinds of input the task's predictions give metrics (`pipeline.evaluation.metrics`);
    `default_metrics`: what `eval.metrics: null` means (None: chosen from the data when the run starts).
    """

    metric_inputs: ClassVar[tuple[str, ...]]
    default_metrics: ClassVar[list[str] | None]

    def columns(self) -> dict[str, ColumnKind]:
        raise NotImplementedError

    def scored_lengths(self) -> list[int]:
        """Block lengths each eval split is also scored at (language modeling's `task.lengths`; none here)."""
        return []

    def stratify_column(self) -> str | None:
        """The column a holdout is stratified by: the label, where each row has one (None otherwise)."""
        return None

    def check_training(self, train: Any) -> None:
        """Refuse (ValueError, naming the field) training settings this task cannot learn from (`train`: the
        recipe's `TrainConfig`); none by default."""

    @model_validator(mode="after")
    def _distinct_columns(self) -> TaskSection:
        named = [
            (field, column)
            for field, column in self.model_dump().items()
            if field.endswith("_column") and column is not None
        ]
        for i, (field, column) in enumerate(named):
            for other, same in named[:i]:
                if same == column:
                    raise ValueError(
                        f"task.{field} and task.{other} both name column '{column}'; a task cannot read its answer "
                        "from its input"
                    )
        return self


SECTIONS: dict[str, type[TaskSection]] = {}


def register_section(name: str, section: type[TaskSection]) -> None:
    """Make `task: {type: <name>, ...}` validate as `section`."""
    SECTIONS[name] = section


def section_for(type_name: object) -> type[TaskSection]:
    """The section registered for a `task.type`; a ValueError naming the known types otherwise."""
    if type_name in SECTIONS:
        return SECTIONS[type_name]
    if type_name is None:
        raise ValueError(f"{TASK_TYPE_ERROR}required; one of {', '.join(SECTIONS)}")
    raise ValueError(
        f"{TASK_TYPE_ERROR}unknown value {type_name!r}; "
        f"{did_you_mean(str(type_name), SECTIONS) or 'one of ' + ', '.join(SECTIONS)}"
    )


TASK_TYPE_ERROR = "task.type: "  # the recipe reader moves such an error to that field
