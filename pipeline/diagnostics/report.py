"""`pipeline diagnose RUN`: drift, meaning, positions and per-length scores of a run's input layers, written into
`RUN/diagnostics/` (through a partial folder: an interrupted diagnosis leaves the previous one, or nothing)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from pipeline.data.sources import limit_splits
from pipeline.diagnostics.drift import drift_rows, plot_drift, summarise, token_counts, write_csv
from pipeline.diagnostics.lengths import by_length
from pipeline.diagnostics.meaning import (
    WordIndex,
    analogy_accuracy,
    gensim_test_file,
    neighbours,
    read_analogies,
    read_similarity,
    word_similarity,
)
from pipeline.diagnostics.positions import plot_position_similarity, plot_rotary_frequencies
from pipeline.diagnostics.render import markdown
from pipeline.diagnostics.results import Diagnosis, Meaning
from pipeline.diagnostics.snapshots import Snapshot, load_start, shared_rows, snapshot_of, start_source
from pipeline.errors import PipelineError
from pipeline.experiment.build import Experiment, build_evaluation
from pipeline.experiment.data import raw_splits
from pipeline.experiment.runs import load_run_recipe, locate_run
from pipeline.families.base import NO_TOKEN_FEATURES
from pipeline.locks import folder_lock
from pipeline.recipe.schema import Recipe
from pipeline.storage import replace_folder
from pipeline.tasks.records import read_records
from pipeline.tasks.registry import task_type

DEFAULT_WORDS = ("king", "money", "music", "computer", "good", "france")
UNTRUNCATED = 10**9


def _meaning(
    snapshot: Snapshot,
    similarity: list[tuple[str, str, float]] | None,
    analogies: list[tuple[str, str, str, str]] | None,
    words: list[str],
) -> Meaning:
    index = WordIndex(snapshot.tokenizer)
    return Meaning(
        single_token_words=len(index.ids),
        similarity=word_similarity(snapshot.tokens, index, similarity) if similarity else None,
        analogies=analogy_accuracy(snapshot.tokens, index, analogies) if analogies else None,
        neighbours=neighbours(snapshot.tokens, index, words),
    )


def _lengths(exp: Experiment, run_dir: Path, raw: Any, split: str) -> dict[str, Any] | None:
    path = run_dir / f"predictions-{split}.jsonl"
    records = read_records(path, task_type(exp.recipe.task.type).record)
    if not records or records[0].example_score() is None:  # e.g. language modeling: blocks, not examples
        return None
    encoded, _ = exp.task.encode(raw[split], exp.tokenizer, UNTRUNCATED, split, NO_TOKEN_FEATURES)
    if len(records) != len(encoded):
        raise PipelineError(
            f"{path.name} has {len(records)} rows but split '{split}' has {len(encoded)} examples: has the data "
            "changed since the run?"
        )
    return by_length(records, [len(ids) for ids in encoded["input_ids"]], exp.max_length)


def rotary_details(snapshot: Snapshot | None) -> dict[str, Any] | None:
    """What rotates in a state, without its one-line summary."""
    if snapshot is None or snapshot.rotary is None:
        return None
    return {key: value for key, value in snapshot.rotary.items() if key != "summary"}


def diagnose(
    run: Path,
    against: str | None = None,
    words: list[str] | None = None,
    similarity: Path | None = None,
    analogies: Path | None = None,
    split: str | None = None,
    trust_code: bool = False,
) -> Diagnosis:
    """Diagnose a finished run (or a saved model inside one) against its start; returns what diagnostics.json holds.

    trust_code: allow what the run folder asks to run (its recipe's trust flags, a model's own code)."""
    run_dir, model_dir = locate_run(run)
    recipe = load_run_recipe(run_dir, model_dir, [], trust_code)
    with folder_lock(run_dir, "run"):  # one writer: not while the run trains or another diagnose writes
        return _diagnose(run_dir, model_dir, recipe, against, words, similarity, analogies, split)


def _diagnose(
    run_dir: Path,
    model_dir: Path,
    recipe: Recipe,
    against: str | None,
    words: list[str] | None,
    similarity: Path | None,
    analogies: Path | None,
    split: str | None,
) -> Diagnosis:
    split = split or recipe.eval.splits[-1]
    similarity = similarity or gensim_test_file("wordsim353.tsv")
    analogies = analogies or gensim_test_file("questions-words.txt")
    pairs = read_similarity(similarity) if similarity else None
    questions = read_analogies(analogies) if analogies else None
    source, no_start = start_source(recipe, against)
    exp = build_evaluation(
        recipe.model_copy(update={"eval": recipe.eval.model_copy(update={"splits": [split]})}), model_dir
    )
    end = snapshot_of(exp.family, exp.model, exp.tokenizer, f"end ({model_dir})")
    start = load_start(recipe, exp.family, exp.task, source) if source else None
    raw = limit_splits(
        recipe.data, raw_splits(recipe, exp.task, list(dict.fromkeys([recipe.data.train_split, split])))[0]
    )
    words = list(words or DEFAULT_WORDS)

    result = Diagnosis(
        run=str(run_dir), model=str(model_dir), start=source, no_start=no_start or None, split=split,
        similarity_file=str(similarity) if similarity else None, analogy_file=str(analogies) if analogies else None,
        meaning={"start": _meaning(start, pairs, questions, words) if start else None,
                 "end": _meaning(end, pairs, questions, words)},
    )  # fmt: skip
    partial = run_dir / f".{diagnostics_folder(run_dir, model_dir).name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    rows = shared_rows(start, end) if start else None
    if start and rows is None:
        result.no_drift = (
            "the run's vocabulary differs from the start's, so a token id is not the same token in both: "
            "give `--against` a checkpoint of this run to measure drift"
        )
    elif start:
        counts = token_counts(end.tokenizer, exp.task.texts(raw[recipe.data.train_split]), rows)
        per_token = drift_rows(
            start.tokens[:rows], end.tokens[:rows], counts, end.tokenizer.convert_ids_to_tokens(list(range(rows)))
        )
        write_csv(per_token, partial / "token-drift.csv")
        result.drift = summarise(per_token)
        write_csv(result.drift, partial / "token-drift-by-frequency.csv")
        plot_drift(per_token, partial / "token-drift.png", f"token-table drift by training frequency ({rows:,} tokens)")
        result.added_rows = added_rows(end, rows)
    if end.frequencies is not None or (start and start.frequencies is not None):
        states = {f"start: {source}": start.frequencies if start else None, "end: this run": end.frequencies}
        plot_rotary_frequencies(states, partial / "rotary-frequencies.png")
        result.rotary = {"start": rotary_details(start), "end": rotary_details(end)}
    if (start and start.positions is not None) or end.positions is not None:
        plot_position_similarity(
            {f"start: {source}": start.positions if start else None, "end: this run": end.positions},
            partial / "position-similarity.png",
        )
        result.positions = {
            "start_rows": None if not start or start.positions is None else start.positions.shape[0],
            "end_rows": None if end.positions is None else end.positions.shape[0],
        }
    final = model_dir.resolve() == (run_dir / "model").resolve()
    # the run's predictions are the final model's: a checkpoint's scores by length would be someone else's
    result.by_length = _lengths(exp, run_dir, raw, split) if final else None
    (partial / "diagnostics.json").write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
    (partial / "diagnostics.md").write_text(markdown(result), encoding="utf-8")
    replace_folder(partial, diagnostics_folder(run_dir, model_dir))
    return result


def added_rows(end: Snapshot, shared: int) -> dict[str, Any] | None:
    """The rows past the start's vocabulary (tokens the run added, e.g. trained alone with `rows: new`): not in the
    start, so their drift is not measured, but they are counted, named and their norms given."""
    count = min(end.tokens.shape[0], len(end.tokenizer)) - shared
    if count <= 0:
        return None
    ids = list(range(shared, shared + count))
    norms = end.tokens[shared : shared + count].double().norm(dim=1)
    others = end.tokens[:shared].double().norm(dim=1)
    return {"rows": count, "first_id": shared, "tokens": end.tokenizer.convert_ids_to_tokens(ids[:20]),
            "mean_norm": float(norms.mean()), "mean_norm_of_the_others": float(others.mean())}  # fmt: skip


def diagnostics_folder(run_dir: Path, model_dir: Path) -> Path:
    """`diagnostics/` for the run's final model; `diagnostics-step-N/` for a checkpoint's, so that diagnosing an
    early checkpoint never replaces the final model's diagnosis."""
    if model_dir.resolve() == (run_dir / "model").resolve():
        return run_dir / "diagnostics"
    return run_dir / f"diagnostics-{(model_dir.parent if model_dir.name == 'model' else model_dir).name}"
