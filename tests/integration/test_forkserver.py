"""The sweep's fork server: a run forked from it is the run a fresh process gives, bit for bit; its exit code, a
signal that killed it and its stderr come back as from a process of its own."""

from __future__ import annotations

import json
import signal
import tempfile
from pathlib import Path

import pytest
from helpers import make_examples, recipe_dict, write_jsonl, write_recipe

from pipeline.cli import main
from pipeline.errors import PipelineError
from pipeline.sweeps.forkserver import ForkServer, wanted

pytestmark = pytest.mark.skipif(not wanted(), reason="the fork server runs on Linux only")


@pytest.fixture
def recipe(tmp_path, tiny_bert) -> Path:
    data = {
        split: write_jsonl(tmp_path / f"{split}.jsonl", make_examples(count, seed))
        for split, count, seed in (("train", 48, 0), ("test", 24, 1))
    }
    raw = recipe_dict(
        tiny_bert, data, tmp_path / "unused", train={"max_steps": 4}, eval={"splits": ["test"], "batch_size": 8}
    )
    return write_recipe(tmp_path / "recipe.yaml", raw)


def test_a_forked_run_is_bit_identical_to_a_fresh_process(recipe, tmp_path, monkeypatch):
    sweep = ["sweep", str(recipe), "--seeds", "0,1", "--no-baseline", "--cpus-per-trial", "1"]
    assert main([*sweep, "--output", str(tmp_path / "forked")]) == 0
    monkeypatch.setenv("EMBEDLAB_FRESH_PROCESSES", "1")
    assert main([*sweep, "--output", str(tmp_path / "fresh")]) == 0
    for seed in (0, 1):
        forked, fresh = (tmp_path / name / "recipe" / f"seed={seed}" for name in ("forked", "fresh"))
        assert (
            json.loads((forked / "metrics.json").read_text())["test"]
            == json.loads((fresh / "metrics.json").read_text())["test"]
        )
        weights = "model/model.safetensors"
        assert (forked / weights).read_bytes() == (fresh / weights).read_bytes()
        assert (forked / "predictions-test.jsonl").read_bytes() == (fresh / "predictions-test.jsonl").read_bytes()


def test_exit_codes_signals_and_stderr_come_back(recipe, tmp_path):
    server = ForkServer()
    try:
        with tempfile.NamedTemporaryFile(mode="w+", suffix=".err") as errors:
            refused = server.start(["validate", str(tmp_path / "missing.yaml")], {}, errors.name)
            assert refused.wait() == 2
            assert "error:" in Path(errors.name).read_text()
        with tempfile.NamedTemporaryFile(mode="w+", suffix=".err") as errors:
            run = server.start(["train", str(recipe), f"output_dir={tmp_path / 'killed'}"], {}, errors.name)
            assert run.poll() is None
            run.send_signal(signal.SIGKILL)
            assert run.wait() == -signal.SIGKILL and run.poll() == -signal.SIGKILL
        with tempfile.NamedTemporaryFile(mode="w+", suffix=".err") as errors:  # the server lives on after a kill
            assert server.start(["validate", str(recipe)], {}, errors.name).wait() == 0
    finally:
        server.close()
    assert server.process.returncode == 0


def test_a_stopped_sweep_stops_its_forked_runs(recipe, tmp_path):
    """SIGTERM to the sweep: the server and the runs it forked end too (each run checkpoints first), none is left."""
    import subprocess
    import sys
    import time

    import psutil

    command = [sys.executable, "-m", "pipeline", "sweep", str(recipe), "train.max_steps=100000", "--seeds", "0,1"]
    sweep = subprocess.Popen(
        [*command, "--parallel", "2", "--output", str(tmp_path / "out"), "--no-baseline"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline, tree = time.monotonic() + 120, []
    while time.monotonic() < deadline and len(tree) < 3:  # the server and its two runs
        time.sleep(0.5)
        tree = psutil.Process(sweep.pid).children(recursive=True)
    assert len(tree) >= 3
    time.sleep(3)
    sweep.send_signal(signal.SIGTERM)
    assert sweep.wait(timeout=60) != 0
    _, alive = psutil.wait_procs(tree, timeout=60)
    assert not alive


def test_a_server_that_died_is_one_line_not_a_wait(tmp_path):
    server = ForkServer()
    server.process.kill()
    server.process.wait()
    for _ in range(2):
        with pytest.raises(PipelineError, match=r"fork server ended.*EMBEDLAB_FRESH_PROCESSES=1"):
            server.start(["validate", str(tmp_path / "r.yaml")], {}, str(tmp_path / "err"))
