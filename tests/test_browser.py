"""The chat page in headless Chromium against `qa serve` on loopback."""

import json
import shutil
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from qa.config import Config
from qa.index import build_index

from conftest import CORPUS, indexed_corpus, post_json, running_server
from docgen import paragraph, report_pdf, word_of

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
# The flags keep Chromium off the network it would otherwise probe at start-up.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def browser():
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    assert executable, "Debian's chromium is not installed: run `bash scripts/test`, which installs it."
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(params=[(1280, 900), (390, 844)], ids=["desktop", "phone"])
def page(browser, live_server, request):
    width, height = request.param
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs
    page.goto(live_server)
    yield page
    context.close()


def ask(page, question):
    before = page.locator(".msg.bot").count()
    page.fill("#question", question)
    page.press("#question", "Enter")
    expect(page.locator(".msg.bot:not(.loading)")).to_have_count(before + 1, timeout=30_000)
    return page.locator(".msg.bot").last


def test_ask_click_citation_highlights_the_cited_sentence(page, live_server):
    question = "How many jobs will the West Yorkshire Investment Zone support?"
    answer = ask(page, question)
    expect(answer).to_contain_class("answer")
    expected = post_json(f"{live_server}/api/ask", {"question": question})
    first = expected["citations"][0]
    assert expected["sentences"][0]["text"] in answer.locator(".answer-text").inner_text()
    expect(answer.locator(".sources .quotes li")).to_have_count(len(expected["citations"]))
    expect(answer.locator(".sources li.source").first).to_contain_text("2024-01-20")
    # The words the reader says answer are marked inside the quoted sentence.
    start, end = expected["sentences"][0]["answer_span"]
    words = first["text"][start - first["start"]: end - first["start"]]
    expect(answer.locator(".answer-text strong.phrase").first).to_have_text(words)

    answer.locator(".answer-text a.cite").first.click()
    mark = page.locator("#viewer #highlight")
    expect(mark).to_be_visible()
    assert mark.text_content() == first["text"]
    assert mark.evaluate("m => { const r = m.getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight; }")
    expect(page.locator("#viewer-title")).to_have_text(first["title"])
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"chat-citation-{page.viewport_size['width']}.png"))
    # Page furniture in the source is shown apart, not as content.
    expect(page.locator("#viewer .furniture").first).to_be_attached()
    assert "Advertisement Hide Ad" in page.locator("#viewer .furniture").all_text_contents()


def test_follow_up_and_abstention_look_different(page):
    ask(page, "Who chairs the Leeds Academic Health Partnership?")
    follow = ask(page, "When was its business case endorsed?")
    expect(follow.locator(".answer-text")).to_contain_text("20 April")
    expect(follow.locator(".searched")).to_contain_text("Leeds Academic Health Partnership")
    off = ask(page, "What is the capital of France?")
    expect(off).to_have_class("msg bot abstained")
    expect(off).to_contain_text("No answer in the documents")
    # What was searched, and the passages that came closest, clearly not an answer, each opening its source.
    expect(off.locator(".searched")).to_contain_text("Searched for: What is the capital of France?")
    expect(off).to_contain_text("Closest passages (not an answer)")
    off.locator(".closest a.cite").first.click()
    expect(page.locator("#viewer #highlight")).to_be_visible()
    expect(off.locator(".answer-text a.cite")).to_have_count(0)  # nothing is quoted as the answer


def test_the_source_shows_no_internal_ids_and_a_removed_one_says_so(page, live_server):
    answer = ask(page, "How many founding partners does Liverpool Health Partners have?")
    question = "How many founding partners does Liverpool Health Partners have?"
    doc_id = post_json(f"{live_server}/api/ask", {"question": question})["citations"][0]["doc_id"]
    answer.locator(".answer-text a.cite").first.click()
    expect(page.locator("#viewer #highlight")).to_be_visible()
    assert doc_id not in page.locator(".viewer-head").inner_text()
    page.click("#viewer-close")
    # The document is removed while the answer is still on screen.
    page.route(f"**/api/documents/{doc_id}", lambda route: route.fulfill(
        status=404, content_type="application/json",
        body='{"error": {"code": "not_found", "message": "No document has the id. GET /api/documents lists them."}}'))
    page.evaluate("docCache.clear()")
    answer.locator(".answer-text a.cite").first.click()
    expect(page.locator("#viewer-text")).to_have_text("This document has been removed from the collection.")


