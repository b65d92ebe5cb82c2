import dataclasses
import json
from pathlib import Path

import pytest

from qa.cli import main
from qa.lab.eval import ItemResult, evaluate, holds, load_eval_set, normalize, summarize, sweep, typo_set
from qa.lab.squad import squad_articles, squad_items
from qa.types import ConfigError

from conftest import CORPUS, ROOT

TINY = Path(__file__).parent / "data" / "squad-tiny.json"
DEFAULT_SET = ROOT / "evals" / "default.jsonl"
PARAPHRASED_SET = ROOT / "evals" / "paraphrased.jsonl"
TYPO_SET = ROOT / "evals" / "typos.jsonl"


def test_squad_normalisation():
    assert normalize("The  “£6bn”, budget!") == "£6bn budget"
    assert holds("It spends over six billion pounds a year.", ["Six billion pounds"])
    assert not holds("It supports 25,000 jobs.", ["2,500"])  # whole words, not substrings
    assert holds("over 2,500 jobs", ["2,500"])
    # Punctuation parts words, except inside a number.
    assert holds("King Malcolm married Edgar's sister Margaret.", ["Edgar"])
    assert holds("Many families, today mostly Afrikaans-speaking, kept their names.", ["Afrikaans"])
    assert holds("It became a restaurant\u2014see above.", ["a restaurant"])
    assert holds("They went to Switzerland and the Netherlands.[citation needed]", ["Switzerland and the Netherlands."])
    assert not holds("It supports 25,000 jobs.", ["25"]) and not holds("Edgarson sailed.", ["Edgar"])
    # A dash between numbers is a range, and holds either end.
    assert holds("the newly established Jin dynasty (1115–1234) in the north", ["1115"])
    assert holds("in 1115-1234", ["1234"]) and holds("in 1115-1234", ["1115–1234"])


@pytest.mark.parametrize("path, answerable, unanswerable", [(DEFAULT_SET, 80, 15), (PARAPHRASED_SET, 40, 10)],
                         ids=["default", "paraphrased"])
def test_eval_set_shape_and_coverage(path, answerable, unanswerable):
    items = load_eval_set(path)
    assert len(items) >= answerable + unanswerable and len({i.id for i in items}) == len(items)
    refused = [i for i in items if not i.answerable]
    assert len(refused) >= unanswerable and all(i.answers == [] for i in refused)
    documents = {p.stem for p in CORPUS.glob("*.txt")}
    assert {i.source for i in items if i.answerable} == documents
    texts = {p.stem: p.read_text(encoding="utf-8") for p in CORPUS.glob("*.txt")}
    for item in items:
        if item.answerable:  # every gold answer is really in its source
            assert any(holds(texts[item.source], [a]) for a in item.answers), item.id


def test_bad_eval_sets_are_explained(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "q?", "answers": [], "source": null, "answerable": true}\n')
    with pytest.raises(ConfigError, match="line 1.*at least one answer"):
        load_eval_set(bad)
    bad.write_text('{"question": "q?"}\n')
    with pytest.raises(ConfigError, match="line 1"):
        load_eval_set(bad)


def test_squad_articles_become_documents_with_exact_paragraph_spans(tmp_path):
    items = squad_items(squad_articles(TINY), tmp_path)
    data = json.loads(TINY.read_text())["data"]
    assert len(items) == sum(len(p["qas"]) for a in data for p in a["paragraphs"])
    for article in data:
        doc_id = article["title"]
        text = (tmp_path / f"{doc_id}.txt").read_text()
        contexts = {p["context"] for p in article["paragraphs"]}
        for item in items:
            if item.source == doc_id:
                assert text[item.paragraph[0]:item.paragraph[1]] in contexts
    articles = squad_articles(TINY)
    assert [i.id for i in squad_items(articles, tmp_path, limit=5)] == [i.id for i in squad_items(articles, tmp_path, limit=5)]
    assert len(squad_items(articles, tmp_path, limit=5)) == 5


