"""The lab's commands (`qa eval`, `qa fit`, `qa train`, `qa bench`): measuring and
fitting the product, never part of answering."""

from __future__ import annotations

import json
import sys
import time

from ..config import Config
from ..progress import Progress
from ..types import QAError

BENCH_UPLOAD = "/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf"  # a real 17-page PDF on Debian


def add_parsers(sub) -> None:
    p = sub.add_parser("eval", help="measure answer accuracy on an eval set or on SQuAD 2.0")
    p.add_argument("--set", dest="eval_set", default="evals/default.jsonl", help="JSONL eval set (default evals/default.jsonl)")
    p.add_argument("--index", dest="index_dir")
    p.add_argument("--squad", help="a SQuAD 2.0 JSON file: index its articles in a temporary folder and ask its questions")
    p.add_argument("--limit", type=int, help="with --squad: a reproducible sample of this many questions")
    p.add_argument("--split", choices=["fit", "select", "report"],
                   help="with --squad: only that split's articles, indexed in two halves, plus off-corpus questions "
                        "(each half's answerable questions asked of the other half)")
    p.add_argument("--report", default="reports", help="folder for the JSON and Markdown reports (default reports/)")
    p.add_argument("--baseline", metavar="FILE", help="compare each question with this committed baseline (e.g. "
                   "evals/baselines/default.json), print what changed, exit 1 if a right answer turned wrong")
    p.add_argument("--update-baseline", action="store_true", help="with --baseline: make this run the baseline")
    p.add_argument("--why", default="", help="with --update-baseline: why the answers moved (kept in the file)")

    p = sub.add_parser("fit", help="fit the reader fusion and abstention model on SQuAD splits; report held out")
    p.add_argument("--squad", default="../shared/benchmarks/squad2-dev/dev-v2.0.json", help="the SQuAD 2.0 JSON file")
    p.add_argument("--report", default="reports", help="folder for the collected readings and the fit report")
    p.add_argument("--reuse", action="store_true", help="reuse readings collected before (reports/readings-<split>.jsonl)")
    p.add_argument("--write", action="store_true", help="write the fitted weights to qa/reader_model.json")
    p.add_argument("--limit", type=int, nargs=3, metavar=("FIT", "SELECT", "REPORT"),
                   help="a reproducible sample of each split's in-corpus questions (default: all)")
    p.add_argument("--off-corpus", type=int, default=400, help="off-corpus questions per split (default 400)")
    p.add_argument("--candidates", type=int, help="candidates the reader reads (default: the fewest whose select "
                   "figure is within 0.3 points of the best)")

    p = sub.add_parser("train", help="fine-tune the reader on SQuAD 1.1 train (resumable) and export it as int8 ONNX")
    p.add_argument("--train-file", default=None, help="the SQuAD 1.1 train file (default: ../shared/benchmarks/squad1.1-train/...)")
    p.add_argument("--articles", type=int, default=64, help="train articles sampled, with a fixed seed (default 64)")
    p.add_argument("--steps", type=int, default=1500, help="training steps (default 1500)")
    p.add_argument("--batch", type=int, default=8, help="questions per step (default 8)")
    p.add_argument("--folder", default="reports/train", help="training groups, checkpoints and snapshots (default reports/train)")
    p.add_argument("--out", default="models/reader", help="where the int8 ONNX model is written (default models/reader)")
    p.add_argument("--weights", help="export these weights (a snapshot .pt) instead of the run's final ones")
    p.add_argument("--init", help="start from an earlier run's weights (its final.pt) instead of the MS MARCO reader")
    p.add_argument("--typos", type=float, default=0.0, help="share of questions read with one typo (default 0)")
    p.add_argument("--refusals", type=float, default=0.3, help="share of the groups to be refused (answer removed, "
                   "other article) trained on (default 0.3)")
    p.add_argument("--frozen", type=int, default=6, help="lower layers left as they are (default 6; 0 trains all)")
    p.add_argument("--lr", type=float, default=3e-5, help="learning rate (default 3e-5; the span head's is 30 times it)")
    p.add_argument("--seed", type=int, default=0, help="seed of the group order and the typos (default 0)")
    p.add_argument("--curve", metavar="READINGS", help="instead: the learning curve, each snapshot's reader alone on "
                   "these readings (e.g. reports/readings-select.jsonl from `qa fit`)")

    p = sub.add_parser("bench", help="measure speed and memory: question path, HTTP, cold starts, ingest, index scaling")
    p.add_argument("--index", dest="index_dir", help="the index the question path is measured on (default: index)")
    p.add_argument("--corpus", dest="corpus_dir", help="its corpus, ingested again when --squad is not given")
    p.add_argument("--set", dest="eval_set", default="evals/default.jsonl", help="questions to ask (default evals/default.jsonl)")
    p.add_argument("--questions", type=int, default=40, help="how many of them, and of the SQuAD sample (default 40)")
    p.add_argument("--squad", default="../shared/benchmarks/squad2-dev/dev-v2.0.json",
                   help="SQuAD 2.0 file whose paragraphs are ingested as --documents documents and asked ('' to skip)")
    p.add_argument("--documents", type=int, default=44, help="documents to make of the SQuAD paragraphs (default 44)")
    p.add_argument("--sizes", default="10000,100000,1000000", help="vector counts for the index scaling study")
    p.add_argument("--kinds", default="auto", help="FAISS index kinds to compare at each size: auto,flat,ivf,hnsw")
    p.add_argument("--uploads", default=BENCH_UPLOAD,
                   help="files (comma-separated) to add to a running server, timed to ready ('' to skip; "
                        "a missing default is skipped)")
    p.add_argument("--quick", action="store_true", help="small sizes, each cold start and upload once, no SQuAD: to check it runs")
    p.add_argument("--report", default="reports", help="folder for bench.json (default reports/)")
    p.add_argument("--store", help="a search engine's URI (its own: it is emptied): measure replicas behind HAProxy, "
                                   "ingest workers and replica memory at --sizes synthetic chunks (engine-bench.json)")



