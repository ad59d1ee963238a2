"""Power beside false alarms: how often the sweep report calls a known difference real, and a non-difference real,
with 3, 5 and 8 seeds per cell, before and after Holm's correction over the comparisons of one report.

`run` trains (each part one `pipeline sweep`, `--parallel 2`) the bi-LSTM Brown genre setup of
`benchmarks/calibration.py` (1,500 training sentences, 1 epoch, 2,000 test sentences, fresh 128-wide bi-LSTM):
  power-base     the plain recipe (the token table trains), seeds 0..63
  power-freeze   the token table frozen at its random start, seeds 0..31
  power-flip10   10% of the training labels replaced by another genre at random (seeded), seeds 0..31
  power-flip30   30% of them, seeds 0..31
`analyse` cuts the runs into disjoint mini-sweeps: per trial, a baseline cell of k base seeds, an A/A cell of k
other base seeds (no difference: its calls are false alarms), and k seeds of each effect; the four cells against
the baseline on accuracy and macro-F1 are 8 comparisons, and Holm's correction runs over those 8 as the report's
does. It counts the comparisons called real (raw, and after correction), over disjoint trials (with a
Clopper-Pearson interval) and over 300 random draws (overlapping, so no binomial interval).

Usage:  .venv/bin/python benchmarks/power.py run ;  .venv/bin/python benchmarks/power.py analyse
Needs the Brown files in ../shared/data/brown.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from calibration import as_cell, bilstm_genre_recipe, clopper_pearson, pool_runs, sweep

from pipeline.sweeps.results import CellSummary, Spread
from pipeline.sweeps.statistics import correct_for_many, paired_comparison


def comparison_cell(versus: dict) -> CellSummary:
    """A cell holding only its comparisons with the baseline (what Holm's correction reads)."""
    nothing = Spread(None, None, [])
    return CellSummary(0, [], {}, nothing, nothing, vs_baseline=versus)


BASE_SEEDS, EFFECT_SEEDS = 64, 32
EFFECTS = {"freeze": "token table frozen at random", "flip10": "10% labels flipped", "flip30": "30% labels flipped"}
SEED_COUNTS = (3, 5, 8)


def flipped_labels(brown: Path, share: float, scratch: Path) -> Path:
    """The genre training file with `share` of its labels replaced by another genre (seeded by the share)."""
    rows = [json.loads(line) for line in (brown / "genre-train.jsonl").read_text().splitlines() if line.strip()]
    genres = sorted({row["genre"] for row in rows})
    rng = random.Random(int(share * 100))
    for row in rng.sample(rows, round(share * len(rows))):
        row["genre"] = rng.choice([genre for genre in genres if genre != row["genre"]])
    path = scratch / f"genre-train-flip{round(share * 100)}.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def run(args: argparse.Namespace) -> None:
    scratch, brown = args.scratch, args.brown.resolve()
    scratch.mkdir(parents=True, exist_ok=True)
    recipe = bilstm_genre_recipe(scratch, brown)
    base_seeds, effect_seeds = ",".join(map(str, range(BASE_SEEDS))), ",".join(map(str, range(EFFECT_SEEDS)))
    parts = {
        "power-base": ([], base_seeds),
        "power-freeze": (["layers.token_embeddings=freeze"], effect_seeds),
        "power-flip10": ([f"data.files.train={flipped_labels(brown, 0.1, scratch)}"], effect_seeds),
        "power-flip30": ([f"data.files.train={flipped_labels(brown, 0.3, scratch)}"], effect_seeds),
    }
    walls = json.loads((scratch / "walls.json").read_text()) if (scratch / "walls.json").is_file() else {}
    for name in args.parts:
        overrides, seeds = parts[name]
        started = time.perf_counter()
        sweep(recipe, overrides, [], seeds, scratch / name, args.parallel)
        walls[name] = round(time.perf_counter() - started, 1)
        (scratch / "walls.json").write_text(json.dumps(walls, indent=2))


def trial(base: list, aa: list, effects: dict[str, list]) -> dict[str, dict[str, dict[str, bool]]]:
    """One mini-sweep: every cell against the baseline, each score's raw and Holm-corrected verdict."""
    baseline = as_cell(base, "base")
    cells = {"aa": comparison_cell(paired_comparison(as_cell(aa, "aa"), baseline, "test"))}
    for name, runs in effects.items():
        cells[name] = comparison_cell(paired_comparison(as_cell(runs, name), baseline, "test"))
    correct_for_many(cells, 0.95)
    return {
        name: {
            score: {"raw": entry.excludes_zero, "corrected": bool(entry.real_after_correction)}
            for score, entry in cell.vs_baseline.items()
        }
        for name, cell in cells.items()
    }


def tally(trials: list[dict[str, Any]], with_interval: bool) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for cell in trials[0]:
        for score in trials[0][cell]:
            row = {"trials": len(trials)}
            for rule in ("raw", "corrected"):
                hits = sum(t[cell][score][rule] for t in trials)
                row[rule] = {"called_real": hits, "rate": round(hits / len(trials), 3)}
                if with_interval:
                    row[rule]["ci"] = clopper_pearson(hits, len(trials))
            table.setdefault(cell, {})[score] = row
    return table


def analyse(args: argparse.Namespace) -> None:
    base = pool_runs(args.scratch / "power-base")
    effects = {name: pool_runs(args.scratch / f"power-{name}") for name in EFFECTS}
    result: dict[str, Any] = {"effects": EFFECTS, "base_runs": len(base)}
    scores = ("accuracy", "f1_macro")
    result["means"] = {
        name: {score: round(sum(r.scores["test"][score] for r in runs) / len(runs), 4) for score in scores}
        for name, runs in {"base": base, **effects}.items()
    }
    for k in SEED_COUNTS:
        count = min(len(base) // (2 * k), *(len(runs) // k for runs in effects.values()))
        disjoint = [
            trial(
                base[2 * k * t : 2 * k * t + k],
                base[2 * k * t + k : 2 * k * (t + 1)],
                {name: runs[k * t : k * (t + 1)] for name, runs in effects.items()},
            )
            for t in range(count)
        ]
        rng, drawn = random.Random(k), []
        for _ in range(args.random_draws):
            chosen = rng.sample(base, 2 * k)
            drawn.append(trial(chosen[:k], chosen[k:], {n: rng.sample(r, k) for n, r in effects.items()}))
        result[f"{k}_seeds"] = {"disjoint": tally(disjoint, True), "random_draws": tally(drawn, False)}
        print(f"{k} seeds done", flush=True)
    if (args.scratch / "walls.json").is_file():
        result["walls_s"] = json.loads((args.scratch / "walls.json").read_text())
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))


def markdown(result: dict[str, Any]) -> str:
    """The docs table: per cell and score, the share called real over random draws (raw → corrected)."""
    lines = ["| cell | score | " + " | ".join(f"{k} seeds" for k in SEED_COUNTS) + " |", "|---|---|---|---|---|"]
    names = {"aa": "A/A (no difference)", **EFFECTS}
    for cell, label in names.items():
        for score in ("accuracy", "f1_macro"):
            rates = []
            for k in SEED_COUNTS:
                row = result[f"{k}_seeds"]["random_draws"][cell][score]
                rates.append(f"{row['raw']['rate']:.2f} → {row['corrected']['rate']:.2f}")
            lines.append(f"| {label} | {score} | " + " | ".join(rates) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["run", "analyse"])
    parser.add_argument("--parts", nargs="*", default=["power-base", "power-freeze", "power-flip10", "power-flip30"])
    parser.add_argument("--brown", type=Path, default=REPO.parent / "shared" / "data" / "brown")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/embedlab-power"))
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--random-draws", type=int, default=300)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results-power.json")
    args = parser.parse_args()
    run(args) if args.action == "run" else analyse(args)


if __name__ == "__main__":
    main()
