"""Bad-input survey: every case of `tests/bad_input_cases.py`, run as a fresh `python -m pipeline` process against a
checkout, and the outcomes counted.

Outcomes: `one line, as expected` (exit 2, one `error:` line holding the expected text, no traceback, nothing
written), `one line, other text`, `traceback`, `accepted` (exit 0: trained or evaluated a bad input without a word),
`wrote output` (exit 2, but a run folder was left behind), `other exit N`, `hung over N s` (killed at `--timeout`).

Usage:  .venv/bin/python benchmarks/bad_inputs.py [--checkout PATH] [--third-round | --fourth-round] [--out FILE]
        (--checkout: the repository whose `pipeline` package to run, e.g. a worktree of an older commit;
        --third-round: that round's groups: sweeps, locks, disks, trust, sizes, degenerate data;
        --fourth-round: rotary policies, GGUF files, added tokens, locks, seeds, comparisons, targets)
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from bad_input_cases import CASES, THIRD_ROUND, Workspace
from bad_input_policies_tokens_sweeps import POLICIES_TOKENS_SWEEPS
from helpers import save_tiny_bert


def outcome(result: subprocess.CompletedProcess, expected: str, wrote: bool) -> str:
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    if "Traceback (most recent call last)" in result.stderr:
        return "traceback"
    if result.returncode == 0:
        return "accepted"
    if result.returncode != 2:
        return f"other exit {result.returncode}"
    if wrote:
        return "wrote output"
    if len(errors) == 1 and expected in errors[0]:
        return "one line, as expected"
    return "one line, other text"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkout", type=Path, default=REPO)
    parser.add_argument("--third-round", action="store_true")
    parser.add_argument("--fourth-round", action="store_true")
    parser.add_argument("--timeout", type=int, default=120, help="seconds a case may take before it counts as hung")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results-bad-inputs.json")
    args = parser.parse_args()
    cases = (
        THIRD_ROUND
        if args.third_round
        else POLICIES_TOKENS_SWEEPS
        if args.fourth_round
        else CASES + POLICIES_TOKENS_SWEEPS
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(args.checkout.resolve()),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
    }
    scratch = Path(tempfile.mkdtemp(prefix="embedlab-bad-inputs-"))
    bert = save_tiny_bert(scratch / "bert")
    rows, started = [], time.perf_counter()
    for number, case in enumerate(cases):
        folder = scratch / f"case-{number:03d}"
        folder.mkdir()
        workspace = Workspace(folder, bert)
        argv, expected = case.build(workspace)
        try:
            result = subprocess.run(
                [sys.executable, "-m", "pipeline", *argv],
                cwd=workspace.root,
                env=env,
                capture_output=True,
                text=True,
                timeout=args.timeout,
            )
        except subprocess.TimeoutExpired:  # e.g. waiting forever on a Ray address where nothing listens
            result = subprocess.CompletedProcess(argv, None, "", f"(killed after {args.timeout} s)")
        row = {
            "case": case.name,
            "kind": case.kind,
            "outcome": f"hung over {args.timeout} s"
            if result.returncode is None
            else outcome(result, expected, workspace.run.exists()),
            "exit_code": result.returncode,
            "last_line": (result.stderr.strip().splitlines() or [""])[-1][:300],
        }
        rows.append(row)
        print(f"{row['outcome']:<24} {case.kind:<11} {case.name}", flush=True)
    counts = collections.Counter(row["outcome"] for row in rows)
    by_kind = {
        kind: dict(collections.Counter(row["outcome"] for row in rows if row["kind"] == kind))
        for kind in dict.fromkeys(c.kind for c in cases)
    }
    print(json.dumps(counts, indent=2))
    result = {
        "checkout": str(args.checkout.resolve()),
        "cases": len(rows),
        "outcomes": dict(counts),
        "by_kind": by_kind,
        "wall_time_s": round(time.perf_counter() - started, 1),
        "rows": rows,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
