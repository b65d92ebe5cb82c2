"""Writing the index into the search engine (`qa.engine` reads it): the six collections
made with their indexes, each document's rows written or deleted as one, and the
manifest upserted last as the commit point that replicas follow (docs/engines.md).
`EngineWriter` is the store's writer (`qa.store.StoreWriter`) on the engine, which
`qa ingest` (`qa.index`) writes through; the engine benchmark uses the functions."""

from __future__ import annotations

import json
import logging
import time

import numpy as np

from .embedded import Embedded
from .engine import (
    BM25_B,
    BM25_K1,
    CHUNKS,
    DOCUMENTS,
    FETCH,
    LOCAL_BITS,
    META,
    SENTENCES,
    TERMS,
    TEXTS,
    all_rows,
    connect,
    doc_key,
    equals,
    read_json,
)
from .manifest import new_generation
from .text import Lexicon, terms, titled
from .types import Document, QAError, Sentence

PART_CHARS = 16_000  # a VARCHAR holds 65,535 bytes: 4 a character at worst
MAX_VARCHAR = 65_535
CREATE_ATTEMPTS = 20  # making a collection that shards racing to make it may half-make


class EngineWriter:
    """`qa.store.StoreWriter` on the engine: each document written as it comes (its old
    rows deleted, its document row last, so it is listed only once whole), a removed one
    deleted at once, and at `commit` the corpus's lexicon and, last, the manifest that
    names it. An index built with another model, chunking or format is dropped on opening.
    A shard writes only its documents but is given them all (`all_sentences`) for the
    lexicon; whichever shard ends last commits the manifest of all. An ingest killed
    midway is run again: documents written whole are skipped (`stored`), the rest written
    over the same ids."""

    one_by_one = True  # embedded and written one at a time: what a killed ingest wrote is kept
    all_sentences = True  # the lexicon is the whole corpus's

    def __init__(self, uri: str, expected: dict):
        self.client = connect(uri)
        manifest = read_json(self.client, "manifest")
        if manifest is not None and any(manifest.get(k) != v for k, v in expected.items()):
            drop_collections(self.client)  # built with another model, chunking or format: rebuilt
        create_collections(self.client, expected["model"]["dim"])
        self.stored = stored_documents(self.client)
        self.held = list(self.stored)
        self.known: dict[str, Document] = {}  # the engine keeps no file hashes: every file is read again
        self._lexicon: Lexicon | None = None
        self._counts: dict[str, int] = {}

    def begin(self, documents: list[Document], pieces: dict[str, tuple]) -> bool:
        """The corpus's lexicon, of every document's sentences; no token vectors (23 KB a sentence)."""
        self._lexicon = Lexicon([d.text[s.start:s.end] for d in documents for s in pieces[d.doc_id][0]],
                                {d.doc_id: titled(d) for d in documents},
                                [d.doc_id for d in documents for _ in pieces[d.doc_id][0]])
        self._counts = {"documents": len(documents), "chunks": sum(len(pieces[d.doc_id][1]) for d in documents),
                        "sentences": sum(len(pieces[d.doc_id][0]) for d in documents)}
        return False

    def delete(self, doc_id: str) -> None:
        delete_document(self.client, doc_id)

    def write(self, embedded: Embedded) -> None:
        e = embedded
        write_document(self.client, e.doc, e.sentences, e.groups, e.sentence_vectors, e.chunk_vectors,
                       self._lexicon.terms_of(e.doc.doc_id))

    def commit(self, documents: list[Document], manifest: dict) -> dict:
        gen = new_generation()
        parts = write_json(self.client, f"lexicon-{gen}", self._lexicon.stats)
        manifest = {**manifest, "generation": gen, "counts": self._counts,
                    "lexicon": {"key": f"lexicon-{gen}", "parts": parts}}
        commit(self.client, manifest)
        return manifest


def write_json(client, key: str, value: dict) -> int:
    """Write a JSON value under a key, in as many parts as it takes; return how many. A
    value of one part replaces the old in one upsert, which is what makes the manifest the
    commit point."""
    text = json.dumps(value, separators=(",", ":"))
    parts = [text[i:i + PART_CHARS] for i in range(0, len(text), PART_CHARS)] or [""]
    client.upsert(META, [{"id": f"{key}:{n}", "key": key, "part": n, "value": p, "dummy": [0.0, 0.0]}
                         for n, p in enumerate(parts)])
    return len(parts)


