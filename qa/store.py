"""The store: where the index lives, read through one interface and written through
another, whichever backend holds it: the files (`qa.files` reads, `qa.fileswrite`
writes; the embedded default) or a search engine's server (`qa.engine` reads,
`qa.enginewrite` writes), chosen by the `store` setting. Only this module and the
backends' own know which backend is which: `open_store` and `open_writer` choose, and
the few things that differ by backend are asked here."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .engine import is_engine
from .files import read_manifest, write_error, writing
from .types import ConfigError, QAError

if TYPE_CHECKING:
    from .config import Config
    from .embed import Encoder, TokenVectors
    from .embedded import Embedded
    from .text import Lexicon
    from .types import Chunk, Document, Sentence

ONE_WRITER = ("Ingest in shards (--shard, --workers) writes to a search engine: set the store to its URI "
              "(QA_STORE; `bash scripts/engine DIR` runs one). The files index has one writer.")


class Store(Protocol):
    """The reader: what the question path reads of an index, whichever backend holds it
    (`qa.files.Index`, the embedded default; `qa.engine.EngineStore`). Chunk and sentence
    ids are the backend's own; a document's sentences have consecutive ids (`Sentence`)."""

    manifest: dict  # as the build that made it committed it

    def search_chunks(self, vector: np.ndarray, n: int) -> list[tuple[int, float]]:
        """The `n` chunks nearest the (L2-normalised) vector, best first, with their cosines."""

    def search_terms(self, terms: list[str], n: int) -> list[tuple[int, float]]:
        """The `n` best chunks by BM25 over `qa.text.terms`, best first, with their scores (all > 0)."""

    def search_sentences(self, vector: np.ndarray, n: int) -> list[int]:
        """The `n` sentences nearest the vector, best first."""

    def chunk(self, cid: int) -> Chunk: ...

    def chunk_text(self, cid: int) -> str: ...

    def chunk_vectors(self, cids: list[int]) -> np.ndarray: ...

    def chunks_of(self, sid: int) -> tuple[int, ...]:
        """The chunks that hold the sentence."""

    def sentence(self, sid: int) -> Sentence: ...

    def sentence_text(self, sid: int) -> str: ...

    def sentence_vectors_of(self, sids: list[int]) -> np.ndarray: ...

    def stored_tokens(self, sids: list[int]) -> list[TokenVectors] | None:
        """The sentences' token vectors as stored at ingest, or None where they are not stored."""

    def preload_sentences(self, sids: list[int]) -> None:
        """The answer stage is about to read these sentences: a remote store fetches them in one go."""

    def document(self, doc_id: str) -> Document:
        """The document's title, date, source and pages (its text, where the backend keeps it in memory)."""

    def lexicon(self) -> Lexicon:
        """The corpus's word statistics (`qa.text.Lexicon`)."""

    # What the document routes read: listed, looked up, read whole.
    def listing(self) -> list[tuple[Document, int]]:
        """Every document, with its length in characters (its text may be left unread)."""

    def find(self, doc_id: str) -> Document | None:
        """The document (as `document`), or None where there is none of that id."""

    def document_text(self, doc_id: str) -> str: ...

    def committed(self) -> object:
        """What changes when an ingest commits a new index (the files' manifest file, the
        engine's generation), or None where none can be read: a serving process asks once
        an `index_check_seconds` (`qa.live`)."""


class StoreWriter(Protocol):
    """The writer: one build's writes into an index, under its lock (`open_writer`). The
    build (`qa.index.build_index`) reads the corpus and compares it with `stored`, then
    calls `begin` with the corpus, `delete` for each removed document, `write` for each
    new or changed one, embedded, and last `commit`, which is what serving processes
    follow. The files writer keeps it all and writes a whole new generation at `commit`;
    the engine's writes each document as it comes (whole, or over again by the next
    build), and its lexicon and manifest at commit."""

    stored: dict[str, str]  # the content hash of each document held now that a build may keep, by id
    held: Collection[str]  # the committed index's documents, whatever it was built with (drops are checked)
    known: dict[str, Document]  # documents as read before, by source: read again only if their file changed
    one_by_one: bool  # each document embedded and written before the next, or all in one pass of the encoder
    all_sentences: bool  # `begin` needs every document's sentences and chunks, not only the new ones'

    def begin(self, documents: list[Document], pieces: dict[str, tuple]) -> bool:
        """Before any write: the corpus as it will be committed (every document, in order)
        and the sentences and chunks (`chunk_document`) of those being written (of all, with
        `all_sentences`). Returns whether sentences' token vectors are to be kept."""

    def delete(self, doc_id: str) -> None:
        """The document is not in the index any more."""

    def write(self, embedded: Embedded) -> None:
        """A new or changed document, with its vectors (over its old rows)."""

    def commit(self, documents: list[Document], manifest: dict) -> dict:
        """Make the index of `documents` (new ones written, the others kept) the one served,
        with `manifest` (the settings it was built with, `built_at`, `corpus`) and what the
        backend adds to it (counts, generation); returns the manifest committed."""


