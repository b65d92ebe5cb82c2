"""qa.text on its own: matching, words and terms, defined names, named spans, common
words, and a corpus's Lexicon (spelling, capitals, IDF), over texts small
enough to read. No model is loaded."""

from __future__ import annotations

import json

import pytest

from qa.text import (
    STOPWORDS,
    Lexicon,
    find_acronyms,
    is_common_word,
    match_text,
    named_spans,
    named_things,
    spell_out,
    terms,
    words,
)

LSP = {"LSP": "Liverpool Strategic Partnership"}

DOCUMENTS = {
    "lsp": "The Liverpool Strategic Partnership (LSP) brings together twenty anchor institutions. "
           "Kate Lodge chairs the LSP board in Liverpool.",
    "lahp": "Leeds Academic Health Partnership (LAHP) employs staff in Leeds. The strategic plan was agreed in 2016.",
}
SENTENCES = [
    ("lsp", "The Liverpool Strategic Partnership (LSP) brings together twenty anchor institutions."),
    ("lsp", "Kate Lodge chairs the LSP board in Liverpool."),
    ("lahp", "Leeds Academic Health Partnership (LAHP) employs staff in Leeds."),
    ("lahp", "The strategic plan was agreed in 2016."),
]


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return Lexicon([t for _, t in SENTENCES], DOCUMENTS, [d for d, _ in SENTENCES])


def test_matching_folds_look_alike_characters_one_for_one():
    text = "It\u2019s \u201cfine\u201d \u2014 a\u00a0b\u2026"
    folded = match_text(text)
    assert folded == "It's \"fine\" - a b."
    assert len(folded) == len(text)  # offsets into the folded copy are offsets into the text
    assert match_text("plain ASCII stays") == "plain ASCII stays"


def test_words_are_lower_case_content_words_with_numbers_kept_whole():
    assert words("The LSP's 2,500 jobs and 3.5 million pounds in 2016") == \
        ["lsp", "2500", "jobs", "3.5", "million", "pounds", "2016"]
    assert words("Who is it, and what was it?") == []  # stop words only
    assert "s" in STOPWORDS and "don" in STOPWORDS  # what is left of "it's" and "don't"


def test_terms_are_stems_so_forms_of_a_word_match():
    assert terms("partnership") == terms("Partnerships")
    assert terms("strategic") != terms("strategies")  # the stemmer keeps these apart
    assert terms("The chairs of the board") == ["chair", "board"]


def test_defined_names_are_found_where_the_capitals_spell_the_acronym():
    found = find_acronyms("The Liverpool Strategic Partnership (LSP) and the Leeds Academic Health Partnership (LAHP) "
                          "met Health Innovation Manchester (HIM), unlike the big Red Bus (XYZ).")
    assert found == {"LSP": "Liverpool Strategic Partnership", "LAHP": "Leeds Academic Health Partnership",
                     "HIM": "Health Innovation Manchester"}
    # Words before the capitals that spell it are not part of the name; a plural acronym counts.
    assert find_acronyms("funds from the Higher Education Funding Council (HEFCs)") == \
        {"HEFC": "Higher Education Funding Council"}


def test_spell_out_gives_a_defined_name_in_both_forms():
    assert spell_out("Who chairs the LSP?", LSP) == "Who chairs the LSP (Liverpool Strategic Partnership)?"
    assert spell_out("Who chairs the Liverpool Strategic Partnership?", LSP) == \
        "Who chairs the Liverpool Strategic Partnership (LSP)?"
    assert spell_out("who chairs the liverpool strategic partnership?", LSP) == \
        "who chairs the liverpool strategic partnership (LSP)?"  # the long form in any case
    assert spell_out("What is the LSP's aim?", LSP) == "What is the LSP's (Liverpool Strategic Partnership) aim?"
    # Already in both forms, or in neither: left as asked.
    assert spell_out("Is the LSP the Liverpool Strategic Partnership?", LSP) == \
        "Is the LSP the Liverpool Strategic Partnership?"
    assert spell_out("Who chairs it?", LSP) == "Who chairs it?"
    assert spell_out("Who runs LSPX?", LSP) == "Who runs LSPX?"  # whole words only


