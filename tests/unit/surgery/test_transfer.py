"""Vocabulary transfer: a pretrained table moved to a new tokenizer, row by row as planned."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import GPT2_TOKENIZER, build, lm_recipe, recipe_dict, templated_sentences, train_fresh
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertTokenizerFast

from pipeline.paths import resolve_local_path
from pipeline.surgery.transfer import apply_plan, canonical, plan_transfer, route_counts
from pipeline.surgery.vectors import WordVectors
from pipeline.training.inspect import describe_input_layers
from pipeline.vocabulary.spelling import token_style

OLD = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "good", "movie", "##s", "bad", "##ly"]
NEW = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "goods", "badly", "##s", "zzz"]


def wordpiece(tmp_path, name: str, vocab: list[str]) -> BertTokenizerFast:
    (tmp_path / f"{name}.txt").write_text("\n".join(vocab) + "\n")
    return BertTokenizerFast(vocab=str(tmp_path / f"{name}.txt"))


def test_shared_rows_are_copied_and_the_others_composed_from_the_old_pieces(tmp_path):
    old, new = wordpiece(tmp_path, "old", OLD), wordpiece(tmp_path, "new", NEW)
    plans = plan_transfer(old, new)
    assert [plan.route for plan in plans] == ["special"] * 5 + ["copied", "composed", "composed", "copied", "random"]
    counts = {"special": 5, "copied": 2, "composed": 2, "weighted": 0, "focus": 0, "omp": 0, "random": 1}
    assert route_counts(plans) == counts
    table = torch.randn(len(OLD), 6, generator=torch.Generator().manual_seed(0))
    moved = apply_plan(table, plans, seed=0)
    row = {token: i for i, token in enumerate(OLD)}
    assert torch.equal(moved[NEW.index("good")], table[row["good"]])  # shared: bit-equal
    assert torch.equal(moved[NEW.index("##s")], table[row["##s"]])
    assert torch.equal(moved[NEW.index("[CLS]")], table[row["[CLS]"]])
    assert torch.allclose(moved[NEW.index("goods")], (table[row["good"]] + table[row["##s"]]) / 2)  # good + ##s
    assert torch.allclose(moved[NEW.index("badly")], (table[row["bad"]] + table[row["##ly"]]) / 2)
    assert not torch.isclose(moved[NEW.index("zzz")], table).all(dim=1).any()  # unknown to the old tokenizer: random


def test_words_and_pieces_match_across_tokenizer_kinds():
    gpt2 = AutoTokenizer.from_pretrained(resolve_local_path(GPT2_TOKENIZER))
    assert token_style(gpt2) == "byte_level"
    assert canonical("Ġthe", "byte_level", gpt2) == (True, "the") and canonical("ing", "byte_level", gpt2) == (
        False,
        "ing",
    )
    assert canonical("##ing", "wordpiece", gpt2) == (False, "ing") and canonical("the", "wordpiece", gpt2) == (
        True,
        "the",
    )


def test_byte_level_to_wordpiece_transfer_finds_shared_words(tmp_path):
    gpt2 = AutoTokenizer.from_pretrained(resolve_local_path(GPT2_TOKENIZER))
    new = wordpiece(tmp_path, "new", ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "##ing", "movies"])
    plans = plan_transfer(gpt2, new)
    vocab = gpt2.get_vocab()
    assert plans[5].sources == [vocab["Ġthe"]] and plans[5].route == "copied"  # a word start: Ġthe
    assert plans[6].sources == [vocab["ing"]] and plans[6].route == "copied"  # a continuation: ing
    assert plans[7].route in ("copied", "composed") and plans[2].sources == [vocab["<|endoftext|>"]]  # [CLS] ← EOS


def test_weighted_transfer_mixes_the_nearest_shared_tokens(tmp_path):
    old, new = wordpiece(tmp_path, "old", OLD), wordpiece(tmp_path, "new", NEW)
    vectors = WordVectors(
        {"good": 0, "goods": 1, "badly": 2, "s": 3}, np.array([[1, 0], [1, 0.1], [0, 1], [0.5, 0.5]], dtype=np.float32)
    )
    plans = plan_transfer(old, new, vectors)
    goods = plans[NEW.index("goods")]
    assert goods.route == "weighted" and sum(goods.weights) == pytest.approx(1.0)
    assert goods.sources[0] == OLD.index("good")  # its nearest shared neighbour in vector space weighs most
    assert goods.weights[0] == max(goods.weights)


def test_a_recipe_transfers_minilm_style_tables_and_reloads(tmp_path, tiny_bert, jsonl_data):
    layers = {"token_embeddings": {"policy": "replace", "init": "transfer"}}
    model = {"tokenizer": {"build": "wordpiece", "vocab_size": 100, "min_frequency": 1, "lowercase": True}}
    raw = recipe_dict(tiny_bert, jsonl_data, tmp_path / "run", layers=layers, model=model, train={"max_steps": 2})
    exp = build(raw)
    report = exp.input_report.vocabulary
    assert report["new_vocabulary"] == len(exp.tokenizer) and report["old_vocabulary"] == 23
    assert report["rows"]["copied"] >= 15 and report["rows"]["special"] == 5  # the toy words are in both vocabularies
    assert set(report["old_tokenizer"]) == {"pieces_per_word", "tokens_per_text", "texts"}
    old = load_file(tiny_bert / "model.safetensors")["embeddings.word_embeddings.weight"]
    new = exp.family.input_layers(exp.model).token_embeddings.weight
    old_vocab = AutoTokenizer.from_pretrained(tiny_bert).get_vocab()
    assert torch.equal(new[exp.tokenizer.convert_tokens_to_ids("movie")], old[old_vocab["movie"]])
    shown = describe_input_layers(exp)
    assert f"a new tokenizer of {len(exp.tokenizer):,} tokens (the pretrained one: 23)" in shown
    assert f"copied {report['rows']['copied']:,}" in shown and "pieces per word" in shown
    run_dir = train_fresh(raw)
    reloaded = AutoModelForSequenceClassification.from_pretrained(run_dir / "model")
    assert reloaded.get_input_embeddings().num_embeddings == len(AutoTokenizer.from_pretrained(run_dir / "model"))
    assert (
        json.loads((run_dir / "input_layers.json").read_text())["vocabulary"]["rows"]["copied"]
        == report["rows"]["copied"]
    )


@pytest.mark.parametrize(
    "family, checkpoint, table_key",
    [("gpt2", "tiny_gpt2", "wte.weight"), ("llama", "tiny_llama", "model.embed_tokens.weight")],
)
def test_a_tied_decoder_head_follows_the_transferred_table(tmp_path, request, family, checkpoint, table_key):
    tiny = request.getfixturevalue(checkpoint)
    files = {}
    for split in ("train", "validation"):
        (tmp_path / f"{split}.txt").write_text("\n".join(templated_sentences(40, 0)) + "\n")
        files[split] = str(tmp_path / f"{split}.txt")
    raw = lm_recipe(tmp_path, files, family, layers={"token_embeddings": {"policy": "replace", "init": "transfer"}})
    raw["model"] = {
        "family": family,
        "name_or_path": str(tiny),
        "tokenizer": {"build": "bpe", "vocab_size": 300, "min_frequency": 1},
        "max_length": 16,
    }
    exp = build(raw)
    table = exp.model.get_input_embeddings().weight
    assert (
        exp.model.get_output_embeddings().weight is table
        and table.shape[0] == len(exp.tokenizer) == exp.model.config.vocab_size
    )
    old = load_file(tiny / "model.safetensors")[table_key]
    old_vocab = AutoTokenizer.from_pretrained(tiny).get_vocab()
    for token in ("Ġcat", "Ġthe", "."):
        assert torch.equal(table[exp.tokenizer.convert_tokens_to_ids(token)].detach(), old[old_vocab[token]])
