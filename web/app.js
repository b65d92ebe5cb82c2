// The chat page. All text from documents and users is inserted as text nodes, never as HTML.
"use strict";

let maxTurns = 10; // until the server says (GET /api/health limits): a follow-up past its limit is refused
const history = []; // [{question, answer}], sent with each question so follow-ups work
const docCache = new Map();
// The conversation and the API token last as long as the browser tab (sessionStorage): a
// reload keeps them, closing the tab forgets them.
const CHAT_KEY = "qa.chat", TOKEN_KEY = "qa.token", KEPT_ANSWERS = 50;
const kept = JSON.parse(sessionStorage.getItem(CHAT_KEY) || "[]"); // [{question, answer object}]

const $ = (id) => document.getElementById(id);
const log = $("log");
const form = $("ask");
const input = $("question");
const send = $("send");

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child); // strings become text nodes
  return node;
}

async function postJSON(url, body) {
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  } catch (e) {
    throw new Error("The server could not be reached. Check that it is running, then try again.");
  }
  let data = null;
  try { data = await response.json(); } catch (e) { /* not JSON: reported below */ }
  if (!response.ok) {
    const message = data && data.error ? data.error.message : `The server answered ${response.status}.`;
    throw new Error(message);
  }
  return data;
}

function addMessage(node) {
  log.append(node);
  reveal(node);
  return node;
}

// Scroll so that a new message is seen above the question box, which stays at the bottom
// of the screen over the conversation: all of it where it fits, else from its top.
function reveal(node) {
  const room = $("ask").getBoundingClientRect().top - 8;
  const r = node.getBoundingClientRect();
  const by = r.height > room - 8 ? r.top - 8 : r.bottom - room;
  if (by > 0 || r.top < 0) window.scrollBy(0, by);
}

function citationLink(citation) {
  const link = el("a", {
    class: "cite",
    href: `#source-${citation.id}`,
    "aria-label": `Source ${citation.id}: ${citation.title}`,
  }, `[${citation.id}]`);
  link.addEventListener("click", (event) => {
    event.preventDefault();
    openSource(citation, link);
  });
  return link;
}

// The words the reader says answer, marked inside the quoted sentence; answer_span is in
// document offsets, and the sentence starts at its citation's start.
function withPhrase(sentence, citation) {
  const span = sentence.answer_span;
  if (!span || !citation) return [sentence.text];
  const from = span[0] - citation.start, to = span[1] - citation.start;
  if (from < 0 || to > sentence.text.length || from >= to) return [sentence.text];
  return [sentence.text.slice(0, from), el("strong", { class: "phrase" }, sentence.text.slice(from, to)),
    sentence.text.slice(to)];
}

