"""`qa bench`: where the time and memory go, measured in one run on this machine.

Each figure stands beside its floor measured in the same run, because on a shared
2-core machine only ratios taken together mean much: the question path beside the
query encoder and the reader run alone on the same inputs; ingest beside the raw
encode of the same texts by the same encoder; approximate search beside exact.
Medians and 95th percentiles throughout. The sections are plain functions returning
dicts, so the JSON report is the same data as the printed table.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..config import Config
from ..files import read_manifest
from ..types import QAError, Say, percentiles
from .eval import load_eval_set
from .scaling import scaling
from .squad import squad_articles

# The installed `qa` script, as a user runs it.
QA_COMMAND = [str(Path(sys.executable).with_name("qa"))] if Path(sys.executable).with_name("qa").exists() \
    else [sys.executable, "-m", "qa.cli"]
class _RecordingReader:
    """The real reader, keeping what it was asked, so its floor can be timed on the same
    pairs: per question, every call (the question as asked, and without its names)."""

    def __init__(self, inner):
        self.inner, self.model_id, self.weights_sha256 = inner, inner.model_id, inner.weights_sha256
        self.calls: list[list[tuple[str, str, list[str]]]] = []  # per question: (method, question, texts)

    def next_question(self) -> None:
        self.calls.append([])

    def score(self, question, texts):
        self.calls[-1].append(("score", question, list(texts)))
        return self.inner.score(question, texts)

    def read(self, question, texts):
        self.calls[-1].append(("read", question, list(texts)))
        return self.inner.read(question, texts)


def question_path(config: Config, questions: list[str], rounds: int = 2) -> dict:
    """In-process stage timings of `QA.ask`, and the models alone on the same inputs.
    The first round warms up; the others are measured."""
    from ..embed import load_encoder
    from ..pipeline import QA
    from ..read import load_reader

    reader = _RecordingReader(load_reader(config))
    qa = QA.load(config, load_encoder(config), reader)
    for q in questions:
        reader.next_question()
        qa.ask(q)
    stages: dict[str, list[float]] = {}
    totals, encoder_alone, reader_alone = [], [], []
    reader.calls.clear()
    for _ in range(rounds - 1):
        for q in questions:
            reader.next_question()
            started = time.perf_counter()
            answer = qa.ask(q)
            totals.append((time.perf_counter() - started) * 1000)
            for stage, ms in answer.timings.items():
                stages.setdefault(stage, []).append(ms)
            started = time.perf_counter()
            qa.encoder.encode_tokens([answer.query])
            encoder_alone.append((time.perf_counter() - started) * 1000)
    for calls in reader.calls:
        started = time.perf_counter()
        for method, question, texts in calls:
            getattr(reader.inner, method)(question, texts)
        reader_alone.append((time.perf_counter() - started) * 1000)
    non_model = [sum(ms for stage, ms in zip(stages, row) if stage not in ("embed", "read"))
                 for row in zip(*stages.values())]
    return {
        "questions": len(questions), "chunks": len(qa.index.chunks), "sentences": len(qa.index.sentences),
        "total_ms": percentiles(totals),
        "stages_ms": {stage: percentiles(ms) for stage, ms in stages.items()},
        "non_model_ms": percentiles(non_model),
        "floors_ms": {"query_encoder_alone": percentiles(encoder_alone), "reader_alone": percentiles(reader_alone)},
        "reader_pairs": percentiles([sum(len(texts) for _, _, texts in calls) for calls in reader.calls]),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, question: str, history: list[dict] | None = None) -> tuple[dict, dict]:
    body = {"question": question, **({"history": history} if history else {})}
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response), dict(response.headers)


def _env(config: Config) -> dict:
    env = {**os.environ, "QA_INDEX_DIR": str(Path(config.index_dir).resolve())}
    return {**env, "QA_CACHE_DIR": config.cache_dir} if config.cache_dir else env


def over_http(config: Config, questions: list[str], rounds: int = 2,
              follow_ups: Sequence[tuple[str, str]] = ()) -> dict:
    """`qa serve` on loopback: process start to first answer, then each question's latency
    beside the server's own time for it (Server-Timing), the latency of follow-ups read
    both ways (`follow_ups`: a first question and one that follows it, whose resolution is
    unsure), and the server's resident memory."""
    port = _free_port()
    env = _env(config)
    started = time.perf_counter()
    server = subprocess.Popen(QA_COMMAND + ["serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/api/ask"
    try:
        while True:
            if server.poll() is not None:
                raise QAError(f"qa serve exited: {server.stderr.read().decode()[-500:]}")
            try:
                _post(url, questions[0])
                break
            except OSError:
                time.sleep(0.02)
        cold = time.perf_counter() - started
        latency, server_ms = [], []
        for n in range(rounds):
            for q in questions:
                t = time.perf_counter()
                _, headers = _post(url, q)
                if n:  # the first round warms up
                    latency.append((time.perf_counter() - t) * 1000)
                    server_ms.append(sum(float(part.split("dur=")[1]) for part in headers["Server-Timing"].split(",")))
        two_readings = []
        for first, then in follow_ups:
            answer, _ = _post(url, first)
            t = time.perf_counter()
            _post(url, then, [{"question": first, "answer": answer["answer"]}])
            two_readings.append((time.perf_counter() - t) * 1000)
        rss = _rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"cold_start_to_first_answer_s": round(cold, 3), "latency_ms": percentiles(latency),
            "follow_up_two_readings_ms": percentiles(two_readings) if two_readings else None,
            "server_time_ms": percentiles(server_ms),
            "http_overhead_ms": percentiles(np.subtract(latency, server_ms)), "server_rss_mb": rss}


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def cold_ask(config: Config, question: str, runs: int = 3) -> dict:
    """A new `qa ask` process, start to printed answer (the OS file cache is warm)."""
    env = _env(config)
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        out = subprocess.run(QA_COMMAND + ["ask", question], env=env, capture_output=True, text=True, timeout=300)
        seconds.append(time.perf_counter() - started)
        if out.returncode:
            raise QAError(f"qa ask failed: {out.stderr[-500:]}")
    return {"runs": runs, "median_s": round(float(np.median(seconds)), 3), "all_s": [round(s, 3) for s in seconds]}


def ingest(config: Config, corpus: Path, fractions: Sequence[float] = (0.25, 0.5, 1.0)) -> list[dict]:
    """Fresh ingests of growing shares of the corpus, each in its own process (for its peak
    memory): texts and tokens per second, beside raw encode of the same texts there."""
    files = sorted(p for p in corpus.iterdir() if p.is_file())
    rows = []
    for fraction in fractions:
        with tempfile.TemporaryDirectory(prefix="qa-bench-ingest-") as work:
            part = Path(work) / "corpus"
            part.mkdir()
            for f in files[:max(1, round(len(files) * fraction))]:
                shutil.copy(f, part)
            job = {"config": {**config.__dict__, "corpus_dir": str(part), "index_dir": str(Path(work) / "index")}}
            out = subprocess.run([sys.executable, "-m", "qa.lab.bench", json.dumps(job)], capture_output=True, text=True,
                                 timeout=7200, env={**os.environ})
            if out.returncode:
                raise QAError(f"the ingest benchmark failed: {out.stderr[-800:]}")
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def _ingest_worker(job: dict) -> dict:
    """Runs in a child process: one fresh ingest, then the raw encode of the same texts."""
    import resource

    from ..embed import load_encoder
    from ..files import load_index
    from ..index import build_index, expected_settings

    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in job["config"].items()}
    config = Config(**fields)
    encoder = load_encoder(config)
    started = time.perf_counter()
    report = build_index(config, encoder)
    seconds = time.perf_counter() - started
    index = load_index(config.index_dir, expected_settings(config, encoder.model_id, encoder.weights_sha256, encoder.dim))
    texts = [index.sentence_text(i) for i in range(len(index.sentences))] + [index.chunk_text(c) for c in range(len(index.chunks))]
    tokens = sum(encoder.count_tokens(t) for t in texts)
    started = time.perf_counter()
    encoder.encode(texts)
    raw = time.perf_counter() - started
    return {"documents": report.documents, "texts": len(texts), "tokens": tokens, "seconds": round(seconds, 2),
            "texts_per_s": round(len(texts) / seconds, 1), "tokens_per_s": round(tokens / seconds),
            "raw_encode_texts_per_s": round(len(texts) / raw, 1), "ratio_to_raw": round(raw / seconds, 3),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "index_mb": folder_mb(config.index_dir), "index_bytes_per_sentence": bytes_per_sentence(config.index_dir)}


