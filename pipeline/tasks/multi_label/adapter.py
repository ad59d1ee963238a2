"""`multi-label`: any number of labels per text (topics, emotions, tags); one sigmoid per label and a binary
cross-entropy loss; a label is predicted when its probability reaches `task.threshold`."""

from __future__ import annotations

from typing import Any

import torch
from accelerate import Accelerator
from datasets import Dataset
from torch.utils.data import DataLoader

from pipeline.errors import PipelineError
from pipeline.evaluation.loop import gathered_outputs
from pipeline.evaluation.metrics import LoadedMetric, compute_all
from pipeline.tasks.base import Records, Scores
from pipeline.tasks.multi_label.records import MultiLabelRecord
from pipeline.tasks.multi_label.section import MultiLabelTask
from pipeline.tasks.sequence_classification.adapter import SequenceClassification, label_sort_key, logits_and_labels


class MultiLabel(SequenceClassification):
    """A head of one logit per label (`problem_type: multi_label_classification`) on the pooled sequence."""

    cfg: MultiLabelTask

    def label_sets(self, split: Dataset) -> list[list[str]]:
        """Each row's labels: a list (of class names, for a Hub data set's class-label ids), or one string split on
        `task.label_delimiter` (blank parts dropped)."""
        delimiter = self.cfg.label_delimiter
        feature = split.features[self.cfg.label_column]
        names = getattr(getattr(feature, "feature", None), "names", None)  # a list of `ClassLabel`s
        if names is not None:
            return [[names[i] for i in row] for row in split[self.cfg.label_column]]
        sets = []
        for row, value in enumerate(split[self.cfg.label_column], start=1):
            if isinstance(value, str):
                if delimiter is None:
                    raise PipelineError(
                        f"row {row} holds the string {value!r}, not a list of labels; set task.label_delimiter to "
                        "split it",
                        field="task.label_delimiter",
                    )
                sets.append([part.strip() for part in value.split(delimiter) if part.strip()])
            else:
                labels = [str(label) for label in value]
                split_apart = next((label for label in labels if delimiter and delimiter in label), None)
                if split_apart is not None:  # the same label written as a string would be cut in two
                    raise PipelineError(
                        f"row {row}: the label {split_apart!r} contains task.label_delimiter {delimiter!r}, so the "
                        "same label in a string row would be split; choose a delimiter no label contains",
                        field="task.label_delimiter",
                    )
                sets.append(labels)
        return sets

    def fit_labels(self, train: Dataset) -> None:
        """The sorted distinct labels of the train split."""
        self.labels = sorted({label for labels in self.label_sets(train) for label in labels}, key=label_sort_key)
        if not self.labels:
            raise PipelineError("the train split has no labels at all", field="task.label_column")

    def head_kwargs(self) -> dict[str, Any]:
        return {**super().head_kwargs(), "problem_type": "multi_label_classification"}

    def label_values(self, split: Dataset, name: str) -> list[list[float]]:
        """A 0/1 vector over the labels per row (floats: the loss is binary cross-entropy)."""
        sets = self.label_sets(split)
        self.refuse_unseen({label for labels in sets for label in labels}, name)
        index = {label: i for i, label in enumerate(self.labels)}
        vectors = []
        for labels in sets:
            vector = [0.0] * len(self.labels)
            for label in labels:
                vector[index[label]] = 1.0
            vectors.append(vector)
        return vectors

    def evaluate(
        self, accelerator: Accelerator, model: torch.nn.Module, loader: DataLoader, metrics: list[LoadedMetric]
    ) -> tuple[Scores, Records]:
        """Scores at `task.threshold`, and per example the true and predicted labels and every label's probability."""
        predictions, references, probabilities = [], [], []
        for logits, targets in gathered_outputs(accelerator, model, loader, logits_and_labels):
            chances = logits.sigmoid()  # (batch, num_labels)
            predictions += (chances >= self.cfg.threshold).int().tolist()
            references += targets.int().tolist()
            probabilities += chances.tolist()
        scores = {
            self._label_named(key): value
            for key, value in compute_all(metrics, "label_sets", predictions, references).items()
        }
        records: Records = [
            MultiLabelRecord(
                i,
                self._names(gold),
                self._names(guess),
                {label: round(p, 6) for label, p in zip(self.labels, chances, strict=True)},
            )
            for i, (gold, guess, chances) in enumerate(zip(references, predictions, probabilities, strict=True))
        ]
        return scores, records

    def _label_named(self, key: str) -> str:
        """`per_label/3/f1` (per-label scores come named by index) → `per_label/sport/f1`."""
        parts = key.split("/")
        if len(parts) == 3 and parts[0] == "per_label" and parts[1].isdigit():
            return f"per_label/{self.labels[int(parts[1])]}/{parts[2]}"
        return key

    def _names(self, vector: list[int]) -> list[str]:
        return [label for label, on in zip(self.labels, vector, strict=True) if on]
