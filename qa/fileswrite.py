"""Writing the files backend (`qa.files` reads it): a build's whole index made (FAISS,
bm25s, the tables) and written as a new generation, committed by replacing the manifest.
`FilesWriter` is the store's writer (`qa.store.StoreWriter`) on the files: it keeps what a
build gives it, and at commit carries the unchanged documents over from the index it
replaces and writes the whole."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .bm25 import Bm25
from .config import Config
from .embedded import Embedded, assemble
from .files import (
    GENERATED,
    MANIFEST,
    Index,
    TokenStore,
    load_index,
    read_manifest,
    remove_other_generations,
    sync_path,
    write_error,
)
from .manifest import new_generation
from .text import terms
from .tokens import quantised
from .types import ConfigError, Document, QAError

if TYPE_CHECKING:
    import faiss

    from .embed import Encoder
    from .types import Sentence

log = logging.getLogger(__name__)


class FilesWriter:
    """`qa.store.StoreWriter` on the files. What it is given stays in memory until `commit`,
    which assembles the new documents' rows and the kept ones' (from the index being
    replaced, their ids remapped), makes the FAISS and BM25 indexes and writes the whole
    as a new generation: nothing is on disk before the commit. Opened under the folder's
    write lock (`qa.store.open_writer`)."""

    one_by_one = False  # every new document embedded in one pass of the encoder
    all_sentences = False  # kept documents are carried over whole: only new ones are chunked

    def __init__(self, config: Config, expected: dict, encoder: Encoder):
        self.config, self.encoder = config, encoder
        self.old = _previous(config.index_dir, expected)
        old_docs = self.old.documents if self.old else {}
        self.stored = {doc_id: d.content_hash for doc_id, d in old_docs.items()}
        self.known = {d.source: d for d in old_docs.values()}  # a PDF is parsed once, not on every ingest
        self.held = _committed_documents(config.index_dir)
        self.tokens = True
        self._embedded: dict[str, Embedded] = {}

    def begin(self, documents: list[Document], pieces: dict[str, tuple]) -> bool:
        """Token vectors are kept up to `token_vectors_max_sentences` sentences in all: the
        new documents' (`pieces`) and the kept ones'."""
        kept = {d.doc_id for d in documents if d.doc_id not in pieces}
        n = sum(len(sentences) for sentences, _ in pieces.values()) + \
            sum(1 for s in (self.old.sentences if self.old else ()) if s.doc_id in kept)
        self.tokens = n <= self.config.token_vectors_max_sentences
        return self.tokens

    def delete(self, doc_id: str) -> None:
        pass  # left out of the documents `commit` is given

    def write(self, embedded: Embedded) -> None:
        self._embedded[embedded.doc.doc_id] = embedded

    def commit(self, documents: list[Document], manifest: dict) -> dict:
        """Write the index of `documents` (in this order) and commit it; returns its manifest."""
        sentences, chunks, sent_rows, chunk_rows, token_rows = assemble(documents, self._embedded, self.old,
                                                                        self.tokens, self.encoder)
        tokens = TokenStore.of(token_rows) if self.tokens else None
        index = new_index(self.config, manifest, documents, sentences, chunks, _matrix(sent_rows, self.encoder.dim),
                          _matrix(chunk_rows, self.encoder.dim), tokens)
        save_index(self.config.index_dir, index)
        return index.manifest


def new_index(config: Config, manifest: dict, documents: list[Document], sentences: list[Sentence], chunks: list,
              sentence_vectors: np.ndarray, chunk_vectors: np.ndarray, tokens: TokenStore | None) -> Index:
    """A whole index of a build's rows, in memory: FAISS over the chunk vectors (and over
    the sentence vectors above `ann_threshold`; below it their ranking multiplies the
    array itself), BM25 over the chunks' terms, and the manifest that says so."""
    dense, dense_kind = dense_index(chunk_vectors, config)
    sentence_dense, sentence_kind = None, {"kind": "flat"}
    if index_kind(len(sentence_vectors), config) != "flat":
        sentence_dense, sentence_kind = dense_index(sentence_vectors, config)
    by_id = {d.doc_id: d for d in documents}
    bm25 = Bm25.build([terms(by_id[c.doc_id].text[c.start:c.end]) for c in chunks])
    manifest = {
        **manifest,
        "counts": {"documents": len(by_id), "chunks": len(chunks), "sentences": len(sentences)},
        "token_vectors": tokens is not None,
        "dense_index": dense_kind,
        "sentence_index": sentence_kind,
        "documents": {d.doc_id: {"content_hash": d.content_hash, "source": d.source, "title": d.title}
                      for d in documents},
    }
    return Index(manifest=manifest, documents=by_id, sentences=sentences, chunks=chunks,
                 sentence_vectors=sentence_vectors, dense=dense, bm25=bm25, tokens=tokens,
                 sentence_dense=sentence_dense)


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