def folder_mb(folder: str | Path) -> float:
    return round(sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()) / 2**20, 2)


def bytes_per_sentence(folder: str | Path) -> int:
    """The index's files beyond the documents' own text, per sentence (issue 43: at most 4 KB)."""
    manifest = read_manifest(folder)
    beyond = [Path(folder) / name for key, name in manifest["files"].items() if key != "documents"]
    size = sum(p.stat().st_size if p.is_file() else sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
               for p in beyond) + (Path(folder) / "manifest.json").stat().st_size
    return round(size / max(1, manifest["counts"]["sentences"]))


def uploads(config: Config, files: Sequence[str], rounds: int = 3) -> list[dict]:
    """Adding a file to a running server: `POST /api/documents` to "ready" (stored, read,
    embedded, index rebuilt and swapped in), on a copy of the corpus and index, beside
    reading the file alone. Each round uploads the file and removes it again."""
    import dataclasses

    from ..documents import Upload, check
    from ..ingest import read_document
    from ..pipeline import QA
    from ..server import create_app

    out = []
    with tempfile.TemporaryDirectory(prefix="qa-bench-uploads-") as work:
        copy = dataclasses.replace(config, corpus_dir=str(Path(work) / "corpus"), index_dir=str(Path(work) / "index"),
                                   api_token="bench", rate_limit_per_minute=0)
        shutil.copytree(config.corpus_dir, copy.corpus_dir)
        shutil.copytree(config.index_dir, copy.index_dir, ignore=shutil.ignore_patterns(".ingest.lock"))
        manifest = Path(copy.index_dir) / "manifest.json"  # the copied index belongs to the copied corpus
        manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "corpus": str(Path(copy.corpus_dir).resolve())}))
        client = create_app(copy, QA.load(copy)).test_client()
        auth = {"Authorization": "Bearer bench"}
        for name in files:
            data = Path(name).read_bytes()
            suffix = check(Upload(Path(name).name, data), copy.max_upload_bytes)
            doc = read_document(Path(name), "x", Path(name).name, [], data)  # its reader's imports, untimed
            reads = []
            for _ in range(rounds):
                started = time.perf_counter()
                read_document(Path(name), "x", Path(name).name, [], data)
                reads.append(time.perf_counter() - started)
            seconds = []
            for _ in range(rounds):
                started = time.perf_counter()
                reply = client.post("/api/documents", headers=auth, content_type="multipart/form-data",
                                    data={"file": [(io.BytesIO(data), Path(name).name)]})
                doc_id = reply.get_json()["documents"][0]["doc_id"]
                while (state := _state(client, doc_id)) in {"queued", "indexing"}:
                    time.sleep(0.01)
                seconds.append(time.perf_counter() - started)
                if state != "ready":
                    raise QAError(f"{name} did not index: {state}")
                client.delete(f"/api/documents/{doc_id}", headers=auth)
                while _state(client, doc_id) is not None:
                    time.sleep(0.01)
            out.append({"file": Path(name).name, "type": suffix, "bytes": len(data), "pages": len(doc.pages) or None,
                        "read_s": round(float(np.median(reads)), 3), "upload_to_ready_s": round(float(np.median(seconds)), 3),
                        "all_s": [round(x, 3) for x in seconds]})
    return out


