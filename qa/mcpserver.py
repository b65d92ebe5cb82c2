"""`qa mcp`: the documents as Model Context Protocol tools, over stdio, for an assistant
(Claude Desktop, Cursor, any MCP client) to call.

Four tools, each a thin layer over what the HTTP API does, so an assistant gets the
same answers and the same exact offsets:

* `ask`: the answer object (quoted sentences, citations with titles, dates, pages and
  offsets, abstention, confidence);
* `search`: the scored passages;
* `list_documents`: what can be cited;
* `read_document`: a document's stored text, or a range of it (a citation's `start` and
  `end` slice exactly the text it quotes).

A question or argument the product refuses becomes a tool error that says what was wrong
(the SDK validates types against the published schema before a tool runs). stdout
carries the protocol, so loading, which may print, writes to stderr.

The stdio transport is ours (`bounded_stdio`), not the SDK's, which drops what it cannot
parse without a word: here every line gets an answer or an error. A line over
`max_body_bytes` (the HTTP API's limit on a request) is read past, not kept, and refused
(-32600, with its id when the start of the line shows it); a line that is not UTF-8 JSON
is a parse error (-32700); JSON that is no JSON-RPC message is an invalid request
(-32600). Half a UTF-16 surrogate pair escaped in JSON ("\\ud800") reaches the tools,
which refuse it, and a reply that would echo one carries U+FFFD instead, since no client
could decode it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, BinaryIO

from pydantic import BaseModel, Field

from .config import Config
from .live import LiveQA
from .pipeline import QA
from .server_documents import summary
from .types import QAError

log = logging.getLogger(__name__)

# An assistant's context is small: a read returns at most this many characters and says
# where the next read starts.
READ_LIMIT = 20_000


class Turn(BaseModel):
    question: str
    answer: str


def create_mcp(config: Config, qa: QA | None = None):
    """The MCP server over `config.index_dir` (or a loaded `qa`); it picks up a new index
    that `qa ingest` commits, as `qa serve` does."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    from . import version

    if qa is None:
        with contextlib.redirect_stdout(sys.stderr):
            qa = QA.load(config)
    live = LiveQA(qa, config.index_check_seconds)
    server = MCPServer("qa", version=version(), instructions=(
        "Answers questions about a fixed set of documents with sentences quoted verbatim from them, each "
        "with a citation (doc_id, start, end) that slices the document's text exactly. When the documents "
        "do not hold the answer the answer object says abstained: true; do not answer from elsewhere then."))

    def refused(exc: QAError) -> ToolError:
        return ToolError(str(exc))

    @server.tool()
    def ask(question: Annotated[str, Field(description="the question, in plain words")],
            history: Annotated[list[Turn] | None, Field(
                description="earlier turns, oldest first, so that a follow-up ('When was it founded?') "
                            "is read in context")] = None,
            top_k: Annotated[int, Field(description="source passages returned with the answer (1-50)")] = 5,
            ) -> dict[str, Any]:
        """Answer a question with sentences quoted from the documents. Returns the answer object:
        `answer` (the quoted sentences with [n] markers), `sentences` (each with its citation number
        and `answer_span`, the offsets of the words that answer), `citations` (doc_id, title, date,
        page, start, end, text), `confidence`, and `abstained` with a `message` and the `closest`
        passages when the documents hold no answer."""
        try:
            return live.get().ask(question, [t.model_dump() for t in history or []], top_k).to_dict()
        except QAError as exc:
            raise refused(exc) from None

    @server.tool()
    def search(query: Annotated[str, Field(description="words to search for")],
               k: Annotated[int, Field(description="passages to return (1-50)")] = 5) -> dict[str, Any]:
        """The passages that best match a query, scored (dense and lexical), each with doc_id, start,
        end and text. Use `ask` for an answer; this shows what retrieval finds."""
        try:
            return {"query": query, "passages": [p.to_dict() for p in live.get().search(query, k)]}
        except QAError as exc:
            raise refused(exc) from None

    @server.tool()
    def list_documents() -> dict[str, Any]:
        """Every document that answers can cite: doc_id, title, date, source file, length in characters
        and pages."""
        return {"documents": [summary(d, chars) for d, chars in live.get().index.listing()]}

    @server.tool()
    def read_document(doc_id: Annotated[str, Field(description="a doc_id from list_documents or a citation")],
                      start: Annotated[int, Field(description="first character (0-based)", ge=0)] = 0,
                      end: Annotated[int | None, Field(description="character after the last; default: the end, "
                                                                    f"at most {READ_LIMIT:,} characters on")] = None,
                      ) -> dict[str, Any]:
        """A document's stored text from `start` to `end`: the text citations slice, so a citation's
        start and end give exactly its quoted sentence. Long documents come in parts: `next_start` says
        where the next part begins (null at the end)."""
        store = live.get().index
        doc = store.find(doc_id)
        if doc is None:
            raise ToolError(f"No document has the id {doc_id!r}. list_documents lists them.")
        text = store.document_text(doc_id)
        length = len(text)
        end = length if end is None else end
        if not start <= end <= length:
            raise ToolError(f"start and end must satisfy 0 <= start <= end <= {length} (the document's length); "
                            f"got start {start}, end {end}.")
        end = min(end, start + READ_LIMIT)
        return {**summary(doc, length), "start": start, "end": end, "text": text[start:end],
                "next_start": end if end < length else None,
                "page_starts": list(doc.pages)}

    return server


