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
        assert np.array_equal(ours.get_scores(q), expected), q


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


@pytest.mark.parametrize("damage", ["method", "short indptr", "vocabulary"])
def test_files_that_do_not_hold_together_are_refused(corpus, tmp_path, damage):
    Bm25.build(corpus).save(tmp_path)
    if damage == "method":
        params = json.loads((tmp_path / "params.index.json").read_text())
        (tmp_path / "params.index.json").write_text(json.dumps({**params, "method": "bm25+"}))
    elif damage == "short indptr":
        np.save(tmp_path / "indptr.csc.index.npy", np.load(tmp_path / "indptr.csc.index.npy")[:-5])
    else:
        vocab = json.loads((tmp_path / "vocab.index.json").read_text())
        (tmp_path / "vocab.index.json").write_text(json.dumps({**vocab, "new": len(vocab) + 10}))
    with pytest.raises(ValueError):
        Bm25.load(tmp_path)
