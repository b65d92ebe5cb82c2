"""One honest doubt, everywhere (issue 42): the page, `qa ask`, the OpenAI reply and MCP
say the same band in the same words (`Answer.doubt`), and no bare percentage is shown."""

from __future__ import annotations

import dataclasses

import pytest

from qa.cli import main
from qa.server import create_app
from qa.types import DOUBT

QUESTIONS = {"sure": "What is the purpose of the Liverpool Strategic Partnership?",
             "possible": "Who are the partners of the Liverpool Strategic Partnership?"}


@pytest.mark.parametrize("band", ["sure", "possible"])
def test_every_face_says_the_band_in_the_same_words(qa, corpus_config, band, capsys):
    question = QUESTIONS[band]
    answer = qa.ask(question)
    assert answer.assurance == band and answer.doubt == DOUBT[band]
    client = create_app(dataclasses.replace(corpus_config, rate_limit_per_minute=0), qa).test_client()
    assert client.post("/api/ask", json={"question": question}).get_json()["doubt"] == DOUBT[band]
    reply = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": question}]}).get_json()
    assert reply["choices"][0]["message"]["content"].startswith(DOUBT[band])
    assert main(["ask", question, "--index", corpus_config.index_dir]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(DOUBT[band]) and "%" not in printed


def test_a_refusal_has_no_band_line_its_message_says_it(qa):
    answer = qa.ask("What is the boiling point of liquid nitrogen?")
    assert answer.abstained and answer.doubt == "" and answer.to_dict()["doubt"] == ""
