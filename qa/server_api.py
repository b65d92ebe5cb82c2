"""The JSON API: asking, searching, example questions, health and the API's own description."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, jsonify

from .server_shared import json_body, state

OPENAPI = Path(__file__).resolve().parent / "openapi.json"

api = Blueprint("api", __name__, url_prefix="/api")


@api.post("/ask")
def ask():
    body = json_body(("question", "history", "top_k"))
    answer = state().live.get().ask(body.get("question"), body.get("history"), body.get("top_k"))
    response = jsonify(answer.to_dict())
    response.headers["Server-Timing"] = ", ".join(f"{stage};dur={ms:.2f}" for stage, ms in answer.timings.items())
    return response


@api.post("/search")
def search():
    body = json_body(("query", "k"))
    passages = state().live.get().search(body.get("query"), body.get("k", 5))
    return jsonify({"query": body.get("query"), "passages": [p.to_dict() for p in passages]})


@api.get("/examples")
def example_questions():
    return jsonify({"examples": state().examples.get()})


@api.get("/health")
def health():
    served = state()
    if served.draining:
        return jsonify({"status": "stopping"}), 503
    qa, config = served.live.get(), served.config
    m = qa.index.manifest
    return jsonify({"status": "ok", **m.get("counts", {}), "model": m["model"]["id"], "reader": qa.reader.model_id,
                    "index_version": qa.index_version,
                    "built_at": m.get("built_at"), "format_version": m.get("format_version"),
                    # What a client must keep to: the page reads them rather than guessing.
                    "limits": {"max_history_turns": config.max_history_turns,
                               "max_question_chars": config.max_question_chars}})


@api.get("/openapi.json")
def openapi():
    return Response(OPENAPI.read_text(encoding="utf-8"), mimetype="application/json")
