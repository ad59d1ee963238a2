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

import dataclasses
import hashlib
import json
import logging
import math
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
from pipeline.storage import disk_failure
from pipeline.surgery.lora import ADAPTER, lora_layers, save_adapter
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
    files = list_files(partial)
    manifest = {"format": FORMAT, "files": files, "tie": tie_digest(step, files)}
    (partial / MARKER).write_text(json.dumps(manifest, indent=1) + "\n")
    final = run_dir / CHECKPOINTS / checkpoint_name(step)
    if final.exists():
        shutil.rmtree(final)
    os.replace(partial, final)
    for _, old in checkpoint_folders(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def tie_digest(step: int, files: dict[str, dict[str, Any]]) -> str:
    """One digest over the checkpoint's step and every file's checksum (weights, optimizer, scheduler, progress):
    each file's own checksum cannot tell that weights were swapped with another step's and their entry rewritten."""
    digest = hashlib.sha256(f"{checkpoint_name(step)}\n".encode())
    for name in sorted(files):
        digest.update(f"{name}\0{files[name].get('sha256')}\n".encode())
    return digest.hexdigest()


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


def progress_problem(record: Any) -> str | None:
    """Why a `progress.json` record is not one (its keys and non-negative integer values), or None. Checked even
    when the manifest matches: a manifest is as easy to rewrite as the file."""
    fields = [f.name for f in dataclasses.fields(Progress)]
    if not isinstance(record, dict) or sorted(record) != sorted(fields):
        return f"progress.json must hold exactly {', '.join(fields)}"
    bad = [key for key, value in record.items() if type(value) is not int or not 0 <= value < 2**53]
    return f"progress.json: {bad[0]} is not a count" if bad else None


def schedule_problem(saved: Any, current: dict[str, Any]) -> str | None:
    """Why a saved LR-scheduler state does not fit this run's scheduler (its keys and the kinds of their values),
    or None."""
    if not isinstance(saved, dict) or sorted(saved) != sorted(current):
        return f"{SCHEDULER_FILE} does not hold this run's scheduler state"
    for key, value in current.items():
        kind = (int, float) if isinstance(value, int | float) and not isinstance(value, bool) else type(value)
        if not isinstance(saved[key], kind) or isinstance(saved[key], bool) != isinstance(value, bool):
            return f"{SCHEDULER_FILE}: {key} is not a {getattr(kind, '__name__', 'number')}"
        if isinstance(value, list) and len(saved[key]) != len(value):
            return f"{SCHEDULER_FILE}: {key} has {len(saved[key])} entries, expected {len(value)}"
        if isinstance(saved[key], float) and not math.isfinite(saved[key]):
            return f"{SCHEDULER_FILE}: {key} is not finite"
    return None


def links_in(folder: Path) -> list[str]:
    """Entries below `folder` that are symbolic links (never followed: a checkpoint's files are its own)."""
    found = []
    for root, directories, files in os.walk(folder, followlinks=False):
        found += [
            str(Path(root, name).relative_to(folder))
            for name in [*directories, *files]
            if Path(root, name).is_symlink()
        ]
    return sorted(found)


def problem_with(checkpoint: Path) -> str | None:
    """Why a checkpoint cannot be used (a link, no manifest, an older format, a missing, changed or unlisted file,
    a progress record that is not one), or None."""
    if checkpoint.is_symlink() or links_in(checkpoint):
        return f"{(links_in(checkpoint) or [checkpoint.name])[0]} is a symbolic link"
    try:
        manifest = json.loads((checkpoint / MARKER).read_text())
        progress = json.loads((checkpoint / "progress.json").read_text())
    except (OSError, ValueError):
        return f"no readable {MARKER} / progress.json"
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != FORMAT
        or not isinstance(manifest.get("files"), dict)
    ):
        return "written by an older version (no checksums): it cannot be verified"
    if progress_problem(progress):
        return progress_problem(progress)
    if checkpoint_name(progress["step"]) != checkpoint.name:
        return f"progress.json says step {progress['step']}, the folder {checkpoint.name}"
    expected = manifest["files"]
    if manifest.get("tie") != tie_digest(progress["step"], expected):
        return f"its files are not the ones it was sealed with ({MARKER}'s digest over them differs)"
    present = {str(p.relative_to(checkpoint)) for p in checkpoint.rglob("*") if p.is_file()} - {MARKER}
    unlisted = sorted(present - set(expected))
    if unlisted:
        return f"{unlisted[0]} is not in the manifest"
    for name, entry in expected.items():
        path = checkpoint / name
        if not path.is_file():
            return f"{name} is missing"
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            return f"the manifest's entry for {name} is not a file record"
        if path.stat().st_size != entry.get("size"):
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
        try:
            unwrapped.save_pretrained(folder, state_dict=state_dict, save_function=accelerator.save)
            tokenizer.save_pretrained(folder)
            if lora_layers(unwrapped):  # the adapter beside the merged weights
                save_adapter(unwrapped, folder / ADAPTER)
        except Exception as error:  # a full disk, as torch, safetensors or Python report it
            failure = disk_failure(error, folder.parent)
            if failure is None:
                raise
            shutil.rmtree(folder, ignore_errors=True)  # no half-written model a reader could take for whole
            raise PipelineError(failure, field="output_dir") from None
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
    try:
        acc.save_state(str(partial / "state"))
        (partial / "state" / f"rng-{acc.process_index}.json").write_text(json.dumps(rng_state()))
        if acc.is_main_process:
            (partial / "state" / SCHEDULER_FILE).write_text(json.dumps(scheduler.state_dict()))
        save_model(acc, model, saving.tokenizer, partial / "model")
        if acc.is_main_process:
            seal(run_dir, progress.step, progress, saving.keep)
    except Exception as error:  # torch, safetensors and Python report a full disk in their own ways
        failure = disk_failure(error, run_dir)
        if failure is None:
            raise
        shutil.rmtree(partial, ignore_errors=True)  # never sealed: resume ignores it; gone, it frees the space
        raise PipelineError(failure, field="output_dir") from None
    acc.wait_for_everyone()
    return run_dir / CHECKPOINTS / checkpoint_name(progress.step)


def load_checkpoint(accelerator: Accelerator, scheduler: Any, checkpoint: Path, step: int) -> None:
    """Restore weights, optimizer, scheduler and RNG states from a verified checkpoint of `step` (all processes)."""
    state = checkpoint / "state"
    try:
        saved_schedule = json.loads((state / SCHEDULER_FILE).read_text())
        problem = schedule_problem(saved_schedule, scheduler.state_dict())
        if problem is None and saved_schedule.get("last_epoch") != step:  # stepped once per optimizer step
            problem = f"{SCHEDULER_FILE} was saved at step {saved_schedule.get('last_epoch')}, not {step}"
        if problem is not None:
            raise PipelineError(f"checkpoint {checkpoint}: {problem}; it was not loaded", field="--resume")
        accelerator.load_state(str(state), load_kwargs={"weights_only": True})
        scheduler.load_state_dict(saved_schedule)
        set_rng_state(json.loads((state / f"rng-{accelerator.process_index}.json").read_text()))
    except PipelineError:
        raise
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