function renderAnswer(answer) {
  if (answer.abstained && !answer.query) {  // a greeting or a task it does not do: nothing was searched
    return el("li", { class: "msg bot help" }, el("p", { class: "answer-text" }, answer.message));
  }
  if (answer.abstained) {
    const node = el("li", { class: "msg bot abstained" },
      el("p", { class: "label" }, "No answer in the documents"),
      el("p", { class: "answer-text" }, answer.message),
      el("p", { class: "searched" }, `Searched for: ${answer.query}`));
    if ((answer.closest || []).length) {
      const near = el("ol", { class: "sources closest", "aria-label": "Closest passages, not an answer" });
      for (const c of answer.closest) {
        const snippet = c.text.length > 160 ? c.text.slice(0, 157) + "…" : c.text;
        near.append(el("li", { value: String(c.id) }, el("span", { class: "title" }, c.title), " ", citationLink(c),
          el("span", { class: "snippet" }, snippet)));
      }
      node.append(el("p", { class: "label near" }, "Closest passages (not an answer):"), near);
    }
    return node;
  }
  const byId = new Map(answer.citations.map((c) => [c.id, c]));
  const text = el("p", { class: "answer-text" });
  answer.sentences.forEach((sentence, i) => {
    // A list's items one to a line, each marker after its own item.
    const afterItem = i > 0 && answer.sentences[i - 1].item;
    if (sentence.item) text.append(...(i ? [el("br")] : []), "• ");
    else if (afterItem) text.append(el("br"));
    else if (i) text.append(" ");
    const cited = byId.get(sentence.citation);
    text.append(...withPhrase(sentence, cited), " ", citationLink(cited));
  });
  // One entry per document, its title said once, each of its citations under it.
  if (answer.more_items) {  // a list, partly quoted: the source shows the rest
    text.append(" ", el("span", { class: "more" }, `The list in the source has ${answer.more_items} more item${answer.more_items === 1 ? "" : "s"} `),
      citationLink(byId.get(answer.sentences[answer.sentences.length - 1].citation)));
  }
  const sources = el("ul", { class: "sources", "aria-label": "Sources" });
  const byDoc = new Map();
  for (const c of answer.citations) {
    if (!byDoc.has(c.doc_id)) {
      const quotes = el("ul", { class: "quotes" });
      byDoc.set(c.doc_id, quotes);
      sources.append(el("li", { class: "source" },
        el("span", { class: "title" }, c.title), c.date ? ` (${c.date})` : "", quotes));
    }
    const snippet = c.text.length > 220 ? c.text.slice(0, 217) + "…" : c.text;
    byDoc.get(c.doc_id).append(el("li", {}, citationLink(c), " ",
      ...(c.page ? [el("span", { class: "page" }, `p. ${c.page}`), " "] : []), el("span", { class: "snippet" }, snippet)));
  }
  // The doubt in the server's words, the same as `qa ask`, the OpenAI reply and MCP say
  // it: a "possible" answer's before the quote, a sure one's after it.
  const possible = answer.assurance === "possible";
  const node = el("li", { class: possible ? "msg bot answer possible" : "msg bot answer" },
    ...(possible ? [el("p", { class: "label" }, answer.doubt)] : []),
    text, sources,
    ...(possible ? [] : [el("p", { class: "confidence" }, answer.doubt)]));
  if (answer.query && answer.query !== answer.question) {
    node.insertBefore(el("p", { class: "searched" }, `Searched for: ${answer.query}`), sources);
  }
  return node;
}

async function ask(question) {
  question = question.trim();
  if (!question) return;
  $("examples").hidden = true;
  addMessage(el("li", { class: "msg user" }, question));
  const waiting = addMessage(el("li", { class: "msg bot loading", "aria-busy": "true" }, "Searching the documents…"));
  send.disabled = true;
  input.value = "";
  try {
    const answer = await postJSON("/api/ask", { question, history: maxTurns ? history.slice(-maxTurns) : [] });
    const reply = renderAnswer(answer);
    waiting.replaceWith(reply);
    reveal(reply);
    history.push({ question, answer: answer.answer });
    kept.push({ question, answer });
    sessionStorage.setItem(CHAT_KEY, JSON.stringify(kept.slice(-KEPT_ANSWERS)));
  } catch (error) {
    // The question is not lost: it goes back in the box, and Retry asks it again.
    const retry = el("button", { type: "button", class: "secondary retry" }, "Retry");
    const failed = el("li", { class: "msg bot error", role: "alert" },
      el("p", { class: "label" }, "Something went wrong"), el("p", {}, error.message), retry);
    retry.addEventListener("click", () => { failed.remove(); ask(question); });
    waiting.replaceWith(failed);
    reveal(failed);
    if (!input.value) input.value = question;
  } finally {
    send.disabled = false;
    input.focus();
  }
}

async function loadDocument(docId) {
  if (!docCache.has(docId)) {
    const response = await fetch(`/api/documents/${encodeURIComponent(docId).replace(/%2F/g, "/")}`);
    if (response.status === 404) throw new Error("This document has been removed from the collection.");
    let data = null;
    try { data = await response.json(); } catch (e) { /* not JSON: said below */ }
    if (!response.ok || !data) throw new Error("The source could not be loaded. Try again in a moment.");
    docCache.set(docId, data);
  }
  return docCache.get(docId);
}

