"""An ELMo-style bi-LSTM encoder as a Hugging Face model, registered with the Auto classes on import.

Shape of the model (Peters et al., 2018): one token-embedding table shared by every time step, optionally plus a
character CNN over each word's bytes (so an out-of-vocabulary word still gets its own vector), then L layers of a
forward and a separate backward LSTM with projections and residual connections. The two directions never mix
inside the stack, so the forward LM at step t has seen only tokens ≤ t and the backward LM only tokens ≥ t.
Downstream heads read a learned scalar mix of all layers: γ · Σ_j softmax(w)_j · h_j.

`import pipeline.families.bilstm.modeling` before `AutoModel*.from_pretrained` on a saved bi-LSTM outside this package.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForPreTraining,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    PreTrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutput, ModelOutput, SequenceClassifierOutput, TokenClassifierOutput

from pipeline.families.bilstm.characters import CHAR_PAD, CHAR_VOCAB_SIZE, character_ids
from pipeline.vocabulary.spelling import spelling_of

MODEL_TYPE = "embedlab-bilstm"
# Projected LSTMs run on PyTorch's portable kernel on CPU, which says so on every call; it is still the faster one.
warnings.filterwarnings("ignore", message="LSTM with projections is not supported with oneDNN")


class BiLSTMConfig(PreTrainedConfig):
    """Settings of the bi-LSTM. `hidden_size` is the width of token vectors and of each direction's output."""

    model_type = MODEL_TYPE

    vocab_size: int = 10000
    hidden_size: int = 256
    lstm_size: int = 1024  # cell width; the output is projected back to hidden_size (LSTMP, as in ELMo)
    num_layers: int = 2
    dropout: float = 0.1
    char_cnn: bool = False
    max_characters: int = 20  # bytes per word seen by the character CNN, begin/end markers included
    char_embedding_size: int = 16
    char_filters: int = 64  # filters per kernel width
    char_max_width: int = 5  # kernel widths 1..char_max_width
    highway_layers: int = 1
    embedding_layer_norm: bool = True  # LayerNorm on the token vectors (word table + char CNN) before the LSTMs
    scalar_mix_layer_norm: bool = True  # normalise each layer (per token, no parameters) before mixing
    initializer_range: float = 0.02
    pad_token_id: int | None = 0
    tie_word_embeddings: bool = True

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.validate_architecture()  # transformers validates only when saving; a bad model should not be built

    def validate_architecture(self):
        """Part of transformers' strict config validation."""
        if self.lstm_size < self.hidden_size:
            raise ValueError(f"lstm_size ({self.lstm_size}) must be at least hidden_size ({self.hidden_size})")
        if self.num_layers < 1:
            raise ValueError("num_layers must be at least 1")
        if self.char_cnn and self.max_characters < self.char_max_width + 2:
            raise ValueError(f"max_characters must be at least char_max_width + 2 ({self.char_max_width + 2})")


class CharacterEncoder(nn.Module):
    """ELMo's character CNN: char ids (batch, seq, max_characters) → word vectors (batch, seq, hidden_size).

    Byte embeddings, convolutions of widths 1..char_max_width max-pooled over the word, highway layers, projection.
    """

    def __init__(self, config: BiLSTMConfig):
        super().__init__()
        self.embed = nn.Embedding(CHAR_VOCAB_SIZE, config.char_embedding_size, padding_idx=CHAR_PAD)
        self.convolutions = nn.ModuleList(
            nn.Conv1d(config.char_embedding_size, config.char_filters, kernel_size=width)
            for width in range(1, config.char_max_width + 1)
        )
        width = config.char_filters * config.char_max_width
        self.highways = nn.ModuleList(nn.Linear(width, 2 * width) for _ in range(config.highway_layers))
        self.projection = nn.Linear(width, config.hidden_size)

    def forward(self, char_ids: torch.Tensor) -> torch.Tensor:
        batch, seq, chars = char_ids.shape
        x = self.embed(char_ids.reshape(batch * seq, chars)).transpose(1, 2)  # (batch·seq, emb, chars)
        h = torch.cat([torch.relu(conv(x)).max(dim=-1).values for conv in self.convolutions], dim=-1)
        for highway in self.highways:
            transform, gate = highway(h).chunk(2, dim=-1)
            carry = torch.sigmoid(gate)
            h = carry * h + (1 - carry) * torch.relu(transform)
        return self.projection(h).reshape(batch, seq, -1)


