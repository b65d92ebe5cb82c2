"""One contract for both backends of the store (`qa.store`): whichever holds the index, the
files (`qa.files`, `qa.fileswrite`) or a real Milvus Lite server (`qa.engine`,
`qa.enginewrite`, started as `bash scripts/engine` starts it, never a mock), a build reads
back its documents, sentences and chunks, the two give the same search results for the
same corpus, the writer protocol writes, deletes and commits, unchanged documents are
never embedded again, a removed document is gone, documents added and removed through
the CLI and the server's uploads work alike, and an index built with other settings is
refused on load with a message that says what to do."""

from __future__ import annotations

import io
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from qa import engine, enginewrite
from qa.config import Config
from qa.documents import remove_document
from qa.embedded import embed_documents
from qa.index import _chunked, build_index, expected_settings
from qa.ingest import read_corpus
from qa.pipeline import QA
from qa.store import indexed_sources, open_store, open_writer, scratch
from qa.text import terms
from qa.types import IndexMissingError, StaleIndexError

from conftest import CORPUS, CountingEncoder, engine_server
from test_own_corpus import AUTH, TOKEN, prose, wait_for

BACKENDS = ["files", pytest.param("engine", marks=pytest.mark.engine)]
NAMES = ("000_203956cee7abdc96", "001_576bfebf929a5f1e", "003_2df78265f668097b")
QUESTIONS = ("How many founding partners does Liverpool Health Partners have?",
             "Who chairs the Leeds Academic Health Partnership?",
             "What does the Liverpool Strategic Partnership bring together?",
             "When was the partnership formed?")


def _store_config(backend: str, root: Path, request, **settings) -> Config:
    """A corpus of three default documents in `root`, and a store of its own for it: the
    folder's index, or a database of its own on the session's engine server."""
    corpus = root / "corpus"
    corpus.mkdir(parents=True)
    for name in NAMES:
        shutil.copy(CORPUS / f"{name}.txt", corpus)
    config = Config(corpus_dir=str(corpus), index_dir=str(root / "index"), **settings)
    if backend == "engine":
        config = config.with_overrides(store=request.getfixturevalue("engine_uri"))
    return scratch(config, root, "contract")


def _expected(config: Config, encoder) -> dict:
    return expected_settings(config, encoder.model_id, encoder.weights_sha256, encoder.dim)


def _place(store, cid: int) -> tuple:
    c = store.chunk(cid)
    return c.doc_id, c.start, c.end


def _sentence_place(store, sid: int) -> tuple:
    s = store.sentence(sid)
    return s.doc_id, s.start, s.end


def _built(backend: str, tmp_path_factory, request, encoder):
    config = _store_config(backend, tmp_path_factory.mktemp(f"contract-{backend}"), request)
    report = build_index(config, encoder)
    return config, report, open_store(config, _expected(config, encoder))


@pytest.fixture(scope="module")
def engine_uri(tmp_path_factory):
    """A server of this module's own: the session's shared one wears out under many clients
    (gRPC's too_many_pings) and once refused a connection here."""
    with engine_server(tmp_path_factory.mktemp("contract-engine")) as uri:
        yield uri


@pytest.fixture(scope="module")
def files_built(tmp_path_factory, request, encoder):
    return _built("files", tmp_path_factory, request, encoder)


@pytest.fixture(scope="module")
def engine_built(tmp_path_factory, request, encoder):
    return _built("engine", tmp_path_factory, request, encoder)


@pytest.fixture(params=BACKENDS)
def built(request):
    return request.getfixturevalue(f"{request.param}_built")


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