// Text from start to end, with page furniture (never indexed or quoted) set apart.
function withFurniture(doc, start, end) {
  const parts = [];
  let pos = start;
  for (const [s, e] of doc.masked) {
    if (e <= pos || s >= end) continue;
    if (s > pos) parts.push(doc.text.slice(pos, s));
    parts.push(el("span", { class: "furniture", title: "Page furniture: not indexed or quoted" },
      doc.text.slice(Math.max(s, pos), Math.min(e, end))));
    pos = Math.min(e, end);
  }
  if (pos < end) parts.push(doc.text.slice(pos, end));
  return parts;
}

let returnFocus = null;
const FULL_SCREEN = window.matchMedia("(max-width: 760px)");

// Where the source covers the whole screen it is a modal dialog: what is behind it is
// inert (out of reach of Tab and screen readers) until it closes.
function setModal(open) {
  const modal = open && FULL_SCREEN.matches;
  $("viewer").setAttribute("aria-modal", modal ? "true" : "false");
  for (const id of ["skip", "top", "chat"]) $(id).inert = modal;
}

// Runs `change`, which alters the layout, then scrolls the page back so that what the user
// clicked stays where it was on screen: the answer it is in (where that answer's top was in
// view), else the clicked control itself. Opening the source beside the chat narrows the
// chat, and its text grew taller above the answer, pushing it below the screen.
function keepInPlace(opener, change) {
  const answer = opener.closest(".msg");
  const anchor = answer && answer.getBoundingClientRect().top >= 0 ? answer : opener;
  const anchorWas = anchor.getBoundingClientRect().top, openerWas = opener.getBoundingClientRect().top;
  change();
  window.scrollBy(0, anchor.getBoundingClientRect().top - anchorWas);
  // In the chat, the question box covers the bottom of the screen.
  const bottom = $("chat").contains(opener) ? $("ask").getBoundingClientRect().top : innerHeight;
  const now = opener.getBoundingClientRect();
  if (now.top < 0 || now.bottom > bottom) window.scrollBy(0, now.top - openerWas);
}

let showing = 0; // counts openings of the pane, so that a slow earlier load cannot replace a later one

// Opens the pane headed `title` (a modal over the page at phone width) and gives its ticket.
function openViewer(title, opener) {
  returnFocus = opener;
  keepInPlace(opener, () => {
    $("viewer").hidden = false;
    setModal(true);
  });
  $("viewer-title").textContent = title;
  $("viewer-meta").textContent = "";
  $("viewer-text").replaceChildren("Loading the document…");
  $("viewer-text").style.paddingBottom = "";
  return ++showing;
}

// Scrolls the pane alone to put `node` mid-way down its visible part (below its heading):
// scrollIntoView would scroll the page as well, and move the answer the user clicked.
function centreInViewer(node) {
  const viewer = $("viewer");
  const top = Math.max(viewer.querySelector(".viewer-head").getBoundingClientRect().bottom, 0);
  const bottom = Math.min(viewer.getBoundingClientRect().bottom, innerHeight);
  const r = node.getBoundingClientRect();
  const by = r.height > bottom - top ? r.top - top : (r.top + r.bottom - top - bottom) / 2;
  // Near the end of the text the pane cannot scroll that far (and, beside the chat, its
  // foot may be below the screen): room is made under the text.
  const short = by - (viewer.scrollHeight - viewer.clientHeight - viewer.scrollTop);
  if (short > 0) $("viewer-text").style.paddingBottom = `${Math.ceil(short)}px`;
  viewer.scrollTop += by;
}

