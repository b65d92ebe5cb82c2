"""The sentence before each candidate read with the question, the candidate alone after it:
the reader reads ("question [SEP] sentence before", candidate), so token types keep the
candidate the one thing it scores (read as one window, "before [SEP] candidate", the
seventh run scored the sentence after a right one as right: docs/reader.md).

Groups: those `qa train --context` collected in commit 4dd0996 (reports/train7), whose
texts are "before [SEP] candidate"; here each is split back into the two segments.

    python studies/context_first.py train reports/train7/groups.jsonl reports/train8 --budget 3000
    python studies/context_first.py export reports/train8 reports/train8/reader
    python studies/context_first.py alone reports/trained-ctx/readings-select.jsonl models/reader reports/train8/reader
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa.lab import train  # noqa: E402

MARK = " [SEP] "
FIRST_CHARS = 400


def context_first(questions, texts, spans):
    """Each (question, "before [SEP] candidate") pair as ("question [SEP] before", candidate),
    its answer span moved with the candidate."""
    out_q, out_t, out_s = [], [], []
    for q, t, s in zip(questions, texts, spans):
        before, mark, candidate = t.partition(MARK)
        if not mark:
            out_q.append(q), out_t.append(t), out_s.append(s)
            continue
        shift = len(before) + len(MARK)
        # The first segment is never cut: a long question and its sentence before must leave
        # the candidate room in the training window (160 tokens, about 4 characters each).
        out_q.append(q + MARK + before[: max(0, FIRST_CHARS - len(q))])
        out_t.append(candidate)
        out_s.append(None if s is None else [s[0] - shift, s[1] - shift])
    return out_q, out_t, out_s


_plain_encode = train.encode


def _encode(tokenizer, questions, texts, spans):
    return _plain_encode(tokenizer, *context_first(questions, texts, spans))


def run_training(groups_file: Path, folder: Path, budget: float, steps: int) -> None:
    from qa.lab.traindata import load_groups
    from qa.read import packaged_reader_folder

    train.encode = _encode  # what `train._loss` reads its pairs with
    start = packaged_reader_folder()
    groups = train.keep_refusals(load_groups(groups_file), 0.3)
    print(f"{len(groups)} groups", flush=True)
    train.train(groups, folder, start, train.TrainSettings(steps=steps, batch=8, lr=3e-5, typos=0.25, budget_s=budget,
                                                           init=Path("reports/train4/final.pt"), checkpoint_every=20))


def alone(readings: Path, folders: list[Path]) -> None:
    """Each reader alone on the readings: top candidate right where a right one is among
    the 10, and every candidate refused (logit below 0) for unanswerable and off-corpus
    questions; the shipped reader reads plain candidates, a reader trained here reads
    them context first."""
    from qa.lab.fit import load_records
    from qa.read import OnnxCrossEncoder

    records = load_records(readings)
    for folder in folders:
        reader = OnnxCrossEncoder(folder, str(folder))
        first = (folder / "context_first").is_file()
        top, refused = [], {"no": [], "off": []}
        for r in records:
            texts = list(r.texts[:10])
            if not texts:
                continue
            if first:
                qs, ts, _ = context_first([r.question] * len(texts), texts, [None] * len(texts))
            else:
                qs, ts = [r.question] * len(texts), [t.partition(MARK)[2] or t for t in texts]
            logits = np.array([outputs[0].reshape(-1)[0] for _, outputs in reader.forward(list(zip(qs, ts)), spans=False)])
            if r.kind == "yes" and r.labels[:10].any():
                top.append(bool(r.labels[int(np.argmax(logits))]))
            elif r.kind in refused:
                refused[r.kind].append(bool((logits < 0).all()))
        print(folder, json.dumps({"top1": round(float(np.mean(top)), 4), "questions": len(top),
                                  **{f"{k}_refused": round(float(np.mean(v)), 4) for k, v in refused.items()}}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train")
    p.add_argument("groups", type=Path)
    p.add_argument("folder", type=Path)
    p.add_argument("--budget", type=float, default=3000)
    p.add_argument("--steps", type=int, default=450)
    p = sub.add_parser("export")
    p.add_argument("folder", type=Path)
    p.add_argument("out", type=Path)
    p = sub.add_parser("alone")
    p.add_argument("readings", type=Path)
    p.add_argument("folders", type=Path, nargs="+")
    args = parser.parse_args()
    if args.command == "train":
        run_training(args.groups, args.folder, args.budget, args.steps)
    elif args.command == "export":
        from qa.lab.export_reader import export_reader
        from qa.read import packaged_reader_folder

        export_reader(args.folder / "final.pt", packaged_reader_folder(), args.out, {"study": "context_first"})
        (args.out / "context_first").write_text("reads (question [SEP] sentence before, candidate)\n")
    else:
        alone(args.readings, args.folders)


if __name__ == "__main__":
    main()
