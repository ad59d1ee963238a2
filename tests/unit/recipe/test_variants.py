"""Layer policies as typed variants: each variant holds only its own fields, a field of another variant is one line
naming the variant that has it, the YAML spelling (and the short form) is unchanged, and a run folder saved when a
policy listed every field at its default still loads."""

from __future__ import annotations

import pytest
import yaml

from pipeline.errors import PipelineError
from pipeline.experiment.recipes import validate_recipe
from pipeline.experiment.reference import recipe_reference
from pipeline.recipe.io import dump_recipe, parse_recipe
from pipeline.recipe.layers import FinetunedTable, FrozenTable, MeanTransfer, RandomTable, VectorTable
from pipeline.recipe.positions import LearnedPositions, RopePositions, YarnScaling


@pytest.fixture
def base(tmp_path):
    train = tmp_path / "train.jsonl"
    train.write_text('{"text": "a b", "label": "x"}\n')
    return {
        "output_dir": str(tmp_path / "run"),
        "model": {"family": "bert", "name_or_path": "bert-base-uncased"},
        "task": {"type": "sequence-classification"},
        "data": {"files": {"train": str(train)}},
    }


@pytest.mark.parametrize(
    ("layers", "variant"),
    [
        ({}, FinetunedTable),
        ({"token_embeddings": "freeze"}, FrozenTable),
        ({"token_embeddings": {"policy": "replace", "init": "random", "std": 0.1}}, RandomTable),
        ({"token_embeddings": {"policy": "replace", "init": "vectors", "train": {"dim": 8}}}, VectorTable),
    ],
)
def test_each_spelling_picks_its_variant(base, layers, variant):
    recipe = validate_recipe({**base, "layers": layers})
    assert type(recipe.layers.token_embeddings) is variant
    saved = yaml.safe_load(dump_recipe(recipe))["layers"]["token_embeddings"]
    assert set(saved) == set(variant.model_fields)  # only its own fields are written
    assert next(iter(saved)) == "policy"  # the tags first


def test_position_and_scaling_variants(base):
    base["model"]["family"] = "llama"
    positions = {"policy": "replace", "init": "rope", "scaling": {"type": "yarn", "factor": 4, "beta_fast": 16}}
    recipe = validate_recipe({**base, "layers": {"positions": positions}})
    assert isinstance(recipe.layers.positions, RopePositions)
    assert isinstance(recipe.layers.positions.scaling, YarnScaling) and recipe.layers.positions.scaling.beta_fast == 16
    bert = {"family": "bert", "name_or_path": "bert-base-uncased"}
    learned = {"policy": "replace", "init": "learned", "then": "freeze"}
    learned = validate_recipe({**base, "model": bert, "layers": {"positions": learned}})
    assert isinstance(learned.layers.positions, LearnedPositions) and learned.layers.positions.is_frozen()


@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        ({"token_embeddings": {"policy": "freeze", "std": 0.1}},
         "layers.token_embeddings: std applies to policy: replace, init: random, not to policy: freeze"),
        ({"token_embeddings": {"policy": "replace", "init": "random", "vectors": "x.txt"}},
         "vectors applies to policy: replace, init: vectors or policy: replace, init: transfer, transfer: weighted"),
        ({"token_embeddings": {"policy": "replace", "init": "transfer", "transfer": "weighted"}},
         "layers.token_embeddings.vectors: required but missing"),
        ({"token_embeddings": {"policy": "replace"}}, "policy: replace needs init: random, vectors or transfer"),
        ({"positions": {"policy": "replace", "init": "rope", "scaling": {"type": "linear", "factor": 2,
                                                                        "beta_fast": 3}}},
         "layers.positions.scaling: beta_fast applies to type: yarn, not to type: linear"),
        ({"positions": {"policy": "replace", "init": "rope"}}, "init: rope needs theta, scaling or partial"),
        ({"encoder": {"policy": "finetune", "r": 4}}, "layers.encoder: r applies to policy: lora"),
        ({"token_embeddings": {"policy": "finetune", "stdd": 1}}, "unknown key; did you mean 'std'?"),
    ],
)  # fmt: skip
def test_a_field_of_another_variant_is_one_line_naming_it(base, layers, expected):
    with pytest.raises(PipelineError) as caught:
        validate_recipe({**base, "layers": layers})
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_rotary_and_table_variants_are_refused_by_the_family_that_does_not_take_them(base):
    rope = {"policy": "replace", "init": "rope", "theta": 5e4}
    with pytest.raises(PipelineError, match="init: rope applies to rotary decoders; family bert has a position table"):
        validate_recipe({**base, "layers": {"positions": rope}})
    none_in_layers = {"policy": "replace", "init": "none", "layers": [0]}
    with pytest.raises(PipelineError, match="layers does not apply to init: none on family bert"):
        validate_recipe({**base, "layers": {"positions": none_in_layers}})


