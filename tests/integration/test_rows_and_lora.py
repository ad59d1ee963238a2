"""New tokens, training only some rows, tied or untied LM heads, and LoRA on the body, on tiny checkpoints: the rows
outside `rows: new` come out bit-identical; a kept tie saves one table, an untied head its own; new rows start as
their `init` says; a LoRA run's adapter (on the original model) and its merged model give the same logits; resume
mid-run is bit-identical with LoRA and rows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from helpers import (
    build,
    make_examples,
    recipe_dict,
    reset_accelerate_state,
    save_tiny_bert,
    save_tiny_decoder,
    templated_sentences,
    train_fresh,
    write_jsonl,
)
from safetensors.torch import load_file
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
)

NEW_WORDS = ["zorblax", "quenfid"]  # split into several pieces by the GPT-2 BPE, unknown to the tiny BERT


def decoder(tmp_path_factory, kind: str) -> Path:
    folder = tmp_path_factory.mktemp(kind)
    if kind == "gpt2":
        return save_tiny_decoder(folder, GPT2LMHeadModel, GPT2Config(n_embd=16, n_layer=2, n_head=2, n_positions=64))
    shape = {"vocab_size": 50257, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2}
    config = LlamaConfig(
        **shape, num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
        tie_word_embeddings=kind == "llama-tied", bos_token_id=50256, eos_token_id=50256,
    )  # fmt: skip
    return save_tiny_decoder(folder, LlamaForCausalLM, config)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    return {kind: decoder(tmp_path_factory, kind) for kind in ("gpt2", "llama-tied", "llama-untied")}


def lm_data(tmp_path: Path) -> dict[str, str]:
    """Sentences where the new words stand in for nouns (so their rows get gradients)."""
    lines = [line.replace("cat", NEW_WORDS[0]).replace("dog", NEW_WORDS[1]) for line in templated_sentences(120, 0)]
    return {
        split: write_jsonl(tmp_path / f"{split}.jsonl", [{"text": line} for line in part])
        for split, part in (("train", lines[:96]), ("validation", lines[96:]))
    }


def lm_recipe(tmp_path: Path, checkpoint: Path, family: str, **layers) -> dict:
    recipe = recipe_dict(checkpoint, lm_data(tmp_path), tmp_path / "run", family=family)
    recipe["task"] = {"type": "language-modeling", "objective": "causal"}
    recipe["eval"] = {"splits": ["validation"], "batch_size": 8}
    recipe["model"]["add_tokens"] = {"tokens": NEW_WORDS, "init": "compose"}
    recipe["train"] |= {"max_steps": 6, "lr": 1e-2}
    recipe["layers"] = layers
    return recipe


def saved_tables(run: Path) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """The saved model's token table, its LM head, and whether they are one tensor once loaded."""
    model = AutoModelForCausalLM.from_pretrained(run / "model")
    table, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    return table.detach(), head.detach(), table is head


def pretrained_table(checkpoint: Path) -> torch.Tensor:
    return AutoModelForCausalLM.from_pretrained(checkpoint).get_input_embeddings().weight.detach()


SLOW = pytest.mark.slow  # the same check on another family or case: the full suite (CI) runs it


@pytest.mark.parametrize("kind", ["gpt2", pytest.param("llama-tied", marks=SLOW), "llama-untied"])
def test_rows_new_trains_only_the_added_rows_of_a_decoder(tmp_path, checkpoints, kind):
    family = "gpt2" if kind == "gpt2" else "llama"
    rows = {"token_embeddings": {"policy": "finetune", "rows": "new"}}
    initial = build(lm_recipe(tmp_path, checkpoints[kind], family, **rows)).model.get_input_embeddings().merged()
    run = train_fresh(lm_recipe(tmp_path, checkpoints[kind], family, **rows))
    table, _, tied = saved_tables(run)
    old = pretrained_table(checkpoints[kind])
    assert table.shape[0] == old.shape[0] + 2
    assert torch.equal(table[: old.shape[0]], old)  # every pretrained row bit-identical
    assert not torch.equal(table[old.shape[0] :], initial[old.shape[0] :])  # the new rows trained
    assert tied == (kind != "llama-untied")
    report = json.loads((run / "input_layers.json").read_text())
    assert report["rows"]["trained"] == 2 and [row["token"] for row in report["added_tokens"]["added"]] == NEW_WORDS
    parameters = (run / "parameters.tsv").read_text()
    optimizer_rows = [line for line in parameters.splitlines() if "\ttrainable\t" in line and "embed" in line]
    assert [line.split("\t")[2] for line in optimizer_rows if ".trained" in line] == ["2x16"]
    if kind != "llama-untied":
        assert "\ttied to " in parameters