def test_named_spans_are_capitalised_phrases_bar_a_sentence_case_first_word():
    question = "Who chairs the Leeds Academic Health Partnership?"
    assert named_spans(question) == [(15, 48)]
    assert named_things(question) == ["Leeds Academic Health Partnership"]
    assert named_things("Tell me about Kate Lodge and the Board of Trade") == ["Kate Lodge", "Board of Trade"]
    assert named_things("Leeds is a city") == ["Leeds"]  # a first word that is a name stays
    assert named_things("What is it?") == []
    # Offsets are the question's own, curly quotes and all.
    question = "Is \u201cSt Mary\u2019s\u201d in Leeds?"
    assert [question[a:b] for a, b in named_spans(question)] == named_things(question) == ["St Mary\u2019s", "Leeds"]


def test_common_words_are_cl100k_one_token_words_and_typos_are_not():
    assert is_common_word("thought") and is_common_word("oversees")
    assert not is_common_word("stratgic")
    assert not is_common_word("Thought")  # the list is lower case


def test_the_lexicon_keeps_the_names_a_corpus_defines(lexicon):
    assert lexicon.defined == {"LSP": "Liverpool Strategic Partnership", "LAHP": "Leeds Academic Health Partnership"}
    assert lexicon.acronyms["lsp"] == tuple(terms("Liverpool Strategic Partnership"))
    assert lexicon.spelled_out("Who chairs the LSP?") == "Who chairs the LSP (Liverpool Strategic Partnership)?"
    assert lexicon.spelled_out("what does leeds academic health partnership do?") == \
        "what does leeds academic health partnership (LAHP) do?"
    assert lexicon.spelled_out("Who chairs it?") == "Who chairs it?"


def test_a_spelled_out_name_folds_into_its_acronym(lexicon):
    assert lexicon.canonical(set(terms("Liverpool Strategic Partnership board"))) == {"lsp", "board"}
    assert lexicon.canonical(set(terms("Liverpool board"))) == set(terms("Liverpool board"))  # not the whole name
    assert lexicon.query_terms("Who chairs the Liverpool Strategic Partnership?") == \
        lexicon.query_terms("Who chairs the LSP?") == {"lsp", "chair"}


def test_idf_weighs_rare_terms_above_common_ones_and_unseen_ones_highest(lexicon):
    rare, common = lexicon.weight(terms("twenty")[0]), lexicon.weight("lsp")  # one sentence; two
    assert lexicon.weight("neverused") == lexicon.unseen_idf > rare > common > 0


def test_which_documents_hold_a_term(lexicon):
    assert set(lexicon.docs_with(terms("Leeds")[0])) == {"lahp"}
    # A document that spells out a defined name holds its acronym's term.
    assert set(lexicon.docs_with("lsp")) == {"lsp"}
    assert lexicon.names_in(set(terms("Kate Lodge")), "lsp")
    assert not lexicon.names_in(set(terms("Kate Lodge")), "lahp")


def test_a_word_the_corpus_never_uses_is_corrected_to_one_it_does(lexicon):
    assert lexicon.correct("stratgic") == terms("strategic")[0]  # a letter dropped
    assert lexicon.correct("staf") == terms("staff")[0]
    assert lexicon.correct("institutions") == terms("institutions")[0]  # known: its own term
    assert lexicon.respell("Who chairs the Liverpol Stratgic Partnership?") == \
        "Who chairs the Liverpool Strategic Partnership?"
    # A common English word is no typo: the models read the word asked.
    assert lexicon.respell("Who oversees the plan?") == "Who oversees the plan?"
    assert lexicon.respell("Who is it?") == "Who is it?"


def test_a_question_typed_in_lower_case_gets_the_corpus_capitals(lexicon):
    assert lexicon.truecase("who chairs the liverpool strategic partnership") == \
        "who chairs the Liverpool Strategic Partnership"
    assert lexicon.truecase("who is kate lodge?") == "who is Kate Lodge?"
    assert lexicon.truecase("what does the lsp do") == "what does the LSP do"
    # A question with capitals of its own is left as typed.
    assert lexicon.truecase("Who chairs the lsp in Liverpool?") == "Who chairs the lsp in Liverpool?"


