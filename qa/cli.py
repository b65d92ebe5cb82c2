"""The `qa` command: a thin layer over the library."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from .config import Config, load_config
from .answer import render_text
from .types import Passage, QAError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qa", description="Ask questions of a folder of documents; answers quote them.")
    parser.add_argument("--config", help="a TOML settings file (default: ./qa.toml or $QA_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="build or update the index from a folder of documents")
    p.add_argument("--corpus", dest="corpus_dir", help="folder of .txt, .md and .html files (default: corpus)")
    p.add_argument("--index", dest="index_dir", help="index folder (default: index)")

    p = sub.add_parser("ask", help="answer a question with quoted, cited sentences")
    p.add_argument("question")
    p.add_argument("--index", dest="index_dir")
    p.add_argument("--json", action="store_true", help="print the answer object as JSON")

    p = sub.add_parser("search", help="show the passages retrieved for a query")
    p.add_argument("query")
    p.add_argument("-k", type=int, default=5, help="how many passages (default 5)")
    p.add_argument("--index", dest="index_dir")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("serve", help="run the chat page and API under waitress")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8000)")
    p.add_argument("--index", dest="index_dir")

    p = sub.add_parser("eval", help="measure answer accuracy on an eval set or on SQuAD 2.0")
    p.add_argument("--set", dest="eval_set", default="evals/default.jsonl", help="JSONL eval set (default evals/default.jsonl)")
    p.add_argument("--index", dest="index_dir")
    p.add_argument("--squad", help="a SQuAD 2.0 JSON file: index its articles in a temporary folder and ask its questions")
    p.add_argument("--limit", type=int, help="with --squad: a reproducible sample of this many questions")
    p.add_argument("--report", default="reports", help="folder for the JSON and Markdown reports (default reports/)")

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    try:
        config = load_config(args.config).with_overrides(
            corpus_dir=getattr(args, "corpus_dir", None), index_dir=getattr(args, "index_dir", None),
            host=getattr(args, "host", None), port=getattr(args, "port", None),
        )
        return COMMANDS[args.command](config, args)
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


class Progress:
    """A tqdm bar on stderr fed (done, total) pairs; hidden for short runs."""

    def __init__(self, desc: str, unit: str, min_total: int = 200):
        self.desc, self.unit, self.min_total, self.bar = desc, unit, min_total, None

    def __call__(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.desc, unit=self.unit, file=sys.stderr, disable=total < self.min_total)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cmd_ingest(config: Config, args) -> int:
    from .embed import load_encoder
    from .index import build_index

    progress = Progress("embedding", "text")
    report = build_index(config, load_encoder(config), progress)
    progress.close()
    for path, reason in report.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    print(
        f"Indexed {report.documents} documents ({len(report.embedded)} embedded, {len(report.reused)} unchanged, "
        f"{len(report.removed)} removed), {report.chunks} chunks, {report.sentences} sentences; "
        f"{len(report.skipped)} files skipped; {report.seconds:.1f}s -> {config.index_dir}"
    )
    return 0


def cmd_ask(config: Config, args) -> int:
    from .pipeline import QA

    answer = QA.load(config).ask(args.question)
    print(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False) if args.json else render_text(answer))
    return 0


def cmd_search(config: Config, args) -> int:
    from .pipeline import QA

    passages = QA.load(config).search(args.query, args.k)
    if args.json:
        print(json.dumps([p.to_dict() for p in passages], indent=2, ensure_ascii=False))
    else:
        print("\n\n".join(format_passage(n, p) for n, p in enumerate(passages, 1)) or "No passages found.")
    return 0


def format_passage(n: int, p: Passage) -> str:
    return f"{n}. {p.doc_id} [{p.start}:{p.end}] score {p.score:.4f} (cosine {p.dense:.3f}, bm25 {p.lexical:.2f})\n{p.text}"


def cmd_eval(config: Config, args) -> int:
    import tempfile
    from pathlib import Path

    from . import eval as ev
    from .embed import load_encoder
    from .pipeline import QA

    started = time.perf_counter()
    encoder = load_encoder(config)
    with tempfile.TemporaryDirectory(prefix="qa-squad-") as work:
        if args.squad:
            progress = Progress("indexing", "text")
            qa, items = ev.squad_qa(config, encoder, args.squad, Path(work), args.limit, progress)
            progress.close()
            name = f"squad-{Path(args.squad).stem}" + (f"-{args.limit}" if args.limit else "")
        else:
            qa, items = QA.load(config, encoder), ev.load_eval_set(args.eval_set)
            name = f"eval-{Path(args.eval_set).stem}"
        asking = Progress("asking", "q", min_total=0)
        results = ev.evaluate(qa, items, asking)
        asking.close()
    metrics = ev.summarize(results, config.abstain_threshold)
    metrics["run_seconds"] = round(time.perf_counter() - started, 1)
    json_path, md_path = ev.write_reports(name, metrics, results, args.report)
    print(ev.metrics_table(metrics))
    print(f"Reports: {json_path} and {md_path}")
    return 0


def cmd_serve(config: Config, args) -> int:
    from .server import serve

    serve(config)
    return 0


COMMANDS = {"ingest": cmd_ingest, "ask": cmd_ask, "search": cmd_search, "serve": cmd_serve, "eval": cmd_eval}

if __name__ == "__main__":
    sys.exit(main())