def create_collections(client, dim: int) -> None:
    """The six collections, empty, with their indexes; those already there are kept."""
    from pymilvus import DataType, Function, FunctionType

    def make(name, fields, vector_dim, extra=None):
        if client.has_collection(name):
            return
        schema = client.create_schema(auto_id=False)
        for field_name, kind, options in fields:
            schema.add_field(field_name, kind, **options)
        schema.add_field("vector" if vector_dim > 2 else "dummy", DataType.FLOAT_VECTOR, dim=vector_dim)
        index = client.prepare_index_params()
        index.add_index("vector" if vector_dim > 2 else "dummy", index_type="AUTOINDEX", metric_type="IP")
        if extra:
            extra(schema, index)
        quiet = logging.getLogger("pymilvus")
        level, quiet.level = quiet.level, logging.CRITICAL  # it logs the race below as an error
        try:
            for attempt in range(CREATE_ATTEMPTS):
                try:
                    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
                    return
                except Exception:
                    # Another shard's ingest (here or on another machine) may be making it
                    # at this moment: it exists once that one is done.
                    time.sleep(0.25)
                    if client.has_collection(name):
                        return
                    if attempt == CREATE_ATTEMPTS - 1:
                        raise
        finally:
            quiet.setLevel(level)

    def bm25(schema, index):
        schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["terms"],
                                     output_field_names=["sparse"]))
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                        params={"bm25_k1": BM25_K1, "bm25_b": BM25_B})

    i64, text = DataType.INT64, {"max_length": MAX_VARCHAR}
    place = [("doc_id", DataType.VARCHAR, {"max_length": 1024}), ("start", i64, {}), ("end", i64, {})]
    make(CHUNKS, [("id", i64, {"is_primary": True}), *place,
                  ("sentence_ids", DataType.ARRAY, {"element_type": i64, "max_capacity": 4096}),
                  ("text", DataType.VARCHAR, text),
                  ("terms", DataType.VARCHAR, {**text, "enable_analyzer": True, "analyzer_params": {"tokenizer": "standard"}}),
                  ("sparse", DataType.SPARSE_FLOAT_VECTOR, {})], dim, bm25)
    make(SENTENCES, [("id", i64, {"is_primary": True}), *place, ("lead_in", i64, {}), ("item", DataType.BOOL, {}),
                     ("items", i64, {}), ("question", DataType.BOOL, {}), ("colon", DataType.BOOL, {}),
                     ("chunks", DataType.ARRAY, {"element_type": i64, "max_capacity": 256}),
                     ("text", DataType.VARCHAR, text)], dim)
    make(DOCUMENTS, [("doc_id", DataType.VARCHAR, {"max_length": 1024, "is_primary": True}), ("key", i64, {}),
                     ("chars", i64, {}), ("body", DataType.JSON, {})], 2)
    for name in (TEXTS, TERMS):
        make(name, [("id", i64, {"is_primary": True}), ("doc_id", DataType.VARCHAR, {"max_length": 1024}),
                    ("part", i64, {}), ("text", DataType.VARCHAR, text)], 2)
    make(META, [("id", DataType.VARCHAR, {"max_length": 256, "is_primary": True}),
                ("key", DataType.VARCHAR, {"max_length": 256}), ("part", i64, {}), ("value", DataType.VARCHAR, text)], 2)


def drop_collections(client) -> None:
    for name in (CHUNKS, SENTENCES, DOCUMENTS, TEXTS, TERMS, META):
        if client.has_collection(name):
            client.drop_collection(name)


def stored_documents(client) -> dict[str, str]:
    """The content hash of each document the engine holds, by id."""
    return {r["doc_id"]: r["body"].get("content_hash", "") for r in all_rows(client, DOCUMENTS, ["doc_id", "body"])}


