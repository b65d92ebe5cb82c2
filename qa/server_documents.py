"""The documents: listing them, reading one, its original file, and, with the server's API
token, adding and removing them (built in the background by the `Indexer`)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, jsonify, request, send_from_directory
from werkzeug.exceptions import RequestEntityTooLarge

from .config import Config
from .documents import Upload
from .http_limits import bearer_matches
from .ingest import SUFFIXES
from .server_shared import ApiError, state
from .types import Document

FORM_FIELDS_ALLOWED = 20  # beside the files: what a browser or curl may add to an upload form

documents = Blueprint("documents", __name__, url_prefix="/api")


@documents.get("/documents")
def listing():
    served = state()
    config, jobs = served.config, served.indexer.jobs()
    listed = [{**summary(d, chars), "state": "ready", **warnings(d), **public(jobs.pop(d.doc_id, {}))}
              for d, chars in served.live.get().index.listing()]
    # The upload limits: the page refuses what the server would, before it sends a byte.
    return jsonify({"documents": listed + [public(j) for j in jobs.values()],
                    "uploads": {"enabled": bool(config.api_token), "max_bytes": config.max_upload_bytes,
                                "max_files": config.max_upload_files, "types": sorted(SUFFIXES)}})


@documents.post("/documents")
def add():
    served = state()
    config = served.config
    authorize(config)
    request.max_content_length = config.max_upload_bytes * config.max_upload_files
    # Werkzeug refuses too many form parts as "too large"; that is not what went wrong.
    request.max_form_parts = config.max_upload_files + FORM_FIELDS_ALLOWED
    try:
        files = request.files.getlist("file")
    except RequestEntityTooLarge:
        if (request.content_length or 0) > request.max_content_length:
            raise
        raise ApiError(400, f"The upload has too many form fields; send only the files (at most "
                            f"{config.max_upload_files}), each in the field \"file\".", "bad_upload") from None
    if not files and "file" in request.form:  # a name with a line break ends the part's header early
        raise ApiError(400, "A file was sent without a readable name (a line break in it?). Rename the file "
                            "and send it again.", "bad_upload")
    if len(files) > config.max_upload_files:
        raise ApiError(400, f"{len(files)} files sent; at most {config.max_upload_files} at a time.")
    added = served.indexer.add([Upload(f.filename or "", f.read(config.max_upload_bytes + 1)) for f in files],
                               served.live.get().index)
    return jsonify({"documents": [public(j) for j in added]}), 202


@documents.delete("/documents/<path:doc_id>")
def remove(doc_id: str):
    served = state()
    authorize(served.config)
    return jsonify(served.indexer.remove(doc_id, served.live.get().index)), 202


@documents.get("/documents/<path:doc_id>")
def document(doc_id: str):
    store = state().live.get().index
    doc = store.find(doc_id)
    if doc is None:
        raise ApiError(404, f"No document has the id {doc_id!r}. GET /api/documents lists them.")
    text = store.document_text(doc_id)
    return jsonify({**summary(doc, len(text)), "meta": doc.meta, "text": text, "masked": [list(m) for m in doc.masked],
                    "pages": list(doc.pages)})


@documents.get("/files/<path:doc_id>")
def original_file(doc_id: str):
    served = state()
    doc = served.live.get().index.find(doc_id)
    if doc is None:
        raise ApiError(404, f"No document has the id {doc_id!r}. GET /api/documents lists them.")
    corpus = Path(served.config.corpus_dir).resolve()
    if not (corpus / doc.source).is_file():
        raise ApiError(404, f"The original file of {doc.title!r} is no longer in the corpus folder.")
    # Always a download, and sandboxed: an uploaded HTML file must never run as this site.
    response = send_from_directory(corpus, doc.source, as_attachment=True,
                                   download_name=doc.meta.get("filename") or Path(doc.source).name)
    response.headers["Content-Security-Policy"] = "sandbox"
    return response


def authorize(config: Config) -> None:
    """Changing the corpus needs the server's API token; without one it is turned off."""
    if not config.api_token:
        raise ApiError(403, "Adding and removing documents is turned off on this server. Start it with an API token "
                            "(QA_API_TOKEN=<secret> qa serve, or api_token in qa.toml) and send the header "
                            "Authorization: Bearer <secret>.", "uploads_disabled")
    if not bearer_matches(request.headers.get("Authorization", ""), config.api_token):
        raise ApiError(401, "This needs the server's API token: send the header Authorization: Bearer <token>.",
                       "unauthorized")


def summary(doc: Document, chars: int) -> dict:
    return {"doc_id": doc.doc_id, "title": doc.title, "date": doc.date, "source": doc.source, "chars": chars,
            "pages": len(doc.pages) or None, **({"filename": doc.meta["filename"]} if doc.meta.get("filename") else {})}


def warnings(doc: Document) -> dict:
    return {"warnings": doc.meta["warnings"]} if doc.meta.get("warnings") else {}


def public(job: dict) -> dict:
    """A pending document's state as the API shows it (no corpus paths beyond `source`)."""
    return {k: v for k, v in job.items() if k in {"doc_id", "filename", "state", "reason", "progress"}}
