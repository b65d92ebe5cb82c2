"""BM25 in bm25s's files, scored without bm25s: the same scores as bm25s, either side's
files read by the other, and damaged files refused."""

import json
import random

import numpy as np
import pytest

from qa.bm25 import Bm25

WORDS = [f"w{i}" for i in range(60)]


@pytest.fixture(scope="module")
def corpus():
    rng = random.Random(7)
    return [[rng.choice(WORDS) for _ in range(rng.randint(1, 30))] for _ in range(40)] + [["only"], ["w1", "w1", "w1"]]


def queries():
    rng = random.Random(8)
    picked = [[rng.choice(WORDS + ["unknown"]) for _ in range(rng.randint(1, 6))] for _ in range(50)]
    return picked + [["w1", "w1"], ["unknown"], ["only"], [""]]


def test_scores_are_bm25s_scores_to_the_bit(corpus):
    import bm25s

    ours, theirs = Bm25.build(corpus), bm25s.BM25()
    theirs.index(corpus, show_progress=False)
    for q in queries():
        expected = theirs.get_scores([t for t in q if t]) if any(q) else np.zeros(len(corpus), np.float32)
        got = ours.get_scores(q)
        assert got.dtype == expected.dtype and np.array_equal(got, expected), q


def test_either_side_reads_the_others_files(corpus, tmp_path):
    import bm25s

    ours = Bm25.build(corpus)
    ours.save(tmp_path / "ours")
    theirs = bm25s.BM25.load(str(tmp_path / "ours"), show_progress=False)
    theirs.save(str(tmp_path / "theirs"), show_progress=False)
    again = Bm25.load(tmp_path / "theirs")
    assert again.params == ours.params and again.vocab == ours.vocab
    for q in queries()[:20]:
        assert np.array_equal(theirs.get_scores(q), ours.get_scores(q))
        assert np.array_equal(again.get_scores(q), ours.get_scores(q))


@pytest.mark.parametrize("damage", ["method", "short indptr", "vocabulary", "chunk count", "no dtype", "a list"])
def test_files_that_do_not_hold_together_are_refused(corpus, tmp_path, damage):
    Bm25.build(corpus).save(tmp_path)
    if damage == "method":
        params = json.loads((tmp_path / "params.index.json").read_text())
        (tmp_path / "params.index.json").write_text(json.dumps({**params, "method": "bm25+"}))
    elif damage == "short indptr":
        np.save(tmp_path / "indptr.csc.index.npy", np.load(tmp_path / "indptr.csc.index.npy")[:-5])
    elif damage == "vocabulary":
        vocab = json.loads((tmp_path / "vocab.index.json").read_text())
        (tmp_path / "vocab.index.json").write_text(json.dumps({**vocab, "new": len(vocab) + 10}))
    elif damage in ("chunk count", "no dtype"):
        params = json.loads((tmp_path / "params.index.json").read_text())
        changed = {"num_docs": params["num_docs"] - 5} if damage == "chunk count" else {"dtype": "float3"}
        (tmp_path / "params.index.json").write_text(json.dumps({**params, **changed}))
    else:
        (tmp_path / "vocab.index.json").write_text("[1, 2]")
    with pytest.raises(ValueError):
        Bm25.load(tmp_path)


def test_an_empty_bm25_file_in_an_index_says_to_rebuild_it(tmp_path, encoder):
    from qa.config import Config
    from qa.files import load_index
    from qa.index import build_index, expected_settings
    from qa.types import StaleIndexError

    from conftest import copy_documents

    copy_documents(tmp_path / "corpus", 1)
    config = Config(corpus_dir=str(tmp_path / "corpus"), index_dir=str(tmp_path / "index"))
    build_index(config, encoder)
    (bm25,) = (tmp_path / "index").glob("bm25-*")
    (bm25 / "data.csc.index.npy").write_bytes(b"")
    expected = expected_settings(config, encoder.model_id, encoder.weights_sha256, encoder.dim)
    with pytest.raises(StaleIndexError, match="cannot be read.*Re-run `qa ingest`"):
        load_index(config.index_dir, expected)

