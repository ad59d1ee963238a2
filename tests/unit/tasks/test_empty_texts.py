"""Empty texts with a tokenizer that adds no special tokens (a built word-level one): each reads as one unknown
token, so a length-grouped batch of nothing but empty texts still has a position to pool."""

from __future__ import annotations

import json

from helpers import fresh_bilstm_model, make_examples, read_jsonl, recipe_dict, train_fresh, write_jsonl


def test_a_batch_of_empty_texts_trains_and_is_scored(tmp_path):
    train = make_examples(40, 0)
    for row in train[::3]:  # 14 empty texts: length grouping puts them in batches of their own
        row["text"] = ""
    data = {
        "train": write_jsonl(tmp_path / "train.jsonl", train),
        "validation": write_jsonl(tmp_path / "validation.jsonl", train[:12]),
    }
    model = fresh_bilstm_model()
    raw = recipe_dict(
        None,
        data,
        tmp_path / "run",
        family="bilstm",
        model=model,
        train={"max_steps": 6, "batch_size": 4, "group_by_length": True},
        eval={"metrics": ["accuracy"], "splits": ["validation"], "batch_size": 4},
    )
    run = train_fresh(raw)
    accuracy = json.loads((run / "metrics.json").read_text())["validation"]["accuracy"]
    assert 0.0 <= accuracy <= 1.0
    predictions = read_jsonl(run / "predictions-validation.jsonl")
    assert len(predictions) == 12 and sum(not p["text"] for p in predictions) == 4
    assert json.loads((run / "input_layers.json").read_text())["data"]["train"]["empty_texts"] == 14
