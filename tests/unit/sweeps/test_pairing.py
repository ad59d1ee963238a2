"""A comparison of runs pairs examples by identity, not by line: reordered prediction files give the same interval,
examples scored by only some runs are counted and left out, and language models with different tokenizers are
paired on the same documents."""

from __future__ import annotations

import json
import logging
import math
import random
from pathlib import Path

import pytest

from pipeline.sweeps.statistics import RunResult, paired_comparison
from pipeline.tasks.language_modeling.records import BlockRecord
from pipeline.tasks.records import example_ids

TEXTS = [f"sentence number {i} about {'cats' if i % 3 else 'dogs'}" for i in range(40)]


def classification_lines(seed: int, shift: float) -> list[dict]:
    """One run's records of 40 examples: right with a chance that grows with `shift`, differing by seed."""
    rng = random.Random(seed * 100 + int(shift * 10))
    ids = example_ids([{"text": text} for text in TEXTS])
    lines = []
    for index, (text, example) in enumerate(zip(TEXTS, ids, strict=True)):
        label = "a" if index % 2 else "b"
        right = rng.random() < 0.6 + shift
        prediction = label if right else ("b" if label == "a" else "a")
        line = {"text": text, "index": index, "example": example, "label": label, "prediction": prediction}
        lines.append(line | {"probabilities": [0.5, 0.5]})
    return lines


