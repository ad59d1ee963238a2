"""The training state `fit` runs on: prepared model, optimizer, scheduler and loaders, the step plan, and where
the run stands. Built (`prepare_training`) and, for `--resume`, restored from a checkpoint (`resume_training`)
before the loop starts.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from transformers import get_scheduler

from pipeline.data.sampling import LengthGroupedSampler, example_lengths
from pipeline.errors import PipelineError
from pipeline.experiment.build import Experiment
from pipeline.experiment.data import EncodedData
from pipeline.surgery.policies import unfreeze
from pipeline.training.checkpointing import Progress, load_checkpoint
from pipeline.training.features import CacheUse, use_feature_cache
from pipeline.training.optimizer import build_optimizer
from pipeline.training.parameters import ParameterRow, parameter_rows
from pipeline.training.run_folder import RunFolder
from pipeline.training.scoring import eval_loader, loader_options


@dataclass
class TrainingState:
    """What the loop runs on; `plan` is the run's `batching.json`."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any  # a torch LR scheduler
    train_loader: DataLoader
    eval_loader: DataLoader
    plan: dict[str, int]
    unfreeze_due: dict[int, list[torch.nn.Parameter]]  # optimizer step → parameters that train after it
    parameter_rows: list[ParameterRow]
    cache: CacheUse  # the data trained and evaluated on, and what the feature cache did
    progress: Progress = field(default_factory=Progress)
    resumed_at: int | None = None


def train_loader(exp: Experiment, data: EncodedData) -> DataLoader:
    """Micro-batches of the train split: grouped by length (`train.group_by_length`), or a plain seeded shuffle."""
    train_cfg, split = exp.recipe.train, data.splits[exp.recipe.data.train_split]
    if train_cfg.group_by_length:
        # Grouped by optimizer step (all processes, all accumulated micro-batches): each step sees the same examples
        # whatever the number of processes, as with the plain shuffle.
        order = {"sampler": LengthGroupedSampler(example_lengths(split), train_cfg.batch_size, train_cfg.seed)}
    else:
        order = {"shuffle": True}
    micro = exp.runtime.micro_batch_size
    return DataLoader(split, batch_size=micro, collate_fn=data.collator, **order, **loader_options(train_cfg))


def prepare_training(exp: Experiment) -> TrainingState:
    """Loaders, optimizer (with parameter groups), scheduler and step plan, prepared by Accelerate."""
    acc, recipe, train_cfg = exp.accelerator, exp.recipe, exp.recipe.train
    cache = use_feature_cache(exp)
    first = recipe.eval.splits[0]
    train = train_loader(exp, cache.data)
    evaluation = eval_loader(cache.data.splits[first], cache.data.collator, recipe.eval.batch_size, train_cfg)
    optimizer = build_optimizer(exp.family, exp.model, recipe.layers, train_cfg, exp.scheduled_parameters())
    rows = parameter_rows(exp.family, exp.model, optimizer)
    model, optimizer, train, evaluation = acc.prepare(exp.model, optimizer, train, evaluation)
    steps_per_epoch = math.ceil(len(train) / exp.runtime.accumulation_steps)
    total_steps = train_cfg.max_steps or train_cfg.epochs * steps_per_epoch
    warmup = train_cfg.warmup_steps or round(train_cfg.warmup_ratio * total_steps)
    # Not passed to `prepare`: stepped once per optimizer step, whatever the number of processes.
    scheduler = get_scheduler(train_cfg.scheduler, optimizer, num_warmup_steps=warmup, num_training_steps=total_steps)
    unfreeze_due: dict[int, list[torch.nn.Parameter]] = {}
    for (unit, when), params in exp.unfreeze_schedule.items():
        unfreeze_due.setdefault(when * steps_per_epoch if unit == "epoch" else when, []).extend(params)
    plan = {
        "batch_size": train_cfg.batch_size,
        "micro_batch_size": exp.runtime.micro_batch_size,
        "processes": acc.num_processes,
        "accumulation_steps": exp.runtime.accumulation_steps,
        "steps_per_epoch": steps_per_epoch,
        "total_steps": total_steps,
        "max_length": exp.max_length,
    }
    return TrainingState(model, optimizer, scheduler, train, evaluation, plan, unfreeze_due, rows, cache)


def check_progress_range(progress: Progress, plan: dict[str, Any], batches: int, checkpoint: Path) -> None:
    """Where a checkpoint says the run stands must be a place this run can be: a step within its steps, an epoch
    within its epochs, a position within an epoch's micro-batches (`batches`)."""
    epochs = math.ceil(plan["total_steps"] / plan["steps_per_epoch"])
    bounds = {"step": plan["total_steps"], "epoch": epochs, "batches_in_epoch": batches}
    for name, most in bounds.items():
        if getattr(progress, name) > most:
            raise PipelineError(
                f"checkpoint {checkpoint}: progress.json says {name} {getattr(progress, name)}, past this run's "
                f"{most}; it was not loaded",
                field="--resume",
            )


def resume_training(
    exp: Experiment, state: TrainingState, checkpoint: Path, progress: Progress, run: RunFolder
) -> None:
    """Restore weights, optimizer, scheduler, RNG and sampler states from `checkpoint`, cut the log back to what
    it had seen, and unfreeze what the schedule had unfrozen by then."""
    saved = json.loads((run.path / "batching.json").read_text())
    if any(saved.get(key) != state.plan[key] for key in ("micro_batch_size", "processes")):
        raise PipelineError(
            f"the run was started with {saved['processes']} process(es) × {saved['micro_batch_size']} examples; "
            "resume with the same",
            field="train",
        )
    check_progress_range(progress, state.plan, len(state.train_loader), checkpoint)
    load_checkpoint(exp.accelerator, state.scheduler, checkpoint, progress.step)
    run.truncate_log(progress.log_lines)
    for step_due, params in state.unfreeze_due.items():
        if step_due <= progress.step:
            unfreeze(params)
    state.progress, state.resumed_at = progress, progress.step
    exp.accelerator.print(
        f"resumed from {checkpoint} (step {progress.step}, epoch {progress.epoch}, batch {progress.batches_in_epoch})"
    )
