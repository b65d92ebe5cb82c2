"""The vocabulary every stage shares: documents, chunks, passages and answers.

All offsets are character offsets into `Document.text`, the stored text that the
API serves for a document id: `doc.text[start:end]` is always the quoted text.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np


class QAError(Exception):
    """An error whose message is written for the user: what went wrong and what to do."""

    code = "error"
    status = 500  # the HTTP status the API answers it with


class IndexMissingError(QAError):
    code = "index_missing"


class StaleIndexError(QAError):
    code = "index_stale"


class IndexBusyError(QAError):
    code = "index_busy"


class EmptyCorpusError(QAError):
    code = "empty_corpus"


class ConfigError(QAError):
    code = "bad_config"


class BadQuestion(QAError):
    code = "bad_question"
    status = 400


@dataclass(frozen=True)
class Document:
    doc_id: str
    title: str
    text: str
    source: str  # path relative to the corpus folder
    date: str | None = None  # ISO date (or year) the document gives for itself
    meta: dict = field(default_factory=dict)  # extra sidecar / front-matter fields
    # Spans that cleaning rules removed (page furniture): kept in the text so
    # offsets stay true to the source, but never indexed or quoted.
    masked: tuple[tuple[int, int], ...] = ()
    content_hash: str = ""
    pages: tuple[int, ...] = ()  # where each page starts in `text`, for sources that have pages (PDF)
    file_hash: str = ""  # of the file and what reading it depends on (`qa.ingest.file_hash`)

    def page_of(self, offset: int) -> int | None:
        """The 1-based page `offset` falls on, or None when the source has no pages."""
        return bisect.bisect_right(self.pages, offset) if self.pages else None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["masked"] = [list(m) for m in self.masked]
        d["pages"] = list(self.pages)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Document:
        return cls(**{**d, "masked": tuple(tuple(m) for m in d.get("masked", ())), "pages": tuple(d.get("pages", ()))})


@dataclass(frozen=True)
class Sentence:
    """One quotable unit (a sentence, a heading or a list item) of a document, with what
    the answer stage needs to know of its place there: worked out at ingest from its
    document alone (`qa.chunk.place_sentences`), so that answering needs no pass over the
    corpus and a store can hold them as fields. Sentences of one document are numbered
    consecutively, so `lead_in` and `items` are counts of sentences, not ids."""

    doc_id: str
    start: int
    end: int
    lead_in: int = 0  # how many sentences back the one whose words it inherits is; 0: none
    item: bool = False  # a list item, its lead-in the line that introduces the list
    items: int = 0  # a line that introduces a list: how many items follow it
    question: bool = False  # in question form: never an answer
    colon: bool = False  # ends in a colon and introduces the next sentence, quoted with it

    def row(self) -> list:
        return [self.doc_id, self.start, self.end, self.lead_in, int(self.item), self.items, int(self.question),
                int(self.colon)]

    @classmethod
    def from_row(cls, row: list) -> Sentence:
        doc_id, start, end, lead_in, item, items, question, colon = row
        return cls(doc_id, start, end, lead_in, bool(item), items, bool(question), bool(colon))


@dataclass(frozen=True)
class Chunk:
    doc_id: str
    start: int
    end: int
    sentence_ids: tuple[int, ...]  # rows in the index's sentence table, in order


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its fused score and the scores behind it."""

    chunk_id: int
    doc_id: str
    start: int
    end: int
    text: str
    score: float
    dense: float  # cosine similarity of question and chunk
    lexical: float  # BM25 score (0 when BM25 did not return the chunk)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Citation:
    id: int
    doc_id: str
    title: str
    date: str | None
    start: int
    end: int
    text: str
    page: int | None = None  # 1-based, where the source has pages


@dataclass(frozen=True)
class AnswerSentence:
    text: str
    citation: int  # Citation.id
    # The words that answer, as offsets into the cited document (inside the sentence): the
    # reader's best words in the first sentence, and in a later one where it finds an answer
    # there; None for a question answered yes or no, or from a reader with no span head.
    answer_span: tuple[int, int] | None = None
    item: bool = False  # an item of a list: shown on a line of its own, its marker after it


