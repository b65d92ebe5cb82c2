"""The background indexer under failure: waits are waited, one bad file holds no one else
up, and a batch that cannot be stored whole leaves nothing (found by review, 2026-12-07)."""

from __future__ import annotations

import io
import time

import pytest

from qa.config import Config
from qa.index import build_index
from qa.pipeline import QA
from qa.server import create_app

from test_own_corpus import AUTH, TOKEN, prose, two_documents, wait_for


@pytest.fixture
def served(tmp_path, encoder, reader, monkeypatch):
    import qa.indexer

    monkeypatch.setattr(qa.indexer, "RETRY_SECONDS", 0.2)
    corpus = two_documents(tmp_path / "corpus")
    config = Config(corpus_dir=str(corpus), index_dir=str(tmp_path / "index"), api_token=TOKEN,
                    rate_limit_per_minute=0, max_upload_bytes=600_000)
    build_index(config, encoder)
    app = create_app(config, QA.load(config, encoder, reader))
    yield app.test_client(), corpus
    app.extensions["qa"].indexer.stop()


def upload(client, *files):
    return client.post("/api/documents", headers=AUTH, content_type="multipart/form-data",
                       data={"file": [(io.BytesIO(data), name) for name, data in files]})


def listed(client) -> dict[str, dict]:
    return {d["doc_id"]: d for d in client.get("/api/documents").get_json()["documents"]}


def test_a_large_upload_whose_embedding_keeps_failing_waits_between_tries(served, monkeypatch):
    import qa.indexer

    client, corpus = served
    tries = []

    def broken(*args, **kwargs):
        tries.append(time.monotonic())
        raise RuntimeError("the encoder broke (simulated)")

    monkeypatch.setattr(qa.indexer, "prepare_document", broken)
    [job] = upload(client, ("wards.txt", prose(300))).get_json()["documents"]
    time.sleep(1.5)  # waits of 0.2, 0.4, 0.8 s: four tries at most (it tried 668 times in 2 s)
    assert 2 <= len(tries) <= 5, len(tries)
    row = listed(client)[job["doc_id"]]
    assert row["state"] == "queued" and "waiting" in row["reason"]
    assert (corpus / f"{job['doc_id']}.txt").is_file()


def test_a_file_whose_builds_keep_failing_is_built_alone_and_holds_no_one_else_up(served, monkeypatch):
    import qa.indexer

    client, corpus = served
    real = qa.indexer.build_index
    bad = upload(client, ("bad.md", b"# Bad\n\nThis file breaks every build that reads it.\n")).get_json()["documents"][0]

    def breaks_on_bad(config, *args, leaving, **kwargs):
        if not leaving(f"{bad['doc_id']}.md"):  # a build that reads it fails as a whole
            raise RuntimeError("the chunker broke on it (simulated)")
        return real(config, *args, leaving=leaving, **kwargs)

    monkeypatch.setattr(qa.indexer, "build_index", breaks_on_bad)
    wait_for(lambda: listed(client)[bad["doc_id"]].get("reason"), timeout=30)
    good = upload(client, ("good.md", b"# Heron\n\nThe Heron Fund pays two wardens.\n")).get_json()["documents"][0]
    wait_for(lambda: listed(client)[good["doc_id"]]["state"] == "ready", timeout=60)
    row = listed(client)[bad["doc_id"]]
    assert row["state"] in {"queued", "indexing"} and "waiting" in row["reason"]
    assert (corpus / f"{bad['doc_id']}.md").is_file()  # never deleted: not its proven fault


def test_a_batch_that_cannot_be_stored_whole_leaves_none_of_its_files(served, monkeypatch):
    import qa.documents

    client, corpus = served
    real, calls = qa.documents.store, []

    def second_fails(corpus_dir, upload_, suffix, digest):
        calls.append(digest)
        if len(calls) == 2:
            raise qa.documents.storage_error(corpus / "uploads", OSError(28, "No space left on device"))
        return real(corpus_dir, upload_, suffix, digest)

    monkeypatch.setattr(qa.documents, "store", second_fails)
    reply = upload(client, ("a.md", b"# A\n\nFirst file.\n"), ("b.md", b"# B\n\nSecond file.\n"))
    assert reply.status_code == 500
    assert not any(p.suffix == ".md" for p in (corpus / "uploads").iterdir())
