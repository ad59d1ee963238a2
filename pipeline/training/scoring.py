"""Scoring a model on encoded splits: each task gathers its predictions over all processes (`Task.evaluate`) and
scores them with the recipe's metrics. It takes a model, loaders, a task and metrics, never a whole experiment;
what a run writes of the results is `pipeline.training.final`'s."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from accelerate import Accelerator
from datasets import Dataset
from torch.utils.data import DataLoader

from pipeline.data.collate import PadCollator
from pipeline.data.sampling import LengthSortedSampler, example_lengths
from pipeline.evaluation.metrics import LoadedMetric
from pipeline.recipe.schema import TrainConfig
from pipeline.tasks.base import Records, Scores, Task
from pipeline.tasks.records import PredictionRecord


def loader_options(train: TrainConfig) -> dict[str, Any]:
    """Background workers (`train.dataloader_workers`) and, with a GPU, pinned memory for faster copies; and a
    generator of its own, so that starting a loader's iterator never draws from the global RNG (the dropout stream
    a resumed run restores)."""
    return {
        "num_workers": train.dataloader_workers,
        "pin_memory": torch.cuda.is_available(),
        "generator": torch.Generator().manual_seed(train.seed),
    }


def eval_loader(split: Dataset, collator: PadCollator, batch_size: int, train: TrainConfig) -> DataLoader:
    """Batches of an eval split, longest first (least padding); `loader.sampler.order` maps them back."""
    sampler = LengthSortedSampler(example_lengths(split))
    return DataLoader(split, batch_size=batch_size, sampler=sampler, collate_fn=collator, **loader_options(train))


def in_data_order(records: Records, order: list[int]) -> Records:
    """Records of examples evaluated in `order` (dataset indices), back in the data's order, indexed by it."""
    placed: list[PredictionRecord | None] = [None] * len(order)
    for record, index in zip(records, order, strict=True):
        placed[index] = dataclasses.replace(record, index=index)
    return placed  # type: ignore[return-value]


def evaluate_splits(
    task: Task,
    accelerator: Accelerator,
    model: torch.nn.Module,
    loaders: dict[str, DataLoader],
    metrics: list[LoadedMetric],
) -> dict[str, tuple[Scores, Records]]:
    """Scores and records (in the data's order) of each split's loader (`eval_loader`: its sampler's order is
    undone)."""
    results = {}
    for split, loader in loaders.items():
        scores, records = task.evaluate(accelerator, model, accelerator.prepare_data_loader(loader), metrics)
        results[split] = scores, in_data_order(records, loader.sampler.order)
    return results


def at_length(name: str, length: int) -> str:
    """A score's name at an `task.lengths` length: `perplexity` → `perplexity@512`, `loss/positions 0-63` →
    `loss@512/positions 0-63`."""
    head, slash, tail = name.partition("/")
    return f"{head}@{length}{slash}{tail}"


def merge_lengths(results: dict[str, tuple[Scores, Records]]) -> dict[str, tuple[Scores, Records]]:
    """Fold the `SPLIT@LENGTH` evaluations into their split: scores named `NAME@LENGTH`, records marked with their
    block length (after the split's own records)."""
    merged = {name: (dict(scores), list(records)) for name, (scores, records) in results.items() if "@" not in name}
    for name, (scores, records) in results.items():
        if "@" in name:
            split, _, length = name.rpartition("@")
            merged[split][0].update({at_length(key, int(length)): value for key, value in scores.items()})
            merged[split][1].extend(dataclasses.replace(record, length=int(length)) for record in records)
    return merged


def readable(records: Records, rows: list[dict[str, Any]] | None, examples: list[str]) -> list[dict[str, Any]]:
    """Each record as a predictions-file line, with what a reader needs of its row (its text or words) in front,
    and the identity of the example it scores (`examples`: one per row of the split)."""
    rows_of = [record.source_row() for record in records]
    lines = [
        dataclasses.replace(record, example=None if row is None else examples[row]).to_json()
        for record, row in zip(records, rows_of, strict=True)
    ]
    if rows is None:
        return lines
    return [{**row, **line} for row, line in zip(rows, lines, strict=True)]
