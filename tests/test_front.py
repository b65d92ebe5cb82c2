"""The door of a real `qa serve` (qa.front): each route's body limit applied from the
headers, before the body is read; waitress's own replies in JSON with the security headers."""

from __future__ import annotations

import json
import shutil
import socket
import time
from urllib.parse import urlparse

import pytest

from conftest import CORPUS, running_server
from qa.config import Config
from qa.index import build_index

TOKEN = "door-token"
MAX_BODY, MAX_UPLOAD, MAX_FILES = 65536, 200_000, 2


@pytest.fixture(scope="module")
def server(tmp_path_factory, encoder):
    root = tmp_path_factory.mktemp("door")
    (root / "corpus").mkdir()
    shutil.copy(CORPUS / "000_203956cee7abdc96.txt", root / "corpus")
    config = Config(corpus_dir=str(root / "corpus"), index_dir=str(root / "index"))
    build_index(config, encoder)
    # A write killed mid-way left files the manifest does not name; the server's start removes them.
    (root / "index" / "dense-20260101000000abcdef.faiss").write_bytes(b"x" * 1000)
    env = {"QA_API_TOKEN": TOKEN, "QA_MAX_UPLOAD_BYTES": str(MAX_UPLOAD), "QA_MAX_UPLOAD_FILES": str(MAX_FILES),
           "QA_CORPUS_DIR": str(root / "corpus")}
    with running_server(config, root, env=env) as (base, _):
        yield urlparse(base), root


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
    url, _ = server
    status, headers, body, took = exchange(url, post("/api/ask", 300_000_000))
    assert_json_error(status, headers, body, 413, "too_large")
    assert f"{MAX_BODY:,} bytes" in body["error"]["message"] and took < 5


def test_an_upload_without_the_token_is_refused_before_its_body_and_with_it_may_be_larger(server):
    url, _ = server
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
    url, _ = server
    head = ("POST /api/ask HTTP/1.1\nHost: x\nContent-Type: application/json\nTransfer-Encoding: chunked\n"
            "Connection: close\n")
    # A chunk that says 1 MB follows, and a few bytes past the limit of it are sent: all of
    # them are read (so the server's close is clean), and the reply comes without the rest.
    body = b"F4240\r\n" + b"x" * (MAX_BODY + 10)
    status, headers, reply, _ = exchange(url, head, body)
    assert_json_error(status, headers, reply, 413, "too_large")


def test_waitresss_own_replies_are_json_with_the_security_headers(server):
    url, _ = server
    status, headers, body, _ = exchange(url, "GARBAGE\n")
    assert_json_error(status, headers, body, 400, "bad_request")
    huge_header = "X-Filler: " + "y" * 262_144 + "\n"  # just past waitress's limit, so all of it is read
    status, headers, body, _ = exchange(url, "GET /api/health HTTP/1.1\nHost: x\n" + huge_header)
    assert_json_error(status, headers, body, 431, "headers_too_large")


def test_a_server_start_removes_what_a_killed_write_left(server):
    _, root = server
    assert not (root / "index" / "dense-20260101000000abcdef.faiss").exists()
    assert (root / "index" / "manifest.json").is_file()
