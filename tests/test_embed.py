import numpy as np
import pytest

from qa.config import DEFAULT_MODEL_SHA256, Config
from qa.embed import load_encoder, resolve_model_path, weights_hash
from qa.types import ConfigError


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
    assert sum(calls) == 150 and len(calls) == 3  # progress is reported per batch of 64


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
