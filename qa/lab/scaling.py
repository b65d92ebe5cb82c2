"""How the dense index behaves as it grows (`qa bench`'s scaling section): build time,
single-query latency and recall@10 of the index `qa.fileswrite.dense_index` chooses, against
exact search on the same vectors, for vector counts no real corpus here reaches."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence

import numpy as np

from ..config import Config
from ..types import Say, percentiles


def synthetic_vectors(n: int, dim: int, seed: int, topics: int = 1024, subtopics: int = 16) -> np.ndarray:
    """Unit vectors shaped like sentence embeddings rather than uniform noise: a topic, a
    subtopic within it and a vector's own part (cosine ≈ 0.75 within a subtopic, ≈ 0.5
    within a topic, ≈ 0 across), which is what makes approximate search hard or easy.
    Topics and subtopics are the same for every seed; only the points differ."""
    shape = np.random.default_rng(12345)
    centres = shape.standard_normal((topics, dim)).astype(np.float32)
    offsets = shape.standard_normal((topics, subtopics, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    offsets /= np.linalg.norm(offsets, axis=2, keepdims=True)
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):  # in slices, so 1M vectors need no more than their own memory
        m = min(100_000, n - start)
        t, s = rng.integers(0, topics, m), rng.integers(0, subtopics, m)
        noise = rng.standard_normal((m, dim)).astype(np.float32)
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)
        rows = centres[t] + 0.7 * offsets[t, s] + 0.7 * noise
        out[start:start + m] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return out


def scaling(config: Config, sizes: Sequence[int], kinds: Sequence[str] = ("auto",), queries: int = 200,
            dim: int = 384, say: Say = print) -> list[dict]:
    """Per size (and per index kind asked for; "auto" is what `fileswrite.dense_index` chooses):
    build time, single-query latency and recall@10 against exact search on the same vectors."""
    import faiss

    from ..fileswrite import dense_index

    rows = []
    for n in sizes:
        base, probe = synthetic_vectors(n, dim, seed=1), synthetic_vectors(queries, dim, seed=2)
        _, exact = faiss.knn(probe, base, 10, metric=faiss.METRIC_INNER_PRODUCT)
        for asked in kinds:
            say(f"scaling: {n:,} vectors, index {asked}")
            started = time.perf_counter()
            index, kind = dense_index(base, config.with_overrides(dense_index=asked))
            build = time.perf_counter() - started
            latency, found = [], []
            for q in probe:
                started = time.perf_counter()
                _, ids = index.search(q.reshape(1, -1), 10)
                latency.append((time.perf_counter() - started) * 1000)
                found.append(ids[0])
            recall = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact)])
            with tempfile.NamedTemporaryFile(suffix=".faiss") as fh:
                faiss.write_index(index, fh.name)
                size = os.path.getsize(fh.name)
            rows.append({"vectors": n, "asked": asked, "index": kind, "build_s": round(build, 2),
                         "search_ms": percentiles(latency), "recall_at_10": round(float(recall), 4),
                         "mb_per_million": round(size / n * 1e6 / 2**20)})
            del index
    return rows
