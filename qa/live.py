"""The loaded index a long-running process answers from (`qa serve`, `qa mcp`), swapped for
a new one when `qa ingest` commits it, with no restart and no request failing."""

from __future__ import annotations

import logging
import threading
import time

from .pipeline import QA
from .types import QAError

log = logging.getLogger(__name__)


class LiveQA:
    """The `QA` a server answers with, replaced when `qa ingest` commits a new index into
    its folder (or into the search engine it answers from), with no restart. At most once a `check_seconds` a request looks at the
    manifest (one stat); a changed one is loaded on a thread beside the old, sharing the
    loaded models, and takes its place in one assignment. A request keeps the `QA` it
    started with, so none fails or mixes two indexes. An index that cannot be loaded
    (truncated, another model) is logged and the old one keeps serving."""

    def __init__(self, qa: QA, check_seconds: float = 1.0):
        self.current, self.check_seconds = qa, check_seconds
        self._seen, self._checked = self._signature(), time.monotonic()
        self._loading = threading.Lock()

    def get(self) -> QA:
        now = time.monotonic()
        if now - self._checked >= self.check_seconds:
            self._checked = now
            if self._signature() != self._seen and self._loading.acquire(blocking=False):
                threading.Thread(target=self._load, daemon=True).start()
        return self.current

    def reload(self) -> None:
        """Load the committed index now (after an ingest this process ran) and swap it in."""
        self._loading.acquire()
        self._load()

    def _signature(self) -> object:
        """What changes when an ingest commits (`Store.committed`: the files' manifest file,
        the engine's generation)."""
        return self.current.index.committed()

    def _load(self) -> None:
        old, signature = self.current, self._signature()
        try:
            if signature != self._seen:
                self.current = QA.load(old.config, old.encoder, old.reader, old.answerer.model)
                log.warning("now serving index %s (was %s)", self.current.index_version, old.index_version)
        except QAError as exc:
            log.warning("kept serving index %s: the new one in %s cannot be loaded: %s",
                        old.index_version, old.config.index_dir, exc)
        finally:
            self._seen = signature  # a broken index is not retried until the manifest changes again
            self._loading.release()
