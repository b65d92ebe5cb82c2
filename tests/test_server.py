"""Every API endpoint and error status, through Flask's test client on the real pipeline."""

import json
import urllib.request

import pytest

from qa.server import create_app


@pytest.fixture(scope="module")
def client(qa, corpus_config):
    app = create_app(corpus_config, qa)

    @app.get("/api/boom")  # a route that fails, to see what a bug looks like from outside
    def boom():
        raise RuntimeError("secret internal detail")

    return app.test_client()


def error_of(response, status):
    assert response.status_code == status
    assert response.is_json, response.data[:200]
    err = response.get_json()["error"]
    assert err["code"] and err["message"]
    return err


def test_ask_returns_the_answer_object(client, qa):
    r = client.post("/api/ask", json={"question": "How many founding partners does Liverpool Health Partners have?"})
    assert r.status_code == 200
    a = r.get_json()
    assert "nine" in a["sentences"][0]["text"] and not a["abstained"]
    assert a["query"] == a["question"]
    for c in a["citations"]:
        doc = client.get(f"/api/documents/{c['doc_id']}").get_json()
        assert doc["text"][c["start"]:c["end"]] == c["text"]


def test_an_abstention_says_what_was_searched_and_shows_the_closest_passages(client):
    a = client.post("/api/ask", json={"question": "What is the annual budget of Liverpool Health Partners?"}).get_json()
    assert a["abstained"] and a["query"] and a["sentences"] == [] and a["citations"] == []
    assert 1 <= len(a["closest"]) <= 3 and [c["id"] for c in a["closest"]] == list(range(1, len(a["closest"]) + 1))
    for c in a["closest"]:
        doc = client.get(f"/api/documents/{c['doc_id']}").get_json()
        assert doc["text"][c["start"]:c["end"]] == c["text"] and c["title"] == doc["title"]
    question = "Who chairs the Leeds Academic Health Partnership?"
    answered = client.post("/api/ask", json={"question": question}).get_json()
    assert not answered["abstained"] and answered["closest"] == []


def test_follow_up_uses_history(client):
    first = client.post("/api/ask", json={"question": "Who chairs the Leeds Academic Health Partnership?"}).get_json()
    assert any("Alan Langlands" in s["text"] or "Phil Wood" in s["text"] for s in first["sentences"])
    r = client.post("/api/ask", json={
        "question": "When was its business case endorsed?",
        "history": [{"question": first["question"], "answer": first["answer"]}],
    })
    a = r.get_json()
    assert "20 April" in a["sentences"][0]["text"]
    assert "Leeds Academic Health Partnership" in a["query"] and a["query"] != a["question"]


def test_top_k_is_honoured(client):
    r = client.post("/api/ask", json={"question": "What is the LSP?", "top_k": 1})
    assert r.status_code == 200


def test_search(client):
    r = client.post("/api/search", json={"query": "precision medicine catapult", "k": 3})
    body = r.get_json()
    assert r.status_code == 200 and len(body["passages"]) == 3
    p = body["passages"][0]
    assert p["doc_id"] == "002_ef368537357c7e56" and {"start", "end", "text", "score"} <= set(p)
    # A misspelt query finds what the right spelling finds (unmended, the second and third differ).
    ids = [[p["chunk_id"] for p in client.post("/api/search", json={"query": q, "k": 3}).get_json()["passages"]]
           for q in ("how many staff do members employ", "how many staff do members emlpoy")]
    assert ids[0] == ids[1]


def test_documents_and_health(client):
    docs = client.get("/api/documents").get_json()["documents"]
    assert len(docs) == 5 and {"doc_id", "title", "date"} <= set(docs[0])
    dated = {d["doc_id"]: d["date"] for d in docs}
    assert dated["004_ce580bb8f3b02914"] == "2024-01-20"
    one = client.get("/api/documents/004_ce580bb8f3b02914").get_json()
    assert one["text"].startswith(" date 2024-01-20") and one["masked"]
    error_of(client.get("/api/documents/nope"), 404)
    health = client.get("/api/health").get_json()
    assert health["status"] == "ok" and health["documents"] == 5 and health["chunks"] > 0
    assert health["model"] == "all-MiniLM-L6-v2" and health["built_at"]


def test_openapi_document_lists_every_route(client):
    spec = client.get("/api/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert {"/api/ask", "/api/search", "/api/documents", "/api/documents/{doc_id}", "/api/health",
            "/v1/chat/completions"} <= set(spec["paths"])


def test_chat_page_and_assets(client):
    page = client.get("/")
    assert page.status_code == 200 and b"<textarea" in page.data
    assert client.get("/web/app.js").status_code == 200


