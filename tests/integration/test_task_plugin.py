"""A task type defined in a test file (`tests/toy_task.py`) trains, is re-scored by `pipeline eval`, and runs a
2-cell sweep whose run processes load it through `EMBEDLAB_PLUGINS`: a new task is one module and its registration."""

from __future__ import annotations

import json
import os

import pytest
from helpers import REPO, make_examples, recipe_dict, train_fresh, write_jsonl, write_recipe

from pipeline.cli import main

pytestmark = pytest.mark.slow  # many runs or processes: the full suite (CI) runs them, `-m "not slow"` skips them


def keyword_recipe(tiny_bert, tmp_path):
    data = {
        split: write_jsonl(tmp_path / f"{split}.jsonl", make_examples(count, seed))
        for split, count, seed in (("train", 48, 0), ("validation", 16, 1))
    }
    return recipe_dict(tiny_bert, data, tmp_path / "run", task={"type": "keyword-spotting", "keyword": "good"},
                       eval={"metrics": ["accuracy"], "splits": ["validation"], "batch_size": 8}, train={"max_steps":
                       3})  # fmt: skip


def test_a_task_type_from_a_test_file_trains_evaluates_and_sweeps(tiny_bert, tmp_path, monkeypatch):
    import toy_task  # registers `keyword-spotting` in this process

    raw = keyword_recipe(tiny_bert, tmp_path)
    run = train_fresh(raw)
    metrics = json.loads((run / "metrics.json").read_text())
    records = [json.loads(line) for line in (run / "predictions-validation.jsonl").read_text().splitlines()]
    assert set(metrics["validation"]) == {"accuracy"} and len(records) == 16
    assert {r["label"] for r in records} <= set(toy_task.LABELS) and records[0]["text"]
    assert main(["eval", str(run), "--output", str(tmp_path / "scores.json")]) == 0
    assert json.loads((tmp_path / "scores.json").read_text())["validation"] == metrics["validation"]

    monkeypatch.setenv("EMBEDLAB_PLUGINS", "toy_task")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]))
    recipe = write_recipe(tmp_path / "keyword.yaml", raw)
    grid = ["--grid", "layers.token_embeddings=finetune,freeze", "--seeds", "0", "--output", str(tmp_path / "sweep")]
    assert main(["sweep", str(recipe), *grid]) == 0
    summary = json.loads((tmp_path / "sweep" / "summary.json").read_text())
    assert list(summary["cells"]) == ["token_embeddings=finetune", "token_embeddings=freeze"]
    assert summary["classical"] == [] and "accuracy" in summary["cells"]["token_embeddings=freeze"]["vs_baseline"]
