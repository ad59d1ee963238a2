"""The family protocol end to end: a toy family defined only in this file trains; the rotary (Llama) family trains
with every token-embedding policy and refuses position policies; a checkpoint of another family is refused."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from helpers import POSITIVE, build, read_jsonl, recipe_dict, train_fresh, write_glove, write_recipe
from safetensors.torch import load_file
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedConfig,
    PreTrainedModel,
)
from transformers.modeling_outputs import SequenceClassifierOutput

from pipeline.cli import main
from pipeline.families import FamilySpec, register_family
from pipeline.families.base import Family, resize_position_buffers
from pipeline.surgery.tables import FixedTable, table_of


# --- a toy family: a bag of token + position vectors through residual MLP blocks, mean-pooled ---------------------
class ToyConfig(PreTrainedConfig):
    model_type = "embedlab-toy"

    vocab_size: int = 100
    hidden_size: int = 16
    num_blocks: int = 2
    max_positions: int = 32
    pad_token_id: int | None = 0


class ToyPreTrainedModel(PreTrainedModel):
    config_class = ToyConfig
    base_model_prefix = "toy"
    main_input_name = "input_ids"


class ToyModel(ToyPreTrainedModel):
    """ids (batch, seq) → states (batch, seq, hidden)."""

    def __init__(self, config: ToyConfig):
        super().__init__(config)
        self.tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.where = nn.Embedding(config.max_positions, config.hidden_size)
        self.blocks = nn.ModuleList(nn.Linear(config.hidden_size, config.hidden_size) for _ in range(config.num_blocks))
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.tokens

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.tokens = value

    def forward(self, input_ids, **kwargs):
        x = self.tokens(input_ids) + self.where(torch.arange(input_ids.shape[1], device=input_ids.device))
        for block in self.blocks:
            x = x + torch.tanh(block(x))
        return x


class ToyForSequenceClassification(ToyPreTrainedModel):
    def __init__(self, config: ToyConfig):
        super().__init__(config)
        self.toy = ToyModel(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids, attention_mask=None, labels=None, **kwargs):
        mask = (torch.ones_like(input_ids) if attention_mask is None else attention_mask).unsqueeze(-1).float()
        pooled = (self.toy(input_ids) * mask).sum(1) / mask.sum(1).clamp(min=1)
        logits = self.classifier(pooled)
        return SequenceClassifierOutput(loss=None if labels is None else F.cross_entropy(logits, labels), logits=logits)


class ToyFamily(Family):
    spec = FamilySpec("toy", "a test family", lora_targets=("blocks.0", "blocks.1"))  # LoRA's default targets
    scratch_model_type = ToyConfig.model_type
    checkpoint_model_types = frozenset({ToyConfig.model_type})
    block_list_names = ("blocks",)

    def position_slot(self, model):
        return model.base_model, "where"

    def set_positions(self, model, table, rows):
        super().set_positions(model, table, rows)
        model.config.max_positions = rows
        resize_position_buffers(model.base_model, rows)

    def position_limit(self, model):
        return model.config.max_positions


@pytest.fixture(scope="module")
def toy_family():
    AutoConfig.register(ToyConfig.model_type, ToyConfig, exist_ok=True)
    AutoModelForSequenceClassification.register(ToyConfig, ToyForSequenceClassification, exist_ok=True)
    return register_family(ToyFamily())


def toy_recipe(tmp_path, data, **sections):
    model = {
        "family": "toy",
        "name_or_path": None,
        "config": {"hidden_size": 16, "num_blocks": 2, "max_positions": 32},
        "tokenizer": {"build": "word", "vocab_size": 100, "min_frequency": 1},
        "max_length": 16,
    }
    return recipe_dict(None, data, tmp_path / "toy-run", model=model, train={"max_steps": 12, "lr": 1e-2}, **sections)


def test_a_family_defined_outside_the_package_trains(tmp_path, jsonl_data, toy_family):
    layers = {"positions": {"policy": "replace", "init": "sinusoidal"}, "encoder": {"freeze_bottom": 1}}
    run_dir = train_fresh(toy_recipe(tmp_path, jsonl_data, layers=layers))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["train"]["steps"] == 12 and 0 <= metrics["validation"]["accuracy"] <= 1
    rows = (run_dir / "parameters.tsv").read_text().splitlines()
    assert any(row.startswith("token_embeddings\ttoy.tokens.weight") for row in rows)
    assert any(row.startswith("encoder\ttoy.blocks.0.weight") and "\tfrozen\t" in row for row in rows)
    assert any(row.startswith("encoder\ttoy.blocks.1.weight") and "\ttrainable\t" in row for row in rows)
    sources = json.loads((run_dir / "input_layers.json").read_text())["sources"]
    assert sources["positions"].startswith("sinusoidal")
    reloaded = AutoModelForSequenceClassification.from_pretrained(run_dir / "model")
    exp = build(toy_recipe(tmp_path, jsonl_data, layers=layers))
    positions = toy_family.input_layers(exp.model).positions
    assert isinstance(positions, FixedTable)
    assert torch.equal(reloaded.toy.where.weight, positions.weight)  # the fixed table was saved as a plain one


def test_a_family_defined_outside_the_package_keeps_its_lora_targets(tmp_path, jsonl_data, toy_family):
    """Its class attributes are what recipe checks read: `encoder: lora` with no targets takes the family's."""
    pytest.importorskip("peft")
    assert toy_family.spec.lora_targets == ("blocks.0", "blocks.1")
    run_dir = train_fresh(toy_recipe(tmp_path, jsonl_data, layers={"encoder": {"policy": "lora", "r": 2}}))
    rows = (run_dir / "parameters.tsv").read_text().splitlines()
    assert any("blocks.0" in row and "lora_A" in row and "\ttrainable\t" in row for row in rows)