def delete_document(client, doc_id: str) -> None:
    """A document's rows, its document row first: from then on it is not listed, and what
    is left of it (after a crash) is written over or deleted by the next ingest."""
    for name in (DOCUMENTS, CHUNKS, SENTENCES, TEXTS, TERMS):
        client.delete(name, filter=equals("doc_id", doc_id))


def write_document(client, doc: Document, sentences: list[Sentence], chunks: list[tuple[int, int, tuple[int, ...]]],
                   sentence_vectors: np.ndarray, chunk_vectors: np.ndarray, doc_terms: set[str]) -> None:
    """A document's rows, its document row last: it is listed only once all of it is there."""
    base = doc_key(doc.doc_id)
    holder = client.query(DOCUMENTS, filter=f"key == {int(base)}", output_fields=["doc_id"])
    if any(r["doc_id"] != doc.doc_id for r in holder):
        raise QAError(f"The documents {doc.doc_id!r} and {holder[0]['doc_id']!r} have the same key in the search "
                      "engine (a hash collision, about one in 17 billion). Rename one of the files and ingest again.")
    delete_document(client, doc.doc_id)
    rows = document_rows(doc, sentences, chunks, sentence_vectors, chunk_vectors, doc_terms)
    for name in (SENTENCES, CHUNKS, TEXTS, TERMS, DOCUMENTS):  # the document row last
        _insert(client, name, rows[name])


def document_rows(doc: Document, sentences: list[Sentence], chunks: list[tuple[int, int, tuple[int, ...]]],
                  sentence_vectors: np.ndarray, chunk_vectors: np.ndarray, doc_terms: set[str]) -> dict[str, list[dict]]:
    """A document's rows in each collection."""
    if len(sentences) >= 1 << LOCAL_BITS:
        raise QAError(f"{doc.source} has {len(sentences)} sentences; the search engine store takes at most "
                      f"{(1 << LOCAL_BITS) - 1} a document. Split the file.")
    base = doc_key(doc.doc_id)
    chunks_of: dict[int, list[int]] = {}
    for c, (_, _, ids) in enumerate(chunks):
        for i in ids:
            chunks_of.setdefault(i, []).append(base + c)
    rows = {SENTENCES: [{"id": base + i, **dict(zip(["doc_id", "start", "end", "lead_in"], s.row())), "item": s.item,
                         "items": s.items, "question": s.question, "colon": s.colon, "chunks": chunks_of.get(i, []),
                         "text": doc.text[s.start:s.end], "vector": v.tolist()}
                        for i, (s, v) in enumerate(zip(sentences, sentence_vectors))],
            CHUNKS: [{"id": base + c, "doc_id": doc.doc_id, "start": a, "end": b, "sentence_ids": [base + i for i in ids],
                      "text": doc.text[a:b], "terms": " ".join(terms(doc.text[a:b])), "vector": v.tolist()}
                     for c, ((a, b, ids), v) in enumerate(zip(chunks, chunk_vectors))]}
    for name, text in ((TEXTS, doc.text), (TERMS, " ".join(sorted(doc_terms)))):
        rows[name] = [{"id": base + n, "doc_id": doc.doc_id, "part": n, "text": text[at:at + PART_CHARS], "dummy": [0.0, 0.0]}
                      for n, at in enumerate(range(0, max(len(text), 1), PART_CHARS))]
    body = {k: v for k, v in doc.to_dict().items() if k != "text"}
    rows[DOCUMENTS] = [{"doc_id": doc.doc_id, "key": base, "chars": len(doc.text), "body": body, "dummy": [0.0, 0.0]}]
    return rows


def _insert(client, collection: str, rows: list[dict]) -> None:
    for at in range(0, len(rows), FETCH):
        client.insert(collection, rows[at:at + FETCH])


def commit(client, manifest: dict) -> None:
    """Make `manifest` the committed one, unless a shard that ended meanwhile committed a
    newer generation (generations sort by time); then forget older generations' lexicons."""
    current = read_json(client, "manifest")
    if current is None or current.get("generation", "") < manifest["generation"]:
        write_json(client, "manifest", manifest)
    committed = read_json(client, "manifest")["generation"]
    client.delete(META, filter=f'key like "lexicon-%" and key < {json.dumps("lexicon-" + committed)}')
