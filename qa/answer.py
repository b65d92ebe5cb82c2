"""Compose an extractive answer: pick the retrieved sentences that answer the question.

Each candidate sentence (from the retrieved chunks, once however many chunks hold it)
gets a linear score over `SENTENCE_FEATURES` (`qa.scoring`):

* meaning: cosine of question and sentence vectors (both computed at ingest / once
  per question), and of the question and the best chunk holding the sentence; and
  word-by-word alignment: for each content word piece of the question, its best cosine
  with a token of the sentence (MiniLM's contextual token vectors), averaged. It credits
  paraphrase that one pooled vector blurs ("founded" ~ "established").
* words: the IDF-weighted share of the question's content words the sentence has, and
  part credit for those said just before it ("It was worth $32 billion in 2011" answers
  a question about Harvard's endowment when the sentence before names it).

A sentence that is itself a question ("What is the purpose of the framework?") is never
a candidate: answers are statements.

`SENTENCE_WEIGHTS` (`qa.scoring`, listwise softmax on half of the SQuAD 2.0 dev articles) make a linear score
that picks the `reader_candidates` best sentences. The reader (`qa.read`) reads each
with the question; a fusion fitted by `qa fit` on the SQuAD fit split weighs its logit,
the features above and two checks of whether the sentence can answer (it holds the
value a money, count, date or contact question asks for; for "how many X", a number
beside a word close in meaning to X) into one score. Features and rules that did not
earn their place on held-out questions were deleted (docs/studies.md, "Ablation"). The best fused
sentence leads; the fitted abstention model gives the probability that it holds the
answer (`confidence`; none for a lead that fails a check), and below
`abstain_threshold` the bot abstains. Up to `max_answer_sentences - 1` more follow when they can answer,
score within `extra_sentence_margin` of the lead, and do not repeat a chosen sentence.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .config import Config
from .embed import Encoder, TokenVectors
from .question import Question
from .read import Reader, Span
from .scoring import CHECKS, SENTENCE_FEATURES, SENTENCE_WEIGHTS, ReaderModel, span_margins
from .store import Store
from .text import Lexicon, is_common_word, match_text
from .tokens import projected, small
from .types import Answer, AnswerSentence, Citation, Passage, Reading, Stopwatch

REDUNDANT_COSINE = 0.9
REPEAT_OVERLAP = 0.7  # share of the smaller sentence's new words found in the other
TOKEN_CACHE_SENTENCES = 4096  # token vectors kept for sentences already seen (~4 KB each as float32)
ABSTAIN_MESSAGE = "I could not find an answer to that question in the documents."
CLOSEST_PASSAGES = 3  # shown, as no answer, when the bot abstains
LIST_ITEMS = 8  # of a list an answer quotes, the items shown; the source has the rest ("and 13 more")

_NUMBER_WORDS = r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|(?:hundred|thousand|million|billion|dozen)s?|single|once|twice|none|majority|half|double|triple|quarter"
_COUNT = re.compile(rf"\d[\d,.]*%?|\b(?:{_NUMBER_WORDS})\b", re.I)
COUNTED_WINDOW = 3  # content word pieces either side of a number that may name what it counts
# Cosine in the space token vectors are kept in (`qa.tokens`): 0.625 there makes 97.5% of
# the decisions 0.5 made with the full vectors, against 88.6% at 0.5, over the SQuAD select
# split's "how many" questions (studies/count_check_space.py).
COUNTED_MIN_COSINE = 0.625
COUNTED_MIN_COSINE_WHOLE = 0.5  # another embedder's tokens, kept whole: the floor chosen with full vectors
_YEAR = re.compile(r"^(?:1[0-9]{3}|20[0-9]{2})$")
_MONEY = re.compile(r"[£$€¥]\s?\d|\d[\d,.]*\s?(?:bn|m|k|million|billion|thousand|pounds|dollars|euros)\b|\b(?:million|billion) (?:pounds|dollars|euros)\b", re.I)
_MONTH = r"jan(?:uary)?|feb(?:ruary)?|march|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
_DATE = re.compile(rf"\b(?:1[0-9]{{3}}|20[0-9]{{2}})s?\b|\b(?:{_MONTH})\b|\b[\w-]+(?:st|nd|rd|th)[- ]centur(?:y|ies)\b|"
                   r"\b(?:centur(?:y|ies)|decades?|yesterday|today|(?:mon|tues|wednes|thurs|fri|satur|sun)days?|noon|midnight)\b|"
                   # A date told relative to the document's own ("earlier this week"): the citation carries that date.
                   r"\b(?:this|last|next|past|coming)\s+(?:week|month|year|weekend|spring|summer|autumn|winter|morning)\b|"
                   r"\b\d{1,2}(?:[:.]\d{2})?\s?(?:am|pm|a\.m\.|p\.m\.)", re.I)
_CONTACT = re.compile(r"\bwww\.|https?://|\b[\w.+-]+@[\w-]+\.[\w.]+|(?:\+\d{1,3}[ ()0]*|\b0)\d{2,4}[ -]?\d{3,4}[ -]?\d{3,4}\b|\b[\w-]+\.(?:com|org|net|gov|edu|ac|co|nhs)(?:\.[a-z]{2})?\b", re.I)
_REQUIRED = {"money", "count", "date", "contact"}  # kinds whose value must be in a sentence that answers


@dataclass
class Scored:
    sid: int
    score: float  # the linear score: `row @ SENTENCE_WEIGHTS`
    row: np.ndarray  # its SENTENCE_FEATURES


class Answerer:
    def __init__(self, index: Store, lexicon: Lexicon, encoder: Encoder, reader: Reader, model: ReaderModel,
                 config: Config):
        self.index = index
        self.lexicon = lexicon
        self.encoder = encoder
        self._tokens: OrderedDict[int, TokenVectors] = OrderedDict()  # least recently used first
        self._tokens_lock = threading.Lock()
        self.reader, self.model = reader, model
        self.reader_candidates = config.reader_candidates
        self.max_sentences = config.max_answer_sentences
        self.threshold, self.sure = config.abstain_threshold, config.sure_threshold
        self.extra_margin = config.extra_sentence_margin

    def features(self, q: Question, passages: list[Passage]) -> tuple[list[int], np.ndarray]:
        """The candidate sentences of the passages, once each, and their `SENTENCE_FEATURES` rows."""
        chunk_cosine: dict[int, float] = {}  # sentence -> cosine of the best chunk holding it
        for p in passages:
            for sid in self.index.chunk(p.chunk_id).sentence_ids:
                if not self.index.sentence(sid).question and p.dense > chunk_cosine.get(sid, -2.0):
                    chunk_cosine[sid] = p.dense
        sids = list(chunk_cosine)
        if not sids:
            return sids, np.zeros((0, len(SENTENCE_FEATURES)), dtype=np.float32)
        self.index.preload_sentences(sids)  # then the sentences they lean on, read beside them
        self.index.preload_sentences([x for sid in sids for x in (self.lead_in(sid), *self.list_items(sid)[:LIST_ITEMS])
                                      if x is not None])
        lex = self.lexicon

        def share(found: set[str]) -> float:
            return sum(lex.weight(t) for t in found) / q.weight

        said = [lex.said(self.index.sentence_text(sid)) for sid in sids]
        said_before = [lex.said(self.index.sentence_text(prev)) if prev is not None else frozenset()
                       for prev in map(self.lead_in, sids)]
        # Named, so that the columns follow SENTENCE_FEATURES whatever its order.
        columns = {
            "sentence_cosine": self.index.sentence_vectors_of(sids) @ q.vector,
            "chunk_cosine": [chunk_cosine[sid] for sid in sids],
            "words": [share(q.terms & s) for s in said],
            "previous_words": [share((q.terms & before) - s) for s, before in zip(said, said_before)],
            "aligned_words": self._aligned(q, sids),
        }
        return sids, np.column_stack([columns[name] for name in SENTENCE_FEATURES]).astype(np.float32)

    def _aligned(self, q: Question, sids: list[int]) -> np.ndarray:
        """Per sentence: each question content token's best cosine with one of its tokens,
        averaged. A token of something the question names counts as matched in every
        sentence of a document that names it: what the question names is what the
        document is about, and its every sentence speaks of it, named again or not."""
        sentence_tokens = self._sentence_tokens(sids)
        keep = q.tokens.content if q.tokens.content.any() else np.ones(len(q.tokens.content), dtype=bool)
        q_rows, q_spans = q.tokens.vectors[keep], q.tokens.spans[keep]
        # One conversion of every sentence's tokens (float16 when read from disk), then small
        # products: one large product runs multi-threaded BLAS against the models' thread
        # pools, and took 17 ms where these take 0.5.
        sizes = [len(t.content) for t in sentence_tokens]
        ends = np.cumsum(sizes)
        all_rows = np.concatenate([t.vectors for t in sentence_tokens]).astype(np.float32, copy=False)
        best = np.stack([(q_rows @ all_rows[a:b].T).max(axis=1) for a, b in zip(ends - sizes, ends)], axis=1)
        for name, (a, b) in zip(q.names, q.name_spans):
            in_name = (q_spans[:, 0] >= a) & (q_spans[:, 1] <= b)
            naming = [n for n, sid in enumerate(sids) if self.lexicon.names_in(name, self.index.sentence(sid).doc_id)]
            best[np.ix_(in_name, naming)] = 1.0
        return best.mean(axis=0).astype(np.float32)

    def _sentence_tokens(self, sids: list[int]) -> list[TokenVectors]:
        """Token vectors of the sentences: stored at ingest, or (for an index too large to
        store them) from the cache or one batch through the model. The server answers on
        several threads, so the cache is only touched under a lock, and the model runs outside it."""
        stored = self.index.stored_tokens(sids)
        if stored is not None:
            return stored
        with self._tokens_lock:
            found = {sid: self._tokens[sid] for sid in sids if sid in self._tokens}
            for sid in found:
                self._tokens.move_to_end(sid)
        missing = [sid for sid in sids if sid not in found]
        if missing:
            _, encoded = self.encoder.encode_tokens([self.index.sentence_text(sid) for sid in missing])
            fresh = {sid: small(t, self.encoder.weights_sha256) for sid, t in zip(missing, encoded)}
            found.update(fresh)
            with self._tokens_lock:
                self._tokens.update(fresh)
                while len(self._tokens) > TOKEN_CACHE_SENTENCES:
                    self._tokens.popitem(last=False)
        return [found[sid] for sid in sids]

    def score(self, q: Question, passages: list[Passage]) -> list[Scored]:
        sids, rows = self.features(q, passages)
        scores = rows @ SENTENCE_WEIGHTS
        return sorted((Scored(sid, float(x), row) for sid, x, row in zip(sids, scores, rows)), key=lambda c: (-c.score, c.sid))

    def checks(self, q: Question, sid: int) -> tuple[bool, bool]:
        """Whether the sentence can answer, as two checks (`qa.scoring.CHECKS`) the fusion and
        the abstention model weigh: it holds the kind of value a money, count, date or
        contact question asks for; for "how many X", a number beside a word close in meaning
        to X."""
        text = match_text(self.index.sentence_text(sid))
        value = q.kind not in _REQUIRED or has_value(q.kind, text, q.text)
        counts = q.kind != "count" or q.counted is None or self._counts(q, text, self._sentence_tokens([sid])[0])
        return value, counts

    def compose(self, q: Question, passages: list[Passage], k: int, watch: Stopwatch | None = None) -> Answer:
        ranked = self.score(q, passages)
        reading = self.read(q, ranked, passages, watch or Stopwatch())
        order = [reading.sids[i] for i in np.argsort(-np.asarray(reading.fused), kind="stable")]
        passages = self.rerank(passages, order + [c.sid for c in ranked])[:k]
        if not order:
            return Answer.refusal(q.asked, q.query, ABSTAIN_MESSAGE, passages=passages, reading=reading,
                                  closest=self.closest(passages))
        confidence = round(reading.confidence, 4)
        lead_text = self.index.sentence_text(order[0])
        if confidence < self.threshold:
            return Answer.refusal(q.asked, q.query, ABSTAIN_MESSAGE, confidence=confidence, passages=passages,
                                  lead_text=lead_text, reading=reading, closest=self.closest(passages))

        fused = dict(zip(reading.sids, reading.fused))
        can = dict(zip(reading.sids, reading.checks.all(axis=1)))
        chosen = [order[0]]
        for sid in order[1:]:
            if len(chosen) >= self.max_sentences or fused[sid] < fused[order[0]] - self.extra_margin:
                break
            if can[sid] and not self._repeats(sid, chosen, q):
                chosen.append(sid)
        # A list item that answers alone is shown with the line that introduces its list after
        # it ("Merseyside Police", then "Our partners"): the item answers, the line says of what.
        lead, context = self.index.sentence(order[0]), None
        intro = self.lead_in(order[0]) if lead.item else None
        if intro is not None and intro not in chosen and not any(self.lead_in(s) == intro for s in chosen[1:]):
            chosen.insert(1, context := intro)
        shown, more = [], 0
        for sid in chosen:
            if sid == context:  # its list has more than the item quoted: say so
                shown.append(sid)
                more += sum(i not in chosen for i in self.list_items(sid))
                continue
            items = self.list_items(sid)
            # A list's introduction after one of its items, already quoted, would only interrupt it.
            lead_in = [] if set(items) & set(shown) else [sid, sid + 1 if self.index.sentence(sid).colon else None]
            shown += [x for x in (*lead_in, *items[:LIST_ITEMS]) if x is not None and x not in shown]
            more += max(0, len(items) - LIST_ITEMS)
        # Several items of one list answering: a set was asked for. They are shown as the list
        # has them, in its order and with none between them left out, and the list has more.
        lists = [self.lead_in(s) for s in chosen if self.index.sentence(s).item]
        for intro in {i for i in lists if lists.count(i) > 1 and i not in chosen}:
            items = self.list_items(intro)
            picked = [i for i in items if i in shown]
            run = items[items.index(picked[0]):items.index(picked[-1]) + 1][:LIST_ITEMS]
            at = min(shown.index(i) for i in picked)
            rest = [x for x in shown if x not in picked]
            shown = rest[:at] + run + rest[at:]
            more += sum(s not in shown for s in items)

        sentences, citations = [], []
        spans = dict(zip(reading.sids, reading.spans))
        for n, sid in enumerate(shown, start=1):
            s = self.index.sentence(sid)
            doc = self.index.document(s.doc_id)
            text = self.index.sentence_text(sid)
            citations.append(Citation(n, doc.doc_id, doc.title, doc.date, s.start, s.end, text, doc.page_of(s.start)))
            # The first sentence's best words are named; a later one's only where the reader
            # finds an answer in it at all.
            span = spans.get(sid)
            named = span if sid == order[0] or (span is not None and span.score > 0) else None
            sentences.append(AnswerSentence(text, n, self._in_document(sid, named), s.item))
        answer = answer_text(sentences)
        return Answer(question=q.asked, answer=answer, abstained=False, confidence=confidence, sentences=sentences,
                      citations=citations, query=q.query, passages=passages, lead_text=lead_text, reading=reading,
                      assurance="sure" if confidence >= self.sure else "possible", more_items=more)

    def closest(self, passages: list[Passage]) -> list[Citation]:
        """The passages that came nearest (best sentence first), as citations of whole chunks."""
        out = []
        for n, p in enumerate(passages[:CLOSEST_PASSAGES], start=1):
            doc = self.index.document(p.doc_id)
            out.append(Citation(n, doc.doc_id, doc.title, doc.date, p.start, p.end, p.text,
                                doc.page_of(p.start)))
        return out

    def read(self, q: Question, ranked: list[Scored], passages: list[Passage], watch: Stopwatch) -> Reading:
        """The reader reads the best `reader_candidates` sentences by the linear score with
        the question; the learned fusion orders them and the abstention model says how
        likely the first is to be right. Each sentence is read alone but for a list item,
        which is read after its list's introduction: with the sentence before it prepended
        where it refers back, the reader's top pick held the answer for 71.5% of the SQuAD
        fit split's questions, against 82.3% alone."""
        top = ranked[: self.reader_candidates]
        sids = [c.sid for c in top]
        linear = np.array([c.score for c in top], dtype=np.float32)
        rows = np.array([c.row for c in top], dtype=np.float32).reshape(len(top), len(SENTENCE_FEATURES))
        texts = [self._reader_text(sid) for sid in sids]
        watch.lap("compose")
        logits, spans = self.reader.read(q.read_as, texts)
        if q.yes_no:
            spans = [None] * len(texts)
        watch.lap("read")
        checks = np.array([self.checks(q, sid) for sid in sids], dtype=bool).reshape(len(top), len(CHECKS))
        dense = max((p.dense for p in passages), default=0.0)
        bm25 = max((p.lexical for p in passages), default=0.0)
        if not sids:
            return Reading(sids=[], rows=rows, linear=linear, logits=logits, spans=spans, checks=checks,
                           fused=np.zeros(0, np.float32), dense=dense, bm25=bm25, confidence=0.0)
        span_scores = span_margins(spans)
        fused = self.model.fuse(rows, logits, span_scores, checks)
        confidence = self.model.confidence(fused, linear, logits, span_scores, checks, dense, bm25)
        if not self._about_what_is_named(q, sids[int(np.argmax(fused))]):
            confidence = 0.0
        return Reading(sids=sids, rows=rows, linear=linear, logits=logits, spans=spans, checks=checks, fused=fused,
                       dense=dense, bm25=bm25, confidence=confidence)

    def _about_what_is_named(self, q: Question, sid: int) -> bool:
        """Whether the sentence's document holds one of the things the question names, by
        the words that tell one thing from another: its acronyms and its words that are no
        common English word ("Liverpool" of "Liverpool Health Partners", "Langlands" of "Sir
        Alan Langlands", "LHP" of "Describe LHP's"; a question typed in Title Case makes one
        name of all its words), each of whose terms some document holds ("Zne", a typo too
        short to mend, or "WWII", which no document writes, tells no document from another).
        True where the question names nothing so told."""
        named = [known for a, b in q.name_spans if (known := self._distinctive(q.query[a:b]))]
        doc_id = self.index.sentence(sid).doc_id
        return not named or any(self.lexicon.names_in(name, doc_id) for name in named)

    def _distinctive(self, name: str) -> frozenset[str]:
        kept = [w for w in name.split() if (w.isupper() and len(w) > 1) or not is_common_word(w.lower().strip(".,'’"))]
        return frozenset(t for t in self.lexicon.query_terms(" ".join(kept)) if len(t) > 1 and t in self.lexicon.idf)

    def _in_document(self, sid: int, span: Span | None) -> tuple[int, int] | None:
        """The reader's span (offsets into the text it read) as document offsets, when it
        falls inside the sentence itself (a list item is read after its introduction)."""
        if span is None:
            return None
        s = self.index.sentence(sid)
        lead = len(self._reader_text(sid)) - (s.end - s.start)
        if span.start < lead:
            return None
        return s.start + span.start - lead, s.start + span.end - lead

    def _reader_text(self, sid: int) -> str:
        """A sentence as the reader reads it: a list item after the line that introduces its
        list, and that line with its items, so that "Our partners" can answer "Who are the
        partners?"."""
        text = self.index.sentence_text(sid)
        if self.index.sentence(sid).item:
            return f"{self.index.sentence_text(self.lead_in(sid)).rstrip(':')}: {text}"
        items = self.list_items(sid)
        if items:
            return f"{text.rstrip(':')}: " + "; ".join(self.index.sentence_text(i).lstrip("-*• ") for i in items[:LIST_ITEMS])
        return text

    def rerank(self, passages: list[Passage], order: list[int]) -> list[Passage]:
        """Passages by their best sentence, fused retrieval order breaking ties: the reader
        and the sentence scorer read each sentence against the question, which ranking
        whole chunks cannot. `order` lists sentences best first (repeats are ignored)."""
        position: dict[int, int] = {}
        for n, sid in enumerate(order):
            position.setdefault(sid, n)
        return sorted(passages, key=lambda p: min((position.get(s, len(order)) for s in self.index.chunk(p.chunk_id).sentence_ids),
                                                  default=len(order)))

    def _counts(self, q: Question, text: str, tokens: TokenVectors) -> bool:
        """Whether a number in the sentence counts what the question counts: "six major NHS
        organisations" does not answer "how many staff", "10,000 troops" answers "how many
        soldiers". (On SQuAD 2.0 dev's "how many" questions it refuses the top sentence of
        26% of the unanswerable ones and of 2% of those answered right.)"""
        floor = COUNTED_MIN_COSINE if projected(self.encoder.weights_sha256) else COUNTED_MIN_COSINE_WHOLE
        best = counted_cosine(q.counted, text, tokens, q.text)
        return best is not None and best >= floor

    def lead_in(self, sid: int) -> int | None:
        """The sentence whose words this one inherits (`Sentence.lead_in`), if any."""
        back = self.index.sentence(sid).lead_in
        return sid - back if back else None

    def list_items(self, sid: int) -> list[int]:
        """The items of the list this sentence introduces, if it introduces one."""
        return list(range(sid + 1, sid + 1 + self.index.sentence(sid).items))

    def _repeats(self, sid: int, chosen: list[int], q: Question) -> bool:
        """Whether the sentence says again what a chosen one says: most of the smaller one's
        words beyond the question's are in the other ("Professor Phil Wood, … LAHP chair
        elect." inside "… LAHP chair elect, Professor Phil Wood, said: …"), or the two
        are close paraphrases."""
        said = self.lexicon.said
        mine = said(self.index.sentence_text(sid)) - q.terms
        vecs = self.index.sentence_vectors_of([sid, *chosen])
        for c, vec in zip(chosen, vecs[1:]):
            theirs = said(self.index.sentence_text(c)) - q.terms
            if float(vecs[0] @ vec) >= REDUNDANT_COSINE:
                return True
            if mine and theirs and len(mine & theirs) / min(len(mine), len(theirs)) >= REPEAT_OVERLAP:
                return True
        return False


