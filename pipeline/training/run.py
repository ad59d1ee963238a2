"""A training run, start to end: check the run folder, build the experiment, prepare (and resume) the training
state, `fit`, then save the model and the final evaluation (cf. litgpt's setup → main → fit)."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from accelerate import Accelerator

from pipeline.console import write_library_log
from pipeline.data.sources import data_fingerprint
from pipeline.errors import PipelineError
from pipeline.experiment.build import Experiment, build_experiment
from pipeline.locks import folder_lock
from pipeline.recipe.io import dump_recipe, holds_recipe, tracker_config
from pipeline.recipe.schema import Recipe
from pipeline.training.card import write_model_card
from pipeline.training.checkpointing import Progress, latest_checkpoint, save_model
from pipeline.training.final import write_final_evaluation
from pipeline.training.loop import fit
from pipeline.training.parameters import format_group_table
from pipeline.training.run_folder import (
    RunFolder,
    changed_splits,
    check_output_dir,
    check_output_location,
    foreign_entries,
)
from pipeline.training.state import TrainingState, prepare_training, resume_training

log = logging.getLogger(__name__)
FINGERPRINTS = "fingerprints.json"


@dataclass
class RunStart:
    """Where a run starts: its folder, the checkpoint to resume from (None: from the beginning), whether an
    existing run folder is replaced first, and the fingerprints of the data it trains on."""

    output_dir: Path
    checkpoint: tuple[Path, Progress] | None
    replace: bool
    fingerprints: dict[str, str]
    held: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)  # the run folder's lock, once taken
    locked: bool = False


def hold_run_folder(start: RunStart) -> None:
    """Take the run folder's lock (the main process of a launch, once the folder exists): a second writer is
    refused with one line naming this process."""
    if start.locked or os.environ.get("RANK", "0") != "0" or not start.output_dir.is_dir():
        return
    start.held.enter_context(folder_lock(start.output_dir))
    start.locked = True


def _check_resumable(recipe: Recipe, output_dir: Path, fingerprints: dict[str, str]) -> None:
    """A run is resumed only with the recipe and data it started with, and only while it is unfinished."""
    if foreign_entries(output_dir):
        raise PipelineError(
            f"'{output_dir}' holds files a run does not write; it cannot be resumed", field="output_dir"
        )
    if not holds_recipe(output_dir / "recipe.yaml", recipe):
        raise PipelineError(
            f"the recipe differs from the one {output_dir} was started with ({output_dir / 'recipe.yaml'}); resume "
            "needs the same recipe",
            field="output_dir",
        )
    if (output_dir / "metrics.json").is_file():
        raise PipelineError(
            f"the run in {output_dir} already finished; use --overwrite to train it again", field="output_dir"
        )
    changed = changed_splits(output_dir, fingerprints)
    if changed is None:
        log.warning("%s records no data fingerprints: cannot check that the data is unchanged", output_dir)
        return
    if changed:
        raise PipelineError(
            f"the data changed since {output_dir} was started (split {', '.join(changed)}); resume needs the same data",
            field="data",
        )


def start_run(recipe: Recipe, overwrite: bool, resume: bool) -> RunStart:
    """Check the run folder before anything is built: refuse to clobber a run, or find where to resume."""
    output_dir = Path(recipe.output_dir)
    fingerprints = data_fingerprint(recipe.data)
    if not (resume and (output_dir / "recipe.yaml").is_file()):
        check_output_dir(output_dir, overwrite)
        return RunStart(output_dir, None, overwrite, fingerprints)
    check_output_location(output_dir)
    _check_resumable(recipe, output_dir, fingerprints)
    checkpoint = latest_checkpoint(output_dir)
    if checkpoint is None:
        log.warning("no usable checkpoint in %s: starting from the beginning, with a clean run folder", output_dir)
    return RunStart(output_dir, checkpoint, checkpoint is None, fingerprints)


def train(recipe: Recipe, overwrite: bool = False, resume: bool = False) -> Path:
    """Fine-tune as the recipe says and write the run folder; returns its path.

    resume: continue the run in `output_dir` from its newest whole checkpoint (or start it, if there is none).
    """
    start = start_run(recipe, overwrite, resume)
    with start.held:  # an existing folder is locked before anything is built; a failed build releases it
        hold_run_folder(start)
        exp = build_experiment(recipe, start.checkpoint[0] / "model" if start.checkpoint else None)
        return train_experiment(exp, start)


def train_experiment(exp: Experiment, start: RunStart) -> Path:
    """Prepare and (when asked) resume the training state, run `fit`, then save the model and the final scores."""
    with start.held:
        hold_run_folder(start)  # an existing folder: before --overwrite clears it
        run = RunFolder.create(start.output_dir, exp.accelerator.is_main_process, start.replace)
        hold_run_folder(start)  # a folder this run created
        try:
            return _train_in(exp, start, run)
        finally:
            write_library_log(None)


def end_together(acc: Accelerator, state: TrainingState) -> None:
    """Every process ends its process group together (not one while another still writes), the DDP wrapper first.

    Why the order: the DDP reducer's Python binding frees it holding the GIL. Were the reducer the last owner of the
    gloo process group, the group's destructor would join its worker threads under the GIL while a worker may still
    need the GIL to free a tensor of the last collective: a deadlock, seen in about 1 of 20 two-process runs. Holding
    `group` while the wrapper goes leaves the group's last reference to its own binding, which frees it without the
    GIL (in `end_training`)."""
    acc.wait_for_everyone()
    group = getattr(state.model, "process_group", None)
    state.model = acc.unwrap_model(state.model)
    acc.free_memory()  # drops Accelerate's references to the wrapper
    gc.collect()  # the wrapper sits in reference cycles: it goes here, while `group` holds the process group
    del group
    acc.end_training()


def _train_in(exp: Experiment, start: RunStart, run: RunFolder) -> Path:
    acc, train_cfg = exp.accelerator, exp.recipe.train
    acc.wait_for_everyone()
    run.write_text("recipe.yaml", dump_recipe(exp.recipe))
    if start.checkpoint is None:
        run.write_json(FINGERPRINTS, start.fingerprints)
    state = prepare_training(exp)
    try:
        run.write_start_reports(state.parameter_rows, exp.input_report)
        acc.print(format_group_table(state.parameter_rows))
        if start.checkpoint is not None:
            resume_training(exp, state, *start.checkpoint, run)
        run.write_json("batching.json", state.plan)
        if train_cfg.report_to:
            acc.init_trackers(start.output_dir.name, config=tracker_config(exp.recipe))
        summary = fit(exp, state, run)
        save_model(acc, state.model, exp.tokenizer, start.output_dir / "model")
        if run.is_main:  # what the task adds to a saved model (a sentence encoder's pooling, for sentence-transformers)
            exp.task.write_model_extras(start.output_dir / "model", exp.max_length)
        write_final_evaluation(exp, state.cache.data, state.model, run, summary)
        if run.is_main:
            write_model_card(start.output_dir)  # from the run folder just written: policies, data, scores, recipe
        end_together(acc, state)
    finally:
        state.cache.remove_hooks()  # the model leaves the run as the experiment built it (its weights trained)
    return start.output_dir
