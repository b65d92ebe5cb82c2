"""Adding and removing documents while the index serves.

An added file is checked (type by name and by content, size), then stored in the
corpus folder under a name made of its content's hash, so a file name never becomes
a path and the same file added twice is one document; the name it came with is kept
in its sidecar for the title. `Indexer` runs `qa.index.build_index` on a thread, one
build at a time (the index folder's lock: a `qa ingest` from the command line is
waited for), and then has the server swap the new index in. Until then it knows each
document it was given as queued, indexing, removing or failed (with the reason).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import threading
import time
import zipfile
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from .config import Config
from .embed import Encoder
from .index import build_index
from .files import sync_path
from .store import Store
from .ingest import SUFFIXES
from .types import IndexBusyError, QAError

log = logging.getLogger(__name__)

UPLOADS = "uploads"  # the corpus subfolder added files are stored in


class DocumentError(QAError):
    """An add or remove that cannot be done, with the HTTP status that says why."""

    def __init__(self, message: str, status: int = 400, code: str = "bad_upload"):
        super().__init__(message)
        self.status, self.code = status, code


def unsupported(message: str) -> DocumentError:
    return DocumentError(message, 415, "unsupported_file")


def unknown(doc_id: str) -> DocumentError:
    return DocumentError(f"No document has the id {doc_id!r}. GET /api/documents lists them.", 404, "not_found")


def last_document() -> DocumentError:
    return DocumentError("That is the last document; an index needs at least one. Add another first.", 409, "conflict")


@dataclass(frozen=True)
class Upload:
    filename: str  # as the client named it: shown, never used as a path
    data: bytes


def display_name(filename: str) -> str:
    """The file's own name without any folders (a client may send "../../x.pdf" or
    "C:\\x.pdf") or control characters, for titles and listings."""
    name = re.split(r"[\\/]", filename or "")[-1]
    # Control characters, and the direction marks that would make "evil\u202egnp.pdf" show
    # as "evilfdp.png", are dropped.
    name = re.sub(r"[\x00-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069]", "", name).strip()
    if len(name) > 200:  # cut the stem, so that the type stays readable from the name
        suffix = Path(name).suffix[:20]
        name = name[: 200 - len(suffix)] + suffix
    return name or "upload"


def check(upload: Upload, max_bytes: int) -> str:
    """The file's suffix, once its name, size and content agree on a type we read."""
    name = display_name(upload.filename)
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise unsupported(f"{name}: files of this type cannot be read. Add {', '.join(sorted(SUFFIXES))} files.")
    if len(upload.data) > max_bytes:
        raise DocumentError(f"{name} is {len(upload.data):,} bytes; the limit is {max_bytes:,} (max_upload_bytes).",
                            413, "too_large")
    if not upload.data.strip():
        raise DocumentError(f"{name} is empty.")
    if suffix == ".pdf" and not upload.data.startswith(b"%PDF"):
        raise unsupported(f"{name} is named .pdf but is not a PDF file.")
    if suffix == ".docx" and not zipfile.is_zipfile(io.BytesIO(upload.data)):
        raise unsupported(f"{name} is named .docx but is not a Word file.")
    if suffix not in {".pdf", ".docx"}:
        try:
            upload.data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise unsupported(f"{name} is not UTF-8 text; re-save it as UTF-8.") from None
    return suffix


def store(corpus_dir: str | Path, upload: Upload, suffix: str, digest: str) -> tuple[str, Path]:
    """Write the file into `<corpus>/uploads/<digest><suffix>` (the digest: the first 16
    hex digits of its sha256) with its sidecar, each whole or not at all; returns its
    document id and path."""
    folder = Path(corpus_dir) / UPLOADS
    path = folder / f"{digest}{suffix}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _write(folder / f"{digest}.meta.json", json.dumps({"filename": display_name(upload.filename)}).encode())
        _write(path, upload.data)
        sync_path(folder)
    except OSError as exc:
        raise _storage_error(folder, exc) from None
    return f"{UPLOADS}/{digest}", path


def _storage_error(folder: Path, exc: OSError) -> DocumentError:
    return DocumentError(f"Cannot change the corpus folder {folder}: {exc.strerror or exc}. Check that the server "
                         "may write there and that the disk has room.", 500, "storage_error")


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def source_path(corpus_dir: str | Path, source: str) -> Path:
    """A document's file, which must be inside the corpus folder."""
    root = Path(corpus_dir).resolve()
    path = (root / source).resolve()
    if not path.is_relative_to(root):
        raise DocumentError(f"The document's file {source} is outside the corpus folder; it was not removed.", 409,
                            "conflict")
    return path


def delete_files(corpus_dir: str | Path, source: str) -> None:
    path = source_path(corpus_dir, source)
    try:
        path.unlink(missing_ok=True)
        path.with_name(path.stem + ".meta.json").unlink(missing_ok=True)
        sync_path(path.parent)
    except OSError as exc:
        raise _storage_error(path.parent, exc) from None


