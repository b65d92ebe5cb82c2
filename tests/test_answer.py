"""Answers from the real model and index over the default corpus."""

import re
import threading

import numpy as np
import pytest

from qa.answer import render_text

LHP, LSP, LEEDS_2016, LEICESTER, LEEDS_2024 = (
    "000_203956cee7abdc96", "001_576bfebf929a5f1e", "002_ef368537357c7e56", "003_2df78265f668097b", "004_ce580bb8f3b02914",
)

# (question, text the first answer sentence must contain, document it must cite)
FACTS = [
    ("How many founding partners does Liverpool Health Partners have?", "nine", LHP),
    ("Which region does LHP serve?", "Merseyside and Cheshire", LHP),
    ("What does LHP provide between the NHS and higher education?", "formal framework", LHP),
    ("Where can I find out more about LHP?", "www.liverpoolhealthpartners.co.uk", LHP),
    ("How many staff do LSP member organisations employ?", "60,000", LSP),
    ("Is the Liverpool Strategic Partnership a delivery body?", "not a delivery body", LSP),
    ("Which organisation plays a convening role in bringing partners together?", "Liverpool City Council", LSP),
    ("How many anchor institutions does the LSP bring together?", "over twenty", LSP),
    ("Who chaired the Leeds Academic Health Partnership in 2016?", "Alan Langlands", LEEDS_2016),
    ("When was the LAHP business case endorsed?", "20 April", LEEDS_2016),
    ("How many universities are in the Leeds Academic Health Partnership?", "three universities", LEEDS_2016),
    ("What phone number can I call to contact the LAHP?", "0113 343 4031", LEEDS_2016),
    ("Who identified the precision medicine catapults?", "Innovate UK", LEEDS_2016),
    ("Who chairs the Leeds Health and Wellbeing Board?", "Lisa Mulherin", LEEDS_2016),
    ("Which university did the Northamptonshire and Leicestershire trusts partner with?", "University of Leicester", LEICESTER),
    ("What will the trusts become?", "Associate University Trusts", LEICESTER),
    ("Since when have the Leicestershire and Northamptonshire trusts worked in a group arrangement?", "2021", LEICESTER),
    ("Who is the joint chief executive of Leicestershire Partnership Trust?", "Angela Hillery", LEICESTER),
    ("What will the Leicestershire Partnership and Northamptonshire Healthcare Group become?", "Associate University Group", LEICESTER),
    ("Who is the Dean of Medicine at the University of Leicester?", "Tom Robinson", LEICESTER),
    ("Who is the LAHP chair elect?", "Phil Wood", LEEDS_2024),
    ("How much funding is the West Yorkshire Investment Zone eligible for?", "£160m", LEEDS_2024),
    ("How many jobs will the Investment Zone support?", "2,500", LEEDS_2024),
    ("Who is the partnership director at Leeds Academic Health Partnership?", "Kate Lodge", LEEDS_2024),
    ("What will the West Yorkshire Investment Zone focus on?", "life sciences, digital and tech", LEEDS_2024),
]

OFF_CORPUS = [
    "What is the capital of France?",
    "Who won the 2022 football world cup?",
    "How do I bake sourdough bread?",
    "What is the boiling point of mercury?",
]


@pytest.mark.parametrize("question, expected, doc_id", FACTS)
def test_factual_questions_are_answered_from_the_right_source(qa, question, expected, doc_id):
    answer = qa.ask(question)
    assert not answer.abstained, question
    assert expected.lower() in answer.sentences[0].text.lower()
    first = next(c for c in answer.citations if c.id == answer.sentences[0].citation)
    assert first.doc_id == doc_id
    assert expected.lower() in first.text.lower()


def test_assurance_follows_the_confidence_bands(qa):
    for question in ("How many jobs will the West Yorkshire Investment Zone support?",
                     "Which area does Liverpool Health Partners cover?", "What is the capital of France?"):
        answer = qa.ask(question)
        expected = ("none" if answer.abstained else "sure" if answer.confidence >= qa.config.sure_threshold
                    else "possible")
        assert answer.assurance == expected and answer.to_dict()["assurance"] == expected
    assert qa.config.abstain_threshold < qa.config.sure_threshold < 1


