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

from .store import Store
from .text import Lexicon
from .types import Passage

WEIGHTS = {"dense": 1.0, "bm25": 1.5, "sentence": 1.0}


class Retriever:
    def __init__(self, store: Store, lexicon: Lexicon, candidates: int, rrf_k: int):
        self.store = store
        self.lexicon = lexicon
        self.candidates = candidates
        self.rrf_k = rrf_k

    def search(self, query: str, q_vec: np.ndarray, k: int) -> list[Passage]:
        n = min(self.candidates, self.store.manifest["counts"]["chunks"])
        if n == 0 or k <= 0:
            return []
        dense = dict(self.store.search_chunks(q_vec, n))
        lexical = dict(self.store.search_terms(sorted(self.lexicon.query_terms(query)), n))
        rankings = {"dense": list(dense), "bm25": list(lexical), "sentence": self._by_best_sentence(q_vec, n)}
        fused: dict[int, float] = {}
        for name, ranking in rankings.items():
            for rank, cid in enumerate(ranking):
                fused[cid] = fused.get(cid, 0.0) + WEIGHTS[name] / (self.rrf_k + rank + 1)
        best = sorted(fused, key=lambda c: (-fused[c], c))[:k]
        passages = []
        for cid, vec in zip(best, self.store.chunk_vectors(best)):
            chunk = self.store.chunk(cid)
            passages.append(Passage(
                chunk_id=cid, doc_id=chunk.doc_id, start=chunk.start, end=chunk.end,
                text=self.store.chunk_text(cid), score=round(fused[cid], 6),
                dense=round(dense.get(cid, float(vec @ q_vec)), 6), lexical=round(lexical.get(cid, 0.0), 6),
            ))
        return passages

    def _by_best_sentence(self, q_vec: np.ndarray, n: int) -> list[int]:
        ranking: dict[int, None] = {}
        for sid in self.store.search_sentences(q_vec, n * 3):
            for cid in self.store.chunks_of(sid):
                ranking.setdefault(cid)
        return list(ranking)[:n]