def test_a_build_reads_back_its_documents_sentences_and_chunks(built, encoder):
    config, report, store = built
    assert (report.documents, len(report.embedded), report.removed) == (3, 3, [])
    assert store.manifest["counts"] == {"documents": 3, "chunks": report.chunks, "sentences": report.sentences}
    docs = {d.doc_id: d for d in read_corpus(config.corpus_dir, config.clean_patterns).documents}
    assert {d.doc_id: chars for d, chars in store.listing()} == {k: len(d.text) for k, d in docs.items()}
    for doc_id, doc in docs.items():
        assert store.document_text(doc_id) == doc.text
        assert (store.find(doc_id).title, store.document(doc_id).source) == (doc.title, doc.source)
    assert store.find("no-such-document") is None
    # Every sentence and chunk the chunker makes, each once, their texts slices of their document.
    pieces = {doc_id: _chunked(doc, config, encoder) for doc_id, doc in docs.items()}
    want_sentences = {(k, s.start, s.end) for k, (sentences, _) in pieces.items() for s in sentences}
    want_chunks = {(k, a, b) for k, (_, groups) in pieces.items() for a, b, _ in groups}
    probe = encoder.encode([QUESTIONS[0]])[0]
    sids = store.search_sentences(probe, report.sentences)
    cids = [cid for cid, _ in store.search_chunks(probe, report.chunks)]
    assert {_sentence_place(store, s) for s in sids} == want_sentences and len(sids) == len(want_sentences)
    assert {_place(store, c) for c in cids} == want_chunks and len(cids) == len(want_chunks)
    for sid in sids[::7]:
        s = store.sentence(sid)
        assert store.sentence_text(sid) == docs[s.doc_id].text[s.start:s.end]
        assert all(sid in store.chunk(c).sentence_ids for c in store.chunks_of(sid))
    for cid in cids[::5]:
        c = store.chunk(cid)
        assert store.chunk_text(cid) == docs[c.doc_id].text[c.start:c.end]
        assert all(store.sentence(s).doc_id == c.doc_id for s in c.sentence_ids)
    assert np.allclose(store.chunk_vectors(cids[:3]), encoder.encode([store.chunk_text(c) for c in cids[:3]]), atol=1e-4)


@pytest.mark.engine
def test_the_two_backends_give_the_same_search_results_for_the_same_corpus(files_built, engine_built, encoder):
    files, engine_store = files_built[2], engine_built[2]
    assert files.manifest["counts"] == engine_store.manifest["counts"]
    for question in QUESTIONS:
        vector = encoder.encode([question])[0]
        dense = [files.search_chunks(vector, 5), engine_store.search_chunks(vector, 5)]
        assert [_place(files, c) for c, _ in dense[0]] == [_place(engine_store, c) for c, _ in dense[1]], question
        assert np.allclose([s for _, s in dense[0]], [s for _, s in dense[1]], atol=1e-4)
        query = terms(question)
        lexical = [files.search_terms(query, 5), engine_store.search_terms(query, 5)]
        assert [_place(files, c) for c, _ in lexical[0]] == [_place(engine_store, c) for c, _ in lexical[1]], question
        assert np.allclose([s for _, s in lexical[0]], [s for _, s in lexical[1]], rtol=1e-3)
        sentences = [files.search_sentences(vector, 10), engine_store.search_sentences(vector, 10)]
        assert [files.sentence(s) for s in sentences[0]] == [engine_store.sentence(s) for s in sentences[1]], question
        assert np.allclose(files.sentence_vectors_of(sentences[0]), engine_store.sentence_vectors_of(sentences[1]),
                           atol=1e-4)
    assert json.loads(json.dumps(files.lexicon().stats)) == engine_store.lexicon().stats  # the engine's went through JSON


@pytest.fixture
def fresh(backend, tmp_path, request, encoder):
    """A store of its own holding the three documents, and its configuration."""
    config = _store_config(backend, tmp_path, request)
    build_index(config, encoder)
    return config


