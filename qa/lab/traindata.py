"""What the reader is trained on: SQuAD 1.1 train questions, each with the candidate
sentences the product itself would hand the reader.

Training must match use. So each sampled train article is indexed by the product
(`build_index`, a few articles to an index, as `qa fit` indexes SQuAD dev), each
question is prepared, searched and scored by the product's own prefilter
(`Answerer.score`, the linear sentence score), and the best `GROUP` sentences by that
score are the candidates, read as the product reads them (a list item after its
list's introduction). A group always holds a right sentence: where none is among the
best, the best-ranked right one replaces the last. Each question also gives an
"answer removed" group: the best candidates that do not hold the answer, so that the
model learns to score a topic sentence that lacks the fact below its null option, and
an "other article" group: the best candidates the prefilter finds in the index's other
articles, as a question about a document that is not indexed would meet them (without
these, a reader trained on its own article's sentences alone scored other articles'
best sentences up, and off-corpus refusals fell). How many of those a run trains on
is its choice (`qa.train.keep_refusals`).

The train file is SQuAD 1.1 train (CC BY-SA 4.0); no SQuAD 2.0 dev question (fit,
select, report) is ever in it, so the splits that fit, choose and report stay clean.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import Config
from ..types import ConfigError, QAError

if TYPE_CHECKING:  # the embedder's imports are not needed where the groups are only trained on
    from ..embed import Encoder

TRAIN_FILE = Path(__file__).resolve().parents[3] / "shared" / "benchmarks" / "squad1.1-train" / "train-v1.1-398.json.gz"
GROUP = 10  # candidates per question: what the product reads (`reader_candidates`)
ARTICLES_PER_INDEX = 8


@dataclass
class Group:
    question: str  # as the product reads it (`Question.query`)
    texts: list[str]  # the candidates as the reader reads them
    labels: list[int]  # 1 where the candidate holds the answer
    spans: list[list[int] | None]  # the answer's characters in each right candidate
    removed: bool = False  # no candidate holds the answer (answer removed, or another article's)
    article: str = ""
    other_article: bool = False  # the candidates are from articles other than the question's


def train_articles(path: str | Path = TRAIN_FILE, count: int | None = None, seed: int = 0) -> list[dict]:
    """`count` train articles sampled with a fixed seed (all of them when None)."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            data = json.load(fh)["data"]
    except (OSError, json.JSONDecodeError, KeyError) as exc:
        raise ConfigError(f"Cannot read the SQuAD train file {path}: {exc}. It ships in ../shared/benchmarks.") from None
    data = sorted(data, key=lambda a: a["title"])
    random.Random(seed).shuffle(data)
    return data if count is None else data[:count]


def run_groups(config: Config, folder: Path, articles: int, train_file: str | Path = TRAIN_FILE) -> list[Group]:
    """A training run's groups: collected once into `folder`/groups.jsonl, which a resumed
    run (or a later one given a copy) reuses."""
    groups_file = folder / "groups.jsonl"
    if not groups_file.is_file():
        from ..embed import load_encoder

        save_groups(collect_groups(config, load_encoder(config), train_articles(train_file, articles),
                                   folder / "indexes"), groups_file)
    return load_groups(groups_file)


def collect_groups(config: Config, encoder: Encoder, articles: list[dict], workdir: Path,
                   progress: Callable[[str], None] = print) -> list[Group]:
    """Groups for every question of the articles, a few articles to an index. Each index's
    groups are saved in `workdir` as they are made, and a run again reuses them."""
    groups = []
    for n in range(0, len(articles), ARTICLES_PER_INDEX):
        saved = workdir / f"groups{n // ARTICLES_PER_INDEX}.jsonl"
        if not saved.is_file():
            save_groups(list(_index_groups(config, encoder, articles[n: n + ARTICLES_PER_INDEX],
                                           workdir / f"index{n // ARTICLES_PER_INDEX}")), saved)
        groups += load_groups(saved)
        progress(f"articles {min(n + ARTICLES_PER_INDEX, len(articles))}/{len(articles)}: {len(groups)} groups")
    return groups


def _index_groups(config: Config, encoder: Encoder, part: list[dict], folder: Path) -> Iterator[Group]:
    from ..index import build_index
    from ..pipeline import QA
    from ..scoring import ReaderModel
    from .eval import holds
    from .squad import squad_items

    corpus = folder / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    items = squad_items(part, corpus)
    part_config = config.with_overrides(corpus_dir=str(corpus), index_dir=str(folder / "index"))
    build_index(part_config, encoder)
    qa = QA.load(part_config, encoder, _NoReader(), ReaderModel.untrained())
    read = max(config.top_k, config.read_passages)
    for item in items:
        try:
            q = qa.prepare(item.question)
        except QAError:
            continue  # one the product refuses to read (SQuAD train holds a question 25,651 characters long)
        # One search serves both groups: its first `read` passages are what the product
        # reads; further down are the other articles' best.
        found = qa.retriever.search(q.query, q.vector, max(qa.retriever.candidates, read))
        passages = found[:read]
        ranked = [c.sid for c in qa.answerer.score(q, passages)]
        texts = [qa.answerer._reader_text(sid) for sid in ranked]
        right = [holds(t, item.answers) for t in texts]
        if not any(right):
            continue  # the prefilter never reached it: nothing the reader could learn here
        top = list(range(min(GROUP, len(texts))))
        if not any(right[i] for i in top):
            top[-1] = right.index(True)
        yield _group(q.query, [texts[i] for i in top], [right[i] for i in top], item.answers, item.source or "")
        wrong = [i for i, r in enumerate(right) if not r][:GROUP]
        if len(wrong) >= 2:
            yield _refusal(q.query, [texts[i] for i in wrong], item.source or "")
        others = [p for p in found if p.doc_id != item.source][:read]
        off = [qa.answerer._reader_text(c.sid) for c in qa.answerer.score(q, others)]
        off = [t for t in off if not holds(t, item.answers)][:GROUP]
        if off:
            yield _refusal(q.query, off, item.source or "", other_article=True)


def _refusal(question: str, texts: list[str], article: str, other_article: bool = False) -> Group:
    """A group the model should refuse: no candidate holds the answer."""
    return Group(question, texts, [0] * len(texts), [None] * len(texts), True, article, other_article)


def _group(question: str, texts: list[str], right: list[bool], answers: list[str], article: str) -> Group:
    spans = [_answer_span(text, answers) if r else None for text, r in zip(texts, right)]
    return Group(question, texts, [int(r) for r in right], spans, False, article)


def _answer_span(text: str, answers: list[str]) -> list[int] | None:
    """Where the first gold answer found as written is in the text (a right candidate
    may hold it only after normalisation: then no span is taught)."""
    for answer in answers:
        at = text.find(answer) if answer else -1
        if at >= 0:
            return [at, at + len(answer)]
    return None


class _NoReader:
    """Collecting groups needs only the prefilter; the reader is what is being trained."""

    model_id = "none"
    weights_sha256 = ""

    def score(self, question, texts):
        raise AssertionError("the prefilter alone collects training groups")


def save_groups(groups: list[Group], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(asdict(g), ensure_ascii=False) + "\n" for g in groups), encoding="utf-8")


def load_groups(path: Path) -> list[Group]:
    return [Group(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]
