"""The run folder: resolved recipe, parameter table, step log, metrics, predictions, saved model.

Only the main process writes. Each file is written to a temporary name and renamed into place, so a reader
never sees half a file; `metrics.json` is written last and marks a finished run.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.training.parameters import ParameterRow, format_parameter_tsv


def check_output_dir(path: Path, overwrite: bool) -> None:
    """Refuse to reuse a non-empty run folder unless the user asked for --overwrite."""
    if path.exists() and not path.is_dir():
        raise PipelineError(f"'{path}' exists and is not a folder", field="output_dir")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise PipelineError(f"'{path}' already holds a run; pass --overwrite or choose another output_dir", field="output_dir")


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
            if overwrite and path.is_dir():
                shutil.rmtree(path)
            path.mkdir(parents=True, exist_ok=True)
        return cls(path, is_main)

    def write_text(self, name: str, text: str) -> None:
        if not self.is_main:
            return
        target = self.path / name
        partial = target.with_name(f".{target.name}.partial")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, target)

    def write_json(self, name: str, value: Any) -> None:
        self.write_text(name, json.dumps(value, indent=2) + "\n")

    def write_jsonl(self, name: str, rows: list[dict[str, Any]]) -> None:
        self.write_text(name, "".join(json.dumps(row) + "\n" for row in rows))

    def write_start_reports(self, rows: list[ParameterRow], input_report: dict[str, Any]) -> None:
        """What the run starts from: the parameter table and what each input layer is (with data counts)."""
        self.write_text("parameters.tsv", format_parameter_tsv(rows))
        self.write_json("input_layers.json", input_report)

    def log(self, record: dict[str, Any]) -> None:
        """Append one line to `log.jsonl` (flushed at once, so a crash keeps every line written before)."""
        if self.is_main:
            with open(self.path / "log.jsonl", "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
            self.log_lines += 1

    def truncate_log(self, lines: int) -> None:
        """Keep the first `lines` lines of `log.jsonl` (what a resumed checkpoint had seen)."""
        if self.is_main and (self.path / "log.jsonl").is_file():
            kept = (self.path / "log.jsonl").read_text(encoding="utf-8").splitlines()[:lines]
            self.write_text("log.jsonl", "".join(line + "\n" for line in kept))
            self.log_lines = len(kept)