def test_rows_new_trains_only_the_added_rows_of_bert(tmp_path):
    bert = save_tiny_bert(tmp_path / "bert")
    examples = [{**row, "text": f"{row['text']} {NEW_WORDS[i % 2]}"} for i, row in enumerate(make_examples(48, 0))]
    data = {"train": write_jsonl(tmp_path / "train.jsonl", examples),
            "validation": write_jsonl(tmp_path / "validation.jsonl", make_examples(16, 1))}  # fmt: skip
    recipe = recipe_dict(bert, data, tmp_path / "run", model={"add_tokens": {"tokens": NEW_WORDS, "init": "mean"}},
                         layers={"token_embeddings": {"policy": "finetune", "rows": "new"}})  # fmt: skip
    run = train_fresh(recipe)
    saved = AutoModelForSequenceClassification.from_pretrained(run / "model").get_input_embeddings().weight
    old = load_file(bert / "model.safetensors")["embeddings.word_embeddings.weight"]
    assert saved.shape[0] == old.shape[0] + 2 and torch.equal(saved[: old.shape[0]].detach(), old)
    assert AutoTokenizer.from_pretrained(run / "model").tokenize(NEW_WORDS[0]) == [NEW_WORDS[0]]


@pytest.mark.parametrize("case", ["keep", "untie", pytest.param("untie-frozen-head", marks=SLOW)])
def test_the_saved_head_equals_the_table_only_while_tied(tmp_path, checkpoints, case):
    layers = {"token_embeddings": {"policy": "finetune", "tie": "keep" if case == "keep" else "untie"}}
    if case == "untie-frozen-head":
        layers["head"] = {"policy": "freeze"}
    run = train_fresh(lm_recipe(tmp_path, checkpoints["gpt2"], "gpt2", **layers))
    table, head, tied = saved_tables(run)
    old = pretrained_table(checkpoints["gpt2"])
    assert torch.equal(table, head) == (case == "keep") and tied == (case == "keep")
    assert not torch.equal(table[: old.shape[0]], old)  # the table trained in every case
    if case == "untie-frozen-head":
        assert torch.equal(head[: old.shape[0]], old)  # the head kept the pretrained rows it was copied from
    sources = json.loads((run / "input_layers.json").read_text())["sources"]["output_embeddings"]
    assert sources.startswith("tied") == (case == "keep") and ("frozen with the head" in sources) == (
        case == "untie-frozen-head"
    )


def test_new_rows_start_as_their_init_says(tmp_path, checkpoints):
    old = pretrained_table(checkpoints["gpt2"])
    tokenizer = AutoTokenizer.from_pretrained(checkpoints["gpt2"])

    def new_rows(init, **extra) -> torch.Tensor:
        recipe = lm_recipe(tmp_path, checkpoints["gpt2"], "gpt2")
        recipe["model"]["add_tokens"] = {"tokens": NEW_WORDS, "init": init, **extra}
        return build(recipe).model.get_input_embeddings().weight.detach()[old.shape[0] :]

    composed = new_rows("compose", describe={NEW_WORDS[1]: "a small bird"})
    pieces = tokenizer(" " + NEW_WORDS[0], add_special_tokens=False)["input_ids"]
    assert len(pieces) > 1 and torch.allclose(composed[0], old[pieces].mean(dim=0))
    described = tokenizer(" a small bird", add_special_tokens=False)["input_ids"]
    assert torch.allclose(composed[1], old[described].mean(dim=0))
    copied = new_rows({"copy": "Ġhorse"})
    assert torch.equal(copied[0], old[tokenizer.convert_tokens_to_ids("Ġhorse")])
    mean = new_rows("mean")
    assert torch.allclose(mean, old.mean(dim=0).expand_as(mean), atol=1e-3)  # covariance noise × 1e-9: tiny
    random = new_rows("random")
    assert not torch.allclose(random[0], random[1]) and abs(float(random.std()) - float(old.std())) < 0.5 * float(
        old.std()
    )


