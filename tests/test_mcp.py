"""`qa mcp` as an assistant meets it: started over stdio by the official MCP SDK's own client,
from another folder, on the default corpus's index."""

from __future__ import annotations

import asyncio
import sys

import pytest

TOOLS = {"ask", "search", "list_documents", "read_document"}
QUESTION = "How many founding partners does Liverpool Health Partners have?"


async def _session(index_dir: str, cwd: str) -> dict:
    """One client session: everything the tests below look at, asked in order."""
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    params = StdioServerParameters(command=sys.executable, args=["-m", "qa", "mcp", "--index", index_dir], cwd=cwd)
    seen: dict = {}
    async with Client(params, read_timeout_seconds=120) as client:
        seen["tools"] = {t.name: t for t in (await client.list_tools()).tools}
        seen["answer"] = await client.call_tool("ask", {"question": QUESTION})
        answer = seen["answer"].structured_content
        seen["reads"] = [await client.call_tool("read_document", {"doc_id": c["doc_id"], "start": c["start"],
                                                                  "end": c["end"]}) for c in answer["citations"]]
        seen["follow_up"] = await client.call_tool("ask", {
            "question": "Who is its chair?", "history": [{"question": QUESTION, "answer": answer["answer"]}]})
        seen["refused"] = await client.call_tool("ask", {"question": "What is the boiling point of liquid nitrogen?"})
        seen["search"] = await client.call_tool("search", {"query": "founding partners", "k": 3})
        seen["documents"] = await client.call_tool("list_documents", {})
        seen["whole"] = await client.call_tool("read_document", {"doc_id": answer["citations"][0]["doc_id"]})
        seen["errors"] = {name: await client.call_tool(tool, args) for name, tool, args in [
            ("question not text", "ask", {"question": 5}),
            ("empty question", "ask", {"question": "  "}),
            ("control characters only", "ask", {"question": "\x00\x00\x07\x1b"}),
            ("top_k out of range", "ask", {"question": QUESTION, "top_k": 0}),
            ("unknown document", "read_document", {"doc_id": "no/such/doc"}),
            ("range backwards", "read_document", {"doc_id": answer["citations"][0]["doc_id"], "start": 50, "end": 10}),
            ("negative start", "read_document", {"doc_id": answer["citations"][0]["doc_id"], "start": -1}),
        ]}
    return seen


@pytest.fixture(scope="module")
def session(qa, tmp_path_factory) -> dict:
    return asyncio.run(_session(qa.config.index_dir, str(tmp_path_factory.mktemp("elsewhere"))))


def test_the_four_tools_are_listed_with_their_schemas(session):
    tools = session["tools"]
    assert set(tools) == TOOLS
    assert tools["ask"].input_schema["required"] == ["question"]
    assert {"question", "history", "top_k"} <= set(tools["ask"].input_schema["properties"])
    assert tools["read_document"].input_schema["properties"]["start"]["minimum"] == 0
    assert all(t.description for t in tools.values())


def test_a_question_is_answered_with_citations_that_slice_the_stored_text(session, qa):
    result = session["answer"]
    answer = result.structured_content
    assert not result.is_error and not answer["abstained"]
    assert "nine" in answer["sentences"][0]["text"]
    for citation, read in zip(answer["citations"], session["reads"], strict=True):
        stored = qa.index.documents[citation["doc_id"]].text
        assert citation["text"] == stored[citation["start"]:citation["end"]] == read.structured_content["text"]
        assert citation["title"]
    span = answer["sentences"][0]["answer_span"]
    assert stored[span[0]:span[1]] == "nine"
    from qa.types import DOUBT

    assert answer["doubt"] == DOUBT[answer["assurance"]]  # the band in the words every face shows


def test_a_follow_up_reads_the_history_and_an_unanswerable_question_is_refused(session):
    follow_up = session["follow_up"].structured_content
    assert "Liverpool Health Partners" in follow_up["query"]
    refused = session["refused"].structured_content
    assert refused["abstained"] and refused["answer"] == "" and refused["message"]


def test_search_list_and_read_whole_documents(session, qa):
    passages = session["search"].structured_content["passages"]
    assert len(passages) == 3 and all(p["text"] for p in passages)
    listed = session["documents"].structured_content["documents"]
    assert {d["doc_id"] for d in listed} == set(qa.index.documents)
    whole = session["whole"].structured_content
    assert whole["text"] == qa.index.documents[whole["doc_id"]].text[:20_000] and whole["start"] == 0


def test_bad_arguments_are_tool_errors_that_say_what_was_wrong(session):
    errors = {name: (r.is_error, r.content[0].text) for name, r in session["errors"].items()}
    assert all(is_error for is_error, _ in errors.values()), errors
    assert "valid string" in errors["question not text"][1]
    assert "question is empty" in errors["empty question"][1]
    assert "top_k must be a whole number from 1 to 50" in errors["top_k out of range"][1]
    assert "list_documents lists them" in errors["unknown document"][1]
    assert "0 <= start <= end" in errors["range backwards"][1]
    assert "greater than or equal to 0" in errors["negative start"][1]


# --- A hostile client on the raw wire (issue 41): every request line gets an answer or an error,
# within seconds, and the session goes on. The SDK's client cannot send these lines, so they are
# written to a real `qa mcp`'s stdin by hand.

REPLY_SECONDS = 10


