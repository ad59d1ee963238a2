"""Bad input, table-driven: every malformed recipe fails before training with one line naming the field,
exit code 2 and nothing written; bad data is handled with a count, never silently."""

from __future__ import annotations

import json

import pytest
from bad_input_cases import CASES, Workspace
from bad_input_policies_tokens_sweeps import POLICIES_TOKENS_SWEEPS
from helpers import recipe_dict, write_recipe

from pipeline.cli import main

# (overrides on a good recipe, text the one-line error must contain)
MALFORMED = [
    (["train.epochz=2"], "train.epochz: unknown key; did you mean 'epochs'?"),
    (["trian.lr=1"], "trian: unknown key; did you mean 'train'?"),
    (["model.nmae_or_path=x"], "model.nmae_or_path: unknown key; did you mean 'name_or_path'?"),
    (["layers.token_embedings=freeze"], "did you mean 'token_embeddings'?"),
    (["train.batch_size=lots"], "train.batch_size: Input should be a valid integer"),
    (["train.batch_size=-8"], "train.batch_size: Input should be greater than 0"),
    (["train.lr=0"], "train.lr: Input should be greater than 0"),
    (["train.epochs=0"], "train.epochs: Input should be greater than 0"),
    (["train.warmup_ratio=1.5"], "train.warmup_ratio: Input should be less than 1"),
    (["model.max_length=-1"], "model.max_length: Input should be greater than 0"),
    (["eval.batch_size=0"], "eval.batch_size: Input should be greater than 0"),
    (["eval.splits=[]"], "eval.splits: List should have at least 1 item"),
    (["train.scheduler=cosine_annealing"], "train.scheduler: Input should be"),
    (["train.mixed_precision=fp8"], "train.mixed_precision: Input should be"),
    (["model.family=elmo"], "model.family: unknown family 'elmo'; one of bert, gpt2, bilstm, llama"),
    (
        ["task.type=ner"],
        "task.type: unknown value 'ner'; one of sequence-classification, token-classification, regression, "
        "multi-label, language-modeling",
    ),
    (["data.files.train=/missing/train.jsonl"], "data.files: '/missing/train.jsonl' does not exist"),
    (["data.files.train=README.md"], "unknown format"),
    (["model.name_or_path=/missing/model"], "model.name_or_path: '/missing/model' does not exist"),
    (["model.name_or_path=pkg://not_installed_pkg/model"], "package 'not_installed_pkg' is not installed"),
    (["model.name_or_path=pkg://pipeline/../../.."], "points outside the package folder"),
    (["eval.metrics=[accuracy, bleu]"], "eval.metrics: unknown metric 'bleu'"),
    (["eval.metrics=[acuracy]"], "did you mean 'accuracy'?"),
    (["eval.metrics=[hub:bleu]"], "set eval.trust_metric_code: true"),
    (["layers.token_embeddings.policy=replace"], "policy: replace needs init: random, vectors or transfer"),
    (
        ["layers.token_embeddings.policy=replace", "layers.token_embeddings.init=vectors"],
        "init: vectors needs a vectors file",
    ),
    (["layers.token_embeddings.init=random"], "init applies to policy: replace, not to policy: finetune"),
    (["layers.positions.policy=replace"], "policy: replace needs init: sinusoidal, learned, extend, none or rope"),
    (
        ["layers.positions.policy=replace", "layers.positions.init=sinusoidal", "layers.positions.then=freeze"],
        "then applies to policy: replace, init: learned or policy: replace, init: extend",
    ),
    (["layers.token_embeddings.unfreeze_at_step=3"], "unfreeze_at_step applies to policy: freeze or policy: replace"),
    (["model.max_length=512"], "model.max_length: 512 exceeds the model's limit of 64 positions"),
    (
        ["layers.positions.policy=replace", "layers.positions.init=extend", "layers.positions.max_positions=32"],
        "extend needs max_positions above the current 64",
    ),
    (["layers.encoder.freeze_bottom=9"], "layers.encoder.freeze_bottom: the model has only 2 layers"),
    (["layers.encoder.layerwise_lr_decay=1.5"], "layerwise_lr_decay: Input should be less than or equal to 1"),
    (["task.text_column=sentence"], "task.text_column: column 'sentence' not in split"),
    (["task.label_column=stars"], "task.label_column: column 'stars' not in split"),
    (["eval.splits=[test]"], "eval.splits: no split ['test'] in the data"),
    (["data.train_split=training"], "data.train_split: no split 'training' in the data"),
    (["train.mixed_precision=fp16"], "train.mixed_precision: fp16 needs a GPU"),
    (["train.batch_size=8", "train.micro_batch_size=3"], "not a multiple of train.micro_batch_size"),
    (["train.warmup_steps=3", "train.warmup_ratio=0.1"], "not both"),
    (["layers=[freeze]"], "layers: Input should be a valid dictionary"),
    (["data.holdout.validation=1.2"], "fractions must be in (0, 1)"),
    (["output_dir.sub=1"], "not a mapping"),
    (["lr=0.1"], "lr: unknown key"),
]


