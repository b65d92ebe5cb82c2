"""SQuAD as an eval: its articles as documents, its questions as eval items, and the fixed
article splits that keep fitting (fit), choosing (select) and reporting (report) apart:
no article, and so no question, is in two."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import re
from collections.abc import Callable
from pathlib import Path

from ..config import Config
from ..embed import Encoder
from ..index import build_index
from ..pipeline import QA
from ..read import Reader
from ..scoring import ReaderModel
from ..store import scratch
from ..types import ConfigError
from .eval import EvalItem

# Fixed article splits of SQuAD 2.0 dev (the file in ../shared/benchmarks): weights are fitted
# on "fit", settings chosen on "select", and figures reported on "report"; no article, so no
# question, is in two. An article this list does not know goes by a hash of its title.
SPLITS = {
    "fit": ("1973_oil_crisis", "Computational_complexity_theory", "French_and_Indian_War", "Harvard_University",
            "Imperialism", "Islamism", "Scottish_Parliament", "Steam_engine"),
    "select": ("European_Union_law", "Huguenot", "Normans", "Warsaw"),
    "report": ("Force", "Immune_system", "Packet_switching", "Yuan_dynasty"),
}


def split_of(title: str) -> str:
    for name, titles in SPLITS.items():
        if title in titles:
            return name
    return ("fit", "fit", "select", "report")[int(hashlib.sha256(title.encode()).hexdigest(), 16) % 4]


def squad_articles(path: str | Path, split: str | None = None) -> list[dict]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
    except (OSError, json.JSONDecodeError, KeyError) as exc:
        raise ConfigError(f"Cannot read SQuAD file {path}: {exc}.") from None
    if split is not None and split not in SPLITS:
        raise ConfigError(f"Unknown split {split!r}; use one of {', '.join(SPLITS)}.")
    return sorted((a for a in data if split is None or split_of(a["title"]) == split), key=lambda a: a["title"])


def squad_items(articles: list[dict], corpus_dir: Path, limit: int | None = None, seed: int = 0) -> list[EvalItem]:
    """Write each SQuAD article as one document (paragraphs joined by blank lines) and return its questions."""
    items: list[EvalItem] = []
    for article in articles:
        doc_id = re.sub(r"[^A-Za-z0-9_-]+", "_", article["title"]).strip("_")
        parts, pos = [], 0
        for para in article["paragraphs"]:
            context = para["context"]
            span = (pos, pos + len(context))
            parts.append(context)
            pos += len(context) + 2
            for q in para["qas"]:
                impossible = bool(q.get("is_impossible"))
                answers = list(dict.fromkeys(a["text"] for a in q.get("answers", [])))
                items.append(EvalItem(q["id"], q["question"], answers, doc_id, not impossible, span))
        (corpus_dir / f"{doc_id}.txt").write_text("\n\n".join(parts), encoding="utf-8")
        (corpus_dir / f"{doc_id}.meta.json").write_text(json.dumps({"title": article["title"].replace("_", " ")}))
    return _sample(items, limit, seed)


def _sample(items: list[EvalItem], limit: int | None, seed: int = 0) -> list[EvalItem]:
    if limit and limit < len(items):
        keep = set(random.Random(seed).sample(range(len(items)), limit))
        items = [it for n, it in enumerate(items) if n in keep]
    return items


def squad_qa(config: Config, encoder: Encoder, reader: Reader, path: str | Path, workdir: Path, limit: int | None,
             progress: Callable[[int, int], None] | None = None) -> tuple[QA, list[EvalItem]]:
    """All the file's articles in one index, and their questions."""
    return _squad_index(config, encoder, reader, squad_articles(path), workdir, limit, progress)


def _squad_index(config, encoder, reader, articles, workdir, limit, progress, model=None) -> tuple[QA, list[EvalItem]]:
    corpus = workdir / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    items = squad_items(articles, corpus, limit)
    squad_config = scratch(config.with_overrides(corpus_dir=str(corpus)), workdir, "squad")  # on an engine, a database of its own
    build_index(squad_config, encoder, progress)
    return QA.load(squad_config, encoder, reader, model), items


def squad_split_runs(config: Config, encoder: Encoder, reader: Reader, path: str | Path, split: str, workdir: Path,
                     limit: int | None = None, off_corpus: int = 500,
                     progress: Callable[[int, int], None] | None = None,
                     model: ReaderModel | None = None) -> list[tuple[QA, list[EvalItem]]]:
    """One split's articles in two halves, each indexed alone and asked its own questions,
    plus answerable questions about the other half's articles: those are off-corpus (the
    index does not hold their article), and the bot must abstain. `off_corpus` caps how
    many, across both halves; `limit` samples the in-corpus questions. `model` replaces
    the fitted reader model (`qa fit` collects before there is one)."""
    articles = squad_articles(path, split)
    halves = [articles[0::2], articles[1::2]]
    runs = []
    for n, half in enumerate(halves):
        if not half:
            continue
        qa, items = _squad_index(config, encoder, reader, half, workdir / f"half{n}", limit and limit // 2, progress,
                                 model)
        other = squad_items(halves[1 - n], _scratch(workdir / f"other{n}"))
        asked = [dataclasses.replace(it, answerable=False, off_corpus=True, source=None, paragraph=None)
                 for it in other if it.answerable]
        runs.append((qa, items + _sample(asked, off_corpus // 2, seed=n)))
    return runs


def _scratch(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder
