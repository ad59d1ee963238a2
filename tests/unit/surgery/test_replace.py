"""Layer surgery on tiny BERT and GPT-2: replaced modules, frozen tables, sinusoids, `none`, `extend`,
static vectors aligned to the vocabulary, projections that fold into plain saved tables."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import FILLER, NEGATIVE, POSITIVE, recipe_dict, train_fresh, write_glove
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from pipeline.errors import PipelineError
from pipeline.experiment.build import build_experiment
from pipeline.experiment.recipes import validate_recipe
from pipeline.recipe.positions import SinusoidalPositions
from pipeline.surgery.positions import replace_positions, sinusoidal_positions
from pipeline.surgery.tables import FixedTable, ProjectedLookup, sinusoidal_table, table_of
from pipeline.training.optimizer import build_optimizer


def build(model_dir, data, tmp_path, family="bert", **sections):
    return build_experiment(validate_recipe(recipe_dict(model_dir, data, tmp_path / "run", family=family, **sections)))


def run(model_dir, data, tmp_path, family="bert", **sections) -> Path:
    return train_fresh(recipe_dict(model_dir, data, tmp_path / "run", family=family, **sections))


def predictions_after_reload(run_dir: Path, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of the reloaded stock model, and probabilities the run saved for the same texts."""
    model = AutoModelForSequenceClassification.from_pretrained(run_dir / "model").eval()
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "model")
    with torch.no_grad():
        logits = model(**tokenizer(texts, padding=True, truncation=True, max_length=32, return_tensors="pt")).logits
    saved = [
        json.loads(line)["probabilities"]
        for line in (run_dir / "predictions-validation.jsonl").read_text().splitlines()
    ]
    return logits.softmax(-1), torch.tensor(saved)


def validation_texts(data: dict[str, str]) -> list[str]:
    return [json.loads(line)["text"] for line in Path(data["validation"]).read_text().splitlines()]


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_sinusoidal_positions_match_the_formula(tmp_path, jsonl_data, tiny_bert, tiny_gpt2, family):
    positions = {"policy": "replace", "init": "sinusoidal", "scale": 1.0}
    exp = build(
        tiny_bert if family == "bert" else tiny_gpt2, jsonl_data, tmp_path, family, layers={"positions": positions}
    )
    positions = exp.family.input_layers(exp.model).positions
    assert isinstance(positions, FixedTable) and not list(positions.parameters())
    table = positions.weight
    d = table.shape[1]
    for pos, i in [(0, 0), (5, 2), (17, 7), (63, 15)]:
        assert table[pos, 2 * i].item() == pytest.approx(math.sin(pos / 10000 ** (2 * i / d)), abs=1e-6)
        assert table[pos, 2 * i + 1].item() == pytest.approx(math.cos(pos / 10000 ** (2 * i / d)), abs=1e-6)
    assert exp.input_report.surgery.sources.positions == "sinusoidal (fixed, ×1)"


def test_sinusoidal_table_is_scaled_to_the_pretrained_table_by_default(tmp_path, jsonl_data, tiny_bert):
    old = load_file(tiny_bert / "model.safetensors")["embeddings.position_embeddings.weight"]
    exp = build(tiny_bert, jsonl_data, tmp_path, layers={"positions": {"policy": "replace", "init": "sinusoidal"}})
    table = exp.family.input_layers(exp.model).positions.weight
    assert table.std().item() == pytest.approx(old.std().item(), rel=1e-4)
    factor = old.std().item() / sinusoidal_table(64, 32).std().item()
    assert torch.allclose(table, sinusoidal_table(64, 32) * factor)


@pytest.mark.slow
def test_sinusoidal_table_survives_training_and_saving(tmp_path, jsonl_data, tiny_bert):
    run_dir = run(
        tiny_bert, jsonl_data, tmp_path, layers={"positions": {"policy": "replace", "init": "sinusoidal", "scale": 0.5}}
    )
    saved = load_file(run_dir / "model" / "model.safetensors")["bert.embeddings.position_embeddings.weight"]
    assert torch.equal(saved, sinusoidal_table(64, 32) * 0.5)
    reloaded, recorded = predictions_after_reload(run_dir, validation_texts(jsonl_data))
    assert torch.allclose(reloaded, recorded, atol=1e-4)


