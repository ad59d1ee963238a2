"""Every saved model explains itself: its card names the base model, the task, each input layer's policy, the data
and the scores, and holds the recipe that reproduces it; `pipeline push` uploads the folder with it."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import make_examples, recipe_dict, train_fresh, write_jsonl
from huggingface_hub import ModelCard

from pipeline.cli import main


def tiny_run(tmp_path, tiny_bert):
    data = {
        split: write_jsonl(tmp_path / f"{split}.jsonl", make_examples(count, seed))
        for split, count, seed in (("train", 32, 0), ("validation", 16, 1))
    }
    layers = {"token_embeddings": "freeze", "encoder": {"policy": "finetune", "freeze_bottom": 1}}
    return train_fresh(recipe_dict(tiny_bert, data, tmp_path / "run", layers=layers))


def test_the_card_reads_back_with_policies_scores_and_recipe(tmp_path, tiny_bert):
    run = tiny_run(tmp_path, tiny_bert)
    card = ModelCard.load(run / "model" / "README.md")
    assert "embedlab" in card.data.tags and card.data.pipeline_tag == "text-classification"
    assert "| token_embeddings | freeze |" in card.text and "| encoder | finetune: freeze_bottom 1 |" in card.text
    accuracy = json.loads((run / "metrics.json").read_text())["validation"]["accuracy"]
    assert f"| validation | {accuracy:.4f} |" in card.text
    assert str(tiny_bert) in card.text and "pipeline train recipe.yaml output_dir=runs/reproduced" in card.text
    assert (run / "recipe.yaml").read_text().strip() in card.text  # the resolved recipe, whole
    metrics = json.loads((run / "metrics.json").read_text())["train"]
    assert metrics["eval_examples_per_second"] > 0 and metrics["train_samples_per_second"] > 0


def test_push_sends_the_model_folder_with_its_card(tmp_path, tiny_bert, monkeypatch, capsys):
    run = tiny_run(tmp_path, tiny_bert)
    capsys.readouterr()
    assert main(["push", str(run), "--repo-id", "someone/tiny", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("would upload") and "README.md" in out and "model.safetensors" in out
    calls = []

    class FakeApi:  # the Hub client, as far as push uses it: nothing leaves this machine
        def create_repo(self, repo_id, **options):
            calls.append(("create_repo", repo_id, options))

        def upload_folder(self, **options):  # what it was given: the folder, and the files of it that go
            folder, allowed = Path(options["folder_path"]), set(options["allow_patterns"])
            sent = sorted(p.name for p in folder.iterdir() if p.name in allowed)
            calls.append(("upload_folder", options["repo_id"], sent, folder))

    monkeypatch.setattr("huggingface_hub.HfApi", FakeApi)
    assert main(["push", str(run), "--repo-id", "someone/tiny", "--private"]) == 0
    assert calls[0] == ("create_repo", "someone/tiny", {"private": True, "exist_ok": True})
    assert calls[1][0] == "upload_folder" and "README.md" in calls[1][2] and "config.json" in calls[1][2]
    assert calls[1][3] == run / "model"


def test_a_push_the_hub_refuses_is_one_line(tmp_path, tiny_bert, monkeypatch, capsys):
    run = tiny_run(tmp_path, tiny_bert)

    class Offline:
        def create_repo(self, repo_id, **options):
            raise ConnectionError("no network\nmany lines of details")

    monkeypatch.setattr("huggingface_hub.HfApi", Offline)
    capsys.readouterr()
    assert main(["push", str(run), "--repo-id", "someone/tiny"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: --repo-id: cannot push {run / 'model'} to someone/tiny (no network)"
    ]
