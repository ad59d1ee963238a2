"""Does a token table still encode meaning? Word similarity (Spearman's rho of cosine against human scores) and
analogies (b − a + c ≈ d) on the words that are single tokens, and nearest neighbours of chosen words.

File formats are those gensim ships and reads: word similarity as `word1<TAB>word2<TAB>score` lines (`#` comments),
analogies as `a b c d` lines under `: section` headers (questions-words.txt).
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr
from transformers import PreTrainedTokenizerBase

from pipeline.errors import PipelineError
from pipeline.surgery.transfer import canonical
from pipeline.vocabulary.spelling import token_style

ANALOGY_BATCH = 512


def gensim_test_file(name: str) -> Path | None:
    """A file of gensim's test data (wordsim353.tsv, questions-words.txt), located without importing gensim."""
    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "test" / "test_data" / name
    return path if path.is_file() else None


def _lines(path: Path, field: str) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise PipelineError(f"cannot read '{path}' ({type(error).__name__})", field=field) from None


def read_similarity(path: Path) -> list[tuple[str, str, float]]:
    """(word, word, human score) per line; the header line of gensim's file (non-numeric score) is skipped."""
    pairs = []
    for number, line in enumerate(_lines(path, "--similarity"), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        try:
            pairs.append((parts[0].strip(), parts[1].strip(), float(parts[2])))
            if not math.isfinite(pairs[-1][2]):  # a NaN score would make Spearman's rho NaN, silently
                raise PipelineError(f"{path}, line {number}: the score is {parts[2]}", field="--similarity")
        except (IndexError, ValueError):
            if pairs:  # a header is allowed only before the first pair
                raise PipelineError(
                    f"{path}, line {number}: expected 'word1<TAB>word2<TAB>score'", field="--similarity"
                ) from None
    if not pairs:
        raise PipelineError(f"{path} holds no word pairs", field="--similarity")
    return pairs


def read_analogies(path: Path) -> list[tuple[str, str, str, str]]:
    """(a, b, c, d) per line, read as "a is to b as c is to d"; `:` section headers are skipped."""
    questions = []
    for number, line in enumerate(_lines(path, "--analogies"), start=1):
        if not line.strip() or line.startswith(":"):
            continue
        parts = line.split()
        if len(parts) != 4:
            raise PipelineError(f"{path}, line {number}: expected four words 'a b c d'", field="--analogies")
        questions.append((parts[0], parts[1], parts[2], parts[3]))
    if not questions:
        raise PipelineError(f"{path} holds no analogy questions", field="--analogies")
    return questions


class WordIndex:
    """Whole words that are one token of a tokenizer: word-start vocabulary entries spelling letters only."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase):
        style, special = token_style(tokenizer), set(tokenizer.all_special_ids)
        backend = getattr(tokenizer, "backend_tokenizer", None)
        self.normalizer = backend.normalizer if backend is not None else None
        self.ids: dict[str, int] = {}
        for token, token_id in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1]):
            starts, text = canonical(token, style, tokenizer)
            if starts and text.isalpha() and token_id not in special:
                self.ids.setdefault(text, token_id)
        self.text = {token_id: text for text, token_id in self.ids.items()}

    def lookup(self, word: str) -> int | None:
        """The id of `word` as one token (after the tokenizer's own normalisation, e.g. lower-casing), or None."""
        normalised = self.normalizer.normalize_str(word) if self.normalizer is not None else word
        return self.ids.get(normalised, self.ids.get(word))


def _unit(table: torch.Tensor) -> torch.Tensor:
    return table / table.norm(dim=1, keepdim=True).clamp_min(1e-12)


def word_similarity(table: torch.Tensor, index: WordIndex, pairs: list[tuple[str, str, float]]) -> dict[str, Any]:
    """Spearman's rho between the cosine of the two words' rows and the human score, over pairs of single-token
    words. table: (vocab, hidden)."""
    covered = [(index.lookup(a), index.lookup(b), score) for a, b, score in pairs]
    covered = [(a, b, score) for a, b, score in covered if a is not None and b is not None]
    result: dict[str, Any] = {
        "pairs": len(pairs),
        "covered": len(covered),
        "coverage": len(covered) / len(pairs),
        "spearman": None,
    }
    unit = _unit(table)
    scored = [(float(unit[a] @ unit[b]), score) for a, b, score in covered]
    finite = [(cosine, score) for cosine, score in scored if math.isfinite(cosine)]
    result["non_finite_rows"] = len(scored) - len(finite)  # pairs left out: a row of the table is NaN or infinite
    if len(finite) >= 3:
        rho = spearmanr([cosine for cosine, _ in finite], [score for _, score in finite]).statistic
        result["spearman"] = None if np.isnan(rho) else float(rho)
    return result


def analogy_accuracy(
    table: torch.Tensor, index: WordIndex, questions: list[tuple[str, str, str, str]]
) -> dict[str, Any]:
    """Share of questions whose d is the single-token word nearest (cosine) to unit(b) − unit(a) + unit(c), a, b and
    c excluded (3CosAdd, as gensim scores it), over questions whose four words are single tokens; the candidates
    are every single-token word of the tokenizer."""
    covered = [tuple(index.lookup(word) for word in question) for question in questions]
    covered = [ids for ids in covered if None not in ids]
    result: dict[str, Any] = {
        "questions": len(questions),
        "covered": len(covered),
        "coverage": len(covered) / len(questions),
        "accuracy": None,
    }
    if not covered:
        return result
    candidates = torch.tensor(sorted(index.text), dtype=torch.long)  # long even when empty
    unit = _unit(table)
    pool = unit[candidates]  # (candidates, hidden)
    position = {int(token_id): i for i, token_id in enumerate(candidates)}
    correct = 0
    for start in range(0, len(covered), ANALOGY_BATCH):
        batch = torch.tensor(covered[start : start + ANALOGY_BATCH])  # (batch, 4) token ids
        query = _unit(unit[batch[:, 1]] - unit[batch[:, 0]] + unit[batch[:, 2]])
        scores = query @ pool.T
        for column in range(3):
            scores[torch.arange(len(batch)), torch.tensor([position[int(i)] for i in batch[:, column]])] = -float("inf")
        correct += int((candidates[scores.argmax(dim=1)] == batch[:, 3]).sum())
    result["accuracy"] = correct / len(covered)
    return result


def neighbours(
    table: torch.Tensor, index: WordIndex, words: list[str], how_many: int = 8
) -> dict[str, list[str] | None]:
    """The `how_many` single-token words nearest (cosine) to each word; None for a word that is not one token."""
    candidates = torch.tensor(sorted(index.text), dtype=torch.long)  # long even when empty
    unit = _unit(table)
    pool = unit[candidates]
    found: dict[str, list[str] | None] = {}
    for word in words:
        token_id = index.lookup(word)
        if token_id is None:
            found[word] = None
            continue
        scores = pool @ unit[token_id]
        order = scores.argsort(descending=True).tolist()
        found[word] = [index.text[int(candidates[i])] for i in order if int(candidates[i]) != token_id][:how_many]
    return found
