"""Adding and removing documents while the server answers: the API (limits, types,
the token), the background indexer and the swap, and the same from the CLI."""

import dataclasses
import io
import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from qa.cli import main
from qa.config import Config
from qa.documents import UPLOADS
from qa.files import read_manifest
from qa.index import build_index
from qa.indexer import JOURNAL
from qa.pipeline import QA
from qa.server import create_app

from conftest import CORPUS, CountingEncoder
from docgen import minutes_docx, paragraph, report_pdf, word_of

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DEMENTIA = "Who leads the dementia service?"


@pytest.fixture(scope="module")
def pdf_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("pdf") / "report.pdf"
    report_pdf(path)
    return path.read_bytes()


@pytest.fixture
def small_config(tmp_path, encoder):
    """Two documents of the default corpus, indexed."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in sorted(p.name for p in CORPUS.iterdir() if p.suffix == ".txt")[:2]:
        shutil.copy(CORPUS / name, corpus / name)
    config = Config(corpus_dir=str(corpus), index_dir=str(tmp_path / "index"), api_token=TOKEN,
                    max_upload_bytes=200_000, max_upload_files=3, rate_limit_per_minute=0)
    build_index(config, encoder)
    return config


@pytest.fixture
def client(small_config, encoder, reader):
    return create_app(small_config, QA.load(small_config, encoder, reader)).test_client()


def wait_ready(client, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        docs = client.get("/api/documents").get_json()["documents"]
        if not any(d["state"] in {"queued", "indexing", "removing"} for d in docs):
            return {d["doc_id"]: d for d in docs}
        time.sleep(0.1)
    raise AssertionError(f"still indexing after {timeout} s: {docs}")


def upload(client, *files, headers=AUTH):
    return client.post("/api/documents", headers=headers, content_type="multipart/form-data",
                       data={"file": [(io.BytesIO(data), name) for name, data in files]})


def test_upload_a_pdf_ask_it_then_remove_it(client, small_config, pdf_bytes):
    reply = upload(client, ("../../Annual review.pdf", pdf_bytes))
    assert reply.status_code == 202
    [job] = reply.get_json()["documents"]
    assert job["state"] == "queued" and job["filename"] == "Annual review.pdf"
    assert job["doc_id"].startswith("uploads/") and "Annual" not in job["doc_id"]
    # Stored under a content-hash name inside the corpus, never under the name it came with.
    # The upload journal (and, while it is being written, its temporary copy) sits beside them.
    stored = sorted(p.name for p in (Path(small_config.corpus_dir) / "uploads").iterdir() if not p.name.startswith(JOURNAL))
    assert stored == [job["doc_id"].split("/")[1] + ".meta.json", job["doc_id"].split("/")[1] + ".pdf"]

    docs = wait_ready(client)
    doc = docs[job["doc_id"]]
    assert doc["state"] == "ready" and doc["pages"] == 4 and doc["title"] == "Northwind Annual Review"
    assert any("page 4" in w for w in doc["warnings"])
    answer = client.post("/api/ask", json={"question": DEMENTIA}).get_json()
    first = answer["citations"][0]
    assert first["doc_id"] == job["doc_id"] and first["page"] == 2
    text = client.get(f"/api/documents/{job['doc_id']}").get_json()
    assert text["text"][first["start"]:first["end"]] == first["text"]
    assert text["pages"][1] <= first["start"] < text["pages"][2]

    # The same bytes again, under another name, are the same document: said so, not queued.
    [again] = upload(client, ("again.pdf", pdf_bytes)).get_json()["documents"]
    assert again == {"doc_id": job["doc_id"], "filename": "again.pdf", "state": "already added"}
    assert wait_ready(client)[job["doc_id"]]["state"] == "ready"
    # The original file, as it was sent, under its own name, as a sandboxed download.
    original = client.get(f"/api/files/{job['doc_id']}")
    assert original.status_code == 200 and original.data == pdf_bytes
    assert 'attachment; filename="Annual review.pdf"' in original.headers["Content-Disposition"]
    assert original.headers["Content-Security-Policy"] == "sandbox"
    assert docs[job["doc_id"]]["filename"] == "Annual review.pdf"
    assert client.get("/api/files/uploads/0000000000000000").status_code == 404

    reply = client.delete(f"/api/documents/{job['doc_id']}", headers=AUTH)
    assert reply.status_code == 202 and reply.get_json()["state"] == "removing"
    docs = wait_ready(client)
    assert job["doc_id"] not in docs and len(docs) == 2
    after = client.post("/api/ask", json={"question": DEMENTIA}).get_json()
    assert after["abstained"] or all(c["doc_id"] != job["doc_id"] for c in after["citations"])
    assert not (Path(small_config.corpus_dir) / "uploads" / (job["doc_id"].split("/")[1] + ".pdf")).exists()


def test_a_word_file_and_text_in_one_upload(client, tmp_path):
    minutes_docx(tmp_path / "m.docx")
    note = b"# Note\n\nThe Quokka Fund pays for two research nurses.\n"
    reply = upload(client, ("minutes.docx", (tmp_path / "m.docx").read_bytes()), ("note.md", note), ("copy.md", note))
    assert reply.status_code == 202
    assert [d["state"] for d in reply.get_json()["documents"]] == ["queued", "queued", "already added"]
    docs = wait_ready(client)
    assert {d["title"] for d in docs.values()} >= {"Board minutes", "Note"}
    answer = client.post("/api/ask", json={"question": "What does the Quokka Fund pay for?"}).get_json()
    assert "two research nurses" in answer["answer"]


def test_one_unreadable_word_file_fails_alone_and_the_rest_of_its_batch_is_added(client, small_config, tmp_path):
    minutes_docx(tmp_path / "m.docx")
    minutes = (tmp_path / "m.docx").read_bytes()
    [first] = upload(client, ("minutes.docx", minutes)).get_json()["documents"]
    assert wait_ready(client)[first["doc_id"]]["state"] == "ready"
    reply = upload(client, ("minutes.docx", minutes), ("note.md", b"# Note\n\nThe Quokka Fund pays for two research nurses.\n"),
                   ("broken.docx", word_of(paragraph("An unclosed run")[:-12])))
    assert reply.status_code == 202
    jobs = {j["filename"]: j for j in reply.get_json()["documents"]}
    docs = wait_ready(client)
    assert docs[jobs["broken.docx"]["doc_id"]]["state"] == "failed"
    assert "XMLSyntaxError" in docs[jobs["broken.docx"]["doc_id"]]["reason"]
    assert docs[jobs["note.md"]["doc_id"]]["state"] == docs[first["doc_id"]]["state"] == "ready"
    uploads = Path(small_config.corpus_dir) / "uploads"
    stored = [p for p in uploads.iterdir() if not p.name.endswith(".meta.json") and not p.name.startswith(JOURNAL)]
    assert {p.suffix for p in stored} == {".docx", ".md"}
    found = client.post("/api/search", json={"query": "Quokka Fund research nurses", "k": 1}).get_json()
    assert found["passages"][0]["doc_id"] == jobs["note.md"]["doc_id"]


def _journal_a_pending_upload(config, state: str, interrupted: int = 0) -> str:
    """What a server killed mid-build leaves: an upload on disk and its journalled job."""
    uploads = Path(config.corpus_dir) / UPLOADS
    uploads.mkdir(exist_ok=True)
    (uploads / "0123456789abcdef.md").write_text("# Otters\n\nThe Otter Trust funds three river wardens.\n")
    (uploads / "0123456789abcdef.meta.json").write_text(json.dumps({"filename": "otters.md"}))
    job = {"doc_id": f"{UPLOADS}/0123456789abcdef", "source": f"{UPLOADS}/0123456789abcdef.md",
           "filename": "otters.md", "state": state, "interrupted": interrupted}
    (uploads / JOURNAL).write_text(json.dumps([job]))
    return job["doc_id"]


def test_uploads_pending_when_the_server_stopped_are_listed_and_indexed_after_a_restart(small_config, encoder, reader):
    doc_id = _journal_a_pending_upload(small_config, "indexing")
    client = create_app(small_config, QA.load(small_config, encoder, reader)).test_client()
    docs = wait_ready(client)
    assert docs[doc_id]["state"] == "ready"
    found = client.post("/api/search", json={"query": "Otter Trust river wardens", "k": 1}).get_json()
    assert found["passages"][0]["doc_id"] == doc_id


def test_a_file_that_killed_the_server_twice_is_set_aside_kept_and_not_retried(small_config, encoder, reader):
    doc_id = _journal_a_pending_upload(small_config, "indexing", interrupted=1)
    stored = Path(small_config.corpus_dir) / "uploads" / "0123456789abcdef.md"
    client = create_app(small_config, QA.load(small_config, encoder, reader)).test_client()
    docs = wait_ready(client)
    assert docs[doc_id]["state"] == "failed" and "set aside" in docs[doc_id]["reason"]
    assert stored.is_file()  # nobody asked for it to go
    # Another upload builds the index: the set-aside file stays out of it, and stays listed.
    upload(client, ("note.md", b"# Note\n\nThe Heron Fund pays two wardens.\n"))
    docs = wait_ready(client)
    assert docs[doc_id]["state"] == "failed" and stored.is_file()
    found = client.post("/api/search", json={"query": "Otter Trust river wardens", "k": 3}).get_json()
    assert doc_id not in {p["doc_id"] for p in found["passages"]}
    client = create_app(small_config, QA.load(small_config, encoder, reader)).test_client()
    assert wait_ready(client)[doc_id]["state"] == "failed"  # a set-aside file is not forgotten after a day
    assert client.delete(f"/api/documents/{doc_id}", headers=AUTH).get_json()["state"] == "removed"
    assert not stored.exists()
    # Gone for good: a restart does not bring it back.
    client = create_app(small_config, QA.load(small_config, encoder, reader)).test_client()
    assert doc_id not in wait_ready(client)


@pytest.mark.parametrize("failures", [1, 3])
def test_a_build_that_fails_as_a_whole_waits_says_why_and_keeps_its_files(client, small_config, monkeypatch, failures):
    import qa.indexer as indexer

    real, calls = indexer.build_index, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) <= failures:
            raise OSError("No space left on device (simulated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(indexer, "build_index", flaky)
    monkeypatch.setattr(indexer, "RETRY_SECONDS", 0.5)
    before = set(wait_ready(client))
    [job] = upload(client, ("note.md", b"# Note\n\nThe Heron Fund pays two wardens.\n")).get_json()["documents"]
    stored = Path(small_config.corpus_dir) / (job["doc_id"] + ".md")
    deadline = time.monotonic() + 30
    while len(calls) < 2 and time.monotonic() < deadline:  # failed once: waiting, and saying why
        time.sleep(0.05)
    listed = {d["doc_id"]: d for d in client.get("/api/documents").get_json()["documents"]}
    if failures > 1:
        assert listed[job["doc_id"]]["state"] in {"queued", "indexing"}
        assert "waiting" in listed[job["doc_id"]]["reason"] and "unexpectedly" in listed[job["doc_id"]]["reason"]
    assert stored.is_file()
    # However many builds fail, the file is kept and indexed once a build goes through.
    docs = wait_ready(client, timeout=60)
    assert len(calls) == failures + 1 and docs[job["doc_id"]]["state"] == "ready" and stored.is_file()
    assert "reason" not in docs[job["doc_id"]]
    assert before <= set(docs) and all(docs[d]["state"] == "ready" for d in before)


def test_a_failure_is_listed_for_a_day_then_forgotten(small_config, encoder, reader):
    doc_id = _journal_a_pending_upload(small_config, "failed")
    journal = Path(small_config.corpus_dir) / UPLOADS / JOURNAL
    [job] = json.loads(journal.read_text())
    journal.write_text(json.dumps([{**job, "reason": "unreadable", "failed_at": time.time() - 25 * 3600}]))
    client = create_app(small_config, QA.load(small_config, encoder, reader)).test_client()
    assert doc_id not in wait_ready(client)
    assert json.loads(journal.read_text()) == []


def test_a_form_with_too_many_fields_or_a_file_name_with_a_line_break_says_so(client):
    fields = {f"extra{i}": "x" for i in range(1100)}
    reply = client.post("/api/documents", headers=AUTH, content_type="multipart/form-data",
                        data={**fields, "file": (io.BytesIO(b"# Note\n\nA fact.\n"), "note.md")})
    assert reply.status_code == 400 and "too many form fields" in reply.get_json()["error"]["message"]
    reply = upload(client, ("bad\nname.md", b"# Note\n\nA fact.\n"))
    assert reply.status_code == 400 and "line break" in reply.get_json()["error"]["message"]


def test_an_upload_is_journalled_before_its_file_is_stored(small_config):
    from qa.documents import Upload, add_files

    def crash(jobs):
        assert jobs[0]["state"] == "queued" and jobs[0]["filename"] == "note.md"
        raise RuntimeError("the process dies here")

    with pytest.raises(RuntimeError):
        add_files(small_config, [Upload("note.md", b"# Note\n\nA sentence.\n")], crash)
    assert not (Path(small_config.corpus_dir) / "uploads").exists()


def test_an_unreadable_upload_fails_with_its_reason_and_leaves_the_corpus(client, small_config, tmp_path):
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(tmp_path / "locked.pdf"), encrypt="pw")
    c.drawString(72, 720, "Secret text.")
    c.save()
    [job] = upload(client, ("locked.pdf", (tmp_path / "locked.pdf").read_bytes())).get_json()["documents"]
    docs = wait_ready(client)
    assert docs[job["doc_id"]]["state"] == "failed" and "password" in docs[job["doc_id"]]["reason"]
    assert not list((Path(small_config.corpus_dir) / "uploads").glob("*.pdf"))
    assert client.delete(f"/api/documents/{job['doc_id']}", headers=AUTH).get_json()["state"] == "removed"
    assert job["doc_id"] not in wait_ready(client)


def test_writes_need_the_token(client, small_config, encoder, reader, pdf_bytes):
    assert upload(client, ("a.pdf", pdf_bytes), headers={}).status_code == 401
    bad = upload(client, ("a.pdf", pdf_bytes), headers={"Authorization": "Bearer wrong"})
    assert bad.status_code == 401 and bad.get_json()["error"]["code"] == "unauthorized"
    assert client.delete("/api/documents/x", headers={"Authorization": "Basic " + TOKEN}).status_code == 401
    assert not (Path(small_config.corpus_dir) / "uploads").exists()

    off = create_app(dataclasses.replace(small_config, api_token=""), QA.load(small_config, encoder, reader)).test_client()
    for reply in (upload(off, ("a.pdf", pdf_bytes)), off.delete("/api/documents/x", headers=AUTH)):
        assert reply.status_code == 403
        assert reply.get_json()["error"]["code"] == "uploads_disabled" and "QA_API_TOKEN" in reply.get_json()["error"]["message"]
    assert off.get("/api/documents").get_json()["uploads"]["enabled"] is False


def test_upload_names_are_shown_as_sent_but_never_spoof_or_lose_their_type():
    from qa.documents import display_name

    assert display_name("../../Annual review.pdf") == "Annual review.pdf"
    assert display_name("evil\u202egnp.pdf") == "evilgnp.pdf"  # no right-to-left override: shown as it is
    long = display_name("r" * 300 + ".pdf")
    assert len(long) == 200 and long.endswith(".pdf")


@pytest.mark.parametrize("files, status, words", [
    ([("tool.exe", b"MZ\x90\x00")], 415, "cannot be read"),
    ([("report.pdf", b"not really a pdf")], 415, "not a PDF"),
    ([("report.docx", b"not a zip")], 415, "not a Word file"),
    ([("notes.txt", b"\xff\xfe\x00bad")], 415, "UTF-8"),
    ([("empty.txt", b"  ")], 400, "empty"),
    ([("big.txt", b"a" * 200_001)], 413, "limit"),
    ([], 400, "No file"),
    ([("a.txt", b"a"), ("b.txt", b"b"), ("c.txt", b"c"), ("d.txt", b"d")], 400, "at most 3"),
])
def test_upload_limits_and_types(client, small_config, files, status, words):
    reply = upload(client, *files)
    assert reply.status_code == status
    assert words in reply.get_json()["error"]["message"]
    assert not (Path(small_config.corpus_dir) / "uploads").exists() or not any(
        (Path(small_config.corpus_dir) / "uploads").iterdir())  # nothing stored, not even the good ones


def test_a_request_over_the_total_limit_is_refused(client):
    reply = upload(client, *[(f"{n}.txt", b"x" * 200_000) for n in range(4)])
    assert reply.status_code == 413 and reply.get_json()["error"]["code"] == "too_large"


def test_delete_unknown_ids_and_the_last_document(client, small_config):
    for doc_id in ("nope", "../corpus/x", "%2e%2e/etc/passwd"):
        reply = client.delete(f"/api/documents/{doc_id}", headers=AUTH)
        assert reply.status_code == 404 and reply.get_json()["error"]["code"] == "not_found"
    first, second = sorted(client.get("/api/documents").get_json()["documents"], key=lambda d: d["doc_id"])
    assert client.delete(f"/api/documents/{first['doc_id']}", headers=AUTH).status_code == 202
    last = client.delete(f"/api/documents/{second['doc_id']}", headers=AUTH)
    assert last.status_code == 409 and "last document" in last.get_json()["error"]["message"]
    assert list(wait_ready(client)) == [second["doc_id"]]


def test_cli_add_and_remove(small_config, tmp_path, capsys):
    minutes_docx(tmp_path / "minutes.docx")
    args = ["--corpus", small_config.corpus_dir, "--index", small_config.index_dir]
    assert main(["add", str(tmp_path / "minutes.docx"), *args]) == 0
    out = capsys.readouterr().out
    doc_id = out.split(" as ")[1].split()[0]
    assert doc_id.startswith("uploads/") and doc_id in read_manifest(small_config.index_dir)["documents"]

    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4 broken")
    assert main(["add", str(tmp_path / "bad.pdf"), *args]) == 1
    assert "not added: bad.pdf" in capsys.readouterr().err
    assert main(["add", str(tmp_path / "missing.pdf"), *args]) == 2

    assert main(["remove", doc_id, *args]) == 0
    assert doc_id not in read_manifest(small_config.index_dir)["documents"]
    assert main(["remove", doc_id, *args]) == 2
    assert "No document has the id" in capsys.readouterr().err
    assert json.loads((Path(small_config.index_dir) / "manifest.json").read_text())["counts"]["documents"] == 2


def test_indexing_embeds_only_the_new_file_and_no_request_fails_across_the_swap(small_config, encoder, reader, tmp_path):
    counting = CountingEncoder(encoder)
    qa = QA.load(small_config, counting, reader)
    old = {qa.index.sentence_text(i) for i in range(len(qa.index.sentences))}
    client = create_app(small_config, qa).test_client()
    minutes_docx(tmp_path / "minutes.docx")
    statuses, stop = [], threading.Event()

    def asking():
        while not stop.is_set():
            statuses.append(client.post("/api/ask", json={"question": "Who is the chair of the board?"}).status_code)

    worker = threading.Thread(target=asking)
    worker.start()
    try:
        counting.encoded.clear()
        assert upload(client, ("minutes.docx", (tmp_path / "minutes.docx").read_bytes())).status_code == 202
        wait_ready(client)
        while len(statuses) < 3:  # and a question or two on the new index
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join()
    assert statuses and set(statuses) == {200}
    assert "Ruth Ellison | Chair of the board" in counting.encoded and not old & set(counting.encoded)
    answer = client.post("/api/ask", json={"question": "Who is the chair of the board?"}).get_json()
    assert "Ruth Ellison" in answer["answer"]


def test_a_corpus_the_server_cannot_write_gives_a_clear_error(client, small_config, pdf_bytes):
    (Path(small_config.corpus_dir) / "uploads").write_text("a file where the uploads folder should be")
    reply = upload(client, ("report.pdf", pdf_bytes))
    assert reply.status_code == 500
    error = reply.get_json()["error"]
    assert error["code"] == "storage_error" and "may write there" in error["message"]


# --- A file whose name and bytes disagree, and the size a cut-off read can honestly report (issue 41)

def _zip(members: dict[str, bytes]) -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


ASCII_PDF = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
             b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")


@pytest.mark.parametrize("name, data, words", [
    ("notes.txt", ASCII_PDF, ["is a PDF file", "notes.pdf"]),
    ("notes.md", ASCII_PDF, ["is a PDF file", "notes.pdf"]),
    ("minutes.txt", "word", ["is a Word file", "minutes.docx"]),
    ("page.html", _zip({"a.txt": b"one", "b.txt": b"two"}), ["is a zip archive", "unpack it"]),
    ("photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64), ["is not text", "binary"]),
    ("data.md", b"abc\x00\x01\x02def" * 10, ["is not text", "binary"]),
], ids=["pdf as txt", "pdf as md", "word as txt", "zip as html", "png as txt", "nul bytes as md"])
def test_a_text_name_on_a_pdf_word_zip_or_binary_file_is_refused_with_what_it_is(tmp_path, name, data, words):
    from qa.documents import DocumentError, Upload, check

    if data == "word":
        minutes_docx(tmp_path / "minutes.docx")
        data = (tmp_path / "minutes.docx").read_bytes()
    with pytest.raises(DocumentError) as refused:
        check(Upload(name, data), 200_000)
    assert refused.value.status == 415 and refused.value.code == "unsupported_file"
    for word in words:
        assert word in str(refused.value), str(refused.value)


def test_a_pdf_uploaded_as_txt_is_refused_and_nothing_is_stored(client, small_config, pdf_bytes):
    reply = upload(client, ("Annual review.txt", pdf_bytes))
    assert reply.status_code == 415
    message = reply.get_json()["error"]["message"]
    assert "is a PDF file" in message and "Annual review.pdf" in message
    assert not (Path(small_config.corpus_dir) / UPLOADS).exists()


def test_text_that_merely_mentions_pdf_or_zip_is_still_text():
    from qa.documents import Upload, check

    assert check(Upload("notes.md", b"# PDF and PK files\n\nA %PDF header starts a PDF file."), 200_000) == ".md"
    assert check(Upload("bom.txt", "\ufeffA UTF-8 file with a byte order mark.".encode("utf-8")), 200_000) == ".txt"


def test_a_file_cut_off_at_the_limit_is_reported_as_over_the_limit_not_at_the_length_read(client):
    from qa.documents import DocumentError, Upload, check

    reply = upload(client, ("big.txt", b"a" * 300_000))  # the server reads at most 200,001 bytes
    assert reply.status_code == 413
    message = reply.get_json()["error"]["message"]
    assert "over 200,000 bytes" in message and "200,001" not in message, message
    with pytest.raises(DocumentError) as whole:  # `qa add` reads the whole file: its size is known
        check(Upload("big.txt", b"a" * 250_000), 200_000)
    assert "250,000 bytes" in str(whole.value) and whole.value.status == 413
