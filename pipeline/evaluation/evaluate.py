"""Scoring a run: each task gathers its predictions over all processes and scores them with the recipe's metrics;
the final evaluation writes every eval split's predictions, then `metrics.json`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader

from pipeline.data.sampling import LengthSortedSampler, example_lengths
from pipeline.evaluation.plots import save_confusion_matrix
from pipeline.recipe.schema import TrainConfig

if TYPE_CHECKING:
    from pipeline.training.experiment import Experiment
    from pipeline.training.run_folder import RunFolder


def evaluate_split(
    exp: Experiment, model: torch.nn.Module, loader: DataLoader
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Metric scores and per-example records for one prepared loader (the task decides what they are)."""
    return exp.task.evaluate(exp.accelerator, model, loader, exp.metrics)


def loader_options(train: TrainConfig) -> dict[str, Any]:
    """Background workers (`train.dataloader_workers`) and, with a GPU, pinned memory for faster copies; and a
    generator of its own, so that starting a loader's iterator never draws from the global RNG (the dropout stream
    a resumed run restores)."""
    return {
        "num_workers": train.dataloader_workers,
        "pin_memory": torch.cuda.is_available(),
        "generator": torch.Generator().manual_seed(train.seed),
    }


def eval_loader(exp: Experiment, split: str) -> DataLoader:
    """Batches of an eval split, longest first (least padding); `loader.sampler.order` maps them back."""
    data = exp.splits[split]
    sampler = LengthSortedSampler(example_lengths(data))
    return DataLoader(
        data,
        batch_size=exp.recipe.eval.batch_size,
        sampler=sampler,
        collate_fn=exp.collator,
        **loader_options(exp.recipe.train),
    )


def in_data_order(records: list[dict[str, Any]], order: list[int]) -> list[dict[str, Any]]:
    """Records of examples evaluated in `order` (dataset indices), back in the data's order, indexed by it."""
    placed: list[dict[str, Any]] = [{}] * len(order)
    for record, index in zip(records, order, strict=True):
        placed[index] = {**record, "index": index}
    return placed


def evaluate_all_splits(
    exp: Experiment, model: torch.nn.Module
) -> dict[str, tuple[dict[str, float], list[dict[str, Any]]]]:
    """Scores and records (in the data's order) for every split named in `eval.splits`."""
    results = {}
    for split in exp.recipe.eval.splits:
        loader = eval_loader(exp, split)
        scores, records = evaluate_split(exp, model, exp.accelerator.prepare_data_loader(loader))
        results[split] = scores, in_data_order(records, loader.sampler.order)
    return results


def readable(records: list[dict[str, Any]], rows: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Each record with what a reader needs of its row (its text or words) in front; rows are in record order."""
    if rows is None:
        return records
    return [{**row, **record} for row, record in zip(rows, records, strict=True)]


def write_final_evaluation(exp: Experiment, model: torch.nn.Module, run: RunFolder, summary: dict[str, Any]) -> None:
    """Predictions (and, for classification, a confusion matrix) for every eval split, then `metrics.json`
    (written last: it marks a finished run). The first split's scores are also the last step's evaluation line of
    `log.jsonl` (the training loop leaves that evaluation to this one rather than run it twice)."""
    results = evaluate_all_splits(exp, model)
    first = exp.recipe.eval.splits[0]
    run.log({"step": summary["steps"], "epoch": summary["epochs"] - 1, "split": first, **results[first][0]})
    exp.accelerator.log({f"{first}/{name}": value for name, value in results[first][0].items()}, step=summary["steps"])
    for split, (scores, records) in results.items():
        run.write_jsonl(f"predictions-{split}.jsonl", readable(records, exp.display.get(split)))
        pairs = exp.task.confusion_pairs(records)
        if pairs and run.is_main:
            save_confusion_matrix(pairs, run.path / f"confusion-{split}.png", f"{split}: {len(pairs):,} scored")
        exp.accelerator.print(f"final {split}: " + ", ".join(f"{k}={v:.4f}" for k, v in scores.items() if "/" not in k))
    run.write_json("metrics.json", {**{split: scores for split, (scores, _) in results.items()}, "train": summary})