@pytest.mark.parametrize(("overrides", "expected"), MALFORMED, ids=[" ".join(o) for o, _ in MALFORMED])
def test_malformed_recipe(tmp_path, jsonl_data, tiny_bert, capsys, overrides, expected):
    output_dir = tmp_path / "run"
    path = write_recipe(tmp_path / "r.yaml", recipe_dict(tiny_bert, jsonl_data, output_dir))
    assert main(["train", str(path), *overrides]) == 2
    err = capsys.readouterr().err.strip()
    last = err.splitlines()[-1]  # earlier lines may be data-loading progress bars
    assert last.startswith("error: ") and expected in last
    assert err.count("error: ") == 1 and "Traceback" not in err
    assert not output_dir.exists()


@pytest.mark.parametrize(
    "case", CASES + POLICIES_TOKENS_SWEEPS, ids=[case.name for case in CASES + POLICIES_TOKENS_SWEEPS]
)
def test_bad_input_case(tmp_path, tiny_bert, capsys, case):
    """Each case of `bad_input_cases`: exit code 2, one `error:` line with the expected text, nothing written."""
    workspace = Workspace(tmp_path, tiny_bert)
    argv, expected = case.build(workspace)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    last = err.splitlines()[-1]
    assert last.startswith("error: ") and expected in last, last
    assert sum(line.startswith("error: ") for line in err.splitlines()) == 1 and "Traceback" not in err
    assert not workspace.run.exists() and sorted(p.name for p in tmp_path.iterdir()) == before


def test_empty_split_is_refused(tmp_path, tiny_bert, jsonl_data, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    path = write_recipe(
        tmp_path / "r.yaml",
        recipe_dict(tiny_bert, {"train": jsonl_data["train"], "validation": str(empty)}, tmp_path / "run"),
    )
    assert main(["train", str(path)]) == 2
    assert "error: data" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_non_utf8_csv_is_a_clear_error(tmp_path, tiny_bert, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"text,label\ncaf\xe9 good,pos\nbad,neg\n" * 5)
    path = write_recipe(tmp_path / "r.yaml", recipe_dict(tiny_bert, {"train": str(bad)}, tmp_path / "run"))
    assert main(["train", str(path)]) == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("error: data.files: ") and "bad.csv': column 'text' is not UTF-8 text" in last


def test_empty_and_overlong_texts_are_kept_and_counted(tmp_path, tiny_bert):
    rows = [{"text": "good " * 50, "label": "pos"}, {"text": "", "label": "neg"}, {"text": None, "label": "neg"}] + [
        {"text": "bad movie", "label": "neg"},
        {"text": "good movie", "label": "pos"},
    ] * 4
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    path = write_recipe(
        tmp_path / "r.yaml",
        recipe_dict(tiny_bert, {"train": str(data), "validation": str(data)}, tmp_path / "run", train={"max_steps": 1}),
    )
    assert main(["train", str(path)]) == 0
    report = json.loads((tmp_path / "run" / "input_layers.json").read_text())["data"]
    assert report["train"] == {"examples": 11, "empty_texts": 2, "truncated": 1}
    assert len((tmp_path / "run" / "predictions-validation.jsonl").read_text().splitlines()) == 11
