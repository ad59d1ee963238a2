"""`--seeds auto` decisions and the median stopping rule, on fixed inputs."""

from __future__ import annotations

import json

import pytest

from pipeline.errors import PipelineError
from pipeline.sweeps.results import PairedDifference
from pipeline.sweeps.seeds import SeedPlan, parse_seeds, why_stop
from pipeline.sweeps.stopping import EvalScores, MedianStopping, Watched


def test_seed_plans_parse():
    assert parse_seeds("0,1,2") == SeedPlan(fixed=(0, 1, 2))
    assert parse_seeds("auto") == SeedPlan(first=3, most=8) and parse_seeds("auto:4:10").every() == list(range(10))
    for bad in ("auto:2:5", "auto:5:4", "auto:x", "1,1", "a,b", ""):
        with pytest.raises(PipelineError):
            parse_seeds(bad)


def entry(
    diffs: list[float], seed_variance: float, low: float | None, high: float | None, example_variance: float = 0.0
) -> PairedDifference:
    return PairedDifference(
        seed_differences=diffs, seed_difference_mean=sum(diffs) / len(diffs), seed_difference_std=None,
        pairs=len(diffs), confidence=0.95, seed_variance=seed_variance, example_variance=example_variance,
        examples=1000, examples_ci_low=None, examples_ci_high=None, p_value=None, ci_low=low, ci_high=high,
        excludes_zero=low is not None and (low > 0 or high < 0),
    )  # fmt: skip


def test_a_cell_stops_when_decided_out_of_reach_or_at_the_most_seeds():
    plan = SeedPlan(first=3, most=8)
    assert why_stop(entry([0.3, 0.31, 0.29], 1e-5, 0.25, 0.35), 3, plan, None, 0.95).startswith("decided")
    # A tiny mean difference against a large seed spread: 8 seeds would not resolve it.
    assert why_stop(entry([0.05, -0.05, 0.01], 0.001, -0.2, 0.2), 3, plan, None, 0.95).startswith("open, too small")
    # A difference that 8 seeds could resolve: worth another seed.
    assert why_stop(entry([0.04, 0.01, 0.03], 0.0001, -0.02, 0.07), 3, plan, None, 0.95) is None
    assert why_stop(entry([0.04, 0.01, 0.03], 0.0001, -0.02, 0.07), 8, plan, None, 0.95).startswith("reached")
    assert why_stop(entry([0.04, 0.01, 0.03], 0.0001, -0.02, 0.07), 3, plan, 0.2, 0.95).startswith("interval width")
    assert why_stop(None, 3, plan, None, 0.95).startswith("no comparison")


def test_the_median_rule_stops_a_run_behind_the_completed_ones(tmp_path):
    rule = MedianStopping(Watched("validation", "accuracy"), min_completed=3)
    for number, scores in enumerate([[(2, 0.6), (4, 0.8)], [(2, 0.7), (4, 0.9)], [(2, 0.5), (4, 0.85)]]):
        assert not rule.should_stop(f"run{number}", 2, scores[0][1])  # fewer than three completed runs
        rule.completed(f"run{number}", scores)
    assert not rule.should_stop("good", 2, 0.65)
    assert rule.should_stop("bad", 2, 0.2)  # below the median of the completed runs' means at step 2 (0.6)
    losses = MedianStopping(Watched("validation", "loss"), min_completed=1)
    losses.completed("a", [(5, 1.0)])
    assert losses.should_stop("b", 5, 2.0) and not losses.should_stop("c", 5, 0.5)


def test_evaluation_scores_are_read_as_they_are_written(tmp_path):
    log = tmp_path / "log.jsonl"
    scores = EvalScores(log, Watched("validation", "accuracy"))
    assert scores.new() == []
    log.write_text(
        json.dumps({"step": 1, "loss": 0.5})
        + "\n"
        + json.dumps({"step": 2, "split": "validation", "accuracy": 0.7})
        + "\n"
        + '{"step": 4, "split": "valid'
    )
    assert scores.new() == [(2, 0.7)]
    with open(log, "a") as handle:
        handle.write('ation", "accuracy": 0.8}\n' + json.dumps({"step": 4, "split": "test", "accuracy": 0.1}) + "\n")
    assert scores.new() == [(4, 0.8)] and scores.new() == []