@pytest.mark.parametrize("body, fragment", [
    ({}, "empty"),
    ({"question": ""}, "empty"),
    ({"question": "   "}, "empty"),
    ({"question": 42}, "empty"),
    ({"question": ["a"]}, "empty"),
    ({"question": "x" * 1001}, "limit"),
    ({"question": "ok?", "history": "not a list"}, "history"),
    ({"question": "ok?", "history": [{"question": "q"}] * 11}, "limit"),
    ({"question": "ok?", "top_k": 0}, "top_k"),
    ({"question": "ok?", "top_k": "5"}, "top_k"),
])
def test_bad_questions_are_400(client, body, fragment):
    err = error_of(client.post("/api/ask", json=body), 400)
    assert fragment in err["message"]


def test_malformed_and_wrong_type_bodies(client):
    err = error_of(client.post("/api/ask", data="{not json", content_type="application/json"), 400)
    assert err["code"] == "malformed_json"
    error_of(client.post("/api/ask", data=json.dumps([1, 2]), content_type="application/json"), 400)
    err = error_of(client.post("/api/ask", data="question=hi", content_type="application/x-www-form-urlencoded"), 415)
    assert "Content-Type" in err["message"]
    error_of(client.post("/api/search", json={"query": ""}), 400)


def test_too_large_wrong_method_unknown_route_and_crash(client, corpus_config):
    big = json.dumps({"question": "x" * (corpus_config.max_body_bytes + 10)})
    error_of(client.post("/api/ask", data=big, content_type="application/json"), 413)
    error_of(client.get("/api/ask"), 405)
    error_of(client.delete("/api/documents"), 405)
    error_of(client.get("/api/nothing-here"), 404)
    err = error_of(client.get("/api/boom"), 500)
    assert "secret" not in err["message"] and "Traceback" not in err["message"]


def test_chat_completions_non_streaming(client):
    r = client.post("/v1/chat/completions", json={"model": "qa", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Who chairs the Leeds Academic Health Partnership?"},
        {"role": "assistant", "content": "Sir Alan Langlands [1]"},
        {"role": "user", "content": [{"type": "text", "text": "When was its business case endorsed?"}]},
    ]})
    body = r.get_json()
    assert r.status_code == 200 and body["object"] == "chat.completion"
    content = body["choices"][0]["message"]["content"]
    assert "20 April" in content and "[1]" in content
    assert body["citations"][0]["doc_id"] == "002_ef368537357c7e56"
    # The text a person reads names sources by title and date, not by id and offsets;
    # the structured citations keep those.
    first = body["citations"][0]
    assert f"[1] {first['title']}" in content and first["doc_id"] not in content and "characters" not in content
    assert body["answer"]["query"] != body["answer"]["question"]


