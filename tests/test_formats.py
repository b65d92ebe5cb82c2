"""PDF and Word files made in the test, read into documents: text, page furniture,
columns, hyphenation, pages on citations and exact offsets."""

import dataclasses
import re
import shutil

import pytest

from qa.chunk import split_sentences
from qa.config import Config
from qa.index import build_index
from qa.ingest import read_corpus
from qa.pipeline import QA

from docgen import HEADER, minutes_docx, report_pdf


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("formats")
    pages = report_pdf(folder / "report.pdf")
    docx = minutes_docx(folder / "minutes.docx")
    return folder, pages, docx


def sentences(doc):
    return [(doc.text[s:e], doc.page_of(s)) for s, e in split_sentences(doc.text, doc.masked)]


def test_pdf_text_pages_furniture_columns_and_hyphens(files):
    folder, pages, _ = files
    result = read_corpus(folder, ())
    doc = next(d for d in result.documents if d.doc_id == "report")
    got = sentences(doc)
    expected = [(s, n) for n, page in enumerate(pages, 1) for s in page]
    assert got == expected  # every sentence whole, in reading order, on its page: columns one after the other
    assert "collaboration" in doc.text and "collabo-" not in doc.text
    assert doc.title == "Northwind Annual Review"  # the PDF's own title
    assert len(doc.pages) == 4 and doc.pages[0] == 0
    # The running header and the "Page N of 4" footers stay in the text, masked.
    masked = [doc.text[s:e] for s, e in doc.masked]
    assert masked.count(HEADER) == 3
    assert sorted(m for m in masked if m.startswith("Page")) == [f"Page {n} of 4" for n in (1, 2, 3)]
    assert ("report.pdf", "page 4 has no text layer (scanned?) and could not be read") in result.warnings


def test_docx_headings_lists_and_tables(files):
    folder, _, docx = files
    doc = next(d for d in read_corpus(folder, ()).documents if d.doc_id == "minutes")
    got = [text for text, _ in sentences(doc)]
    assert doc.title == "Board minutes"
    assert got[0] == docx["heading"]
    assert all(item in got for item in docx["items"])
    assert docx["row"] in got
    assert re.search(r"^- Approve the research strategy\.$", doc.text, re.MULTILINE)
    assert doc.page_of(10) is None and doc.pages == ()


def test_word_xml_read_as_a_stream_keeps_cells_lists_controls_and_drops_deleted_text():
    from qa.formats import read_docx

    from docgen import paragraph, word_of

    def cell(*paragraphs: bytes) -> bytes:
        return b"<w:tc>" + b"".join(paragraphs) + b"</w:tc>"

    numbered = b'<w:p><w:pPr><w:numPr><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr></w:pPr><w:r><w:t>First step.</w:t></w:r></w:p>'
    body = (paragraph("Intro line.") + numbered
            + b"<w:sdt><w:sdtContent>" + paragraph("Inside a content control.") + b"</w:sdtContent></w:sdt>"
            + b"<w:p><w:r><w:t>Kept </w:t></w:r><w:del><w:r><w:delText>gone </w:delText></w:r></w:del><w:r><w:t>text.</w:t></w:r></w:p>"
            + b"<w:tbl><w:tr>" + cell(paragraph("Name")) + cell(paragraph("Role"), paragraph("and remit"))
            + cell(b"<w:tbl><w:tr>" + cell(paragraph("nested")) + b"</w:tr></w:tbl>") + b"</w:tr></w:tbl>"
            + paragraph("After the table."))
    text = read_docx(word_of(body)).text
    assert text.splitlines() == ["Intro line.", "", "- First step.", "Inside a content control.", "", "Kept text.", "",
                                 "Name | Role and remit | nested", "", "After the table."]


def test_broken_protected_and_misnamed_files_are_skipped_with_a_reason(tmp_path):
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(tmp_path / "locked.pdf"), encrypt="secret")
    c.drawString(72, 720, "A sentence behind a password.")
    c.save()
    report_pdf(tmp_path / "whole.pdf")
    (tmp_path / "cut.pdf").write_bytes((tmp_path / "whole.pdf").read_bytes()[:900])
    (tmp_path / "fake.docx").write_bytes(b"plain text, not a Word file")
    (tmp_path / "scan.pdf").write_bytes(_image_only_pdf(tmp_path))
    result = read_corpus(tmp_path, ())
    skipped = dict(result.skipped)
    assert "password-protected" in skipped["locked.pdf"]
    assert "cannot be read" in skipped["cut.pdf"] or "no page has a text layer" in skipped["cut.pdf"]
    assert "not a readable Word .docx file" in skipped["fake.docx"]
    assert "run it through OCR" in skipped["scan.pdf"]
    assert [d.doc_id for d in result.documents] == ["whole"]


def _image_only_pdf(tmp_path):
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(tmp_path / "scan.tmp"))
    c.rect(100, 100, 300, 300, fill=1)
    c.save()
    return (tmp_path / "scan.tmp").read_bytes()


def test_known_files_are_not_read_again(files):
    folder, _, _ = files
    first = read_corpus(folder, ())
    known = {d.source: d for d in first.documents}
    again = read_corpus(folder, (), known)
    assert all(d is known[d.source] for d in again.documents)
    assert all(d is not known[d.source] for d in read_corpus(folder, ("^Minutes.*$",), known).documents)  # rules changed


@pytest.fixture(scope="module")
def paged_qa(files, tmp_path_factory, encoder, reader):
    folder, _, _ = files
    corpus = tmp_path_factory.mktemp("paged") / "corpus"
    shutil.copytree(folder, corpus, ignore=shutil.ignore_patterns("*.tmp"))
    config = dataclasses.replace(Config(), corpus_dir=str(corpus), index_dir=str(corpus.parent / "index"))
    build_index(config, encoder)
    return QA.load(config, encoder, reader)


@pytest.mark.parametrize("question, page, expected", [
    ("Who leads the dementia service?", 2, "Dr Amara Okafor leads the dementia service"),
    ("When did the Tadcaster clinic open?", 3, "The Tadcaster clinic opened on 3 March 2025"),
    ("How many patients did the cardiology unit treat?", 2, "treated 4,200 patients"),
])
def test_citations_carry_the_page_and_exact_offsets(paged_qa, question, page, expected):
    answer = paged_qa.ask(question)
    assert not answer.abstained
    first = answer.citations[0]
    assert expected in first.text and first.page == page
    for c in answer.citations:
        doc = paged_qa.index.documents[c.doc_id]
        assert doc.text[c.start:c.end] == c.text
        assert c.page == (doc.page_of(c.start) if doc.pages else None)
        assert doc.pages[c.page - 1] <= c.start if c.page else True


def test_the_chair_is_found_in_a_word_table(paged_qa):
    answer = paged_qa.ask("Who is the chair of the board?")
    assert "Ruth Ellison | Chair of the board" in answer.answer
    assert answer.citations[0].page is None
