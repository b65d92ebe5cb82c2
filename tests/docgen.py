"""Real PDF and Word files made in the tests, with text known in advance.

`report_pdf` writes a four-page PDF like the ones people upload: a running header
and a "Page N of 4" footer on every page with text, a hyphenated line break, a
two-column page, and a last page that is only a picture (as a scan without a text
layer would be). It returns the sentences each page holds.
"""

from __future__ import annotations

from pathlib import Path

HEADER = "Northwind Health Partnership - Annual Review 2025"
PAGES = [
    [
        "Annual Review 2025",
        "The Northwind Health Partnership joins four hospitals and two universities in one programme of research.",
        "Its board met eleven times during the year and approved a new strategy for clinical trials.",
        "The strategy sets out how the partnership will recruit patients from every district it serves.",
    ],
    [  # left column, then right column
        "The left column describes the cardiology unit, which treated 4,200 patients in 2025.",
        "Waiting times in cardiology fell by a fifth after a second catheter laboratory opened in May.",
        "The right column describes the dementia service, which trained 310 carers across the region.",
        "Dr Amara Okafor leads the dementia service from the Harrogate memory clinic.",
    ],
    [
        "The Tadcaster clinic opened on 3 March 2025 and offers evening appointments.",
        "Funding for the clinic came from a grant of 1.8 million pounds awarded by the regional health board.",
    ],
]
# Set across two lines with a hyphen, as justified text breaks a long word.
HYPHENATED = ("The partnership's collaboration with industry brought in new sponsors.", "collabo-", "ration")


def report_pdf(path: Path) -> list[list[str]]:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import simpleSplit
    from reportlab.pdfgen import canvas

    width, height = A4
    c = canvas.Canvas(str(path), pagesize=A4)
    c.setTitle("Northwind Annual Review")
    total = len(PAGES) + 1

    def furniture(n: int) -> None:
        c.setFont("Helvetica", 8)
        c.drawString(56, height - 36, HEADER)
        c.drawCentredString(width / 2, 30, f"Page {n} of {total}")

    def lines(sentences: list[str], x: float, top: float, col_width: float) -> list[tuple[float, float, str]]:
        out, y = [], top
        for s in sentences:
            for line in simpleSplit(s, "Helvetica", 11, col_width):
                out.append((x, y, line))
                y -= 14
            y -= 10
        return out

    def draw(placed: list[tuple[float, float, str]]) -> float:
        c.setFont("Helvetica", 11)
        for x, y, line in placed:
            c.drawString(x, y, line)
        return min(y for _, y, _ in placed) - 24

    def column(sentences: list[str], x: float, top: float, col_width: float) -> float:
        return draw(lines(sentences, x, top, col_width))

    # Page 1: a heading, paragraphs, and a word broken across lines.
    furniture(1)
    c.setFont("Helvetica-Bold", 16)
    c.drawString(56, height - 90, PAGES[0][0])
    y = column(PAGES[0][1:], 56, height - 120, width - 112)
    sentence, first, second = HYPHENATED
    head, tail = sentence.split("collaboration")
    c.setFont("Helvetica", 11)
    c.drawString(56, y, head + first)
    c.drawString(56, y - 14, second + tail)
    c.showPage()

    # Page 2: two columns, drawn line by line across the page (left, right, left, ...)
    # as some writers do, so that reading the drawing order would mix the columns.
    furniture(2)
    half = (width - 112 - 24) / 2
    left, right = lines(PAGES[1][:2], 56, height - 90, half), lines(PAGES[1][2:], 56 + half + 24, height - 90, half)
    draw([line for pair in zip(left, right) for line in pair] + left[len(right):] + right[len(left):])
    c.showPage()

    furniture(3)
    column(PAGES[2], 56, height - 90, width - 112)
    c.showPage()

    # Page 4: a picture and nothing else, like a scanned page.
    c.setFillGray(0.6)
    c.rect(80, 200, width - 160, height - 400, fill=1, stroke=0)
    c.showPage()
    c.save()
    return [PAGES[0] + [sentence], PAGES[1], PAGES[2], []]