def test_no_positions_make_bert_blind_to_word_order(tmp_path, jsonl_data, tiny_bert):
    exp = build(tiny_bert, jsonl_data, tmp_path, layers={"positions": {"policy": "replace", "init": "none"}})
    model = exp.model.eval()
    ids = exp.tokenizer("the movie was very good and the plot great", return_tensors="pt")["input_ids"]
    inner = ids[0, 1:-1]
    shuffled = torch.cat(
        [ids[0, :1], inner[torch.randperm(len(inner), generator=torch.Generator().manual_seed(0))], ids[0, -1:]]
    )
    assert not torch.equal(shuffled, ids[0])

    def cls_state(m, token_ids):  # (hidden,): what the classification head reads
        with torch.no_grad():
            return m.base_model(input_ids=token_ids).last_hidden_state[0, 0]

    assert torch.allclose(cls_state(model, ids), cls_state(model, shuffled[None]), atol=1e-5)
    # the same check fails with pretrained positions: order was visible before
    original = build(tiny_bert, jsonl_data, tmp_path).model.eval()
    assert (cls_state(original, ids) - cls_state(original, shuffled[None])).abs().max() > 1e-4


def test_no_positions_in_gpt2_ignore_position_ids(tmp_path, jsonl_data, tiny_gpt2):
    exp = build(tiny_gpt2, jsonl_data, tmp_path, "gpt2", layers={"positions": {"policy": "replace", "init": "none"}})
    ids = exp.tokenizer("good movie and a great plot", return_tensors="pt")["input_ids"]
    model = exp.model.eval()
    with torch.no_grad():
        shifted = model.base_model(input_ids=ids, position_ids=torch.arange(ids.shape[1])[None] + 20).last_hidden_state
        assert torch.allclose(model.base_model(input_ids=ids).last_hidden_state, shifted, atol=1e-5)
        original = build(tiny_gpt2, jsonl_data, tmp_path, "gpt2").model.eval().base_model
        moved = original(input_ids=ids, position_ids=torch.arange(ids.shape[1])[None] + 20).last_hidden_state
        assert (original(input_ids=ids).last_hidden_state - moved).abs().max() > 1e-4


def test_gpt2_extend_accepts_longer_inputs(tmp_path, jsonl_data, tiny_gpt2):
    old = load_file(tiny_gpt2 / "model.safetensors")["wpe.weight"]
    exp = build(
        tiny_gpt2,
        jsonl_data,
        tmp_path,
        "gpt2",
        model={"max_length": 100},
        layers={"positions": {"policy": "replace", "init": "extend", "max_positions": 128}},
    )
    table = exp.family.input_layers(exp.model).positions.weight.detach()
    assert torch.equal(table[:64], old) and torch.equal(table[64:], old) and exp.model.config.n_positions == 128
    with torch.no_grad():
        assert exp.model(input_ids=torch.tensor([[464] * 100])).logits.shape == (1, 2)


@pytest.mark.parametrize("mode", ["copy", "interpolate"])
def test_extend_keeps_old_rows_and_accepts_longer_inputs(tmp_path, jsonl_data, tiny_bert, mode):
    old = load_file(tiny_bert / "model.safetensors")["embeddings.position_embeddings.weight"]
    exp = build(
        tiny_bert,
        jsonl_data,
        tmp_path,
        model={"max_length": 100},
        layers={"positions": {"policy": "replace", "init": "extend", "max_positions": 128, "extend_mode": mode}},
    )
    table = exp.family.input_layers(exp.model).positions.weight.detach()
    assert table.shape == (128, 32) and exp.model.config.max_position_embeddings == 128
    if mode == "copy":
        assert torch.equal(table[:64], old) and torch.equal(table[64:128], old)
    else:
        assert torch.equal(table[0], old[0]) and torch.equal(table[-1], old[-1])
    long_ids = torch.tensor([[2] + [5] * 98 + [3]])
    with torch.no_grad():
        assert exp.model(input_ids=long_ids).logits.shape == (1, 2)


def test_positions_beyond_the_table_need_extend(tmp_path, jsonl_data, tiny_bert):
    with pytest.raises(PipelineError, match=re.escape("model.max_length: 100 exceeds the model's limit of 64")):
        build(tiny_bert, jsonl_data, tmp_path, model={"max_length": 100})