async function openSource(citation, opener) {
  const ticket = openViewer(citation.title, opener);
  const body = $("viewer-text");
  const page = citation.page ? `p. ${citation.page}` : "";
  const meta = (filename) => [citation.date, page, filename].filter(Boolean).join(" · ");
  $("viewer-meta").textContent = meta("");
  try {
    const doc = await loadDocument(citation.doc_id);
    if (ticket !== showing) return;
    $("viewer-meta").textContent = meta(doc.meta && doc.meta.filename);  // an upload's own file name
    // A paged source shows the page the sentence is on; other sources show all their text.
    let from = 0, to = doc.text.length;
    if (citation.page && doc.pages.length) {
      from = doc.pages[citation.page - 1];
      to = citation.page < doc.pages.length ? doc.pages[citation.page] : doc.text.length;
    }
    const mark = el("mark", { id: "highlight" }, doc.text.slice(citation.start, citation.end));
    const heading = citation.page ? [el("p", { class: "page", id: "viewer-page" },
      `Page ${citation.page} of ${doc.pages.length}`)] : [];
    body.replaceChildren(...heading, ...withFurniture(doc, from, citation.start), mark,
      ...withFurniture(doc, citation.end, to));
    $("viewer").focus({ preventScroll: true });
    centreInViewer(mark);
  } catch (error) {
    if (ticket === showing) body.replaceChildren(el("p", { role: "alert" }, error.message));
  }
}

// A whole text, furniture set apart; a paged one (PDF) with a heading where each page starts.
function pagedText(doc) {
  const starts = doc.pages;
  if (!starts.length) return withFurniture(doc, 0, doc.text.length);
  return starts.flatMap((start, i) => {
    const from = i ? start : 0, to = i + 1 < starts.length ? starts[i + 1] : doc.text.length;
    const empty = doc.text.slice(from, to).trim() ? [] : [el("p", { class: "page-empty muted" }, "No text on this page.")];
    return [el("h3", { class: "page-break" }, `Page ${i + 1} of ${starts.length}`), ...empty,
      ...withFurniture(doc, from, to)];
  });
}

// A document from the panel, opened to read in the pane from its start.
async function readDocument(doc, opener) {
  const { title, filename } = docNames(doc);
  const ticket = openViewer(title, opener);
  $("viewer-meta").textContent = [doc.date, doc.pages ? `${doc.pages} pages` : "", filename].filter(Boolean).join(" · ");
  try {
    const full = await loadDocument(doc.doc_id);
    if (ticket !== showing) return;
    $("viewer-text").replaceChildren(...pagedText(full));
    const viewer = $("viewer");
    viewer.scrollTop = 0;
    viewer.focus({ preventScroll: true });
    // Beside the chat, the pane starts below the panel and may start below the screen.
    if (!FULL_SCREEN.matches) viewer.scrollIntoView({ block: "nearest" });
  } catch (error) {
    if (ticket === showing) $("viewer-text").replaceChildren(el("p", { role: "alert" }, error.message));
  }
}

function closeSource() {
  $("viewer").hidden = true;
  setModal(false);
  if (returnFocus) returnFocus.focus();
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  ask(input.value);
});
input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    if (!send.disabled) ask(input.value);
  }
});
// The examples come from the server, made from the documents it serves and answered
// surely there: a page over someone else's documents never offers questions it refuses.
const examples = [];
async function loadExamples() {
  try {
    const reply = await fetch("/api/examples");
    if (!reply.ok) return;
    examples.splice(0, examples.length, ...(await reply.json()).examples);
  } catch {
    return; // no examples is a page that still works
  }
  $("example-list").replaceChildren(...examples.map((question) => {
    const button = el("button", { type: "button", class: "example" }, question);
    button.addEventListener("click", () => ask(question));
    return el("li", {}, button);
  }));
  // With no question the documents answer surely, a hint of what to ask, not an empty page.
  $("example-hint").hidden = examples.length > 0;
  $("examples").hidden = log.children.length > 0;
}
$("clear").addEventListener("click", () => {
  history.length = 0;
  kept.length = 0;
  sessionStorage.removeItem(CHAT_KEY);
  log.replaceChildren();
  $("examples").hidden = false;
  input.focus();
});
$("viewer-close").addEventListener("click", closeSource);
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !$("viewer").hidden) closeSource();
});
// In the modal source, Tab goes round its own controls (inert hides the page, not the browser's own UI).
$("viewer").addEventListener("keydown", (event) => {
  if (event.key !== "Tab" || $("viewer").getAttribute("aria-modal") !== "true") return;
  const controls = [...$("viewer").querySelectorAll("button, a[href]")];
  const at = controls.indexOf(document.activeElement);
  const next = event.shiftKey ? (at <= 0 ? controls.length - 1 : at - 1) : (at + 1) % controls.length;
  event.preventDefault();
  controls[next].focus();
});

