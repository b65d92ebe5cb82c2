"""What the stored token vectors buy, and what a smaller copy of them costs (issue 43).

Token vectors (every sentence token's 384-dim vector from the embedder) feed one feature,
`aligned_words`, and the "how many" check. Stored as they come they are ~40 KB a
sentence. Three ways to keep the index small, each measured on the SQuAD select split
(both halves, off-corpus questions included) against the full vectors:

* `remade`: not stored; remade per question from the sentence text, as the engine
  backend does (same answers by construction: the time is the cost);
* small (`qa.tokens`): projected on the top principal directions of token vectors over
  the fit split (`qa/token_basis.npy`), renormalised, int8 per row, the sentence's content
  tokens only (the question's tokens projected alike). How many directions is chosen here
  (remake the basis with `python -m qa.lab.token_basis FILE D`, then run this).

    .venv/bin/python studies/token_footprint.py ../shared/benchmarks/squad2-dev/dev-v2.0.json
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import qa.question as question_module  # noqa: E402
from qa.config import Config  # noqa: E402
from qa.embed import load_encoder  # noqa: E402
from qa.lab.eval import evaluate_runs, summarize  # noqa: E402
from qa.lab.squad import squad_split_runs  # noqa: E402
from qa.read import load_reader  # noqa: E402
from qa.tokens import dims, small  # noqa: E402


def small_tokens(qa):
    """Patch one QA to read its sentences' token vectors as `qa.tokens` keeps them."""
    full = qa.answerer._sentence_tokens
    model = qa.encoder.weights_sha256
    qa.answerer._sentence_tokens = lambda sids: [small(t, model) for t in full(sids)]


def main(squad: str) -> None:
    config = Config()
    encoder, reader = load_encoder(config), load_reader(config)
    out = {}
    with tempfile.TemporaryDirectory(prefix="qa-tokens-") as work:
        runs = squad_split_runs(config, encoder, reader, squad, "select", Path(work))
        sentences = sum(len(qa.index.sentences) for qa, _ in runs)
        tokens = sum(len(qa.index.tokens.vectors) for qa, _ in runs)
        out["sentences"], out["tokens_per_sentence"] = sentences, round(tokens / sentences, 1)
        started = time.perf_counter()
        base = evaluate_runs(runs)
        out["full"] = _figures(base, base, time.perf_counter() - started)
        print(json.dumps(out, indent=1), flush=True)
        facts = question_module._facts
        for qa, _ in runs:
            small_tokens(qa)
        question_module._facts = lambda asked, query, vector, toks, lexicon: facts(
            asked, query, vector, small(toks, encoder.weights_sha256, content_only=False), lexicon)
        started = time.perf_counter()
        results = evaluate_runs(runs)
        out[f"small{dims()}"] = _figures(results, base, time.perf_counter() - started)
        print(json.dumps(out, indent=1), flush=True)


def _figures(results, base, seconds: float) -> dict:
    m = summarize(results, Config().abstain_threshold)
    return {"first_sentence_accuracy": m["first_sentence_accuracy"], "false_abstention": m["false_abstention_on_answerable"],
            "abstention_on_unanswerable": m["abstention_on_unanswerable"],
            "answers_changed": sum(a.answer != b.answer for a, b in zip(results, base)), "seconds": round(seconds, 1)}


if __name__ == "__main__":
    main(sys.argv[1])
