"""Vocabulary transfer: a pretrained token table moved to a new tokenizer without throwing away what it learnt.

Each row of the new table is planned from the old one (`plan_transfer`), then built (`apply_plan`):

- `special`: a special token takes its counterpart's row ([CLS] ← [CLS], else BOS / EOS; [PAD] ← [PAD], else EOS...);
- `copied`: a token the two vocabularies share, compared as what it spells and whether it starts a word (WordPiece
  `##ing` and byte-level `ing` are the same continuation piece; `hello` and `Ġhello` the same word start);
- `composed`: any other token is the mean of the old rows of the pieces the *old* tokenizer splits its text into
  (Fast Vocabulary Transfer, Gee et al. 2022);
- `weighted` (`transfer: weighted`, with static vectors): a similarity-weighted mix of the copied tokens whose static
  vectors are closest to its own (softmax of cosine / 0.1 over the 10 nearest; the idea of FOCUS, Dobler & de Melo
  2023, and WECHSEL, Minixhofer et al. 2022); a token without a static vector is composed instead;
- `focus`, `omp` (`pipeline.surgery.transplant`): a sparse mix of the copied tokens, fitted in static token vectors
  or a donor model's table;
- `random`: what is left (its text is empty to the old tokenizer): normal with the old table's std.

The same plan builds an untied LM output layer's new rows from its old ones.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase
from transformers.convert_slow_tokenizer import bytes_to_unicode

from pipeline.surgery.vectors import WordVectors
from pipeline.vocabulary.spelling import token_style

BYTE_OF = {character: byte for byte, character in bytes_to_unicode().items()}  # byte-level BPE's alphabet → bytes
ROUTES = ("special", "copied", "composed", "weighted", "focus", "omp", "random")  # `pipeline.surgery.transplant`
NEIGHBOURS, TEMPERATURE = 10, 0.1
SPECIAL_COUNTERPARTS = {  # a new special token's row: the first of these roles the old tokenizer has
    "cls_token": ("cls_token", "bos_token", "eos_token"),
    "sep_token": ("sep_token", "eos_token"),
    "pad_token": ("pad_token", "eos_token", "unk_token"),
    "unk_token": ("unk_token",),
    "mask_token": ("mask_token", "unk_token"),
    "bos_token": ("bos_token", "cls_token", "eos_token"),
    "eos_token": ("eos_token", "sep_token"),
}


@dataclass
class RowPlan:
    """How one new row is made: its route, and the old rows it mixes with their weights (none: random)."""

    route: str
    sources: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)


def canonical(token: str, style: str, tokenizer: PreTrainedTokenizerBase) -> tuple[bool, str]:
    """(starts a word, the text it spells) of a vocabulary entry. A byte-level token spells its bytes exactly (white
    space kept: `Ċ` is a newline, `ĠĠ` a word-start space); bytes that are no whole UTF-8 text (part of a character)
    are written `<bytes:hex>`, so two byte-level vocabularies still match them and nothing else does."""
    if style == "wordpiece":
        return (False, token[2:]) if token.startswith("##") and len(token) > 2 else (True, token)
    if style == "byte_level":
        raw = bytes(BYTE_OF.get(character, 0) for character in token)
        starts = raw.startswith(b" ") and len(raw) > 1
        raw = raw[1:] if starts else raw
        try:
            return starts, raw.decode("utf-8")
        except UnicodeDecodeError:
            return starts, f"<bytes:{raw.hex()}>"
    if style == "metaspace":
        return token.startswith("▁"), token.lstrip("▁")
    return True, token


def _old_pieces(text: str, starts_word: bool, old: PreTrainedTokenizerBase, style: str) -> list[int]:
    """Old ids of the pieces the old tokenizer splits `text` into (as a word start or a continuation), unknowns left
    out."""
    if text.startswith("<bytes:"):  # part of a character: no text to tokenize
        return []
    prefix = " " if starts_word and style == "byte_level" else ""
    ids = old(prefix + text, add_special_tokens=False)["input_ids"] if text else []
    known = [i for i in ids if i != old.unk_token_id]
    return known or []


def plan_transfer(
    old: PreTrainedTokenizerBase, new: PreTrainedTokenizerBase, vectors: WordVectors | None = None
) -> list[RowPlan]:
    """The plan of every row of the new table (by new id)."""
    old_style, new_style = token_style(old), token_style(new)
    old_vocab = old.get_vocab()
    shared_index = {
        canonical(token, old_style, old): i for token, i in old_vocab.items() if token not in old.all_special_tokens
    }
    specials = {}
    for role, counterparts in SPECIAL_COUNTERPARTS.items():
        token = getattr(new, role, None)
        source = next((getattr(old, r) for r in counterparts if getattr(old, r, None) is not None), None)
        if token is not None and source is not None:
            specials[token] = old_vocab[source]
    plans: list[RowPlan] = [RowPlan("random") for _ in range(len(new))]
    for token, i in new.get_vocab().items():
        if i >= len(plans):
            continue
        if token in specials:
            plans[i] = RowPlan("special", [specials[token]], [1.0])
            continue
        form = canonical(token, new_style, new)
        if form in shared_index:
            plans[i] = RowPlan("copied", [shared_index[form]], [1.0])
            continue
        pieces = _old_pieces(form[1], form[0], old, old_style)
        if pieces:
            plans[i] = RowPlan("composed", pieces, [1.0 / len(pieces)] * len(pieces))
    if vectors is not None:
        _weight_by_vectors(plans, new, new_style, vectors)
    return plans


def _static_vector(text: str, vectors: WordVectors) -> np.ndarray | None:
    for candidate in (text, text.lower()):
        if candidate in vectors.index:
            return np.asarray(vectors.matrix[vectors.index[candidate]], dtype=np.float32)
    return np.asarray(vectors.oov(text), dtype=np.float32) if vectors.oov is not None and text else None


def _weight_by_vectors(plans: list[RowPlan], new: PreTrainedTokenizerBase, style: str, vectors: WordVectors) -> None:
    """Re-plan each composed row as a softmax-weighted mix of the copied tokens nearest to it in static-vector space."""
    tokens = {i: token for token, i in new.get_vocab().items()}
    copied = [(i, p.sources[0]) for i, p in enumerate(plans) if p.route == "copied"]
    anchors = [(old_id, _static_vector(canonical(tokens[i], style, new)[1], vectors)) for i, old_id in copied]
    anchors = [(old_id, v) for old_id, v in anchors if v is not None and np.linalg.norm(v) > 0]
    if not anchors:
        return
    matrix = np.stack([v / np.linalg.norm(v) for _, v in anchors])  # (anchors, dim)
    for i, plan in enumerate(plans):
        if plan.route != "composed":
            continue
        own = _static_vector(canonical(tokens[i], style, new)[1], vectors)
        if own is None or np.linalg.norm(own) == 0:
            continue
        similarity = matrix @ (own / np.linalg.norm(own))
        nearest = np.argsort(-similarity)[:NEIGHBOURS]
        weights = np.exp(similarity[nearest] / TEMPERATURE)
        plans[i] = RowPlan("weighted", [anchors[k][0] for k in nearest], (weights / weights.sum()).tolist())


def apply_plan(old_rows: torch.Tensor, plans: list[RowPlan], seed: int) -> torch.Tensor:
    """The new table (new vocabulary, width) from the old one (old vocabulary, width)."""
    generator = torch.Generator().manual_seed(seed)
    std = float(old_rows.float().std())
    new = torch.empty(len(plans), old_rows.shape[1], dtype=old_rows.dtype)
    with torch.no_grad():
        for i, plan in enumerate(plans):
            if plan.sources:
                weights = torch.tensor(plan.weights, dtype=old_rows.dtype).unsqueeze(1)
                new[i] = (old_rows[plan.sources] * weights).sum(dim=0)
            else:
                new[i] = torch.randn(old_rows.shape[1], generator=generator) * std
    return new


def route_counts(plans: list[RowPlan]) -> dict[str, int]:
    counts = Counter(plan.route for plan in plans)
    return {route: counts.get(route, 0) for route in ROUTES}
