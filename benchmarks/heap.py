"""Where the resident memory of a training run goes: live allocations against memory the C allocator keeps.

`benchmarks/speed.py` found `pipeline train` holding about 350 MiB more peak RSS than the Trainer on the BBC
articles at 128 tokens. This runs both (`pipeline train` with its defaults, the Trainer with default sampling; the
same work as speed.py, 16 steps, alternated, fresh processes) with a thread sampling glibc's `mallinfo2` every
20 ms: the peak of memory in use (live allocations, heap and mmap), the peak the allocator held, and how much of the
heap was free (kept, not returned to the system) when RSS peaked. Linux with glibc only.

Usage:  .venv/bin/python benchmarks/heap.py [--repeats 2] [--steps 16]
Needs the `examples` extra.
"""

from __future__ import annotations

import argparse
import atexit
import ctypes
import json
import os
import runpy
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPORT = "EMBEDLAB_HEAP_REPORT"  # the file a watched process writes its figures to


class MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def watch(argv: list[str]) -> None:
    """Run `-m MODULE ARGS` or `SCRIPT ARGS` in this process with the sampler running; figures go to
    $EMBEDLAB_HEAP_REPORT."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    page = os.sysconf("SC_PAGE_SIZE")
    peak = {"in_use_mb": 0.0, "held_mb": 0.0, "rss_mb": 0.0, "free_in_heap_at_rss_peak_mb": 0.0}

    def sample() -> None:
        while True:
            info, rss = libc.mallinfo2(), int(Path("/proc/self/statm").read_text().split()[1]) * page / 2**20
            peak["in_use_mb"] = max(peak["in_use_mb"], (info.uordblks + info.hblkhd) / 2**20)
            peak["held_mb"] = max(peak["held_mb"], (info.arena + info.hblkhd) / 2**20)
            if rss > peak["rss_mb"]:
                peak["rss_mb"], peak["free_in_heap_at_rss_peak_mb"] = rss, info.fordblks / 2**20
            time.sleep(0.02)

    atexit.register(lambda: Path(os.environ[REPORT]).write_text(json.dumps({k: round(v, 1) for k, v in peak.items()})))
    threading.Thread(target=sample, daemon=True).start()
    if argv[0] == "-m":
        sys.argv = [argv[1], *argv[2:]]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = argv
        runpy.run_path(argv[0], run_name="__main__")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--out", type=Path, default=HERE / "results-heap.json")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    import speed

    speed.PYTHON = [sys.executable, str(Path(__file__).resolve()), "--watch"]
    scratch = Path(tempfile.mkdtemp(prefix="embedlab-heap-"))
    articles = speed.bbc_rows(0)
    data = {
        "train": speed.write_jsonl(scratch / "bbc-train.jsonl", articles[:1600]),
        "validation": speed.write_jsonl(scratch / "bbc-validation.jsonl", articles[1600:1900]),
    }
    configs = {
        "pipeline train": lambda: speed.pipeline_run(scratch, "pipeline", data, 128, args.steps),
        "Trainer (default)": lambda: speed.trainer_run(data["train"], 128, args.steps, grouped=False, bf16=False),
    }
    runs: dict[str, list[dict]] = {name: [] for name in configs}
    for repeat in range(args.repeats):
        for name, run in configs.items():
            os.environ[REPORT] = str(scratch / "heap.json")
            samples_per_second = run()["samples_per_second"]
            runs[name].append(
                {**json.loads((scratch / "heap.json").read_text()), "samples_per_second": round(samples_per_second, 2)}
            )
            print(f"#{repeat} {name}: {runs[name][-1]}", flush=True)
    result = {
        "steps": args.steps,
        "repeats": args.repeats,
        "max_length": 128,
        "runs": runs,
        "medians": {
            name: {key: statistics.median(r[key] for r in results) for key in results[0]}
            for name, results in runs.items()
        },
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["medians"], indent=2))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--watch"]:
        watch(sys.argv[2:])
    else:
        main()
