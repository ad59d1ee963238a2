"""`regression`: one number per text or text pair (e.g. the similarity score of a sentence pair); MSE loss, scored
by Pearson and Spearman correlation, MSE and MAE."""

from __future__ import annotations

from typing import Any

import torch
from accelerate import Accelerator
from datasets import Dataset
from torch.utils.data import DataLoader

from pipeline.evaluation.loop import gathered_outputs
from pipeline.evaluation.metrics import LoadedMetric, compute_all
from pipeline.tasks.base import Records, Scores
from pipeline.tasks.regression.records import RegressionRecord
from pipeline.tasks.sequence_classification.adapter import SequenceClassification, logits_and_labels


class Regression(SequenceClassification):
    """A one-output head (`num_labels: 1`, `problem_type: regression`) on the pooled sequence."""

    def fit_labels(self, train: Dataset) -> None:
        """Nothing to learn: a target is a number (the data checks refused anything else)."""

    def use_labels(self, id2label: dict[int, str]) -> None:
        """Nothing to reuse."""

    def head_kwargs(self) -> dict[str, Any]:
        return {"num_labels": 1, "problem_type": "regression"}

    def label_values(self, split: Dataset, name: str) -> list[float]:
        return [float(value) for value in split[self.cfg.label_column]]

    def evaluate(
        self, accelerator: Accelerator, model: torch.nn.Module, loader: DataLoader, metrics: list[LoadedMetric]
    ) -> tuple[Scores, Records]:
        """Metric scores and one record per example: the true and the predicted value."""
        predictions, references = [], []
        for outputs, targets in gathered_outputs(accelerator, model, loader, logits_and_labels):
            predictions += outputs.squeeze(-1).tolist()  # (batch, 1) → (batch,)
            references += targets.tolist()
        records: Records = [
            RegressionRecord(i, gold, round(value, 6))
            for i, (gold, value) in enumerate(zip(references, predictions, strict=True))
        ]
        return compute_all(metrics, "values", predictions, references), records
