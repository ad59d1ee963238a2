"""The parts of `pipeline diagnose` on hand-checkable cases: word similarity and analogies on a toy table, drift of
rows, scores by input-length quartile."""

from __future__ import annotations

import pytest
import torch
from transformers import BertTokenizerFast

from pipeline.diagnostics.drift import bucket_of, row_drift, summarise, token_counts
from pipeline.diagnostics.lengths import by_length
from pipeline.diagnostics.meaning import (
    WordIndex,
    analogy_accuracy,
    neighbours,
    read_analogies,
    read_similarity,
    word_similarity,
)
from pipeline.errors import PipelineError
from pipeline.tasks.sequence_classification.records import ClassificationRecord

WORDS = ["cat", "dog", "car", "king", "man", "woman", "queen", "##s"]


@pytest.fixture
def tokenizer(tmp_path) -> BertTokenizerFast:
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    return BertTokenizerFast(vocab=str(tmp_path / "vocab.txt"))


def toy_table() -> torch.Tensor:
    """Rows by id: specials get large vectors (they must never be candidates), then the words."""
    rows = {
        "cat": [1, 0, 0],
        "dog": [3, 1, 0],
        "car": [0, 1, 0],
        "king": [1, 1, 0],
        "man": [1, 0, 0.1],
        "woman": [0, 0, 1],
        "queen": [0, 1, 1],
        "##s": [0, 1, 1.01],
    }
    return torch.tensor([[9.0, 9, 9]] * 5 + [rows[word] for word in WORDS], dtype=torch.float32)


def test_the_index_holds_whole_words_only(tokenizer):
    index = WordIndex(tokenizer)
    assert set(index.ids) == set(WORDS) - {"##s"}  # no continuation piece, no special token
    assert index.lookup("Cat") == index.lookup("cat") == 5  # the tokenizer's own lower-casing applies
    assert index.lookup("cats") is None


def test_spearman_on_a_hand_checked_toy_set(tokenizer, tmp_path):
    path = tmp_path / "sim.tsv"
    path.write_text(
        "# a comment\nWord 1\tWord 2\tHuman (mean)\ncat\tdog\t8\ncat\tcar\t2\ndog\tcar\t1\ncat\tunicorn\t3\n"
    )
    pairs = read_similarity(path)
    assert pairs[0] == ("cat", "dog", 8.0) and len(pairs) == 4
    result = word_similarity(toy_table(), WordIndex(tokenizer), pairs)
    # cosines: cat·dog 0.949, cat·car 0, dog·car 0.316 → ranks 3, 1, 2; human ranks 3, 2, 1: rho = 1 − 6·2 / (3·8) = 0.5
    assert result["covered"] == 3 and result["coverage"] == 0.75
    assert result["spearman"] == pytest.approx(0.5)


def test_analogies_exclude_the_question_words(tokenizer, tmp_path):
    path = tmp_path / "questions.txt"
    path.write_text(": royal\nman king woman queen\nman king woman unicorn\n")
    questions = read_analogies(path)
    # king − man + woman = (0, 1, 0.9): nearest is queen (the continuation piece ##s, closer still, is no candidate)
    result = analogy_accuracy(toy_table(), WordIndex(tokenizer), questions)
    assert result == {"questions": 2, "covered": 1, "coverage": 0.5, "accuracy": 1.0}
    # queen − woman + man ≈ (0.99, 0.71, −0.19): king (cosine 0.89·) beats dog (0.86·) and cat (0.74·); man is excluded
    path.write_text(": royal\nwoman queen man king\n")
    assert analogy_accuracy(toy_table(), WordIndex(tokenizer), read_analogies(path))["accuracy"] == 1.0


def test_nearest_neighbours_and_unknown_words(tokenizer):
    found = neighbours(toy_table(), WordIndex(tokenizer), ["cat", "unicorn"], how_many=2)
    assert found == {"cat": ["man", "dog"], "unicorn": None}


