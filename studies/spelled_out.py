"""Each question read with the names it uses in both forms its corpus defines
("… the European Coal and Steel Community (ECSC) …", "the WSE (Warsaw Stock Exchange)"):
`qa.text.spell_out`, on `qa fit`'s saved readings. The questions it changes are read again
by the shipped reader over the same candidates (the prefilter does not see the change),
everything is refitted as `qa fit` does, and the changed questions are listed with their
lead before and after.

    .venv/bin/python studies/spelled_out.py reports/trained8

The acronyms of an index are those its articles define (`qa.text.find_acronyms`), the
split's articles in two halves as `qa.lab.squad.squad_split_runs` indexes them; an off-corpus
question is asked of the other half.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.config import Config  # noqa: E402
from qa.lab.fit import fit_and_report, load_records  # noqa: E402
from qa.lab.squad import squad_articles  # noqa: E402
from qa.question import asks_yes_or_no  # noqa: E402
from qa.read import load_reader  # noqa: E402
from qa.text import find_acronyms, spell_out  # noqa: E402

SQUAD = ROOT.parent / "shared" / "benchmarks" / "squad2-dev" / "dev-v2.0.json"
FIGURES = ("first_sentence_abstention_wrong", "first_sentence_ignoring_abstention", "false_abstention",
           "abstention_unanswerable", "abstention_off_corpus")


def acronyms_by_question(split: str) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    """Per question text: the acronyms of the index it is asked of in the corpus, and of the other half."""
    articles = squad_articles(SQUAD, split)
    halves = [articles[0::2], articles[1::2]]
    defined = []
    for half in halves:
        found: dict[str, str] = {}
        for article in half:
            for acronym, long_form in find_acronyms("\n\n".join(p["context"] for p in article["paragraphs"])).items():
                found.setdefault(acronym, long_form)
        defined.append(found)
    return {q["question"]: (defined[n], defined[1 - n]) for n, half in enumerate(halves)
            for article in half for p in article["paragraphs"] for q in p["qas"]}


def main(folder: Path) -> None:
    reader = load_reader(Config())
    records, changed = {}, []
    for split in ("fit", "select", "report"):
        where = acronyms_by_question(split)
        out = []
        for r in load_records(folder / f"readings-{split}.jsonl"):
            own, other = where.get(r.question, ({}, {}))
            asked = spell_out(r.question, other if r.kind == "off" else own)
            if asked != r.question and len(r.texts):
                logits, spans = reader.read(asked, list(r.texts))
                if asks_yes_or_no(asked):
                    spans = [None] * len(spans)
                changed.append((split, r, asked))
                r = dataclasses.replace(r, logits=logits, spans=tuple(spans), question=asked)
            out.append(r)
        records[split] = out
    print(f"{len(changed)} questions changed: " + ", ".join(
        f"{s} {sum(c[0] == s for c in changed)}" for s in ("fit", "select", "report")))
    base_records = {s: load_records(folder / f"readings-{s}.jsonl") for s in ("fit", "select", "report")}
    for name, recs in (("as asked", base_records), ("spelled out", records)):
        model, threshold, _, report = fit_and_report(recs, candidates=10)
        print(name, {s: {k: report[s][k] for k in FIGURES} for s in ("select", "report")}, flush=True)
        if name == "spelled out":
            for split, r, asked in changed:
                r2 = next(x for x in recs[split] if x.question == asked).top(10)
                lead = int(np.argmax(r2.fused(model)))
                print(f"  {split} {r.kind} right={bool(r2.labels[lead])} {asked!r} -> {r2.texts[lead][:90]!r}")
        else:
            for split, r, _asked in changed:
                r1 = r.top(10)
                lead = int(np.argmax(r1.fused(model)))
                print(f"  {split} {r.kind} right={bool(r1.labels[lead])} {r.question!r} -> {r1.texts[lead][:90]!r}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
