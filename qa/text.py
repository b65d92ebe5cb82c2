"""Text matching helpers shared by indexing, retrieval and answer scoring."""

from __future__ import annotations

import difflib
import math
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


def words(text: str) -> list[str]:
    """Content words, lower case, as written."""
    found = [w.replace(",", "") for w in _WORD.findall(match_text(text).lower())]
    return [w for w in found if w not in STOPWORDS]


def terms(text: str) -> list[str]:
    """Stemmed content words: the unit of BM25 and of lexical overlap."""
    return _stemmer().stemWords(words(text))


_ACRONYM = re.compile(r"((?:[A-Z][\w'-]*[ \t]+(?:(?:of|and|for|the|&)[ \t]+)?){1,8})\(([A-Z]{2,8})s?\)")


def find_acronyms(text: str) -> dict[str, str]:
    """Acronyms a text defines, as "Liverpool Health Partners (LHP)": {"LHP": "Liverpool Health Partners"}."""
    found = {}
    for m in _ACRONYM.finditer(match_text(text)):
        acronym = m.group(2)
        words = m.group(1).split()
        capitals = [i for i, w in enumerate(words) if w[0].isupper()][-len(acronym):]
        if len(capitals) == len(acronym) and "".join(words[i][0] for i in capitals) == acronym:
            found[acronym] = " ".join(words[capitals[0]:])
    return found


class Lexicon:
    """Word statistics of a corpus: sentence IDF, defined acronyms, and its vocabulary for spelling."""

    def __init__(self, sentence_texts: list[str], documents: list[str]):
        self.acronyms: dict[str, tuple[str, ...]] = {}
        for text in documents:
            for acronym, long_form in find_acronyms(text).items():
                self.acronyms.setdefault(terms(acronym)[0], tuple(terms(long_form)))
        sentence_words = [words(t) for t in sentence_texts]
        self.sentence_sequences = [_stemmer().stemWords(ws) for ws in sentence_words]  # terms in reading order
        self.sentence_terms = [self.canonical(set(seq)) for seq in self.sentence_sequences]
        df: dict[str, int] = {}
        for ts in self.sentence_terms:
            for t in ts:
                df[t] = df.get(t, 0) + 1
        n = max(1, len(self.sentence_terms))
        self.idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
        self.unseen_idf = math.log(1 + (n + 0.5) / 0.5)
        # Spelling is corrected word to word, not stem to stem: "stratgic" is nearer
        # "strategic" than "strategies", and stems of different words can be closer than
        # the words themselves.
        self._words = {w for ws in sentence_words for w in ws}
        self._by_initial: dict[str, list[str]] = {}
        for w in sorted(self._words):
            self._by_initial.setdefault(w[0], []).append(w)

    def weight(self, term: str) -> float:
        return self.idf.get(term, self.unseen_idf)

    def canonical(self, ts: set[str]) -> set[str]:
        """One term per defined entity: its long form, where fully present, folds into its acronym."""
        out = set(ts)
        for acronym, long_terms in self.acronyms.items():
            if long_terms and all(t in ts for t in long_terms):
                out.difference_update(long_terms)
                out.add(acronym)
        return out

    def correct(self, word: str) -> str:
        """The term of a content word; a word the corpus never uses is first mapped to a
        close one it does (typos and other word forms)."""
        term = _stemmer().stemWord(word)
        if term in self.idf or word in self._words or len(word) < 5 or word.isdigit():
            return term
        close = difflib.get_close_matches(word, self._by_initial.get(word[0], []), n=1, cutoff=0.84)
        return _stemmer().stemWord(close[0]) if close else term

    def query_terms(self, text: str) -> set[str]:
        return self.canonical({self.correct(w) for w in words(text)})

    def phrases(self, question: str) -> list[tuple[str, ...]]:
        """The terms, in order, of each name of two or more words the question gives;
        "Normans and Byzantines" and "Louis XIV's France" are two names each."""
        out = []
        for a, b in named_spans(question):
            for part in _NAME_JOINS.split(match_text(question[a:b])):
                ts = tuple(self.correct(w) for w in words(part))
                if len(ts) > 1:
                    out.append(ts)
        return out


_NAME_JOINS = re.compile(r"\s+(?:and|&)\s+|'s\s+")
_NAMED = re.compile(r"\b(?:[A-Z][\w'&-]*(?:\s+(?:of|and|for|the|&)\s+|\s+)?)*[A-Z][\w'&-]*")
_NOT_NAMES = STOPWORDS | {"tell", "list", "name", "give", "show", "please"}


def named_things(text: str) -> list[str]:
    return [text[a:b] for a, b in named_spans(text)]


def named_spans(text: str) -> list[tuple[int, int]]:
    """Where the capitalised phrases a question names are, bar a capitalised first word that is not a name."""
    out = []
    for m in _NAMED.finditer(match_text(text)):
        start, words = m.start(), m.group().split()
        if start == 0 and words[0].lower() in _NOT_NAMES:  # sentence case, not a name
            start = m.group().find(words[1]) if len(words) > 1 else m.end()
        if start < m.end():
            out.append((start, m.end()))
    return out
