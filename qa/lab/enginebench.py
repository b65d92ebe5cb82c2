"""`qa bench --store URI`: the search-engine backend measured where it matters for a plan
beyond one machine: questions through a load balancer with 1, 2 and 3 replicas (each
pinned to a core), ingest with 1 and 2 workers, and the memory of a replica as the corpus
grows to a million synthetic chunks (written straight into the engine: what a replica
holds does not depend on how the rows were made).

It writes into the engine at the URI, dropping what is there: give it one of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time
import urllib.error
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from .. import engine, enginewrite
from ..config import Config, to_env
from ..types import Document, Say, Sentence, percentiles
from .bench import _free_port, _post, _rss_mb, squad_corpus
from .replicas import balancer, replica
from .scaling import synthetic_vectors

CHUNKS_PER_DOCUMENT = 20
VOCABULARY = 10_000_000  # made-up words (an open vocabulary: a Zipf law draws ever more of them)


def run(config: Config, questions: list[str], squad: str | None, documents: int, sizes: Sequence[int],
        say: Say = print, seconds: float = 20.0, out: Path | None = None) -> dict:
    """Every section; with `out`, the results so far are written there after each (the
    million-chunk one takes an hour on 2 cores)."""
    from ..embed import load_encoder
    from ..index import build_index, expected_settings

    client = engine.connect(config.store)
    encoder = load_encoder(config)
    results: dict = {"store": config.store, "cpus": os.cpu_count()}

    def keep() -> None:
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(results, indent=1))
    with tempfile.TemporaryDirectory(prefix="qa-enginebench-") as work:
        work = Path(work)
        if squad:
            corpus = work / "squad"
            corpus.mkdir()
            squad_corpus(squad, documents, corpus)
            results["ingest"] = []
            for workers in (1, 2):
                say(f"ingest of {documents} SQuAD documents with {workers} worker(s)")
                enginewrite.drop_collections(client)
                cfg = config.with_overrides(corpus_dir=str(corpus), index_dir=str(work / f"lock{workers}"))
                started = time.perf_counter()
                if workers == 1:
                    build_index(cfg, encoder)
                else:
                    from ..index import build_in_workers

                    assert not build_in_workers(cfg, workers)
                seconds_taken = time.perf_counter() - started
                counts = engine.read_json(client, "manifest")["counts"]
                texts = counts["sentences"] + counts["chunks"]
                results["ingest"].append({"workers": workers, "documents": counts["documents"], "texts": texts,
                                          "seconds": round(seconds_taken, 1),
                                          "texts_per_s": round(texts / seconds_taken, 1)})
                keep()
        say("replicas behind HAProxy (default corpus)")
        enginewrite.drop_collections(client)
        build_index(config.with_overrides(index_dir=str(work / "lock")), encoder)
        results["replicas"] = [replicas_throughput(config, questions, n, work, seconds) for n in (1, 2, 3)]
        keep()
        results["memory"] = []
        expected = expected_settings(config, encoder.model_id, encoder.weights_sha256, encoder.dim)
        enginewrite.drop_collections(client)
        enginewrite.create_collections(client, encoder.dim)
        written = 0
        for size in sizes:
            say(f"replica memory at {size:,} synthetic chunks")
            written = write_synthetic(client, written, size, encoder.dim, expected)
            results["memory"].append({"chunks": size, **replica_memory(config, work)})
            keep()
    return results


def replicas_throughput(config: Config, questions: list[str], n: int, work: Path, seconds: float) -> dict:
    """`n` replicas, replica i pinned to core i (mod the cores), each with one thread for
    its models; 2n clients ask through the balancer for `seconds` after a warm-up."""
    cpus = os.cpu_count() or 1
    env = {**to_env(config), "QA_READER_THREADS": "1", "QA_EMBED_THREADS": "1", "OMP_NUM_THREADS": "1",
           "QA_RATE_LIMIT_PER_MINUTE": "0", "QA_INDEX_DIR": str(work / "lock")}
    with _replicas(n, env, work) as urls, balancer(urls, _free_port(), work / "lb") as lb:
        url = f"{lb}/api/ask"
        for q in questions[:n * 2]:
            _post(url, q)  # warm
        latency, failures, done = [], [], threading.Event()

        def ask_on(offset: int):
            k = offset
            while not done.is_set():
                started = time.perf_counter()
                try:
                    _post(url, questions[k % len(questions)])
                    latency.append((time.perf_counter() - started) * 1000)
                except (urllib.error.URLError, OSError) as exc:
                    failures.append(repr(exc))
                k += 2 * n
        clients = [threading.Thread(target=ask_on, args=(i,)) for i in range(2 * n)]
        started = time.perf_counter()
        for c in clients:
            c.start()
        time.sleep(seconds)
        done.set()
        for c in clients:
            c.join()
        elapsed = time.perf_counter() - started
    per_s = len(latency) / elapsed
    return {"replicas": n, "cores_used": min(n, cpus), "answers": len(latency), "failures": len(failures),
            "answers_per_s": round(per_s, 2), "answers_per_s_per_core": round(per_s / min(n, cpus), 2),
            "latency_ms": percentiles(latency)}


@contextlib.contextmanager
def _replicas(n: int, env: dict, work: Path) -> Iterator[list[str]]:
    """n replicas, replica i pinned to core i (mod the cores), until the block ends: their URLs."""
    cpus = os.cpu_count() or 1
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(replica(_free_port(), work / "replicas", env, pin=i % cpus))[0] for i in range(n)]


def replica_memory(config: Config, work: Path, questions: int = 20) -> dict:
    """A replica's resident memory after it answered `questions` made-up questions."""
    env = {**to_env(config), "QA_INDEX_DIR": str(work / "lock"), "QA_RATE_LIMIT_PER_MINUTE": "0"}
    rng = np.random.default_rng(7)
    started = time.perf_counter()
    with replica(_free_port(), work / "memory", env) as (url, proc):
        ready = time.perf_counter() - started
        latency = []
        for _ in range(questions):
            q = "What is " + " ".join(_word(int(w)) for w in rng.zipf(1.3, 4) % VOCABULARY) + "?"
            t = time.perf_counter()
            _post(f"{url}/api/ask", q)
            latency.append((time.perf_counter() - t) * 1000)
        rss = _rss_mb(proc.pid)
    return {"replica_rss_mb": rss, "start_to_healthy_s": round(ready, 1), "latency_ms": percentiles(latency)}


_SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "be", "da", "fu", "go", "hi", "ja", "pe", "zo"]


def _word(n: int) -> str:
    out = []
    for _ in range(3):
        out.append(_SYLLABLES[n % 16])
        n //= 16
    return "".join(out) + ("n" if n % 2 else "")


def _synthetic(d: int) -> tuple[Document, list[tuple[int, int]]]:
    """Synthetic document `d` (the same every time) and its sentences' spans: sentences of
    made-up words drawn by a Zipf law from an open vocabulary, so that, as in real text,
    the vocabulary keeps growing with the corpus."""
    rng = np.random.default_rng(d)
    sentences = [" ".join(_word(int(w)) for w in rng.zipf(1.3, rng.integers(12, 30)) % VOCABULARY).capitalize() + "."
                 for _ in range(CHUNKS_PER_DOCUMENT)]
    spans, at = [], 0
    for s in sentences:
        spans.append((at, at + len(s)))
        at += len(s) + 1
    return Document(f"synthetic-{d:07d}", f"Synthetic {d}", " ".join(sentences), f"synthetic-{d:07d}.txt"), spans


def write_synthetic(client, start: int, stop: int, dim: int, expected: dict) -> int:
    """Synthetic chunks `start` to `stop` written into the engine (documents of
    `CHUNKS_PER_DOCUMENT` one-sentence chunks), then the lexicon of all of them, as an
    ingest makes it, and a manifest; returns `stop`."""
    from ..text import Lexicon, terms

    per_batch = 5000 // CHUNKS_PER_DOCUMENT
    for first in range(start // CHUNKS_PER_DOCUMENT, stop // CHUNKS_PER_DOCUMENT, per_batch):
        last = min(first + per_batch, stop // CHUNKS_PER_DOCUMENT)
        vectors = synthetic_vectors((last - first) * CHUNKS_PER_DOCUMENT, dim, seed=first)  # one draw: its set-up is costly
        batch: dict[str, list[dict]] = {}
        for d in range(first, last):
            doc, spans = _synthetic(d)
            mine = vectors[(d - first) * CHUNKS_PER_DOCUMENT:(d - first + 1) * CHUNKS_PER_DOCUMENT]
            rows = enginewrite.document_rows(doc, [Sentence(doc.doc_id, a, b) for a, b in spans],
                                        [(a, b, (i,)) for i, (a, b) in enumerate(spans)], mine, mine, set(terms(doc.text)))
            for name, part in rows.items():
                batch.setdefault(name, []).extend(part)
        _flush(client, batch)
    texts, docs, owners = [], {}, []
    for d in range(stop // CHUNKS_PER_DOCUMENT):
        doc, spans = _synthetic(d)
        texts += [doc.text[a:b] for a, b in spans]
        owners += [doc.doc_id] * len(spans)
        docs[doc.doc_id] = doc.text
    lexicon = Lexicon(texts, docs, owners)
    del texts, docs, owners
    gen = f"synthetic{stop:09d}"
    parts = enginewrite.write_json(client, f"lexicon-{gen}", lexicon.stats)
    enginewrite.commit(client, {**expected, "generation": gen, "built_at": "",
                           "counts": {"documents": stop // CHUNKS_PER_DOCUMENT, "chunks": stop, "sentences": stop},
                           "lexicon": {"key": f"lexicon-{gen}", "parts": parts}})
    return stop


def _flush(client, batch: dict[str, list[dict]]) -> None:
    for name in (engine.SENTENCES, engine.CHUNKS, engine.TEXTS, engine.TERMS, engine.DOCUMENTS):
        rows = batch.pop(name, [])
        for at in range(0, len(rows), 1000):
            client.insert(name, rows[at:at + 1000])
