"""The ELMo-style bi-LSTM as a Hugging Face model: Auto-class round trips, scalar mix, direction isolation, char CNN."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForPreTraining,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)

from pipeline.data.collate import PadCollator
from pipeline.families.bilstm.characters import BEGIN_OF_WORD, CharacterFeatures, character_ids
from pipeline.families.bilstm.modeling import (
    BiLSTMConfig,
    BiLSTMForLanguageModeling,
    BiLSTMForSequenceClassification,
    BiLSTMForTokenClassification,
)
from pipeline.recipe.model import TokenizerBuild
from pipeline.vocabulary.build import build_tokenizer

CORPUS = ["the cat sat on the mat .", "the dog sat on the log .", "a cat and a dog ."] * 5


def tiny_config(**changes) -> BiLSTMConfig:
    settings = {
        "vocab_size": 40,
        "hidden_size": 8,
        "lstm_size": 16,
        "num_layers": 2,
        "char_cnn": True,
        "max_characters": 8,
        "char_filters": 4,
        "char_max_width": 3,
        "dropout": 0.0,
    }
    return BiLSTMConfig(**{**settings, **changes})


def test_save_and_load_through_every_auto_class(tmp_path):
    torch.manual_seed(0)
    model = BiLSTMForLanguageModeling(tiny_config()).eval()
    model.save_pretrained(tmp_path)
    ids = torch.randint(4, 40, (2, 6))
    assert type(AutoConfig.from_pretrained(tmp_path)) is BiLSTMConfig
    reloaded = AutoModelForPreTraining.from_pretrained(tmp_path).eval()
    assert type(reloaded) is BiLSTMForLanguageModeling
    assert reloaded.lm_head.weight is reloaded.bilstm.embeddings.word_embeddings.weight  # still tied
    torch.testing.assert_close(reloaded(ids).logits, model(ids).logits, rtol=0, atol=0)
    encoder = AutoModel.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(encoder(ids).last_hidden_state, model.bilstm(ids).last_hidden_state, rtol=0, atol=0)
    for auto_class, expected in (
        (AutoModelForSequenceClassification, BiLSTMForSequenceClassification),
        (AutoModelForTokenClassification, BiLSTMForTokenClassification),
    ):
        head_model = auto_class.from_pretrained(tmp_path, num_labels=3)
        assert type(head_model) is expected
        for name, tensor in model.bilstm.state_dict().items():
            assert torch.equal(head_model.bilstm.state_dict()[name], tensor), name
        head_model.save_pretrained(tmp_path / expected.__name__)
        again = auto_class.from_pretrained(tmp_path / expected.__name__).eval()
        torch.testing.assert_close(again(ids).logits, head_model.eval()(ids).logits, rtol=0, atol=0)


def test_scalar_mix_weights_sum_to_one_and_get_gradients():
    torch.manual_seed(0)
    model = BiLSTMForSequenceClassification(tiny_config(num_labels=2))
    mix = model.scalar_mix
    assert len(mix.weights) == 3  # the token vectors and both LSTM layers
    with torch.no_grad():
        mix.weights.copy_(torch.tensor([0.5, -1.0, 2.0]))
    assert mix.normalised_weights().sum().item() == pytest.approx(1.0)
    output = model(torch.randint(4, 40, (3, 5)), labels=torch.tensor([0, 1, 1]))
    output.loss.backward()
    assert mix.weights.grad is not None and mix.weights.grad.abs().sum() > 0
    assert mix.gamma.grad is not None and mix.gamma.grad.abs() > 0


def test_each_language_model_sees_only_its_own_side():
    """Changing token k must leave the forward LM's outputs before k and the backward LM's outputs after k alone."""
    torch.manual_seed(0)
    model = BiLSTMForLanguageModeling(tiny_config()).eval()
    ids = torch.randint(4, 40, (1, 9))
    k = 4
    changed = ids.clone()
    changed[0, k] = (ids[0, k] + 7) % 36 + 4
    before, after = model(ids), model(changed)
    # Forward position t predicts t+1 from tokens ≤ t: positions < k never saw token k.
    torch.testing.assert_close(before.logits[:, :k], after.logits[:, :k], rtol=0, atol=0)
    assert not torch.allclose(before.logits[:, k], after.logits[:, k])
    # Backward position t predicts t−1 from tokens ≥ t: positions > k never saw token k.
    torch.testing.assert_close(before.backward_logits[:, k + 1 :], after.backward_logits[:, k + 1 :], rtol=0, atol=0)
    assert not torch.allclose(before.backward_logits[:, k], after.backward_logits[:, k])


def test_padding_changes_nothing_for_the_real_tokens():
    """The backward LSTM reverses each sequence within its own length, so right padding is invisible."""
    torch.manual_seed(0)
    model = BiLSTMForLanguageModeling(tiny_config()).eval()
    short = torch.randint(4, 40, (1, 5))
    padded = torch.cat([short, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    mask = torch.tensor([[1] * 5 + [0] * 3])
    alone, in_batch = model(short), model(padded, attention_mask=mask)
    torch.testing.assert_close(in_batch.logits[:, :5], alone.logits, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(in_batch.backward_logits[:, :5], alone.backward_logits, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="right-padded"):
        model(padded.flip(1), attention_mask=mask.flip(1))


def test_loss_ignores_labels_of_padding():
    torch.manual_seed(0)
    model = BiLSTMForTokenClassification(tiny_config(num_labels=4))
    labels = torch.tensor([[0, 1, 2, -100, -100]])
    output = model(torch.randint(4, 40, (1, 5)), labels=labels)
    assert output.logits.shape == (1, 5, 4)
    expected = torch.nn.functional.cross_entropy(output.logits[0, :3], labels[0, :3])
    torch.testing.assert_close(output.loss, expected)


def test_character_cnn_gives_unseen_words_their_own_vectors():
    tokenizer = build_tokenizer(TokenizerBuild(build="word", vocab_size=100, min_frequency=1), CORPUS)
    texts = ["the zyxwv sat", "the qwerty sat"]
    encoded = tokenizer(texts, return_offsets_mapping=True)
    features = CharacterFeatures(max_characters=8)
    features.add(encoded, tokenizer, texts, None)
    unk = tokenizer.unk_token_id
    assert encoded["input_ids"][0][1] == encoded["input_ids"][1][1] == unk  # both words are out of vocabulary
    assert encoded["char_ids"][0][1] == character_ids("zyxwv", 8)  # but keep their spelling
    assert encoded["char_ids"][0][1][0] == BEGIN_OF_WORD

    torch.manual_seed(0)
    model = BiLSTMForLanguageModeling(
        tiny_config(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
    ).eval()
    model.bilstm.embeddings.set_token_characters(tokenizer)
    batch = PadCollator(tokenizer.pad_token_id, features.pad_values)(
        [{k: encoded[k][i] for k in ("input_ids", "char_ids")} for i in range(2)]
    )
    vectors = model.bilstm.embeddings(batch["input_ids"], batch["char_ids"])  # (2, 3, hidden)
    assert not torch.allclose(vectors[0, 1], vectors[1, 1])  # two unseen words, two vectors
    torch.testing.assert_close(vectors[0, 0], vectors[1, 0])  # the same known word, the same vector
    # Without char ids the vocabulary's own spelling stands in, which is "<unk>" for both.
    fallback = model.bilstm.embeddings(batch["input_ids"])
    torch.testing.assert_close(fallback[0, 1], fallback[1, 1])


def test_invalid_architecture_is_refused():
    with pytest.raises(ValueError, match="lstm_size"):
        BiLSTMConfig(hidden_size=32, lstm_size=16)
