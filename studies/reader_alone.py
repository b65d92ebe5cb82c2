"""The reader alone, no fusion, on readings `qa fit` collected: how often its own top
candidate holds the answer, and how often it refuses every candidate of an answer-removed,
a SQuAD 2.0 unanswerable and an off-corpus question (`qa.lab.train.reader_alone`), for each reader folder given. With `--typos`, each
question is read with one seeded typo (`qa.lab.typos.one_typo`, as in evals/typos.jsonl), as
a held-out measure of reading through typos.
Run: .venv/bin/python studies/reader_alone.py [--typos] reports/trained/readings-select.jsonl models/reader reports/train2/reader
"""

from __future__ import annotations

import dataclasses
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.lab.fit import load_records  # noqa: E402
from qa.lab.train import reader_alone  # noqa: E402
from qa.lab.typos import one_typo  # noqa: E402
from qa.read import OnnxCrossEncoder  # noqa: E402

if __name__ == "__main__":
    args = sys.argv[1:]
    typos = args[0] == "--typos"
    records = load_records(Path(args[typos]))
    if typos:
        rng = random.Random(0)
        records = [dataclasses.replace(r, question=one_typo(r.question, rng)) for r in records]
    for folder in args[typos + 1:]:
        print(folder, json.dumps(reader_alone(OnnxCrossEncoder(Path(folder), folder), records)), flush=True)