def add_files(config: Config, uploads: list[Upload], journal: Callable[[list[dict]], None] | None = None,
              present: Collection[str] = ()) -> list[dict]:
    """Check every file, then store each; returns a job for each: queued, or "already
    added" where the same bytes are a document in `present` or came earlier in the batch
    (a document is its content). `journal`, if given, is told the queued jobs before any
    file is stored, so that a crash between the two leaves a job that says so rather than
    a file nobody knows of."""
    if not uploads:
        raise DocumentError("No file was sent. Send one or more files in the multipart field \"file\".")
    suffixes = [check(u, config.max_upload_bytes) for u in uploads]
    jobs, seen = [], set(present)
    for upload, suffix in zip(uploads, suffixes):
        digest = hashlib.sha256(upload.data).hexdigest()[:16]
        doc_id = f"{UPLOADS}/{digest}"
        jobs.append({"doc_id": doc_id, "source": f"{UPLOADS}/{digest}{suffix}", "filename": display_name(upload.filename),
                     "state": "already added" if doc_id in seen else "queued"})
        seen.add(doc_id)
    queued = [(job, upload) for job, upload in zip(jobs, uploads) if job["state"] == "queued"]
    if journal and queued:
        journal([job for job, _ in queued])
    for job, upload in queued:
        store(config.corpus_dir, upload, Path(job["source"]).suffix, Path(job["doc_id"]).name)
    return jobs


PENDING = {"queued", "indexing"}  # a document on its way into the index
JOURNAL = ".jobs.json"  # in the uploads folder: the pending jobs, so that they outlive the process
BUILD_ATTEMPTS, RETRY_SECONDS = 2, 2.0  # a build that failed as a whole is tried once more, this much later
FAILED_KEPT_SECONDS = 24 * 3600  # long enough to be seen by whoever added the file
MAX_INTERRUPTED = 2  # builds a document may be in when the server stops, before it is set aside


