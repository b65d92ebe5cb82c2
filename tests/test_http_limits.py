"""The door of a real `qa serve` (qa.http_limits): each route's body limit applied from the
headers, before the body is read; waitress's own replies in JSON with the security headers;
a refusal read by every client, however much body it goes on sending, and none of it spooled."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import httpx2
import pytest
import requests

from conftest import indexed_corpus, running_server

TOKEN = "door-token"
MAX_BODY, MAX_UPLOAD, MAX_FILES = 65536, 200_000, 2


@pytest.fixture(scope="module")
def server(tmp_path_factory, encoder):
    root = tmp_path_factory.mktemp("door")
    config = indexed_corpus(root, encoder, "000_203956cee7abdc96.txt")
    # A write killed mid-way left files the manifest does not name; the server's start removes them.
    (root / "index" / "dense-20260101000000abcdef.faiss").write_bytes(b"x" * 1000)
    # Its own temporary folder, which nothing refused may reach (waitress spools large bodies there).
    (root / "tmp").mkdir()
    env = {"QA_API_TOKEN": TOKEN, "QA_MAX_UPLOAD_BYTES": str(MAX_UPLOAD), "QA_MAX_UPLOAD_FILES": str(MAX_FILES),
           "QA_CORPUS_DIR": str(root / "corpus"), "TMPDIR": str(root / "tmp")}
    with running_server(config, root, env=env) as (base, proc):
        yield urlparse(base), root, proc


def exchange(url, head: str, body: bytes = b"", wait: float = 10) -> tuple[int, dict, dict | None, float]:
    """Send raw request headers (and at most `body`), then read the reply without sending
    more: its status, headers, JSON body, and how long it took."""
    started = time.monotonic()
    with socket.create_connection((url.hostname, url.port), timeout=wait) as s:
        s.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head_part, _, payload = data.partition(b"\r\n\r\n")
    lines = head_part.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, json.loads(payload) if payload else None, time.monotonic() - started


def post(path: str, length: int, extra: str = "") -> str:
    return (f"POST {path} HTTP/1.1\nHost: x\nContent-Type: application/json\nContent-Length: {length}\n"
            f"{extra}Connection: close\n")


def assert_json_error(status, headers, body, want: int, code: str):
    assert status == want and headers["content-type"] == "application/json", (status, headers, body)
    assert body["error"]["code"] == code and body["error"]["message"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"


def test_a_question_announcing_300_mb_is_refused_before_its_body_is_sent(server):
    url, *_ = server
    status, headers, body, took = exchange(url, post("/api/ask", 300_000_000))
    assert_json_error(status, headers, body, 413, "too_large")
    assert f"{MAX_BODY:,} bytes" in body["error"]["message"] and took < 5


def test_an_upload_without_the_token_is_refused_before_its_body_and_with_it_may_be_larger(server):
    url, *_ = server
    status, headers, body, _ = exchange(url, post("/api/documents", 150_000))
    assert_json_error(status, headers, body, 401, "unauthorized")
    status, headers, body, _ = exchange(url, post("/api/documents", 150_000, "Authorization: Bearer wrong\n"))
    assert_json_error(status, headers, body, 401, "unauthorized")
    # With the token, 150 KB is within the upload limit: the door lets it in (the body is not
    # sent here, so the reply is the connection closing or the app's own refusal, never 413).
    too_big = MAX_UPLOAD * MAX_FILES + 100_000
    status, headers, body, _ = exchange(url, post("/api/documents", too_big, f"Authorization: Bearer {TOKEN}\n"))
    assert_json_error(status, headers, body, 413, "too_large")


def test_a_chunked_body_is_cut_off_at_its_routes_limit(server):
    url, *_ = server
    head = ("POST /api/ask HTTP/1.1\nHost: x\nContent-Type: application/json\nTransfer-Encoding: chunked\n"
            "Connection: close\n")
    # A chunk that says 1 MB follows, and a few bytes past the limit of it are sent: all of
    # them are read (so the server's close is clean), and the reply comes without the rest.
    body = b"F4240\r\n" + b"x" * (MAX_BODY + 10)
    status, headers, reply, _ = exchange(url, head, body)
    assert_json_error(status, headers, reply, 413, "too_large")


def test_waitresss_own_replies_are_json_with_the_security_headers(server):
    url, *_ = server
    status, headers, body, _ = exchange(url, "GARBAGE\n")
    assert_json_error(status, headers, body, 400, "bad_request")
    huge_header = "X-Filler: " + "y" * 262_144 + "\n"  # just past waitress's limit, so all of it is read
    status, headers, body, _ = exchange(url, "GET /api/health HTTP/1.1\nHost: x\n" + huge_header)
    assert_json_error(status, headers, body, 431, "headers_too_large")


def test_a_server_start_removes_what_a_killed_write_left(server):
    _, root, _ = server
    assert not (root / "index" / "dense-20260101000000abcdef.faiss").exists()
    assert (root / "index" / "manifest.json").is_file()


# A refusal from the headers (413, 401) comes before the body; the server then reads and
# discards what the client goes on sending (for a while), so the client, which sends its
# whole body before it reads, still reads the JSON error; and none of that body is kept.
QUESTION_8_MB = json.dumps({"question": "x" * 8_000_000}).encode()
HUGE = 300_000_000
JSON_HEADERS = {"Content-Type": "application/json"}


def zeros(total: int = HUGE, piece: int = 1 << 20):
    """`total` bytes of body made as they are sent, never held whole."""
    block = bytes(piece)
    for _ in range(total // piece):
        yield block
    yield bytes(total % piece)


class ZeroFile:
    """A file object of `total` zero bytes (urllib sends a file object as it reads it)."""

    def __init__(self, total: int = HUGE):
        self.left = total

    def read(self, size: int = -1) -> bytes:
        n = self.left if size < 0 else min(size, self.left)
        self.left -= n
        return bytes(n)


def by_urllib(base: str, path: str, huge: bool) -> tuple[int, dict]:
    body, headers = (ZeroFile(), {"Content-Length": str(HUGE)}) if huge else (QUESTION_8_MB, JSON_HEADERS)
    request = urllib.request.Request(base + path, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as refused:
        return refused.code, json.load(refused)["error"]


def by_requests(base: str, path: str, huge: bool) -> tuple[int, dict]:
    # A generator is sent chunked.
    reply = requests.post(base + path, data=zeros() if huge else QUESTION_8_MB, headers=JSON_HEADERS, timeout=60)
    return reply.status_code, reply.json().get("error")


def by_httpx(base: str, path: str, huge: bool) -> tuple[int, dict]:
    # An iterator with its length announced is sent as it is made.
    headers = {"Content-Length": str(HUGE)} if huge else JSON_HEADERS
    reply = httpx2.post(base + path, content=zeros() if huge else QUESTION_8_MB, headers=headers, timeout=60)
    return reply.status_code, reply.json().get("error")


def by_openai(base: str, path: str, huge: bool) -> tuple[int, dict]:
    import openai  # here, not at the top: a second of import for every xdist worker otherwise

    client = openai.OpenAI(base_url=base, api_key="not-the-token", timeout=60, max_retries=0)
    try:
        if huge:
            client.post(path, content=zeros(), cast_to=object,
                        options={"headers": {"Content-Type": "application/octet-stream"}})
        else:
            client.post(path, body={"question": "x" * 8_000_000}, cast_to=object)
    except openai.APIStatusError as refused:
        # The error object carries the status and the server's JSON error, and says both.
        assert str(refused.status_code) in str(refused) and refused.body["message"] in str(refused)
        return refused.status_code, refused.body
    return 200, {}


def spool_mark(server) -> tuple[int, set]:
    """What the server process has written to files so far (Linux /proc: sockets are not
    counted) and what its temporary folder holds."""
    _, root, proc = server
    counts = dict(line.split(": ") for line in Path(f"/proc/{proc.pid}/io").read_text().splitlines())
    return int(counts["wchar"]), set((root / "tmp").iterdir())


def each_client(server, path: str, huge: bool) -> dict[str, object]:
    """Each client's status and error code, or the exception it met instead; and that none of
    the bodies was kept: waitress spools a body past 512 KB to an unnamed temporary file, so
    the server's writes are counted too."""
    url, *_ = server
    outcomes = {}
    for client in (by_urllib, by_requests, by_httpx, by_openai):
        (wrote, files), started = spool_mark(server), time.monotonic()
        try:
            status, error = client(f"http://{url.netloc}", path, huge)
            outcomes[client.__name__] = (status, error.get("code"))
        except Exception as exc:  # noqa: BLE001 - the outcome is what is compared
            outcomes[client.__name__] = repr(exc)[:300]
        now_wrote, now_files = spool_mark(server)
        assert now_wrote - wrote < 4_000_000 and now_files == files, (client.__name__, now_wrote - wrote, now_files)
        print(f"{client.__name__} {path}: {outcomes[client.__name__]} in {time.monotonic() - started:.1f} s")
    return outcomes