def test_a_failed_request_keeps_the_question_and_offers_retry(page):
    question = "Who chairs the Leeds Academic Health Partnership?"
    page.route("**/api/ask", lambda route: route.abort())
    failed = ask(page, question)
    expect(failed).to_have_class("msg bot error")
    expect(page.locator("#question")).to_have_value(question)
    page.unroute("**/api/ask")
    failed.locator("button.retry").click()
    expect(page.locator(".msg.bot.answer")).to_have_count(1, timeout=30_000)
    expect(page.locator(".msg.bot.error")).to_have_count(0)
    expect(page.locator(".msg.bot.answer .answer-text")).to_contain_text("Langlands")


def test_a_greeting_gets_a_short_reply_not_a_search(page):
    reply = ask(page, "hello")
    expect(reply).to_have_class("msg bot help")
    expect(reply).to_contain_text("I answer questions about the documents")
    expect(reply.locator(".searched")).to_have_count(0)
    expect(reply).not_to_contain_text("No answer in the documents")


def test_a_doubtful_answer_is_shown_as_one_that_may_answer(page, live_server):
    question = "Which area does Liverpool Health Partners cover?"
    assert post_json(f"{live_server}/api/ask", {"question": question})["assurance"] == "possible"
    doubtful = ask(page, question)
    expect(doubtful).to_have_class("msg bot answer possible")
    expect(doubtful.locator(".label")).to_have_text("This may answer it (the closest match, not a sure one):")
    assert doubtful.evaluate("n => getComputedStyle(n).borderStyle") == "dashed"
    ARTIFACTS.mkdir(exist_ok=True)
    doubtful.screenshot(path=str(ARTIFACTS / f"chat-possible-{page.viewport_size['width']}.png"))
    sure = ask(page, "What is the purpose of the Liverpool Strategic Partnership?")  # `doubtful` now finds this one
    expect(sure).to_have_class("msg bot answer")
    expect(sure.locator(".label")).to_have_count(0)


def test_sources_are_grouped_by_document(page, live_server):
    question = "Why is now a good time for the university and the NHS to work closely?"
    expected = post_json(f"{live_server}/api/ask", {"question": question})
    documents = list(dict.fromkeys(c["doc_id"] for c in expected["citations"]))
    assert len(documents) < len(expected["citations"])  # more than one quote from one document
    answer = ask(page, question)
    expect(answer.locator(".sources li.source")).to_have_count(len(documents))
    expect(answer.locator(".sources .quotes li")).to_have_count(len(expected["citations"]))
    assert answer.locator(".sources").inner_text().count(expected["citations"][0]["title"]) == 1


def test_a_list_answer_says_the_source_has_more_items(page, live_server):
    question = "Which universities are partners in the Liverpool Strategic Partnership?"
    more = post_json(f"{live_server}/api/ask", {"question": question})["more_items"]
    assert more > 0
    answer = ask(page, question)
    expect(answer.locator(".answer-text .more")).to_have_text(f"The list in the source has {more} more items")
    answer.locator(".answer-text a.cite").last.click()  # opens the list in its source
    expect(page.locator("#viewer #highlight")).to_be_visible()


def test_document_text_is_shown_never_run(page):
    answer = ask(page, "What markup does the Quantum Widget Board review?")
    text = answer.locator(".answer-text").inner_text()
    assert "<script>window.pwned = 1</script>" in text and "<img src=x" in text
    answer.locator("a.cite").first.click()
    expect(page.locator("#highlight")).to_contain_text("<script>")
    assert "javascript:window.pwned = 3" in text
    for link in page.locator("#log a, #viewer a").all():  # the page's own links only: citations
        assert not (link.get_attribute("href") or "").lower().startswith("javascript:")
    assert page.evaluate("window.pwned") is None
    assert page.locator("#log script, #log img, #viewer img").count() == 0
    # And the page forbids inline script outright, whatever might reach it.
    injected = page.evaluate("""() => { const s = document.createElement('script');
        s.textContent = 'window.pwned = 4'; document.body.append(s); return window.pwned; }""")
    assert injected is None
    assert page.dialogs == []