@pytest.mark.parametrize("said, reply", [
    ("hi", "I answer questions about the documents"), ("Good morning!", "I answer questions about the documents"),
    ("What can you do?", "I answer questions about the documents"), ("thanks a lot", "Glad to help"),
    ("Summarise the documents", "I cannot summarise, translate or write"),
    ("Could you please translate the LHP article into French?", "I cannot summarise, translate or write"),
])
def test_a_greeting_or_a_task_it_does_not_do_gets_a_reply_saying_what_it_can_do(qa, said, reply):
    answer = qa.ask(said)
    assert answer.abstained and answer.message.startswith(reply)
    assert answer.query == "" and answer.sentences == [] and answer.closest == [] and answer.passages == []


OTTER_PARTNERS = ["Alder River Council", "Birchwood Wildlife Fund", "Cedar Valley Anglers", "Dunmore Parish Trust",
                  "Elmstead School", "Fernhill Rangers", "Glenrock Water Company", "Hazelbank Farmers",
                  "Ivybridge Canoe Club", "Juniper Heath Society", "Kingsford Library", "Larchmont Scouts"]


def test_a_list_answer_quotes_its_items_and_says_how_many_more_the_source_has(encoder, reader, tmp_path):
    from qa.config import Config
    from qa.index import build_index
    from qa.pipeline import QA

    (tmp_path / "corpus").mkdir()
    text = ("The Otter Trust\n\nThe Otter Trust protects otters on the River Wen.\n\nThe trust works with twelve "
            "partners:\n" + "".join(f"- {p}\n" for p in OTTER_PARTNERS) + "\nThe trust funds three river wardens.\n")
    (tmp_path / "corpus" / "otters.txt").write_text(text)
    config = Config(corpus_dir=str(tmp_path / "corpus"), index_dir=str(tmp_path / "index"))
    build_index(config, encoder)
    qa = QA.load(config, encoder, reader)
    answer = qa.ask("Which twelve partners does the Otter Trust work with?")
    quoted = [s.text.lstrip("- ") for s in answer.sentences]
    assert len(quoted) >= 2 and set(quoted) <= set(OTTER_PARTNERS)
    assert answer.more_items == len(OTTER_PARTNERS) - len(quoted)  # the rest are in the source
    for s in answer.sentences:
        c = answer.citations[s.citation - 1]
        assert text[c.start:c.end] == c.text == s.text
    assert f"has {answer.more_items} more items" in render_text(answer)
    # The line that introduces the list is read with its items, and quoted with them.
    intro = next(i for i in range(len(qa.index.sentences)) if qa.index.sentence_text(i).endswith("partners:"))
    assert qa.answerer._reader_text(intro).startswith("The trust works with twelve partners: Alder River Council; ")


def test_a_chosen_list_introduction_brings_its_items_in_order(qa):
    answer = qa.ask("What can you tell me about our partner organisations?")
    quoted = [s.text for s in answer.sentences]
    assert quoted[:3] == ["Our partner organisations", "Have a spending power of over £6bn per year",
                          "Employ more than 60,000 People (FTE)"]
    assert answer.more_items == 0  # both of its items quoted (a longer list's cap: the otter test above)


def test_a_question_that_opens_with_a_greeting_is_still_answered(qa):
    answer = qa.ask("Hi, how many founding partners does Liverpool Health Partners have?")
    assert not answer.abstained and "nine" in answer.sentences[0].text
    assert qa.ask("Who wrote the Leeds Academic Health Partnership's business case?").query != ""


def test_every_document_is_covered_by_the_facts():
    assert {doc for *_, doc in FACTS} == {LHP, LSP, LEEDS_2016, LEICESTER, LEEDS_2024}


@pytest.mark.parametrize("question", OFF_CORPUS)
def test_off_corpus_questions_abstain(qa, question):
    answer = qa.ask(question)
    assert answer.abstained and answer.answer == "" and answer.sentences == [] and answer.citations == []
    assert answer.message and 0 <= answer.confidence < 0.5


def test_citation_offsets_slice_the_stored_text_for_many_answers(qa):
    questions = [q for q, *_ in FACTS] + [
        qa.index.sentence_text(i) for i in range(0, len(qa.index.sentences), 3)  # sentences asked back
    ]
    checked = 0
    for q in questions:
        answer = qa.ask(q)
        ids = [c.id for c in answer.citations]
        assert ids == list(range(1, len(ids) + 1))
        assert len({(c.doc_id, c.start, c.end) for c in answer.citations}) == len(ids)  # no duplicate citations
        assert len({s.text for s in answer.sentences}) == len(answer.sentences)  # no duplicate sentences
        assert 1 <= len(answer.sentences) <= qa.config.max_answer_sentences or answer.abstained
        for sentence in answer.sentences:
            c = answer.citations[sentence.citation - 1]
            doc = qa.index.documents[c.doc_id]
            assert doc.text[c.start:c.end] == c.text
            assert sentence.text in c.text
            assert c.title == doc.title and c.date == doc.date
            assert not any(s < c.end and e > c.start for s, e in doc.masked)  # never furniture
            checked += 1
        # The answer is its sentences in order, each followed by its marker (a list item on a line of its own).
        assert answer.answer.replace("\n- ", " ").replace("\n", " ").removeprefix("- ") == \
            " ".join(f"{s.text} [{s.citation}]" for s in answer.sentences)
        assert 0.0 <= answer.confidence <= 1.0
    assert checked >= 60