def open_store(config: Config, expected: dict) -> Store:
    """The committed index, for reading. Refused with a message to run `qa ingest` where
    there is none (`IndexMissingError`), or it was built with settings other than
    `expected` (`qa.index.expected_settings`) or is damaged (`StaleIndexError`)."""
    if is_engine(config.store):
        from .engine import EngineStore

        return EngineStore.connect(config.store, expected)
    from .files import Index

    return Index.load(config.index_dir, expected)


@contextmanager
def open_writer(config: Config, expected: dict, encoder: Encoder, shard: tuple[int, int] = (0, 1)) -> Iterator[StoreWriter]:
    """A writer for one build, holding the write lock while the block runs (a second build
    of the same index, or shard, is refused at once: `IndexBusyError`). `shard` (I, N): on
    an engine, one of N writers at once (`qa.index.in_shard` says whose each document is);
    the files have one. The files writer needs the `encoder` to make the token vectors an
    older index did not keep."""
    if is_engine(config.store):
        from .enginewrite import EngineWriter

        # The lock (in the index folder, one per shard) keeps two ingests of one shard on one
        # machine (replicas sharing a corpus folder) from writing at once.
        with writing(Path(config.index_dir) / (f"shard-{shard[0]}-of-{shard[1]}" if shard[1] > 1 else "")):
            yield EngineWriter(config.store, expected)
        return
    if shard != (0, 1):
        check_shards(config)
    from .fileswrite import FilesWriter

    try:
        with writing(config.index_dir):
            yield FilesWriter(config, expected, encoder)
    except OSError as exc:  # the lock file, or a folder the index cannot be made in
        raise write_error(config.index_dir, exc) from None


def check_shards(config: Config) -> None:
    """Refuse to write in shards where the backend has one writer (the files)."""
    if not is_engine(config.store):
        raise ConfigError(ONE_WRITER)


def committed_manifest(config: Config) -> dict | None:
    """The committed index's manifest, whatever it was built with; None where there is
    none (or, on the files, none that can be read)."""
    if is_engine(config.store):
        from .engine import connect, read_json

        return read_json(connect(config.store), "manifest")
    try:
        return read_manifest(config.index_dir)
    except QAError:
        return None


def indexed_sources(config: Config, expected: dict) -> dict[str, str]:
    """Each document of the committed index: doc id -> its source, the file in the corpus
    folder. `IndexMissingError` where there is no index."""
    if is_engine(config.store):
        return {d.doc_id: d.source for d, _ in open_store(config, expected).listing()}
    return {k: v["source"] for k, v in (read_manifest(config.index_dir).get("documents") or {}).items()}


def folder_per_machine(config: Config) -> bool:
    """Whether the index may be fed from a corpus folder on each machine (an engine's, by
    shards), so that a folder given is taken as this machine's rather than held to the one
    the index records (`qa.origin`)."""
    return is_engine(config.store)


def location(config: Config) -> str:
    """Where the index is, in words: its folder, or the engine's URI."""
    return config.store if is_engine(config.store) else config.index_dir


def scratch(config: Config, folder: Path, name: str = "scratch") -> Config:
    """`config` with a store of its own for a throwaway index made in `folder` (an eval's):
    the folder's `index`, or on an engine a database of its own on the same server (`name`
    and a hash of the folder), emptied first; the lock stays in the folder."""
    config = config.with_overrides(index_dir=str(folder / "index"))
    if not is_engine(config.store):
        return config
    import hashlib

    from .engine import connect, database_uri
    from .enginewrite import drop_collections

    uri = database_uri(config.store, f"{name}_{hashlib.sha256(str(folder).encode()).hexdigest()[:12]}")
    drop_collections(connect(uri))
    return config.with_overrides(store=uri)