def test_examples_loading_state_and_server_errors(page):
    # the server's own (test_the_example_questions_are_the_servers…)
    expect(page.locator("button.example").first).to_be_visible()
    release = []

    def slow(route):
        release.append(route)  # held until the loading state has been seen

    page.route("**/api/ask", slow)
    page.locator("button.example").first.click()
    expect(page.locator(".msg.loading")).to_be_visible()
    expect(page.locator("#send")).to_be_disabled()
    page.wait_for_function("true")  # let the route reach the handler
    release[0].fulfill(status=500, content_type="application/json",
                       body='{"error": {"code": "internal_error", "message": "The index is being rebuilt."}}')
    error = page.locator(".msg.error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("The index is being rebuilt.")
    expect(page.locator("#send")).to_be_enabled()


def test_keyboard_only_and_phone_width(browser, live_server):
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    page = context.new_page()
    page.goto(live_server)
    page.keyboard.press("Tab")  # the skip link
    expect(page.locator("a.skip")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#question")).to_be_focused()
    page.keyboard.type("How many founding partners does Liverpool Health Partners have?")
    page.keyboard.press("Enter")
    link = page.locator(".msg.answer a.cite").first
    expect(link).to_be_visible(timeout=30_000)
    box = link.bounding_box()
    assert box["width"] >= 44 and box["height"] >= 44  # a target a thumb can hit
    link.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#highlight")).to_be_visible()
    # Covering the screen, the source is a modal dialog: Tab stays inside it.
    viewer = page.locator("#viewer")
    expect(viewer).to_have_attribute("role", "dialog")
    expect(viewer).to_have_attribute("aria-modal", "true")
    for _ in range(5):
        page.keyboard.press("Tab")
        assert page.evaluate("!!document.activeElement.closest('#viewer')"), "focus left the source dialog"
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # nothing wider than the phone
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat-phone-source.png"))
    page.keyboard.press("Escape")
    expect(page.locator("#viewer")).to_be_hidden()
    expect(link).to_be_focused()
    expect(viewer).to_have_attribute("aria-modal", "false")
    context.close()


@pytest.mark.parametrize("width, height", [(1280, 800), (390, 844)])
def test_the_newest_reply_is_in_view_above_the_question_box(browser, live_server, width, height):
    # Once the conversation is taller than the screen, a reply used to land behind the
    # question box (which stays at the bottom of the screen), and asking seemed to do nothing.
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.goto(live_server)
    for question in ["Who chairs the Leeds Academic Health Partnership?",
                     "How many jobs will the Investment Zone support?",
                     "What does the LSP do?", "Which university did the trusts partner with?"]:
        reply = ask(page, question)
        top, box = reply.evaluate("r => r.getBoundingClientRect().top"), page.locator("#ask").evaluate(
            "b => b.getBoundingClientRect().top")
        assert 0 <= top < box - 20, (question, top, box)
    assert page.evaluate("document.documentElement.scrollHeight") > height  # the conversation outgrew the screen
    context.close()


UPLOAD_TOKEN = "browser-token"
DESKTOP_AND_PHONE = [{"width": 1280, "height": 900}, {"width": 390, "height": 844}]


@pytest.fixture(scope="module")
def upload_server(tmp_path_factory, encoder):
    """`qa serve` with an API token, over two documents of the default corpus."""
    root = tmp_path_factory.mktemp("uploads")
    corpus = root / "corpus"
    corpus.mkdir()
    for name in sorted(p.name for p in CORPUS.iterdir() if p.suffix == ".txt")[:2]:
        shutil.copy(CORPUS / name, corpus / name)
    config = Config(corpus_dir=str(corpus), index_dir=str(root / "index"))
    build_index(config, encoder)
    with running_server(config, root, env={"QA_API_TOKEN": UPLOAD_TOKEN}) as (base, _):
        yield base


@pytest.mark.parametrize("viewport", DESKTOP_AND_PHONE, ids=["desktop", "phone"])
def test_upload_a_pdf_ask_it_see_its_page_then_remove_it(browser, upload_server, tmp_path, viewport):
    pdf = tmp_path / "Northwind review.pdf"
    report_pdf(pdf)
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    confirms = []
    page.on("dialog", lambda d: (confirms.append(d.message), d.accept()))
    page.goto(upload_server)
    page.locator("#docs summary").click()
    expect(page.locator("#uploads-on")).to_be_visible()
    page.fill("#token", UPLOAD_TOKEN)
    page.set_input_files("#file-input", str(pdf))
    row = page.locator("#doc-list li", has_text="Northwind Annual Review")
    expect(row.locator(".state")).to_have_text("ready", timeout=120_000)
    expect(row).to_contain_text("4 pages")
    expect(row.locator(".reason")).to_contain_text("page 4 has no text layer")
    expect(row.locator(".filename")).to_have_text("Northwind review.pdf")
    with page.expect_download() as download:
        row.get_by_role("link", name="Download the original file").click()
    assert download.value.suggested_filename == "Northwind review.pdf"
    page.set_input_files("#file-input", str(pdf))  # the same file again
    expect(page.locator("#docs-status")).to_have_text("Northwind review.pdf is already in the documents.")

    question = "When did the Tadcaster clinic open?"
    answer = ask(page, question)
    expect(answer).to_contain_class("answer")
    expect(answer.locator(".sources .quotes li").first).to_contain_text("p. 3")
    answer.locator(".answer-text a.cite").first.click()
    expect(page.locator("#viewer-meta")).to_contain_text("p. 3")
    expect(page.locator("#viewer-page")).to_have_text("Page 3 of 4")
    expect(page.locator("#highlight")).to_have_text(
        "The Tadcaster clinic opened on 3 March 2025 and offers evening appointments.")
    expect(page.locator("#viewer-text")).not_to_contain_text("dementia")  # that page only
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"upload-pdf-page-{viewport['width']}.png"))

    page.click("#viewer-close")  # at phone width the source covers the page, and all else is inert
    row.get_by_role("button", name="Remove").click()
    assert confirms and "Northwind Annual Review" in confirms[0]
    expect(row).to_have_count(0, timeout=120_000)
    expect(ask(page, question)).to_have_class("msg bot abstained")
    context.close()


