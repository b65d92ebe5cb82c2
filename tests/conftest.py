"""Shared fixtures: the real model and a real index over the default corpus, built once per run."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from qa.config import Config
from qa.embed import load_encoder
from qa.index import build_index
from qa.lab.replicas import replica
from qa.pipeline import QA
from qa.read import load_reader

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"


def copy_documents(folder: Path, documents: int) -> list[str]:
    """The first `documents` of the default corpus copied into `folder` (made): their file names."""
    folder.mkdir(parents=True, exist_ok=True)
    names = sorted(p.name for p in CORPUS.iterdir() if p.suffix == ".txt")[:documents]
    for name in names:
        shutil.copy(CORPUS / name, folder / name)
    return names


class CountingEncoder:
    """The real encoder, counting the texts it is asked to embed."""

    def __init__(self, inner):
        self.inner = inner
        self.model_id, self.weights_sha256 = inner.model_id, inner.weights_sha256
        self.dim, self.max_tokens = inner.dim, inner.max_tokens
        self.encoded: list[str] = []

    def encode(self, texts, progress=None):
        self.encoded.extend(texts)
        return self.inner.encode(texts, progress)

    def encode_tokens(self, texts, progress=None):
        self.encoded.extend(texts)
        return self.inner.encode_tokens(texts, progress)

    def count_tokens(self, text):
        return self.inner.count_tokens(text)


@pytest.fixture(scope="session")
def encoder():
    return load_encoder(Config())


@pytest.fixture(scope="session")
def torch_encoder():
    return load_encoder(Config(encoder_runtime="torch"))


@pytest.fixture(scope="session")
def reader():
    return load_reader(Config())


@pytest.fixture(scope="session")
def msmarco_reader():
    """The MS MARCO cross-encoder as it ships, before `qa train` (still selectable)."""
    from qa.config import MSMARCO_READER

    return load_reader(Config(reader=MSMARCO_READER))


@pytest.fixture(scope="session")
def corpus_config(tmp_path_factory) -> Config:
    return Config(corpus_dir=str(CORPUS), index_dir=str(tmp_path_factory.mktemp("index")))


@pytest.fixture(scope="session")
def qa(corpus_config, encoder, reader) -> QA:
    build_index(corpus_config, encoder)
    return QA.load(corpus_config, encoder, reader)


# A document whose text looks like markup: the page must show it, never run it.
UNSAFE_DOC = (
    "Markup Safety Notice\n\n"
    "The Quantum Widget Board reviews markup such as <script>window.pwned = 1</script> and "
    "<img src=x onerror=\"window.pwned = 2\"> and <a href=\"javascript:window.pwned = 3\">links</a> in its documents.\n"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(tmp_path_factory, encoder):
    """`qa serve` as a user runs it, on a free loopback port, over the corpus plus an unsafe document."""
    root = tmp_path_factory.mktemp("live")
    corpus = root / "corpus"
    shutil.copytree(CORPUS, corpus)
    (corpus / "unsafe.txt").write_text(UNSAFE_DOC, encoding="utf-8")
    config = Config(corpus_dir=str(corpus), index_dir=str(root / "index"))
    build_index(config, encoder)

    with running_server(config, root) as (base, _):
        yield base


@contextlib.contextmanager
def running_server(config: Config, root: Path, env: dict | None = None, python: str = sys.executable):
    """`qa serve` on a free loopback port over `config.index_dir`, until the block ends:
    gives its base URL and its process (its log: `root`/replica-<port>.log). `python`: the
    interpreter it runs under."""
    with replica(free_port(), root, {"QA_INDEX_DIR": config.index_dir, **(env or {})}, python=python) as served:
        yield served


@contextlib.contextmanager
def engine_server(data: Path):
    """`bash scripts/engine DIR PORT` as a user runs it, until the block ends: gives the URI
    it printed as its last line once the server accepted connections."""
    proc = subprocess.Popen(["bash", str(ROOT / "scripts" / "engine"), str(data), str(free_port())],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    uri = proc.stdout.readline().strip()
    try:
        assert uri.startswith("http://"), proc.stderr.read()[-2000:]
        yield uri
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="session")
def engine_uri(tmp_path_factory):
    with engine_server(tmp_path_factory.mktemp("engine")) as uri:
        yield uri


def post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as r:
        return json.load(r)
