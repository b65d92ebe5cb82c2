"""Measure answers: an eval set (JSONL) or SQuAD 2.0, run through `QA.ask` like the API.

Metrics, per set:
* first-sentence accuracy: the first answer sentence contains a gold answer after
  SQuAD normalisation (lower case, no punctuation or articles, single spaces), an
  abstention counting as wrong; the same ignoring abstention (the sentence the bot
  would lead with); any-sentence accuracy: some answer sentence does;
* citation accuracy: the citation of the sentence holding the answer is from the gold
  source and its text holds the answer (over answers that are correct);
* retrieval recall@1 / @5 and MRR of the gold source (for SQuAD: a passage overlapping
  the gold paragraph);
* abstention on unanswerable questions, false abstention on answerable ones;
* mean answer length in words, latency p50 / p95;
* a threshold sweep: overall accuracy for each abstention threshold, and the best one.
"""

from __future__ import annotations

import json
import random
import re
import string
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..pipeline import QA
from ..text import match_text
from ..types import Answer, ConfigError
from .fitting import auroc, reliability
from .typos import one_typo


@dataclass
class EvalItem:
    id: str
    question: str
    answers: list[str]
    source: str | None
    answerable: bool
    paragraph: tuple[int, int] | None = None  # SQuAD: the gold paragraph's span in its document
    off_corpus: bool = False  # asked of an index that does not hold its document: must abstain
    dialogue: str = ""  # a conversation's turn: asked with the product's own earlier answers as history
    kind: str = ""  # a turn's kind: first, pronoun, ellipsis, switch, unanswerable
    type: str = ""  # what it asks for: fact, definition, count, list, yes_no, date, person


@dataclass
class ItemResult:
    id: str
    question: str
    answerable: bool
    gold: list[str]
    source: str | None
    answer: str
    abstained: bool
    first_ok: bool
    any_ok: bool
    citation_ok: bool
    rank: int | None  # 1-based rank of the first gold passage
    best_score: float  # the confidence in the lead sentence, whether or not the bot abstained
    best_ok: bool  # whether that top sentence holds a gold answer
    words: int
    seconds: float
    cited: list[str] = field(default_factory=list)
    off_corpus: bool = False
    assurance: str = "none"
    kind: str = ""
    type: str = ""
    query: str = ""  # what was searched (a follow-up made standalone)

    @property
    def right(self) -> bool:
        """Answered in the first sentence, or refused where there is no answer."""
        return self.first_ok if self.answerable and not self.off_corpus else self.abstained


def load_eval_set(path: str | Path) -> list[EvalItem]:
    """A JSONL eval set: a line is a question ({id, question, answers, source, answerable}),
    or a conversation ({id, turns: [{question, answers, source, answerable, kind, type}]}),
    whose turns become items `<id>/<n>` asked in order, each with the earlier ones' answers."""
    items, seen = [], set()
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            turns = [(f"{d['id']}/{k}", t, str(d["id"])) for k, t in enumerate(d["turns"], 1)] if "turns" in d \
                else [(str(d["id"]), d, "")]
            got = [EvalItem(i, t["question"], list(t.get("answers", [])), t.get("source"), bool(t["answerable"]),
                            dialogue=dialogue, kind=t.get("kind", ""), type=t.get("type", "")) for i, t, dialogue in turns]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}, line {n}: not an eval item ({exc}); need id, question, answers, source, "
                              "answerable (or id and turns of them).") from None
        for item in got:
            if item.answerable and not item.answers:
                raise ConfigError(f"{path}, line {n}: an answerable question needs at least one answer.")
            if item.id in seen:
                raise ConfigError(f"{path}, line {n}: the id {item.id!r} is used twice.")
            seen.add(item.id)
        items += got
    return items


def typo_set(source: str | Path, seed: int = 0) -> str:
    """`source`'s eval set with one typo in each question (`one_typo`, a fixed seed), as JSONL:
    how evals/typos.jsonl is made from evals/default.jsonl."""
    rng = random.Random(seed)
    lines = []
    for line in Path(source).read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            lines.append(json.dumps({**item, "question": one_typo(item["question"], rng)}, ensure_ascii=False))
    return "\n".join(lines) + "\n"


