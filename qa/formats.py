"""Text out of PDF and Word files, for `qa.ingest`.

A PDF becomes the text of its pages, in order, each page's boxes in reading order
(pdfminer.six's layout analysis, so two columns read one after the other) and each
box's lines joined into one paragraph, with words hyphenated across a line break
made whole. The offset where each page starts is kept, so a citation knows its page.
Running headers and footers (text in a page's top or bottom band that recurs on
other pages, numbers aside) stay in the text but are returned as furniture, to be
masked like the text the cleaning rules match: never indexed or quoted.

pdfminer.six over pypdf by measurement (`studies/pdf_study.py`, docs/documents.md):
both recover the same sentences of a real single-column manual, but pypdf reads a
two-column page drawn line by line across in drawing order, mixing the columns.
"""

from __future__ import annotations

import io
import math
import multiprocessing
import os
import re
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field

from .chunk import starts_item

EXTRACTOR_VERSION = 2  # bump when the text made of a file changes, so stored documents are read again
BAND = 0.09  # the top and bottom share of a page where running headers and footers sit
CANCEL_CHECK_SECONDS = 0.2  # how often a reading asks whether it is still wanted


@dataclass(frozen=True)
class Limits:
    """What reading one document may cost (`extract_*` and `max_document_*` settings): a
    hostile file (a compression bomb, drawings nested to make pages of work, a megabyte
    of one line) fails alone, with a reason."""

    seconds: float = 60.0  # wall-clock and CPU time of reading a PDF or Word file
    memory_mb: int = 2048  # address space of the process that reads it
    inflated_mb: int = 256  # a Word file's parts, inflated, all together
    pages: int = 5000  # a PDF's pages
    chars: int = 2_000_000  # the text read out of any file