class Indexer:
    """Builds the index on a background thread whenever documents were added or removed,
    and calls `swap` once the build is committed; keeps each pending document's state.

    The states are journalled (`JOURNAL`, written whole before an upload's 202): after a
    crash or a restart every upload is listed again, queued ones are built, failed ones
    say why and can be deleted. A document that was being indexed when the server stopped
    is queued once more; after `MAX_INTERRUPTED` such stops it fails and its file leaves
    the corpus, so a file that kills the server is never retried in a loop."""

    def __init__(self, config: Config, encoder: Encoder, swap: Callable[[], None]):
        self.config, self.encoder, self.swap = config, encoder, swap
        self._journal = Path(config.corpus_dir) / UPLOADS / JOURNAL
        self._lock = threading.Lock()
        self._jobs: dict[str, dict] = self._recover()  # doc id -> {"doc_id", "source", "filename", "state", ...}
        self._wake = threading.Event()
        threading.Thread(target=self._run, name="indexer", daemon=True).start()
        if any(j["state"] in {"queued", "removing"} for j in self._jobs.values()):
            self._wake.set()

    def _recover(self) -> dict[str, dict]:
        try:
            jobs = {j["doc_id"]: j for j in json.loads(self._journal.read_text(encoding="utf-8"))}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("the upload journal %s cannot be read (%s); starting without it", self._journal, exc)
            return {}
        for job in jobs.values():
            if job["state"] != "indexing":
                continue
            job["interrupted"] = job.get("interrupted", 0) + 1
            if job["interrupted"] < MAX_INTERRUPTED:
                job["state"] = "queued"
                continue
            job.update(state="failed", failed_at=time.time(),
                       reason=f"the server stopped {job['interrupted']} times while indexing this file, so it was "
                              "set aside; check the server log, then add it again or remove it")
            delete_files(self.config.corpus_dir, job["source"])
        with self._lock:
            self._save(jobs)
        return jobs

    def _save(self, jobs: dict[str, dict] | None = None, strict: bool = False) -> None:
        """Write the journal (the caller holds the lock). `strict`: a journal that cannot be
        written refuses the upload; elsewhere it is logged, and the states in memory hold."""
        jobs = self._jobs if jobs is None else jobs
        try:
            self._journal.parent.mkdir(parents=True, exist_ok=True)
            _write(self._journal, json.dumps([{k: v for k, v in j.items() if k != "progress"}
                                              for j in jobs.values()]).encode())
        except OSError as exc:
            if strict:
                raise _storage_error(self._journal.parent, exc) from None
            log.warning("cannot write the upload journal %s: %s", self._journal, exc)

    def add(self, uploads: list[Upload], index: Store) -> list[dict]:
        """Store the files and queue them (all checked first: a bad one stores none); a file
        already in `index` or already queued is said to be so, and not added again."""
        with self._lock:
            def journal(jobs: list[dict]) -> None:
                self._save({**self._jobs, **{j["doc_id"]: j for j in jobs}}, strict=True)

            leaving = {d for d, j in self._jobs.items() if j["state"] in {"removing", "failed"}}
            present = ({d.doc_id for d, _ in index.listing()} | {d for d, j in self._jobs.items() if j["state"] in PENDING}) - leaving
            added = add_files(self.config, uploads, journal, present)
            for job in added:
                if job["state"] == "queued":
                    self._jobs[job["doc_id"]] = job
            added = [dict(job) for job in added]
        self._wake.set()
        return added

    def remove(self, doc_id: str, index: Store) -> dict:
        with self._lock:
            job = self._jobs.get(doc_id)
            doc = index.find(doc_id)
            if doc is None and job is None:
                raise unknown(doc_id)
            if job and job["state"] == "failed":  # its file is already gone
                del self._jobs[doc_id]
                self._save()
                return {"doc_id": doc_id, "state": "removed"}
            staying = {d.doc_id for d, _ in index.listing() if d.doc_id != doc_id} - {
                j["doc_id"] for j in self._jobs.values() if j["state"] == "removing"}
            if not staying and not any(j["state"] in {"queued", "indexing"} for j in self._jobs.values()):
                raise last_document()
            source = job["source"] if job else doc.source
            delete_files(self.config.corpus_dir, source)
            self._jobs[doc_id] = {"doc_id": doc_id, "source": source,
                                  "filename": job["filename"] if job else Path(source).name, "state": "removing"}
            self._save()
        self._wake.set()
        return {"doc_id": doc_id, "state": "removing"}

    def jobs(self) -> dict[str, dict]:
        """The pending and failed documents; a failure is listed for `FAILED_KEPT_SECONDS`,
        or until removed, then forgotten."""
        with self._lock:
            expired = [k for k, v in self._jobs.items()
                       if v["state"] == "failed" and time.time() - v.get("failed_at", 0) > FAILED_KEPT_SECONDS]
            for k in expired:
                del self._jobs[k]
            if expired:
                self._save()
            return {k: dict(v) for k, v in self._jobs.items()}

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                batch = [j for j in self._jobs.values() if j["state"] in {"queued", "indexing", "removing"}]
                for j in batch:
                    j["state"] = "indexing" if j["state"] == "queued" else j["state"]
                self._save()
            try:
                report = self._build()
                self.swap()
            except Exception as exc:  # the server keeps serving the old index
                if not isinstance(exc, QAError):
                    log.exception("indexing failed")
                reason = str(exc) if isinstance(exc, QAError) else "Indexing failed unexpectedly; the server log has the error."
                self._retry_or_fail(batch, reason)
                continue
            self._settle(batch, dict(report.skipped))

    def _retry_or_fail(self, batch: list[dict], reason: str) -> None:
        """A build that failed as a whole (a full disk, a crash in the encoder) says nothing
        about any one file: its jobs are tried again after `RETRY_SECONDS`, and only a
        second failure fails them, each file leaving the corpus as it would alone."""
        with self._lock:
            current = [j for j in batch if self._jobs.get(j["doc_id"]) is j]
            again = [j for j in current if j.get("attempts", 0) + 1 < BUILD_ATTEMPTS]
            for j in again:
                j.update(attempts=j.get("attempts", 0) + 1, state="queued" if j["state"] == "indexing" else j["state"])
                j.pop("progress", None)
            self._save()
        if again:
            retry = threading.Timer(RETRY_SECONDS, self._wake.set)
            retry.daemon = True
            retry.start()
        self._settle([j for j in current if j not in again], {j["source"]: reason for j in current})

    def _build(self):
        def progress(done: int, total: int) -> None:
            with self._lock:
                for j in self._jobs.values():
                    if j["state"] == "indexing":
                        j["progress"] = round(done / total, 3) if total else 1.0

        while True:
            try:
                return build_index(self.config, self.encoder, progress)
            except IndexBusyError:  # a `qa ingest` is writing: wait for it
                time.sleep(0.5)

    def _settle(self, batch: list[dict], failed: dict[str, str]) -> None:
        """Jobs the build served are done (their documents are in, or out of, the index
        now serving); those it could not read fail, and their files leave the corpus."""
        with self._lock:
            for job in batch:
                if self._jobs.get(job["doc_id"]) is not job:  # replaced by a later add or remove
                    continue
                if job["source"] in failed:
                    job.update(state="failed", reason=failed[job["source"]], failed_at=time.time())
                    job.pop("progress", None)
                    delete_files(self.config.corpus_dir, job["source"])
                elif job["state"] in {"indexing", "removing"}:
                    del self._jobs[job["doc_id"]]
            self._save()
