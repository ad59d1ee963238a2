"""The end of a run: every eval split scored, its predictions (and, for labels, a confusion matrix) written, the
first split's scores logged as the last step's evaluation, then `metrics.json` (written last: it marks a finished
run)."""

from __future__ import annotations

import time
from typing import Any

import torch

from pipeline.evaluation.plots import position_losses, save_confusion_matrix, save_loss_by_position
from pipeline.experiment.build import Experiment
from pipeline.experiment.data import EncodedData
from pipeline.training.rescore import evaluate_experiment
from pipeline.training.run_folder import RunFolder
from pipeline.training.scoring import readable


def write_final_evaluation(
    exp: Experiment, data: EncodedData, model: torch.nn.Module, run: RunFolder, summary: dict[str, Any]
) -> None:
    """Predictions and scores of every eval split of `data` (the run's: numbered when the feature cache replays the
    body), then `metrics.json` with the training summary. The first split's scores are also the last step's
    evaluation line of `log.jsonl` (the training loop leaves that evaluation to this one rather than run it twice)."""
    started = time.perf_counter()
    results = evaluate_experiment(exp, model, data)
    seconds = time.perf_counter() - started
    examples = sum(len(data.splits[split]) for split in results if split in data.splits)
    summary = summary | {
        "eval_wall_time_s": round(seconds, 2),
        "eval_examples_per_second": round(examples / seconds, 1) if seconds > 0 else None,
        "train_samples_per_second": round(
            summary["steps"] * exp.recipe.train.batch_size / summary["train_wall_time_s"], 1
        )
        if summary.get("train_wall_time_s")
        else None,
    }
    first = exp.recipe.eval.splits[0]
    run.log({"step": summary["steps"], "epoch": summary["epochs"] - 1, "split": first, **results[first][0]})
    exp.accelerator.log({f"{first}/{name}": value for name, value in results[first][0].items()}, step=summary["steps"])
    for split, (scores, records) in results.items():
        run.write_jsonl(f"predictions-{split}.jsonl", readable(records, data.display.get(split), data.examples[split]))
        pairs = [pair for record in records for pair in record.confusion_pairs()]
        if pairs and run.is_main:
            save_confusion_matrix(pairs, run.path / f"confusion-{split}.png", f"{split}: {len(pairs):,} scored")
        series = {
            f"blocks of {length or exp.max_length} tokens": points for length, points in position_losses(scores).items()
        }
        if len(series) > 1 and run.is_main:  # the loss by position at the lengths of `task.lengths`
            save_loss_by_position(series, run.path / f"position-loss-{split}.png", f"{split}: loss by position")
        exp.accelerator.print(f"final {split}: " + ", ".join(f"{k}={v:.4f}" for k, v in scores.items() if "/" not in k))
    run.write_json("metrics.json", {**{split: scores for split, (scores, _) in results.items()}, "train": summary})