class RawSession:
    """`qa mcp` as a subprocess spoken to one JSON line at a time."""

    def __init__(self, index_dir: str, cwd: str):
        import queue
        import subprocess
        import threading

        self.proc = subprocess.Popen([sys.executable, "-m", "qa", "mcp", "--index", index_dir], cwd=cwd,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.replies: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.next_id = 100

    def _read(self) -> None:
        import json

        for line in self.proc.stdout:
            self.replies.put(json.loads(line))

    def send(self, line: bytes) -> None:
        """Write one line; a server that stops reading fails the test rather than hanging it."""
        import threading

        def write():
            self.proc.stdin.write(line + b"\n")
            self.proc.stdin.flush()

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        writer.join(REPLY_SECONDS)
        assert not writer.is_alive(), "qa mcp stopped reading its stdin"

    def reply(self, request_id, timeout: float = REPLY_SECONDS) -> dict:
        """The reply with this id (notifications and log messages skipped)."""
        import queue
        import time

        deadline = time.monotonic() + timeout
        while True:
            try:
                message = self.replies.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no reply to request {request_id!r} within {timeout} s") from None
            if "method" not in message and message.get("id") == request_id:
                return message

    def request(self, method: str, params: dict | None = None, timeout: float = REPLY_SECONDS) -> dict:
        import json

        self.next_id += 1
        message = {"jsonrpc": "2.0", "id": self.next_id, "method": method, **({"params": params} if params else {})}
        self.send(json.dumps(message).encode())
        return self.reply(self.next_id, timeout)

    def call(self, tool: str, arguments: dict) -> dict:
        return self.request("tools/call", {"name": tool, "arguments": arguments})

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except Exception:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def raw(qa, tmp_path_factory):
    session = RawSession(qa.config.index_dir, str(tmp_path_factory.mktemp("raw")))
    try:
        reply = session.request("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                               "clientInfo": {"name": "hostile", "version": "0"}}, timeout=120)
        assert "result" in reply, reply
        session.send(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}')
        yield session
    finally:
        session.close()


def still_answers(raw: RawSession) -> None:
    """A normal question, after whatever came before it, is answered."""
    result = raw.call("ask", {"question": QUESTION})["result"]
    assert not result.get("isError") and "nine" in result["structuredContent"]["answer"]


def tool_error(reply: dict) -> str:
    """The message of a tool error or a JSON-RPC error (either says what was wrong)."""
    if "error" in reply:
        return reply["error"]["message"]
    assert reply["result"]["isError"], reply
    return reply["result"]["content"][0]["text"]


@pytest.mark.parametrize("line, words", [
    (rb'{"name": "ask", "arguments": {"question": "Who chairs \ud800 the partnership?"}}', "broken character"),
    (rb'{"name": "ask", "arguments": {"question": "Who chairs it?", "history": '
     rb'[{"question": "What is LAHP\udfff?", "answer": "x"}]}}', "broken character"),
    (rb'{"name": "search", "arguments": {"query": "\udc00 partners"}}', "broken character"),
    (rb'{"name": "read_document", "arguments": {"doc_id": "\ud83d"}}', "No document has the id"),
    (rb'{"name": "ask\ud800", "arguments": {}}', "ask"),
], ids=["question", "history", "search query", "document id", "tool name"])
def test_a_lone_surrogate_in_a_tool_call_gets_an_error_reply_and_the_session_goes_on(raw, line, words):
    raw.next_id += 1
    raw.send(b'{"jsonrpc": "2.0", "id": %d, "method": "tools/call", "params": %s}' % (raw.next_id, line))
    message = tool_error(raw.reply(raw.next_id))
    assert words in message, message
    assert "\ud800" not in message and all(not "\ud800" <= c <= "\udfff" for c in message)
    still_answers(raw)


@pytest.mark.parametrize("line", [b"this is not json", b'{"jsonrpc": "2.0", "id": 7, "method": "tools/call"',
                                  b"\xff\xfe not UTF-8", b"[" * 10_000],
                         ids=["words", "cut short", "not UTF-8", "nested too deep"])
def test_a_garbage_line_gets_a_parse_error_and_the_session_goes_on(raw, line):
    raw.send(line)
    reply = raw.reply(None)
    assert reply["error"]["code"] == -32700 and reply["error"]["message"], reply
    still_answers(raw)


def test_a_line_that_is_json_but_not_a_request_gets_an_invalid_request_error(raw):
    raw.send(b'{"jsonrpc": "2.0", "id": 8, "method": 5}')
    reply = raw.reply(8)
    assert reply["error"]["code"] == -32600, reply
    still_answers(raw)


@pytest.mark.parametrize("arguments", [
    {"question": "Who chairs it?", "history": [{"question": QUESTION, "answer": "x" * 2_000_000}]},
    {"question": "Who " + "chairs " * 300_000 + "it?"},
], ids=["history", "question"])
def test_a_two_megabyte_argument_gets_an_error_that_states_the_limit(raw, arguments):
    from qa.config import Config

    reply = raw.call("ask", arguments)
    assert f"{Config().max_body_bytes:,} bytes" in tool_error(reply), reply
    still_answers(raw)


def test_a_question_of_control_characters_only_is_refused_as_empty(session):
    result = session["errors"]["control characters only"]
    assert result.is_error and "question is empty" in result.content[0].text