def test_the_writer_writes_deletes_and_commits(fresh, encoder):
    config, expected = fresh, _expected(fresh, encoder)
    gone, *kept = NAMES
    (Path(config.corpus_dir) / "heron.txt").write_text(
        "Heron Trust\n\nThe Heron Trust funds river surveys on the Mersey.\n", encoding="utf-8")
    corpus = [d for d in read_corpus(config.corpus_dir, config.clean_patterns).documents if d.doc_id != gone]
    [heron] = [d for d in corpus if d.doc_id == "heron"]
    pieces = {d.doc_id: _chunked(d, config, encoder) for d in corpus}
    with open_writer(config, expected, encoder) as writer:
        assert set(writer.stored) == set(NAMES) and all(len(h) == 64 for h in writer.stored.values())
        tokens = writer.begin(corpus, pieces if writer.all_sentences else {"heron": pieces["heron"]})
        writer.delete(gone)
        [embedded] = embed_documents([(heron, pieces["heron"])], encoder, tokens)
        writer.write(embedded)
        manifest = writer.commit(corpus, {**expected, "built_at": "now", "corpus": config.corpus_dir})
    assert manifest["counts"]["documents"] == 3 and manifest["built_at"] == "now"
    store = open_store(config, expected)
    assert store.manifest["counts"] == manifest["counts"]
    assert sorted(d.doc_id for d, _ in store.listing()) == sorted([*kept, "heron"])
    assert store.find(gone) is None and store.document_text("heron") == heron.text
    best = store.search_sentences(encoder.encode(["What does the Heron Trust fund?"])[0], 2)
    assert {store.sentence_text(s) for s in best} == {"Heron Trust", "The Heron Trust funds river surveys on the Mersey."}
    with open_writer(config, expected, encoder) as writer:  # what was committed is what is stored
        assert writer.stored == {d.doc_id: d.content_hash for d in corpus}


def test_unchanged_documents_are_not_embedded_again(fresh, encoder):
    counting = CountingEncoder(encoder)
    again = build_index(fresh, counting)
    assert (again.embedded, again.reused, counting.encoded) == ([], list(NAMES), [])
    changed = Path(fresh.corpus_dir) / f"{NAMES[2]}.txt"
    changed.write_text(changed.read_text(encoding="utf-8") + "\nThe trusts opened a new research centre in 2025.\n",
                       encoding="utf-8")
    report = build_index(fresh, counting)
    assert (report.embedded, report.reused, report.removed) == ([NAMES[2]], list(NAMES[:2]), [])
    assert "The trusts opened a new research centre in 2025." in counting.encoded
    assert not any("Liverpool Strategic Partnership" in t for t in counting.encoded)  # 001's own words
    store = open_store(fresh, _expected(fresh, encoder))
    assert store.manifest["counts"]["sentences"] == report.sentences


def test_a_removed_document_is_gone_from_the_store_and_the_folder(fresh, encoder):
    gone = NAMES[1]
    report = remove_document(fresh, encoder, gone)
    assert report.removed == [gone] and report.embedded == [] and report.documents == 2
    assert not (Path(fresh.corpus_dir) / f"{gone}.txt").exists()
    assert sorted(indexed_sources(fresh, _expected(fresh, encoder))) == [NAMES[0], NAMES[2]]
    store = open_store(fresh, _expected(fresh, encoder))
    assert store.find(gone) is None and len(store.listing()) == 2
    vector = encoder.encode(["What does the Liverpool Strategic Partnership bring together?"])[0]
    assert all(store.chunk(c).doc_id != gone for c, _ in store.search_chunks(vector, 50))


def _rewrite_manifest(config: Config, change) -> None:
    """Change the committed manifest in place, as another version of the product would have written it."""
    if config.store == "files":
        path = Path(config.index_dir) / "manifest.json"
        path.write_text(json.dumps(change(json.loads(path.read_text()))))
    else:
        client = engine.connect(config.store)
        enginewrite.write_json(client, "manifest", change(engine.read_json(client, "manifest")))


def test_a_manifest_of_other_settings_is_refused_on_load_and_rebuilt_by_ingest(backend, tmp_path, request, encoder):
    config = _store_config(backend, tmp_path, request)
    with pytest.raises(IndexMissingError, match="qa ingest"):
        open_store(config, _expected(config, encoder))
    build_index(config, encoder)

    def other_model(manifest):
        manifest["model"]["weights_sha256"] = "0" * 64
        return manifest

    _rewrite_manifest(config, other_model)
    with pytest.raises(StaleIndexError, match=r"different model .*Re-run `qa ingest`"):
        open_store(config, _expected(config, encoder))
    _rewrite_manifest(config, lambda m: {**m, "format_version": 0})
    with pytest.raises(StaleIndexError, match="different format version"):
        open_store(config, _expected(config, encoder))
    report = build_index(config, encoder)  # not mixed in: built again whole
    assert sorted(report.embedded) == list(NAMES) and report.reused == []
    assert len(open_store(config, _expected(config, encoder)).listing()) == 3