def test_answer_spans_are_exact_slices_inside_their_sentence_and_name_the_fact(qa):
    spans = named = 0
    for question, expected, _ in FACTS:
        answer = qa.ask(question)
        for sentence in answer.sentences:
            if sentence.answer_span is None:
                continue
            c = answer.citations[sentence.citation - 1]
            start, end = sentence.answer_span
            assert c.start <= start < end <= c.end
            phrase = qa.index.documents[c.doc_id].text[start:end]
            assert phrase == sentence.text[start - c.start: end - c.start] == phrase.strip()
            spans += 1
            named += sentence is answer.sentences[0] and expected in phrase
    # The trained reader names the words that answer for most of these, and they are the fact asked for.
    assert spans >= len(FACTS) * 0.8 and named >= len(FACTS) * 0.6


def test_the_first_sentence_always_names_its_words_a_later_one_only_where_the_reader_finds_an_answer(qa):
    from qa.question import asks_yes_or_no

    at = {(s.doc_id, s.start): sid for sid, s in enumerate(qa.index.sentences)}
    later = 0
    for question, _, _ in FACTS:
        answer = qa.ask(question)
        if answer.abstained or asks_yes_or_no(question):  # no words answer yes or no
            continue
        spans = dict(zip(answer.reading.sids, answer.reading.spans))
        for n, (sentence, c) in enumerate(zip(answer.sentences, answer.citations)):
            sid = at[(c.doc_id, c.start)]
            if n == 0 and not qa.index.sentence(sid).item:  # an item's words may lie in its list's introduction
                assert sentence.answer_span is not None, question
            elif n > 0 and sid in spans:
                later += 1
                assert (sentence.answer_span is not None) == (spans[sid].score > 0), question
    assert later > 0


def test_where_no_span_beats_no_answer_the_first_sentence_still_names_its_best_words(qa, monkeypatch):
    import dataclasses

    import numpy as np

    from qa.read import (
        best_span,
    )

    # [CLS] (token 0) beats every span: the best span is still given, its margin below 0,
    from qa.scoring import (
        span_margins,
    )

    # [CLS] (token 0) beats every span: the best span is still given, its margin below 0,
    # and the fusion's span feature reads 0 for it, as for no span.
    offsets = [(0, 0), (0, 3), (4, 9), (0, 0)]
    span = best_span([None, 1, 1, None], offsets, np.array([5.0, 1.0, 0.5, 0.0]), np.array([5.0, 0.2, 2.0, 0.0]))
    assert (span.start, span.end) == (0, 9) and span.score == -7.0
    assert span_margins([span, None]).tolist() == [0.0, 0.0]

    real = qa.answerer.reader.read

    def doubtful(question, texts):  # every span below "no answer here"
        logits, spans = real(question, texts)
        return logits, [s and dataclasses.replace(s, score=-1.0) for s in spans]

    monkeypatch.setattr(qa.answerer.reader, "read", doubtful)
    answer = qa.ask("How many organisations make up LHP?")
    assert answer.sentences[0].answer_span is not None
    assert all(s.answer_span is None for s in answer.sentences[1:])


def test_a_span_read_in_a_list_items_introduction_is_not_the_items(qa):
    from qa.read import Span

    sid = next(i for i, s in enumerate(qa.index.sentences) if s.item)  # a list item
    s = qa.index.sentences[sid]
    lead = len(qa.answerer._reader_text(sid)) - (s.end - s.start)
    assert lead > 0
    assert qa.answerer._in_document(sid, Span(lead + 1, lead + 4, 1.0)) == (s.start + 1, s.start + 4)
    assert qa.answerer._in_document(sid, Span(0, 3, 1.0)) is None


