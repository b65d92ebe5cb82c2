"""Question-level abstention features beside the shipped ones, on `qa fit`'s saved
readings: the fusion fitted on fit as the product does, then the abstention model fitted
on fit (with its answer-removed copies) with one more feature at a time, the threshold
chosen on select at 5% false abstention, figures on select and report.

    .venv/bin/python studies/abstain_features.py reports/trained8

Features: "echo", the share of the lead's answer-phrase words that the question has
(an unanswerable question's best phrase may just repeat it); "span_len", the phrase's
length in words; "missing", the share of the question's words the lead lacks;
"neg", the question says "not", "never", "no" (SQuAD 2.0's writers often made a question
unanswerable so). A lead that fails an answer check keeps confidence 0, as in the product.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa.lab.fit import answer_removed, fit, load_records  # noqa: E402
from qa.lab.fitting import auroc, fit_logistic  # noqa: E402
from qa.scoring import abstain_features, lead_fails_a_check, sigmoid  # noqa: E402

WORD = re.compile(r"[a-z0-9]+")
STOP = set("the a an of in on at to for by with and or is was were are be been what which who whom whose when "
           "where why how did do does that this from as it its".split())
NEG = re.compile(r"\b(?:not|never|no|cannot|neither|nor|without)\b|n't", re.I)


def words(text: str) -> list[str]:
    return [w for w in WORD.findall(text.lower()) if w not in STOP]


def extras(r, lead: int) -> dict[str, float]:
    span, asked = r.spans[lead], set(words(r.question))
    said = words(r.texts[lead][span.start:span.end]) if span else []
    lead_words = set(words(r.texts[lead]))
    return {"echo": sum(w in asked for w in said) / len(said) if said else 0.0, "span_len": float(np.log1p(len(said))),
            "missing": sum(w not in lead_words for w in asked) / max(len(asked), 1),
            "neg": float(bool(NEG.search(r.question)))}


def rows(model, records, names):
    X, y, kinds, gated = [], [], [], []
    for r in (r for r in records if len(r.linear)):
        fused = r.fused(model)
        lead = int(np.argmax(fused))
        extra = extras(r, lead)
        X.append([*abstain_features(fused, r.linear, r.logits, r.span_scores, r.dense, r.bm25), *(extra[n] for n in names)])
        y.append(float(r.labels[lead]))
        kinds.append(r.kind)
        gated.append(lead_fails_a_check(fused, r.checks))
    return np.array(X, np.float32), np.array(y), np.array(kinds), np.array(gated)


def main(folder: Path) -> None:
    records = {s: [r.top(10) for r in load_records(folder / f"readings-{s}.jsonl")] for s in ("fit", "select", "report")}
    model = fit(records["fit"])
    for names in ([], ["echo"], ["span_len"], ["missing"], ["neg"], ["echo", "span_len", "missing", "neg"]):
        X, y, _, gated = rows(model, records["fit"] + answer_removed(records["fit"]), names)
        w = fit_logistic(X[~gated], y[~gated])
        out, threshold = {}, None
        for split in ("select", "report"):
            X, y, kinds, gated = rows(model, records[split], names)
            confidence = np.where(gated, 0.0, sigmoid(X @ w[:-1] + w[-1]))
            Xr, _, _, gr = rows(model, answer_removed([r for r in records[split] if r.kind == "yes"]), names)
            removed = np.where(gr, 0.0, sigmoid(Xr @ w[:-1] + w[-1]))
            yes, no = kinds == "yes", kinds == "no"
            if threshold is None:
                threshold = float(np.sort(confidence[yes])[int(0.05 * yes.sum())])
            answered = confidence >= threshold
            out[split] = {"first": round(float((answered & yes & (y == 1)).sum() / yes.sum()), 4),
                          "false_abstention": round(float((yes & ~answered).sum() / yes.sum()), 4),
                          "noans": round(float((no & ~answered).sum() / no.sum()), 4),
                          "removed": round(float((removed < threshold).mean()), 4),
                          "auroc": round(auroc(confidence[yes | no], yes[yes | no]), 4)}
        print(names or "shipped", out, flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
