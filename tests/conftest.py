"""Shared fixtures: the real model and a real index over the default corpus, built once per run."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from qa.config import Config
from qa.embed import load_encoder
from qa.index import build_index
from qa.lab.replicas import replica
from qa.pipeline import QA
from qa.read import load_reader

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"

# Under xdist (`scripts/test --quick`) the workers share the cores: each model gets its share
# rather than every core, in the workers and in the servers and commands they start
# (onnxruntime and torch read these when a model is first loaded). Two workers each running
# the reader on both of two cores took a fifth more CPU a question.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _share = str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    for _name in ("OMP_NUM_THREADS", "QA_EMBED_THREADS", "QA_READER_THREADS"):
        os.environ.setdefault(_name, _share)
# What the model fixtures load with: a test's own Config() reads no environment.
THREADS = {"embed_threads": int(os.environ.get("QA_EMBED_THREADS", "0")),
           "reader_threads": int(os.environ.get("QA_READER_THREADS", "0"))}

# Test tiers (docs/testing.md), as markers given at collection, so that no test has to
# remember its own: `bash scripts/test --quick` leaves out browser, engine and wheel.
# - model: the test uses, directly or through other fixtures, one that loads the real
#   embedder or reader (and so the index built with them, or a server that loads them);
# - browser, engine, wheel: by module, as each of those needs what the quick tier skips
#   (Chromium; a Milvus Lite server from .venv-engine; a wheel built into a fresh venv).
MODEL_FIXTURES = frozenset({"encoder", "torch_encoder", "reader", "msmarco_reader", "qa", "live_server"})
# What loads the model without one of those fixtures: a `qa` command run in-process
# (`main(["ingest", …])`) or as a subprocess, or training from the reader's weights. Found by
# running `-m "not model"` with onnxruntime's and sentence-transformers' loaders wrapped.
MODEL_MODULES = frozenset({"test_train", "test_wheel"})
MODEL_TESTS = frozenset({
    ("test_cli", "test_ingest_ask_and_search"),
    ("test_cli", "test_errors_are_one_line_with_non_zero_exit"),
    ("test_cli", "test_fit_collects_readings_through_the_product_then_fits_again_from_them"),
    ("test_embed", "test_onnx_encoder_is_safe_to_share_between_threads"),
    ("test_eval", "test_qa_eval_on_tiny_squad_writes_reports"),
    ("test_hostile", "test_qa_ingest_skips_a_bad_file_with_a_warning_and_builds_the_rest"),
    ("test_onnx", "test_without_onnxruntime_the_encoder_falls_back_to_torch"),
    ("test_read", "test_a_pair_scores_the_same_whatever_is_read_beside_it"),
    ("test_read", "test_the_optimised_graph_is_kept_and_read_back_with_the_same_logits"),
    ("test_read", "test_a_cache_folder_that_cannot_keep_the_graph_costs_only_the_optimising"),
    ("test_own_corpus", "test_qa_ingest_on_a_full_disk_says_so_in_one_line_and_leaves_no_partial_files"),
    ("test_own_corpus", "test_qa_ingest_on_a_full_disk_simulated"),
    ("test_engine", "test_qa_remove_works_on_the_engine_as_on_the_files"),
})
MODULE_MARKS = {"test_browser": "browser", "test_engine": "engine", "test_engine_restart": "engine",
                "test_replicas": "engine", "test_wheel": "wheel"}


# Under xdist the modules longest in wall-clock time go first (seconds, quick tier,
# 2026-12-07, a module run on another's worker counted with it), so that no worker is left
# alone at the end with one of them: on xdist's own order, one worker ran 29 s longer than
# the next. `--no-loadscope-reorder` keeps it.
LONGEST_FIRST = ("test_slow_clients", "test_eval", "test_regressions", "test_train", "test_onnx",  # 46-36 s
                 "test_bench", "test_own_corpus", "test_budgets", "test_answer", "test_documents",  # 32-14 s
                 "test_hostile", "test_load", "test_fuzz", "test_index", "test_cli")  # 14-11 s
# Modules run on one worker under `--dist loadfile`, as one unit of work:
# - eval and regressions both ask the eval sets, and 78 of the typo set's 99 questions read
#   as the default set's once respelled, so on the worker whose session encoder and reader
#   have read those (`memoised`, `memoised_reader`) they cost nothing (11 s of CPU on another);
# - train, onnx and embed each import PyTorch, and onnx and embed load the torch encoder
#   (6 s of CPU on each worker that does).
SAME_WORKER = {"tests/test_regressions.py": "tests/test_eval.py",
               "tests/test_onnx.py": "tests/test_train.py", "tests/test_embed.py": "tests/test_train.py"}


@pytest.hookimpl(optionalhook=True)  # pytest run without xdist (`-p no:xdist`) knows no such hook
def pytest_xdist_make_scheduler(config, log):
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class Scheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = super()._split_scope(nodeid)
            return SAME_WORKER.get(module, module)

    return Scheduling(config, log)


def pytest_collection_modifyitems(config, items):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: LONGEST_FIRST.index(m) if (m := item.path.stem) in LONGEST_FIRST
                   else len(LONGEST_FIRST))
    for item in items:
        module = item.path.stem
        if module in MODULE_MARKS:
            item.add_marker(MODULE_MARKS[module])
        if (module in MODEL_MODULES or (module, getattr(item, "originalname", item.name)) in MODEL_TESTS
                or MODEL_FIXTURES.intersection(item.fixturenames)):
            item.add_marker("model")


def copy_documents(folder: Path, documents: int) -> list[str]:
    """The first `documents` of the default corpus copied into `folder` (made): their file names."""
    folder.mkdir(parents=True, exist_ok=True)
    names = sorted(p.name for p in CORPUS.iterdir() if p.suffix == ".txt")[:documents]
    for name in names:
        shutil.copy(CORPUS / name, folder / name)
    return names


def indexed_corpus(root: Path, encoder, *names: str) -> Config:
    """A corpus of these default documents (by file name) in `root/corpus`, indexed in
    `root/index` with the real encoder: its config."""
    (root / "corpus").mkdir(parents=True)
    for name in names:
        shutil.copy(CORPUS / name, root / "corpus")
    config = Config(corpus_dir=str(root / "corpus"), index_dir=str(root / "index"))
    build_index(config, encoder)
    return config


class CountingEncoder:
    """The real encoder, counting the texts it is asked to embed."""

    def __init__(self, inner):
        self.inner = inner
        self.model_id, self.weights_sha256 = inner.model_id, inner.weights_sha256
        self.dim, self.max_tokens = inner.dim, inner.max_tokens
        self.encoded: list[str] = []

    def encode(self, texts, progress=None):
        self.encoded.extend(texts)
        return self.inner.encode(texts, progress)

    def encode_tokens(self, texts, progress=None):
        self.encoded.extend(texts)
        return self.inner.encode_tokens(texts, progress)

    def count_tokens(self, text):
        return self.inner.count_tokens(text)


def memoised(encoder):
    """The real encoder, whose network outputs for each text are kept for the session. Many
    tests index the default documents afresh in folders of their own: 88% of the texts one
    worker embedded were repeats. Batches, progress and cancellation between batches are as
    they were; only the repeated rows of a batch skip the network."""
    forward, memo = encoder._forward, {}

    def cached(encodings: list) -> tuple:
        keys = [tuple(e.ids) for e in encodings]
        new = [j for j, key in enumerate(keys) if key not in memo]
        if new:
            pooled, hidden, _ = forward([encodings[j] for j in new])
            for row, j in enumerate(new):
                memo[keys[j]] = (pooled[row], hidden[row, :len(keys[j])])
        mask = np.zeros((len(keys), max(map(len, keys))), dtype=np.int64)
        hidden = np.zeros((*mask.shape, encoder.dim), dtype=np.float32)
        for j, key in enumerate(keys):
            mask[j, :len(key)] = 1
            hidden[j, :len(key)] = memo[key][1]
        return np.stack([memo[key][0] for key in keys]), hidden, mask

    encoder._forward = cached
    return encoder


@pytest.fixture(scope="session")
def encoder():
    return memoised(load_encoder(Config(**THREADS)))


@pytest.fixture(scope="session")
def torch_encoder():
    return load_encoder(Config(encoder_runtime="torch", **THREADS))


def memoised_reader(reader):
    """The real reader, whose outputs for each (question, sentence) pair it reads are kept
    for the session: the eval tests ask the default set again reworded ("no question mark"
    reads exactly as the default set once the question is put plainly), and many tests ask
    the same questions. Each pair is read alone, so its outputs do not depend on the pairs
    asked with it."""
    forward_pair, memo = reader.forward_pair, {}

    def cached(pair, spans=True):
        key = (tuple(pair), spans)
        if key not in memo:
            memo[key] = forward_pair(pair, spans)
        return memo[key]

    cached.__wrapped__ = forward_pair  # for a test of the reader under concurrent callers
    reader.forward_pair = cached
    return reader


@pytest.fixture(scope="session")
def reader():
    return memoised_reader(load_reader(Config(**THREADS)))


@pytest.fixture(scope="session")
def msmarco_reader():
    """The MS MARCO cross-encoder as it ships, before `qa train` (still selectable)."""
    from qa.config import MSMARCO_READER

    return load_reader(Config(reader=MSMARCO_READER, **THREADS))


@pytest.fixture(scope="session")
def corpus_config(tmp_path_factory) -> Config:
    return Config(corpus_dir=str(CORPUS), index_dir=str(tmp_path_factory.mktemp("index")))


@pytest.fixture(scope="session")
def qa(corpus_config, encoder, reader) -> QA:
    build_index(corpus_config, encoder)
    return QA.load(corpus_config, encoder, reader)


@pytest.fixture(scope="session")
def evaluated(qa, tmp_path_factory):
    """An eval set's results over the default corpus (by name: evals/NAME.jsonl), asked once
    a run: test_eval.py's levels and test_regressions.py's baselines read the same results.
    Under xdist the workers share them through the run's temporary folder (each worker
    builds the same index from the same corpus)."""
    from qa.lab.eval import evaluate, load_eval_set

    runs: dict[str, list] = {}
    shared = tmp_path_factory.getbasetemp().parent if os.environ.get("PYTEST_XDIST_WORKER") else None

    def results(name: str) -> list:
        if name in runs:
            return runs[name]
        if shared is None:
            runs[name] = evaluate(qa, load_eval_set(ROOT / "evals" / f"{name}.jsonl"))
            return runs[name]
        with open(shared / f"eval-{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one worker asks; the other waits and reads
            saved = shared / f"eval-{name}.pickle"
            if saved.exists():
                runs[name] = pickle.loads(saved.read_bytes())
            else:
                runs[name] = evaluate(qa, load_eval_set(ROOT / "evals" / f"{name}.jsonl"))
                saved.write_bytes(pickle.dumps(runs[name]))
        return runs[name]

    return results


# A document whose text looks like markup: the page must show it, never run it.
UNSAFE_DOC = (
    "Markup Safety Notice\n\n"
    "The Quantum Widget Board reviews markup such as <script>window.pwned = 1</script> and "
    "<img src=x onerror=\"window.pwned = 2\"> and <a href=\"javascript:window.pwned = 3\">links</a> in its documents.\n"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(tmp_path_factory, encoder):
    """`qa serve` as a user runs it, on a free loopback port, over the corpus plus an unsafe document."""
    root = tmp_path_factory.mktemp("live")
    corpus = root / "corpus"
    shutil.copytree(CORPUS, corpus)
    (corpus / "unsafe.txt").write_text(UNSAFE_DOC, encoding="utf-8")
    config = Config(corpus_dir=str(corpus), index_dir=str(root / "index"))
    build_index(config, encoder)

    with running_server(config, root) as (base, _):
        yield base


@contextlib.contextmanager
def running_server(config: Config, root: Path, env: dict | None = None, python: str = sys.executable):
    """`qa serve` on a free loopback port over `config.index_dir`, until the block ends:
    gives its base URL and its process (its log: `root`/replica-<port>.log). `python`: the
    interpreter it runs under. It stops at once: the drain a balancer needs (`drain_seconds`,
    2 s of waiting at every stop) is tested with replicas, in tests/test_replicas.py."""
    with replica(free_port(), root, {"QA_INDEX_DIR": config.index_dir, "QA_DRAIN_SECONDS": "0", **(env or {})},
                 python=python) as served:
        yield served


@contextlib.contextmanager
def engine_server(data: Path):
    """`bash scripts/engine DIR PORT` as a user runs it, until the block ends: gives the URI
    it printed as its last line once the server accepted connections."""
    proc = subprocess.Popen(["bash", str(ROOT / "scripts" / "engine"), str(data), str(free_port())],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    uri = proc.stdout.readline().strip()
    try:
        assert uri.startswith("http://"), proc.stderr.read()[-2000:]
        yield uri
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="session")
def engine_uri(tmp_path_factory):
    with engine_server(tmp_path_factory.mktemp("engine")) as uri:
        yield uri


def post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as r:
        return json.load(r)
