"""Read a folder of .txt, .md, .html, .pdf and .docx files into `Document`s.

The stored text of a document is the file's text (HTML reduced to text, front matter
removed, PDF and Word files as `qa.formats` reads them) with nothing else changed, so
a citation's offsets point into what the user sees. Page furniture is masked by the configured cleaning rules rather than cut out,
and matching uses `qa.text.match_text`, a same-length normalised copy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from .formats import EXTRACTOR_VERSION, READERS, Extracted, Limits, extract
from .types import Document

log = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".html", ".htm"}
SUFFIXES = TEXT_SUFFIXES | {".pdf", ".docx"}


@dataclass
class CorpusReadResult:
    documents: list[Document] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (path, what): read, but not all of it
    left_out: list[str] = field(default_factory=list)  # doc ids of the files `leaving` named


def read_corpus(corpus_dir: str | Path, clean_patterns: tuple[str, ...],
                known: dict[str, Document] | None = None, limits: Limits = Limits(),
                leaving: Callable[[str], bool] = lambda source: False) -> CorpusReadResult:
    """Every document of the folder. `known` (documents read before, by source path) are
    reused when their file, sidecar and the cleaning rules are unchanged: a PDF is parsed
    once, not on every ingest. A file that cannot be read is skipped with the reason,
    whatever went wrong: one bad file never stops the others being read. A file whose
    source `leaving` names (a removal under way) is left out, and its reading stops as
    soon as it is named: its file stays until the index without it is committed."""
    root = Path(corpus_dir)
    result = CorpusReadResult()
    if not root.is_dir():
        return result
    rules = [re.compile(p, re.MULTILINE | re.IGNORECASE) for p in clean_patterns]
    inside = root.resolve()
    paths = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    # A link that leads out of the corpus folder is not followed: pointing the bot at a
    # folder must not publish whatever a link in it reaches (~/.ssh, /etc).
    outside = [p for p in paths if not p.resolve().is_relative_to(inside)]
    for p in outside:
        rel = p.relative_to(root).as_posix()
        log.warning("skipped %s: a link to a file outside the corpus folder", rel)
        result.skipped.append((rel, "a link to a file outside the corpus folder (not followed)"))
    paths = [p for p in paths if p not in outside]
    ids = _doc_ids(root, paths)
    known = known or {}
    for path in paths:
        rel = path.relative_to(root).as_posix()
        try:
            if leaving(rel):
                result.left_out.append(ids[path])
                continue
            raw = path.read_bytes()
            stamp = file_hash(raw, path, clean_patterns)
            doc = known.get(rel)
            if doc is None or doc.file_hash != stamp or doc.doc_id != ids[path]:
                doc = read_document(path, ids[path], rel, rules, raw, stamp, limits, lambda rel=rel: leaving(rel))
        except Exception as exc:  # noqa: BLE001 - the reason is said, the build goes on
            if leaving(rel):  # removed while it was read: not a failure of the file
                result.left_out.append(ids[path])
                continue
            reason = (str(exc) or type(exc).__name__) if isinstance(exc, OSError | UnicodeDecodeError | ValueError) \
                else f"it cannot be read ({type(exc).__name__}: {str(exc)[:200]})"
            log.warning("skipped %s: %s", rel, reason)
            result.skipped.append((rel, reason))
            continue
        result.warnings += [(rel, w) for w in doc.meta.get("warnings", ())]
        result.documents.append(doc)
    return result


def file_hash(raw: bytes, path: Path, clean_patterns: tuple[str, ...]) -> str:
    """What a document's text is made from: the file, its sidecar and the rules."""
    side = path.with_name(path.stem + ".meta.json")
    h = hashlib.sha256(raw)
    h.update(side.read_bytes() if side.is_file() else b"")
    h.update(json.dumps([EXTRACTOR_VERSION, list(clean_patterns)]).encode())
    return h.hexdigest()


def _doc_ids(root: Path, paths: list[Path]) -> dict[Path, str]:
    """Ids are paths without the extension, unless two files would then collide."""
    stems = [p.relative_to(root).with_suffix("").as_posix() for p in paths]
    return {
        p: (s if stems.count(s) == 1 else p.relative_to(root).as_posix())
        for p, s in zip(paths, stems)
    }


