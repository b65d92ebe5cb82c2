"""Train the reader on a lent GPU machine (the `device` tool), and bring it back.

The machine takes at most 64 MiB of files and gives back at most 64 MiB, 16 MiB a file,
so what travels is packed: the training groups as one table of distinct texts
(`pack`), and each trained network as int8 rows with a scale each, without the
embeddings, which training leaves as they were (`compact`; `unpack` rebuilds the
float weights from it and the start model, for `qa train --weights` to export).
The training itself is `qa.lab.train.train`, as on 2 cores: this adds only the packing,
throughput-sized step counts, and a held-out check for the learning curve.

    python studies/device_train.py pack reports/train6/groups.jsonl .gpu     # here
        [--init reports/train4/final.pt]   # runs continue these weights, sent as int8 rows
    python3 studies/device_train.py run .gpu $OUT --budget 330 NAME:REFUSALS ...  # there
    python studies/device_train.py unpack OUT/NAME-final.npz.part* reports/NAME/final.pt   # here
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa.lab import train  # noqa: E402
from qa.lab.network import build_network  # noqa: E402
from qa.lab.traindata import Group, load_groups  # noqa: E402

HELD_OUT_ARTICLES = 6  # the last index's articles: the learning curve's check, never trained on
PROBE_STEPS = 40
PART_BYTES = 15 * 2**20  # under the 16 MiB a returned file may be
EMBEDDINGS = "cross.bert.embeddings."


def pack(groups_file: Path, out: Path, init: Path | None = None) -> None:
    """The groups, the start model, and `init` (weights a run continues from) compacted."""
    groups = load_groups(groups_file)
    texts: dict[str, int] = {}
    rows = [[g.question, [texts.setdefault(t, len(texts)) for t in g.texts], g.labels, g.spans,
             int(g.removed), int(g.other_article), g.article] for g in groups]
    articles = list(dict.fromkeys(g.article for g in groups))
    out.mkdir(parents=True, exist_ok=True)
    with gzip.open(out / "groups.json.gz", "wt", encoding="utf-8", compresslevel=9) as fh:
        json.dump({"texts": list(texts), "groups": rows, "held_out": articles[-HELD_OUT_ARTICLES:]}, fh)
    start = train_start()
    (out / "start").mkdir(exist_ok=True)
    for name in ("model.onnx", "tokenizer.json"):
        shutil.copyfile(start / name, out / "start" / name)
    if init is not None:
        compact(init, out / "init.npz")
    print(f"{len(groups)} groups, {len(texts)} distinct texts -> {(out / 'groups.json.gz').stat().st_size / 1e6:.1f} MB")


def train_start() -> Path:
    from qa.read import packaged_reader_folder

    return packaged_reader_folder()


def unpacked(folder: Path) -> tuple[list[Group], list[Group]]:
    """The training groups and the held-out articles' groups."""
    with gzip.open(folder / "groups.json.gz", "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    texts, held_out = data["texts"], set(data["held_out"])
    groups = [Group(q, [texts[i] for i in ids], labels, spans, bool(removed), article, bool(other))
              for q, ids, labels, spans, removed, other, article in data["groups"]]
    return [g for g in groups if g.article not in held_out], [g for g in groups if g.article in held_out]


def held_out_check(weights: Path, start: Path, groups: list[Group]) -> dict:
    """The network alone on held-out groups: top candidate right, answerable ones refused
    (every logit below 0), answer-removed and other-article ones refused."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    net = build_network(start / "model.onnx")
    net.load_state_dict(torch.load(weights, weights_only=True, map_location="cpu"))
    net.to(device).eval()
    tokenizer = train.training_tokenizer(start / "tokenizer.json")
    tops, refused = [], {"answerable": [], "removed": [], "other": []}
    with torch.no_grad(), torch.autocast(device, torch.bfloat16, enabled=device == "cuda"):
        for n in range(0, len(groups), 64):
            part = groups[n: n + 64]
            ids, mask, types, _, _ = train.encode(tokenizer, [g.question for g in part for _ in g.texts],
                                                  [t for g in part for t in g.texts], [None] * sum(len(g.texts) for g in part))
            logits = net(*(torch.from_numpy(a).to(device) for a in (ids, mask, types)))[0][:, 0].float().cpu().numpy()
            at = 0
            for g in part:
                scores = logits[at: at + len(g.texts)]
                at += len(g.texts)
                kind = "other" if g.other_article else "removed" if g.removed else "answerable"
                refused[kind].append(bool((scores < 0).all()))
                if kind == "answerable":
                    tops.append(bool(g.labels[int(np.argmax(scores))]))
    return {"groups": len(groups), "top1": round(float(np.mean(tops)), 4),
            **{f"{k}_refused": round(float(np.mean(v)), 4) for k, v in refused.items() if v}}


def compact(weights: Path, out: Path) -> list[Path]:
    """The weights as int8 rows and a float scale each (biases and norms as they are),
    the embeddings left out, in parts small enough to come back."""
    import io

    import torch

    arrays = {}
    for name, tensor in torch.load(weights, weights_only=True, map_location="cpu").items():
        if name.startswith(EMBEDDINGS):
            continue
        value = tensor.float().numpy()
        if value.ndim == 2:
            scale = np.maximum(np.abs(value).max(axis=1, keepdims=True), 1e-12) / 127
            arrays[name + ":q"] = np.round(value / scale).astype(np.int8)
            arrays[name + ":scale"] = scale.astype(np.float32)
        else:
            arrays[name] = value
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    data = buffer.getvalue()
    parts = []
    for n in range(0, len(data), PART_BYTES):
        parts.append(out.with_name(f"{out.name}.part{n // PART_BYTES}"))
        parts[-1].write_bytes(data[n: n + PART_BYTES])
    return parts


def unpack(parts: list[Path], start: Path, target: Path) -> None:
    """Float weights from `compact`'s parts and the start model's embeddings."""
    import io

    import torch

    arrays = np.load(io.BytesIO(b"".join(p.read_bytes() for p in sorted(parts, key=lambda p: int(p.suffix[5:])))))
    state = build_network(start / "model.onnx").state_dict()
    for name in state:
        if name.startswith(EMBEDDINGS):
            continue
        if name + ":q" in arrays:
            state[name] = torch.from_numpy(arrays[name + ":q"].astype(np.float32) * arrays[name + ":scale"])
        else:
            state[name] = torch.from_numpy(np.array(arrays[name]))
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, target)


def run_one(folder: Path, out: Path, name: str, refusals: float, budget: float, epochs: float, batch: int,
            lr: float, typos: float) -> None:
    """One run: steps sized from a short probe of this machine's speed, then trained,
    checked at a quarter, half and all of the run, and packed."""
    groups, held_out = unpacked(folder)
    groups = train.keep_refusals(groups, refusals)
    start = folder / "start"
    work = Path("/tmp") / "device_train" / name
    init = None
    if (folder / "init.npz.part0").is_file():
        init = work / "init.pt"
        unpack(list(folder.glob("init.npz.part*")), start, init)
    def say(line: str) -> None:  # every tenth progress line: two runs' lines must fit the output's tail
        if not line.startswith("step ") or int(line.split()[1].split("/")[0]) % 100 == 0:
            print(f"[{name}] {line}", flush=True)

    # The probe reports every tenth step; its last twenty are timed, the loading and the
    # first steps left out. It still runs slower than the run itself (on the H200, 150 ms
    # a step against 95 ms over the run): a run sized by it ends early, not late.
    ticks = []
    train.train(groups, work / "probe", start,
                train.TrainSettings(steps=PROBE_STEPS, batch=batch, lr=lr, frozen=0, checkpoint_every=10**9),
                say=lambda _: ticks.append(time.perf_counter()))
    per_step = (ticks[-1] - ticks[-3]) / 20
    steps = int(min(epochs * len(groups) / batch, budget / per_step))
    say(f"{len(groups)} groups ({refusals} of refusals), {per_step * 1000:.0f} ms a step -> {steps} steps "
        f"({steps * batch / len(groups):.2f} epochs)")
    train.train(groups, work, start,
                train.TrainSettings(steps=steps, batch=batch, lr=lr, typos=typos, frozen=0, init=init,
                                    checkpoint_every=max(1, steps // 8), budget_s=budget * 1.15), say=say)
    curve = {}
    for snapshot in ("quarter", "half", "final"):
        if not (work / f"{snapshot}.pt").is_file():
            continue  # a run too short for a quarter
        curve[snapshot] = held_out_check(work / f"{snapshot}.pt", start, held_out)
        say(f"held out, {snapshot}: {curve[snapshot]}")
    curve["steps"], curve["batch"], curve["groups"] = steps, batch, len(groups)
    base = name.removesuffix("+half")
    (out / f"{base}-curve.json").write_text(json.dumps(curve, indent=1))
    for snapshot in ("half", "final") if base != name else ("final",):
        compact(work / f"{snapshot}.pt", out / f"{base}-{snapshot}.npz")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack")
    p.add_argument("groups", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--init", type=Path, help="weights (.pt) the runs continue from, instead of the start model's")
    p = sub.add_parser("run", help="each NAME:REFUSALS run in its own process, side by side on the one GPU")
    p.add_argument("folder", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("runs", nargs="+", help="NAME:REFUSALS; a NAME ending +half also brings back its half snapshot")
    p.add_argument("--budget", type=float, default=330, help="seconds of training each run is sized to")
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--typos", type=float, default=0.25)
    p = sub.add_parser("one")  # one run, as `run` starts it
    for name in ("folder", "out"):
        p.add_argument(name, type=Path)
    p.add_argument("name")
    for name in ("refusals", "budget", "epochs", "lr", "typos"):
        p.add_argument(name, type=float)
    p.add_argument("batch", type=int)
    p = sub.add_parser("unpack")
    p.add_argument("parts", type=Path, nargs="+")
    p.add_argument("target", type=Path)
    args = parser.parse_args(argv)
    if args.command == "pack":
        pack(args.groups, args.out, args.init)
    elif args.command == "unpack":
        unpack(args.parts, train_start(), args.target)
    elif args.command == "one":
        run_one(args.folder, args.out, args.name, args.refusals, args.budget, args.epochs, args.batch, args.lr, args.typos)
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        runs = [subprocess.Popen([sys.executable, __file__, "one", str(args.folder), str(args.out), name, refusals,
                                  str(args.budget), str(args.epochs), str(args.lr), str(args.typos), str(args.batch)])
                for name, refusals in (r.split(":") for r in args.runs)]
        failed = max(r.wait() for r in runs)
        curves = {path.name.removesuffix("-curve.json"): json.loads(path.read_text()) for path in args.out.glob("*-curve.json")}
        (args.out / "curves.json").write_text(json.dumps(curves, indent=1))
        for path in args.out.glob("*-curve.json"):
            path.unlink()  # one file for all: few files may come back
        return failed
    return 0


if __name__ == "__main__":
    sys.exit(main())
