"""`qa train`: training groups from the product's own prefilter, a few real training steps
on a tiny fixture (the loss falls, a run resumes), and the int8 ONNX export it ships."""

import functools
import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from qa.config import Config
from qa.lab import network, train, traindata
from qa.lab.export_reader import export_reader
from qa.lab.fit import Record
from qa.lab.network import build_network
from qa.lab.train import TrainSettings
from qa.lab.traindata import Group
from qa.read import OnnxCrossEncoder, packaged_reader_folder
from qa.types import ConfigError

TINY = Path(__file__).parent / "data" / "squad-tiny.json"
START = packaged_reader_folder()

GROUPS = [
    Group("When was the Corran lighthouse built?",
          ["Corran Point lighthouse stands on the Corran Narrows.", "The lighthouse was built in 1860 by David Stevenson.",
           "Loch Linnhe is a sea loch.", "The light was automated in 1970."],
          [0, 1, 0, 0], [None, [28, 32], None, None]),
    Group("Who designed the glass harmonica?",
          ["The glass harmonica was invented by Benjamin Franklin in 1761.", "It uses glass bowls.",
           "Mozart wrote music for it.", "It fell out of fashion."],
          [1, 0, 0, 0], [[36, 53], None, None, None]),
    Group("What is the lighthouse's range?", ["Corran Point lighthouse stands on the Corran Narrows.",
                                               "Loch Linnhe is a sea loch."], [0, 0], [None, None], removed=True),
    Group("How many bowls does it use?", ["The instrument uses 37 glass bowls.", "It was invented in 1761.",
                                          "Franklin played it."], [1, 0, 0], [[20, 22], None, None]),
]


