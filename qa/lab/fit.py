"""`qa fit`: learn the reader's fusion and abstention model on SQuAD, split by article.

1. collect: each split's questions go through `QA.ask` (the product's path) over that
   split's articles, indexed in two halves so that each half's answerable questions
   asked of the other half are off-corpus questions. What the reader saw for each
   question (`Answer.reading`) is kept with the gold answers, in
   `reports/readings-<split>.jsonl`, so fitting and ablation need no model runs.
2. fit on "fit": the fusion weights listwise (softmax over a question's candidates,
   answerable questions with a right candidate), the abstention model by logistic
   regression (label: the lead holds the answer; unanswerable and off-corpus questions
   are 0, and so is each answerable question asked again with its answer removed).
3. choose on "select": the number of candidates the reader reads, and the abstention
   threshold, the highest that keeps false abstention on answerable questions within
   `MAX_FALSE_ABSTENTION`; and the "sure" band's floor, the lowest confidence from which
   answers are right at least `SURE_PRECISION` of the time in the mix of questions people
   ask (below it an answer is shown as one that may answer).
4. report on "report", and an ablation: each feature or rule removed and everything refitted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..config import Config
from ..read import Span
from ..scoring import (
    ABSTAIN_FEATURES,
    CHECKS,
    FUSION_FEATURES,
    SENTENCE_FEATURES,
    SENTENCE_WEIGHTS,
    ReaderModel,
    abstain_features,
    fusion_features,
    lead_fails_a_check,
    span_margins,
)
from ..types import ConfigError
from .fitting import auroc, fit_listwise, fit_logistic, reliability

MAX_FALSE_ABSTENTION = 0.05
SURE_PRECISION = 0.9
# The share of questions without an answer in the documents among those people ask: 18 of
# the 99 in evals/default.jsonl, the only in-domain mix there is. SQuAD 2.0's splits are half
# unanswerable, written to mislead; a "sure" band judged on that mix would hold almost no
# answer, one judged on answerable questions alone would hold almost all.
UNANSWERABLE_SHARE = 0.18


@dataclass
class Record:
    """One question as the reader saw it, with which candidates hold a gold answer."""

    kind: str  # "yes" (answerable), "no" (SQuAD unanswerable), "off" (about an article not indexed)
    rows: np.ndarray
    linear: np.ndarray
    logits: np.ndarray
    checks: np.ndarray
    labels: np.ndarray  # per candidate: holds a gold answer (always False unless kind == "yes")
    dense: float
    bm25: float
    spans: tuple[Span | None, ...]  # the reader's answer span in each text it read
    # What was read, kept so that a study of a new feature needs no re-collection.
    question: str = ""
    texts: tuple[str, ...] = ()
    answers: tuple[str, ...] = ()  # the gold answers

    @property
    def span_scores(self) -> np.ndarray:
        return span_margins(self.spans)

    def fused(self, model: ReaderModel) -> np.ndarray:
        return model.fuse(self.rows, self.logits, self.span_scores, self.checks)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "question": self.question, "texts": list(self.texts), "rows": self.rows.round(5).tolist(), "linear": self.linear.round(5).tolist(),
                "logits": self.logits.round(4).tolist(),
                "spans": [None if s is None else [s.start, s.end, s.score] for s in self.spans],
                "checks": self.checks.astype(int).tolist(), "answers": list(self.answers),
                "labels": self.labels.astype(int).tolist(), "dense": round(self.dense, 5), "bm25": round(self.bm25, 4)}

    @classmethod
    def from_dict(cls, d: dict) -> Record:
        n = len(d["linear"])
        return cls(d["kind"], np.array(d["rows"], np.float32).reshape(n, -1), np.array(d["linear"], np.float32),
                   np.array(d["logits"], np.float32),
                   np.array(d["checks"], bool).reshape(n, -1),
                   np.array(d["labels"], bool), d["dense"], d["bm25"],
                   tuple(None if s is None else Span(*s) for s in d["spans"]), d.get("question", ""),
                   tuple(d.get("texts", ())), tuple(d["answers"]))

    def take(self, which: np.ndarray) -> Record:
        """The record with only the candidates `which` (indices), in that order."""
        return replace(self, rows=self.rows[which], linear=self.linear[which], logits=self.logits[which],
                       checks=self.checks[which], labels=self.labels[which],
                       spans=tuple(self.spans[i] for i in which),
                       texts=tuple(self.texts[i] for i in which) if self.texts else ())

    def top(self, n: int) -> Record:
        """The record as if the reader had read only the best `n` candidates by the linear score."""
        return self.take(np.arange(min(n, len(self.linear))))


def collect(qa_runs, holds, progress=None) -> list[Record]:
    """Ask every question of every (QA, items) run and keep what the reader saw."""
    from .eval import evaluate_runs

    answers = []
    evaluate_runs(qa_runs, progress, answers)
    asked = [(qa, item) for qa, items in qa_runs for item in items]
    records = []
    for (qa, item), answer in zip(asked, answers):
        r = answer.reading
        kind = "off" if item.off_corpus else "yes" if item.answerable else "no"
        sentences = [qa.index.sentence_text(sid) for sid in r.sids]
        labels = np.array([kind == "yes" and holds(s, item.answers) for s in sentences], bool)
        records.append(Record(kind, r.rows, r.linear, r.logits, r.checks, labels, r.dense, r.bm25,
                              tuple(r.spans), item.question, tuple(qa.answerer._reader_text(sid) for sid in r.sids),
                              tuple(item.answers)))
    return records


def save_records(records: list[Record], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(r.to_dict()) for r in records) + "\n", encoding="utf-8")


def load_records(path: Path) -> list[Record]:
    try:
        return [Record.from_dict(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]
    except KeyError as exc:
        raise ConfigError(f"The readings in {path} have no {exc.args[0]!r}: an older version collected them. "
                          "Run `qa fit` without --reuse to collect them again.") from None


def fit(records: list[Record], keep: list[int] | None = None, note: str = "") -> ReaderModel:
    """Fusion then abstention weights from the fitting split; `keep` lists the fusion
    features used (the others get weight 0), for ablation.

    The abstention model also learns from each answerable question with its answer
    removed: SQuAD 2.0's unanswerable questions are written to mislead and their value is
    in the text, so alone they teach little about "the topic is there, the fact is not".
    On select this raised answer-removed refusal 51.1% -> 59.5% and SQuAD 2.0 refusal
    15.1% -> 17.9% at the same false abstention and first-sentence figure."""
    keep = list(range(len(FUSION_FEATURES))) if keep is None else keep
    groups = [(_fusion_rows(r)[:, keep], r.labels.astype(np.float64)) for r in records
              if r.kind == "yes" and r.labels.any()]
    fusion = np.zeros(len(FUSION_FEATURES), np.float32)
    fusion[keep] = fit_listwise(groups)
    model = ReaderModel(fusion, np.zeros(len(ABSTAIN_FEATURES) + 1, np.float32), note)
    X, y = _abstain_rows(model, records + answer_removed(records))
    return ReaderModel(fusion, fit_logistic(X, y), note)


def _fusion_rows(r: Record) -> np.ndarray:
    return fusion_features(r.rows, r.logits, r.span_scores, r.checks)


def _abstain_rows(model: ReaderModel, records: list[Record]) -> tuple[np.ndarray, np.ndarray]:
    X, y = [], []
    for r in records:
        if not len(r.linear):
            continue
        fused = r.fused(model)
        if lead_fails_a_check(fused, r.checks):
            continue  # it gets no confidence whatever these weights say
        X.append(abstain_features(fused, r.linear, r.logits, r.span_scores, r.dense, r.bm25))
        y.append(float(r.labels[int(np.argmax(fused))]))
    return np.array(X, np.float32), np.array(y)


def outcomes(model: ReaderModel, records: list[Record]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per question: its kind, whether the lead holds the answer, and the confidence in it."""
    kinds, right, confidence = [], [], []
    for r in records:
        kinds.append(r.kind)
        if not len(r.linear):
            right.append(False)
            confidence.append(0.0)
            continue
        fused = r.fused(model)
        right.append(bool(r.labels[int(np.argmax(fused))]))
        confidence.append(model.confidence(fused, r.linear, r.logits, r.span_scores, r.checks, r.dense, r.bm25))
    return np.array(kinds), np.array(right), np.array(confidence)


