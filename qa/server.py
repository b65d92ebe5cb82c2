"""The HTTP face: the chat page, a JSON API, and an OpenAI-compatible chat endpoint.

Every route is a thin adapter over `QA`: parse and check the request, ask, serialise.
Every error, from a bad body to a bug, leaves as `{"error": {"code", "message"}}`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import threading
import time
import uuid
from pathlib import Path

from flask import Flask, Response, jsonify, request, send_from_directory
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from .answer import render_text
from .config import Config, shipped
from .documents import Upload
from .examples import Examples
from .http_limits import bearer_matches
from .indexer import Indexer
from .ingest import SUFFIXES
from .live import LiveQA
from .index import with_corpus
from .pipeline import QA
from .files import writing
from .types import Answer, BadQuestion, Document, IndexBusyError, QAError

log = logging.getLogger(__name__)

WEB_DIR = shipped("web", "web")
OPENAPI = Path(__file__).resolve().parent / "openapi.json"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# The page loads its script, styles and data from this server only and never runs inline
# script, so document text that looks like HTML can do nothing even if it ever reached the
# DOM as markup. On every reply, the door's own (qa.http_limits) included.
FORM_FIELDS_ALLOWED = 20  # beside the files: what a browser or curl may add to an upload form
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
                    "Referrer-Policy": "no-referrer"}
_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
          413: "too_large", 415: "unsupported_media_type", 500: "internal_error"}


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code or _CODES.get(status, "error")


def error_response(status: int, code: str, message: str) -> Response:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


class RateLimiter:
    """A token bucket per client address: `per_minute` requests, refilled evenly, so a
    burst up to that many is served and a flood gets 429s instead of queueing every
    other user behind it."""

    def __init__(self, per_minute: int):
        self.capacity, self.rate = float(per_minute), per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, when)
        self._lock = threading.Lock()

    def wait_seconds(self, client: str) -> float:
        """0 if the request may go ahead (and is counted), else how long until it may."""
        now = time.monotonic()
        with self._lock:
            if len(self._buckets) > 10_000:  # forget clients that have been idle long enough to be full
                self._buckets = {c: b for c, b in self._buckets.items() if now - b[1] < self.capacity / self.rate}
            tokens, when = self._buckets.get(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - when) * self.rate)
            if tokens < 1:
                self._buckets[client] = (tokens, now)
                return (1 - tokens) / self.rate
            self._buckets[client] = (tokens - 1, now)
            return 0.0


def create_app(config: Config, qa: QA | None = None) -> Flask:
    """The app over the index `config` names. Uploads are stored in the corpus folder that
    index was built from (`qa.origin`), never in the working folder."""
    config = with_corpus(config)
    live = LiveQA(qa or QA.load(config), config.index_check_seconds)
    indexer = Indexer(config, live.current.encoder, live.reload)
    examples = Examples(live)
    app = Flask(__name__, static_folder=None)
    app.extensions["qa.indexer"] = indexer
    # "/api/documents//etc/passwd" must be a 404 for that id, not a redirect to a tidied path.
    app.url_map.merge_slashes = False
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json.ensure_ascii = False

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message)

    @app.errorhandler(QAError)
    def qa_error(exc: QAError):
        return error_response(exc.status, exc.code, str(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        messages = {
            404: f"There is nothing at {request.path}. See /api/openapi.json for the API.",
            405: f"{request.method} is not allowed on {request.path}.",
            413: f"The request body is larger than the limit of {request.max_content_length:,} bytes.",
        }
        status = exc.code or 500
        return error_response(status, _CODES.get(status, "http_error"), messages.get(status, exc.description or exc.name))

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "Something went wrong on the server; the error was logged. Try again.")

    limiter = RateLimiter(config.rate_limit_per_minute) if config.rate_limit_per_minute > 0 else None

    @app.before_request
    def rate_limit():
        if limiter is None or request.method != "POST":
            return None
        wait = limiter.wait_seconds(request.remote_addr or "unknown")
        if wait:
            response = error_response(429, "rate_limited", f"Too many requests from your address: the limit is "
                                      f"{config.rate_limit_per_minute} a minute. Try again in {wait:.0f} s.")
            response.headers["Retry-After"] = str(max(1, round(wait)))
            return response
        return None

    @app.after_request
    def security_headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    # --- the chat page --------------------------------------------------------------
    @app.get("/")
    def index():
        return send_from_directory(WEB_DIR, "index.html")

    @app.get("/favicon.ico")
    def favicon():
        return send_from_directory(WEB_DIR, "favicon.svg", mimetype="image/svg+xml")

    @app.get("/web/<path:name>")
    def web_file(name: str):
        return send_from_directory(WEB_DIR, name)

    # --- the JSON API ---------------------------------------------------------------
    @app.post("/api/ask")
    def ask():
        body = json_body(("question", "history", "top_k"))
        answer = live.get().ask(body.get("question"), body.get("history"), body.get("top_k"))
        response = jsonify(answer.to_dict())
        response.headers["Server-Timing"] = ", ".join(f"{stage};dur={ms:.2f}" for stage, ms in answer.timings.items())
        return response

    @app.post("/api/search")
    def search():
        body = json_body(("query", "k"))
        return jsonify({"query": body.get("query"),
                        "passages": [p.to_dict() for p in live.get().search(body.get("query"), body.get("k", 5))]})

    @app.get("/api/examples")
    def example_questions():
        return jsonify({"examples": examples.get()})

    @app.get("/api/documents")
    def documents():
        jobs = indexer.jobs()
        listed = [{**summary(d, chars), "state": "ready", **({"warnings": d.meta["warnings"]} if d.meta.get("warnings") else {}),
                   **public(jobs.pop(d.doc_id, {}))} for d, chars in live.get().index.listing()]
        return jsonify({"documents": listed + [public(j) for j in jobs.values()],
                        "uploads": {"enabled": bool(config.api_token), "max_bytes": config.max_upload_bytes,
                                    "types": sorted(SUFFIXES)}})

    @app.post("/api/documents")
    def add_documents():
        authorize(config)
        request.max_content_length = config.max_upload_bytes * config.max_upload_files
        # Werkzeug refuses too many form parts as "too large"; that is not what went wrong.
        request.max_form_parts = config.max_upload_files + FORM_FIELDS_ALLOWED
        try:
            files = request.files.getlist("file")
        except RequestEntityTooLarge:
            if (request.content_length or 0) > request.max_content_length:
                raise
            raise ApiError(400, f"The upload has too many form fields; send only the files (at most "
                                f"{config.max_upload_files}), each in the field \"file\".", "bad_upload") from None
        if not files and "file" in request.form:  # a name with a line break ends the part's header early
            raise ApiError(400, "A file was sent without a readable name (a line break in it?). Rename the file "
                                "and send it again.", "bad_upload")
        if len(files) > config.max_upload_files:
            raise ApiError(400, f"{len(files)} files sent; at most {config.max_upload_files} at a time.")
        added = indexer.add([Upload(f.filename or "", f.read(config.max_upload_bytes + 1)) for f in files],
                            live.get().index)
        return jsonify({"documents": [public(j) for j in added]}), 202

    @app.delete("/api/documents/<path:doc_id>")
    def remove_document(doc_id: str):
        authorize(config)
        return jsonify(indexer.remove(doc_id, live.get().index)), 202

    @app.get("/api/documents/<path:doc_id>")
    def document(doc_id: str):
        store = live.get().index
        doc = store.find(doc_id)
        if doc is None:
            raise ApiError(404, f"No document has the id {doc_id!r}. GET /api/documents lists them.")
        text = store.document_text(doc_id)
        return jsonify({**summary(doc, len(text)), "meta": doc.meta, "text": text, "masked": [list(m) for m in doc.masked],
                        "pages": list(doc.pages)})

    @app.get("/api/files/<path:doc_id>")
    def original_file(doc_id: str):
        doc = live.get().index.find(doc_id)
        if doc is None:
            raise ApiError(404, f"No document has the id {doc_id!r}. GET /api/documents lists them.")
        corpus = Path(config.corpus_dir).resolve()
        if not (corpus / doc.source).is_file():
            raise ApiError(404, f"The original file of {doc.title!r} is no longer in the corpus folder.")
        # Always a download, and sandboxed: an uploaded HTML file must never run as this site.
        response = send_from_directory(corpus, doc.source, as_attachment=True,
                                       download_name=doc.meta.get("filename") or Path(doc.source).name)
        response.headers["Content-Security-Policy"] = "sandbox"
        return response

    @app.get("/api/health")
    def health():
        if app.config.get("QA_DRAINING"):
            return jsonify({"status": "stopping"}), 503
        qa = live.get()
        m = qa.index.manifest
        return jsonify({"status": "ok", **m.get("counts", {}), "model": m["model"]["id"], "reader": qa.reader.model_id,
                        "index_version": qa.index_version,
                        "built_at": m.get("built_at"), "format_version": m.get("format_version"),
                        # What a client must keep to: the page reads them rather than guessing.
                        "limits": {"max_history_turns": config.max_history_turns,
                                   "max_question_chars": config.max_question_chars}})

    @app.get("/api/openapi.json")
    def openapi():
        return Response(OPENAPI.read_text(encoding="utf-8"), mimetype="application/json")

    # --- OpenAI-compatible chat -----------------------------------------------------
    @app.get("/v1/models")
    def models():
        return jsonify({"object": "list", "data": [{"id": "qa", "object": "model", "owned_by": "qa", "created": 0}]})

    @app.post("/v1/chat/completions")
    def chat_completions():
        body = json_body()
        if body.get("model", "qa") != "qa":  # as OpenAI answers a model it does not have
            return jsonify({"error": {"code": "model_not_found", "type": "invalid_request_error", "param": "model",
                                      "message": f"The model {body['model']!r} does not exist here: the only model "
                                                 "is 'qa' (GET /v1/models)."}}), 404
        question, history = chat_turns(body.get("messages"))
        if not isinstance(body.get("stream", False), bool):
            raise BadQuestion("stream must be true or false.")
        # A chat client sends the whole conversation: the latest turns are what a follow-up
        # can refer to, as the page keeps them.
        answer = live.get().ask(question, history[-config.max_history_turns:] if config.max_history_turns else [])
        reply = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": "qa"}
        if body.get("stream"):
            return Response(stream_chat(reply, answer), mimetype="text/event-stream",
                            headers={"Cache-Control": "no-cache"})
        message = {"role": "assistant", "content": render_text(answer, ids=False)}
        words = len(message["content"].split())
        return jsonify({**reply, "object": "chat.completion",
                        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": len(question.split()), "completion_tokens": words,
                                  "total_tokens": len(question.split()) + words},
                        **structured(answer)})

    return app


def authorize(config: Config) -> None:
    """Changing the corpus needs the server's API token; without one it is turned off."""
    if not config.api_token:
        raise ApiError(403, "Adding and removing documents is turned off on this server. Start it with an API token "
                            "(QA_API_TOKEN=<secret> qa serve, or api_token in qa.toml) and send the header "
                            "Authorization: Bearer <secret>.", "uploads_disabled")
    if not bearer_matches(request.headers.get("Authorization", ""), config.api_token):
        raise ApiError(401, "This needs the server's API token: send the header Authorization: Bearer <token>.",
                       "unauthorized")


