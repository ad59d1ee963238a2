"""Building an experiment from a recipe: one `build_*` function per recipe section, then `setup` assembles them.

`setup` (for training) and `setup_evaluation` (for `pipeline eval` on a saved model) raise `PipelineError` on bad
input before any output exists; `pipeline.training.run` runs what they build.
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

from pipeline.data.collate import PadCollator
from pipeline.data.sources import limit_examples, load_splits
from pipeline.errors import PipelineError
from pipeline.evaluation.metrics import LoadedMetric, load_metric
from pipeline.families.base import Family, TokenFeatures
from pipeline.families.registry import family_named
from pipeline.recipe.schema import Recipe, TrainConfig
from pipeline.surgery.replace import SurgeryReport, apply_surgery
from pipeline.surgery.vectors import coverage_report
from pipeline.tasks.base import Task
from pipeline.tasks.registry import build_task
from pipeline.training import encoding_cache
from pipeline.training.modeling import (
    build_model,
    check_vocabulary,
    load_tokenizer,
    original_tokenizer,
    resolve_max_length,
)
from pipeline.training.policies import UnfreezeSchedule, apply_layer_policies
from pipeline.vocabulary.usage import tokenization_stats

log = logging.getLogger(__name__)
# What each experiment tracker Accelerate supports needs installed (the first is the one to install).
TRACKER_PACKAGES = {
    "tensorboard": ("tensorboard", "tensorboardX"),
    "wandb": ("wandb",),
    "mlflow": ("mlflow",),
    "comet_ml": ("comet_ml",),
    "aim": ("aim",),
    "clearml": ("clearml",),
    "dvclive": ("dvclive",),
}


@dataclass
class Experiment:
    """Everything a run needs, built and checked before the run folder is created."""

    recipe: Recipe
    family: Family
    accelerator: Accelerator
    task: Task
    tokenizer: PreTrainedTokenizerBase
    model: PreTrainedModel
    splits: DatasetDict  # tokenized, with `labels`
    collator: PadCollator
    metrics: list[LoadedMetric]
    max_length: int
    micro_batch_size: int  # examples per forward pass on one device
    accumulation_steps: int
    unfreeze_schedule: UnfreezeSchedule = field(default_factory=dict)
    input_report: dict[str, Any] = field(default_factory=dict)  # what each input layer is, vector coverage, data counts
    display: dict[str, list[dict[str, Any]] | None] = field(
        default_factory=dict
    )  # eval split → what to show of each row
    skips_unread_positions: bool = False  # the last block computes only the positions the head reads

    def scheduled_parameters(self) -> list[torch.nn.Parameter]:
        """Parameters frozen now but unfrozen at a scheduled step or epoch (the optimizer holds them from the start)."""
        return [p for params in self.unfreeze_schedule.values() for p in params]


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
    """An Accelerator for this host: CPU (gloo across processes) where no GPU exists, else the GPUs."""
    train = recipe.train
    cpu = default_device_is_cpu()
    if train.mixed_precision == "fp16" and cpu:
        raise PipelineError("fp16 needs a GPU; use bf16 or no on this machine", field="train.mixed_precision")
    for tracker in train.report_to:
        packages = TRACKER_PACKAGES[tracker]
        if not any(importlib.util.find_spec(package) for package in packages):
            raise PipelineError(f"{tracker} is not installed (pip install {packages[0]})", field="train.report_to")
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


def build_data(recipe: Recipe, task: Task, wanted: list[str]) -> tuple[DatasetDict, dict[str, int]]:
    """The raw splits named in `wanted`, with the task's columns and values checked; also the rows left out per
    split for a missing label."""
    raw, dropped = load_splits(recipe.data, recipe.task)
    missing = [name for name in wanted if name not in raw]
    if missing:
        raise PipelineError(f"no split {missing} in the data (it has {sorted(raw)})", field="eval.splits")
    raw = DatasetDict({name: raw[name] for name in wanted})
    task.check_columns(raw)
    if recipe.data.train_split in recipe.eval.splits:
        log.warning(
            "eval.splits includes the training split '%s': its scores measure fit, not generalisation",
            recipe.data.train_split,
        )
    return raw, {name: dropped.get(name, 0) for name in wanted}


def limit_splits(recipe: Recipe, raw: DatasetDict) -> DatasetDict:
    """`data.max_train_samples` / `max_eval_samples`: a seeded subset of each split (after labels are fitted)."""
    limits = dict.fromkeys(raw, recipe.data.max_eval_samples) | {
        recipe.data.train_split: recipe.data.max_train_samples
    }
    return DatasetDict(
        {name: limit_examples(split, limits[name], recipe.data.split_seed) for name, split in raw.items()}
    )


def build_layers(
    recipe: Recipe,
    family: Family,
    accelerator: Accelerator,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    original: PreTrainedTokenizerBase | None = None,
) -> tuple[SurgeryReport, UnfreezeSchedule]:
    """Layer surgery, then the freeze / finetune policies; returns what surgery did and the unfreeze schedule.

    original: the pretrained table's tokenizer, when the recipe builds a new one."""
    report = apply_surgery(
        family,
        model,
        tokenizer,
        recipe.layers,
        recipe.train.seed,
        pretrained=recipe.model.config is None,
        original=original,
    )
    check_vocabulary(model, tokenizer)
    if report.position_rows and report.position_rows > tokenizer.model_max_length:
        # A longer position table: the tokenizer (saved with the model) must not truncate below it.
        tokenizer.model_max_length = report.position_rows
    schedule = apply_layer_policies(family, model, recipe.layers)
    if schedule and accelerator.num_processes > 1:
        raise PipelineError(
            "gradual unfreezing (unfreeze_at_step / unfreeze_at_epoch) runs in a single process for now", field="layers"
        )
    fsdp = accelerator.state.fsdp_plugin if accelerator.distributed_type == DistributedType.FSDP else None
    mixed = len({p.requires_grad for p in model.parameters()}) > 1
    if fsdp is not None and mixed and not getattr(fsdp, "use_orig_params", True):
        raise PipelineError(
            "FSDP with frozen and trainable parameters needs fsdp_use_orig_params: true in the accelerate config",
            field="layers",
        )
    return report, schedule


