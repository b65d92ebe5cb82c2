"""qa.question on its own: checks and their messages, replies to what is no question, the
polite frame and the plain form of a question, the kind of value it asks for, yes/no questions, and `prepare`'s
facts, with a stand-in encoder of one token a word. No model is loaded."""

from __future__ import annotations

import re

import numpy as np
import pytest

from qa.config import Config
from qa.embed import TokenVectors
from qa.question import (
    HELP_MESSAGE,
    TASK_MESSAGE,
    THANKS_MESSAGE,
    asks_yes_or_no,
    check_history,
    check_text,
    help_reply,
    plain,
    prepare,
    question_kind,
    unframed,
)
from qa.text import STOPWORDS, Lexicon, terms
from qa.types import BadQuestion, Stopwatch

DOCUMENTS = {
    "lsp": "The Liverpool Strategic Partnership (LSP) brings together twenty anchor institutions. "
           "Kate Lodge chairs the LSP board in Liverpool.",
    "lahp": "Leeds Academic Health Partnership (LAHP) employs 1,200 staff in Leeds.",
}
SENTENCES = [
    ("lsp", "The Liverpool Strategic Partnership (LSP) brings together twenty anchor institutions."),
    ("lsp", "Kate Lodge chairs the LSP board in Liverpool."),
    ("lahp", "Leeds Academic Health Partnership (LAHP) employs 1,200 staff in Leeds."),
]


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return Lexicon([t for _, t in SENTENCES], DOCUMENTS, [d for d, _ in SENTENCES])


class WordEncoder:
    """One token a word, a [CLS] row first; a word's vector is fixed by its letters. Enough
    for what `prepare` does with token vectors (which rows belong to which words)."""

    model_id, weights_sha256, dim, max_tokens = "words", "0" * 64, 8, 256

    def __init__(self):
        self.asked: list[list[str]] = []

    def _vector(self, word: str) -> np.ndarray:
        v = np.random.default_rng(sum(map(ord, word))).standard_normal(self.dim).astype(np.float32)
        return v / np.linalg.norm(v)

    def encode_tokens(self, texts, progress=None):
        self.asked.append(list(texts))
        vectors, tokens = [], []
        for text in texts:
            found = list(re.finditer(r"[\w'-]+", text))
            rows = [self._vector("[CLS]"), *(self._vector(m.group().lower()) for m in found)]
            tokens.append(TokenVectors(
                vectors=np.stack(rows),
                content=np.array([False, *(m.group().lower() not in STOPWORDS for m in found)]),
                spans=np.array([(0, 0), *(m.span() for m in found)]),
            ))
            vectors.append(np.mean(rows, axis=0) / np.linalg.norm(np.mean(rows, axis=0)))
        return np.stack(vectors), tokens


@pytest.mark.parametrize("said, reply", [
    ("hi", HELP_MESSAGE), ("Hello there!", HELP_MESSAGE), ("Good morning", HELP_MESSAGE),
    ("What can you do?", HELP_MESSAGE), ("help", HELP_MESSAGE), ("Who are you?", HELP_MESSAGE),
    ("thanks", THANKS_MESSAGE), ("Thank you very much!", THANKS_MESSAGE), ("ok", THANKS_MESSAGE),
    ("Can you summarise the report?", TASK_MESSAGE), ("please translate this", TASK_MESSAGE),
    ("Write a poem about Leeds", TASK_MESSAGE),
    ("Who chairs the LSP?", None), ("Hi, who chairs the LSP?", None), ("Help with what?", None),
    ("Who wrote the business case?", None),  # "write" only as a task it is asked to do
])
def test_what_is_no_question_about_the_documents_gets_a_reply(said, reply):
    assert help_reply(said) == reply


@pytest.mark.parametrize("text, says", [
    ("", "The question is empty. Type a question in words."),
    ("   \n", "The question is empty."),
    (None, "The question is empty."),
    (5, "The question is empty."),
    ("\u200b\u200d\ufeff", "only characters that show nothing"),
    ("\x00\x1b", "only characters that show nothing"),
    ("x" * 11, "The question is 11 characters long; the limit is 10. Shorten it."),
    ("bad \ud800", "half of a UTF-16 surrogate pair"),
])
def test_an_unusable_question_is_refused_saying_why(text, says):
    with pytest.raises(BadQuestion, match=re.escape(says)):
        check_text(text, "question", 10)


