"""`diagnostics.md`, rendered from a `Diagnosis`: a section per part (drift, meaning, positions, rotation, scores by
length), each its own function."""

from __future__ import annotations

from typing import Any

from pipeline.diagnostics.results import Diagnosis, Meaning


def _score(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def drift_lines(diagnosis: Diagnosis) -> list[str]:
    """The drift table by training frequency, its plot, and the rows the run added."""
    if diagnosis.drift is None:
        return [diagnosis.no_drift or "No start to compare with."]
    lines = [
        "| training occurrences | tokens | mean cosine distance | median | mean relative norm change "
        "| rows unchanged |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['bucket']} | {r['tokens']:,} | {r['mean_cosine_distance']:.2e} | {r['median_cosine_distance']:.2e} | "
        f"{r['mean_relative_norm_change']:+.2e} | {r['share_unchanged']:.1%} |"
        for r in diagnosis.drift
    ]
    lines += ["", "![drift](token-drift.png)", "", "Per token: [token-drift.csv](token-drift.csv)."]
    added = diagnosis.added_rows
    if added:
        lines += [
            "",
            f"The table above covers the start's {added['first_id']:,} rows. {added['rows']:,} more rows (ids "
            f"{added['first_id']:,} on: {', '.join(added['tokens'][:5])}{' ...' if added['rows'] > 5 else ''}) are "
            "tokens this run added, which the start does not have, so their drift is not measured (diagnose "
            f"`--against` a checkpoint of this run for it); their mean norm is {added['mean_norm']:.3g}, against "
            f"{added['mean_norm_of_the_others']:.3g} for the others.",
        ]
    return lines


def _scored(part: dict[str, Any] | None, measure: str, count: str) -> str:
    return "–" if part is None else f"{_score(part[measure])} ({part['covered']:,} of {part[count]:,} covered)"


def meaning_lines(meaning: dict[str, Meaning | None]) -> list[str]:
    """Word similarity and analogies at the start and the end, and each word's nearest single-token words."""
    states = [(name, state) for name, state in meaning.items() if state]
    header = ["| | " + " | ".join(name for name, _ in states) + " |", "|---" * (len(states) + 1) + "|"]
    lines = [
        *header,
        "| word similarity, Spearman | "
        + " | ".join(_scored(s.similarity, "spearman", "pairs") for _, s in states) + " |",
        "| analogy accuracy | " + " | ".join(_scored(s.analogies, "accuracy", "questions") for _, s in states) + " |",
    ]  # fmt: skip
    last = states[-1][1]
    if not last.single_token_words:
        lines += ["", "The tokenizer has no token that is a whole word, so no word is scored or has neighbours."]
    lines += ["", "Nearest single-token words:", "", "| word | " + header[0][4:], header[1]]
    for word in last.neighbours:
        shown = [", ".join(s.neighbours[word]) if s.neighbours[word] else "(not one token)" for _, s in states]
        lines.append(f"| {word} | " + " | ".join(shown) + " |")
    return lines


def rotary_lines(rotary: dict[str, dict[str, Any] | None]) -> list[str]:
    """The rotation's settings at the start and the end, and the frequencies plot."""
    lines = ["", "## Rotary positions", "", "| | start | end |", "|---|---|---|"]
    for key in ("rope_type", "rope_theta", "scaling", "rotated_dimensions", "layers_without_rotation"):
        lines.append(f"| {key} | {(rotary['start'] or {}).get(key, '–')} | {(rotary['end'] or {}).get(key, '–')} |")
    return [*lines, "", "![rotary frequencies](rotary-frequencies.png)"]


def length_lines(split: str, lengths: dict[str, Any]) -> list[str]:
    """The split's score by input-length quartile, and how many inputs were cut."""
    metric = lengths["metric"]
    lines = [
        "",
        f"## {split} {metric} by input length",
        "",
        f"{lengths['truncated']:,} of {lengths['examples']:,} inputs were cut at {lengths['max_length']} tokens.",
        "",
        f"| quartile | tokens | examples | {metric} | truncated |",
        "|---|---|---|---|---|",
    ]
    return lines + [
        f"| {q['quartile']} | {q['tokens_from']}–{q['tokens_to']} | {q['examples']:,} | {_score(q[metric])} | "
        f"{q['truncated']:,} |"
        for q in lengths["quartiles"]
    ]


def markdown(diagnosis: Diagnosis) -> str:
    """diagnostics.md: every table of diagnostics.json, and the pictures."""
    lines = [
        f"# Input-layer diagnostics of {diagnosis.run}",
        "",
        f"Start: {diagnosis.start or '(none: ' + str(diagnosis.no_start) + ')'}; end: {diagnosis.model}.",
        "",
        "## Token-table drift, start → end",
        "",
        *drift_lines(diagnosis),
        "",
        "## Does the table still encode meaning?",
        "",
        f"Word similarity: {diagnosis.similarity_file or 'no file (install gensim, or give --similarity)'}; "
        f"analogies: {diagnosis.analogy_file or 'no file (install gensim, or give --analogies)'}. Only words that "
        "are one token count.",
        "",
        *meaning_lines(diagnosis.meaning),
    ]
    if diagnosis.positions is not None:
        lines += ["", "## Position table: cosine similarity of positions", "", "![positions](position-similarity.png)"]
    if diagnosis.rotary is not None:
        lines += rotary_lines(diagnosis.rotary)
    if diagnosis.by_length:
        lines += length_lines(diagnosis.split, diagnosis.by_length)
    return "\n".join(lines) + "\n"
