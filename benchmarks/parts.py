"""What benchmarks/sweeps.py and benchmarks/vocabulary.py share: one evaluation at the end of one epoch, and a
results file filled part by part (each part written as soon as it ends, so a later failure keeps it)."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

ONE_FINAL_EVALUATION = [
    "train.epochs=1",
    "train.eval_every_steps=1000000",
    "train.checkpoint_every_epoch=false",
    "eval.splits=[test]",
]


def run_parts(out: Path, parts: dict[str, Callable[[], Any]], only: list[str]) -> None:
    """Run the parts named in `only`, each result stored under its name in `out` (other parts' results kept)."""
    result = json.loads(out.read_text()) if out.is_file() else {}
    result["machine"] = f"{platform.machine()} {platform.system()}, {os.cpu_count()} cores"
    for name, part in parts.items():
        if name in only:
            result[name] = part()
            out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
