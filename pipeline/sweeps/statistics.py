"""What is real in a comparison of runs: per cell the mean and spread over seeds, and per cell against a baseline
cell the seed-paired difference with an interval that counts both training noise (seeds) and test noise (examples):
see `pipeline.sweeps.intervals` for the method and `benchmarks/calibration.py` for how often it calls a
non-difference real.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import statistics as stats
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.sweeps.intervals import CONFIDENCE, MIN_PAIRED_SEEDS, Difference, holm, paired_difference
from pipeline.sweeps.results import CellSummary, PairedDifference, Spread
from pipeline.tasks.records import PredictionRecord, read_records
from pipeline.tasks.registry import task_type

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """One finished run folder: its cell, seed, scores per split, training summary and task type."""

    cell: str
    seed: int
    folder: Path
    scores: dict[str, dict[str, float]]
    train: dict[str, Any]
    task_type: str

    def records(self, split: str) -> list[PredictionRecord]:
        """The run's prediction records of `split`, as its task type's record class reads them (read once)."""
        if split not in self._records:
            self._records[split] = read_records(
                self.folder / f"predictions-{split}.jsonl", task_type(self.task_type).record
            )
        return self._records[split]

    @cached_property
    def _records(self) -> dict[str, list[PredictionRecord]]:
        return {}

    @cached_property
    def tokenizer(self) -> str | None:
        """A digest of the tokenizer the run saved with its model (None where the folder holds none)."""
        return tokenizer_identity(self.folder / "model")

    def log(self) -> list[dict[str, Any]]:
        path = self.folder / "log.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "merges.txt", "tokenizer.model")
CUTTING = ("model", "added_tokens", "normalizer", "pre_tokenizer")  # what of tokenizer.json decides the tokens


def tokenizer_identity(model_dir: Path) -> str | None:
    """A digest of how a saved tokenizer cuts text (its vocabulary and rules; not its truncation or padding
    settings), None where `model_dir` holds no tokenizer file."""
    digest, found = hashlib.sha256(), False
    for name in TOKENIZER_FILES:
        path = model_dir / name
        if not path.is_file():
            continue
        found, data = True, path.read_bytes()
        if name == "tokenizer.json":
            try:
                parsed = json.loads(data)
                data = json.dumps({key: parsed.get(key) for key in CUTTING}, sort_keys=True).encode()
            except (ValueError, AttributeError):
                pass
        digest.update(name.encode() + b"\0" + data + b"\0")
    return digest.hexdigest() if found else None


def tokenizers_differ(pairs: list[tuple[RunResult, RunResult]]) -> bool:
    """Whether the runs compared cut text with different tokenizers (unknown where a run saved none: not assumed)."""
    known = {run.tokenizer for pair in pairs for run in pair}
    return len(known - {None}) > 1


def mean_std(values: list[float]) -> Spread:
    clean = [value for value in values if value is not None and value == value]
    return Spread(
        stats.fmean(clean) if clean else None,
        stats.stdev(clean) if len(clean) > 1 else 0.0 if clean else None,
        values,
    )


def cell_summary(runs: list[RunResult], split: str) -> CellSummary:
    """n, and mean ± std over seeds of every score of `split`, of the training wall time and trainable parameters."""
    names = list(dict.fromkeys(name for run in runs for name in run.scores.get(split, {})))
    return CellSummary(
        n=len(runs),
        seeds=[run.seed for run in runs],
        scores={name: mean_std([run.scores.get(split, {}).get(name) for run in runs]) for name in names},
        train_wall_time_s=mean_std([run.train.get("train_wall_time_s") for run in runs]),
        trainable_parameters=mean_std([run.train.get("trainable_parameters") for run in runs]),
    )


def shared_units(
    pairs: list[tuple[RunResult, RunResult]], split: str
) -> tuple[list[tuple[list[PredictionRecord], list[PredictionRecord]]], int]:
    """Each seed pair's records of `split` on the units every run scored (an example, or a document of text: the
    task's `units`), joined by identity and in one order (sorted by identity, so the order of a file's lines changes
    nothing); also how many units some run scored and another did not."""
    record = task_type(pairs[0][0].task_type).record
    units = [(record.units(c.records(split)), record.units(b.records(split))) for c, b in pairs]
    every = [set(keyed) for pair in units for keyed in pair]
    shared = sorted(set.intersection(*every))
    unpaired = len(set.union(*every)) - len(shared)
    return [([mine[key] for key in shared], [theirs[key] for key in shared]) for mine, theirs in units], unpaired


def paired_comparison(
    cell: list[RunResult], baseline: list[RunResult], split: str, confidence: float = CONFIDENCE, seed: int = 0
) -> dict[str, PairedDifference]:
    """Per compared score: the cell minus the baseline, seed by seed (`seed_differences`, their mean and std), and
    the `confidence` interval of the mean difference that counts seed and test-example noise (`ci_low`, `ci_high`;
    `excludes_zero` marks a difference the report calls real). With fewer than 3 paired seeds there is no such
    interval (`no_interval` says why). `examples_ci_*` is the interval over test examples alone, the trained models
    held fixed: it says how precisely these models were measured, not whether the settings differ.

    Examples are paired by identity, not by line: the scores compared are those of the examples every run scored
    (`examples`; `unpaired`: how many some run scored and another did not, said in one line)."""
    by_seed = {run.seed: run for run in baseline}
    pairs = [(run, by_seed[run.seed]) for run in sorted(cell, key=lambda run: run.seed) if run.seed in by_seed]
    if not pairs or not all(c.records(split) and b.records(split) for c, b in pairs):
        return {}
    aligned, unpaired = shared_units(pairs, split)
    crossing = tokenizers_differ(pairs)
    if crossing and any(record.cut_by_tokenizer() for mine, theirs in aligned for record in (*mine, *theirs)):
        raise PipelineError(
            f"{cell[0].cell} and {baseline[0].cell} cut text with different tokenizers, and their {split} blocks "
            "hold text of no one document (packed), so a block of one is no block of the other: compare them on "
            "blocks of whole documents, or at their own model.max_length"
        )
    if len(aligned[0][0]) < 2:
        log.warning(
            "%s: the runs share %d scored example(s) of %s; nothing to pair", cell[0].cell, len(aligned[0][0]), split
        )
        return {}
    check_same_settings(aligned, cell[0], baseline[0], split)
    if unpaired:
        log.warning(
            "%s against %s on %s: compared on the %d examples every run scored; %d scored by only some are left out",
            cell[0].cell, baseline[0].cell, split, len(aligned[0][0]), unpaired,
        )  # fmt: skip
    reported = set(pairs[0][0].scores.get(split, {}))
    first = aligned[0][0]
    compared = [m for m in task_type(cell[0].task_type).compared_scores(reported) if m.applies_to(first)]
    if crossing and any(metric.per_token for metric in compared):
        log.info(
            "%s against %s: the tokenizers differ, so per-token scores (%s) are not compared",
            cell[0].cell, baseline[0].cell, ", ".join(metric.name for metric in compared if metric.per_token),
        )  # fmt: skip
        compared = [metric for metric in compared if not metric.per_token]
    result: dict[str, PairedDifference] = {}
    for metric in compared:
        every = [records for mine, theirs in aligned for records in (mine, theirs)]
        classes = sorted(set().union(*(metric.labels(records) for records in every)))
        mine = [metric.of(records, classes) for records, _ in aligned]
        theirs = [metric.of(records, classes) for _, records in aligned]
        diffs = [m.total_score() - t.total_score() for m, t in zip(mine, theirs, strict=True)]
        difference = paired_difference(mine, theirs, diffs, seed=seed)
        result[metric.name] = difference_entry(difference, confidence, unpaired)
    return result


def check_same_settings(
    aligned: list[tuple[list[PredictionRecord], list[PredictionRecord]]],
    cell: RunResult,
    baseline: RunResult,
    split: str,
) -> None:
    """Paired records must have been scored alike (`PredictionRecord.setting`: e.g. the number of documents a query
    searched): a difference between runs that searched different collections is not an effect of their settings."""
    for mine, theirs in aligned:
        ours, others = sorted({r.setting() or "" for r in mine}), sorted({r.setting() or "" for r in theirs})
        if ours != others:
            raise PipelineError(
                f"{cell.cell} and {baseline.cell} were not scored alike on {split} ({', '.join(ours)} against "
                f"{', '.join(others)}: different collections or evaluation data), so their difference is no effect "
                "of their settings; compare runs evaluated alike"
            )


def difference_entry(difference: Difference, confidence: float, unpaired: int = 0) -> PairedDifference:
    """A `Difference` as the report holds it (unpaired: units some run scored and another did not)."""
    spread = mean_std(difference.seed_differences)
    interval = difference.interval(confidence)
    no_interval = (
        f"{difference.pairs} paired seed(s): at least {MIN_PAIRED_SEEDS} are needed to tell how much a seed moves "
        "the score"
    )
    degrees = difference.degrees_of_freedom() if interval is not None else math.inf
    return PairedDifference(
        seed_differences=difference.seed_differences, seed_difference_mean=spread.mean,
        seed_difference_std=spread.std, pairs=difference.pairs, confidence=confidence,
        seed_variance=difference.seed_variance, example_variance=difference.example_variance,
        examples=difference.examples, examples_ci_low=difference.examples_only[0],
        examples_ci_high=difference.examples_only[1], p_value=difference.p_value(),
        ci_low=None if interval is None else interval[0], ci_high=None if interval is None else interval[1],
        excludes_zero=interval is not None and bool(interval[0] > 0 or interval[1] < 0), unpaired=unpaired,
        no_interval=no_interval if interval is None else None, df=None if math.isinf(degrees) else degrees,
    )  # fmt: skip


def correct_for_many(cells: dict[str, CellSummary], confidence: float) -> int:
    """Holm's correction over every comparison with the baseline in `cells` (each cell × each score with an
    interval): marks each entry `real_after_correction`, keeping the family-wise chance of calling any non-difference
    real at most 1 − `confidence`; returns how many comparisons it counted."""
    entries = [entry for cell in cells.values() for entry in (cell.vs_baseline or {}).values()]
    tested = [entry for entry in entries if entry.p_value is not None]
    for entry, real in zip(tested, holm([entry.p_value for entry in tested], confidence), strict=True):
        entry.real_after_correction = real
    return len(tested)
