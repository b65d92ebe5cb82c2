"""The official openai client, pointed at `qa serve` on loopback."""

import pytest

# openai is imported where it is used: at the top, every xdist worker paid its second of
# import at collection, whichever worker ran these tests.


def client(base):
    from openai import OpenAI

    return OpenAI(base_url=f"{base}/v1", api_key="not-needed-locally", timeout=60, max_retries=0)


def test_openai_client_non_streaming(live_server):
    reply = client(live_server).chat.completions.create(
        model="qa",
        messages=[{"role": "user", "content": "How many founding partners does Liverpool Health Partners have?"}],
    )
    content = reply.choices[0].message.content
    assert "nine founding partners" in content and "[1]" in content
    citations = reply.model_extra["citations"]
    assert citations[0]["doc_id"] == "000_203956cee7abdc96"
    assert citations[0]["text"] in content


def test_an_unknown_model_is_the_clients_not_found_error(live_server):
    from openai import NotFoundError

    with pytest.raises(NotFoundError, match="does not exist here"):
        client(live_server).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Who chairs LAHP?"}])


def test_openai_client_streaming_with_history(live_server):
    stream = client(live_server).chat.completions.create(
        model="qa",
        stream=True,
        messages=[
            {"role": "user", "content": "Who chairs the Leeds Academic Health Partnership?"},
            {"role": "assistant", "content": "Sir Alan Langlands [1]"},
            {"role": "user", "content": "When was its business case endorsed?"},
        ],
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert "20 April" in text and "[1]" in text
    assert len(chunks) > 3  # it really streamed, piece by piece
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["citations"][0]["doc_id"] == "002_ef368537357c7e56"
