"""The scoring model: what the reader's logits and the rest of the stack know about each
candidate sentence, fused by learned weights into a ranking and a confidence.

The weights are data (`reader_model.json`), fitted by `qa fit` (`qa.lab.fit`); this module
only computes the features and applies them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .read import Span
from .types import ConfigError

# Per candidate sentence (`FUSION_FEATURES`), the fused score ranks the candidates; per
# question (`ABSTAIN_FEATURES`, of the sentence that would lead), a logistic model gives
# the probability that the lead holds the answer: that is `confidence`, and the bot
# abstains below `abstain_threshold`. Both were fitted by `qa fit` on the SQuAD fitting
# split (answerable, unanswerable and off-corpus questions) and checked on the others;
# see docs/evaluation.md.

SENTENCE_FEATURES = ("sentence_cosine", "chunk_cosine", "words", "previous_words", "aligned_words")
# The linear score that picks the reader's candidates: fitted on the tune half of SQuAD 2.0
# dev (docs/evaluation.md).
SENTENCE_WEIGHTS = np.array([0.238, 0.176, 0.35, 0.121, 0.335], dtype=np.float32)
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
        return float(sigmoid(row @ self.abstain[:-1] + self.abstain[-1]))


def lead_fails_a_check(fused: np.ndarray, checks: np.ndarray) -> bool:
    return not checks[int(np.argmax(fused))].all()


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))
