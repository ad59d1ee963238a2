"""`language-modeling`: pretraining (or continued, domain-adaptive pretraining) on raw text.

Texts are tokenized, joined with the end-of-text token and packed into blocks of `model.max_length` tokens (the
last block of each tokenizing batch may be shorter; nothing is dropped). Objectives:

- `causal` (GPT-2 and rotary decoder families): position t predicts token t+1;
- `bidirectional` (bi-LSTM, ELMo): a forward LM (t predicts t+1) and a backward LM (t predicts t−1).

The family's `LMObjective` says which head to build and which output holds each direction's logits.

Scores are perplexities, exp(NLL per predicted token), pooled over the whole split.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from datasets import Dataset, DatasetDict
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerBase

from pipeline.data.collate import IGNORED_LABEL
from pipeline.errors import PipelineError
from pipeline.evaluation.loop import gathered_outputs
from pipeline.evaluation.metrics import LoadedMetric, compute_all
from pipeline.families.base import NO_TOKEN_FEATURES, Family, TokenFeatures
from pipeline.recipe.schema import EvalConfig
from pipeline.tasks.base import Records, Scores, TaskDefaults, require_columns
from pipeline.tasks.language_modeling.records import BlockRecord
from pipeline.tasks.language_modeling.section import LanguageModelingTask

TEXTS_PER_PACKING_BATCH = 10_000  # texts tokenized and packed together; each such batch ends in one short block


def summed_token_nll(logits: torch.Tensor, labels: torch.Tensor, shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per example: summed NLL of the tokens predicted `shift` steps away (+1 forward, −1 backward), and their count.

    logits (batch, seq, vocab), labels (batch, seq) with -100 where nothing is predicted → (batch,), (batch,).
    """
    if shift == 1:
        logits, targets = logits[:, :-1], labels[:, 1:]
    else:
        logits, targets = logits[:, 1:], labels[:, :-1]
    nll = F.cross_entropy(logits.float().transpose(1, 2), targets, ignore_index=IGNORED_LABEL, reduction="none")
    return nll.sum(dim=1), (targets != IGNORED_LABEL).sum(dim=1)


class LanguageModeling(TaskDefaults):
    """The `language-modeling` task adapter (see the module docstring)."""

    labels_per_token = True
    body_outputs_cacheable = False  # the head reads the token table (tied), and a frozen LM has nothing to learn

    def __init__(self, cfg: LanguageModelingTask, family: Family, eval_cfg: EvalConfig):
        self.cfg = cfg
        self.objective = family.lm_objective  # the recipe schema checked that it is cfg.objective
        self.auto_class = self.objective.auto_class
        self.directions = [prefix for prefix, _, _ in self.objective.directions]

    def check_columns(self, splits: DatasetDict) -> None:
        require_columns(splits, {"task.text_column": self.cfg.text_column})

    def texts(self, split: Dataset) -> list[str]:
        """The raw text of each row (for building a tokenizer)."""
        return [str(text) for text in split[self.cfg.text_column] if text is not None]

    def fit_labels(self, train: Dataset) -> None:
        """Nothing to learn: the labels are the text itself."""

    def use_labels(self, id2label: dict[int, str]) -> None:
        """Nothing to reuse."""

    def head_kwargs(self) -> dict[str, Any]:
        return {}

    def reserved_tokens(self, tokenizer: PreTrainedTokenizerBase) -> int:
        """A block needs a token beside the one it predicts."""
        return 1

    def encode(
        self,
        split: Dataset,
        tokenizer: PreTrainedTokenizerBase,
        max_length: int,
        name: str,
        token_features: TokenFeatures = NO_TOKEN_FEATURES,
        for_training: bool = False,
    ) -> tuple[Dataset, dict[str, int]]:
        """Pack the split's texts into blocks of `max_length` tokens with `labels` = the ids (and the family's
        extra per-token inputs, packed alike).

        Empty texts are skipped and counted; texts longer than a block are split across blocks, not truncated.
        """
        if tokenizer.eos_token_id is None:
            raise PipelineError(
                "language modeling joins texts with the end-of-text token, and this tokenizer has none",
                field="model.tokenizer",
            )
        separator = {"input_ids": tokenizer.eos_token_id, **token_features.of_token(tokenizer, tokenizer.eos_token)}

        def pack(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
            texts = [str(text) for text in batch[self.cfg.text_column] if text is not None and str(text).strip()]
            encoded = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=token_features.needs_offsets)
            token_features.add(encoded, tokenizer, texts, None)
            blocks = {}
            for key, end in separator.items():  # every per-token column: one stream, cut into blocks
                stream = [item for rows in encoded[key] for item in [*rows, end]]
                blocks[key] = [stream[i : i + max_length] for i in range(0, len(stream), max_length)]
            blocks["attention_mask"] = [[1] * len(block) for block in blocks["input_ids"]]
            blocks["labels"] = [list(block) for block in blocks["input_ids"]]
            return blocks

        empty = sum(1 for text in split[self.cfg.text_column] if text is None or not str(text).strip())
        packed = split.map(
            pack,
            batched=True,
            batch_size=TEXTS_PER_PACKING_BATCH,
            remove_columns=split.column_names,
            desc=f"packing {name}",
        )
        if len(packed) == 0:
            raise PipelineError(f"split '{name}' has no text to model", field="data")
        counts = {
            "examples": len(split),
            "empty_texts": empty,
            "truncated": 0,
            "blocks": len(packed),
            "tokens": sum(map(len, packed["input_ids"])),
        }
        return packed, counts

    def evaluate(
        self, accelerator: Accelerator, model: torch.nn.Module, loader: DataLoader, metrics: list[LoadedMetric]
    ) -> tuple[Scores, Records]:
        """Perplexity (all directions pooled, and per direction for `bidirectional`), the mean token NLL as `loss`,
        and one record per block: its predicted tokens and NLL."""

        def select(batch: dict[str, torch.Tensor], output: Any) -> tuple[torch.Tensor, torch.Tensor]:
            per_direction = []
            for _, attribute, shift in self.objective.directions:
                summed, count = summed_token_nll(getattr(output, attribute), batch["labels"], shift)
                per_direction.append(summed)
            return torch.stack(per_direction, dim=1), count  # (batch, directions), (batch,)

        nll: dict[str, list[float]] = {prefix: [] for prefix in self.directions}
        counts: list[int] = []
        for gathered, count in gathered_outputs(accelerator, model, loader, select):
            for column, prefix in enumerate(self.directions):
                nll[prefix] += gathered[:, column].tolist()
            counts += count.tolist()
        pooled = [sum(values) for values in zip(*nll.values(), strict=True)]
        scores = compute_all(metrics, "token_nll", pooled, [count * len(self.directions) for count in counts])
        if len(self.directions) > 1:
            for prefix, values in nll.items():
                scores.update(
                    {prefix + name: value for name, value in compute_all(metrics, "token_nll", values, counts).items()}
                )
        total_tokens = sum(counts) * len(self.directions)
        scores["loss"] = sum(pooled) / total_tokens if total_tokens else float("nan")
        records: Records = [
            BlockRecord(i, count, round(value, 4)) for i, (count, value) in enumerate(zip(counts, pooled, strict=True))
        ]
        return scores, records
