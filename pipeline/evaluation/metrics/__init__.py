"""The project's own `evaluate` metric modules, loaded by path so they work offline.

A recipe names a metric by one of `KNOWN_METRICS`, by the path of an `evaluate` script, or as `hub:NAME`
(`evaluate.load(NAME)`, which needs the network). A known name maps, per kind of input it scores, to a script
beside this file and the arguments its `compute` gets; a task says which kinds of input it produces:

- `classes`: one class id per example (or per word);
- `tag_sequences`: one list of tag strings per sentence (entity-level scores);
- `values`: one number per example (regression);
- `label_sets`: one 0/1 vector over the labels per example (multi-label);
- `token_nll`: per example, the summed NLL of its predicted tokens and their count (language modeling);
- `ranks`: per query, the rank (1 = first) of its relevant document among the documents (sentence embeddings).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

METRICS_DIR = Path(__file__).parent
INPUT_KINDS = ("classes", "tag_sequences", "values", "label_sets", "token_nll", "ranks")


@dataclass(frozen=True)
class MetricSpec:
    """A metric script (whose `_compute` is the function of `scores` named after it, file name without `.py`), its
    `compute` arguments, and whether its result keys are the reported names as they are."""

    script: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    named_results: bool = False

    @property
    def function(self) -> str:
        return self.script.removesuffix(".py")


def _averaged(score: str, average: str) -> dict[str, MetricSpec]:
    return {
        "classes": MetricSpec(f"{score}.py", {"average": average}),
        "label_sets": MetricSpec("multilabel.py", {"score": score, "average": average}),
    }


KNOWN_METRICS: dict[str, dict[str, MetricSpec]] = {
    "accuracy": {"classes": MetricSpec("accuracy.py")},
    "f1_macro": _averaged("f1", "macro"),
    "f1_micro": _averaged("f1", "micro"),
    "f1_weighted": {"classes": MetricSpec("f1.py", {"average": "weighted"})},
    "precision_macro": _averaged("precision", "macro"),
    "precision_micro": _averaged("precision", "micro"),
    "recall_macro": _averaged("recall", "macro"),
    "recall_micro": _averaged("recall", "micro"),
    "matthews_correlation": {"classes": MetricSpec("matthews_correlation.py")},
    "entity_f1": {"tag_sequences": MetricSpec("entities.py", named_results=True)},
    "pearson": {"values": MetricSpec("correlation.py", {"method": "pearson"})},
    "spearman": {"values": MetricSpec("correlation.py", {"method": "spearman"})},
    "mse": {"values": MetricSpec("regression_errors.py", {"kind": "mse"})},
    "mae": {"values": MetricSpec("regression_errors.py", {"kind": "mae"})},
    "per_label": {"label_sets": MetricSpec("multilabel.py", {"per_label": True}, named_results=True)},
    "perplexity": {"token_nll": MetricSpec("perplexity.py")},
    "word_perplexity": {"word_nll": MetricSpec("word_perplexity.py")},
    "ndcg@10": {"ranks": MetricSpec("retrieval.py", {"measure": "ndcg", "k": 10})},
    "mrr@10": {"ranks": MetricSpec("retrieval.py", {"measure": "mrr", "k": 10})},
    "recall@1": {"ranks": MetricSpec("retrieval.py", {"measure": "recall", "k": 1})},
    "recall@10": {"ranks": MetricSpec("retrieval.py", {"measure": "recall", "k": 10})},
}


@dataclass(frozen=True)
class Scorer:
    """A built-in score as a module with `compute(predictions=..., references=..., **kwargs)`, as an `evaluate`
    module has, without `evaluate`'s import or its Arrow round trip."""

    function: Callable[..., dict[str, Any]]

    def compute(self, predictions: list[Any], references: list[Any], **kwargs: Any) -> dict[str, Any]:
        return self.function(predictions, references, **kwargs)


def is_metric_path(name: str) -> bool:
    """True when a recipe's metric entry is a local `evaluate` script (`.py` file or folder holding one)."""
    path = Path(name)
    return (path.suffix == ".py" and path.is_file()) or (path.is_dir() and (path / f"{path.name}.py").is_file())


def metrics_for(inputs: tuple[str, ...]) -> list[str]:
    """The known metrics that score any of these kinds of input."""
    return [name for name, kinds in KNOWN_METRICS.items() if set(kinds) & set(inputs)]


@dataclass
class LoadedMetric:
    """An `evaluate` module, the name the run reports it under, the kind of input it scores, its `compute` arguments."""

    name: str
    module: Any
    inputs: str
    compute_kwargs: dict[str, Any] = field(default_factory=dict)
    named_results: bool = False

    def compute(self, predictions: list[Any], references: list[Any], **extra: Any) -> dict[str, float]:
        result = self.module.compute(predictions=predictions, references=references, **self.compute_kwargs, **extra)
        if self.named_results:
            return {key: float(value) for key, value in result.items()}
        if len(result) == 1:
            return {self.name: float(next(iter(result.values())))}
        return {f"{self.name}/{key}": float(value) for key, value in result.items() if isinstance(value, int | float)}


def load_metric(name: str, inputs: tuple[str, ...]) -> LoadedMetric:
    """Load one metric by recipe name for a task producing `inputs` (its first kind for a script or `hub:NAME`). A
    known name is its function of `scores` (the same numbers as its `evaluate` script, `builtin_module` below); a
    script or `hub:NAME` goes through `evaluate.load`, which needs the network for the Hub."""
    if name in KNOWN_METRICS:
        from pipeline.evaluation.metrics import scores

        kind = next(kind for kind in inputs if kind in KNOWN_METRICS[name])
        spec = KNOWN_METRICS[name][kind]
        return LoadedMetric(name, Scorer(getattr(scores, spec.function)), kind, dict(spec.kwargs), spec.named_results)
    import evaluate

    return LoadedMetric(name, evaluate.load(name.removeprefix("hub:"), keep_in_memory=True), inputs[0])


def builtin_module(name: str, kind: str) -> Any:
    """The `evaluate` module of a known metric (its script beside this file), for use outside a run."""
    import evaluate

    return evaluate.load(str(METRICS_DIR / KNOWN_METRICS[name][kind].script), keep_in_memory=True)


def compute_all(
    metrics: list[LoadedMetric], inputs: str, predictions: list[Any], references: list[Any], **extra: Any
) -> dict[str, float]:
    """Every metric that scores `inputs`, on one set of predictions, merged into one flat mapping."""
    results: dict[str, float] = {}
    for metric in metrics:
        if metric.inputs == inputs:
            results.update(metric.compute(predictions, references, **extra))
    return results