def run_folder(root: Path, cell: str, seed: int, lines: list[dict], task: str = "sequence-classification") -> RunResult:
    folder = root / cell / f"seed={seed}"
    folder.mkdir(parents=True)
    (folder / "predictions-test.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return RunResult(cell, seed, folder, {"test": {"accuracy": 0.0, "f1_macro": 0.0}}, {}, task)


def cells(root: Path, reorder: bool = False, drop: int | None = None) -> tuple[list[RunResult], list[RunResult]]:
    cell, baseline = [], []
    for seed in range(3):
        mine, theirs = classification_lines(seed, 0.2), classification_lines(seed, 0.0)
        if reorder:
            random.Random(seed).shuffle(mine)
        if drop is not None and seed == 0:
            mine = [line for line in mine if line["index"] != drop]
        cell.append(run_folder(root, "treated", seed, mine))
        baseline.append(run_folder(root, "base", seed, theirs))
    return cell, baseline


def test_reordered_prediction_files_give_identical_intervals(tmp_path):
    plain = paired_comparison(*cells(tmp_path / "plain"), "test")
    shuffled = paired_comparison(*cells(tmp_path / "shuffled", reorder=True), "test")
    assert plain["accuracy"].ci_low is not None
    for score in ("accuracy", "f1_macro"):
        for key in ("seed_differences", "ci_low", "ci_high", "examples_ci_low", "examples_ci_high", "p_value"):
            assert getattr(shuffled[score], key) == getattr(plain[score], key)


def test_an_example_one_run_missed_is_counted_said_and_left_out(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        result = paired_comparison(*cells(tmp_path, drop=7), "test")
    assert result["accuracy"].examples == 39 and result["accuracy"].unpaired == 1
    assert "compared on the 39 examples every run scored; 1 scored by only some" in caplog.text


def test_runs_that_share_no_example_are_said_not_paired(tmp_path, caplog):
    cell, baseline = cells(tmp_path)
    for run in baseline:
        path = run.folder / "predictions-test.jsonl"
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        path.write_text("".join(json.dumps(line | {"example": "other" + line["example"]}) + "\n" for line in lines))
    with caplog.at_level(logging.WARNING):
        assert paired_comparison(cell, baseline, "test") == {}
    assert "share 0 scored example(s)" in caplog.text


def lm_lines(documents: list[str], tokens_per_block: int, loss: float) -> list[dict]:
    """Block records of `documents` cut into blocks of `tokens_per_block` "tokens" (one per character): what two
    tokenizers with different cuts give for the same text."""
    ids, lines = example_ids(documents), []
    for row, (text, example) in enumerate(zip(documents, ids, strict=True)):
        length = len(text) + 1
        for start in range(0, length, tokens_per_block):
            tokens = min(tokens_per_block, length - start)
            share = tokens / length
            record = BlockRecord(
                len(lines), tokens, loss * tokens, words=len(text.split()) * share,
                bytes=len(text.encode()) * share, document=row, example=example,
            )  # fmt: skip
            lines.append(record.to_json())
    return lines


def test_two_tokenizers_are_paired_on_the_same_documents(tmp_path):
    """Blocks of 5 against blocks of 7 "tokens": different blocks (and counts of them), the same 40 documents."""
    cell, baseline = [], []
    for seed in range(3):
        cell.append(run_folder(tmp_path, "seven", seed, lm_lines(TEXTS, 7, 2.0 + seed / 10), "language-modeling"))
        baseline.append(run_folder(tmp_path, "five", seed, lm_lines(TEXTS, 5, 2.5), "language-modeling"))
        for run in (cell[-1], baseline[-1]):
            run.scores["test"] = {"loss": 0.0, "word_loss": 0.0, "bits_per_byte": 0.0}
    assert len(cell[0].records("test")) != len(baseline[0].records("test"))
    units = BlockRecord.units(cell[0].records("test"))
    assert len(units) == 40 and sum(unit.bytes for unit in units.values()) == pytest.approx(
        sum(len(text.encode()) for text in TEXTS)
    )
    result = paired_comparison(cell, baseline, "test")
    assert result["bits_per_byte"].examples == 40 and result["bits_per_byte"].unpaired == 0
    # every predicted "token" (a character, or the separator) costs 2.0 + seed/10 nats against 2.5, on the same text
    tokens_per_byte = sum(len(text) + 1 for text in TEXTS) / sum(len(text) for text in TEXTS)
    expected = [(2.0 + seed / 10 - 2.5) * tokens_per_byte / math.log(2) for seed in range(3)]
    assert result["bits_per_byte"].seed_differences == pytest.approx(expected)


def with_tokenizer(run: RunResult, vocabulary: list[str], truncation: int | None = None) -> RunResult:
    """Give a fake run a saved tokenizer (its vocabulary; `truncation`, a setting that does not cut text)."""
    (run.folder / "model").mkdir(exist_ok=True)
    tokenizer = {"model": {"type": "WordLevel", "vocab": {w: i for i, w in enumerate(vocabulary)}},
                 "truncation": None if truncation is None else {"max_length": truncation}}  # fmt: skip
    (run.folder / "model" / "tokenizer.json").write_text(json.dumps(tokenizer))
    return run


def lm_cells(root: Path, cell_vocabulary: list[str], packed: bool = False) -> tuple[list, list]:
    cell, baseline = [], []
    for seed in range(3):
        mine, theirs = lm_lines(TEXTS, 7, 2.0 + seed / 10), lm_lines(TEXTS, 5, 2.5)
        if packed:  # blocks of no one document: pairable only by position
            mine, theirs = ([line | {"example": None, "document": None} for line in lines] for lines in (mine, theirs))
        cell.append(with_tokenizer(run_folder(root, "cell", seed, mine, "language-modeling"), cell_vocabulary, 64))
        baseline.append(with_tokenizer(run_folder(root, "base", seed, theirs, "language-modeling"), ["a", "b"], 32))
        for run in (cell[-1], baseline[-1]):
            run.scores["test"] = {"loss": 0.0, "word_loss": 0.0, "bits_per_byte": 0.0}
    return cell, baseline


def test_per_token_scores_are_compared_only_under_one_tokenizer(tmp_path, caplog):
    same = paired_comparison(*lm_cells(tmp_path / "same", ["a", "b"]), "test")  # truncation settings differ only
    assert list(same) == ["bits_per_byte", "word_loss", "loss"]  # the tokenizer-free scores first: they decide
    with caplog.at_level(logging.INFO):
        crossing = paired_comparison(*lm_cells(tmp_path / "crossing", ["a", "b", "c"]), "test")
    assert (
        list(crossing) == ["bits_per_byte", "word_loss"] and "per-token scores (loss) are not compared" in caplog.text
    )
    assert crossing["bits_per_byte"].seed_differences == same["bits_per_byte"].seed_differences


def test_packed_blocks_of_two_tokenizers_are_refused(tmp_path):
    from pipeline.errors import PipelineError

    assert "loss" in paired_comparison(*lm_cells(tmp_path / "same", ["a", "b"], packed=True), "test")
    with pytest.raises(PipelineError, match="cut text with different tokenizers, and their test blocks hold text"):
        paired_comparison(*lm_cells(tmp_path / "crossing", ["x"], packed=True), "test")


def test_an_adaptive_sweep_across_tokenizers_decides_on_bits_per_byte(tmp_path):
    from pipeline.sweeps.seeds import SeedPlan
    from pipeline.sweeps.sweep import SweepState, add_seeds

    cell, baseline = lm_cells(tmp_path, ["a", "b", "c"])
    state = SweepState({"cell": [0, 1, 2], "base": [0, 1, 2]})
    add_seeds(state, {"cell": cell, "base": baseline}, "base", SeedPlan(first=3, most=3), None, "test")
    assert state.decisions["cell"]["deciding_score"] == "bits_per_byte"
