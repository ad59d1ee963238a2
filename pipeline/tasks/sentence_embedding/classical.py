"""Classical baselines for a sentence-embedding comparison, with no training: every query of an eval split searches
the documents the runs' queries search (the collection, or its split's distinct positives: `task.documents`) by

- `tfidf`: cosine similarity of TF-IDF vectors (word 1–2-grams, sub-linear counts; scikit-learn), the IDF fitted on
  the documents searched;
- `bm25`: Okapi BM25 (the `bm25s` library: its tokenizer, English stop words, k1 = 1.5, b = 0.75),
- `frozen`: the recipe's encoder as loaded (no policy, no training), pooled as the task section says: a published
  sentence encoder as shipped (the vectors come from the caller, which builds the model);
- `static`: static vectors, no context: each text the mean of the model's own token-table rows over its tokens
  (special tokens left out), compared by cosine similarity; `static:VECTORS` the mean of word vectors over its words
  instead: a vector file (GloVe or word2vec text, word2vec or fastText binary), or `skipgram`, `cbow` or `fasttext`
  trained with gensim on the training split's texts (the settings of `layers.token_embeddings.train`'s defaults,
  so the same cache entry as a run that trains them),

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
from pipeline.tasks.sentence_embedding.pairs import (
    collection_of,
    distinct,
    pairs_of,
    ranks_from_scores,
    searched_documents,
)
from pipeline.vocabulary.spelling import WORD

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


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """(texts, width) → each row scaled to unit length (a zero row stays zero)."""
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def table_ranks(frozen: Any, split: str) -> list[int]:
    """Each query's rank when every text is the mean of the token-table rows of its tokens (no special tokens)."""
    exp = frozen.experiment()
    table = exp.model.get_input_embeddings().weight.detach().float().cpu().numpy()  # (vocabulary, width)
    special = set(exp.tokenizer.all_special_ids)
    data, reference = exp.data.splits[split], exp.task.reference

    def means(rows: list[list[int]]) -> np.ndarray:
        return unit_rows(np.stack([table[[i for i in ids if i not in special] or ids].mean(axis=0) for ids in rows]))

    documents, keys = list(data["positive_input_ids"]), list(data["doc_key"])
    if reference is not None:  # the collection (`documents: collection`): the split's own positives come first
        documents, keys = documents + list(reference["positive_input_ids"]), keys + list(reference["doc_key"])
    rows, columns = distinct(keys)
    scores = means(data["input_ids"]) @ means([documents[row] for row in rows]).T
    return ranks_from_scores(scores, columns[: len(data)], list(data["pair_key"]))


def word_vector_scores(vectors: Any) -> Any:
    """A scorer of queries against documents by the cosine of their mean word vectors (`WordVectors`: a word found
    as written or lower-cased, else from its character n-grams where the vectors have them, else left out)."""

    def mean(text: str) -> np.ndarray:
        rows = []
        for word in WORD.findall(text):
            row = vectors.index.get(word, vectors.index.get(word.lower()))
            if row is not None:
                rows.append(vectors.matrix[row])
            elif vectors.oov is not None:
                rows.append(vectors.oov(word))
        return np.mean(rows, axis=0) if rows else np.zeros(vectors.dim, dtype=np.float32)

    def scores(queries: list[str], documents: list[str]) -> np.ndarray:
        embed = lambda texts: unit_rows(np.stack([mean(text) for text in texts]))  # noqa: E731
        return embed(queries) @ embed(documents).T

    return scores


def classical_baselines(recipe: Recipe, methods: Sequence[str], frozen: Any = None) -> list[dict[str, Any]]:
    """Per method: its name, retrieval scores per eval split and wall seconds; none for methods this task does not
    know, and only `frozen` for scored pairs (they have no documents to search). frozen: the caller's
    `FrozenEncoder`, whose `scores()` is the task's own scoring of the untrained encoder."""
    task, results = recipe.task, []
    if any(method.partition(":")[0] in ("frozen", "static") for method in methods) and frozen is None:
        raise PipelineError("the frozen and static baselines need the recipe's model; run them through a sweep")
    if "frozen" in methods:
        started = time.perf_counter()
        scores = frozen.scores()
        wall = round(time.perf_counter() - started, 1)
        results.append({"method": "frozen", "name": METHODS["frozen"], "scores": scores, "wall_s": wall})
    if task.score_column is not None:
        return results
    source = load_splits(recipe.data, task, recipe.eval.splits)[0]
    splits = limit_splits(recipe.data, source)
    collection = collection_of(task, source) if task.documents == "collection" else []
    names = [name for name in recipe.eval.metrics or task.retrieval_metrics if "ranks" in KNOWN_METRICS.get(name, {})]
    metrics = [load_metric(name, ("ranks",)) for name in names]
    for method in (method for method in methods if method in SCORERS or method.partition(":")[0] == "static"):
        started, scores = time.perf_counter(), {}
        scorer, name = SCORERS.get(method), METHODS.get(method, f"mean of {method.partition(':')[2]} word vectors")
        if method.startswith("static:"):
            train = pairs_of(task, splits[recipe.data.train_split])
            scorer = word_vector_scores(
                frozen.word_vectors(method.partition(":")[2], train["anchor"] + train["positive"])
            )
        for split in recipe.eval.splits:
            if method == "static":
                ranks = table_ranks(frozen, split)
            else:
                pairs = pairs_of(task, splits[split])
                documents, relevant = searched_documents(pairs["positive"], collection)
                ranks = ranks_from_scores(scorer(pairs["anchor"], documents), relevant, pairs["anchor"])
            scores[split] = compute_all(metrics, "ranks", ranks, [1] * len(ranks))
        wall = round(time.perf_counter() - started, 1)
        results.append({"method": method, "name": name, "scores": scores, "wall_s": wall})
    return results
