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

A refusal comes before the body, and closing the socket with the body unread resets the
connection, which loses the reply to a client still sending (urllib, and any client that
sends its whole body before it reads). So after an error reply the write side is shut and
the rest is read and thrown away, for `linger_seconds` and 1 GiB at most, as nginx's
lingering close does; never kept, and with `Expect: 100-continue` the refusal is sent
instead of "100 Continue".

Slow clients: waitress reads every connection in one loop and stops accepting at its
connection limit, so a hundred connections dribbling their headers locked everyone out.
Here a connection has `header_timeout` for its request's headers and `body_timeout` (plus a
second per `min_body_rate` bytes) for its body, checked once a second; up to
`max_connections` are held, and past that limit, or past `max_connections_per_client`
from one address, the oldest connection that is not being answered (idle or still
sending, headers first) is closed to make room, not the new one, which has had no time.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import resource
import socket
import time
from collections import Counter, defaultdict

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask
from waitress.utilities import Error

from .config import Config

UPLOAD_ROUTE = "/api/documents"
MULTIPART_OVERHEAD = 64 * 1024  # the form's boundaries and part headers around the files
LINGER_BYTES = 1 << 30  # the most of a refused body read and thrown away before the connection is cut
OTHER_FILES = 256  # open files the server holds besides its connections (index, models, logs, uploads)
# A connection not being answered, by how readily it is closed to make room: one that has
# not yet sent a whole request first, one that is sending a body or draining a refusal
# next, one that is slow to read its reply last; busy ones (a request with the app) never.
# And within its first YOUNG seconds in a state, only when every other is as young: a new
# connection has had no time to send, and a normal client needs milliseconds.
EVICTION_RANK = {"idle": 0, "headers": 0, "body": 1, "lingering": 1, "replying": 2}
YOUNG = 1.0
_SINK = bytearray(1 << 20)  # refused bodies are read into it; only waitress's loop thread reads

log = logging.getLogger(__name__)


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
        headers_done = 0.0  # time.monotonic() when the headers were in: the body's clock starts

        def parse_header(self, header_plus):
            super().parse_header(header_plus)
            self.headers_done = time.monotonic()
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
            # A request in error is answered and its connection closed: what came after it is
            # its body (or junk), never to be parsed as another request.
            return len(data) if self.error is not None else consumed

        def _refuse(self, error: Refused):
            self.error = self.refused = error
            self.completed = True
            # The refusal is the answer to "Expect: 100-continue": no "100 Continue" for a body
            # that will not be taken (waitress would send it, then read the body and spool it).
            self.expect_continue = False

    class JsonErrorTask(ErrorTask):
        def execute(self):
            status, headers, body = json_error(self.request.error, security_headers)
            self.status = status
            self.response_headers.extend(headers)
            self.set_close_on_finish()
            self.content_length = len(body)
            self.write(body)

    class DoorChannel(Channel):
        parser_class = Parser
        error_task_class = JsonErrorTask

    class DoorServer(Server):
        channel_class = DoorChannel

    connections = room_for(config.max_connections)
    return DoorServer(app, config, connections, adj=adjustments(config, max(config.max_body_bytes, upload_limit),
                                                                connections))


def adjustments(config: Config, max_body: int, connections: int) -> Adjustments:
    return Adjustments(host=config.host, port=config.port, threads=config.threads, ident="qa",
                       max_request_body_size=max_body,
                       # The server makes room before this limit (where waitress stops accepting)
                       # is reached; the slack covers connections closed but not yet gone.
                       connection_limit=connections + 16,
                       cleanup_interval=1,  # the timeouts are checked once a second
                       asyncore_use_poll=True)  # select() cannot watch a descriptor past 1023


