"""The classical baseline every classification summary gets: TF-IDF over word 1–2-grams and a logistic regression
(scikit-learn), fitted on the recipe's own training split and scored on its eval splits with its own metrics. If it
scores as well as the transfer runs, no input-layer policy can show a difference on that data."""

from __future__ import annotations

from typing import Any

from pipeline.data.sources import limit_splits, load_splits
from pipeline.evaluation.metrics import KNOWN_METRICS, compute_all, load_metric
from pipeline.recipe.schema import Recipe

NAME = "TF-IDF + logistic regression"


def classical_baseline(recipe: Recipe) -> dict[str, Any] | None:
    """Scores per eval split of TF-IDF (word 1–2-grams) + logistic regression; None where the task is no
    single-label classification of texts."""
    if recipe.task.type != "sequence-classification":
        return None
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    splits = limit_splits(recipe.data, load_splits(recipe.data, recipe.task)[0])
    task = recipe.task

    def texts(split: str) -> list[str]:
        columns = [task.text_column] + ([task.text_pair_column] if task.text_pair_column else [])
        rows = zip(*(splits[split][column] for column in columns), strict=True)
        return [" ".join("" if part is None else str(part) for part in row) for row in rows]

    labels = [str(label) for label in splits[recipe.data.train_split][task.label_column]]
    classes = sorted(set(labels))
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    model = LogisticRegression(max_iter=2000, C=10.0)
    model.fit(vectorizer.fit_transform(texts(recipe.data.train_split)), [classes.index(label) for label in labels])
    names = [
        name for name in recipe.eval.metrics or ["accuracy", "f1_macro"] if "classes" in KNOWN_METRICS.get(name, {})
    ]
    metrics = [load_metric(name, ("classes",)) for name in names]
    scores = {}
    for split in recipe.eval.splits:
        gold = [
            classes.index(str(label)) if str(label) in classes else -1 for label in splits[split][task.label_column]
        ]
        predicted = model.predict(vectorizer.transform(texts(split))).tolist()
        scores[split] = compute_all(metrics, "classes", predicted, gold)
    return {"name": NAME, "scores": scores}
