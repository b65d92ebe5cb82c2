"""Your own documents are never dropped: the index knows the corpus folder it was built
from, and an accepted upload is never deleted unless its user removes it or the file
itself cannot be read (issue 40). Real `qa serve` processes started from another folder,
real uploads and signals, and a small tmpfs for a full disk where the machine allows it."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from qa.cli import main
from qa.config import Config
from qa.files import read_manifest
from qa.index import build_index
from qa.indexer import JOURNAL
from qa.lab.replicas import wait_healthy
from qa.pipeline import QA
from qa.server import create_app

from conftest import copy_documents, free_port
from docgen import nested_pdf

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FOUNDING = "How many founding partners does Liverpool Health Partners have?"


def two_documents(folder: Path) -> Path:
    copy_documents(folder, 2)
    return folder


def prose(kilobytes: int) -> bytes:
    """Plain prose of about that size, every sentence its own (so each is embedded)."""
    lines = [f"The Heron Fund's ward {i} was visited by {i % 37 + 2} nurses on day {i}." for i in range(kilobytes * 15)]
    return ("# Ward visits\n\n" + " ".join(lines) + "\n").encode()


def request(base: str, path: str, body: bytes | None = None, method: str = "GET", headers: dict | None = None) -> dict:
    req = urllib.request.Request(base + path, body, headers or {}, method=method)
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)


def upload(base: str, name: str, data: bytes) -> dict:
    boundary = "qa-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return request(base, "/api/documents", body, "POST",
                   {**AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}"})["documents"][0]


def states(base: str) -> dict[str, dict]:
    return {d["doc_id"]: d for d in request(base, "/api/documents")["documents"]}


def wait_for(check, timeout: float = 120, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if got := check():
            return got
        time.sleep(every)
    raise AssertionError(f"not so after {timeout} s")


@contextlib.contextmanager
def serving(index: Path, cwd: Path, logs: Path, *args: str, env: dict | None = None):
    """`qa serve --index INDEX` run from `cwd`, as a user would from any folder."""
    port, log_path = free_port(), logs / f"serve-{time.monotonic_ns()}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "qa.cli", "serve", "--index", str(index), "--port", str(port),
                                 *args], cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
                                     "QA_API_TOKEN": TOKEN, "QA_RATE_LIMIT_PER_MINUTE": "0",
                                     "QA_DRAIN_SECONDS": "0.2", **(env or {})})
        try:
            wait_healthy(f"http://127.0.0.1:{port}", proc, log=log_path)
            yield f"http://127.0.0.1:{port}", proc, log_path
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def papers(tmp_path, encoder) -> tuple[Path, Path]:
    """The README's "Your own documents": two documents in papers/, indexed in papers-index/."""
    corpus, index = two_documents(tmp_path / "papers"), tmp_path / "papers-index"
    build_index(Config(corpus_dir=str(corpus), index_dir=str(index)), encoder)
    return corpus, index


# --- the index knows its corpus --------------------------------------------------------

def test_a_server_started_from_another_folder_adds_uploads_to_its_own_corpus(papers, tmp_path):
    corpus, index = papers
    assert read_manifest(index)["corpus"] == str(corpus.resolve())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with serving(index, elsewhere, tmp_path) as (base, _, _):
        assert request(base, "/api/health")["documents"] == 2
        asked = json.dumps({"question": FOUNDING}).encode()
        before = request(base, "/api/ask", asked, "POST", {"Content-Type": "application/json"})
        assert not before["abstained"] and "nine" in before["answer"]
        job = upload(base, "heron.md", b"# Heron\n\nThe Heron Fund pays two river wardens.\n")
        wait_for(lambda: states(base)[job["doc_id"]]["state"] == "ready")
        assert request(base, "/api/health")["documents"] == 3
        after = request(base, "/api/ask", asked, "POST", {"Content-Type": "application/json"})
        assert after["answer"] == before["answer"]
    assert list(elsewhere.iterdir()) == []  # nothing is ever written to the working folder
    assert (corpus / f"{job['doc_id']}.md").is_file()


