"""Token classification (POS-style tagging): word-to-token label alignment, unseen tags, every family trains."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from conftest import recipe_dict, train_fresh
from pipeline.batching import IGNORED_LABEL
from pipeline.bilstm import character_ids
from pipeline.errors import PipelineError
from pipeline.recipe_io import parse_recipe
from pipeline.train import setup

WORDS = {"DET": ["the", "a"], "NOUN": ["cat", "dog", "bird", "horse"], "VERB": ["sat", "slept", "waited"], "ADP": ["on", "near"]}
SHAPE = ["DET", "NOUN", "VERB", "ADP", "DET", "NOUN"]
BILSTM = {"hidden_size": 16, "lstm_size": 32, "num_layers": 1, "char_cnn": True, "max_characters": 10, "char_filters": 4, "char_max_width": 3}


def tagged_sentences(count: int, seed: int) -> list[dict[str, list[str]]]:
    rng = random.Random(seed)
    return [{"tokens": [rng.choice(WORDS[tag]) for tag in SHAPE], "tags": list(SHAPE)} for _ in range(count)]


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


@pytest.fixture
def pos_files(tmp_path) -> dict[str, str]:
    validation = tagged_sentences(12, 1)
    validation[0] = {"tokens": ["the", "zyxwv", "sat", "on", "B.", "dog"], "tags": ["DET", "NOUN", "VERB", "ADP", "X", "NOUN"]}
    return {"train": write_jsonl(tmp_path / "train.jsonl", tagged_sentences(64, 0)), "validation": write_jsonl(tmp_path / "validation.jsonl", validation)}


def tagging_recipe(tmp_path: Path, files: dict[str, str], model_dir: Path | None = None, family: str = "bilstm", **sections) -> dict:
    recipe = recipe_dict(model_dir, files, tmp_path / f"{family}-pos", family=family, **sections)
    recipe["task"] = {"type": "token-classification"}
    if model_dir is None:
        recipe["model"] = {"family": "bilstm", "config": BILSTM, "tokenizer": {"build": "word", "vocab_size": 100, "min_frequency": 1}, "max_length": 16}
    recipe["eval"] = {"splits": ["validation"], "metrics": ["accuracy", "f1_macro"], "batch_size": 8}
    recipe["train"] = {**recipe["train"], "max_steps": 30, "lr": 1e-2}
    return recipe


def test_first_token_of_each_word_carries_its_tag(tmp_path, pos_files):
    exp = setup(parse_recipe(tagging_recipe(tmp_path, pos_files)))
    row = exp.splits["validation"][0]
    tokens = exp.tokenizer.convert_ids_to_tokens(row["input_ids"])
    # "B." splits into "B" and "." under the word-level pre-tokenizer: only "B" is scored (and "X" is unseen).
    assert tokens == ["the", "<unk>", "sat", "on", "<unk>", "<unk>", "dog"]
    tag = exp.task.head_kwargs()["label2id"]
    unseen = len(exp.task.labels)
    assert row["labels"] == [tag["DET"], tag["NOUN"], tag["VERB"], tag["ADP"], unseen, IGNORED_LABEL, tag["NOUN"]]
    assert row["char_ids"][1] == character_ids("zyxwv", 10)  # the unknown word keeps its spelling
    assert exp.input_report["data"]["validation"]["words_with_unseen_tags"] == 1
    assert exp.input_report["data"]["validation"]["scored_words"] == 12 * 6


@pytest.mark.parametrize("family", ["bilstm", "bert", "gpt2"])
def test_tagger_trains_and_scores_every_word(tmp_path, pos_files, family, request):
    model_dir = None if family == "bilstm" else request.getfixturevalue(f"tiny_{family}")
    run_dir = train_fresh(tagging_recipe(tmp_path, pos_files, model_dir, family))
    scores = json.loads((run_dir / "metrics.json").read_text())["validation"]
    records = [json.loads(line) for line in (run_dir / "predictions-validation.jsonl").read_text().splitlines()]
    assert len(records) == 12 and all(len(r["tags"]) == len(r["predictions"]) == 6 for r in records)
    assert records[0]["tags"][4] == "<unseen in training>"  # kept and scored as an error
    assert scores["accuracy"] > 0.5  # four tags in a fixed order: learnt within 30 steps
    assert scores["accuracy"] <= 71 / 72  # the unseen tag can never be right


def test_words_and_tags_of_different_lengths_are_refused(tmp_path, pos_files):
    rows = tagged_sentences(4, 2)
    rows[1]["tags"] = rows[1]["tags"][:-1]
    files = {**pos_files, "validation": write_jsonl(tmp_path / "bad.jsonl", rows)}
    with pytest.raises(PipelineError, match="6 words but 5 tags"):
        setup(parse_recipe(tagging_recipe(tmp_path, files)))
