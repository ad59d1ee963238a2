"""A task type, registered once: everything the pipeline knows about one `task.type`.

Its recipe section and prediction record are data (imported with the registry: no torch); its adapter (tokenizing,
the head, evaluation) and its classical baseline are imported only when a run needs them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.evaluation.counts import CountedMetric
from pipeline.recipe.tasks import TaskSection
from pipeline.tasks.records import PredictionRecord

if TYPE_CHECKING:
    from pipeline.recipe.schema import Recipe


@dataclass(frozen=True)
class TaskType:
    """name: the recipe's `task.type`; section: its recipe section; adapter: the `Task` class (a `Lazy`, imported on
    first use); record: its prediction record; compared: the scores a comparison of runs tests, from records (a
    tuple, or a function of the score names the runs reported); classical: a `Lazy` of its classical baselines, a
    function of a recipe, the methods asked for, and (for `frozen-mean`) a function returning the frozen encoder's
    features per split: per method its name, scores per eval split and wall seconds (None: the task has none);
    classical_methods: the methods it knows, each with the module it needs and the extra that installs it (None:
    nothing beyond the core).

    Facts of the task that others read, each said here and nowhere else: pipeline_tag: the Hub's pipeline tag of
    its saved model (the model card's); reads_token_table: its head reads the token table (a tied LM head), so the
    table must stay one table shared by every position."""

    name: str
    section: type[TaskSection]
    adapter: Callable[[], type]
    record: type[PredictionRecord]
    compared: tuple[CountedMetric, ...] | Callable[[set[str]], tuple[CountedMetric, ...]] = ()
    classical: Callable[[], Callable[[Recipe, Sequence[str], Any], list[dict[str, Any]]]] | None = None
    classical_methods: dict[str, tuple[str, str] | None] = field(default_factory=dict)
    pipeline_tag: str = field(kw_only=True)
    reads_token_table: bool = field(default=False, kw_only=True)

    def compared_scores(self, reported: set[str]) -> list[CountedMetric]:
        """The compared scores the runs reported."""
        metrics = self.compared(reported) if callable(self.compared) else self.compared
        return [metric for metric in metrics if metric.name in reported]
