"""Split documents into quotable sentences and pack them into overlapping chunks.

A "sentence" is the unit an answer may quote: a sentence, a heading without a full
stop, or one item of a bullet list. Chunks are runs of whole sentences sized in
tiktoken `cl100k_base` tokens; they never cross masked page furniture, so a chunk's
text is always `doc.text[start:end]`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from .text import cl100k, match_text
from .types import Document, Sentence

Span = tuple[int, int]
TokenCounter = Callable[[str], int]

# Words that take a full stop but rarely end a sentence.
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "mx", "dr", "prof", "sr", "jr", "st", "rev", "hon", "cllr", "gen", "col", "lt",
    "sgt", "capt", "maj", "cmdr", "adm", "gov", "sen", "rep", "pres", "fr", "mt", "ft", "vs", "e.g",
    "i.e", "cf", "al", "fig", "figs", "approx", "dept", "est", "viz", "ca", "c",
}
# Words that take a full stop before a number: "No. 10", "Jan. 5", "pp. 13-14".
_BEFORE_NUMBER = {
    "no", "nos", "p", "pp", "vol", "ch", "sec", "art", "op", "jan", "feb", "mar", "apr", "jun", "jul",
    "aug", "sep", "sept", "oct", "nov", "dec",
}
_BULLET = re.compile(r"[-*\u2022\u25aa\u25e6\u2023\u25cf][ \t]+")
_NUMBERED = re.compile(r"\(?\d{1,3}[.)][ \t]+")
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*")
_CONTINUES = re.compile(r"[a-z,;:)\]]")


def starts_item(line: str) -> bool:
    """Whether a line (stripped) begins a bulleted or numbered list item."""
    return bool(_BULLET.match(line) or _NUMBERED.match(line))


_MARKER_REACH = 64  # characters before a sentence where its line's list marker may be


def is_list_item(text: str, start: int) -> bool:
    """Whether the sentence starting at `start` is an item of a bulleted or numbered list."""
    # Only the last `_MARKER_REACH` characters are looked at: a sentence far into its line
    # follows text, not a marker, and reading back to the line's start made a document of
    # one long line quadratic.
    reach = max(0, start - _MARKER_REACH)
    line_start = text.rfind("\n", reach, start) + 1
    if not line_start and reach:
        return False
    prefix = text[line_start:start].lstrip()
    if not prefix:  # a numbered item keeps its number: "1. First step."
        return bool(_NUMBERED.match(text, start))
    return bool(_BULLET.fullmatch(prefix))


def split_sentences(text: str, masked: tuple[Span, ...] = (), limit: int | None = None) -> list[Span]:
    """Sentence spans of the text outside the masked spans, in order; past `limit` of them
    it stops (a document over its budget is refused without splitting the rest of it)."""
    norm = match_text(text)
    spans: list[Span] = []
    for seg_start, seg_end in _unmasked(len(text), masked):
        for b_start, b_end in _blocks(norm, seg_start, seg_end):
            spans.extend(_sentences_in_block(norm, b_start, b_end))
            if limit is not None and len(spans) > limit:
                return spans
    return spans


def _unmasked(length: int, masked: tuple[Span, ...]) -> list[Span]:
    out, pos = [], 0
    for s, e in masked:
        if s > pos:
            out.append((pos, s))
        pos = max(pos, e)
    if pos < length:
        out.append((pos, length))
    return out


def _blocks(norm: str, start: int, end: int) -> Iterator[Span]:
    """Lines, except that a hard-wrapped line continuing a sentence joins the one before."""
    block: Span | None = None  # the last line seen, held until the next shows it is complete
    pos = start
    prev_open = False  # the previous line may continue on the next one
    while pos < end:
        nl = norm.find("\n", pos, end)
        line_end = end if nl == -1 else nl
        line = norm[pos:line_end].strip()
        if not line:
            prev_open = False
        else:
            if block and prev_open and not starts_item(line) and line[0].islower():
                block = (block[0], line_end)
            else:
                if block:
                    yield block
                block = (pos, line_end)
            prev_open = not line.endswith((".", "!", "?", ":", '"', "'"))
        pos = line_end + 1
    if block:
        yield block


def _sentences_in_block(norm: str, start: int, end: int) -> list[Span]:
    while start < end and norm[start].isspace():
        start += 1
    m = _BULLET.match(norm, start, end)
    if m:  # the marker is layout, not part of the item
        start = m.end()
    numbered = _NUMBERED.match(norm, start, end)  # "1. " is a marker, not a sentence end
    out: list[Span] = []
    for m in _SENTENCE_END.finditer(norm, numbered.end() if numbered else start, end):
        stop = m.end()
        if stop < end and not norm[stop].isspace():
            continue  # "3.5", "U.K.-based", "£6bn." inside a token
        nxt = _next_char(norm, stop, end)
        if nxt and _CONTINUES.match(nxt):
            continue
        if m.group().startswith(".") and len(m.group().rstrip("\"')]")) == 1 and _is_abbreviation(norm, m.start(), nxt):
            continue
        out.append((start, stop))
        start = stop
    out.append((start, end))
    return [t for t in (_trim(norm, s, e) for s, e in out) if t]


def _next_char(norm: str, pos: int, end: int) -> str:
    while pos < end and norm[pos].isspace():
        pos += 1
    return norm[pos] if pos < end else ""


def _is_abbreviation(norm: str, dot: int, nxt: str) -> bool:
    word_start = dot
    while word_start > 0 and not norm[word_start - 1].isspace() and norm[word_start - 1] not in "(\"'":
        word_start -= 1
    word = norm[word_start:dot]
    low = word.lower()
    if low in _ABBREVIATIONS:
        return True
    if low in _BEFORE_NUMBER and nxt.isdigit():
        return True
    # Initials and dotted acronyms: "J. K. Rowling", "U.S. Army".
    return bool(re.fullmatch(r"[A-Z]|(?:[A-Za-z]\.)+[A-Za-z]", word))


def _trim(norm: str, start: int, end: int) -> Span | None:
    while start < end and norm[start].isspace():
        start += 1
    while end > start and norm[end - 1].isspace():
        end -= 1
    if not any(ch.isalnum() for ch in norm[start:end]):
        return None
    return (start, end)


def split_long(text: str, span: Span, count: TokenCounter, limit: int) -> list[Span]:
    """Cut a unit longer than `limit` tokens at clause breaks, then between words."""
    s, e = span
    if count(text[s:e]) <= limit:
        return [span]
    piece = text[s:e]
    for sep in ("; ", ", ", " "):
        cuts = [i + len(sep) for i in _find_all(piece, sep)]
        if cuts:
            mid = min(cuts, key=lambda c: abs(c - len(piece) / 2))
            left, right = _trim(text, s, s + mid), _trim(text, s + mid, e)
            if left and right:
                return split_long(text, left, count, limit) + split_long(text, right, count, limit)
    return [span]  # one unbreakable token run; the model will truncate it


def _find_all(text: str, sub: str) -> list[int]:
    return [m.start() for m in re.finditer(re.escape(sub), text)]


class OverBudget(ValueError):
    """A document that costs more than its budget allows; the message says which limit."""


def chunk_document(
    doc: Document,
    count: TokenCounter,
    chunk_tokens: int,
    overlap_tokens: int,
    model_count: TokenCounter | None = None,
    model_limit: int | None = None,
    max_sentences: int | None = None,
) -> tuple[list[Sentence], list[tuple[int, int, tuple[int, ...]]]]:
    """The document's sentences, and its chunks as (start, end, sentence indexes). Over
    `max_sentences` it raises `OverBudget` before any chunk is made."""
    spans = [p for sp in split_sentences(doc.text, doc.masked, max_sentences)
             for p in split_long(doc.text, sp, count, chunk_tokens)]
    if max_sentences is not None and len(spans) > max_sentences:
        raise OverBudget(f"it has more than {max_sentences:,} sentences; the limit is {max_sentences:,} "
                         "(max_document_sentences): split it into smaller files")
    sizes = [count(doc.text[s:e]) for s, e in spans]
    hard = [i == 0 or _crosses(doc, spans[i - 1][1], spans[i][0]) for i in range(len(spans))]
    para = [hard[i] or "\n\n" in doc.text[spans[i - 1][1]:spans[i][0]] for i in range(len(spans))]

    def size(first: int, last: int) -> int:  # the real span, separators included
        return count(doc.text[spans[first][0]:spans[last][1]])

    groups: list[list[int]] = []
    cur: list[int] = []
    for i in range(len(spans)):
        if cur and (hard[i] or size(cur[0], i) > chunk_tokens or (para[i] and size(cur[0], cur[-1]) >= chunk_tokens // 2)):
            groups.append(cur)
            cur = [] if para[i] else _overlap(cur, sizes, overlap_tokens)
            while cur and size(cur[0], i) > chunk_tokens:
                cur.pop(0)
        cur.append(i)
    if cur:
        groups.append(cur)

    if model_count and model_limit:
        groups = [g for group in groups for g in _fit_model(doc.text, spans, group, model_count, model_limit)]
    sentences = place_sentences(doc, spans)
    chunks = [(spans[g[0]][0], spans[g[-1]][1], tuple(g)) for g in groups]
    return sentences, chunks


def place_sentences(doc: Document, spans: list[Span]) -> list[Sentence]:
    """The document's sentences with their places in it (see `Sentence`). A sentence's
    lead-in is the one before in the same paragraph, or for a list item the line that
    introduces the list ("Our partners"): its words are the ones the sentence inherits."""
    text = doc.text
    listed = [is_list_item(text, start) for start, _ in spans]
    lead_in, run = [], 0  # run: where the run of list items holding sentence i starts
    for i, (start, _) in enumerate(spans):
        if not (listed[i] and i and listed[i - 1]):
            run = i
        prev = (run if listed[i] else i) - 1  # the line before the list, for an item
        first = spans[prev + 1][0] if prev + 1 < i else start
        lead_in.append(i - prev if prev >= 0 and "\n\n" not in text[spans[prev][1]:first] else 0)
    items = [0] * len(spans)
    for i in range(len(spans)):
        if listed[i] and lead_in[i]:
            items[i - lead_in[i]] += 1
    return [Sentence(doc.doc_id, start, end, lead_in[i], listed[i] and lead_in[i] > 0, items[i],
                     text[start:end].rstrip("\"' )").endswith("?"), text[start:end].rstrip().endswith(":") and i + 1 < len(spans))
            for i, (start, end) in enumerate(spans)]


def _crosses(doc: Document, a: int, b: int) -> bool:
    return any(s < b and e > a for s, e in doc.masked)


def _overlap(group: list[int], sizes: list[int], budget: int) -> list[int]:
    """Trailing sentences of a chunk, within the overlap budget, that start the next one."""
    carry: list[int] = []
    for j in reversed(group[1:]):  # never the whole chunk, so chunking always advances
        if sum(sizes[k] for k in carry) + sizes[j] > budget:
            break
        carry.insert(0, j)
    return carry


def _fit_model(text: str, spans: list[Span], group: list[int], model_count: TokenCounter, limit: int) -> list[list[int]]:
    """Halve a chunk until the embedding model sees all of it (its own tokens, not tiktoken's)."""
    if len(group) == 1 or model_count(text[spans[group[0]][0]:spans[group[-1]][1]]) <= limit:
        return [group]
    mid = len(group) // 2
    return _fit_model(text, spans, group[:mid], model_count, limit) + _fit_model(text, spans, group[mid:], model_count, limit)


def tiktoken_count(text: str) -> int:
    return len(cl100k().encode(text, disallowed_special=()))