def _state(client, doc_id: str) -> str | None:
    docs = client.get("/api/documents").get_json()["documents"]
    return next((d["state"] for d in docs if d["doc_id"] == doc_id), None)


def squad_corpus(path: str | Path, documents: int, folder: Path) -> list[str]:
    """The SQuAD file's paragraphs, in order, written as `documents` documents of
    consecutive paragraphs (the shared dev file holds 16 articles; ingest is to be
    measured on 40 and more documents); the answerable questions about them."""
    paragraphs = [p for article in squad_articles(path) for p in article["paragraphs"]]
    per = -(-len(paragraphs) // max(1, documents))
    questions = []
    for n in range(0, len(paragraphs), per):
        group = paragraphs[n:n + per]
        (folder / f"squad-{n // per:03d}.txt").write_text("\n\n".join(p["context"] for p in group), encoding="utf-8")
        questions += [q["question"] for p in group for q in p["qas"] if not q.get("is_impossible")]
    return questions


def unsure_follow_ups(path: Path, limit: int = 20) -> list[tuple[str, str]]:
    """(first question, its follow-up) pairs of a conversation set whose follow-up is read
    both ways (`qa.followup.resolve` offers two readings whatever the first answer said)."""
    from ..followup import resolve

    if not path.is_file():
        return []
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        turns = json.loads(line)["turns"] if line.strip() else []
        for first, then in zip(turns, turns[1:]):
            if resolve(then["question"], [{"question": first["question"], "answer": ""}]).alternative:
                pairs.append((first["question"], then["question"]))
    return pairs[:limit]


def run(config: Config, eval_set: str, squad: str | None, documents: int, sizes: Sequence[int],
        kinds: Sequence[str], questions_limit: int, say: Say = print, upload_files: Sequence[str] = (),
        repeats: int = 3) -> dict:
    """Every section, in an order that keeps one model-heavy process running at a time.
    `repeats`: cold starts and uploads each measured that many times (`--quick`: once).
    Follow-ups read both ways: as many as `questions_limit`, at most 20."""
    questions = [item.question for item in load_eval_set(eval_set)][:questions_limit]
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
                     "config": {"encoder_runtime": config.encoder_runtime, "reader": config.reader,
                                "reader_candidates": config.reader_candidates}}
    # Cold starts and the other processes first, then what runs in this one without a
    # loaded `QA` (which keeps BLAS to one thread), then the question paths.
    say("cold qa ask")
    results["cold_ask"] = cold_ask(config, questions[0], repeats)
    say("question path over HTTP, and qa serve's cold start")
    results["http"] = over_http(config, questions, follow_ups=unsure_follow_ups(Path(eval_set).with_name(
        "conversations.jsonl"), min(20, questions_limit)))
    results["index_mb"] = folder_mb(config.index_dir)
    results["index_bytes_per_sentence"] = bytes_per_sentence(config.index_dir)
    with tempfile.TemporaryDirectory(prefix="qa-bench-") as work:
        corpus, squad_config = Path(config.corpus_dir), None
        if squad:
            corpus = Path(work) / "squad"
            corpus.mkdir()
            squad_questions = squad_corpus(squad, documents, corpus)
        say(f"ingest of {corpus}")
        results["ingest"] = ingest(config, corpus, (0.25, 0.5, 1.0) if squad else (1.0,))
        results["scaling"] = scaling(config, sizes, kinds, say=say)
        if squad:
            from ..embed import load_encoder
            from ..index import build_index

            squad_config = config.with_overrides(corpus_dir=str(corpus), index_dir=str(Path(work) / "index"))
            build_index(squad_config, load_encoder(squad_config))
        say("question path, in process (default corpus)")
        results["question_path"] = question_path(config, questions)
        if squad_config:
            say(f"question path on the {documents}-document SQuAD index")
            picked = np.random.default_rng(0).choice(len(squad_questions), min(questions_limit, len(squad_questions)),
                                                     replace=False)
            sample = [squad_questions[i] for i in picked]
            results["question_path_squad"] = question_path(squad_config, sample)
            say("qa serve on the SQuAD index")
            results["http_squad"] = over_http(squad_config, sample)
    if upload_files:
        say("adding files to a running server")
        results["uploads"] = uploads(config, upload_files, repeats)
    return results


