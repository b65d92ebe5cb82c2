"""The files backend of the store (`qa.store.Store`): the on-disk index, a folder of
named files and a JSON manifest, read here (`Index`); `qa.fileswrite` writes it. No pickle.

Every build writes its files under a fresh generation name (`chunks-<gen>.json`, ...)
and then commits by atomically replacing `manifest.json`, which names the files of
the live generation. A crash before that leaves the previous manifest, and the
files it names, untouched; files of other generations are removed after a commit.
Everything the manifest names is fsynced before the rename, and the folder after it.
One build at a time writes a folder (`writing`, its lock).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .bm25 import Bm25
from .embed import TokenVectors
from .manifest import check_compatible
from .text import Lexicon, titled
from .tokens import decoded, quantised
from .types import Chunk, Document, IndexBusyError, IndexMissingError, QAError, Sentence, StaleIndexError

if TYPE_CHECKING:  # the files backend's libraries load with it, not with a server on an engine
    import faiss

MANIFEST = "manifest.json"
LOCK = ".ingest.lock"
GENERATED = re.compile(r"^(documents|chunks|sentence_vectors|sentence_dense|token_vectors|token_scales|token_spans|dense|bm25)-[0-9a-z]+(\.\w+)?$|^manifest\.json\.tmp$")

TOKENS_IN_MEMORY_BYTES = 16 << 20  # of int8 codes on disk, about 12,000 sentences; 64 MB as float32 in memory


@dataclass
class TokenStore:
    """Each sentence's token vectors as `qa.tokens` keeps them (content word pieces, 64
    int8 codes and a scale each), made at ingest, so answering never runs the model over
    a sentence again."""

    codes: np.ndarray  # (tokens, dims) int8; or, held in memory, their float32 values
    scales: np.ndarray  # (tokens,) float32
    spans: np.ndarray  # (tokens, 4) int32: sentence id, start, end, content word piece (0/1)
    offsets: np.ndarray  # (sentences + 1,) first row of each sentence
    content: np.ndarray  # spans[:, 3] as bool, converted once

    @classmethod
    def of(cls, tokens: list[TokenVectors]) -> TokenStore:
        """From `qa.tokens.small` rows (their codes are taken again, exactly)."""
        sizes = [len(t.content) for t in tokens]
        width = tokens[0].vectors.shape[1] if tokens else 0
        codes = np.empty((sum(sizes), width), dtype=np.int8)
        scales = np.empty(sum(sizes), dtype=np.float32)
        spans = np.zeros((sum(sizes), 4), dtype=np.int32)
        spans[:, 0] = np.repeat(np.arange(len(tokens)), sizes)
        at = 0
        for t, n in zip(tokens, sizes):
            codes[at:at + n], scales[at:at + n] = quantised(t.vectors)
            spans[at:at + n, 1:3] = t.spans
            spans[at:at + n, 3] = t.content
            at += n
        return cls.from_arrays(codes, scales, spans, len(tokens))

    @classmethod
    def from_arrays(cls, codes: np.ndarray, scales: np.ndarray, spans: np.ndarray, sentences: int) -> TokenStore:
        # A small store is held in memory as float32, so that questions skip converting it;
        # a large one stays on disk (a plain view of the map skips numpy's memmap bookkeeping).
        codes = np.asarray(codes)
        codes = decoded(codes, np.asarray(scales)) if codes.nbytes <= TOKENS_IN_MEMORY_BYTES else codes
        return cls(codes, np.asarray(scales), spans, np.searchsorted(spans[:, 0], np.arange(sentences + 1)),
                   spans[:, 3].astype(bool))

    @property
    def rows(self) -> int:
        return len(self.spans)

    def get(self, sid: int) -> TokenVectors:
        a, b = self.offsets[sid], self.offsets[sid + 1]
        rows = self.codes[a:b] if self.codes.dtype == np.float32 else decoded(self.codes[a:b], self.scales[a:b])
        return TokenVectors(rows, self.content[a:b], self.spans[a:b, 1:3])


@dataclass(kw_only=True)
class Index:
    """The files backend of `Store`: everything in memory (or mapped from its files). Made
    by `Index.load` from a folder, or by `qa.fileswrite.new_index` from a build's rows."""

    manifest: dict
    documents: dict[str, Document]
    sentences: list[Sentence]
    chunks: list[Chunk]
    sentence_vectors: np.ndarray  # one L2-normalised row per sentence
    dense: faiss.Index  # inner product over L2-normalised chunk vectors
    bm25: Bm25  # over chunk texts, as `qa.text.terms`
    tokens: TokenStore | None = None  # absent above `token_vectors_max_sentences`
    # Above `ann_threshold` sentences, an approximate index over `sentence_vectors` for the
    # best-sentence ranking; below it that ranking is exact, over the array.
    sentence_dense: faiss.Index | None = None
    folder: Path | None = None  # where it was loaded from (`committed` looks there)

    @classmethod
    def load(cls, folder: str | Path, expected: dict) -> Index:
        """The index committed in `folder`, refused (`StaleIndexError`) where it was built with
        other settings than `expected`, or is incomplete or inconsistent."""
        return load_index(folder, expected)

    def committed(self) -> tuple[int, int] | None:
        """What changes when an ingest commits into the folder (the manifest file's inode and
        time), or None where there is none; a serving process looks once a `index_check_seconds`."""
        if self.folder is None:
            return None
        try:
            stat = (Path(self.folder) / MANIFEST).stat()
        except OSError:
            return None
        return stat.st_ino, stat.st_mtime_ns

    def __post_init__(self):
        self._chunks_of: dict[int, tuple[int, ...]] = {}
        for cid, chunk in enumerate(self.chunks):
            for sid in chunk.sentence_ids:
                self._chunks_of[sid] = self._chunks_of.get(sid, ()) + (cid,)

    def search_chunks(self, vector: np.ndarray, n: int) -> list[tuple[int, float]]:
        cos, ids = self.dense.search(vector.reshape(1, -1).astype(np.float32), n)
        return [(int(i), float(c)) for i, c in zip(ids[0], cos[0]) if i >= 0]

    def search_terms(self, terms: list[str], n: int) -> list[tuple[int, float]]:
        scores = self.bm25.get_scores(terms) if terms else np.zeros(0)
        return [(int(i), float(scores[i])) for i in np.argsort(-scores, kind="stable")[:n] if scores[i] > 0]

    def search_sentences(self, vector: np.ndarray, n: int) -> list[int]:
        if self.sentence_dense is not None:
            _, ids = self.sentence_dense.search(vector.reshape(1, -1).astype(np.float32), n)
            return [int(i) for i in ids[0] if i >= 0]
        return [int(i) for i in _best(self.sentence_vectors @ vector, n)]

    def chunk(self, cid: int) -> Chunk:
        return self.chunks[cid]

    def chunk_text(self, cid: int) -> str:
        chunk = self.chunks[cid]
        return self.documents[chunk.doc_id].text[chunk.start:chunk.end]

    def chunks_of(self, sid: int) -> tuple[int, ...]:
        return self._chunks_of.get(sid, ())

    def sentence(self, sid: int) -> Sentence:
        return self.sentences[sid]

    def sentence_text(self, sid: int) -> str:
        s = self.sentences[sid]
        return self.documents[s.doc_id].text[s.start:s.end]

    def sentence_vectors_of(self, sids: list[int]) -> np.ndarray:
        return np.asarray(self.sentence_vectors[sids], dtype=np.float32)

    def stored_tokens(self, sids: list[int]) -> list[TokenVectors] | None:
        return None if self.tokens is None else [self.tokens.get(sid) for sid in sids]

    def preload_sentences(self, sids: list[int]) -> None:
        pass  # all in memory

    def document(self, doc_id: str) -> Document:
        return self.documents[doc_id]

    def listing(self) -> list[tuple[Document, int]]:
        return [(d, len(d.text)) for d in self.documents.values()]

    def find(self, doc_id: str) -> Document | None:
        return self.documents.get(doc_id)

    def document_text(self, doc_id: str) -> str:
        return self.documents[doc_id].text

    def lexicon(self) -> Lexicon:
        """Made from the loaded index: one pass over its sentences."""
        return Lexicon([self.sentence_text(i) for i in range(len(self.sentences))],
                       {d.doc_id: titled(d) for d in self.documents.values()}, [s.doc_id for s in self.sentences])

    def chunk_vectors(self, cids: list[int] | None = None) -> np.ndarray:
        """The vectors of the chunks `cids`, or of all of them."""
        if cids is not None:
            return self.dense.reconstruct_batch(np.array(cids, dtype=np.int64))
        return self.dense.reconstruct_n(0, self.dense.ntotal) if self.dense.ntotal else np.zeros((0, self.dense.d), np.float32)


