"""Text matching helpers shared by indexing, retrieval and answer scoring."""

from __future__ import annotations

import re
from functools import lru_cache

import Stemmer

# One character in, one character out, so offsets into the normalised copy are
# offsets into the stored text.
_MATCH_TABLE = str.maketrans(
    {
        "\u00a0": " ", "\u202f": " ", "\u2007": " ", "\u2009": " ", "\u200b": " ",
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
        "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
        "\u2026": ".",
    }
)


def match_text(text: str) -> str:
    """The text with look-alike characters folded (non-breaking spaces, curly quotes, dashes)."""
    return text.translate(_MATCH_TABLE)


STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had has
    have having he her here hers herself him himself his how i if in into is it its itself just me more
    most my myself no nor not now of off on once only or other our ours ourselves out over own same she
    should so some such than that the their theirs them themselves then there these they this those
    through to too under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves s t don doesn didn isn wasn weren won't's whose""".split()
)

_WORD = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")


@lru_cache(maxsize=1)
def _stemmer():
    return Stemmer.Stemmer("english")


def terms(text: str) -> list[str]:
    """Stemmed content words: the unit of BM25 and of lexical overlap."""
    words = [w.replace(",", "") for w in _WORD.findall(match_text(text).lower())]
    words = [w for w in words if w not in STOPWORDS]
    return _stemmer().stemWords(words)
