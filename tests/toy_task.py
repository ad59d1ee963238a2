"""A task type defined outside the package, as a user would: `keyword-spotting`, does a text contain a word?

The label comes from the text itself (no label column): the section names the keyword. Registered on import, so a
test imports it, and `EMBEDLAB_PLUGINS=toy_task` makes every run process of a sweep import it too.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from datasets import Dataset, DatasetDict
from pydantic import Field
from transformers import AutoModelForSequenceClassification

from pipeline.evaluation.loop import gathered_outputs
from pipeline.evaluation.metrics import compute_all
from pipeline.lazy import Lazy
from pipeline.recipe.tasks import ColumnKind, TaskSection
from pipeline.tasks.base import LabelledTask, require_columns
from pipeline.tasks.registry import register_task
from pipeline.tasks.sequence_classification.records import COMPARED, ClassificationRecord
from pipeline.tasks.task_type import TaskType

LABELS = ["absent", "present"]


class KeywordSpottingTask(TaskSection):
    type: Literal["keyword-spotting"] = Field(description="Does the text contain `keyword`?")
    text_column: str = Field("text", description="Column holding the text.")
    keyword: str = Field(min_length=1, description="The word to spot (whole words, as split on spaces).")

    metric_inputs: ClassVar[tuple[str, ...]] = ("classes",)
    default_metrics: ClassVar[list[str] | None] = ["accuracy"]

    def columns(self) -> dict[str, ColumnKind]:
        return {self.text_column: "text"}


class KeywordSpotting(LabelledTask):
    """The adapter: the label of a text is whether its words include the keyword."""

    auto_class = AutoModelForSequenceClassification
    labels_per_token = False

    def __init__(self, cfg: KeywordSpottingTask, family: Any, eval_cfg: Any):
        super().__init__()
        self.cfg = cfg

    def check_columns(self, splits: DatasetDict) -> None:
        require_columns(splits, {"task.text_column": self.cfg.text_column})

    def texts(self, split: Dataset) -> list[str]:
        return [str(text) for text in split[self.cfg.text_column]]

    def display_rows(self, split: Dataset) -> list[dict[str, Any]]:
        return [{"text": text} for text in self.texts(split)]

    def fit_labels(self, train: Dataset) -> None:
        self.labels = list(LABELS)

    def reserved_tokens(self, tokenizer: Any) -> int:
        return tokenizer.num_special_tokens_to_add(pair=False)

    def encode(self, split, tokenizer, max_length, name, token_features, for_training=False):
        texts = self.texts(split)
        encoded = Dataset.from_dict(dict(tokenizer(texts, truncation=True, max_length=max_length)))
        labels = [int(self.cfg.keyword in text.split()) for text in texts]
        return encoded.add_column("labels", labels), {"examples": len(texts), "empty_texts": 0, "truncated": 0}

    def evaluate(self, accelerator, model, loader, metrics):
        predictions, references = [], []
        for logits, labels in gathered_outputs(
            accelerator, model, loader, lambda batch, out: (out.logits, batch["labels"])
        ):
            predictions += logits.argmax(dim=-1).tolist()
            references += labels.tolist()
        records = [
            ClassificationRecord(i, LABELS[g], LABELS[p], [])
            for i, (g, p) in enumerate(zip(references, predictions, strict=True))
        ]
        return compute_all(metrics, "classes", predictions, references), records


TASK = register_task(
    TaskType(
        "keyword-spotting",
        KeywordSpottingTask,
        Lazy("toy_task:KeywordSpotting"),
        ClassificationRecord,
        COMPARED,
        pipeline_tag="text-classification",
    )
)