def test_the_toy_family_is_refused_where_it_does_not_fit(tmp_path, jsonl_data, toy_family, capsys):
    recipe = toy_recipe(tmp_path, jsonl_data, task={"type": "language-modeling", "objective": "causal"})
    assert main(["validate", str(write_recipe(tmp_path / "r.yaml", recipe))]) == 2
    assert "family toy has no language-modeling objective yet" in capsys.readouterr().err


# --- the rotary decoder family ------------------------------------------------------------------------------------
def llama_recipe(tiny_llama, data, tmp_path, **sections):
    return recipe_dict(tiny_llama, data, tmp_path / "llama-run", family="llama", **sections)


@pytest.mark.parametrize("policy", ["finetune", "freeze", "random", "vectors"])
def test_rotary_family_trains_with_every_token_embedding_policy(tmp_path, jsonl_data, tiny_llama, policy):
    glove = write_glove(tmp_path / "glove.txt", POSITIVE, dim=32)
    table_policy = {
        "finetune": "finetune",
        "freeze": "freeze",
        "random": {"policy": "replace", "init": "random"},
        "vectors": {"policy": "replace", "init": "vectors", "vectors": str(tmp_path / "glove.txt"), "then": "freeze"},
    }[policy]
    run_dir = train_fresh(llama_recipe(tiny_llama, jsonl_data, tmp_path, layers={"token_embeddings": table_policy}))
    before = load_file(tiny_llama / "model.safetensors")["model.embed_tokens.weight"]
    after = load_file(run_dir / "model" / "model.safetensors")["model.embed_tokens.weight"]
    assert json.loads((run_dir / "metrics.json").read_text())["train"]["steps"] == 4
    assert torch.equal(before, after) == (policy == "freeze")
    if policy == "vectors":
        good = AutoTokenizer.from_pretrained(tiny_llama).convert_tokens_to_ids("Ġgood")  # spells "good"
        assert torch.allclose(after[good], torch.from_numpy(glove["good"]), atol=1e-6)
    assert json.loads((run_dir / "input_layers.json").read_text())["sources"]["positions"].startswith(
        "rotary: base 10000"
    )
    assert len(read_jsonl(run_dir / "predictions-validation.jsonl")) == 16


