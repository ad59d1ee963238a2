"""Pooling an encoder's hidden states into one vector per text, and the bi-encoder losses.

- In-batch negatives (multiple-negatives ranking, InfoNCE; Henderson et al. 2017, van den Oord et al. 2018): each
  anchor's positive must score above every other candidate of the batch (the other pairs' positives, and any hard
  negatives), by cross-entropy over `scale` × cosine similarity. Candidates whose anchor is the same text as the
  anchor's own are masked out: they are not negatives (a batch without duplicate anchors, in effect).
- CoSENT (Su 2022), for pairs with a similarity score: every two pairs whose gold scores are ordered must have their
  cosine similarities ordered the same way: log(1 + Σ exp(scale · (cos_j − cos_i))) over pairs with s_i > s_j.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pool(hidden: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """(texts, seq, width) hidden states and their (texts, seq) attention mask → (texts, width) vectors: the `mean`
    over real tokens, the first token's (`cls`), the `max` over real tokens, or the `last` real token's (padding is
    on the right)."""
    mask = mask.to(hidden.dtype).unsqueeze(-1)  # (texts, seq, 1)
    if how == "cls":
        return hidden[:, 0]
    if how == "last":
        last = mask.squeeze(-1).sum(dim=1).long().clamp(min=1) - 1  # (texts,)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    if how == "max":
        return hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min).max(dim=1).values
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


def in_batch_negatives_loss(
    anchors: torch.Tensor, candidates: torch.Tensor, same_anchor: torch.Tensor, scale: float
) -> torch.Tensor:
    """anchors (pairs, width) and candidates (pairs × k, width): the pairs' positives first, then any hard negatives;
    same_anchor (pairs, pairs): True where two pairs have the same anchor text. Cross-entropy of each anchor's
    positive against every other candidate (the loss's gradient reaches every pair of the batch)."""
    scores = scale * F.normalize(anchors, dim=-1) @ F.normalize(candidates, dim=-1).T  # (pairs, pairs × k)
    pairs = anchors.shape[0]
    own = torch.eye(pairs, dtype=torch.bool, device=anchors.device)
    masked = same_anchor & ~own  # another pair's positive that answers this anchor too: no negative
    padding = torch.zeros(pairs, candidates.shape[0] - pairs, dtype=torch.bool, device=anchors.device)
    scores = scores.masked_fill(torch.cat([masked, padding], dim=1), torch.finfo(scores.dtype).min)
    return F.cross_entropy(scores, torch.arange(pairs, device=anchors.device))


def cosent_loss(first: torch.Tensor, second: torch.Tensor, gold: torch.Tensor, scale: float) -> torch.Tensor:
    """first, second (pairs, width) and gold (pairs,) scores: log(1 + Σ_{s_i > s_j} exp(scale · (cos_j − cos_i)))."""
    cosine = scale * F.cosine_similarity(first, second, dim=-1)  # (pairs,)
    differences = cosine[None, :] - cosine[:, None]  # [i, j] = cos_j − cos_i
    ordered = gold[:, None] > gold[None, :]  # [i, j]: pair i should score above pair j
    terms = differences[ordered]
    return torch.logsumexp(torch.cat([torch.zeros(1, device=terms.device, dtype=terms.dtype), terms]), dim=0)
