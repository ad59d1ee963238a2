"""`accelerate launch` with two CPU processes (gloo): one run folder, the same result as one process, frozen
tables equal on every rank, and a dying rank ends the whole launch quickly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch
from helpers import (
    REPO,
    lm_recipe,
    make_examples,
    recipe_dict,
    tagged_sentences,
    tagging_recipe,
    templated_sentences,
    toy_pairs,
    write_jsonl,
    write_recipe,
)
from safetensors.torch import load_file

from pipeline.cli import main

LAUNCHER = os.path.join(os.path.dirname(sys.executable), "accelerate")
ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
pytestmark = [
    pytest.mark.skipif(not os.path.exists(LAUNCHER), reason="accelerate CLI not installed"),
    pytest.mark.slow,  # several processes per test: the full suite (CI) runs them, `-m "not slow"` skips them
]


def launch(recipe: Path, processes: int, port: int, **kwargs) -> subprocess.Popen | subprocess.CompletedProcess:
    command = [
        LAUNCHER,
        "launch",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--num_processes",
        str(processes),
        "--main_process_port",
        str(port),
    ]
    command += ["--multi_gpu"] if processes > 1 else ["--cpu"]
    command += ["-m", "pipeline", "train", str(recipe), *kwargs.pop("extra", [])]
    if kwargs.pop("background", False):
        output = subprocess.PIPE if kwargs.pop("capture", False) else subprocess.DEVNULL
        return subprocess.Popen(command, env=ENV, stdout=output, stderr=output, text=True)
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=ENV)


def test_two_processes_match_one_and_write_one_run_folder(tmp_path, jsonl_data, tiny_bert_without_dropout):
    sections = {
        "train": {"max_steps": 3, "batch_size": 8, "log_every_steps": 1},
        "layers": {"token_embeddings": "freeze"},
    }
    runs = {}
    for processes, port in ((1, 29511), (2, 29512)):
        output_dir = tmp_path / f"run-{processes}"
        recipe = write_recipe(
            tmp_path / f"r{processes}.yaml", recipe_dict(tiny_bert_without_dropout, jsonl_data, output_dir, **sections)
        )
        result = launch(recipe, processes, port)
        assert result.returncode == 0, result.stderr[-3000:]
        runs[processes] = output_dir
    batching = json.loads((runs[2] / "batching.json").read_text())
    assert batching["processes"] == 2 and batching["micro_batch_size"] == 4 and batching["accumulation_steps"] == 1
    assert sorted(p.name for p in runs[2].iterdir()) == sorted(
        [
            ".lock",  # the one-writer lock (flock): released, not removed, on exit; see docs/guarantees.md
            "batching.json",
            "confusion-validation.png",
            "fingerprints.json",
            "input_layers.json",
            "library.log",  # what the libraries said, kept off the console
            "log.jsonl",
            "metrics.json",
            "model",
            "parameters.tsv",
            "predictions-validation.jsonl",
            "recipe.yaml",
        ]
    )
    one, two = (json.loads((runs[n] / "metrics.json").read_text()) for n in (1, 2))
    assert two["train"]["frozen_tables_identical_across_processes"] is True
    assert len((runs[2] / "predictions-validation.jsonl").read_text().splitlines()) == 16  # each example once
    # Same 8 examples per step, gradients averaged over 2 × 4 instead of 1 × 8: equal up to float rounding.
    assert two["validation"] == pytest.approx(one["validation"], abs=1e-6)
    losses = [
        [json.loads(line)["loss"] for line in (runs[n] / "log.jsonl").read_text().splitlines() if "loss" in line]
        for n in (1, 2)
    ]
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)
    weights = [load_file(runs[n] / "model" / "model.safetensors") for n in (1, 2)]
    assert all(torch.allclose(weights[0][key], weights[1][key], atol=1e-5) for key in weights[0])
    assert torch.equal(
        weights[0]["bert.embeddings.word_embeddings.weight"], weights[1]["bert.embeddings.word_embeddings.weight"]
    )


def rank_of(process: psutil.Process) -> str | None:
    try:
        return process.environ().get("RANK")
    except psutil.Error:
        return None


def test_a_killed_rank_ends_the_launch_quickly(tmp_path, tiny_bert):
    data = str(tmp_path / "train.jsonl")
    Path(data).write_text("".join(json.dumps(row) + "\n" for row in make_examples(4000, 0)))
    output_dir = tmp_path / "run"
    recipe = write_recipe(
        tmp_path / "r.yaml",
        recipe_dict(
            tiny_bert,
            {"train": data},
            output_dir,
            train={"epochs": 50, "max_steps": None, "batch_size": 8, "log_every_steps": 1},
            eval={"splits": ["validation"]},
        ),
    )
    launcher = launch(recipe, 2, 29513, background=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (output_dir / "log.jsonl").exists():
            time.sleep(0.1)
        assert launcher.poll() is None, "the launch ended before a rank could be killed"
        workers = [p for p in psutil.Process(launcher.pid).children(recursive=True) if rank_of(p) == "1"]
        assert workers, "no rank-1 worker found"
        killed_at = time.monotonic()
        workers[0].send_signal(signal.SIGKILL)
        code = launcher.wait(timeout=120)
        took = time.monotonic() - killed_at
    finally:
        for child in psutil.Process(launcher.pid).children(recursive=True) if launcher.poll() is None else []:
            child.kill()
        launcher.kill()
    assert code != 0
    assert took < 60, f"the launch took {took:.1f} s to exit after rank 1 died"
    print(f"launch exited {took:.1f} s after rank 1 was killed")
    assert not (output_dir / "metrics.json").exists()


CONFIGS = [REPO / "accelerate_config.yaml", *sorted((REPO / "configs" / "accelerate").glob("*.yaml"))]


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_accelerate_configs_load(path):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(path))
    assert config.num_processes >= 1 and config.num_machines >= 1
    assert str(config.distributed_type) in {
        "DistributedType.MULTI_GPU",
        "DistributedType.NO",
        "DistributedType.FSDP",
        "MULTI_GPU",
        "NO",
        "FSDP",
    }


BILSTM_NO_DROPOUT = {
    "hidden_size": 16,
    "lstm_size": 32,
    "num_layers": 2,
    "char_cnn": True,
    "max_characters": 10,
    "char_filters": 4,
    "char_max_width": 3,
    "dropout": 0.0,
}


def bilstm_recipe(task: str, folder: Path) -> dict:
    """A tiny dropout-free bi-LSTM recipe for `task`, with 13 validation rows (they do not split evenly over 2)."""
    if task == "language-modeling":
        files = {}
        for split, count in (("train", 48), ("validation", 13)):
            (folder / f"{split}.txt").write_text("\n".join(templated_sentences(count, seed=count)) + "\n")
            files[split] = str(folder / f"{split}.txt")
        recipe = lm_recipe(folder, files)
    else:
        files = {
            "train": write_jsonl(folder / "train.jsonl", tagged_sentences(32, 0)),
            "validation": write_jsonl(folder / "validation.jsonl", tagged_sentences(13, 1)),
        }
        recipe = tagging_recipe(folder, files)
    recipe["model"] = {**recipe["model"], "config": BILSTM_NO_DROPOUT}
    recipe["train"] = {**recipe["train"], "max_steps": 2, "batch_size": 8, "eval_every_steps": None}
    return recipe


@pytest.mark.parametrize(("task", "score"), [("language-modeling", "perplexity"), ("token-classification", "accuracy")])
def test_bilstm_tasks_gather_every_example_once_across_processes(tmp_path, task, score):
    """Blocks and tag rows of different lengths, gathered from two processes, score as in one process."""
    scores, records = {}, {}
    for processes, port in ((1, 29521), (2, 29522)):
        folder = tmp_path / f"p{processes}"
        folder.mkdir()
        recipe = bilstm_recipe(task, folder)
        result = launch(write_recipe(folder / "recipe.yaml", recipe), processes, port)
        assert result.returncode == 0, result.stderr[-3000:]
        run_dir = Path(recipe["output_dir"])
        scores[processes] = json.loads((run_dir / "metrics.json").read_text())["validation"]
        records[processes] = (run_dir / "predictions-validation.jsonl").read_text().splitlines()
    assert len(records[2]) == len(records[1])  # every block or row once, none duplicated by even sharding
    assert scores[2][score] == pytest.approx(scores[1][score], rel=1e-4)


def test_sigterm_stops_every_process_at_one_step_and_resume_matches(tmp_path, tiny_bert_without_dropout):
    """A scheduler's pre-emption under `accelerate launch`: both processes checkpoint the same step; resuming with two
    processes ends bit-identical to an uninterrupted two-process run."""
    data = {
        split: write_jsonl(tmp_path / f"{split}.jsonl", make_examples(count, seed))
        for split, count, seed in (("train", 120, 0), ("validation", 16, 1))
    }
    train = {
        "epochs": 2,
        "max_steps": None,
        "batch_size": 4,
        "save_every_steps": 5,
        "keep_checkpoints": 3,
        "log_every_steps": 1,
    }
    recipes = {
        name: write_recipe(
            tmp_path / f"{name}.yaml", recipe_dict(tiny_bert_without_dropout, data, tmp_path / name, train=train)
        )
        for name in ("reference", "stopped")
    }
    assert launch(recipes["reference"], 2, 29541).returncode == 0
    process = launch(recipes["stopped"], 2, 29542, background=True, capture=True)
    log = tmp_path / "stopped" / "log.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if (
            log.exists()
            and max((json.loads(line).get("step", 0) for line in log.read_text().splitlines()), default=0) >= 22
        ):
            break
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be stopped"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=180)
    stopped = [line for line in err.splitlines() if line.startswith("error: stopped by SIGTERM at step ")]
    assert len(stopped) == 1, err[-2000:]  # both processes stopped; one says where
    step = int(stopped[0].split(" at step ")[1].split()[0])
    assert (tmp_path / "stopped" / "checkpoints" / f"step-{step:07d}" / "complete.json").is_file()
    resumed = launch(recipes["stopped"], 2, 29543, extra=["--resume"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    first, second = (load_file(tmp_path / name / "model" / "model.safetensors") for name in ("reference", "stopped"))
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert json.loads((tmp_path / "stopped" / "metrics.json").read_text())["train"]["resumed_from_step"] == step


def test_sentence_embeddings_train_in_two_processes_and_score_each_query_once(tmp_path, tiny_bert):
    """Two forward passes a step (anchors, positives), one backward: DDP reduces the gradients of both."""
    files = {split: write_jsonl(tmp_path / f"{split}.jsonl", toy_pairs(count, seed))
             for split, count, seed in (("train", 32, 0), ("validation", 20, 1))}  # fmt: skip
    recipe = recipe_dict(tiny_bert, files, tmp_path / "run", task={"type": "sentence-embedding"},
                         train={"max_steps": 3, "batch_size": 8, "log_every_steps": 1})  # fmt: skip
    recipe["eval"] = {"splits": ["validation"], "batch_size": 4}
    result = launch(write_recipe(tmp_path / "r.yaml", recipe), 2, 29518)
    assert result.returncode == 0, result.stderr[-3000:]
    predictions = (tmp_path / "run" / "predictions-validation.jsonl").read_text()
    records = [json.loads(line) for line in predictions.splitlines()]
    # each title searched the whole collection (32 + 20 documents), embedded half by each process
    assert len(records) == 20 and all(1 <= record["rank"] <= record["documents"] == 52 for record in records)
    assert main(["eval", str(tmp_path / "run"), "--output", str(tmp_path / "alone.json")]) == 0  # one process
    alone = json.loads((tmp_path / "alone.json").read_text())["validation"]
    together = json.loads((tmp_path / "run" / "metrics.json").read_text())["validation"]
    assert alone["ndcg@10"] == pytest.approx(together["ndcg@10"], abs=1e-5)