def answer_phrases(model: ReaderModel, records: list[Record]) -> tuple[float | None, float | None]:
    """SQuAD exact match and F1 (0-100) of the reader's span in the lead, over answerable
    questions whose lead holds the answer; a lead with no span scores 0."""
    from .eval import phrase_scores

    scores = []
    for r in records:
        if r.kind != "yes" or not len(r.linear):
            continue
        lead = int(np.argmax(r.fused(model)))
        if r.labels[lead]:
            span = r.spans[lead]
            scores.append(phrase_scores(r.texts[lead][span.start:span.end] if span else "", list(r.answers)))
    if not scores:
        return None, None
    exact, f1 = np.mean(scores, axis=0) * 100
    return round(float(exact), 1), round(float(f1), 1)


def choose_threshold(model: ReaderModel, records: list[Record]) -> float:
    """The highest threshold whose false abstention on answerable questions stays within budget."""
    kinds, _, confidence = outcomes(model, records)
    yes = np.sort(confidence[kinds == "yes"])
    return float(yes[int(np.floor(MAX_FALSE_ABSTENTION * len(yes)))]) if len(yes) else 0.5


def choose_sure(model: ReaderModel, records: list[Record], threshold: float) -> float:
    """The lowest confidence from which answers are right at least `SURE_PRECISION` of the
    time, with unanswerable (and off-corpus) questions weighted to `UNANSWERABLE_SHARE`."""
    kinds, right, confidence = outcomes(model, records)
    given = confidence >= threshold
    order = np.argsort(-confidence[given], kind="stable")
    weights = _mix_weights(kinds)[given][order]
    hits = (right & (kinds == "yes"))[given][order]
    precision = np.cumsum(hits) / np.cumsum(weights)
    reached = np.nonzero(precision >= SURE_PRECISION)[0]
    return float(confidence[given][order][reached.max()]) if reached.size else 1.0