def test_sentences_asked_back_are_quoted_first(qa):
    # A question that is a document's sentence is answered by that sentence, or by one
    # that says all of it ("… LAHP chair elect, Professor Phil Wood, said: …" for
    # "Professor Phil Wood, … LAHP chair elect.").
    for sid in range(0, len(qa.index.sentences), 5):
        text = qa.index.sentence_text(sid)
        if len(text.split()) < 8 or text.rstrip().endswith("?"):
            continue
        lead = qa.ask(text).sentences[0].text
        assert lead == text or set(re.findall(r"\w+", text.lower())) <= set(re.findall(r"\w+", lead.lower())), text


def test_dated_sources_carry_their_dates(qa):
    answer = qa.ask("Who is the LAHP chair elect?")
    assert answer.citations[0].date == "2024-01-20"


def test_answer_length_is_configurable(qa):
    import dataclasses

    from qa.pipeline import QA

    one = QA(dataclasses.replace(qa.config, max_answer_sentences=1, extra_sentence_margin=100.0), qa.encoder, qa.index,
             qa.reader)
    answer = one.ask("What does the Leeds Academic Health Partnership aim to do?")
    assert len(answer.sentences) == 1 and len(answer.citations) == 1


def test_search_returns_scored_passages_with_exact_offsets(qa):
    passages = qa.search("Investment Zone jobs", 4)
    assert len(passages) == 4
    assert passages[0].doc_id == LEEDS_2024
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)
    for p in passages:
        assert qa.index.documents[p.doc_id].text[p.start:p.end] == p.text


def test_answer_passages_are_ordered_by_their_best_sentence(qa):
    passages = qa.search("Investment Zone jobs", 4)
    last = qa.index.chunks[passages[-1].chunk_id].sentence_ids[0]
    first = qa.index.chunks[passages[0].chunk_id].sentence_ids[0]
    reranked = qa.answerer.rerank(passages, [last, first])
    # The passage holding the best sentence leads; unscored passages keep their fused order.
    assert reranked[0] == passages[-1]
    assert reranked[1:] == [p for p in passages if p != passages[-1]]


# Questions whose quoted sentence is not in the passage retrieval ranks first.
@pytest.mark.parametrize("question, expected, doc_id", [f for f in FACTS if f[1] in {"Tom Robinson", "Kate Lodge", "Liverpool City Council"}])
def test_answers_return_top_k_passages_led_by_the_cited_one(qa, question, expected, doc_id):
    answer = qa.ask(question, top_k=2)
    assert len(answer.passages) == 2
    lead, top = answer.citations[0], answer.passages[0]
    # Sentences are read from more passages than are returned, so the one quoted first
    # must be in the first passage returned, whichever rank retrieval gave it.
    assert lead.doc_id == top.doc_id and top.start <= lead.start and lead.end <= top.end


def _checks_of_lead(qa, question: str) -> tuple[bool, ...]:
    answer = qa.ask(question)
    r = answer.reading
    lead = r.sids[int(np.argmax(r.fused))]
    return qa.answerer.checks(qa.prepare(answer.query), lead)


def test_a_count_must_count_what_the_question_counts(qa):
    # "six major NHS organisations" holds a count, but not of nurses: the counts check
    # fails, and the fused score and the abstention model weigh that.
    assert _checks_of_lead(qa, "How many nurses work for the Leeds Academic Health Partnership?") == (True, False)
    # "over twenty of the city's largest anchor institutions": the thing counted may sit a few words on.
    assert _checks_of_lead(qa, "How many anchor institutions does the LSP bring together?") == (True, True)
    answer = qa.ask("How many anchor institutions does the LSP bring together?")
    assert "over twenty" in answer.sentences[0].text
    assert qa.ask("How many soldiers guard the Investment Zone?").abstained
    # What is counted ends at the first function word: "employees", not "employees does
    # Liverpool", which "nine founding partners of Liverpool Health Partners" would satisfy.
    assert _checks_of_lead(qa, "How many employees does Liverpool Health Partners have?") == (True, False)
    assert _checks_of_lead(qa, "How many founding partners does Liverpool Health Partners have?") == (True, True)