def test_qa_eval_on_tiny_squad_writes_reports(tmp_path, capsys):
    code = main(["eval", "--squad", str(TINY), "--report", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0 and "first_sentence_accuracy" in out
    report = json.loads((tmp_path / "squad-squad-tiny.json").read_text())
    m = report["metrics"]
    assert (m["answerable"], m["unanswerable"]) == (7, 3)
    assert m["recall_at_5"] == 1.0
    assert sum(r["first_ok"] for r in report["results"]) >= 4  # of 7 answerable; 4 with the reader (abstentions wrong)
    assert m["citation_accuracy_on_correct"] == 1.0
    assert 0 <= m["abstention_on_unanswerable"] <= 1 and m["latency_p50_ms"] > 0
    assert len(report["results"]) == 10 and report["results"][0]["question"]
    md = (tmp_path / "squad-squad-tiny.md").read_text()
    assert "| first_sentence_accuracy |" in md and "## Failures" in md


# Regression guards below the level measured with the trained reader's second run
# (docs/evaluation.md): first sentence 88.9%, abstention 88.9%, false abstention 2.5% (the
# first run: 91.4%, 77.8%, 1.2%; the held-out report split rose 83.8% -> 85.1%, which is
# what decides). The targets (95%, 90%) are not met; nothing is fitted to this set.
FIRST_SENTENCE, ABSTENTION, FALSE_ABSTENTION = 0.88, 0.70, 0.05


def _assert_guards(m: dict, first: float = FIRST_SENTENCE) -> None:
    assert m["first_sentence_accuracy"] >= first, m
    assert m["abstention_on_unanswerable"] >= ABSTENTION, m
    assert m["false_abstention_on_answerable"] <= FALSE_ABSTENTION, m


@pytest.fixture(scope="module")
def default_metrics(qa, evaluated) -> dict:
    return summarize(evaluated(DEFAULT_SET.stem), qa.config.abstain_threshold)


def test_default_corpus_eval_holds_its_level(default_metrics):
    m = default_metrics
    _assert_guards(m)
    assert m["citation_accuracy_on_correct"] == 1.0, m
    assert m["recall_at_1"] >= 0.97, m  # passages are returned best sentence first


def test_paraphrased_eval_holds_its_level(qa, evaluated):
    # Questions in other words than the documents' and than `evals/default.jsonl`'s, and
    # unanswerable ones near the corpus. 2026-11-29: first sentence 83.3%, abstention 70%
    # (78.6% and 80% before the reader also read the question without its names),
    # false abstention 0%.
    m = summarize(evaluated(PARAPHRASED_SET.stem), qa.config.abstain_threshold)
    assert m["first_sentence_accuracy"] >= 0.76 and m["abstention_on_unanswerable"] >= 0.7, m
    assert m["false_abstention_on_answerable"] <= 0.05 and m["citation_accuracy_on_correct"] == 1.0, m


def _reworded_eval(qa, reword) -> dict:
    """The default eval's metrics with each question n reworded as `reword(n, question)`."""
    items = [dataclasses.replace(i, question=reword(n, i.question)) for n, i in enumerate(load_eval_set(DEFAULT_SET))]
    return summarize(evaluate(qa, items), qa.config.abstain_threshold)


def test_questions_typed_in_lower_case_do_about_as_well(qa):
    # People type "who runs the lsp"; names are found by their capitals, so the corpus
    # lends them. Without that: first sentence 90.1%, abstention 83.3%, false abstention 2.5%.
    m = _reworded_eval(qa, lambda n, q: q.lower())
    _assert_guards(m, FIRST_SENTENCE - 0.03)


def test_the_typo_set_is_the_default_set_with_one_seeded_typo_in_each_question():
    assert TYPO_SET.read_text(encoding="utf-8") == typo_set(DEFAULT_SET), (
        "evals/typos.jsonl is stale; remake it: .venv/bin/python -c \"from qa.lab.eval import typo_set; "
        "open('evals/typos.jsonl', 'w').write(typo_set('evals/default.jsonl'))\"")
    for clean, typed in zip(load_eval_set(DEFAULT_SET), load_eval_set(TYPO_SET), strict=True):
        changed = [(a, b) for a, b in zip(clean.question.split(), typed.question.split(), strict=True) if a != b]
        assert len(changed) == 1 and clean.answers == typed.answers, (clean.question, typed.question)


def test_questions_with_a_typo_do_nearly_as_well(qa, default_metrics, evaluated):
    # The model reads "emlpoy" as pieces of nothing; the corpus's own spelling mends it.
    # 2026-11-30, evals/typos.jsonl: first sentence 88.9% against 91.4% clean, within the
    # issue's 3 points (87.6% before long words two typos away were mended: "hliery"). The
    # misses left: a real word typed for another ("pace" for "place"), "rns" for "runs"
    # (no corpus word mends it).
    m = summarize(evaluated(TYPO_SET.stem), qa.config.abstain_threshold)
    assert m["first_sentence_accuracy"] >= default_metrics["first_sentence_accuracy"] - 0.03, m
    _assert_guards(m, FIRST_SENTENCE - 0.03)


@pytest.mark.parametrize("reword", [
    lambda n, q: q.rstrip("?"),  # without it: first sentence 91.4%, false abstention 2.5%
    lambda n, q: (("Can you tell me ", "Please tell me ", "I'd like to know ")[n % 3] + q[0].lower()
                  + q[1:].rstrip("?") + ("?" if n % 3 == 0 else "")),  # 84.0%, 11.1%
], ids=["no question mark", "polite frame"])
def test_questions_asked_another_way_do_as_well(qa, reword):
    m = _reworded_eval(qa, reword)
    _assert_guards(m, FIRST_SENTENCE - 0.03)


def test_threshold_sweep_splits_scores_where_it_says():
    def result(answerable, score, ok=True):
        return ItemResult("x", "q", answerable, [], None, "", False, ok, ok, ok, 1, score, ok, 3, 0.01)

    # An unanswerable question scored a hair above a rounded value must still fall below the threshold chosen.
    results = [result(False, 0.51507), result(True, 0.5151), result(True, 0.9), result(False, -1.0), result(True, 0.3, ok=False)]
    best = sweep(results)["best"]
    assert best["overall_accuracy"] == 0.8 and best["abstention"] == 1.0 and best["false_abstention"] == round(1 / 3, 4)
    assert 0.51507 < best["threshold"] <= 0.5151
    assert sweep([])["best"] is None
