"""`fit`: the explicit Accelerate training loop (accumulate, autocast, backward, clip, step), nothing else.

It runs on a `TrainingState` that is already built and, for `--resume`, restored; it evaluates, logs and writes
checkpoints on schedule, and returns a summary of the run.
"""

from __future__ import annotations

import math
import signal
import sys
import time
from typing import Any

import torch
from tqdm.auto import tqdm

from pipeline.errors import TrainingInterrupted, TrainingStopped
from pipeline.experiment.build import Experiment
from pipeline.surgery.policies import unfreeze
from pipeline.training.checkpointing import Saving, save_checkpoint
from pipeline.training.features import frozen_body_in_eval_mode
from pipeline.training.parameters import optimizer_state_numel
from pipeline.training.run_folder import RunFolder
from pipeline.training.signals import StopRequests
from pipeline.training.state import TrainingState


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


def frozen_tables_agree(exp: Experiment, model: torch.nn.Module) -> bool | None:
    """Whether every process holds the same frozen tensors (a checksum per tensor, gathered); None in one process."""
    acc = exp.accelerator
    if acc.num_processes == 1:
        return None
    frozen = [p for p in acc.unwrap_model(model).parameters() if not p.requires_grad]
    sums = (
        torch.stack([torch.stack([p.double().sum(), p.double().abs().sum()]) for p in frozen])
        if frozen
        else torch.zeros(1, 2, dtype=torch.float64)
    )
    gathered = acc.gather(sums.to(acc.device).unsqueeze(0))
    return bool(torch.all(gathered == gathered[0]))


class _Steps:
    """What happens around optimizer steps: evaluation, logging, checkpoints, unfreezing (one run's bookkeeping)."""

    def __init__(self, exp: Experiment, state: TrainingState, run: RunFolder, bar: tqdm):
        self.exp, self.state, self.run, self.bar = exp, state, run, bar
        self.saving = Saving(exp.accelerator, exp.tokenizer, run.path, exp.recipe.train.keep_checkpoints)
        self.started = time.perf_counter()
        self.running_loss, self.micro_batches = torch.zeros((), device=exp.accelerator.device), 0

    def evaluate(self) -> None:
        exp, state, split = self.exp, self.state, self.exp.recipe.eval.splits[0]
        scores, _ = exp.task.evaluate(exp.accelerator, state.model, state.eval_loader, exp.metrics)
        self.run.log({"step": state.progress.step, "epoch": state.progress.epoch, "split": split, **scores})
        exp.accelerator.log({f"{split}/{name}": value for name, value in scores.items()}, step=state.progress.step)
        exp.accelerator.print(
            f"step {state.progress.step} {split}: "
            + ", ".join(f"{k}={v:.4f}" for k, v in scores.items() if "/" not in k)
        )
        state.model.train()
        frozen_body_in_eval_mode(exp.accelerator.unwrap_model(state.model))

    def checkpoint(self) -> str:
        self.state.progress.log_lines = self.run.log_lines
        return str(save_checkpoint(self.saving, self.state.model, self.state.scheduler, self.state.progress))

    def stop_for_nonfinite(self, step: int, epoch: int) -> TrainingStopped:
        """Save the weights before the bad step, unless they already hold nan/inf (an earlier update went wrong)."""
        if all(bool(torch.isfinite(p).all()) for p in self.state.model.parameters()):
            saved = (
                f"the weights before it are saved in {self.checkpoint()} (resume continues after the offending batch)"
            )
        else:
            saved = "the weights are already non-finite, so none were saved as a checkpoint"
        return TrainingStopped(
            f"non-finite loss or gradient at step {step} (epoch {epoch}); {saved}; set train.on_nonfinite=skip to "
            "skip such steps"
        )

    def stop_for_signal(self, number: int) -> TrainingInterrupted:
        progress = self.state.progress
        saved = self.checkpoint()
        return TrainingInterrupted(
            f"stopped by {signal.Signals(number).name} at step {progress.step} (epoch {progress.epoch}); the state "
            "is saved in "
            f"{saved}: continue with `pipeline train RECIPE --resume`",
            number,
            quiet=not self.exp.accelerator.is_main_process,
        )

    def after_step(self, grad_norm: torch.Tensor | None, nonfinite: bool) -> None:
        """Bookkeeping after optimizer step `progress.step`: a non-finite stop, unfreezing, log, eval, checkpoint."""
        exp, state, train_cfg = self.exp, self.state, self.exp.recipe.train
        step, epoch = state.progress.step, state.progress.epoch
        if nonfinite:
            self.run.log({"step": step, "epoch": epoch, "nonfinite_gradient": True, "action": train_cfg.on_nonfinite})
            if train_cfg.on_nonfinite == "stop":
                raise self.stop_for_nonfinite(step, epoch)
        if step in state.unfreeze_due:
            unfreeze(state.unfreeze_due[step])
            self.run.log({"step": step, "unfrozen_parameters": sum(p.numel() for p in state.unfreeze_due[step])})
        if step % train_cfg.log_every_steps == 0 or step == state.plan["total_steps"]:
            mean_loss = exp.accelerator.reduce(self.running_loss / self.micro_batches, reduction="mean").item()
            record = {"step": step, "epoch": epoch, "loss": mean_loss, "lr": state.scheduler.get_last_lr()[0]}
            if grad_norm is not None:
                record["grad_norm"] = float(grad_norm)
            record["elapsed_s"] = round(time.perf_counter() - self.started, 3)
            self.run.log(record)
            exp.accelerator.log({"train/loss": mean_loss, "train/lr": record["lr"]}, step=step)
            self.bar.set_postfix(loss=f"{mean_loss:.4f}")
            self.running_loss, self.micro_batches = torch.zeros((), device=exp.accelerator.device), 0
        # The last step's evaluation is the final one (`write_final_evaluation`), which logs it: not done twice.
        if train_cfg.eval_every_steps and step % train_cfg.eval_every_steps == 0 and step < state.plan["total_steps"]:
            self.evaluate()
        if train_cfg.save_every_steps and step % train_cfg.save_every_steps == 0:
            self.checkpoint()


