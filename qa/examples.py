"""Example questions for the chat page, made from the corpus being served, never written
into the page: each document's defined names asked about ("What is Liverpool Health
Partners?"), kept only where the product answers them surely and from that document. A
corpus where nothing qualifies gets none, rather than questions it would refuse."""

from __future__ import annotations

import logging
import threading
from collections import Counter

from .live import LiveQA
from .pipeline import QA
from .text import find_acronyms, named_things

log = logging.getLogger(__name__)

MAX_EXAMPLES = 4
MAX_DOCUMENTS = 20  # documents whose names are tried: a large corpus needs no more to fill four
PER_DOCUMENT = 2
MIN_REPEATS = 3  # a name said this often in a document is what it is about


def candidates(qa: QA) -> list[tuple[str, str]]:
    """(question, doc id) pairs, one document's after another's, so that the examples
    spread over the corpus."""
    out: list[list[tuple[str, str]]] = []
    asked = set()
    for doc, _ in qa.index.listing()[:MAX_DOCUMENTS]:
        text = qa.index.document_text(doc.doc_id)
        # Names the document defines first, then those of two words or more it repeats most.
        repeated = Counter(n for n in named_things(text) if len(n.split()) > 1)
        names = [*find_acronyms(text).values(), *(n for n, k in repeated.most_common() if k >= MIN_REPEATS)]
        questions = [f"What is the {n}?" if _takes_the(n) else f"What is {n}?" for n in names]
        fresh = [q for q in dict.fromkeys(questions) if q not in asked][:PER_DOCUMENT]
        asked.update(fresh)
        out.append([(q, doc.doc_id) for q in fresh])
    return [pair for turn in range(PER_DOCUMENT) for group in out if turn < len(group) for pair in [group[turn]]]


_TAKES_THE = {"partnership", "trust", "council", "service", "board", "group", "network", "zone", "fund", "agency",
              "committee", "programme", "program", "alliance", "foundation", "institute", "association", "system"}


def _takes_the(name: str) -> bool:
    """"the Leeds Academic Health Partnership", "the University of Leicester"; "Liverpool Health Partners"."""
    return name.split()[-1].lower() in _TAKES_THE or " of " in name


def pick(qa: QA, limit: int = MAX_EXAMPLES) -> list[str]:
    """Up to `limit` questions the product answers surely from the document they were made
    of (at most one a document until every document has had its turn)."""
    chosen: list[str] = []
    for question, doc_id in candidates(qa):
        answer = qa.ask(question)
        if answer.assurance == "sure" and answer.citations and answer.citations[0].doc_id == doc_id:
            chosen.append(question)
            if len(chosen) >= limit:
                break
    return chosen


class Examples:
    """The examples of the index being served: picked on a thread of their own the first
    time they are asked for after an index starts serving (the first one, or one a build
    swapped in); the asking waits at most `WAIT_SECONDS`, and is answered with none rather
    than kept waiting."""

    WAIT_SECONDS = 5.0

    def __init__(self, live: LiveQA):
        self.live = live
        self._lock = threading.Lock()
        self._picked: dict[str, list[str]] = {}  # index version -> its examples
        self._picking: dict[str, threading.Event] = {}

    def get(self, wait: bool = True) -> list[str]:
        qa = self.live.get()
        version = qa.index_version
        with self._lock:
            if version in self._picked:
                return list(self._picked[version])
            done = self._picking.get(version)
            if done is None:
                done = self._picking[version] = threading.Event()
                # Not a daemon: a process never exits while it asks (the encoder would abort it).
                threading.Thread(target=self._pick, args=(qa, done), name="examples").start()
        if wait:
            done.wait(self.WAIT_SECONDS)
        with self._lock:
            return list(self._picked.get(version, []))

    def _pick(self, qa: QA, done: threading.Event) -> None:
        try:
            chosen = pick(qa)
        except Exception:  # noqa: BLE001 - examples are a nicety: none rather than a broken page
            log.exception("example questions could not be picked")
            chosen = []
        with self._lock:
            self._picked = {qa.index_version: chosen}  # only the served index's are kept
            self._picking.pop(qa.index_version, None)
        done.set()
