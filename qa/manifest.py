"""What every index's manifest says, whichever backend keeps it: the settings it was built
with, checked against those now configured when it is opened, and the generation a build
commits under (sortable by time, so that of shards ending together the newest wins)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from .types import StaleIndexError


def check_compatible(manifest: dict, expected: dict, folder: str | Path) -> None:
    for key, want in expected.items():
        have = manifest.get(key)
        if have != want:
            raise StaleIndexError(
                f"The index in {folder} was built with a different {key.replace('_', ' ')} "
                f"({_describe(have)}; now configured: {_describe(want)}). Re-run `qa ingest` to rebuild it."
            )


def _describe(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def new_generation() -> str:
    """A name for a build's generation: sortable by time to the microsecond (the newest
    commit wins on an engine, so two builds within one second must sort as they ran), unique."""
    now = time.time_ns()
    return time.strftime("%Y%m%d%H%M%S", time.localtime(now // 10**9)) + f"{now // 1000 % 10**6:06d}" + \
        uuid.uuid4().hex[:6]


def built_at() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
