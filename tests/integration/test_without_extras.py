"""The README's first command installs no optional library (`setup.sh examples`): every command works with them all
hidden, and the feature that needs one is refused before anything is created, with one line naming its extra."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import make_examples, recipe_dict, write_glove, write_jsonl, write_recipe

from pipeline.cli import main
from pipeline.extras import EXTRA_OF

HIDDEN = (*EXTRA_OF, "tensorboardX")


def hide(monkeypatch: pytest.MonkeyPatch, names: tuple[str, ...]) -> None:
    """Make `import NAME` (and its submodules) fail in this process, as if it were not installed."""
    for name in names:
        for loaded in [key for key in sys.modules if key == name or key.startswith(f"{name}.")]:
            monkeypatch.delitem(sys.modules, loaded)
        monkeypatch.setitem(sys.modules, name, None)


def hide_in_children(monkeypatch: pytest.MonkeyPatch, folder: Path, names: tuple[str, ...]) -> None:
    """The same in every Python process started from here (a sweep's runs), through a `sitecustomize`."""
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        textwrap.dedent(f"""\
        import sys
        for name in {names!r}:
            sys.modules[name] = None
        """)
    )
    monkeypatch.setenv("PYTHONPATH", str(folder))


@pytest.fixture
def data(tmp_path: Path) -> dict[str, str]:
    return {
        split: write_jsonl(tmp_path / f"{split}.jsonl", make_examples(count, seed))
        for split, count, seed in (("train", 32, 0), ("validation", 16, 1), ("test", 16, 2))
    }


def one_line_refusal(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    """Run a command that must be refused: exit 2, one `error:` line and no traceback; returns that line."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.slow
def test_every_command_works_with_the_optional_libraries_hidden(tmp_path, monkeypatch, tiny_bert, data, capsys):
    hide(monkeypatch, HIDDEN)
    hide_in_children(monkeypatch, tmp_path / "hook", HIDDEN)
    runs = []
    for seed in (0, 1):
        raw = recipe_dict(tiny_bert, data, tmp_path / f"run{seed}", eval={"splits": ["validation", "test"]})
        raw["train"] |= {"seed": seed, "save_every_steps": 2}  # a checkpoint on the way
        recipe = write_recipe(tmp_path / f"r{seed}.yaml", raw)
        assert main(["train", str(recipe)]) == 0
        runs.append(tmp_path / f"run{seed}")
    assert (runs[0] / "checkpoints").is_dir() and (runs[0] / "model" / "config.json").is_file()
    assert main(["eval", str(runs[0]), "--output", str(tmp_path / "scores.json")]) == 0
    assert main(["inspect", str(tmp_path / "r0.yaml")]) == 0
    assert main(["compare", str(runs[0]), str(runs[1]), "--output", str(tmp_path / "cmp")]) == 0
    assert main(["diagnose", str(runs[0])]) == 0
    sweep = ["sweep", str(tmp_path / "r0.yaml"), "--grid", "train.lr=1e-3,2e-3", "--output", str(tmp_path / "s")]
    assert main([*sweep, "--classical", "tfidf"]) == 0
    assert json.loads((tmp_path / "s" / "summary.json").read_text())["cells"]
    assert all(sys.modules.get(name) is None for name in HIDDEN)  # nothing got past the hiding
    assert "Traceback" not in capsys.readouterr().err


def test_a_saved_model_without_lora_never_imports_peft(tmp_path, monkeypatch, tiny_bert, data):
    hide(monkeypatch, ("peft",))
    raw = recipe_dict(tiny_bert, data, tmp_path / "run")
    raw["train"] |= {"save_every_steps": 2}
    assert main(["train", str(write_recipe(tmp_path / "r.yaml", raw))]) == 0
    assert (tmp_path / "run" / "metrics.json").is_file()


@pytest.mark.parametrize(
    ("hidden", "layers_or_train", "extra"),
    [
        ("peft", {"layers": {"encoder": {"policy": "lora", "r": 2}}}, "peft"),
        ("gensim", {"layers": {"token_embeddings": {"policy": "replace", "init": "vectors", "train": {}}}}, "vectors"),
        (
            "gensim",
            {"layers": {"token_embeddings": {"policy": "replace", "init": "vectors", "vectors": "GLOVE"}}},
            "vectors",
        ),
        ("tensorboard", {"train": {"report_to": ["tensorboard"]}}, "tensorboard"),
    ],
    ids=["lora", "trained-vectors", "glove-text", "tensorboard"],
)
def test_a_recipe_that_needs_a_missing_library_is_refused_at_load(
    tmp_path, monkeypatch, capsys, tiny_bert, data, hidden, layers_or_train, extra
):
    hide(monkeypatch, (hidden, "tensorboardX") if hidden == "tensorboard" else (hidden,))
    write_glove(tmp_path / "glove.txt", ["good", "bad"])
    sections = json.loads(json.dumps(layers_or_train).replace('"GLOVE"', json.dumps(str(tmp_path / "glove.txt"))))
    raw = recipe_dict(tiny_bert, data, tmp_path / "run")
    for name, value in sections.items():
        raw[name] = {**raw.get(name, {}), **value}
    recipe = write_recipe(tmp_path / "r.yaml", raw)
    line = one_line_refusal(capsys, ["train", str(recipe)])
    assert f"needs {hidden}: pip install 'embedlab[{extra}]'" in line
    assert not (tmp_path / "run").exists()  # refused before anything was created
    assert main(["validate", str(recipe)]) == 2  # and by every command that loads it


def test_a_gguf_checkpoint_without_gguf_is_refused_at_load(tmp_path, monkeypatch, capsys, data):
    hide(monkeypatch, ("gguf",))
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    raw = recipe_dict(
        None, data, tmp_path / "run", model={"family": "llama", "name_or_path": str(tmp_path / "model.gguf")}
    )
    line = one_line_refusal(capsys, ["train", str(write_recipe(tmp_path / "r.yaml", raw))])
    assert "needs gguf: pip install 'embedlab[gguf]'" in line and not (tmp_path / "run").exists()


def test_commands_that_need_a_missing_library_are_refused_with_one_line(tmp_path, monkeypatch, capsys, tiny_bert, data):
    hide(monkeypatch, ("ray", "gensim"))
    recipe = write_recipe(tmp_path / "r.yaml", recipe_dict(tiny_bert, data, tmp_path / "run"))
    output = tmp_path / "s"
    line = one_line_refusal(capsys, ["sweep", str(recipe), "--output", str(output), "--backend", "ray"])
    assert "--backend: the ray backend needs ray: pip install 'embedlab[ray]'" in line and not output.exists()
    line = one_line_refusal(capsys, ["sweep", str(recipe), "--output", str(output), "--classical", "doc2vec"])
    assert "the doc2vec baseline needs gensim" in line and not output.exists()
    hide(monkeypatch, ("bm25s",))
    line = one_line_refusal(capsys, ["sweep", str(recipe), "--output", str(output), "--classical", "bm25"])
    assert "the bm25 baseline needs bm25s: pip install 'embedlab[retrieval]'" in line and not output.exists()