// --- the documents panel ------------------------------------------------------------
const PENDING = new Set(["queued", "indexing", "removing"]);
let uploadsEnabled = false;
// The server's upload limits (GET /api/documents uploads: max_bytes, max_files, types): what
// it would refuse is refused here, in its words, before a byte is sent.
let uploadLimits = null;
let pollTimer = null;
let changing = false; // an upload or removal this page started is still being indexed
const added = new Set(); // the uploads this page sent, until their indexing is over
// The documents this tab added, newest first: listed first, so a new one is seen (kept with
// the tab, like the token, since the server's list has no time of adding).
const RECENT_KEY = "qa.recent", KEPT_RECENT = 50;
const recent = JSON.parse(sessionStorage.getItem(RECENT_KEY) || "[]");
const knownNames = new Map(); // doc id -> {title, filename} last seen: a removal's job may carry fewer
let toReveal = []; // the doc ids of the files just sent, to scroll to once they are listed

function authHeaders() {
  return { Authorization: `Bearer ${$("token").value.trim()}` };
}

function errorMessage(data, status) {
  if (status === 401) return "That token is not right. Enter the server's API token (QA_API_TOKEN) above.";
  return data && data.error ? data.error.message : `The server answered ${status}.`;
}

// Changing documents needs the token: say so before sending, rather than after a refusal.
function needToken() {
  if ($("token").value.trim()) return false;
  $("docs-status").textContent = "Enter the token first: the server's API token (QA_API_TOKEN).";
  $("token").focus();
  return true;
}

// A stored file's name: an upload is kept under its content hash ("afcae180accc76de.txt")
// and a corpus file's name is its doc id plus a suffix. Neither is a name a person gave it.
const HASH = /^[0-9a-f]{16,}$/i;
function isStoredName(name, docId) {
  const stem = name.replace(/\.[^.]*$/, "");
  return HASH.test(stem) || stem === docId.split("/").pop();
}

// What the panel calls a document: its title, else the name its file was added with, else
// the names it was last listed with; never a stored name or its id. `filename` is "" when
// it would only repeat the title.
function docNames(doc) {
  const before = knownNames.get(doc.doc_id) || {};
  const title = doc.title && !HASH.test(doc.title) ? doc.title : before.title;
  const filename = doc.filename && !isStoredName(doc.filename, doc.doc_id) ? doc.filename : before.filename;
  knownNames.set(doc.doc_id, { title, filename });
  const name = title || filename || "Untitled document";
  return { title: name, filename: filename && filename !== name ? filename : "" };
}

// Newest first: what this tab added, latest first, whatever its state; then what is being
// added or removed or has failed (by someone else, or a removal); then other uploads (they
// have a file name of their own); then the corpus folder's documents. Else the server's order.
function newestFirst(documents) {
  const group = (doc) => recent.includes(doc.doc_id) ? 0 : (doc.state || "ready") !== "ready" ? 1 : doc.filename ? 2 : 3;
  const age = (doc) => recent.indexOf(doc.doc_id);  // -1 where this tab did not add it
  return [...documents].sort((a, b) => group(a) - group(b) || age(a) - age(b));  // a stable sort
}

// Scrolls the list, and the page, to the first listed row of the files just sent.
function revealAdded(list) {
  const row = [...list.children].find((li) => toReveal.includes(li.dataset.docId));
  if (!row) return;
  row.scrollIntoView({ block: "nearest" });
  toReveal = [];
}

