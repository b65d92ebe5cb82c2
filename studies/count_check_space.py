"""The "how many" check's cosine floor in the space token vectors are kept in (`qa.tokens`).

The check (`Answerer._counts`) asks whether a number in a sentence sits beside a word close
in meaning to what the question counts, cosine >= `COUNTED_MIN_COSINE` (0.5, chosen with
the full 384-dim vectors). Kept small, cosines move: 0.625 is the floor now. This finds the floor in the small
space that makes the same decisions as 0.5 did in the full one, over every sentence with a
number in the paragraphs of the SQuAD select split's "how many" questions.

    .venv/bin/python studies/count_check_space.py ../shared/benchmarks/squad2-dev/dev-v2.0.json
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa.answer import _new_counts, counted_cosine  # noqa: E402
from qa.chunk import split_sentences  # noqa: E402
from qa.config import Config  # noqa: E402
from qa.embed import load_encoder  # noqa: E402
from qa.lab.squad import squad_articles  # noqa: E402
from qa.question import _counted  # noqa: E402
from qa.text import match_text  # noqa: E402
from qa.tokens import small  # noqa: E402

FULL_FLOOR = 0.5  # the floor chosen with the full vectors


def how_many_paragraphs(encoder, squad: str, split: str):
    """Per paragraph of the split with "how many" questions: those questions (SQuAD's
    dicts) with their token vectors, and its sentences that hold a number, with theirs."""
    for article in squad_articles(squad, split):
        for para in article["paragraphs"]:
            asked = [q for q in para["qas"] if "how many" in q["question"].lower()]
            texts = [para["context"][a:b] for a, b in split_sentences(para["context"])]
            texts = [t for t in texts if any(True for _ in _new_counts(match_text(t), ""))]
            if asked and texts:
                yield (asked, encoder.encode_tokens([q["question"] for q in asked])[1], texts,
                       encoder.encode_tokens(texts)[1])


def main(squad: str) -> None:
    encoder = load_encoder(Config())
    model = encoder.weights_sha256
    pairs = []
    for asked, q_tokens, texts, s_tokens in how_many_paragraphs(encoder, squad, "select"):
        for q, qt in zip(asked, q_tokens):
            question = q["question"]
            full_q, small_q = _counted(question, qt), _counted(question, small(qt, model, content_only=False))
            if full_q is None:
                continue
            for text, st in zip(texts, s_tokens):
                a = counted_cosine(full_q, match_text(text), st, question)
                b = counted_cosine(small_q, match_text(text), small(st, model), question)
                if a is not None and b is not None:
                    pairs.append((a, b))
    full, kept = np.array(pairs).T
    yes = full >= FULL_FLOOR
    print(f"{len(pairs)} (question, sentence) pairs; the full check passes {yes.mean():.1%}")
    for t in np.arange(0.40, 0.81, 0.025):
        print(f"small floor {t:.3f}: same decision {((kept >= t) == yes).mean():.1%}, passes {(kept >= t).mean():.1%}")


if __name__ == "__main__":
    main(sys.argv[1])
