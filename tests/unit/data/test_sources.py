"""Data adapters: folder-per-class trees, local files, seeded stratified holdout, column and label checks."""

from __future__ import annotations

import collections
import logging
import re

import pytest
from datasets import Dataset

from pipeline.data.sources import limit_examples, load_splits, read_class_folders, stratified_holdout
from pipeline.errors import PipelineError
from pipeline.families import family_named
from pipeline.recipe.schema import DataConfig, EvalConfig
from pipeline.tasks.sequence_classification.adapter import SequenceClassification
from pipeline.tasks.sequence_classification.section import SequenceClassificationTask

BERT = family_named("bert")
CLASSIFY = SequenceClassificationTask(type="sequence-classification")


def test_class_folders_read_labels_and_count_bad_bytes(tmp_path):
    for label, texts in {"sport": ["goal", "match"], "tech": ["chip"]}.items():
        (tmp_path / label).mkdir()
        for i, text in enumerate(texts):
            (tmp_path / label / f"{i}.txt").write_text(text)
    (tmp_path / "tech" / "bad.txt").write_bytes(b"caf\xe9")
    data, undecodable = read_class_folders(tmp_path)
    assert data["label"] == ["sport", "sport", "tech", "tech"]
    assert data["text"] == ["goal", "match", "chip", "caf\ufffd"]
    assert undecodable == 1


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(PipelineError, match=re.escape("data.folder")):
        read_class_folders(tmp_path)


def test_stratified_holdout_is_seeded_disjoint_and_balanced():
    data = Dataset.from_dict({"text": [str(i) for i in range(100)], "label": ["a"] * 60 + ["b"] * 40})
    first = stratified_holdout(data, "label", {"validation": 0.1, "test": 0.2}, seed=1, train_split="train")
    again = stratified_holdout(data, "label", {"validation": 0.1, "test": 0.2}, seed=1, train_split="train")
    other = stratified_holdout(data, "label", {"validation": 0.1, "test": 0.2}, seed=2, train_split="train")
    assert {name: len(split) for name, split in first.items()} == {"train": 70, "validation": 10, "test": 20}
    assert collections.Counter(first["test"]["label"]) == {"a": 12, "b": 8}
    assert first["test"]["text"] == again["test"]["text"]
    assert first["test"]["text"] != other["test"]["text"]
    seen = [set(split["text"]) for split in first.values()]
    assert set.union(*seen) == {str(i) for i in range(100)} and sum(map(len, seen)) == 100


def test_files_load_with_named_splits(jsonl_data):
    splits, dropped = load_splits(DataConfig(files=jsonl_data), CLASSIFY, ["validation"])
    assert sorted(splits) == ["train", "validation"] and dropped == {"train": 0, "validation": 0}
    assert len(splits["train"]) == 48


def test_single_file_gets_a_holdout(tmp_path):
    path = tmp_path / "all.csv"
    path.write_text("text,label\n" + "".join(f"t{i},{i % 3}\n" for i in range(30)))
    splits, _ = load_splits(DataConfig(files=str(path), holdout={"validation": 0.2}), CLASSIFY, ["validation"])
    assert len(splits["validation"]) == 6 and len(splits["train"]) == 24


def test_a_holdout_nothing_reads_is_not_carved_and_said(tmp_path, caplog):
    """Train and test files, `eval.splits: [test]`: the default validation holdout would take 20% of train for
    nothing; every training row trains instead."""
    files = {}
    for split, count in (("train", 30), ("test", 10)):
        files[split] = tmp_path / f"{split}.csv"
        files[split].write_text("text,label\n" + "".join(f"{split}{i},{i % 3}\n" for i in range(count)))
    config = DataConfig(files={name: str(path) for name, path in files.items()})
    with caplog.at_level(logging.INFO):
        splits, _ = load_splits(config, CLASSIFY, ["test"])
    assert sorted(splits) == ["test", "train"] and len(splits["train"]) == 30
    assert "no validation split carved: no eval split reads one, so every row of 'train' trains" in caplog.text
    splits, _ = load_splits(config, CLASSIFY, ["validation", "test"])
    assert len(splits["validation"]) == 6 and len(splits["train"]) == 24
    # named holdouts are always carved: a later run may read them unseen (the pretraining recipes keep the
    # classifier's test articles from the language model this way)
    named = DataConfig(files={"train": str(files["train"])}, holdout={"validation": 0.1, "test": 0.2})
    splits, _ = load_splits(named, CLASSIFY, ["validation"])
    assert sorted(splits) == ["test", "train", "validation"] and len(splits["train"]) == 21


def test_missing_columns_and_unseen_labels_are_named(jsonl_data):
    splits, _ = load_splits(DataConfig(files=jsonl_data), CLASSIFY, ["validation"])
    task = SequenceClassification(
        SequenceClassificationTask(type="sequence-classification", text_column="sentence"), BERT, EvalConfig()
    )
    with pytest.raises(PipelineError, match=re.escape("task.text_column: column 'sentence' not in split")):
        task.check_columns(splits)
    task = SequenceClassification(SequenceClassificationTask(type="sequence-classification"), BERT, EvalConfig())
    task.fit_labels(splits["train"])
    assert task.labels == ["neg", "pos"]
    surprise = Dataset.from_dict({"text": ["x"], "label": ["neutral"]})
    with pytest.raises(PipelineError, match=r"never seen in training: \['neutral'\]"):
        task.encode(surprise, None, 8, "validation")


def test_numeric_labels_sort_numerically():
    task = SequenceClassification(SequenceClassificationTask(type="sequence-classification"), BERT, EvalConfig())
    task.fit_labels(Dataset.from_dict({"text": ["a"] * 3, "label": [10, 2, 1]}))
    assert task.labels == ["1", "2", "10"]


def test_limit_examples_is_a_seeded_subset():
    data = Dataset.from_dict({"x": list(range(50))})
    assert limit_examples(data, 10, 0)["x"] == limit_examples(data, 10, 0)["x"]
    assert len(limit_examples(data, 10, 0)) == 10
    assert len(limit_examples(data, None, 0)) == 50


def test_conll_files_drop_a_byte_order_mark_and_keep_no_break_spaces_inside_words(tmp_path):
    from pipeline.data.files import read_conll

    path = tmp_path / "tagged.conll"
    path.write_bytes("\ufeffThe DET\n1\u00a0000 NUM\nwords NOUN\n\nIt PRON\n".encode())
    table = read_conll(path).to_pylist()
    assert table == [
        {"tokens": ["The", "1\u00a0000", "words"], "tags": ["DET", "NUM", "NOUN"]},
        {"tokens": ["It"], "tags": ["PRON"]},
    ]
