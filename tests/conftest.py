"""Shared fixtures: the real model and a real index over the default corpus, built once per run."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.config import Config
from qa.embed import load_encoder
from qa.index import build_index
from qa.pipeline import QA

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"


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

    def count_tokens(self, text):
        return self.inner.count_tokens(text)


@pytest.fixture(scope="session")
def encoder():
    return load_encoder(Config())


@pytest.fixture(scope="session")
def corpus_config(tmp_path_factory) -> Config:
    return Config(corpus_dir=str(CORPUS), index_dir=str(tmp_path_factory.mktemp("index")))


@pytest.fixture(scope="session")
def qa(corpus_config, encoder) -> QA:
    build_index(corpus_config, encoder)
    return QA.load(corpus_config, encoder)
