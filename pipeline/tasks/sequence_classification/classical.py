"""Classical baselines for a classification summary, each fitted on the recipe's own training split and scored on its
eval splits with its own metrics, each a logistic regression (scikit-learn) over other features:

- `tfidf`: TF-IDF over word 1–2-grams (a bag of words);
- `doc2vec`: paragraph vectors (gensim Doc2Vec, PV-DBOW) trained on the training texts, inferred for the others;
- `frozen-mean`: the recipe's pretrained encoder, frozen, its last hidden states mean-pooled over the tokens (the
  sentence-encoder baseline). The features come from the caller, which builds the model.

If one of them scores as well as the transfer runs, no input-layer policy can show a difference on that data."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pipeline.data.sources import limit_splits, load_splits
from pipeline.errors import PipelineError
from pipeline.evaluation.metrics import KNOWN_METRICS, compute_all, load_metric
from pipeline.recipe.schema import Recipe

METHODS = {
    "tfidf": "TF-IDF + logistic regression",
    "doc2vec": "Doc2Vec (PV-DBOW) + logistic regression",
    "frozen-mean": "frozen encoder, mean-pooled + logistic regression",
}
# split → (features (examples, width), label ids): what the caller computes for `frozen-mean`
FrozenFeatures = Callable[[], dict[str, tuple[np.ndarray, list[int]]]]
DOC2VEC = {"vector_size": 100, "min_count": 2, "epochs": 20, "dm": 0, "window": 5}


def classical_baselines(
    recipe: Recipe, methods: Sequence[str], frozen_features: FrozenFeatures | None = None
) -> list[dict[str, Any]]:
    """Per method: its name, scores per eval split and wall seconds (features, fit and scoring); an empty list where
    the task is no single-label classification of texts."""
    if recipe.task.type != "sequence-classification":
        return []
    results = []
    for method in methods:
        started = time.perf_counter()
        if method == "frozen-mean":
            if frozen_features is None:
                raise PipelineError("the frozen-mean baseline needs the recipe's model; run it through a sweep")
            features = frozen_features()
        else:
            features = text_features(recipe, method)
        scores = fit_and_score(recipe, features)
        wall = round(time.perf_counter() - started, 1)
        results.append({"method": method, "name": METHODS[method], "scores": scores, "wall_s": wall})
    return results


def text_features(recipe: Recipe, method: str) -> dict[str, tuple[Any, list[int]]]:
    """TF-IDF or Doc2Vec features of the recipe's training and eval splits, with label ids numbered by the sorted
    training labels (-1: a label the training split lacks)."""
    task, train = recipe.task, recipe.data.train_split
    splits = limit_splits(recipe.data, load_splits(recipe.data, task, recipe.eval.splits)[0])
    names = list(dict.fromkeys([train, *recipe.eval.splits]))

    def texts(split: str) -> list[str]:
        columns = [task.text_column] + ([task.text_pair_column] if task.text_pair_column else [])
        rows = zip(*(splits[split][column] for column in columns), strict=True)
        return [" ".join("" if part is None else str(part) for part in row) for row in rows]

    classes = sorted({str(label) for label in splits[train][task.label_column]})
    labels = {
        split: [classes.index(str(y)) if str(y) in classes else -1 for y in splits[split][task.label_column]]
        for split in names
    }
    vectorize = tfidf_vectors if method == "tfidf" else doc2vec_vectors
    vectors = vectorize({split: texts(split) for split in names}, train, recipe.train.seed)
    return {split: (vectors[split], labels[split]) for split in names}


def tfidf_vectors(texts: dict[str, list[str]], train: str, seed: int) -> dict[str, Any]:
    """Sparse TF-IDF rows (word 1–2-grams, sub-linear counts) fitted on the training texts."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    vectorizer.fit(texts[train])
    return {split: vectorizer.transform(items) for split, items in texts.items()}


def doc2vec_vectors(texts: dict[str, list[str]], train: str, seed: int) -> dict[str, np.ndarray]:
    """PV-DBOW paragraph vectors (examples, 100): trained on the training texts (one worker, so a seed gives the same
    vectors), inferred for every split alike, the training split included, so train and test features match."""
    from gensim.models.doc2vec import Doc2Vec, TaggedDocument
    from gensim.utils import simple_preprocess

    words = {split: [simple_preprocess(text) for text in items] for split, items in texts.items()}
    counts = Counter(word for tokens in words[train] for word in tokens)
    if not any(count >= DOC2VEC["min_count"] for count in counts.values()):  # gensim: "you must first build vocabulary"
        raise PipelineError(
            f"the doc2vec baseline: no word of the training texts occurs {DOC2VEC['min_count']} times or more "
            "(gensim's simple_preprocess keeps words of 2 to 15 letters); leave it out (--classical tfidf)",
            field="--classical",
        )
    documents = [TaggedDocument(tokens, [i]) for i, tokens in enumerate(words[train])]
    model = Doc2Vec(documents, workers=1, seed=seed, **DOC2VEC)
    return {
        split: np.stack([model.infer_vector(tokens) for tokens in items]) if items else np.zeros((0, model.vector_size))
        for split, items in words.items()
    }


def fit_and_score(recipe: Recipe, features: dict[str, tuple[Any, list[int]]]) -> dict[str, dict[str, float]]:
    """A logistic regression fitted on the training split's features, scored on every eval split with the recipe's
    class metrics."""
    from sklearn.linear_model import LogisticRegression

    x_train, y_train = features[recipe.data.train_split]
    if len(set(y_train)) < 2:
        raise PipelineError("a classical baseline needs at least two classes in the training split")
    model = LogisticRegression(max_iter=2000, C=10.0)
    model.fit(x_train, y_train)
    names = [
        name for name in recipe.eval.metrics or ["accuracy", "f1_macro"] if "classes" in KNOWN_METRICS.get(name, {})
    ]
    metrics = [load_metric(name, ("classes",)) for name in names]
    scores = {}
    for split in recipe.eval.splits:
        x, gold = features[split]
        predicted = model.predict(x).tolist() if len(gold) else []
        scores[split] = compute_all(metrics, "classes", predicted, list(gold))
    return scores
