"""Which corpus folder an index belongs to.

Every build records the absolute path of the folder it read (the manifest's `corpus`).
Whatever serves or changes that index (`qa serve`, `add`, `remove`, `mcp`, uploads) takes
the folder from there, so a server started from any working folder stores an upload
beside the documents its index holds, and the next build keeps them. `Config.corpus_dir`
left empty means exactly that; set (`--corpus`, `QA_CORPUS_DIR`, `qa.toml`) it must name
the same folder, since building from another one would drop every document the index
holds. Rebuilding an index from another folder is a choice made out loud:
`qa ingest --new-corpus`. A search engine's index may be fed from a folder on each machine
(`qa ingest --shard`), so there a folder given is taken as this machine's.
"""

from __future__ import annotations

from pathlib import Path

from .config import Config
from .types import QAError

DEFAULT_CORPUS = "corpus"  # a new index's folder when none is given, relative to the working folder


class CorpusMismatchError(QAError):
    code = "corpus_mismatch"
    status = 409


def resolve_corpus(config: Config, recorded: str | None, new_corpus: bool = False, *,
                   per_machine: bool = False) -> Config:
    """`config` with `corpus_dir` made absolute: `recorded` (the folder the index was built
    from, `qa.index.recorded_corpus`) when none is set, or the one set, which must be the
    index's own unless `new_corpus` says to rebuild from it. `per_machine`: the index is
    fed from a folder on each machine (a search engine's: `qa.store.folder_per_machine`)."""
    if not config.corpus_dir:
        # A search engine's index is fed from folders on several machines (`--shard`): its
        # record is the last writer's, used only where that folder is on this machine too.
        usable = recorded and (not per_machine or Path(recorded).is_dir())
        return config.with_overrides(corpus_dir=recorded if usable else str(Path(DEFAULT_CORPUS).resolve()))
    given = str(Path(config.corpus_dir).expanduser().resolve())
    if recorded and given != recorded and not new_corpus and not per_machine:
        where = config.index_dir
        raise CorpusMismatchError(
            f"The index in {where} was built from the corpus folder {recorded}, not {given}. "
            f"To use this index, leave out --corpus (and QA_CORPUS_DIR) or pass --corpus {recorded}; to rebuild "
            f"it from {given} instead, dropping the documents of {recorded}, run `qa ingest --corpus {given} "
            f"--new-corpus`; or give that folder an index of its own with --index.")
    return config.with_overrides(corpus_dir=given)