@pytest.mark.parametrize("viewport", DESKTOP_AND_PHONE, ids=["desktop", "phone"])
def test_a_file_that_fails_says_so_in_the_status_line_and_the_good_ones_are_added(browser, upload_server, tmp_path,
                                                                                  viewport):
    (tmp_path / "broken.docx").write_bytes(word_of(paragraph("An unclosed run")[:-12]))
    title = f"Otters at {viewport['width']}"  # each width adds a document of its own
    (tmp_path / "otters.md").write_text(f"# {title}\n\nThe Otter Trust funds three river wardens.\n")
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.goto(upload_server)
    page.locator("#docs summary").click()
    page.fill("#token", UPLOAD_TOKEN)
    page.set_input_files("#file-input", [str(tmp_path / "broken.docx"), str(tmp_path / "otters.md")])
    status = page.locator("#docs-status")
    expect(status).to_contain_text("broken.docx could not be added", timeout=120_000)
    expect(status).to_contain_text("XMLSyntaxError")
    expect(status).to_contain_text("The other files were added.")
    expect(page.locator("#doc-list li", has_text=title).locator(".state")).to_have_text("ready")
    context.close()


@pytest.mark.parametrize("viewport", DESKTOP_AND_PHONE, ids=["desktop", "phone"])
def test_the_token_in_plain_words_and_kept_with_the_chat_for_the_session(browser, upload_server, tmp_path, viewport):
    note = tmp_path / "note.md"
    note.write_text("# Note\n\nThe Heron Fund pays two wardens.\n")
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.goto(upload_server)
    page.locator("#docs summary").click()
    rows = page.locator("#doc-list li .state", has_text="ready")
    expect(rows.first).to_be_visible()
    expect(page.get_by_role("button", name="Remove")).to_have_count(0)  # nothing to remove with until a token
    page.set_input_files("#file-input", str(note))
    expect(page.locator("#docs-status")).to_have_text("Enter the token first: the server's API token (QA_API_TOKEN).")
    page.fill("#token", "not-the-token")
    expect(page.get_by_role("button", name="Remove")).to_have_count(page.locator("#doc-list li").count())
    assert page.get_by_role("button", name="Remove").first.bounding_box()["height"] >= 44
    page.set_input_files("#file-input", str(note))
    expect(page.locator("#docs-status")).to_contain_text("That token is not right.")
    page.fill("#token", UPLOAD_TOKEN)

    answer = ask(page, "Who is the chief executive of Liverpool Health Partners?")
    question_count = page.locator(".msg.user").count()
    page.reload()  # the conversation and the token survive it
    expect(page.locator(".msg.user")).to_have_count(question_count)
    expect(page.locator(".msg.bot").last).to_have_class(answer.get_attribute("class"))
    page.locator("#docs summary").click()
    expect(page.locator("#token")).to_have_value(UPLOAD_TOKEN)
    page.get_by_role("button", name="New chat").click()
    expect(page.locator(".msg")).to_have_count(0)
    page.reload()
    expect(page.locator(".msg")).to_have_count(0)
    context.close()