def summary(doc: Document, chars: int) -> dict:
    return {"doc_id": doc.doc_id, "title": doc.title, "date": doc.date, "source": doc.source, "chars": chars,
            "pages": len(doc.pages) or None, **({"filename": doc.meta["filename"]} if doc.meta.get("filename") else {})}


def public(job: dict) -> dict:
    """A pending document's state as the API shows it (no corpus paths beyond `source`)."""
    return {k: v for k, v in job.items() if k in {"doc_id", "filename", "state", "reason", "progress"}}


def json_body(known: tuple[str, ...] | None = None) -> dict:
    """The request's JSON object; with `known`, any other field is refused, so that a
    misspelt "top_k" is an error rather than silently ignored."""
    if not request.is_json:
        raise ApiError(415, "Send a JSON body with the header Content-Type: application/json.")
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # the parser recurses once per level: "[[[[…" thousands deep
        raise ApiError(400, "The request body nests too deeply. Send a flat JSON object.", "malformed_json") from None
    if body is None:
        raise ApiError(400, "The request body is not valid JSON (or not UTF-8).", "malformed_json")
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.", "malformed_json")
    unknown = sorted(set(body) - set(known or body))
    if unknown:
        raise ApiError(400, f"Unknown field(s) {', '.join(map(repr, unknown))}; this endpoint takes "
                            f"{', '.join(known)}.", "unknown_field")
    return body


