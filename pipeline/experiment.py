"""Building an experiment from a recipe: data, tokenizer, model (with layer surgery and policies), metrics.

`setup` raises `PipelineError` on bad input before any output exists; `pipeline.train` runs what it builds.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import datasets
import torch
import transformers
from accelerate import Accelerator, PartialState
from accelerate.utils import DataLoaderConfiguration, DistributedType, InitProcessGroupKwargs, set_seed
from datasets import DatasetDict
from transformers import AutoConfig, PreTrainedModel, PreTrainedTokenizerBase

from pipeline.data import limit_examples, load_splits
from pipeline.errors import PipelineError
from pipeline.layers import apply_layer_policies, apply_surgery
from pipeline.metrics import LoadedMetric, load_metric
from pipeline.models import build_model, default_device_is_cpu, load_tokenizer, resolve_max_length
from pipeline.recipe import Recipe, TrainConfig
from pipeline.tasks import Task, build_task
from pipeline.vectors import Alignment, coverage_report

log = logging.getLogger(__name__)


@dataclass
class Experiment:
    """Everything a run needs, built and checked before the run folder is created."""

    recipe: Recipe
    accelerator: Accelerator
    task: Task
    tokenizer: PreTrainedTokenizerBase
    model: PreTrainedModel
    splits: DatasetDict  # tokenized, with `labels`
    metrics: list[LoadedMetric]
    max_length: int
    micro_batch_size: int  # examples per forward pass on one device
    accumulation_steps: int
    unfreeze_schedule: dict[tuple[str, int], list[torch.nn.Parameter]] = field(default_factory=dict)  # ("step"|"epoch", N) → parameters
    input_report: dict[str, Any] = field(default_factory=dict)  # what each input layer is, vector coverage

    def scheduled_parameters(self) -> list[torch.nn.Parameter]:
        """Parameters frozen now but unfrozen at a scheduled step or epoch (the optimizer holds them from the start)."""
        return [p for params in self.unfreeze_schedule.values() for p in params]


def batch_plan(train: TrainConfig, world_size: int) -> tuple[int, int]:
    """(micro batch size, accumulation steps) so that one optimizer step sees `train.batch_size` examples."""
    if train.batch_size % world_size:
        raise PipelineError(f"{train.batch_size} examples per step cannot be split over {world_size} processes", field="train.batch_size")
    per_process = train.batch_size // world_size
    micro = min(train.micro_batch_size or per_process, per_process)
    if per_process % micro:
        raise PipelineError(f"{per_process} examples per process is not a multiple of {micro}", field="train.micro_batch_size")
    return micro, per_process // micro


def make_accelerator(recipe: Recipe, accumulation_steps: int = 1) -> Accelerator:
    """An Accelerator for this host: CPU (gloo across processes) where no GPU exists, else the GPUs."""
    train = recipe.train
    cpu = default_device_is_cpu()
    if train.mixed_precision == "fp16" and cpu:
        raise PipelineError("fp16 needs a GPU; use bf16 or no on this machine", field="train.mixed_precision")
    if "tensorboard" in train.report_to and not (importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX")):
        raise PipelineError("tensorboard is not installed (pip install 'embedlab[tensorboard]')", field="train.report_to")
    return Accelerator(
        cpu=cpu,
        mixed_precision=train.mixed_precision,
        gradient_accumulation_steps=accumulation_steps,
        log_with=list(train.report_to) or None,
        project_dir=recipe.output_dir,
        # A seedable sampler makes the shuffled order a function of (seed, epoch) on every process.
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
        # A process that dies leaves the others waiting in a collective: bound the wait.
        kwargs_handlers=[InitProcessGroupKwargs(timeout=timedelta(seconds=train.collective_timeout_s))],
    )


def _operate(
    recipe: Recipe, accelerator: Accelerator, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase
) -> tuple[dict[str, str], Alignment | None, dict[tuple[str, int], list[torch.nn.Parameter]]]:
    """Layer surgery, then the freeze / finetune policies; returns layer sources, vector alignment, unfreeze schedule."""
    sources, alignment = apply_surgery(model, tokenizer, recipe.layers, recipe.train.seed, pretrained=recipe.model.config is None)
    schedule = apply_layer_policies(model, recipe.layers)
    if schedule and accelerator.num_processes > 1:
        raise PipelineError("gradual unfreezing (unfreeze_at_step / unfreeze_at_epoch) runs in a single process for now", field="layers")
    fsdp = accelerator.state.fsdp_plugin if accelerator.distributed_type == DistributedType.FSDP else None
    mixed = len({p.requires_grad for p in model.parameters()}) > 1
    if fsdp is not None and mixed and not getattr(fsdp, "use_orig_params", True):
        raise PipelineError("FSDP with frozen and trainable parameters needs fsdp_use_orig_params: true in the accelerate config", field="layers")
    return sources, alignment, schedule


def setup(recipe: Recipe, trained_model: Path | None = None) -> Experiment:
    """Build data, tokenizer, model (with layer policies) and metrics; raise `PipelineError` on bad input.

    trained_model: a saved fine-tuned model folder to evaluate instead of the recipe's model; its label order
    is reused and only the eval splits are encoded.
    """
    state = PartialState(cpu=default_device_is_cpu())
    if not state.is_main_process:  # one copy of load reports and progress bars is enough
        transformers.logging.set_verbosity_error()
        datasets.disable_progress_bars()
    world_size = state.num_processes
    micro_batch_size, accumulation_steps = batch_plan(recipe.train, world_size)
    accelerator = make_accelerator(recipe, accumulation_steps)
    set_seed(recipe.train.seed)
    task = build_task(recipe.task)
    raw = load_splits(recipe.data, recipe.task.label_column)
    wanted = list(dict.fromkeys(([] if trained_model else [recipe.data.train_split]) + recipe.eval.splits))
    missing = [name for name in wanted if name not in raw]
    if missing:
        raise PipelineError(f"no split {missing} in the data (it has {sorted(raw)})", field="eval.splits")
    raw = DatasetDict({name: raw[name] for name in wanted})
    task.check_columns(raw)

    model_cfg = recipe.model
    if trained_model is not None:
        model_cfg = model_cfg.model_copy(update={"name_or_path": str(trained_model), "tokenizer": None, "config": None, "revision": None})
        task.use_labels({int(k): v for k, v in AutoConfig.from_pretrained(trained_model).id2label.items()})
    else:
        task.fit_labels(raw[recipe.data.train_split])
    limits = {name: recipe.data.max_eval_samples for name in wanted} | {recipe.data.train_split: recipe.data.max_train_samples}
    raw = DatasetDict({name: limit_examples(split, limits[name], recipe.data.split_seed) for name, split in raw.items()})
    tokenizer = load_tokenizer(model_cfg, task.texts(raw[recipe.data.train_split]) if trained_model is None else [])
    model = build_model(model_cfg, task.auto_class, tokenizer, task.head_kwargs())
    sources, alignment, schedule = {}, None, {}
    if trained_model is None:  # a saved run already holds its replaced layers, as plain tables
        sources, alignment, schedule = _operate(recipe, accelerator, model, tokenizer)
    max_length = resolve_max_length(model_cfg, model, tokenizer)

    # The bi-LSTM's character CNN reads each token's spelling from the text.
    max_characters = model.config.max_characters if getattr(model.config, "char_cnn", False) else None
    report: dict[str, Any] = {"sources": sources, "data": {}}
    encoded = {}
    with accelerator.main_process_first():
        for name, split in raw.items():
            encoded[name], counts = task.encode(split, tokenizer, max_length, name, max_characters)
            report["data"][name] = counts
            if counts["empty_texts"] or counts["truncated"]:
                log.warning("%s: %d empty text(s), %d text(s) truncated to %d tokens (counts in input_layers.json)",
                            name, counts["empty_texts"], counts["truncated"], max_length)
    splits = DatasetDict(encoded)
    if alignment is not None:
        report["coverage"] = coverage_report(alignment, splits[recipe.data.train_split]["input_ids"])
    try:
        metrics = [load_metric(name) for name in recipe.eval.metrics]
    except Exception as error:  # evaluate raises many types (network, import, file); all mean "unusable metric"
        raise PipelineError(f"cannot load metric ({str(error).splitlines()[0]})", field="eval.metrics") from None
    return Experiment(
        recipe, accelerator, task, tokenizer, model, splits, metrics, max_length, micro_batch_size, accumulation_steps, schedule, report
    )
