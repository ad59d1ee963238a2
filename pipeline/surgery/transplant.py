"""Transfer methods that meet old and new tokens in a shared space (`transfer: focus | omp`), refining the plan of
`pipeline.surgery.transfer`: a new token the two vocabularies do not share (planned `composed` or `random`) becomes a
sparse mix of the old rows of the *shared* (anchor) tokens, weighted by how the tokens relate in that space:

- the space: static token vectors trained with gensim on the training text tokenized by *both* tokenizers, each token
  named by what it spells and whether it starts a word (`token_keys`), so a shared token is one word of the corpus and
  both vocabularies' tokens get vectors; or, for `omp`, a donor model's table whose rows belong to the new tokenizer;
- `focus` (FOCUS, Dobler & de Melo 2023): the weights are the sparsemax of the token's cosine similarities to the
  anchors (a few anchors get weight, summing to one);
- `omp` (as mergekit's tokensurgeon, Goddard & Fernandes Neto 2025): orthogonal matching pursuit writes the token's
  vector as a least-squares mix of `k` anchors' vectors, greedily chosen; the same coefficients mix the anchors'
  pretrained rows.

Anchors are shared tokens the space knows from the corpus (a fastText vector made only from character n-grams is
too rough to anchor others); a token to make may take its n-gram vector. A token the space has no vector for keeps its
`composed` or `random` plan. Nothing here draws random numbers: a plan is the same for the same vectors.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from pipeline.errors import PipelineError, unusable
from pipeline.paths import resolve_model_path
from pipeline.recipe.layers import FocusTransfer, OmpTransfer, Transfer, VectorTraining
from pipeline.surgery.job import SurgeryJob
from pipeline.surgery.registry import implements
from pipeline.surgery.replace import TableSlot, TransferSurgery
from pipeline.surgery.trained_vectors import TrainedVectors, corpus_texts, vectors_of_sentences
from pipeline.surgery.transfer import RowPlan, canonical
from pipeline.surgery.vectors import WordVectors
from pipeline.vocabulary.spelling import token_style

CHUNK = 512  # new tokens solved together (a chunk's similarities to every anchor are held at once)
MAKEABLE = ("composed", "random")  # the routes a shared space may re-plan


def token_keys(tokenizer: PreTrainedTokenizerBase) -> list[str | None]:
    """Per id: the token's name in the shared space, `▁` for a word start and then what it spells (white space
    written as `<hex>`, so a key is one word of a vector file), or None for a special token or one spelling nothing."""
    style, special = token_style(tokenizer), set(tokenizer.all_special_ids)
    keys: list[str | None] = []
    for i, token in enumerate(tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))):
        starts, text = canonical(token, style, tokenizer) if token is not None else (False, "")
        visible = "".join(f"<{ord(c):x}>" if c.isspace() else c for c in text)
        keys.append(None if i in special or not visible else ("▁" if starts else "") + visible)
    return keys


def token_sentences(texts: list[str], tokenizer: PreTrainedTokenizerBase) -> list[list[str]]:
    """Each text as the keys of its tokens under `tokenizer` (special tokens left out)."""
    keys = token_keys(tokenizer)
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
    return [[keys[i] for i in ids if keys[i] is not None] for ids in encoded]


def transplant_vectors(
    spec: VectorTraining,
    train_texts: list[str],
    old: PreTrainedTokenizerBase,
    new: PreTrainedTokenizerBase,
    seed: int,
) -> TrainedVectors:
    """Token vectors trained on the corpus (`spec.corpus`: the training texts or a file) tokenized by both tokenizers,
    one sentence per text and tokenizer (cached like any trained vectors)."""
    texts = [text.lower() if spec.lowercase else text for text in corpus_texts(spec, train_texts)]
    return vectors_of_sentences(spec, token_sentences(texts, new) + token_sentences(texts, old), seed)


def sparsemax(scores: torch.Tensor) -> torch.Tensor:
    """(rows, n) → (rows, n) sparsemax (Martins & Astudillo 2016): the Euclidean projection of each row onto the
    simplex; weights ≥ 0 summing to 1, most of them exactly 0."""
    ordered, _ = scores.sort(dim=-1, descending=True)
    ranks = torch.arange(1, scores.shape[-1] + 1, dtype=scores.dtype)
    cumulative = ordered.cumsum(dim=-1)
    support = (1 + ranks * ordered) > cumulative  # (rows, n): the sorted entries that stay positive
    size = support.sum(dim=-1, keepdim=True)  # (rows, 1), at least 1
    threshold = (cumulative.gather(-1, size - 1) - 1) / size.to(scores.dtype)
    return (scores - threshold).clamp(min=0)


def omp(dictionary: torch.Tensor, targets: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthogonal matching pursuit of every target at once. dictionary (n, d) atoms, targets (b, d) → the chosen
    atoms (b, k') and their least-squares coefficients (b, k'), k' = min(k, n): each step adds the atom whose inner
    product with the residual is largest in size, then refits all chosen atoms to the target.

    The atoms are not scaled to unit length first (for unit atoms this is textbook OMP): token vectors differ in
    length (a rare token's is short), and a short atom picked for its direction needs a large coefficient, which,
    applied to a pretrained row of ordinary length, makes a row far longer than any other (a tied LM head then
    gives it huge logits). Matching by inner product keeps the coefficients of the size of what they mix."""
    # LAPACK's batched least squares may differ in the last float32 bits from call to call (its blocking follows
    # memory alignment): solved in float64 and rounded back, the rows are the same for the same inputs.
    dtype, dictionary, targets = targets.dtype, dictionary.double(), targets.double()
    chosen = torch.empty(targets.shape[0], 0, dtype=torch.long)
    coefficients = torch.empty(targets.shape[0], 0, dtype=targets.dtype)
    residual = targets
    for _ in range(min(k, dictionary.shape[0])):
        match = (residual @ dictionary.T).abs()  # (b, n)
        match.scatter_(1, chosen, -1.0)  # an atom is chosen once
        chosen = torch.cat([chosen, match.argmax(dim=1, keepdim=True)], dim=1)
        atoms = dictionary[chosen]  # (b, s, d)
        coefficients = torch.linalg.lstsq(atoms.transpose(1, 2), targets.unsqueeze(-1)).solution.squeeze(-1)  # (b, s)
        residual = targets - (coefficients.unsqueeze(1) @ atoms).squeeze(1)
    return chosen, coefficients.to(dtype)