def test_a_yes_no_question_is_answered_by_the_sentence_that_says_it(qa):
    # A list item that only names the partner says nothing the question does not, and is the answer.
    # The three Liverpool universities' items share every word the question has but "of",
    # and the reader tells them apart by less than int8 noise (a logit moves 0.3 with its
    # batch: docs/studies.md): the fourth training run scores "Liverpool John Moores
    # University" 5.59, "University of Liverpool" 5.25, "Liverpool Hope University" 5.03,
    # the third run 5.24, 5.43, 4.60; the fusion leads with John Moores either way. So the
    # check is that the reader puts the three university items first and the answer quotes
    # the one asked about. Recorded in docs/reader.md.
    answer = qa.ask("Is the University of Liverpool a partner of the LSP?")
    assert "University of Liverpool" in [s.text for s in answer.sentences]
    r = answer.reading
    best = {qa.index.sentence_text(r.sids[int(i)]) for i in np.argsort(-np.asarray(r.logits))[:3]}
    assert best == {"University of Liverpool", "Liverpool John Moores University", "Liverpool Hope University"}
    # It is answered yes or no, not by a phrase: the span head, taught on SQuAD that an answer
    # never repeats the question, scored the item that says yes 5 points below the others
    # and pushed it out of the answer; for such a question it names no phrase.
    assert all(span is None for span in r.spans) and all(s.answer_span is None for s in answer.sentences)


def test_a_question_answered_yes_or_no_is_told_from_one_that_offers_a_choice():
    from qa.question import asks_yes_or_no

    assert asks_yes_or_no("Is the University of Liverpool a partner of the LSP?")
    assert asks_yes_or_no("does the LSP deliver services itself?")
    assert not asks_yes_or_no("Is it easier or harder to change EU law than to keep it?")
    assert not asks_yes_or_no("Who is the chair of the LSP?")
    assert not asks_yes_or_no("Island hospitals: which trust runs them?")  # "Is" must be a word


def test_bad_questions_are_refused_with_a_reason(qa):
    from qa.types import BadQuestion

    with pytest.raises(BadQuestion, match="empty"):
        qa.ask("   ")
    with pytest.raises(BadQuestion, match="limit"):
        qa.ask("why " * 1000)


def test_a_sentence_ending_in_a_colon_is_shown_with_what_it_introduces(qa):
    import dataclasses

    from qa.pipeline import QA

    one = QA(dataclasses.replace(qa.config, max_answer_sentences=1), qa.encoder, qa.index, qa.reader)
    for bot in (qa, one):
        lead, quote = bot.ask("What did Sir Alan Langlands say?").citations[:2]
        assert lead.text.endswith("said:") and quote.text.startswith("“We are pleased to be bringing Leeds")
        doc = qa.index.documents[quote.doc_id]
        assert quote.doc_id == lead.doc_id and doc.text[quote.start:quote.end] == quote.text and quote.start > lead.end


def test_list_items_inherit_the_words_of_the_line_that_introduces_them(qa):
    index = qa.index
    sid = {index.sentence_text(i): i for i in range(len(index.sentences)) if index.sentences[i].doc_id == LSP}
    previous = [qa.answerer.lead_in(i) for i in range(len(index.sentences))]
    assert previous[sid["University of Liverpool"]] == previous[sid["Merseyside Police"]] == sid["Our partners"]
    assert previous[sid["Our partners"]] == sid["Employ more than 60,000 People (FTE)"]
    assert previous[sid["The partnership is overseen by a board of chief executives."]] == sid[
        "The Liverpool Strategic Partnership (LSP) brings together over twenty of the city’s largest anchor institutions and networks."]


def test_token_cache_stays_bounded_and_keeps_what_a_question_needs(qa, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    import qa.answer as answer
    from qa.config import Config
    from qa.read import load_reader

    questions = [q for q, _, _ in FACTS[:8]]
    expected = [qa.ask(q).answer for q in questions]
    # A cache smaller than one question's candidates, shared by concurrent requests as in `qa serve`.
    monkeypatch.setattr(answer, "TOKEN_CACHE_SENTENCES", 3)
    qa.answerer._tokens.clear()  # cold, so every question encodes and evicts
    # and a reader of its own, two pairs at a time, really read by concurrent callers (not
    # answered from the session reader's memo): the same answers as the session's one thread
    monkeypatch.setattr(qa.answerer, "reader", load_reader(Config(reader_threads=2)))
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(lambda q: qa.ask(q).answer, questions * 3)) == expected * 3
    assert len(qa.answerer._tokens) <= 3


def test_a_question_typed_in_lower_case_gets_the_corpus_capitals_for_its_names():
    from qa.text import Lexicon

    sentences = ["Kate Lodge founded the Wigan Rowing Club in 1990.", "She rows with the WRC every week.",
                 "The club keeps its boats at Wigan Pier, and Hope rows there.", "We hope to row in Wigan.",
                 "Many rowers join the Club of Rowers.", "Many people hope so."]
    lex = Lexicon(sentences, [" ".join(sentences)])
    # Names of several words (a sentence's first word too, if never written in lower case),
    # spelled as the corpus spells them; single words that stand as names on their own.
    assert lex.truecase("who founded wigan rowng club with kate lodge?") == "who founded Wigan Rowing Club with Kate Lodge?"
    assert lex.truecase("when does the wrc row in wigan") == "when does the WRC row in Wigan"
    # "hope" is a name only inside one; "many" only starts sentences; a question in
    # sentence case is lower case; one with capitals of its own is left as typed.
    assert lex.truecase("Do many rowers hope to join the club of rowers?") == "Do many rowers hope to join the Club of Rowers?"
    assert lex.truecase("When did Kate found the wigan rowing club?") == "When did Kate found the wigan rowing club?"


