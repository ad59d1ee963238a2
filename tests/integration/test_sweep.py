"""`pipeline sweep` and `pipeline compare`: a 2 × 2 grid × 2 seeds, resumed after an interruption, a failing cell,
the Ray backend against the local one, and the statistics on a hand-checkable case."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from helpers import recipe_dict, write_jsonl, write_recipe

from pipeline.cli import main
from pipeline.sweeps.statistics import RunResult, paired_comparison
from pipeline.sweeps.summary import load_run
from pipeline.tasks.sequence_classification.records import ClassificationRecord

pytestmark = pytest.mark.slow  # many runs or processes: the full suite (CI) runs them, `-m "not slow"` skips them

GRID = [
    "--grid",
    "layers.token_embeddings=finetune,freeze",
    "--grid",
    "layers.positions=finetune,{policy: replace, init: none}",
]


@pytest.fixture(scope="module")
def sweep_recipe(tmp_path_factory, tiny_bert) -> Path:
    folder = tmp_path_factory.mktemp("sweep")
    from helpers import make_examples

    data = {
        split: write_jsonl(folder / f"{split}.jsonl", make_examples(count, seed))
        for split, count, seed in (("train", 48, 0), ("test", 24, 1))
    }
    raw = recipe_dict(
        tiny_bert,
        data,
        folder / "unused",
        train={"max_steps": 3, "log_every_steps": 1, "eval_every_steps": 3},
        eval={"metrics": ["accuracy", "f1_macro"], "splits": ["test"], "batch_size": 8},
    )
    return write_recipe(folder / "recipe.yaml", raw)


@pytest.fixture(scope="module")
def finished_sweep(sweep_recipe, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("sweep-out") / "sweep"
    classical = ["--classical", "tfidf,doc2vec,frozen-mean"]
    assert main(["sweep", str(sweep_recipe), *GRID, "--seeds", "0,1", "--output", str(output), *classical]) == 0
    return output


def test_a_two_by_two_grid_over_two_seeds(finished_sweep):
    runs = sorted(
        p.relative_to(finished_sweep).as_posix()
        for p in finished_sweep.glob("*/seed=*")
        if (p / "metrics.json").is_file()
    )
    assert runs == [
        f"{cell}/seed={seed}"
        for cell in (
            "token_embeddings=finetune,positions=finetune",
            "token_embeddings=finetune,positions=replace-none",
            "token_embeddings=freeze,positions=finetune",
            "token_embeddings=freeze,positions=replace-none",
        )
        for seed in (0, 1)
    ]
    summary = json.loads((finished_sweep / "summary.json").read_text())
    assert summary["split"] == "test" and summary["baseline"] == "token_embeddings=finetune,positions=finetune"
    cell = summary["cells"]["token_embeddings=freeze,positions=finetune"]
    values = cell["scores"]["accuracy"]["values"]
    assert cell["n"] == 2 and cell["scores"]["accuracy"]["mean"] == pytest.approx(sum(values) / 2)
    assert {"accuracy", "f1_macro"} <= set(cell["vs_baseline"]) and "ci_low" in cell["vs_baseline"]["accuracy"]
    assert [row["method"] for row in summary["classical"]] == ["tfidf", "doc2vec", "frozen-mean"]
    assert all(0 <= row["scores"]["test"]["accuracy"] <= 1 and row["wall_s"] >= 0 for row in summary["classical"])
    for plot in summary["plots"]:
        assert (finished_sweep / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (
            finished_sweep / plot
        ).stat().st_size > 5000
    assert {"bars-accuracy.png", "curves-loss.png", "curves-test-accuracy.png"} <= set(summary["plots"])
    markdown = (finished_sweep / "summary.md").read_text()
    assert (
        "TF-IDF + logistic regression" in markdown
        and "Doc2Vec (PV-DBOW) + logistic regression" in markdown
        and "frozen encoder, mean-pooled + logistic regression" in markdown
        and "(baseline)" in markdown
        and "![bars-accuracy.png](bars-accuracy.png)" in markdown
    )
    assert (finished_sweep / "summary.csv").read_text().count("\n") == 4 + 1 + 3  # header, cells, classical rows


def test_a_rerun_trains_only_what_did_not_finish(finished_sweep, sweep_recipe, capsys):
    manifest = json.loads((finished_sweep / "sweep.json").read_text())
    unfinished = [Path(run["output_dir"]) for run in manifest["runs"][3:]]  # as if the sweep died after its third run
    for folder in unfinished:
        (folder / "metrics.json").unlink()
    assert main(["sweep", str(sweep_recipe), *GRID, "--seeds", "0,1", "--output", str(finished_sweep)]) == 0
    statuses = [run["status"] for run in json.loads((finished_sweep / "sweep.json").read_text())["runs"]]
    assert statuses == ["skipped"] * 3 + ["finished"] * 5
    assert main(["sweep", str(sweep_recipe), *GRID, "--seeds", "0,1", "--output", str(finished_sweep)]) == 0
    assert [run["status"] for run in json.loads((finished_sweep / "sweep.json").read_text())["runs"]] == ["skipped"] * 8
    assert "finished before, skipped" in capsys.readouterr().err


def test_seeds_added_to_a_finished_sweep_train_only_the_new_runs(sweep_recipe, tmp_path, capsys):
    grid, output = ["--grid", "layers.token_embeddings=finetune,freeze"], str(tmp_path / "s")
    assert main(["sweep", str(sweep_recipe), *grid, "--seeds", "0", "--output", output, "--no-baseline"]) == 0
    assert main(["sweep", str(sweep_recipe), *grid, "--seeds", "0,1", "--output", output, "--no-baseline"]) == 0
    runs = json.loads((tmp_path / "s" / "sweep.json").read_text())["runs"]
    assert sorted((run["seed"], run["status"]) for run in runs) == [(0, "skipped")] * 2 + [(1, "finished")] * 2
    assert json.loads((tmp_path / "s" / "summary.json").read_text())["cells"]["token_embeddings=freeze"]["n"] == 2
    capsys.readouterr()
    other = ["--grid", "layers.token_embeddings=finetune"]
    assert main(["sweep", str(sweep_recipe), *other, "--seeds", "0,1", "--output", output, "--no-baseline"]) == 2
    assert "holds another sweep" in capsys.readouterr().err


def test_a_failing_cell_does_not_stop_the_others(sweep_recipe, tmp_path, capsys):
    grid = ["--grid", "layers.encoder={freeze_bottom: 9},{freeze_bottom: 1}"]  # the tiny BERT has 2 layers
    assert (
        main(["sweep", str(sweep_recipe), *grid, "--seeds", "0", "--output", str(tmp_path / "s"), "--no-baseline"]) == 2
    )
    err = capsys.readouterr().err
    assert (
        "1 of 2 runs failed (first: encoder=9 seed=0: error: layers.encoder.freeze_bottom: the model has only 2 layers)"
        in err
    )
    runs = json.loads((tmp_path / "s" / "sweep.json").read_text())["runs"]
    assert [run["status"] for run in runs] == ["failed", "finished"]
    assert list(json.loads((tmp_path / "s" / "summary.json").read_text())["cells"]) == ["encoder=1"]


def test_a_bad_grid_value_is_one_line_naming_its_cell(sweep_recipe, tmp_path, capsys):
    assert main(["sweep", str(sweep_recipe), "--grid", "train.lr=1e-3,-1", "--output", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.count("\n") == 0
        and err.startswith("error: cell lr=-1: ")
        and "train.lr: Input should be greater than 0" in err
    )
    assert not (tmp_path / "s").exists()


def test_ray_gives_the_local_backend_s_metrics(sweep_recipe, finished_sweep, tmp_path, monkeypatch):
    pytest.importorskip("ray")
    grid = ["--grid", "layers.token_embeddings=finetune,freeze"]
    output = tmp_path / "ray"
    monkeypatch.chdir(tmp_path)  # relative paths, as a user types them: Ray runs each trial in a folder of its own
    relative_recipe = Path(__import__("os").path.relpath(sweep_recipe, tmp_path))
    assert (
        main(
            [
                "sweep",
                str(relative_recipe),
                *grid,
                "layers.positions=finetune",
                "--seeds",
                "0",
                "--output",
                "ray",
                "--backend",
                "ray",
                "--no-baseline",
            ]
        )
        == 0
    )
    for cell in ("token_embeddings=finetune", "token_embeddings=freeze"):
        ray_scores = json.loads((output / cell / "seed=0" / "metrics.json").read_text())["test"]
        local = json.loads((finished_sweep / f"{cell},positions=finetune" / "seed=0" / "metrics.json").read_text())[
            "test"
        ]
        assert ray_scores == local


def test_each_run_s_model_card_gets_its_cell_s_intervals(finished_sweep):
    from huggingface_hub import ModelCard

    card = ModelCard.load(
        finished_sweep / "token_embeddings=freeze,positions=finetune" / "seed=0" / "model" / "README.md"
    )
    assert f"In the sweep {finished_sweep}" in card.text and "of 2 seeds of the cell" in card.text
    assert "(mean ± std over seeds)" in card.text


def test_compare_two_runs(finished_sweep, tmp_path):
    a, b = (
        finished_sweep / "token_embeddings=finetune,positions=finetune" / "seed=0",
        finished_sweep / "token_embeddings=freeze,positions=finetune" / "seed=0",
    )
    assert main(["compare", str(a), str(b), "--output", str(tmp_path / "cmp"), "--baseline", str(a)]) == 0
    summary = json.loads((tmp_path / "cmp" / "summary.json").read_text())
    assert list(summary["cells"]) == ["token_embeddings=finetune", "token_embeddings=freeze"]
    assert (
        summary["baseline"] == "token_embeddings=finetune"
        and "vs_baseline" in summary["cells"]["token_embeddings=freeze"]
    )


def test_compare_needs_no_data_unless_a_classical_row_is_asked_for(finished_sweep, tmp_path, capsys, caplog):
    """Run folders received from someone else: their data is not here. Only a classical row reads it."""
    import shutil

    runs = []
    for cell in ("token_embeddings=finetune,positions=finetune", "token_embeddings=freeze,positions=finetune"):
        copy = shutil.copytree(finished_sweep / cell / "seed=0", tmp_path / "received" / cell)
        recipe = yaml.safe_load((copy / "recipe.yaml").read_text())
        recipe["data"]["files"] = {
            split: str(tmp_path / "gone" / f"{split}.jsonl") for split in recipe["data"]["files"]
        }
        (copy / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
        runs.append(str(copy))
    assert main(["compare", *runs, "--output", str(tmp_path / "plain"), "--no-baseline"]) == 0
    assert main(["compare", *runs, "--output", str(tmp_path / "default")]) == 0  # the default row is left out, said
    assert "classical rows left out" in caplog.text and "does not exist" in caplog.text
    assert json.loads((tmp_path / "default" / "summary.json").read_text())["cells"]
    capsys.readouterr()
    assert main(["compare", *runs, "--output", str(tmp_path / "asked"), "--classical", "tfidf"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0] and str(tmp_path / "gone") in err[0]


def test_compare_counts_a_run_once_and_refuses_what_does_not_pair(finished_sweep, tmp_path, capsys, caplog):
    import shutil

    run = finished_sweep / "token_embeddings=finetune,positions=finetune" / "seed=0"
    other = finished_sweep / "token_embeddings=freeze,positions=finetune" / "seed=0"
    copy = shutil.copytree(run, tmp_path / "copy-of-a-run")
    relative = os.path.relpath(run)
    assert (
        main(["compare", str(run), relative, str(copy), str(other), "--output", str(tmp_path / "c"), "--no-baseline"])
        == 0
    )
    cells = json.loads((tmp_path / "c" / "summary.json").read_text())["cells"]
    assert [cell["n"] for cell in cells.values()] == [1, 1]  # the run, its other spelling and its copy: one seed
    assert "is the same run as" in caplog.text
    odd = shutil.copytree(other, tmp_path / "odd")
    recipe = yaml.safe_load((odd / "recipe.yaml").read_text())
    prints = json.loads((odd / "fingerprints.json").read_text())
    (odd / "fingerprints.json").write_text(json.dumps(prints | {"test": "0" * 64}))
    assert main(["compare", str(run), str(odd), "--output", str(tmp_path / "d"), "--no-baseline"]) == 0
    assert "comes from other data than" in caplog.text and "compared on the examples they share" in caplog.text
    for path in odd.glob("predictions-*.jsonl"):  # records of an older version: no identities, pairs by position
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        path.write_text("".join(json.dumps({k: v for k, v in line.items() if k != "example"}) + "\n" for line in lines))
    capsys.readouterr()
    assert main(["compare", str(run), str(odd), "--output", str(tmp_path / "d2"), "--no-baseline"]) == 2
    assert "carry no example identities" in capsys.readouterr().err
    (odd / "recipe.yaml").write_text(yaml.safe_dump(recipe | {"task": {"type": "regression"}}))
    assert main(["compare", str(run), str(odd), "--output", str(tmp_path / "e"), "--no-baseline"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "different task types" in err[0] and not (tmp_path / "e").exists()


def test_a_sweep_folder_is_found_from_any_working_directory(finished_sweep, tmp_path, monkeypatch):
    """`sweep.json` records run folders as the sweep was started (relative to its working directory): compare
    finds them under the sweep folder as given, from anywhere, and the folder may have moved."""
    import shutil

    moved = shutil.copytree(finished_sweep, tmp_path / "moved" / "sweep")
    manifest = json.loads((moved / "sweep.json").read_text())
    for run in manifest["runs"]:
        run["output_dir"] = os.path.join("runs", "sweep", *Path(run["output_dir"]).parts[-2:])
    (moved / "sweep.json").write_text(json.dumps(manifest))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["compare", os.path.relpath(moved), "--output", "c", "--no-baseline"]) == 0
    cells = json.loads((elsewhere / "c" / "summary.json").read_text())["cells"]
    assert sum(cell["n"] for cell in cells.values()) == len(manifest["runs"])


def test_compare_names_a_section_setting_once_as_the_sweep_does(finished_sweep, tmp_path):
    a, b = (
        finished_sweep / "token_embeddings=finetune,positions=finetune",
        finished_sweep / "token_embeddings=finetune,positions=replace-none",
    )
    assert (
        main(["compare", str(a / "seed=0"), str(b / "seed=0"), "--output", str(tmp_path / "c"), "--no-baseline"]) == 0
    )
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert list(summary["cells"]) == ["positions=finetune", "positions=replace-none"]


def fake_run(folder: Path, seed: int, correct: list[bool]) -> RunResult:
    folder.mkdir(parents=True)
    rows = [
        ClassificationRecord(i, "a", "a" if right else "b", [1.0, 0.0]).to_json() for i, right in enumerate(correct)
    ]
    write_jsonl(folder / "predictions-test.jsonl", rows)
    accuracy = sum(correct) / len(correct)
    return RunResult(
        "x", seed, folder, {"test": {"accuracy": accuracy, "f1_macro": 0.0}}, {}, "sequence-classification"
    )


def test_the_paired_interval_on_a_hand_checkable_case(tmp_path):
    always = [fake_run(tmp_path / f"right{s}", s, [True] * 10) for s in (0, 1, 2)]
    never = [fake_run(tmp_path / f"wrong{s}", s, [False] * 10) for s in (0, 1, 2)]
    half = [fake_run(tmp_path / f"half{s}", s, [True] * 5 + [False] * 5) for s in (0, 1, 2)]
    right_vs_wrong = paired_comparison(always, never, "test")["accuracy"]
    # Every seed and every resample of 10 examples: all right against all wrong, a difference of exactly 1.
    assert right_vs_wrong.ci_low == right_vs_wrong.ci_high == 1.0 and right_vs_wrong.excludes_zero
    assert right_vs_wrong.examples_ci_low == right_vs_wrong.examples_ci_high == 1.0
    assert right_vs_wrong.seed_differences == [1.0] * 3 and right_vs_wrong.seed_difference_std == 0.0
    same = paired_comparison(half, half, "test")["accuracy"]
    assert same.ci_low == same.ci_high == 0.0 and not same.excludes_zero
    versus_half = paired_comparison(always, half, "test")["accuracy"]
    # Differences 0 on five examples and 1 on five, the same for every seed: only test noise, about ±1.96 × 0.16.
    assert 0.0 < versus_half.ci_low < 0.5 < versus_half.ci_high <= 1.0 and versus_half.seed_variance == 0.0
    two_seeds = paired_comparison(always[:2], never[:2], "test")["accuracy"]
    assert two_seeds.ci_low is None and not two_seeds.excludes_zero and "2 paired seed(s)" in two_seeds.no_interval
    assert two_seeds.examples_ci_low == 1.0  # the interval over examples alone is still given, labelled as such


def test_parallel_runs_give_the_metrics_of_runs_one_at_a_time(sweep_recipe, tmp_path):
    grid = [
        "--grid",
        "layers.token_embeddings=finetune,freeze",
        "layers.positions=finetune",
        "--seeds",
        "0",
        "--no-baseline",
        "--cpus-per-trial",
        "1",
    ]
    assert main(["sweep", str(sweep_recipe), *grid, "--output", str(tmp_path / "one")]) == 0
    assert main(["sweep", str(sweep_recipe), *grid, "--output", str(tmp_path / "two"), "--parallel", "2"]) == 0
    for cell in ("token_embeddings=finetune", "token_embeddings=freeze"):
        one, two = (
            json.loads((tmp_path / name / cell / "seed=0" / "metrics.json").read_text()) for name in ("one", "two")
        )
        assert one["test"] == two["test"]


def test_decisions_on_the_test_split_are_refused(sweep_recipe, tmp_path, capsys):
    """The sweep recipe evaluates on test alone: neither adaptive seeds nor early stopping may decide by it."""
    for option in (["--seeds", "auto:3:4"], ["--early-stop", "asha", "train.eval_every_steps=1"]):
        output = tmp_path / option[0].strip("-")
        assert main(["sweep", str(sweep_recipe), *option, "--output", str(output), "--no-baseline"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "the test split is reported, never optimised" in err[0] and not output.exists()


def test_auto_seeds_run_the_first_seeds_then_only_where_the_answer_is_open(sweep_recipe, tmp_path):
    output = tmp_path / "auto"
    grid = ["--grid", "layers.token_embeddings=finetune,freeze", "layers.positions=finetune"]
    decide = "eval.splits=[validation, test]"  # a validation split carved from train decides; test is reported
    command = ["sweep", str(sweep_recipe), decide, *grid, "--seeds", "auto:3:4", "--output", str(output)]
    assert main([*command, "--no-baseline"]) == 0
    manifest = json.loads((output / "sweep.json").read_text())
    decisions = manifest["seed_decisions"]
    frozen = decisions["token_embeddings=freeze"]
    assert manifest["seeds"] == "auto:3:4" and frozen["seeds"] in (3, 4) and frozen["stopped_because"]
    seeds_run = sorted(run["seed"] for run in manifest["runs"] if run["cell"] == "token_embeddings=freeze")
    assert seeds_run == list(range(frozen["seeds"]))
    baseline_seeds = sorted(run["seed"] for run in manifest["runs"] if run["cell"] == "token_embeddings=finetune")
    assert baseline_seeds == list(range(frozen["seeds"]))  # the baseline gets every seed a cell gets
    summary = json.loads((output / "summary.json").read_text())
    assert summary["confidence"] > 0.95 and summary["cells"]["token_embeddings=freeze"]["seed_decision"] == frozen
    assert "Δ accuracy [" in (output / "summary.md").read_text()
    # The decision read validation, whose examples the test split does not share in number: its interval and
    # example count are validation's, recomputed from the runs, not the reported test split's.
    assert frozen["deciding_split"] == "validation"
    runs = {cell: [load_run(output / cell / f"seed={seed}", cell) for seed in range(frozen["seeds"])]
            for cell in ("token_embeddings=freeze", "token_embeddings=finetune")}  # fmt: skip
    on = {split: paired_comparison(*runs.values(), split, summary["confidence"])[frozen["deciding_score"]]
          for split in ("validation", "test")}  # fmt: skip
    assert on["validation"].examples != on["test"].examples
    assert frozen["examples"] == on["validation"].examples
    assert frozen["interval"] == [on["validation"].ci_low, on["validation"].ci_high]


def learning_rate_recipe(tmp_path: Path, max_steps: int, eval_every_steps: int) -> Path:
    """A tiny GPT-2 language model on templated sentences, evaluated on validation during training."""
    from helpers import lm_recipe, templated_sentences

    files = {}
    for split, count, seed in (("train", 200, 0), ("validation", 40, 1)):
        files[split] = str(tmp_path / f"{split}.txt")
        Path(files[split]).write_text("\n".join(templated_sentences(count, seed)) + "\n")
    train = {"max_steps": max_steps, "eval_every_steps": eval_every_steps}
    return write_recipe(tmp_path / "lm.yaml", lm_recipe(tmp_path, files, family="gpt2", train=train))


def test_early_stopping_on_ray_stops_a_run_and_reports_the_rest(tmp_path):
    """ASHA on the ray backend, end to end: the scheduler reads `score` from every result a trial reports, its last
    one (the outcome) included."""
    pytest.importorskip("ray")
    recipe = learning_rate_recipe(tmp_path, max_steps=12, eval_every_steps=2)
    output = tmp_path / "lr"
    grid = "train.lr=0.01,0.02,0.005,0.000001"
    command = ["sweep", str(recipe), "--grid", grid, "--output", str(output), "--backend", "ray", "--no-baseline"]
    assert main([*command, "--early-stop", "asha", "--cpus-per-trial", "1"]) == 0
    runs = {run["cell"]: run for run in json.loads((output / "sweep.json").read_text())["runs"]}
    assert {run["status"] for run in runs.values()} <= {"finished", "stopped"}
    assert runs["lr=1e-06"]["status"] == "stopped" and runs["lr=1e-06"]["stopped_at"]["step"] >= 2
    finished = [cell for cell, run in runs.items() if run["status"] == "finished"]
    assert finished, "ASHA lets the best run finish"
    summary = json.loads((output / "summary.json").read_text())
    assert sorted(summary["cells"]) == sorted(finished) and "lr=1e-06" not in summary["cells"]
    assert "stopped early" in (output / "summary.md").read_text()


def test_early_stopping_stops_a_run_that_falls_behind(tmp_path):
    recipe = learning_rate_recipe(tmp_path, max_steps=30, eval_every_steps=10)
    output = tmp_path / "lr"
    command = [
        "sweep",
        str(recipe),
        "--grid",
        "train.lr=0.01,0.02,0.005,0.000001",
        "--output",
        str(output),
        "--early-stop",
        "asha",
        "--no-baseline",
    ]
    assert main(command) == 0
    runs = json.loads((output / "sweep.json").read_text())["runs"]
    assert [run["status"] for run in runs] == ["finished"] * 3 + ["stopped"]
    # (a run this short may reach its end before the stop takes effect: stopped all the same, and left out)
    assert runs[3]["stopped_at"]["step"] == 10
    summary = json.loads((output / "summary.json").read_text())
    assert "lr=1e-06" not in summary["cells"] and summary["stopped_early"][0]["seed"] == 0
    assert "stopped early" in (output / "summary.md").read_text()
    assert main(command) == 0  # a rerun leaves the stopped run stopped
    assert [run["status"] for run in json.loads((output / "sweep.json").read_text())["runs"]] == ["skipped"] * 3 + [
        "stopped"
    ]
