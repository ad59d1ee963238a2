"""End to end on CPU with tiny models: train, evaluate, run folder, freeze semantics, reload, `pipeline eval`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import GPT2_TOKENIZER, make_examples, read_jsonl, recipe_dict, train_fresh, write_jsonl, write_recipe
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from pipeline.cli import main
from pipeline.experiment.build import build_experiment
from pipeline.experiment.recipes import validate_recipe


def saved_tensors(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


@pytest.fixture(scope="module")
def bert_run(tmp_path_factory, tiny_bert) -> Path:
    """One finished BERT run shared by the tests that only read its folder."""
    folder = tmp_path_factory.mktemp("bert-run")
    data = {
        split: write_jsonl(folder / f"{split}.jsonl", make_examples(count, seed))
        for split, count, seed in (("train", 48, 0), ("validation", 16, 1))
    }
    return train_fresh(recipe_dict(tiny_bert, data, folder / "run", train={"max_steps": 6, "eval_every_steps": 3}))


def test_bert_run_folder_is_complete(bert_run):
    for name in (
        "recipe.yaml",
        "parameters.tsv",
        "log.jsonl",
        "metrics.json",
        "batching.json",
        "predictions-validation.jsonl",
    ):
        assert (bert_run / name).is_file(), name
    metrics = json.loads((bert_run / "metrics.json").read_text())
    assert 0.0 <= metrics["validation"]["accuracy"] <= 1.0
    assert metrics["train"]["steps"] == 6
    log = read_jsonl(bert_run / "log.jsonl")
    assert [r["step"] for r in log if "loss" in r] == [1, 2, 3, 4, 5, 6]
    assert [r["step"] for r in log if r.get("split") == "validation"] == [3, 6]
    resolved = validate_recipe(__import__("yaml").safe_load((bert_run / "recipe.yaml").read_text()))
    assert resolved.train.max_steps == 6 and resolved.train.scheduler == "linear"
    table = (bert_run / "parameters.tsv").read_text().splitlines()
    assert table[0] == "group\tname\tshape\tstatus\tcount\tlr"
    assert any(
        line.startswith("token_embeddings\tbert.embeddings.word_embeddings.weight\t23x32\ttrainable") for line in table
    )


def test_saved_model_reloads_and_reproduces_predictions(bert_run):
    model = AutoModelForSequenceClassification.from_pretrained(bert_run / "model").eval()
    tokenizer = AutoTokenizer.from_pretrained(bert_run / "model")
    rows = read_jsonl(
        Path(
            validate_recipe(__import__("yaml").safe_load((bert_run / "recipe.yaml").read_text())).data.files[
                "validation"
            ]
        )
    )
    saved = read_jsonl(bert_run / "predictions-validation.jsonl")
    with torch.no_grad():
        logits = model(
            **tokenizer([r["text"] for r in rows], padding=True, truncation=True, max_length=32, return_tensors="pt")
        ).logits
    assert [model.config.id2label[i] for i in logits.argmax(-1).tolist()] == [r["prediction"] for r in saved]
    assert [r["label"] for r in rows] == [r["label"] for r in saved]
    probabilities = torch.tensor([r["probabilities"] for r in saved])
    assert torch.allclose(logits.softmax(-1), probabilities, atol=1e-4)


def test_pipeline_eval_rescores_a_run(bert_run, tmp_path, capsys):
    out = tmp_path / "scores.json"
    assert main(["eval", str(bert_run), "--output", str(out)]) == 0
    scores = json.loads(out.read_text())
    expected = json.loads((bert_run / "metrics.json").read_text())
    assert scores["validation"] == pytest.approx(expected["validation"])


def test_a_holdout_nothing_reads_trains_and_is_never_scored_later(tmp_path, tiny_bert, capsys):
    """Train and test files with `eval.splits: [test]`: the default validation holdout is not carved (every train
    row trains), and re-scoring the run on a `validation` split does not carve one out of rows it trained on."""
    data = {
        split: write_jsonl(tmp_path / f"{split}.jsonl", make_examples(count, seed))
        for split, count, seed in (("train", 40, 0), ("test", 12, 1))
    }
    run = train_fresh(recipe_dict(tiny_bert, data, tmp_path / "run", eval={"splits": ["test"]}))
    assert json.loads((run / "input_layers.json").read_text())["data"]["train"]["examples"] == 40
    capsys.readouterr()
    assert main(["eval", str(run), "eval.splits=[validation]"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no split ['validation'] in the data" in err[0]


def test_freeze_keeps_embeddings_bit_identical_and_out_of_the_optimizer(tmp_path, jsonl_data, tiny_bert):
    raw = recipe_dict(tiny_bert, jsonl_data, tmp_path / "run", layers={"token_embeddings": "freeze"})
    run_dir = train_fresh(raw)
    before, after = saved_tensors(tiny_bert), saved_tensors(run_dir / "model")
    assert torch.equal(before["embeddings.word_embeddings.weight"], after["bert.embeddings.word_embeddings.weight"])
    assert not torch.equal(
        before["embeddings.position_embeddings.weight"], after["bert.embeddings.position_embeddings.weight"]
    )
    summary = json.loads((run_dir / "metrics.json").read_text())["train"]
    vocab_rows = before["embeddings.word_embeddings.weight"].numel()
    assert summary["frozen_parameters"] == vocab_rows
    assert summary["optimizer_state_numel"] == 2 * summary["trainable_parameters"]  # AdamW: two moments each
    assert "frozen" in next(
        line for line in (run_dir / "parameters.tsv").read_text().splitlines() if "word_embeddings" in line
    )


def test_finetune_changes_the_embeddings(bert_run, tiny_bert):
    before, after = saved_tensors(tiny_bert), saved_tensors(bert_run / "model")
    assert not torch.equal(before["embeddings.word_embeddings.weight"], after["bert.embeddings.word_embeddings.weight"])


def test_gpt2_checkpoint_trains_and_pads_with_eos(tmp_path, jsonl_data, tiny_gpt2):
    raw = recipe_dict(tiny_gpt2, jsonl_data, tmp_path / "run", family="gpt2", layers={"positions": "freeze"})
    run_dir = train_fresh(raw)
    config = json.loads((run_dir / "model" / "config.json").read_text())
    assert config["pad_token_id"] == 50256  # <|endoftext|>
    before, after = saved_tensors(tiny_gpt2), saved_tensors(run_dir / "model")
    assert torch.equal(before["wpe.weight"], after["transformer.wpe.weight"])
    assert not torch.equal(before["wte.weight"], after["transformer.wte.weight"])
    assert len(read_jsonl(run_dir / "predictions-validation.jsonl")) == 16


def test_gpt2_pools_the_last_real_token(tmp_path, jsonl_data, tiny_gpt2):
    """Right padding must not change a text's logits: the head reads its last non-pad token."""
    exp = build_experiment(validate_recipe(recipe_dict(tiny_gpt2, jsonl_data, tmp_path / "run", family="gpt2")))
    exp.model.eval()
    tokenizer = exp.tokenizer
    alone = tokenizer(["good movie"], return_tensors="pt")
    padded = tokenizer(["good movie", "a much longer text that forces padding"], padding=True, return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(exp.model(**alone).logits[0], exp.model(**padded).logits[0], atol=1e-5)


def test_gpt2_from_config_with_the_shipped_tokenizer(tmp_path, jsonl_data):
    model = {
        "name_or_path": None,
        "config": {"n_layer": 1, "n_embd": 32, "n_head": 2, "n_positions": 64},
        "tokenizer": GPT2_TOKENIZER,
    }
    run_dir = train_fresh(
        recipe_dict(None, jsonl_data, tmp_path / "run", family="gpt2", model=model, train={"max_steps": 2})
    )
    config = json.loads((run_dir / "model" / "config.json").read_text())
    assert config["n_layer"] == 1 and config["vocab_size"] == 50257


def test_existing_run_folder_is_refused_unless_overwrite(bert_run, tmp_path, capsys):
    recipe = write_recipe(
        tmp_path / "r.yaml",
        validate_recipe(__import__("yaml").safe_load((bert_run / "recipe.yaml").read_text())).model_dump(mode="json"),
    )
    before = (bert_run / "metrics.json").read_text()
    assert main(["train", str(recipe)]) == 2
    assert "already holds a run; pass --overwrite" in capsys.readouterr().err
    assert (bert_run / "metrics.json").read_text() == before


def test_tensorboard_tracking(tmp_path, jsonl_data, tiny_bert):
    run_dir = train_fresh(
        recipe_dict(tiny_bert, jsonl_data, tmp_path / "run", train={"max_steps": 2, "report_to": ["tensorboard"]})
    )
    assert list(run_dir.glob(f"trackers/{run_dir.name}/**/events.out.tfevents.*"))


def test_max_length_beyond_the_position_table_is_refused(tmp_path, jsonl_data, tiny_bert, capsys):
    recipe = write_recipe(
        tmp_path / "r.yaml", recipe_dict(tiny_bert, jsonl_data, tmp_path / "run", model={"max_length": 512})
    )
    assert main(["train", str(recipe)]) == 2
    assert "model.max_length: 512 exceeds the model's limit of 64 positions" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_sentence_pairs_reach_the_tokenizer_as_pairs(tmp_path, tiny_bert):
    rows = [
        {"first": f"good movie {i}", "second": "great plot" if i % 2 else "awful plot", "label": i % 2}
        for i in range(12)
    ]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    task = {"type": "sequence-classification", "text_column": "first", "text_pair_column": "second"}
    exp = build_experiment(
        validate_recipe(
            recipe_dict(
                tiny_bert,
                str(data),
                tmp_path / "run",
                task=task,
                data={"files": str(data), "holdout": {"validation": 0.25}},
            )
        )
    )
    example = exp.data.splits["train"][0]
    assert example["input_ids"].count(exp.tokenizer.sep_token_id) == 2  # [CLS] a [SEP] b [SEP]
    assert 1 in example["token_type_ids"]
    assert exp.task.labels == ["0", "1"]
