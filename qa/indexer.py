"""The background indexer of a running server: builds the index whenever documents were
added or removed over HTTP, and swaps the new index in, keeping each pending document's
state in a journal that outlives the process."""

from __future__ import annotations

import atexit
import json
import logging
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path

from .config import Config
from .documents import (
    UPLOADS,
    DocumentError,
    Upload,
    add_files,
    delete_files,
    last_document,
    source_path,
    storage_error,
    tidy_uploads,
    unknown,
    write_whole,
)
from .embed import Encoder
from .embedded import Embedded
from .index import build_index, prepare_document
from .store import Store
from .types import IndexBusyError, QAError

log = logging.getLogger(__name__)

PENDING = {"queued", "indexing"}  # a document on its way into the index
JOURNAL = ".jobs.json"  # in the uploads folder: the pending jobs, so that they outlive the process
RETRY_SECONDS, RETRY_MAX_SECONDS = 2.0, 60.0  # a build that failed as a whole waits this long, doubling up to the max
FAILED_KEPT_SECONDS = 24 * 3600  # long enough to be seen by whoever added the file
MAX_INTERRUPTED = 2  # builds a document may be in when the server dies, before it is set aside
STOP_SECONDS = 30.0  # how long a stopping server waits for a build to let go
# An upload larger than this is read and embedded on a lane of its own before it joins a
# build, so that small files added after it are not kept waiting behind it.
BIG_BYTES = 256 * 1024
ALONE_AFTER = 2  # whole-build failures after which an upload is built alone, so that it holds no one else up


class Stopping(Exception):
    """Raised inside a build when the server stops: the build is abandoned before it writes."""


class Superseded(Exception):
    """Raised inside a build or a preparation whose job was removed (or added again)
    meanwhile: it is abandoned at once and started over without it."""


