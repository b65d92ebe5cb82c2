"""The store on a search engine's server: Milvus (docs/engines.md says why), reached with
`pymilvus` at the URI the `store` setting names, so that `qa serve` holds only its models
and any number of replicas answer from one corpus.

Six collections, plain tables the engine shards and replicates:

* `qa_chunks`: a chunk's place, its sentences, its vector, and its `qa.text.terms`, which
  the engine's own BM25 function indexes (k1 and b as bm25s's, so scores match);
* `qa_sentences`: a sentence's place (`Sentence`), its chunks, text and vector;
* `qa_documents`: each document as JSON without its text; `qa_texts`: the texts, in parts;
  `qa_terms`: each document's terms (`Lexicon.terms_of`), in parts;
* `qa_meta`: the manifest and the corpus's `Lexicon` statistics, as JSON in parts.

Ids: a document's key (from a hash of its id) times 2^19, plus the place of the sentence
or chunk in it, so a document's sentences have consecutive ids and writing a document
again writes the same ids (no duplicates when a crashed ingest is run again). What a
question reads is fetched in a few round trips and kept in bounded caches, which a new
generation (`qa ingest` committed) starts afresh.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import re
import threading
import time
from urllib.parse import urlsplit
from collections import OrderedDict

import numpy as np

from .text import Lexicon, terms
from .types import Chunk, Document, IndexMissingError, QAError, Sentence, StaleIndexError

PREFIX = "qa"
CHUNKS, SENTENCES, DOCUMENTS, TEXTS, TERMS, META = (f"{PREFIX}_{n}" for n in
                                                   ("chunks", "sentences", "documents", "texts", "terms", "meta"))
LOCAL_BITS = 19  # sentences (and chunks) a document may have: 524,288
PART_CHARS = 16_000  # a VARCHAR holds 65,535 bytes: 4 a character at worst
MAX_VARCHAR = 65_535
BM25_K1, BM25_B = 1.5, 0.75  # bm25s's defaults; the engine's scores are (k1 + 1) times bm25s's
CACHE_ROWS = 5_000  # sentences (and as many chunks) a server keeps between questions
DOCS_WITH_CHUNKS = 20  # chunks whose documents stand for "the documents that hold a term"
FETCH = 1000  # rows asked for in one query
CREATE_ATTEMPTS = 20  # making a collection that shards racing to make it may half-make
SENTENCE_FIELDS = ["doc_id", "start", "end", "lead_in", "item", "items", "question", "colon", "chunks", "text", "vector"]
CHUNK_FIELDS = ["doc_id", "start", "end", "sentence_ids", "text", "vector"]


def is_engine(store: str) -> bool:
    """Whether the `store` setting names an engine's server rather than the files."""
    return store.startswith(("http://", "https://"))


def connect(uri: str):
    """A client of the engine at the URI. A path names a database of that server
    ("http://host:19530/papers"), made if missing, so one server can hold several indexes."""
    try:
        from pymilvus import MilvusClient
    except ImportError:
        raise QAError("The store setting names a search engine, but its client is not installed. "
                      "Install it with `pip install -e '.[engine]'`.") from None
    logging.getLogger("pymilvus").setLevel(logging.ERROR)  # after its import, which sets it: it warns of its own fallbacks
    _check_sparse_once()
    parts = urlsplit(uri)
    server, database = f"{parts.scheme}://{parts.netloc}", parts.path.strip("/")
    if database and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,254}", database):
        raise QAError(f"{database!r} in {uri} is not a database name the engine takes: letters, digits and _ only.")
    try:
        client = MilvusClient(uri=server, timeout=10)
        if database:
            if database not in client.list_databases():
                client.create_database(database)
            client.use_database(database)
        # A server started again on its data has our collections on disk but not loaded
        # (Milvus Lite; a cluster may release them too): searches fail until they are.
        for name in (CHUNKS, SENTENCES, DOCUMENTS, TEXTS, TERMS, META):
            if client.has_collection(name) and "Loaded" not in str(client.get_load_state(name).get("state")):
                client.load_collection(name)
        return client
    except Exception as exc:  # noqa: BLE001 - the client raises many kinds; the user needs one sentence
        raise QAError(f"Cannot reach the search engine at {uri} ({type(exc).__name__}: {str(exc)[:200]}). "
                      "Start it (`bash scripts/engine DIR` prints its URI) or set QA_STORE=files.") from None


def _check_sparse_once() -> None:
    """Let the client look for scipy.sparse now, on one thread. It looks on its first search
    by executing scipy.sparse afresh; two server threads doing so at once fail with a
    circular import (seen as a 500 from a replica just started while questions came in)."""
    try:
        importlib.import_module("scipy.sparse")  # whole, so a later look finds its submodules whole
        from pymilvus.client.utils import SciPyHelper
    except ImportError:
        return
    SciPyHelper._init()


def database_uri(store: str, name: str) -> str:
    """The URI of database `name` on the server that `store` names."""
    parts = urlsplit(store)
    return f"{parts.scheme}://{parts.netloc}/{re.sub(r'[^A-Za-z0-9_]', '_', name)}"


