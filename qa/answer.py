"""Compose an extractive answer: pick the retrieved sentences that answer the question.

Each candidate sentence (from the retrieved chunks, once however many chunks hold it)
gets a linear score over `FEATURES`:

* meaning: cosine of question and sentence vectors (both computed at ingest / once
  per question), and of the question and the best chunk holding the sentence; and
  word-by-word alignment: for each content word piece of the question, its best cosine
  with a token of the sentence (MiniLM's contextual token vectors), averaged. It credits
  paraphrase that one pooled vector blurs ("founded" ~ "established").
* words: the IDF-weighted share of the question's content words the sentence has, and
  part credit for those said just before it or elsewhere in its chunk ("It was worth
  $32 billion in 2011" answers a question about Harvard's endowment when the sentence
  before names it); the share of the question's word pairs it repeats;
* answer type: whether it holds the kind of value asked for (a count, an amount of
  money, a date, a name) that the question does not already hold, or for a question
  asking what something is called, whether it names something ("known as", "titled");
* form: a sentence that is itself a question, or says nothing a question does not,
  cannot be an answer.

Weights were fitted (listwise softmax) on half of the SQuAD 2.0 dev articles and
checked on the other half. The best sentence leads if it can answer: it holds the
value a count, money, date or contact question asks for (for "how many X", a number
beside a word close in meaning to X), and its document names everything the question
names; up to `max_answer_sentences - 1` more follow when they can answer too, score
close to it and add something new. If the best sentence cannot answer, or scores
under `abstain_threshold`, the bot abstains.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from .chunk import is_list_item
from .embed import Encoder, TokenVectors
from .index import Index
from .text import Lexicon, match_text, named_spans, terms, words
from .types import Answer, AnswerSentence, Citation, Passage

FEATURES = ("sentence_cosine", "chunk_cosine", "words", "nearby_words", "previous_words", "word_pairs",
            "answer_type", "not_an_answer", "referred_words", "named_in_document", "aligned_words")
# Fitted on the tune half of SQuAD 2.0 dev (see README, "Evaluation"); SQuAD has no sentences
# in question form, so the `not_an_answer` weight is a prior, not a fit.
WEIGHTS = np.array([0.238, 0.176, 0.35, 0.133, 0.121, 0.077, 0.141, -0.3, 0.072, -0.02, 0.335], dtype=np.float32)
REDUNDANT_COSINE = 0.9
TOKEN_CACHE_SENTENCES = 4096  # token vectors kept for sentences already seen (~25 KB each)
ABSTAIN_MESSAGE = "I could not find an answer to that question in the documents."

_NUMBER_WORDS = r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|(?:hundred|thousand|million|billion|dozen)s?|single|once|twice|none|majority"
_COUNT = re.compile(rf"\d[\d,.]*%?|\b(?:{_NUMBER_WORDS})\b", re.I)
# What a "how many" question counts: "How many staff does it employ?" -> "staff does it".
_COUNTED = re.compile(r"\bhow many\s+((?:[\w'-]+\s+){0,2}[\w'-]+)", re.I)
COUNTED_WINDOW = 3  # content word pieces either side of a number that may name what it counts
COUNTED_MIN_COSINE = 0.5
_YEAR = re.compile(r"^(?:1[0-9]{3}|20[0-9]{2})$")
_MONEY = re.compile(r"[£$€¥]\s?\d|\d[\d,.]*\s?(?:bn|m|k|million|billion|thousand|pounds|dollars|euros)\b|\b(?:million|billion) (?:pounds|dollars|euros)\b", re.I)
_MONTH = r"jan(?:uary)?|feb(?:ruary)?|march|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
_DATE = re.compile(rf"\b(?:1[0-9]{{3}}|20[0-9]{{2}})s?\b|\b(?:{_MONTH})\b|\b(?:century|decade|yesterday|today|monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b", re.I)
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*")
_REFERS_BACK = re.compile(r"\b(?:it|its|he|she|his|her|they|their|them|this|these|those)\b", re.I)
_ASKING = re.compile(r"\s*(?:who|whom|whose|what|which|when|where|why|how|name|list|tell)\b", re.I)
# A yes/no question is answered by a sentence that says what it asks ("Merseyside Police"
# in a list of partners answers "Is Merseyside Police a partner?").
_POLAR = re.compile(r"\s*(?:is|are|was|were|do|does|did|can|could|will|would|has|have|had|should)\b", re.I)
# The kinds of value a question may ask for; see `question_kind`.
_KINDS = (
    # Contact details: "What website has more about LHP?", "What number do I call?"
    ("contact", re.compile(r"\b(?:web ?sites?|web (?:address|page)|url|e-?mail(?: address)?|(?:tele)?phone(?: number)?|number (?:do|can|should) (?:i|we|you) (?:call|ring|dial))\b", re.I)),
    ("money", re.compile(r"\bhow much (?:money|funding|cash|investment)\b|\bhow much (?:\w+ ){0,6}(?:cost|spend|spent|earn|pay|paid|worth|raise|raised|give|gave|invest|invested)\b|\bwhat (?:\w+ )?(?:budget|salary|price|cost|revenue|income|funding)\b", re.I)),
    ("count", re.compile(r"\bhow (?:many|much|old|long|large|big|far|often)\b|\bwhat (?:number|percentage|proportion|amount|size)\b", re.I)),
    ("date", re.compile(r"\bwhen\b|\bwhat (?:year|date|month|day|time|century|decade)\b|\bwhich (?:year|date|month|day|century)\b|\bin what year\b|\bsince when\b", re.I)),
    ("name", re.compile(r"\bwho(?:m|se)?\b|\bwhere\b|\b(?:which|what) (?:compan(?:y|ies)|organi[sz]ations?|universit(?:y|ies)|"
                        r"colleges?|persons?|people|cit(?:y|ies)|towns?|countr(?:y|ies)|count(?:y|ies)|states?|nations?|"
                        r"regions?|areas?|places?|rivers?|trusts?|hospitals?|bod(?:y|ies)|groups?)\b", re.I)),
    # A naming question ("What is the new approach called?", "another word for X") is
    # answered where the text names something: "titled Health Innovation Leeds", "what we call".
    ("term", re.compile(r"\b(?:called|named|titled|known as|termed|dubbed|nicknamed)\b|\bcall\b(?! for)|"
                        r"\b(?:another|other|alternative|original|full|formal|official|common)\s+(?:\w+\s+)?(?:words?|terms?|names?|titles?)\b|"
                        r"\bwhat (?:\w+ )?(?:is|was|are|were) (?:the )?(?:\w+ )?(?:name|title|term)\b", re.I)),
)
_NAMING = re.compile(r"\b(?:call(?:s|ed|ing)?|names?|named|titles?|titled|known as|terms?|termed|dubbed|nicknamed|referred to as)\b|\(", re.I)
_CONTACT = re.compile(r"\bwww\.|https?://|\b[\w.+-]+@[\w-]+\.[\w.]+|(?:\+\d{1,3}[ ()0]*|\b0)\d{2,4}[ -]?\d{3,4}[ -]?\d{3,4}\b|\b[\w-]+\.(?:com|org|net|gov|edu|ac|co|nhs)(?:\.[a-z]{2})?\b", re.I)
_REQUIRED = {"money", "count", "date", "contact"}  # kinds whose value must be in a sentence that answers


@dataclass(frozen=True)
class QuestionFacts:
    text: str  # normalised for matching
    terms: frozenset[str]
    weight: float  # summed IDF of its terms
    pairs: frozenset[tuple[str, str]]
    kind: str | None
    names: tuple[frozenset[str], ...]  # the terms of each thing it names
    name_spans: tuple[tuple[int, int], ...]  # where each of those is in the question
    phrases: tuple[str, ...]  # its names of several words, as " term term ", to find in a document
    asking: bool
    counted: np.ndarray | None  # token vectors of what a "how many" question counts


@dataclass
class Scored:
    sid: int
    score: float


class Answerer:
    def __init__(self, index: Index, lexicon: Lexicon, encoder: Encoder, max_sentences: int, threshold: float,
                 extra_ratio: float):
        self.index = index
        self.lexicon = lexicon
        self.encoder = encoder
        self._tokens: OrderedDict[int, TokenVectors] = OrderedDict()  # least recently used first
        self._tokens_lock = threading.Lock()
        self.previous = self._lead_in()
        self.max_sentences = max_sentences
        self.threshold = threshold
        self.extra_ratio = extra_ratio
        self.doc_terms: dict[str, set[str]] = {}
        for sentence, ts in zip(index.sentences, lexicon.sentence_terms):
            self.doc_terms.setdefault(sentence.doc_id, set()).update(ts)
        # A document's sentences as " term term ... " lines, to find a name's words in order.
        lines: dict[str, list[str]] = {}
        for sentence, seq in zip(index.sentences, lexicon.sentence_sequences):
            lines.setdefault(sentence.doc_id, []).append(f" {' '.join(seq)} ")
        self.doc_lines = {doc_id: "\n".join(ls) for doc_id, ls in lines.items()}

    def analyse(self, question: str, q_tokens: TokenVectors) -> QuestionFacts:
        lex = self.lexicon
        q_terms = lex.query_terms(question)
        ordered = [lex.correct(w) for w in words(question)]
        norm = match_text(question)
        named = [(span, frozenset(lex.query_terms(question[span[0]:span[1]]))) for span in named_spans(question)]
        named = [(span, ts) for span, ts in named if ts]
        return QuestionFacts(
            text=norm, terms=frozenset(q_terms), weight=sum(lex.weight(t) for t in q_terms) or 1.0,
            pairs=frozenset(zip(ordered, ordered[1:])),
            kind=question_kind(question),
            names=tuple(ts for _, ts in named), name_spans=tuple(span for span, _ in named),
            phrases=tuple(f" {' '.join(ts)} " for ts in lex.phrases(question)),
            asking=not _POLAR.match(norm) and (bool(_ASKING.match(norm)) or norm.rstrip().endswith("?")),
            counted=_counted(question, q_tokens),
        )

    def features(self, q: QuestionFacts, q_vec: np.ndarray, q_tokens: TokenVectors,
                 passages: list[Passage]) -> tuple[list[int], np.ndarray]:
        """The candidate sentences of the passages, once each, and their `FEATURES` rows."""
        context: dict[int, tuple[float, int]] = {}  # sentence -> (best chunk cosine, that chunk)
        for p in passages:
            for sid in self.index.chunks[p.chunk_id].sentence_ids:
                if sid not in context or p.dense > context[sid][0]:
                    context[sid] = (p.dense, p.chunk_id)
        sids = list(context)
        rows = np.zeros((len(sids), len(FEATURES)), dtype=np.float32)
        if not sids:
            return sids, rows
        rows[:, 0] = self.index.sentence_vectors[sids] @ q_vec
        rows[:, 10] = self._aligned(q, q_tokens, sids)
        lex = self.lexicon
        named = set().union(*q.names) & q.terms

        def new_name(name: str) -> bool:  # "Liverpool Strategic Partnership" is no new name to a question about the LSP
            return not lex.canonical(set(terms(name))) <= q.terms

        chunk_terms: dict[int, set[str]] = {}
        for row, sid in zip(rows, sids):
            chunk_cos, cid = context[sid]
            if cid not in chunk_terms:
                chunk_terms[cid] = set().union(*(lex.sentence_terms[i] for i in self.index.chunks[cid].sentence_ids))
            s_terms = lex.sentence_terms[sid]
            prev = self.previous[sid]
            prev_terms = lex.sentence_terms[prev] if prev is not None else set()
            text = match_text(self.index.sentence_text(sid))
            ordered = terms(text)
            row[1] = chunk_cos
            row[2] = sum(lex.weight(t) for t in q.terms & s_terms) / q.weight
            row[3] = sum(lex.weight(t) for t in (q.terms & chunk_terms[cid]) - s_terms) / q.weight
            row[4] = sum(lex.weight(t) for t in (q.terms & prev_terms) - s_terms) / q.weight
            row[5] = len(q.pairs & set(zip(ordered, ordered[1:]))) / max(1, len(q.pairs))
            row[6] = float(q.kind is not None and has_value(q.kind, text, q.text, new_name))
            row[7] = float(text.rstrip("\"' )").endswith("?") or (q.asking and not s_terms - q.terms))
            # "It was built in 1860 by David Stevenson": what "it" stands for was said just before.
            row[8] = row[4] if _REFERS_BACK.search(text) else 0.0
            # What the question names is what the document is about: every sentence of a
            # document that names it speaks of it, named again or not.
            row[9] = sum(lex.weight(t) for t in (named & self.doc_terms[self.index.sentences[sid].doc_id]) - s_terms) / q.weight
        return sids, rows

    def _aligned(self, q: QuestionFacts, q_tokens: TokenVectors, sids: list[int]) -> np.ndarray:
        """Per sentence: each question content token's best cosine with one of its tokens,
        averaged. A token of something the question names counts as matched in every
        sentence of a document that names it (as `named_in_document` does for words)."""
        sentence_tokens = self._sentence_tokens(sids)
        keep = q_tokens.content if q_tokens.content.any() else np.ones(len(q_tokens.content), dtype=bool)
        q_rows, q_spans = q_tokens.vectors[keep], q_tokens.spans[keep]
        in_name = [(q_spans[:, 0] >= a) & (q_spans[:, 1] <= b) for a, b in q.name_spans]
        out = np.zeros(len(sids), dtype=np.float32)
        for n, (sid, tokens) in enumerate(zip(sids, sentence_tokens)):
            best = (q_rows @ tokens.vectors.T.astype(np.float32)).max(axis=1)
            doc_terms = self.doc_terms[self.index.sentences[sid].doc_id]
            for name, mask in zip(q.names, in_name):
                if name <= doc_terms:
                    best[mask] = 1.0
            out[n] = float(best.mean())
        return out

    def _sentence_tokens(self, sids: list[int]) -> list[TokenVectors]:
        """Token vectors of the sentences, from the cache or one batch through the model.
        The server answers on several threads, so the cache is only touched under a lock,
        and the model runs outside it."""
        with self._tokens_lock:
            found = {sid: self._tokens[sid] for sid in sids if sid in self._tokens}
            for sid in found:
                self._tokens.move_to_end(sid)
        missing = [sid for sid in sids if sid not in found]
        if missing:
            _, encoded = self.encoder.encode_tokens([self.index.sentence_text(sid) for sid in missing])
            fresh = {sid: TokenVectors(t.vectors.astype(np.float16), t.content, t.spans) for sid, t in zip(missing, encoded)}
            found.update(fresh)
            with self._tokens_lock:
                self._tokens.update(fresh)
                while len(self._tokens) > TOKEN_CACHE_SENTENCES:
                    self._tokens.popitem(last=False)
        return [found[sid] for sid in sids]

    def score(self, q: QuestionFacts, q_vec: np.ndarray, q_tokens: TokenVectors, passages: list[Passage]) -> list[Scored]:
        sids, rows = self.features(q, q_vec, q_tokens, passages)
        scores = rows @ WEIGHTS
        return sorted((Scored(sid, float(x)) for sid, x in zip(sids, scores)), key=lambda c: (-c.score, c.sid))

    def lead(self, q: QuestionFacts, ranked: list[Scored]) -> Scored | None:
        """The sentence to lead with: the top one if it can answer, else one that can and
        scores nearly as well. (As a filter over the whole ranking the checks cost 5 points
        of SQuAD accuracy; as a check on the top they cost almost nothing.)"""
        for cand in ranked:
            if cand.score < self.extra_ratio * ranked[0].score:
                return None
            if self.answerable(q, cand.sid):
                return cand
        return None

    def answerable(self, q: QuestionFacts, sid: int) -> bool:
        """Whether the sentence can answer: it holds the value asked for (for "how many X",
        a number beside a word close in meaning to X), and its document names what the
        question names: each word of it, and a name of several words as written, in order
        ("Mayor of West Yorkshire" is not named by "West Yorkshire Mayoral Combined
        Authority"). On SQuAD 2.0 dev the word order check refuses five unanswerable
        questions for each answerable one it refuses."""
        text = match_text(self.index.sentence_text(sid))
        if q.kind in _REQUIRED and not has_value(q.kind, text, q.text):
            return False
        if q.kind == "count" and q.counted is not None and not self._counts(q, text, self._sentence_tokens([sid])[0]):
            return False
        doc_id = self.index.sentences[sid].doc_id
        return all(name <= self.doc_terms[doc_id] for name in q.names) and all(p in self.doc_lines[doc_id] for p in q.phrases)

    def compose(self, question: str, query: str, q_vec: np.ndarray, q_tokens: TokenVectors,
                passages: list[Passage], k: int) -> Answer:
        q = self.analyse(query, q_tokens)
        ranked = self.score(q, q_vec, q_tokens, passages)
        passages = self.rerank(passages, ranked)[:k]
        lead = self.lead(q, ranked)
        best = lead.score if lead else -1.0
        confidence = round(1 / (1 + math.exp(-12 * (best - self.threshold))), 4)
        lead_text = self.index.sentence_text((lead or ranked[0]).sid) if ranked else ""
        if lead is None or best < self.threshold:
            return Answer(question, "", True, confidence, [], [], query, ABSTAIN_MESSAGE, passages, best, lead_text)

        chosen: list[Scored] = [lead]
        for cand in ranked:
            if len(chosen) >= self.max_sentences or cand.score < max(self.threshold, self.extra_ratio * best):
                break
            if cand is not lead and self.answerable(q, cand.sid) and not self._redundant(cand.sid, [c.sid for c in chosen]):
                chosen.append(cand)

        sentences, citations = [], []
        for n, c in enumerate(chosen, start=1):
            s = self.index.sentences[c.sid]
            doc = self.index.documents[s.doc_id]
            text = doc.text[s.start:s.end]
            citations.append(Citation(n, doc.doc_id, doc.title, doc.date, s.start, s.end, text))
            sentences.append(AnswerSentence(text, n))
        answer = " ".join(f"{s.text} [{s.citation}]" for s in sentences)
        return Answer(question, answer, False, confidence, sentences, citations, query, "", passages, best, lead_text)

    def rerank(self, passages: list[Passage], ranked: list[Scored]) -> list[Passage]:
        """Passages by their best sentence, fused retrieval order breaking ties: the sentence
        scorer reads each sentence against the question, which ranking whole chunks cannot."""
        best = {c.sid: c.score for c in ranked}
        return sorted(passages, key=lambda p: -max((best.get(s, -math.inf) for s in self.index.chunks[p.chunk_id].sentence_ids),
                                                    default=-math.inf))

    def _counts(self, q: QuestionFacts, text: str, tokens: TokenVectors) -> bool:
        """Whether a number in the sentence counts what the question counts: "six major NHS
        organisations" does not answer "how many staff", "10,000 troops" answers "how many
        soldiers". (On SQuAD 2.0 dev's "how many" questions it refuses the top sentence of
        26% of the unanswerable ones and of 2% of those answered right.)"""
        numbers = [m.span() for m in _new_counts(text, q.text.lower())]
        words = np.flatnonzero(tokens.content)  # "over twenty of the city's largest anchor institutions"
        at = [n for n, i in enumerate(words) if any(tokens.spans[i][0] < end and tokens.spans[i][1] > start for start, end in numbers)]
        near = sorted({words[m] for n in at for m in range(max(0, n - COUNTED_WINDOW), min(len(words), n + COUNTED_WINDOW + 1))})
        return bool(near) and float((q.counted @ tokens.vectors[near].T.astype(np.float32)).max()) >= COUNTED_MIN_COSINE

    def _lead_in(self) -> list[int | None]:
        """Per sentence, the one whose words it inherits: the sentence before in the same
        paragraph, or for a list item the line that introduces the list ("Our partners")."""
        sentences, docs = self.index.sentences, self.index.documents
        out: list[int | None] = []
        for sid, this in enumerate(sentences):
            text = docs[this.doc_id].text
            prev = sid - 1
            if is_list_item(text, this.start):
                while prev >= 0 and sentences[prev].doc_id == this.doc_id and is_list_item(text, sentences[prev].start):
                    prev -= 1
            first = sentences[prev + 1] if prev + 1 < sid else this
            out.append(prev if prev >= 0 and sentences[prev].doc_id == this.doc_id
                       and "\n\n" not in text[sentences[prev].end:first.start] else None)
        return out

    def _redundant(self, sid: int, chosen: list[int]) -> bool:
        """Near-duplicates (the same sentence in two documents, or a close paraphrase) add nothing."""
        vecs = self.index.sentence_vectors
        text = match_text(self.index.sentence_text(sid)).lower()
        return any(
            float(vecs[sid] @ vecs[c]) >= REDUNDANT_COSINE or match_text(self.index.sentence_text(c)).lower() == text
            for c in chosen
        )


def _counted(question: str, q_tokens: TokenVectors) -> np.ndarray | None:
    m = _COUNTED.search(question)
    if not m:
        return None
    a, b = m.span(1)
    spans = q_tokens.spans
    rows = q_tokens.content & (spans[:, 0] >= a) & (spans[:, 1] <= b)
    return q_tokens.vectors[rows] if rows.any() else None


def question_kind(question: str) -> str | None:
    """The kind of value asked for, from the question's first asking phrase: "Who was
    chair when it launched?" asks for a name, not a date."""
    found = [(m.start(), n) for n, (name, rx) in enumerate(_KINDS) if (m := rx.search(question))]
    return _KINDS[min(found)[1]][0] if found else None


