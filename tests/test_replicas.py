"""Stateless replicas on one search engine behind HAProxy: asked through the balancer,
documents added and removed through any replica, every replica following within seconds,
and no request failing while a replica is stopped and started."""

from __future__ import annotations

import json
import shutil
import threading
import time
import urllib.error
import urllib.request

from qa.config import Config
from qa.index import build_index
from qa.lab.replicas import balancer, replica, stop

from conftest import CORPUS, engine_server, free_port, post_json

TOKEN = "replica-token"
FACT = "The Heron Trust funds river surveys on the Mersey."


def _upload(base: str, name: str, text: str) -> dict:
    boundary = "qa-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: text/plain\r\n\r\n{text}\r\n--{boundary}--\r\n").encode()
    req = urllib.request.Request(f"{base}/api/documents", data=body, method="POST", headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}", "Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def _remove(base: str, doc_id: str) -> None:
    req = urllib.request.Request(f"{base}/api/documents/{doc_id}", method="DELETE",
                                 headers={"Authorization": f"Bearer {TOKEN}"})
    urllib.request.urlopen(req, timeout=30).close()


def _until(check, seconds: float = 60) -> float:
    """Seconds until `check()` holds (it fails the test past `seconds`)."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, "the replicas did not follow in time"
        time.sleep(0.2)
    return time.monotonic() - started


def _says(base: str, words: str) -> bool:
    return words in post_json(f"{base}/api/ask", {"question": "What does the Heron Trust fund?"})["answer"]


def test_replicas_behind_haproxy_answer_from_one_engine(encoder, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    with engine_server(tmp_path / "engine") as uri:
        build_index(Config(corpus_dir=str(corpus), index_dir=str(tmp_path / "index"), store=uri), encoder)
        env = {"QA_STORE": uri, "QA_CORPUS_DIR": str(corpus), "QA_INDEX_DIR": str(tmp_path / "index"),
               "QA_API_TOKEN": TOKEN, "QA_INDEX_CHECK_SECONDS": "0.2", "QA_RATE_LIMIT_PER_MINUTE": "0"}
        ports = [free_port(), free_port()]
        with replica(ports[0], tmp_path / "r", env) as (a, _), replica(ports[1], tmp_path / "r", env) as (b, b_proc), \
                balancer([a, b], free_port(), tmp_path / "lb") as lb:
            question = {"question": "Who chairs the Liverpool Health Partners board?"}
            direct = post_json(f"{a}/api/ask", question)
            through = [post_json(f"{lb}/api/ask", question) for _ in range(4)]
            assert all(t["answer"] == direct["answer"] and t["citations"] == direct["citations"] for t in through)
            assert not _says(lb, "river surveys")

            # Added through one replica, answered by the other within seconds.
            added = _upload(a, "heron.txt", f"Heron Trust\n\n{FACT}\n")["documents"][0]
            _until(lambda: _says(b, "river surveys"))
            assert _says(a, "river surveys") and _says(lb, "river surveys")
            # Removed through the other, gone from the first.
            _remove(b, added["doc_id"])
            _until(lambda: not _says(a, "river surveys"))

            # A replica stopped and started again while questions keep coming through the balancer.
            failures, answered, done = [], [0], threading.Event()

            def ask_on():
                while not done.is_set():
                    try:
                        post_json(f"{lb}/api/ask", question)
                        answered[0] += 1
                    except (urllib.error.URLError, OSError, ValueError) as exc:
                        failures.append(repr(exc))

            askers = [threading.Thread(target=ask_on) for _ in range(3)]
            for t in askers:
                t.start()
            try:
                time.sleep(1)
                stop(b_proc)  # with questions in flight on it
                time.sleep(1)
                with replica(ports[1], tmp_path / "r", env):  # started again on its port, and stopped again
                    time.sleep(2)
                time.sleep(1)
            finally:
                done.set()
                for t in askers:
                    t.join()
            assert failures == [] and answered[0] > 10
