"""`language-modeling`: pretraining (or continued, domain-adaptive pretraining) on raw text.

Texts are tokenized, joined with the end-of-text token and packed into blocks of `model.max_length` tokens (the
last block of each tokenizing batch may be shorter; nothing is dropped). Objectives:

- `causal` (GPT-2 family): position t predicts token t+1;
- `bidirectional` (bi-LSTM, ELMo): a forward LM (t predicts t+1) and a backward LM (t predicts t−1).

Scores are perplexities, exp(NLL per predicted token), pooled over the whole split.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from datasets import Dataset, DatasetDict
from torch.utils.data import DataLoader
from transformers import AutoModelForCausalLM, AutoModelForPreTraining, PreTrainedTokenizerBase

from pipeline.batching import IGNORED_LABEL, PadCollator, add_character_ids, pad_collator, without_labels
from pipeline.bilstm import character_ids
from pipeline.errors import PipelineError
from pipeline.metrics import LoadedMetric, compute_all
from pipeline.recipe import LanguageModelingTask
from pipeline.task_base import require_columns

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


class LanguageModeling:
    """The `language-modeling` task adapter (see the module docstring)."""

    def __init__(self, cfg: LanguageModelingTask):
        self.cfg = cfg
        self.auto_class = AutoModelForCausalLM if cfg.objective == "causal" else AutoModelForPreTraining
        self.directions = {"causal": {"": 1}, "bidirectional": {"forward_": 1, "backward_": -1}}[cfg.objective]

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

    def encode(
        self, split: Dataset, tokenizer: PreTrainedTokenizerBase, max_length: int, name: str, max_characters: int | None = None
    ) -> tuple[Dataset, dict[str, int]]:
        """Pack the split's texts into blocks of `max_length` tokens with `labels` = the ids (and `char_ids`).

        Empty texts are skipped and counted; texts longer than a block are split across blocks, not truncated.
        """
        if tokenizer.eos_token_id is None:
            raise PipelineError("language modeling joins texts with the end-of-text token, and this tokenizer has none", field="model.tokenizer")
        separator = [tokenizer.eos_token_id]
        separator_chars = [character_ids(tokenizer.eos_token, max_characters)] if max_characters else []

        def pack(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
            texts = [str(text) for text in batch[self.cfg.text_column] if text is not None and str(text).strip()]
            encoded = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=bool(max_characters))
            if max_characters:
                add_character_ids(encoded, tokenizer, texts, None, max_characters)
            stream = [token for ids in encoded["input_ids"] for token in ids + separator]
            blocks = {"input_ids": [stream[i : i + max_length] for i in range(0, len(stream), max_length)]}
            if max_characters:
                chars = [row for rows in encoded["char_ids"] for row in rows + separator_chars]
                blocks["char_ids"] = [chars[i : i + max_length] for i in range(0, len(chars), max_length)]
            blocks["attention_mask"] = [[1] * len(block) for block in blocks["input_ids"]]
            blocks["labels"] = [list(block) for block in blocks["input_ids"]]
            return blocks

        empty = sum(1 for text in split[self.cfg.text_column] if text is None or not str(text).strip())
        packed = split.map(pack, batched=True, batch_size=TEXTS_PER_PACKING_BATCH, remove_columns=split.column_names, desc=f"packing {name}")
        if len(packed) == 0:
            raise PipelineError(f"split '{name}' has no text to model", field="data")
        counts = {"examples": len(split), "empty_texts": empty, "truncated": 0, "blocks": len(packed), "tokens": sum(map(len, packed["input_ids"]))}
        return packed, counts

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> PadCollator:
        return pad_collator(tokenizer)

    def evaluate(
        self, accelerator: Accelerator, model: torch.nn.Module, loader: DataLoader, metrics: list[LoadedMetric]
    ) -> tuple[dict[str, float], list[dict[str, Any]]]:
        """Perplexity (all directions pooled, and per direction for `bidirectional`), the mean token NLL as `loss`,
        and one record per block: its predicted tokens and NLL."""
        model.eval()
        nll: dict[str, list[float]] = {prefix: [] for prefix in self.directions}
        counts: list[int] = []
        for batch in loader:
            with torch.no_grad(), accelerator.autocast():
                output = model(**without_labels(batch))
            per_direction = []
            for prefix, shift in self.directions.items():
                logits = output.logits if shift == 1 else output.backward_logits
                summed, count = summed_token_nll(logits, batch["labels"], shift)
                per_direction.append(summed)
            gathered, count = accelerator.gather_for_metrics((torch.stack(per_direction, dim=1), count))
            for column, prefix in enumerate(self.directions):
                nll[prefix] += gathered[:, column].tolist()
            counts += count.tolist()
        pooled = [sum(values) for values in zip(*nll.values(), strict=True)]
        scores = compute_all(metrics, pooled, [count * len(self.directions) for count in counts])
        if len(self.directions) > 1:
            for prefix, values in nll.items():
                scores.update({prefix + name: value for name, value in compute_all(metrics, values, counts).items()})
        total_tokens = sum(counts) * len(self.directions)
        scores["loss"] = sum(pooled) / total_tokens if total_tokens else float("nan")
        records = [{"index": i, "predicted_tokens": count, "nll": round(value, 4)} for i, (count, value) in enumerate(zip(counts, pooled, strict=True))]
        return scores, records
