"""The BERT family: encoders with a learned absolute position table in their `embeddings` module.

BERT, RoBERTa, DistilBERT, ELECTRA, MiniLM, XLM-R... share this layout: `embeddings.word_embeddings`,
`embeddings.position_embeddings` (RoBERTa keeps rows 0..padding_idx for padding) and a stack `layer` of blocks.
"""

from __future__ import annotations

from torch import nn
from transformers import PreTrainedModel

from pipeline.families.base import Family, resize_position_buffers
from pipeline.families.bert import SPEC
from pipeline.families.bert.readout import read_first_position_only

POSITION_ATTRIBUTES = ("position_embeddings", "embed_positions")


class BertFamily(Family):
    spec = SPEC
    scratch_model_type = "bert"
    checkpoint_model_types = frozenset(
        {
            "bert",
            "roberta",
            "xlm-roberta",
            "xlm-roberta-xl",
            "distilbert",
            "electra",
            "camembert",
            "albert",
            "ernie",
            "mpnet",
            "data2vec-text",
            "megatron-bert",
            "roberta-prelayernorm",
            "xmod",
            "nomic_bert",
            "modernbert",
        }
    )
    block_list_names = ("layer",)

    def position_slot(self, model: PreTrainedModel) -> tuple[nn.Module, str] | None:
        base = model.base_model
        for owner in (getattr(base, "embeddings", None), base):
            for name in POSITION_ATTRIBUTES:
                if owner is not None and isinstance(getattr(owner, name, None), nn.Module):
                    return owner, name
        return None

    def set_positions(self, model: PreTrainedModel, table: nn.Module, rows: int) -> None:
        super().set_positions(model, table, rows)
        model.config.max_position_embeddings = rows
        resize_position_buffers(self.position_slot(model)[0], rows)

    def embedding_modules(self, model: PreTrainedModel) -> list[nn.Module]:
        embeddings = getattr(model.base_model, "embeddings", None)
        return [embeddings] if isinstance(embeddings, nn.Module) else super().embedding_modules(model)

    def compute_read_positions_only(self, model: PreTrainedModel) -> str | None:
        blocks = self.blocks(model)
        return read_first_position_only(model, blocks[-1] if blocks is not None else None)


FAMILY = BertFamily()