def test_truecasing_changes_letters_only():
    from qa.text import Lexicon

    sentences = ["Rowers come from St. Helens and St. Albans.", "The St. Mary's crew rows there."]
    lex = Lexicon(sentences, [" ".join(sentences)])
    # What stands between a name's words stays, and letters inside a word are no word
    # ("St" is a name here; the "st" of "21st" is not).
    assert lex.truecase("who rows in the st. mary's crew") == "who rows in the St. Mary's crew"
    assert lex.truecase("who rowed in the 21st century") == "who rowed in the 21st century"


def test_a_misspelt_word_is_spelled_as_the_corpus_spells_it():
    from qa.text import Lexicon

    sentences = ["Kate Lodge founded the Wigan Rowing Club in 1990.", "She rows there herself and will employ two coaches.",
                 "The club has ten staff."]
    lex = Lexicon(sentences, [" ".join(sentences)])
    # Swapped, dropped and doubled letters; a stop word too, since the model reads it.
    assert lex.respell("Who fuonded the Wigan Rowign Club?") == "Who founded the Wigan Rowing Club?"
    assert lex.respell("Does she row there hersellf?") == "Does she row there herself?"
    assert lex.respell("how many coaches will kate lodge emlpoy") == "how many coaches will Kate Lodge employ"
    # Other forms of the corpus's words, and words it never uses nor resembles, stay.
    assert lex.respell("When did she start rowing with the club?") == "When did she start rowing with the club?"
    # Four letters, one typo: a dropped letter, a changed one; a stop word wins over a corpus word.
    assert lex.respell("How many staf does Kate Lodge employ?") == "How many staff does Kate Lodge employ?"
    assert lex.respell("whst did Kate Lodge found?") == "what did Kate Lodge found?"
    # Two typos in a long word ("Lodge" has too many words two typos away to guess).
    assert lex.respell("Who founded the Wigan Rwoign Club?") == "Who founded the Wigan Rowing Club?"
    assert lex.respell("Who is Kate Lgdoe?") == "Who is Kate Lgdoe?"


def test_of_two_words_one_typo_away_the_one_the_questions_other_words_go_with_is_meant():
    from qa.text import Lexicon

    documents = ["The LHP has nine partners. It works with the NHS.", "In 2016 the LAHP had ten partners in Leeds."]
    sentences = [s + "." for d in documents for s in d.split(". ") if s]
    lex = Lexicon(sentences, documents)
    # "LsHP" is one letter from both "LHP" and "LAHP"; "2016" and "Leeds" are the LAHP's.
    assert lex.respell("How many partners did the LsHP have in 2016 in Leeds?").split()[5].lower() == "lahp"
    assert lex.respell("Does the LsHP work with the NHS?").split()[2].lower() == "lhp"


def test_a_common_word_is_no_typo():
    from qa.text import Lexicon

    sentences = ["The club is overseen by a board.", "Its region is the north west."]
    lex = Lexicon(sentences, [" ".join(sentences)])
    # The corpus has "overseen" and "region", each a letter away, but these are words.
    assert lex.respell("Who oversees the club, and what religion is it?") == "Who oversees the club, and what religion is it?"
    assert lex.respell("By whom is the club oversene?") == "By whom is the club overseen?"


def test_the_shipped_common_words_are_cl100ks_one_token_words():
    from qa.text import COMMON_WORDS, cl100k, is_common_word, one_token_words

    # If the tokeniser changes, write the file again:
    #   .venv/bin/python -c "from qa.text import *; COMMON_WORDS.write_text('\n'.join(one_token_words(cl100k())) + '\n')"
    assert COMMON_WORDS.read_text(encoding="utf-8").split() == one_token_words(cl100k())
    for word in ("oversees", "religion", "thought", "stratgic", "oversene", "café", "partnershipx"):
        assert is_common_word(word) == (len(cl100k().encode(" " + word)) == 1), word


