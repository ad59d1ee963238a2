"""No data loss, no code from a checkpoint, no silent wrong result: the run folder, resume and data guarantees."""

from __future__ import annotations

import json
import logging
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from helpers import make_examples, read_jsonl, recipe_dict, train_fresh, write_jsonl, write_recipe
from safetensors.torch import load_file

from pipeline.cli import main
from pipeline.errors import TrainingStopped
from pipeline.experiment.build import build_experiment
from pipeline.experiment.recipes import validate_recipe
from pipeline.training.checkpointing import MARKER, list_files, tie_digest
from pipeline.training.run import start_run, train_experiment


def strict_json_lines(path: Path) -> list[dict]:
    """Parse JSON lines refusing the non-standard NaN / Infinity tokens."""

    def refuse(token: str) -> None:
        raise AssertionError(f"{path.name} holds {token}")

    return [json.loads(line, parse_constant=refuse) for line in path.read_text().splitlines()]


def test_overwrite_never_deletes_the_working_directory(tmp_path, jsonl_data, tiny_bert, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    for output_dir in (".", "./", str(tmp_path), "..", '""'):
        recipe = write_recipe(tmp_path / "r.yaml", recipe_dict(tiny_bert, jsonl_data, tmp_path / "unused"))
        assert main(["train", str(recipe), f"output_dir={output_dir}", "--overwrite"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 5 and all("output_dir: " in line for line in errors)
    assert (tmp_path / "notes.txt").read_text() == "mine" and (tmp_path / "r.yaml").is_file()


def test_overwrite_replaces_only_a_run_folder(tmp_path, jsonl_data, tiny_bert, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    recipe = write_recipe(tmp_path / "r.yaml", recipe_dict(tiny_bert, jsonl_data, mine, train={"max_steps": 1}))
    assert main(["train", str(recipe), "--overwrite"]) == 2
    assert "is not a run folder (it holds thesis.tex)" in capsys.readouterr().err
    assert (mine / "thesis.tex").read_text() == "years of work"
    run = tmp_path / "run"
    recipe = write_recipe(tmp_path / "r.yaml", recipe_dict(tiny_bert, jsonl_data, run, train={"max_steps": 1}))
    assert main(["train", str(recipe)]) == 0
    (run / "notes.txt").write_text("added by hand")
    assert main(["train", str(recipe), "--overwrite"]) == 2  # a run folder with a user's file in it is not replaced
    (run / "notes.txt").unlink()
    assert main(["train", str(recipe), "--overwrite"]) == 0


def test_resume_of_a_finished_run_is_refused(tmp_path, jsonl_data, tiny_bert, capsys):
    recipe = write_recipe(
        tmp_path / "r.yaml",
        recipe_dict(tiny_bert, jsonl_data, tmp_path / "run", train={"max_steps": 2, "save_every_steps": 1}),
    )
    assert main(["train", str(recipe)]) == 0
    model = (tmp_path / "run" / "model" / "model.safetensors").read_bytes()
    assert main(["train", str(recipe), "--resume"]) == 2
    assert "already finished; use --overwrite to train it again" in capsys.readouterr().err
    assert (tmp_path / "run" / "model" / "model.safetensors").read_bytes() == model
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["train"]["steps"] == 2


def test_resume_without_a_usable_checkpoint_restarts_with_a_clean_log(tmp_path, jsonl_data, tiny_bert, caplog):
    recipe = write_recipe(
        tmp_path / "r.yaml",
        recipe_dict(tiny_bert, jsonl_data, tmp_path / "run", train={"max_steps": 2, "save_every_steps": 1}),
    )
    assert main(["train", str(recipe)]) == 0
    (tmp_path / "run" / "metrics.json").unlink()  # as if killed before its end, with every checkpoint half-written
    for checkpoint in (tmp_path / "run" / "checkpoints").glob("step-*"):
        (checkpoint / MARKER).unlink()
    assert main(["train", str(recipe), "--resume"]) == 0
    assert "no usable checkpoint" in caplog.text
    steps = [record["step"] for record in strict_json_lines(tmp_path / "run" / "log.jsonl") if "loss" in record]
    assert steps == [1, 2]


def test_resume_after_the_data_changed_is_refused(tmp_path, jsonl_data, tiny_bert, capsys):
    recipe = write_recipe(
        tmp_path / "r.yaml",
        recipe_dict(tiny_bert, jsonl_data, tmp_path / "run", train={"max_steps": 4, "save_every_steps": 2}),
    )
    assert main(["train", str(recipe)]) == 0
    (tmp_path / "run" / "metrics.json").unlink()
    rows = make_examples(48, 0)
    rows[5]["label"] = "neg" if rows[5]["label"] == "pos" else "pos"  # one label changed, same size
    write_jsonl(Path(jsonl_data["train"]), rows)
    assert main(["train", str(recipe), "--resume"]) == 2
    assert "data: the data changed since" in capsys.readouterr().err


class Planted:
    """Unpickling this touches a file: the stand-in for code that a checkpoint must never run."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


@pytest.fixture
def unfinished_run(tmp_path, jsonl_data, tiny_bert) -> tuple[Path, Path]:
    """(recipe, run folder) of a run that saved checkpoints at steps 2 and 4 and was then cut short."""
    recipe = write_recipe(
        tmp_path / "r.yaml",
        recipe_dict(tiny_bert, jsonl_data, tmp_path / "run", train={"max_steps": 4, "save_every_steps": 2}),
    )
    assert main(["train", str(recipe)]) == 0
    (tmp_path / "run" / "metrics.json").unlink()
    return recipe, tmp_path / "run"


def test_a_planted_pickle_is_not_loaded_and_the_previous_checkpoint_is_used(tmp_path, unfinished_run, caplog):
    recipe, run = unfinished_run
    marker = tmp_path / "pwned"
    torch.save(Planted(marker), run / "checkpoints" / "step-0000004" / "state" / "custom_checkpoint_0.pkl")
    assert main(["train", str(recipe), "--resume"]) == 0
    assert not marker.exists()
    assert "skipping checkpoint" in caplog.text and "custom_checkpoint_0.pkl is not in the manifest" in caplog.text
    assert json.loads((run / "metrics.json").read_text())["train"]["resumed_from_step"] == 2


def test_a_planted_pickle_with_a_forged_manifest_is_refused_without_running(tmp_path, unfinished_run, capsys):
    recipe, run = unfinished_run
    marker, newest = tmp_path / "pwned", run / "checkpoints" / "step-0000004"
    torch.save({"state": Planted(marker), "param_groups": []}, newest / "state" / "optimizer.bin")
    reseal(newest)
    assert main(["train", str(recipe), "--resume"]) == 2
    assert not marker.exists()
    assert "cannot be loaded safely" in capsys.readouterr().err.strip().splitlines()[-1]
    with pytest.raises(pickle.UnpicklingError):  # what it would take to run it: weights_only=False
        torch.load(newest / "state" / "optimizer.bin", weights_only=True)


def test_same_size_corruption_falls_back_to_the_previous_checkpoint(tmp_path, unfinished_run, caplog):
    recipe, run = unfinished_run
    weights = run / "checkpoints" / "step-0000004" / "state" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-8:] = bytes(8)  # the last values of a tensor zeroed: same size, other numbers
    weights.write_bytes(bytes(data))
    assert main(["train", str(recipe), "--resume"]) == 0
    assert "model.safetensors does not match its checksum" in caplog.text
    assert json.loads((run / "metrics.json").read_text())["train"]["resumed_from_step"] == 2


def reseal(checkpoint: Path, tie: bool = True) -> None:
    """Rewrite a checkpoint's manifest to match its files (as whoever changed them could), and with `tie` its digest
    over them too (as someone who read our code could)."""
    manifest = json.loads((checkpoint / MARKER).read_text())
    manifest["files"] = {key: value for key, value in list_files(checkpoint).items() if key != MARKER}
    if tie:
        manifest["tie"] = tie_digest(int(checkpoint.name.removeprefix("step-")), manifest["files"])
    (checkpoint / MARKER).write_text(json.dumps(manifest))


def forge(checkpoint: Path, name: str, content: dict) -> None:
    """Rewrite a checkpoint file and its manifest to match."""
    (checkpoint / name).write_text(json.dumps(content))
    reseal(checkpoint)


def test_weights_swapped_with_another_step_s_are_not_resumed(tmp_path, unfinished_run, caplog):
    """Each file matches a rewritten manifest entry, but the digest tying them to the step does not."""
    recipe, run = unfinished_run
    older, newest = (run / "checkpoints" / f"step-{step:07d}" for step in (2, 4))
    shutil.copy(older / "state" / "model.safetensors", newest / "state" / "model.safetensors")
    reseal(newest, tie=False)
    assert main(["train", str(recipe), "--resume"]) == 0
    assert "not the ones it was sealed with" in caplog.text
    assert json.loads((run / "metrics.json").read_text())["train"]["resumed_from_step"] == 2


def test_a_checkpoint_whose_parts_disagree_on_the_step_is_refused(tmp_path, unfinished_run, caplog, capsys):
    recipe, run = unfinished_run
    newest = run / "checkpoints" / "step-0000004"
    forge(newest, "progress.json", {"step": 3, "epoch": 0, "batches_in_epoch": 3, "log_lines": 3})
    assert main(["train", str(recipe), "--resume"]) == 0  # its folder says step 4: skipped
    assert "progress.json says step 3, the folder step-0000004" in caplog.text
    (run / "metrics.json").unlink()
    forge(newest, "progress.json", {"step": 4, "epoch": 0, "batches_in_epoch": 10**9, "log_lines": 4})
    assert main(["train", str(recipe), "--resume"]) == 2  # a position past the epoch's batches
    assert "batches_in_epoch 1000000000, past this run's" in capsys.readouterr().err
    saved = json.loads((newest / "state" / "scheduler.json").read_text())
    forge(newest, "progress.json", {"step": 4, "epoch": 0, "batches_in_epoch": 4, "log_lines": 4})
    forge(newest, "state/scheduler.json", saved | {"last_epoch": 2, "_step_count": 3})  # another step's schedule
    assert main(["train", str(recipe), "--resume"]) == 2
    assert "scheduler.json was saved at step 2, not 4" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("progress.json", {"step": -5, "epoch": 0, "batches_in_epoch": 0, "log_lines": 0}, "step is not a count"),
        ("progress.json", {"step": 4, "epoch": 0, "batches_in_epoch": 0}, "progress.json must hold exactly"),
    ],
)
def test_a_forged_progress_record_is_refused_even_with_a_matching_manifest(
    tmp_path, unfinished_run, caplog, name, content, expected
):
    recipe, run = unfinished_run
    forge(run / "checkpoints" / "step-0000004", name, content)
    assert main(["train", str(recipe), "--resume"]) == 0
    assert expected in caplog.text
    assert json.loads((run / "metrics.json").read_text())["train"]["resumed_from_step"] == 2


def test_a_forged_scheduler_state_is_not_loaded(tmp_path, unfinished_run, capsys):
    recipe, run = unfinished_run
    forge(run / "checkpoints" / "step-0000004", "state/scheduler.json", {"last_epoch": "all", "base_lrs": [1e9]})
    assert main(["train", str(recipe), "--resume"]) == 2
    assert "scheduler.json does not hold this run's scheduler state" in capsys.readouterr().err


def test_a_symbolic_link_inside_a_checkpoint_is_never_followed(tmp_path, unfinished_run, caplog):
    recipe, run = unfinished_run
    newest = run / "checkpoints" / "step-0000004"
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"not yours")
    (newest / "state" / "model.safetensors").unlink()
    (newest / "state" / "model.safetensors").symlink_to(secret)
    assert main(["train", str(recipe), "--resume"]) == 0
    assert "state/model.safetensors is a symbolic link" in caplog.text
    assert json.loads((run / "metrics.json").read_text())["train"]["resumed_from_step"] == 2


def test_nonfinite_weights_are_never_saved_as_the_last_good_state(tmp_path, tiny_bert, jsonl_data):
    exp = build_experiment(
        validate_recipe(recipe_dict(tiny_bert, jsonl_data, tmp_path / "run", train={"max_steps": 6}))
    )
    calls = {"n": 0}

    def poison(module, inputs):
        calls["n"] += 1
        if calls["n"] == 3:  # an update that went wrong without a non-finite gradient of its own
            with torch.no_grad():
                module.weight.fill_(float("inf"))

    exp.model.classifier.register_forward_pre_hook(poison)
    with pytest.raises(TrainingStopped, match="the weights are already non-finite, so none were saved"):
        train_experiment(exp, start_run(exp.recipe, overwrite=False, resume=False))
    assert not (tmp_path / "run" / "checkpoints").exists() or not any((tmp_path / "run" / "checkpoints").glob("step-*"))
    strict_json_lines(tmp_path / "run" / "log.jsonl")  # the non-finite loss is logged as null, not NaN


def test_missing_labels_can_be_left_out_and_are_counted(tmp_path, tiny_bert, jsonl_data):
    rows = make_examples(48, 0)
    rows[3]["label"] = None
    rows[7]["label"] = None
    data = {"train": write_jsonl(tmp_path / "holes.jsonl", rows), "validation": jsonl_data["validation"]}
    run_dir = train_fresh(
        recipe_dict(
            tiny_bert, data, tmp_path / "run", data={"files": data, "drop_missing_labels": True}, train={"max_steps": 1}
        )
    )
    counts = json.loads((run_dir / "input_layers.json").read_text())["data"]
    assert counts["train"]["dropped_missing_labels"] == 2 and counts["train"]["examples"] == 46
    assert json.loads((run_dir / "model" / "config.json").read_text())["id2label"] == {"0": "neg", "1": "pos"}


def test_a_file_name_with_glob_characters_is_read_alone(tmp_path, tiny_bert, jsonl_data):
    write_jsonl(tmp_path / "tr-old.jsonl", [{"text": "other", "label": "neutral"}] * 30)
    star = write_jsonl(tmp_path / "tr*.jsonl", make_examples(48, 0))
    data = {"train": star, "validation": jsonl_data["validation"]}
    exp = build_experiment(validate_recipe(recipe_dict(tiny_bert, data, tmp_path / "run")))
    assert len(exp.data.splits["train"]) == 48 and exp.task.labels == ["neg", "pos"]


def test_holdout_splits_the_data_lacks_are_carved_from_train(tmp_path, tiny_bert, jsonl_data, caplog):
    data = {"train": jsonl_data["train"], "test": jsonl_data["validation"]}
    recipe = recipe_dict(
        tiny_bert,
        data,
        tmp_path / "run",
        data={"files": data, "holdout": {"validation": 0.25}},
        eval={"splits": ["validation", "test"]},
    )
    caplog.set_level(logging.INFO)
    exp = build_experiment(validate_recipe(recipe))
    assert (len(exp.data.splits["train"]), len(exp.data.splits["validation"]), len(exp.data.splits["test"])) == (
        36,
        12,
        16,
    )
    assert "the data has no validation split: carved out of 'train'" in caplog.text


def test_evaluating_on_the_training_split_is_flagged(tmp_path, tiny_bert, jsonl_data, caplog):
    build_experiment(
        validate_recipe(recipe_dict(tiny_bert, jsonl_data, tmp_path / "run", eval={"splits": ["validation", "train"]}))
    )
    assert "eval.splits includes the training split 'train'" in caplog.text


def test_eval_output_is_checked_before_evaluating_and_written_whole(tmp_path, jsonl_data, tiny_bert, capsys):
    run_dir = train_fresh(recipe_dict(tiny_bert, jsonl_data, tmp_path / "run", train={"max_steps": 1}))
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--output", str(tmp_path / "nodir" / "x.json")]) == 2
    err = capsys.readouterr()
    assert (
        "is not an existing folder" in err.err and "Loading weights" not in err.err
    )  # refused before loading anything
    assert main(["eval", str(run_dir), "--output", str(tmp_path / "scores.json")]) == 0
    assert json.loads((tmp_path / "scores.json").read_text())["validation"]["accuracy"] >= 0
    assert not list(tmp_path.glob(".*.partial"))
    assert read_jsonl(run_dir / "predictions-validation.jsonl")
    assert load_file(run_dir / "model" / "model.safetensors")
