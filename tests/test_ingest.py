import json

from qa.config import Config
from qa.ingest import html_to_text, read_corpus
from qa.text import Lexicon, find_acronyms, match_text

from conftest import CORPUS

RULES = Config().clean_patterns


def test_seed_documents_are_unchanged_and_carry_metadata():
    docs = {d.doc_id: d for d in read_corpus(CORPUS, RULES).documents}
    assert len(docs) == 5
    for doc in docs.values():
        assert doc.text == (CORPUS / doc.source).read_text(encoding="utf-8")
    assert docs["004_ce580bb8f3b02914"].date == "2024-01-20"
    assert docs["003_2df78265f668097b"].date == "2023-12-14"
    assert docs["001_576bfebf929a5f1e"].title == "About the Liverpool Strategic Partnership"
    assert docs["004_ce580bb8f3b02914"].meta["organisation"] == "Yorkshire Post"


def test_cleaning_rules_mask_page_furniture():
    doc = next(d for d in read_corpus(CORPUS, RULES).documents if d.doc_id.startswith("004"))
    masked = [doc.text[s:e] for s, e in doc.masked]
    assert masked.count("Advertisement Hide Ad") == 6
    assert any(m.startswith("Sign up to our Business newsletter") and m.endswith("Submitting...") for m in masked)
    assert not any("Professor Phil Wood" in m for m in masked)


def test_cleaning_rules_are_configurable(tmp_path):
    (tmp_path / "a.txt").write_text("Keep this sentence.\nDrop this footer line.\n")
    doc = read_corpus(tmp_path, (r"^Drop this.*$",)).documents[0]
    assert [doc.text[s:e] for s, e in doc.masked] == ["Drop this footer line."]
    assert read_corpus(tmp_path, ()).documents[0].masked == ()


def test_reads_txt_md_html_and_skips_bad_files(tmp_path):
    (tmp_path / "notes.md").write_text("---\ntitle: My Notes\ndate: 2020-05-01\n---\n# Heading\n\nBody text here.\n")
    (tmp_path / "page.html").write_text(
        "<html><head><title>A Page</title><style>p{}</style><script>alert(1)</script></head>"
        "<body><nav>Home | About</nav><h1>Welcome</h1><p>First&nbsp;para.</p><ul><li>One</li><li>Two</li></ul>"
        "<footer>Copyright</footer></body></html>"
    )
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02abc")
    (tmp_path / "late-nul.txt").write_bytes(b"Plain text for a while. " * 500 + b"\x00 then binary")  # past the first 8 KB
    (tmp_path / "latin.txt").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "empty.txt").write_text("   \n")
    (tmp_path / "ignored.rtf").write_bytes(b"{\\rtf1 not a type we read}")
    (tmp_path / "damaged.pdf").write_bytes(b"%PDF")
    result = read_corpus(tmp_path, RULES)
    docs = {d.doc_id: d for d in result.documents}
    assert set(docs) == {"notes", "page"}
    assert docs["notes"].title == "My Notes" and docs["notes"].date == "2020-05-01"
    assert docs["notes"].text.startswith("# Heading")
    page = docs["page"]
    assert page.title == "A Page"
    assert "alert" not in page.text and "Home | About" not in page.text and "Copyright" not in page.text
    assert "Welcome" in page.text and "First\u00a0para." in page.text and "- One" in page.text
    assert {p for p, _ in result.skipped} == {"binary.txt", "late-nul.txt", "latin.txt", "empty.txt", "damaged.pdf"}
    assert all(reason for _, reason in result.skipped)


def test_sidecar_metadata_overrides_guesses(tmp_path):
    (tmp_path / "doc.txt").write_text("A headline\n\nSome text.")
    (tmp_path / "doc.meta.json").write_text(json.dumps({"title": "Real title", "date": "2019", "organisation": "Org"}))
    doc = read_corpus(tmp_path, RULES).documents[0]
    assert (doc.title, doc.date, doc.meta) == ("Real title", "2019", {"organisation": "Org"})


def test_match_text_folds_lookalikes_without_moving_offsets():
    text = "It\u2019s \u201cnew\u201d\u00a0\u2013 really\u2026"
    folded = match_text(text)
    assert folded == "It's \"new\" - really."
    assert len(folded) == len(text)


def test_html_blocks_become_separate_lines():
    text, meta = html_to_text("<p>One.</p><p>Two.</p><time datetime='2021-02-03T10:00'>x</time>")
    assert "One.\n" in text and "Two." in text and meta["date"] == "2021-02-03"


def test_acronym_definitions_are_found():
    assert find_acronyms("the Leeds Academic Health Partnership (LAHP) said") == {"LAHP": "Leeds Academic Health Partnership"}
    assert find_acronyms("a Very Odd Thing (XYZ)") == {}


def test_an_acronym_that_is_a_stop_word_does_not_stop_the_corpus_loading():
    # Found in a SQuAD train article: an acronym such as "(IT)", whose only word is a stop
    # word, made `Lexicon` fail on load.
    text = "Troops of the United States (US) and the Information Technology (IT) office met."
    assert set(find_acronyms(text)) == {"US", "IT"}
    lexicon = Lexicon([text], [text])
    assert list(lexicon.acronyms) == ["us"] and lexicon.idf


def test_misspelt_words_are_corrected_to_corpus_words_before_acronyms_fold():
    lexicon = Lexicon(
        ["The Liverpool Strategic Partnership (LSP) meets monthly.", "Its strategies are public.",
         "The LSP is overseen by a board."],
        ["The Liverpool Strategic Partnership (LSP) meets monthly. Its strategies are public."],
    )
    # "stratgic" is nearest the word "strategic" (not "strategies"), so the whole name folds into LSP.
    assert lexicon.query_terms("who runs the liverpool stratgic partnership") == {"run", "lsp"}
    assert lexicon.correct("oversen") == "overseen"


def test_links_out_of_the_corpus_are_not_followed(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("The vault code is 4711.\n")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "real.txt").write_text("A real document about the partnership.\n")
    (corpus / "leak.txt").symlink_to(secret)
    (corpus / "inner.txt").symlink_to(corpus / "real.txt")  # a link inside the folder is fine
    result = read_corpus(corpus, ())
    assert sorted(d.doc_id for d in result.documents) == ["inner", "real"]
    assert result.skipped == [("leak.txt", "a link to a file outside the corpus folder (not followed)")]


def test_an_unreadable_file_is_skipped_with_the_reason(tmp_path, monkeypatch):
    from pathlib import Path

    (tmp_path / "fine.txt").write_text("A readable document.\n")
    (tmp_path / "locked.txt").write_text("Not for us.\n")
    real = Path.read_bytes

    def read_bytes(self):  # tests run as root, for whom file modes do not block reading
        if self.name == "locked.txt":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    result = read_corpus(tmp_path, ())
    assert [d.doc_id for d in result.documents] == ["fine"]
    assert result.skipped[0][0] == "locked.txt" and "Permission denied" in result.skipped[0][1]