_SINCE_WHEN = re.compile(r"\bhow (?:long|old)\b")


def _new(m: re.Match, asked: str) -> bool:
    """Whether a value found in the text is not one the (lower-case) question already says, as
    words: "two" is new to "How many types of networks …?", though "networks" spells it."""
    return not re.search(rf"(?<!\w){re.escape(m.group().lower())}(?!\w)", asked)


def counted_cosine(counted: np.ndarray, text: str, tokens: TokenVectors, asked: str,
                   window: int = COUNTED_WINDOW) -> float | None:
    """The best cosine of what a "how many" question counts (its token vectors) with a
    content word piece at most `window` of them from a number in the sentence (`text` as
    `match_text` gives it) that the question does not say itself; None without one."""
    numbers = [m.span() for m in _new_counts(text, asked.lower())]
    words = np.flatnonzero(tokens.content)  # "over twenty of the city's largest anchor institutions"
    at = [n for n, i in enumerate(words) if any(tokens.spans[i][0] < end and tokens.spans[i][1] > start for start, end in numbers)]
    near = sorted({words[m] for n in at for m in range(max(0, n - window), min(len(words), n + window + 1))})
    return float((counted @ tokens.vectors[near].T.astype(np.float32)).max()) if near else None


def _new_counts(text: str, asked: str) -> Iterator[re.Match]:
    """Counts in the text that the (lower-case) question does not already hold; years are dates, not counts."""
    return (m for m in _COUNT.finditer(text) if _new(m, asked) and not _YEAR.match(m.group()))


