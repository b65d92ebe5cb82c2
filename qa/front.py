"""The door of `qa serve`: waitress, with each request's body limit decided from its
headers, before any of the body is read, and every reply of waitress's own in JSON.

waitress reads a whole body before the application sees the request, so a limit the
application applies comes too late: eight 300 MB bodies to /api/ask were read in full,
then refused. Here the parser, once the headers are in, gives each request its limit:
`max_body_bytes`, except an upload (POST /api/documents) carrying the server's API token,
which may send `max_upload_files` files of `max_upload_bytes`. A request that announces
more is refused at once (413; an upload without the right token, 401); a chunked body is
cut off as soon as it passes its limit. waitress's own replies (bad request lines, headers
too large, bodies too large) are the API's JSON errors with its security headers.
"""

from __future__ import annotations

import hmac
import json

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask
from waitress.utilities import Error

from .config import Config

UPLOAD_ROUTE = "/api/documents"
MULTIPART_OVERHEAD = 64 * 1024  # the form's boundaries and part headers around the files


class Refused(Error):
    """A request turned away at the door, with the API's error code and message."""

    def __init__(self, status: int, reason: str, code: str, message: str):
        super().__init__(message)
        self.code, self.reason, self.api_code = status, reason, code


def bearer_matches(header: str, api_token: str) -> bool:
    """Whether an Authorization header carries the server's API token (compared in constant
    time); never with no token set."""
    scheme, _, token = header.partition(" ")
    return bool(api_token) and scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(),
                                                                                  api_token.encode())


def json_error(error: Error, headers: dict[str, str]) -> tuple[str, list[tuple[str, str]], bytes]:
    code = getattr(error, "api_code", None) or {400: "bad_request", 413: "too_large", 431: "headers_too_large",
                                                 501: "not_implemented"}.get(error.code, "http_error")
    message = error.body if isinstance(error, Refused) else f"{error.reason}: {error.body}."
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return (f"{error.code} {error.reason}", [("Content-Type", "application/json"), *headers.items()], body)


def make_server(app, config: Config, security_headers: dict[str, str]) -> TcpWSGIServer:
    upload_limit = config.max_upload_bytes * config.max_upload_files + MULTIPART_OVERHEAD

    def allowed(parser: HTTPRequestParser) -> int | Refused:
        """The body this request may send, or why it may send none at all."""
        if parser.command != "POST" or parser.path != UPLOAD_ROUTE:
            return config.max_body_bytes
        if bearer_matches(parser.headers.get("AUTHORIZATION", ""), config.api_token):
            return upload_limit
        if parser.content_length > config.max_body_bytes or parser.chunked:
            return Refused(401, "Unauthorized", "unauthorized", "Adding documents needs the server's API token: "
                           "send the header Authorization: Bearer <token>.")
        return config.max_body_bytes

    class Parser(HTTPRequestParser):
        limit = 0
        refused: Refused | None = None

        def parse_header(self, header_plus):
            super().parse_header(header_plus)
            limit = allowed(self)
            if isinstance(limit, Refused):
                self._refuse(limit)
            elif self.content_length > limit:
                self._refuse(Refused(413, "Request Entity Too Large", "too_large",
                                     f"The request body ({self.content_length:,} bytes) is larger than the limit "
                                     f"of {limit:,} bytes for {self.path}."))
            self.limit = limit if isinstance(limit, int) else 0

        def received(self, data):
            consumed = super().received(data)
            if self.refused is not None:
                self.error = self.refused  # waitress's own size check may have written over it
            elif self.headers_finished and not self.completed and self.body_bytes_received > self.limit:
                self._refuse(Refused(413, "Request Entity Too Large", "too_large",
                                     f"The request body is larger than the limit of {self.limit:,} bytes "
                                     f"for {self.path}."))
            return consumed

        def _refuse(self, error: Refused):
            self.error = self.refused = error
            self.completed = True

    class JsonErrorTask(ErrorTask):
        def execute(self):
            status, headers, body = json_error(self.request.error, security_headers)
            self.status = status
            self.response_headers.extend(headers)
            self.set_close_on_finish()
            self.content_length = len(body)
            self.write(body)

    class Channel(HTTPChannel):
        parser_class = Parser
        error_task_class = JsonErrorTask

    class Server(TcpWSGIServer):
        channel_class = Channel

    adj = Adjustments(host=config.host, port=config.port, threads=config.threads, ident="qa",
                      max_request_body_size=max(config.max_body_bytes, upload_limit))
    return Server(app, adj=adj)
