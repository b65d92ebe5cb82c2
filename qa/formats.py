"""Text out of PDF and Word files, for `qa.ingest`.

A PDF becomes the text of its pages, in order, each page's boxes in reading order
(pdfminer.six's layout analysis, so two columns read one after the other) and each
box's lines joined into one paragraph, with words hyphenated across a line break
made whole. The offset where each page starts is kept, so a citation knows its page.
Running headers and footers (text in a page's top or bottom band that recurs on
other pages, numbers aside) stay in the text but are returned as furniture, to be
masked like the text the cleaning rules match: never indexed or quoted.

pdfminer.six over pypdf by measurement (`scripts/pdf_study.py`, README "Documents"):
both recover the same sentences of a real single-column manual, but pypdf reads a
two-column page drawn line by line across in drawing order, mixing the columns.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

from .chunk import starts_item

EXTRACTOR_VERSION = 1  # bump when the text made of a file changes, so stored documents are read again
BAND = 0.09  # the top and bottom share of a page where running headers and footers sit


@dataclass
class Extracted:
    text: str
    pages: tuple[int, ...] = ()  # offset in `text` where each page starts (PDF only)
    furniture: tuple[tuple[int, int], ...] = ()  # running headers and footers
    meta: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # said per file, the file is still read


def read_pdf(raw: bytes) -> Extracted:
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LAParams, LTTextContainer
    from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect

    if not raw.startswith(b"%PDF"):
        raise ValueError("not a PDF file (it does not start with %PDF)")
    pages: list[list[tuple[str, str]]] = []  # per page: (place, text) with place "head", "body" or "foot"
    try:
        for page in extract_pages(io.BytesIO(raw), laparams=LAParams()):
            boxes = []
            for box in page:
                if not isinstance(box, LTTextContainer) or not box.get_text().strip():
                    continue
                place = "head" if box.y0 >= page.height * (1 - BAND) else "foot" if box.y1 <= page.height * BAND else "body"
                boxes.append((place, _paragraph(box.get_text())))
            pages.append(boxes)
    except (PDFPasswordIncorrect, PDFEncryptionError):
        raise ValueError("the PDF is password-protected; save a copy without the password and add that") from None
    except Exception as exc:  # pdfminer raises many kinds, from its parser down to zlib
        raise ValueError(f"the PDF cannot be read ({type(exc).__name__}: {exc}); it may be damaged") from None

    running = _running(pages)
    text, starts, furniture, empty = [], [], [], []
    at = 0
    for number, boxes in enumerate(pages, 1):
        if not boxes:
            empty.append(number)
        starts.append(at)
        order = [b for b in boxes if b[0] == "head"] + [b for b in boxes if b[0] == "body"] + [b for b in boxes if b[0] == "foot"]
        for place, para in order:
            if place != "body" and (_key(para) in running or _PAGE_NUMBER.fullmatch(para)):
                furniture.append((at, at + len(para)))
            text.append(para + "\n\n")
            at += len(para) + 2
    if not any(pages):
        raise ValueError("no page has a text layer (a scanned PDF?); run it through OCR first")
    extracted = Extracted("".join(text), tuple(starts), tuple(furniture))
    if empty:
        pages_ = f"page {empty[0]} has" if len(empty) == 1 else f"pages {_ranges(empty)} have"
        extracted.warnings.append(f"{pages_} no text layer (scanned?) and could not be read")
    extracted.meta.update(_pdf_title(raw))
    return extracted


def _paragraph(box_text: str) -> str:
    """A text box's lines as one paragraph: lines joined with a space, a word hyphenated
    at a line end joined up, list items kept on lines of their own."""
    lines = [line.strip() for line in box_text.strip().splitlines() if line.strip()]
    out = lines[0] if lines else ""
    for line in lines[1:]:
        if re.search(r"[A-Za-z][-\u00ad]$", out) and line[0].islower():
            out = out[:-1] + line
        elif starts_item(line):
            out += "\n" + line
        else:
            out += " " + line
    return out


_PAGE_NUMBER = re.compile(r"(?:page\s+)?[-\u2013 ]*\d{1,4}[-\u2013 ]*(?:(?:of|/)\s*\d{1,4})?", re.IGNORECASE)


def _key(text: str) -> str:
    return re.sub(r"\d+", "#", re.sub(r"\s+", " ", text).strip().lower())


def _running(pages: list[list[tuple[str, str]]]) -> set[str]:
    """Header and footer lines that recur, numbers aside, on at least two pages and on at
    least a third of the pages with text."""
    counts: dict[str, int] = {}
    for boxes in pages:
        for key in {_key(text) for place, text in boxes if place != "body"}:
            counts[key] = counts.get(key, 0) + 1
    with_text = sum(1 for boxes in pages if boxes)
    return {k for k, n in counts.items() if n >= 2 and n * 3 >= with_text}


def _ranges(numbers: list[int]) -> str:
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _pdf_title(raw: bytes) -> dict:
    from pdfminer.pdfdocument import PDFDocument
    from pdfminer.pdfparser import PDFParser
    from pdfminer.pdftypes import resolve1

    try:
        info = PDFDocument(PDFParser(io.BytesIO(raw))).info
        title = resolve1(info[0].get("Title")) if info else None
        if isinstance(title, bytes):
            title = title.decode("utf-16") if title.startswith(b"\xfe\xff") else title.decode("latin-1")
    except Exception:  # a title is a nicety; the text was read
        return {}
    return {"title": title.strip()} if isinstance(title, str) and title.strip() else {}


def read_docx(raw: bytes) -> Extracted:
    """Paragraphs, headings and list items one to a line, table rows as their cells
    joined by " | ", in the order the document has them."""
    import zipfile

    import docx
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(raw))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ValueError(f"not a readable Word .docx file ({exc})") from None
    lines: list[str] = []

    def add(block) -> None:
        if isinstance(block, Table):
            for row in block.rows:
                cells = [c.text.strip() for c in row.cells]
                cells = [c for i, c in enumerate(cells) if c and (i == 0 or c != cells[i - 1])]  # merged cells repeat
                if cells:
                    lines.append(" | ".join(cells))
            lines.append("")
            return
        text = re.sub(r"\s+", " ", block.text).strip()
        if not text:
            return
        style = (block.style.name if block.style is not None else "").lower()
        if "list" in style or block._p.pPr is not None and block._p.pPr.numPr is not None:
            lines.append("- " + text)
        else:
            lines.extend((text, ""))

    for block in document.iter_inner_content():
        add(block)
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"
    title = (document.core_properties.title or "").strip()
    return Extracted(text, meta={"title": title} if title else {})
