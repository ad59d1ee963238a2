"""The built-in scores agree with scikit-learn, their `evaluate` metric modules load offline by path and give the
same numbers, and a run's built-in scores import no `evaluate`."""

from __future__ import annotations

import math
import random

import pytest
from sklearn import metrics as sk

from pipeline.evaluation.metrics import (
    KNOWN_METRICS,
    builtin_module,
    compute_all,
    is_metric_path,
    load_metric,
    metrics_for,
)
from pipeline.evaluation.metrics.scores import confusion_matrix, matthews_correlation, precision_recall_f1


@pytest.fixture(scope="module")
def sample():
    rng = random.Random(3)
    references = [rng.randrange(4) for _ in range(300)]
    predictions = [r if rng.random() < 0.6 else rng.randrange(5) for r in references]  # class 4 only predicted
    return predictions, references


def test_every_known_metric_loads_and_matches_sklearn(sample):
    predictions, references = sample
    classification = metrics_for(("classes",))
    scores = compute_all(
        [load_metric(name, ("classes",)) for name in classification], "classes", predictions, references
    )
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
    assert matthews_correlation([0, 1, 0, 1], [0, 1, 0, 1])["matthews_correlation"] == pytest.approx(1.0)
    assert matthews_correlation([0, 0, 0, 0], [0, 1, 0, 1])["matthews_correlation"] == 0.0


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
    scores = compute_all([load_metric("perplexity", ("token_nll",))], "token_nll", [3 * 1.2, 0.4], [3, 1])
    assert scores == {"perplexity": pytest.approx(math.e)}


def entity_scores(predictions: list[list[str]], references: list[list[str]]) -> dict[str, float]:
    return compute_all(
        [load_metric("entity_f1", ("classes", "tag_sequences"))], "tag_sequences", predictions, references
    )


def test_entity_f1_by_hand_with_partial_spans_and_wrong_types():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "I-ORG", "I-ORG", "O"]]
    guess = [
        ["B-PER", "I-PER", "O", "B-ORG"],  # PER right; LOC predicted as ORG (wrong type)
        ["B-ORG", "I-ORG", "O", "O"],
    ]  # ORG cut short (partial span): wrong
    scores = entity_scores(guess, gold)
    # 3 gold entities, 3 predicted, 1 right: precision = recall = F1 = 1/3
    assert scores["entity_precision"] == pytest.approx(1 / 3) and scores["entity_recall"] == pytest.approx(1 / 3)
    assert scores["entity_f1"] == pytest.approx(1 / 3)
    assert (
        scores["entity_f1/PER"] == pytest.approx(1.0)
        and scores["entity_f1/LOC"] == 0.0
        and scores["entity_f1/ORG"] == 0.0
    )


def test_entity_scores_equal_seqeval_on_random_sequences():
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

    rng = random.Random(7)
    tags = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-MISC"]
    gold = [[rng.choice(tags) for _ in range(rng.randint(1, 12))] for _ in range(200)]
    guess = [[tag if rng.random() < 0.7 else rng.choice(tags) for tag in row] for row in gold]
    scores = entity_scores(guess, gold)
    assert scores["entity_f1"] == pytest.approx(f1_score(gold, guess))
    assert scores["entity_precision"] == pytest.approx(precision_score(gold, guess))
    assert scores["entity_recall"] == pytest.approx(recall_score(gold, guess))
    report = classification_report(gold, guess, output_dict=True)
    for entity_type in ("PER", "LOC", "MISC"):
        assert scores[f"entity_f1/{entity_type}"] == pytest.approx(report[entity_type]["f1-score"])


def test_regression_metrics_equal_scipy_and_numpy():
    from scipy import stats

    rng = random.Random(5)
    references = [rng.uniform(0, 5) for _ in range(100)]
    predictions = [value + rng.gauss(0, 1) for value in references]
    names = ["pearson", "spearman", "mse", "mae"]
    scores = compute_all([load_metric(name, ("values",)) for name in names], "values", predictions, references)
    assert scores["pearson"] == pytest.approx(stats.pearsonr(predictions, references)[0])
    assert scores["spearman"] == pytest.approx(stats.spearmanr(predictions, references)[0])
    assert scores["mse"] == pytest.approx(sk.mean_squared_error(references, predictions))
    assert scores["mae"] == pytest.approx(sk.mean_absolute_error(references, predictions))
    constant = compute_all([load_metric("pearson", ("values",))], "values", [1.0, 1.0, 1.0], [1.0, 2.0, 3.0])
    assert math.isnan(constant["pearson"])  # undefined, not a number made up