def save_index(folder: str | Path, index: Index) -> None:
    """Write the index as a new generation and commit it. A write that fails (a full disk)
    removes what it wrote and raises `IndexWriteError`; the committed index is untouched."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    gen = new_generation()
    try:
        files = _write_generation(folder, index, gen)
        manifest = {**index.manifest, "files": files, "generation": gen}
        tmp = folder / (MANIFEST + ".tmp")
        _write_text(tmp, json.dumps(manifest, indent=2))
        os.replace(tmp, folder / MANIFEST)  # the commit point
    except (OSError, RuntimeError) as exc:  # faiss says a failed write with a RuntimeError
        _remove_generation(folder, gen)
        raise write_error(folder, exc) from None
    try:
        sync_path(folder)  # the rename itself
    except OSError as exc:  # committed all the same: say so, not that the index was left as it was
        log.warning("the index in %s is committed, but its folder could not be synced: %s", folder, exc)
    index.manifest = manifest
    remove_other_generations(folder, set(files.values()))


def _write_generation(folder: Path, index: Index, gen: str) -> dict[str, str]:
    """Every file of the index, fsynced, under the generation's names; returns the names."""
    import faiss

    files = {
        "documents": f"documents-{gen}.jsonl",
        "chunks": f"chunks-{gen}.json",
        "sentence_vectors": f"sentence_vectors-{gen}.npy",
        "dense": f"dense-{gen}.faiss",
        "bm25": f"bm25-{gen}",
    }
    _write_text(folder / files["documents"], "".join(json.dumps(d.to_dict()) + "\n" for d in index.documents.values()))
    _write_text(folder / files["chunks"], json.dumps({
        "sentences": [s.row() for s in index.sentences],
        "chunks": [[c.doc_id, c.start, c.end, list(c.sentence_ids)] for c in index.chunks],
    }))
    with open(folder / files["sentence_vectors"], "wb") as fh:
        np.save(fh, index.sentence_vectors, allow_pickle=False)
        _sync(fh)
    if index.tokens is not None:
        t = index.tokens
        codes = t.codes if t.codes.dtype == np.int8 else quantised(t.codes)[0]  # held decoded: the same codes
        for name, array in (("token_vectors", codes), ("token_scales", t.scales), ("token_spans", t.spans)):
            files[name] = f"{name}-{gen}.npy"
            with open(folder / files[name], "wb") as fh:
                np.save(fh, array, allow_pickle=False)
                _sync(fh)
    faiss.write_index(index.dense, str(folder / files["dense"]))
    if index.sentence_dense is not None:
        files["sentence_dense"] = f"sentence_dense-{gen}.faiss"
        faiss.write_index(index.sentence_dense, str(folder / files["sentence_dense"]))
    index.bm25.save(folder / files["bm25"])
    # faiss and Bm25 write by path: everything the manifest will name reaches the disk
    # before the manifest does, or a power cut could leave it naming files never written.
    for name in ("dense", "sentence_dense", "bm25"):
        if name in files:
            path = folder / files[name]
            for f in [*sorted(path.iterdir()), path] if path.is_dir() else [path]:
                sync_path(f)
    return files



def _remove_generation(folder: Path, gen: str) -> None:
    """What a failed write of generation `gen` left (best effort: the disk may be failing)."""
    for p in folder.iterdir():
        if GENERATED.match(p.name) and (gen in p.name or p.name == MANIFEST + ".tmp"):
            with contextlib.suppress(OSError):
                shutil.rmtree(p) if p.is_dir() else p.unlink()


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
        _sync(fh)


def _sync(fh) -> None:
    fh.flush()
    os.fsync(fh.fileno())
