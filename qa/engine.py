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
from collections import OrderedDict
from urllib.parse import urlsplit

import numpy as np

from .manifest import check_compatible
from .text import Lexicon
from .types import Chunk, Document, IndexMissingError, QAError, Sentence, StaleIndexError

PREFIX = "qa"
CHUNKS, SENTENCES, DOCUMENTS, TEXTS, TERMS, META = (f"{PREFIX}_{n}" for n in
                                                   ("chunks", "sentences", "documents", "texts", "terms", "meta"))
LOCAL_BITS = 19  # sentences (and chunks) a document may have: 524,288
BM25_K1, BM25_B = 1.5, 0.75  # bm25s's defaults; the engine's scores are (k1 + 1) times bm25s's
CACHE_ROWS = 5_000  # sentences (and as many chunks) a server keeps between questions
DOCS_WITH_CHUNKS = 20  # chunks whose documents stand for "the documents that hold a term"
FETCH = 1000  # rows asked for in one query
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
            rows = self.client.query(DOCUMENTS, filter=equals("doc_id", doc_id), output_fields=["body"])
            if not rows:
                raise KeyError(doc_id)
            doc = Document.from_dict({**rows[0]["body"], "text": ""})
            self._documents.put({doc_id: doc})
        return doc

    def listing(self) -> list[tuple[Document, int]]:
        return [(Document.from_dict({**r["body"], "text": ""}), r["chars"]) for r in all_rows(self.client, DOCUMENTS, ["body", "chars"])]

    def find(self, doc_id: str) -> Document | None:
        try:
            return self.document(doc_id)
        except KeyError:
            return None

    def document_text(self, doc_id: str) -> str:
        return self._parts(TEXTS, doc_id)

    def _parts(self, collection: str, doc_id: str) -> str:
        """A document's text (or terms) as `document_rows` wrote it, in parts."""
        rows = self.client.query(collection, filter=equals("doc_id", doc_id), output_fields=["part", "text"])
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


def all_rows(client, collection: str, fields: list[str]) -> list[dict]:
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
    rows = client.query(META, filter=equals("key", key), output_fields=["part", "value"], limit=16_384)
    if sorted(r["part"] for r in rows) != list(range(parts)):
        return None
    try:
        return json.loads("".join(r["value"] for r in sorted(rows, key=lambda r: r["part"])))
    except json.JSONDecodeError:
        return None


def equals(field: str, value: str) -> str:
    """A filter expression: the field equals the string (quoted and escaped as JSON is)."""
    return f"{field} == {json.dumps(value, ensure_ascii=False)}"