@dataclass(kw_only=True)
class Reading:
    """What the reader saw for one question: its candidate sentences (rows in the index's
    sentence table) and the scores behind the answer."""

    sids: list[int]
    rows: np.ndarray  # each candidate's sentence features (`qa.scoring.SENTENCE_FEATURES`)
    linear: np.ndarray  # the fitted linear sentence score that chose the candidates
    logits: np.ndarray  # the cross-encoder's
    spans: list  # per candidate, the reader's answer span in the text it read (`qa.read.Span`) or None
    checks: np.ndarray  # (candidates, len(CHECKS)) bool: `Answerer.checks`
    fused: np.ndarray
    dense: float  # best passage cosine
    bm25: float  # best passage BM25 score
    confidence: float  # calibrated probability that the best fused candidate holds the answer


@dataclass(kw_only=True)
class Answer:
    question: str
    answer: str  # sentences joined, each followed by its marker "[n]"; empty when abstaining
    abstained: bool
    confidence: float
    sentences: list[AnswerSentence]
    citations: list[Citation]
    query: str  # the standalone query that was searched
    message: str = ""  # why the bot abstained, for people
    # For evals and debugging, not part of the answer object: what was retrieved, the
    # sentence it led (or would lead) with, and what the reader saw.
    passages: list[Passage] = field(default_factory=list)
    lead_text: str = ""
    reading: Reading | None = None
    timings: dict[str, float] = field(default_factory=dict)  # ms per stage (`Stopwatch`); HTTP: Server-Timing
    index_version: str = ""  # the generation of the index that answered (set by `QA.ask`)
    # When abstaining: the passages that came closest, shown as no answer, so that a
    # misunderstood question can be told from a fact the documents lack.
    closest: list[Citation] = field(default_factory=list)
    # How far to trust it, from `confidence`: "sure" (answers this confident were right 19
    # times in 20 on SQuAD select and the default corpus together, `sure_threshold`),
    # "possible" (it may answer), or "none" (abstained).
    assurance: str = "none"
    # When the answer quotes a list: how many more items it has than are quoted (the
    # source shows them all).
    more_items: int = 0

    @classmethod
    def refusal(cls, question: str, query: str, message: str, **scores) -> Answer:
        """No answer: the message says why; `scores` keeps what the reader saw (evals read it)."""
        return cls(question=question, answer="", abstained=True, confidence=scores.pop("confidence", 0.0),
                   sentences=[], citations=[], query=query, message=message, **scores)

    @property
    def doubt(self) -> str:
        """How far to trust it, in the words every face of the product shows (the page,
        `qa ask`, the OpenAI reply, MCP). Empty when abstaining: the message says so."""
        return "" if self.abstained else DOUBT.get(self.assurance, "")

    def to_dict(self) -> dict:
        """The answer object the CLI and API return."""
        # Internals are emptied first: asdict would deep-copy the passages and the arrays.
        d = asdict(replace(self, passages=[], reading=None))
        for internal in ("passages", "lead_text", "reading", "timings"):
            d.pop(internal)
        d["doubt"] = self.doubt
        return d


# Words, not a percentage: `confidence` is the probability the first sentence is right on
# SQuAD's mix, half of it unanswerable, and reads low beside "sure" on a user's documents.
DOUBT = {"sure": "Sure: the documents say so in the quoted words.",
         "possible": "This may answer it (the closest match, not a sure one):"}


class Stopwatch:
    """Milliseconds one question spends in each stage, summed over the laps named for it."""

    def __init__(self):
        self.ms: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.ms[stage] = self.ms.get(stage, 0.0) + (now - self._last) * 1000
        self._last = now


# Where long work reports progress (`print`, or a test's collector).
Say = Callable[[str], None]


def percentiles(values: Sequence[float]) -> dict:
    """Median and 95th percentile, as every timing here is reported."""
    a = np.asarray(values, dtype=float)
    return {"p50": round(float(np.median(a)), 2), "p95": round(float(np.percentile(a, 95)), 2), "n": len(a)}
