"""One surgery in progress: the model and tokenizer it changes, the recipe's layers, what surgery needs besides them
(`SurgeryContext`), and the report the implementations fill in as they go."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from pipeline.families.base import Family
from pipeline.recipe.layers import LayersConfig
from pipeline.recipe.model import AddTokens
from pipeline.surgery.report import SurgeryReport
from pipeline.surgery.trained_vectors import TrainedVectors
from pipeline.vocabulary.added import AddedTokens


@dataclass(frozen=True)
class SurgeryContext:
    """What surgery needs besides the model, the tokenizer and the recipe's layers.

    family: where the model keeps its layers; seed: for every random row; pretrained: False for a model built from
    `model.config` (its layers start random); max_length: the recipe's `model.max_length` (per-position tables);
    texts: the training texts (vectors trained on the corpus, rows fitted for added tokens); original: the pretrained
    table's tokenizer, where the recipe brings another; add_tokens and added: `model.add_tokens` and the tokens it
    added (with the tokenizer from before); fsdp: the FSDP plugin of the run (None without FSDP); processes: how many
    processes train."""

    family: Family
    seed: int
    pretrained: bool = True
    max_length: int | None = None
    texts: list[str] = field(default_factory=list)
    original: PreTrainedTokenizerBase | None = None
    add_tokens: AddTokens | None = None
    added: tuple[PreTrainedTokenizerBase, AddedTokens] | None = None
    fsdp: Any | None = None
    processes: int = 1


@dataclass
class SurgeryJob:
    """A surgery in progress: what it changes, with what, and what it has done so far (`report`); `trained` holds the
    static vectors trained on the corpus once the token table's variant has trained them."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    layers: LayersConfig
    context: SurgeryContext
    report: SurgeryReport
    trained: TrainedVectors | None = None

    @property
    def family(self) -> Family:
        return self.context.family