def extract(suffix: str, raw: bytes, limits: Limits, cancelled: Callable[[], bool] = lambda: False) -> Extracted:
    """A PDF or Word file read in a child process under `limits`: a file that needs more
    time or memory, or whose parser raises what no reader expects, fails with a reason
    (ValueError) and the process that asked (a server, `qa ingest`) is untouched. The
    child forks from a small server that imported only the readers, so a start costs
    milliseconds, and never inherits the models or the server's threads. Once `cancelled()`
    says so, the child is stopped within `CANCEL_CHECK_SECONDS`."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["qa.formats"])
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_read_in_child, args=(suffix, raw, limits, send, os.getpid()), daemon=True)
    child.start()
    send.close()
    deadline = time.monotonic() + limits.seconds
    try:
        while not receive.poll(min(CANCEL_CHECK_SECONDS, max(0.0, deadline - time.monotonic()))):
            if cancelled():
                raise ValueError("it was removed while it was being read")
            if time.monotonic() >= deadline:
                raise ValueError(f"reading it took over {limits.seconds:g} s (extract_seconds); it may be built to "
                                 "make work, or split it into smaller files")
        ok, value = receive.recv()
    except EOFError:  # the child died: the CPU limit's signal, or the kernel out of memory
        ok, value = False, (f"reading it took over {limits.seconds:g} s of CPU (extract_seconds)" if
                            _killed_for_cpu(child) else "reading it stopped the reader process (over "
                            f"{limits.memory_mb} MB, extract_memory_mb?); it may be a compression bomb")
    finally:
        child.kill()
        child.join()
        receive.close()
    if not ok:
        raise ValueError(value)
    return value


def _killed_for_cpu(child) -> bool:
    import signal

    child.join(1)
    return child.exitcode == -signal.SIGXCPU


def _read_in_child(suffix: str, raw: bytes, limits: Limits, send, asker: int) -> None:
    import resource

    _die_with(asker)
    cap = limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    cpu = math.ceil(limits.seconds)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    try:
        result = (True, READERS[suffix](raw, limits))
    except MemoryError:
        result = (False, f"reading it needs more than {limits.memory_mb} MB (extract_memory_mb); it may be a "
                         "compression bomb")
    except ValueError as exc:
        result = (False, str(exc))
    except Exception as exc:  # a parser's own error (XML, a zip method, recursion): this file fails, alone
        result = (False, f"it cannot be read ({type(exc).__name__}: {str(exc)[:200]}); it may be damaged")
    try:
        send.send(result)
        send.close()
    except OSError:  # nobody waits for it any more (the reader was cancelled): nothing to say
        pass


def _die_with(asker: int) -> None:
    """End this reader as soon as the process that asked for it ends. A forkserver's child
    outlives its requester (it holds the pipe the forkserver watches for that), so a server
    killed with kill -9 would leave readers running on to their time limit."""
    import contextlib
    import ctypes
    import select
    import threading

    try:
        watched = os.pidfd_open(asker)
    except (AttributeError, OSError):  # not Linux, or already gone: the time limit still ends it
        return

    def watch() -> None:
        select.select([watched], [], [])  # readable once the asker has ended
        os._exit(1)

    # The watcher must not take from the reader's memory limit: a small stack, and no
    # malloc arena of its own (glibc reserves 64 MB of address space for each).
    with contextlib.suppress(OSError, AttributeError):
        M_ARENA_MAX = -8
        ctypes.CDLL(None).mallopt(M_ARENA_MAX, 1)
    size = threading.stack_size(64 * 1024)
    try:
        threading.Thread(target=watch, daemon=True).start()
    finally:
        threading.stack_size(size)


@dataclass
class Extracted:
    text: str
    pages: tuple[int, ...] = ()  # offset in `text` where each page starts (PDF only)
    furniture: tuple[tuple[int, int], ...] = ()  # running headers and footers
    meta: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # said per file, the file is still read


def read_pdf(raw: bytes, limits: Limits = Limits()) -> Extracted:
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LAParams, LTTextContainer
    from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect

    if not raw.startswith(b"%PDF"):
        raise ValueError("not a PDF file (it does not start with %PDF)")
    pages: list[list[tuple[str, str]]] = []  # per page: (place, text) with place "head", "body" or "foot"
    try:
        for page in extract_pages(io.BytesIO(raw), laparams=LAParams(), maxpages=limits.pages + 1):
            if len(pages) == limits.pages:
                raise ValueError(f"it has more than {limits.pages} pages (extract_pages); split it into smaller files")
            boxes = []
            for box in page:
                if not isinstance(box, LTTextContainer) or not box.get_text().strip():
                    continue
                place = "head" if box.y0 >= page.height * (1 - BAND) else "foot" if box.y1 <= page.height * BAND else "body"
                boxes.append((place, _paragraph(box.get_text())))
            pages.append(boxes)
    except (PDFPasswordIncorrect, PDFEncryptionError):
        raise ValueError("the PDF is password-protected; save a copy without the password and add that") from None
    except (ValueError, MemoryError):
        raise
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


W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def read_docx(raw: bytes, limits: Limits = Limits()) -> Extracted:
    """Paragraphs, headings and list items one to a line, table rows as their cells
    joined by " | ", in the order the document has them.

    The XML is streamed, each paragraph dropped once read, so time and memory grow with
    the file and no faster: python-docx looked up each paragraph's style among all the
    styles, and took 603 s over a 95 KB file of 450,000 short paragraphs."""
    from lxml import etree

    _check_zip(raw, limits)
    try:
        package = zipfile.ZipFile(io.BytesIO(raw))
        list_styles = _list_styles(package)
        lines: list[str] = []
        tables, cell, row = 0, [], []  # tables open; the outermost table's cell and row so far
        with package.open(_main_part(package)) as fh:
            for event, el in etree.iterparse(fh, events=("start", "end"), resolve_entities=False, no_network=True,
                                             load_dtd=False, huge_tree=False):
                if el.tag == W + "tbl":
                    tables += 1 if event == "start" else -1
                    if event == "end" and not tables:
                        lines.append("")
                        _drop(el)
                elif event == "start":
                    continue
                elif el.tag == W + "p":
                    text = re.sub(r"\s+", " ", "".join(el.itertext(W + "t"))).strip()
                    if tables:
                        cell.append(text)
                    elif text:
                        style = el.find(f"{W}pPr/{W}pStyle")
                        listed = el.find(f"{W}pPr/{W}numPr") is not None or (
                            style is not None and style.get(W + "val") in list_styles)
                        lines.extend(["- " + text] if listed else [text, ""])
                    _drop(el)
                elif el.tag == W + "tc" and tables == 1:
                    row.append(" ".join(t for t in cell if t))
                    cell = []
                elif el.tag == W + "tr" and tables == 1:
                    cells = [c for i, c in enumerate(row) if c and (i == 0 or c != row[i - 1])]  # merged cells repeat
                    if cells:
                        lines.append(" | ".join(cells))
                    row = []
        title = _core_title(package)
    except (zipfile.BadZipFile, KeyError, etree.XMLSyntaxError) as exc:
        raise ValueError(f"not a readable Word .docx file ({type(exc).__name__}: {str(exc)[:200]})") from None
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"
    return Extracted(text, meta={"title": title} if title else {})


def _drop(el) -> None:
    """Free a read element and the siblings read before it: memory stays flat."""
    el.clear()
    while el.getprevious() is not None:
        del el.getparent()[0]


def _xml(package: zipfile.ZipFile, name: str):
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    return etree.fromstring(package.read(name), parser) if name in package.namelist() else None


def _main_part(package: zipfile.ZipFile) -> str:
    """The document's main part, as the package's relationships name it."""
    rels = _xml(package, "_rels/.rels")
    for rel in ([] if rels is None else rels):
        if str(rel.get("Type", "")).endswith("/officeDocument"):
            return str(rel.get("Target", "")).lstrip("/")
    return "word/document.xml"


def _list_styles(package: zipfile.ZipFile) -> set[str]:
    """The ids of paragraph styles whose names say list ("List Bullet", "List Number")."""
    styles = _xml(package, "word/styles.xml")
    if styles is None:
        return set()
    names = {s.get(W + "styleId"): s.find(W + "name") for s in styles.iter(W + "style")}
    return {sid for sid, name in names.items() if name is not None and "list" in str(name.get(W + "val", "")).lower()}


def _core_title(package: zipfile.ZipFile) -> str:
    core = _xml(package, "docProps/core.xml")
    title = None if core is None else core.find("{http://purl.org/dc/elements/1.1/}title")
    return (title.text or "").strip() if title is not None else ""


def _check_zip(raw: bytes, limits: Limits) -> None:
    """Refuse a Word file before inflating it: parts encrypted or compressed by a method
    it cannot be read with, or more inflated bytes than the limit (a zip says each part's
    size, and reading stops there, so what it says bounds what is inflated)."""
    try:
        parts = zipfile.ZipFile(io.BytesIO(raw)).infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"not a readable Word .docx file ({exc})") from None
    for part in parts:
        if part.flag_bits & 0x1:
            raise ValueError(f"its part {part.filename[:80]} is encrypted; save a copy without a password and add that")
        if part.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ValueError(f"its part {part.filename[:80]} is compressed with method {part.compress_type}, which "
                             "Word does not write; re-save it from Word")
    inflated = sum(part.file_size for part in parts)
    if inflated > limits.inflated_mb * 1024 * 1024:
        raise ValueError(f"it inflates to {inflated / 2 ** 20:,.0f} MB, over the {limits.inflated_mb} MB limit "
                         "(extract_inflated_mb); it may be a compression bomb")


READERS = {".pdf": read_pdf, ".docx": read_docx}