def test_learned_positions_are_fresh_and_trainable(tmp_path, jsonl_data, tiny_gpt2):
    old = load_file(tiny_gpt2 / "model.safetensors")["wpe.weight"]
    exp = build(
        tiny_gpt2,
        jsonl_data,
        tmp_path,
        "gpt2",
        layers={"positions": {"policy": "replace", "init": "learned", "max_positions": 96, "std": 0.5}},
    )
    table = exp.family.input_layers(exp.model).positions.weight
    assert table.shape == (96, 32) and table.requires_grad and not torch.equal(table[:64], old)
    assert table.detach().std().item() == pytest.approx(0.5, rel=0.1)
    assert exp.model.config.n_positions == 96


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_random_replacement_then_freeze_stays_bit_identical(tmp_path, jsonl_data, tiny_bert, tiny_gpt2, family):
    model_dir = tiny_bert if family == "bert" else tiny_gpt2
    layers = {"token_embeddings": {"policy": "replace", "init": "random", "std": 0.3, "then": "freeze"}}
    exp = build(model_dir, jsonl_data, tmp_path, family, layers=layers)
    new_table = exp.family.input_layers(exp.model).token_embeddings.weight.detach().clone()
    run_dir = run(model_dir, jsonl_data, tmp_path / "trained", family, layers=layers)
    key = "bert.embeddings.word_embeddings.weight" if family == "bert" else "transformer.wte.weight"
    assert torch.equal(load_file(run_dir / "model" / "model.safetensors")[key], new_table)  # same seed → same table
    assert new_table.std().item() == pytest.approx(0.3, rel=0.1)


def test_glove_vectors_are_aligned_to_wordpiece_ids(tmp_path, jsonl_data, tiny_bert):
    vectors = write_glove(tmp_path / "glove.txt", ["good", "movie", "plot", "happy", "zebra"])
    layers = {
        "token_embeddings": {
            "policy": "replace",
            "init": "vectors",
            "vectors": str(tmp_path / "glove.txt"),
            "width": "pad",
            "fallback": "mean",
        }
    }
    exp = build(tiny_bert, jsonl_data, tmp_path, layers=layers)
    table = exp.family.input_layers(exp.model).token_embeddings.weight.detach()
    vocab = exp.tokenizer.get_vocab()
    for word in ("good", "movie", "plot", "happy"):
        assert np.allclose(table[vocab[word], :4].numpy(), vectors[word], atol=1e-6)
        assert torch.all(table[vocab[word], 4:] == 0)  # zero-padded from 4 to 32
    mean = np.mean(list(vectors.values()), axis=0)
    assert np.allclose(table[vocab["awful"], :4].numpy(), mean, atol=1e-5)
    coverage = exp.input_report.coverage
    assert coverage["from_vectors"] == 4 and coverage["by_route"]["special"] == 5
    assert coverage["by_route"]["mean"] == len(vocab) - 4 - 5
    missed = {row["token"] for row in coverage["top_missed_in_train"]}
    assert "awful" in missed and "good" not in missed and len(missed) <= 20


def test_bpe_pieces_map_to_their_surface_word(tmp_path, jsonl_data, tiny_gpt2):
    vectors = write_glove(tmp_path / "glove.txt", ["movie", "the", "good"], dim=32)
    layers = {"token_embeddings": {"policy": "replace", "init": "vectors", "vectors": str(tmp_path / "glove.txt")}}
    exp = build(tiny_gpt2, jsonl_data, tmp_path, "gpt2", layers=layers)
    table = exp.family.input_layers(exp.model).token_embeddings.weight.detach()
    vocab = exp.tokenizer.get_vocab()
    assert np.allclose(
        table[vocab["Ġmovie"]].numpy(), vectors["movie"], atol=1e-6
    )  # byte-level BPE "Ġ" = leading space
    assert np.allclose(table[vocab["movie"]].numpy(), vectors["movie"], atol=1e-6)
    assert np.allclose(table[vocab["The"]].numpy(), vectors["the"], atol=1e-6)  # cased tokenizer: lower-case second try


def test_fasttext_builds_vectors_for_words_it_lacks(tmp_path, jsonl_data, tiny_bert):
    from gensim.models.fasttext import load_facebook_vectors
    from gensim.test.utils import datapath

    path = datapath("lee_fasttext_new.bin")
    known = load_facebook_vectors(path)
    layers = {"token_embeddings": {"policy": "replace", "init": "vectors", "vectors": path, "width": "pad"}}
    exp = build(tiny_bert, jsonl_data, tmp_path, layers=layers)
    routes = exp.input_report.coverage["by_route"]
    assert routes["fasttext_ngrams"] > 0 and routes["random"] == 0
    vocab = exp.tokenizer.get_vocab()
    unseen = next(word for word in FILLER + POSITIVE + NEGATIVE if word not in known.key_to_index)
    table = exp.family.input_layers(exp.model).token_embeddings.weight.detach()
    assert np.allclose(table[vocab[unseen], :10].numpy(), known[unseen], atol=1e-6)


