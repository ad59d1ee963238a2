"""The report of a comparison: `summary.json`, `summary.csv` and `summary.md` (with its plots), for the cells of a
sweep or any set of run folders (`pipeline compare`)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.recipe.io import read_yaml
from pipeline.storage import atomic_write_text
from pipeline.sweeps.intervals import CONFIDENCE, MIN_PAIRED_SEEDS
from pipeline.sweeps.plots import bar_chart, learning_curves, position_curves
from pipeline.sweeps.results import CellSummary, ClassicalRow, PairedDifference, Spread, SweepSummary
from pipeline.sweeps.statistics import RunResult, cell_summary, correct_for_many, paired_comparison
from pipeline.training.card import text


def load_run(folder: Path, cell: str) -> RunResult | None:
    """A finished run folder as a `RunResult` (None: not finished)."""
    if not (folder / "metrics.json").is_file():
        return None
    metrics = json.loads((folder / "metrics.json").read_text())
    recipe = read_yaml((folder / "recipe.yaml").read_text())
    return RunResult(
        cell,
        recipe["train"]["seed"],
        folder,
        {k: v for k, v in metrics.items() if k != "train"},
        metrics["train"],
        recipe["task"]["type"],
    )


def report_split(runs: list[RunResult]) -> str:
    """The split a comparison reports: `test` when every run has it, else the last split they all have."""
    common = [split for split in runs[0].scores if all(split in run.scores for run in runs)]
    if not common:
        splits = sorted({f"{run.folder}: {', '.join(run.scores) or 'none'}" for run in runs})
        raise PipelineError(
            f"the runs share no evaluated split, so nothing can be compared ({'; '.join(splits[:2])}); compare runs "
            "that were evaluated on a common split (eval.splits)"
        )
    return "test" if "test" in common else common[-1]


def _cell(value: Spread | None, digits: int = 4) -> str:
    if value is None or value.mean is None:
        return "—"
    return f"{value.mean:.{digits}f} ± {value.std:.{digits}f}"


def _difference(entry: PairedDifference | None) -> str:
    """`mean [low, high] *` of a paired difference, or `mean (no interval: 2 seeds)`."""
    if entry is None or entry.seed_difference_mean is None:
        return "—"
    text = f"{entry.seed_difference_mean:+.4f}"
    if entry.ci_low is None:
        return text + f" (no interval: {entry.pairs} seed{'s' if entry.pairs != 1 else ''})"
    mark = " *" if entry.real_after_correction else " †" if entry.excludes_zero else ""
    return text + f" [{entry.ci_low:+.4f}, {entry.ci_high:+.4f}]" + mark


def _per_seed(entry: PairedDifference | None) -> str:
    if entry is None:
        return "—"
    return ", ".join(f"{value:+.4f}" for value in entry.seed_differences)


def cell_in_words(name: str, cell: CellSummary, summary: SweepSummary, folder: Path) -> list[str]:
    """A cell of a sweep in Markdown lines, for each of its runs' model cards: each score's mean ± std over its seeds,
    and each compared score's difference with the baseline."""
    lines = [f"In the sweep {text(folder)} this run is one of {cell.n} seeds of the cell {text(name)} (split "
             f"{text(summary.split)}):", ""]  # fmt: skip
    for score, spread in cell.scores.items():
        if spread.mean is not None and "/" not in score:
            lines.append(f"- {score}: {spread.mean:.4f} ± {spread.std or 0:.4f} (mean ± std over seeds)")
    for score, entry in (cell.vs_baseline or {}).items():
        if entry.ci_low is not None:
            lines.append(f"- Δ {score} against {text(summary.baseline)}: {entry.seed_difference_mean:+.4f} "
                         f"[{entry.ci_low:+.4f}, {entry.ci_high:+.4f}]")  # fmt: skip
    return lines


