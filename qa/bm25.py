"""BM25 over the chunks' terms, in bm25s's files.

bm25s builds the index at ingest: each term's BM25 score in each chunk, computed once (its
"eager" scores, a compressed sparse column matrix), and saved as three arrays and two JSON
files. A question then only sums the columns of its terms. `Bm25` holds those arrays and
does that sum itself, as bm25s's `get_scores` does, so that a process that answers
questions never imports bm25s and with it scipy: that import was 0.14 s of every cold
start (`python -X importtime -m qa ask …`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ARRAYS = ("data", "indices", "indptr")
# Only these methods keep every score in the matrix; the others add a score for the terms
# a chunk lacks (a "nonoccurrence" array), which this sum leaves out.
METHODS = ("lucene", "robertson", "atire")


@dataclass(frozen=True, eq=False)  # arrays: no field-wise equality
class Bm25:
    vocab: dict[str, int]
    data: np.ndarray  # each (term, chunk) pair's score, column by column
    indices: np.ndarray  # the chunk of each score
    indptr: np.ndarray  # where each term's column starts in `data`
    params: dict  # as bm25s wrote them (k1, b, method, dtype, num_docs, version …)

    @classmethod
    def build(cls, corpus: list[list[str]]) -> Bm25:
        """Each chunk's terms scored by bm25s with its defaults."""
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets DEBUG on import
        index = bm25s.BM25()
        index.index(corpus, show_progress=False)
        params = {"k1": index.k1, "b": index.b, "delta": index.delta, "method": index.method,
                  "idf_method": index.idf_method, "dtype": index.dtype, "int_dtype": index.int_dtype,
                  "num_docs": index.scores["num_docs"], "version": bm25s.__version__, "backend": index.backend}
        return cls(dict(index.vocab_dict), *(index.scores[name] for name in ARRAYS), params)

    @classmethod
    def load(cls, folder: Path) -> Bm25:
        """What `save` (or bm25s's own `BM25.save`) wrote; ValueError where it is not that."""
        params = json.loads((folder / "params.index.json").read_text(encoding="utf-8"))
        vocab = json.loads((folder / "vocab.index.json").read_text(encoding="utf-8"))
        if not isinstance(params, dict) or not isinstance(vocab, dict):
            raise ValueError("its parameters or vocabulary are not JSON objects")
        if params.get("method") not in METHODS:
            raise ValueError(f"BM25 method {params.get('method')!r} is not one of {', '.join(METHODS)}")
        try:
            documents = int(params["num_docs"])
            np.dtype(params["dtype"])
        except (KeyError, TypeError, ValueError):
            raise ValueError("its parameters lack a number of chunks or a dtype") from None
        data, indices, indptr = (np.load(folder / f"{name}.csc.index.npy", allow_pickle=False) for name in ARRAYS)
        if {data.ndim, indices.ndim, indptr.ndim} != {1} or len(data) != len(indices) or not len(indptr) or \
                indptr[-1] != len(data) or max(vocab.values(), default=0) >= len(indptr) or \
                indices.max(initial=-1) >= documents:
            raise ValueError("its arrays do not match its vocabulary and its number of chunks")
        return cls(vocab, data, indices, indptr, params)

    @property
    def documents(self) -> int:
        return int(self.params["num_docs"])

    def save(self, folder: Path) -> None:
        """The files bm25s's `BM25.save` writes (no corpus), readable by either."""
        folder.mkdir(parents=True, exist_ok=True)
        for name, array in zip(ARRAYS, (self.data, self.indices, self.indptr)):
            np.save(folder / f"{name}.csc.index.npy", array, allow_pickle=False)
        (folder / "vocab.index.json").write_text(json.dumps(self.vocab, ensure_ascii=False), encoding="utf-8")
        (folder / "params.index.json").write_text(json.dumps(self.params, indent=4), encoding="utf-8")

    def get_scores(self, terms: list[str]) -> np.ndarray:
        """Each chunk's BM25 score for these terms (a term given twice counts twice)."""
        scores = np.zeros(self.documents, dtype=np.dtype(self.params["dtype"]))
        for term in terms:
            # bm25s gives the empty term the last id, with no column of its own
            if (t := self.vocab.get(term)) is not None and t + 1 < len(self.indptr):
                start, end = self.indptr[t], self.indptr[t + 1]
                np.add.at(scores, self.indices[start:end], self.data[start:end])
        return scores