def test_npy_vectors_with_a_parquet_vocabulary_and_projection(tmp_path, jsonl_data, tiny_bert):
    import pyarrow as pa
    import pyarrow.parquet as pq

    words = ["good", "bad", "movie", "good"]  # a duplicate keeps its first row
    matrix = np.arange(len(words) * 3, dtype=np.float32).reshape(len(words), 3)
    np.save(tmp_path / "emb.npy", matrix)
    pq.write_table(pa.table({"index": words}), tmp_path / "vocab.parquet")
    layers = {
        "token_embeddings": {
            "policy": "replace",
            "init": "vectors",
            "vectors": str(tmp_path / "emb.npy"),
            "vectors_vocab": str(tmp_path / "vocab.parquet"),
            "then": "freeze",
            "fallback": "subword",
        }
    }
    exp = build(tiny_bert, jsonl_data, tmp_path, layers=layers)
    module = exp.family.input_layers(exp.model).token_embeddings
    assert isinstance(module, ProjectedLookup) and module.projection.weight.shape == (32, 3)
    vocab = exp.tokenizer.get_vocab()
    assert np.array_equal(module.lookup.weight[vocab["good"]].detach().numpy(), matrix[0])
    assert np.array_equal(module.lookup.weight[vocab["bad"]].detach().numpy(), matrix[1])
    assert not module.lookup.weight.requires_grad and module.projection.weight.requires_grad
    optimizer = build_optimizer(exp.family, exp.model, exp.recipe.layers, exp.recipe.train)
    groups = {group["layer_group"] for group in optimizer.param_groups}
    assert "input_projection" in groups and "token_embeddings" not in groups


def test_projected_vectors_fold_into_a_plain_saved_table(tmp_path, jsonl_data, tiny_bert):
    write_glove(tmp_path / "glove.txt", ["good", "bad", "movie", "plot"])
    layers = {
        "token_embeddings": {
            "policy": "replace",
            "init": "vectors",
            "vectors": str(tmp_path / "glove.txt"),
            "then": "freeze",
        }
    }
    run_dir = run(tiny_bert, jsonl_data, tmp_path, layers=layers)
    saved = load_file(run_dir / "model" / "model.safetensors")
    assert saved["bert.embeddings.word_embeddings.weight"].shape == (23, 32)
    assert not any(".lookup." in key or ".projection." in key for key in saved)
    reloaded, recorded = predictions_after_reload(run_dir, validation_texts(jsonl_data))
    assert torch.allclose(reloaded, recorded, atol=1e-4)
    report = json.loads((run_dir / "input_layers.json").read_text())
    assert report["coverage"]["from_vectors"] == 4


def test_concat_combination_trains_and_reloads(tmp_path, jsonl_data, tiny_bert):
    run_dir = run(
        tiny_bert,
        jsonl_data,
        tmp_path,
        layers={"positions": {"policy": "replace", "init": "learned", "combine": "concat"}},
    )
    reloaded, recorded = predictions_after_reload(run_dir, validation_texts(jsonl_data))
    assert torch.allclose(reloaded, recorded, atol=1e-4)


def test_rotary_models_say_positions_cannot_be_replaced(tmp_path, jsonl_data, tiny_gpt2):
    from transformers import GPTNeoXConfig, GPTNeoXModel

    folder = tmp_path / "neox"
    AutoTokenizer.from_pretrained(tiny_gpt2).save_pretrained(folder)
    GPTNeoXModel(
        GPTNeoXConfig(
            vocab_size=50257,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
        )
    ).save_pretrained(folder)
    with pytest.raises(PipelineError, match=re.escape("init: sinusoidal replaces a position table; family llama")):
        build(folder, jsonl_data, tmp_path, "llama", layers={"positions": {"policy": "replace", "init": "sinusoidal"}})
    exp = build(folder, jsonl_data, tmp_path, "llama")
    assert table_of(exp.family.input_layers(exp.model).token_embeddings).weight.shape[0] == 50257
    with pytest.raises(PipelineError, match="no absolute position table"):
        replace_positions(exp.family, exp.model, SinusoidalPositions(init="sinusoidal"), sinusoidal_positions)