def write_summary(
    runs: dict[str, list[RunResult]],
    baseline: str,
    folder: Path,
    classical: list[dict[str, Any]] | None = None,
    confidence: float = CONFIDENCE,
    seed_decisions: dict[str, dict[str, Any]] | None = None,
    stopped_early: list[dict[str, Any]] | None = None,
) -> SweepSummary:
    """Summaries and plots of `runs` (cell → its runs) in `folder`, each cell compared with `baseline` at `confidence`.

    seed_decisions: per cell, how many seeds an adaptive sweep gave it and why;
    stopped_early: the runs an early-stopping rule stopped (cell, seed, step, score), left out of every score."""
    everything = [run for members in runs.values() for run in members]
    split = report_split(everything)
    cells = {cell: cell_summary(members, split) for cell, members in runs.items()}
    for cell, members in runs.items():
        cells[cell].seed_decision = (seed_decisions or {}).get(cell)
        if cell != baseline and baseline in runs:
            cells[cell].vs_baseline = paired_comparison(members, runs[baseline], split, confidence)
    comparisons = correct_for_many(cells, confidence)
    folder.mkdir(parents=True, exist_ok=True)  # once the runs are known comparable: a refusal leaves no folder
    metrics = list(
        dict.fromkeys(name for cell in cells.values() for name in cell.scores if "/" not in name and name != "loss")
    )
    rows = [ClassicalRow(**row) for row in classical or []]
    plots = [
        bar_chart(cells, metric, split, _classical_scores(rows, split, metric), folder / f"bars-{metric}.png")
        for metric in metrics
    ]
    eval_metric = metrics[0] if metrics else None
    curves = [learning_curves(runs, "loss", None, folder / "curves-loss.png")]
    first_eval = next((r["split"] for run in everything for r in run.log() if "split" in r), None)
    if eval_metric and first_eval:
        curves.append(learning_curves(runs, eval_metric, first_eval, folder / f"curves-{first_eval}-{eval_metric}.png"))
    curves.append(position_curves(runs, split, folder / "position-loss.png"))
    summary = SweepSummary(
        split=split, baseline=baseline, confidence=confidence, comparisons=comparisons, cells=cells, classical=rows,
        stopped_early=stopped_early or [], plots=[path.name for path in [*plots, *curves] if path is not None],
    )  # fmt: skip
    atomic_write_text(folder / "summary.json", json.dumps(summary.to_json(), indent=2, default=str) + "\n")
    atomic_write_text(folder / "summary.csv", _csv(cells, metrics, rows, split))
    atomic_write_text(folder / "summary.md", _markdown(summary, metrics))
    return summary


def _classical_scores(classical: list[ClassicalRow], split: str, metric: str) -> dict[str, float]:
    """Baseline name → its `metric` on `split`, for the baselines that have it."""
    return {row.name: row.scores[split][metric] for row in classical if metric in row.scores.get(split, {})}


def _compared(cells: dict[str, CellSummary]) -> list[str]:
    """The scores some cell is compared with the baseline on, in the order the cells give them."""
    return list(dict.fromkeys(name for cell in cells.values() for name in cell.vs_baseline or {}))


def _csv(cells: dict[str, CellSummary], metrics: list[str], classical: list[ClassicalRow], split: str) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    compared = _compared(cells)
    writer.writerow(
        [
            "cell",
            "n",
            *[f"{m}_{s}" for m in metrics for s in ("mean", "std")],
            "train_wall_time_s_mean",
            "train_wall_time_s_std",
            "trainable_parameters",
            *[
                f"{m}_{k}"
                for m in compared
                for k in (
                    "diff_vs_baseline",
                    "ci_low",
                    "ci_high",
                    "excludes_zero",
                    "examples_only_ci_low",
                    "examples_only_ci_high",
                )
            ],
        ]
    )
    for name, cell in cells.items():
        row = [name, cell.n]
        for m in metrics:
            spread = cell.scores.get(m)
            row += [spread.mean, spread.std] if spread is not None else [None, None]
        row += [cell.train_wall_time_s.mean, cell.train_wall_time_s.std, cell.trainable_parameters.mean]
        for m in compared:
            entry = (cell.vs_baseline or {}).get(m)
            row += (
                [None] * 6
                if entry is None
                else [entry.seed_difference_mean, entry.ci_low, entry.ci_high, entry.excludes_zero,
                      entry.examples_ci_low, entry.examples_ci_high]
            )  # fmt: skip
        writer.writerow(row)
    for baseline in classical:
        scores = baseline.scores.get(split, {})
        writer.writerow([baseline.name, 1, *[x for m in metrics for x in (scores.get(m), None)], baseline.wall_s])
    return buffer.getvalue()


