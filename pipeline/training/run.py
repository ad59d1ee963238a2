"""A training run, start to end: check the run folder, build the experiment, prepare (and resume) the training
state, `fit`, then save the model and the final evaluation (cf. litgpt's setup → main → fit)."""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.evaluation.evaluate import write_final_evaluation
from pipeline.recipe.io import dump_recipe
from pipeline.recipe.schema import Recipe
from pipeline.training.checkpointing import Progress, latest_checkpoint, save_model
from pipeline.training.experiment import Experiment, setup
from pipeline.training.loop import fit
from pipeline.training.parameters import format_group_table
from pipeline.training.run_folder import RunFolder, check_output_dir
from pipeline.training.state import prepare_training, resume_training

log = logging.getLogger(__name__)


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
    """Prepare and (when asked) resume the training state, run `fit`, then save the model and the final scores."""
    acc, train_cfg = exp.accelerator, exp.recipe.train
    run = RunFolder.create(output_dir, acc.is_main_process, overwrite)
    acc.wait_for_everyone()
    run.write_text("recipe.yaml", dump_recipe(exp.recipe))
    state = prepare_training(exp)
    run.write_start_reports(state.parameter_rows, exp.input_report)
    acc.print(format_group_table(state.parameter_rows))
    if resume_from is not None:
        resume_training(exp, state, *resume_from, run)
    run.write_json("batching.json", state.plan)
    if train_cfg.report_to:
        acc.init_trackers("tensorboard", config={"lr": train_cfg.lr, "batch_size": train_cfg.batch_size, "seed": train_cfg.seed})
    summary = fit(exp, state, run)
    save_model(exp, state.model, output_dir / "model")
    write_final_evaluation(exp, state.model, run, summary)
    acc.end_training()
    return output_dir
