"""Cached features of a frozen body: the same run as running the body every step, only the head trains, reused
across runs, given up once the body unfreezes."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import BILSTM_TAGGER, build, recipe_dict, tagged_sentences, tagging_recipe, train_fresh, write_jsonl
from safetensors.torch import load_file

FROZEN = {"token_embeddings": "freeze", "positions": "freeze", "encoder": "freeze"}


def run(raw: dict, cache: bool, name: str, tmp_path) -> tuple[dict, dict]:
    raw = {**raw, "output_dir": str(tmp_path / name), "train": {**raw["train"], "cache_frozen_features": cache}}
    run_dir = train_fresh(raw)
    return json.loads((run_dir / "metrics.json").read_text()), load_file(run_dir / "model" / "model.safetensors")


def assert_same_run(tmp_path, raw: dict) -> dict:
    (cached, cached_weights), (plain, plain_weights) = (
        run(raw, True, "cached", tmp_path),
        run(raw, False, "plain", tmp_path),
    )
    assert cached["train"]["feature_cache"]["used"] is True
    assert plain["train"]["feature_cache"] == {"used": False, "why": "train.cache_frozen_features is false"}
    split = raw["eval"]["splits"][0]
    assert cached[split] == pytest.approx(plain[split], abs=1e-5)
    for key, tensor in plain_weights.items():
        assert torch.allclose(cached_weights[key], tensor, atol=1e-5), key
    return cached


def test_a_frozen_bert_classifier_trains_the_same_on_cached_features(tmp_path, tiny_bert, jsonl_data):
    raw = recipe_dict(tiny_bert, jsonl_data, tmp_path / "x", layers=FROZEN, train={"max_steps": 12, "lr": 1e-2})
    cached = assert_same_run(tmp_path, raw)
    assert cached["train"]["trainable_parameters"] == 32 * 2 + 2  # the classifier alone
    again, _ = run(raw, True, "again", tmp_path)
    assert again["train"]["feature_cache"]["reused"] is True and again["validation"] == cached["validation"]


def test_a_frozen_bilstm_tagger_trains_the_same_on_cached_features(tmp_path):
    files = {
        "train": write_jsonl(tmp_path / "train.jsonl", tagged_sentences(32, 0)),
        "validation": write_jsonl(tmp_path / "validation.jsonl", tagged_sentences(12, 1)),
    }
    raw = tagging_recipe(tmp_path, files, layers={"token_embeddings": "freeze", "encoder": "freeze"})
    raw["model"]["config"] = {**BILSTM_TAGGER, "dropout": 0.3}  # dropout in the body: not applied to a frozen one
    raw["train"] = {**raw["train"], "max_steps": 12}
    assert_same_run(tmp_path, raw)


def test_the_cache_is_left_from_the_step_the_body_unfreezes(tmp_path, tiny_bert, jsonl_data):
    layers = {**FROZEN, "encoder": {"policy": "freeze", "unfreeze_at_step": 3}}
    raw = recipe_dict(tiny_bert, jsonl_data, tmp_path / "run", layers=layers, train={"max_steps": 6})
    exp = build(raw)
    assert exp.model.base_model.encoder.layer[0].attention.self.query.weight.requires_grad is False
    metrics, weights = run(raw, True, "unfreezing", tmp_path)
    assert metrics["train"]["feature_cache"]["used"] is True
    before = load_file(tiny_bert / "model.safetensors")["encoder.layer.0.attention.self.query.weight"]
    assert not torch.equal(before, weights["bert.encoder.layer.0.attention.self.query.weight"])  # trained after step 3


def test_a_body_that_trains_gets_no_cache(tmp_path, tiny_bert, jsonl_data):
    metrics, _ = run(
        recipe_dict(tiny_bert, jsonl_data, tmp_path / "x", layers={"encoder": "freeze"}), True, "partly", tmp_path
    )
    assert "feature_cache" not in metrics["train"]  # the token and position tables train: nothing to cache


@pytest.mark.parametrize("named", ["transformers.trainer:Trainer", "os:system", "transformers.nothing:Here"])
def test_a_feature_entry_naming_another_class_is_one_line(tmp_path, named):
    from safetensors.torch import save_file

    from pipeline.errors import PipelineError
    from pipeline.training.features import FeatureCache

    path = tmp_path / "entry" / "features.safetensors"
    path.parent.mkdir()
    metadata = {"output_class": named, "per_token": "[]", "tuples": "{}"}
    save_file({"pooler_output": torch.zeros(2, 4)}, str(path), metadata=metadata)
    with pytest.raises(PipelineError, match="which is not a model output class: remove that cache entry"):
        FeatureCache.load(path)
