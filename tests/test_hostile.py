"""Hostile and heavy files: each fails alone, with its own reason, under the extraction
limits (`extract_*` settings, lowered here so that each bomb can be built small), and
every other file is read as usual."""

import io
import zipfile

import pytest

from qa.cli import main
from qa.files import read_manifest
from qa.formats import Limits
from qa.ingest import read_corpus

from docgen import inflating_pdf, nested_pdf, pages_pdf, paragraph, word_of

LOW = Limits(seconds=2, memory_mb=400, inflated_mb=1, pages=3)
GOOD = "The Quokka Fund pays for two research nurses at the Harrogate clinic.\n"


def _laughs() -> bytes:
    """A Word file whose XML defines "billion laughs" entities."""
    dtd = b'<!DOCTYPE lolz [<!ENTITY lol0 "lol">' + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1)) * 10) for i in range(1, 10)) + b"]>"
    raw = word_of(b"<w:p><w:r><w:t>&lol9;</w:t></w:r></w:p>")
    parts = {i.filename: zipfile.ZipFile(io.BytesIO(raw)).read(i) for i in zipfile.ZipFile(io.BytesIO(raw)).infolist()}
    header, rest = parts["word/document.xml"].split(b"?>", 1)
    parts["word/document.xml"] = header + b"?>" + dtd + rest
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    return out.getvalue()


# file name -> (what makes its bytes, words its reason must hold). Made when the corpus
# fixture runs, not at import: deflating 500 MB of spaces takes 2 s, and every pytest
# worker imports this module.
HOSTILE = {
    "malformed.docx": (lambda: word_of(paragraph("An unclosed run")[:-12]), "XMLSyntaxError"),
    "laughs.docx": (_laughs, "entity amplification"),
    "inflated.docx": (lambda: word_of(paragraph("a" * 1_500_000)), "over the 1 MB limit (extract_inflated_mb)"),
    "encrypted.docx": (lambda: word_of(paragraph("secret"), encrypted=True), "is encrypted"),
    "lzma.docx": (lambda: word_of(paragraph("odd"), method=zipfile.ZIP_LZMA), "compressed with method 14"),
    "long.pdf": (lambda: pages_pdf(5), "more than 3 pages (extract_pages)"),
    "inflating.pdf": (lambda: inflating_pdf(500), "more than 400 MB (extract_memory_mb)"),
    "nested.pdf": (lambda: nested_pdf(8), "took over 2 s"),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    for name, (make, _) in HOSTILE.items():
        (folder / name).write_bytes(make())
    (folder / "good.txt").write_text(GOOD)
    (folder / "fine.docx").write_bytes(word_of(paragraph("The fine Word file names the Otter Trust as its funder.")))
    (folder / "fine.pdf").write_bytes(pages_pdf(2))
    return folder


# On a loaded machine (the quick tier runs three workers on two cores) the inflating PDF can
# reach the 2 s limit before the 400 MB one: both are limits on work the file was built to
# make, so either is its reason here; the memory limit alone is proven below, with time to spare.
HEAVY = {"inflating.pdf": "(extract_seconds)"}


def test_each_hostile_file_fails_alone_with_its_reason(corpus):
    result = read_corpus(corpus, (), limits=LOW)
    skipped = dict(result.skipped)
    assert set(skipped) == set(HOSTILE)
    for name, (_, reason) in HOSTILE.items():
        assert reason in skipped[name] or HEAVY.get(name, reason) in skipped[name], (name, skipped[name])
    assert {d.source for d in result.documents} == {"good.txt", "fine.docx", "fine.pdf"}


def test_a_pdf_that_inflates_past_the_memory_limit_is_refused_for_memory(tmp_path):
    (tmp_path / "inflating.pdf").write_bytes(inflating_pdf(500))
    (tmp_path / "good.txt").write_text(GOOD)
    result = read_corpus(tmp_path, (), limits=Limits(seconds=60, memory_mb=400, inflated_mb=1, pages=3))
    assert "more than 400 MB (extract_memory_mb)" in dict(result.skipped)["inflating.pdf"]
    assert [d.source for d in result.documents] == ["good.txt"]


def test_qa_ingest_skips_a_bad_file_with_a_warning_and_builds_the_rest(corpus, tmp_path, monkeypatch, capsys):
    for name, value in (("SECONDS", 2), ("MEMORY_MB", 400), ("INFLATED_MB", 1), ("PAGES", 3)):
        monkeypatch.setenv(f"QA_EXTRACT_{name}", str(value))
    assert main(["ingest", "--corpus", str(corpus), "--index", str(tmp_path / "index")]) == 0
    said = capsys.readouterr()
    for name in HOSTILE:
        assert name in said.out + said.err
    assert set(read_manifest(tmp_path / "index")["documents"]) == {"good", "fine.docx", "fine.pdf"}


def test_a_reading_stops_once_its_file_is_no_longer_wanted():
    # What DELETE of an upload being indexed does: its file goes, and the reading asks.
    from qa.formats import extract

    asked = []

    def cancelled() -> bool:
        asked.append(1)
        return len(asked) > 1  # wanted at the first check, removed by the second

    with pytest.raises(ValueError, match="removed while it was being read"):
        extract(".pdf", nested_pdf(9), Limits(seconds=600), cancelled)
    assert len(asked) == 2
