"""Position policies of rotary decoders on tiny configs: each changes what it says (the frequencies of its formula,
no rotation where asked), trains, saves and reloads with the same logits; the loss by length and position;
other rotary architectures; bad input as one line."""

from __future__ import annotations

import json
import math

import pytest
import torch
from helpers import recipe_dict, templated_sentences, train_fresh, write_recipe
from transformers import AutoModelForCausalLM

from pipeline.cli import main
from pipeline.families.llama.rotary import linear_frequencies, restore_rotation
from pipeline.families.registry import family_named
from pipeline.recipe.layers import LayersConfig

LLAMA = family_named("llama")


def tiny(model_type: str = "llama", **settings):
    from transformers import AutoConfig

    torch.manual_seed(0)
    shape = {"vocab_size": 100, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2}
    heads = {"num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 64}
    config = AutoConfig.for_model(model_type, **shape, **heads, **settings)
    config._attn_implementation = "eager"
    return AutoModelForCausalLM.from_config(config)


def apply(model, **policy):
    positions = LayersConfig.model_validate({"positions": {"policy": "replace", **policy}}).positions
    if positions.tags["init"] == "rope":
        LLAMA.new_rotation(model, positions)
    else:
        LLAMA.stop_rotation(model, positions.layers)
    return model


def frequencies(model) -> torch.Tensor:
    return model.base_model.rotary_emb.inv_freq.double()


def uniform_attention(model) -> list[bool]:
    """Per layer: whether the last position attends equally to every earlier copy of a repeated token (the scores
    of identical tokens differ only through their positions)."""
    attentions = model(input_ids=torch.full((1, 8), 5), output_attentions=True).attentions
    return [bool(layer[0, 0, -1].max() - layer[0, 0, -1].min() < 1e-6) for layer in attentions]


def test_a_new_base_and_each_scaling_follow_their_formula():
    default = linear_frequencies(10000.0, 16).double()
    assert torch.allclose(frequencies(tiny()), default)
    assert torch.allclose(
        frequencies(apply(tiny(), init="rope", theta=40000.0)), linear_frequencies(40000.0, 16).double()
    )
    assert torch.allclose(frequencies(apply(tiny(), init="rope", scaling={"type": "linear", "factor": 4})), default / 4)
    # Dynamic NTK scaling changes nothing until the input is longer than the pretrained length.
    assert torch.allclose(frequencies(apply(tiny(), init="rope", scaling={"type": "dynamic", "factor": 4})), default)
    llama3 = frequencies(apply(tiny(), init="rope", scaling={"type": "llama3", "factor": 4}))
    wavelengths = 2 * math.pi / default
    high, low = 64 / 4.0, 64 / 1.0  # original length / high_freq_factor, / low_freq_factor
    assert torch.allclose(llama3[wavelengths < high], default[wavelengths < high])  # short wavelengths kept
    assert torch.allclose(llama3[wavelengths > low], default[wavelengths > low] / 4)  # long ones interpolated
    yarn = apply(tiny(), init="rope", scaling={"type": "yarn", "factor": 4})
    assert frequencies(yarn)[0] == default[0] and torch.isclose(frequencies(yarn)[-1], default[-1] / 4)
    assert yarn.base_model.rotary_emb.attention_scaling == pytest.approx(0.1 * math.log(4) + 1)


def test_partial_rotation_rotates_a_share_of_each_head():
    model = apply(tiny(), init="rope", partial=0.5)
    assert torch.allclose(frequencies(model), linear_frequencies(10000.0, 8).double())  # base^(-2i/r), r = 8 of 16
    details = LLAMA.rotary_positions(model)
    assert details["rotated_dimensions"] == 8 and details["head_dimensions"] == 16
    cos, sin = model.base_model.rotary_emb(torch.zeros(1, 3, 32), torch.arange(3)[None])
    adjusted_cos, adjusted_sin = model.model.layers[0].self_attn.embedlab_rotation.adjust(cos, sin)
    # Pairs (i, i + 8) of the 16 dimensions: 4 rotated, the other 4 kept (cos 1, sin 0).
    assert adjusted_cos.shape[-1] == 16 and torch.equal(adjusted_cos[..., 4:8], torch.ones(1, 3, 4))
    assert torch.equal(adjusted_sin[..., 12:], torch.zeros(1, 3, 4)) and not torch.equal(
        adjusted_sin[0, 2, :4], torch.zeros(4)
    )


def test_no_rotation_makes_attention_blind_to_position_where_asked():
    assert uniform_attention(tiny()) == [False, False]
    assert uniform_attention(apply(tiny(), init="none")) == [True, True]
    assert uniform_attention(apply(tiny(), init="none", layers=[1])) == [False, True]


@pytest.mark.parametrize(
    "model_type, settings",
    [("qwen2", {}), ("mistral", {}), ("gemma", {"head_dim": 16}), ("gpt_neox", {"partial_rotary_factor": 1.0})],
)
def test_other_rotary_architectures_take_the_same_policies(model_type, settings):
    if model_type == "gpt_neox":
        settings |= {"use_parallel_residual": True}
    model = apply(tiny(model_type, **settings), init="none")
    assert uniform_attention(model) == [True, True]
    based = apply(tiny(model_type, **settings), init="rope", theta=500.0, partial=0.5)
    assert torch.allclose(frequencies(based), linear_frequencies(500.0, 8).double())
    assert LLAMA.rotary_positions(based)["rotated_dimensions"] == 8


def lm_recipe(tmp_path, tiny_llama, positions: dict | None = None, **sections):
    files = {}
    for split, count, seed in (("train", 120, 0), ("validation", 30, 1)):
        files[split] = str(tmp_path / f"{split}.txt")
        (tmp_path / f"{split}.txt").write_text("\n".join(templated_sentences(count, seed)) + "\n")
    recipe = recipe_dict(tiny_llama, files, tmp_path / "run", family="llama", **sections)
    recipe["model"]["max_length"] = 16
    recipe["task"] = {"type": "language-modeling", "objective": "causal", **sections.get("task", {})}
    recipe["eval"] = {"splits": ["validation"], "batch_size": 4, **sections.get("eval", {})}
    recipe["train"] = {**recipe["train"], "max_steps": 4, "lr": 1e-3}
    if positions is not None:
        recipe["layers"] = {"positions": positions}
    return recipe


@pytest.mark.parametrize(
    "positions, plain",
    [
        ({"policy": "replace", "init": "rope", "theta": 20000.0, "scaling": {"type": "yarn", "factor": 2}}, True),
        ({"policy": "replace", "init": "none", "layers": [0]}, False),
        ({"policy": "replace", "init": "rope", "partial": 0.5}, False),
    ],
    ids=["theta-yarn", "nope", "partial"],
)
def test_a_policy_trains_saves_and_reloads_with_the_same_logits(tmp_path, tiny_llama, positions, plain):
    run = train_fresh(lm_recipe(tmp_path, tiny_llama, positions))
    sources = json.loads((run / "input_layers.json").read_text())
    assert "rotary" in sources and sources["sources"]["positions"].startswith("rotary:")
    ids = torch.tensor([[10, 11, 12, 13, 14, 15]])
    exp_logits = json.loads((run / "metrics.json").read_text())["validation"]["perplexity"]
    loaded = AutoModelForCausalLM.from_pretrained(run / "model")
    restored = restore_rotation(AutoModelForCausalLM.from_pretrained(run / "model"))
    with torch.no_grad():
        plain_logits, restored_logits = loaded(input_ids=ids).logits, restored(input_ids=ids).logits
    assert torch.equal(plain_logits, restored_logits) == plain  # config-only policies need nothing after loading
    assert (sources["rotary"]["saved_model_needs"] is None) == plain
    assert main(["eval", str(run), "--output", str(tmp_path / "scores.json")]) == 0  # through the pipeline: restored
    assert json.loads((tmp_path / "scores.json").read_text())["validation"]["perplexity"] == pytest.approx(
        exp_logits, rel=1e-6
    )


def test_freeze_and_finetune_say_the_rotation_has_nothing_to_train(tmp_path, tiny_llama):
    from helpers import build

    exp = build(lm_recipe(tmp_path, tiny_llama, {"policy": "freeze"}))
    assert "nothing to train" in exp.input_report.surgery.sources.positions


def test_the_loss_by_length_and_position(tmp_path, tiny_llama):
    run = train_fresh(lm_recipe(tmp_path, tiny_llama, task={"lengths": [32, 96]}))
    scores = json.loads((run / "metrics.json").read_text())["validation"]
    assert {"perplexity@32", "perplexity@96", "loss@96"} <= set(scores)
    assert {"loss@96/positions 0-63", "loss@96/positions 64-95"} <= set(scores)
    assert any(name.startswith("loss/positions 0-") for name in scores)  # within each document: its own length
    assert 0 < scores["bits_per_byte"] < scores["loss"]  # per byte of text (a token holds several bytes)
    records = [json.loads(line) for line in (run / "predictions-validation.jsonl").read_text().splitlines()]
    assert {record["length"] for record in records} == {None, 32, 96}
    assert (run / "position-loss-validation.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "positions, expected",
    [
        ({"policy": "replace", "init": "rope", "scaling": {"type": "linear", "factor": 1}}, "greater than 1"),
        ({"policy": "replace", "init": "rope", "theta": 0}, "theta: Input should be greater than 1"),
        ({"policy": "replace", "init": "rope", "scaling": {"type": "ntk", "factor": 2}}, "type: 'ntk' is not one of"),
        ({"policy": "replace", "init": "none", "layers": [7]}, "layer 7 is outside the model's 2 layers"),
        ({"policy": "replace", "init": "sinusoidal"}, "rotates queries and keys instead"),
        ({"policy": "replace", "init": "rope", "partial": 1.5}, "partial: Input should be less than 1"),
    ],
)
def test_bad_rotary_input_is_one_line(tmp_path, tiny_llama, capsys, positions, expected):
    recipe = write_recipe(tmp_path / "r.yaml", lm_recipe(tmp_path, tiny_llama, positions))
    assert main(["train", str(recipe)]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]  # (a model's loading bar may precede it)
    assert len(errors) == 1 and expected in errors[0] and "Traceback" not in err and not (tmp_path / "run").exists()


def test_rotary_policies_on_a_position_table_and_lengths_past_it_are_refused(
    tmp_path, tiny_bert, tiny_gpt2, jsonl_data, capsys
):
    bert = write_recipe(
        tmp_path / "b.yaml",
        recipe_dict(
            tiny_bert,
            jsonl_data,
            tmp_path / "b",
            layers={"positions": {"policy": "replace", "init": "rope", "theta": 5.0}},
        ),
    )
    assert main(["train", str(bert)]) == 2 and "applies to rotary decoders" in capsys.readouterr().err
    classify = recipe_dict(tiny_bert, jsonl_data, tmp_path / "c")
    classify["task"]["lengths"] = [32]
    assert main(["train", str(write_recipe(tmp_path / "c.yaml", classify))]) == 2
    assert "task.lengths: unknown key" in capsys.readouterr().err
    moved = recipe_dict(tiny_bert, jsonl_data, tmp_path / "m", eval={"lengths": [32]})
    assert main(["train", str(write_recipe(tmp_path / "m.yaml", moved))]) == 2
    assert "lengths moved to the language-modeling task section: write task.lengths" in capsys.readouterr().err
    gpt2 = lm_recipe(tmp_path, tiny_gpt2, task={"lengths": [128]})
    gpt2["model"]["family"] = "gpt2"
    assert main(["train", str(write_recipe(tmp_path / "g.yaml", gpt2))]) == 2
    assert "task.lengths: 128 exceeds the model's 64 positions" in capsys.readouterr().err


def test_diagnose_shows_the_rotation_before_and_after(tmp_path, tiny_llama):
    run = train_fresh(lm_recipe(tmp_path, tiny_llama, {"policy": "replace", "init": "rope", "theta": 40000.0}))
    assert main(["diagnose", str(run)]) == 0
    result = json.loads((run / "diagnostics" / "diagnostics.json").read_text())
    assert result["rotary"]["start"]["rope_theta"] == 10000.0 and result["rotary"]["end"]["rope_theta"] == 40000.0
    assert (run / "diagnostics" / "rotary-frequencies.png").read_bytes()[:4] == b"\x89PNG"
    assert "## Rotary positions" in (run / "diagnostics" / "diagnostics.md").read_text()
