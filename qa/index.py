"""Building the index: read the corpus, chunk and embed what is new or changed, carry the
rest over, and write a new generation (`qa.files` keeps the files and the manifest), or the
same into a search engine (`qa.engine`).
An index built with another model, chunking or format is never mixed in: it is rebuilt.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .chunk import OverBudget, chunk_document, tiktoken_count
from .config import Config
from .embed import Encoder
from .embedded import Embedded, Progress, assemble, embed_documents
from .engine import is_engine
from .files import Index, TokenStore, bm25s_module, load_index, read_manifest, save_index, write_error, writing
from .formats import Limits
from .ingest import CorpusReadResult, file_hash, read_corpus, read_document
from .origin import resolve_corpus
from .store import built_at, new_generation
from .text import Lexicon, terms
from .types import ConfigError, Document, EmptyCorpusError, QAError

if TYPE_CHECKING:
    import faiss


FORMAT_VERSION = 3  # 2: sentences' token vectors stored at ingest; 3: sentences' places (`Sentence`)
ONE_WRITER = ("Ingest in shards (--shard, --workers) writes to a search engine: set the store to its URI "
              "(QA_STORE; `bash scripts/engine DIR` runs one). The files index has one writer.")
SPLITTER_VERSION = 1  # bump when sentence splitting or chunking changes its output


def expected_settings(config: Config, model_id: str, weights_sha256: str, dim: int) -> dict:
    """What an index must have been built with to be used under this configuration."""
    return {
        "format_version": FORMAT_VERSION,
        "model": {"id": model_id, "weights_sha256": weights_sha256, "dim": dim},
        "chunking": {
            "tokenizer": "cl100k_base",
            "chunk_tokens": config.chunk_tokens,
            "overlap_tokens": config.chunk_overlap_tokens,
            "splitter_version": SPLITTER_VERSION,
        },
    }


@dataclass
class BuildReport:
    documents: int = 0
    chunks: int = 0
    sentences: int = 0
    embedded: list[str] = field(default_factory=list)  # doc ids (re-)embedded by this build
    reused: list[str] = field(default_factory=list)  # unchanged doc ids whose vectors were kept
    removed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (path, what was left out of it)
    seconds: float = 0.0


def build_index(config: Config, encoder: Encoder, progress: Progress | None = None,
                shard: tuple[int, int] = (0, 1), *, leaving: Callable[[str], bool] = lambda source: False,
                allow_drops: bool = False, new_corpus: bool = False,
                prepared: Collection[Embedded] = ()) -> BuildReport:
    """Read the corpus and (re)write the index, embedding only new or changed documents.
    `shard` (I, N): into a search engine, only the documents of shard I of N (`in_shard`),
    so that N processes, on one machine or several, write one index between them.

    The corpus is the folder the index was built from (`qa.origin`); `new_corpus` rebuilds
    it from the configured one instead. `leaving` names the sources being removed on
    purpose: left out, their files kept until the index without them is committed. A build
    that would lose more than half of the documents the index holds for any other reason
    (their folder moved, unmounted or emptied) is refused and the index kept, unless
    `allow_drops`. `prepared`: documents embedded ahead (`prepare_document`), used where
    they are still what the folder holds. `progress` is called before anything is written,
    and may raise to abandon the build."""
    config = with_corpus(config, new_corpus)
    plan = _Plan(leaving, allow_drops or new_corpus, prepared)
    if not is_engine(config.store):
        if shard != (0, 1):
            raise ConfigError(ONE_WRITER)
        try:
            with writing(config.index_dir):
                return _build(config, encoder, progress, plan)
        except OSError as exc:  # the lock file, or a folder the index cannot be made in
            raise write_error(config.index_dir, exc) from None
    # The lock (in the index folder, one per shard) keeps two ingests of one shard on one
    # machine (replicas sharing a corpus folder) from writing at once.
    with writing(Path(config.index_dir) / (f"shard-{shard[0]}-of-{shard[1]}" if shard[1] > 1 else "")):
        return _build_in_engine(config, encoder, progress, shard, plan)


def recorded_corpus(config: Config) -> str | None:
    """The folder the committed index was built from, or None (no index yet, or one built
    before indexes recorded it)."""
    if is_engine(config.store):
        from .engine import connect, read_json

        manifest = read_json(connect(config.store), "manifest") or {}
    else:
        try:
            manifest = read_manifest(config.index_dir)
        except QAError:
            return None
    corpus = manifest.get("corpus")
    return corpus if isinstance(corpus, str) and corpus else None


def with_corpus(config: Config, new_corpus: bool = False) -> Config:
    """`config` with its corpus folder resolved against the committed index's (`qa.origin`)."""
    return resolve_corpus(config, recorded_corpus(config), new_corpus)