def test_chat_completions_streaming(client):
    r = client.post("/v1/chat/completions", json={"stream": True, "messages": [
        {"role": "user", "content": "How many jobs will the Investment Zone support?"}]})
    assert r.status_code == 200 and r.mimetype == "text/event-stream"
    events = [line[6:] for line in r.get_data(as_text=True).split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert "2,500" in text and chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["citations"][0]["doc_id"] == "004_ce580bb8f3b02914"


@pytest.mark.parametrize("messages", [None, [], [{"role": "user"}], [{"role": "assistant", "content": "hi"}],
                                      [{"role": "robot", "content": "hi"}], [{"role": "user", "content": 5}],
                                      # found by the fuzz test: roles that cannot be looked up in a set
                                      [{"role": ["user"], "content": "hi"}], [{"role": {}, "content": "hi"}],
                                      [{"role": "user", "content": [{"type": "text", "text": 5}]}]])
def test_chat_completions_bad_messages_are_400(client, messages):
    error_of(client.post("/v1/chat/completions", json={"messages": messages}), 400)


def test_a_long_chat_keeps_its_latest_turns_instead_of_failing(client):
    # A standard chat client resends the whole conversation; from its 12th question it
    # had more earlier turns than max_history_turns, and every question failed.
    messages = []
    for n in range(14):
        messages += [{"role": "user", "content": f"Question number {n} about the partnership?"},
                     {"role": "assistant", "content": "An answer."}]
    messages += [{"role": "user", "content": "Who chairs the Leeds Academic Health Partnership?"}]
    r = client.post("/v1/chat/completions", json={"messages": messages})
    assert r.status_code == 200 and r.get_json()["choices"][0]["message"]["content"]


@pytest.mark.parametrize("model", ["gpt-4o", "", 5])
def test_chat_completions_with_a_model_it_does_not_have_is_openais_404(client, model):
    messages = [{"role": "user", "content": "Who chairs LAHP?"}]
    r = client.post("/v1/chat/completions", json={"model": model, "messages": messages})
    err = error_of(r, 404)
    assert err["code"] == "model_not_found" and err["param"] == "model" and "'qa'" in err["message"]


def test_the_favicon_is_served(client):
    r = client.get("/favicon.ico")
    assert r.status_code == 200 and r.mimetype == "image/svg+xml" and b"<svg" in r.data


def test_chat_completions_stream_must_be_a_boolean(client):
    err = error_of(client.post("/v1/chat/completions", json={"stream": [True], "messages": [
        {"role": "user", "content": "Who chairs LAHP?"}]}), 400)
    assert "stream" in err["message"]


def test_hostile_bodies_get_clear_400s(client):
    err = error_of(client.post("/api/ask", data="[" * 5000 + "]" * 5000, content_type="application/json"), 400)
    assert "nests too deeply" in err["message"]
    error_of(client.post("/api/ask", data=b'{"question": "\xff\xfe?"}', content_type="application/json"), 400)
    err = error_of(client.post("/api/ask", json={"question": "Who chairs LAHP?", "topk": 3}), 400)
    assert err["code"] == "unknown_field" and "'topk'" in err["message"] and "top_k" in err["message"]
    error_of(client.post("/api/search", json={"query": "LAHP", "limit": 3}), 400)
    error_of(client.post("/api/ask", json={"question": "x" * 100_000}), 413)  # over max_body_bytes
    error_of(client.post("/api/ask", json={"question": "x" * 60_000}), 400)  # over max_question_chars
    r = client.post("/api/ask", json={"question": "Who chairs\x00 the LAHP?\x07\u202e"})
    assert r.status_code == 200 and r.get_json()["question"]


def test_every_response_carries_the_security_headers(client):
    for response in (client.get("/"), client.get("/web/app.js"), client.get("/api/health"),
                     client.get("/api/nothing-here"), client.post("/api/ask", json={"question": "What is LHP?"})):
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_chunked_8mb_body_is_cut_off_by_the_server(live_server):
    import http.client
    from urllib.parse import urlparse

    url = urlparse(live_server)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    chunk = b"x" * 65536

    def body():
        yield b'{"question": "'
        for _ in range(8 * 16):  # 8 MB
            yield chunk
        yield b'"}'

    try:
        conn.request("POST", "/api/ask", body=body(), headers={"Content-Type": "application/json"},
                     encode_chunked=True)
        response = conn.getresponse()
        assert response.status in (400, 413)
    except (ConnectionResetError, BrokenPipeError):
        pass  # the server closed the connection on the oversized upload: also a refusal
    finally:
        conn.close()
    with urllib.request.urlopen(f"{live_server}/api/health", timeout=10) as r:  # and it still serves
        assert json.load(r)["status"] == "ok"


def test_document_ids_and_asset_paths_cannot_escape(client):
    for path in ("/api/documents/../manifest.json", "/api/documents/..%2Fmanifest.json",
                 "/api/documents/%2Fetc%2Fpasswd", "/api/documents//etc/passwd",
                 "/api/documents/%2e%2e%2f%2e%2e%2fREADME.md",
                 "/web/../qa/config.py", "/web/..%2Fqa%2Fconfig.py", "/web/%2e%2e/README.md", "/web//etc/passwd"):
        error_of(client.get(path), 404)


def test_a_flood_from_one_address_gets_json_429s_and_others_are_served(qa, corpus_config):
    import dataclasses

    app = create_app(dataclasses.replace(corpus_config, rate_limit_per_minute=3), qa)
    flood, other = app.test_client(), app.test_client()
    flood.environ_base["REMOTE_ADDR"], other.environ_base["REMOTE_ADDR"] = "10.0.0.1", "10.0.0.2"
    for _ in range(3):
        assert flood.post("/api/search", json={"query": "LHP"}).status_code == 200
    r = flood.post("/api/ask", json={"question": "What is LHP?"})
    err = error_of(r, 429)
    assert err["code"] == "rate_limited" and "3 a minute" in err["message"] and int(r.headers["Retry-After"]) >= 1
    assert flood.get("/api/health").status_code == 200  # reads are not counted
    assert other.post("/api/search", json={"query": "LHP"}).status_code == 200


def test_the_rate_limit_refills_evenly(monkeypatch):
    from qa import server_shared

    now = [1000.0]
    monkeypatch.setattr(server_shared.time, "monotonic", lambda: now[0])
    limiter = server_shared.RateLimiter(per_minute=60)  # one a second, bursts of 60
    assert all(limiter.wait_seconds("a") == 0 for _ in range(60))
    assert limiter.wait_seconds("a") == pytest.approx(1.0)
    now[0] += 1.0
    assert limiter.wait_seconds("a") == 0 and limiter.wait_seconds("a") > 0