def cmd_eval(config: Config, args) -> int:
    import tempfile
    from pathlib import Path

    from ..embed import load_encoder
    from ..pipeline import QA
    from ..read import load_reader
    from . import eval as ev, squad

    started = time.perf_counter()
    encoder, reader = load_encoder(config), load_reader(config)
    with tempfile.TemporaryDirectory(prefix="qa-squad-") as work:
        progress = Progress("indexing", "text")
        if args.squad and args.split:
            runs = squad.squad_split_runs(config, encoder, reader, args.squad, args.split, Path(work), args.limit,
                                       progress=progress)
            name = f"squad-{Path(args.squad).stem}-{args.split}" + (f"-{args.limit}" if args.limit else "")
        elif args.squad:
            runs = [squad.squad_qa(config, encoder, reader, args.squad, Path(work), args.limit, progress)]
            name = f"squad-{Path(args.squad).stem}" + (f"-{args.limit}" if args.limit else "")
        else:
            runs = [(QA.load(config, encoder, reader), ev.load_eval_set(args.eval_set))]
            name = f"eval-{Path(args.eval_set).stem}"
        progress.close()
        asking = Progress("asking", "q", min_total=0)
        results = ev.evaluate_runs(runs, asking)
        asking.close()
    metrics = ev.summarize(results, config.abstain_threshold)
    metrics["run_seconds"] = round(time.perf_counter() - started, 1)
    json_path, md_path = ev.write_reports(name, metrics, results, args.report)
    print(ev.metrics_table(metrics))
    print(f"Reports: {json_path} and {md_path}")
    if not args.baseline:
        return 0
    from .baseline import check_run

    return check_run(args.baseline, args.eval_set, results, args.update_baseline, args.why)


