"""Language-model pretraining: block packing, perplexity, tied output layers, and pretrain → fine-tune chains."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import BILSTM_LM, lm_recipe, recipe_dict, templated_sentences, train_fresh
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification

from pipeline.cli import main
from pipeline.errors import PipelineError
from pipeline.experiment.build import build_experiment
from pipeline.experiment.recipes import validate_recipe
from pipeline.training.rescore import evaluate_saved


@pytest.fixture
def text_files(tmp_path) -> dict[str, str]:
    """Plain-text train/validation files, one sentence per line."""
    paths = {}
    for split, count, seed in (("train", 160, 0), ("validation", 24, 1)):
        path = tmp_path / f"{split}.txt"
        path.write_text("".join(line + "\n" for line in templated_sentences(count, seed)))
        paths[split] = str(path)
    return paths


def logged_scores(run_dir: Path) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    return [line for line in lines if "perplexity" in line]


@pytest.mark.slow
@pytest.mark.parametrize("family", ["bilstm", "gpt2"])
def test_perplexity_falls_on_a_tiny_corpus(tmp_path, text_files, family):
    exp = build_experiment(validate_recipe(lm_recipe(tmp_path, text_files, family)))
    untrained, _ = exp.task.evaluate(
        exp.accelerator,
        exp.model,
        exp.accelerator.prepare_data_loader(
            torch.utils.data.DataLoader(exp.data.splits["validation"], batch_size=8, collate_fn=exp.data.collator)
        ),
        exp.metrics,
    )
    run_dir = train_fresh(lm_recipe(tmp_path, text_files, family))
    scores = logged_scores(run_dir)
    assert [s["step"] for s in scores] == [40, 80]
    assert untrained["perplexity"] > scores[0]["perplexity"] > scores[1]["perplexity"]
    assert scores[1]["perplexity"] < 0.3 * len(exp.tokenizer)  # far better than guessing uniformly
    if family == "bilstm":
        assert {"forward_perplexity", "backward_perplexity"} <= set(scores[1])
    final = json.loads((run_dir / "metrics.json").read_text())["validation"]
    assert final["perplexity"] == pytest.approx(math.exp(final["loss"]))


def test_blocks_hold_every_token_once_joined_by_eos(tmp_path, text_files):
    exp = build_experiment(validate_recipe(lm_recipe(tmp_path, text_files)))
    blocks = exp.data.splits["train"]
    assert all(len(ids) <= 16 for ids in blocks["input_ids"]) and blocks["input_ids"] == blocks["labels"]
    stream = [token for ids in blocks["input_ids"] for token in ids]
    texts = Path(text_files["train"]).read_text().splitlines()
    expected = [
        t
        for ids in exp.tokenizer(texts, add_special_tokens=False)["input_ids"]
        for t in [*ids, exp.tokenizer.eos_token_id]
    ]
    assert stream == expected
    chars = [row for rows in blocks["char_ids"] for row in rows]
    assert len(chars) == len(stream) and len(chars[0]) == 10
    assert exp.input_report.data["train"]["tokens"] == len(stream)


def test_evaluation_perplexity_matches_the_models_own_loss(tmp_path, text_files):
    """One block, GPT-2: exp(mean causal cross-entropy) computed by transformers equals our perplexity."""
    recipe = lm_recipe(tmp_path, text_files, "gpt2")
    exp = build_experiment(validate_recipe(recipe))
    block = exp.data.collator([exp.data.splits["validation"][0]])
    scores, records = exp.task.evaluate(exp.accelerator, exp.model, [block], exp.metrics)
    with torch.no_grad():
        loss = exp.model(**block).loss
    assert scores["perplexity"] == pytest.approx(math.exp(loss.item()), rel=1e-5)
    assert records[0].predicted_tokens == len(block["input_ids"][0]) - 1


@pytest.mark.parametrize("family", ["bilstm", "gpt2"])
def test_the_perplexity_per_word_counts_each_word_of_the_text_once(tmp_path, text_files, family):
    """The blocks' words add up to the split's words (once per direction), and word_perplexity is exp(NLL / words):
    the per-token loss scaled by the tokens per word."""
    exp = build_experiment(validate_recipe(lm_recipe(tmp_path, text_files, family)))
    directions = 2 if family == "bilstm" else 1
    words = sum(len(line.split()) for line in Path(text_files["validation"]).read_text().splitlines())
    assert sum(exp.data.splits["validation"]["words"]) == pytest.approx(words * directions)
    assert "words" not in exp.data.splits["train"].column_names  # scoring only
    loader = [exp.data.collator(list(exp.data.splits["validation"]))]
    scores, records = exp.task.evaluate(exp.accelerator, exp.model, loader, exp.metrics)
    nll = sum(record.nll for record in records)
    assert scores["word_perplexity"] == pytest.approx(math.exp(nll / (words * directions)), rel=1e-4)
    tokens = sum(record.predicted_tokens for record in records) * directions
    assert scores["word_loss"] == pytest.approx(scores["loss"] * tokens / (words * directions), rel=1e-4)


def test_holdout_without_labels_and_stratified_like_the_classifier(tmp_path, jsonl_data, text_files):
    single = lm_recipe(
        tmp_path, {"train": text_files["train"]}, data={"files": text_files["train"], "holdout": {"validation": 0.25}}
    )
    exp = build_experiment(validate_recipe(single))
    assert exp.input_report.data["validation"]["examples"] == 40  # a quarter of 160 lines, unstratified
    # A language model on labelled data with stratify_by: label gets exactly the classifier's split.
    classifier = build_experiment(
        validate_recipe(
            recipe_dict(
                None,
                jsonl_data,
                tmp_path / "c",
                model={
                    "family": "bilstm",
                    "config": BILSTM_LM,
                    "tokenizer": {"build": "word", "vocab_size": 300, "min_frequency": 1},
                    "name_or_path": None,
                },
                data={"files": jsonl_data["train"]},
            )
        )
    )
    pretrain = build_experiment(
        validate_recipe(lm_recipe(tmp_path, jsonl_data, data={"files": jsonl_data["train"], "stratify_by": "label"}))
    )
    assert classifier.tokenizer.get_vocab() == pretrain.tokenizer.get_vocab()  # built from the same train texts
    assert (
        classifier.input_report.data["validation"]["examples"] == pretrain.input_report.data["validation"]["examples"]
    )


@pytest.mark.slow
@pytest.mark.parametrize("family", ["bilstm", "gpt2"])
def test_continued_pretraining_starts_from_the_checkpoint(tmp_path, text_files, tiny_gpt2, family):
    """Domain-adaptive pretraining: `name_or_path` instead of a config; the LM starts from the saved weights."""
    if family == "bilstm":
        checkpoint = (
            train_fresh(lm_recipe(tmp_path, text_files, train={"max_steps": 6, "eval_every_steps": None})) / "model"
        )
    else:
        checkpoint = tiny_gpt2  # a bare GPT2Model checkpoint: the LM head is tied to its `wte`
    recipe = lm_recipe(
        tmp_path,
        text_files,
        family,
        model={"name_or_path": str(checkpoint), "config": None, "tokenizer": None},
        train={"max_steps": 30, "eval_every_steps": 30},
    )
    recipe["output_dir"] = str(tmp_path / "continued")
    exp = build_experiment(validate_recipe(recipe))
    saved = load_file(checkpoint / "model.safetensors")
    prefix = "" if family == "gpt2" else "bilstm."  # GPT2Model's keys carry no prefix
    body = {name: tensor for name, tensor in exp.model.base_model.state_dict().items() if f"{prefix}{name}" in saved}
    assert len(body) >= 10 and all(torch.equal(tensor, saved[f"{prefix}{name}"]) for name, tensor in body.items())
    assert exp.input_report.surgery.sources.token_embeddings == "pretrained"
    loader = torch.utils.data.DataLoader(exp.data.splits["validation"], batch_size=8, collate_fn=exp.data.collator)
    before, _ = exp.task.evaluate(exp.accelerator, exp.model, exp.accelerator.prepare_data_loader(loader), exp.metrics)
    run_dir = train_fresh(recipe)
    assert logged_scores(run_dir)[-1]["perplexity"] < before["perplexity"]


@pytest.mark.slow
@pytest.mark.parametrize("family", ["bilstm", "gpt2"])
def test_pretrain_then_fine_tune_chain(tmp_path, text_files, jsonl_data, family):
    lm_dir = train_fresh(lm_recipe(tmp_path, text_files, family, train={"max_steps": 6, "eval_every_steps": None}))
    pretrained = load_file(lm_dir / "model" / "model.safetensors")
    final = json.loads((lm_dir / "metrics.json").read_text())["validation"]
    assert evaluate_saved(lm_dir, [])["validation"]["perplexity"] == pytest.approx(
        final["perplexity"], rel=1e-5
    )  # `pipeline eval`
    classify = recipe_dict(lm_dir / "model", jsonl_data, tmp_path / "classify", family=family, model={"max_length": 16})
    exp = build_experiment(validate_recipe(classify))
    for name, tensor in exp.model.base_model.state_dict().items():
        key = f"{exp.model.base_model_prefix}.{name}"
        if key in pretrained:
            assert torch.equal(tensor, pretrained[key]), name
    assert (
        sum(f"{exp.model.base_model_prefix}.{name}" in pretrained for name in exp.model.base_model.state_dict()) >= 10
    )
    run_dir = train_fresh(classify)
    scores = json.loads((run_dir / "metrics.json").read_text())["validation"]
    assert 0.0 <= scores["accuracy"] <= 1.0
    reloaded = AutoModelForSequenceClassification.from_pretrained(run_dir / "model")
    assert reloaded.config.model_type == ("embedlab-bilstm" if family == "bilstm" else "gpt2")


@pytest.mark.parametrize("family", ["bilstm", "gpt2"])
def test_frozen_input_table_freezes_the_tied_output_layer(tmp_path, text_files, family):
    recipe = lm_recipe(
        tmp_path,
        text_files,
        family,
        layers={"token_embeddings": "freeze"},
        train={"max_steps": 4, "eval_every_steps": None},
    )
    exp = build_experiment(validate_recipe(recipe))
    table = exp.family.input_layers(exp.model).token_embeddings.weight
    assert exp.model.get_output_embeddings().weight is table and not table.requires_grad
    assert "tied" in exp.input_report.surgery.sources.output_embeddings
    before = table.detach().clone()
    run_dir = train_fresh(recipe)
    saved = load_file(run_dir / "model" / "model.safetensors")
    key = "bilstm.embeddings.word_embeddings.weight" if family == "bilstm" else "transformer.wte.weight"
    assert torch.equal(saved[key], before)


def test_replaced_input_table_stays_tied_and_projection_is_refused(tmp_path, text_files):
    layers = {"token_embeddings": {"policy": "replace", "init": "random", "std": 0.5}}
    exp = build_experiment(validate_recipe(lm_recipe(tmp_path, text_files, "gpt2", layers=layers)))
    new_table = exp.family.input_layers(exp.model).token_embeddings.weight
    assert exp.model.get_output_embeddings().weight is new_table
    assert new_table.std().item() == pytest.approx(0.5, rel=0.1)
    glove = tmp_path / "glove.txt"
    glove.write_text("good 0.1 0.2\nbad 0.3 0.4\n")
    narrow = {"token_embeddings": {"policy": "replace", "init": "vectors", "vectors": str(glove)}}
    with pytest.raises(PipelineError, match="projected table cannot be tied"):
        build_experiment(validate_recipe(lm_recipe(tmp_path, text_files, "gpt2", layers=narrow)))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"layers": {"positions": "freeze"}}, "layers.positions: not applicable to family bilstm"),
        (
            {"task": {"type": "language-modeling", "objective": "causal"}},
            "does not fit model.family bilstm (family bilstm takes objective: bidirectional)",
        ),
        ({"model": {"max_length": None}}, "family bilstm has no position limit: set model.max_length"),
        (
            {"eval": {"metrics": ["accuracy"], "splits": ["validation"]}},
            "'accuracy' does not apply to language-modeling (use perplexity, word_perplexity)",
        ),
        ({"task": {"type": "language-modeling"}}, "task.objective: required but missing"),
        (
            {"task": {"type": "language-model", "objective": "causal"}},
            "task.type: unknown value 'language-model'; did you mean 'language-modeling'?",
        ),
    ],
)
def test_language_modeling_recipe_mistakes(tmp_path, text_files, change, expected):
    recipe = lm_recipe(tmp_path, text_files)
    for section, value in change.items():
        recipe[section] = value if section == "task" else {**recipe.get(section, {}), **value}
    with pytest.raises(PipelineError) as error:
        validate_recipe(recipe)
    assert expected in str(error.value)


def test_built_tokenizer_needs_a_fresh_model_or_a_replaced_table(tmp_path, text_files, tiny_gpt2):
    recipe = lm_recipe(tmp_path, text_files, "gpt2")
    recipe["model"] = {
        "family": "gpt2",
        "name_or_path": str(tiny_gpt2),
        "tokenizer": {"build": "bpe"},
        "max_length": 16,
    }
    with pytest.raises(
        PipelineError, match="a new tokenizer's ids mean nothing to a pretrained model's table; replace the table"
    ):
        validate_recipe(recipe)


def test_typo_in_model_config_fails_with_a_hint(tmp_path, text_files, capsys):
    import yaml

    recipe = lm_recipe(tmp_path, text_files, model={"config": {**BILSTM_LM, "lstm_sise": 32}})
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert main(["train", str(path)]) == 2
    assert (
        "model.config.lstm_sise: unknown bilstm setting 'lstm_sise'; did you mean 'lstm_size'?"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "bilstm-lm").exists()