def _mix_weights(kinds: np.ndarray) -> np.ndarray:
    """Per question, its weight in the mix people ask: 1 for an answerable one."""
    yes = kinds == "yes"
    if yes.all() or not yes.any():
        return np.ones(len(kinds))
    return np.where(yes, 1.0, UNANSWERABLE_SHARE / (1 - UNANSWERABLE_SHARE) * yes.sum() / (~yes).sum())


def measure(model: ReaderModel, records: list[Record], threshold: float, sure: float | None = None) -> dict:
    kinds, right, confidence = outcomes(model, records)
    yes, no, off = kinds == "yes", kinds == "no", kinds == "off"
    answered = confidence >= threshold
    sure_band = confidence >= (sure if sure is not None else np.inf)
    ece, table = reliability(confidence, right & yes)

    def rate(mask_hit, mask_all):
        return round(float(mask_hit.sum() / mask_all.sum()), 4) if mask_all.any() else None

    exact, f1 = answer_phrases(model, records)
    return {
        "answerable": int(yes.sum()), "unanswerable": int(no.sum()), "off_corpus": int(off.sum()),
        "answer_phrase_exact": exact, "answer_phrase_f1": f1,
        "first_sentence_ignoring_abstention": rate(right & yes, yes),
        "first_sentence_abstention_wrong": rate(right & yes & answered, yes),
        "false_abstention": rate(yes & ~answered, yes),
        "abstention_unanswerable": rate(no & ~answered, no),
        "abstention_off_corpus": rate(off & ~answered, off),
        "auroc_answerable_vs_unanswerable": auroc(confidence[yes | no], yes[yes | no]),
        "auroc_answerable_vs_off_corpus": auroc(confidence[yes | off], yes[yes | off]),
        "auroc_right_vs_rest": auroc(confidence, right & yes),
        "expected_calibration_error": ece, "reliability": table, "threshold": round(threshold, 4),
        "sure_share_of_answerable": rate(sure_band & yes, answered & yes),
        "sure_right_in_mix": round(float((sure_band & right & yes).sum() / max(_mix_weights(kinds)[sure_band].sum(), 1e-9)), 4),
        "sure_right": rate(sure_band & right & yes, sure_band & yes),
        "possible_right": rate(answered & ~sure_band & right & yes, answered & ~sure_band & yes),
        "sure_given_to_unanswerable": rate(sure_band & no, no), "sure_given_to_off_corpus": rate(sure_band & off, off),
    }


