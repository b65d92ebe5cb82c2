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
