"""What the server's blueprints share: the app's state, the API's error, reading a
request's JSON body, and the rate limiter.

The state lives in `app.extensions["qa"]`, one `ServerState` per app, so that a route
reaches the live QA, the config and the indexer through `state()`, not through closures.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from flask import current_app, request

from .config import Config
from .examples import Examples
from .indexer import Indexer
from .live import LiveQA

CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
         413: "too_large", 415: "unsupported_media_type", 500: "internal_error"}


class ApiError(Exception):
    """An error the API returns as `{"error": {"code", "message", **extra}}` with `status`."""

    def __init__(self, status: int, message: str, code: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code or CODES.get(status, "error")
        self.extra = extra or {}


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


@dataclass
class ServerState:
    """Everything a request may need beyond itself."""

    config: Config
    live: LiveQA
    indexer: Indexer
    examples: Examples
    limiter: RateLimiter | None = None
    draining: bool = False  # stopping behind a balancer: health says 503


def state() -> ServerState:
    """The state of the app handling the current request."""
    return current_app.extensions["qa"]


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
