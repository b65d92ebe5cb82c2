"""The `qa` command: a thin layer over the library."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

from . import version
from .config import Config, load_config
from .lab import cli as lab
from .progress import Progress
from .types import Passage, QAError

CORPUS_HELP = ("the corpus folder (default: the one the index was built from, which the manifest records; "
               "another is refused; QA_CORPUS_DIR sets it too)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qa", description="Ask questions of a folder of documents; answers quote them.")
    parser.add_argument("--config", help="a TOML settings file (default: ./qa.toml or $QA_CONFIG)")
    parser.add_argument("--version", action="version", version=f"qa {version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_corpus_parsers(sub)
    add_question_parsers(sub)
    lab.add_parsers(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    try:
        return COMMANDS[args.command](command_config(args), args)
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `qa ask … | head`: whoever read the output has gone; nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush is quiet too
        return 0


def command_config(args) -> Config:
    """The settings a command runs with: defaults, the file, the environment, its flags."""
    config = load_config(args.config).with_overrides(
        corpus_dir=getattr(args, "corpus_dir", None), index_dir=getattr(args, "index_dir", None),
        host=getattr(args, "host", None), port=getattr(args, "port", None),
    )
    if args.command in CORPUS_COMMANDS:
        from .index import with_corpus

        config = with_corpus(config, getattr(args, "new_corpus", False))
    return config


def add_corpus_parsers(sub) -> None:
    """The commands that build the index or change its documents."""
    p = sub.add_parser("ingest", help="build or update the index from a folder of documents")
    p.add_argument("--corpus", dest="corpus_dir", help="folder of .txt, .md, .html, .pdf and .docx files (default: "
                                                        "the one the index was built from, or ./corpus for a new index)")
    p.add_argument("--index", dest="index_dir", help="index folder (default: index)")
    p.add_argument("--workers", type=int, default=1, help="with a search engine as the store: embed in this many "
                                                            "processes, each writing its shard of the documents")
    p.add_argument("--shard", type=shard_arg, default=(0, 1), metavar="I/N",
                   help="with a search engine as the store: write only shard I of N (0-based), e.g. one per machine")
    p.add_argument("--new-corpus", action="store_true",
                   help="rebuild the index from --corpus though it was built from another folder (its documents go)")
    p.add_argument("--allow-drops", action="store_true",
                   help="build even if over half of the indexed documents are gone from the corpus folder")

    p = sub.add_parser("add", help="add PDF, Word, text, Markdown or HTML files to the corpus and index them")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--corpus", dest="corpus_dir", help=CORPUS_HELP)
    p.add_argument("--index", dest="index_dir")

    p = sub.add_parser("remove", help="remove a document (by its id, see GET /api/documents) and re-index")
    p.add_argument("doc_id")
    p.add_argument("--corpus", dest="corpus_dir", help=CORPUS_HELP)
    p.add_argument("--index", dest="index_dir")


def add_question_parsers(sub) -> None:
    """The commands that answer: one question, a search, the chat server, MCP."""
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
    p.add_argument("--corpus", dest="corpus_dir", help=CORPUS_HELP + "; uploads are stored in its uploads/ folder")

    p = sub.add_parser("mcp", help="serve the documents to an assistant over the Model Context Protocol (stdio)")
    p.add_argument("--index", dest="index_dir")
    p.add_argument("--corpus", dest="corpus_dir", help=CORPUS_HELP)



def shard_arg(text: str) -> tuple[int, int]:
    i, _, n = text.partition("/")
    if not (i.isdigit() and n.isdigit() and 0 <= int(i) < int(n)):
        raise argparse.ArgumentTypeError(f"{text!r} is not I/N with 0 <= I < N, e.g. 0/2")
    return int(i), int(n)


def cmd_ingest(config: Config, args) -> int:
    if args.workers > 1:
        from .index import build_in_workers

        started = time.perf_counter()
        flags = tuple(f for f, on in (("--new-corpus", args.new_corpus), ("--allow-drops", args.allow_drops)) if on)
        failed = build_in_workers(config, args.workers, flags)
        if failed:
            print(f"error: shard(s) {', '.join(f'{i}/{args.workers}' for i in failed)} failed; run `qa ingest --shard "
                  f"I/{args.workers}` again for each: what they wrote is kept, and nothing is written twice.", file=sys.stderr)
            return 2
        print(f"{args.workers} workers done in {time.perf_counter() - started:.1f}s")
        return 0
    ingest(config, args.shard, new_corpus=args.new_corpus, allow_drops=args.allow_drops)
    return 0


def ingest(config: Config, shard: tuple[int, int] = (0, 1), build=None, **options):
    """Build the index with a progress bar; print what was done and what was skipped.
    `build(config, encoder, progress)` builds instead of `build_index` (`qa remove`)."""
    from .embed import load_encoder
    from .index import build_index
    from .store import location

    progress = Progress("embedding" if shard == (0, 1) else f"embedding {shard[0]}/{shard[1]}", "text")
    encoder = load_encoder(config)
    report = build(config, encoder, progress) if build else build_index(config, encoder, progress, shard, **options)
    progress.close()
    for path, reason in report.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    for path, what in report.warnings:
        print(f"warning: {path}: {what}", file=sys.stderr)
    print(
        f"Indexed {report.documents} documents ({len(report.embedded)} embedded, {len(report.reused)} unchanged, "
        f"{len(report.removed)} removed), {report.chunks} chunks, {report.sentences} sentences; "
        f"{len(report.skipped)} files skipped; {report.seconds:.1f}s -> {location(config)}"
        + (f" (shard {shard[0]}/{shard[1]})" if shard != (0, 1) else "")
    )
    return report


def cmd_add(config: Config, args) -> int:
    from pathlib import Path

    from .documents import Upload, add_files, delete_files

    uploads = []
    for name in args.files:
        try:
            uploads.append(Upload(Path(name).name, Path(name).read_bytes()))
        except OSError as exc:
            raise QAError(f"Cannot read {name}: {exc.strerror or exc}.") from None
    added = add_files(config, uploads)
    try:
        skipped = dict(ingest(config).skipped)
    except QAError as exc:
        raise QAError(f"{exc} The files are kept in {Path(config.corpus_dir) / 'uploads'}; once that is fixed, "
                      "`qa ingest` indexes them.") from None
    for job in added:
        if job["source"] in skipped:  # unreadable: it does not stay in the corpus
            delete_files(config.corpus_dir, job["source"])
            print(f"not added: {job['filename']}: {skipped[job['source']]}", file=sys.stderr)
        else:
            print(f"added {job['filename']} as {job['doc_id']}")
    return 1 if any(job["source"] in skipped for job in added) else 0


def cmd_remove(config: Config, args) -> int:
    from .documents import remove_document

    ingest(config, build=lambda config, encoder, progress: remove_document(config, encoder, args.doc_id, progress))
    print(f"removed {args.doc_id}")
    return 0


def load_qa(config: Config):
    """The loaded QA for a one-shot command, started as fast as it can be: ONNX Runtime
    builds the models' sessions without holding the GIL, so they load on threads while
    this one imports the index stack (FAISS, BM25: about 0.3 s)."""
    from concurrent.futures import ThreadPoolExecutor

    from .embed import load_encoder
    from .read import load_reader

    with ThreadPoolExecutor(2) as pool:
        encoder, reader = pool.submit(load_encoder, config), pool.submit(load_reader, config)
        from .pipeline import QA

        return QA.load(config, encoder.result(), reader.result())


def cmd_ask(config: Config, args) -> int:
    answer = load_qa(config).ask(args.question)
    from .answer import render_text  # not at the top: the models must start loading before the index stack imports

    print(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False) if args.json else render_text(answer))
    return 0


def cmd_search(config: Config, args) -> int:
    passages = load_qa(config).search(args.query, args.k)
    if args.json:
        print(json.dumps([p.to_dict() for p in passages], indent=2, ensure_ascii=False))
    else:
        print("\n\n".join(format_passage(n, p) for n, p in enumerate(passages, 1)) or "No passages found.")
    return 0


def format_passage(n: int, p: Passage) -> str:
    return f"{n}. {p.doc_id} [{p.start}:{p.end}] score {p.score:.4f} (cosine {p.dense:.3f}, bm25 {p.lexical:.2f})\n{p.text}"


def cmd_serve(config: Config, args) -> int:
    from .server import serve

    serve(config)
    return 0


def cmd_mcp(config: Config, args) -> int:
    from .mcpserver import run_stdio

    run_stdio(config)
    return 0


CORPUS_COMMANDS = {"ingest", "add", "remove", "serve", "mcp", "bench"}  # those that read or change the corpus folder
COMMANDS = {"ingest": cmd_ingest, "add": cmd_add, "remove": cmd_remove, "ask": cmd_ask, "search": cmd_search,
            "serve": cmd_serve, "mcp": cmd_mcp, **lab.COMMANDS}

if __name__ == "__main__":
    sys.exit(main())