def test_a_run_folder_saved_with_every_field_at_its_default_still_loads(base):
    old = {**base, "layers": {
        "token_embeddings": {"policy": "replace", "lr_multiplier": 1.0, "unfreeze_at_step": None,
                             "unfreeze_at_epoch": None, "then": "finetune", "rows": None, "tie": "keep",
                             "init": "transfer", "transfer": "mean", "std": None, "per_position": False,
                             "vectors": None, "train": None, "vectors_vocab": None, "vectors_format": "auto",
                             "fallback": "random", "width": "project"},
        "positions": {"policy": "finetune", "lr_multiplier": 1.0, "then": "finetune", "init": None, "theta": None,
                      "scaling": None, "combine": "add", "extend_mode": "copy"}},
        "eval": {"threshold": 0.5, "lengths": None}}  # fmt: skip
    old["model"] = {**old["model"], "tokenizer": {"build": "wordpiece", "vocab_size": 100}}
    recipe = parse_recipe(old, saved=True)
    assert type(recipe.layers.token_embeddings) is MeanTransfer
    with pytest.raises(PipelineError, match="rows applies to policy: finetune"):
        parse_recipe(old)  # a recipe a user writes gets no such leniency


def test_the_reference_shows_each_variant_with_its_own_fields():
    reference = recipe_reference()
    random_table = reference.split("**`layers.token_embeddings`: `policy: replace, init: random`**")[1].split("**")[0]
    assert "| `layers.token_embeddings.std` |" in random_table
    assert "| `layers.token_embeddings.vectors` |" not in random_table
    assert "**`layers.positions.scaling`: `type: yarn`**" in reference
    assert (
        "`task.type` (default `eval.metrics`)" in reference
        and "`regression` (pearson, spearman, mse, mae)" in reference
    )


def test_a_transplant_takes_another_model_s_tokenizer_and_a_method(base):
    from pipeline.recipe.layers import FocusTransfer, OmpTransfer

    def table(**fields):
        return {"token_embeddings": {"policy": "replace", "init": "transfer", **fields}}

    transplant = {**base, "model": {**base["model"], "tokenizer": "gpt2"}}
    recipe = validate_recipe({**transplant, "layers": table(transfer="omp", k=8)})
    assert type(recipe.layers.token_embeddings) is OmpTransfer and recipe.replaces_vocabulary()
    focus = validate_recipe({**transplant, "layers": table(transfer="focus")}).layers.token_embeddings
    assert type(focus) is FocusTransfer and focus.train.method == "fasttext" and not focus.train.lowercase
    assert not validate_recipe(transplant).replaces_vocabulary()  # a tokenizer named alone is the model's own
    random_rows = {"token_embeddings": {"policy": "replace", "init": "random"}}
    assert validate_recipe({**transplant, "layers": random_rows}).replaces_vocabulary()  # rows for its vocabulary
    with pytest.raises(PipelineError, match="to another tokenizer"):
        validate_recipe({**base, "layers": table(transfer="focus")})  # no model.tokenizer to move to
    with pytest.raises(PipelineError, match=r"k applies to .*transfer: omp"):
        validate_recipe({**transplant, "layers": table(transfer="focus", k=8)})
    with pytest.raises(PipelineError, match=r"distill .*applies to init: distill"):
        validate_recipe({**base, "model": {**base["model"], "add_tokens": {"tokens": ["x"], "distill": {"steps": 2}}}})