def _epoch_batches(exp: Experiment, state: TrainingState, epoch: int, first_epoch: int):
    """The micro-batches of `epoch` still to run: a resumed epoch skips those its checkpoint had consumed."""
    state.train_loader.set_epoch(epoch)
    if epoch == first_epoch and state.progress.batches_in_epoch:
        batches = exp.accelerator.skip_first_batches(state.train_loader, state.progress.batches_in_epoch)
        batches.set_epoch(epoch)
        return batches
    state.progress.batches_in_epoch = 0
    return state.train_loader


def _train_epoch(
    exp: Experiment, state: TrainingState, steps: _Steps, stops: StopRequests, epoch: int, first_epoch: int
) -> bool:
    """One epoch, or what a resumed one has left; True once the run has reached its last step."""
    acc, train_cfg, progress = exp.accelerator, exp.recipe.train, state.progress
    model, optimizer, total_steps = state.model, state.optimizer, state.plan["total_steps"]
    model.train()
    frozen_body_in_eval_mode(acc.unwrap_model(model))
    grad_norm = None
    for batch in _epoch_batches(exp, state, epoch, first_epoch):
        progress.batches_in_epoch += 1
        with acc.accumulate(model):
            with acc.autocast():
                loss = exp.task.training_loss(model, batch)
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
        steps.running_loss += loss.detach().float()
        steps.micro_batches += 1
        if not acc.sync_gradients:
            continue
        if not acc.optimizer_step_was_skipped:
            state.scheduler.step()
        progress.step += 1
        steps.bar.update(1)
        steps.after_step(grad_norm, nonfinite)
        number = stops.agreed(acc)
        if number is not None:
            raise steps.stop_for_signal(number)
        if progress.step >= total_steps:
            return True
    return progress.step >= total_steps


def fit(exp: Experiment, state: TrainingState, run: RunFolder) -> dict[str, Any]:
    """Train from where `state` stands to `plan.total_steps`; returns a summary (steps, epochs, wall time...).

    SIGINT or SIGTERM stops the loop at the next step boundary, after a checkpoint (`TrainingInterrupted`).
    """
    acc, train_cfg, progress = exp.accelerator, exp.recipe.train, state.progress
    total_steps = state.plan["total_steps"]
    bar = tqdm(total=total_steps, initial=progress.step, desc="training", disable=not acc.is_local_main_process)
    steps = _Steps(exp, state, run, bar)
    first_epoch = progress.epoch
    try:
        with StopRequests() as stops:
            for epoch in range(first_epoch, math.ceil(total_steps / state.plan["steps_per_epoch"])):
                progress.epoch = epoch
                finished = _train_epoch(exp, state, steps, stops, epoch, first_epoch)
                if not train_cfg.eval_every_steps and not finished:
                    steps.evaluate()
                if finished:
                    break
                progress.epoch, progress.batches_in_epoch = epoch + 1, 0
                if train_cfg.checkpoint_every_epoch:
                    steps.checkpoint()
    finally:
        bar.close()  # before any message: it must not share the progress bar's line
    return {
        "steps": progress.step,
        "epochs": progress.epoch + 1,
        "train_wall_time_s": round(time.perf_counter() - steps.started, 2),
        "resumed_from_step": state.resumed_at,
        "trainable_parameters": sum(row.count for row in state.parameter_rows if row.trainable),
        "frozen_parameters": sum(row.count for row in state.parameter_rows if not row.trainable),
        "optimizer_state_numel": optimizer_state_numel(state.optimizer),
        "peak_memory_mb": peak_memory_mb(acc.device),
        "unread_positions_skipped": exp.skips_unread_positions,
        "frozen_tables_identical_across_processes": frozen_tables_agree(exp, state.model),
        **({"feature_cache": state.cache.report} if state.cache.report else {}),
    }
