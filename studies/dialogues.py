"""Fresh dialogues, written by helpers who never saw evals/, asked turn by turn with the
product's own earlier answers as history, as `qa eval` asks the conversation set. They are
a study set, not a regression set: each was written once to find follow-up bugs
(docs/studies.md, "Fresh dialogues, eighth session").

- `dialogues/default-walk8.jsonl`, `default-walk10.jsonl`, `default-walk11.jsonl`,
  `default-walk12.jsonl`: 18, 12, 16 and 15 dialogues (72, 72, 64 and 75 turns) on the
  default corpus;
- `dialogues/wiki5.jsonl`: 20 dialogues (80 turns) on five SQuAD 1.1 train articles
  (`dialogues/wiki5/`, CC BY-SA 4.0; no SQuAD dev article), indexed into a temporary folder.
  The reader may have been trained on their paragraphs (with SQuAD's own questions), so
  its figures flatter the reader: the set is for finding follow-up bugs, not for a score.

A turn is right when the first quoted sentence holds one of its gold phrases, and an
unanswerable one when it is refused.

    .venv/bin/python studies/dialogues.py studies/dialogues/default-walk8.jsonl [--out OUT.json]
    .venv/bin/python studies/dialogues.py studies/dialogues/wiki5.jsonl --corpus studies/dialogues/wiki5
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.config import Config, load_config  # noqa: E402
from qa.embed import load_encoder  # noqa: E402
from qa.index import build_index  # noqa: E402
from qa.pipeline import QA  # noqa: E402


def verdict(turn: dict, answer) -> str:
    first = answer.answer.split(" [1]")[0].lower()
    if not turn["answerable"]:
        return "refused-ok" if answer.abstained else "answered-wrongly"
    if answer.abstained:
        return "refused"
    return "right" if any(g.lower() in first for g in turn["answers"]) else "wrong"


def ask_all(qa: QA, path: Path) -> list[dict]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        dialogue, history = json.loads(line), []
        for n, turn in enumerate(dialogue["turns"], start=1):
            answer = qa.ask(turn["question"], history or None)
            rows.append({"id": f"{dialogue['id']}/{n}", "kind": turn["kind"], "verdict": verdict(turn, answer),
                         "question": turn["question"], "query": answer.query, "confidence": answer.confidence,
                         "assurance": answer.assurance, "first": answer.answer.split(" [1]")[0]})
            history.append({"question": turn["question"], "answer": answer.answer or answer.message})
    return rows


def main(dialogues: str, corpus: str | None = None, out: str | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config()
        if corpus:
            config = Config(corpus_dir=corpus, index_dir=str(Path(tmp) / "index"))
            build_index(config, load_encoder(config))
        rows = ask_all(QA.load(config), Path(dialogues))
    by_kind: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        by_kind[row["kind"]][row["verdict"]] += 1
    for kind, counts in by_kind.items():
        print(f"{kind:14} {dict(counts)}")
    wrong_sure = sum(r["assurance"] == "sure" and r["verdict"] in ("wrong", "answered-wrongly") for r in rows)
    print(f"sure but wrong: {wrong_sure} of {len(rows)} turns")
    for row in rows:
        if row["verdict"] not in ("right", "refused-ok"):
            print(f"  {row['id']} {row['verdict']}: {row['question']} -> {row['query']} ({row['confidence']})")
    if out:
        Path(out).write_text(json.dumps(rows, indent=1, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("dialogues")
    parser.add_argument("--corpus", help="index this folder in a temporary one (default: the configured index)")
    parser.add_argument("--out", help="write every turn's verdict here as JSON")
    args = parser.parse_args()
    main(args.dialogues, args.corpus, args.out)
