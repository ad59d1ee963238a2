"""The quickstart's wall time before and after a change: `pipeline train recipes/quickstart.yaml` exactly as the
README runs it (the recipe's own seed and settings), from two checkouts in the same virtual environment, alternated
within each repeat so that the machine's drift falls on both.

Per run: the whole command's wall time (interpreter start to exit), the training loop's and the final evaluation's
seconds from `metrics.json` (where the checkout records them), the rest (imports, loading, tokenising, writing), and
the test macro-F1. Medians over repeats.

Usage:
    git worktree add /tmp/bench-before e3965a6
    .venv/bin/python benchmarks/quickstart_time.py --before /tmp/bench-before [--repeats 2]
Needs the `examples` extra. Run it alone: two torch processes on two cores slow each other.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def quickstart(checkout: Path, output: Path) -> dict[str, Any]:
    """One `pipeline train recipes/quickstart.yaml` of `checkout`'s package in a fresh interpreter."""
    shutil.rmtree(output, ignore_errors=True)
    recipe = checkout / "recipes" / "quickstart.yaml"
    command = [sys.executable, "-m", "pipeline", "train", str(recipe), f"output_dir={output}"]
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=checkout, env={**os.environ, "PYTHONPATH": str(checkout)},
                   stdout=subprocess.DEVNULL)  # fmt: skip
    wall = time.perf_counter() - started
    metrics = json.loads((output / "metrics.json").read_text())
    train = metrics["train"]
    evaluation = train.get("eval_wall_time_s")
    result = {"wall_s": round(wall, 1), "train_s": train["train_wall_time_s"], "eval_s": evaluation}
    if evaluation is not None:
        result["rest_s"] = round(wall - train["train_wall_time_s"] - evaluation, 1)
    result["test_f1_macro"] = metrics["test"]["f1_macro"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True, help="the checkout before the change")
    parser.add_argument("--after", type=Path, default=REPO, help="the checkout after it (this one by default)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/embedlab-quickstart-time"))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results-quickstart-time.json")
    args = parser.parse_args()
    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    for repeat in range(args.repeats):
        order = ["before", "after"] if repeat % 2 == 0 else ["after", "before"]
        for name in order:
            checkout = getattr(args, name).resolve()
            result = quickstart(checkout, args.scratch / name)
            runs[name].append(result)
            print(f"repeat {repeat} {name}: {json.dumps(result)}", flush=True)
    summary = {}
    for name, results in runs.items():
        summary[name] = {"median_wall_s": round(statistics.median(r["wall_s"] for r in results), 1), "runs": results}
        summary[name]["checkout"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=getattr(args, name)
        ).stdout.strip()
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({name: s["median_wall_s"] for name, s in summary.items()}))


if __name__ == "__main__":
    main()
