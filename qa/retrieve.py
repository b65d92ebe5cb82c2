"""Hybrid retrieval: FAISS cosine over chunk vectors and BM25 over chunk terms, fused by rank.

Reciprocal-rank fusion (Cormack et al., 2009) adds 1 / (k + rank) from each list. It
needs no score calibration between a cosine and an unbounded BM25 score, and a chunk
ranked well by both retrievers beats one ranked first by only one of them.
"""

from __future__ import annotations

import re

import numpy as np

from .index import Index
from .text import STOPWORDS, Lexicon
from .types import Passage


class Retriever:
    def __init__(self, index: Index, lexicon: Lexicon, candidates: int = 50, rrf_k: int = 60):
        self.index = index
        self.lexicon = lexicon
        self.candidates = candidates
        self.rrf_k = rrf_k

    def search(self, query: str, q_vec: np.ndarray, k: int) -> list[Passage]:
        n = min(self.candidates, len(self.index.chunks))
        if n == 0 or k <= 0:
            return []
        cos, ids = self.index.dense.search(q_vec.reshape(1, -1).astype(np.float32), n)
        dense_rank = [int(i) for i in ids[0] if i >= 0]
        dense_score = {int(i): float(c) for i, c in zip(ids[0], cos[0]) if i >= 0}

        q_terms = sorted(self.lexicon.query_terms(query))
        bm25 = self.index.bm25.get_scores(q_terms) if q_terms else np.zeros(len(self.index.chunks))
        lexical_rank = [int(i) for i in np.argsort(-bm25, kind="stable")[:n] if bm25[i] > 0]

        fused: dict[int, float] = {}
        for ranking in (dense_rank, lexical_rank):
            for rank, cid in enumerate(ranking):
                fused[cid] = fused.get(cid, 0.0) + 1.0 / (self.rrf_k + rank + 1)
        best = sorted(fused, key=lambda c: (-fused[c], c))[:k]

        vectors = self.index.dense.reconstruct_batch(np.array(best, dtype=np.int64))
        passages = []
        for cid, vec in zip(best, vectors):
            chunk = self.index.chunks[cid]
            passages.append(Passage(
                chunk_id=cid, doc_id=chunk.doc_id, start=chunk.start, end=chunk.end,
                text=self.index.chunk_text(chunk), score=round(fused[cid], 6),
                dense=round(dense_score.get(cid, float(vec @ q_vec)), 6), lexical=round(float(bm25[cid]), 6),
            ))
        return passages


# Words that point back to something said earlier in the conversation.
_ANAPHORA = re.compile(r"\b(?:it|its|it's|they|their|them|theirs|this|that|these|those|he|she|his|her|him|there|the same)\b", re.I)
_NAMES = re.compile(r"\b(?:[A-Z][\w'&-]*(?:\s+(?:of|and|for|the|&)\s+|\s+)?)*[A-Z][\w'&-]*")
_NOT_NAMES = STOPWORDS | {"tell", "list", "name", "give", "show", "please"}


def standalone_query(question: str, history: list[dict] | None = None) -> str:
    """The question made searchable on its own: a follow-up that says "its" or names no
    subject borrows the subject of the previous question it follows."""
    if not history:
        return question
    subject = ""
    for turn in history:  # resolve each earlier turn in order, so follow-ups of follow-ups chain
        previous = standalone_query(turn.get("question", ""), None) if not subject else _resolve(turn.get("question", ""), subject)
        subject = _subject(previous) or subject
    return _resolve(question, subject)


def _resolve(question: str, subject: str) -> str:
    if not subject or subject.lower() in question.lower():
        return question
    if _ANAPHORA.search(question) or not _subject(question):
        return f"{question} ({subject})"
    return question


def _subject(question: str) -> str:
    """The named things a question is about: its capitalised phrases, bar a leading question word."""
    names = []
    for m in _NAMES.finditer(question):
        words = m.group().split()
        if m.start() == 0 and words[0].lower() in _NOT_NAMES:  # sentence case, not a name
            words = words[1:]
        if words:
            names.append(" ".join(words))
    return " ".join(names)