def doc_key(doc_id: str) -> int:
    """A document's first id: 44 bits of a hash of its id, times 2^LOCAL_BITS."""
    return int(hashlib.sha256(doc_id.encode()).hexdigest()[:11], 16) << LOCAL_BITS


class _Cache:
    """Rows by id, least recently used dropped first, shared by a server's threads."""

    def __init__(self, size: int):
        self.size, self.rows, self.lock = size, OrderedDict(), threading.Lock()

    def missing(self, ids) -> list:
        with self.lock:
            return [i for i in dict.fromkeys(ids) if i not in self.rows]

    def put(self, rows: dict) -> None:
        with self.lock:
            self.rows.update(rows)
            while len(self.rows) > self.size:
                self.rows.popitem(last=False)

    def get(self, key):
        with self.lock:
            row = self.rows.get(key)
            if row is not None:
                self.rows.move_to_end(key)
            return row


class EngineStore:
    """`qa.store.Store` on the engine. `manifest` is the one the last `qa ingest` committed."""

    def __init__(self, client, manifest: dict, lexicon_stats: dict):
        self.client, self.manifest, self._lexicon_stats = client, manifest, lexicon_stats
        self._sentences, self._chunks = _Cache(CACHE_ROWS), _Cache(CACHE_ROWS)
        self._documents, self._terms = _Cache(1000), _Cache(256)

    @classmethod
    def connect(cls, uri: str, expected: dict) -> EngineStore:
        from .store import check_compatible

        client = connect(uri)
        manifest = read_json(client, "manifest")
        if manifest is None:
            raise IndexMissingError(f"No index in the search engine at {uri}. Build it with `QA_STORE={uri} qa ingest`.")
        check_compatible(manifest, expected, uri)
        stats = read_json(client, manifest["lexicon"]["key"], manifest["lexicon"]["parts"])
        if stats is None:
            raise StaleIndexError(f"The index in the search engine at {uri} has no lexicon. Re-run `qa ingest` to rebuild it.")
        return cls(client, manifest, stats)

    def committed(self) -> str | None:
        """The generation the engine's manifest names now (that of the last ingest), or
        None if it cannot be read; a serving process asks once a `index_check_seconds`."""
        try:
            manifest = read_json(self.client, "manifest")
        except Exception:  # noqa: BLE001 - unreachable for a moment: keep serving what is loaded
            return self.manifest.get("generation")
        return manifest.get("generation") if manifest else None

    # Searches: one round trip each.
    def search_chunks(self, vector: np.ndarray, n: int) -> list[tuple[int, float]]:
        hits = self.client.search(CHUNKS, data=[vector.astype(np.float32).tolist()], anns_field="vector", limit=n,
                                  search_params={"metric_type": "IP"})[0]
        return [(int(h["id"]), float(h["distance"])) for h in hits]

    def search_terms(self, terms: list[str], n: int) -> list[tuple[int, float]]:
        if not terms:
            return []
        hits = self.client.search(CHUNKS, data=[" ".join(terms)], anns_field="sparse", limit=n,
                                  search_params={"metric_type": "BM25"})[0]
        return [(int(h["id"]), abs(float(h["distance"])) / (BM25_K1 + 1)) for h in hits if h["distance"]]

    def search_sentences(self, vector: np.ndarray, n: int) -> list[int]:
        hits = self.client.search(SENTENCES, data=[vector.astype(np.float32).tolist()], anns_field="vector", limit=n,
                                  search_params={"metric_type": "IP"}, output_fields=SENTENCE_FIELDS)[0]
        self._sentences.put({int(h["id"]): _sentence_row(h["entity"]) for h in hits if h.get("entity")})
        return [int(h["id"]) for h in hits]

    # Rows, fetched in batches into the caches.
    def _fetch(self, collection: str, cache: _Cache, ids: list[int], fields: list[str], convert) -> None:
        missing = cache.missing(ids)
        for at in range(0, len(missing), FETCH):
            part = missing[at:at + FETCH]
            rows = self.client.query(collection, filter=f"id in {[int(i) for i in part]}",
                                     output_fields=fields)
            cache.put({int(r["id"]): convert(r) for r in rows})

    def _row(self, cache: _Cache, collection: str, key: int, fields: list[str], convert) -> dict:
        row = cache.get(key)
        if row is None:
            self._fetch(collection, cache, [key], fields, convert)
            row = cache.get(key)
            if row is None:
                raise StaleIndexError(f"The search engine has no row {key} in {collection}: the index changed "
                                      "while this question was answered. Ask again.")
        return row

    def preload_sentences(self, sids: list[int]) -> None:
        self._fetch(SENTENCES, self._sentences, sids, SENTENCE_FIELDS, _sentence_row)

    def _sentence(self, sid: int) -> dict:
        return self._row(self._sentences, SENTENCES, sid, SENTENCE_FIELDS, _sentence_row)

    def _chunk(self, cid: int) -> dict:
        return self._row(self._chunks, CHUNKS, cid, CHUNK_FIELDS, _chunk_row)

    def chunk(self, cid: int) -> Chunk:
        return self._chunk(cid)["chunk"]

    def chunk_text(self, cid: int) -> str:
        return self._chunk(cid)["text"]

    def chunk_vectors(self, cids: list[int]) -> np.ndarray:
        self._fetch(CHUNKS, self._chunks, cids, CHUNK_FIELDS, _chunk_row)
        return np.array([self._chunk(c)["vector"] for c in cids], np.float32)

    def chunks_of(self, sid: int) -> tuple[int, ...]:
        return self._sentence(sid)["chunks"]

    def sentence(self, sid: int) -> Sentence:
        return self._sentence(sid)["sentence"]

    def sentence_text(self, sid: int) -> str:
        return self._sentence(sid)["text"]

    def sentence_vectors_of(self, sids: list[int]) -> np.ndarray:
        self.preload_sentences(sids)
        return np.array([self._sentence(s)["vector"] for s in sids], np.float32).reshape(len(sids), -1)

    def stored_tokens(self, sids: list[int]) -> None:
        return None  # not kept in the engine: the answer stage makes them, and caches them

    def document(self, doc_id: str) -> Document:
        doc = self._documents.get(doc_id)
        if doc is None:
            rows = self.client.query(DOCUMENTS, filter=_equals("doc_id", doc_id), output_fields=["body"])
            if not rows:
                raise KeyError(doc_id)
            doc = Document.from_dict({**rows[0]["body"], "text": ""})
            self._documents.put({doc_id: doc})
        return doc

    def listing(self) -> list[tuple[Document, int]]:
        return [(Document.from_dict({**r["body"], "text": ""}), r["chars"]) for r in _all(self.client, DOCUMENTS, ["body", "chars"])]

    def find(self, doc_id: str) -> Document | None:
        try:
            return self.document(doc_id)
        except KeyError:
            return None

    def document_text(self, doc_id: str) -> str:
        return self._parts(TEXTS, doc_id)

    def _parts(self, collection: str, doc_id: str) -> str:
        """A document's text (or terms) as `document_rows` wrote it, in parts."""
        rows = self.client.query(collection, filter=_equals("doc_id", doc_id), output_fields=["part", "text"])
        return "".join(r["text"] for r in sorted(rows, key=lambda r: r["part"]))

    def lexicon(self) -> Lexicon:
        return Lexicon.from_stats(self._lexicon_stats, self._docs_with, self._terms_of)

    def _docs_with(self, term: str) -> set[str]:
        """Documents that hold the term: those of its best chunks by BM25 (a few, not all)."""
        cids = [cid for cid, _ in self.search_terms([term], DOCS_WITH_CHUNKS)]
        self._fetch(CHUNKS, self._chunks, cids, CHUNK_FIELDS, _chunk_row)
        return {self.chunk(cid).doc_id for cid in cids}

    def _terms_of(self, doc_id: str) -> set[str]:
        terms = self._terms.get(doc_id)
        if terms is None:
            terms = set(self._parts(TERMS, doc_id).split())
            self._terms.put({doc_id: terms})
        return terms