def test_an_explicit_corpus_that_is_not_the_indexs_own_is_refused(papers, tmp_path, capsys):
    corpus, index = papers
    other = two_documents(tmp_path / "other")
    for command in (["serve"], ["mcp"], ["add", str(other / "x.txt")], ["remove", "x"], ["ingest"]):
        assert main([*command, "--index", str(index), "--corpus", str(other)]) == 2
        said = capsys.readouterr().err
        assert str(corpus.resolve()) in said and str(other.resolve()) in said and "--new-corpus" in said
    assert read_manifest(index)["corpus"] == str(corpus.resolve())
    # Rebuilding from another folder is a choice made out loud.
    assert main(["ingest", "--index", str(index), "--corpus", str(other), "--new-corpus"]) == 0
    assert read_manifest(index)["corpus"] == str(other.resolve())


def test_serve_documents_its_corpus_option(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    said = capsys.readouterr().out
    assert "--corpus" in said and "QA_CORPUS_DIR" in said
    cli_doc = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text()
    assert "qa serve --corpus" in cli_doc and "QA_CORPUS_DIR" in cli_doc


def test_a_build_that_would_drop_most_documents_is_refused_and_the_index_kept(tmp_path, encoder, capsys):
    corpus = tmp_path / "corpus"
    names = copy_documents(corpus, 3)
    index = tmp_path / "index"
    build_index(Config(corpus_dir=str(corpus), index_dir=str(index)), encoder)
    generation = read_manifest(index)["generation"]

    aside = tmp_path / "aside"
    aside.mkdir()
    for name in names[1:]:  # two of three gone, as when a subfolder is not mounted
        shutil.move(corpus / name, aside / name)
    assert main(["ingest", "--index", str(index)]) == 2
    assert "no longer holds 2 of the 3 documents" in capsys.readouterr().err
    shutil.move(corpus, tmp_path / "moved")  # the whole folder gone
    assert main(["ingest", "--index", str(index)]) == 2
    assert "does not exist" in capsys.readouterr().err
    corpus.mkdir()  # an empty folder where it was
    assert main(["ingest", "--index", str(index)]) == 2
    assert "No readable" in capsys.readouterr().err
    assert read_manifest(index)["generation"] == generation
    # One of three gone is an ordinary change; and dropping most is allowed when asked for.
    shutil.rmtree(corpus)
    shutil.move(tmp_path / "moved", corpus)
    shutil.move(aside / names[1], corpus / names[1])
    assert main(["ingest", "--index", str(index)]) == 0
    assert read_manifest(index)["counts"]["documents"] == 2
    (corpus / names[1]).unlink()
    assert main(["ingest", "--index", str(index)]) == 0  # 1 of 2 is half, not more
    assert read_manifest(index)["counts"]["documents"] == 1


# --- an accepted upload is never deleted unasked ---------------------------------------

def test_sigterm_during_a_build_exits_cleanly_and_costs_the_upload_nothing(papers, tmp_path):
    corpus, index = papers
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    data = prose(20)
    job = None
    for _ in range(2):  # two ordinary restarts while it is being indexed
        with serving(index, elsewhere, tmp_path) as (base, proc, log):
            job = job or upload(base, "wards.txt", data)
            wait_for(lambda base=base, job=job: states(base)[job["doc_id"]]["state"] == "indexing", every=0.02)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0, log.read_text()[-2000:]
            assert "terminate called" not in log.read_text()
        [journalled] = json.loads((corpus / "uploads" / JOURNAL).read_text())
        assert journalled["state"] == "queued" and "interrupted" not in journalled
        assert (corpus / f"{job['doc_id']}.txt").is_file()
    with serving(index, elsewhere, tmp_path) as (base, _, _):
        assert wait_for(lambda: states(base)[job["doc_id"]]["state"] == "ready", timeout=240)
    assert (corpus / f"{job['doc_id']}.txt").is_file()


def test_reader_processes_die_with_a_killed_server(papers, tmp_path):
    corpus, index = papers
    with serving(index, tmp_path, tmp_path) as (base, proc, log):
        job = upload(base, "nested.pdf", nested_pdf(8))  # drawings nested to take the reader many seconds
        wait_for(lambda: states(base)[job["doc_id"]]["state"] == "indexing")
        readers = wait_for(lambda: [p for p in descendants(proc.pid) if p != proc.pid and len(descendants(p)) == 1
                                    and parent_of(p) != proc.pid])
        proc.kill()
        proc.wait()
        wait_for(lambda: not any(alive(p) for p in readers), timeout=5)
    assert "BrokenPipe" not in log.read_text()


def descendants(pid: int) -> list[int]:
    """The process and every process under it."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        found.append(p := todo.pop())
        todo += children.get(p, [])
    return found


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# --- a full disk ------------------------------------------------------------------------

@contextlib.contextmanager
def small_disk(folder: Path, size: str):
    """A tmpfs of `size` mounted at `folder`; skips where the machine does not allow it."""
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()}); the simulated ENOSPC tests stand in")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_qa_ingest_on_a_full_disk_says_so_in_one_line_and_leaves_no_partial_files(tmp_path, capsys):
    corpus = two_documents(tmp_path / "corpus")
    with small_disk(tmp_path / "index", "200k") as index:
        assert main(["ingest", "--corpus", str(corpus), "--index", str(index)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is full" in err and "Traceback" not in err
        assert sorted(p.name for p in index.iterdir()) == [".ingest.lock"]


def test_qa_ingest_on_a_full_disk_simulated(tmp_path, capsys, monkeypatch):
    import numpy as np

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", full)
    corpus, index = two_documents(tmp_path / "corpus"), tmp_path / "index"
    assert main(["ingest", "--corpus", str(corpus), "--index", str(index)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is full" in err and "Traceback" not in err
    assert sorted(p.name for p in index.iterdir()) == [".ingest.lock"]


def test_an_upload_waits_out_a_full_index_disk_and_is_indexed_once_there_is_room(tmp_path, encoder, reader,
                                                                                   monkeypatch):
    import qa.indexer

    monkeypatch.setattr(qa.indexer, "RETRY_SECONDS", 0.5)
    corpus = two_documents(tmp_path / "corpus")
    built = tmp_path / "built"
    build_index(Config(corpus_dir=str(corpus), index_dir=str(built)), encoder)
    size = sum(p.stat().st_size for p in built.rglob("*") if p.is_file())
    with small_disk(tmp_path / "index", f"{size * 3 // 2 // 1024}k") as index:
        shutil.copytree(built, index, dirs_exist_ok=True)
        config = Config(index_dir=str(index), api_token=TOKEN, rate_limit_per_minute=0, max_upload_bytes=400_000)
        client = create_app(config, QA.load(Config(corpus_dir=str(corpus), index_dir=str(index)), encoder,
                                            reader)).test_client()
        reply = client.post("/api/documents", headers=AUTH, content_type="multipart/form-data",
                            data={"file": [(io.BytesIO(prose(10)), "wards.txt")]})
        [job] = reply.get_json()["documents"]

        def listed():
            return {d["doc_id"]: d for d in client.get("/api/documents").get_json()["documents"]}[job["doc_id"]]

        waiting = wait_for(lambda: "full" in listed().get("reason", "") and listed())
        assert waiting["state"] in {"queued", "indexing"} and "waiting" in waiting["reason"]
        assert (corpus / f"{job['doc_id']}.txt").is_file()
        subprocess.run(["mount", "-o", "remount,size=64m", str(index)], check=True)  # room made
        wait_for(lambda: listed()["state"] == "ready", timeout=120)
        assert (corpus / f"{job['doc_id']}.txt").is_file()


def test_a_full_corpus_disk_refuses_the_upload_and_leaves_nothing_behind(tmp_path, encoder, reader):
    corpus = two_documents(tmp_path / "corpus")
    config = Config(corpus_dir=str(corpus), index_dir=str(tmp_path / "index"), api_token=TOKEN,
                    rate_limit_per_minute=0, max_upload_bytes=400_000)
    build_index(config, encoder)
    with small_disk(corpus / "uploads", "64k") as uploads:
        client = create_app(config, QA.load(config, encoder, reader)).test_client()
        reply = client.post("/api/documents", headers=AUTH, content_type="multipart/form-data",
                            data={"file": [(io.BytesIO(prose(100)), "wards.txt")]})
        assert reply.status_code == 500 and reply.get_json()["error"]["code"] == "storage_error"
        assert "disk has room" in reply.get_json()["error"]["message"]
        assert sorted(p.name for p in uploads.iterdir()) == [JOURNAL]
        assert json.loads((uploads / JOURNAL).read_text()) == []
        assert all(d["state"] == "ready" for d in client.get("/api/documents").get_json()["documents"])


# --- leftovers ------------------------------------------------------------------------------

def test_what_a_killed_upload_left_is_tidied_at_the_next_start(papers, encoder, reader):
    corpus, index = papers
    uploads = corpus / "uploads"
    uploads.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (uploads / f"0123456789abcdef.txt.{dead.pid}.part").write_bytes(b"half a fi")  # kill -9 mid-POST
    (uploads / "0123456789abcdef.meta.json").write_text('{"filename": "half.txt"}')
    (uploads / f"{JOURNAL}.{dead.pid}.part").write_text("[")
    mine = uploads / f"fedcba9876543210.txt.{os.getpid()}.part"  # a live writer's: left alone
    mine.write_bytes(b"being written")
    # A job journalled before its file was stored, by a server killed in between.
    (uploads / JOURNAL).write_text(json.dumps([{"doc_id": "uploads/0123456789abcdef", "state": "queued",
                                                "source": "uploads/0123456789abcdef.txt", "filename": "half.txt"}]))
    config = Config(index_dir=str(index), api_token=TOKEN)
    client = create_app(config, QA.load(Config(corpus_dir=str(corpus), index_dir=str(index)), encoder,
                                        reader)).test_client()
    assert sorted(p.name for p in uploads.iterdir()) == sorted([JOURNAL, mine.name])
    assert json.loads((uploads / JOURNAL).read_text()) == []
    assert "uploads/0123456789abcdef" not in {d["doc_id"] for d in client.get("/api/documents").get_json()["documents"]}


# --- removals and uploads settle consistently --------------------------------------------------

def test_removing_everything_while_an_upload_is_pending_keeps_the_last_ready_document(papers, encoder, reader,
                                                                                    monkeypatch):
    import qa.indexer

    corpus, index = papers
    gate, retried, real = threading.Event(), threading.Event(), qa.indexer.build_index
    calls = []

    def slow(*args, **kwargs):  # the upload's build waits until the removals are in
        gate.wait(60)
        calls.append(1)
        if len(calls) == 1:
            raise OSError(28, "No space left on device")  # and the first build fails as a whole
        retried.wait(60)  # the retry waits until the test has looked
        return real(*args, **kwargs)

    monkeypatch.setattr(qa.indexer, "build_index", slow)
    # The removal says "waiting" only until the retry starts: 0.5 s was once missed by the
    # polls below on a loaded machine (the retry ran, then the removal was done and gone).
    monkeypatch.setattr(qa.indexer, "RETRY_SECONDS", 3.0)
    config = Config(index_dir=str(index), api_token=TOKEN, rate_limit_per_minute=0)
    client = create_app(config, QA.load(Config(corpus_dir=str(corpus), index_dir=str(index)), encoder,
                                        reader)).test_client()
    ready = sorted(d["doc_id"] for d in client.get("/api/documents").get_json()["documents"])
    job = client.post("/api/documents", headers=AUTH, content_type="multipart/form-data",
                      data={"file": [(io.BytesIO(b"# Heron\n\nThe Heron Fund pays two wardens.\n"), "heron.md")]}
                      ).get_json()["documents"][0]
    assert client.delete(f"/api/documents/{ready[0]}", headers=AUTH).status_code == 202
    last = client.delete(f"/api/documents/{ready[1]}", headers=AUTH)
    assert last.status_code == 409, "a pending upload is not a document yet; a pending removal is gone already"
    gate.set()

    def listed():
        return {d["doc_id"]: d for d in client.get("/api/documents").get_json()["documents"]}

    # While the build fails, the removal says so, its file is still there and it is still answered.
    waiting = wait_for(lambda: "waiting" in listed()[ready[0]].get("reason", "") and listed())
    assert waiting[ready[0]]["state"] == "removing" and (corpus / f"{ready[0]}.txt").is_file()
    assert client.get(f"/api/documents/{ready[0]}").status_code == 200
    retried.set()
    wait_for(lambda: all(d["state"] == "ready" for d in listed().values()))
    docs = listed()
    assert set(docs) == {ready[1], job["doc_id"]}
    assert not (corpus / f"{ready[0]}.txt").exists() and (corpus / f"{ready[1]}.txt").is_file()
    assert client.get(f"/api/documents/{ready[0]}").status_code == 404
    # And the next upload keeps everything that is there.
    client.post("/api/documents", headers=AUTH, content_type="multipart/form-data",
                data={"file": [(io.BytesIO(b"# Otter\n\nThe Otter Trust funds a warden.\n"), "otter.md")]})
    wait_for(lambda: len(listed()) == 3 and all(d["state"] == "ready" for d in listed().values()))
    assert ready[1] in listed() and job["doc_id"] in listed()


def test_a_removing_document_is_listed_by_its_own_name(papers, encoder, reader, monkeypatch):
    import qa.indexer

    corpus, index = papers
    gate, real = threading.Event(), qa.indexer.build_index
    monkeypatch.setattr(qa.indexer, "build_index", lambda *a, **k: gate.wait(60) and real(*a, **k))
    config = Config(index_dir=str(index), api_token=TOKEN, rate_limit_per_minute=0)
    client = create_app(config, QA.load(Config(corpus_dir=str(corpus), index_dir=str(index)), encoder,
                                        reader)).test_client()
    gate.set()
    job = client.post("/api/documents", headers=AUTH, content_type="multipart/form-data",
                      data={"file": [(io.BytesIO(b"# Heron\n\nThe Heron Fund pays two wardens.\n"), "Heron notes.md")]}
                      ).get_json()["documents"][0]
    wait_for(lambda: all(d["state"] == "ready" for d in client.get("/api/documents").get_json()["documents"]))
    gate.clear()
    assert client.delete(f"/api/documents/{job['doc_id']}", headers=AUTH).status_code == 202
    [row] = [d for d in client.get("/api/documents").get_json()["documents"] if d["doc_id"] == job["doc_id"]]
    assert row["state"] == "removing" and row["filename"] == "Heron notes.md"
    gate.set()


def test_an_upload_to_a_corpus_folder_that_went_away_is_refused_and_the_folder_not_made_again(papers, encoder, reader,
                                                                                             tmp_path):
    corpus, index = papers
    config = Config(index_dir=str(index), api_token=TOKEN, rate_limit_per_minute=0)
    client = create_app(config, QA.load(Config(corpus_dir=str(corpus), index_dir=str(index)), encoder,
                                        reader)).test_client()
    shutil.move(corpus, tmp_path / "moved")  # the disk it was on unmounted
    reply = client.post("/api/documents", headers=AUTH, content_type="multipart/form-data",
                        data={"file": [(io.BytesIO(b"# Heron\n\nThe Heron Fund pays two wardens.\n"), "heron.md")]})
    assert reply.status_code == 409 and reply.get_json()["error"]["code"] == "corpus_missing"
    assert str(corpus) in reply.get_json()["error"]["message"] and "--new-corpus" in reply.get_json()["error"]["message"]
    assert not corpus.exists()
