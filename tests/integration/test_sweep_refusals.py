"""A sweep refuses what it cannot do before it makes its folder or trains a run (a classical row its task type does
not have, a vectors file that is not there), and a run that exits 0 without writing its scores counts as failed."""

from __future__ import annotations

import json
import os

import pytest
from helpers import make_examples, recipe_dict, write_jsonl, write_recipe

from pipeline.cli import main


@pytest.fixture
def recipe(tmp_path, tiny_bert):
    files = {split: write_jsonl(tmp_path / f"{split}.jsonl", make_examples(count, seed))
             for split, count, seed in (("train", 32, 0), ("validation", 16, 1))}  # fmt: skip
    return write_recipe(tmp_path / "r.yaml", recipe_dict(tiny_bert, files, tmp_path / "run", train={"max_steps": 2}))


@pytest.mark.parametrize(
    "classical, expected",
    [
        ("bm25", "the bm25 baseline does not apply to sequence-classification (its classical rows: tfidf, doc2vec"),
        ("tfidf,static:missing.txt", None),  # static rows are the sentence-embedding task's
    ],
)
def test_a_classical_row_the_task_lacks_is_refused_before_the_sweep(tmp_path, recipe, capsys, classical, expected):
    output = tmp_path / "sweep"
    command = ["sweep", str(recipe), "--grid", "train.lr=1e-3", "--seeds", "0", "--output", str(output)]
    assert main([*command, "--classical", classical]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "--classical" in errors[0]
    assert expected is None or expected in errors[0]
    assert not output.exists() and not (tmp_path / "run").exists()


def test_a_run_that_exits_0_without_its_scores_counts_as_failed(tmp_path, recipe, monkeypatch, capsys):
    plugin = tmp_path / "plugins" / "quits_early.py"
    plugin.parent.mkdir()
    plugin.write_text("import os, sys\nif 'train' in sys.argv:\n    os._exit(0)  # a run process ends at once\n")
    monkeypatch.setenv("EMBEDLAB_PLUGINS", "quits_early")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(plugin.parent), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.syspath_prepend(str(plugin.parent))
    output = tmp_path / "sweep"
    command = ["sweep", str(recipe), "--grid", "train.lr=1e-3", "--seeds", "0", "--output", str(output)]
    assert main([*command, "--no-baseline"]) == 2
    [run] = json.loads((output / "sweep.json").read_text())["runs"]
    assert run["status"] == "failed" and "exited 0 without writing metrics.json" in run["error"]


def test_a_classical_row_that_cannot_be_computed_stops_the_sweep_before_any_run(tmp_path, tiny_bert, capsys):
    pytest.importorskip("gensim")
    rows = [{"text": f"{i} {i * 7} !!", "label": "pos" if i % 2 else "neg"} for i in range(32)]  # no word
    files = {
        "train": write_jsonl(tmp_path / "train.jsonl", rows),
        "validation": write_jsonl(tmp_path / "v.jsonl", rows),
    }
    recipe = write_recipe(tmp_path / "r.yaml", recipe_dict(tiny_bert, files, tmp_path / "run", train={"max_steps": 2}))
    output = tmp_path / "sweep"
    command = ["sweep", str(recipe), "--grid", "train.lr=1e-3", "--seeds", "0", "--output", str(output)]
    assert main([*command, "--classical", "doc2vec"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "doc2vec baseline: no word of the training texts" in errors[0]
    assert not output.exists() and not (tmp_path / "run").exists()
