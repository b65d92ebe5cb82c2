"""Adding and removing documents while the index serves.

An added file is checked (type by name and by content, size), then stored in the
corpus folder under a name made of its content's hash, so a file name never becomes
a path and the same file added twice is one document; the name it came with is kept
in its sidecar for the title. A running server indexes them in the background
(`qa.indexer`); `qa add` and `qa remove` build at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import zipfile
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from .config import Config
from .embed import Encoder
from .files import sync_path
from .index import BuildReport, Progress, build_index, expected_settings
from .ingest import SUFFIXES
from .store import indexed_sources
from .types import QAError

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
        # A server reads at most max_bytes + 1 bytes of a file: that many means it was cut
        # there, and only "over the limit" is known; a whole file read (`qa add`) has its size.
        size = (f"over {max_bytes:,} bytes" if len(upload.data) == max_bytes + 1
                else f"{len(upload.data):,} bytes")
        raise DocumentError(f"{name} is {size}; the limit is {max_bytes:,} (max_upload_bytes).", 413, "too_large")
    if not upload.data.strip():
        raise DocumentError(f"{name} is empty.")
    if suffix == ".pdf" and not upload.data.startswith(b"%PDF"):
        raise unsupported(f"{name} is named .pdf but is not a PDF file.")
    if suffix == ".docx" and not zipfile.is_zipfile(io.BytesIO(upload.data)):
        raise unsupported(f"{name} is named .docx but is not a Word file.")
    if suffix not in {".pdf", ".docx"}:
        # Named as text, but the bytes say otherwise: read as text, a PDF (which may be all
        # ASCII) or a Word file would be indexed as its raw bytes.
        stem = Path(name).stem
        head = upload.data[:1024]
        if head.startswith(b"%PDF-"):
            raise unsupported(f"{name} is a PDF file (it starts with %PDF), not text. "
                              f"Rename it {stem}.pdf and add it again.")
        if head.startswith(b"PK\x03\x04"):
            try:
                with zipfile.ZipFile(io.BytesIO(upload.data)) as archive:
                    word = "word/document.xml" in archive.namelist()
            except (zipfile.BadZipFile, OSError, ValueError):
                word = False
            if word:
                raise unsupported(f"{name} is a Word file (.docx), not text. "
                                  f"Rename it {stem}.docx and add it again.")
            raise unsupported(f"{name} is a zip archive, not text: unpack it and add the documents "
                              "inside it.")
        if head.startswith(b"\xd0\xcf\x11\xe0"):
            raise unsupported(f"{name} is an old Office file (.doc, .xls or .ppt), not text. "
                              "Save it as .docx or PDF and add that.")
        try:
            text = upload.data.decode("utf-8-sig")
        except UnicodeDecodeError:
            if upload.data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" not in head:
                raise unsupported(f"{name} is not UTF-8 text; re-save it as UTF-8.") from None
            text = "\x00"
        if "\x00" in text:
            raise unsupported(f"{name} is not text: it holds NUL bytes, so it is a binary file whatever its name "
                              f"says (or text saved as UTF-16: re-save that as UTF-8). Rename a PDF or Word file "
                              f"{stem}.pdf or {stem}.docx.")
    return suffix


def store(corpus_dir: str | Path, upload: Upload, suffix: str, digest: str) -> tuple[str, Path]:
    """Write the file into `<corpus>/uploads/<digest><suffix>` (the digest: the first 16
    hex digits of its sha256) with its sidecar, each whole or not at all; returns its
    document id and path. A write that fails (a full disk) leaves nothing behind."""
    folder = Path(corpus_dir) / UPLOADS
    path, sidecar = folder / f"{digest}{suffix}", folder / f"{digest}.meta.json"
    made = []
    try:
        folder.mkdir(exist_ok=True)
        # The sidecar first: a file stored is a document whole; a sidecar alone is tidied away.
        for target, data in ((sidecar, json.dumps({"filename": display_name(upload.filename)}).encode()),
                             (path, upload.data)):
            if not target.exists():
                made.append(target)
            write_whole(target, data)
        sync_path(folder)
    except OSError as exc:
        for target in made:
            target.unlink(missing_ok=True)
        raise storage_error(folder, exc) from None
    return f"{UPLOADS}/{digest}", path


def storage_error(folder: Path, exc: OSError) -> DocumentError:
    return DocumentError(f"Cannot change the corpus folder {folder}: {exc.strerror or exc}. Check that the server "
                         "may write there and that the disk has room.", 500, "storage_error")


PART = ".part"  # a file being written: `<name>.<pid>.part`, renamed into place once whole


def write_whole(path: Path, data: bytes) -> None:
    """Write `data` to `path` whole or not at all."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}{PART}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def tidy_uploads(folder: Path) -> None:
    """Remove what a process killed while it stored an upload left: its `.part` files (the
    pid in their name no longer runs) and a sidecar whose file was never stored."""
    if not folder.is_dir():
        return
    for part in folder.glob(f"*{PART}"):
        pid = part.name[:-len(PART)].rpartition(".")[2]
        if not (pid.isdigit() and _running(int(pid))):
            part.unlink(missing_ok=True)
    for sidecar in folder.glob("*.meta.json"):
        stem = sidecar.name[:-len(".meta.json")]
        if not any((folder / f"{stem}{suffix}").exists() for suffix in SUFFIXES):
            sidecar.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


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
        raise storage_error(path.parent, exc) from None


