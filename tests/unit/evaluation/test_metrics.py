"""The project's own `evaluate` metric modules load offline by path and agree with scikit-learn."""

from __future__ import annotations

import math
import random

import pytest
from sklearn import metrics as sk

from pipeline.evaluation.metrics import KNOWN_METRICS, LANGUAGE_MODELING_METRICS, compute_all, is_metric_path, load_metric
from pipeline.evaluation.metrics.classification import confusion_matrix, matthews_correlation, precision_recall_f1


@pytest.fixture(scope="module")
def sample():
    rng = random.Random(3)
    references = [rng.randrange(4) for _ in range(300)]
    predictions = [r if rng.random() < 0.6 else rng.randrange(5) for r in references]  # class 4 only predicted
    return predictions, references


def test_every_known_metric_loads_and_matches_sklearn(sample):
    predictions, references = sample
    classification = [name for name in KNOWN_METRICS if name not in LANGUAGE_MODELING_METRICS]
    scores = compute_all([load_metric(name) for name in classification], predictions, references)
    expected = {
        "accuracy": sk.accuracy_score(references, predictions),
        "matthews_correlation": sk.matthews_corrcoef(references, predictions),
    }
    for average in ("macro", "micro", "weighted"):
        expected[f"f1_{average}"] = sk.f1_score(references, predictions, average=average, zero_division=0)
        expected[f"precision_{average}"] = sk.precision_score(references, predictions, average=average, zero_division=0)
        expected[f"recall_{average}"] = sk.recall_score(references, predictions, average=average, zero_division=0)
    assert set(scores) == set(classification)
    for name, value in scores.items():
        assert value == pytest.approx(expected[name]), name


def test_hand_computed_small_case():
    predictions, references = [0, 0, 1, 1], [0, 1, 1, 1]
    assert confusion_matrix(predictions, references).tolist() == [[1, 0], [1, 2]]
    precision, recall, f1 = precision_recall_f1(predictions, references, "macro")
    assert precision == pytest.approx((0.5 + 1.0) / 2)
    assert recall == pytest.approx((1.0 + 2 / 3) / 2)
    assert f1 == pytest.approx((2 / 3 + 0.8) / 2)
    assert matthews_correlation([0, 1, 0, 1], [0, 1, 0, 1]) == pytest.approx(1.0)
    assert matthews_correlation([0, 0, 0, 0], [0, 1, 0, 1]) == 0.0


def test_unknown_average_is_refused():
    with pytest.raises(ValueError, match="average"):
        precision_recall_f1([0], [0], "samples")


def test_metric_paths_are_recognised(tmp_path):
    script = tmp_path / "mine.py"
    script.write_text("")
    assert is_metric_path(str(script))
    assert not is_metric_path("accuracy")


def test_perplexity_pools_tokens_over_examples():
    # Two examples: 3 tokens with NLL 1.2 each, and 1 token with NLL 0.4 → exp(4.0 / 4) = e.
    scores = compute_all([load_metric("perplexity")], [3 * 1.2, 0.4], [3, 1])
    assert scores == {"perplexity": pytest.approx(math.e)}
