"""The reader alone, no fusion, on readings `qa fit` collected: how often its own top
candidate holds the answer, and how often it refuses every candidate of an answer-removed
question (`qa.train.reader_alone`), for each reader folder given.
Run: .venv/bin/python studies/reader_alone.py reports/trained/readings-select.jsonl models/reader reports/train2/reader
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.fit import load_records  # noqa: E402
from qa.read import OnnxCrossEncoder  # noqa: E402
from qa.train import reader_alone  # noqa: E402

if __name__ == "__main__":
    records = load_records(Path(sys.argv[1]))
    for folder in sys.argv[2:]:
        print(folder, json.dumps(reader_alone(OnnxCrossEncoder(Path(folder), folder), records)), flush=True)
