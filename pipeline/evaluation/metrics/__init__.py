"""The project's own `evaluate` metric modules, loaded by path so they work offline.

A recipe names a metric by one of `KNOWN_METRICS`, by the path of an `evaluate` script, or as `hub:NAME`
(`evaluate.load(NAME)`, which needs the network). Each known name maps to a script beside this file plus the
arguments its `compute` gets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

METRICS_DIR = Path(__file__).parent

KNOWN_METRICS: dict[str, tuple[str, dict[str, Any]]] = {
    "accuracy": ("accuracy.py", {}),
    "f1_macro": ("f1.py", {"average": "macro"}),
    "f1_micro": ("f1.py", {"average": "micro"}),
    "f1_weighted": ("f1.py", {"average": "weighted"}),
    "precision_macro": ("precision.py", {"average": "macro"}),
    "precision_micro": ("precision.py", {"average": "micro"}),
    "recall_macro": ("recall.py", {"average": "macro"}),
    "recall_micro": ("recall.py", {"average": "micro"}),
    "matthews_correlation": ("matthews_correlation.py", {}),
    "perplexity": ("perplexity.py", {}),
}
LANGUAGE_MODELING_METRICS = {"perplexity"}


def is_metric_path(name: str) -> bool:
    """True when a recipe's metric entry is a local `evaluate` script (`.py` file or folder holding one)."""
    path = Path(name)
    return path.suffix == ".py" and path.is_file() or (path.is_dir() and (path / f"{path.name}.py").is_file())


@dataclass
class LoadedMetric:
    """An `evaluate` module plus the name the run reports it under and the extra `compute` arguments."""

    name: str
    module: Any
    compute_kwargs: dict[str, Any] = field(default_factory=dict)

    def compute(self, predictions: list[int] | list[float], references: list[int]) -> dict[str, float]:
        result = self.module.compute(predictions=predictions, references=references, **self.compute_kwargs)
        if len(result) == 1:
            return {self.name: float(next(iter(result.values())))}
        return {f"{self.name}/{key}": float(value) for key, value in result.items() if isinstance(value, int | float)}


def load_metric(name: str) -> LoadedMetric:
    """Load one metric by recipe name; our own modules never touch the network."""
    import evaluate

    if name in KNOWN_METRICS:
        script, kwargs = KNOWN_METRICS[name]
        return LoadedMetric(name, evaluate.load(str(METRICS_DIR / script), keep_in_memory=True), kwargs)
    source = name.removeprefix("hub:")
    return LoadedMetric(name, evaluate.load(source, keep_in_memory=True))


def compute_all(metrics: list[LoadedMetric], predictions: list[int] | list[float], references: list[int]) -> dict[str, float]:
    """Every metric on one set of predictions, merged into one flat mapping."""
    results: dict[str, float] = {}
    for metric in metrics:
        results.update(metric.compute(predictions, references))
    return results