def _markdown(summary: SweepSummary, metrics: list[str]) -> str:
    cells, split = summary.cells, summary.split
    compared = _compared(cells)
    level = f"{round(100 * summary.confidence, 2):g}%"
    head = [
        "cell",
        "n",
        *[f"{split} {m}" for m in metrics],
        *[f"Δ {m} [{level} CI]" for m in compared],
        *[f"Δ {m} per seed" for m in compared],
        "train wall time (s)",
        "trainable parameters",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, cell in cells.items():
        baseline = name == summary.baseline
        label = f"**{name}** (baseline)" if baseline else name
        versus = cell.vs_baseline or {}
        row = [
            label,
            str(cell.n),
            *[_cell(cell.scores.get(m)) for m in metrics],
            *["—" if baseline else _difference(versus.get(m)) for m in compared],
            *["—" if baseline else _per_seed(versus.get(m)) for m in compared],
            _cell(cell.train_wall_time_s, 1),
            f"{int(cell.trainable_parameters.mean or 0):,}",
        ]
        lines.append("| " + " | ".join(row) + " |")
    for baseline in summary.classical:
        scores = baseline.scores.get(split, {})
        row = [
            baseline.name,
            "1",
            *[f"{scores[m]:.4f}" if m in scores else "—" for m in metrics],
            *["—"] * 2 * len(compared),
            f"{baseline.wall_s:.1f} (features, fit, scoring)",
            "—",
        ]
        lines.append("| " + " | ".join(row) + " |")
    decided = {name: cell.seed_decision for name, cell in cells.items() if cell.seed_decision is not None}
    if decided:
        lines += ["", "| cell | seeds | why no more |", "|---|---|---|"]
        lines += [f"| {name} | {d['seeds']} | {d['stopped_because']} |" for name, d in decided.items()]
    if summary.stopped_early:
        lines += [
            "",
            "Runs stopped early (left out of every score above):",
            "",
            "| cell | seed | step | score |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {run['cell']} | {run['seed']} | {run.get('step')} | {run.get('score')} |"
            for run in summary.stopped_early
        ]
    notes = [
        "",
        f"Scores on the `{split}` split: mean ± standard deviation over seeds. Δ: the cell minus the baseline, "
        "paired by "
        f"seed, its mean over seeds and, per seed, each pair's difference. The {level} interval counts both sources of "
        f"noise, which model a seed happened to train and which `{split}` examples happened to be drawn, so an "
        f"interval that excludes zero says the settings differ beyond what reseeding and another `{split}` sample "
        "would explain. "
        "It does not say the difference is large, nor that it holds on other data or at other hyper-parameters; with "
        f"fewer than {MIN_PAIRED_SEEDS} paired seeds no interval is given.",
        "",
        f"This report makes {summary.comparisons} comparisons with the baseline (cells × scores). `*` "
        "marks a difference that is real after Holm's correction over all of them, which keeps the chance of calling "
        f"any non-difference among them real at most {100 - round(100 * summary.confidence, 2):g}%; "
        "`†` marks one whose own interval excludes zero but which does not survive the correction.",
        "",
        *[f"![{path}]({path})" for path in summary.plots],
    ]
    return "\n".join(lines + notes) + "\n"
