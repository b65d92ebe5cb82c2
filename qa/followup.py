"""Follow-up questions: what a question asked after others is about, decided rather than
always borrowed.

`resolve` reads the question against the conversation so far (each turn's question and
the product's own answer) and says what to search:

* a question that names its own subject, with no word pointing back, is searched as typed
  ("Who chairs Liverpool Health Partners?" after talk of Leeds);
* "he", "she", "his", "her" point at the person the latest answer named ("Professor Phil
  Wood, … said" after "Who said …?"; "she" never a Sir), not at an organisation that
  answer also names; where the conversation's questions named a person too ("his thesis"
  after "Who was Feynman's thesis advisor?"), both are read and the surer kept;
* "it", "its", "they", "this" … point at the subject of the conversation: the things the
  latest question that named any named, or what the last such word pointed at ("Is it
  the only one in Yorkshire?" leaves the subject where it was); "that partnership" may
  point at the Leeds Academic Health Partnership the last answer named instead, so it is
  read that way too;
* "And in Leeds?", "What about Leicester?": the previous question asked again of the new
  subject (in place of its first name, and of its last where it named two: "Does the LSP
  include Merseyside Police?", then "What about Torus?"), not as typed. As typed, the
  fragment matches any sentence about Leicester surely; where the question asked again
  finds nothing, the documents have no such answer about Leicester. "And the annual
  spending?", naming its thing in common words, is read with the conversation's subject
  and, as a fragment is, after the last question;
* a question that names nothing and points at nothing ("Who is the chair elect?") may
  lean on the conversation or stand alone: both readings are offered, and the answer the
  reader is surer of is kept (`qa.pipeline.QA.ask`); a fragment of a few words with no
  verb ("At which meeting?") is read with the conversation's subject and after the last
  question; a lone question word ("Where?") only after the last question;
* a question that says it turns to what it names ("back to Leeds: …", "Liverpool Health
  Partners - what region does it cover?") is searched as typed.

Each earlier turn is resolved as it was when asked, and stands for the reading its answer
bore out; an ellipsis or a fragment leaves the last whole question in place for the next.

The query returned is what is searched and shown ("… (Leeds Academic Health Partnership)").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .text import STOPWORDS, TITLES as _TITLES, is_common_word, named_spans

_PERSONAL = re.compile(r"\b(?:he|she|his|her|hers|him|himself|herself)\b", re.I)
_POINTING = re.compile(r"\b(?:it|its|it's|they|their|them|theirs|this|that|these|those|there|the same)\b", re.I)
# In a question that names things itself, "that" and "there" are seldom pointers ("Are there
# nine…?", "Who said that…?"): only these are.
_PLURAL = re.compile(r"\b(?:they|their|them|theirs)\b", re.I)
_DEMONSTRATIVE = re.compile(r"\b(?:that|this|these|those)\s+([a-z]{3,})\b", re.I)
_POINTING_PRONOUN = re.compile(r"\b(?:it|its|it's|they|their|them|theirs)\b", re.I)
# "And in Leeds?", "What about the University of Leicester?", "Merseyside Police too?": a few words, no verb. Matched
# by words in Python, not by one regular expression: nested repeats there backtracked for
# hours on one long word.
_ELLIPSIS_OPENINGS = ("and what about", "what about", "how about", "what of", "and")
_ELLIPSIS_CLOSINGS = ("too", "as well", "also")
_SUBJECT_PRONOUNS = {"it", "they", "he", "she", "we", "i", "you", "this", "that", "there", "these", "those"}
_ELLIPSIS_MAX_WORDS = 5
_NOT_IN_ELLIPSIS = {"is", "are", "was", "were", "do", "does", "did", "has", "have", "had", "can", "will", "would",
                    "what", "who", "whom", "whose", "how", "when", "where", "which", "why"}
_HERS = re.compile(r"\b(?:she|her|hers|herself)\b", re.I)
_HIS_TITLES, _HER_TITLES = {"sir", "lord", "mr"}, {"dame", "lady", "mrs", "ms", "miss", "baroness"}
# Words that make a name an organisation's or a place's, not a person's.
_BODIES = {"university", "universities", "trust", "trusts", "partnership", "partnerships", "partners", "council",
           "nhs", "hospital", "hospitals", "health", "care", "network", "board", "fund", "zone", "college", "school",
           "group", "institute", "foundation", "authority", "agency", "police", "service", "services", "centre",
           "center", "system", "committee", "alliance", "company", "ltd", "plc", "city", "county", "region",
           "department", "ministry", "government", "office", "association", "society", "club", "commission",
           "innovation", "programme", "leeds", "liverpool", "england", "uk", "church", "cathedral", "abbey",
           "palace", "castle", "museum", "bridge", "street", "road", "park", "station", "square", "house", "hall",
           "island", "islands", "river", "mountain", "war", "battle", "treaty", "pact", "act", "day", "saturday"}


# A name after an article or an opening quote is a thing's: "a ‘Precision Medicine Catapult’".
_THING = re.compile(r"(?:\b(?:a|an|the)\s+|[‘“\"'])$", re.I)
# Named, but never what a conversation is about: "What's happening in June?" leaves it where it was.
_CALENDAR = {"january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
             "november", "december", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
_POSSESSIVE = re.compile(r"['’]s?$")  # "the LSP's", and "Leeds' track record"
_WHO_SAID = re.compile(r"^\W*who\s+(?:said|says|wrote|writes|made|makes|gave)\s+(?:that|this|it)\b", re.I)
_OWNERS = {"its", "his", "her", "their", "our", "my", "your", "whose", "a", "an", "this", "that", "these", "those"}
_BORROWED = re.compile(r" \([^()]*\)$")
# A question that says it turns to another subject ("back to Leeds: …", "switching to the
# LSP - …") is about what it names; so is one headed by a name alone (`_switches`).
_SWITCH = re.compile(r"^\W*(?:(?:ok(?:ay)?|right|so|now)\W+)?(?:(?:and\s+)?(?:back|switching|switch|turning|"
                     r"going back|coming back|returning|moving on|over) to|over in|different topic|new topic|"
                     r"changing (?:the )?subject|as for|compare with)\b", re.I)
_HEADED = re.compile(r"^\s*(?:the\s+)?([^?]{2,60}?)(?:\s[-–—]|\s*:)\s")  # "Liverpool Health Partners - what …"
# Whether a thing belongs to a body, the thing where an ellipsis puts another.
_IS_MEMBER = re.compile(r"^\W*(?:is|are|was|were)\s+(?P<thing>.+?)\s+(?:(?:also\s+)?(?:a\s+)?(?:part|member|partner|"
                        r"one|members|partners)\s+(?:of|in)|among|in)\s+\S", re.I)
_INCLUDES = re.compile(r"^\W*(?:does|do|did)\s+.+?\s+(?:include|have|count|involve)\s+(?P<thing>[^?]+?)\s*(?:among\b[^?]*)?\?*\s*$",
                       re.I)
FRAGMENT_WORDS = 4  # a follow-up this short, naming nothing and with no verb, carries on the last question
_AUXILIARIES = {"is", "are", "was", "were", "be", "been", "do", "does", "did", "has", "have", "had", "can", "could",
                "will", "would", "should", "may", "might", "must", "shall", "what's", "who's", "where's", "when's"}


@dataclass(frozen=True)
class Resolution:
    query: str  # what to search first
    alternative: str | None = None  # a second reading, where it is unsure which one is meant


@dataclass(frozen=True)
class _Conversation:
    """What a conversation so far leaves a follow-up to lean on (`_walk`)."""

    previous: str = ""  # the last whole question, as it was read
    subject: str = ""  # what the latest question that named anything named (bar a person), or "it" pointed at
    person: str = ""  # the person the latest answer naming one named
    about_people: str = ""  # that answer
    answer: str = ""  # the latest answer


def resolve(question: str, history: list[dict] | None) -> Resolution:
    return _resolved(question, _walk(history)) if history else Resolution(question)


def _resolved(question: str, talk: _Conversation) -> Resolution:
    previous, subject = talk.previous, talk.subject
    person = person_in(talk.about_people, question) if _PERSONAL.search(question) else talk.person
    if _switches(question):  # "back to Leeds: who …": its own subject, said so
        return Resolution(question)
    answered = _named_in(talk.answer, subject, person)
    if (said := _ellipsis(question)) is not None:  # the last question asked again of what it names, or of this
        new = _named_anew(said)
        borrowed = f"{question} ({subject})" if subject else question
        if new and said.split()[-1].islower():  # "And NHS organisations?" may name no new thing: read both ways
            return Resolution(borrowed, _asked_of(previous, new))
        if new and _already_named(previous, new):  # "What about the LSP?" after a question about it: as typed
            return Resolution(question)
        if new:  # not also as typed: "What about the LAHP?" matches any sentence about it surely
            return _asked_of_either(previous, new)
        # "What about the police?" after "Is the fire service part of the LSP?": the same asked
        # of it. "And the annual spending?": a thing named in common words, read as a fragment is.
        return Resolution(_member_asked(previous, said) or borrowed, _carried_on(previous, question))
    if _WHO_SAID.search(question) and person and person.lower() not in question.lower():
        # "Who said that?" after a quote: the person the answer quotes, or else the subject.
        return Resolution(f"{question} ({person})", f"{question} ({subject})" if subject else question)
    if _PERSONAL.search(question) and person and person.lower() not in question.lower():
        # "his thesis" after "Who was Feynman's thesis advisor?" (answered "… Wheeler …") may be
        # Feynman's: a subject that names no body is read too, and the surer kept. An acronym
        # ("LAHP") names a body, never him or her.
        named = [n for n in subject.split(", ") if n and not n.isupper() and not {w.lower() for w in n.split()} & _BODIES]
        return Resolution(f"{question} ({person})", f"{question} ({named[0]})" if named else None)
    pointing = _POINTING_PRONOUN if names(question) else _POINTING
    if pointing.search(question) and subject and not _mentions(question, subject):
        # A question naming its own things may point at one of them ("… the LAHP when it
        # was first announced"): read as typed too. "they" after "Which trusts …?" may be
        # the trusts the answer named: read that way too.
        return Resolution(f"{question} ({subject})", question if names(question) else
                          f"{question} ({answered})" if answered and _PLURAL.search(question) else
                          _demonstrated(question, answered))
    if _fragment(question) and len(_words(question)) == 1 and previous:
        # "Where?" asks nothing of the subject alone ("Where? (Warsaw Pact)" found where the
        # pact's states were): only the last question carries it, with what it was about.
        return Resolution(f"{_carried_on(previous, question)} ({subject})" if subject else _carried_on(previous, question))
    if names(question) or not subject or _mentions(question, subject):
        return Resolution(question)
    if _fragment(question):
        # "At which meeting?", "Aimed at whom?": a fragment that carries on the last question.
        return Resolution(f"{question} ({subject})", _carried_on(previous, question))
    return Resolution(question, f"{question} ({subject})")


def _switches(question: str) -> bool:
    """Whether the question says it turns to a subject it names: "back to Leeds: …", or a
    name alone before a dash or a colon ("Merseyside Police: what does it do?"; not "Which
    trust does he run - and since when?")."""
    headed = _HEADED.match(question)
    return bool(names(question)) and (bool(_SWITCH.search(question)) or
                                      (headed is not None and names(headed.group(1)) == [headed.group(1)]))


def _words(question: str) -> list[str]:
    """Its words, in lower case, with one apostrophe ("what’s" is "what's")."""
    return re.findall(r"[\w'-]+", question.lower().replace("’", "'"))


def _fragment(question: str) -> bool:
    """A few words with no verb of their own, naming and pointing at nothing ("At which
    meeting?", "Since when?"); "What is personalised medicine?" is a whole question, however
    short, and so is "Who funds it?"."""
    words = _words(question)
    return len(words) <= FRAGMENT_WORDS and not set(words) & _AUXILIARIES and not names(question) and \
        not _POINTING.search(question)


def _ellipsis(question: str) -> str | None:
    """What follows "And …", "What about …" (or comes before "… too") in a follow-up of a few
    words and no verb, or None."""
    said = question.strip().rstrip("?!. ").strip()
    low = said.lower()
    opening = next((o for o in _ELLIPSIS_OPENINGS if low == o or low.startswith(o + " ")), None)
    closing = next((c for c in _ELLIPSIS_CLOSINGS if low.endswith(" " + c)), None)  # "Police too?"
    if opening is None and closing is None:
        return None
    rest = said[len(opening or ""):len(said) - len(closing or "")].strip(" ,")
    words = rest.split()
    if opening is None and words and words[0].lower() in _SUBJECT_PRONOUNS:  # "It includes Leeds Beckett too?"
        return None
    if not 1 <= len(words) <= _ELLIPSIS_MAX_WORDS or {w.lower().strip(",") for w in words} & _NOT_IN_ELLIPSIS:
        return None
    return rest


def _named_anew(said: str) -> list[str]:
    """What an ellipsis names, with its article ("the Leeds Academic Health Partnership"), or
    nothing. Its first word does not open the question: "York" of "And York?" is a name."""
    return [re.sub(r"^.*?\b(the\s+)?(?=" + re.escape(n) + ")", r"\1", said, flags=re.I) if n in said else n
            for n in names(f"and {said}")][:1]


def names(text: str) -> list[str]:
    """The capitalised names a question uses, bar a first word that is an ordinary word
    capitalised only because it opens the sentence ("Since", "Where")."""
    return [text[a:b] for a, b in _name_spans(text)]


def _name_spans(text: str) -> list[tuple[int, int]]:
    """Where each of `names` is in the text."""
    out = []
    for a, b in named_spans(text):
        name = text[a:b]
        if a == len(text) - len(text.lstrip()) and " " not in name and \
                is_common_word(_POSSESSIVE.sub("", name).lower()):  # "What's" too
            continue
        # "the LSP's members" names the LSP; "Is Alder Hey Children's a partner?" names it whole.
        if _POSSESSIVE.search(name) and (owned := re.match(r"\s+([a-z]+)", text[b:])) and \
                owned.group(1) not in STOPWORDS:
            b -= len(_POSSESSIVE.search(name).group())
        out.append((a, b))
    return out


def person_in(answer: str, asked: str = "") -> str:
    """The person an answer names first: a name led by a title ("Professor Phil Wood"), or
    else one of two or three words none of which is an organisation's or a place's; for a
    question asking after "she" or "he", the first whose title does not say otherwise ("she"
    after "Sir Alan Langlands, … Councillor Lisa Mulherin, …" is Lisa Mulherin)."""
    found = [(answer[a:b], a) for a, b in _name_spans(answer)]
    # A title alone is no one: "Dr. Helena Okafor" reads as "Dr" and then "Helena Okafor".
    titled = [n for n, _ in found if n.split()[0].lower().rstrip(".") in _TITLES and len(n.split()) > 1]
    plain = [n for n, a in found if 2 <= len(n.split()) <= 3 and not {w.lower() for w in n.split()} & (_BODIES | _TITLES)
             and not _THING.search(answer[max(0, a - 8):a])]
    unlike = _HIS_TITLES if _HERS.search(asked) else _HER_TITLES if _PERSONAL.search(asked) else set()
    name = ([n for n in titled + plain if n.split()[0].lower().rstrip(".") not in unlike] or titled or plain or [""])[0]
    # A middle initial ends the capitalised run: "Robert R. Wilson" is found as "Robert R".
    whole = re.search(re.escape(name) + r"\.(?:\s+[A-Z]\.)*\s+[A-Z][\w'’-]+", answer) if name else None
    return whole.group() if whole else name


def _walk(history: list[dict]) -> _Conversation:
    """The conversation as the next question meets it. Each turn is resolved in order, as
    it was when asked, so follow-ups of follow-ups chain; a turn read two ways stands for
    the reading its answer bore out ("What will they become?" for the trusts the answer
    names, not the university the first question named). An ellipsis or a fragment leaves
    the last whole question in place: after "Is Merseyside Police part of the LSP?" and
    "What about the fire service?", "And Liverpool Hope University?" asks the first again."""
    talk = _Conversation()
    for turn in history:
        asked, answer = turn.get("question", ""), turn.get("answer", "")
        said = _ellipsis(asked)
        reading = _borne_out(_resolved(asked, talk), answer) if talk.previous else asked
        new = _named_anew(said) if said is not None and talk.previous and not said.split()[-1].islower() else []
        borrowed = _borrowed(reading, asked)
        whole = not talk.previous or new or (said is None and not _fragment(asked))
        if new:  # "And in Leeds?" was "How many partners does Leeds have?", and is about Leeds
            subject = ", ".join(names(new[0]))
        elif not whole:  # a fragment, read after the last question, names nothing new
            subject = talk.subject
        elif borrowed and _PERSONAL.search(asked):  # "his other role? (Sir Alan Langlands)": a person's, not a subject
            subject = ", ".join(n for n in names(asked) if n.lower() not in _CALENDAR)
        elif borrowed:  # what "it" or "they" pointed at stays the subject: "Is it the only one in Yorkshire?"
            subject = borrowed
        elif talk.subject and _only_describes(asked):  # "And how many NHS organisations?" is still about the LAHP
            subject = talk.subject
        else:
            subject = ", ".join(n for n in names(reading) if n != talk.person and n.lower() not in _CALENDAR)
        named = person_in(answer)
        talk = _Conversation(previous=reading if whole else talk.previous, subject=subject or talk.subject,
                             person=named or talk.person, about_people=answer if named else talk.about_people,
                             answer=answer)
    return talk


def _only_describes(question: str) -> bool:
    """Whether a short follow-up ("And how many NHS organisations?") uses each name only to
    describe a thing named in common words ("NHS organisations"): it names no new subject.
    ("Who chairs the LSP board?" asks about the LSP.)"""
    spans = _name_spans(question)
    words = _words(question)
    short = len(words) <= FRAGMENT_WORDS or words[0] in ("and", "also")
    return short and bool(spans) and all((m := re.match(r"\s+([a-z][\w'’-]*)", question[b:])) and m.group(1) not in STOPWORDS
                               for _, b in spans)


def _borrowed(reading: str, asked: str) -> str:
    """What a reading added after the question as typed ("… ? (Liverpool Health Partners)"), or ""."""
    m = _BORROWED.search(reading)
    return m.group()[2:-1] if m and reading[:m.start()] == asked else ""


def _named_in(answer: str, subject: str, person: str) -> str:
    """The organisations an answer's first sentence names that the conversation had not."""
    first = answer.split("[1]")[0]
    known = {part.strip().lower() for part in subject.split(",")} | {person.lower()}
    # Without a closing quote or a footnote's number: "‘Precision Medicine Catapult’2".
    found = [n.rstrip("’'0123456789") for n in names(first) if n.lower() not in known and len(n.split()) > 1]
    return ", ".join(found[:3])


def _demonstrated(question: str, answered: str) -> str | None:
    """"How many partners does that partnership have?" after an answer naming the Leeds
    Academic Health Partnership: the question read of the name in the last answer whose
    last word is the thing pointed at, or None."""
    pointed = _DEMONSTRATIVE.search(question)
    if not pointed or not answered:
        return None
    thing = pointed.group(1).lower().rstrip("s")
    named = next((n for n in answered.split(", ") if n.split()[-1].lower().rstrip("s") == thing), None)
    return f"{question} ({named})" if named else None


def _asked_of(previous: str, new: list[str], which: int = 0) -> str:
    """The previous question asked of the new subject: its first name (or `which`) replaced
    where it stands, with its article, or the new one added where it named none."""
    bare = _bare(previous)
    spans = _name_spans(bare)
    if not spans:
        return f"{bare} ({', '.join(new)})"
    a, b = spans[which]
    article = bare[:a].lower().endswith("the ")
    a -= len("the ") if article else 0
    before = re.findall(r"[\w'’]+", bare[:a].lower())[-2:]
    # Its article only where one can stand: "… does the LAHP have?", "Who chairs the LAHP?",
    # not after "its first": "Who was its first Head of State?".
    said = re.sub(r"^the\s+", "", new[0], flags=re.I) if not article and set(before) & _OWNERS else new[0]
    return bare[:a] + said + bare[b:]


def _member_asked(previous: str, said: str) -> str | None:
    """A question whether something belongs to a body ("Is the fire service part of the
    LSP?", "Does the LSP include the fire service?") asked of another thing, or None."""
    bare = _bare(previous)
    m = _IS_MEMBER.match(bare) or _INCLUDES.match(bare)
    return bare[:m.start("thing")] + said + bare[m.end("thing"):] if m else None


def _asked_of_either(previous: str, new: list[str]) -> Resolution:
    """The previous question asked of the new subject in place of its first name, and where
    it named more than one, in place of its last too, to be read both ways: after "Does the
    LSP include Merseyside Police?", "What about Torus?" asks of Torus in place of the police.
    """
    first, last = _asked_of(previous, new), _asked_of(previous, new, -1)
    return Resolution(first, last if last != first else None)


def _borne_out(readings: Resolution, answer: str) -> str:
    """Of a turn's readings, the one whose names' words the answer it got quotes more of
    (the first where they tie): after "Does the LSP include Merseyside Police?", "What about
    Torus?" answered "- Torus … The Liverpool Strategic Partnership (LSP) …" was read
    "Does the LSP include Torus?"."""
    quoted = set(re.findall(r"[\w'’-]+", answer.lower()))
    acronyms = set(re.findall(r"\b[A-Z]{3,}\b", answer))

    def found(name: str) -> float:  # by the words that tell it apart: "Liverpool", not "Health Partners"
        words = name.lower().split()
        if "".join(w[0] for w in name.split() if w[0].isupper()) in acronyms:
            return 1.0  # by its initials: "LHP provides …"
        telling = [w for w in words if not is_common_word(w)] or words
        return sum(w in quoted for w in telling) / len(telling)

    # A name the answer does not quote counts against its reading: of "Is Leeds the only UK city
    # …?" and the same with "(Liverpool Health Partners)" after it, an answer about Leeds and
    # the UK bore out the first.
    return max([q for q in (readings.query, readings.alternative) if q] or [readings.query],
               key=lambda q: sum(2 * found(n) - 1 for n in names(q)))


def _already_named(previous: str, new: list[str]) -> bool:
    return new[0].lower().removeprefix("the ") in {n.lower() for n in names(_bare(previous))}


def _carried_on(previous: str, question: str) -> str | None:
    """The last question, without the subject it borrowed, and then this one."""
    return f"{_bare(previous)} {question}" if previous else None


def _bare(previous: str) -> str:
    """A question without the subject `resolve` added after it ("… have? (Leeds)"); a
    bracket the user typed inside it ("the Partnership (LAHP) do?") stays."""
    return _BORROWED.sub("", previous)


def _mentions(question: str, subject: str) -> bool:
    return any(part.strip().lower() in question.lower() for part in subject.split(","))