def run_stdio(config: Config) -> None:
    import anyio

    server = create_mcp(config)
    anyio.run(serve_stdio, server, config)


async def serve_stdio(server, config: Config) -> None:
    """`MCPServer.run_stdio_async` with our transport in place of the SDK's `stdio_server`."""
    lowlevel = server._lowlevel_server  # the SDK's own stdio runner does just this with it
    async with bounded_stdio(config) as (read_stream, write_stream):
        await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())


# --- The stdio transport ------------------------------------------------------------------

@dataclass(frozen=True)
class _TooLong:
    """A line over the limit, read past: its first bytes, its last bytes, its size."""
    head: bytes
    tail: bytes
    size: int


_SKIP_BYTES = 64 * 1024  # a line over the limit is read past in pieces of this size
_ID = rb'"id"\s*:\s*(-?\d{1,19}|"(?:[^"\\\r\n]|\\.){0,200}")'
# The id of a line too long to parse: before its "params" (where clients write it), or as the
# last member of the message, after its params.
_HEAD_ID = re.compile(rb'^\s*\{(?:[^{}\[\]]*?,)?\s*' + _ID)
_TAIL_ID = re.compile(rb'[}\]]\s*,\s*' + _ID + rb'\s*(?:,[^{}\[\]]*)?\}\s*$')


def _read_line(wire: BinaryIO, limit: int) -> bytes | _TooLong | None:
    """The next line (None at the end of input); one over `limit` bytes is read to its end
    but not kept."""
    line = wire.readline(limit + 1)
    if not line:
        return None
    if len(line) <= limit or line.endswith(b"\n"):
        return line
    head, tail, size = line, b"", len(line)
    while True:
        piece = wire.readline(_SKIP_BYTES)
        size += len(piece)
        tail = (tail + piece)[-4096:]
        if not piece or piece.endswith(b"\n"):
            return _TooLong(head[:4096], tail, size - (1 if piece.endswith(b"\n") else 0))


def _guess_id(head: bytes, tail: bytes = b"") -> int | str | None:
    for pattern, text in ((_HEAD_ID, head), (_TAIL_ID, tail)):
        if match := pattern.search(text):
            try:
                found = json.loads(match.group(1))
            except ValueError:
                continue
            if isinstance(found, int | str):
                return found
    return None


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _error(code: int, message: str, request_id: int | str | None):
    import mcp_types as types

    return types.JSONRPCError(jsonrpc="2.0", id=request_id, error=types.ErrorData(code=code, message=message))


