"""What `pipeline compare` may put side by side: each run once (the same folder named twice, or a byte copy of a run
folder beside it, counts one seed once, said in one line), and runs of one task type. Runs evaluated on different
data files are compared on the examples they share (records carry their example's identity), said in one line; runs
written before records carried identities pair by position, so for them different files are refused."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.recipe.io import read_yaml

log = logging.getLogger(__name__)


def run_digest(folder: Path) -> str:
    """A digest of what a run produced (its metrics and every prediction file): equal for a byte copy."""
    digest = hashlib.sha256()
    for path in [folder / "metrics.json", *sorted(folder.glob("predictions-*.jsonl"))]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def distinct_runs(folders: list[Path]) -> list[Path]:
    """The folders with each run once: the same folder under two spellings, or a copy of a run folder, is kept
    once, with one warning naming both."""
    kept: dict[str, Path] = {}
    for folder in folders:
        for key in (str(folder.resolve()), run_digest(folder)):
            if key in kept:
                log.warning("%s is the same run as %s: counted once", folder, kept[key])
                break
        else:
            kept[str(folder.resolve())] = kept[run_digest(folder)] = folder
    return list(dict.fromkeys(kept.values()))


def check_comparable(folders: list[Path]) -> None:
    """One task type, and the same data files behind every evaluated split that the runs record; else one line."""
    recipes = {folder: read_yaml((folder / "recipe.yaml").read_text(encoding="utf-8")) for folder in folders}
    types: dict[str, Path] = {}
    for folder, recipe in recipes.items():
        types.setdefault(recipe["task"]["type"], folder)
    if len(types) > 1:
        named = "; ".join(f"{kind} ({folder})" for kind, folder in types.items())
        raise PipelineError(f"the runs are of different task types: {named}; compare each task type on its own")
    first: dict[str, tuple[str, Path]] = {}
    for folder in folders:
        prints_path = folder / "fingerprints.json"
        prints = json.loads(prints_path.read_text()) if prints_path.is_file() else {}
        evaluated = recipes[folder].get("eval", {}).get("splits") or []
        for split in (name for name in evaluated if name in prints):
            seen = first.setdefault(split, (prints[split], folder))
            if seen[0] == prints[split]:
                continue
            if not (carries_identities(folder, split) and carries_identities(seen[1], split)):
                raise PipelineError(
                    f"split '{split}' of {folder} comes from other data than that of {seen[1]}, and their records "
                    "carry no example identities (written by an older version): they cannot be paired; compare runs "
                    "evaluated on the same files"
                )
            log.warning(
                "split '%s' of %s comes from other data than that of %s: compared on the examples they share",
                split, folder, seen[1],
            )  # fmt: skip


def carries_identities(folder: Path, split: str) -> bool:
    """Whether the run's records of `split` name their examples (`example`), so that different files pair on the
    examples they share."""
    path = folder / f"predictions-{split}.jsonl"
    if not path.is_file():
        return False
    with path.open(encoding="utf-8") as lines:
        first = next(lines, "")
    return bool(first.strip()) and json.loads(first).get("example") is not None
