"""The recipe schema: defaults, shorthand, overrides, one-line errors, and every shipped recipe validates."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from helpers import REPO, recipe_dict, write_recipe

from pipeline.errors import PipelineError
from pipeline.experiment.recipes import load_recipe, validate_recipe
from pipeline.recipe import Recipe
from pipeline.recipe.io import apply_override, dump_recipe

SHIPPED = sorted((REPO / "recipes").rglob("*.yaml"))


@pytest.fixture
def base(tmp_path, jsonl_data, tiny_bert) -> dict:
    return recipe_dict(tiny_bert, jsonl_data, tmp_path / "run")


@pytest.mark.parametrize("recipe_path", SHIPPED, ids=[str(p.relative_to(REPO)) for p in SHIPPED])
def test_shipped_recipe_validates(recipe_path: Path, monkeypatch, tmp_path):
    monkeypatch.chdir(REPO)  # shipped recipes use paths relative to the repository root
    source = yaml.safe_load(recipe_path.read_text())["model"].get("name_or_path") or ""
    if source.startswith("runs/"):
        # A transfer recipe starts from a shipped pretraining recipe's run: that recipe must write it.
        producers = [p for p in SHIPPED if f"{yaml.safe_load(p.read_text())['output_dir']}/model" == source]
        assert producers, f"no shipped recipe writes {source}"
        (tmp_path / source).mkdir(parents=True)
        monkeypatch.chdir(tmp_path)
    recipe = load_recipe(recipe_path.resolve())
    assert isinstance(recipe, Recipe)
    assert recipe.output_dir.startswith("runs/")


def test_defaults_come_from_the_schema(base):
    recipe = validate_recipe(base)
    assert recipe.layers.token_embeddings.policy == "finetune"
    assert recipe.layers.positions.lr_multiplier == 1.0
    assert recipe.train.scheduler == "linear"
    assert recipe.data.holdout is None  # a 20% validation split, carved only where an eval split reads it
    assert recipe.task.text_column == "text"


def test_policy_shorthand_and_long_form(base):
    base["layers"] = {"token_embeddings": "freeze", "positions": {"policy": "finetune", "lr_multiplier": 0.5}}
    recipe = validate_recipe(base)
    assert recipe.layers.token_embeddings.policy == "freeze"
    assert recipe.layers.positions.lr_multiplier == 0.5


def test_overrides_parse_values_as_yaml(base, tmp_path):
    path = write_recipe(tmp_path / "r.yaml", base)
    recipe = load_recipe(
        path,
        ["train.lr=3e-5", "eval.splits=[validation, train]", "layers.positions=freeze", "train.max_grad_norm=null"],
    )
    assert recipe.train.lr == pytest.approx(3e-5)
    assert recipe.eval.splits == ["validation", "train"]
    assert recipe.layers.positions.policy == "freeze"
    assert recipe.train.max_grad_norm is None


def test_override_creates_missing_sections():
    raw: dict = {}
    apply_override(raw, "train.seed=7")
    assert raw == {"train": {"seed": 7}}


def test_override_without_equals_is_an_error():
    with pytest.raises(PipelineError, match="key=value"):
        apply_override({}, "train.lr")


def test_override_into_a_scalar_is_an_error():
    with pytest.raises(PipelineError, match="output_dir is 'x', not a mapping"):
        apply_override({"output_dir": "x"}, "output_dir.y=1")


def test_resolved_recipe_round_trips(base):
    recipe = validate_recipe(base)
    again = validate_recipe(yaml.safe_load(dump_recipe(recipe)))
    assert again == recipe


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"train": {"lrr": 1}}, "train.lrr: unknown key; did you mean 'lr'?"),
        ({"train": {"lr": -1}}, "train.lr: Input should be greater than 0"),
        ({"train": {"batch_size": "many"}}, "train.batch_size: Input should be a valid integer"),
        (
            {"layers": {"token_embeddings": "freez"}},
            "layers.token_embeddings: policy: 'freez' is not one of finetune, freeze or replace; did you mean",
        ),
        ({"eval": {"metrics": ["acuracy"]}}, "did you mean 'accuracy'?"),
        ({"model": {"family": "elmo"}}, "model.family: unknown family 'elmo'; one of bert, gpt2, bilstm, llama"),
        (
            {"data": {"files": {"train": "/nonexistent/train.csv"}}},
            "data.files: '/nonexistent/train.csv' does not exist",
        ),
        ({"data": {"folder": "/nonexistent"}}, "data.folder: '/nonexistent' does not exist"),
        (
            {"model": {"name_or_path": "pkg://no_such_package_xyz/model"}},
            "package 'no_such_package_xyz' is not installed",
        ),
        ({"model": {"name_or_path": "pkg://pipeline/../../etc"}}, "points outside the package folder"),
        ({"model": {"config": {"n_layer": 1}}}, "set exactly one of model.name_or_path"),
        ({"data": {"hub_id": "glue"}}, "set exactly one of data.hub_id, data.files or data.folder"),
        ({"train": {"warmup_steps": 3, "warmup_ratio": 0.1}}, "not both"),
        ({"data": {"holdout": {"validation": 0.7, "test": 0.4}}}, "sum below 1"),
        ({"output_dir": None}, "output_dir: Input should be a valid string"),
        ({"surprise": 1}, "surprise: unknown key"),
    ],
)
def test_bad_recipes_fail_with_the_field_named(base, change, expected):
    for section, value in change.items():
        base[section] = (
            {**base[section], **value} if isinstance(value, dict) and isinstance(base.get(section), dict) else value
        )
    with pytest.raises(PipelineError) as caught:
        validate_recipe(base)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message


def test_missing_required_section(base):
    del base["task"]
    with pytest.raises(PipelineError, match="task: required but missing"):
        validate_recipe(base)


def test_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(PipelineError, match="not found"):
        load_recipe(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: [unclosed\n")
    with pytest.raises(PipelineError, match="not valid YAML"):
        load_recipe(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(PipelineError, match="must be a YAML mapping"):
        load_recipe(listed)


def test_hub_ids_validate_offline(base):
    base["model"]["name_or_path"] = "bert-base-uncased"
    assert validate_recipe(base).model.name_or_path == "bert-base-uncased"


def test_the_docs_reference_page_is_generated_from_the_schema():
    """The recipe reference in the docs is the schema's, rendered when the site is built (never stale)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("mkdocs_hooks", REPO / "scripts" / "mkdocs_hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    page = (REPO / "docs" / "reference.md").read_text()
    rendered = hooks.on_page_markdown(page, None, None, None)
    assert hooks.MARKER in page and hooks.MARKER not in rendered
    for dotted in ("model.family", "layers.positions.extend_mode", "task.label_pieces", "eval.trust_metric_code"):
        assert f"| `{dotted}` |" in rendered


def test_loading_a_recipe_imports_no_model_code():
    """The recipe is data: loading and checking one imports neither torch nor transformers (nor any family)."""
    import subprocess
    import sys

    code = (
        "import sys; from pipeline.experiment.recipes import load_recipe; "
        "recipe = load_recipe('recipes/quickstart.yaml'); "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'accelerate', "
        "'datasets')"
        " or m.startswith('pipeline.families.bert.family') or m == 'pipeline.families.bilstm.modeling'); "
        "print(recipe.model.family, heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert result.stdout.strip() == "bert []"


def test_the_readme_recipe_is_valid():
    import re

    readme = (REPO / "README.md").read_text()
    block = re.search(r"## A recipe\n\n```yaml\n(.*?)```", readme, re.S).group(1)
    recipe = validate_recipe(yaml.safe_load(block))
    assert recipe.layers.token_embeddings.init == "vectors" and recipe.eval.splits == ["validation", "test"]