def decode_line(line: bytes | _TooLong, config: Config):
    """(the message, None) for a JSON-RPC message; (None, the error to send back) for a
    line that is not one; (None, None) for a blank line."""
    import mcp_types as types
    from pydantic import ValidationError

    if isinstance(line, _TooLong):
        return None, _error(types.INVALID_REQUEST, (
            f"The request is {line.size:,} bytes; the limit is {config.max_body_bytes:,} bytes (max_body_bytes, as "
            f"for the HTTP API). A question may have at most {config.max_question_chars:,} characters "
            f"(max_question_chars) and a history at most {config.max_history_turns} turns (max_history_turns)."),
            _guess_id(line.head, line.tail))
    line = line.strip()
    if not line:
        return None, None
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, _error(types.PARSE_ERROR, f"Parse error: the line is not UTF-8 (byte {exc.start} is "
                                               f"{line[exc.start]:#04x}). Send JSON-RPC messages as UTF-8 JSON, "
                                               "one a line.", _guess_id(line))
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        return None, _error(types.PARSE_ERROR, f"Parse error: the line is not JSON ({reason}). Send one JSON-RPC "
                                               "message a line.", None)
    if isinstance(data, list):
        return None, _error(types.INVALID_REQUEST, "A batch (a JSON array) is not taken: send one JSON-RPC message "
                                                   "a line.", None)
    try:
        return types.jsonrpc_message_adapter.validate_python(data, by_name=False), None
    except ValidationError:
        # The id of a request is known; a malformed response's id is the server's own, so not echoed.
        request_id = data.get("id") if isinstance(data, dict) and "method" in data else None
        request_id = request_id if isinstance(request_id, int | str) and not isinstance(request_id, bool) else None
        return None, _error(types.INVALID_REQUEST, (
            'Invalid request: the line is JSON but not a JSON-RPC 2.0 message (a request needs "jsonrpc": "2.0", '
            'an "id" and a "method" string, with "params" an object if given).'), request_id)


def _mend(value):
    """`value` with each half of a UTF-16 surrogate pair in its strings made U+FFFD."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {_mend(k): _mend(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mend(v) for v in value]
    return value


def encode_message(message) -> bytes:
    """One line of JSON for `message`, which a client can always decode."""
    try:
        text = message.model_dump_json(by_alias=True, exclude_unset=True)
    except Exception:  # a lone surrogate echoed back (an unknown tool's name, say): UTF-8 cannot carry it
        text = json.dumps(_mend(message.model_dump(mode="json", by_alias=True, exclude_unset=True)),
                          ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8") + b"\n"


@contextlib.contextmanager
def _wire() -> Iterator[tuple[BinaryIO, BinaryIO]]:
    """The protocol's own copies of stdin and stdout, as the SDK's transport keeps them: while
    serving, fd 0 reads /dev/null and fd 1 writes to stderr, so that nothing else (a library's
    print, a child process) reads or writes the protocol's lines. Both are put back after."""
    try:
        wire_in, wire_out = os.dup(0), os.dup(1)
    except OSError:
        yield sys.stdin.buffer, sys.stdout.buffer
        return
    sys.stdout.flush()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    try:
        # Never closed: a reader thread may still wait on the descriptor when serving ends.
        yield os.fdopen(wire_in, "rb", closefd=False), os.fdopen(wire_out, "wb", closefd=False)
    finally:
        os.dup2(wire_in, 0)
        os.dup2(wire_out, 1)


@contextlib.asynccontextmanager
async def bounded_stdio(config: Config, wire: tuple[BinaryIO, BinaryIO] | None = None) -> AsyncIterator[tuple]:
    """The SDK's (read stream, write stream) pair over stdin and stdout, one JSON-RPC
    message a line, each line at most `config.max_body_bytes` bytes; a line that is no
    message is answered here with the error that says why."""
    import anyio
    from mcp.shared.message import SessionMessage

    with contextlib.ExitStack() as stack:
        wire_in, wire_out = wire or stack.enter_context(_wire())
        to_server, read_stream = anyio.create_memory_object_stream(0)
        write_stream, to_client = anyio.create_memory_object_stream(0)
        refusals = write_stream.clone()

        async def read() -> None:
            async with to_server, refusals:
                while (line := await anyio.to_thread.run_sync(_read_line, wire_in, config.max_body_bytes,
                                                              abandon_on_cancel=True)) is not None:
                    message, error = decode_line(line, config)
                    if message is not None:
                        await to_server.send(SessionMessage(message))
                    elif error is not None:
                        log.warning("refused a line: %s", error.error.message)
                        await refusals.send(SessionMessage(error))

        def put(data: bytes) -> None:
            wire_out.write(data)
            wire_out.flush()

        async def write() -> None:
            async with to_client:
                async for session_message in to_client:
                    await anyio.to_thread.run_sync(put, encode_message(session_message.message))

        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            tg.start_soon(write)
            yield read_stream, write_stream