def _new_counts(text: str, asked: str) -> Iterator[re.Match]:
    """Counts in the text that the (lower-case) question does not already hold; years are dates, not counts."""
    return (m for m in _COUNT.finditer(text) if m.group().lower() not in asked and not _YEAR.match(m.group()))


def has_value(kind: str, text: str, question: str, new_name: Callable[[str], bool] | None = None) -> bool:
    """Whether the sentence holds a value of the wanted kind that the question does not;
    `new_name` tells a name the question does not give (by default: not in its text)."""
    asked = question.lower()
    if kind == "money":
        return any(m.group().lower() not in asked for m in _MONEY.finditer(text))
    if kind == "count":
        return any(_new_counts(text, asked))
    if kind == "date":
        return any(m.group().lower() not in asked for m in _DATE.finditer(text))
    if kind == "term":
        return bool(_NAMING.search(text))
    if kind == "contact":
        return bool(_CONTACT.search(text))
    return any((new_name or (lambda n: n not in question))(n) for n in _NAME.findall(text))


def render_text(answer: Answer) -> str:
    """The answer as plain text: quoted sentences with markers, then one line per source."""
    if answer.abstained:
        return answer.message
    lines = [answer.answer, ""]
    for c in answer.citations:
        date = f", {c.date}" if c.date else ""
        lines.append(f"[{c.id}] {c.title}{date} ({c.doc_id}, characters {c.start}-{c.end})")
    return "\n".join(lines)
