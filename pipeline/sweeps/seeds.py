"""How many seeds a cell gets: a fixed list (`--seeds 0,1,2`), or `--seeds auto[:MIN:MAX]`: MIN seeds per cell
first, then one more seed at a time only for the cells whose comparison with the baseline is still open.

A cell's comparison is open while its interval (on the first compared score) contains zero but could still
exclude it: if, with MAX seeds and the variances estimated so far, the interval would be narrower than the
difference seen, another seed is worth its compute; if not, the cell stops as "too small to resolve". With
`--precision W` a cell also goes on while its interval is wider than W, and stops once it is narrower. The
baseline gets every seed any cell gets (runs are paired by seed).

Looking again after every added seed and stopping as soon as an interval excludes zero would call a non-difference
real more often than the nominal 5%; so every look uses the stricter level `intervals.sequential_confidence` gives
(a Pocock boundary for MIN..MAX looks), and the report states it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import PipelineError
from pipeline.sweeps.intervals import MIN_PAIRED_SEEDS, Difference, sequential_confidence
from pipeline.sweeps.results import PairedDifference

DEFAULT_AUTO = (3, 8)


@dataclass(frozen=True)
class SeedPlan:
    """`fixed` seeds for every cell, or (`auto`) between `first` and `most` seeds per cell (seeds 0, 1, 2...)."""

    fixed: tuple[int, ...] | None = None
    first: int = DEFAULT_AUTO[0]
    most: int = DEFAULT_AUTO[1]

    @property
    def auto(self) -> bool:
        return self.fixed is None

    def initial(self) -> list[int]:
        return list(self.fixed) if self.fixed is not None else list(range(self.first))

    def every(self) -> list[int]:
        """Every seed a cell may get (what the plan validates)."""
        return list(self.fixed) if self.fixed is not None else list(range(self.most))

    def confidence(self, nominal: float) -> float:
        """The level each look uses: the nominal one for fixed seeds, a stricter one for repeated looks."""
        return nominal if self.fixed is not None else sequential_confidence(self.first, self.most, nominal)

    def describe(self) -> str:
        return ",".join(map(str, self.fixed)) if self.fixed is not None else f"auto:{self.first}:{self.most}"


def parse_seeds(text: str) -> SeedPlan:
    """`0,1,2` (fixed seeds), `auto` or `auto:MIN:MAX`."""
    if text.strip().startswith("auto"):
        parts = text.strip().split(":")
        if parts[0] != "auto":  # `auto,3,5`: bounds given as a seed list is
            raise PipelineError(f"--seeds '{text}': auto takes its bounds after colons, auto:MIN:MAX (e.g. auto:3:8)")
        try:
            first, most = (
                (int(parts[1]), int(parts[2])) if len(parts) == 3 else DEFAULT_AUTO if len(parts) == 1 else (None, None)
            )
        except ValueError:
            first = most = None
        if first is None or most is None:
            raise PipelineError(f"--seeds '{text}' must be auto or auto:MIN:MAX (e.g. auto:3:8)")
        if not MIN_PAIRED_SEEDS <= first <= most <= 1000:
            raise PipelineError(
                f"--seeds '{text}': need {MIN_PAIRED_SEEDS} <= MIN <= MAX <= 1000 (an interval needs "
                f"{MIN_PAIRED_SEEDS} seeds)"
            )
        return SeedPlan(first=first, most=most)
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise PipelineError(
            f"--seeds '{text}' must be integers separated by commas (e.g. 0,1,2), or auto[:MIN:MAX]"
        ) from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise PipelineError(f"--seeds '{text}' must name at least one seed, each once")
    return SeedPlan(fixed=tuple(seeds))


def why_stop(
    entry: PairedDifference | None, seeds: int, plan: SeedPlan, precision: float | None, confidence: float
) -> str | None:
    """Why a cell needs no more seeds (its comparison `entry` for the deciding score, over `seeds` paired seeds),
    or None when another seed is worth running."""
    if seeds >= plan.most:
        return f"reached the most seeds ({plan.most})"
    if entry is None or entry.seed_difference_mean is None:
        return "no comparison with the baseline (its runs did not finish)"
    if entry.ci_low is None or entry.ci_high is None:
        return None
    width = entry.ci_high - entry.ci_low
    if precision is not None:
        return f"interval width {width:.4f} <= precision {precision}" if width <= precision else None
    if entry.excludes_zero:
        return "decided: the interval excludes zero"
    difference = Difference(
        entry.seed_differences, entry.seed_variance, entry.example_variance, (0.0, 0.0), entry.examples
    )
    if difference.half_width(plan.most, confidence) >= abs(difference.mean):
        return f"open, too small to resolve: with {plan.most} seeds the interval would still contain zero"
    return None