def has_value(kind: str, text: str, question: str) -> bool:
    """Whether the sentence holds a value of the wanted kind (one of `_REQUIRED`) that the question does not."""
    asked = question.lower()
    if kind == "money":
        return any(_new(m, asked) for m in _MONEY.finditer(text))
    if kind == "count":  # "How long have they worked together?" is answered "since 2021" too
        return any(_new_counts(text, asked)) or (_SINCE_WHEN.search(asked) is not None and
                                                  any(_new(m, asked) for m in _DATE.finditer(text)))
    if kind == "date":
        return any(_new(m, asked) for m in _DATE.finditer(text))
    return bool(_CONTACT.search(text))


def more_items(n: int) -> str:
    return f"{n} more item{'s' if n != 1 else ''}"


def answer_text(sentences: list[AnswerSentence]) -> str:
    """The quoted sentences, each followed by its marker; a list's items one to a line, so
    that each marker reads as its own item's ("Our partners [1]" / "- Liverpool City Council [2]")."""
    out, after_item = "", False
    for s in sentences:
        apart = "\n" if out and (s.item or after_item) else " " if out else ""
        out += f"{apart}- {s.text} [{s.citation}]" if s.item else f"{apart}{s.text} [{s.citation}]"
        after_item = s.item
    return out


def render_text(answer: Answer, ids: bool = True) -> str:
    """The answer as plain text: quoted sentences with markers, then one line per source:
    its title, date and page, and with `ids` (the command line) where it is exactly."""
    if answer.abstained:
        return answer.message
    lines = [answer.doubt, answer.answer,
             *([f"(The list in the source has {more_items(answer.more_items)}.)"] if answer.more_items else []), ""]
    for c in answer.citations:
        where = [c.date or "", f"p. {c.page}" if c.page else ""]
        exact = f" ({c.doc_id}, characters {c.start}-{c.end})" if ids else ""
        lines.append(f"[{c.id}] {', '.join([c.title, *filter(None, where)])}{exact}")
    return "\n".join(lines)