class Indexer:
    """Builds the index on a background thread whenever documents were added or removed,
    and calls `swap` once the build is committed; keeps each pending document's state.

    An upload's file is kept until its user removes it, unless the file itself cannot be
    read. A build that fails as a whole (a full disk, an encoder error) is no fault of any
    file: its jobs wait, saying why, and are tried again, waiting twice as long each time
    up to `RETRY_MAX_SECONDS`. A removal leaves its file in place until the index without
    it is committed, so the folder and the served index agree whenever no job is pending.

    The states are journalled (`JOURNAL`, written whole before an upload's 202): after a
    restart every upload is listed again, and pending ones are built. `stop` abandons a
    build before it writes and journals its jobs as queued, so a restart costs nothing. A
    document that was being indexed when the process died (kill -9, a crash) is queued once
    more; after `MAX_INTERRUPTED` such deaths it is set aside, kept but not indexed, so a
    file that kills the server is never retried in a loop.

    Two lanes: an upload over `BIG_BYTES` is read, chunked and embedded first on a thread
    of its own (`qa.index.prepare_document`), left out of builds until then; smaller ones
    and removals are built at once. DELETE of a job under way abandons its work within a
    batch of the encoder."""

    def __init__(self, config: Config, encoder: Encoder, swap: Callable[[], None]):
        self.config, self.encoder, self.swap = config, encoder, swap
        self._uploads = Path(config.corpus_dir) / UPLOADS
        self._journal = self._uploads / JOURNAL
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._jobs: dict[str, dict] = self._recover()  # doc id -> {"doc_id", "source", "filename", "state", ...}
        self._prepared: dict[str, Embedded] = {}  # source -> a large upload embedded ahead of its build
        self._building: set[str] = set()  # the sources of the build under way's uploads
        self._wake, self._prepare_wake = threading.Event(), threading.Event()
        self._threads = [threading.Thread(target=self._run, name="indexer", daemon=True),
                         threading.Thread(target=self._prepare_loop, name="preparer", daemon=True)]
        for thread in self._threads:
            thread.start()
        # A process that exits with a build inside the encoder aborts ("terminate called
        # without an active exception"): at exit the build is abandoned first. Weakly, so
        # that an indexer nobody uses any more is not kept alive for it.
        stop = weakref.WeakMethod(self.stop)
        atexit.register(lambda: (method := stop()) is not None and method(STOP_SECONDS))
        if any(j["state"] in {"queued", "removing"} for j in self._jobs.values()):
            self._wake.set()
            self._prepare_wake.set()

    def _recover(self) -> dict[str, dict]:
        tidy_uploads(self._uploads)
        try:
            jobs = {j["doc_id"]: j for j in json.loads(self._journal.read_text(encoding="utf-8"))}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("the upload journal %s cannot be read (%s); starting without it", self._journal, exc)
            return {}
        for doc_id, job in list(jobs.items()):
            if job["state"] in PENDING and not source_path(self.config.corpus_dir, job["source"]).is_file():
                del jobs[doc_id]  # journalled, but the process died before its file was stored: no 202 was sent
            elif job["state"] == "indexing":
                job["interrupted"] = job.get("interrupted", 0) + 1
                job["state"] = "queued"
                if job["interrupted"] >= MAX_INTERRUPTED:
                    job.update(state="failed", set_aside=True, failed_at=time.time(),
                               reason=f"the server died {job['interrupted']} times while indexing this file, so it is "
                                      "set aside: kept, but not indexed. Check the server log, then add it again to "
                                      "retry it, or remove it")
        with self._lock:
            self._save(jobs)
        return jobs

    def _save(self, jobs: dict[str, dict] | None = None, strict: bool = False) -> None:
        """Write the journal (the caller holds the lock). `strict`: a journal that cannot be
        written refuses the upload; elsewhere it is logged, and the states in memory hold."""
        jobs = self._jobs if jobs is None else jobs
        try:
            self._journal.parent.mkdir(exist_ok=True)  # in the corpus folder, never made again if it went
            write_whole(self._journal, json.dumps([{k: v for k, v in j.items() if k != "progress"}
                                              for j in jobs.values()]).encode())
        except OSError as exc:
            if strict:
                raise storage_error(self._journal.parent, exc) from None
            log.warning("cannot write the upload journal %s: %s", self._journal, exc)

    def add(self, uploads: list[Upload], index: Store) -> list[dict]:
        """Store the files and queue them (all checked first: a bad one stores none); a file
        already in `index` or already queued is said to be so, and not added again."""
        with self._lock:
            journalled = []

            def journal(jobs: list[dict]) -> None:
                self._save({**self._jobs, **{j["doc_id"]: j for j in jobs}}, strict=True)
                journalled.append(True)

            leaving = {d for d, j in self._jobs.items() if j["state"] in {"removing", "failed"}}
            present = ({d.doc_id for d, _ in index.listing()} | {d for d, j in self._jobs.items() if j["state"] in PENDING}) - leaving
            try:
                added = add_files(self.config, uploads, journal, present)
            except DocumentError:
                if journalled:  # but a file could not be stored: the journal goes back to what it was
                    self._save()
                raise
            for job in added:
                if job["state"] == "queued":
                    self._jobs[job["doc_id"]] = job
            added = [dict(job) for job in added]
        self._wake.set()
        self._prepare_wake.set()
        return added

    def remove(self, doc_id: str, index: Store) -> dict:
        """Queue the document's removal: it is answered from until the index without it is
        committed, and its file is deleted then. The last document the index serves cannot
        be removed, counting removals under way and not counting uploads still pending."""
        with self._lock:
            job = self._jobs.get(doc_id)
            doc = index.find(doc_id)
            if doc is None and job is None:
                raise unknown(doc_id)
            if job and job["state"] == "removing":
                return {"doc_id": doc_id, "state": "removing"}
            if job and job["state"] == "failed":  # its file is gone, or set aside
                if job.get("set_aside"):  # the file first: kept listed (and left out) if it cannot go
                    delete_files(self.config.corpus_dir, job["source"])
                del self._jobs[doc_id]
                self._save()
                return {"doc_id": doc_id, "state": "removed"}
            if doc is not None:
                leaving = {d for d, j in self._jobs.items() if j["state"] == "removing"} | {doc_id}
                if not any(d.doc_id not in leaving for d, _ in index.listing()):
                    raise last_document()
            self._jobs[doc_id] = {"doc_id": doc_id, "source": job["source"] if job else doc.source,
                                  "filename": job["filename"] if job else (doc.meta.get("filename") or
                                                                           Path(doc.source).name),
                                  "state": "removing"}
            self._save()
        self._wake.set()
        return {"doc_id": doc_id, "state": "removing"}

    def jobs(self) -> dict[str, dict]:
        """The pending and failed documents; a failure whose file is gone is listed for
        `FAILED_KEPT_SECONDS`, or until removed, then forgotten."""
        with self._lock:
            expired = [k for k, v in self._jobs.items() if v["state"] == "failed" and not v.get("set_aside")
                       and time.time() - v.get("failed_at", 0) > FAILED_KEPT_SECONDS]
            for k in expired:
                del self._jobs[k]
            if expired:
                self._save()
            return {k: dict(v) for k, v in self._jobs.items()}

    def stop(self, timeout: float = STOP_SECONDS) -> bool:
        """Abandon the build under way (before it writes) and journal its jobs as queued;
        whether the indexer let go within `timeout` seconds."""
        self._stopping.set()
        self._wake.set()
        self._prepare_wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:  # should the build not have let go, a restart still costs its files nothing
            if any(j["state"] == "indexing" for j in self._jobs.values()):
                self._requeue(list(self._jobs.values()))
        return not any(thread.is_alive() for thread in self._threads)

    def _leaving(self, source: str) -> bool:
        """Whether the build under way should leave the source out: being removed or set
        aside, or an upload that is not this build's (still embedding on its lane, added
        since, or waiting to be built alone); or the server stopping, which abandons the
        build before it writes."""
        if self._stopping.is_set():
            return True
        with self._lock:
            return any(j["source"] == source and (j["state"] == "removing" or j.get("set_aside") or
                                                 (j["state"] in PENDING and source not in self._building))
                       for j in self._jobs.values())

    def _unprepared(self, job: dict) -> bool:
        """Whether the job is a large upload still to be embedded on its own lane (the caller
        holds the lock)."""
        if job["state"] not in PENDING or job["source"] in self._prepared:
            return False
        if "bytes" not in job:
            try:
                job["bytes"] = source_path(self.config.corpus_dir, job["source"]).stat().st_size
            except (OSError, DocumentError):
                job["bytes"] = 0
        return job["bytes"] > BIG_BYTES

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                if self._stopping.is_set():
                    return
                try:
                    tidy_uploads(self._uploads)
                except OSError as exc:  # a folder it cannot tidy is no reason to stop building
                    log.warning("cannot tidy %s: %s", self._uploads, exc)
                batch = self._next_batch()
                for j in batch:
                    j["state"] = "indexing" if j["state"] == "queued" else j["state"]
                self._building = {j["source"] for j in batch}
                self._save()
            if not batch:
                continue
            try:
                report = self._build(batch)
                self.swap()
            except (Stopping, Superseded) as exc:
                with self._lock:
                    self._requeue(batch)
                if isinstance(exc, Stopping):
                    return
                continue
            except Exception as exc:  # the server keeps serving the old index
                self._wait(batch, exc)
                continue
            self._settle(batch, dict(report.skipped))

    def _next_batch(self) -> list[dict]:
        """The jobs the next build serves (the caller holds the lock): removals, and the
        uploads ready to be built whose wait is over. An upload whose builds failed
        `ALONE_AFTER` times is built alone, when nothing else is waiting."""
        now = time.time()
        ready = [j for j in self._jobs.values() if j["state"] in {"queued", "indexing", "removing"}
                 and not self._unprepared(j) and j.get("not_before", 0) <= now]
        together = [j for j in ready if j["state"] == "removing" or j.get("attempts", 0) < ALONE_AFTER]
        return together or ready[:1]

    def _requeue(self, batch: list[dict]) -> None:
        """Jobs of an abandoned build are queued again, as they were (the caller holds the lock)."""
        for j in batch:
            if j["state"] == "indexing":
                j["state"] = "queued"
            j.pop("progress", None)
        self._save()

    def _wait(self, batch: list[dict], exc: Exception) -> None:
        """A build that failed as a whole says nothing about any one file: its jobs wait,
        saying why, and are tried again later, each wait twice the last."""
        if not isinstance(exc, QAError):
            log.exception("indexing failed", exc_info=exc)
        why = str(exc) if isinstance(exc, QAError) else "Indexing failed unexpectedly; the server log has the error."
        with self._lock:
            current = [j for j in batch if self._jobs.get(j["doc_id"]) is j]
            attempts = 1 + max((j.get("attempts", 0) for j in current), default=0)
            delay = min(RETRY_MAX_SECONDS, RETRY_SECONDS * 2 ** (attempts - 1))
            for j in current:
                j.update(attempts=attempts, not_before=time.time() + delay,
                         reason=f"waiting: {why} It is tried again in {delay:g} s.")
            self._requeue(current)
        self._wake_later(delay)

    def _wake_later(self, delay: float) -> None:
        retry = threading.Timer(delay, lambda: (self._wake.set(), self._prepare_wake.set()))
        retry.daemon = True
        retry.start()

    def _build(self, batch: list[dict]):
        prepared = [self._prepared[j["source"]] for j in batch if j["source"] in self._prepared]

        def progress(done: int, total: int) -> None:
            if self._stopping.is_set():
                raise Stopping
            with self._lock:
                if any(self._jobs.get(j["doc_id"]) is not j for j in batch):
                    raise Superseded
                for j in batch:
                    if j["state"] == "indexing" and total and j["source"] not in self._prepared:
                        j["progress"] = round(done / total, 3)

        while True:
            try:
                return build_index(self.config, self.encoder, progress, leaving=self._leaving, prepared=prepared)
            except IndexBusyError:  # a `qa ingest` is writing: wait for it
                if self._stopping.wait(0.5):
                    raise Stopping from None

    def _settle(self, batch: list[dict], failed: dict[str, str]) -> None:
        """Jobs the build served are done: added documents are in the index now serving,
        removed ones out of it, and their files deleted; an upload the build could not read
        fails with the reason, and its file leaves the corpus."""
        with self._lock:
            for job in batch:
                if self._jobs.get(job["doc_id"]) is not job:  # replaced by a later add or remove
                    continue
                job.pop("progress", None)
                if job["state"] == "removing" or job["source"] in failed:
                    try:
                        delete_files(self.config.corpus_dir, job["source"])
                    except DocumentError as exc:
                        if job["state"] == "removing":  # still in the folder: removed again later
                            job.update(reason=f"waiting: {exc}", not_before=time.time() + RETRY_MAX_SECONDS)
                            self._wake_later(RETRY_MAX_SECONDS)
                            continue
                        failed[job["source"]] += f"; its file could not be removed either: {exc}"
                self._prepared.pop(job["source"], None)
                if job["source"] in failed:
                    job.update(state="failed", reason=failed[job["source"]], failed_at=time.time())
                elif job["state"] in {"indexing", "removing"}:
                    del self._jobs[job["doc_id"]]
            self._save()

    def _prepare_loop(self) -> None:
        """The large uploads' lane: each read, chunked and embedded, smallest first, then
        handed to the next build."""
        while not self._stopping.is_set():
            self._prepare_wake.wait()
            self._prepare_wake.clear()
            while (job := self._next_to_prepare()) is not None:
                self._prepare(job)

    def _next_to_prepare(self) -> dict | None:
        with self._lock:
            now = time.time()
            waiting = [j for j in self._jobs.values()
                       if j["state"] == "queued" and self._unprepared(j) and j.get("not_before", 0) <= now]
            if self._stopping.is_set() or not waiting:
                return None
            job = min(waiting, key=lambda j: j["bytes"])
            job["state"] = "indexing"
            self._save()
            return job

    def _prepare(self, job: dict) -> None:
        def current() -> bool:
            return self._jobs.get(job["doc_id"]) is job and not self._stopping.is_set()

        def progress(done: int, total: int) -> None:
            if not current():
                raise Superseded
            if total:
                job["progress"] = round(done / total, 3)

        try:
            embedded = prepare_document(self.config, self.encoder, job["source"], progress, lambda: not current())
        except Superseded:
            with self._lock:
                self._requeue([job])  # replaced: the new job goes on; stopping: queued for the next start
            return
        except ValueError as exc:  # the file's own: it cannot be parsed, or is over its budget
            if current():
                self._settle([job], {job["source"]: str(exc)})
            return
        except Exception as exc:  # noqa: BLE001 - not the file's fault: it waits, saying why
            self._wait([job], exc)
            return
        with self._lock:
            if self._jobs.get(job["doc_id"]) is job:
                self._prepared[job["source"]] = embedded
        self._wake.set()
