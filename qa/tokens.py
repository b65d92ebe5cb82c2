"""Token vectors kept small: what `aligned_words` and the "how many" check compare.

MiniLM gives each token a 384-dim float vector, about 40 KB a sentence stored as it
comes. Kept instead: the sentence's content word pieces only, each projected onto 64 fixed
directions (the top principal directions of token vectors over SQuAD's fit split,
`qa/token_basis.npy`, remade by `python -m qa.lab.token_basis`), renormalised, and stored
as int8 with one scale a row: about 1.3 KB a sentence. The question's tokens are made
small alike, so every cosine is taken in the same space. On SQuAD's select split against
the full vectors: first-sentence accuracy 85.62% → 85.75%, false abstention 5.85% →
5.34% (docs/studies.md, "Token vectors kept small").
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np

from .config import DEFAULT_MODEL_SHA256
from .embed import TokenVectors
from .types import ConfigError

BASIS_FILE = Path(__file__).resolve().parent / "token_basis.npy"


@functools.cache
def _basis() -> tuple[np.ndarray, np.ndarray]:
    try:
        rows = np.load(BASIS_FILE)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Cannot read the token basis {BASIS_FILE}: {exc}. Restore it with `git checkout -- "
                          "qa/token_basis.npy` or remake it with `python -m qa.lab.token_basis`.") from None
    return rows[0], np.ascontiguousarray(rows[1:].T)


def projected(model: str) -> bool:
    """Whether token vectors of this model (by its weights' sha256) are projected: the basis
    was fitted on the default embedder's; another model's are kept whole, int8 only."""
    return model == DEFAULT_MODEL_SHA256


@functools.cache
def basis_id(model: str) -> str:
    """The space an index keeps this model's tokens in: the basis's own hash, or "whole".
    An index built in another space is rebuilt."""
    if not projected(model):
        return "whole"
    _basis()  # says what to do when the file is missing
    return hashlib.sha256(BASIS_FILE.read_bytes()).hexdigest()[:16]


def quantised(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows already in the small space (`small`) as stored: int8 codes and a float32 scale
    each. Exact for rows `small` made: quantising them again gives the same codes."""
    z = np.asarray(vectors, np.float32)
    scale = (np.abs(z).max(axis=1) / 127 + 1e-12).astype(np.float32) if len(z) else np.zeros(0, np.float32)
    return np.round(z / scale[:, None]).astype(np.int8), scale


def decoded(codes: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return codes.astype(np.float32) * scale[:, None]


def small(tokens: TokenVectors, model: str, content_only: bool = True) -> TokenVectors:
    """The tokens as stored: projected (for the default embedder, `model` being its weights'
    sha256), renormalised and quantised; content word pieces only (all of them where a text
    has none, or for a question, whose other tokens the features skip anyway)."""
    keep = tokens.content if content_only and tokens.content.any() else np.ones(len(tokens.content), bool)
    z = np.asarray(tokens.vectors[keep], np.float32)
    if projected(model):
        mean, basis = _basis()
        z = (z - mean) @ basis
    z = z / (np.linalg.norm(z, axis=1, keepdims=True) + 1e-9)
    return TokenVectors(decoded(*quantised(z)), tokens.content[keep], tokens.spans[keep])