def test_i_d_is_no_name(qa):
    # "I'd" once left the name "d", which no document holds, so the bot abstained.
    answer = qa.ask("I'd like to know who chairs the Leeds Academic Health Partnership")
    assert not answer.abstained and "Alan Langlands" in answer.sentences[0].text


def test_a_polite_frame_is_not_part_of_the_question():
    from qa.question import unframed

    assert unframed("Can you please tell me how many staff the LSP has?") == "how many staff the LSP has?"
    assert unframed("I'd like to know, on what date was it endorsed") == "on what date was it endorsed"
    assert unframed("do you know whether the LSP delivers services") == "do you know whether the LSP delivers services"
    assert unframed("Tell me about Health Innovation Leeds") == "Tell me about Health Innovation Leeds"


def test_a_contact_question_needs_a_contact_detail(qa):
    from qa.answer import has_value
    from qa.question import question_kind

    assert question_kind("What website has more about LHP?") == question_kind("What is their phone number?") == "contact"
    assert all(has_value("contact", t, "") for t in ("visit www.example.co.uk", "call 0113 343 4031", "mail a.b@leeds.ac.uk"))
    assert not has_value("contact", "In 2016 it had 1,200 staff.", "")
    # The sentence naming Liverpool Health Partners twice outscores the one with the address.
    answer = qa.ask("What website has more information about Liverpool Health Partners?")
    assert "www.liverpoolhealthpartners.co.uk" in answer.sentences[0].text
    assert _checks_of_lead(qa, "What is the website of the Liverpool Strategic Partnership?")[0] is False


def test_when_asks_for_a_date_only_as_the_asking_word():
    from qa.question import question_kind

    assert question_kind("When was the LAHP business case endorsed?") == "date"
    assert question_kind("The price of oil was stable until when?") == "date"
    assert question_kind("What does water turn into when heated?") is None
    assert question_kind("How do members vote when there is a division?") is None
    assert question_kind("Who was chair when it launched?") == "name"
    # Opening a clause that another question word follows, "when" sets the scene.
    assert question_kind("When forces are acting on an extended body, what do you need to account for?") is None
    assert question_kind("When a pathogen has been eaten by a phagocyte it becomes trapped in what vesicle?") is None
    assert question_kind("When the war ended, who ruled?") == "name"
    assert question_kind("When did the man who founded it die?") == "date"


@pytest.mark.parametrize("kind, text, question", [
    ("date", "In the late 19th century, the system was used on marine engines.", "in what century was it used"),
    ("date", "Well into the nineteenth century they kept French names.", "until what century"),
    ("date", "The first item of business on Wednesdays is Time for Reflection.", "what day of the week"),
    ("date", "Each sitting day, normally at 5 pm, members decide.", "what time do members decide"),
    ("count", "Their engines used half as much coal.", "how much coal did they use"),
    # A value the question does not say as a word, though one of its words spells it.
    ("count", "There were two kinds of X.25 networks.", "how many types of x.25 networks were there"),
    ("count", "The board meets ten times a year.", "how often does the board meet"),
    ("date", "It opened in May.", "when did the mayor open it"),
])
def test_values_a_typed_question_asks_for_are_found(kind, text, question):
    from qa.answer import has_value

    assert has_value(kind, text, question)


@pytest.mark.parametrize("question", [
    "In what year was Liverpool Health Partners founded?",
    "How many patients does Leicestershire Partnership NHS Trust treat each year?",
])
def test_a_lead_without_the_value_asked_for_is_refused(qa, question):
    assert not all(_checks_of_lead(qa, question))
    answer = qa.ask(question)
    assert answer.abstained and answer.confidence == 0.0


@pytest.mark.parametrize("who, then", [("Who is the partnership director at Leeds Academic Health Partnership?", "What did she say about the launch?"),
                                       ("who is the partnership director of leeds academic health partnership", "what did she say about the launch")])
def test_she_after_a_who_question_is_the_person_its_answer_named(qa, who, then):
    first = qa.ask(who)
    answer = qa.ask(then, history=[{"question": first.question, "answer": first.answer}])
    assert "Kate Lodge" in answer.query
    assert not answer.abstained and "Kate Lodge" in answer.sentences[0].text


def test_borrowed_subjects_stay_separate_names():
    from qa.followup import resolve

    history = [{"question": "What did the University of Leicester agree with Leicestershire Partnership Trust?", "answer": ""}]
    # Run together, the two would read as one name that no document gives, and the bot would abstain.
    assert resolve("What did it say?", history).query == (
        "What did it say? (University of Leicester, Leicestershire Partnership Trust)")