def answer_removed(records: list[Record]) -> list[Record]:
    """Each answerable question as if its documents never said the answer: its right
    candidates cut, so that what leads is a sentence on the topic that does not answer.
    "What is the annual budget of X?" asked of documents about X that state none is
    this kind of question; SQuAD 2.0's unanswerable ones are not (their value is there)."""
    return [replace(r.take(np.flatnonzero(~r.labels)), kind="no") for r in records if r.kind == "yes" and r.labels.any()]


def abstention_curve(model: ReaderModel, records: list[Record],
                     budgets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)) -> list[dict]:
    """The trade the threshold makes: for each share of answerable questions the bot may
    refuse, the threshold that refuses that many, and what it then refuses of the
    unanswerable and off-corpus questions and gets right of the answerable ones."""
    kinds, right, confidence = outcomes(model, records)
    yes = np.sort(confidence[kinds == "yes"])
    curve = []
    for budget in budgets:
        t = float(yes[int(np.floor(budget * len(yes)))])
        answered = confidence >= t
        curve.append({"false_abstention": budget, "threshold": round(t, 4),
                      "abstention_unanswerable": round(float((~answered[kinds == "no"]).mean()), 4),
                      "abstention_off_corpus": round(float((~answered[kinds == "off"]).mean()), 4),
                      "first_sentence_abstention_wrong": round(float((right & answered)[kinds == "yes"].mean()), 4)})
    return curve


CANDIDATE_CHOICES = (4, 6, 8, 10, 12)
HELD_OUT = "first_sentence_abstention_wrong"  # the figure a feature must move to stay


def choose_candidates(fit_records: list[Record], select_records: list[Record]) -> tuple[int, dict[int, float]]:
    """The fewest candidates the reader must read (each costs a forward pass) whose select
    figure is within 0.3 points of the best."""
    scores = {}
    for n in CANDIDATE_CHOICES:
        fr, sr = [r.top(n) for r in fit_records], [r.top(n) for r in select_records]
        model = fit(fr)
        scores[n] = measure(model, sr, choose_threshold(model, sr))[HELD_OUT]
    best = max(scores.values())
    return min(n for n, v in scores.items() if v >= best - 0.003), scores


def without(records: list[Record], name: str, candidates: int) -> list[Record]:
    """The records as the product would see them without one feature or rule: a sentence
    feature leaves the linear score that picks the candidates too (the rest of its weights
    kept), and a check always passes."""

    out = []
    for r in records:
        if name in CHECKS:
            checks = r.checks.copy()
            checks[:, CHECKS.index(name)] = True
            r = replace(r, checks=checks)
        elif name in SENTENCE_FEATURES:
            k = SENTENCE_FEATURES.index(name)
            linear = r.linear - r.rows[:, k] * SENTENCE_WEIGHTS[k]
            r = replace(r, linear=linear).take(np.argsort(-linear, kind="stable"))
            r.rows[:, k] = 0.0  # `take` made the rows a copy
        out.append(r.top(candidates))
    return out