def test_a_usable_question_is_trimmed():
    assert check_text("  Who?\n", "question", 10) == "Who?"
    assert check_text("\u200bWho?", "question", 10) == "\u200bWho?"  # something in it shows
    assert check_text("x" * 10, "question", 10) == "x" * 10  # the limit itself is allowed


def test_history_is_checked_turn_by_turn():
    assert check_history(None, 2) == []
    turns = [{"question": "Who chairs the LSP?", "answer": "Kate Lodge."}, {"question": "Since when?"}]
    assert check_history(turns, 2) == turns
    for bad in ("Who?", [{"question": 1}], [{"answer": "x"}], [{"question": "a", "answer": None}], ["Who?"]):
        with pytest.raises(BadQuestion, match="history must be a list of"):
            check_history(bad, 2)
    with pytest.raises(BadQuestion, match="history has 3 turns; the limit is 2"):
        check_history([{"question": "a"}] * 3, 2)
    with pytest.raises(BadQuestion, match="broken character"):
        check_history([{"question": "a", "answer": "\udc00"}], 2)


def test_a_question_is_put_plainly(lexicon):
    assert plain("Can you tell me who chairs the liverpol stratgic partnership", lexicon) == \
        "Who chairs the Liverpool Strategic Partnership?"
    assert plain("Who chairs the LSP?", lexicon) == "Who chairs the LSP?"
    # A function word opening it gets its capital, as the reader was taught; another word
    # would then read as a name.
    assert plain("who chairs the LSP?", lexicon) == "Who chairs the LSP?"
    assert plain("chair of the lsp?", lexicon) == "chair of the LSP?"
    assert plain("iphone use in the lsp", lexicon) == "iphone use in the LSP?"
    assert plain("Who chairs the LSP!", lexicon) == "Who chairs the LSP!"  # an end mark is kept
    assert plain("How many staff work in Leeds  ", lexicon) == "How many staff work in Leeds?"
    # All in capitals, every word would be an acronym: read as typed in lower case (review).
    assert plain("WHO CHAIRS THE LIVERPOOL STRATEGIC PARTNERSHIP?", lexicon) == \
        "Who chairs the Liverpool Strategic Partnership?"


@pytest.mark.parametrize("question, kind", [
    ("Who chairs the LSP?", "name"),
    ("Where is the LSP based?", "name"),
    ("Which university leads it?", "name"),
    ("Who was chair when it launched?", "name"),  # the first asking phrase decides
    ("When was it founded?", "date"),
    ("In what year did it start?", "date"),
    ("It was stable until when?", "date"),
    ("When did the man who founded it die?", "date"),
    ("When forces act on a body, what must be accounted for?", None),
    ("What does water turn into when heated?", None),
    ("How many staff does Leeds employ?", "count"),
    ("How often does the board meet?", "count"),
    ("What percentage of staff are nurses?", "count"),
    ("How much money was raised?", "money"),
    ("How much did the building cost?", "money"),
    ("What annual budget does it have?", "money"),
    ("What website has more about LHP?", "contact"),
    ("What is their phone number?", "contact"),
    ("What is the LSP?", None),
    ("Why did it start?", None),
])
def test_the_kind_of_value_a_question_asks_for(question, kind):
    assert question_kind(question) == kind


def test_what_number_to_call_asks_for_a_contact_detail():
    """"What number" asks for a count but where a number is to be called: it matched first
    and made this a count question, though _KINDS's comment gives it as a contact one."""
    assert question_kind("What number do I call?") == "contact"
    assert question_kind("What number of staff work there?") == "count"


@pytest.mark.parametrize("question, yes_no", [
    ("Is the University of Liverpool a partner?", True),
    ("Does the LSP deliver services itself?", True),
    ("  Were they paid?", True),
    ("Has it met?", True),
    ("Is it easier or harder to change EU law?", False),  # a choice is answered by a phrase
    ("Who is the chair?", False),
    ("Island of what?", False),  # "is" as a whole word only
    ("Why is it late?", False),
])
def test_a_yes_or_no_question_is_told_from_one_answered_by_a_phrase(question, yes_no):
    assert asks_yes_or_no(question) is yes_no