def add_files(config: Config, uploads: list[Upload], journal: Callable[[list[dict]], None] | None = None,
              present: Collection[str] = ()) -> list[dict]:
    """Check every file, then store each; returns a job for each: queued, or "already
    added" where the same bytes are a document in `present` or came earlier in the batch
    (a document is its content). `journal`, if given, is told the queued jobs before any
    file is stored, so that a crash between the two leaves a job that says so rather than
    a file nobody knows of."""
    if not uploads:
        raise DocumentError("No file was sent. Send one or more files in the multipart field \"file\".")
    if not Path(config.corpus_dir).is_dir():  # moved or unmounted: never made again where it was
        raise DocumentError(f"The corpus folder {config.corpus_dir}, which this index was built from, does not exist. "
                            "Bring it back, or rebuild the index from where it is now with `qa ingest --corpus DIR "
                            "--new-corpus`.", 409, "corpus_missing")
    suffixes = [check(u, config.max_upload_bytes) for u in uploads]
    jobs, seen = [], set(present)
    for upload, suffix in zip(uploads, suffixes):
        digest = hashlib.sha256(upload.data).hexdigest()[:16]
        doc_id = f"{UPLOADS}/{digest}"
        jobs.append({"doc_id": doc_id, "source": f"{UPLOADS}/{digest}{suffix}", "filename": display_name(upload.filename),
                     "state": "already added" if doc_id in seen else "queued", "bytes": len(upload.data)})
        seen.add(doc_id)
    queued = [(job, upload) for job, upload in zip(jobs, uploads) if job["state"] == "queued"]
    if journal and queued:
        journal([job for job, _ in queued])
    stored = []
    try:
        for job, upload in queued:
            if not source_path(config.corpus_dir, job["source"]).exists():  # a file already there is not this call's
                stored.append(job["source"])
            store(config.corpus_dir, upload, Path(job["source"]).suffix, Path(job["doc_id"]).name)
    except DocumentError:  # one file could not be stored: none of this call's stays
        for source in stored:
            with contextlib.suppress(DocumentError):
                delete_files(config.corpus_dir, source)
        raise
    return jobs


def remove_document(config: Config, encoder: Encoder, doc_id: str, progress: Progress | None = None) -> BuildReport:
    """`qa remove`: build the index without the document, then delete its file; the same on
    either backend. A build that fails leaves the file, and the index, as they were."""
    known = indexed_sources(config, expected_settings(config, encoder.model_id, encoder.weights_sha256, encoder.dim))
    if doc_id not in known:
        raise unknown(doc_id)
    if len(known) == 1:
        raise last_document()
    source = known[doc_id]
    report = build_index(config, encoder, progress, leaving=lambda s: s == source)
    delete_files(config.corpus_dir, source)
    return report