def ablation(fit_records: list[Record], select_records: list[Record], report_records: list[Record],
             candidates: int) -> list[dict]:
    """Each feature or rule removed, everything refitted and the threshold re-chosen: the
    change on the report split (negative: the product is worse without it)."""
    keys = (HELD_OUT, "first_sentence_ignoring_abstention", "abstention_unanswerable", "abstention_off_corpus",
            "expected_calibration_error")
    splits = (fit_records, select_records, report_records)
    rows = []
    for name in ("",) + FUSION_FEATURES:
        fr, sr, rr = (without(x, name, candidates) for x in splits)
        drop = [] if name not in FUSION_FEATURES else [FUSION_FEATURES.index(name)]
        model = fit(fr, [k for k in range(len(FUSION_FEATURES)) if k not in drop])
        m = measure(model, rr, choose_threshold(model, sr))
        rows.append({"without": name or "(nothing)", **{k: m[k] for k in keys}})
    base = rows[0]
    return [rows[0]] + [{"without": r["without"], **{k: round(r[k] - base[k], 4) for k in keys}} for r in rows[1:]]


def fit_and_report(records: dict[str, list[Record]], candidates: int | None = None,
                   note: str = "") -> tuple[ReaderModel, float, float, dict]:
    """Fit on the fit split, choose the candidates read (unless given), the threshold and
    the sure floor on select, and measure every split: the model, its threshold and sure
    floor, and the report (`qa fit` prints and saves it)."""
    chosen, by_candidates = choose_candidates(records["fit"], records["select"])
    candidates = candidates or chosen
    records = {split: [r.top(candidates) for r in rs] for split, rs in records.items()}
    model = fit(records["fit"], note=f"{note}, {candidates} candidates")
    threshold = choose_threshold(model, records["select"])
    sure = choose_sure(model, records["select"], threshold)
    report = {split: measure(model, records[split], threshold, sure) for split in ("fit", "select", "report")}
    report["report"]["abstention_answer_removed"] = measure(model, answer_removed(records["report"]),
                                                           threshold)["abstention_unanswerable"]
    report["abstention_curve"] = abstention_curve(model, records["report"])
    report["candidates"] = {"chosen": candidates, "select_figure_by_candidates": by_candidates}
    report["ablation"] = ablation(records["fit"], records["select"], records["report"], candidates)
    return model, threshold, sure, report


def readings(config: Config, folder: Path, squad_file: str, limits: dict, off_corpus: int, reuse: bool,
             progress) -> dict[str, list[Record]]:
    """Each split's readings: asked through the product (`collect`) and saved in `folder`,
    or, with `reuse`, those saved there before. `progress(desc, unit, min_total=...)`
    makes a progress callable with a `close()`."""
    import tempfile

    from ..embed import load_encoder
    from ..read import load_reader
    from . import squad
    from .eval import holds

    records = {}
    encoder = reader = None
    for split in ("fit", "select", "report"):
        path = folder / f"readings-{split}.jsonl"
        if reuse and path.is_file():
            records[split] = load_records(path)
            continue
        encoder, reader = encoder or load_encoder(config), reader or load_reader(config)
        with tempfile.TemporaryDirectory(prefix=f"qa-fit-{split}-") as work:
            indexing = progress(f"indexing {split}", "text")
            runs = squad.squad_split_runs(config, encoder, reader, squad_file, split, Path(work), limits[split],
                                          off_corpus, indexing, ReaderModel.untrained())
            indexing.close()
            asking = progress(f"reading {split}", "q", min_total=0)
            records[split] = collect(runs, holds, asking)
            asking.close()
        save_records(records[split], path)
    return records


def summary(report: dict) -> list[str]:
    """`qa fit`'s printout of a `fit_and_report` report."""
    lines = [f"{split}: " + ", ".join(f"{k} {v}" for k, v in report[split].items() if k != "reliability")
             for split in ("fit", "select", "report")]
    lines += [f"reliability (report): {json.dumps(report['report']['reliability'])}",
              f"abstention curve (report): {json.dumps(report['abstention_curve'])}",
              f"reader candidates: {report['candidates']['chosen']} (select split, {HELD_OUT} by candidates: "
              f"{report['candidates']['select_figure_by_candidates']})",
              "ablation (report split, change when the feature is dropped):"]
    return lines + ["  " + ", ".join(f"{k} {v}" for k, v in row.items()) for row in report["ablation"]]