def cmd_fit(config: Config, args) -> int:
    from pathlib import Path

    from . import fit

    folder = Path(args.report)
    limits = dict(zip(("fit", "select", "report"), args.limit or (None, None, None)))
    records = fit.readings(config, folder, args.squad, limits, args.off_corpus, args.reuse, Progress)
    model, threshold, sure, report = fit.fit_and_report(records, args.candidates,
                                                        f"qa fit on the SQuAD fit split of {Path(args.squad).name}")
    (folder / "fit-report.json").write_text(json.dumps(report, indent=1))
    print("\n".join(fit.summary(report)))
    if args.write:
        model.save()
        print(f"Wrote qa/reader_model.json; set abstain_threshold = {threshold:.4f} and reader_candidates = "
              f"{report['candidates']['chosen']} in qa/config.py, then choose sure_threshold with "
              f"studies/sure_band.py (SQuAD's own 9-in-10 floor would be {sure:.4f})")
    return 0


def cmd_train(config: Config, args) -> int:
    from pathlib import Path

    from ..read import packaged_reader_folder
    from . import train, traindata
    from .export_reader import export_reader

    for name, share in (("typos", args.typos), ("refusals", args.refusals)):
        if not 0 <= share <= 1:
            raise QAError(f"--{name} is a share of the questions, from 0 to 1, not {share}.")
    folder, start = Path(args.folder), packaged_reader_folder()
    if args.curve:
        from .fit import load_records

        print(json.dumps(train.learning_curve(folder, start, load_records(Path(args.curve))), indent=1))
        return 0
    groups = train.keep_refusals(traindata.run_groups(config, folder, args.articles,
                                                      args.train_file or traindata.TRAIN_FILE), args.refusals, args.seed)
    other = sum(g.other_article for g in groups)
    print(f"{len(groups)} groups, {sum(len(g.texts) for g in groups)} pairs "
          f"({sum(g.removed for g in groups) - other} answer-removed, {other} other-article)")
    settings = train.TrainSettings(steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed, typos=args.typos,
                                   frozen=args.frozen, init=Path(args.init) if args.init else None)
    weights = Path(args.weights) if args.weights else train.train(groups, folder, start, settings)
    card = export_reader(weights, start, Path(args.out), {"articles": args.articles, "steps": args.steps,
                                                          "batch": args.batch, "groups": len(groups),
                                                          "init": args.init or "ms-marco-MiniLM-L-12-v2",
                                                          "typos": args.typos, "seed": args.seed, "lr": args.lr,
                                                          "frozen": args.frozen, "refusals": args.refusals})
    print(f"Wrote {args.out} (sha256 {card['sha256']}); pin it as READER_SHA256[TRAINED_READER] in qa/config.py")
    return 0


def cmd_bench(config: Config, args) -> int:
    from pathlib import Path

    from . import bench

    try:
        sizes = [int(n) for n in args.sizes.split(",")] if not args.quick else [1000, 20000]
    except ValueError:
        raise QAError(f"--sizes takes whole numbers separated by commas, not {args.sizes!r}.") from None
    squad = None if args.quick or not args.squad else args.squad
    if squad and not Path(squad).is_file():
        raise QAError(f"No SQuAD file at {squad}. Pass --squad FILE, or --squad '' to skip that part.")
    def say(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    if args.store:
        from . import enginebench
        from .eval import load_eval_set

        questions = [item.question for item in load_eval_set(args.eval_set)][:8 if args.quick else args.questions]
        out = Path(args.report) / "engine-bench.json"
        results = enginebench.run(config.with_overrides(store=args.store), questions, squad, args.documents, sizes, say,
                                  5.0 if args.quick else 20.0, out)
        return _report(results, out)
    files = [f for f in args.uploads.split(",") if f]
    missing = [f for f in files if not Path(f).is_file()]
    if missing and args.uploads != BENCH_UPLOAD:
        raise QAError(f"No file at {', '.join(missing)}. Pass --uploads FILE[,FILE], or --uploads '' to skip that part.")
    results = bench.run(config, args.eval_set, squad, args.documents, sizes, args.kinds.split(","),
                        8 if args.quick else args.questions, say, [f for f in files if f not in missing],
                        1 if args.quick else 3)
    print(bench.table(results))
    return _report(results, Path(args.report) / "bench.json")


def _report(results: dict, out) -> int:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"Report: {out}")
    return 0


COMMANDS = {"eval": cmd_eval, "fit": cmd_fit, "train": cmd_train, "bench": cmd_bench}