def test_prepare_works_out_the_facts_of_a_question(lexicon):
    encoder = WordEncoder()
    watch = Stopwatch()
    [q] = prepare("  Can you tell me how many staff the Leeds Academic Health Partnership employs ", None,
                  lexicon, encoder, Config(), watch)
    assert q.asked == "Can you tell me how many staff the Leeds Academic Health Partnership employs"
    assert q.query == "How many staff the Leeds Academic Health Partnership employs?"
    assert q.read_as == "How many staff the Leeds Academic Health Partnership (LAHP) employs?"
    assert encoder.asked == [[q.query]]  # embedded once
    assert q.kind == "count" and not q.yes_no
    assert {"staff", "lahp", "employ"} <= q.terms  # the long form folded into its acronym
    assert not q.terms & set(terms("Leeds Academic Health Partnership"))
    assert q.weight == pytest.approx(sum(lexicon.weight(t) for t in q.terms))
    assert [q.query[a:b] for a, b in q.name_spans] == ["Leeds Academic Health Partnership"]
    assert q.names == (frozenset({"lahp"}),)
    # What a "how many" question counts: "staff", up to the first function word.
    assert q.counted.shape == (1, encoder.dim)
    assert np.allclose(q.counted[0], encoder._vector("staff"), atol=0.01)  # int8, as sentences' tokens are kept (qa.tokens)


def test_what_a_how_many_question_counts_stops_at_a_function_word_and_lets_of_through(lexicon):
    encoder = WordEncoder()
    [q] = prepare("How many pieces of new legislation does it need?", None, lexicon, encoder, Config())
    assert np.allclose(q.counted, [encoder._vector(w) for w in ("pieces", "new", "legislation")], atol=0.01)
    [q] = prepare("Who chairs the LSP?", None, lexicon, encoder, Config())
    assert q.counted is None and q.kind == "name"


def test_a_follow_up_is_read_with_the_conversation(lexicon):
    encoder = WordEncoder()
    history = [{"question": "Who chairs the LSP board?", "answer": "Kate Lodge chairs the LSP board in Liverpool."}]
    questions = prepare("When did she start?", history, lexicon, encoder, Config())
    assert questions[0].asked == "When did she start?"
    assert "Kate Lodge" in questions[0].query and questions[0].kind == "date"
    assert encoder.asked == [[q.query for q in questions]]  # every reading in one forward pass


def test_prepare_refuses_what_the_config_does_not_allow(lexicon):
    config = Config(max_question_chars=20, max_history_turns=1)
    with pytest.raises(BadQuestion, match="the limit is 20"):
        prepare("Who chairs the Liverpool Strategic Partnership?", None, lexicon, WordEncoder(), config)
    with pytest.raises(BadQuestion, match="history has 2 turns; the limit is 1"):
        prepare("Who?", [{"question": "a"}, {"question": "b"}], lexicon, WordEncoder(), config)


def test_terms_of_a_question_match_the_corpus_terms(lexicon):
    [q] = prepare("who chairs the liverpol stratgic partnership", None, lexicon, WordEncoder(), Config())
    assert q.query == "Who chairs the Liverpool Strategic Partnership?"
    assert q.terms == {"lsp", *terms("chairs")}


@pytest.mark.parametrize("asked, plain", [
    ("Can you tell me who chairs the LAHP?", "who chairs the LAHP?"),
    ("Could you please tell me how many staff work there?", "how many staff work there?"),
    ("I'd like to know when it started", "when it started"),
    ("Please tell me, where is it?", "where is it?"),
    ("Do you know in what year it began?", "in what year it began?"),
    ("Can you swim?", "Can you swim?"),  # a question, not a frame
    ("Tell me about Leeds", "Tell me about Leeds"),  # no question inside the frame
])
def test_a_polite_frame_is_taken_off_the_question(asked, plain):
    assert unframed(asked) == plain
