"""The store interface: what the question path reads of an index, whichever backend holds
it (`qa.files`, the embedded default; `qa.engine`, a search engine's server), and the
check that an index was built with the settings now configured."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Protocol

import numpy as np

from .embed import TokenVectors
from .text import Lexicon
from .types import Chunk, Document, Sentence, StaleIndexError


class Store(Protocol):
    """What the question path reads of an index, whichever backend holds it: this module's
    files (`Index`, the embedded default) or a search engine's server. Chunk and sentence
    ids are the backend's own; a document's sentences have consecutive ids (`Sentence`)."""

    manifest: dict

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


def check_compatible(manifest: dict, expected: dict, folder: str | Path) -> None:
    for key, want in expected.items():
        have = manifest.get(key)
        if have != want:
            raise StaleIndexError(
                f"The index in {folder} was built with a different {key.replace('_', ' ')} "
                f"({_describe(have)}; now configured: {_describe(want)}). Re-run `qa ingest` to rebuild it."
            )


def _describe(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def new_generation() -> str:
    """A name for a build's generation: sortable by time (the newest shard's commit wins), unique."""
    return time.strftime("%Y%m%d%H%M%S").lower() + uuid.uuid4().hex[:6]


def built_at() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
