"""Vocabulary-transfer and diagnostics benchmark, with the real MiniLM on BBC News.

1. Transfer: a WordPiece tokenizer built on the training articles (`--vocab-size`, lower-cased) with the token
   table `init: transfer` (shared tokens copied, the others the mean of their old pieces) against the same new
   tokenizer with `init: random`, each × seeds through `pipeline sweep` (the quickstart recipe, one epoch, scored
   on its test split), then `pipeline compare` with the original tokenizer's runs (`--original`: the
   `token_embeddings=finetune` runs of benchmarks/sweeps.py's BBC sweep, which use the same settings) as the
   baseline: test macro-F1 with paired intervals, training time, and the tokens per article under each tokenizer.
   `methods`: the same new tokenizer and budget, its table made by each transfer method: `mean`, `focus`
   (sparsemax over shared tokens in fastText token vectors), `omp` (k 32, in the same vectors), and `random`;
   summary and plots copied into docs/benchmarks/sweeps/transplant-classification/.
2. Diagnostics: the quickstart recipe as shipped (`pipeline train`, wall time and test macro-F1 recorded), then
   `pipeline diagnose` on it: wordsim353 Spearman and analogy accuracy before and after fine-tuning, drift by
   token frequency; diagnostics.md and its pictures are copied into docs/benchmarks/diagnostics/quickstart/.

Usage:  .venv/bin/python benchmarks/vocabulary.py [--original /tmp/embedlab-sweeps/bbc] [--seeds 0,1,2] [--only
transfer methods diagnose] [--parallel 2]
Needs the `examples` extra, gensim (its test data holds wordsim353.tsv and questions-words.txt) and, for the
baseline, a finished BBC sweep from benchmarks/sweeps.py.
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
from sweeps import keep_report

REPO = Path(__file__).resolve().parent.parent


def pipeline(*arguments: str) -> float:
    """Run a `pipeline` command in a fresh process; returns its wall time."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipeline", *arguments], check=True, cwd=REPO)
    return time.perf_counter() - started


def transfer(args: argparse.Namespace) -> dict:
    output = args.scratch / "transfer"
    tokenizer = f"model.tokenizer={{build: wordpiece, vocab_size: {args.vocab_size}, lowercase: true}}"
    grid = "layers.token_embeddings={policy: replace, init: transfer},{policy: replace, init: random}"
    limit = [f"data.max_train_samples={args.train_samples}"] if args.train_samples else []
    wall = pipeline(
        "sweep",
        "recipes/quickstart.yaml",
        *ONE_FINAL_EVALUATION,
        *limit,
        tokenizer,
        "--grid",
        grid,
        "--seeds",
        args.seeds,
        "--output",
        str(output),
    )
    result = {
        "vocab_size": args.vocab_size,
        "train_articles": args.train_samples or "all",
        "sweep_wall_s": round(wall, 1),
        "summary": json.loads((output / "summary.json").read_text()),
    }
    first = json.loads((output / "sweep.json").read_text())["runs"][0]["output_dir"]
    result["vocabulary"] = json.loads((Path(first) / "input_layers.json").read_text())["vocabulary"]
    if args.original is not None:
        originals = sorted(str(p) for p in (args.original / "token_embeddings=finetune").glob("seed=*"))
        comparison = args.scratch / "transfer-compare"
        pipeline("compare", *originals, str(output), "--baseline", originals[0], "--output", str(comparison))
        result["against_original_tokenizer"] = json.loads((comparison / "summary.json").read_text())
        keep_report(comparison, "vocabulary-transfer")
    print(f"transfer sweep: {wall:.0f} s", flush=True)
    return result


def methods(args: argparse.Namespace) -> dict:
    """The transfer methods side by side on the new tokenizer (the `transfer` part's settings)."""
    output = args.scratch / "methods"
    tokenizer = f"model.tokenizer={{build: wordpiece, vocab_size: {args.vocab_size}, lowercase: true}}"
    tables = [f"{{policy: replace, init: transfer, transfer: {method}}}" for method in ("mean", "focus", "omp")]
    grid = "layers.token_embeddings=" + ",".join([*tables, "{policy: replace, init: random}"])
    limit = [f"data.max_train_samples={args.train_samples}"] if args.train_samples else []
    wall = pipeline("sweep", "recipes/quickstart.yaml", *ONE_FINAL_EVALUATION, *limit, tokenizer, "--grid", grid,
                    "--seeds", args.seeds, "--output", str(output), "--parallel", str(args.parallel))  # fmt: skip
    runs = json.loads((output / "sweep.json").read_text())["runs"]
    reports = {run["cell"]: json.loads((Path(run["output_dir"]) / "input_layers.json").read_text())
               for run in runs if run["seed"] == runs[0]["seed"]}  # fmt: skip
    rows = {cell: report["vocabulary"].get("rows") for cell, report in reports.items()}  # none for random rows
    keep_report(output, "transplant-classification")
    print(f"transfer methods sweep: {wall:.0f} s", flush=True)
    return {"vocab_size": args.vocab_size, "train_articles": args.train_samples or "all",
            "sweep_wall_s": round(wall, 1), "rows": rows,
            "summary": json.loads((output / "summary.json").read_text())}  # fmt: skip


def diagnose(args: argparse.Namespace) -> dict:
    run = args.scratch / "quickstart"
    train_wall = pipeline("train", "recipes/quickstart.yaml", f"output_dir={run}", "--overwrite")
    diagnose_wall = pipeline("diagnose", str(run), "--words", "government,football,film,economy,computer,music")
    result = {
        "quickstart": {"command_wall_time_s": round(train_wall, 1), **json.loads((run / "metrics.json").read_text())},
        "diagnose_wall_s": round(diagnose_wall, 1),
        "diagnostics": json.loads((run / "diagnostics" / "diagnostics.json").read_text()),
    }
    target = REPO / "docs" / "benchmarks" / "diagnostics" / "quickstart"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(
        run / "diagnostics", target, ignore=shutil.ignore_patterns("token-drift.csv")
    )  # 30k rows: kept out of git
    report = target / "diagnostics.md"  # the docs site checks links: the per-token file stays in the run folder
    report.write_text(
        report.read_text().replace(
            "[token-drift.csv](token-drift.csv)", "`token-drift.csv` in the run folder's `diagnostics/`"
        )
    )
    print(f"quickstart: {train_wall:.0f} s; diagnose: {diagnose_wall:.0f} s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--original",
        type=Path,
        help="the BBC sweep folder of benchmarks/sweeps.py (its finetune runs are the baseline)",
    )
    parser.add_argument("--vocab-size", type=int, default=16000)
    parser.add_argument(
        "--train-samples", type=int, help="a seeded subset of the training articles (as the --original sweep used)"
    )
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--only", nargs="*", default=["transfer", "methods", "diagnose"])
    parser.add_argument("--parallel", type=int, default=1, help="runs at once in the methods sweep")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/embedlab-vocabulary"))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results-vocabulary.json")
    args = parser.parse_args()
    args.scratch.mkdir(parents=True, exist_ok=True)
    parts = {"transfer": lambda: transfer(args), "methods": lambda: methods(args), "diagnose": lambda: diagnose(args)}
    run_parts(args.out, parts, args.only)


if __name__ == "__main__":
    main()