def read_document(path: Path, doc_id: str, rel: str, rules: list[re.Pattern], raw: bytes, stamp: str = "",
                  limits: Limits | None = None, unwanted: Callable[[], bool] = lambda: False) -> Document:
    """`limits`: PDF and Word files are read in a child process under them (`formats.extract`);
    without, in this process."""
    suffix = path.suffix.lower()
    if suffix in READERS:
        # A file removed while it is read (DELETE of an upload being indexed) stops the reading.
        got = extract(suffix, raw, limits, lambda: unwanted() or not path.exists()) if limits else READERS[suffix](raw)
    else:
        got = read_text(raw, suffix)
    meta = {**got.meta, **_sidecar(path)}
    if got.warnings:
        meta["warnings"] = got.warnings
        for w in got.warnings:
            log.warning("%s: %s", rel, w)

    text = got.text
    if limits and len(text) > limits.chars:
        raise ValueError(f"it has {len(text):,} characters of text; the limit is {limits.chars:,} "
                         "(max_document_chars): split it into smaller files")
    masked = _mask(text, rules, got.furniture)
    if not _unmasked_text(text, masked).strip():
        raise ValueError("no text left after cleaning")
    # An upload is stored under a content-hash name; its sidecar keeps the name it came with.
    name = Path(str(meta.get("filename") or path.name)).stem
    title = str(meta.pop("title", "") or _guess_title(text, masked) or name)
    date = meta.pop("date", None) or _find_date(text)
    digest = hashlib.sha256(json.dumps([text, masked, got.pages]).encode()).hexdigest()
    return Document(
        doc_id=doc_id, title=title, text=text, source=rel, date=str(date) if date else None,
        meta=meta, masked=masked, content_hash=digest, pages=got.pages, file_hash=stamp,
    )


def read_text(raw: bytes, suffix: str) -> Extracted:
    if b"\x00" in raw:
        raise ValueError("binary file (contains NUL bytes)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text; re-save it as UTF-8") from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text, meta = html_to_text(text) if suffix in {".html", ".htm"} else split_front_matter(text)
    return Extracted(text, meta=meta)


def _sidecar(path: Path) -> dict:
    """Metadata from `<name>.meta.json` beside the file, if there is one."""
    side = path.with_name(path.stem + ".meta.json")
    if not side.is_file():
        return {}
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read its metadata file {side.name}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"its metadata file {side.name} must hold a JSON object")
    return data


_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*\n", re.DOTALL)


def split_front_matter(text: str) -> tuple[str, dict]:
    """Simple `key: value` front matter between `---` lines."""
    m = _FRONT_MATTER.match(text)
    if not m:
        return text, {}
    meta = {}
    for line in m.group(1).splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            meta[key.strip().lower()] = value.strip().strip("\"'")
    return text[m.end():], meta


def _mask(text: str, rules: list[re.Pattern], found: tuple[tuple[int, int], ...] = ()) -> tuple[tuple[int, int], ...]:
    spans = sorted([(m.start(), m.end()) for r in rules for m in r.finditer(text) if m.end() > m.start()] + list(found))
    merged: list[list[int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return tuple((s, e) for s, e in merged)


def _unmasked_text(text: str, masked: tuple[tuple[int, int], ...]) -> str:
    out, pos = [], 0
    for s, e in masked:
        out.append(text[pos:s])
        pos = e
    out.append(text[pos:])
    return "".join(out)


def _guess_title(text: str, masked) -> str:
    """A short first line without a full stop reads as a headline."""
    for line in _unmasked_text(text, masked).splitlines():
        line = re.sub(r"^#+\s+", "", line.strip())  # a Markdown heading
        if line:
            return line if len(line) <= 100 and not line.endswith((".", "!", "?")) else ""
    return ""


_DATE = re.compile(r"\bdate[ \t]+(\d{4}-\d{2}-\d{2})\b", re.IGNORECASE)


def _find_date(text: str) -> str | None:
    """A `date YYYY-MM-DD` stamp near the top, as news scrapes often carry."""
    m = _DATE.search(text[:300])
    return m.group(1) if m else None


class _HTMLText(HTMLParser):
    SKIP = {"script", "style", "noscript", "template", "svg", "nav", "footer", "form", "button", "iframe", "head"}
    BLOCK = {
        "p", "div", "section", "article", "main", "header", "aside", "h1", "h2", "h3", "h4", "h5", "h6",
        "ul", "ol", "table", "tr", "blockquote", "pre", "figure", "figcaption", "dl", "dt", "dd", "hr",
    }

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0
        self.title = ""
        self.meta: dict = {}
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "title":
            self._in_title = True
        elif tag == "meta":
            key = (attrs.get("property") or attrs.get("name") or "").lower()
            if key in {"article:published_time", "date", "dc.date", "pubdate"} and attrs.get("content"):
                self.meta.setdefault("date", attrs["content"][:10])
        elif tag == "time" and attrs.get("datetime"):
            self.meta.setdefault("date", attrs["datetime"][:10])
        if tag in self.SKIP:
            self.skip_depth += 1
        elif tag in self.BLOCK:
            self.parts.append("\n\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag == "br":
            self.parts.append("\n")
        elif tag in {"td", "th"}:
            self.parts.append(" ")

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        if tag in self.SKIP:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag in self.BLOCK or tag == "li":
            self.parts.append("\n")

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        elif not self.skip_depth:
            self.parts.append(re.sub(r"[ \t\r\n\f]+", " ", data))  # HTML collapses these, not \xa0


def html_to_text(html: str) -> tuple[str, dict]:
    parser = _HTMLText()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    text = re.sub(r"[ \t]*\n[ \t]*", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
    meta = dict(parser.meta)
    if parser.title.strip():
        meta["title"] = re.sub(r"\s+", " ", parser.title).strip()
    return text, meta
