"""What a sentence-embedding run cannot train or score is refused in one line before anything is created: one pair
per forward pass (in-batch negatives have nothing to contrast), scored pairs that all hold one score (CoSENT learns
from their order), a split that lacks the pair columns."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import recipe_dict, toy_pairs, write_jsonl, write_recipe

from pipeline.cli import main
from pipeline.tasks.sentence_embedding.pairs import ranks_from_scores


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


def test_an_anchor_with_two_positives_ranks_each_without_the_other_counted_against_it():
    scores = np.array([[0.9, 0.8, 0.1], [0.9, 0.8, 0.1], [0.2, 0.3, 0.7]])  # queries × documents
    relevant, anchors = [0, 1, 2], ["a", "a", "b"]  # queries 0 and 1 share an anchor: documents 0 and 1 answer it
    assert ranks_from_scores(scores, relevant) == [1, 2, 1]  # unfiltered: query 1 can never rank first
    assert ranks_from_scores(scores, relevant, anchors) == [1, 1, 1]
    assert ranks_from_scores(np.array([[0.5, 0.9, 0.1]]), [0], ["c"]) == [2]  # another anchor's document still counts


def test_an_empty_text_on_a_decoder_is_refused_before_training(tmp_path, tiny_gpt2, capsys):
    validation = toy_pairs(8, 1)
    validation[3]["anchor"] = ""
    raw = pairs_recipe(tmp_path, tiny_gpt2, toy_pairs(32, 0), validation, pooling="last")
    raw["model"]["family"] = "gpt2"
    line = refused(tmp_path, raw, capsys)
    assert "split 'validation': 1 anchor text(s) become no token (first: row 3)" in line


def test_a_split_whose_queries_search_one_document_is_refused(tmp_path, tiny_bert, capsys):
    one_document = [row | {"positive": "the same answer"} for row in toy_pairs(8, 1)]
    raw = pairs_recipe(tmp_path, tiny_bert, toy_pairs(32, 0), one_document, documents="split")
    line = refused(tmp_path, raw, capsys)
    assert "split 'validation': its queries would search 1 document(s)" in line


def test_compare_refuses_runs_that_searched_different_collections(tmp_path, tiny_bert, capsys):
    runs = []
    for documents in ("collection", "split"):
        raw = pairs_recipe(tmp_path, tiny_bert, toy_pairs(32, 0), toy_pairs(8, 1), documents=documents)
        raw["output_dir"] = str(tmp_path / documents)
        raw["train"] |= {"max_steps": 1}
        assert main(["train", str(write_recipe(tmp_path / "r.yaml", raw))]) == 0
        runs.append(str(tmp_path / documents))
    capsys.readouterr()
    assert main(["compare", *runs, "--output", str(tmp_path / "cmp"), "--no-baseline"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "were not scored alike on validation" in errors[0]
    assert not (tmp_path / "cmp").exists()
