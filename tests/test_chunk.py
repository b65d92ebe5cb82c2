import pytest

from qa.chunk import OverBudget, chunk_document, is_list_item, split_sentences, tiktoken_count
from qa.config import Config
from qa.ingest import read_corpus
from qa.types import Document

from conftest import CORPUS


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


@pytest.mark.parametrize("text, expected", [
    ("Sir Alan Langlands said it. Prof. Smith agreed.", ["Sir Alan Langlands said it.", "Prof. Smith agreed."]),
    ("Dr. J. K. Rowling wrote it. Mr. Smith read it.", ["Dr. J. K. Rowling wrote it.", "Mr. Smith read it."]),
    ("They spend over £6bn. That is a lot.", ["They spend over £6bn.", "That is a lot."]),
    ("Call 0113 343 4031. Or write.", ["Call 0113 343 4031.", "Or write."]),
    ("It supports over 2,500 jobs. Growth is 3.5 per cent.", ["It supports over 2,500 jobs.", "Growth is 3.5 per cent."]),
    ("See No. 10 today. It is e.g. fine.", ["See No. 10 today.", "It is e.g. fine."]),
    ("The U.S. Army came. It left.", ["The U.S. Army came.", "It left."]),
    ("He said: \u201cIt is exciting. We agree.\u201d Then he left.",
     ["He said: \u201cIt is exciting.", "We agree.\u201d", "Then he left."]),
    ("\u201cIs it?\u201d she asked. Yes.", ["\u201cIs it?\u201d she asked.", "Yes."]),
    ("About the Partnership\nThe partnership brings people together.",
     ["About the Partnership", "The partnership brings people together."]),
    ("Our partners\n- Liverpool City Council\n- University of Liverpool\n* Torus",
     ["Our partners", "Liverpool City Council", "University of Liverpool", "Torus"]),
    ("A hard-wrapped sentence that goes\non to the next line. Another.",
     ["A hard-wrapped sentence that goes\non to the next line.", "Another."]),
    ("1. First step\n2. Second step", ["1. First step", "2. Second step"]),
])
def test_sentence_splitting_edge_cases(text, expected):
    assert sentences(text) == expected


def test_masked_spans_never_become_sentences():
    text = "Real news here.\n\nAdvertisement Hide Ad\n\nMore news."
    start = text.index("Advertisement")
    spans = split_sentences(text, ((start, start + len("Advertisement Hide Ad")),))
    assert [text[s:e] for s, e in spans] == ["Real news here.", "More news."]


def test_seed_sentences_keep_offsets_and_never_hold_furniture():
    docs = read_corpus(CORPUS, Config().clean_patterns).documents
    assert len(docs) == 5
    for doc in docs:
        for s, e in split_sentences(doc.text, doc.masked):
            quoted = doc.text[s:e]
            assert quoted == quoted.strip() and quoted
            assert "Advertisement" not in quoted and "newsletter" not in quoted and "Shots!" not in quoted


def long_document(n: int = 300) -> Document:
    body = " ".join(f"Sentence number {i} talks about partnership work in the region of Merseyside." for i in range(n))
    return Document("long", "Long", body + "\n\n" + ("word " * 900).strip() + ".", "long.txt")


def test_chunks_respect_token_limits_and_never_cut_sentences(encoder):
    docs = read_corpus(CORPUS, Config().clean_patterns).documents + [long_document()]
    for doc in docs:
        sents, chunks = chunk_document(doc, tiktoken_count, 160, 40, encoder.count_tokens, encoder.max_tokens)
        starts, ends = {s.start for s in sents}, {s.end for s in sents}
        for start, end, ids in chunks:
            text = doc.text[start:end]
            assert encoder.count_tokens(text) <= encoder.max_tokens, doc.doc_id
            if len(ids) > 1:
                assert tiktoken_count(text) <= 160
            assert start in starts and end in ends  # chunk edges are sentence edges
            assert [sents[i].start for i in ids] == sorted(sents[i].start for i in ids)
        # every sentence is in some chunk
        assert set(range(len(sents))) == {i for *_, ids in chunks for i in ids}


def test_overlap_repeats_trailing_sentences():
    doc = long_document(40)
    _, chunks = chunk_document(doc, tiktoken_count, 100, 40)
    assert len(chunks) > 3
    assert any(set(a[2]) & set(b[2]) for a, b in zip(chunks, chunks[1:]))