def table(r: dict) -> str:
    """The report as the README shows it."""
    lines = ["| measure | p50 | p95 | floor / comparison |", "| --- | --- | --- | --- |"]

    def row(name, d, floor=""):
        lines.append(f"| {name} | {d['p50']} | {d['p95']} | {floor} |")

    for key, label in (("question_path", "default corpus"), ("question_path_squad", "SQuAD index")):
        if key not in r:
            continue
        qp = r[key]
        lines.append(f"| **question path, {label}** ({qp['chunks']} chunks, {qp['questions']} questions), ms | | | |")
        row("QA.ask total", qp["total_ms"])
        for stage, d in qp["stages_ms"].items():
            floor = {"embed": f"encoder alone {qp['floors_ms']['query_encoder_alone']['p50']}",
                     "read": f"reader alone {qp['floors_ms']['reader_alone']['p50']} "
                             f"({qp['reader_pairs']['p50']:.0f} pairs)"}.get(stage, "")
            row(f"· {stage}", d, floor)
        row("non-model work (all but embed and read)", qp["non_model_ms"])
    h = r["http"]
    row("POST /api/ask over loopback, ms", h["latency_ms"], f"server's own time p50 {h['server_time_ms']['p50']}")
    row("HTTP overhead, ms", h["http_overhead_ms"])
    if h.get("follow_up_two_readings_ms"):
        row("POST /api/ask, a follow-up read both ways, ms", h["follow_up_two_readings_ms"])
    lines.append(f"| cold `qa ask`, process start to printed answer | {r['cold_ask']['median_s']} s | | "
                 f"runs {r['cold_ask']['all_s']} |")
    lines.append(f"| cold `qa serve`, process start to first answer | {h['cold_start_to_first_answer_s']} s | | |")
    lines.append(f"| server resident memory | {h['server_rss_mb']} MB | | index on disk {r['index_mb']} MB, {r['index_bytes_per_sentence']:,} bytes a sentence beyond the text |")
    if "http_squad" in r:
        hs, chunks = r["http_squad"], r["question_path_squad"]["chunks"]
        row(f"POST /api/ask, SQuAD index ({chunks} chunks), ms", hs["latency_ms"],
            f"server resident memory {hs['server_rss_mb']} MB")
    for g in r["ingest"]:
        lines.append(f"| ingest {g['documents']} documents, {g['texts']} texts | {g['texts_per_s']} texts/s, "
                     f"{g['tokens_per_s']} tokens/s | | raw encode {g['raw_encode_texts_per_s']} texts/s; "
                     f"ratio {g['ratio_to_raw']}; peak {g['peak_rss_mb']} MB; index {g['index_mb']} MB |")
    for u in r.get("uploads", ()):
        pages = f", {u['pages']} pages" if u["pages"] else ""
        lines.append(f"| add {u['file']} ({u['bytes']:,} bytes{pages}) to a running server, upload to ready | "
                     f"{u['upload_to_ready_s']} s | | reading the file alone {u['read_s']} s |")
    for s in r["scaling"]:
        lines.append(f"| search {s['vectors']:,} × 384 ({s['index']['kind']}), ms | {s['search_ms']['p50']} | "
                     f"{s['search_ms']['p95']} | recall@10 {s['recall_at_10']}; build {s['build_s']} s; "
                     f"{s['mb_per_million']} MB per million |")
    return "\n".join(lines)


if __name__ == "__main__":  # the child process of `ingest`
    print(json.dumps(_ingest_worker(json.loads(sys.argv[1]))))