_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize(text: str) -> str:
    """SQuAD's answer normalisation, after folding curly quotes and dashes."""
    text = match_text(text).lower().translate(_PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def holds(text: str, answers: list[str]) -> bool:
    """Whether the text holds one of the answers as whole words. Punctuation parts words
    here (SQuAD's normalisation joins them: "Edgar's" would not hold "Edgar", nor
    "Afrikaans-speaking" "Afrikaans"), except inside a number ("25,000" never holds "25");
    a dash between numbers is a range, which holds both ("1115–1234" holds "1115")."""
    t = f" {_parted(text)} "
    return any(f" {a} " in t for a in map(_parted, answers) if a)


def _parted(text: str) -> str:
    return normalize(re.sub(r"(?<!\d)[^\w\s]|[^\w\s](?!\d)|-", " ", match_text(text)))


def phrase_scores(said: str, answers: list[str]) -> tuple[float, float]:
    """SQuAD's exact match and token F1 of a phrase against the best gold answer."""
    def f1(answer: str) -> float:
        ours, theirs = normalize(said).split(), normalize(answer).split()
        common = sum((Counter(ours) & Counter(theirs)).values())
        return 0.0 if not common else 2 * common / (len(ours) + len(theirs))

    return (float(any(normalize(said) == normalize(a) for a in answers)), max((f1(a) for a in answers), default=0.0))


def evaluate(qa: QA, items: list[EvalItem], progress: Callable[[int, int], None] | None = None,
             answers: list[Answer] | None = None) -> list[ItemResult]:
    """Ask every item (a conversation's turns with the product's own earlier answers as
    history, as the chat page sends them); `answers`, if given, collects the Answer objects
    (for `qa fit`)."""
    results, said = [], {}  # dialogue -> its turns so far
    for item in items:
        history = said.setdefault(item.dialogue, []) if item.dialogue else None
        started = time.perf_counter()
        answer = qa.ask(item.question, history[-qa.config.max_history_turns:] if history else None)
        seconds = time.perf_counter() - started
        if history is not None:
            history.append({"question": item.question, "answer": answer.answer})
        results.append(_judge(item, answer, seconds))
        if answers is not None:
            answers.append(answer)
        if progress:
            progress(len(results), len(items))
    return results


def evaluate_runs(runs: list[tuple[QA, list[EvalItem]]], progress: Callable[[int, int], None] | None = None,
                  answers: list[Answer] | None = None) -> list[ItemResult]:
    """`evaluate` over several (QA, items) runs, progress counted across all of them."""
    total = sum(len(items) for _, items in runs)
    results: list[ItemResult] = []
    for qa, items in runs:
        done = len(results)
        results += evaluate(qa, items, progress and (lambda n, _, done=done: progress(done + n, total)), answers)
    return results


def _judge(item: EvalItem, answer: Answer, seconds: float) -> ItemResult:
    texts = [s.text for s in answer.sentences]
    first_ok = bool(texts) and holds(texts[0], item.answers)
    any_ok = any(holds(t, item.answers) for t in texts)
    citation_ok = False
    for s in answer.sentences:
        if holds(s.text, item.answers):
            c = answer.citations[s.citation - 1]
            citation_ok = c.doc_id == item.source and holds(c.text, item.answers)
            break
    rank = next((n for n, p in enumerate(answer.passages, 1) if _is_gold(item, p.doc_id, p.start, p.end)), None)
    # What the bot would have said without abstaining, for the threshold sweep.
    best_ok = bool(answer.lead_text) and holds(answer.lead_text, item.answers)
    return ItemResult(
        item.id, item.question, item.answerable, item.answers, item.source, answer.answer, answer.abstained,
        first_ok, any_ok, citation_ok, rank, answer.confidence, best_ok,
        len(" ".join(texts).split()), round(seconds, 4), [c.doc_id for c in answer.citations], item.off_corpus,
        answer.assurance, item.kind, item.type, answer.query,
    )


def _is_gold(item: EvalItem, doc_id: str, start: int, end: int) -> bool:
    if doc_id != item.source:
        return False
    return item.paragraph is None or (start < item.paragraph[1] and end > item.paragraph[0])


def summarize(results: list[ItemResult], threshold: float) -> dict:
    yes = [r for r in results if r.answerable and not r.off_corpus]
    no = [r for r in results if not r.answerable and not r.off_corpus]
    off = [r for r in results if r.off_corpus]
    correct = [r for r in yes if r.first_ok]
    ranks = [r.rank for r in yes]
    seconds = [r.seconds for r in results]

    def share(part, whole) -> float | None:
        return round(len(part) / len(whole), 4) if whole else None

    metrics = {
        "questions": len(results), "answerable": len(yes), "unanswerable": len(no),
        "first_sentence_accuracy": share(correct, yes),
        "any_sentence_accuracy": share([r for r in yes if r.any_ok], yes),
        "first_sentence_accuracy_ignoring_abstention": share([r for r in yes if r.best_ok], yes),
        "citation_accuracy_on_correct": share([r for r in correct if r.citation_ok], correct),
        "recall_at_1": share([k for k in ranks if k == 1], yes),
        "recall_at_5": share([k for k in ranks if k and k <= 5], yes),
        "mrr": round(sum(1 / k for k in ranks if k) / len(yes), 4) if yes else None,
        "abstention_on_unanswerable": share([r for r in no if r.abstained], no),
        "false_abstention_on_answerable": share([r for r in yes if r.abstained], yes),
        "off_corpus_questions": len(off),
        "abstention_off_corpus": share([r for r in off if r.abstained], off),
        "overall_accuracy": share([r for r in yes if r.first_ok] + [r for r in no + off if r.abstained], results),
        "mean_answer_words": round(float(np.mean([r.words for r in results if not r.abstained] or [0])), 1),
        "latency_p50_ms": round(float(np.percentile(seconds, 50)) * 1000, 1) if seconds else None,
        "latency_p95_ms": round(float(np.percentile(seconds, 95)) * 1000, 1) if seconds else None,
        "threshold": threshold,
    }
    # Each band's answers, to any question, and how many are right (one to a question that
    # has no answer is wrong): "sure" should be right 9 times in 10.
    for band in ("sure", "possible"):
        given = [r for r in results if r.assurance == band]
        metrics[f"{band}_answers"] = len(given)
        metrics[f"{band}_answers_right"] = share([r for r in given if r.answerable and r.first_ok], given)
    # Confidence is the probability that the lead sentence is right: AUROC says how well it
    # ranks answerable questions above each kind that must abstain; ECE how true it is.
    confidence = np.array([r.best_score for r in results])
    kind = np.array(["off" if r.off_corpus else "yes" if r.answerable else "no" for r in results])
    for name, negative in (("unanswerable", "no"), ("off_corpus", "off")):
        pair = (kind == "yes") | (kind == negative)
        metrics[f"auroc_answerable_vs_{name}"] = auroc(confidence[pair], kind[pair] == "yes")
    right = np.array([r.answerable and r.best_ok for r in results], dtype=bool)
    metrics["expected_calibration_error"], metrics["reliability"] = reliability(confidence, right)
    metrics["threshold_sweep"] = sweep(results)
    metrics |= by_kind(results)
    return metrics


def by_kind(results: list[ItemResult]) -> dict:
    """A conversation set's figures per turn kind and question type (right: the first
    sentence answers, or an unanswerable turn is refused), and "sure but wrong": answers
    labelled sure that are wrong, of all turns."""
    if not any(r.kind for r in results):
        return {}
    out = {}
    for field_name in ("kind", "type"):
        for name in sorted({getattr(r, field_name) for r in results} - {""}):
            part = [r for r in results if getattr(r, field_name) == name]
            out[f"{field_name}_{name}"] = f"{sum(r.right for r in part)}/{len(part)} ({sum(r.right for r in part) / len(part):.1%})"
    wrong_sure = [r for r in results if r.assurance == "sure" and not r.right]
    out["sure_but_wrong"] = f"{len(wrong_sure)}/{len(results)} ({len(wrong_sure) / len(results):.1%})"
    return out


def sweep(results: list[ItemResult]) -> dict:
    """Overall accuracy (answerable: first sentence right; unanswerable: abstained) per threshold."""
    # Midpoints between neighbouring scores, so each threshold splits the questions where it
    # says (rounded scores as thresholds put a score just over its rounded value on the wrong side).
    scores = sorted({r.best_score for r in results})
    if not scores:
        return {"best": None}
    candidates = [scores[0] - 0.001] + [(a + b) / 2 for a, b in zip(scores, scores[1:])] + [scores[-1] + 0.001]
    yes = [r for r in results if r.answerable]
    no = [r for r in results if not r.answerable]
    best = None
    for t in candidates:
        right = sum((r.best_score >= t and r.best_ok) if r.answerable else (r.best_score < t) for r in results)
        row = {"threshold": round(t, 4), "overall_accuracy": round(right / len(results), 4),
               "abstention": round(sum(r.best_score < t for r in no) / len(no), 4) if no else None,
               "false_abstention": round(sum(r.best_score < t for r in yes) / len(yes), 4) if yes else None}
        if best is None or row["overall_accuracy"] > best["overall_accuracy"]:
            best = row
    return {"best": best}


def write_reports(name: str, metrics: dict, results: list[ItemResult], folder: str | Path) -> tuple[Path, Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / f"{name}.json", folder / f"{name}.md"
    json_path.write_text(json.dumps({"metrics": metrics, "results": [asdict(r) for r in results]}, indent=1, ensure_ascii=False))
    md_path.write_text(markdown_report(name, metrics, results), encoding="utf-8")
    return json_path, md_path


def metrics_table(metrics: dict) -> str:
    rows = [(k, v) for k, v in metrics.items() if k not in ("threshold_sweep", "reliability")]
    best = metrics["threshold_sweep"]["best"]
    rows.append(("best threshold (overall accuracy)",
                 f"{best['threshold']} -> {best['overall_accuracy']} (abstention {best['abstention']}, "
                 f"false abstention {best['false_abstention']})"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {_fmt(k, v)}" for k, v in rows)


_RATES = {"abstention_off_corpus", "first_sentence_accuracy", "any_sentence_accuracy", "first_sentence_accuracy_ignoring_abstention", "citation_accuracy_on_correct", "recall_at_1",
          "recall_at_5", "abstention_on_unanswerable", "false_abstention_on_answerable", "overall_accuracy",
          "sure_answers_right", "possible_answers_right"}


def _fmt(key: str, v) -> str:
    return f"{v:.1%}" if key in _RATES and isinstance(v, float) else str(v)


def markdown_report(name: str, metrics: dict, results: list[ItemResult]) -> str:
    lines = [f"# Eval report: {name}", "", "| metric | value |", "| --- | --- |"]
    lines += [f"| {k} | {_fmt(k, v)} |" for k, v in metrics.items() if k not in ("threshold_sweep", "reliability")]
    best = metrics["threshold_sweep"]["best"]
    lines += [f"| best threshold | {best['threshold']} (overall {best['overall_accuracy']}) |", "",
              "## Reliability (confidence against how often the lead sentence is right)", "",
              "| confidence | questions | mean confidence | right |", "| --- | --- | --- | --- |"]
    lines += [f"| {b['bin']} | {b['questions']} | {b['mean_confidence']} | {b['right']} |" for b in metrics["reliability"]]
    lines += ["", "## Failures", ""]
    failures = [r for r in results if (r.answerable and not (r.first_ok and r.citation_ok)) or (not r.answerable and not r.abstained)]
    if not failures:
        lines.append("None.")
    for r in failures:
        why = ("answered an unanswerable question" if not r.answerable else
               "abstained" if r.abstained else "first sentence lacks the answer" if not r.first_ok else "wrong citation")
        lines += [f"### {r.id}: {why}", f"- question: {r.question}", f"- gold: {' | '.join(r.gold) or '(none)'} "
                  f"from {r.source}", f"- answer: {r.answer or '(abstained)'}", f"- cited: {', '.join(r.cited) or '-'}; "
                  f"gold passage rank: {r.rank}", ""]
    return "\n".join(lines) + "\n"
