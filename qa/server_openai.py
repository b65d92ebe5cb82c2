"""The OpenAI-compatible chat endpoint (/v1/…): the official `openai` client, or any chat
client, asks through it; the answer is the quoted text, with the answer object beside it."""

from __future__ import annotations

import json
import re
import time
import uuid

from flask import Blueprint, Response, jsonify

from .answer import render_text
from .server_shared import ApiError, json_body, state
from .types import Answer, BadQuestion

CHAT_ROLES = frozenset({"system", "user", "assistant", "developer", "tool"})

openai = Blueprint("openai", __name__, url_prefix="/v1")


@openai.get("/models")
def models():
    return jsonify({"object": "list", "data": [{"id": "qa", "object": "model", "owned_by": "qa", "created": 0}]})


@openai.post("/chat/completions")
def chat_completions():
    body = json_body()
    if body.get("model", "qa") != "qa":  # as OpenAI answers a model it does not have
        raise ApiError(404, f"The model {body['model']!r} does not exist here: the only model is 'qa' "
                            "(GET /v1/models).", "model_not_found", {"type": "invalid_request_error", "param": "model"})
    question, history = chat_turns(body.get("messages"))
    if not isinstance(body.get("stream", False), bool):
        raise BadQuestion("stream must be true or false.")
    # A chat client sends the whole conversation: the latest turns are what a follow-up
    # can refer to, as the page keeps them.
    served = state()
    turns = served.config.max_history_turns
    answer = served.live.get().ask(question, history[-turns:] if turns else [])
    reply = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": "qa"}
    if body.get("stream"):
        return Response(stream_chat(reply, answer), mimetype="text/event-stream", headers={"Cache-Control": "no-cache"})
    message = {"role": "assistant", "content": render_text(answer, ids=False)}
    words = len(message["content"].split())
    return jsonify({**reply, "object": "chat.completion",
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": len(question.split()), "completion_tokens": words,
                              "total_tokens": len(question.split()) + words},
                    **structured(answer)})


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
