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
