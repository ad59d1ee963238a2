"""What a sentence-embedding run cannot train or score is refused in one line before anything is created: one pair
per forward pass (in-batch negatives have nothing to contrast), scored pairs that all hold one score (CoSENT learns
from their order), a split that lacks the pair columns."""

from __future__ import annotations

import pytest
from helpers import recipe_dict, toy_pairs, write_jsonl, write_recipe

from pipeline.cli import main


def refused(tmp_path, raw: dict, capsys) -> str:
    recipe = write_recipe(tmp_path / "r.yaml", raw)
    assert main(["train", str(recipe)]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()
    return errors[0]


def pairs_recipe(tmp_path, tiny_bert, train_rows: list[dict], validation_rows: list[dict], **task) -> dict:
    files = {"train": write_jsonl(tmp_path / "train.jsonl", train_rows),
             "validation": write_jsonl(tmp_path / "validation.jsonl", validation_rows)}  # fmt: skip
    raw = recipe_dict(tiny_bert, files, tmp_path / "run", task={"type": "sentence-embedding", **task})
    raw["eval"] = {"splits": ["validation"], "batch_size": 8}
    return raw


@pytest.mark.parametrize("train", [{"batch_size": 1}, {"batch_size": 8, "micro_batch_size": 1}])
def test_one_pair_per_forward_pass_is_refused_for_in_batch_negatives(tmp_path, tiny_bert, capsys, train):
    raw = pairs_recipe(tmp_path, tiny_bert, toy_pairs(32, 0), toy_pairs(8, 1))
    raw["train"] |= train
    line = refused(tmp_path, raw, capsys)
    field = "micro_batch_size" if "micro_batch_size" in train else "batch_size"
    assert f"train.{field}: 1 pair per forward pass leaves in-batch negatives nothing to contrast" in line


def test_scored_pairs_train_with_one_pair_per_pass(tmp_path, tiny_bert):
    raw = pairs_recipe(tmp_path, tiny_bert, toy_pairs(32, 0, scored=True), toy_pairs(8, 1, scored=True),
                       score_column="score")  # fmt: skip
    raw["train"] |= {"batch_size": 1, "max_steps": 2}
    assert main(["train", str(write_recipe(tmp_path / "r.yaml", raw))]) == 0  # CoSENT compares pairs across steps


def test_constant_scores_are_refused_naming_the_column(tmp_path, tiny_bert, capsys):
    constant = [row | {"score": 3.0} for row in toy_pairs(32, 0, scored=True)]
    raw = pairs_recipe(tmp_path, tiny_bert, constant, toy_pairs(8, 1, scored=True), score_column="score")
    line = refused(tmp_path, raw, capsys)
    assert "task.score_column: column 'score' holds the same score (3) in every training pair" in line


@pytest.mark.parametrize("missing", ["anchor", "positive"])
def test_a_split_without_a_pair_column_is_one_line(tmp_path, tiny_bert, capsys, missing):
    broken = [{key: value for key, value in row.items() if key != missing} for row in toy_pairs(8, 1)]
    line = refused(tmp_path, pairs_recipe(tmp_path, tiny_bert, toy_pairs(32, 0), broken), capsys)
    assert f"task.{missing}_column: column '{missing}' not in split 'validation'" in line
