"""Token classification (POS-style tagging): word-to-token label alignment, unseen tags, every family trains."""

from __future__ import annotations

import json

import pytest
from helpers import tagged_sentences, tagging_recipe, train_fresh, write_jsonl

from pipeline.data.collate import IGNORED_LABEL
from pipeline.errors import PipelineError
from pipeline.experiment.build import build_experiment
from pipeline.experiment.recipes import validate_recipe
from pipeline.families.bilstm.characters import character_ids


@pytest.fixture
def pos_files(tmp_path) -> dict[str, str]:
    validation = tagged_sentences(12, 1)
    validation[0] = {
        "tokens": ["the", "zyxwv", "sat", "on", "B.", "dog"],
        "tags": ["DET", "NOUN", "VERB", "ADP", "X", "NOUN"],
    }
    return {
        "train": write_jsonl(tmp_path / "train.jsonl", tagged_sentences(64, 0)),
        "validation": write_jsonl(tmp_path / "validation.jsonl", validation),
    }


def test_first_token_of_each_word_carries_its_tag(tmp_path, pos_files):
    exp = build_experiment(validate_recipe(tagging_recipe(tmp_path, pos_files)))
    row = exp.data.splits["validation"][0]
    tokens = exp.tokenizer.convert_ids_to_tokens(row["input_ids"])
    # "B." splits into "B" and "." under the word-level pre-tokenizer: only "B" is scored (and "X" is unseen).
    assert tokens == ["the", "<unk>", "sat", "on", "<unk>", "<unk>", "dog"]
    tag = exp.task.head_kwargs()["label2id"]
    unseen = len(exp.task.labels)
    assert row["labels"] == [tag["DET"], tag["NOUN"], tag["VERB"], tag["ADP"], unseen, IGNORED_LABEL, tag["NOUN"]]
    assert row["char_ids"][1] == character_ids("zyxwv", 10)  # the unknown word keeps its spelling
    assert exp.input_report.data["validation"]["words_with_unseen_tags"] == 1
    assert exp.input_report.data["validation"]["scored_words"] == 12 * 6


@pytest.mark.slow
@pytest.mark.parametrize("family", ["bilstm", "bert", "gpt2"])
def test_tagger_trains_and_scores_every_word(tmp_path, pos_files, family, request):
    model_dir = None if family == "bilstm" else request.getfixturevalue(f"tiny_{family}")
    run_dir = train_fresh(tagging_recipe(tmp_path, pos_files, model_dir, family))
    scores = json.loads((run_dir / "metrics.json").read_text())["validation"]
    records = [json.loads(line) for line in (run_dir / "predictions-validation.jsonl").read_text().splitlines()]
    assert len(records) == 12 and all(len(r["tags"]) == len(r["predictions"]) == 6 for r in records)
    assert records[0]["tags"][4] == "X"  # a tag the train split never had: kept, named, and scored as an error
    assert scores["accuracy"] > 0.5  # four tags in a fixed order: learnt within 30 steps
    assert scores["accuracy"] <= 71 / 72  # the unseen tag can never be right


def test_words_and_tags_of_different_lengths_are_refused(tmp_path, pos_files):
    rows = tagged_sentences(4, 2)
    rows[1]["tags"] = rows[1]["tags"][:-1]
    files = {**pos_files, "validation": write_jsonl(tmp_path / "bad.jsonl", rows)}
    with pytest.raises(PipelineError, match="6 words but 5 tags"):
        build_experiment(validate_recipe(tagging_recipe(tmp_path, files)))


def test_a_sentence_of_over_ten_thousand_words_is_truncated_and_counted(tmp_path, pos_files):
    long_sentence = tagged_sentences(2000, 3)  # 2,000 × 6 words: 12,000 words in one sentence
    lines = [f"{word}\t{tag}" for row in long_sentence for word, tag in zip(row["tokens"], row["tags"], strict=True)]
    conll = tmp_path / "long.conll"
    conll.write_text("\n".join(lines) + "\n\n" + "the\tDET\ndog\tNOUN\n")
    exp = build_experiment(validate_recipe(tagging_recipe(tmp_path, {**pos_files, "validation": str(conll)})))
    report = exp.input_report.data["validation"]
    assert report["examples"] == 2 and report["truncated"] == 1
    first = exp.data.splits["validation"][0]
    assert len(first["input_ids"]) == 16  # model.max_length: the words past it are not scored
