"""Training checkpoints: saved by every process, sealed atomically by the main one, checked before use, the newest
K kept; and the exported model (`save_pretrained`) that a run folder and each checkpoint hold.

A checkpoint is `checkpoints/step-NNNNNNN/` holding `state/` (Accelerate `save_state`: model, optimizer,
scheduler, RNG and sampler states of every process), `model/` (the exported model, so `pipeline eval` works on
it), `progress.json` (where in the data the run stands) and `complete.json`, written last, which lists every
file with its size. It is assembled under a hidden `.partial` name and renamed into place, so a crash leaves
either a whole checkpoint or a partial folder that resume ignores.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from pipeline.surgery.tables import standard_state_dict

if TYPE_CHECKING:
    from pipeline.training.experiment import Experiment

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
MARKER = "complete.json"


@dataclass
class Progress:
    """Where a run stands: optimizer steps done, current epoch, micro-batches of it consumed, log lines written."""

    step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0
    log_lines: int = 0


def checkpoint_name(step: int) -> str:
    return f"step-{step:07d}"


def list_files(folder: Path) -> dict[str, int]:
    """Relative path → size of every file below `folder`."""
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


def partial_folder(run_dir: Path, step: int) -> Path:
    return run_dir / CHECKPOINTS / f".{checkpoint_name(step)}.partial"


def seal(run_dir: Path, step: int, progress: Progress, keep: int) -> Path:
    """Finish a checkpoint assembled in its partial folder: progress, marker, atomic rename, pruning (main process)."""
    partial = partial_folder(run_dir, step)
    (partial / "progress.json").write_text(json.dumps(asdict(progress)) + "\n")
    (partial / MARKER).write_text(json.dumps(list_files(partial), indent=1) + "\n")
    final = run_dir / CHECKPOINTS / checkpoint_name(step)
    if final.exists():
        shutil.rmtree(final)
    os.replace(partial, final)
    for _, old in checkpoint_folders(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def checkpoint_folders(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, folder) of every non-partial checkpoint folder, oldest first."""
    folder = run_dir / CHECKPOINTS
    found = []
    for path in folder.glob("step-*") if folder.is_dir() else []:
        try:
            found.append((int(path.name.removeprefix("step-")), path))
        except ValueError:
            continue
    return sorted(found)


def problem_with(checkpoint: Path) -> str | None:
    """Why a checkpoint cannot be used (missing marker, missing or truncated file), or None if it is whole."""
    marker = checkpoint / MARKER
    try:
        expected = json.loads(marker.read_text())
        json.loads((checkpoint / "progress.json").read_text())
    except (OSError, ValueError):
        return f"no readable {MARKER} / progress.json"
    for name, size in expected.items():
        path = checkpoint / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, expected {size}"
    return None


def latest_checkpoint(run_dir: Path) -> tuple[Path, Progress] | None:
    """The newest whole checkpoint and its progress; broken ones are skipped with a warning."""
    for _, path in reversed(checkpoint_folders(run_dir)):
        problem = problem_with(path)
        if problem is None:
            return path, Progress(**json.loads((path / "progress.json").read_text()))
        log.warning("skipping checkpoint %s: %s", path, problem)
    return None


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


def save_checkpoint(exp: Experiment, model: torch.nn.Module, run_dir: Path, progress: Progress) -> Path:
    """Full training state plus the exported model, assembled aside and renamed into place (all processes)."""
    acc = exp.accelerator
    partial = partial_folder(run_dir, progress.step)
    acc.wait_for_everyone()
    if acc.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
    acc.wait_for_everyone()
    acc.save_state(str(partial / "state"))
    save_model(exp, model, partial / "model")
    if acc.is_main_process:
        seal(run_dir, progress.step, progress, exp.recipe.train.keep_checkpoints)
    acc.wait_for_everyone()
    return run_dir / CHECKPOINTS / checkpoint_name(progress.step)
