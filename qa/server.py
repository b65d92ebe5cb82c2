"""The HTTP face: the chat page, a JSON API, and an OpenAI-compatible chat endpoint.

`create_app` builds the app from four blueprints, each a thin adapter over `QA`: parse and
check the request, ask, serialise.

- `qa.server_api`: asking, searching, examples, health, the OpenAPI document (/api/…);
- `qa.server_documents`: listing, reading, adding and removing documents (/api/documents, /api/files);
- `qa.server_openai`: the OpenAI-compatible chat (/v1/…);
- `qa.server_page`: the chat page and its files.

What they share (the live QA, the config, the indexer, the examples) is a `ServerState` in
`app.extensions["qa"]` (`qa.server_shared`). The errors are handled here, in one place:
every error, from a bad body to a bug, leaves as `{"error": {"code", "message"}}`.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from .config import Config
from .examples import Examples
from .files import writing
from .index import with_corpus
from .indexer import Indexer
from .live import LiveQA
from .pipeline import QA
from .server_api import OPENAPI, api
from .server_documents import documents
from .server_openai import openai
from .server_page import WEB_DIR, page
from .server_shared import CODES, ApiError, RateLimiter, ServerState, state
from .types import IndexBusyError, QAError

__all__ = ["OPENAPI", "SECURITY_HEADERS", "WEB_DIR", "ApiError", "RateLimiter", "create_app", "serve"]

log = logging.getLogger(__name__)

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# The page loads its script, styles and data from this server only and never runs inline
# script, so document text that looks like HTML can do nothing even if it ever reached the
# DOM as markup. On every reply, the door's own (qa.http_limits) included.
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
                    "Referrer-Policy": "no-referrer"}


def create_app(config: Config, qa: QA | None = None) -> Flask:
    """The app over the index `config` names. Uploads are stored in the corpus folder that
    index was built from (`qa.origin`), never in the working folder."""
    config = with_corpus(config)
    live = LiveQA(qa or QA.load(config), config.index_check_seconds)
    limiter = RateLimiter(config.rate_limit_per_minute) if config.rate_limit_per_minute > 0 else None
    served = ServerState(config=config, live=live, indexer=Indexer(config, live.current.encoder, live.reload),
                         examples=Examples(live), limiter=limiter)
    app = Flask(__name__, static_folder=None)
    app.extensions["qa"] = served
    # "/api/documents//etc/passwd" must be a 404 for that id, not a redirect to a tidied path.
    app.url_map.merge_slashes = False
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json.ensure_ascii = False
    for blueprint in (page, api, documents, openai):
        app.register_blueprint(blueprint)
    app.register_error_handler(ApiError, api_error)
    app.register_error_handler(QAError, qa_error)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected)
    app.before_request(rate_limit)
    app.after_request(security_headers)
    return app


# --- the errors, every one as {"error": {"code", "message"}} -----------------------------
def error_response(status: int, code: str, message: str, extra: dict | None = None) -> Response:
    response = jsonify({"error": {"code": code, **(extra or {}), "message": message}})
    response.status_code = status
    return response


def api_error(exc: ApiError) -> Response:
    return error_response(exc.status, exc.code, exc.message, exc.extra)


def qa_error(exc: QAError) -> Response:
    return error_response(exc.status, exc.code, str(exc))


def http_error(exc: HTTPException) -> Response:
    messages = {
        404: f"There is nothing at {request.path}. See /api/openapi.json for the API.",
        405: f"{request.method} is not allowed on {request.path}.",
        413: f"The request body is larger than the limit of {request.max_content_length:,} bytes.",
    }
    status = exc.code or 500
    return error_response(status, CODES.get(status, "http_error"), messages.get(status, exc.description or exc.name))


def unexpected(exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(500, "internal_error", "Something went wrong on the server; the error was logged. Try again.")


# --- around every request -----------------------------------------------------------------
def rate_limit() -> Response | None:
    limiter = state().limiter
    if limiter is None or request.method != "POST":
        return None
    wait = limiter.wait_seconds(request.remote_addr or "unknown")
    if wait:
        response = error_response(429, "rate_limited", f"Too many requests from your address: the limit is "
                                  f"{state().config.rate_limit_per_minute} a minute. Try again in {wait:.0f} s.")
        response.headers["Retry-After"] = str(max(1, round(wait)))
        return response
    return None


def security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


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
        app.extensions["qa"].draining = True
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
        if not app.extensions["qa"].indexer.stop():
            log.warning("the indexer did not stop in time; its uploads are queued for the next start")
