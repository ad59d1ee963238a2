"""Static vectors trained on the corpus, the classical rows, and the shared-table question, on the Brown corpus
(../shared/data/brown), each part one `pipeline sweep` (`--parallel 2`, seeds 0,1,2):

  genre      MiniLM on Brown genre classification (1,500 training sentences, 1 epoch, 2,000 test sentences: the
             calibration setup) × token table {pretrained (fine-tuned), skip-gram, CBOW, fastText, random}, with the
             classical rows TF-IDF, Doc2Vec and the frozen encoder's mean vector
  pos        the same token tables on Brown POS tagging (2,000 training sentences, 1 epoch, 500 test sentences);
             tagging has no classical row
  bilstm     a small fresh bi-LSTM (word vocabulary built on the training text, 128 wide, 1 layer) on Brown POS
             (2,000 training sentences, 3 epochs, 500 test sentences, 48 tokens): one token table shared by all
             positions against a random table per position (`per_position: true`)
The static vectors (100-d, window 5, 5 epochs, min count 2, lower-cased; projected to MiniLM's 384 by a learned
map) are trained with gensim on the training split's sentences (`text-train.txt`: the same 45,917 sentences the
training split holds, of which the runs fine-tune on a sample), once per method: the cache keys them by corpus and
settings, so the three seeds share them.

Writes `--out` (JSON: per part the sweep's summary, its wall time, and per cell the vector coverage, trainable
parameters and peak memory) and copies each report into docs/benchmarks/sweeps/<part>/. Usage:
    .venv/bin/python benchmarks/static_vectors.py [--parts genre pos bilstm] [--seeds 0,1,2]
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
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from calibration import ONCE, genre_recipe, pos_overrides


def vectors(method: str, corpus: Path) -> str:
    return f"{{policy: replace, init: vectors, train: {{method: {method}, corpus: {corpus}}}}}"


def token_tables(brown: Path) -> str:
    corpus = brown / "text-train.txt"
    methods = [vectors(method, corpus) for method in ("skipgram", "cbow", "fasttext")]
    return ",".join(["finetune", *methods, "{policy: replace, init: random}"])


def bilstm_recipe(scratch: Path, brown: Path) -> Path:
    text = f"""output_dir: unused
model:
  family: bilstm
  config: {{hidden_size: 128, lstm_size: 128, num_layers: 1}}
  tokenizer: {{build: word, min_frequency: 2, vocab_size: 20000}}
  max_length: 48
task: {{type: token-classification}}
data:
  files: {{train: {brown / "pos-train.jsonl"}, test: {brown / "pos-test.jsonl"}}}
  holdout: {{}}
  max_train_samples: 2000
  max_eval_samples: 500
train: {{epochs: 3, batch_size: 16, lr: 2.0e-3, warmup_ratio: 0.1}}
eval: {{splits: [test]}}
"""
    path = scratch / "bilstm-pos.yaml"
    path.write_text(text)
    return path


def parts(args: argparse.Namespace) -> dict[str, tuple[Path, list[str], list[str]]]:
    """Part → (recipe, overrides, sweep options)."""
    brown = args.brown.resolve()
    genre = genre_recipe(args.scratch, brown)
    tables = ["--grid", f"layers.token_embeddings={token_tables(brown)}"]
    shared_or_not = "finetune,{policy: replace, init: random, per_position: true}"
    return {
        "genre": (genre, ONCE, [*tables, "--classical", "tfidf,doc2vec,frozen-mean"]),
        "pos": (REPO / "recipes" / "brown-pos-minilm.yaml", [*pos_overrides(brown), *ONCE], tables),
        "bilstm": (bilstm_recipe(args.scratch, brown), [], ["--grid", f"layers.token_embeddings={shared_or_not}"]),
    }


def cell_facts(output: Path) -> dict[str, dict[str, Any]]:
    """Per cell: vector coverage (from input_layers.json), median trainable parameters and peak memory."""
    facts = {}
    for cell in sorted(path for path in output.iterdir() if path.is_dir()):
        runs = [seed for seed in sorted(cell.glob("seed=*")) if (seed / "metrics.json").is_file()]
        if not runs:
            continue
        train = [json.loads((seed / "metrics.json").read_text())["train"] for seed in runs]
        layers = json.loads((runs[0] / "input_layers.json").read_text())
        facts[cell.name] = {
            "trainable_parameters": statistics.median(t["trainable_parameters"] for t in train),
            "peak_memory_mb": statistics.median(t["peak_memory_mb"] for t in train),
            "coverage": layers.get("coverage"),
            "token_embeddings": layers["sources"]["token_embeddings"],
        }
    return facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="*", default=["genre", "pos", "bilstm"])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--parallel", default="2")
    parser.add_argument("--brown", type=Path, default=REPO.parent / "shared" / "data" / "brown")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/embedlab-static-vectors"))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results-static-vectors.json")
    args = parser.parse_args()
    args.scratch.mkdir(parents=True, exist_ok=True)
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    for name, (recipe, overrides, options) in parts(args).items():
        if name not in args.parts:
            continue
        output = args.scratch / name
        command = [sys.executable, "-m", "pipeline", "sweep", str(recipe), *overrides, *options,
                   "--seeds", args.seeds, "--parallel", args.parallel, "--output", str(output)]  # fmt: skip
        started = time.perf_counter()
        subprocess.run(command, check=True, cwd=args.scratch)
        wall = time.perf_counter() - started
        results[name] = {
            "command": " ".join(command[2:]),
            "sweep_wall_s": round(wall, 1),
            "cells": cell_facts(output),
            "summary": json.loads((output / "summary.json").read_text()),
        }
        args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
        target = REPO / "docs" / "benchmarks" / "sweeps" / f"static-vectors-{name}"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for path in [output / "summary.md", output / "summary.csv", *output.glob("*.png")]:
            shutil.copy(path, target / path.name)
        print(f"{name}: {wall:.0f} s; report in {target}", flush=True)


if __name__ == "__main__":
    main()
