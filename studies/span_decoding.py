"""How the answer phrase is read out of the reader's start and end logits, on the leads
that hold the answer: SQuAD exact match and F1 on `qa fit`'s saved readings, each lead
read again alone by the shipped reader, for several ways of choosing the span.

    .venv/bin/python studies/span_decoding.py reports/trained7   # readings-select/report.jsonl

Variants: as shipped until 2026-12-01 (no span where [CLS] beats every span: the lead
scores 0), always the best span ("force"), a shorter longest span (15 or 10 tokens), a
penalty per token of length, and pairs of those.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa.config import Config  # noqa: E402
from qa.lab.eval import phrase_scores  # noqa: E402
from qa.lab.fit import load_records  # noqa: E402
from qa.read import load_reader  # noqa: E402
from qa.scoring import ReaderModel  # noqa: E402

VARIANTS = {"none below [CLS]": {}, "force": {"force": True}, "max 15": {"max_len": 15}, "max 10": {"max_len": 10},
            "penalty 0.05": {"penalty": 0.05}, "penalty 0.1": {"penalty": 0.1}, "penalty 0.2": {"penalty": 0.2},
            "force, max 15": {"force": True, "max_len": 15}, "force, penalty 0.1": {"force": True, "penalty": 0.1}}


def leads(path: Path, model: ReaderModel) -> list[tuple[str, str, list[str]]]:
    """(question, lead text, gold answers) where the fused lead among 10 holds the answer."""
    out = []
    for r in load_records(path):
        r = r.top(10)
        if r.kind == "yes" and len(r.linear):
            lead = int(np.argmax(r.fused(model)))
            if r.labels[lead]:
                out.append((r.question, r.texts[lead], list(r.answers)))
    return out


def decode(encoded, start, end, max_len: int = 30, penalty: float = 0.0, force: bool = False):
    inside = np.array([i for i, seq in enumerate(encoded.sequence_ids) if seq == 1])
    pair = start[inside][:, None] + end[inside][None, :]
    length = np.arange(len(inside))[None, :] - np.arange(len(inside))[:, None]
    pair = np.where((length >= 0) & (length < max_len), pair - penalty * np.maximum(length, 0), -np.inf)
    i, j = np.unravel_index(int(np.argmax(pair)), pair.shape)
    if not force and pair[i, j] + penalty * (j - i) <= start[0] + end[0]:
        return None
    return encoded.offsets[inside[i]][0], encoded.offsets[inside[j]][1]


def main(folder: Path) -> None:
    reader, model = load_reader(Config()), ReaderModel.load()
    for split in ("select", "report"):
        found = leads(folder / f"readings-{split}.jsonl", model)
        scores = {name: [] for name in VARIANTS}
        for question, text, answers in found:
            encoded, (_, start, end) = reader.forward_pair((reader._fitted(question), text))
            for name, how in VARIANTS.items():
                span = decode(encoded, start, end, **how)
                scores[name].append(phrase_scores(text[span[0]:span[1]] if span else "", answers))
        print(f"{split} ({len(found)} leads holding the answer): EM / F1")
        for name, rows in scores.items():
            exact, f1 = np.mean(rows, axis=0) * 100
            print(f"  {name}: {exact:.1f} / {f1:.1f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
