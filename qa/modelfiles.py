"""Model files on disk: their weights' hashes (pinned, checked, remembered) and the ONNX
Runtime sessions that run them. Shared by the embedder, the reader and their export."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import threading
from pathlib import Path

from .types import ConfigError


def weights_hash(folder: Path, memo: Path | None = None) -> str:
    """The sha256 of the folder's weights file. With a `memo` file, a hash already taken of
    the same file (same path, size and modification time) is reused: hashing 120 MB of
    weights was a tenth of a cold `qa ask`."""
    for name in ("model.safetensors", "pytorch_model.bin", "model.onnx"):
        f = folder / name
        if f.is_file():
            stat = f.stat()
            key, signature = str(f.resolve()), [stat.st_size, stat.st_mtime_ns]
            known = _read_memo(memo)
            if known.get(key, [])[:2] == signature:
                return known[key][2]
            with f.open("rb") as fh:
                digest = hashlib.file_digest(fh, "sha256").hexdigest()
            if memo is not None:
                _write_memo(memo, {**_read_memo(memo), key: signature + [digest]})
            return digest
    raise ConfigError(f"No model weights (model.safetensors or pytorch_model.bin) in {folder}.")


def _read_memo(memo: Path | None) -> dict:
    try:
        data = json.loads(memo.read_text(encoding="utf-8")) if memo is not None else {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_memo(memo: Path, data: dict) -> None:
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = _beside(memo)
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, memo)
    except OSError:  # a read-only cache only costs the next start a hash
        pass


def _beside(path: Path) -> Path:
    """A file to write before it replaces `path`, this process's and thread's own: two
    starts writing at once each replace `path` whole."""
    return path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def checked_hash(folder: Path, expected: str, what: str, remedy: str, memo: Path | None = None) -> str:
    """The weights' sha256, refused if it is not the `expected` one (when one is given)."""
    found = weights_hash(folder, memo)
    if expected and found != expected:
        raise ConfigError(f"The weights of {what} in {folder} have sha256 {found}, not the expected {expected}: "
                          f"the files are damaged or a different model. {remedy}")
    return found



@functools.cache
def _shared_arena() -> None:
    import onnxruntime as ort

    memory = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
    ort.create_and_register_allocator(memory, ort.OrtArenaCfg(0, -1, -1, -1))  # ONNX Runtime's defaults


def onnx_session(path: Path, threads: int = 0, optimise: bool = True, keep: tuple[Path, str] | None = None):
    """An ONNX Runtime session on the CPU, with `threads` threads (0: every core).
    Its working memory comes from one arena that every session of the process shares: the
    embedder and the reader run one after the other, and an arena each kept both peaks
    (a replica's memory 367 -> 342 MB after 21 questions).

    With `keep` (a folder, and the weights' sha256), the optimised graph is kept there and
    the next start loads it as it is: optimising the reader's graph was 0.20 s of each
    start, and loading it optimised takes 0.04-0.06 s, with the same outputs to the bit."""
    import onnxruntime as ort

    _shared_arena()
    if optimise and keep is not None:
        return _kept_session(path, threads, *keep)
    return ort.InferenceSession(str(path), _options(threads, optimise), providers=CPU)


CPU = ["CPUExecutionProvider"]


def _options(threads: int, optimise: bool = True):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.add_session_config_entry("session.use_env_allocators", "1")
    # Idle worker threads must not spin: the embedder's pool shares the cores with the
    # reader's pairs, and spinning ones slowed the other model by a third (read 125 -> 83 ms
    # p50, measured when the reader had an intra-op pool of its own).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.intra_op_num_threads = threads
    if not optimise:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return options


def _kept_session(path: Path, threads: int, folder: Path, weights_sha256: str):
    """The session from the graph kept in `folder`, or made and kept there. Whatever goes
    wrong with the kept copy (damaged, unreadable, a cache folder that cannot be written or
    is full) costs only the optimising; a model that cannot load fails as it would have."""
    import onnxruntime as ort

    # The optimised graph may be laid out for this CPU's kernels: kept per CPU and version,
    # and per file (a folder's weights hash may be another file's). Threads do not change it.
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()} {stat.st_size} {stat.st_mtime_ns} {ort.__version__} {_cpu()}"
                         .encode()).hexdigest()[:16]
    kept = folder / f"optimised-{weights_sha256[:16]}-{key}.onnx"
    if kept.is_file():
        try:
            return ort.InferenceSession(str(kept), _options(threads, optimise=False), providers=CPU)
        except Exception:  # onnxruntime's errors (Fail, InvalidGraph, …) share no narrower base
            with contextlib.suppress(OSError):
                kept.unlink()
    work = _beside(kept)
    options = _options(threads)
    options.optimized_model_filepath = str(work)
    options.log_severity_level = 3  # its warning that the graph suits this CPU: it is kept per CPU
    try:
        folder.mkdir(parents=True, exist_ok=True)
        session = ort.InferenceSession(str(path), options, providers=CPU)
    except Exception:
        with contextlib.suppress(OSError):
            work.unlink()
        return ort.InferenceSession(str(path), _options(threads), providers=CPU)
    try:
        os.replace(work, kept)
    except OSError:
        with contextlib.suppress(OSError):
            work.unlink()
        return session
    for old in folder.glob(f"optimised-{weights_sha256[:16]}-*.onnx"):  # another version's or CPU's
        if old != kept:
            with contextlib.suppress(OSError):
                old.unlink()
    return session


@functools.cache
def _cpu() -> str:
    """What the optimised graph may depend on: the machine and its CPU's model and features."""
    import platform

    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        info = []
    lines = [line for line in info if line.startswith(("model name", "flags", "Features", "CPU part"))]
    return " ".join([platform.machine(), platform.processor(), *dict.fromkeys(lines)])
