"""Each candidate read together with the sentence after it, the span saying which of the
two to quote: the issue's "a name or definition given one sentence on" (the announcement
quoted, the name one sentence on), without training, on one split's answerable questions.

For each question: the product's 10 candidates (prefilter order), read by the shipped
reader alone ("single"), and read as "candidate + the next sentence of its paragraph"
("window"). The top window by logit quotes the sentence its best span starts in
("window, span quotes"), or the candidate itself ("window, candidate quoted"). Right: the
quoted sentence holds a gold answer (`qa.lab.eval.holds`). Reach: a right sentence is among
those that could be quoted.

    .venv/bin/python studies/next_window.py select 1000
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.config import load_config  # noqa: E402
from qa.embed import load_encoder  # noqa: E402
from qa.lab import squad  # noqa: E402
from qa.lab.eval import holds  # noqa: E402
from qa.read import load_reader  # noqa: E402

SQUAD = ROOT.parent / "shared" / "benchmarks" / "squad2-dev" / "dev-v2.0.json"


def next_in_paragraph(store, sid: int) -> int | None:
    """The sentence after `sid` when it is in the same document and paragraph (no blank line between)."""
    s = store.sentence(sid)
    try:
        n = store.sentence(sid + 1)
    except (IndexError, KeyError):
        return None
    if n.doc_id != s.doc_id or n.question or "\n\n" in store.document_text(s.doc_id)[s.end:n.start]:
        return None
    return sid + 1


def main(split: str, limit: int) -> None:
    config = load_config()
    reader = load_reader(config)
    tally = {k: [] for k in ("single", "window, span quotes", "window, candidate quoted", "reach single", "reach window")}
    moved = []
    with tempfile.TemporaryDirectory() as work:
        for qa, items in squad.squad_split_runs(config, load_encoder(config), reader, SQUAD, split, Path(work),
                                                limit=limit, off_corpus=0):
            store, answerer = qa.index, qa.answerer
            for it in (it for it in items if it.answerable):
                q = qa.prepare(it.question)
                passages = qa.retriever.search(q.query, q.vector, max(config.top_k, config.read_passages))
                sids = [c.sid for c in answerer.score(q, passages)[: config.reader_candidates]]
                if not sids:
                    continue
                right = {sid: holds(store.sentence_text(sid), it.answers) for sid in sids}
                texts = [answerer._reader_text(sid) for sid in sids]
                logits, _ = reader.read(q.query, texts)
                tally["single"].append(right[sids[int(np.argmax(logits))]])
                nexts = [next_in_paragraph(store, sid) for sid in sids]
                windows = [t if n is None else f"{t} {store.sentence_text(n)}" for t, n in zip(texts, nexts)]
                w_logits, w_spans = reader.read(q.query, windows)
                top = int(np.argmax(w_logits))
                quoted = sids[top]
                span = w_spans[top]
                if nexts[top] is not None and span is not None and span.start > len(texts[top]):
                    quoted = nexts[top]
                for n in nexts:
                    if n is not None and n not in right:
                        right[n] = holds(store.sentence_text(n), it.answers)
                # Each sentence scored by its own reading, or by the window before it where that
                # window's span lands in it; "refers back": only windows whose next sentence
                # inherits words from the candidate (`Sentence.lead_in`).
                for name, allowed in (("max, any window", lambda n: True),
                                      ("max, refers back", lambda n, store=store: store.sentence(n).lead_in == 1)):
                    best: dict[int, float] = dict(zip(sids, logits.tolist()))
                    for t, n, sp, wl in zip(texts, nexts, w_spans, w_logits):
                        if n is not None and sp is not None and allowed(n) and sp.start > len(t):
                            best[n] = max(best.get(n, -np.inf), float(wl))
                    pick = max(best, key=best.get)
                    tally.setdefault(name, []).append(right[pick])
                    if name == "max, any window" and right[pick] != tally["single"][-1]:
                        moved.append({"q": it.question, "won": right[pick], "quoted": store.sentence_text(pick)[:160]})
                tally["window, span quotes"].append(right[quoted])
                tally["window, candidate quoted"].append(right[sids[top]])
                tally["reach single"].append(any(right[s] for s in sids))
                tally["reach window"].append(any(right.values()))
    print(json.dumps({k: f"{np.mean(v):.4f} of {len(v)}" for k, v in tally.items()}, indent=1))
    for m in moved[:40]:
        print(json.dumps(m))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
