"""Documents chunked and embedded (`Embedded`): one pass of the encoder over several
documents' sentences and chunks (`qa.index` builds with it, and hands each to the store's
writer), and the rows of a new files index assembled from them and from the old index,
whose unchanged documents are carried over (`qa.fileswrite` commits with it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .tokens import small
from .types import Chunk, Document, Sentence

if TYPE_CHECKING:  # only named: the encoder and an old index come from whoever builds
    from .embed import Encoder, TokenVectors
    from .files import Index

Progress = Callable[[int, int], None]  # (texts embedded so far, texts to embed)


@dataclass
class Embedded:
    """A document chunked and embedded: what a build adds of it."""

    doc: Document
    sentences: list[Sentence]
    groups: list[tuple[int, int, tuple[int, ...]]]  # chunks: (start, end, sentence indexes)
    sentence_vectors: np.ndarray
    chunk_vectors: np.ndarray
    tokens: list[TokenVectors]  # each sentence's, or none where they are not kept


def embed_documents(docs: list[tuple[Document, tuple]], encoder: Encoder, with_tokens: bool,
                    progress: Progress | None = None) -> list[Embedded]:
    """One pass of the encoder over the documents' sentences, then their chunks (each given
    with its `(sentences, groups)` from `chunk_document`)."""
    sentence_texts = [doc.text[s.start:s.end] for doc, (sents, _) in docs for s in sents]
    chunk_texts = [doc.text[a:b] for doc, (_, groups) in docs for a, b, _ in groups]
    total, done = len(sentence_texts) + len(chunk_texts), 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, total)

    tick(0)
    if with_tokens:
        sent_vecs, tokens = encoder.encode_tokens(sentence_texts, tick)
        tokens = [small(t, encoder.weights_sha256) for t in tokens]
    else:
        sent_vecs, tokens = encoder.encode(sentence_texts, tick), []
    chunk_vecs = encoder.encode(chunk_texts, tick)
    out, s_at, c_at = [], 0, 0
    for doc, (sents, groups) in docs:
        out.append(Embedded(doc, sents, groups, sent_vecs[s_at:s_at + len(sents)], chunk_vecs[c_at:c_at + len(groups)],
                            tokens[s_at:s_at + len(sents)]))
        s_at, c_at = s_at + len(sents), c_at + len(groups)
    return out


def assemble(docs: list[Document], embedded: dict[str, Embedded], old: Index | None, store_tokens: bool,
              encoder: Encoder) -> tuple[list, list, list, list, list]:
    """The index's rows in document order: the new documents' from `embedded`, the others'
    carried over from the old index (its ids remapped)."""
    old_sentences_of: dict[str, list[int]] = {}  # grouped once: per-document scans would be quadratic
    old_chunks_of: dict[str, list[int]] = {}
    for i, s in enumerate(old.sentences if old else ()):
        old_sentences_of.setdefault(s.doc_id, []).append(i)
    for i, c in enumerate(old.chunks if old else ()):
        old_chunks_of.setdefault(c.doc_id, []).append(i)
    old_chunk_vecs = old.chunk_vectors() if old else None
    sentences, chunks, sent_rows, chunk_rows, token_rows = [], [], [], [], []
    for doc in docs:
        base = len(sentences)
        if (e := embedded.get(doc.doc_id)) is not None:
            sentences += e.sentences
            sent_rows += list(e.sentence_vectors)
            token_rows += e.tokens if store_tokens else []
            chunks += [Chunk(doc.doc_id, a, b, tuple(base + i for i in ids)) for a, b, ids in e.groups]
            chunk_rows += list(e.chunk_vectors)
            continue
        old_ids = old_sentences_of[doc.doc_id]  # unchanged: carry sentences, chunks and vectors over
        remap = {sid: base + k for k, sid in enumerate(old_ids)}
        sentences += [old.sentences[i] for i in old_ids]
        sent_rows += [old.sentence_vectors[i] for i in old_ids]
        if store_tokens and old.tokens is not None:
            token_rows += [old.tokens.get(i) for i in old_ids]
        elif store_tokens:  # the old index was too large to keep them
            remade = encoder.encode_tokens([old.sentence_text(i) for i in old_ids])[1]
            token_rows += [small(t, encoder.weights_sha256) for t in remade]
        for ci in old_chunks_of[doc.doc_id]:
            c = old.chunks[ci]
            chunks.append(Chunk(c.doc_id, c.start, c.end, tuple(remap[i] for i in c.sentence_ids)))
            chunk_rows.append(old_chunk_vecs[ci])
    return sentences, chunks, sent_rows, chunk_rows, token_rows