def minutes_docx(path: Path) -> dict:
    """A Word file with a heading, a bulleted list and a table."""
    import docx

    d = docx.Document()
    d.core_properties.title = "Board minutes"
    d.add_heading("Minutes of the board", level=1)
    d.add_paragraph("The board of the Northwind Health Partnership met on 12 June 2025 in Leeds.")
    d.add_paragraph("Approve the research strategy.", style="List Bullet")
    d.add_paragraph("Appoint a new finance director.", style="List Bullet")
    table = d.add_table(rows=2, cols=2)
    for r, (name, role) in enumerate((("Name", "Role"), ("Ruth Ellison", "Chair of the board"))):
        table.cell(r, 0).text, table.cell(r, 1).text = name, role
    d.add_paragraph("The next meeting will take place in September.")
    d.save(str(path))
    return {"heading": "Minutes of the board", "items": ["Approve the research strategy.", "Appoint a new finance director."],
            "row": "Ruth Ellison | Chair of the board"}


# --- Hostile files, built small: each is refused by limits lowered in the test ---

_W = b'<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>%s</w:body></w:document>'


def word_of(body: bytes, method: int | None = None, encrypted: bool = False) -> bytes:
    """A minimal .docx whose document.xml body is `body` (XML, well-formed or not)."""
    import io
    import zipfile

    method = zipfile.ZIP_DEFLATED if method is None else method
    parts = {
        "[Content_Types].xml": '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.'
        'wordprocessingml.document.main+xml"/></Types>',
        "_rels/.rels": '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
        'Target="word/document.xml"/></Relationships>',
        "word/document.xml": _W % body,
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in parts.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = method
            z.writestr(info, data)
    raw = bytearray(buf.getvalue())
    if encrypted:  # zipfile writes no encrypted parts: set the flag in document.xml's central directory entry
        at = raw.index(b"PK\x01\x02", raw.index(b"word/document.xml") + 1)
        while raw[at + 46: at + 46 + 17] != b"word/document.xml":
            at = raw.index(b"PK\x01\x02", at + 1)
        raw[at + 8] |= 0x1
    return bytes(raw)


def paragraph(text: str) -> bytes:
    return b"<w:p><w:r><w:t>" + text.encode() + b"</w:t></w:r></w:p>"


def pdf_of(objects: list[bytes]) -> bytes:
    """A PDF of the given objects (1-based; 1 is the catalog), with a true xref table."""
    out, offsets = [b"%PDF-1.4\n"], []
    for n, body in enumerate(objects, 1):
        offsets.append(sum(map(len, out)))
        out.append(b"%d 0 obj\n" % n + body + b"\nendobj\n")
    xref = sum(map(len, out))
    out.append(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out += [b"%010d 00000 n \n" % o for o in offsets]
    out.append(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return b"".join(out)


def _stream(data: bytes, extra: bytes = b"", compress: bool = False) -> bytes:
    import zlib

    if compress:
        data, extra = zlib.compress(data, 9), extra + b" /Filter /FlateDecode"
    return b"<< /Length %d%s >>\nstream\n" % (len(data), extra) + data + b"\nendstream"


_TEXT = b"BT /F1 12 Tf 72 700 Td (The hostile file says one sentence here.) Tj ET"


def _pages(contents: list[bytes], resources: bytes = b"") -> list[bytes]:
    """Catalog, page tree, each page and its content stream, then the font (object 3 + 2n)."""
    n = len(contents)
    kids = b" ".join(b"%d 0 R" % (3 + 2 * i) for i in range(n))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, n)]
    for i, content in enumerate(contents):
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R /Resources << /Font "
                       b"<< /F1 %d 0 R >> %s >> >>" % (4 + 2 * i, 3 + 2 * n, resources))
        objects.append(content)
    return objects + [b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]


def pages_pdf(pages: int) -> bytes:
    return pdf_of(_pages([_stream(_TEXT)] * pages))


def inflating_pdf(megabytes: int) -> bytes:
    """One page whose content stream is a few hundred KB that inflates to `megabytes`."""
    return pdf_of(_pages([_stream(_TEXT + b"\n" + b" " * (megabytes << 20), compress=True)]))


def nested_pdf(depth: int, fan: int = 10) -> bytes:
    """One page drawing a form that draws the next `fan` times, `depth` levels down:
    fan ** depth drawings from 2 KB."""
    objects = _pages([_stream(b"/X0 Do " + _TEXT)], b"/XObject << /X0 6 0 R >>")
    for level in range(depth):
        last = level == depth - 1
        body = _TEXT if last else b" ".join([b"/X Do"] * fan)
        resources = b"/Font << /F1 5 0 R >>" if last else b"/XObject << /X %d 0 R >>" % (7 + level)
        objects.append(_stream(body, b" /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << %s >>" % resources))
    return pdf_of(objects)
