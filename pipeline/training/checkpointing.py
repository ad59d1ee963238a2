"""Training checkpoints: saved by every process, sealed atomically by the main one, verified before use, the newest
K kept; and the exported model (`save_pretrained`) that a run folder and each checkpoint hold.

A checkpoint is `checkpoints/step-NNNNNNN/` holding `state/` (weights as safetensors and the optimizer state, through
Accelerate's `save_state`; the LR scheduler's state and every process's RNG states as JSON), `model/` (the exported
model, so `pipeline eval` works on it), `progress.json` (where in the data the run stands) and `complete.json`,
written last, which lists every file with its size and SHA-256. It is assembled under a hidden `.partial` name and
renamed into place, so a crash leaves either a whole checkpoint or a partial folder that resume ignores.

Nothing in a checkpoint can run code when loaded: tensors come from safetensors, the optimizer state is unpickled
with `weights_only=True` (plain tensors and numbers only), the rest is JSON; and a checkpoint whose files do not
match their checksums, or that holds files its manifest does not list, is not loaded at all.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from transformers import PreTrainedTokenizerBase

from pipeline.errors import PipelineError, first_line
from pipeline.paths import file_digest
from pipeline.surgery.tables import standard_state_dict

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
MARKER = "complete.json"
FORMAT = 2  # 1: sizes only, scheduler pickled by Accelerate (not loaded any more)
SCHEDULER_FILE = "scheduler.json"


@dataclass
class Progress:
    """Where a run stands: optimizer steps done, current epoch, micro-batches of it consumed, log lines written."""

    step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0
    log_lines: int = 0


def checkpoint_name(step: int) -> str:
    return f"step-{step:07d}"


def list_files(folder: Path) -> dict[str, dict[str, Any]]:
    """Relative path → size and SHA-256 of every file below `folder`."""
    return {
        str(p.relative_to(folder)): {"size": p.stat().st_size, "sha256": file_digest(p)}
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def partial_folder(run_dir: Path, step: int) -> Path:
    return run_dir / CHECKPOINTS / f".{checkpoint_name(step)}.partial"


def seal(run_dir: Path, step: int, progress: Progress, keep: int) -> Path:
    """Finish a checkpoint assembled in its partial folder: progress, manifest, atomic rename, pruning (main
    process)."""
    partial = partial_folder(run_dir, step)
    (partial / "progress.json").write_text(json.dumps(asdict(progress)) + "\n")
    manifest = {"format": FORMAT, "files": list_files(partial)}
    (partial / MARKER).write_text(json.dumps(manifest, indent=1) + "\n")
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
    """Why a checkpoint cannot be used (no manifest, an older format, a missing, changed or unlisted file), or None."""
    try:
        manifest = json.loads((checkpoint / MARKER).read_text())
        json.loads((checkpoint / "progress.json").read_text())
    except (OSError, ValueError):
        return f"no readable {MARKER} / progress.json"
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return "written by an older version (no checksums): it cannot be verified"
    expected = manifest["files"]
    present = {str(p.relative_to(checkpoint)) for p in checkpoint.rglob("*") if p.is_file()} - {MARKER}
    unlisted = sorted(present - set(expected))
    if unlisted:
        return f"{unlisted[0]} is not in the manifest"
    for name, entry in expected.items():
        path = checkpoint / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != entry["size"]:
            return f"{name} has {path.stat().st_size} bytes, expected {entry['size']}"
        if file_digest(path) != entry["sha256"]:
            return f"{name} does not match its checksum"
    return None


def latest_checkpoint(run_dir: Path) -> tuple[Path, Progress] | None:
    """The newest checkpoint that verifies, and its progress; the others are skipped with a warning."""
    for _, path in reversed(checkpoint_folders(run_dir)):
        problem = problem_with(path)
        if problem is None:
            return path, Progress(**json.loads((path / "progress.json").read_text()))
        log.warning("skipping checkpoint %s: %s", path, problem)
    return None


def rng_state() -> dict[str, Any]:
    """This process's Python, NumPy and torch (CPU and CUDA) RNG states, as JSON-ready values."""
    version, internal, gauss = random.getstate()
    name, keys, position, has_gauss, cached = np.random.get_state()
    state = {
        "python": [version, list(internal), gauss],
        "numpy": [name, keys.tolist(), position, has_gauss, cached],
        "torch": torch.get_rng_state().tolist(),
    }
    if torch.cuda.is_available():
        state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


def save_model(
    accelerator: Accelerator, model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, folder: Path
) -> None:
    """`save_pretrained` the unwrapped model and the tokenizer, so `AutoModel*.from_pretrained(folder)` works."""
    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(model)
    state_dict = standard_state_dict(unwrapped, accelerator.get_state_dict(model))
    if accelerator.is_main_process:
        unwrapped.save_pretrained(folder, state_dict=state_dict, save_function=accelerator.save)
        tokenizer.save_pretrained(folder)
    accelerator.wait_for_everyone()


@dataclass(frozen=True)
class Saving:
    """What a checkpoint is written from: the process group, the model and its tokenizer, the run folder, and how
    many checkpoints to keep."""

    accelerator: Accelerator
    tokenizer: PreTrainedTokenizerBase
    run_dir: Path
    keep: int


def save_checkpoint(saving: Saving, model: torch.nn.Module, scheduler: Any, progress: Progress) -> Path:
    """Full training state plus the exported model, assembled aside and renamed into place (all processes)."""
    acc, run_dir = saving.accelerator, saving.run_dir
    partial = partial_folder(run_dir, progress.step)
    acc.wait_for_everyone()
    if acc.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
    acc.wait_for_everyone()
    acc.save_state(str(partial / "state"))
    (partial / "state" / f"rng-{acc.process_index}.json").write_text(json.dumps(rng_state()))
    if acc.is_main_process:
        (partial / "state" / SCHEDULER_FILE).write_text(json.dumps(scheduler.state_dict()))
    save_model(acc, model, saving.tokenizer, partial / "model")
    if acc.is_main_process:
        seal(run_dir, progress.step, progress, saving.keep)
    acc.wait_for_everyone()
    return run_dir / CHECKPOINTS / checkpoint_name(progress.step)


def load_checkpoint(accelerator: Accelerator, scheduler: Any, checkpoint: Path) -> None:
    """Restore weights, optimizer, scheduler and RNG states from a verified checkpoint (all processes)."""
    state = checkpoint / "state"
    try:
        accelerator.load_state(str(state), load_kwargs={"weights_only": True})
        scheduler.load_state_dict(json.loads((state / SCHEDULER_FILE).read_text()))
        set_rng_state(json.loads((state / f"rng-{accelerator.process_index}.json").read_text()))
    except pickle.UnpicklingError:
        raise PipelineError(
            f"checkpoint {checkpoint} cannot be loaded safely (a state file holds Python objects other than "
            "tensors and numbers, which would run code; it was not loaded)",
            field="--resume",
        ) from None
    except Exception as error:  # safetensors, torch and JSON raise many types: all mean "unusable"
        raise PipelineError(
            f"checkpoint {checkpoint} cannot be loaded safely ({type(error).__name__}: {first_line(error)[:200]})",
            field="--resume",
        ) from None
