"""A token table per position (`per_position: true`): vocabulary × positions rows, a row moves only where its token
is seen at its position, the saved model reloads through embedlab (and a stock load refuses it), bad input is one
line."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import build, fresh_bilstm_model, make_examples, recipe_dict, train_fresh, write_jsonl, write_recipe
from transformers import AutoModelForSequenceClassification

from pipeline.cli import main
from pipeline.surgery.tables import PerPositionTable

PER_POSITION = {"token_embeddings": {"policy": "replace", "init": "random", "per_position": True}}


@pytest.fixture
def data(tmp_path):
    return {
        split: write_jsonl(tmp_path / f"{split}.jsonl", make_examples(count, seed))
        for split, count, seed in (("train", 16, 0), ("validation", 8, 1))
    }


def per_position_recipe(tmp_path, data, model_dir, **model):
    # One epoch of 2 batches sees every training example once; no weight decay, so an unseen row has no reason
    # to move (AdamW would shrink every row).
    train = {"max_steps": None, "epochs": 1, "batch_size": 8, "weight_decay": 0.0, "lr": 1e-2}
    raw = recipe_dict(model_dir, data, tmp_path / "run", layers=PER_POSITION, train=train)
    raw["model"].update({"max_length": 12, **model})
    return raw


def seen_pairs(exp) -> set[tuple[int, int]]:
    """(position, token id) of every real token of the training split."""
    return {(p, token) for ids in exp.data.splits["train"]["input_ids"] for p, token in enumerate(ids)}


@pytest.mark.parametrize("family", ["bert", "bilstm"])
def test_each_position_row_moves_only_where_its_token_is_seen(tmp_path, data, tiny_bert, family):
    model = {} if family == "bert" else fresh_bilstm_model(max_length=12)
    raw = per_position_recipe(tmp_path, data, tiny_bert if family == "bert" else None, **model)
    exp = build(raw)
    table = exp.model.get_input_embeddings()
    vocabulary = table.weight.shape[1]
    assert isinstance(table, PerPositionTable) and table.weight.shape[0] == 12 and vocabulary >= len(exp.tokenizer) - 1
    before = table.weight.detach().clone()  # the same seed draws the same tables in the run below
    seen = seen_pairs(exp)
    run = train_fresh(raw)
    from safetensors.torch import load_file

    saved = next(v for k, v in load_file(run / "model" / "model.safetensors").items() if "word_embeddings" in k)
    moved = {(p, t) for p in range(12) for t in range(vocabulary) if not torch.equal(saved[p, t], before[p, t])}
    assert moved and moved <= seen  # no row moves where its token never stood
    assert len(moved) >= 0.9 * len(seen - {(p, exp.tokenizer.pad_token_id) for p in range(12)})
    sources = json.loads((run / "input_layers.json").read_text())["sources"]
    assert "one table per position (12 positions)" in sources["token_embeddings"]


def test_the_saved_model_reloads_through_embedlab_and_a_stock_load_refuses_it(tmp_path, data, tiny_bert, capsys):
    run = train_fresh(per_position_recipe(tmp_path, data, tiny_bert))
    with pytest.raises(Exception, match=r"size|shape"):
        AutoModelForSequenceClassification.from_pretrained(run / "model")
    assert main(["eval", str(run), "--output", str(tmp_path / "scores.json")]) == 0
    trained = json.loads((run / "metrics.json").read_text())["validation"]["accuracy"]
    assert json.loads((tmp_path / "scores.json").read_text())["validation"]["accuracy"] == pytest.approx(trained)
    capsys.readouterr()
    assert main(["diagnose", str(run)]) == 2  # it compares one shared table: said in one line
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "a token table per position" in errors[0]


def test_a_shared_table_has_one_row_per_token_and_per_position_multiplies_it(tmp_path, data, tiny_bert):
    shared = build(recipe_dict(tiny_bert, data, tmp_path / "a", layers={"token_embeddings": "finetune"}))
    per_position = build(per_position_recipe(tmp_path, data, tiny_bert))
    rows = shared.model.get_input_embeddings().weight.shape[0]
    assert per_position.model.get_input_embeddings().weight.numel() == 12 * rows * 32


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"layers": {"token_embeddings": {**PER_POSITION["token_embeddings"], "init": "vectors", "train": {}}}},
            "init: random",
        ),
        (
            {"layers": {"token_embeddings": {"policy": "finetune", "per_position": True}}},
            "per_position applies to policy: replace, init: random",
        ),
        ({"model": {"max_length": None}}, "per_position needs model.max_length"),
        ({"model": {**fresh_bilstm_model(1_000_000), "config": {"hidden_size": 512}}}, "memory available"),
    ],
)
def test_bad_per_position_input_is_one_line(tmp_path, data, tiny_bert, capsys, change, expected):
    raw = per_position_recipe(tmp_path, data, tiny_bert)
    if change.get("model", {}).get("family") == "bilstm":
        raw["model"] = {}
    for section, values in change.items():
        raw[section] = {**raw[section], **values}
    recipe = write_recipe(tmp_path / "r.yaml", raw)
    assert main(["train", str(recipe)]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and expected in errors[0] and "Traceback" not in err
    assert not (tmp_path / "run").exists()
