"""Layer policies: freezing, gradual unfreezing, per-group learning rates and layer-wise decay, for every family."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import BILSTM_LM, build, recipe_dict, train_fresh
from safetensors.torch import load_file

from pipeline.surgery.policies import blocks_of, layer_group_of_parameters
from pipeline.training.optimizer import build_optimizer


def test_frozen_tensors_get_no_optimizer_state(tmp_path, jsonl_data, tiny_bert):
    raw = recipe_dict(
        tiny_bert, jsonl_data, tmp_path / "run", layers={"token_embeddings": "freeze", "positions": "freeze"}
    )
    exp = build(raw)
    optimizer = build_optimizer(exp.family, exp.model, exp.recipe.layers, exp.recipe.train)
    layers = exp.family.input_layers(exp.model)
    frozen = {id(layers.token_embeddings.weight), id(layers.positions.weight)}
    assert not frozen & {id(p) for group in optimizer.param_groups for p in group["params"]}
    batch = exp.data.collator([exp.data.splits["train"][i] for i in range(4)])
    exp.model(**batch).loss.backward()
    optimizer.step()
    assert layers.token_embeddings.weight.grad is None
    assert not frozen & {id(p) for p in optimizer.state}
    assert len(optimizer.state) == sum(1 for p in exp.model.parameters() if p.requires_grad)


def test_lr_multiplier_sets_the_embedding_group_rate(tmp_path, jsonl_data, tiny_bert):
    raw = recipe_dict(
        tiny_bert,
        jsonl_data,
        tmp_path / "run",
        layers={"token_embeddings": {"policy": "finetune", "lr_multiplier": 0.1}},
    )
    exp = build(raw)
    optimizer = build_optimizer(exp.family, exp.model, exp.recipe.layers, exp.recipe.train)
    rates = {group["layer_group"]: group["lr"] for group in optimizer.param_groups}
    assert rates["token_embeddings"] == pytest.approx(1e-4)
    assert rates["encoder"] == pytest.approx(1e-3)


def test_encoder_freeze_bottom_and_layerwise_decay(tmp_path, jsonl_data, tiny_bert):
    exp = build(
        recipe_dict(
            tiny_bert, jsonl_data, tmp_path / "run", layers={"encoder": {"freeze_bottom": 1, "layerwise_lr_decay": 0.5}}
        )
    )
    blocks = blocks_of(exp.family, exp.model)
    assert not any(p.requires_grad for p in blocks[0].parameters())
    assert all(p.requires_grad for p in blocks[1].parameters())
    optimizer = build_optimizer(exp.family, exp.model, exp.recipe.layers, exp.recipe.train)
    lr_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    assert lr_of[id(blocks[1].attention.self.query.weight)] == pytest.approx(1e-3)
    assert lr_of[id(exp.family.input_layers(exp.model).token_embeddings.weight)] == pytest.approx(1e-3 * 0.25)
    assert lr_of[id(exp.model.classifier.weight)] == pytest.approx(1e-3)
    assert id(blocks[0].attention.self.query.weight) not in lr_of


def test_whole_encoder_frozen_is_feature_extraction(tmp_path, jsonl_data, tiny_bert):
    exp = build(
        recipe_dict(
            tiny_bert,
            jsonl_data,
            tmp_path / "run",
            layers={"encoder": "freeze", "token_embeddings": "freeze", "positions": "freeze"},
        )
    )
    trainable = [name for name, p in exp.model.named_parameters() if p.requires_grad]
    assert trainable == ["classifier.weight", "classifier.bias"]


@pytest.mark.slow
@pytest.mark.parametrize("when", [{"unfreeze_at_step": 2}, {"unfreeze_at_epoch": 1}], ids=["step", "epoch"])
def test_gradual_unfreezing_trains_the_table_only_afterwards(tmp_path, jsonl_data, tiny_bert, when):
    # 48 examples in batches of 24: 2 steps per epoch, so epoch 1 ends at step 2
    run_dir = train_fresh(
        recipe_dict(
            tiny_bert,
            jsonl_data,
            tmp_path / "run",
            layers={"token_embeddings": {"policy": "freeze", **when}},
            train={"batch_size": 24},
        )
    )
    before = load_file(tiny_bert / "model.safetensors")["embeddings.word_embeddings.weight"]
    after = load_file(run_dir / "model" / "model.safetensors")["bert.embeddings.word_embeddings.weight"]
    assert not torch.equal(before, after)
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert {"step": 2, "unfrozen_parameters": before.numel()} in log


@pytest.mark.parametrize("family", ["bert", "gpt2", "llama", "bilstm"])
def test_layerwise_decay_counts_blocks_down_from_the_top_in_every_family(tmp_path, jsonl_data, request, family):
    """Top block at lr, block l of L at lr × d^(L−1−l), input tables at lr × d^L, the head undecayed."""
    layers = {"encoder": {"layerwise_lr_decay": 0.5}}
    if family == "bilstm":
        model = {
            "family": "bilstm",
            "name_or_path": None,
            "config": BILSTM_LM,
            "tokenizer": {"build": "word", "min_frequency": 1},
        }
        raw = recipe_dict(None, jsonl_data, tmp_path / "run", family=family, model=model, layers=layers)
    else:
        raw = recipe_dict(
            request.getfixturevalue(f"tiny_{family}"), jsonl_data, tmp_path / "run", family=family, layers=layers
        )
    exp = build(raw)
    optimizer = build_optimizer(exp.family, exp.model, exp.recipe.layers, exp.recipe.train)
    lr_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    blocks = blocks_of(exp.family, exp.model)
    assert len(blocks) == 2
    for index, block in enumerate(blocks):
        assert [lr_of[id(p)] for p in block.parameters()] == pytest.approx(
            [1e-3 * 0.5 ** (1 - index)] * len(list(block.parameters()))
        )
    assert lr_of[id(exp.family.input_layers(exp.model).token_embeddings.weight)] == pytest.approx(1e-3 * 0.25)
    groups = layer_group_of_parameters(exp.family, exp.model)
    head = [p for name, p in exp.model.named_parameters() if groups[name] == "head"]
    assert head and all(lr_of[id(p)] == pytest.approx(1e-3) for p in head)