def test_multi_label_metrics_equal_sklearn():
    import numpy as np

    rng = np.random.default_rng(2)
    references = (rng.random((120, 5)) < 0.3).astype(int)
    predictions = np.where(rng.random((120, 5)) < 0.8, references, 1 - references)
    names = ["f1_micro", "f1_macro", "precision_micro", "precision_macro", "recall_micro", "recall_macro", "per_label"]
    scores = compute_all(
        [load_metric(name, ("label_sets",)) for name in names], "label_sets", predictions.tolist(), references.tolist()
    )
    for average in ("micro", "macro"):
        assert scores[f"f1_{average}"] == pytest.approx(
            sk.f1_score(references, predictions, average=average, zero_division=0)
        )
        assert scores[f"precision_{average}"] == pytest.approx(
            sk.precision_score(references, predictions, average=average, zero_division=0)
        )
        assert scores[f"recall_{average}"] == pytest.approx(
            sk.recall_score(references, predictions, average=average, zero_division=0)
        )
    per_label = sk.f1_score(references, predictions, average=None, zero_division=0)
    assert [scores[f"per_label/{i}/f1"] for i in range(5)] == pytest.approx(per_label.tolist())


SAMPLES = {  # (predictions, references) of each kind of input
    "classes": ([0, 1, 2, 2, 1, 0, 3], [0, 1, 1, 2, 1, 2, 3]),
    "values": ([0.1, 0.5, 0.2, 0.9, 0.4], [0.0, 0.6, 0.1, 1.0, 0.2]),
    "label_sets": ([[1, 0, 1], [0, 1, 0], [1, 1, 0]], [[1, 0, 0], [0, 1, 1], [1, 1, 0]]),
    "tag_sequences": ([["B-PER", "I-PER", "O"], ["B-LOC", "O"]], [["B-PER", "I-PER", "O"], ["B-ORG", "O"]]),
    "token_nll": ([3.6, 0.4], [3, 1]),
    "word_nll": ([3.6, 0.4], [2.0, 1.0]),
    "ranks": ([1, 3, 12, 2, 10], [1, 1, 1, 1, 1]),
}


@pytest.mark.parametrize(
    ("name", "kind"), [(name, kind) for name, kinds in KNOWN_METRICS.items() for kind in kinds], ids=str
)
def test_each_builtin_score_equals_its_evaluate_module(name, kind):
    predictions, references = SAMPLES[kind]
    direct = compute_all([load_metric(name, (kind,))], kind, predictions, references)
    spec = KNOWN_METRICS[name][kind]
    module = builtin_module(name, kind).compute(predictions=predictions, references=references, **spec.kwargs)
    assert direct and all(
        math.isclose(direct[key] if key in direct else direct[name], value)
        for key, value in (module.items() if spec.named_results else [(name, next(iter(module.values())))])
    )


def test_a_run_s_builtin_scores_import_no_evaluate():
    import subprocess
    import sys

    code = (
        "import sys; from pipeline.evaluation.metrics import KNOWN_METRICS, load_metric; "
        "[load_metric(name, tuple(kinds)) for name, kinds in KNOWN_METRICS.items()]; print('evaluate' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_retrieval_measures_match_hand_computed_values_on_a_toy_ranking():
    """Five queries whose relevant documents rank 1, 3, 12, 2 and 10."""
    ranks = [1, 3, 12, 2, 10]
    scores = compute_all([load_metric(name, ("ranks",)) for name in ("ndcg@10", "mrr@10", "recall@1", "recall@10")],
                         "ranks", ranks, [1] * 5)  # fmt: skip
    assert scores["recall@1"] == pytest.approx(1 / 5)
    assert scores["recall@10"] == pytest.approx(4 / 5)
    assert scores["mrr@10"] == pytest.approx((1 + 1 / 3 + 0 + 1 / 2 + 1 / 10) / 5)
    assert scores["ndcg@10"] == pytest.approx((1 + 1 / math.log2(4) + 0 + 1 / math.log2(3) + 1 / math.log2(11)) / 5)
    sk = pytest.importorskip("sklearn.metrics")
    documents = 12  # the same ranking as graded relevance over 12 documents: sklearn's nDCG@10 agrees
    relevance, ranked = [], []
    for rank in ranks:
        relevance.append([1.0 if d == rank - 1 else 0.0 for d in range(documents)])
        ranked.append([float(documents - d) for d in range(documents)])  # document d is ranked d + 1
    assert scores["ndcg@10"] == pytest.approx(sk.ndcg_score(relevance, ranked, k=10))
