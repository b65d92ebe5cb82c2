"""The question stage: what the user typed, made into the `Question` every later stage reads.

`prepare`, top to bottom:

1. check it (and the conversation it follows) and say what is wrong if it is unusable;
2. put it plainly: no polite frame ("Can you tell me…"), words the corpus never uses
   spelled as the corpus does, a question typed in lower case given the corpus's
   capitals for its names, and an end mark (the scorer was fitted on questions that end
   in "?", and MiniLM reads the mark);
3. make it standalone (`qa.followup`): a follow-up that points back borrows the
   conversation's subject, or the person an answer named ("What did she say?"); one that
   may or may not lean on it is read both ways;
4. embed it once: its vector and its token vectors come from one forward pass;
5. work out its facts: its terms, the kind of value it asks for, what it
   names and where, the question as the reader reads it (the corpus's defined names in
   both forms), and what a "how many" question counts.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import numpy as np

from .config import Config
from .embed import Encoder, TokenVectors
from .followup import resolve
from .text import STOPWORDS, Lexicon, match_text, named_spans
from .tokens import small
from .types import BadQuestion, Stopwatch


@dataclass(frozen=True)
class Question:
    asked: str  # as typed, trimmed
    query: str  # plain and standalone: what is searched and shown
    read_as: str  # the query as the reader reads it: defined names in both forms (`Lexicon.spelled_out`)
    vector: np.ndarray  # L2-normalised
    tokens: TokenVectors
    text: str  # the query normalised for matching
    terms: frozenset[str]
    weight: float  # summed IDF of its terms
    kind: str | None  # see `question_kind`
    yes_no: bool  # see `asks_yes_or_no`
    names: tuple[frozenset[str], ...]  # the terms of each thing it names
    name_spans: tuple[tuple[int, int], ...]  # where each of those is in the query
    counted: np.ndarray | None  # token vectors of what a "how many" question counts


def prepare(asked, history, lexicon: Lexicon, encoder: Encoder, config: Config,
            watch: Stopwatch | None = None) -> list[Question]:
    """The question as it is to be read: one `Question`, or two where it follows others and
    may or may not lean on them (`qa.followup.resolve`), to be read both ways."""
    watch = watch or Stopwatch()
    asked = check_text(asked, "question", config.max_question_chars)
    history = check_history(history, config.max_history_turns)
    resolution = resolve(plain(asked, lexicon), [{**turn, "question": plain(turn["question"], lexicon)}
                                                for turn in history])
    queries = [resolution.query, *([resolution.alternative] if resolution.alternative else [])]
    watch.lap("prepare")
    vectors, tokens = encoder.encode_tokens(queries)  # both readings in one forward pass
    # compared with the sentences' tokens as they are kept
    tokens = [small(t, encoder.weights_sha256, content_only=False) for t in tokens]
    watch.lap("embed")
    questions = [_facts(asked, query, vector, toks, lexicon) for query, vector, toks in zip(queries, vectors, tokens)]
    watch.lap("prepare")
    return questions


def _facts(asked: str, query: str, vector: np.ndarray, tokens: TokenVectors, lexicon: Lexicon) -> Question:
    q_terms = lexicon.query_terms(query)
    named = [(span, frozenset(lexicon.query_terms(query[span[0]:span[1]]))) for span in named_spans(query)]
    named = [(span, ts) for span, ts in named if ts]
    return Question(
        asked=asked, query=query, read_as=lexicon.spelled_out(query), vector=vector, tokens=tokens, text=match_text(query),
        terms=frozenset(q_terms), weight=sum(lexicon.weight(t) for t in q_terms) or 1.0,
        kind=question_kind(query), yes_no=asks_yes_or_no(query),
        names=tuple(ts for _, ts in named), name_spans=tuple(span for span, _ in named),
        counted=_counted(query, tokens),
    )


# Characters that show nothing: besides spaces, control characters (NUL, escape, DEL, the
# C1 block) and format characters (Unicode categories Cc and Cf: zero-width spaces and
# joiners, direction marks, the byte order mark, soft hyphens), these fillers and selectors.
_INVISIBLE = re.compile(r"[\u034f\u115f\u1160\u2800\u3164\uffa0\ufe00-\ufe0f\U000e0100-\U000e01ef]")
_UNSEEN_CATEGORIES = ("Cc", "Cf")


# Not questions about the documents: a greeting or thanks, a question about the bot, or a
# task it does not do. These get a reply that says what it can do, instead of a search
# whose nearest sentence would look like an answer.
_GREETING = re.compile(r"(?:hi|hello|hey|hiya|good (?:morning|afternoon|evening))(?: there)?")
_THANKS = re.compile(r"(?:thanks?|thank you|cheers|bye|goodbye|ok|okay|great)(?: you| very much| again| a lot)?")
_ABOUT_BOT = re.compile(r"(?:help|who are you|what are you|what can you do|what do you do|how do you work"
                        r"|what can i ask(?: you)?)")
_TASK = re.compile(r"(?:(?:can|could|would|will) you |please )?(?:please )?"
                   r"(?:summari[sz]e|translate|write|draft|compose|rewrite|paraphrase|generate|tell me a joke|draw)\b")
HELP_MESSAGE = ("I answer questions about the documents listed here, with sentences quoted from them and a link "
                "to each source. Ask about one fact at a time: who, what, when, where or how many.")
THANKS_MESSAGE = "Glad to help. Ask another question about the documents whenever you like."
TASK_MESSAGE = ("I cannot summarise, translate or write text: I only answer questions with sentences quoted from "
                "the documents, each with its source. Ask about one fact at a time: who, what, when, where or how many.")


def help_reply(asked: str) -> str | None:
    """The reply to something that is not a question about the documents (checked text), or None."""
    said = " ".join(re.sub(r"[^\w\s']", " ", asked.lower()).split())
    if _GREETING.fullmatch(said) or _ABOUT_BOT.fullmatch(said):
        return HELP_MESSAGE
    if _THANKS.fullmatch(said):
        return THANKS_MESSAGE
    if _TASK.match(said):
        return TASK_MESSAGE
    return None


def check_text(text, what: str, limit: int) -> str:
    if not isinstance(text, str) or not text.strip():
        raise BadQuestion(f"The {what} is empty. Type a {what} in words.")
    if not _visible(text):
        raise BadQuestion(f"The {what} is empty: it holds only characters that show nothing (control characters "
                          f"such as NUL, zero-width or other invisible ones). Type a {what} in words.")
    if len(text) > limit:
        raise BadQuestion(f"The {what} is {len(text)} characters long; the limit is {limit}. Shorten it.")
    _check_unicode(text, what)
    return text.strip()


def _visible(text: str) -> bool:
    """Whether any character of it shows (the first one usually does)."""
    return any(not (c.isspace() or _INVISIBLE.match(c) or unicodedata.category(c) in _UNSEEN_CATEGORIES)
               for c in text)


def _check_unicode(text: str, what: str) -> None:
    # JSON may escape half of a UTF-16 pair ("\ud800"); no model can read that.
    if any("\ud800" <= c <= "\udfff" for c in text):
        raise BadQuestion(f"The {what} holds a broken character (half of a UTF-16 surrogate pair, such as \\ud800). "
                          "Send it as valid Unicode text.")


def check_history(history, limit: int) -> list[dict]:
    if history is None:
        return []
    if not isinstance(history, list) or not all(
        isinstance(t, dict) and isinstance(t.get("question"), str) and isinstance(t.get("answer", ""), str)
        for t in history
    ):
        raise BadQuestion('history must be a list of {"question": "...", "answer": "..."} objects.')
    if len(history) > limit:
        raise BadQuestion(f"history has {len(history)} turns; the limit is {limit}. Send only the latest turns.")
    for turn in history:
        _check_unicode(turn["question"] + turn.get("answer", ""), "history")
    return history


# "Can you tell me how many…", "I'd like to know who…": a frame around the question
# that only dilutes what the model reads, and makes "Can you…" look like a yes/no question.
_FRAME = re.compile(
    r"^\s*(?:please\s+)?(?:(?:can|could|would|will)\s+you\s+(?:please\s+)?(?:tell|show|let)\s+me|tell\s+me|let\s+me\s+know|"
    r"i(?:'d|\s+would)\s+like\s+to\s+know|i\s+(?:want|need)\s+to\s+know|i\s+wonder(?:ed)?|do\s+you\s+know)"
    r"(?:\s+please)?\s*,?\s+(?=(?:(?:on|in|at|by|for|from|to|with|of|since|until)\s+)?(?:who|whom|whose|what|which|when|where|why|how|is|are|was|were|do|does|did|"
    r"can|could|will|would|has|have|had|should)\b)", re.I)


def unframed(question: str) -> str:
    """The question without a polite frame around it: "Can you tell me who chairs the LAHP?"
    -> "who chairs the LAHP?"."""
    return _FRAME.sub("", question, count=1)


def plain(question: str, lexicon: Lexicon) -> str:
    """The question as the model and the name checks should read it: no polite frame,
    typos mended, a question typed in lower case (or all in capitals, where every word
    would read as an acronym) given the corpus's capitals for its names, a capital to open
    it, an end mark."""
    if not any(c.islower() for c in question):
        question = question.lower()
    question = _opened(lexicon.respell(unframed(question)))
    return question if question.rstrip()[-1:] in ("?", ".", "!") else question.rstrip() + "?"


def _opened(question: str) -> str:
    """A question opened by a function word in lower case ("who runs …", "how many …", left
    so by a polite frame taken off) given its capital, as the reader was taught on questions
    written so. Only a function word: "iphone …" or "chair of …" capitalised would read as
    a name."""
    first = re.match(r"[a-z]+\b", question)
    return question[0].upper() + question[1:] if first and first.group() in STOPWORDS else question


# The kinds of value a question may ask for; see `question_kind`.
# Verbs that open a question answered yes or no ("Is …?", "Does …?"); "may", "must" and
# the like are verbs that may follow "when" too, but seldom open a question.
_YES_NO_VERBS = "is|are|was|were|do|does|did|has|have|had|can|could|will|would|should"
_AUXILIARY = rf"(?:{_YES_NO_VERBS}|shall|may|might|must)"
_KINDS = (
    # Contact details: "What website has more about LHP?", "What number do I call?"
    ("contact", re.compile(r"\b(?:web ?sites?|web (?:address|page)|url|e-?mail(?: address)?|(?:tele)?phone(?: number)?|number (?:do|can|should) (?:i|we|you) (?:call|ring|dial))\b", re.I)),
    ("money", re.compile(r"\bhow much (?:money|funding|cash|investment)\b|\bhow much (?:\w+ ){0,6}(?:cost|spend|spent|earn|pay|paid|worth|raise|raised|give|gave|invest|invested)\b|\bwhat (?:\w+ )?(?:budget|salary|price|cost|revenue|income|funding)\b", re.I)),
    ("count", re.compile(r"\bhow (?:many|much|old|long|large|big|far|often)\b|\bwhat (?:number(?! (?:do|can|should) (?:i|we|you) (?:call|ring|dial))|percentage|proportion|amount|size)\b", re.I)),
    # "When" asks for a date where it opens the question or is asked after a preposition
    # ("until when?"); inside a clause ("what does water turn into when heated?") it does
    # not, nor where it opens a clause that another question word follows ("When forces act
    # on a body, what must be accounted for?"; "When did the man who founded it die?" asks
    # the date: there the verb follows "when").
    ("date", re.compile(rf"^\W*when\b(?!\s+(?!{_AUXILIARY}\b).*\b(?:what|which|who|whom|whose|where|how)\b)|\b(?:by|until|till|since|from) when\b|\bwhen\W*$|\bwhat (?:year|date|month|day|time|century|decade)\b|\bwhich (?:year|date|month|day|century)\b|\bin what year\b", re.I)),
    # A name is no value a sentence can be checked for, but "Who was chair when it
    # launched?" asks for one, not for a date.
    ("name", re.compile(r"\bwho(?:m|se)?\b|\bwhere\b|\b(?:which|what) (?:compan(?:y|ies)|organi[sz]ations?|universit(?:y|ies)|"
                        r"colleges?|persons?|people|cit(?:y|ies)|towns?|countr(?:y|ies)|count(?:y|ies)|states?|nations?|"
                        r"regions?|areas?|places?|rivers?|trusts?|hospitals?|bod(?:y|ies)|groups?)\b", re.I)),
)


# "Is the University of Liverpool a partner?", "Does the LSP deliver services itself?"
_YES_NO = re.compile(rf"^\W*(?:{_YES_NO_VERBS})\b", re.I)


def asks_yes_or_no(question: str) -> bool:
    """Whether the question is answered yes or no, not by a phrase. SQuAD has almost none
    (35 of the dev half's 6,078 questions, 9 of them answerable), so the reader's span head never learned them:
    taught that an answer phrase never repeats the question, it scores the sentence that
    says yes ("University of Liverpool", for "Is the University of Liverpool a partner of
    the LSP?") below its neighbours. For these the reader names no phrase. A question
    that offers a choice ("Is it easier or harder to change EU law?") is answered by one."""
    return bool(_YES_NO.search(question)) and not re.search(r"\bor\b", question, re.I)


def question_kind(question: str) -> str | None:
    """The kind of value asked for, from the question's first asking phrase: "Who was
    chair when it launched?" asks for a name, not a date."""
    found = [(m.start(), n) for n, (name, rx) in enumerate(_KINDS) if (m := rx.search(question))]
    return _KINDS[min(found)[1]][0] if found else None


# What a "how many" question counts: up to three words after it, to the first function
# word ("How many staff does Liverpool employ?" -> "staff", not "staff does Liverpool",
# which a number beside "Liverpool" would satisfy), "of" and "and" let through ("pieces
# of legislation").
_COUNTED = re.compile(r"\bhow many\s+((?:[\w'-]+\s+){0,4}[\w'-]+)", re.I)
_COUNTED_WORD = re.compile(r"[\w'-]+")
_COUNTED_JOINS = ("of", "and")


def _counted(question: str, tokens: TokenVectors) -> np.ndarray | None:
    m = _COUNTED.search(question)
    if not m:
        return None
    a = b = m.start(1)
    named = 0
    for w in _COUNTED_WORD.finditer(m.group(1)):
        word = w.group().lower()
        if named == 3 or (word in STOPWORDS and word not in _COUNTED_JOINS):
            break
        named += word not in _COUNTED_JOINS
        b = a + w.end()
    rows = tokens.content & (tokens.spans[:, 0] >= a) & (tokens.spans[:, 1] <= b)
    return tokens.vectors[rows] if rows.any() else None