class BiLSTMEmbeddings(nn.Module):
    """ids (batch, seq) [+ char ids (batch, seq, max_characters)] → token vectors (batch, seq, hidden_size).

    The word table and the character CNN are added, then layer-normalised. Without `char_ids`, the characters of each
    vocabulary entry
    (the `token_characters` buffer, filled from the tokenizer) stand in.
    """

    def __init__(self, config: BiLSTMConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.characters = CharacterEncoder(config) if config.char_cnn else None
        if config.char_cnn:
            self.register_buffer(
                "token_characters", torch.zeros(config.vocab_size, config.max_characters, dtype=torch.long)
            )
        # Without it the tied table's small rows (it is also the softmax) leave the LSTMs barely any input signal.
        self.layer_norm = nn.LayerNorm(config.hidden_size) if config.embedding_layer_norm else nn.Identity()
        self.dropout = nn.Dropout(config.dropout)

    def set_token_characters(self, tokenizer: PreTrainedTokenizerBase) -> None:
        """Fill the per-vocabulary-entry character ids from the tokenizer (`##ing` → "ing", `Ġthe` → "the")."""
        if self.characters is None:
            return
        rows, width = self.token_characters.shape
        specials = set(tokenizer.all_special_tokens)
        for token, token_id in tokenizer.get_vocab().items():
            if token_id < rows:
                spelled = token if token in specials else spelling_of(token, tokenizer)
                self.token_characters[token_id] = torch.tensor(character_ids(spelled, width))

    def forward(self, input_ids: torch.Tensor, char_ids: torch.Tensor | None = None) -> torch.Tensor:
        x = self.word_embeddings(input_ids)
        if self.characters is not None:
            x = x + self.characters(self.token_characters[input_ids] if char_ids is None else char_ids)
        return self.dropout(self.layer_norm(x))


class BiLSTMLayer(nn.Module):
    """One layer of each direction. Inputs and outputs: (batch, seq, hidden_size) per direction, the backward
    one in reversed time order. From the second layer on, each LSTM adds its input back (residual)."""

    def __init__(self, config: BiLSTMConfig, residual: bool):
        super().__init__()
        projection = config.hidden_size if config.lstm_size > config.hidden_size else 0
        self.forward_lstm = nn.LSTM(config.hidden_size, config.lstm_size, batch_first=True, proj_size=projection)
        self.backward_lstm = nn.LSTM(config.hidden_size, config.lstm_size, batch_first=True, proj_size=projection)
        self.residual = residual
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, forward_in: torch.Tensor, backward_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        forward_out, _ = self.forward_lstm(forward_in)
        backward_out, _ = self.backward_lstm(backward_in)
        if self.residual:
            forward_out, backward_out = forward_out + forward_in, backward_out + backward_in
        return self.dropout(forward_out), self.dropout(backward_out)


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each right-padded sequence within its length: x (batch, seq, width), lengths (batch,)."""
    steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)  # (1, seq)
    index = torch.where(steps < lengths.unsqueeze(1), lengths.unsqueeze(1) - 1 - steps, steps)  # (batch, seq)
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


class ScalarMix(nn.Module):
    """ELMo's learned layer weighting: layers, each (batch, seq, width) → γ · Σ_j softmax(w)_j · h_j.

    With `layer_norm`, each h_j is first normalised over its width, so layers of very different scale (a
    pretrained encoder's, next to a fresh head) enter the mix on an equal footing.
    """

    def __init__(self, num_layers: int, layer_norm: bool = False):
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(num_layers))
        self.gamma = nn.Parameter(torch.ones(()))
        self.layer_norm = layer_norm

    def normalised_weights(self) -> torch.Tensor:
        return self.weights.softmax(dim=0)

    def forward(self, layers: tuple[torch.Tensor, ...]) -> torch.Tensor:
        if self.layer_norm:
            layers = tuple(F.layer_norm(h, h.shape[-1:]) for h in layers)
        mixed = sum(w * h for w, h in zip(self.normalised_weights(), layers, strict=True))
        return self.gamma * mixed


class BiLSTMPreTrainedModel(PreTrainedModel):
    config_class = BiLSTMConfig
    config: BiLSTMConfig
    base_model_prefix = "bilstm"
    main_input_name = "input_ids"

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)  # Linear, Conv1d, LSTM, Embedding
        if isinstance(module, ScalarMix):
            init.zeros_(module.weights)
            init.ones_(module.gamma)


class BiLSTMModel(BiLSTMPreTrainedModel):
    """The encoder. Output `last_hidden_state`: the top layer, [forward; backward] (batch, seq, 2·hidden_size);
    `hidden_states` (with output_hidden_states): the token vectors [x; x] and every layer, each that shape."""

    def __init__(self, config: BiLSTMConfig):
        super().__init__(config)
        self.embeddings = BiLSTMEmbeddings(config)
        self.layers = nn.ModuleList(BiLSTMLayer(config, residual=i > 0) for i in range(config.num_layers))
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.embeddings.word_embeddings = value

    def directional_states(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, char_ids: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """Token vectors (batch, seq, hidden) and, per layer, forward and backward states (batch, seq, hidden),
        all in the input's time order. Inputs must be right-padded (the mask a prefix of ones)."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        lengths = attention_mask.sum(dim=1)
        steps = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        if not torch.equal(attention_mask.bool(), steps < lengths.unsqueeze(1)):
            raise ValueError("the bi-LSTM needs right-padded inputs (tokenizer.padding_side = 'right')")
        tokens = self.embeddings(input_ids, char_ids)
        forward_states, backward_states = [], []
        forward_x, backward_x = tokens, reverse_padded(tokens, lengths)
        for layer in self.layers:
            forward_x, backward_x = layer(forward_x, backward_x)
            forward_states.append(forward_x)
            backward_states.append(reverse_padded(backward_x, lengths))
        return tokens, forward_states, backward_states

    def all_layers(self, input_ids, attention_mask=None, char_ids=None) -> tuple[torch.Tensor, ...]:
        """[x; x], then [forward; backward] of every layer: num_layers + 1 tensors (batch, seq, 2·hidden)."""
        tokens, forward_states, backward_states = self.directional_states(input_ids, attention_mask, char_ids)
        return (
            torch.cat([tokens, tokens], dim=-1),
            *tuple(torch.cat(pair, dim=-1) for pair in zip(forward_states, backward_states, strict=True)),
        )

    def forward(
        self, input_ids, attention_mask=None, char_ids=None, output_hidden_states=None, return_dict=None, **kwargs
    ):
        layers = self.all_layers(input_ids, attention_mask, char_ids)
        return BaseModelOutput(last_hidden_state=layers[-1], hidden_states=layers if output_hidden_states else None)


@dataclass
class BidirectionalLMOutput(ModelOutput):
    """loss: mean of the two directions' token cross-entropies; logits: forward LM (batch, seq, vocab), position t
    predicting token t+1; backward_logits: backward LM, position t predicting token t−1."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    backward_logits: torch.Tensor | None = None
    forward_loss: torch.Tensor | None = None
    backward_loss: torch.Tensor | None = None


def bidirectional_losses(
    logits: torch.Tensor, backward_logits: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy of each direction; labels (batch, seq) with -100 where nothing is predicted."""
    vocab = logits.shape[-1]
    forward = F.cross_entropy(logits[:, :-1].reshape(-1, vocab).float(), labels[:, 1:].reshape(-1))
    backward = F.cross_entropy(backward_logits[:, 1:].reshape(-1, vocab).float(), labels[:, :-1].reshape(-1))
    return forward, backward


class BiLSTMForLanguageModeling(BiLSTMPreTrainedModel):
    """ELMo's pretraining: a forward LM and a backward LM over the top layer, sharing one softmax, which is tied to
    the token-embedding table when `tie_word_embeddings` (as GPT-2's LM head is tied to `wte`)."""

    _tied_weights_keys: ClassVar[dict[str, str]] = {"lm_head.weight": "bilstm.embeddings.word_embeddings.weight"}

    def __init__(self, config: BiLSTMConfig):
        super().__init__(config)
        self.bilstm = BiLSTMModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Module) -> None:
        self.lm_head = value

    def forward(self, input_ids, attention_mask=None, char_ids=None, labels=None, **kwargs) -> BidirectionalLMOutput:
        _, forward_states, backward_states = self.bilstm.directional_states(input_ids, attention_mask, char_ids)
        logits, backward_logits = self.lm_head(forward_states[-1]), self.lm_head(backward_states[-1])
        if labels is None:
            return BidirectionalLMOutput(logits=logits, backward_logits=backward_logits)
        forward_loss, backward_loss = bidirectional_losses(logits, backward_logits, labels)
        return BidirectionalLMOutput(
            (forward_loss + backward_loss) / 2, logits, backward_logits, forward_loss, backward_loss
        )


def _masked_mean(states: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """states (batch, seq, width), mask (batch, seq) → mean over real tokens (batch, width)."""
    if attention_mask is None:
        return states.mean(dim=1)
    weights = attention_mask.unsqueeze(-1).to(states.dtype)
    return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)


class BiLSTMWithScalarMix(BiLSTMPreTrainedModel):
    """Base of the downstream heads: the encoder, a scalar mix of its num_layers + 1 layers, dropout, a linear
    classifier from 2·hidden_size to num_labels. The mix is task-specific, so pretraining leaves it untouched."""

    def __init__(self, config: BiLSTMConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bilstm = BiLSTMModel(config)
        self.scalar_mix = ScalarMix(config.num_layers + 1, config.scalar_mix_layer_norm)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(2 * config.hidden_size, config.num_labels)
        self.post_init()

    def mixed_states(self, input_ids, attention_mask=None, char_ids=None) -> torch.Tensor:
        """(batch, seq, 2·hidden_size). Through the encoder's forward, so hooks on it see what the head reads."""
        return self.scalar_mix(
            self.bilstm(input_ids, attention_mask, char_ids, output_hidden_states=True).hidden_states
        )


class BiLSTMForSequenceClassification(BiLSTMWithScalarMix):
    """Mixed states averaged over real tokens, then the classifier: logits (batch, num_labels)."""

    def forward(self, input_ids, attention_mask=None, char_ids=None, labels=None, **kwargs) -> SequenceClassifierOutput:
        pooled = _masked_mean(self.mixed_states(input_ids, attention_mask, char_ids), attention_mask)
        logits = self.classifier(self.dropout(pooled))
        loss = None
        if labels is not None:
            if self.config.problem_type == "multi_label_classification":
                loss = F.binary_cross_entropy_with_logits(logits.float(), labels.float())
            elif self.num_labels == 1:
                loss = F.mse_loss(logits.squeeze(-1).float(), labels.float())
            else:
                loss = F.cross_entropy(logits.float(), labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


class BiLSTMForTokenClassification(BiLSTMWithScalarMix):
    """The classifier on every token's mixed state: logits (batch, seq, num_labels); labels -100 are ignored."""

    def forward(self, input_ids, attention_mask=None, char_ids=None, labels=None, **kwargs) -> TokenClassifierOutput:
        logits = self.classifier(self.dropout(self.mixed_states(input_ids, attention_mask, char_ids)))
        loss = (
            None if labels is None else F.cross_entropy(logits.reshape(-1, self.num_labels).float(), labels.reshape(-1))
        )
        return TokenClassifierOutput(loss=loss, logits=logits)


AutoConfig.register(MODEL_TYPE, BiLSTMConfig, exist_ok=True)
AutoModel.register(BiLSTMConfig, BiLSTMModel, exist_ok=True)
AutoModelForPreTraining.register(BiLSTMConfig, BiLSTMForLanguageModeling, exist_ok=True)
AutoModelForSequenceClassification.register(BiLSTMConfig, BiLSTMForSequenceClassification, exist_ok=True)
AutoModelForTokenClassification.register(BiLSTMConfig, BiLSTMForTokenClassification, exist_ok=True)