@pytest.fixture(scope="module", autouse=True)
def dequantised_once():
    """Each run here starts from the same int8 file: its weights are dequantised once, not
    for every run (0.34 s of CPU each, nine times a module)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(network, "dequantised", functools.cache(network.dequantised))
        yield


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train")
    said: list[str] = []
    final = train.train(GROUPS, folder, START, TrainSettings(steps=8, batch=2, lr=1e-4, checkpoint_every=4),
                        say=said.append)
    return folder, final, said


def test_training_on_a_tiny_fixture_lowers_the_loss_and_reports_progress(trained):
    folder, final, said = trained
    losses = json.loads((folder / "losses.json").read_text())
    assert len(losses) == 8 and final.is_file()
    assert np.mean(losses[-2:]) < np.mean(losses[:2]) * 0.8
    assert any(line.startswith("step 8/8") and "pairs/s" in line for line in said)
    assert {p.name for p in folder.glob("*.pt")} == {"checkpoint.pt", "quarter.pt", "half.pt", "final.pt"}


def test_a_finished_or_interrupted_run_resumes_from_its_checkpoint(trained):
    folder, _, _ = trained
    said: list[str] = []
    train.train(GROUPS, folder, START, TrainSettings(steps=8, batch=2, lr=1e-4, checkpoint_every=4),
                say=said.append)
    assert said[0] == "resumed at step 8/8" and not any(line.startswith("step ") for line in said)


def test_a_run_can_continue_an_earlier_runs_weights(trained, tmp_path):
    import torch

    _, first_final, _ = trained
    # No steps: what the new run starts from is what it ends with, and that is the earlier run's.
    continued = train.train(GROUPS, tmp_path / "again", START, TrainSettings(steps=0, batch=2, init=first_final))
    before, after = torch.load(first_final, weights_only=True), torch.load(continued, weights_only=True)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_a_share_of_questions_is_read_with_one_typo(tmp_path, monkeypatch):
    import random

    many = GROUPS * 25
    typed = train.with_typos(many, 0.5, random.Random(0))
    changed = [(g, t) for g, t in zip(many, typed) if t.question != g.question]
    assert 30 <= len(changed) <= 70
    for g, t in changed:  # one word, and nothing but the question
        assert sum(a != b for a, b in zip(g.question.split(), t.question.split(), strict=True)) == 1
        assert (t.texts, t.labels, t.spans, t.removed) == (g.texts, g.labels, g.spans, g.removed)
    assert typed == train.with_typos(many, 0.5, random.Random(0))
    # The training loop reads them.
    read, loss = [], train._loss
    monkeypatch.setattr(train, "_loss", lambda net, tok, groups: read.extend(g.question for g in groups) or loss(net, tok, groups))
    train.train(GROUPS, tmp_path, START, TrainSettings(steps=2, batch=2, typos=1.0))
    assert len(read) == 4 and not {g.question for g in GROUPS} & set(read)


def test_a_share_of_the_groups_to_be_refused_is_kept_and_every_answerable_one():
    many = GROUPS * 50
    kept = train.keep_refusals(many, 0.3, seed=1)
    assert [g for g in kept if not g.removed] == [g for g in many if not g.removed]
    assert 5 <= sum(g.removed for g in kept) <= 25  # of 50
    assert kept == train.keep_refusals(many, 0.3, seed=1)
    assert train.keep_refusals(many, 1.0) == many and not any(g.removed for g in train.keep_refusals(many, 0.0))


def test_the_lower_layers_train_only_when_unfrozen_and_a_budget_ends_a_run_resumably(trained, tmp_path):
    import torch

    _, first_final, _ = trained
    layer0 = "cross.bert.encoder.layer.0.attention.self.query.weight"
    start = torch.load(first_final, weights_only=True)
    said: list[str] = []
    final = train.train(GROUPS, tmp_path / "all", START,
                        TrainSettings(steps=50, batch=2, init=first_final, frozen=0, budget_s=0.0), say=said.append)
    after = torch.load(final, weights_only=True)
    assert not torch.equal(after[layer0], start[layer0])
    embeddings = "cross.bert.embeddings.word_embeddings.weight"
    assert torch.equal(after[embeddings], start[embeddings])  # frozen always: a lent machine's run packs without them
    assert said[-1] == "stopped at step 1/50: the 0 s budget is spent"
    assert torch.load(tmp_path / "all" / "checkpoint.pt", weights_only=False)["step"] == 1
    frozen = train.train(GROUPS, tmp_path / "six", START, TrainSettings(steps=1, batch=2, init=first_final))
    assert torch.equal(torch.load(frozen, weights_only=True)[layer0], start[layer0])


def test_weights_packed_for_the_way_back_from_a_lent_machine_unpack_to_nearly_the_same(trained, tmp_path):
    import sys

    import torch

    sys.path.insert(0, str(Path(__file__).parent.parent / "studies"))
    import device_train

    _, final, _ = trained
    parts = device_train.compact(final, tmp_path / "final.npz")
    assert parts and all(p.stat().st_size <= device_train.PART_BYTES for p in parts)
    device_train.unpack(parts, START, tmp_path / "back.pt")
    before, after = torch.load(final, weights_only=True), torch.load(tmp_path / "back.pt", weights_only=True)
    assert before.keys() == after.keys()
    assert max(float((before[k].float() - after[k].float()).abs().max()) for k in before) < 0.01


def test_a_typo_share_outside_0_to_1_is_refused_before_any_work(tmp_path, capsys):
    from qa.cli import main

    assert main(["train", "--typos", "1.5", "--folder", str(tmp_path / "run")]) == 2
    assert "--typos is a share of the questions, from 0 to 1, not 1.5" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_the_dequantised_start_reads_as_the_int8_reader_does(msmarco_reader):
    import torch

    net = build_network(START / "model.onnx").eval()
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(START / "tokenizer.json"))
    tokenizer.enable_padding()
    texts = GROUPS[0].texts
    ids, mask, types, _, _ = train.encode(tokenizer, [GROUPS[0].question] * 4, texts, [None] * 4)
    with torch.no_grad():
        logits = net(torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(types))[0][:, 0].numpy()
    assert np.abs(logits - msmarco_reader.score(GROUPS[0].question, texts)).max() < 0.3


def test_span_targets_are_the_answer_tokens_or_cls():
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(START / "tokenizer.json"))
    tokenizer.enable_padding()
    g = GROUPS[0]
    ids, _, _, starts, ends = train.encode(tokenizer, [g.question] * 4, g.texts, g.spans)
    assert starts.tolist()[0] == ends.tolist()[0] == 0  # no answer here: [CLS]
    assert tokenizer.decode(ids[1][starts[1]: ends[1] + 1].tolist()) == "1860"


def test_the_export_is_int8_onnx_with_a_span_head_and_a_pinned_hash(trained, tmp_path):
    _, final, _ = trained
    card = export_reader(final, START, tmp_path / "reader", {"steps": 8})
    assert card["outputs"] == ["logits", "start_logits", "end_logits"]
    assert json.loads((tmp_path / "reader" / "reader.json").read_text())["sha256"] == card["sha256"]
    r = OnnxCrossEncoder(tmp_path / "reader", "tiny", card["sha256"])
    logits, spans = r.read(GROUPS[1].question, GROUPS[1].texts)
    assert logits.shape == (4,) and len(spans) == 4
    for text, span in zip(GROUPS[1].texts, spans):
        assert span is None or 0 <= span.start < span.end <= len(text)
    with pytest.raises(ConfigError, match="sha256"):
        OnnxCrossEncoder(tmp_path / "reader", "tiny", "0" * 64)


def test_training_groups_come_from_the_products_prefilter(tmp_path, encoder):
    data = json.loads(TINY.read_text())
    # A question the product refuses (too long) is left out, not the end of the collection.
    qas = data["data"][0]["paragraphs"][0]["qas"]
    qas.append({**qas[0], "id": "too-long", "question": "Why " * 400 + "?"})
    path = tmp_path / "train.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        json.dump(data, fh)
    articles = traindata.train_articles(path)
    assert sorted(a["title"] for a in articles) == sorted(a["title"] for a in data["data"])
    groups = traindata.collect_groups(Config(), encoder, articles, tmp_path / "work", progress=lambda _: None)
    answerable = [g for g in groups if not g.removed]
    assert answerable and all(any(g.labels) and len(g.texts) <= traindata.GROUP for g in answerable)
    assert not any(g.question.startswith("Why Why") for g in groups)
    for g in answerable:
        for text, label, span in zip(g.texts, g.labels, g.spans):
            assert span is None or (label and 0 <= span[0] < span[1] <= len(text))
    assert any(s is not None for g in answerable for s in g.spans)
    assert all(not any(g.labels) for g in groups if g.removed)
    # Other-article groups quote the index's other article, never the question's own.
    other = [g for g in groups if g.other_article]
    assert other and all(g.removed for g in other)
    documents = {d.stem: d.read_text() for d in (tmp_path / "work" / "index0" / "corpus").glob("*.txt")}
    for g in other:
        own, rest = documents[g.article], "".join(t for a, t in documents.items() if a != g.article)
        assert all(t[:40] not in own and t[:40] in rest for t in g.texts)
    traindata.save_groups(groups, tmp_path / "groups.jsonl")
    assert traindata.load_groups(tmp_path / "groups.jsonl") == groups


def test_the_reader_alone_is_scored_on_readings(reader):
    def record(kind: str, question: str, texts: list[str], labels: list[int]) -> Record:
        n = len(texts)
        return Record(kind, np.zeros((n, 3), np.float32), np.zeros(n, np.float32), np.zeros(n, np.float32),
                      np.zeros((n, 2), bool), np.array(labels, bool), 0.0, 0.0,
                      (None,) * n, question, tuple(texts))

    heron = "What does the Heron Trust fund?"
    records = [record("yes", heron, ["The Heron Trust has an office in Chester.",
                                     "The Heron Trust funds river surveys on the Mersey."], [0, 1]),
               record("off", heron, ["The cathedral organ was rebuilt in 1926 by a firm from Durham."], [0]),
               record("no", heron, ["Herons nest in colonies."], [0])]
    alone = train.reader_alone(reader, records)
    assert alone["questions"] == 1 and alone["top1"] == 1.0 and alone["off_corpus_refused"] == 1.0
    assert alone["unanswerable_refused"] == 1.0
    assert alone["answer_removed_refused"] in (0.0, 1.0)  # one question: its office sentence alone