def room_for(connections: int) -> int:
    """How many connections this process can hold: its open-files limit is raised (up to the
    hard limit) to fit them beside the server's other files; fewer if the hard limit is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + OTHER_FILES
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        soft = wanted
    room = connections if soft == resource.RLIM_INFINITY else min(connections, soft - OTHER_FILES)
    if room < connections:
        log.warning("the open-files limit (%s) leaves room for %s connections, not max_connections=%s",
                    soft, room, connections)
    return max(room, 1)


class Channel(HTTPChannel):
    """A waitress connection that keeps its own time (see `state`), drains the body of a
    request it refused, and can be closed at once from the loop."""

    lingering = False  # the reply to a request in error is out, the write side shut, the rest read away
    linger_wanted = False  # a request in error is being answered: linger once the reply is out
    drained = 0

    def __init__(self, server, sock, addr, adj, map=None):
        super().__init__(server, sock, addr, adj, map)
        # When the current wait began, by time.monotonic(): the connection's opening, then
        # each request's first byte, the end of each request (idle), the start of lingering.
        self.began, self.idle = time.monotonic(), False
        server.admit(self)

    def state(self) -> str:
        if self.will_close or self.requests:
            return "busy"  # closing, or a request is with the app: its time is not the client's
        if self.lingering:
            return "lingering"
        if self.total_outbufs_len or self.close_when_flushed:
            return "replying"
        if self.request is not None and self.request.headers_finished:
            return "body"
        # A new connection is sending its first request, even before its first byte.
        return "idle" if self.idle else "headers"

    def overdue(self, now: float) -> str | None:
        """The state this connection has outstayed, if it has."""
        config, state = self.server.config, self.state()
        if state == "headers":
            late = now > self.began + config.header_timeout
        elif state == "body":
            # The body as a whole at `min_body_rate`, and no gap between its bytes longer than
            # `body_timeout` (nginx's rule): a fast start buys no hours of silence.
            request = self.request
            late = now > (request.headers_done + config.body_timeout
                          + request.body_bytes_received / max(config.min_body_rate, 1)) \
                or time.time() > self.last_activity + config.body_timeout  # waitress keeps wall-clock time
        elif state == "lingering":
            late = now > self.began + config.linger_seconds
        else:
            late = False  # idle ones are waitress's (channel_timeout); the rest are being answered
        return state if late else None

    def eviction_key(self, now: float) -> tuple[bool, int, float] | None:
        """Where it comes in the order of closing to make room (lowest first); None: never."""
        state = self.state()
        if state == "busy":
            return None
        since = self.request.headers_done if state == "body" else self.began
        return now - since < YOUNG, EVICTION_RANK[state], since

    def close_soon(self):
        """Close from the loop's own thread, at its next turn: the socket is shut now, which wakes
        the loop for it even when its send buffer is full (waitress's will_close alone waits
        until it can write, which a client that never reads never lets it)."""
        self.will_close = True
        with contextlib.suppress(OSError):
            self.socket.shutdown(socket.SHUT_RDWR)
        self.server.forget(self)

    def received(self, data):
        if self.request is None:
            self.began, self.idle = time.monotonic(), False
        result = super().received(data)
        if self.request is None:  # every request that came is whole
            self.began, self.idle = time.monotonic(), True
        return result

    def service(self):
        if self.requests and self.requests[0].error is not None:
            self.linger_wanted = True
        super().service()

    def handle_write(self):
        if not (self.linger_wanted and self.close_when_flushed):
            return super().handle_write()
        if self.requests:
            return  # the error task is finishing: its reply goes out at the loop's next turn
        # As waitress sends a last reply, but then shut only the write side and read on:
        # closing with the body unread would reset the connection and lose the reply.
        self._flush_exception(self._flush_some)
        if not self.will_close and not self.total_outbufs_len:
            self.close_when_flushed = False
            try:
                self.socket.shutdown(socket.SHUT_WR)
                self.lingering, self.began = True, time.monotonic()
            except OSError:
                self.will_close = True
        if self.will_close:
            self.handle_close()

    def handle_read(self):
        if not self.lingering:
            return super().handle_read()
        try:
            n = self.socket.recv_into(_SINK)
        except BlockingIOError:
            return
        except OSError:
            n = 0
        self.drained += n
        if n == 0 or self.drained > LINGER_BYTES:  # the client is done, or has sent too much
            self.handle_close()

    def del_channel(self, map=None):
        self.server.forget(self)
        super().del_channel(map)


class Server(TcpWSGIServer):
    """waitress's server, holding at most `max_connections` (and `max_connections_per_client`
    from one address) by closing the oldest waiting one, and closing slow ones at their
    timeouts."""

    channel_class = Channel

    def __init__(self, app, config: Config, max_connections: int, **kw):
        self.config, self.max_connections = config, max_connections
        self.open: set[Channel] = set()  # connections counted against the limits
        self.by_client: dict[str, set[Channel]] = defaultdict(set)
        self.closed: Counter[str] = Counter()  # connections closed by the rules below, since the last log line
        self.logged = 0.0
        super().__init__(app, **kw)

    def admit(self, channel: Channel):
        """Count a new connection in; over a limit, close the oldest connection waiting, of its
        client or of all (the new one only when every other is being answered)."""
        same = self.by_client[channel.addr[0]]
        same.add(channel)
        self.open.add(channel)
        if 0 < self.config.max_connections_per_client < len(same):
            self.evict(same, "over max_connections_per_client")
        elif len(self.open) > self.max_connections:
            self.evict(self.open, "over max_connections")

    def evict(self, pool: set[Channel], why: str):
        now = time.monotonic()
        waiting = [(key, channel) for channel in pool if (key := channel.eviction_key(now)) is not None]
        if waiting:
            min(waiting, key=lambda kc: kc[0])[1].close_soon()
            self.closed[why] += 1

    def forget(self, channel: Channel):
        self.open.discard(channel)
        same = self.by_client.get(channel.addr[0])
        if same is not None:
            same.discard(channel)
            if not same:
                del self.by_client[channel.addr[0]]

    def maintenance(self, now):
        super().maintenance(now)  # waitress's channel_timeout: idle connections
        clock = time.monotonic()
        for channel in list(self.active_channels.values()):
            if channel.will_close:
                channel.close_soon()  # also waitress's own, which may wait on a full send buffer
            elif (state := channel.overdue(clock)) is not None:
                channel.close_soon()
                self.closed[f"too slow ({state})"] += 1
        if self.closed and clock - self.logged > 60:  # a line a minute at most, under attack
            log.warning("closed connections: %s", ", ".join(f"{n} {why}" for why, n in self.closed.items()))
            self.closed.clear()
            self.logged = clock
