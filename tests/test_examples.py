"""Example questions come from the served corpus and are answered surely there; a corpus
where nothing qualifies offers none (issue 42: a server of someone else's documents offered
"How many founding partners does Liverpool Health Partners have?" and then refused it)."""

from __future__ import annotations

from qa.config import Config
from qa.index import build_index
from qa.pipeline import QA
from qa.server import create_app


def test_the_examples_are_the_served_corpus_questions_it_answers_surely(corpus_config, qa):
    client = create_app(corpus_config, qa).test_client()
    examples = client.get("/api/examples").get_json()["examples"]
    assert 1 <= len(examples) <= 4 and len(set(examples)) == len(examples)
    for question in examples:
        answer = qa.ask(question)
        assert answer.assurance == "sure" and not answer.abstained, question
    # Nothing about the default corpus is written into the page.
    page = client.get("/").get_data(as_text=True) + client.get("/web/app.js").get_data(as_text=True)
    assert "Liverpool" not in page and "Leeds" not in page


def test_a_corpus_where_nothing_qualifies_offers_no_examples(tmp_path, encoder, reader):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "notes.txt").write_text("Notes\n\nthe kettle boils in four minutes. tea steeps for three more.\n")
    config = Config(corpus_dir=str(corpus), index_dir=str(tmp_path / "index"))
    build_index(config, encoder)
    client = create_app(config, QA.load(config, encoder, reader)).test_client()
    assert client.get("/api/examples").get_json() == {"examples": []}