def test_rotary_family_inspect_says_there_is_no_position_table(tmp_path, jsonl_data, tiny_llama, capsys):
    assert (
        main(["inspect", str(write_recipe(tmp_path / "r.yaml", llama_recipe(tiny_llama, jsonl_data, tmp_path)))]) == 0
    )
    out = capsys.readouterr().out
    assert "positions: rotary: base 10000, default; rotates 16 of 16 dimensions per head" in out
    assert "the rotation has no parameters, nothing to train" in out


@pytest.mark.parametrize("init", ["sinusoidal", "learned"])
def test_rotary_family_refuses_position_table_policies_with_one_line(tmp_path, jsonl_data, tiny_llama, capsys, init):
    path = write_recipe(tmp_path / "r.yaml", llama_recipe(tiny_llama, jsonl_data, tmp_path))
    assert main(["train", str(path), f"layers.positions={{policy: replace, init: {init}}}"]) == 2
    err = capsys.readouterr().err
    expected = f"layers.positions.init: init: {init} replaces a position table; family llama rotates queries and keys"
    assert err.count("\n") == 1 and expected in err
    assert not (tmp_path / "llama-run").exists()


@pytest.mark.slow
def test_rotary_family_pretrains_with_a_tied_head_that_follows_a_frozen_table(tmp_path, tiny_llama):
    lines = [f"the {word} movie was {word} ." for word in POSITIVE * 8]
    files = {}
    for split in ("train", "validation"):
        (tmp_path / f"{split}.txt").write_text("\n".join(lines) + "\n")
        files[split] = str(tmp_path / f"{split}.txt")
    recipe = llama_recipe(
        tiny_llama,
        files,
        tmp_path,
        task={"type": "language-modeling", "objective": "causal"},
        layers={"token_embeddings": "freeze"},
        eval={"metrics": None, "splits": ["validation"], "batch_size": 8},
    )
    run_dir = train_fresh(recipe)
    scores = json.loads((run_dir / "metrics.json").read_text())["validation"]
    assert math.isfinite(scores["perplexity"]) and scores["perplexity"] > 1
    saved = load_file(run_dir / "model" / "model.safetensors")
    assert torch.equal(
        saved["model.embed_tokens.weight"], load_file(tiny_llama / "model.safetensors")["model.embed_tokens.weight"]
    )
    assert "lm_head.weight" not in saved  # tied: one tensor, saved once
    assert json.loads((run_dir / "input_layers.json").read_text())["sources"]["output_embeddings"].startswith("tied")


@pytest.mark.parametrize(
    ("family", "fixture", "owner"),
    [("gpt2", "tiny_llama", "llama"), ("gpt2", "tiny_bert", "bert"), ("llama", "tiny_gpt2", "gpt2")],
)
def test_a_checkpoint_of_another_family_is_refused(tmp_path, jsonl_data, request, capsys, family, fixture, owner):
    path = write_recipe(
        tmp_path / "r.yaml", recipe_dict(request.getfixturevalue(fixture), jsonl_data, tmp_path / "run", family=family)
    )
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: model.family:") and f"of family {owner}; set model.family: {owner}" in err
    assert not (tmp_path / "run").exists()


def test_families_keep_their_tables_to_themselves(tmp_path, jsonl_data, tiny_bert, tiny_gpt2, tiny_llama):
    """Each family finds its own input layers and blocks in its own models."""
    expected = {
        "bert": (tiny_bert, "word_embeddings", "position_embeddings", 2),
        "gpt2": (tiny_gpt2, "wte", "wpe", 2),
        "llama": (tiny_llama, "embed_tokens", None, 2),
    }
    for family, (folder, tokens, positions, blocks) in expected.items():
        exp = build(recipe_dict(folder, jsonl_data, tmp_path / family, family=family))
        layers = exp.family.input_layers(exp.model)
        named = {module: name.rsplit(".", 1)[-1] for name, module in exp.model.named_modules()}
        assert named[table_of(layers.token_embeddings)] == tokens
        assert (named[layers.positions] if layers.positions is not None else None) == positions
        assert len(exp.family.blocks(exp.model)) == blocks