CHAT_ROLES = frozenset({"system", "user", "assistant", "developer", "tool"})


def chat_turns(messages) -> tuple[str, list[dict]]:
    """The last user message is the question; earlier user/assistant pairs are the history."""
    if not isinstance(messages, list) or not messages:
        raise BadQuestion("messages must be a non-empty list of {role, content} objects.")
    turns: list[dict] = []
    for m in messages:
        # A role must be a string before it meets the set: a list or an object is unhashable.
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or m["role"] not in CHAT_ROLES:
            raise BadQuestion("Each message needs a role (system, user or assistant) and content.")
        text = message_text(m.get("content"))
        if m["role"] == "user":
            turns.append({"question": text, "answer": ""})
        elif m["role"] == "assistant" and turns:
            turns[-1]["answer"] = text
    if messages[-1].get("role") != "user":
        raise BadQuestion("The last message must be the user's question.")
    return turns[-1]["question"], turns[:-1]


def message_text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}]
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if all(isinstance(t, str) for t in texts):
            return " ".join(texts)
    if content is None:
        return ""
    raise BadQuestion("Message content must be a string or a list of text parts.")


def structured(answer: Answer) -> dict:
    data = answer.to_dict()
    return {"citations": data["citations"], "answer": data}


def stream_chat(reply: dict, answer: Answer):
    def event(delta: dict, finish: str | None = None, extra: dict | None = None) -> str:
        chunk = {**reply, "object": "chat.completion.chunk",
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **(extra or {})}
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    yield event({"role": "assistant", "content": ""})
    for piece in re.findall(r"\S+\s*|\s+", render_text(answer, ids=False)):
        yield event({"content": piece})
    yield event({}, "stop", structured(answer))
    yield "data: [DONE]\n\n"


