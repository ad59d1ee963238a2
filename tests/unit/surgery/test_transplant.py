"""Tokenizer transplant beyond the mean: FOCUS and OMP rows, the shared space they meet in, and another model's
tokenizer on a pretrained decoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import build, lm_recipe, templated_sentences
from safetensors.torch import load_file
from sklearn.linear_model import orthogonal_mp
from transformers import AutoTokenizer, BertTokenizerFast

from pipeline.surgery.transfer import apply_plan, plan_transfer
from pipeline.surgery.transplant import focus_plans, omp, omp_plans, sparsemax, token_keys
from pipeline.surgery.vectors import WordVectors

OLD = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "good", "movie", "##s", "bad", "##ly", "film"]
NEW = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "goods", "badly", "##s", "film", "the", "zzz"]
MADE_UP = ["zorblat", "quixxle", "frumbo", "glinterwick"]  # words GPT-2's merges do not hold whole


def wordpiece(tmp_path, name: str, vocab: list[str]) -> BertTokenizerFast:
    (tmp_path / f"{name}.txt").write_text("\n".join(vocab) + "\n")
    return BertTokenizerFast(vocab=str(tmp_path / f"{name}.txt"))


def test_sparsemax_projects_onto_the_simplex():
    assert sparsemax(torch.tensor([[1.0, 0.5, -1.0]])).tolist() == [[0.75, 0.25, 0.0]]  # τ = (1.5 − 1) / 2
    weights = sparsemax(torch.randn(20, 50, generator=torch.Generator().manual_seed(0)))
    assert torch.allclose(weights.sum(1), torch.ones(20)) and (weights >= 0).all() and (weights == 0).any(1).all()


def test_omp_recovers_an_exact_sparse_mix_and_agrees_with_scikit_learn():
    generator = torch.Generator().manual_seed(0)
    dictionary = torch.nn.functional.normalize(torch.randn(60, 16, generator=generator, dtype=torch.float64), dim=1)
    target = 0.6 * dictionary[3] - 0.4 * dictionary[17]
    chosen, coefficients = omp(dictionary, target[None], k=2)
    assert sorted(chosen[0].tolist()) == [3, 17]
    assert dict(zip(chosen[0].tolist(), coefficients[0].tolist(), strict=True)) == pytest.approx({3: 0.6, 17: -0.4})
    targets = torch.randn(5, 16, generator=generator, dtype=torch.float64)
    chosen, coefficients = omp(dictionary, targets, k=4)
    reference = orthogonal_mp(dictionary.T.numpy(), targets.T.numpy(), n_nonzero_coefs=4)  # (atoms, targets)
    ours = np.zeros_like(reference)
    for t in range(5):
        ours[chosen[t].numpy(), t] = coefficients[t].numpy()
    assert np.allclose(ours, reference, atol=1e-8)


def test_omp_prefers_a_long_atom_to_a_short_one_pointing_the_same_way():
    # a rare token's short vector points almost exactly at the target: by direction alone (unit atoms) it wins with
    # a coefficient near 1,000, which on a pretrained row would make a row 1,000 times too long
    dictionary = torch.tensor([[1.0, 0.0], [0.001, 0.0001]], dtype=torch.float64)
    chosen, coefficients = omp(dictionary, torch.tensor([[1.0, 0.1]], dtype=torch.float64), k=1)
    assert chosen.tolist() == [[0]] and coefficients.abs().max() < 1.01


def test_token_keys_name_word_starts_and_continuations_alike_across_tokenizers(tmp_path, tiny_gpt2):
    keys = token_keys(wordpiece(tmp_path, "new", NEW))
    assert keys[:5] == [None] * 5 and keys[NEW.index("goods")] == "▁goods" and keys[NEW.index("##s")] == "s"
    gpt2 = AutoTokenizer.from_pretrained(tiny_gpt2)
    gpt2_keys = token_keys(gpt2)
    assert gpt2_keys[gpt2.convert_tokens_to_ids("Ġgood")] == "▁good" and gpt2_keys[gpt2.eos_token_id] is None
    assert gpt2_keys[gpt2.convert_tokens_to_ids("Ċ")] == "<a>"  # white space is written so a key is one word


def vectors_of(rows: dict[str, list[float]]) -> WordVectors:
    return WordVectors({key: i for i, key in enumerate(rows)}, np.array(list(rows.values()), dtype=np.float32))


def test_omp_rows_are_the_same_mix_of_the_anchors_pretrained_rows(tmp_path):
    old, new = wordpiece(tmp_path, "old", OLD), wordpiece(tmp_path, "new", NEW)
    space = {"▁good": [1, 0, 0], "s": [0, 1, 0], "▁film": [0, 0, 1], "▁the": [-1, 0.5, 0.5]}
    space |= {"▁goods": [0.7, 0.3, 0.0], "▁badly": [0.0, -0.5, 2.0]}  # exact mixes of two anchors each
    plans = plan_transfer(old, new)
    omp_plans(plans, token_keys(new), vectors_of(space), k=2)
    table = torch.randn(len(OLD), 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    moved = apply_plan(table, plans, seed=0)
    row = {token: i for i, token in enumerate(OLD)}
    assert plans[NEW.index("goods")].route == "omp" and plans[NEW.index("zzz")].route == "random"  # zzz: no vector
    assert torch.allclose(moved[NEW.index("goods")], 0.7 * table[row["good"]] + 0.3 * table[row["##s"]])
    assert torch.allclose(moved[NEW.index("badly")], -0.5 * table[row["##s"]] + 2.0 * table[row["film"]])
    for shared in ("good", "##s", "film", "the"):  # shared tokens keep their rows bit for bit
        assert torch.equal(moved[NEW.index(shared)], table[row[shared]])


def test_focus_rows_mix_the_nearest_anchors_with_sparsemax_weights(tmp_path):
    old, new = wordpiece(tmp_path, "old", OLD), wordpiece(tmp_path, "new", NEW)
    space = {"▁good": [1, 0, 0], "s": [0, 1, 0], "▁film": [0, 0, 1], "▁the": [-1, -1, -1]}
    space |= {"▁goods": [0.9, 0.4, 0.0], "▁badly": [0.0, 0.1, 1.0]}
    plans = plan_transfer(old, new)
    focus_plans(plans, new, vectors_of(space))
    goods = plans[NEW.index("goods")]
    assert goods.route == "focus" and sum(goods.weights) == pytest.approx(1.0)
    assert set(goods.sources) == {OLD.index("good"), OLD.index("##s")}  # `the` points away: weight 0, left out
    assert goods.weights[goods.sources.index(OLD.index("good"))] > 0.5  # the nearer anchor weighs more
    badly = plans[NEW.index("badly")]
    assert badly.sources[int(np.argmax(badly.weights))] == OLD.index("film")


def transplant_recipe(tmp_path, checkpoint, transfer: dict) -> dict:
    """A tiny Llama LM with the GPT-2 tokenizer, moved to a BPE tokenizer built on text with made-up words."""
    from pipeline.recipe.model import TokenizerBuild
    from pipeline.vocabulary.build import build_tokenizer

    rng = np.random.default_rng(0)
    texts = [f"{s} {rng.choice(MADE_UP)} {rng.choice(MADE_UP)}" for s in templated_sentences(80, 0)]
    files = {}
    for split in ("train", "validation"):
        (tmp_path / f"{split}.txt").write_text("\n".join(texts) + "\n")
        files[split] = str(tmp_path / f"{split}.txt")
    folder = tmp_path / "bpe"
    if not folder.exists():
        spec = TokenizerBuild(build="bpe", vocab_size=330, min_frequency=1)
        build_tokenizer(spec, texts).save_pretrained(folder)
    layers = {"token_embeddings": {"policy": "replace", "init": "transfer", **transfer}}
    raw = lm_recipe(tmp_path, files, "llama", layers=layers)
    raw["model"] = {"family": "llama", "name_or_path": str(checkpoint), "tokenizer": str(folder), "max_length": 16}
    return raw


@pytest.mark.parametrize("transfer", [{"transfer": "focus"}, {"transfer": "omp", "k": 4}], ids=["focus", "omp"])
def test_another_tokenizer_transplanted_onto_a_decoder(tmp_path, tiny_llama, transfer):
    pytest.importorskip("gensim")
    exp = build(transplant_recipe(tmp_path, tiny_llama, transfer))
    report = exp.input_report.vocabulary
    method = transfer["transfer"]
    assert report["new_vocabulary"] == len(exp.tokenizer) and report["rows"][method] > 0, report["rows"]
    table = exp.model.get_input_embeddings().weight
    assert exp.model.get_output_embeddings().weight is table  # the tied head follows the table
    old = load_file(tiny_llama / "model.safetensors")["model.embed_tokens.weight"]
    old_vocab = AutoTokenizer.from_pretrained(tiny_llama).get_vocab()
    for token in ("Ġcat", "Ġthe", "."):  # shared tokens keep their rows bit for bit
        assert torch.equal(table[exp.tokenizer.convert_tokens_to_ids(token)].detach(), old[old_vocab[token]])
    again = build(transplant_recipe(tmp_path, tiny_llama, transfer)).model.get_input_embeddings().weight
    assert torch.equal(table, again)  # the same rows for the same seed
    assert exp.input_report.surgery.trained_vectors["method"] == "fasttext"


def test_omp_with_a_donor_table_anchors_every_shared_token(tmp_path, tiny_llama):
    from transformers import LlamaConfig, LlamaModel

    raw = transplant_recipe(tmp_path, tiny_llama, {"transfer": "omp", "k": 3, "donor": str(tmp_path / "donor")})
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "bpe")
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2)  # fmt: skip
    torch.manual_seed(1)
    LlamaModel(config).save_pretrained(tmp_path / "donor")
    exp = build(raw)
    rows = exp.input_report.vocabulary["rows"]
    assert rows["omp"] > 0 and rows["composed"] == rows["random"] == 0  # every token has a donor vector
    assert exp.input_report.surgery.trained_vectors is None  # the donor is the space: nothing trained


def test_distilled_rows_lower_the_hidden_state_gap_they_fit(tmp_path, tiny_llama):
    from helpers import recipe_dict, write_jsonl

    lines = [line.replace("cat", "zorblat").replace("dog", "quixxle") for line in templated_sentences(60, 0)]
    files = {split: write_jsonl(tmp_path / f"{split}.jsonl", [{"text": line} for line in lines])
             for split in ("train", "validation")}  # fmt: skip
    raw = recipe_dict(tiny_llama, files, tmp_path / "run", family="llama")
    raw["task"] = {"type": "language-modeling", "objective": "causal"}
    raw["eval"] = {"splits": ["validation"], "batch_size": 8}
    budget = {"steps": 25, "lr": 0.05, "snippets": 4, "width": 40}
    raw["model"]["add_tokens"] = {"tokens": ["zorblat", "quixxle"], "init": "distill", "distill": budget}
    exp = build(raw)
    added = exp.input_report.surgery.added_tokens.added
    gap = added[0]["distill"]
    assert gap["gap_after"] < 0.5 * gap["gap_before"] and gap["snippets"] == 8, gap  # 4 snippets per token
    assert all("compose:" in entry["init"] and "distilled on 4 snippets" in entry["init"] for entry in added)
    table = exp.model.get_input_embeddings().weight.detach()
    old = load_file(tiny_llama / "model.safetensors")["model.embed_tokens.weight"]
    assert torch.equal(table[: old.shape[0]], old)  # the pretrained rows untouched
    assert exp.model.get_output_embeddings().weight is exp.model.get_input_embeddings().weight  # tied head: the same
    again = build(raw).model.get_input_embeddings().weight.detach()
    assert torch.equal(table, again)  # the same snippets and rows for the same seed


@pytest.mark.slow  # training a transplanted run end to end: the full suite (CI) runs it
def test_a_transplanted_decoder_trains_saves_and_reports_bits_per_byte(tmp_path, tiny_llama):
    pytest.importorskip("gensim")
    import json

    from helpers import train_fresh
    from transformers import AutoModelForCausalLM

    raw = transplant_recipe(tmp_path, tiny_llama, {"transfer": "omp", "k": 4})
    raw["train"] |= {"max_steps": 2, "eval_every_steps": 2}
    run = train_fresh(raw)
    scores = json.loads((run / "metrics.json").read_text())["validation"]
    assert scores["bits_per_byte"] > 0  # scored per byte: comparable with the model on its own tokenizer
    saved = AutoModelForCausalLM.from_pretrained(run / "model")
    assert saved.get_input_embeddings().num_embeddings == len(AutoTokenizer.from_pretrained(run / "model")) == 330
    rows = json.loads((run / "input_layers.json").read_text())["vocabulary"]["rows"]
    assert rows["omp"] > 0 and rows["copied"] > 0