def test_a_common_word_the_corpus_capitalises_keeps_the_case_typed():
    # "Head" (of "Head of the College") and "May" are capitalised in the corpus, but "head"
    # and "may" in a question are the verbs; names and acronyms still get their capitals.
    texts = ["Professor Tom Robinson, Head of the College of Life Sciences, spoke in May.", "The NHS met in Leeds."]
    lexicon = Lexicon(texts, {"d": " ".join(texts)}, ["d", "d"])
    assert lexicon.truecase("which college does he head?") == "which college does he head?"
    assert lexicon.truecase("how may the nhs help leeds?") == "how may the NHS help Leeds?"
    # In a name of several words the corpus writes, a common word keeps its capital (review).
    texts.append("The University of Leicester is in Leicester.")
    lexicon = Lexicon(texts, {"d": " ".join(texts)}, ["d"] * 3)
    assert lexicon.truecase("where is the university of leicester?") == "where is the University of Leicester?"
    # A word typed with its accents is the corpus's word without them, not a typo (review).
    assert lexicon.respell("Where is Léicester?") == "Where is Léicester?"


def test_a_word_of_a_name_the_corpus_writes_is_cased_when_asked_alone():
    # "when did ismay die?" kept "ismay" in lower case, so the name check could not see it:
    # the corpus writes him only as "British General Hastings Ismay" (2026-12-08).
    texts = ["Emblematic was the position of British General Hastings Ismay, who said so.", "The general spoke."]
    lexicon = Lexicon(texts, {"d": " ".join(texts)}, ["d", "d"])
    assert lexicon.truecase("when did ismay die?") == "when did Ismay die?"
    assert lexicon.truecase("what did the general say?") == "what did the general say?"  # written in lower case too
    # Not a common word of a name, which would make names the corpus never writes (review).
    texts = ["Leeds City Council and Leeds Teaching Hospitals met in Leeds."]
    lexicon = Lexicon(texts, {"d": texts[0]}, ["d"])
    assert lexicon.truecase("is leeds council a partner?") == "is Leeds council a partner?"
    # A person's name asked without the title the corpus writes it with (common words, each).
    texts = ["Professor Phil Wood, chief executive, said so.", "The wood is old."]
    lexicon = Lexicon(texts, {"d": " ".join(texts)}, ["d", "d"])
    assert lexicon.truecase("what did phil wood say?") == "what did Phil Wood say?"


def test_a_contractions_ending_is_never_cased():
    # A new user's "which countries didn't take part?" was searched as "Which countries
    # didn'T take part?": the corpus wrote "AT & T", so "t" had a capital (2026-12-08).
    texts = ["Shares of AT & T and T-Mobile fell at Comcast.", "Mary's Ltd."]
    lexicon = Lexicon(texts, {"d": " ".join(texts)}, ["d", "d"])
    assert lexicon.truecase("which countries didn't take part?") == "which countries didn't take part?"
    assert lexicon.truecase("who's at comcast? they're at t-mobile") == "who's at Comcast? they're at T-Mobile"


def test_words_lose_their_accents_so_that_names_typed_without_them_match():
    # "Bolesław" was "boles" and "aw", "Płock" "p" and "ock": no question found them.
    assert words("Bolesław II of Masovia, in Płock; Skłodowska-Curie; Zürich's Straße; 2,500") == \
        ["boleslaw", "ii", "masovia", "plock", "sklodowska", "curie", "zurich", "strasse", "2500"]
    assert words("Москва and 東京") == []  # other scripts stay unread, as before
    text = "The Prince of Płock, Bolesław II of Masovia, founded it."
    lexicon = Lexicon([text], {"d": text}, ["d"])
    assert lexicon.names_in(lexicon.query_terms("Boleslaw II of Masovia"), "d")


def test_a_lexicon_saved_as_json_answers_as_the_one_it_was_made_from(lexicon):
    stats = json.loads(json.dumps(lexicon.stats))
    loaded = Lexicon.from_stats(stats, lexicon.docs_with, lexicon.terms_of)
    assert loaded.idf == lexicon.idf and loaded.defined == lexicon.defined
    for question in ("who chairs the liverpol stratgic partnership", "Who chairs the LSP?", "who is kate lodge"):
        assert loaded.respell(question) == lexicon.respell(question)
        assert loaded.spelled_out(question) == lexicon.spelled_out(question)
        assert loaded.query_terms(question) == lexicon.query_terms(question)


def test_documents_given_as_a_list_are_numbered():
    lexicon = Lexicon(["Kate Lodge chairs the board."], ["Kate Lodge chairs the board."])
    assert set(lexicon.docs_with("chair")) == {"0"}
