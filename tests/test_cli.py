"""The command line: help, validate, and bad input ending in one `error:` line, exit code 2, nothing written."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from conftest import recipe_dict, write_recipe
from pipeline.cli import main


def test_help_names_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("train", "eval", "validate", "schema", "accelerate launch"):
        assert command in out


def test_validate_prints_the_resolved_recipe(tmp_path, jsonl_data, tiny_bert, capsys):
    path = write_recipe(tmp_path / "r.yaml", recipe_dict(tiny_bert, jsonl_data, tmp_path / "run"))
    assert main(["validate", str(path), "train.seed=5"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["train"]["seed"] == 5
    assert printed["layers"]["positions"]["policy"] == "finetune" and printed["layers"]["positions"]["lr_multiplier"] == 1.0
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["train.epochz=2"], "train.epochz: unknown key; did you mean 'epochs'?"),
        (["train.batch_size=lots"], "train.batch_size: Input should be a valid integer"),
        (["data.files.train=/missing/train.jsonl"], "data.files: '/missing/train.jsonl' does not exist"),
        (["eval.metrics=[accuracy, bleu]"], "eval.metrics: unknown metric 'bleu'"),
        (["task.text_column=sentence"], "task.text_column: column 'sentence' not in split"),
        (["task.label_column=stars"], "task.label_column: column 'stars' not in split"),
        (["eval.splits=[test]"], "eval.splits: no split ['test'] in the data"),
        (["model.name_or_path=/missing/model"], "model.name_or_path: '/missing/model' does not exist"),
        (["train.mixed_precision=fp16"], "train.mixed_precision: fp16 needs a GPU"),
        (["train.batch_size=8", "train.micro_batch_size=3"], "not a multiple of train.micro_batch_size"),
        (["layers=[freeze]"], "layers: Input should be a valid dictionary"),
        (["lr=0.1"], "lr: unknown key"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, jsonl_data, tiny_bert, capsys, overrides, expected):
    output_dir = tmp_path / "run"
    path = write_recipe(tmp_path / "r.yaml", recipe_dict(tiny_bert, jsonl_data, output_dir))
    assert main(["train", str(path), *overrides]) == 2
    err = capsys.readouterr().err.strip()
    last = err.splitlines()[-1]  # earlier lines may be data-loading progress bars
    assert last.startswith("error: ") and expected in last
    assert err.count("error: ") == 1 and "Traceback" not in err
    assert not output_dir.exists()


def test_console_script_exit_code(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {family: bert}\n")
    result = subprocess.run([sys.executable, "-m", "pipeline", "validate", str(bad)], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "output_dir: required but missing" in result.stderr


def test_eval_of_a_folder_that_is_no_run(tmp_path, capsys):
    assert main(["eval", str(tmp_path)]) == 2
    assert "neither a finished run folder" in capsys.readouterr().err
