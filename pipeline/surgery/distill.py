"""`model.add_tokens.init: distill` (Token Distillation, Dobler et al. 2025): an added token's row is fitted so that
the frozen model reads it as it read the token's pieces. For each token, a few snippets of the training text that
hold its text are tokenized twice: by the tokenizer before the tokens were added (the teacher's input: the pieces) and
after (the student's: one new token). The new rows (started as `compose`: the mean of the pieces' rows) are the only
parameters; Adam lowers the mean squared gap between the last hidden states of the two inputs at every position
where both tokenizations end at the same character (the token against its last piece, and every position after).

The model stays as it is (eval mode: no dropout); only the rows change, in place, in the table (and in a tied LM
head, one tensor with it). Snippets are drawn with the run's seed, so the rows are the same for the same seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from pipeline.errors import PipelineError
from pipeline.recipe.model import Distillation

FIELD = "model.add_tokens.init"


@dataclass
class Snippet:
    """One snippet tokenized both ways, and the (student position, teacher position) pairs that end alike."""

    student: list[int]
    teacher: list[int]
    pairs: list[tuple[int, int]]


def _ends(offsets: list[tuple[int, int]]) -> dict[int, int]:
    """Character end → position (the last position ending there)."""
    return {end: position for position, (_, end) in enumerate(offsets)}


def snippets_for(
    token_id: int,
    text: str,
    texts: list[str],
    tokenizers: tuple[PreTrainedTokenizerBase, PreTrainedTokenizerBase],
    budget: Distillation,
    rng: random.Random,
) -> list[Snippet]:
    """Up to `budget.snippets` snippets of `texts` around an occurrence of `text` whose new tokenization holds the
    token (student) beside the old tokenization (teacher), aligned by character ends (from the token on)."""
    new, old = tokenizers
    places = [(row, at) for row, whole in enumerate(texts) for at in _occurrences(whole, text)]
    rng.shuffle(places)
    snippets = []
    for row, at in places:
        start = max(0, at - budget.width)
        window = texts[row][start : at + len(text) + budget.width]
        student = new(window, add_special_tokens=False, return_offsets_mapping=True)
        teacher = old(window, add_special_tokens=False, return_offsets_mapping=True)
        if token_id not in student["input_ids"]:
            continue  # the new tokenizer read this occurrence another way (inside a longer word)
        first = student["input_ids"].index(token_id)
        teacher_at = _ends(teacher["offset_mapping"])
        pairs = [(position, teacher_at[end]) for position, (_, end) in enumerate(student["offset_mapping"])
                 if position >= first and end in teacher_at]  # fmt: skip
        snippets.append(Snippet(student["input_ids"], teacher["input_ids"], pairs))
        if len(snippets) == budget.snippets:
            break
    return snippets


def _occurrences(text: str, part: str) -> list[int]:
    found, at = [], text.find(part)
    while at >= 0 and part:
        found.append(at)
        at = text.find(part, at + 1)
    return found


def _padded(rows: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(snippets, longest) ids padded on the right, and the attention mask."""
    longest = max(len(row) for row in rows)
    ids = torch.tensor([row + [pad] * (longest - len(row)) for row in rows])
    mask = torch.tensor([[1] * len(row) + [0] * (longest - len(row)) for row in rows])
    return ids, mask


def last_hidden(model: PreTrainedModel, mask: torch.Tensor, **inputs: torch.Tensor) -> torch.Tensor:
    """(snippets, length, width) last hidden states, from ids or from input embeddings."""
    try:
        return model(**inputs, attention_mask=mask, output_hidden_states=True).hidden_states[-1]
    except (TypeError, ValueError, AttributeError) as error:
        raise PipelineError(f"init: distill needs a model that takes input embeddings ({error})", FIELD) from None


def distill_rows(
    model: PreTrainedModel, ids: list[int], snippets: list[Snippet], budget: Distillation, pad: int
) -> dict[str, float]:
    """Fit the table rows `ids` (in place) on `snippets`; the hidden-state gap (mean squared difference over the
    aligned positions) before and after."""
    table = model.get_input_embeddings().weight
    student_ids, student_mask = _padded([snippet.student for snippet in snippets], pad)
    teacher_ids, teacher_mask = _padded([snippet.teacher for snippet in snippets], pad)
    rows = [s for s, snippet in enumerate(snippets) for _ in snippet.pairs]
    student_at = torch.tensor([p for snippet in snippets for p, _ in snippet.pairs])
    teacher_at = torch.tensor([q for snippet in snippets for _, q in snippet.pairs])
    was_training = model.training
    model.eval()
    with torch.no_grad():
        target = last_hidden(model, teacher_mask, input_ids=teacher_ids)[rows, teacher_at].float()
    fitted = torch.nn.Parameter(table.detach()[ids].clone().float())
    optimizer = torch.optim.Adam([fitted], lr=budget.lr)
    index = torch.tensor(ids)

    def gap() -> torch.Tensor:
        weight = table.detach().index_put((index,), fitted.to(table.dtype))
        hidden = last_hidden(model, student_mask, inputs_embeds=F.embedding(student_ids, weight))
        return F.mse_loss(hidden[rows, student_at].float(), target)

    with torch.no_grad():
        before = float(gap())
    for _ in range(budget.steps):
        optimizer.zero_grad()
        loss = gap()
        (gradient,) = torch.autograd.grad(loss, [fitted])  # the rows only: no gradient for the frozen model
        fitted.grad = gradient
        optimizer.step()
    with torch.no_grad():
        after = float(gap())
        table[index] = fitted.to(table.dtype)
    model.train(was_training)
    return {"gap_before": round(before, 6), "gap_after": round(after, 6), "snippets": len(snippets)}