def _sentence_row(r: dict) -> dict:
    return {"sentence": Sentence.from_row([r["doc_id"], r["start"], r["end"], r["lead_in"], r["item"], r["items"],
                                           r["question"], r["colon"]]),
            "chunks": tuple(int(c) for c in r["chunks"]), "text": r["text"], "vector": np.asarray(r["vector"], np.float32)}


def _chunk_row(r: dict) -> dict:
    return {"chunk": Chunk(r["doc_id"], r["start"], r["end"], tuple(int(s) for s in r["sentence_ids"])),
            "text": r["text"], "vector": np.asarray(r["vector"], np.float32)}


def _all(client, collection: str, fields: list[str]) -> list[dict]:
    """Every row of a collection (an iterator: a query alone stops at 16,384)."""
    it = client.query_iterator(collection, batch_size=FETCH, output_fields=fields)
    rows = []
    while batch := it.next():
        rows += batch
    it.close()
    return rows


def read_json(client, key: str, parts: int = 1) -> dict | None:
    """A JSON value of `qa_meta`, written in `parts` (`write_json`); None if it is not all there."""
    if not client.has_collection(META):
        return None
    rows = client.query(META, filter=_equals("key", key), output_fields=["part", "value"], limit=16_384)
    if sorted(r["part"] for r in rows) != list(range(parts)):
        return None
    try:
        return json.loads("".join(r["value"] for r in sorted(rows, key=lambda r: r["part"])))
    except json.JSONDecodeError:
        return None


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
    return {r["doc_id"]: r["body"].get("content_hash", "") for r in _all(client, DOCUMENTS, ["doc_id", "body"])}


def delete_document(client, doc_id: str) -> None:
    """A document's rows, its document row first: from then on it is not listed, and what
    is left of it (after a crash) is written over or deleted by the next ingest."""
    for name in (DOCUMENTS, CHUNKS, SENTENCES, TEXTS, TERMS):
        client.delete(name, filter=_equals("doc_id", doc_id))


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


def _equals(field: str, value: str) -> str:
    """A filter expression: the field equals the string (quoted and escaped as JSON is)."""
    return f"{field} == {json.dumps(value, ensure_ascii=False)}"
