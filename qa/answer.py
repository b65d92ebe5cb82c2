"""Compose an extractive answer: pick the retrieved sentences that answer the question.

Each candidate sentence (from the retrieved chunks, once however many chunks hold it)
gets a score from four signals:

* meaning: cosine of question and sentence vectors (both computed at ingest / once
  per question), and of the question and the best chunk holding the sentence, which
  carries context a sentence with a pronoun lacks;
* words: the IDF-weighted share of the question's content words the sentence has;
* answer type: a "how many" question wants a number the question does not already
  hold, a "when" question a date, a "who" question a name;
* form: a sentence that is itself a question, or says nothing a question does not,
  cannot be an answer.

The best sentence leads; up to `max_answer_sentences - 1` more follow when they score
close to it and add something new. Below `abstain_threshold` the bot abstains.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from .index import Index
from .text import Lexicon, match_text
from .types import Answer, AnswerSentence, Citation, Passage

W_SENTENCE, W_CHUNK, W_WORDS, W_NEARBY, W_TYPE = 0.45, 0.2, 0.35, 0.5, 0.1
QUESTION_PENALTY = 0.3
REDUNDANT_COSINE = 0.9
ABSTAIN_MESSAGE = "I could not find an answer to that question in the documents."

_NUMBER_WORDS = r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred|thousand|million|billion|dozen)"
_NUMBER = re.compile(rf"\d|\b{_NUMBER_WORDS}\b", re.IGNORECASE)
_MONTH = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
_DATE = re.compile(rf"\b(?:1[0-9]{{3}}|20[0-9]{{2}})s?\b|\b{_MONTH}\b|\b(?:century|decade|yesterday|today|monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b", re.IGNORECASE)
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*")
_ASKING = re.compile(r"\s*(?:who|whom|whose|what|which|when|where|why|how|is|are|was|were|do|does|did|can|could|will|would|has|have|had|should|name|list|tell)\b", re.I)
_QUESTION_TYPES = (
    ("number", re.compile(r"\bhow (?:many|much|old|long|large|big|far|often)\b|\bwhat (?:number|percentage|proportion|amount|size)\b", re.I)),
    ("date", re.compile(r"\bwhen\b|\bwhat (?:year|date|month|day|time|century|decade)\b|\bwhich (?:year|date|month|day|century)\b", re.I)),
    ("name", re.compile(r"\bwho(?:m|se)?\b|\bwhere\b|\bwhich (?:company|organi[sz]ation|university|person|city|country|trust|body)\b", re.I)),
)


@dataclass
class Scored:
    sid: int
    score: float


class Answerer:
    def __init__(self, index: Index, lexicon: Lexicon, max_sentences: int = 3, threshold: float = 0.42,
                 extra_ratio: float = 0.9):
        self.index = index
        self.lexicon = lexicon
        self.max_sentences = max_sentences
        self.threshold = threshold
        self.extra_ratio = extra_ratio

    def score(self, question: str, q_vec: np.ndarray, passages: list[Passage]) -> list[Scored]:
        context: dict[int, tuple[float, int]] = {}  # sentence -> (best chunk cosine, that chunk)
        for p in passages:
            for sid in self.index.chunks[p.chunk_id].sentence_ids:
                if sid not in context or p.dense > context[sid][0]:
                    context[sid] = (p.dense, p.chunk_id)
        sids = list(context)
        if not sids:
            return []
        sent_cos = self.index.sentence_vectors[sids] @ q_vec
        lex = self.lexicon
        q_terms = lex.query_terms(question)
        q_weight = sum(lex.weight(t) for t in q_terms) or 1.0
        qtype = next((name for name, rx in _QUESTION_TYPES if rx.search(question)), None)
        q_norm = match_text(question)
        asking = bool(_ASKING.match(q_norm)) or q_norm.rstrip().endswith("?")
        chunk_terms: dict[int, set[str]] = {}

        scored = []
        for sid, cos in zip(sids, sent_cos):
            chunk_cos, cid = context[sid]
            if cid not in chunk_terms:
                chunk_terms[cid] = set().union(*(lex.sentence_terms[i] for i in self.index.chunks[cid].sentence_ids))
            s_terms = lex.sentence_terms[sid]
            # Topic words said nearby count for part: "It was founded in 1900" answers a
            # question that names "it", though the sentence itself does not.
            said = sum(lex.weight(t) for t in q_terms & s_terms)
            nearby = sum(lex.weight(t) for t in (q_terms & chunk_terms[cid]) - s_terms)
            words = (said + W_NEARBY * nearby) / q_weight
            text = match_text(self.index.sentence_text(sid))
            s = W_SENTENCE * float(cos) + W_CHUNK * chunk_cos + W_WORDS * words
            if qtype and _has_type(qtype, text, q_norm):
                s += W_TYPE
            if text.rstrip("\"' )").endswith("?") or (asking and not s_terms - q_terms):
                s -= QUESTION_PENALTY
            scored.append(Scored(sid, s))
        scored.sort(key=lambda x: (-x.score, x.sid))
        return scored

    def compose(self, question: str, query: str, q_vec: np.ndarray, passages: list[Passage]) -> Answer:
        ranked = self.score(query, q_vec, passages)
        best = ranked[0].score if ranked else 0.0
        confidence = round(1 / (1 + math.exp(-12 * (best - self.threshold))), 4)
        if not ranked or best < self.threshold:
            return Answer(question, "", True, confidence, [], [], query, ABSTAIN_MESSAGE, passages)

        chosen: list[Scored] = [ranked[0]]
        for cand in ranked[1:]:
            if len(chosen) >= self.max_sentences or cand.score < max(self.threshold, self.extra_ratio * best):
                break
            if not self._redundant(cand.sid, [c.sid for c in chosen]):
                chosen.append(cand)

        sentences, citations = [], []
        for n, c in enumerate(chosen, start=1):
            s = self.index.sentences[c.sid]
            doc = self.index.documents[s.doc_id]
            text = doc.text[s.start:s.end]
            citations.append(Citation(n, doc.doc_id, doc.title, doc.date, s.start, s.end, text))
            sentences.append(AnswerSentence(text, n))
        answer = " ".join(f"{s.text} [{s.citation}]" for s in sentences)
        return Answer(question, answer, False, confidence, sentences, citations, query, "", passages)

    def _redundant(self, sid: int, chosen: list[int]) -> bool:
        """Near-duplicates (the same sentence in two documents, or a close paraphrase) add nothing."""
        vecs = self.index.sentence_vectors
        text = match_text(self.index.sentence_text(sid)).lower()
        return any(
            float(vecs[sid] @ vecs[c]) >= REDUNDANT_COSINE or match_text(self.index.sentence_text(c)).lower() == text
            for c in chosen
        )


def _has_type(qtype: str, text: str, question: str) -> bool:
    """Whether the sentence holds a value of the wanted type that the question does not."""
    if qtype == "number":
        found = [m.group().lower() for m in _NUMBER.finditer(text)]
        return any(f not in question.lower() for f in found)
    if qtype == "date":
        found = [m.group().lower() for m in _DATE.finditer(text)]
        return any(f not in question.lower() for f in found)
    names = _NAME.findall(text)
    return any(n not in question for n in names)


def render_text(answer: Answer) -> str:
    """The answer as plain text: quoted sentences with markers, then one line per source."""
    if answer.abstained:
        return answer.message
    lines = [answer.answer, ""]
    for c in answer.citations:
        date = f", {c.date}" if c.date else ""
        lines.append(f"[{c.id}] {c.title}{date} ({c.doc_id}, characters {c.start}-{c.end})")
    return "\n".join(lines)
