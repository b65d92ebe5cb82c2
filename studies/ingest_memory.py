"""How `qa ingest`'s time and peak memory grow with one large Word upload of ordinary prose.

For each size (MB of text), a .docx of sentences drawn with a fixed seed from the default
corpus's words is written to a scratch folder and indexed alone by `qa ingest`, under
GNU time for its peak resident memory.
Run: OMP_NUM_THREADS=1 .venv/bin/python studies/ingest_memory.py 0.25 0.5 1
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from docgen import paragraph, word_of  # noqa: E402


def prose_docx(megabytes: float, seed: int = 0) -> bytes:
    words = re.findall(r"[A-Za-z]+", (ROOT / "corpus" / "001_576bfebf929a5f1e.txt").read_text(encoding="utf-8"))
    rng, parts, size = random.Random(seed), [], 0
    while size < megabytes * 1_000_000:
        sentence = " ".join(rng.choice(words) for _ in range(rng.randint(8, 25))).capitalize() + "."
        parts.append(paragraph(sentence))
        size += len(sentence) + 1
    return word_of(b"".join(parts))


def main(sizes: list[float]) -> None:
    for megabytes in sizes:
        with tempfile.TemporaryDirectory() as work:
            corpus = Path(work) / "corpus"
            corpus.mkdir()
            (corpus / "prose.docx").write_bytes(prose_docx(megabytes))
            done = subprocess.run(["/usr/bin/time", "-v", str(ROOT / ".venv" / "bin" / "qa"), "ingest", "--corpus",
                                   str(corpus), "--index", str(Path(work) / "index")], capture_output=True, text=True)
            summary = next((line for line in done.stdout.splitlines() if line.startswith("Indexed")), done.stdout[-300:])
            peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
            print(f"{megabytes:g} MB of prose: {summary}; peak {int(peak.group(1)) // 1024 if peak else '?'} MB",
                  flush=True)


if __name__ == "__main__":
    main([float(s) for s in sys.argv[1:]] or [0.25, 0.5, 1.0])
