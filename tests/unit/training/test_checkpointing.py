"""Checkpoints: sealed with a manifest, broken or partial ones skipped when looking for the newest whole one."""

from __future__ import annotations

from helpers import recipe_dict, train_fresh

from pipeline.training.checkpointing import latest_checkpoint, problem_with


def test_broken_checkpoints_are_skipped(tmp_path, tiny_bert, jsonl_data, caplog):
    raw = recipe_dict(
        tiny_bert, jsonl_data, tmp_path / "run", train={"max_steps": 6, "save_every_steps": 2, "keep_checkpoints": 3}
    )
    run_dir = train_fresh(raw)
    newest = run_dir / "checkpoints" / "step-0000006"
    assert problem_with(newest) is None
    model_file = newest / "state" / "model.safetensors"
    model_file.write_bytes(model_file.read_bytes()[:100])  # truncated, as by a crash mid-write
    (run_dir / "checkpoints" / ".step-0000008.partial").mkdir()
    found = latest_checkpoint(run_dir)
    assert found is not None and found[0].name == "step-0000004" and found[1].step == 4
    assert "skipping checkpoint" in caplog.text and "bytes, expected" in caplog.text