VIEWPORTS = pytest.mark.parametrize("viewport", [{"width": 1280, "height": 800}, {"width": 390, "height": 844}],
                                    ids=["desktop", "phone"])
# Where a row of the documents list is, and whether it can be seen: inside the screen and
# inside the list's own scrolling box.
ROW_IN_VIEW = """row => { const r = row.getBoundingClientRect(), box = row.closest('.doc-list').getBoundingClientRect();
    return {top: Math.round(r.top), listTop: Math.round(box.top), listBottom: Math.round(box.bottom),
            seen: r.top >= 0 && r.bottom <= innerHeight && r.top >= box.top - 1 && r.bottom <= box.bottom + 1}; }"""


def documents_page(browser, base, viewport):
    """A page on `base` with the documents panel open and the token entered; confirmations accepted."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.on("dialog", lambda d: d.accept())
    page.goto(base)
    page.locator("#docs summary").click()
    page.fill("#token", UPLOAD_TOKEN)
    return context, page


@VIEWPORTS
def test_each_new_upload_is_in_view_at_the_top_of_the_list(browser, upload_server, tmp_path, viewport):
    # Uploads used to land at the bottom of the list, which scrolls inside its box: after
    # four, none of them was in view (on the phone the newest row was at y=1267).
    context, page = documents_page(browser, upload_server, viewport)
    for i in range(4):
        name = f"kestrel-{viewport['width']}-{i}.txt"
        (tmp_path / name).write_text(f"Kestrel survey {i} at {viewport['width']}\n\n"
                                     f"The Kestrel Fund counted {i + 3} nests in survey {i}.\n")
        page.set_input_files("#file-input", str(tmp_path / name))
        row = page.locator("#doc-list li", has_text=name)
        expect(row).to_have_count(1)  # queued or indexing: the row as the upload left it
        where = row.evaluate(ROW_IN_VIEW)
        assert where["seen"], (name, "pending", where)
        expect(row.locator(".state")).to_have_text("ready", timeout=120_000)
        where = row.evaluate(ROW_IN_VIEW)
        assert where["seen"], (name, "ready", where)
        expect(page.locator("#doc-list li").first).to_contain_text(name)  # the newest first
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"upload-newest-{viewport['width']}.png"))
    context.close()


@VIEWPORTS
def test_the_clicked_answer_stays_in_view_when_its_source_opens(browser, live_server, viewport):
    # At 1280x800 the source, opening beside the chat, narrowed it: the answer that was
    # clicked moved down from 516 to 890 px, below the screen.
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.goto(live_server)
    for question in ["How many founding partners does Liverpool Health Partners have?",
                     "Who chairs the Leeds Academic Health Partnership?",
                     "How many jobs will the West Yorkshire Investment Zone support?",
                     "Which university did the Leicestershire and Northamptonshire trusts partner with?"]:
        answer = ask(page, question)
    page.evaluate("y => scrollBy(0, y)", answer.evaluate("a => a.getBoundingClientRect().top") - 500)
    link = answer.locator(".answer-text a.cite").first
    # The link must be clear of the question box at the foot of the screen, or the click
    # itself scrolls to reach it (on a phone the answer's first [1] may sit under the box).
    box_top = page.evaluate("() => document.getElementById('ask').getBoundingClientRect().top")
    page.evaluate("y => scrollBy(0, y)", max(0, link.evaluate("l => l.getBoundingClientRect().bottom") + 20 - box_top))
    where = """a => { const r = a.getBoundingClientRect(), box = document.getElementById('ask').getBoundingClientRect();
        return {top: Math.round(r.top), seen: r.top >= 0 && r.top < box.top - 20}; }"""
    before = answer.evaluate(where)
    assert before["seen"], before
    link.click()
    expect(page.locator("#viewer #highlight")).to_be_visible()
    assert page.locator("#highlight").evaluate(
        "m => { const r = m.getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight; }")
    after = answer.evaluate(where)
    assert after["seen"] and abs(after["top"] - before["top"]) <= 2, (before, after)  # where it was
    assert link.evaluate("l => { const r = l.getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight; }")
    page.keyboard.press("Escape")
    expect(link).to_be_focused()
    assert answer.evaluate(where)["seen"]
    context.close()


def reportlab_pdf(path, title, pages):
    """A PDF of `pages` (each a list of lines), with `title` in its metadata."""
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path))
    c.setTitle(title)
    for lines in pages:
        c.setFont("Helvetica", 11)
        for n, line in enumerate(lines):
            c.drawString(56, 760 - 18 * n, line)
        c.showPage()
    c.save()


@VIEWPORTS
def test_a_document_opens_from_the_panel_to_read_with_its_pages(browser, upload_server, tmp_path, viewport):
    # A document could only be downloaded as its original file, not read in the page.
    title = f"Heron Survey {viewport['width']}"
    pages = [["The Heron Survey counted twelve nests on the upper lake."],
             ["Its notes quote <script>window.pwned = 7</script> and <img src=x onerror=\"window.pwned = 8\">."],
             ["The survey ends with a count of forty herons in October."]]
    pdf = tmp_path / "heron.pdf"
    reportlab_pdf(pdf, title, pages)
    context, page = documents_page(browser, upload_server, viewport)
    page.set_input_files("#file-input", str(pdf))
    row = page.locator("#doc-list li", has_text=title)
    expect(row.locator(".state")).to_have_text("ready", timeout=120_000)
    stored = json.load(urllib.request.urlopen(f"{upload_server}/api/documents/{row.get_attribute('data-doc-id')}"))
    assert len(stored["pages"]) == 3
    read = row.get_by_role("button", name=f"Read {title}")
    read.click()
    expect(page.locator("#viewer-title")).to_have_text(title)
    expect(page.locator("#viewer-meta")).to_contain_text("3 pages")
    breaks = page.locator("#viewer-text .page-break")
    expect(breaks).to_have_text(["Page 1 of 3", "Page 2 of 3", "Page 3 of 3"])
    # The whole stored text, as text: the markup in it is shown, never run.
    shown = page.locator("#viewer-text").evaluate(
        "t => [...t.childNodes].filter(n => !n.matches || !n.matches('.page-break, .page-empty'))"
        ".map(n => n.textContent).join('')")
    assert shown == stored["text"]
    expect(page.locator("#viewer-text")).to_contain_text("<script>window.pwned = 7</script>")
    assert page.locator("#viewer script, #viewer img").count() == 0
    assert page.evaluate("window.pwned") is None
    assert breaks.first.evaluate(
        "b => { const r = b.getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight; }")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"read-document-{viewport['width']}.png"))
    page.keyboard.press("Escape")
    expect(page.locator("#viewer")).to_be_hidden()
    expect(read).to_be_focused()
    context.close()


# What the documents panel shows a person: its text, and the names its controls are read out by.
SHOWN_NAMES = """() => { const docs = document.getElementById('docs');
    return [docs.querySelector('#docs-status').textContent, docs.querySelector('#doc-list').textContent,
            ...[...docs.querySelectorAll('#doc-list [aria-label]')].map(n => n.getAttribute('aria-label'))]
        .join(' | '); }"""


@VIEWPORTS
def test_a_document_is_never_shown_by_an_internal_name(browser, upload_server, tmp_path, viewport):
    # While a document was being removed its row showed its stored name ("afcae180accc76de.txt").
    note = tmp_path / "Wren notes.md"
    note.write_text(f"# Wren notes {viewport['width']}\n\nThe Wren Trust rang forty birds.\n")
    context, page = documents_page(browser, upload_server, viewport)
    page.evaluate(f"""() => {{ window.shownNames = []; const docs = document.getElementById('docs');
        new MutationObserver(() => window.shownNames.push(({SHOWN_NAMES})())).observe(docs,
            {{childList: true, subtree: true, characterData: true}}); }}""")
    page.set_input_files("#file-input", str(note))
    row = page.locator("#doc-list li", has_text=f"Wren notes {viewport['width']}")
    expect(row.locator(".state")).to_have_text("ready", timeout=120_000)
    digest = row.get_attribute("data-doc-id").split("/")[-1]
    row.get_by_role("button", name="Remove").click()
    expect(row).to_have_count(0, timeout=120_000)
    seen = page.evaluate("window.shownNames")
    assert any("removing" in s for s in seen)
    assert not [s for s in seen if digest in s]

    # Whatever names the server's list gives, a stored or corpus file name is not shown.
    listing = {"uploads": {"enabled": True, "max_bytes": 1 << 20, "types": [".txt"]}, "documents": [
        {"doc_id": "uploads/0123456789abcdef", "filename": "0123456789abcdef.txt", "state": "queued"},
        {"doc_id": "uploads/1123456789abcdef", "filename": "1123456789abcdef.pdf", "state": "indexing",
         "progress": 0.5},
        {"doc_id": "uploads/2123456789abcdef", "title": "2123456789abcdef", "source": "uploads/2123456789abcdef.md",
         "filename": "2123456789abcdef.md", "state": "ready"},
        {"doc_id": "uploads/3123456789abcdef", "filename": "3123456789abcdef.docx", "state": "removing"},
        {"doc_id": "uploads/4123456789abcdef", "filename": "4123456789abcdef.html", "state": "failed",
         "reason": "Broken."},
        {"doc_id": "007_5123456789abcdef", "title": "Otter count", "source": "007_5123456789abcdef.txt",
         "filename": "007_5123456789abcdef.txt", "state": "removing"},
    ]}
    page.route("**/api/documents",
               lambda route: route.fulfill(content_type="application/json", body=json.dumps(listing)))
    page.evaluate("loadDocuments()")
    expect(page.locator("#doc-list li")).to_have_count(len(listing["documents"]))
    shown = page.evaluate(SHOWN_NAMES)
    assert "123456789abcdef" not in shown, shown
    expect(page.locator("#doc-list li", has_text="Otter count")).to_have_count(1)
    context.close()


def test_the_example_questions_are_the_servers_and_a_hint_when_it_has_none(browser, live_server):
    import json
    import urllib.request

    with urllib.request.urlopen(f"{live_server}/api/examples") as reply:
        offered = json.load(reply)["examples"]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(live_server)
    expect(page.locator("button.example")).to_have_count(len(offered))
    assert page.locator("button.example").all_inner_texts() == offered
    page.close()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.route("**/api/examples", lambda route: route.fulfill(status=200, content_type="application/json",
                                                               body='{"examples": []}'))
    page.goto(live_server)
    page.wait_for_load_state("networkidle")
    expect(page.locator("button.example")).to_have_count(0)  # none made up: a hint of what to ask instead
    expect(page.locator("#example-hint")).to_have_text(
        "Ask about one fact at a time: who, what, when, where or how many.")
    page.close()


def test_a_sure_answer_says_so_in_the_servers_words_with_no_bare_percentage(page):
    from qa.types import DOUBT

    sure = ask(page, "What is the purpose of the Liverpool Strategic Partnership?")
    expect(sure.locator(".confidence")).to_have_text(DOUBT["sure"])
    assert "%" not in sure.inner_text()


def test_a_list_answer_shows_one_item_to_a_line_with_its_marker_after_it(page):
    listed = ask(page, "Which organisations are partners of the Liverpool Strategic Partnership?")
    links = listed.locator(".answer-text a")
    tops = [links.nth(i).bounding_box()["y"] for i in range(min(4, links.count()))]
    # each marker on a line of its own
    assert len(tops) == 4 and all(b > a for a, b in zip(tops, tops[1:], strict=False)), tops
    assert listed.locator(".answer-text br").count() >= 3


def test_the_page_keeps_to_the_servers_history_limit(browser, tmp_path, encoder):
    # The page sent its own ten turns: a server set to keep two refused the third follow-up.
    config = indexed_corpus(tmp_path, encoder, "001_576bfebf929a5f1e.txt")
    env = {"QA_MAX_HISTORY_TURNS": "2", "QA_MAX_QUESTION_CHARS": "300"}
    with running_server(config, tmp_path, env=env) as (base, _):
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(base)
        expect(page.locator("#question")).to_have_attribute("maxlength", "300")
        for question in ("What is the Liverpool Strategic Partnership?", "Who are its partners?",
                         "What is its purpose?", "Who oversees it?"):
            answer = ask(page, question)
            assert "history has" not in answer.inner_text() and "could not" not in answer.inner_text().lower()
        page.close()


def test_the_page_refuses_an_upload_over_the_servers_limits_in_its_words(browser, tmp_path, encoder):
    # The page knew no upload limit: a file over it was sent whole, then refused.
    import requests

    config = indexed_corpus(tmp_path, encoder, "001_576bfebf929a5f1e.txt")
    files = {"big.txt": "The Kestrel Fund pays wardens. " * 100, "table.csv": "a,b\n1,2\n",
             "small.md": "# Small\n\nThe Kestrel Fund pays two wardens.\n", "other.md": "# Other\n\nOther words.\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    env = {"QA_API_TOKEN": UPLOAD_TOKEN, "QA_MAX_UPLOAD_BYTES": "2000", "QA_MAX_UPLOAD_FILES": "2"}
    with running_server(config, tmp_path, env=env) as (base, _):

        def servers_words(*names):  # what the server itself says to the same files
            sent = [("file", (name, (tmp_path / name).read_bytes())) for name in names]
            reply = requests.post(f"{base}/api/documents", files=sent, timeout=60,
                                  headers={"Authorization": f"Bearer {UPLOAD_TOKEN}"})
            assert reply.status_code in (400, 413, 415), reply.text
            return reply.json()["error"]["message"]

        page = browser.new_page(viewport={"width": 1280, "height": 900})
        posted = []
        page.on("request", lambda r: posted.append(r.url) if r.method == "POST" else None)
        page.goto(base)
        page.locator("#docs summary").click()
        page.fill("#token", UPLOAD_TOKEN)
        expect(page.locator("#file-input")).to_have_attribute("accept", ".docx,.htm,.html,.markdown,.md,.pdf,.txt")
        status = page.locator("#docs-status")
        for names in (["big.txt"], ["table.csv"], ["small.md", "other.md", "big.txt"], ["small.md", "big.txt"]):
            page.set_input_files("#file-input", [str(tmp_path / name) for name in names])
            expect(status).to_have_text(servers_words(*names))
        assert posted == [], posted  # refused before a byte was sent
        expect(status).to_have_text("big.txt is over 2,000 bytes; the limit is 2,000 (max_upload_bytes).")
        page.set_input_files("#file-input", str(tmp_path / "small.md"))  # within the limits: sent
        expect(status).to_contain_text("Added small.md")
        assert posted == [f"{base}/api/documents"]
        page.close()