def test_model_limit_splits_chunks_that_tiktoken_allows(encoder):
    # Long digit runs cost many more WordPiece tokens than cl100k tokens.
    text = " ".join(f"Code {i} is 1{i:03d}9{i:03d}7{i:03d}." for i in range(200))
    doc = Document("digits", "Digits", text, "digits.txt")
    _, chunks = chunk_document(doc, tiktoken_count, 2000, 0, encoder.count_tokens, 60)
    assert len(chunks) > 1
    assert all(encoder.count_tokens(doc.text[s:e]) <= 60 for s, e, _ in chunks)


def test_list_items_are_told_from_lines_that_introduce_them():
    text = "Our partners\n- Liverpool City Council\n  * Torus\n1. First step.\nA line - not an item."
    starts = {text[s:e]: s for s, e in split_sentences(text)}
    assert [is_list_item(text, starts[k]) for k in ("Our partners", "Liverpool City Council", "Torus", "1. First step.",
                                                     "A line - not an item.")] == [False, True, True, True, False]


def test_each_sentence_knows_its_place_in_its_document():
    text = ("The club was founded in 1990. It rows on the Douglas.\n\nOur partners\n- Wigan Council\n- Edge Hill\n\n"
            "Who runs it? The chair said:\n\"We row every day.\"")
    doc = Document("club", "Club", text, "club.txt")
    sentences, _ = chunk_document(doc, tiktoken_count, 200, 0)
    by_text = {text[s.start:s.end]: (n, s) for n, s in enumerate(sentences)}

    def place(t):
        n, s = by_text[t]
        return n - s.lead_in if s.lead_in else None, s.item, s.items, s.question, s.colon

    # The sentence before in its paragraph; none across a paragraph break.
    assert place("The club was founded in 1990.") == (None, False, 0, False, False)
    assert place("It rows on the Douglas.") == (by_text["The club was founded in 1990."][0], False, 0, False, False)
    assert place("Our partners") == (None, False, 2, False, False)
    # Each item's lead-in is the line that introduces the list, not the item before it.
    assert place("Wigan Council")[:2] == place("Edge Hill")[:2] == (by_text["Our partners"][0], True)
    assert place("Who runs it?")[3] and place("The chair said:")[4]
    assert sentences == [type(s).from_row(s.row()) for s in sentences]  # as the index stores them


class CountingText(str):
    """A document text that counts the characters its slices and searches cover."""

    covered = 0

    def __getitem__(self, key):
        if isinstance(key, slice):
            start, stop, _ = key.indices(len(self))
            CountingText.covered += max(0, stop - start)
        return str.__getitem__(self, key)

    def rfind(self, sub, start=None, end=None):
        CountingText.covered += (len(self) if end is None else end) - (start or 0)
        return str.rfind(self, sub, start, end)


@pytest.mark.parametrize("sep", [" ", "\n"], ids=["one-line", "lines"])
def test_chunking_reads_the_text_a_bounded_number_of_times_however_long_its_lines(sep):
    # A document of one 1.5 MB line read back to its line's start for every sentence, 6,000
    # times over (a 1 MB HTML file of one line took 168 s); now each sentence looks back at
    # most a marker's reach.
    body = sep.join(f"Ward {i} was visited by {i % 37} nurses on day {i}." for i in range(4000))
    text = CountingText("Our wards\n" + body)
    CountingText.covered = 0
    sentences, _ = chunk_document(Document("d", "t", text, "d.txt"), tiktoken_count, 160, 40)
    assert len(sentences) == 4001
    assert CountingText.covered < 20 * len(text), CountingText.covered / len(text)


def test_a_document_over_its_sentence_budget_is_refused_without_splitting_the_rest(monkeypatch):
    import qa.chunk

    text = "One line of a list.\n" * 100_000 + "Hard-wrapped words that go\non past the budget."
    assert len(split_sentences(text, limit=5)) == 6  # one past the budget is enough to know
    assert sentences(text)[-1] == "Hard-wrapped words that go\non past the budget."  # held until the next line shows it ends
    split = []
    monkeypatch.setattr(qa.chunk, "split_sentences", lambda *a, **k: split.append(split_sentences(*a, **k)) or split[-1])
    with pytest.raises(OverBudget, match=r"more than 50 sentences; the limit is 50 \(max_document_sentences\)"):
        chunk_document(Document("d", "d", text, "d.txt"), tiktoken_count, 200, 0, max_sentences=50)
    assert [len(s) for s in split] == [51]  # the rest was never split
