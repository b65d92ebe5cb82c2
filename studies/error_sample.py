"""A sample of a split's wrong answerable questions, to read and sort by hand: each with
what went wrong (a wrong lead while a right sentence was read, a right lead refused, no
right sentence read), the lead, its confidence and a right sentence, under the shipped
reader model and threshold, on `qa fit`'s saved readings.

    .venv/bin/python studies/error_sample.py reports/trained9/readings-report.jsonl 50
"""

from __future__ import annotations

import json
import random
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa.config import Config  # noqa: E402
from qa.lab.fit import load_records, outcomes  # noqa: E402
from qa.scoring import ReaderModel  # noqa: E402


def main(readings: Path, n: int) -> None:
    model, threshold, candidates = ReaderModel.load(), Config().abstain_threshold, Config().reader_candidates
    answerable = [r.top(candidates) for r in load_records(readings) if r.kind == "yes"]
    _, right, confidence = outcomes(model, answerable)
    errors = []
    for r, ok, c in zip(answerable, right, confidence):
        if ok and c >= threshold:
            continue
        lead = int(np.argmax(r.fused(model))) if len(r.linear) else None
        kind = ("right lead refused" if ok else
                "wrong lead, a right sentence read" if r.labels.any() else "no right sentence read")
        errors.append((kind, r, lead, float(c)))
    print(f"{len(answerable)} answerable, {len(errors)} wrong: {dict(Counter(e[0] for e in errors))}")
    for kind, r, lead, c in random.Random(0).sample(errors, min(n, len(errors))):
        right_text = [r.texts[i] for i in np.flatnonzero(r.labels)][:1]
        print(json.dumps({"kind": kind, "question": r.question, "gold": list(r.answers[:2]),
                          "lead": None if lead is None else r.texts[lead], "confidence": round(c, 3),
                          "right": right_text}, ensure_ascii=False))

if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
