"""Budgets per document, enforced at every stage, and no one upload holding the indexer
(issue 41): a document over its budget fails alone with a reason that states the limit;
a large upload is embedded on a lane of its own, so a small one added after it is ready
in seconds; DELETE stops work under way. Real `qa serve` processes over loopback."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path

import pytest

from qa.config import Config
from qa.index import build_index

from docgen import paragraph, word_of
from test_own_corpus import TOKEN, prose, request, serving, states, two_documents, upload, wait_for


def test_a_document_over_its_budget_fails_alone_with_the_limit_in_its_reason(tmp_path, encoder):
    corpus = two_documents(tmp_path / "corpus")
    (corpus / "long.txt").write_bytes(prose(4))  # about 60 sentences
    (corpus / "wide.txt").write_text("Wide " * 2000)  # 10,000 characters
    config = Config(corpus_dir=str(corpus), index_dir=str(tmp_path / "index"), max_document_sentences=50,
                    max_document_chars=9000)
    report = build_index(config, encoder)
    skipped = dict(report.skipped)
    assert skipped.keys() == {"long.txt", "wide.txt"} and report.documents == 2
    assert "sentences; the limit is 50 (max_document_sentences)" in skipped["long.txt"]
    assert "10,000 characters of text; the limit is 9,000 (max_document_chars)" in skipped["wide.txt"]


def rss_of_tree(pid: int) -> int:
    from test_own_corpus import descendants

    total = 0
    for p in descendants(pid):
        with contextlib.suppress(OSError, StopIteration):
            total += int(next(line for line in Path(f"/proc/{p}/status").read_text().splitlines()
                              if line.startswith("VmRSS")).split()[1]) * 1024
    return total


@pytest.fixture
def served(tmp_path, encoder):
    corpus, index = two_documents(tmp_path / "papers"), tmp_path / "papers-index"
    build_index(Config(corpus_dir=str(corpus), index_dir=str(index)), encoder)
    with serving(index, tmp_path, tmp_path) as (base, proc, log):
        yield base, proc, corpus


def test_a_paragraph_bomb_fails_within_a_minute_with_its_reason(served):
    base, _, _ = served
    bomb = word_of(paragraph("a") * 450_000)  # 450,000 one-letter paragraphs, about 95 KB zipped
    assert len(bomb) < 200_000
    started = time.monotonic()
    job = upload(base, "bomb.docx", bomb)
    failed = wait_for(lambda: (row := states(base)[job["doc_id"]])["state"] == "failed" and row, timeout=60)
    assert "sentences; the limit is 10,000 (max_document_sentences)" in failed["reason"]
    print(f"failed after {time.monotonic() - started:.1f} s: {failed['reason']}")


def test_a_megabyte_of_one_line_of_html_holds_no_one_up_and_stays_within_memory(served):
    base, proc, _ = served
    html = b"<html><body><p>" + prose(1000).replace(b"\n", b" ") + b"</p></body></html>"
    peak, done = [0], threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], rss_of_tree(proc.pid))
            time.sleep(0.2)

    threading.Thread(target=watch, daemon=True).start()
    try:
        big = upload(base, "one-line.html", html)
        started = time.monotonic()
        small = upload(base, "heron.txt", b"The Heron Fund pays two river wardens in Lancashire.\n")
        wait_for(lambda: states(base)[small["doc_id"]]["state"] == "ready", timeout=60)
        answered = request(base, "/api/ask", json.dumps({"question": "How many river wardens does the Heron Fund pay?"})
                           .encode(), "POST", {"Content-Type": "application/json"})
        ready_s = time.monotonic() - started
        assert not answered["abstained"] and "Heron" in answered["answer"]
        failed = wait_for(lambda: (row := states(base)[big["doc_id"]])["state"] == "failed" and row, timeout=120)
        assert "the limit is 10,000 (max_document_sentences)" in failed["reason"]
    finally:
        done.set()
    print(f"small upload answered after {ready_s:.1f} s; process tree peak {peak[0] / 2**20:.0f} MB")
    assert ready_s < 60 and peak[0] < 1.5 * 2**30


def test_a_small_upload_behind_a_big_one_is_ready_in_seconds_and_delete_stops_the_big_one(served):
    base, _, corpus = served
    big = upload(base, "wards.txt", prose(400))  # about 6,000 sentences: a few minutes of embedding on 2 cores
    wait_for(lambda: states(base)[big["doc_id"]].get("progress", 0) > 0, timeout=60)
    started = time.monotonic()
    small = upload(base, "heron.txt", b"The Heron Fund pays two river wardens in Lancashire.\n")
    wait_for(lambda: states(base)[small["doc_id"]]["state"] == "ready", timeout=60)
    ready_s = time.monotonic() - started
    assert states(base)[big["doc_id"]]["state"] == "indexing"  # still on its own lane
    started = time.monotonic()
    request(base, f"/api/documents/{big['doc_id']}", method="DELETE", headers={"Authorization": f"Bearer {TOKEN}"})
    wait_for(lambda: big["doc_id"] not in states(base), timeout=10)
    stopped_s = time.monotonic() - started
    assert not (corpus / f"{big['doc_id']}.txt").exists()
    print(f"small ready {ready_s:.1f} s after its upload; the big one gone {stopped_s:.1f} s after DELETE")
    assert ready_s < 30
