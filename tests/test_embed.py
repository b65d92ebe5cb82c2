import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from qa.config import DEFAULT_MODEL_SHA256, Config
from qa.embed import load_encoder, resolve_model_path
from qa.modelfiles import checked_hash, weights_hash
from qa.types import ConfigError

from conftest import THREADS


def test_packaged_model_matches_its_pinned_hash(encoder):
    assert weights_hash(resolve_model_path("all-MiniLM-L6-v2")) == DEFAULT_MODEL_SHA256
    assert encoder.weights_sha256 == DEFAULT_MODEL_SHA256
    assert encoder.dim == 384 and encoder.max_tokens == 254


def test_wrong_hash_and_missing_model_are_refused():
    with pytest.raises(ConfigError, match="sha256.*not the expected"):
        load_encoder(Config(model_sha256="0" * 64))
    with pytest.raises(ConfigError, match="never downloaded"):
        load_encoder(Config(model="sentence-transformers/some-other-model"))


def test_vectors_are_normalised_and_batched(encoder):
    calls = []
    vectors = encoder.encode([f"text number {i}" for i in range(150)], calls.append)
    assert vectors.shape == (150, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert sum(calls) == 150 and len(calls) == 10  # progress is reported per batch of 16


def test_token_vectors_come_with_the_sentence_vector_and_true_offsets(encoder):
    texts = ["Who founded the Liverpool School of Tropical Medicine?", "It was established in 1898."]
    vectors, tokens = encoder.encode_tokens(texts)
    assert np.allclose(vectors, encoder.encode(texts), atol=1e-5)  # one pass serves both uses
    for text, t in zip(texts, tokens):
        assert t.vectors.shape == (len(t.content), 384) == (len(t.spans), 384)
        assert np.allclose(np.linalg.norm(t.vectors, axis=1), 1.0, atol=1e-5)
        words = {text[a:b].lower() for (a, b), c in zip(t.spans, t.content) if c}
        assert not words & {"who", "the", "of", "it", "was", "in", "?", "."}
    assert {"founded", "liverpool", "tropical"} <= {texts[0][a:b].lower() for a, b in tokens[0].spans}



class _OverlapSpy:
    """Stands in for the Rust tokenizer and records how many calls ever ran at once."""

    def __init__(self, inner):
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "active", 0)
        object.__setattr__(self, "most", 0)

    def __getattr__(self, name):
        value = getattr(self._inner, name)
        if not callable(value):
            return value

        def call(*args, **kwargs):
            object.__setattr__(self, "active", self.active + 1)
            object.__setattr__(self, "most", max(self.most, self.active))
            time.sleep(0.002)  # hand the GIL to another thread, as a long batch would
            try:
                return value(*args, **kwargs)
            finally:
                object.__setattr__(self, "active", self.active - 1)
        return call

    def __setattr__(self, name, value):
        setattr(self._inner, name, value)


def _concurrently(encoder, texts, serial) -> bool:
    def work(i):
        if i % 3 == 0:
            return encoder.count_tokens(texts[i % len(texts)]) > 0
        vectors = encoder.encode(texts) if i % 3 == 1 else encoder.encode_tokens(texts)[0]
        return np.allclose(vectors, serial, atol=1e-5)

    with ThreadPoolExecutor(4) as pool:
        return all(pool.map(work, range(24)))


def test_concurrent_callers_never_share_the_tokenizer(torch_encoder, monkeypatch):
    # `qa serve` answers requests on several threads that share one encoder, and a fast
    # tokenizer keeps its padding and truncation settings in shared state: an unguarded
    # race gave ragged batches ("expected sequence of length 45 at dim 1 (got 43)").
    encoder = torch_encoder
    texts = [" ".join(["word"] * n) + " end." for n in range(1, 30, 4)]
    serial = encoder.encode(texts)
    tokenizer = encoder._model.tokenizer
    spy = _OverlapSpy(tokenizer._tokenizer)
    monkeypatch.setattr(tokenizer, "_tokenizer", spy)
    assert _concurrently(encoder, texts, serial)
    assert spy.most == 1


def test_onnx_encoder_is_safe_to_share_between_threads():
    # Its tokenizer's settings are fixed at load and batches are padded outside it. Loaded
    # here: the session's encoder keeps what it has embedded, and would not run these again.
    encoder = load_encoder(Config(**THREADS))
    texts = [" ".join(["word"] * n) + " end." for n in range(1, 30, 4)]
    assert _concurrently(encoder, texts, encoder.encode(texts))


def test_weights_hash_is_memoised_until_the_file_changes(tmp_path, monkeypatch):
    folder, memo = tmp_path / "model", tmp_path / "cache" / "verified.json"
    folder.mkdir()
    weights = folder / "model.onnx"
    weights.write_bytes(b"abc" * 1000)
    first = weights_hash(folder, memo)
    hashed = []
    real = hashlib.file_digest
    monkeypatch.setattr(hashlib, "file_digest", lambda *args: hashed.append(1) or real(*args))
    assert weights_hash(folder, memo) == first and not hashed  # same file: no second hash
    before = weights.stat().st_mtime_ns
    weights.write_bytes(b"abd" * 1000)  # same size, other content
    os.utime(weights, ns=(before + 10**9, before + 10**9))
    with pytest.raises(ConfigError, match="not the expected"):
        checked_hash(folder, first, "the test model", "Replace it.", memo)
    assert hashed