@pytest.mark.parametrize("kind", ["gpt2", pytest.param("llama-untied", marks=SLOW)])
def test_a_lora_run_saves_an_adapter_and_a_merged_model_with_the_same_logits(tmp_path, checkpoints, kind):
    from peft import PeftModel

    family = "gpt2" if kind == "gpt2" else "llama"
    layers = {"token_embeddings": {"policy": "finetune", "rows": "new"}, "encoder": {"policy": "lora", "r": 4}}
    run = train_fresh(lm_recipe(tmp_path, checkpoints[kind], family, **layers))
    merged = AutoModelForCausalLM.from_pretrained(run / "model").eval()
    base = AutoModelForCausalLM.from_pretrained(checkpoints[kind])
    base.resize_token_embeddings(merged.get_input_embeddings().num_embeddings)
    # What trained beside the adapter: the rows of the new tokens, the position table (GPT-2), an untied head.
    beside = load_file(run / "model" / "adapter" / "trained_beside.safetensors")
    [table] = [key.removesuffix(".rows") for key in beside if key.endswith(".weight.rows")]
    with torch.no_grad():
        base.get_input_embeddings().weight[beside.pop(f"{table}.rows")] = beside.pop(f"{table}.trained")
    assert not base.load_state_dict(beside, strict=False).unexpected_keys
    assert ("transformer.wpe.weight" in beside) == (kind == "gpt2") and ("lm_head.weight" in beside) == (
        kind == "llama-untied"
    )
    ids = AutoTokenizer.from_pretrained(run / "model")(f"the {NEW_WORDS[0]} sat near the dog .", return_tensors="pt")
    with torch.no_grad():
        without_adapter = base.eval()(**ids).logits
        adapted = PeftModel.from_pretrained(base, run / "model" / "adapter").eval()
        assert torch.allclose(adapted(**ids).logits, merged(**ids).logits, atol=1e-5)
        assert not torch.allclose(without_adapter, merged(**ids).logits, atol=1e-3)  # the adapter did change them
    report = json.loads((run / "input_layers.json").read_text())["lora"]
    assert report["adapted_layers"] == (8 if kind == "gpt2" else 14) and report["r"] == 4


@pytest.mark.slow
def test_resume_mid_run_is_bit_identical_with_lora_and_rows(tmp_path, checkpoints):
    from pipeline.experiment.recipes import validate_recipe
    from pipeline.training.run import train

    layers = {"token_embeddings": {"policy": "finetune", "rows": "new"}, "encoder": {"policy": "lora", "r": 4}}
    recipe = lm_recipe(tmp_path, checkpoints["llama-tied"], "llama", **layers)
    recipe["train"] |= {"save_every_steps": 3, "keep_checkpoints": 5}
    run = train_fresh(recipe)
    finished = {name: (run / name).read_bytes() for name in ("metrics.json", "log.jsonl")}
    weights = load_file(run / "model" / "model.safetensors")
    # Back to the state after step 3, as if the run had been stopped there.
    for entry in ("metrics.json", "model", "checkpoints/step-0000006"):
        shutil.rmtree(run / entry) if (run / entry).is_dir() else (run / entry).unlink()
    reset_accelerate_state()
    train(validate_recipe(recipe), resume=True)
    resumed = load_file(run / "model" / "model.safetensors")
    assert weights.keys() == resumed.keys() and all(torch.equal(weights[k], resumed[k]) for k in weights)
    assert (
        json.loads((run / "metrics.json").read_bytes())["validation"]
        == json.loads(finished["metrics.json"])["validation"]
    )
    adapter = load_file(run / "model" / "adapter" / "adapter_model.safetensors")
    assert adapter and all(".lora_" in key for key in adapter)