class IndexWriteError(QAError):
    code = "index_write_failed"


def write_error(folder: str | Path, exc: Exception) -> IndexWriteError:
    """What a failed index write tells the user, in one line."""
    if getattr(exc, "errno", None) == errno.ENOSPC or _nearly_full(Path(folder)):
        return IndexWriteError(f"The disk holding the index folder {folder} is full, so the index was left as it "
                               "was. Free some space, then run this again.")
    return IndexWriteError(f"Cannot write the index in {folder} ({getattr(exc, 'strerror', None) or exc}), so the "
                           "index was left as it was. Check that the folder may be written, then run this again.")


def _nearly_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < (1 << 20)
    except OSError:
        return False


def sync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def writing(folder: str | Path) -> Iterator[None]:
    """Hold the index folder's write lock: two ingests into one folder would each remove
    the other's files. The second is refused at once, saying who holds the lock. Holding
    it, the files of a write that never committed (a process killed mid-write) go first."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK, "a+", encoding="utf-8") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise IndexBusyError(f"Another ingest ({holder}) is writing the index in {folder}. "
                                 "Wait for it to finish, then run this again.") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        try:
            remove_uncommitted(folder)
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)


def remove_uncommitted(folder: Path) -> None:
    """Remove index files the manifest does not name: what a killed write left (hundreds of
    MB for a large corpus). Only while holding the write lock, when no write is under way."""
    try:
        committed = set(read_manifest(folder).get("files", {}).values())
    except QAError:
        return  # no readable manifest: what is there may be all there is; leave it for the next build
    remove_other_generations(folder, committed)


def remove_other_generations(folder: Path, keep: set[str]) -> None:
    for p in folder.iterdir():
        if p.name not in keep and GENERATED.match(p.name):
            shutil.rmtree(p) if p.is_dir() else p.unlink()


def read_manifest(folder: str | Path) -> dict:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise IndexMissingError(f"No index in {folder}. Build it with `qa ingest --index {folder}`.")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise StaleIndexError(f"The index manifest {path} is damaged. Re-run `qa ingest` to rebuild it.") from None
    if not isinstance(manifest, dict):
        raise StaleIndexError(f"The index manifest {path} is not a JSON object. Re-run `qa ingest` to rebuild it.")
    return manifest


def load_index(folder: str | Path, expected: dict) -> Index:
    import faiss

    folder = Path(folder)
    manifest = read_manifest(folder)
    check_compatible(manifest, expected, folder)
    files = manifest.get("files") or {}
    stored = (("token_vectors", "token_scales", "token_spans") if manifest.get("token_vectors") else ()) + \
        (("sentence_dense",) if manifest.get("sentence_index", {}).get("kind", "flat") != "flat" else ())
    missing = [name for name in ("documents", "chunks", "sentence_vectors", "dense", "bm25") + stored
               if not files.get(name) or not (folder / files[name]).exists()]
    if missing:
        raise StaleIndexError(
            f"The index in {folder} is incomplete (missing {', '.join(missing)}). Re-run `qa ingest` to rebuild it."
        )
    try:
        docs = [Document.from_dict(json.loads(line)) for line in
                (folder / files["documents"]).read_text(encoding="utf-8").splitlines() if line]
        tables = json.loads((folder / files["chunks"]).read_text(encoding="utf-8"))
        # With an approximate sentence index the array is only read row by row (the answer
        # stage's candidates), so it stays on disk rather than beside the index's own copy.
        sentence_vectors = np.load(folder / files["sentence_vectors"], allow_pickle=False,
                                   mmap_mode="r" if manifest.get("sentence_index", {}).get("kind", "flat") != "flat" else None)
        dense = faiss.read_index(str(folder / files["dense"]))
        bm25 = Bm25.load(folder / files["bm25"])
        sentence_dense = faiss.read_index(str(folder / files["sentence_dense"])) if "sentence_dense" in stored else None
        tokens = None
        if manifest.get("token_vectors"):
            tokens = TokenStore.from_arrays(np.load(folder / files["token_vectors"], mmap_mode="r", allow_pickle=False),
                                            np.load(folder / files["token_scales"], allow_pickle=False),
                                            np.load(folder / files["token_spans"], allow_pickle=False),
                                            len(tables["sentences"]))
    except (ValueError, KeyError, TypeError, RuntimeError, OSError, EOFError) as exc:  # EOFError: an empty .npy
        raise StaleIndexError(f"The index in {folder} cannot be read ({exc}). Re-run `qa ingest` to rebuild it.") from None

    index = Index(
        manifest=manifest,
        documents={d.doc_id: d for d in docs},
        sentences=[Sentence.from_row(row) for row in tables["sentences"]],
        chunks=[Chunk(d, s, e, tuple(ids)) for d, s, e, ids in tables["chunks"]],
        sentence_vectors=sentence_vectors,
        dense=dense,
        bm25=bm25,
        tokens=tokens,
        sentence_dense=sentence_dense,
        folder=folder,
    )
    _validate(index, folder)
    return index


def _validate(index: Index, folder: Path) -> None:
    counts = index.manifest.get("counts", {})
    problems = []
    if counts.get("documents") != len(index.documents):
        problems.append("document count")
    if counts.get("chunks") != len(index.chunks) or index.dense.ntotal != len(index.chunks) or \
            index.bm25.documents != len(index.chunks):
        problems.append("chunk count")
    if index.sentence_vectors.shape != (len(index.sentences), index.dense.d) or (
            index.sentence_dense is not None and index.sentence_dense.ntotal != len(index.sentences)):
        problems.append("sentence vectors")
    if any(c.doc_id not in index.documents for c in index.chunks):
        problems.append("chunks of unknown documents")
    t = index.tokens
    if t is not None and (t.codes.ndim != 2 or len(t.codes) != t.rows or t.scales.shape != (t.rows,)
                          or int(t.offsets[-1]) != t.rows
                          or (len(t.spans) and not 0 <= t.spans[-1, 0] < len(index.sentences))):
        problems.append("token vectors")
    if problems:
        raise StaleIndexError(
            f"The index in {folder} is inconsistent ({', '.join(problems)}). Re-run `qa ingest` to rebuild it."
        )


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
