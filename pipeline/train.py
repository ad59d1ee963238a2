"""Fine-tuning: `setup` builds everything from a recipe (and fails before any output exists), `train` runs
`fit`, the explicit Accelerate loop, and writes the run folder.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import torch
import transformers
from accelerate import Accelerator, PartialState
from accelerate.utils import DataLoaderConfiguration, set_seed
from datasets import DatasetDict
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import AutoConfig, PreTrainedModel, PreTrainedTokenizerBase, get_scheduler

from pipeline.data import limit_examples, load_splits
from pipeline.errors import PipelineError
from pipeline.evaluation import evaluate_split, write_final_evaluation
from pipeline.layers import (
    apply_layer_policies,
    apply_surgery,
    build_optimizer,
    format_group_table,
    format_parameter_tsv,
    optimizer_state_numel,
    parameter_rows,
)
from pipeline.metrics import LoadedMetric, load_metric
from pipeline.models import build_model, default_device_is_cpu, load_tokenizer, resolve_max_length
from pipeline.recipe import Recipe, TrainConfig, dump_recipe
from pipeline.run_folder import RunFolder, check_output_dir
from pipeline.surgery import standard_state_dict
from pipeline.tasks import Task, build_task
from pipeline.vectors import coverage_report


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
    unfreeze_schedule: dict[int, list[torch.nn.Parameter]] = field(default_factory=dict)  # step → parameters
    input_report: dict[str, Any] = field(default_factory=dict)  # what each input layer is, vector coverage


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
    )


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
    tokenizer = load_tokenizer(model_cfg)
    model = build_model(model_cfg, task.auto_class, tokenizer, task.head_kwargs())
    sources, alignment, schedule = {}, None, {}
    if trained_model is None:  # a saved run already holds its replaced layers, as plain tables
        sources, alignment = apply_surgery(model, tokenizer, recipe.layers, recipe.train.seed)
        schedule = apply_layer_policies(model, recipe.layers)
        if schedule and world_size > 1:
            raise PipelineError("unfreeze_at_step runs in a single process for now", field="layers")
    max_length = resolve_max_length(model_cfg, model, tokenizer)

    limits = {name: recipe.data.max_eval_samples for name in wanted} | {recipe.data.train_split: recipe.data.max_train_samples}
    with accelerator.main_process_first():
        splits = DatasetDict(
            {
                name: task.encode(limit_examples(split, limits[name], recipe.data.split_seed), tokenizer, max_length, name)
                for name, split in raw.items()
            }
        )
    try:
        metrics = [load_metric(name) for name in recipe.eval.metrics]
    except Exception as error:  # evaluate raises many types (network, import, file); all mean "unusable metric"
        raise PipelineError(f"cannot load metric ({str(error).splitlines()[0]})", field="eval.metrics") from None
    report: dict[str, Any] = {"sources": sources}
    if alignment is not None:
        vocabulary = [token for token, _ in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])]
        report["coverage"] = coverage_report(alignment, vocabulary, splits[recipe.data.train_split]["input_ids"])
    return Experiment(
        recipe, accelerator, task, tokenizer, model, splits, metrics, max_length, micro_batch_size, accumulation_steps, schedule, report
    )


def _loader(exp: Experiment, split: str, batch_size: int, shuffle: bool) -> DataLoader:
    generator = torch.Generator().manual_seed(exp.recipe.train.seed)
    return DataLoader(
        exp.splits[split], batch_size=batch_size, shuffle=shuffle, collate_fn=exp.task.collator(exp.tokenizer), generator=generator
    )


def peak_memory_mb(device: torch.device) -> float | None:
    """Peak memory of this process: allocated GPU memory on CUDA, else the peak resident set size."""
    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    try:
        import resource  # not on Windows
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)  # bytes on macOS, KiB on Linux


def save_model(exp: Experiment, model: torch.nn.Module, folder: Path) -> None:
    """`save_pretrained` the unwrapped model and the tokenizer, so `AutoModel*.from_pretrained(folder)` works."""
    acc = exp.accelerator
    acc.wait_for_everyone()
    unwrapped = acc.unwrap_model(model)
    state_dict = standard_state_dict(unwrapped, acc.get_state_dict(model))
    if acc.is_main_process:
        unwrapped.save_pretrained(folder, state_dict=state_dict, save_function=acc.save)
        exp.tokenizer.save_pretrained(folder)
    acc.wait_for_everyone()


def fit(exp: Experiment, run: RunFolder) -> dict[str, Any]:
    """The training loop; returns a summary (steps, epochs, wall time). Logs to `log.jsonl` and trackers."""
    acc, recipe = exp.accelerator, exp.recipe
    train_cfg = recipe.train
    eval_split = recipe.eval.splits[0]
    train_loader = _loader(exp, recipe.data.train_split, exp.micro_batch_size, shuffle=True)
    eval_loader = _loader(exp, eval_split, recipe.eval.batch_size, shuffle=False)
    later = [p for params in exp.unfreeze_schedule.values() for p in params]
    optimizer = build_optimizer(exp.model, recipe.layers, train_cfg, later)

    rows = parameter_rows(exp.model, optimizer)
    run.write_text("parameters.tsv", format_parameter_tsv(rows))
    run.write_json("input_layers.json", exp.input_report)
    acc.print(format_group_table(rows))

    model, optimizer, train_loader, eval_loader = acc.prepare(exp.model, optimizer, train_loader, eval_loader)
    steps_per_epoch = math.ceil(len(train_loader) / exp.accumulation_steps)
    total_steps = train_cfg.max_steps or train_cfg.epochs * steps_per_epoch
    num_epochs = math.ceil(total_steps / steps_per_epoch)
    warmup = train_cfg.warmup_steps or round(train_cfg.warmup_ratio * total_steps)
    # Not passed to `prepare`: stepped once per optimizer step, whatever the number of processes.
    scheduler = get_scheduler(train_cfg.scheduler, optimizer, num_warmup_steps=warmup, num_training_steps=total_steps)
    run.write_json(
        "batching.json",
        {
            "batch_size": train_cfg.batch_size,
            "micro_batch_size": exp.micro_batch_size,
            "processes": acc.num_processes,
            "accumulation_steps": exp.accumulation_steps,
            "steps_per_epoch": steps_per_epoch,
            "total_steps": total_steps,
            "max_length": exp.max_length,
        },
    )
    if train_cfg.report_to:
        acc.init_trackers("tensorboard", config={"lr": train_cfg.lr, "batch_size": train_cfg.batch_size, "seed": train_cfg.seed})

    def evaluate_now(step: int, epoch: int) -> None:
        scores, _ = evaluate_split(exp, model, eval_loader)
        run.log({"step": step, "epoch": epoch, "split": eval_split, **scores})
        acc.log({f"{eval_split}/{name}": value for name, value in scores.items()}, step=step)
        acc.print(f"step {step} {eval_split}: " + ", ".join(f"{k}={v:.4f}" for k, v in scores.items()))
        model.train()

    progress = tqdm(total=total_steps, desc="training", disable=not acc.is_local_main_process)
    step, started = 0, time.perf_counter()
    running_loss, micro_batches, grad_norm = torch.zeros((), device=acc.device), 0, None
    for epoch in range(num_epochs):
        model.train()
        for batch in train_loader:
            with acc.accumulate(model):
                with acc.autocast():
                    loss = model(**batch).loss
                acc.backward(loss)
                if acc.sync_gradients and train_cfg.max_grad_norm:
                    grad_norm = acc.clip_grad_norm_(model.parameters(), train_cfg.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
            running_loss += loss.detach().float()
            micro_batches += 1
            if not acc.sync_gradients:
                continue
            if not acc.optimizer_step_was_skipped:
                scheduler.step()
            step += 1
            progress.update(1)
            if step in exp.unfreeze_schedule:
                for parameter in exp.unfreeze_schedule[step]:
                    parameter.requires_grad_(True)
                run.log({"step": step, "unfrozen_parameters": sum(p.numel() for p in exp.unfreeze_schedule[step])})
            if step % train_cfg.log_every_steps == 0 or step == total_steps:
                mean_loss = acc.reduce(running_loss / micro_batches, reduction="mean").item()
                record = {"step": step, "epoch": epoch, "loss": mean_loss, "lr": scheduler.get_last_lr()[0]}
                if grad_norm is not None:
                    record["grad_norm"] = float(grad_norm)
                record["elapsed_s"] = round(time.perf_counter() - started, 3)
                run.log(record)
                acc.log({"train/loss": mean_loss, "train/lr": record["lr"]}, step=step)
                progress.set_postfix(loss=f"{mean_loss:.4f}")
                running_loss, micro_batches = torch.zeros((), device=acc.device), 0
            if train_cfg.eval_every_steps and step % train_cfg.eval_every_steps == 0:
                evaluate_now(step, epoch)
            if train_cfg.save_every_steps and step % train_cfg.save_every_steps == 0:
                save_model(exp, model, run.path / "checkpoints" / f"step-{step}")
            if step >= total_steps:
                break
        if not train_cfg.eval_every_steps:
            evaluate_now(step, epoch)
        if step >= total_steps:
            break
    progress.close()
    exp.model = model
    return {
        "steps": step,
        "epochs": epoch + 1,
        "train_wall_time_s": round(time.perf_counter() - started, 2),
        "trainable_parameters": sum(row.count for row in rows if row.trainable),
        "frozen_parameters": sum(row.count for row in rows if not row.trainable),
        "optimizer_state_numel": optimizer_state_numel(optimizer),
        "peak_memory_mb": peak_memory_mb(acc.device),
    }


def train(recipe: Recipe, overwrite: bool = False) -> Path:
    """Fine-tune as the recipe says and write the run folder; returns its path."""
    output_dir = Path(recipe.output_dir)
    check_output_dir(output_dir, overwrite)
    exp = setup(recipe)
    acc = exp.accelerator
    run = RunFolder.create(output_dir, acc.is_main_process, overwrite)
    acc.wait_for_everyone()
    run.write_text("recipe.yaml", dump_recipe(recipe))
    summary = fit(exp, run)
    save_model(exp, exp.model, output_dir / "model")
    write_final_evaluation(exp, exp.model, run, summary)
    acc.end_training()
    return output_dir
