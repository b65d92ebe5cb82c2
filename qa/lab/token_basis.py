"""The directions token vectors are kept along (`qa.tokens`): the top principal directions
of MiniLM's token vectors over the sentences of SQuAD's fit split articles, fitted once and
shipped as data (`qa/token_basis.npy`: the mean row, then one row per direction).

    .venv/bin/python -m qa.lab.token_basis ../shared/benchmarks/squad2-dev/dev-v2.0.json 64

Fitted on "fit" only; how many directions was chosen on "select" (studies/token_footprint.py).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np

from ..chunk import split_sentences
from ..config import Config
from ..embed import load_encoder
from ..tokens import BASIS_FILE
from .squad import squad_articles

SENTENCES = 3000  # sampled with a fixed seed: ~100,000 token vectors


def fit_basis(squad: str, dims: int, out: Path = BASIS_FILE) -> dict:
    texts = [p["context"] for a in squad_articles(squad, "fit") for p in a["paragraphs"]]
    sentences = [t[a:b] for t in texts for a, b in split_sentences(t)]
    sample = random.Random(0).sample(sentences, min(SENTENCES, len(sentences)))
    _, tokens = load_encoder(Config()).encode_tokens(sample)
    rows = np.concatenate([t.vectors[t.content] for t in tokens if t.content.any()]).astype(np.float64)
    mean = rows.mean(axis=0)
    _, values, vt = np.linalg.svd(rows - mean, full_matrices=False)
    np.save(out, np.vstack([mean, vt[:dims]]).astype(np.float32))
    kept = float((values[:dims] ** 2).sum() / (values ** 2).sum())
    return {"sentences": len(sample), "token_vectors": len(rows), "dims": dims, "variance_kept": round(kept, 4)}


if __name__ == "__main__":
    print(fit_basis(sys.argv[1], int(sys.argv[2])))
