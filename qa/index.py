"""Building the index: read the corpus, chunk and embed what is new or changed, keep the
rest, and commit, through the store's writer (`qa.store.open_writer`), whichever backend
holds it: the files (`qa.fileswrite`) or a search engine (`qa.enginewrite`), which alone
is written in shards. An index built with another model, chunking or format is never
mixed in: it is rebuilt.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from . import tokens
from .chunk import OverBudget, chunk_document, tiktoken_count
from .config import Config
from .embed import Encoder
from .embedded import Embedded, Progress, embed_documents
from .formats import Limits
from .ingest import CorpusReadResult, file_hash, read_corpus, read_document
from .manifest import built_at
from .origin import resolve_corpus
from .store import StoreWriter, check_shards, committed_manifest, folder_per_machine, open_writer
from .types import Document, EmptyCorpusError, QAError

# 2: sentences' token vectors stored at ingest; 3: sentences' places (`Sentence`); 4: token
# vectors kept small (`qa.tokens`); 5: terms without accents (`qa.text.words`)
FORMAT_VERSION = 5
SPLITTER_VERSION = 1  # bump when sentence splitting or chunking changes its output


def expected_settings(config: Config, model_id: str, weights_sha256: str, dim: int) -> dict:
    """What an index must have been built with to be used under this configuration."""
    return {
        "format_version": FORMAT_VERSION,
        "model": {"id": model_id, "weights_sha256": weights_sha256, "dim": dim},
        "token_basis": tokens.basis_id(weights_sha256),  # stored token vectors are read in its space
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
    expected = expected_settings(config, encoder.model_id, encoder.weights_sha256, encoder.dim)
    with open_writer(config, expected, encoder, shard) as writer:
        return _build(config, encoder, progress, plan, writer, shard, expected)


def recorded_corpus(config: Config) -> str | None:
    """The folder the committed index was built from, or None (no index yet, or one built
    before indexes recorded it)."""
    manifest = committed_manifest(config) or {}
    corpus = manifest.get("corpus")
    return corpus if isinstance(corpus, str) and corpus else None


def with_corpus(config: Config, new_corpus: bool = False) -> Config:
    """`config` with its corpus folder resolved against the committed index's (`qa.origin`)."""
    return resolve_corpus(config, recorded_corpus(config), new_corpus, per_machine=folder_per_machine(config))


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

    check_shards(config)
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


def _build(config: Config, encoder: Encoder, progress: Progress | None, plan: _Plan, writer: StoreWriter,
           shard: tuple[int, int], expected: dict) -> BuildReport:
    """The one build, on either backend: read the corpus, compare it with what the store
    holds (`writer.stored`), and of this shard's documents embed the new or changed ones,
    delete the removed ones and keep the rest; then commit."""
    started = time.perf_counter()
    read = _read(config, writer.known | {e.doc.source: e.doc for e in plan.prepared}, plan)
    changed = [d for d in read.documents if writer.stored.get(d.doc_id) != d.content_hash and in_shard(d.doc_id, shard)]
    ready = {e.doc.doc_id: e for e in plan.prepared if e.doc in changed}  # embedded ahead (`prepare_document`)
    wanted = read.documents if writer.all_sentences else changed
    pieces = _chunk_within_budget(read, [d for d in wanted if d.doc_id not in ready], config, encoder, progress)
    pieces |= {doc_id: (e.sentences, e.groups) for doc_id, e in ready.items()}
    _check_drops(writer.held, read, plan, config.corpus_dir)

    report = BuildReport(skipped=read.skipped, warnings=read.warnings)
    fresh = [d for d in changed if d.doc_id in pieces]  # not those over their sentence budget
    report.embedded = [d.doc_id for d in fresh]
    report.removed = sorted(d for d in set(writer.stored) - {d.doc_id for d in read.documents} if in_shard(d, shard))
    report.reused = [d.doc_id for d in read.documents
                     if d.doc_id not in set(report.embedded) and in_shard(d.doc_id, shard)]
    tokens = writer.begin(read.documents, pieces)
    _write(writer, fresh, pieces, ready, report.removed, encoder, tokens, progress)
    manifest = writer.commit(read.documents, {**expected, "built_at": built_at(), "corpus": config.corpus_dir})
    report.documents, report.chunks, report.sentences = (manifest["counts"][k] for k in ("documents", "chunks", "sentences"))
    report.seconds = time.perf_counter() - started
    return report


def _write(writer: StoreWriter, fresh: list[Document], pieces: dict[str, tuple], ready: dict[str, Embedded],
           removed: list[str], encoder: Encoder, tokens: bool, progress: Progress | None) -> None:
    """Delete the removed documents, then write the new and changed ones: those embedded
    ahead as they are, the others embedded here (with their sentences' token vectors, from
    the same forward pass, where `tokens`), in one pass of the encoder or one document at a
    time (`writer.one_by_one`). `progress` hears (texts embedded, texts to embed), first
    before anything is written, and may raise to abandon the build."""
    todo = [d for d in fresh if d.doc_id not in ready]
    size = {d.doc_id: len(pieces[d.doc_id][0]) + len(pieces[d.doc_id][1]) for d in todo}
    total, done = sum(size.values()), 0
    if progress:
        progress(0, total)
    for doc_id in removed:
        writer.delete(doc_id)
    for doc in fresh:
        if doc.doc_id in ready:
            writer.write(ready[doc.doc_id])
    for batch in ([[d] for d in todo] if writer.one_by_one else [todo]):
        for embedded in embed_documents([(d, pieces[d.doc_id]) for d in batch], encoder, tokens,
                                        _after(progress, done, total)):
            writer.write(embedded)
        done += sum(size[d.doc_id] for d in batch)


def _after(progress: Progress | None, done: int, total: int) -> Progress | None:
    """`progress` told of one batch's texts as counted among all the build's."""
    return progress and (lambda n, _: progress(done + n, total))


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
