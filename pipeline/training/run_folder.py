"""The run folder: resolved recipe, parameter table, step log, metrics, predictions, saved model.

Only the main process writes. Each file is written to a temporary name and renamed into place, so a reader
never sees half a file; `metrics.json` is written last and marks a finished run. JSON files hold only finite
numbers (nan and inf are written as null).
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

from pipeline.console import LIBRARY_LOG, write_library_log
from pipeline.errors import PipelineError
from pipeline.experiment.report import InputLayerReport
from pipeline.locks import LOCK_NAME
from pipeline.storage import atomic_write, atomic_write_text, open_to_append, refuse_links
from pipeline.training.parameters import ParameterRow, format_parameter_tsv

# What a run folder of ours holds; --overwrite deletes a folder only when it holds nothing else.
RUN_ENTRIES = {
    "recipe.yaml",
    "fingerprints.json",
    "parameters.tsv",
    "input_layers.json",
    "vectors.txt",
    "batching.json",
    "log.jsonl",
    "metrics.json",
    "model",
    "checkpoints",
    "tensorboard",
    "trackers",
    "diagnostics",
    LIBRARY_LOG,
    LOCK_NAME,
}
RUN_PATTERNS = ("predictions-*.jsonl", "confusion-*.png", "position-loss-*.png", "diagnostics-step-*", ".*.partial",
                ".*.old")  # fmt: skip


def foreign_entries(path: Path) -> list[str]:
    """Entries of a folder that a run of ours does not write (sorted); a run folder has none, and a recipe.yaml."""
    names = sorted(entry.name for entry in path.iterdir())
    foreign = [
        name for name in names if name not in RUN_ENTRIES and not any(fnmatch.fnmatch(name, p) for p in RUN_PATTERNS)
    ]
    return foreign if "recipe.yaml" in names else (foreign or names)


def check_output_location(path: Path, field: str = "output_dir") -> None:
    """Refuse an output_dir that can never be a run folder: the working directory or a folder above it, a path
    below a regular file, or a place this user cannot write to."""
    resolved, here = path.resolve(), Path.cwd().resolve()
    if resolved == here or resolved in here.parents:
        raise PipelineError(
            f"'{path}' is the working directory or a folder above it; a run needs a folder of its own (e.g. "
            "runs/my-run)",
            field=field,
        )
    if path.exists() and not path.is_dir():
        raise PipelineError(f"'{path}' exists and is not a folder", field=field)
    existing = next(parent for parent in (resolved, *resolved.parents) if parent.exists())
    if not existing.is_dir():
        raise PipelineError(f"'{path}' would be inside '{existing}', which is a file", field=field)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PipelineError(f"cannot write to '{existing}' (permission denied)", field=field)


def check_output_dir(path: Path, overwrite: bool) -> None:
    """Refuse to reuse a non-empty folder unless the user asked for --overwrite, and even then unless it is a run
    folder of ours: --overwrite never deletes files a run did not write."""
    check_output_location(path)
    if overwrite and path.is_symlink():
        raise PipelineError(
            f"'{path}' is a symbolic link; --overwrite does not delete through links: give the folder itself",
            field="output_dir",
        )
    if not path.is_dir() or not any(path.iterdir()):
        return
    if not overwrite:
        raise PipelineError(
            f"'{path}' already holds a run; pass --overwrite or choose another output_dir", field="output_dir"
        )
    foreign = foreign_entries(path)
    if foreign:
        raise PipelineError(
            f"'{path}' is not a run folder (it holds {', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}); "
            "--overwrite only replaces a run folder: choose another output_dir",
            field="output_dir",
        )


def changed_splits(run_dir: Path, fingerprints: dict[str, str]) -> list[str] | None:
    """The splits whose data differs from what the run recorded in `fingerprints.json` (None: it recorded none)."""
    saved = run_dir / "fingerprints.json"
    if not saved.is_file():
        return None
    recorded = json.loads(saved.read_text())
    return sorted(name for name in set(recorded) | set(fingerprints) if recorded.get(name) != fingerprints.get(name))


def json_ready(value: Any) -> Any:
    """`value` with every non-finite float (nan, inf) as None: JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    return value


def to_json(value: Any, indent: int | None = None) -> str:
    return json.dumps(json_ready(value), indent=indent, allow_nan=False)


APPENDED = ("log.jsonl", LIBRARY_LOG)  # the run folder's files a resumed run appends to


class RunFolder:
    """Writes the files of one run; a no-op on every process but the main one."""

    def __init__(self, path: Path, is_main: bool):
        self.path = path
        self.is_main = is_main
        log_file = path / "log.jsonl"
        self.log_lines = len(log_file.read_text(encoding="utf-8").splitlines()) if is_main and log_file.is_file() else 0

    @classmethod
    def create(cls, path: Path, is_main: bool, overwrite: bool) -> RunFolder:
        if is_main:
            try:
                if overwrite and path.is_dir() and not path.is_symlink():
                    for entry in path.iterdir():  # all but the lock this run holds
                        if entry.name != LOCK_NAME:
                            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
                path.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise PipelineError(f"cannot create '{path}' ({error.strerror or error})", field="output_dir") from None
            refuse_links(path, APPENDED, field="output_dir")  # a received folder: nothing appended outside it
            write_library_log(path)  # what the libraries said while the run was built, and from now on
        return cls(path, is_main)

    def write_text(self, name: str, text: str) -> None:
        if not self.is_main:
            return
        atomic_write_text(self.path / name, text)

    def write_json(self, name: str, value: Any) -> None:
        self.write_text(name, to_json(value, indent=2) + "\n")

    def write_jsonl(self, name: str, rows: list[dict[str, Any]]) -> None:
        self.write_text(name, "".join(to_json(row) + "\n" for row in rows))

    def write_start_reports(self, rows: list[ParameterRow], input_report: InputLayerReport) -> None:
        """What the run starts from: the parameter table and what each input layer is (with data counts)."""
        self.write_text("parameters.tsv", format_parameter_tsv(rows))
        self.write_json("input_layers.json", input_report.to_json())
        trained = input_report.surgery and input_report.surgery.trained_vectors
        if trained is not None and self.is_main:  # word2vec text format, for `diagnose` and other tools
            source = Path(trained["vectors_file"])
            atomic_write(self.path / "vectors.txt", lambda partial: shutil.copyfile(source, partial))

    def log(self, record: dict[str, Any]) -> None:
        """Append one line to `log.jsonl` (flushed at once, so a crash keeps every line written before)."""
        if self.is_main:
            with open_to_append(self.path / "log.jsonl") as handle:
                handle.write(to_json(record) + "\n")
            self.log_lines += 1

    def truncate_log(self, lines: int) -> None:
        """Keep the first `lines` lines of `log.jsonl` (what a resumed checkpoint had seen)."""
        if self.is_main and (self.path / "log.jsonl").is_file():
            kept = (self.path / "log.jsonl").read_text(encoding="utf-8").splitlines()[:lines]
            self.write_text("log.jsonl", "".join(line + "\n" for line in kept))
            self.log_lines = len(kept)
