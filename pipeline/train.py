"""Fine-tuning: `fit` is the explicit Accelerate loop (accumulate, autocast, backward, clip, step), with
atomic checkpoints and exact resume; `train` checks the run folder, builds the experiment and writes the run.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_scheduler

from pipeline.checkpoints import Progress, checkpoint_name, latest_checkpoint, partial_folder, seal
from pipeline.errors import PipelineError, TrainingStopped
from pipeline.evaluation import evaluate_split, write_final_evaluation
from pipeline.experiment import Experiment, setup
from pipeline.layers import build_optimizer, format_group_table, format_parameter_tsv, optimizer_state_numel, parameter_rows, unfreeze
from pipeline.recipe import Recipe
from pipeline.recipe_io import dump_recipe
from pipeline.run_folder import RunFolder, check_output_dir
from pipeline.surgery import standard_state_dict

log = logging.getLogger(__name__)

__all__ = ["fit", "setup", "train", "train_experiment"]


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


def save_checkpoint(exp: Experiment, model: torch.nn.Module, run: RunFolder, progress: Progress) -> None:
    """Full training state plus the exported model, assembled aside and renamed into place (all processes)."""
    acc = exp.accelerator
    partial = partial_folder(run.path, progress.step)
    acc.wait_for_everyone()
    if acc.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
    acc.wait_for_everyone()
    acc.save_state(str(partial / "state"))
    save_model(exp, model, partial / "model")
    if acc.is_main_process:
        seal(run.path, progress.step, progress, exp.recipe.train.keep_checkpoints)
    acc.wait_for_everyone()


def frozen_tables_agree(exp: Experiment, model: torch.nn.Module) -> bool | None:
    """Whether every process holds the same frozen tensors (a checksum per tensor, gathered); None in one process."""
    acc = exp.accelerator
    if acc.num_processes == 1:
        return None
    frozen = [p for p in acc.unwrap_model(model).parameters() if not p.requires_grad]
    sums = torch.stack([torch.stack([p.double().sum(), p.double().abs().sum()]) for p in frozen]) if frozen else torch.zeros(1, 2, dtype=torch.float64)
    gathered = acc.gather(sums.to(acc.device).unsqueeze(0))
    return bool(torch.all(gathered == gathered[0]))


def fit(exp: Experiment, run: RunFolder, resume_from: tuple[Path, Progress] | None = None) -> dict[str, Any]:
    """The training loop; returns a summary (steps, epochs, wall time...). Logs to `log.jsonl` and trackers.

    resume_from: a checkpoint and its progress; training continues exactly where it stood (same weights,
    optimizer and scheduler state, RNG states, and position in the epoch's shuffled order).
    """
    acc, recipe = exp.accelerator, exp.recipe
    train_cfg = recipe.train
    eval_split = recipe.eval.splits[0]
    train_loader = _loader(exp, recipe.data.train_split, exp.micro_batch_size, shuffle=True)
    eval_loader = _loader(exp, eval_split, recipe.eval.batch_size, shuffle=False)
    optimizer = build_optimizer(exp.model, recipe.layers, train_cfg, exp.scheduled_parameters())

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
    acc.register_for_checkpointing(scheduler)
    unfreeze_due: dict[int, list[torch.nn.Parameter]] = {}  # optimizer step → parameters that train after it
    for (unit, when), params in exp.unfreeze_schedule.items():
        unfreeze_due.setdefault(when * steps_per_epoch if unit == "epoch" else when, []).extend(params)
    batching = {
        "batch_size": train_cfg.batch_size,
        "micro_batch_size": exp.micro_batch_size,
        "processes": acc.num_processes,
        "accumulation_steps": exp.accumulation_steps,
        "steps_per_epoch": steps_per_epoch,
        "total_steps": total_steps,
        "max_length": exp.max_length,
    }
    state, resumed_at = Progress(), None
    if resume_from is not None:
        checkpoint, state = resume_from
        resumed_at = state.step
        saved = json.loads((run.path / "batching.json").read_text())
        if any(saved.get(key) != batching[key] for key in ("micro_batch_size", "processes")):
            raise PipelineError(f"the run was started with {saved['processes']} process(es) × {saved['micro_batch_size']} examples; resume with the same", field="train")
        acc.load_state(str(checkpoint / "state"))
        run.truncate_log(state.log_lines)
        for step_due, params in unfreeze_due.items():
            if step_due <= state.step:
                unfreeze(params)
        acc.print(f"resumed from {checkpoint} (step {state.step}, epoch {state.epoch}, batch {state.batches_in_epoch})")
    run.write_json("batching.json", batching)
    if train_cfg.report_to:
        acc.init_trackers("tensorboard", config={"lr": train_cfg.lr, "batch_size": train_cfg.batch_size, "seed": train_cfg.seed})

    def evaluate_now() -> None:
        scores, _ = evaluate_split(exp, model, eval_loader)
        run.log({"step": state.step, "epoch": state.epoch, "split": eval_split, **scores})
        acc.log({f"{eval_split}/{name}": value for name, value in scores.items()}, step=state.step)
        acc.print(f"step {state.step} {eval_split}: " + ", ".join(f"{k}={v:.4f}" for k, v in scores.items()))
        model.train()

    def checkpoint_now() -> None:
        state.log_lines = run.log_lines
        save_checkpoint(exp, model, run, state)

    progress = tqdm(total=total_steps, initial=state.step, desc="training", disable=not acc.is_local_main_process)
    started = time.perf_counter()
    running_loss, micro_batches, grad_norm = torch.zeros((), device=acc.device), 0, None
    first_epoch = state.epoch
    for epoch in range(first_epoch, num_epochs):
        state.epoch = epoch
        model.train()
        train_loader.set_epoch(epoch)
        batches = train_loader
        if epoch == first_epoch and state.batches_in_epoch:
            batches = acc.skip_first_batches(train_loader, state.batches_in_epoch)
            batches.set_epoch(epoch)
        else:
            state.batches_in_epoch = 0
        for batch in batches:
            state.batches_in_epoch += 1
            with acc.accumulate(model):
                with acc.autocast():
                    loss = model(**batch).loss
                acc.backward(loss)
                nonfinite = False
                if acc.sync_gradients:
                    # The norm is taken after the gradient all-reduce, so every process sees the same value.
                    grad_norm = acc.clip_grad_norm_(model.parameters(), train_cfg.max_grad_norm or math.inf)
                    nonfinite = acc.scaler is None and not math.isfinite(float(grad_norm))
                    if nonfinite:
                        optimizer.zero_grad()  # the offending update is never applied
                optimizer.step()
                optimizer.zero_grad()
            running_loss += loss.detach().float()
            micro_batches += 1
            if not acc.sync_gradients:
                continue
            if not acc.optimizer_step_was_skipped:
                scheduler.step()
            state.step += 1
            progress.update(1)
            if nonfinite:
                run.log({"step": state.step, "epoch": epoch, "nonfinite_gradient": True, "action": train_cfg.on_nonfinite})
                if train_cfg.on_nonfinite == "stop":
                    checkpoint_now()
                    raise TrainingStopped(
                        f"non-finite loss or gradient at step {state.step} (epoch {epoch}); the weights before it are saved in "
                        f"{run.path / 'checkpoints' / checkpoint_name(state.step)} (resume continues after the offending batch); "
                        "set train.on_nonfinite=skip to skip such steps"
                    )
            if state.step in unfreeze_due:
                unfreeze(unfreeze_due[state.step])
                run.log({"step": state.step, "unfrozen_parameters": sum(p.numel() for p in unfreeze_due[state.step])})
            if state.step % train_cfg.log_every_steps == 0 or state.step == total_steps:
                mean_loss = acc.reduce(running_loss / micro_batches, reduction="mean").item()
                record = {"step": state.step, "epoch": epoch, "loss": mean_loss, "lr": scheduler.get_last_lr()[0]}
                if grad_norm is not None:
                    record["grad_norm"] = float(grad_norm)
                record["elapsed_s"] = round(time.perf_counter() - started, 3)
                run.log(record)
                acc.log({"train/loss": mean_loss, "train/lr": record["lr"]}, step=state.step)
                progress.set_postfix(loss=f"{mean_loss:.4f}")
                running_loss, micro_batches = torch.zeros((), device=acc.device), 0
            if train_cfg.eval_every_steps and state.step % train_cfg.eval_every_steps == 0:
                evaluate_now()
            if train_cfg.save_every_steps and state.step % train_cfg.save_every_steps == 0:
                checkpoint_now()
            if state.step >= total_steps:
                break
        if state.step >= total_steps:
            if not train_cfg.eval_every_steps:
                evaluate_now()
            break
        if not train_cfg.eval_every_steps:
            evaluate_now()
        state.epoch, state.batches_in_epoch = epoch + 1, 0
        if train_cfg.checkpoint_every_epoch:
            checkpoint_now()
    progress.close()
    exp.model = model
    return {
        "steps": state.step,
        "epochs": epoch + 1,
        "train_wall_time_s": round(time.perf_counter() - started, 2),
        "resumed_from_step": resumed_at,
        "trainable_parameters": sum(row.count for row in rows if row.trainable),
        "frozen_parameters": sum(row.count for row in rows if not row.trainable),
        "optimizer_state_numel": optimizer_state_numel(optimizer),
        "peak_memory_mb": peak_memory_mb(acc.device),
        "frozen_tables_identical_across_processes": frozen_tables_agree(exp, model),
    }


def start_run(recipe: Recipe, overwrite: bool, resume: bool) -> tuple[Path, tuple[Path, Progress] | None]:
    """Check the run folder before anything is built: refuse to clobber a run, or find where to resume."""
    output_dir = Path(recipe.output_dir)
    saved_recipe = output_dir / "recipe.yaml"
    if not (resume and saved_recipe.is_file()):
        check_output_dir(output_dir, overwrite)
        return output_dir, None
    if saved_recipe.read_text(encoding="utf-8") != dump_recipe(recipe):
        raise PipelineError(f"the recipe differs from the one {output_dir} was started with ({saved_recipe}); resume needs the same recipe", field="output_dir")
    checkpoint = latest_checkpoint(output_dir)
    if checkpoint is None:
        log.warning("no usable checkpoint in %s: starting from the beginning", output_dir)
    return output_dir, checkpoint


def train(recipe: Recipe, overwrite: bool = False, resume: bool = False) -> Path:
    """Fine-tune as the recipe says and write the run folder; returns its path.

    resume: continue the run in `output_dir` from its newest whole checkpoint (or start it, if there is none).
    """
    output_dir, checkpoint = start_run(recipe, overwrite, resume)
    exp = setup(recipe)
    return train_experiment(exp, output_dir, overwrite=overwrite and not resume, resume_from=checkpoint)


def train_experiment(exp: Experiment, output_dir: Path, overwrite: bool = False, resume_from: tuple[Path, Progress] | None = None) -> Path:
    """Run `fit` on a built experiment, then save the model and the final evaluation."""
    acc = exp.accelerator
    run = RunFolder.create(output_dir, acc.is_main_process, overwrite)
    acc.wait_for_everyone()
    run.write_text("recipe.yaml", dump_recipe(exp.recipe))
    summary = fit(exp, run, resume_from)
    save_model(exp, exp.model, output_dir / "model")
    write_final_evaluation(exp, exp.model, run, summary)
    acc.end_training()
    return output_dir