@dataclass(frozen=True)
class _Plan:
    leaving: Callable[[str], bool]
    allow_drops: bool
    prepared: Collection[Embedded] = ()


class CorpusShrankError(QAError):
    code = "corpus_shrank"
    status = 409


def _check_drops(before: Collection[str], read: CorpusReadResult, plan: _Plan, corpus: str) -> None:
    """Refuse a build that loses more than half of the documents the index holds without
    anyone asking: what a moved, unmounted or emptied folder looks like."""
    lost = sorted(set(before) - {d.doc_id for d in read.documents} - set(read.left_out))
    if plan.allow_drops or len(lost) * 2 <= len(before):
        return
    named = ", ".join(lost[:3]) + (", …" if len(lost) > 3 else "")
    raise CorpusShrankError(
        f"The corpus folder {corpus} no longer holds {len(lost)} of the {len(before)} documents in the index "
        f"({named}), so the index was left as it was. If the folder was moved or is not mounted, bring it back; "
        "if those files were removed on purpose, run `qa ingest --allow-drops`.")


def build_in_workers(config: Config, workers: int, flags: tuple[str, ...] = ()) -> list[int]:
    """`qa ingest --shard I/N` in `workers` processes at once, each with its share of the
    cores; returns the shards that failed (each can be run again alone). `flags`: `qa ingest`'s
    own, passed on."""
    import os
    import subprocess
    import sys

    from .config import to_env

    if not is_engine(config.store):
        raise ConfigError(ONE_WRITER)
    threads = max(1, (os.cpu_count() or 1) // workers)
    env = {**os.environ, **to_env(config), "QA_EMBED_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    procs = [subprocess.Popen([sys.executable, "-m", "qa.cli", "ingest", "--shard", f"{i}/{workers}", *flags], env=env)
             for i in range(workers)]
    return [i for i, proc in enumerate(procs) if proc.wait() != 0]


def in_shard(doc_id: str, shard: tuple[int, int]) -> bool:
    """Whether the document is shard I's of N: by a hash of its id, the same on every machine."""
    return int(hashlib.sha256(doc_id.encode()).hexdigest()[:8], 16) % shard[1] == shard[0]


def _read(config: Config, known: dict[str, Document], plan: _Plan) -> CorpusReadResult:
    """Every readable document of the corpus (`known`: read before, by source path)."""
    if not Path(config.corpus_dir).is_dir():
        raise EmptyCorpusError(f"The corpus folder {config.corpus_dir} does not exist. Point --corpus at a folder of documents.")
    read = read_corpus(config.corpus_dir, config.clean_patterns, known, _limits(config), plan.leaving)
    if not read.documents:
        why = f" ({len(read.skipped)} file(s) skipped as unreadable)" if read.skipped else ""
        raise EmptyCorpusError(
            f"No readable .txt, .md, .html, .pdf or .docx documents in {config.corpus_dir}{why}. "
            "Point --corpus at a folder of documents."
        )
    return read


def _limits(config: Config) -> Limits:
    return Limits(config.extract_seconds, config.extract_memory_mb, config.extract_inflated_mb, config.extract_pages,
                  config.max_document_chars)


def _chunked(doc: Document, config: Config, encoder: Encoder):
    return chunk_document(doc, tiktoken_count, config.chunk_tokens, config.chunk_overlap_tokens,
                          encoder.count_tokens, encoder.max_tokens, config.max_document_sentences)


def _chunk_within_budget(read: CorpusReadResult, docs: list[Document], config: Config, encoder: Encoder,
                         progress: Progress | None) -> dict[str, tuple]:
    """The sentences and chunks of `docs`. One over its sentence budget fails alone: it
    leaves `read.documents` for `read.skipped`, with the reason. `progress` is told (0, 0)
    after each document, so that a build can be abandoned between them."""
    pieces, over = {}, set()
    for doc in docs:
        try:
            pieces[doc.doc_id] = _chunked(doc, config, encoder)
        except OverBudget as exc:
            read.skipped.append((doc.source, str(exc)))
            over.add(doc.doc_id)
        if progress:
            progress(0, 0)
    read.documents = [d for d in read.documents if d.doc_id not in over]
    return pieces


def _build(config: Config, encoder: Encoder, progress: Progress | None, plan: _Plan) -> BuildReport:
    started = time.perf_counter()
    expected = expected_settings(config, encoder.model_id, encoder.weights_sha256, encoder.dim)
    old = _previous(config.index_dir, expected)
    old_docs = old.documents if old else {}
    known = {d.source: d for d in old_docs.values()} | {e.doc.source: e.doc for e in plan.prepared}
    read = _read(config, known, plan)
    changed = [d for d in read.documents if d.doc_id not in old_docs or old_docs[d.doc_id].content_hash != d.content_hash]
    ready = {e.doc.doc_id: e for e in plan.prepared if e.doc in changed}  # embedded ahead (`prepare_document`)
    pieces = _chunk_within_budget(read, [d for d in changed if d.doc_id not in ready], config, encoder, progress)
    _check_drops(_committed_documents(config.index_dir), read, plan, config.corpus_dir)
    report = BuildReport(skipped=read.skipped, warnings=read.warnings)

    fresh = [d for d in changed if d.doc_id in pieces or d.doc_id in ready]
    report.removed = sorted(set(old_docs) - {d.doc_id for d in read.documents})
    report.embedded = [d.doc_id for d in fresh]
    reused = {d.doc_id for d in read.documents} - set(report.embedded)
    report.reused = [d.doc_id for d in read.documents if d.doc_id in reused]

    # Sentences' token vectors come out of the same forward pass as their sentence vectors,
    # kept up to `token_vectors_max_sentences` sentences in all.
    n_sentences = sum(len(pieces[d][0]) for d in pieces) + sum(len(e.sentences) for e in ready.values()) + \
        sum(1 for s in (old.sentences if old else ()) if s.doc_id in reused)
    store_tokens = n_sentences <= config.token_vectors_max_sentences
    embedded = ready | {e.doc.doc_id: e for e in embed_documents(
        [(d, pieces[d.doc_id]) for d in fresh if d.doc_id in pieces], encoder, store_tokens, progress)}
    sentences, chunks, sent_rows, chunk_rows, token_rows = assemble(read.documents, embedded, old, store_tokens, encoder)

    dense, dense_kind = dense_index(_matrix(chunk_rows, encoder.dim), config)
    sent_matrix = _matrix(sent_rows, encoder.dim)
    sentence_dense, sentence_kind = None, {"kind": "flat"}  # the exact ranking multiplies the array itself
    if index_kind(len(sent_matrix), config) != "flat":
        sentence_dense, sentence_kind = dense_index(sent_matrix, config)
    documents = {d.doc_id: d for d in read.documents}
    bm25 = bm25s_module().BM25()
    bm25.index([terms(documents[c.doc_id].text[c.start:c.end]) for c in chunks], show_progress=False)

    manifest = {
        **expected,
        "built_at": built_at(),
        "counts": {"documents": len(documents), "chunks": len(chunks), "sentences": len(sentences)},
        "token_vectors": store_tokens,
        "dense_index": dense_kind,
        "sentence_index": sentence_kind,
        "documents": {d.doc_id: {"content_hash": d.content_hash, "source": d.source, "title": d.title}
                      for d in read.documents},
        "corpus": config.corpus_dir,
    }
    tokens = TokenStore.of(token_rows, encoder.dim) if store_tokens else None
    save_index(config.index_dir, Index(manifest, documents, sentences, chunks, sent_matrix, dense, bm25, tokens,
                                       sentence_dense))
    report.documents, report.chunks, report.sentences = len(documents), len(chunks), len(sentences)
    report.seconds = time.perf_counter() - started
    return report


def prepare_document(config: Config, encoder: Encoder, source: str, progress: Progress | None = None,
                     unwanted: Callable[[], bool] = lambda: False) -> Embedded:
    """Read, chunk and embed one file of the corpus (`config` resolved) ahead of the build
    that adds it (`build_index(prepared=...)`), which then only writes: a large upload is
    embedded beside the builds that add small ones. Raises ValueError (or OSError) when
    the file cannot be read or is over its budget."""
    path = Path(config.corpus_dir) / source
    raw = path.read_bytes()
    rules = [re.compile(p, re.MULTILINE | re.IGNORECASE) for p in config.clean_patterns]
    doc = read_document(path, Path(source).with_suffix("").as_posix(), source, rules, raw,
                        file_hash(raw, path, config.clean_patterns), _limits(config), unwanted)
    [embedded] = embed_documents([(doc, _chunked(doc, config, encoder))], encoder, True, progress)
    return embedded


def _build_in_engine(config: Config, encoder: Encoder, progress: Progress | None, shard: tuple[int, int],
                     plan: _Plan) -> BuildReport:
    """The same build into a search engine (`qa.engine`): each new or changed document's rows
    written over its old ones (its document row last), removed documents deleted, then the
    corpus's lexicon and, last, the manifest that names it (the commit). A shard writes and
    removes only its documents, but reads them all for the lexicon; whichever shard ends
    last commits the manifest of all. An ingest killed midway is run again: documents
    written whole are skipped, the rest written over the same ids."""
    from . import engine, enginewrite

    started = time.perf_counter()
    expected = expected_settings(config, encoder.model_id, encoder.weights_sha256, encoder.dim)
    client = engine.connect(config.store)
    manifest = engine.read_json(client, "manifest")
    if manifest is not None and any(manifest.get(k) != v for k, v in expected.items()):
        enginewrite.drop_collections(client)  # built with another model, chunking or format: rebuilt
    enginewrite.create_collections(client, encoder.dim)
    read = _read(config, {}, plan)
    pieces = _chunk_within_budget(read, list(read.documents), config, encoder, progress)  # the lexicon reads them all
    report = BuildReport(skipped=read.skipped, warnings=read.warnings)
    stored = enginewrite.stored_documents(client)
    _check_drops(stored, read, plan, config.corpus_dir)
    fresh = [d for d in read.documents if stored.get(d.doc_id) != d.content_hash and in_shard(d.doc_id, shard)]
    report.removed = sorted(d for d in set(stored) - {d.doc_id for d in read.documents} if in_shard(d, shard))
    report.embedded = [d.doc_id for d in fresh]
    report.reused = [d.doc_id for d in read.documents if stored.get(d.doc_id) == d.content_hash and in_shard(d.doc_id, shard)]
    docs = read.documents
    lexicon = Lexicon([d.text[s.start:s.end] for d in docs for s in pieces[d.doc_id][0]], {d.doc_id: d.text for d in docs},
                      [d.doc_id for d in docs for _ in pieces[d.doc_id][0]])
    total, done = sum(len(pieces[d.doc_id][0]) + len(pieces[d.doc_id][1]) for d in fresh), 0
    if progress:
        progress(0, total)  # before the first write: a build abandoned here changed nothing
    for doc_id in report.removed:
        enginewrite.delete_document(client, doc_id)
    for doc in fresh:
        sentences, groups = pieces[doc.doc_id]
        texts = [doc.text[s.start:s.end] for s in sentences] + [doc.text[a:b] for a, b, _ in groups]
        vectors = encoder.encode(texts)
        enginewrite.write_document(client, doc, sentences, groups, vectors[:len(sentences)], vectors[len(sentences):],
                              lexicon.terms_of(doc.doc_id))
        done += len(texts)
        if progress:
            progress(done, total)
    gen = new_generation()
    parts = enginewrite.write_json(client, f"lexicon-{gen}", lexicon.stats)
    report.documents = len(docs)
    report.sentences = sum(len(pieces[d.doc_id][0]) for d in docs)
    report.chunks = sum(len(pieces[d.doc_id][1]) for d in docs)
    enginewrite.commit(client, {
        **expected, "built_at": built_at(), "generation": gen,
        "counts": {"documents": report.documents, "chunks": report.chunks, "sentences": report.sentences},
        "lexicon": {"key": f"lexicon-{gen}", "parts": parts}, "corpus": config.corpus_dir})
    report.seconds = time.perf_counter() - started
    return report


def _matrix(rows: list[np.ndarray], dim: int) -> np.ndarray:
    return np.vstack(rows).astype(np.float32) if rows else np.zeros((0, dim), np.float32)


def index_kind(n: int, config: Config) -> str:
    return config.dense_index if config.dense_index != "auto" else ("flat" if n < config.ann_threshold else "ivf")


def dense_index(vectors: np.ndarray, config: Config) -> tuple[faiss.Index, dict]:
    """A FAISS index over chunk (or sentence) vectors: inner product of L2-normalised rows.

    Exact search below `ann_threshold` vectors, where it takes under 3 ms a query. Above
    it IVF: k-means cells (about 4·√n of them), of which a query scans the `ivf_nprobe`
    nearest. IVF over HNSW by measurement (`qa bench --kinds flat,ivf,hnsw`,
    docs/performance.md): at 1M vectors on 2 cores IVF built in 73 s against 186 s, gave
    recall@10 1.0 against 0.93 at 1.1 ms a query, and needs no graph memory.
    """
    import faiss

    n, dim = vectors.shape
    kind = index_kind(n, config)
    if kind == "flat":
        index, params = faiss.IndexFlatIP(dim), {}
    elif kind == "ivf":
        nlist = max(1, min(n // 39, 1 << round(np.log2(4 * np.sqrt(max(n, 1))))))  # faiss wants ≥ 39 points a cell
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = np.random.default_rng(0).choice(n, size=min(n, nlist * 64), replace=False)
        index.train(vectors[np.sort(sample)])
        index.nprobe = min(nlist, config.ivf_nprobe)
        index.make_direct_map()  # passages and re-ingest read vectors back by id
        params = {"nlist": nlist, "nprobe": index.nprobe}
    elif kind == "hnsw":  # offered for comparison and for those who prefer it; see the docstring
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 64
        index.hnsw.efSearch = config.hnsw_ef_search
        params = {"m": 32, "ef_construction": 64, "ef_search": config.hnsw_ef_search}
    else:
        raise ConfigError(f"dense_index is {config.dense_index!r}; use \"auto\", \"flat\", \"ivf\" or \"hnsw\".")
    index.add(vectors)
    return index, {"kind": kind, **params}


def _committed_documents(folder: str | Path) -> list[str]:
    """The documents the committed index holds, whatever it was built with."""
    try:
        return list(read_manifest(folder).get("documents") or {})
    except QAError:
        return []


def _previous(folder: str | Path, expected: dict) -> Index | None:
    """The current index if it can be reused; anything else means a full rebuild."""
    try:
        return load_index(folder, expected)
    except QAError:
        return None
