"""What one document at the budget costs to index: `qa ingest` of a folder holding one
document of N sentences of prose (default 10,000, `max_document_sentences`), timed, with
the process's peak resident memory. Run alone: the figure is for the cores it gets.

    .venv/bin/python studies/document_budget.py [SENTENCES]
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

from qa.config import Config
from qa.embed import load_encoder
from qa.index import build_index


def main(sentences: int = 10_000) -> None:
    encoder = load_encoder(Config())
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.TemporaryDirectory() as work:
        corpus = Path(work) / "corpus"
        corpus.mkdir()
        lines = [f"The ward number {i} was visited by {i % 37 + 2} nurses on day {i}." for i in range(sentences)]
        (corpus / "wards.txt").write_text("# Ward visits\n\n" + " ".join(lines) + "\n")
        started = time.perf_counter()
        report = build_index(Config(corpus_dir=str(corpus), index_dir=str(Path(work) / "index"),
                                    max_document_sentences=sentences + 1), encoder)
        seconds = time.perf_counter() - started
        size = sum(p.stat().st_size for p in (Path(work) / "index").rglob("*") if p.is_file())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{report.sentences:,} sentences, {report.chunks:,} chunks: {seconds:.0f} s; peak RSS {peak / 1024:.0f} MB "
          f"({base / 1024:.0f} MB with the model loaded); index {size / 2**20:.0f} MB")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