function documentRow(doc) {
  const state = doc.state || "ready";
  const label = state === "indexing" && doc.progress !== undefined
    ? `indexing ${Math.round(doc.progress * 100)}%` : state;
  const { title, filename } = docNames(doc);
  const row = el("li", { "data-doc-id": doc.doc_id },
    el("span", { class: "title" }, title),
    ...(filename ? [el("span", { class: "filename" }, filename)] : []),
    ...(doc.pages ? [el("span", { class: "page" }, `${doc.pages} pages`)] : []),
    el("span", { class: `state ${state}` }, label));
  if (state === "ready") {
    const read = el("button", { type: "button", class: "secondary read", "aria-label": `Read ${title}` }, "Read");
    read.addEventListener("click", () => readDocument(doc, read));
    row.append(read, el("a", { class: "download", href: `/api/files/${encodeURIComponent(doc.doc_id).replace(/%2F/g, "/")}`,
      "aria-label": `Download the original file of ${title}` }, "Original file"));
  }
  if (uploadsEnabled && $("token").value.trim() && !PENDING.has(state)) {
    const remove = el("button", { type: "button", class: "secondary", "aria-label": `Remove ${title}` }, "Remove");
    remove.addEventListener("click", () => removeDocument(doc));
    row.append(remove);
  }
  const notes = [doc.reason, ...(doc.warnings || [])].filter(Boolean);
  if (notes.length) row.append(el("p", { class: "reason" }, notes.join(" ")));
  return row;
}

async function loadDocuments() {
  clearTimeout(pollTimer);
  try {
    const response = await fetch("/api/documents");
    const data = await response.json();
    if (!response.ok) throw new Error(errorMessage(data, response.status));
    uploadsEnabled = data.uploads.enabled;
    uploadLimits = data.uploads;
    if ((data.uploads.types || []).length) $("file-input").accept = data.uploads.types.join(",");
    $("uploads-on").hidden = !uploadsEnabled;
    $("uploads-off").hidden = uploadsEnabled;
    $("doc-list").replaceChildren(...newestFirst(data.documents).map(documentRow));
    revealAdded($("doc-list"));
    const ready = data.documents.filter((d) => (d.state || "ready") === "ready").length;
    $("docs").querySelector("summary").textContent = `Documents (${ready})`;
    $("status").textContent = `Answers are quoted word for word from ${ready} documents, with their sources.`;
    if (data.documents.some((d) => PENDING.has(d.state))) {
      pollTimer = setTimeout(loadDocuments, 700);
    } else if (changing) {
      changing = false;
      // A file that could not be read is said here, where the eye is, not only in its row.
      const failed = data.documents.filter((d) => d.state === "failed" && added.has(d.doc_id));
      $("docs-status").textContent = failed.length
        ? failed.map((d) => `${docNames(d).title} could not be added: ${d.reason}`).join(" ") +
          (failed.length < added.size ? " The other files were added." : "")
        : "Indexing finished: the list shows what the answers now come from.";
      added.clear();
    }
  } catch (error) {
    $("docs-status").textContent = error.message;
  }
}

// What the server would refuse in these files, in its own words (POST /api/documents and
// qa.documents.check, in the order it checks): the number of files, then each file's type
// and size. "" when it would take them (as far as their names and sizes tell).
function refusal(files) {
  if (!uploadLimits) return "";
  const { max_bytes: maxBytes, max_files: maxFiles, types = [] } = uploadLimits;
  const number = (n) => n.toLocaleString("en-US");
  if (maxFiles && files.length > maxFiles) return `${files.length} files sent; at most ${maxFiles} at a time.`;
  for (const file of files) {
    const dot = file.name.lastIndexOf(".");
    const suffix = dot > 0 ? file.name.slice(dot).toLowerCase() : "";
    if (types.length && !types.includes(suffix)) {
      return `${file.name}: files of this type cannot be read. Add ${types.join(", ")} files.`;
    }
    // The server reads at most max_bytes and one more of a file, so it says "over".
    if (maxBytes && file.size > maxBytes) {
      return `${file.name} is over ${number(maxBytes)} bytes; the limit is ${number(maxBytes)} (max_upload_bytes).`;
    }
  }
  return "";
}