def check_sizes(
    recipe: Recipe, task: Task, tokenizer: PreTrainedTokenizerBase, max_length: int, train_examples: int
) -> None:
    """Refuse what cannot be honoured: a length with no room for text, a batch larger than the training set."""
    reserved = task.reserved_tokens(tokenizer)
    if max_length <= reserved:
        raise PipelineError(
            f"{max_length} leaves no room for text: each input needs {reserved} token(s) beside it",
            field="model.max_length",
        )
    if recipe.train.batch_size > train_examples:
        raise PipelineError(
            f"{recipe.train.batch_size} examples per step, but the training split has only {train_examples}",
            field="train.batch_size",
        )


def encode_splits(
    recipe: Recipe,
    task: Task,
    raw: DatasetDict,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    features: TokenFeatures,
    accelerator: Accelerator,
) -> tuple[DatasetDict, dict[str, dict[str, int]]]:
    """Tokenize every split, or read them from the encoding cache (`encoding_cache`: the runs of a sweep encode the
    same texts alike); the main process first, so the others read what it stored. Returns the counts too."""
    key = encoding_cache.encoding_key(task, raw, tokenizer, max_length, features, recipe.data.train_split)
    with accelerator.main_process_first():
        cached = encoding_cache.load(key)
        if cached is not None:
            encoded, counts, state = cached
            task.restore_encoding_state(state)
        else:
            encoded, counts = {}, {}
            for name, split in raw.items():
                encoded[name], counts[name] = task.encode(
                    split, tokenizer, max_length, name, features, for_training=name == recipe.data.train_split
                )
            if accelerator.is_main_process:
                encoding_cache.store(key, DatasetDict(encoded), counts, task.encoding_state())
    for name in raw:
        if counts[name]["empty_texts"] or counts[name]["truncated"]:
            log.warning(
                "%s: %d empty text(s), %d text(s) truncated to %d tokens (counts in input_layers.json)",
                name,
                counts[name]["empty_texts"],
                counts[name]["truncated"],
                max_length,
            )
    return DatasetDict(encoded), counts


def build_metrics(recipe: Recipe, task: Task) -> list[LoadedMetric]:
    """The recipe's metrics, or (`eval.metrics: null`) the task's defaults, loaded for the task's kinds of output."""
    names = recipe.eval.metrics if recipe.eval.metrics is not None else task.default_metrics()
    try:
        return [load_metric(name, recipe.task.metric_inputs) for name in names]
    except Exception as error:  # evaluate raises many types (network, import, file); all mean "unusable metric"
        raise PipelineError(f"cannot load metric ({str(error).splitlines()[0]})", field="eval.metrics") from None


def _runtime(recipe: Recipe) -> tuple[Accelerator, int, int]:
    """The process group, batch plan and Accelerator; seeds every RNG."""
    state = PartialState(cpu=default_device_is_cpu())
    if not state.is_main_process:  # one copy of load reports and progress bars is enough
        transformers.logging.set_verbosity_error()
        datasets.disable_progress_bars()
    micro_batch_size, accumulation_steps = batch_plan(recipe.train, state.num_processes)
    accelerator = build_accelerator(recipe, accumulation_steps)
    set_seed(recipe.train.seed)
    return accelerator, micro_batch_size, accumulation_steps


