"""A running `qa serve` picks up the index a new `qa ingest` commits: no restart, no failed
request, each answer naming the index version that served it; a broken new index is
refused while the old one keeps serving."""

import json
import shutil
import threading
import urllib.error
import urllib.request
from pathlib import Path

from qa.config import Config
from qa.files import read_manifest
from qa.index import build_index

from conftest import CORPUS, post_json, running_server

NEW_DOC = ("Kestrel Valley Health Alliance\n\nThe Kestrel Valley Health Alliance was founded in 2031 by "
           "the Moorfield Institute and three rural hospitals.\n")


def _version(base: str) -> str:
    with urllib.request.urlopen(f"{base}/api/health", timeout=10) as r:
        return json.load(r)["index_version"]


def _wait_for_new_version(base: str, old: str, seconds: float = 60) -> str:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (version := _version(base)) != old:
            return version
        time.sleep(0.2)
    raise AssertionError(f"the server still serves index {old} after {seconds} s")


def test_a_running_server_swaps_in_a_new_index_without_failing_a_request(tmp_path, encoder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("000_203956cee7abdc96", "001_576bfebf929a5f1e"):
        shutil.copy(CORPUS / f"{name}.txt", corpus)
    config = Config(corpus_dir=str(corpus), index_dir=str(tmp_path / "index"))
    build_index(config, encoder)
    first = read_manifest(config.index_dir)["generation"]

    with running_server(config, tmp_path, {"QA_INDEX_CHECK_SECONDS": "0.1"}) as (base, _):
        before = post_json(f"{base}/api/ask", {"question": "Who founded the Kestrel Valley Health Alliance?"})
        assert before["index_version"] == first and before["abstained"]

        failures, versions, stop = [], set(), threading.Event()

        def keep_asking():
            while not stop.is_set():
                try:
                    versions.add(post_json(f"{base}/api/ask", {"question": "What is Liverpool Health Partners?"})["index_version"])
                except (urllib.error.URLError, OSError, KeyError) as exc:
                    failures.append(repr(exc))

        asker = threading.Thread(target=keep_asking)
        asker.start()
        try:
            (corpus / "kestrel.txt").write_text(NEW_DOC, encoding="utf-8")
            build_index(config, encoder)  # the real ingest, while the server answers
            second = _wait_for_new_version(base, first)
        finally:
            stop.set()
            asker.join()
        assert not failures
        assert second == read_manifest(config.index_dir)["generation"] != first
        assert versions <= {first, second}
        after = post_json(f"{base}/api/ask", {"question": "Who founded the Kestrel Valley Health Alliance?"})
        assert after["index_version"] == second and not after["abstained"]
        assert "Moorfield Institute" in after["answer"]

        # A new index that cannot be loaded is refused; the one in use keeps answering.
        (corpus / "kestrel.txt").write_text(NEW_DOC.replace("2031", "2032"), encoding="utf-8")
        build_index(config, encoder)
        manifest = read_manifest(config.index_dir)
        dense = Path(config.index_dir) / manifest["files"]["dense"]
        dense.write_bytes(dense.read_bytes()[:100])
        import time

        time.sleep(2)  # several checks
        still = post_json(f"{base}/api/ask", {"question": "Who founded the Kestrel Valley Health Alliance?"})
        assert still["index_version"] == second and "2031" in still["answer"]
        assert "cannot be loaded" in "".join(p.read_text() for p in tmp_path.glob("replica-*.log"))