def serve(config: Config) -> None:
    """Run the app under waitress, a production WSGI server, behind body limits per route
    (`qa.http_limits`); first remove what a write killed mid-way left in the index folder."""
    from .http_limits import make_server

    try:
        with writing(config.index_dir):
            pass  # taking the lock removes uncommitted files
    except IndexBusyError:
        pass  # an ingest is writing: it will tidy up itself
    app = create_app(config)
    server = make_server(app, config, SECURITY_HEADERS)

    def stop(signum, frame):
        raise SystemExit(0)  # waitress's loop ends on it and finishes its threads' requests

    def drain(signum, frame):
        # Stopped (SIGTERM) behind a balancer: /api/health says so at once, so no more
        # questions are sent here; those under way are answered; then the server stops (at
        # a second SIGTERM, sent by itself or by whoever is in a hurry).
        app.config["QA_DRAINING"] = True
        signal.signal(signal.SIGTERM, stop)
        threading.Timer(config.drain_seconds, os.kill, (os.getpid(), signal.SIGTERM)).start()

    signal.signal(signal.SIGTERM, drain)
    print(f"Serving the chat at http://{config.host}:{config.port}/ (Ctrl+C to stop)", flush=True)
    try:
        server.run()
    finally:
        # A build under way is abandoned before it writes, and its uploads journalled as
        # queued: a restart costs them nothing, and the process never exits with the
        # encoder's threads still running (which aborts it).
        if not app.extensions["qa.indexer"].stop():
            log.warning("the indexer did not stop in time; its uploads are queued for the next start")
