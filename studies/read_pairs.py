"""How to read a question's candidates: the default set's reader calls replayed four ways,
wall time per question (p50) and the process's CPU, two rounds (docs/studies.md, "Each
pair read alone, one core each").

    .venv/bin/python studies/read_pairs.py

- one batch padded to its longest pair, the session on two threads (the reader before);
- each pair alone, one after another, two threads;
- each pair alone, two at a time, one thread each (the reader now);
- each pair alone, two at a time, two threads each.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.config import load_config  # noqa: E402
from qa.modelfiles import onnx_session  # noqa: E402
from qa.pipeline import QA  # noqa: E402
from qa.read import TRAINED_FOLDER  # noqa: E402


def recorded_calls(qa: QA) -> list[list[tuple[str, str]]]:
    """The (question, sentence) pairs the reader read for each default-set question."""
    calls, forward = [], qa.reader.forward

    def record(pairs, spans=True):
        calls.append(list(pairs))
        return forward(pairs, spans)

    qa.reader.forward = record
    for line in (ROOT / "evals" / "default.jsonl").read_text().splitlines():
        qa.ask(json.loads(line)["question"])
    return calls


def ways(tokenizer_file: Path) -> dict:
    from tokenizers import Tokenizer

    padded, alone = Tokenizer.from_file(str(tokenizer_file)), Tokenizer.from_file(str(tokenizer_file))
    padded.enable_truncation(256, strategy="only_second")
    padded.enable_padding()
    alone.enable_truncation(256, strategy="only_second")
    alone.no_padding()
    two, one = onnx_session(TRAINED_FOLDER / "model.onnx", 2), onnx_session(TRAINED_FOLDER / "model.onnx", 1)
    names = [o.name for o in two.get_outputs()]
    pool = ThreadPoolExecutor(2)

    def feeds(encodings):
        return {"input_ids": np.array([e.ids for e in encodings], np.int64),
                "attention_mask": np.array([e.attention_mask for e in encodings], np.int64),
                "token_type_ids": np.array([e.type_ids for e in encodings], np.int64)}

    return {
        "one padded batch, 2 threads": lambda pairs: two.run(names, feeds(padded.encode_batch(pairs))),
        "each alone in turn, 2 threads": lambda pairs: [two.run(names, feeds([e])) for e in alone.encode_batch(pairs)],
        "each alone, 2 at a time, 1 thread": lambda pairs: list(
            pool.map(lambda e: one.run(names, feeds([e])), alone.encode_batch(pairs))),
        "each alone, 2 at a time, 2 threads": lambda pairs: list(
            pool.map(lambda e: two.run(names, feeds([e])), alone.encode_batch(pairs))),
    }


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    calls = recorded_calls(QA.load(load_config()))
    print(f"{len(calls)} questions, {sum(map(len, calls))} pairs")
    for round_ in range(2):
        for name, read in ways(TRAINED_FOLDER / "tokenizer.json").items():
            walls, started = [], cpu_seconds()
            for pairs in calls:
                t = time.perf_counter()
                read(pairs)
                walls.append((time.perf_counter() - t) * 1000)
            print(f"round {round_ + 1}  {name:38s} p50 {np.median(walls):6.1f} ms  CPU {cpu_seconds() - started:5.2f} s",
                  flush=True)
