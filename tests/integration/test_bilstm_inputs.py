"""The bi-LSTM with tokenizers it did not build (WordPiece, byte-level BPE) and under every token-embedding policy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset
from helpers import FILLER, GPT2_TOKENIZER, NEGATIVE, POSITIVE, recipe_dict, train_fresh, write_glove
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from pipeline.experiment.build import build_experiment
from pipeline.experiment.recipes import validate_recipe
from pipeline.families.bilstm.characters import character_ids

BILSTM = {
    "hidden_size": 8,
    "lstm_size": 16,
    "num_layers": 1,
    "char_cnn": True,
    "max_characters": 12,
    "char_filters": 4,
    "char_max_width": 3,
}


def bilstm_recipe(tmp_path: Path, data: dict[str, str], tokenizer: str | dict, **sections) -> dict:
    model = {"family": "bilstm", "config": BILSTM, "tokenizer": tokenizer, "max_length": 32}
    recipe = recipe_dict(None, data, tmp_path / "run", family="bilstm", **sections)
    recipe["model"] = {**model, **sections.get("model", {})}
    return recipe


@pytest.mark.slow
@pytest.mark.parametrize("source", ["wordpiece", "bpe"])
def test_any_fast_tokenizer_feeds_the_character_cnn_the_words_spelling(tmp_path, jsonl_data, tiny_bert, source):
    """The char CNN reads each token's span of the text: WordPiece `[UNK]` keeps the unknown word's spelling,
    byte-level BPE `Ġword` is spelled without its space marker. Training and the saved model work as with BERT."""
    tokenizer = str(tiny_bert) if source == "wordpiece" else GPT2_TOKENIZER
    recipe = bilstm_recipe(tmp_path, jsonl_data, tokenizer)
    exp = build_experiment(validate_recipe(recipe))
    assert exp.model.config.vocab_size == len(exp.tokenizer)
    text = "good zyxwvut movie"
    probe = Dataset.from_dict({"text": [text], "label": ["pos"]})
    encoded = exp.task.encode(probe, exp.tokenizer, 32, "probe", exp.family.token_features(exp.model))[0][0]
    tokens = exp.tokenizer.convert_ids_to_tokens(encoded["input_ids"])
    if source == "wordpiece":
        assert tokens == ["[CLS]", "good", "[UNK]", "movie", "[SEP]"]
        spelled = ["[CLS]", "good", "zyxwvut", "movie", "[SEP]"]
    else:
        assert tokens[0] == "good" and tokens[-1] == "Ġmovie"
        words = exp.tokenizer(text, return_offsets_mapping=True)["offset_mapping"]
        spelled = [text[start:end] for start, end in words]
        assert spelled[-1] == " movie"  # GPT-2 offsets take in the space before a word: it is dropped
        spelled = [word.strip() for word in spelled]
    assert encoded["char_ids"] == [character_ids(word, BILSTM["max_characters"]) for word in spelled]

    run_dir = train_fresh(recipe)
    reloaded = AutoModelForSequenceClassification.from_pretrained(run_dir / "model").eval()
    saved_tokenizer = AutoTokenizer.from_pretrained(run_dir / "model")
    texts = [json.loads(line)["text"] for line in Path(jsonl_data["validation"]).read_text().splitlines()]
    with torch.no_grad():
        probabilities = reloaded(**saved_tokenizer(texts, padding=True, return_tensors="pt")).logits.softmax(-1)
    recorded = [
        json.loads(line)["probabilities"]
        for line in (run_dir / "predictions-validation.jsonl").read_text().splitlines()
    ]
    # Without char ids the model spells each vocabulary entry: equal wherever no word is unknown to the vocabulary.
    assert torch.allclose(probabilities, torch.tensor(recorded), atol=1e-4)


@pytest.mark.parametrize("width", ["project", "pad"])
def test_static_vectors_replace_the_bilstm_table(tmp_path, jsonl_data, width):
    vectors = write_glove(tmp_path / "glove.txt", FILLER + POSITIVE + NEGATIVE, dim=4)
    tokenizer = {"build": "word", "vocab_size": 100, "min_frequency": 1}
    layers = {
        "token_embeddings": {
            "policy": "replace",
            "init": "vectors",
            "vectors": str(tmp_path / "glove.txt"),
            "width": width,
            "then": "freeze",
        }
    }
    recipe = bilstm_recipe(tmp_path, jsonl_data, tokenizer, layers=layers)
    exp = build_experiment(validate_recipe(recipe))
    table = exp.family.input_layers(exp.model).token_embeddings
    lookup = table.lookup if width == "project" else table
    row = lookup.weight[exp.tokenizer.convert_tokens_to_ids("movie")].detach().numpy()
    np.testing.assert_allclose(row[:4], vectors["movie"], rtol=0, atol=1e-6)
    if width == "pad":
        assert lookup.weight.shape[1] == BILSTM["hidden_size"] and not row[4:].any()
    assert exp.input_report.coverage["by_route"]["exact"] == len(vectors)
    assert not lookup.weight.requires_grad

    run_dir = train_fresh(recipe)
    saved = load_file(run_dir / "model" / "model.safetensors")["bilstm.embeddings.word_embeddings.weight"]
    assert saved.shape == (len(exp.tokenizer), BILSTM["hidden_size"])  # a plain table, projection folded in
    if width == "pad":
        assert torch.equal(saved, lookup.weight.detach())  # frozen: bit-identical after training
    assert AutoModelForSequenceClassification.from_pretrained(run_dir / "model").config.model_type == "embedlab-bilstm"


def test_frozen_and_random_tables_on_the_bilstm(tmp_path, jsonl_data):
    tokenizer = {"build": "word", "vocab_size": 100, "min_frequency": 1}
    frozen = build_experiment(
        validate_recipe(bilstm_recipe(tmp_path, jsonl_data, tokenizer, layers={"token_embeddings": "freeze"}))
    )
    table = frozen.family.input_layers(frozen.model).token_embeddings.weight
    assert not table.requires_grad
    assert all(p.requires_grad for name, p in frozen.model.named_parameters() if "word_embeddings" not in name)
    random = build_experiment(
        validate_recipe(
            bilstm_recipe(
                tmp_path,
                jsonl_data,
                tokenizer,
                layers={"token_embeddings": {"policy": "replace", "init": "random", "std": 0.3}},
            )
        )
    )
    new_table = random.family.input_layers(random.model).token_embeddings.weight
    assert new_table.std().item() == pytest.approx(0.3, rel=0.15)
    assert random.input_report.surgery.sources.token_embeddings.startswith("random normal")
