"""Classical baselines for a sentence-embedding comparison, with no training: every query of an eval split searches
that split's documents (its distinct positives) by

- `tfidf`: cosine similarity of TF-IDF vectors (word 1–2-grams, sub-linear counts; scikit-learn), the IDF fitted on
  the documents searched;
- `bm25`: Okapi BM25 (the `bm25s` library: its tokenizer, English stop words, k1 = 1.5, b = 0.75),
- `frozen`: the recipe's encoder as loaded (no policy, no training), pooled as the task section says: a published
  sentence encoder as shipped (the vectors come from the caller, which builds the model);
- `static`: static vectors, no context: each text the mean of the model's own token-table rows over its tokens
  (special tokens left out), compared by cosine similarity,

scored with the recipe's retrieval measures from the rank of each query's own document, as the runs are. Each row
has its wall time. If one of them retrieves as well as the trained encoders, the task is word matching."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.data.sources import limit_splits, load_splits
from pipeline.errors import PipelineError
from pipeline.evaluation.metrics import KNOWN_METRICS, compute_all, load_metric
from pipeline.recipe.schema import Recipe
from pipeline.tasks.sentence_embedding.pairs import distinct, documents_of, pairs_of, ranks_from_scores

METHODS = {
    "tfidf": "TF-IDF cosine",
    "bm25": "BM25 (bm25s)",
    "frozen": "the encoder as loaded, untrained",
    "static": "mean of the model's token-table rows",
}


def tfidf_scores(queries: list[str], documents: list[str]) -> np.ndarray:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(documents)
    return (vectorizer.transform(queries) @ vectorizer.transform(documents).T).toarray()  # rows are unit vectors


def bm25_scores(queries: list[str], documents: list[str]) -> np.ndarray:
    import bm25s

    retriever = bm25s.BM25(k1=1.5, b=0.75)
    retriever.index(bm25s.tokenize(documents, stopwords="en", show_progress=False), show_progress=False)
    tokenized = bm25s.tokenize(queries, stopwords="en", show_progress=False, return_ids=False)
    return np.stack([retriever.get_scores(words) for words in tokenized]) if queries else np.zeros((0, len(documents)))


SCORERS = {"tfidf": tfidf_scores, "bm25": bm25_scores}


def static_ranks(frozen: Any, split: str) -> list[int]:
    """Each query's rank when every text is the mean of the token-table rows of its tokens (no special tokens)."""
    exp = frozen.experiment()
    table = exp.model.get_input_embeddings().weight.detach().float().cpu().numpy()  # (vocabulary, width)
    special = set(exp.tokenizer.all_special_ids)
    data = exp.data.splits[split]

    def means(rows: list[list[int]]) -> np.ndarray:
        vectors = np.stack([table[[i for i in ids if i not in special] or ids].mean(axis=0) for ids in rows])
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    rows, columns = distinct(data["doc_key"])
    documents = means([data["positive_input_ids"][row] for row in rows])
    return ranks_from_scores(means(data["input_ids"]) @ documents.T, columns)


def classical_baselines(recipe: Recipe, methods: Sequence[str], frozen: Any = None) -> list[dict[str, Any]]:
    """Per method: its name, retrieval scores per eval split and wall seconds; none for methods this task does not
    know, and only `frozen` for scored pairs (they have no documents to search). frozen: the caller's
    `FrozenEncoder`, whose `scores()` is the task's own scoring of the untrained encoder."""
    task, results = recipe.task, []
    if {"frozen", "static"} & set(methods) and frozen is None:
        raise PipelineError("the frozen and static baselines need the recipe's model; run them through a sweep")
    if "frozen" in methods:
        started = time.perf_counter()
        scores = frozen.scores()
        wall = round(time.perf_counter() - started, 1)
        results.append({"method": "frozen", "name": METHODS["frozen"], "scores": scores, "wall_s": wall})
    if task.score_column is not None:
        return results
    splits = limit_splits(recipe.data, load_splits(recipe.data, task, recipe.eval.splits)[0])
    names = [name for name in recipe.eval.metrics or task.retrieval_metrics if "ranks" in KNOWN_METRICS.get(name, {})]
    metrics = [load_metric(name, ("ranks",)) for name in names]
    for method in (method for method in methods if method in SCORERS or method == "static"):
        started, scores = time.perf_counter(), {}
        for split in recipe.eval.splits:
            if method == "static":
                ranks = static_ranks(frozen, split)
            else:
                pairs = pairs_of(task, splits[split])
                documents, relevant = documents_of(pairs["positive"])
                ranks = ranks_from_scores(SCORERS[method](pairs["anchor"], documents), relevant)
            scores[split] = compute_all(metrics, "ranks", ranks, [1] * len(ranks))
        wall = round(time.perf_counter() - started, 1)
        results.append({"method": method, "name": METHODS[method], "scores": scores, "wall_s": wall})
    return results
