"""A snapshot of what surgery does, for checking that a refactor of `pipeline.surgery` changes no behaviour.

For every shipped recipe (data capped, so it builds in seconds; a recipe that needs the network is recorded as its
error line) and for every layer-policy variant on tiny models built here, it records the input-layer report, every
parameter's shape, whether it trains and a digest of its values; for the tiny variants also the scores and final
weights of a 3-step training run. Run it on two trees and diff the JSON:

    python scripts/surgery_snapshot.py before.json            # in the old tree (PYTHONPATH=old tree)
    python scripts/surgery_snapshot.py after.json
    diff before.json after.json
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "tests")]

import torch  # noqa: E402
from helpers import (  # noqa: E402
    make_examples,
    recipe_dict,
    reset_accelerate_state,
    save_tiny_bert,
    save_tiny_decoder,
    save_tiny_llama,
    write_glove,
    write_jsonl,
)

from pipeline.errors import PipelineError  # noqa: E402


def digest(tensor: torch.Tensor) -> str:
    return hashlib.sha256(tensor.detach().float().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


def model_facts(model: torch.nn.Module) -> dict[str, Any]:
    return {name: [list(p.shape), p.requires_grad, digest(p)] for name, p in model.named_parameters()} | {
        "modules": [type(model.get_input_embeddings()).__name__]
    }


def built(raw: dict[str, Any] | Path, overrides: list[str]) -> dict[str, Any]:
    """The input-layer report and parameters after surgery and policies (or the error line)."""
    from pipeline.experiment.build import build_experiment
    from pipeline.experiment.recipes import load_recipe, validate_recipe

    reset_accelerate_state()
    torch.manual_seed(0)
    try:
        recipe = load_recipe(raw, overrides) if isinstance(raw, Path) else validate_recipe(raw)
        experiment = build_experiment(recipe)
    except (PipelineError, OSError, ValueError) as error:
        return {"error": str(error).splitlines()[0].replace(str(REPO), "REPO")}
    typed = experiment.input_report
    report = json.loads(json.dumps(typed.to_json() if hasattr(typed, "to_json") else typed, default=str))
    schedule = {f"{k[0]}{k[1]}": len(v) for k, v in experiment.unfreeze_schedule.items()}
    return {"report": report, "schedule": schedule, "parameters": model_facts(experiment.model)}


def trained(raw: dict[str, Any]) -> dict[str, Any]:
    """Scores and final weights of a short run."""
    from pipeline.experiment.recipes import validate_recipe
    from pipeline.training.run import train

    reset_accelerate_state()
    run = train(validate_recipe(raw))
    metrics = json.loads((run / "metrics.json").read_text())
    scores = {split: values for split, values in metrics.items() if split != "train"}
    weights = sorted((run / "model").glob("*.safetensors"))
    return {"scores": scores, "weights": [hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in weights]}


def tiny_variants(work: Path) -> dict[str, dict[str, Any]]:
    """Raw recipes on tiny models, one per layer-policy variant (and a few settings of each)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    bert = save_tiny_bert(work / "bert")
    gpt2 = save_tiny_decoder(
        work / "gpt2", GPT2LMHeadModel, GPT2Config(vocab_size=50257, n_embd=32, n_layer=2, n_head=2, n_positions=64)
    )
    llama = save_tiny_llama(work / "llama")
    files = {
        split: write_jsonl(work / f"{split}.jsonl", make_examples(n, seed))
        for split, n, seed in (("train", 48, 0), ("validation", 16, 1))
    }
    glove = work / "glove.txt"
    write_glove(glove, ["the", "movie", "good", "bad", "plot", "happy"], dim=8)
    tables = {
        "freeze": "freeze",
        "finetune": "finetune",
        "random": {"policy": "replace", "init": "random", "std": 0.05},
        "random-then-freeze": {"policy": "replace", "init": "random", "then": "freeze", "unfreeze_at_step": 2},
        "per-position": {"policy": "replace", "init": "random", "per_position": True},
        "vectors-project": {"policy": "replace", "init": "vectors", "vectors": str(glove)},
        "vectors-pad-mean": {
            "policy": "replace",
            "init": "vectors",
            "vectors": str(glove),
            "width": "pad",
            "fallback": "mean",
        },
        "vectors-trained": {
            "policy": "replace",
            "init": "vectors",
            "train": {"method": "skipgram", "dim": 8, "min_count": 1},
        },
        "freeze-unfreeze": {"policy": "freeze", "unfreeze_at_epoch": 1},
    }
    positions = {
        "freeze": "freeze",
        "sinusoidal": {"policy": "replace", "init": "sinusoidal"},
        "learned-concat": {"policy": "replace", "init": "learned", "combine": "concat", "max_positions": 40},
        "extend": {"policy": "replace", "init": "extend", "max_positions": 96, "extend_mode": "interpolate"},
        "none": {"policy": "replace", "init": "none"},
    }
    raws: dict[str, dict[str, Any]] = {}
    for name, table in tables.items():
        raws[f"bert-table-{name}"] = recipe_dict(
            bert, files, work / f"bert-table-{name}", layers={"token_embeddings": table}
        )
    for name, policy in positions.items():
        raws[f"bert-positions-{name}"] = recipe_dict(
            bert, files, work / f"bert-positions-{name}", layers={"positions": policy}
        )
    raws["bert-encoder-bottom"] = recipe_dict(
        bert,
        files,
        work / "bert-bottom",
        layers={"encoder": {"policy": "finetune", "freeze_bottom": 1, "layerwise_lr_decay": 0.8}, "head": "freeze"},
    )
    raws["bert-encoder-lora"] = recipe_dict(bert, files, work / "bert-lora", layers={"encoder": {"policy": "lora"}})
    raws["bert-encoder-freeze"] = recipe_dict(bert, files, work / "bert-efreeze", layers={"encoder": "freeze"})
    raws["bert-rows-new"] = recipe_dict(
        bert,
        files,
        work / "bert-rows",
        model={"add_tokens": {"tokens": ["zebra", "quux"], "init": "compose"}},
        layers={"token_embeddings": {"rows": "new"}},
    )
    raws["bert-add-random"] = recipe_dict(
        bert, files, work / "bert-add", model={"add_tokens": {"tokens": ["zebra"], "init": "random"}}
    )
    for method in ("mean", "focus", "omp"):
        raws[f"bert-transfer-{method}"] = recipe_dict(
            bert,
            files,
            work / f"bert-transfer-{method}",
            model={"tokenizer": {"build": "wordpiece", "vocab_size": 120}},
            layers={"token_embeddings": {"policy": "replace", "init": "transfer", "transfer": method}},
        )
    raws["bert-transfer-weighted"] = recipe_dict(
        bert,
        files,
        work / "bert-transfer-weighted",
        model={"tokenizer": {"build": "wordpiece", "vocab_size": 120}},
        layers={
            "token_embeddings": {"policy": "replace", "init": "transfer", "transfer": "weighted", "vectors": str(glove)}
        },
    )
    lm = {"task": {"type": "language-modeling", "objective": "causal"}, "eval": {"metrics": None}}
    raws["gpt2-lm-untie"] = recipe_dict(
        gpt2,
        files,
        work / "gpt2-untie",
        family="gpt2",
        **lm,
        layers={"token_embeddings": {"policy": "finetune", "tie": "untie"}},
    )
    raws["gpt2-lm-vectors"] = recipe_dict(
        gpt2,
        files,
        work / "gpt2-lm-vectors",
        family="gpt2",
        **lm,
        layers={
            "token_embeddings": {"policy": "replace", "init": "vectors", "vectors": str(glove), "width": "pad"},
            "head": "freeze",
        },
    )
    raws["gpt2-sinusoidal"] = recipe_dict(
        gpt2, files, work / "gpt2-sin", family="gpt2", layers={"positions": {"policy": "replace", "init": "sinusoidal"}}
    )
    rotary = {
        "rope-theta": {"policy": "replace", "init": "rope", "theta": 5e4},
        "rope-yarn": {"policy": "replace", "init": "rope", "scaling": {"type": "yarn", "factor": 2.0}},
        "rope-partial": {"policy": "replace", "init": "rope", "partial": 0.5},
        "nope-layer": {"policy": "replace", "init": "none", "layers": [1]},
        "nope": {"policy": "replace", "init": "none"},
    }
    for name, policy in rotary.items():
        raws[f"llama-{name}"] = recipe_dict(
            llama, files, work / f"llama-{name}", family="llama", layers={"positions": policy}
        )
    raws["llama-random-table"] = recipe_dict(
        llama,
        files,
        work / "llama-random",
        family="llama",
        layers={"token_embeddings": {"policy": "replace", "init": "random"}},
    )
    for raw in raws.values():
        raw["train"]["max_steps"] = 3
    return raws


def main() -> None:
    out = Path(sys.argv[1])
    torch.set_num_threads(1)
    snapshot: dict[str, Any] = {}
    caps = ["data.max_train_samples=64", "data.max_eval_samples=16"]
    for path in sorted((REPO / "recipes").rglob("*.yaml")):
        snapshot[str(path.relative_to(REPO))] = built(path, caps)
    with tempfile.TemporaryDirectory() as folder:
        for name, raw in tiny_variants(Path(folder)).items():
            snapshot[name] = built(raw, [])
            if "error" not in snapshot[name]:
                snapshot[name]["trained"] = trained(raw)
    out.write_text(json.dumps(snapshot, indent=1, sort_keys=True, default=str) + "\n")
    print(f"{len(snapshot)} entries, {sum('error' in v for v in snapshot.values())} errors → {out}")


if __name__ == "__main__":
    main()