function upload(files) {
  if (!files.length || needToken()) return;
  const refused = refusal(files);
  if (refused) {
    $("docs-status").textContent = refused;
    return;
  }
  const form = new FormData();
  for (const file of files) form.append("file", file, file.name);
  const bar = $("upload-progress");
  const status = $("docs-status");
  const request = new XMLHttpRequest();
  request.open("POST", "/api/documents");
  request.setRequestHeader("Authorization", authHeaders().Authorization);
  request.upload.addEventListener("progress", (event) => {
    if (event.lengthComputable) bar.value = event.loaded / event.total;
  });
  request.addEventListener("load", () => {
    bar.hidden = true;
    let data = null;
    try { data = JSON.parse(request.responseText); } catch (e) { /* reported below */ }
    if (request.status === 202) {
      const queued = data.documents.filter((d) => d.state === "queued");
      const known = data.documents.filter((d) => d.state === "already added");
      status.textContent = [
        queued.length ? `Added ${queued.map((d) => d.filename).join(", ")}: indexing…` : "",
        ...known.map((d) => `${d.filename} is already in the documents.`)].filter(Boolean).join(" ");
      changing = changing || queued.length > 0;
      queued.forEach((d) => { docCache.delete(d.doc_id); added.add(d.doc_id); });
      addedNow(queued.map((d) => d.doc_id));
      toReveal = data.documents.map((d) => d.doc_id);  // a file already there is shown too
    } else {
      status.textContent = errorMessage(data, request.status);
    }
    loadDocuments();
  });
  request.addEventListener("error", () => {
    bar.hidden = true;
    status.textContent = "The upload did not reach the server. Check that it is running, then try again.";
  });
  bar.value = 0;
  bar.hidden = false;
  status.textContent = `Uploading ${files.length} file(s)…`;
  request.send(form);
}

// Puts the doc ids just added first in `recent`.
function addedNow(docIds) {
  const rest = recent.filter((id) => !docIds.includes(id));
  recent.splice(0, recent.length, ...docIds, ...rest.slice(0, KEPT_RECENT - docIds.length));
  sessionStorage.setItem(RECENT_KEY, JSON.stringify(recent));
}

async function removeDocument(doc) {
  const name = docNames(doc).title;
  if (!window.confirm(`Remove “${name}” from the documents? Questions will no longer be answered from it.`)) return;
  const response = await fetch(`/api/documents/${encodeURIComponent(doc.doc_id).replace(/%2F/g, "/")}`,
    { method: "DELETE", headers: authHeaders() });
  let data = null;
  try { data = await response.json(); } catch (e) { /* reported below */ }
  $("docs-status").textContent = response.ok ? `Removing ${name}…` : errorMessage(data, response.status);
  changing = changing || response.ok;
  docCache.delete(doc.doc_id);
  loadDocuments();
}

const drop = $("drop");
$("file-input").addEventListener("change", (event) => {
  upload([...event.target.files]);
  event.target.value = "";
});
drop.addEventListener("dragover", (event) => {
  event.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  upload([...event.dataTransfer.files]);
});
$("token").value = sessionStorage.getItem(TOKEN_KEY) || "";
$("token").addEventListener("input", () => {
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  loadDocuments(); // Remove buttons show only with a token
});
for (const turn of kept) {
  addMessage(el("li", { class: "msg user" }, turn.question));
  addMessage(renderAnswer(turn.answer));
  history.push({ question: turn.question, answer: turn.answer.answer });
}
// The server's own limits, so that a server set to keep 5 turns never gets a sixth.
fetch("/api/health").then((reply) => reply.ok ? reply.json() : null).then((health) => {
  const limits = health && health.limits;
  if (!limits) return;
  maxTurns = limits.max_history_turns;
  $("question").maxLength = limits.max_question_chars;
}).catch(() => {});
loadExamples();
loadDocuments();
