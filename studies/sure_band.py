"""Where "sure" starts (`sure_threshold`): the lowest confidence at which answers are right
19 times in 20 on SQuAD's select split and the in-domain questions together (issue 42; the
conversation set is kept for checking). SQuAD's unanswerable questions are weighted to 18%
of its mix, as in evals/default.jsonl; an answer to one counts wrong.

    .venv/bin/qa eval --squad ../shared/benchmarks/squad2-dev/dev-v2.0.json --split select --report /tmp/sel
    .venv/bin/qa eval --set evals/default.jsonl --report /tmp/dflt
    .venv/bin/qa eval --set evals/conversations.jsonl --report /tmp/conv
    .venv/bin/python studies/sure_band.py /tmp/sel/squad-dev-v2.0-select.json /tmp/dflt/eval-default.json \
        /tmp/conv/eval-conversations.json
"""

from __future__ import annotations

import json
import sys

import numpy as np

TARGET = 0.95
UNANSWERABLE_SHARE = 0.18


def precision(results: list[dict], t: float, unanswerable_weight: float) -> tuple[float, float]:
    """Right leads and (weighted) answers at and above the threshold."""
    given = [r for r in results if r["best_score"] >= t]
    right = sum(1 for r in given if r["answerable"] and r["best_ok"])
    return right, sum(1 if r["answerable"] else unanswerable_weight for r in given)


def read_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def main(select_path: str, in_domain_path: str, check_path: str | None = None) -> None:
    select = [r for r in read_json(select_path)["results"] if not r.get("off_corpus")]
    in_domain = read_json(in_domain_path)["results"]
    check = read_json(check_path)["results"] if check_path else []
    answerable = sum(r["answerable"] for r in select)
    weight = UNANSWERABLE_SHARE / (1 - UNANSWERABLE_SHARE) * answerable / (len(select) - answerable)
    chosen = None
    for t in np.arange(0.35, 0.95, 0.01):
        r1, n1 = precision(select, t, weight)
        r2, n2 = precision(in_domain, t, 1.0)
        r3, n3 = precision(check, t, 1.0)
        union = (r1 + r2) / (n1 + n2) if n1 + n2 else 0.0
        if chosen is None and union >= TARGET:
            chosen = t
        print(f"{t:.2f}  select {r1 / max(n1, 1):.3f}  in-domain {r2 / max(n2, 1):.3f} ({n2:.0f} sure)  together "
              f"{union:.3f}  check {r3 / max(n3, 1):.3f} ({n3:.0f} sure){'  <- chosen' if chosen == t else ''}")
    print(f"sure_threshold = {chosen:.2f}" if chosen is not None else "no threshold reaches the target")


if __name__ == "__main__":
    main(*sys.argv[1:])
