"""The `sentence-embedding` task type on a tiny BERT: in-batch negatives, retrieval scoring, CoSENT, the export to
sentence-transformers, re-scoring, and the input-layer policies applied to the encoder."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import (
    FILLER,
    NEGATIVE,
    POSITIVE,
    read_jsonl,
    recipe_dict,
    toy_pairs,
    train_fresh,
    write_glove,
    write_jsonl,
)

from pipeline.cli import main
from pipeline.tasks.sentence_embedding.adapter import retrieval_ranks
from pipeline.tasks.sentence_embedding.losses import cosent_loss, in_batch_negatives_loss, pool

WORDS = POSITIVE + NEGATIVE


def pair_recipe(tmp_path, model_dir, scored: bool = False, **sections) -> dict:
    files = {split: write_jsonl(tmp_path / f"{split}.jsonl", toy_pairs(count, seed, scored))
             for split, count, seed in (("train", 64, 0), ("validation", 24, 1))}  # fmt: skip
    task = {"type": "sentence-embedding", **({"score_column": "score"} if scored else {}), **sections.pop("task", {})}
    recipe = recipe_dict(model_dir, files, tmp_path / "run", task=task, **sections)
    recipe["eval"] = {"splits": ["validation"], "batch_size": 8}
    return recipe


def test_in_batch_negatives_see_every_other_pair_and_skip_duplicate_anchors():
    anchors = torch.randn(3, 4, requires_grad=True)
    candidates = torch.randn(3, 4, requires_grad=True)
    same = torch.tensor([[True, False, True], [False, True, False], [True, False, True]])  # pairs 0 and 2 share
    in_batch_negatives_loss(anchors, candidates, same, scale=20.0).backward()
    assert all(candidates.grad[row].abs().sum() > 0 for row in range(3))  # every positive is some anchor's negative
    alone = torch.randn(3, 4, requires_grad=True)
    loss = in_batch_negatives_loss(anchors.detach(), alone, same, scale=20.0)
    unit = torch.nn.functional.normalize
    scores = 20.0 * unit(anchors.detach(), dim=-1) @ unit(alone.detach(), dim=-1).T
    expected = torch.stack([-scores[0, 0] + torch.logsumexp(scores[0, [0, 1]], 0),  # pair 2's positive masked
                            -scores[1, 1] + torch.logsumexp(scores[1], 0),
                            -scores[2, 2] + torch.logsumexp(scores[2, [1, 2]], 0)]).mean()  # fmt: skip
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_cosent_is_small_when_similarities_follow_the_scores():
    first = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    gold = torch.tensor([3.0, 2.0, 1.0, 0.0])
    ordered = torch.stack([first[0], 0.8 * first[1] + 0.2 * first[0], -first[2], -first[3]])
    aligned = cosent_loss(first, torch.stack([first[0], first[1] * 0.9, first[2] * 0.1, -first[3]]), gold, 20.0)
    reversed_ = cosent_loss(first, torch.stack([-first[0], first[1] * 0.1, first[2] * 0.9, first[3]]), gold, 20.0)
    assert aligned < reversed_ and cosent_loss(first, ordered, torch.zeros(4), 20.0) == 0.0  # no ordered pair: 0


def test_pooling_reads_only_real_tokens():
    hidden = torch.tensor([[[1.0], [3.0], [100.0]], [[2.0], [4.0], [6.0]]])  # (2 texts, 3 positions, width 1)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert pool(hidden, mask, "mean").squeeze(-1).tolist() == [2.0, 4.0]
    assert pool(hidden, mask, "max").squeeze(-1).tolist() == [3.0, 6.0]
    assert pool(hidden, mask, "cls").squeeze(-1).tolist() == [1.0, 2.0]
    assert pool(hidden, mask, "last").squeeze(-1).tolist() == [3.0, 6.0]


def test_retrieval_ranks_count_distinct_documents():
    queries = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    answers = torch.tensor([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])  # pairs 0 and 1 share their document
    ranks, documents = retrieval_ranks(queries, answers, [7, 7, 9])
    assert documents == 2 and ranks == [2, 1, 2]  # query 2 ties both documents: the tie counts against it


def test_pairs_train_with_in_batch_negatives_and_score_by_retrieval(tmp_path, tiny_bert):
    run = train_fresh(pair_recipe(tmp_path, tiny_bert, train={"max_steps": 40, "lr": 3e-3, "eval_every_steps": 40}))
    losses = [row["loss"] for row in read_jsonl(run / "log.jsonl") if "loss" in row]
    assert losses[-1] < 0.6 * losses[0]  # the loss falls
    scores = json.loads((run / "metrics.json").read_text())["validation"]
    assert {"ndcg@10", "mrr@10", "recall@1", "recall@10"} <= set(scores)
    assert scores["recall@1"] > 0.15  # far above the 1/88 of a random ranking
    records = read_jsonl(run / "predictions-validation.jsonl")
    # each validation title searches the whole collection: the 24 validation and 64 training documents
    assert len(records) == 24 and all(1 <= r["rank"] <= r["documents"] == 88 for r in records)
    assert sum(r["rank"] == 1 for r in records) / 24 == pytest.approx(scores["recall@1"])
    # re-scored from model/, loading only the eval split: the same collection, the same scores
    assert main(["eval", str(run), "--output", str(tmp_path / "again.json")]) == 0
    again = json.loads((tmp_path / "again.json").read_text())["validation"]
    assert again["ndcg@10"] == pytest.approx(scores["ndcg@10"], abs=1e-6)


def test_the_collection_is_embedded_once_per_state_of_the_weights(tmp_path, tiny_bert):
    from pipeline.experiment.build import build_experiment
    from pipeline.experiment.recipes import validate_recipe
    from pipeline.training.scoring import eval_loader

    recipe = pair_recipe(tmp_path, tiny_bert, data={"max_train_samples": 16})
    exp = build_experiment(validate_recipe(recipe))
    task, model = exp.task, exp.model
    assert len(task.reference) == 88  # the limit leaves the collection whole: runs on fewer examples search alike
    loader = eval_loader(exp.data.splits["validation"], exp.data.collator, 8, exp.recipe.train)
    embedded, embed = [], task.embed
    task.embed = lambda model, batch, group="": (
        embedded.append(len(batch[f"{group}input_ids"])) or embed(model, batch, group)
    )
    first = task.evaluate(exp.runtime.accelerator, model, loader, exp.metrics)
    assert sum(embedded) == 24 + 24 + 88  # the split's queries and positives, then the collection
    assert task.evaluate(exp.runtime.accelerator, model, loader, exp.metrics)[0] == first[0]
    assert sum(embedded) == 2 * (24 + 24) + 88  # the same weights: the collection's vectors reused
    with torch.no_grad():
        next(model.parameters()).add_(0.01)  # a changed weight (as after an optimizer step): embedded again
    task.evaluate(exp.runtime.accelerator, model, loader, exp.metrics)
    assert sum(embedded) == 3 * (24 + 24) + 2 * 88


def test_the_saved_model_loads_in_sentence_transformers_with_the_same_vectors(tmp_path, tiny_bert):
    st = pytest.importorskip("sentence_transformers")
    from transformers import AutoModel, AutoTokenizer

    run = train_fresh(pair_recipe(tmp_path, tiny_bert, task={"pooling": "mean", "normalize": True}))
    texts = ["good bad", "the movie was very nice and happy"]
    loaded = st.SentenceTransformer(str(run / "model"), device="cpu").encode(texts, convert_to_tensor=True)
    tokenizer, encoder = AutoTokenizer.from_pretrained(run / "model"), AutoModel.from_pretrained(run / "model")
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        ours = torch.nn.functional.normalize(pool(encoder(**batch)[0], batch["attention_mask"], "mean"), dim=-1)
    assert torch.allclose(loaded.cpu(), ours, atol=1e-5)


def test_scored_pairs_train_with_cosent_and_report_correlations(tmp_path, tiny_bert):
    run = train_fresh(pair_recipe(tmp_path, tiny_bert, scored=True, train={"max_steps": 30, "lr": 3e-3}))
    scores = json.loads((run / "metrics.json").read_text())["validation"]
    assert {"spearman", "pearson"} <= set(scores) and scores["spearman"] > 0.3
    record = read_jsonl(run / "predictions-validation.jsonl")[0]
    assert -1 <= record["similarity"] <= 1 and record["rank"] is None


def test_titles_and_articles_from_one_text_column(tmp_path, tiny_bert):
    rows = [{"text": f"{row['anchor']}\n\n{row['positive']}"} for row in toy_pairs(40, 0)]
    files = {"train": write_jsonl(tmp_path / "train.jsonl", rows[:32]),
             "validation": write_jsonl(tmp_path / "validation.jsonl", rows[32:])}  # fmt: skip
    recipe = recipe_dict(tiny_bert, files, tmp_path / "run", task={"type": "sentence-embedding",
                                                                  "pairs_from_first_line": "text"})  # fmt: skip
    recipe["eval"] = {"splits": ["validation"], "batch_size": 8}
    record = read_jsonl(train_fresh(recipe) / "predictions-validation.jsonl")[0]
    assert record["anchor"] == rows[32]["text"].split("\n")[0] and record["documents"] == 40  # the collection
    recipe["task"]["documents"], recipe["output_dir"] = "split", str(tmp_path / "own-split")
    assert read_jsonl(train_fresh(recipe) / "predictions-validation.jsonl")[0]["documents"] == 8  # its own split's


# Each policy, with what input_layers.json must say of it and which saved weights must equal the pretrained ones
# (True) or differ from them (False): a run that ignored the policy fails here.
TABLE, POSITIONS, BODY = "embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight", "encoder."
POLICIES = {
    "frozen-inputs": ({"token_embeddings": "freeze", "positions": "freeze"}, ("pretrained", "pretrained"),
                      {TABLE: True, POSITIONS: True, BODY: False}),
    "random-table": ({"token_embeddings": {"policy": "replace", "init": "random"}}, ("random normal", "pretrained"),
                     {TABLE: False}),
    "glove-table": ({"token_embeddings": {"policy": "replace", "init": "vectors", "vectors": "GLOVE",
                                          "fallback": "random"}}, ("vectors", "pretrained"), {TABLE: False}),
    "sinusoidal": ({"positions": {"policy": "replace", "init": "sinusoidal"}}, ("pretrained", "sinusoidal"),
                   {POSITIONS: False}),
    "no-positions": ({"positions": {"policy": "replace", "init": "none"}}, ("pretrained", "none"), {}),
    "frozen-body": ({"encoder": {"policy": "freeze"}, "token_embeddings": "finetune"}, ("pretrained", "pretrained"),
                    {BODY: True, TABLE: False}),
}  # fmt: skip


@pytest.mark.parametrize("name", list(POLICIES))
def test_input_layer_policies_apply_to_the_encoder(tmp_path, tiny_bert, name):
    from safetensors.torch import load_file

    layers, (table_source, position_source), unchanged = POLICIES[name]
    if "vectors" in json.dumps(layers):
        write_glove(tmp_path / "glove.txt", WORDS + FILLER, dim=8)
        layers = {"token_embeddings": {**layers["token_embeddings"], "vectors": str(tmp_path / "glove.txt")}}
    run = train_fresh(pair_recipe(tmp_path, tiny_bert, layers=layers))
    sources = json.loads((run / "input_layers.json").read_text())["sources"]
    assert "ndcg@10" in json.loads((run / "metrics.json").read_text())["validation"]
    assert sources["token_embeddings"].startswith(table_source) and sources["positions"].startswith(position_source)
    before, after = load_file(tiny_bert / "model.safetensors"), load_file(run / "model" / "model.safetensors")
    for prefix, same in unchanged.items():
        equal = [torch.equal(before[key], after[key]) for key in before if key.startswith(prefix)]
        assert equal and (all(equal) if same else not all(equal)), prefix  # kept whole, or moved


def test_runs_compare_per_query_with_intervals(tmp_path, tiny_bert):
    runs = []
    for seed, table in ((s, t) for t in ("finetune", "freeze") for s in (0, 1, 2)):
        recipe = pair_recipe(tmp_path, tiny_bert, train={"seed": seed}, layers={"token_embeddings": table})
        recipe["output_dir"] = str(tmp_path / f"{table}-{seed}")
        runs.append(str(train_fresh(recipe)))
    assert main(["compare", *runs, "--output", str(tmp_path / "cmp"), "--no-baseline"]) == 0
    summary = json.loads((tmp_path / "cmp" / "summary.json").read_text())
    assert set(summary["cells"]) == {"token_embeddings=freeze", "token_embeddings=finetune"}
    compared = next(cell["vs_baseline"] for cell in summary["cells"].values() if cell.get("vs_baseline"))
    ndcg = compared["ndcg@10"]  # a paired interval over queries and seeds: 3 seed pairs, the 24 validation queries
    assert ndcg["pairs"] == 3 and ndcg["examples"] == 24
    assert ndcg["ci_low"] is not None and ndcg["ci_low"] <= ndcg["seed_difference_mean"] <= ndcg["ci_high"]


def test_classical_rows_search_the_same_documents_without_training(tmp_path, tiny_bert):
    from pipeline.experiment.recipes import validate_recipe
    from pipeline.sweeps.baselines import classical_baselines
    from pipeline.tasks.sentence_embedding.pairs import ranks_from_scores

    assert ranks_from_scores(torch.tensor([[0.9, 0.1], [0.5, 0.5]]).numpy(), [0, 0]) == [1, 2]  # a tie counts against
    rows = classical_baselines(validate_recipe(pair_recipe(tmp_path, tiny_bert)), ["tfidf", "bm25", "doc2vec"])
    assert [row["method"] for row in rows] == ["tfidf", "bm25"]  # doc2vec is classification's, not this task's
    for row in rows:  # the anchors' words are in their positives: word matching finds most of them
        assert row["scores"]["validation"]["recall@10"] > 0.9 and row["wall_s"] >= 0
    frozen, static = classical_baselines(validate_recipe(pair_recipe(tmp_path, tiny_bert)), ["frozen", "static"])
    untrained = frozen["scores"]["validation"]  # the task's own scoring of the encoder as loaded
    assert set(untrained) == {"ndcg@10", "mrr@10", "recall@1", "recall@10"} and 0 < untrained["ndcg@10"] <= 1
    # the mean of the table's rows: an anchor's two words are in its positive, whose other words are fillers
    assert static["method"] == "static" and static["scores"]["validation"]["recall@10"] > 0.5


def test_static_rows_average_word_vectors_from_a_file_or_trained(tmp_path, tiny_bert):
    pytest.importorskip("gensim")
    from pipeline.errors import PipelineError
    from pipeline.experiment.recipes import validate_recipe
    from pipeline.sweeps.baselines import classical_baselines, parse_methods

    write_glove(tmp_path / "glove.txt", WORDS + FILLER, dim=16)
    recipe = validate_recipe(pair_recipe(tmp_path, tiny_bert))
    assert parse_methods("static,frozen") == ("static", "frozen")
    methods = parse_methods(f"static:{tmp_path / 'glove.txt'},static:skipgram")
    glove, skipgram = classical_baselines(recipe, methods)
    assert glove["name"].startswith("mean of") and skipgram["method"] == "static:skipgram"
    # random vectors, but each anchor's words are in its positive: their mean is closest to the positive's
    assert glove["scores"]["validation"]["recall@10"] > 0.5
    assert 0 < skipgram["scores"]["validation"]["ndcg@10"] <= 1
    for bad, said in (("static:", "needs what follows"), ("tfidf:x", "unknown classical baseline")):
        with pytest.raises(PipelineError, match=said):
            parse_methods(bad)
    with pytest.raises(PipelineError, match=r"--classical: static:nowhere\.txt: no vector file"):
        classical_baselines(recipe, ["static:nowhere.txt"])