def test_every_client_sending_8_mb_to_ask_reads_the_json_413(server):
    outcomes = each_client(server, "/api/ask", huge=False)
    assert outcomes == dict.fromkeys(["by_urllib", "by_requests", "by_httpx", "by_openai"], (413, "too_large"))


def test_every_client_sending_300_mb_to_documents_without_the_token_reads_the_json_401(server):
    outcomes = each_client(server, "/api/documents", huge=True)
    assert outcomes == dict.fromkeys(["by_urllib", "by_requests", "by_httpx", "by_openai"], (401, "unauthorized"))


@pytest.mark.parametrize(("path", "want"), [("/api/ask", 413), ("/api/documents", 401)])
def test_expect_100_continue_gets_the_refusal_at_once_and_never_100_continue(server, path, want):
    url, *_ = server
    wrote, files = spool_mark(server)
    with socket.create_connection((url.hostname, url.port), timeout=5) as s:
        s.sendall(post(path, HUGE, "Expect: 100-continue\n").replace("\n", "\r\n").encode() + b"\r\n")
        reply = s.recv(65536)
        assert reply.startswith(f"HTTP/1.1 {want} ".encode()) and b"100 Continue" not in reply, reply[:200]
        # A client that sends its body anyway is read to the end (and it is not kept).
        s.settimeout(30)
        for block in zeros():
            s.sendall(block)
        while chunk := s.recv(65536):
            reply += chunk
    assert b"100 Continue" not in reply and reply.count(b"HTTP/1.1") == 1
    now_wrote, now_files = spool_mark(server)
    assert now_wrote - wrote < 4_000_000 and now_files == files