def _space_rows(
    plans: list[RowPlan], keys: list[str | None], vectors: WordVectors
) -> tuple[list[int], torch.Tensor, list[int], torch.Tensor]:
    """The anchors (new ids of shared tokens the vectors know from the corpus) and the tokens to make (new ids planned
    `composed` or `random` with a vector, n-gram ones included), each with its (rows, d) vectors."""
    anchors, anchor_rows, targets, target_rows = [], [], [], []
    for i, (plan, key) in enumerate(zip(plans, keys, strict=True)):
        if key is None:
            continue
        if plan.route == "copied" and key in vectors.index:
            anchors.append(i)
            anchor_rows.append(vectors.matrix[vectors.index[key]])
        elif plan.route in MAKEABLE and (key in vectors.index or vectors.oov is not None):
            targets.append(i)
            target_rows.append(vectors.matrix[vectors.index[key]] if key in vectors.index else vectors.oov(key))
    as_tensor = lambda rows: torch.tensor(np.asarray(rows, dtype=np.float32)).reshape(len(rows), vectors.dim)  # noqa: E731
    return anchors, as_tensor(anchor_rows), targets, as_tensor(target_rows)


def focus_plans(plans: list[RowPlan], new: PreTrainedTokenizerBase, vectors: WordVectors) -> None:
    """Re-plan each token to make as the sparsemax-weighted mix of the anchors by cosine similarity (FOCUS)."""
    anchors, anchor_rows, targets, target_rows = _space_rows(plans, token_keys(new), vectors)
    if not anchors:
        return
    unit = torch.nn.functional.normalize(anchor_rows, dim=1)
    for start in range(0, len(targets), CHUNK):
        similarity = torch.nn.functional.normalize(target_rows[start : start + CHUNK], dim=1) @ unit.T
        for i, weights in zip(targets[start : start + CHUNK], sparsemax(similarity), strict=True):
            kept = weights.nonzero().squeeze(1).tolist()
            plans[i] = RowPlan("focus", [plans[anchors[a]].sources[0] for a in kept], weights[kept].tolist())


