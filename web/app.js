// The chat page. All text from documents and users is inserted as text nodes, never as HTML.
"use strict";

const MAX_TURNS = 10;
const history = []; // [{question, answer}], sent with each question so follow-ups work
const docCache = new Map();

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
  node.scrollIntoView({ block: "nearest" });
  return node;
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

function renderAnswer(answer) {
  if (answer.abstained) {
    return el("li", { class: "msg bot abstained" },
      el("p", { class: "label" }, "No answer in the documents"),
      el("p", { class: "answer-text" }, answer.message));
  }
  const byId = new Map(answer.citations.map((c) => [c.id, c]));
  const text = el("p", { class: "answer-text" });
  answer.sentences.forEach((sentence, i) => {
    if (i) text.append(" ");
    text.append(sentence.text, " ", citationLink(byId.get(sentence.citation)));
  });
  const sources = el("ol", { class: "sources", "aria-label": "Sources" });
  for (const c of answer.citations) {
    const snippet = c.text.length > 220 ? c.text.slice(0, 217) + "…" : c.text;
    sources.append(el("li", { value: String(c.id) },
      el("span", { class: "title" }, c.title), c.date ? ` (${c.date}) ` : " ", citationLink(c),
      el("span", { class: "snippet" }, snippet)));
  }
  const node = el("li", { class: "msg bot answer" }, text, sources,
    el("p", { class: "confidence" }, `Confidence ${Math.round(answer.confidence * 100)}%`));
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
    const answer = await postJSON("/api/ask", { question, history: history.slice(-MAX_TURNS) });
    waiting.replaceWith(renderAnswer(answer));
    history.push({ question, answer: answer.answer });
  } catch (error) {
    waiting.replaceWith(el("li", { class: "msg bot error", role: "alert" },
      el("p", { class: "label" }, "Something went wrong"), el("p", {}, error.message)));
  } finally {
    send.disabled = false;
    input.focus();
  }
}

async function loadDocument(docId) {
  if (!docCache.has(docId)) {
    const response = await fetch(`/api/documents/${encodeURIComponent(docId).replace(/%2F/g, "/")}`);
    const data = await response.json();
    if (!response.ok) throw new Error(data.error ? data.error.message : "The source could not be loaded.");
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

async function openSource(citation, opener) {
  const viewer = $("viewer");
  const body = $("viewer-text");
  returnFocus = opener;
  viewer.hidden = false;
  $("viewer-title").textContent = citation.title;
  $("viewer-meta").textContent = [citation.date, citation.doc_id].filter(Boolean).join(" · ");
  body.replaceChildren("Loading the source…");
  try {
    const doc = await loadDocument(citation.doc_id);
    const mark = el("mark", { id: "highlight" }, doc.text.slice(citation.start, citation.end));
    body.replaceChildren(...withFurniture(doc, 0, citation.start), mark, ...withFurniture(doc, citation.end, doc.text.length));
    viewer.focus({ preventScroll: true });
    mark.scrollIntoView({ block: "center" });
  } catch (error) {
    body.replaceChildren(el("p", { role: "alert" }, error.message));
  }
}

function closeSource() {
  $("viewer").hidden = true;
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
document.querySelectorAll("button.example").forEach((button) => {
  button.addEventListener("click", () => ask(button.textContent));
});
$("clear").addEventListener("click", () => {
  history.length = 0;
  log.replaceChildren();
  $("examples").hidden = false;
  input.focus();
});
$("viewer-close").addEventListener("click", closeSource);
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !$("viewer").hidden) closeSource();
});

fetch("/api/health").then((r) => r.json()).then((health) => {
  if (health.documents) {
    $("status").textContent = `Answers are quoted word for word from ${health.documents} documents, with their sources.`;
  }
}).catch(() => { /* the status line keeps its default text */ });