def skip_unread_positions(recipe: Recipe, family: Family, model: PreTrainedModel) -> bool:
    """`train.skip_unread_positions`: whether the model now computes only the positions its head reads."""
    if not recipe.train.skip_unread_positions:
        return False
    why_not = family.compute_read_positions_only(model)
    if why_not is not None:
        log.info("every position of the last block is computed: %s", why_not)
    return why_not is None


def setup(recipe: Recipe, built_tokenizer: Path | None = None) -> Experiment:
    """Build data, tokenizer, model (with layer surgery and policies) and metrics for training.

    built_tokenizer: where a resumed run saved the tokenizer it built (`model.tokenizer: {build: ...}`)."""
    accelerator, micro_batch_size, accumulation_steps = _runtime(recipe)
    family = family_named(recipe.model.family)
    task = build_task(recipe, family)
    train_split = recipe.data.train_split
    raw, dropped = build_data(recipe, task, list(dict.fromkeys([train_split, *recipe.eval.splits])))
    task.fit_labels(raw[train_split])
    raw = limit_splits(recipe, raw)
    texts = task.texts(raw[train_split])
    tokenizer, original = (
        load_tokenizer(recipe.model, family, texts, built_tokenizer),
        original_tokenizer(recipe.model, family),
    )
    for each in (tokenizer, original):
        if each is not None:
            task.prepare_tokenizer(each)
    model = build_model(recipe.model, family, task.auto_class, tokenizer, task.head_kwargs())
    surgery, schedule = build_layers(recipe, family, accelerator, model, tokenizer, original)
    max_length = resolve_max_length(recipe.model, family.position_limit(model), tokenizer)
    features = family.token_features(model)
    splits, counts = encode_splits(recipe, task, raw, tokenizer, max_length, features, accelerator)
    check_sizes(recipe, task, tokenizer, max_length, len(splits[train_split]))
    if recipe.data.drop_missing_labels:
        for name, count in dropped.items():
            counts[name]["dropped_missing_labels"] = count
    report: dict[str, Any] = {"sources": surgery.sources, "data": counts}
    if original is not None:
        report["vocabulary"] = {
            **(surgery.transfer or {"new_vocabulary": len(tokenizer), "old_vocabulary": len(original)}),
            "old_tokenizer": tokenization_stats(original, texts),
            "new_tokenizer": tokenization_stats(tokenizer, texts),
        }
    if surgery.alignment is not None:
        report["coverage"] = coverage_report(surgery.alignment, splits[train_split]["input_ids"])
    return Experiment(
        recipe,
        family,
        accelerator,
        task,
        tokenizer,
        model,
        splits,
        PadCollator(tokenizer.pad_token_id, features.pad_values, task.labels_per_token),
        build_metrics(recipe, task),
        max_length,
        micro_batch_size,
        accumulation_steps,
        schedule,
        report,
        {name: task.display_rows(raw[name]) for name in recipe.eval.splits},
        skip_unread_positions(recipe, family, model),
    )


def setup_evaluation(recipe: Recipe, model_dir: Path) -> Experiment:
    """Build the eval splits and a saved fine-tuned model (its label order reused) for re-scoring.

    A saved run already holds its replaced layers as plain tables, so no surgery or policy applies.
    """
    accelerator, micro_batch_size, accumulation_steps = _runtime(recipe)
    family = family_named(recipe.model.family)
    task = build_task(recipe, family)
    raw = limit_splits(recipe, build_data(recipe, task, list(dict.fromkeys(recipe.eval.splits)))[0])
    task.use_labels({int(k): v for k, v in AutoConfig.from_pretrained(model_dir).id2label.items()})
    model_cfg = recipe.model.model_copy(
        update={"name_or_path": str(model_dir), "tokenizer": None, "config": None, "revision": None}
    )
    tokenizer = load_tokenizer(model_cfg, family)
    task.prepare_tokenizer(tokenizer)
    model = build_model(model_cfg, family, task.auto_class, tokenizer, task.head_kwargs())
    check_vocabulary(model, tokenizer)
    max_length = resolve_max_length(model_cfg, family.position_limit(model), tokenizer)
    features = family.token_features(model)
    splits, counts = encode_splits(recipe, task, raw, tokenizer, max_length, features, accelerator)
    return Experiment(
        recipe,
        family,
        accelerator,
        task,
        tokenizer,
        model,
        splits,
        PadCollator(tokenizer.pad_token_id, features.pad_values, task.labels_per_token),
        build_metrics(recipe, task),
        max_length,
        micro_batch_size,
        accumulation_steps,
        {},
        {"sources": {}, "data": counts},
        {name: task.display_rows(raw[name]) for name in recipe.eval.splits},
        skip_unread_positions(recipe, family, model),
    )
