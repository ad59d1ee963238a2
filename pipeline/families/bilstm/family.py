"""The bi-LSTM family: this package's ELMo-style encoder (`modeling`), with its character ids (`characters`).

No position table: the recurrence carries word order. Pretrained with ELMo's objective, a forward and a backward
language model. Importing this module registers the model with the transformers Auto classes (through `modeling`).
"""

from __future__ import annotations

from torch import nn
from transformers import AutoModelForPreTraining, PreTrainedModel, PreTrainedTokenizerBase

from pipeline.families.base import NO_TOKEN_FEATURES, Family, LMObjective, TokenFeatures
from pipeline.families.bilstm import SPEC
from pipeline.families.bilstm.characters import CharacterFeatures
from pipeline.families.bilstm.modeling import MODEL_TYPE

BIDIRECTIONAL_LM = LMObjective(
    "bidirectional", AutoModelForPreTraining, (("forward_", "logits", 1), ("backward_", "backward_logits", -1))
)


class BiLSTMFamily(Family):
    spec = SPEC
    scratch_model_type = MODEL_TYPE
    checkpoint_model_types = frozenset({MODEL_TYPE})
    pad_with_eos = True
    lm_objective = BIDIRECTIONAL_LM
    block_list_names = ("layers",)

    def position_limit(self, model: PreTrainedModel) -> int | None:
        return None

    def embedding_modules(self, model: PreTrainedModel) -> list[nn.Module]:
        return [model.base_model.embeddings]

    def token_features(self, model: PreTrainedModel) -> TokenFeatures:
        config = model.config
        return CharacterFeatures(config.max_characters) if getattr(config, "char_cnn", False) else NO_TOKEN_FEATURES

    def prepare_fresh_model(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        model.base_model.embeddings.set_token_characters(tokenizer)


FAMILY = BiLSTMFamily()
