"""The process group a run uses: an Accelerator for this host (CPU with gloo where no GPU exists, else the GPUs),
how a step's examples split into micro-batches over the processes, and every RNG seeded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import datasets
import torch
import transformers
from accelerate import Accelerator, PartialState
from accelerate.utils import DataLoaderConfiguration, InitProcessGroupKwargs, set_seed

from pipeline import console
from pipeline.errors import PipelineError
from pipeline.recipe.schema import Recipe, TrainConfig


@dataclass(frozen=True)
class Runtime:
    """The Accelerator, and how one optimizer step's examples are cut: micro-batches per forward pass on one device,
    accumulated over `accumulation_steps`."""

    accelerator: Accelerator
    micro_batch_size: int
    accumulation_steps: int


def default_device_is_cpu() -> bool:
    """True on hosts without a GPU-like accelerator: then Accelerate is built with `cpu=True`."""
    mps = getattr(torch.backends, "mps", None)
    return not (torch.cuda.is_available() or (mps is not None and mps.is_available()))


def batch_plan(train: TrainConfig, world_size: int) -> tuple[int, int]:
    """(micro batch size, accumulation steps) so that one optimizer step sees `train.batch_size` examples."""
    if train.batch_size % world_size:
        raise PipelineError(
            f"{train.batch_size} examples per step cannot be split over {world_size} processes",
            field="train.batch_size",
        )
    per_process = train.batch_size // world_size
    micro = min(train.micro_batch_size or per_process, per_process)
    if per_process % micro:
        raise PipelineError(
            f"{per_process} examples per process is not a multiple of {micro}", field="train.micro_batch_size"
        )
    return micro, per_process // micro


def build_accelerator(recipe: Recipe, accumulation_steps: int = 1) -> Accelerator:
    """An Accelerator for this host, with the recipe's precision, trackers and collective timeout."""
    train = recipe.train
    cpu = default_device_is_cpu()
    if train.mixed_precision == "fp16" and cpu:
        raise PipelineError("fp16 needs a GPU; use bf16 or no on this machine", field="train.mixed_precision")
    return Accelerator(
        cpu=cpu,
        mixed_precision=train.mixed_precision,
        gradient_accumulation_steps=accumulation_steps,
        log_with=list(train.report_to) or None,
        project_dir=str(Path(recipe.output_dir) / "trackers"),  # tensorboard writes trackers/<run name>/
        # A seedable sampler makes the shuffled order a function of (seed, epoch) on every process.
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
        # A process that dies leaves the others waiting in a collective: bound the wait.
        kwargs_handlers=[InitProcessGroupKwargs(timeout=timedelta(seconds=train.collective_timeout_s))],
    )


def start_runtime(recipe: Recipe) -> Runtime:
    """The process group, batch plan and Accelerator; seeds every RNG."""
    state = PartialState(cpu=default_device_is_cpu())
    console.route_libraries()  # the libraries are imported now, each with its own console handler
    if console.quiet() or not state.is_main_process:  # their bars: one training bar is the run's; one copy at most
        transformers.logging.disable_progress_bar()
        datasets.disable_progress_bars()
    if not state.is_main_process:  # one copy of load reports is enough
        transformers.logging.set_verbosity_error()
    micro_batch_size, accumulation_steps = batch_plan(recipe.train, state.num_processes)
    accelerator = build_accelerator(recipe, accumulation_steps)
    set_seed(recipe.train.seed)
    return Runtime(accelerator, micro_batch_size, accumulation_steps)