def test_each_server_thread_stems_with_its_own_stemmer():
    # PyStemmer keeps state between calls, so threads must not share one.
    from concurrent.futures import ThreadPoolExecutor

    from qa.text import _stemmer

    with ThreadPoolExecutor(2) as pool:
        barrier = threading.Barrier(2)

        def stemmer_id(_):
            barrier.wait()  # both threads alive at once, so neither is reused
            return id(_stemmer())

        assert len(set(pool.map(stemmer_id, range(2)))) == 2
    assert _stemmer() is _stemmer()


def test_the_lexicon_saved_as_json_and_loaded_answers_alike(qa):
    import json

    from qa.text import Lexicon

    lex = qa.lexicon
    loaded = Lexicon.from_stats(json.loads(json.dumps(lex.stats)), lex.docs_with, lex.terms_of)
    for question in ("who rns the liverpool stratgic partnership", "How many staf does the LSP employ?",
                     "who is angela hliery", "What is the LAHP?"):
        assert loaded.respell(question) == lex.respell(question)
        assert loaded.query_terms(question) == lex.query_terms(question)
    text = qa.index.sentence_text(3)
    assert loaded.said(text) == lex.said(text) and loaded.idf == lex.idf and loaded.acronyms == lex.acronyms
    doc = qa.index.sentence(3).doc_id
    assert loaded.names_in(set(lex.said(text)), doc) and not loaded.names_in({"nosuchterm"}, doc)


def test_a_lists_items_are_one_to_a_line_each_marker_after_its_own_item():
    from qa.answer import answer_text
    from qa.types import AnswerSentence

    said = answer_text([AnswerSentence("Our partners", 1), AnswerSentence("Liverpool City Council", 2, item=True),
                        AnswerSentence("University of Liverpool", 3, item=True), AnswerSentence("And more.", 4)])
    assert said == "Our partners [1]\n- Liverpool City Council [2]\n- University of Liverpool [3]\nAnd more. [4]"


def test_a_lone_item_that_answers_is_shown_with_the_line_that_introduces_its_list(qa):
    answer = qa.ask("Is Merseyside Police a member of the Liverpool Strategic Partnership?")
    assert [s.text for s in answer.sentences] == ["Merseyside Police", "Our partners"]
    assert answer.sentences[0].item and not answer.sentences[1].item
    assert answer.answer == "- Merseyside Police [1]\nOur partners [2]"
    assert answer.more_items == len(qa.answerer.list_items(qa.answerer.lead_in(answer.reading.sids[0]))) - 1 or \
        answer.more_items > 0  # the rest of its list, said to be there
    for c in answer.citations:  # offsets still slice the stored text
        assert qa.index.document(c.doc_id).text[c.start:c.end] == c.text


def test_a_relative_date_is_quoted_with_its_documents_date(qa):
    answer = qa.ask("When was Health Innovation Leeds launched?")
    assert not answer.abstained and "earlier this week" in answer.sentences[0].text
    assert answer.citations[0].date == "2024-01-20"  # the date "this week" is relative to, shown with it


def test_one_more_item_is_one_item():
    from qa.answer import more_items

    assert more_items(1) == "1 more item" and more_items(19) == "19 more items"


def test_several_items_of_one_list_are_shown_in_its_order_with_none_between_left_out(tmp_path, encoder, reader):
    # A new user's clinic: "And the partners?" showed items 1, 3 and 4, and "1 more item".
    from qa.config import Config
    from qa.index import build_index
    from qa.pipeline import QA

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "clinic.txt").write_text(
        "Riverside Community Clinic\n\nThe Riverside Community Clinic serves the east of Marlowe Bay. "
        "The clinic's director is Dr. Helena Okafor.\n\nThe clinic works with the following partners:\n"
        "- Marlowe Bay University\n- the Harbour Street Pharmacy\n- the Northshore Ambulance Trust\n"
        "- the Greenfield Food Bank\n")
    config = Config(corpus_dir=str(corpus), index_dir=str(tmp_path / "index"))
    build_index(config, encoder)
    qa = QA.load(config, encoder, reader)
    answer = qa.ask("Who are the partners of the clinic?")
    items = [s.text for s in answer.sentences if s.item]
    order = ["Marlowe Bay University", "the Harbour Street Pharmacy", "the Northshore Ambulance Trust",
             "the Greenfield Food Bank"]
    assert len(items) >= 2 and items == order[order.index(items[0]):order.index(items[0]) + len(items)]
    assert answer.more_items == len(order) - len(items)