def omp_plans(plans: list[RowPlan], keys: list[str | None], vectors: WordVectors, k: int) -> None:
    """Re-plan each token to make as the OMP mix of `k` anchors in the space of `vectors` (keyed as `keys` says)."""
    anchors, anchor_rows, targets, target_rows = _space_rows(plans, keys, vectors)
    if not anchors:
        return
    for start in range(0, len(targets), CHUNK):
        chosen, coefficients = omp(anchor_rows, target_rows[start : start + CHUNK], k)
        for i, atoms, mix in zip(targets[start : start + CHUNK], chosen.tolist(), coefficients.tolist(), strict=True):
            plans[i] = RowPlan("omp", [plans[anchors[a]].sources[0] for a in atoms], mix)


def donor_space(table: torch.Tensor, new: PreTrainedTokenizerBase) -> tuple[list[str | None], WordVectors]:
    """A donor model's token table (its rows belong to the new tokenizer) as a space keyed by new id: every token
    has a vector, so every shared token anchors."""
    keys = [None if key is None else str(i) for i, key in enumerate(token_keys(new))]
    matrix = table.detach().float().cpu().numpy()
    return keys, WordVectors({str(i): i for i in range(min(len(new), matrix.shape[0]))}, matrix)


def donor_table(donor: str, new: PreTrainedTokenizerBase) -> torch.Tensor:
    """The token table (rows, width) of the `omp` donor model, which must have a row for every new token."""
    from transformers import AutoModel

    try:
        table = AutoModel.from_pretrained(resolve_model_path(donor)).get_input_embeddings().weight
    except Exception as error:  # a pickle torch refuses to load (nothing of it runs), a folder of another shape...
        raise unusable(f"cannot load the donor model '{donor}'", error, "layers.token_embeddings.donor") from None
    if table.shape[0] < len(new):
        raise PipelineError(
            f"the donor's table has {table.shape[0]} rows for a tokenizer of {len(new)} tokens: its table must belong "
            "to the new tokenizer (model.tokenizer)",
            field="layers.token_embeddings.donor",
        )
    return table


class TokenVectorTransfer(TransferSurgery):
    """A transfer whose space is static token vectors trained on the corpus under both tokenizers (when the
    variant's `token_vectors` names them)."""

    def vectors(self, policy: Transfer, job: SurgeryJob) -> TrainedVectors | None:
        spec, original = policy.token_vectors(), job.context.original
        if spec is None or original is None:
            return None
        return transplant_vectors(spec, job.context.texts, original, job.tokenizer, job.context.seed)


@implements(FocusTransfer)
class FocusTransferSurgery(TokenVectorTransfer):
    """`transfer: focus`: the tokens to make re-planned as sparsemax mixes of the shared tokens."""

    def refine(self, policy: FocusTransfer, plans: list[RowPlan], slot: TableSlot) -> None:
        if slot.trained is not None:
            focus_plans(plans, slot.tokenizer, slot.trained)


@implements(OmpTransfer)
class OmpTransferSurgery(TokenVectorTransfer):
    """`transfer: omp`: the tokens to make re-planned by orthogonal matching pursuit over `k` anchors, in a donor's
    table or in token vectors trained on the corpus."""

    def refine(self, policy: OmpTransfer, plans: list[RowPlan], slot: TableSlot) -> None:
        if policy.donor is not None:
            keys, space = donor_space(donor_table(policy.donor, slot.tokenizer), slot.tokenizer)
            omp_plans(plans, keys, space, policy.k)
        elif slot.trained is not None:
            omp_plans(plans, token_keys(slot.tokenizer), slot.trained, policy.k)
