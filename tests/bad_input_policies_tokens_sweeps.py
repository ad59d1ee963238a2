"""Bad inputs of rotary policies and GGUF files, added tokens, locks, adaptive seeds, comparisons and regression
targets (the fourth round of reliability work). Each ends as one `error:` line with exit code 2 and nothing
written, as the cases of `bad_input_cases.py` do; run by `integration/test_bad_input.py` and by
`benchmarks/bad_inputs.py --groups fourth-round`."""

from __future__ import annotations

import json
import os
from pathlib import Path

from bad_input_cases import REGRESSION, Case, Workspace, override, rows, sweep_command
from helpers import recipe_dict, save_tiny_decoder, write_recipe


def tiny_llama(ws: Workspace) -> Path:
    """A 2-layer Llama with 8-dimensional heads (16 wide, 2 heads) and the GPT-2 tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=50257, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                         bos_token_id=50256, eos_token_id=50256, tie_word_embeddings=True)  # fmt: skip
    return save_tiny_decoder(ws.root / "llama", LlamaForCausalLM, config)


def llama_train(ws: Workspace, positions: dict) -> list[str]:
    raw = recipe_dict(tiny_llama(ws), ws.data, ws.run, family="llama", layers={"positions": positions})
    return ["train", str(write_recipe(ws.root / "llama.yaml", raw))]


def rope(**settings: object) -> dict:
    return {"policy": "replace", "init": "rope", **settings}


def add_tokens(ws: Workspace, section: dict) -> list[str]:
    return override(f"model.add_tokens={json.dumps(section)}")(ws)


def finished_looking_run(ws: Workspace, name: str, split: str) -> str:
    """A run folder as compare reads it (recipe, metrics, predictions), evaluated on `split` only."""
    folder = ws.root / name
    folder.mkdir()
    (folder / "recipe.yaml").write_text(Path(ws.recipe(f"{name}.yaml")).read_text())
    (folder / "metrics.json").write_text(json.dumps({split: {"accuracy": 0.5}, "train": {"steps": 4}}))
    (folder / f"predictions-{split}.jsonl").write_text(rows({"index": 0, "gold": "pos", "predicted": "neg"}))
    return str(folder)


def sweep_folder_with_linked_lock(ws: Workspace) -> list[str]:
    """A sweep folder of ours whose `.lock` links to a file of the user's outside it."""
    output = ws.root / "s"
    output.mkdir()
    command = sweep_command(ws, "--output", str(output), "--no-baseline")
    plan = {"recipe": command[1], "overrides": [], "grid": [], "seeds": "0", "runs": []}
    (output / "sweep.json").write_text(json.dumps(plan))
    (ws.root / "notes.txt").write_text("my notes\n")
    os.symlink("../notes.txt", output / ".lock")
    return command


DIGITS = rows(*[{"text": "12 34", "label": "pos"}, {"text": "56 78", "label": "neg"}] * 8)


def policies_tokens_sweeps_cases() -> list[Case]:
    lm = ["task={type: language-modeling, objective: causal}", "model.family=gpt2", "model.name_or_path=null",
          "model.config={n_layer: 1, n_embd: 16, n_head: 2}", "model.tokenizer=pkg://pipeline/assets/gpt2-tokenizer",
          "eval.metrics=null", "model.max_length=32"]  # fmt: skip
    return [
        Case("longrope factors of the wrong length", "model",
             lambda ws: (llama_train(ws, rope(scaling={"type": "longrope", "factor": 2.0, "short_factor": [1.0],
                                                       "long_factor": [1.0, 2.0]})),
                         "1 factors for 4 rotated frequencies")),
        Case("partial rotation of no dimension", "model",
             lambda ws: (llama_train(ws, rope(partial=0.01)), "rotates 0 of the 8 dimensions")),
        Case("rotary base below one", "recipe",
             lambda ws: (llama_train(ws, rope(theta=1e-300)), "theta: Input should be greater than 1")),
        Case("gguf file that does not exist", "model",
             lambda ws: (override("model.name_or_path=models/missing.gguf", "model.family=llama")(ws),
                         "'models/missing.gguf' does not exist")),  # (an org/name shape: not a Hub id all the same)
        Case("add_tokens file of binary bytes", "recipe",
             lambda ws: (add_tokens(ws, {"file": ws.file("tokens.txt", bytes(range(128, 256)) * 4)}),
                         "cannot read")),
        Case("add_tokens file that is empty", "recipe",
             lambda ws: (add_tokens(ws, {"file": ws.file("tokens.txt", "\n \n")}), "holds no token")),
        Case("add_tokens from data without words", "data",
             lambda ws: ([*ws.train_with_file("digits.jsonl", DIGITS), "model.add_tokens={from_data: 5}"],
                         "has no word of three letters")),
        Case("describe names a token not added", "recipe",
             lambda ws: (add_tokens(ws, {"tokens": ["photosynthesis"], "init": "compose",
                                         "describe": {"photosynthesys": "light"}}), "describe names 'photosynthesys'")),
        Case("auto seeds with commas", "sweep",
             lambda ws: (sweep_command(ws, "--output", str(ws.root / "s"), "--seeds", "auto,3,5"),
                         "auto takes its bounds after colons")),
        Case("sweep folder whose lock links outside", "sweep",
             lambda ws: (sweep_folder_with_linked_lock(ws), ".lock' is a symbolic link")),
        Case("compare runs evaluated on different splits", "sweep",
             lambda ws: (["compare", finished_looking_run(ws, "a", "validation"), finished_looking_run(ws, "b", "test"),
                          "--output", str(ws.root / "cmp"), "--no-baseline"], "share no evaluated split")),
        Case("regression target whose square overflows", "data",
             lambda ws: (ws.train_with_file("huge.csv", "text,label\n" + "good,1.0\nbad,1e30\n" * 8, **REGRESSION),
                         "within ±1.8e19")),
        Case("eval length past the split's tokens", "data",
             lambda ws: (override(*lm, "task.lengths=[1000]")(ws), "lengths up to")),
    ]  # fmt: skip


POLICIES_TOKENS_SWEEPS = policies_tokens_sweeps_cases()
