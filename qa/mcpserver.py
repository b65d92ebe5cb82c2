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
"""

from __future__ import annotations

import contextlib
import sys
from typing import Annotated, Any

from pydantic import BaseModel, Field

from .config import Config
from .pipeline import QA
from .live import LiveQA
from .server import summary
from .types import QAError

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
    create_mcp(config).run("stdio")
