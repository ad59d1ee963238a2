"""What the one-line cases of `bad_input_policies_tokens_sweeps.py` cannot show, because the right answer is that it
works (runs never import from the working folder, a damaged cache is made again) or that it writes in
the right place (a checkpoint's diagnosis, an added row's report)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from helpers import make_examples, recipe_dict, train_fresh, write_jsonl, write_recipe

from pipeline.cli import main


@pytest.fixture
def data(tmp_path: Path) -> dict[str, str]:
    return {
        split: write_jsonl(tmp_path / f"{split}.jsonl", make_examples(count, seed))
        for split, count, seed in (("train", 32, 0), ("validation", 16, 1))
    }


@pytest.fixture
def finished(tmp_path, tiny_bert, data) -> Path:
    """A finished tiny run with checkpoints at steps 2 and 4."""
    raw = recipe_dict(tiny_bert, data, tmp_path / "run")
    raw["train"] |= {"save_every_steps": 2}
    return train_fresh(raw)


@pytest.mark.slow
def test_a_sweep_s_runs_never_import_from_the_working_folder(tmp_path, tiny_bert, data, monkeypatch):
    """A shared folder holding `pipeline.py` or `tqdm.py`: each would run in place of the package or the library if
    the working folder came first on the import path of the runs a sweep starts. Also: `--parallel` far above the
    runs is a bound, not a number of slots to allocate."""
    work = tmp_path / "shared-folder"
    work.mkdir()
    for name in ("pipeline.py", "tqdm.py"):
        (work / name).write_text(f"open({str(work / (name + '.ran'))!r}, 'w').close()\nraise SystemExit(0)\n")
    recipe = write_recipe(tmp_path / "r.yaml", recipe_dict(tiny_bert, data, tmp_path / "unused"))
    monkeypatch.chdir(work)
    command = ["sweep", str(recipe), "--output", str(tmp_path / "s"), "--no-baseline", "--parallel", "99999999999"]
    assert main(command) == 0
    assert not list(work.glob("*.ran"))
    runs = json.loads((tmp_path / "s" / "sweep.json").read_text())["runs"]
    assert [run["status"] for run in runs] == ["finished"]


def test_a_lock_that_links_outside_the_run_folder_is_refused_untouched(finished, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    (finished / ".lock").unlink()
    (finished / ".lock").symlink_to("../notes.txt")
    assert main(["eval", str(finished)]) == 2
    assert ".lock' is a symbolic link" in capsys.readouterr().err and notes.read_text() == "my notes\n"


def test_eval_reads_a_read_only_run_folder_without_its_lock(finished, monkeypatch):
    (finished / ".lock").unlink()
    real = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if mode == os.W_OK else real(path, mode))
    assert main(["eval", str(finished)]) == 0
    assert not (finished / ".lock").exists()


def test_a_plugin_that_exits_while_imported_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "quitter.py").write_text("import sys\nsys.exit(0)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("EMBEDLAB_PLUGINS", "quitter")
    assert main(["schema"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: EMBEDLAB_PLUGINS: plugin 'quitter' called sys.exit(0) while being imported"]


def test_doc2vec_on_texts_without_words_is_one_line():
    pytest.importorskip("gensim")
    from pipeline.errors import PipelineError
    from pipeline.tasks.sequence_classification.classical import doc2vec_vectors

    with pytest.raises(PipelineError, match="doc2vec baseline: no word of the training texts"):
        doc2vec_vectors({"train": ["12 34", "!!", "5"], "test": ["6"]}, "train", seed=0)


@pytest.mark.parametrize(
    "change",
    [{"layers": {"token_embeddings": {"policy": "replace", "init": "random"}}}, {"model": {"add_tokens": ["zyx"]}}],
    ids=["replace", "add_tokens"],
)
def test_a_per_position_model_refuses_a_new_or_grown_table_with_one_line(tmp_path, tiny_bert, data, capsys, change):
    per_position = {"token_embeddings": {"policy": "replace", "init": "random", "per_position": True}}
    first = train_fresh(recipe_dict(tiny_bert, data, tmp_path / "pp", layers=per_position))
    capsys.readouterr()
    raw = recipe_dict(first / "model", data, tmp_path / "next")
    for section, value in change.items():
        raw[section] = {**raw.get(section, {}), **value}
    assert main(["train", str(write_recipe(tmp_path / "next.yaml", raw))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "a token table per position" in err[0] and not (tmp_path / "next").exists()


def test_a_damaged_cache_entry_is_made_again_with_the_same_result(tmp_path, tiny_bert, data, monkeypatch, caplog):
    monkeypatch.setenv("EMBEDLAB_CACHE", str(tmp_path / "cache"))
    scores = []
    for attempt in range(3):
        run = train_fresh(recipe_dict(tiny_bert, data, tmp_path / f"run{attempt}"))
        scores.append(json.loads((run / "metrics.json").read_text())["validation"])
        if attempt == 1:  # the entry the second run read: cut a file of it short
            arrow = next((tmp_path / "cache" / "encoded").rglob("*.arrow"))
            arrow.write_bytes(arrow.read_bytes()[:-10])
    assert "(encoded splits) is damaged" in caplog.text and "making it again" in caplog.text
    assert scores[0] == scores[1] == scores[2]


def test_a_flipped_bit_in_cached_fasttext_vectors_is_caught_before_gensim_reads_it(tmp_path, monkeypatch, caplog):
    pytest.importorskip("gensim")
    from pipeline.recipe.layers import VectorTraining
    from pipeline.surgery.trained_vectors import FASTTEXT_FILE, train_vectors

    monkeypatch.setenv("EMBEDLAB_CACHE", str(tmp_path / "cache"))
    spec = VectorTraining(method="fasttext", dim=8, epochs=1, min_count=1)
    texts = ["the cat sat on the mat", "the dog sat on the log"] * 5
    first = train_vectors(spec, texts, seed=0)
    model = Path(first.report["cache"]) / FASTTEXT_FILE
    raw = bytearray(model.read_bytes())
    raw[12] ^= 0x40  # inside the header: the vocabulary size, as in the survey's hang
    model.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING):
        second = train_vectors(spec, texts, seed=0)
    assert "making it again" in caplog.text and not second.report["from_cache"]
    assert (second.vectors.matrix == first.vectors.matrix).all()


def test_diagnosing_a_checkpoint_leaves_the_final_diagnosis_alone(finished):
    assert main(["diagnose", str(finished)]) == 0
    final = (finished / "diagnostics" / "diagnostics.json").read_text()
    assert main(["diagnose", str(finished / "checkpoints" / "step-0000002")]) == 0
    assert (finished / "diagnostics" / "diagnostics.json").read_text() == final
    early = json.loads((finished / "diagnostics-step-0000002" / "diagnostics.json").read_text())
    assert early["model"].endswith("step-0000002/model") and early["by_length"] is None  # not the final predictions
    assert json.loads(final)["by_length"] is not None


@pytest.mark.slow
def test_diagnose_names_the_rows_a_run_added(tmp_path, tiny_llama, data):
    raw = recipe_dict(tiny_llama, data, tmp_path / "run", family="llama")
    raw["model"]["add_tokens"] = {"tokens": ["zyxwv", "qwertz"], "init": "compose"}
    raw["layers"] = {"token_embeddings": {"policy": "finetune", "rows": "new"}}
    run = train_fresh(raw)
    assert main(["diagnose", str(run)]) == 0
    result = json.loads((run / "diagnostics" / "diagnostics.json").read_text())
    added = result["added_rows"]
    assert added["rows"] == 2 and added["first_id"] == 50257 and added["mean_norm"] > 0
    assert "2 more rows" in (run / "diagnostics" / "diagnostics.md").read_text()


def test_compare_of_a_sweep_folder_leaves_out_what_the_sweep_stopped(finished, tmp_path, tiny_bert, data):
    """A run the sweep stopped early and someone later resumed by hand to its end: out of the sweep's summary, and
    out of compare's too."""
    other = train_fresh(recipe_dict(tiny_bert, data, tmp_path / "other", train={"seed": 1}))
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    runs = [{"cell": "runs", "seed": 0, "output_dir": str(finished), "status": "finished"},
            {"cell": "runs", "seed": 1, "output_dir": str(other), "status": "stopped"}]  # fmt: skip
    (sweep / "sweep.json").write_text(json.dumps({"runs": runs}))
    assert main(["compare", str(sweep), "--output", str(tmp_path / "cmp"), "--no-baseline"]) == 0
    summary = json.loads((tmp_path / "cmp" / "summary.json").read_text())
    assert [cell["n"] for cell in summary["cells"].values()] == [1]
