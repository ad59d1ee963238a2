"""`pipeline diagnose` on tiny runs: the files it writes, drift exactly zero for a frozen table, movement for a
fine-tuned one, scores by length that cover the split, and bad input as one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import lm_recipe, make_examples, recipe_dict, templated_sentences, train_fresh, write_jsonl

from pipeline.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def word_files(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("words")
    (folder / "sim.tsv").write_text("good\tgreat\t9\ngood\tbad\t2\nmovie\tplot\t6\nhappy\tsad\t1\ngood\tunicorn\t5\n")
    (folder / "questions.txt").write_text(
        ": sentiment\ngood bad happy sad\ngreat awful nice ugly\ngood bad happy unicorn\n"
    )
    return folder / "sim.tsv", folder / "questions.txt"


def run_with(tmp_path: Path, tiny_bert: Path, token_embeddings: str) -> Path:
    files = {
        split: write_jsonl(tmp_path / f"{split}.jsonl", make_examples(count, seed))
        for split, count, seed in (("train", 48, 0), ("test", 20, 1))
    }
    raw = recipe_dict(
        tiny_bert,
        files,
        tmp_path / f"run-{token_embeddings}",
        layers={"token_embeddings": token_embeddings},
        train={"max_steps": 6, "lr": 5e-3},
        eval={"metrics": ["accuracy"], "splits": ["test"], "batch_size": 8},
    )
    return train_fresh(raw)


def test_a_frozen_table_does_not_drift_and_every_file_is_written(tmp_path, tiny_bert, word_files, capsys):
    run = run_with(tmp_path, tiny_bert, "freeze")
    similarity, analogies = word_files
    capsys.readouterr()
    assert (
        main(
            [
                "diagnose",
                str(run),
                "--similarity",
                str(similarity),
                "--analogies",
                str(analogies),
                "--words",
                "good,unicorn",
            ]
        )
        == 0
    )
    folder = run / "diagnostics"
    assert capsys.readouterr().out.strip() == f"diagnostics: {folder / 'diagnostics.md'}"
    assert not (run / ".diagnostics.partial").exists()
    for picture in ("token-drift.png", "position-similarity.png"):
        assert (folder / picture).read_bytes()[:8] == PNG
    result = json.loads((folder / "diagnostics.json").read_text())
    overall = next(row for row in result["drift"] if row["bucket"] == "all")
    assert overall["tokens"] == 23 and overall["share_unchanged"] == 1.0 and overall["mean_cosine_distance"] == 0.0
    rows = (folder / "token-drift.csv").read_text().splitlines()
    assert len(rows) == 1 + 23 and rows[0].startswith("id,token,train_count,bucket,cosine_distance")
    assert {row.split(",")[3] for row in rows[1:]} >= {"unseen", "10-99"}  # [MASK] never occurs; "good" a dozen times
    start, end = result["meaning"]["start"], result["meaning"]["end"]
    assert start == end  # the same table: the same scores
    assert (
        end["similarity"]["covered"] == 4
        and end["analogies"]["covered"] == 2
        and -1 <= end["similarity"]["spearman"] <= 1
    )
    assert end["neighbours"]["unicorn"] is None and len(end["neighbours"]["good"]) == 8
    lengths = result["by_length"]
    assert (
        lengths["metric"] == "accuracy"
        and sum(q["examples"] for q in lengths["quartiles"]) == 20 == lengths["examples"]
    )
    markdown = (folder / "diagnostics.md").read_text()
    assert (
        "![drift](token-drift.png)" in markdown
        and "![positions](position-similarity.png)" in markdown
        and "| 1000+ |" not in markdown
    )


def test_a_fine_tuned_table_moves_where_the_data_is(tmp_path, tiny_bert, word_files):
    run = run_with(tmp_path, tiny_bert, "finetune")
    similarity, analogies = word_files
    assert main(["diagnose", str(run), "--similarity", str(similarity), "--analogies", str(analogies)]) == 0
    result = json.loads((run / "diagnostics" / "diagnostics.json").read_text())
    by_bucket = {row["bucket"]: row for row in result["drift"]}
    assert by_bucket["10-99"]["share_unchanged"] == 0.0 and by_bucket["10-99"]["mean_cosine_distance"] > 0
    # Against its own final model, a run has not drifted at all.
    assert (
        main(
            [
                "diagnose",
                str(run),
                "--against",
                str(run),
                "--similarity",
                str(similarity),
                "--analogies",
                str(analogies),
            ]
        )
        == 0
    )
    result = json.loads((run / "diagnostics" / "diagnostics.json").read_text())
    assert next(row for row in result["drift"] if row["bucket"] == "all")["share_unchanged"] == 1.0


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["diagnose", "{empty}"], "neither a finished run folder"),
        (["diagnose", "{run}", "--against", "{empty}"], "holds no saved model"),
        (["diagnose", "{run}", "--similarity", "{empty}/missing.tsv"], "cannot read"),
    ],
)
def test_bad_input_is_one_line(tmp_path, tiny_bert, capsys, arguments, message):
    empty = tmp_path / "empty"
    empty.mkdir()
    run = run_with(tmp_path, tiny_bert, "freeze") if "{run}" in arguments else empty
    capsys.readouterr()
    assert main([argument.format(empty=empty, run=run) for argument in arguments]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (run / "diagnostics").exists()


@pytest.mark.slow
def test_a_gpt2_language_model_continued_from_a_checkpoint(tmp_path, tiny_gpt2, word_files):
    """Byte-level words (`Ġcat`), a causal LM (blocks, not examples: no scores by length), GPT-2's own positions."""
    files = {}
    for split, seed in (("train", 0), ("validation", 1)):
        (tmp_path / f"{split}.txt").write_text("".join(line + "\n" for line in templated_sentences(40, seed)))
        files[split] = str(tmp_path / f"{split}.txt")
    raw = lm_recipe(tmp_path, files, "gpt2", train={"max_steps": 4})
    raw["model"] = {"family": "gpt2", "name_or_path": str(tiny_gpt2), "max_length": 16}
    run = train_fresh(raw)
    similarity, analogies = word_files
    assert (
        main(["diagnose", str(run), "--similarity", str(similarity), "--analogies", str(analogies), "--words", "cat"])
        == 0
    )
    result = json.loads((run / "diagnostics" / "diagnostics.json").read_text())
    assert result["by_length"] is None and result["positions"] == {"start_rows": 64, "end_rows": 64}
    assert next(row for row in result["drift"] if row["bucket"] == "all")["tokens"] == 50257
    assert (
        result["meaning"]["end"]["single_token_words"] > 20000
        and len(result["meaning"]["end"]["neighbours"]["cat"]) == 8
    )
