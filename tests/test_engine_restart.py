"""An engine started again on its data still answers. Its own module, with its own server
(never the session's shared one): a server stopped and started inside test_engine.py's run
once left the shared server unanswering for the tests after it."""

from __future__ import annotations

import dataclasses

from qa.index import build_index
from qa.pipeline import QA

from conftest import engine_server


def test_an_engine_started_again_on_its_data_answers(corpus_config, encoder, reader, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "heron.txt").write_text("Heron Trust\n\nThe Heron Trust funds river surveys on the Mersey.\n", encoding="utf-8")
    data = tmp_path / "data"

    def config(uri: str):
        return dataclasses.replace(corpus_config, store=uri, corpus_dir=str(corpus), index_dir=str(tmp_path / "lock"))

    with engine_server(data) as uri:
        assert build_index(config(uri), encoder).documents == 1
    # Started again, the engine has our collections on disk but not loaded: every search
    # once failed with "collection is released; call load() before search".
    with engine_server(data) as uri:
        answer = QA.load(config(uri), encoder, reader).ask("What does the Heron Trust fund?")
    assert not answer.abstained and "river surveys" in answer.answer
