"""How far from a number the "how many" check looks for what it counts (`COUNTED_WINDOW`).

"The LSP brings together over twenty of the city's largest anchor institutions" is refused
for "How many institutions does the LSP bring together?": "institutions" is the fourth
content word piece after "twenty", and the check looks three either side. This scores each
window on the SQuAD select split's "how many" questions, over every sentence with a number
in their paragraphs: the check should pass the sentences that hold a gold answer and refuse
the others (and every sentence for an unanswerable question). Result (2026-12-07,
docs/studies.md): 93.5% of those holding the answer pass at windows 3 to 6, and more of the
others pass the wider it is; 3 stays.

    .venv/bin/python studies/count_window.py ../shared/benchmarks/squad2-dev/dev-v2.0.json
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from count_check_space import how_many_paragraphs  # noqa: E402

from qa.answer import COUNTED_MIN_COSINE, counted_cosine  # noqa: E402
from qa.config import Config  # noqa: E402
from qa.embed import load_encoder  # noqa: E402
from qa.lab.eval import holds  # noqa: E402
from qa.question import _counted  # noqa: E402
from qa.text import match_text  # noqa: E402
from qa.tokens import small  # noqa: E402

WINDOWS = (2, 3, 4, 5, 6, 8)


def main(squad: str, split: str = "select") -> None:
    encoder = load_encoder(Config())
    model = encoder.weights_sha256
    rows = []  # (holds the answer, {window: passes})
    for asked, q_tokens, texts, s_tokens in how_many_paragraphs(encoder, squad, split):
        for q, qt in zip(asked, q_tokens):
            counted = _counted(q["question"], small(qt, model, content_only=False))
            if counted is None:
                continue
            gold = [a["text"] for a in q["answers"]] if not q.get("is_impossible") else []
            for text, st in zip(texts, s_tokens):
                kept = small(st, model)
                cosines = {w: counted_cosine(counted, match_text(text), kept, q["question"], w) for w in WINDOWS}
                rows.append((bool(gold) and holds(text, gold),
                             {w: c is not None and c >= COUNTED_MIN_COSINE for w, c in cosines.items()}))
    good = [p for ok, p in rows if ok]
    bad = [p for ok, p in rows if not ok]
    print(f"{split}: {len(good)} (question, sentence) pairs holding the answer, {len(bad)} not")
    for w in WINDOWS:
        print(f"window {w}: passes {np.mean([p[w] for p in good]):.1%} of those holding the answer, "
              f"{np.mean([p[w] for p in bad]):.1%} of the others")


if __name__ == "__main__":
    main(*sys.argv[1:])
