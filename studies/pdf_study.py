"""Which PDF text library reads PDFs best: pypdf (BSD) or pdfminer.six (MIT).

For each PDF with a known text, the share of its sentences (six words or more) found
whole in each library's text, after the same clean-up (lines joined, hyphenated words
made whole), and the time taken. The known texts:
  - a real manual, /usr/share/doc/shared-mime-info (Debian's shared-mime-info), whose
    HTML edition is the reference;
  - tests/docgen.py's report: headers, footers, and a two-column page drawn line by
    line across the page.
Run: .venv/bin/pip install pypdf==7.1.1 && .venv/bin/python studies/pdf_study.py
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from qa.chunk import split_sentences  # noqa: E402
from qa.formats import read_pdf  # noqa: E402
from qa.ingest import html_to_text  # noqa: E402
from qa.text import match_text  # noqa: E402

from docgen import report_pdf  # noqa: E402

MANUAL = Path("/usr/share/doc/shared-mime-info")


def flat(text: str) -> str:
    """Lines joined, hyphenated words whole, quotes and dashes folded (`qa.text.match_text`)."""
    return re.sub(r"\s+", " ", match_text(re.sub(r"(\w)[-\u00ad]\n(?=[a-z])", r"\1", text))).strip()


def with_pypdf(path: Path) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


def with_pdfminer(path: Path) -> str:
    from pdfminer.high_level import extract_text

    return extract_text(path)


def with_qa(path: Path) -> str:
    """What the product indexes: qa.formats' paragraphs, running headers and footers cut."""
    got = read_pdf(path.read_bytes())
    out, pos = [], 0
    for s, e in got.furniture:
        out.append(got.text[pos:s])
        pos = e
    return "".join(out) + got.text[pos:]


def cases(work: Path):
    if (MANUAL / "shared-mime-info-spec.pdf").is_file():
        html = "".join(p.read_text(encoding="utf-8") for p in sorted((MANUAL / "shared-mime-info-spec.html").glob("*.html")))
        text, _ = html_to_text(html)
        yield "shared-mime-info spec (17 pages)", MANUAL / "shared-mime-info-spec.pdf", \
            [flat(text[s:e]) for s, e in split_sentences(text)]
    pages = report_pdf(work / "report.pdf")
    yield "generated report, two columns (4 pages)", work / "report.pdf", [s for page in pages for s in page]


def main() -> None:
    with tempfile.TemporaryDirectory() as work:
        print("| PDF | library | sentences found whole | seconds |\n|---|---|---|---|")
        for name, path, truth in cases(Path(work)):
            truth = [t for t in truth if len(t.split()) >= 6]
            for library, extract in (("pypdf 7.1.1", with_pypdf), ("pdfminer.six 20260107", with_pdfminer),
                                     ("qa.formats (pdfminer.six boxes, furniture cut)", with_qa)):
                started = time.perf_counter()
                text = flat(extract(path))
                seconds = time.perf_counter() - started
                found = sum(t in text for t in truth)
                print(f"| {name} | {library} | {found}/{len(truth)} ({100 * found / len(truth):.1f}%) | {seconds:.2f} |")


if __name__ == "__main__":
    main()