def test_qa_add_and_qa_remove_work_on_either_backend(fresh, encoder, monkeypatch, capsys, tmp_path):
    from qa.cli import main

    monkeypatch.setenv("QA_STORE", fresh.store)
    monkeypatch.setenv("QA_INDEX_DIR", fresh.index_dir)
    added = tmp_path / "heron.md"
    added.write_text("# Heron Trust\n\nThe Heron Trust funds river surveys on the Mersey.\n", encoding="utf-8")
    # No --corpus: the index says which folder it was built from.
    assert main(["add", str(added)]) == 0, capsys.readouterr().err
    [doc_id] = set(indexed_sources(fresh, _expected(fresh, encoder))) - set(NAMES)
    assert doc_id.startswith("uploads/") and f"added heron.md as {doc_id}" in capsys.readouterr().out
    assert main(["remove", NAMES[0]]) == 0, capsys.readouterr().err
    assert sorted(indexed_sources(fresh, _expected(fresh, encoder))) == sorted([*NAMES[1:], doc_id])
    assert not (Path(fresh.corpus_dir) / f"{NAMES[0]}.txt").exists()
    assert main(["remove", NAMES[0]]) == 2 and "No document has the id" in capsys.readouterr().err


def test_uploads_through_the_server_are_indexed_and_removed_on_either_backend(backend, tmp_path, request, encoder,
                                                                             reader, monkeypatch):
    import qa.indexer
    from qa.server import create_app

    monkeypatch.setattr(qa.indexer, "RETRY_SECONDS", 0.2)
    # The large uploads' lane from 16 KB rather than 256 KB: the same path, a fifteenth of the embedding.
    monkeypatch.setattr(qa.indexer, "BIG_BYTES", 16 * 1024)
    lane, prepare = [], qa.indexer.prepare_document
    monkeypatch.setattr(qa.indexer, "prepare_document", lambda *args, **kwargs: lane.append(args[2]) or prepare(*args, **kwargs))
    config = _store_config(backend, tmp_path, request, api_token=TOKEN, rate_limit_per_minute=0,
                           max_upload_bytes=600_000, index_check_seconds=0)
    build_index(config, encoder)
    app = create_app(config, QA.load(config, encoder, reader))
    client = app.test_client()
    try:
        # A large upload is embedded ahead on a lane of its own (`prepare_document`), a small one in the build.
        files = [(io.BytesIO(prose(20)), "wards.txt"),
                 (io.BytesIO(b"# Heron Trust\n\nThe Heron Trust funds river surveys on the Mersey.\n"), "heron.md")]
        jobs = client.post("/api/documents", headers=AUTH, content_type="multipart/form-data",
                           data={"file": files}).get_json()["documents"]

        def states():
            return {d["doc_id"]: d["state"] for d in client.get("/api/documents").get_json()["documents"]}

        wait_for(lambda: all(states().get(j["doc_id"]) == "ready" for j in jobs), timeout=300)
        assert len(lane) == 1 and jobs[0]["doc_id"] in str(lane[0])
        answer = client.post("/api/ask", json={"question": "What does the Heron Trust fund?"}).get_json()
        assert "river surveys" in answer["answer"] and answer["citations"][0]["doc_id"] == jobs[1]["doc_id"]
        assert client.delete(f"/api/documents/{jobs[1]['doc_id']}", headers=AUTH).status_code == 202
        wait_for(lambda: jobs[1]["doc_id"] not in states(), timeout=120)
        time.sleep(0.1)
        assert sorted(indexed_sources(config, _expected(config, encoder))) == sorted([*NAMES, jobs[0]["doc_id"]])
    finally:
        app.extensions["qa"].indexer.stop()