def test_bad_files_are_one_line_errors(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("cat\tdog\t8\ncat dog\n")
    with pytest.raises(PipelineError, match="line 2"):
        read_similarity(path)
    path.write_text("a b c\n")
    with pytest.raises(PipelineError, match="four words"):
        read_analogies(path)


@pytest.mark.parametrize("score", ["nan", "inf", "-inf"])
def test_a_score_that_is_not_a_number_is_refused(tmp_path, score):
    path = tmp_path / "sim.tsv"
    path.write_text(f"cat\tdog\t8\ncat\tcar\t{score}\n")
    with pytest.raises(PipelineError, match="line 2: the score is"):
        read_similarity(path)


def test_rows_that_are_not_finite_leave_their_pairs_out_and_say_so(tokenizer):
    table = toy_table()
    table[5 + WORDS.index("car")] = float("nan")  # a diverged run
    pairs = [
        ("cat", "dog", 8.0),
        ("cat", "king", 5.0),
        ("dog", "king", 4.0),
        ("king", "queen", 7.0),
        ("cat", "car", 2.0),
    ]
    result = word_similarity(table, WordIndex(tokenizer), pairs)
    assert result["covered"] == 5 and result["non_finite_rows"] == 1
    assert result["spearman"] is not None and result["spearman"] == result["spearman"]  # a number, not NaN


def test_a_tokenizer_without_whole_words_scores_nothing(tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "##a", "##b"]) + "\n")
    index = WordIndex(BertTokenizerFast(vocab=str(tmp_path / "vocab.txt")))
    table = torch.ones(7, 3)
    assert index.ids == {}
    assert word_similarity(table, index, [("cat", "dog", 1.0)])["spearman"] is None
    assert analogy_accuracy(table, index, [("a", "b", "c", "d")])["accuracy"] is None
    assert neighbours(table, index, ["cat"]) == {"cat": None}


def test_row_drift_and_its_summary():
    start = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0], [3.0, 4.0]])
    end = torch.tensor([[1.0, 0.0], [-2.0, 0.0], [0.0, 0.0], [0.0, 5.0]])
    drift = row_drift(start, end)
    assert drift["cosine_distance"].tolist() == pytest.approx([0.0, 2.0, 0.0, 0.2])
    assert drift["unchanged"].tolist() == [True, False, True, False]
    rows = [
        {
            "bucket": bucket_of(count),
            "cosine_distance": float(d),
            "norm_start": float(a),
            "norm_end": float(b),
            "unchanged": bool(u),
        }
        for count, d, a, b, u in zip(
            [0, 5, 5, 2000],
            drift["cosine_distance"],
            drift["norm_start"],
            drift["norm_end"],
            drift["unchanged"],
            strict=True,
        )
    ]
    summary = {row["bucket"]: row for row in summarise(rows)}
    assert summary["1-9"]["tokens"] == 2 and summary["1-9"]["mean_cosine_distance"] == pytest.approx(1.0)
    assert summary["1-9"]["share_unchanged"] == 0.5 and summary["all"]["tokens"] == 4
    assert summary["1000+"]["mean_relative_norm_change"] == pytest.approx(0.0)


def test_token_counts(tokenizer):
    counts = token_counts(tokenizer, ["cat dog cat", "dogs"], len(tokenizer))
    assert counts[tokenizer.convert_tokens_to_ids("cat")] == 2 and counts[tokenizer.convert_tokens_to_ids("##s")] == 1
    assert counts[tokenizer.cls_token_id] == 2


def test_scores_by_length_quartile():
    records = [ClassificationRecord(i, "a", "a" if ok else "b", []) for i, ok in enumerate((1, 1, 0, 1, 0, 0, 1, 1))]
    lengths = [1, 2, 3, 4, 5, 6, 7, 8]  # quartile edges 2.75, 4.5, 6.25
    result = by_length(records, lengths, max_length=6)
    assert [q["examples"] for q in result["quartiles"]] == [2, 2, 2, 2]
    assert [q["accuracy"] for q in result["quartiles"]] == [1.0, 0.5, 0.0, 1.0]
    assert (
        result["truncated"] == 2
        and result["quartiles"][3]["truncated"] == 2
        and result["quartiles"][3]["tokens_from"] == 7
    )
