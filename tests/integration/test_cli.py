"""The command line: help, validate, and bad input ending in one `error:` line, exit code 2, nothing written."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from helpers import recipe_dict, write_recipe

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
    assert (
        printed["layers"]["positions"]["policy"] == "finetune"
        and printed["layers"]["positions"]["lr_multiplier"] == 1.0
    )
    assert not (tmp_path / "run").exists()


def test_console_script_exit_code(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {family: bert}\n")
    result = subprocess.run([sys.executable, "-m", "pipeline", "validate", str(bad)], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "output_dir: required but missing" in result.stderr


def test_eval_of_a_folder_that_is_no_run(tmp_path, capsys):
    assert main(["eval", str(tmp_path)]) == 2
    assert "neither a finished run folder" in capsys.readouterr().err


def test_inspect_shows_input_layers_coverage_and_counts(tmp_path, jsonl_data, tiny_bert, capsys):
    (tmp_path / "glove.txt").write_text("good 1 2 3 4\nmovie 5 6 7 8\n")
    layers = {
        "token_embeddings": {
            "policy": "replace",
            "init": "vectors",
            "vectors": str(tmp_path / "glove.txt"),
            "then": "freeze",
        },
        "positions": {"policy": "replace", "init": "sinusoidal"},
    }
    path = write_recipe(tmp_path / "r.yaml", recipe_dict(tiny_bert, jsonl_data, tmp_path / "run", layers=layers))
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "token_embeddings: (23, 4) frozen; vectors" in out and "projected 4 → 32" in out
    assert "+ linear projection: 128 parameters, trainable" in out
    assert "positions: (64, 32) fixed buffer; sinusoidal" in out
    assert "vector coverage: 2 of 23 vocabulary entries" in out
    assert "optimizer state (AdamW, two moments once stepped)" in out
    assert not (tmp_path / "run").exists()
