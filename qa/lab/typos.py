"""One seeded typo in a question: how the typo eval set is made and how training
teaches the reader to read past one (`qa.train`). Kept free of the product's heavier
imports so that training runs where only PyTorch and tokenizers are installed."""

from __future__ import annotations

import random
import re


def one_typo(question: str, rng: random.Random) -> str:
    """The question with one typo in one word of four letters or more: a letter dropped,
    doubled, swapped with the next, or struck as its neighbour on the keyboard (never the
    first letter, which people rarely miss)."""
    words = list(re.finditer(r"[A-Za-z]{4,}", question))
    if not words:
        return question
    w = typo = ""
    while typo == w:  # swapping the "ee" of "Leeds" is no typo: draw again
        m = rng.choice(words)
        w, i = m.group(), rng.randrange(1, len(m.group()) - 1)
        near = _KEYS_NEAR.get(w[i].lower(), w[i])
        typo = rng.choice([w[:i] + w[i + 1:], w[:i] + w[i] + w[i:], w[:i] + w[i + 1] + w[i] + w[i + 2:],
                           w[:i] + rng.choice(near) + w[i + 1:]])
    return question[:m.start()] + typo + question[m.end():]


_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_KEYS_NEAR = {k: "".join(r[j] for j in (i - 1, i + 1) if 0 <= j < len(r)) for r in _ROWS for i, k in enumerate(r)}
