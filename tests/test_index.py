import dataclasses
import json
import os
import shutil
from pathlib import Path

import faiss
import numpy as np
import pytest

from qa import index as index_module
from qa.config import Config
from qa.files import IndexWriteError, load_index, read_manifest
from qa.fileswrite import dense_index
from qa.index import build_index, expected_settings
from qa.lab.scaling import synthetic_vectors
from qa.pipeline import QA
from qa.tokens import small
from qa.types import ConfigError, EmptyCorpusError, IndexMissingError, StaleIndexError

from conftest import CORPUS, CountingEncoder


@pytest.fixture
def small_corpus(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("000_203956cee7abdc96", "001_576bfebf929a5f1e", "003_2df78265f668097b"):
        shutil.copy(CORPUS / f"{name}.txt", corpus)
    return Config(corpus_dir=str(corpus), index_dir=str(tmp_path / "index"))


def expected(config, encoder):
    return expected_settings(config, encoder.model_id, encoder.weights_sha256, encoder.dim)


def test_round_trip_keeps_everything(small_corpus, encoder):
    report = build_index(small_corpus, encoder)
    loaded = load_index(small_corpus.index_dir, expected(small_corpus, encoder))
    assert report.documents == len(loaded.documents) == 3
    assert report.chunks == len(loaded.chunks) == loaded.dense.ntotal
    assert report.sentences == len(loaded.sentences) == loaded.sentence_vectors.shape[0]
    manifest = read_manifest(small_corpus.index_dir)
    assert manifest["model"] == {"id": "all-MiniLM-L6-v2", "weights_sha256": encoder.weights_sha256, "dim": 384}
    assert manifest["chunking"]["chunk_tokens"] == small_corpus.chunk_tokens
    assert set(manifest["documents"]) == set(loaded.documents)
    assert all(len(d["content_hash"]) == 64 for d in manifest["documents"].values())
    # Stored vectors are the model's vectors of the stored texts.
    s0 = loaded.sentence_text(0)
    assert np.allclose(loaded.sentence_vectors[0], encoder.encode([s0])[0], atol=1e-5)
    assert np.allclose(loaded.chunk_vectors()[0], encoder.encode([loaded.chunk_text(0)])[0], atol=1e-5)
    # Every sentence id a chunk names lies inside that chunk.
    for c in loaded.chunks:
        assert all(c.start <= loaded.sentences[i].start < loaded.sentences[i].end <= c.end for i in c.sentence_ids)
    # Nothing but named files: no pickles.
    names = set(os.listdir(small_corpus.index_dir))
    assert "manifest.json" in names and not any(n.endswith((".pkl", ".pickle")) for n in names)


def test_reingest_embeds_only_added_or_changed_documents(small_corpus, encoder):
    counting = CountingEncoder(encoder)
    first = build_index(small_corpus, counting)
    assert len(first.embedded) == 3 and counting.encoded
    before = load_index(small_corpus.index_dir, expected(small_corpus, encoder))

    counting.encoded.clear()
    again = build_index(small_corpus, counting)
    assert counting.encoded == [] and again.embedded == [] and len(again.reused) == 3

    corpus = Path(small_corpus.corpus_dir)
    changed = corpus / "003_2df78265f668097b.txt"
    changed.write_text(changed.read_text() + "\nThe trusts opened a new research centre in 2025.\n")
    shutil.copy(CORPUS / "002_ef368537357c7e56.txt", corpus)
    (corpus / "000_203956cee7abdc96.txt").unlink()
    report = build_index(small_corpus, counting)
    assert sorted(report.embedded) == ["002_ef368537357c7e56", "003_2df78265f668097b"]
    assert report.reused == ["001_576bfebf929a5f1e"] and report.removed == ["000_203956cee7abdc96"]
    assert "The trusts opened a new research centre in 2025." in counting.encoded
    assert not any("Liverpool Strategic Partnership" in t for t in counting.encoded)

    after = load_index(small_corpus.index_dir, expected(small_corpus, encoder))
    assert "000_203956cee7abdc96" not in after.documents
    # The unchanged document kept its vectors and its chunks.
    old = [i for i, c in enumerate(before.chunks) if c.doc_id.startswith("001")]
    new = [i for i, c in enumerate(after.chunks) if c.doc_id.startswith("001")]
    assert np.array_equal(before.chunk_vectors()[old], after.chunk_vectors()[new])
    assert [after.chunk_text(i) for i in new] == [before.chunk_text(i) for i in old]
    for i in new:
        assert all(after.sentences[s].doc_id.startswith("001") for s in after.chunks[i].sentence_ids)


class Killed(BaseException):
    """The process dying mid-write: nothing in it gets to clean up."""


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), Killed()], ids=["write-fails", "killed"])
def test_a_failed_or_killed_write_leaves_previous_index_loadable(small_corpus, encoder, monkeypatch, reader, failure):
    build_index(small_corpus, encoder)
    before = QA.load(small_corpus, encoder, reader).ask("How many founding partners does Liverpool Health Partners have?")
    files_before = set(os.listdir(small_corpus.index_dir))

    corpus = Path(small_corpus.corpus_dir)
    shutil.copy(CORPUS / "004_ce580bb8f3b02914.txt", corpus)

    def crash(*args, **kwargs):
        raise failure

    import faiss

    monkeypatch.setattr(faiss, "write_index", crash)  # after documents and chunks are written
    if isinstance(failure, OSError):  # said in one line, and what it wrote is gone at once
        with pytest.raises(IndexWriteError, match=r"disk holding the index folder .* is full"):
            build_index(small_corpus, encoder)
        assert set(os.listdir(small_corpus.index_dir)) == files_before
    else:
        with pytest.raises(Killed):
            build_index(small_corpus, encoder)
    monkeypatch.undo()

    after = QA.load(small_corpus, encoder, reader)
    assert len(after.index.documents) == 3
    assert after.ask("How many founding partners does Liverpool Health Partners have?").answer == before.answer
    # Whoever takes the write lock next removes what a killed build left, nothing else.
    from qa.files import writing
    with writing(small_corpus.index_dir):
        assert set(os.listdir(small_corpus.index_dir)) == files_before
    assert len(QA.load(small_corpus, encoder, reader).index.documents) == 3
    # The next good build commits and clears the crashed build's files away.
    build_index(small_corpus, encoder)
    names = set(os.listdir(small_corpus.index_dir))
    assert len(QA.load(small_corpus, encoder, reader).index.documents) == 4
    assert not (names & files_before - {"manifest.json", ".ingest.lock"})
    assert len([n for n in names if n.startswith("documents-")]) == 1


def test_stale_index_says_to_reingest(small_corpus, encoder, reader):
    build_index(small_corpus, encoder)
    other = dataclasses.replace(small_corpus, chunk_tokens=100)
    with pytest.raises(StaleIndexError, match="qa ingest"):
        QA.load(other, encoder, reader)
    manifest_path = Path(small_corpus.index_dir) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["model"]["weights_sha256"] = "0" * 64
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(StaleIndexError, match="different model.*qa ingest"):
        QA.load(small_corpus, encoder, reader)
    manifest_path.write_text("{not json")
    with pytest.raises(StaleIndexError, match="damaged"):
        QA.load(small_corpus, encoder, reader)
    # Ingest itself rebuilds a stale index rather than failing.
    assert build_index(small_corpus, encoder).documents == 3


def test_format_version_mismatch_is_stale(small_corpus, encoder, monkeypatch, reader):
    build_index(small_corpus, encoder)
    monkeypatch.setattr(index_module, "FORMAT_VERSION", index_module.FORMAT_VERSION + 1)
    with pytest.raises(StaleIndexError, match="format version"):
        QA.load(small_corpus, encoder, reader)


def test_missing_index_and_empty_corpus(tmp_path, encoder, reader):
    config = Config(corpus_dir=str(tmp_path / "empty"), index_dir=str(tmp_path / "index"))
    with pytest.raises(IndexMissingError, match="qa ingest"):
        QA.load(config, encoder, reader)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "junk.txt").write_bytes(b"\x00\x00")
    with pytest.raises(EmptyCorpusError, match="1 file"):
        build_index(config, encoder)


def _same_tokens(index, sid, encoder) -> bool:
    """Stored as `qa.tokens` keeps them: the model's, made small (within a step of the int8
    codes, for the model's float noise between a batch and one text)."""
    stored = index.tokens.get(sid)
    _, (made,) = encoder.encode_tokens([index.sentence_text(sid)])
    kept = small(made, encoder.weights_sha256)
    return (np.array_equal(stored.spans, kept.spans) and np.array_equal(stored.content, kept.content)
            and stored.vectors.shape == (len(kept.spans), 64) and np.allclose(stored.vectors, kept.vectors, atol=1e-2))


def test_sentence_token_vectors_are_stored_at_ingest_and_carried_over(small_corpus, encoder):
    build_index(small_corpus, encoder)
    first = load_index(small_corpus.index_dir, expected(small_corpus, encoder))
    assert read_manifest(small_corpus.index_dir)["token_vectors"] is True
    assert all(_same_tokens(first, sid, encoder) for sid in range(0, len(first.sentences), 7))
    # Change one document: the others' stored token vectors are carried over, realigned.
    changed = Path(small_corpus.corpus_dir) / "000_203956cee7abdc96.txt"
    changed.write_text("A new first line about the partnership.\n\n" + changed.read_text())
    build_index(small_corpus, encoder)
    second = load_index(small_corpus.index_dir, expected(small_corpus, encoder))
    assert len(second.sentences) == len(first.sentences) + 1
    assert all(_same_tokens(second, sid, encoder) for sid in range(len(second.sentences)))


def test_above_the_budget_token_vectors_are_made_per_question(small_corpus, encoder, reader):
    build_index(small_corpus, encoder)
    stored = QA.load(small_corpus, encoder, reader)
    unstored_config = dataclasses.replace(small_corpus, index_dir=small_corpus.index_dir + "-big",
                                          token_vectors_max_sentences=10)
    build_index(unstored_config, encoder)
    assert read_manifest(unstored_config.index_dir)["token_vectors"] is False
    assert not any("token" in name for name in os.listdir(unstored_config.index_dir))
    unstored = QA.load(unstored_config, encoder, reader)
    assert unstored.index.tokens is None
    for question in ("Who are the founding partners?", "When was the partnership formed?"):
        a, b = stored.ask(question), unstored.ask(question)
        assert (a.answer, a.confidence) == (b.answer, pytest.approx(b.confidence, abs=1e-3))


def test_the_dense_index_is_exact_below_the_threshold_and_ivf_above(small_corpus):
    vectors = synthetic_vectors(3000, 384, seed=1, topics=32)
    config = dataclasses.replace(small_corpus, ann_threshold=2000)
    assert dense_index(vectors[:1999], config)[1] == {"kind": "flat"}
    index, kind = dense_index(vectors, config)
    assert kind == {"kind": "ivf", "nlist": 3000 // 39, "nprobe": 32}
    assert np.allclose(index.reconstruct_batch(np.array([5, 2999])), vectors[[5, 2999]])
    _, exact = faiss.knn(vectors[:50], vectors, 10, metric=faiss.METRIC_INNER_PRODUCT)
    _, found = index.search(vectors[:50], 10)
    assert np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact)]) >= 0.9
    with pytest.raises(ConfigError, match="dense_index"):
        dense_index(vectors, dataclasses.replace(config, dense_index="annoy"))


def test_an_ivf_index_is_recorded_saved_and_served(small_corpus, encoder, reader):
    config = dataclasses.replace(small_corpus, dense_index="ivf", ivf_nprobe=4)
    build_index(config, encoder)
    manifest = read_manifest(config.index_dir)
    assert manifest["dense_index"]["kind"] == manifest["sentence_index"]["kind"] == "ivf"
    qa = QA.load(config, encoder, reader)
    assert isinstance(qa.index.dense, faiss.IndexIVFFlat) and isinstance(qa.index.sentence_dense, faiss.IndexIVFFlat)
    assert qa.index.dense.nprobe == manifest["dense_index"]["nprobe"]  # saved with the index
    answer = qa.ask("Who are the founding partners?")
    assert answer.passages and all(p.text == qa.index.chunk_text(p.chunk_id) for p in answer.passages)
    # Re-ingest with one document changed reads the others' vectors back out of the IVF index.
    changed = Path(config.corpus_dir) / "001_576bfebf929a5f1e.txt"
    changed.write_text(changed.read_text() + "\nOne more sentence about the partnership.\n")
    report = build_index(config, encoder)
    assert len(report.reused) == 2
    reloaded = load_index(config.index_dir, expected(config, encoder))
    kept = next(i for i, c in enumerate(reloaded.chunks) if c.doc_id == report.reused[0])
    assert np.allclose(reloaded.chunk_vectors()[kept], encoder.encode([reloaded.chunk_text(kept)])[0],
                       atol=1e-5)


def test_a_second_ingest_into_the_same_folder_is_refused_while_the_first_writes(small_corpus, encoder):
    from qa.files import writing
    from qa.types import IndexBusyError

    build_index(small_corpus, encoder)
    before = read_manifest(small_corpus.index_dir)
    with (writing(small_corpus.index_dir),  # the first ingest, mid-write
          pytest.raises(IndexBusyError, match=f"pid {os.getpid()}.*Wait for it to finish")):
        build_index(small_corpus, encoder)
    assert read_manifest(small_corpus.index_dir) == before  # untouched
    build_index(small_corpus, encoder)  # free again once the first is done


def test_a_truncated_index_file_is_refused_with_what_to_do(small_corpus, encoder):
    build_index(small_corpus, encoder)
    manifest = read_manifest(small_corpus.index_dir)
    for name in ("dense", "sentence_vectors", "token_vectors"):
        path = Path(small_corpus.index_dir) / manifest["files"][name]
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        with pytest.raises(StaleIndexError, match="Re-run `qa ingest`"):
            load_index(small_corpus.index_dir, expected(small_corpus, encoder))
        path.write_bytes(data)


def test_kill_9_at_any_moment_of_an_ingest_leaves_a_loadable_index(small_corpus, encoder):
    import random
    import signal
    import subprocess
    import sys
    import time

    build_index(small_corpus, encoder)
    changing = Path(small_corpus.corpus_dir) / "001_576bfebf929a5f1e.txt"
    texts = [changing.read_text()]
    command = [sys.executable, "-m", "qa.cli", "ingest", "--corpus", small_corpus.corpus_dir,
               "--index", small_corpus.index_dir]
    # How long one whole `qa ingest` of a changed document takes on this machine: the kills
    # are drawn inside it, so that most land mid-run however fast or busy the machine is.
    texts.append(texts[0] + "\nA first round adds this sentence about the partnership.\n")
    changing.write_text(texts[-1])
    started = time.monotonic()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    whole = time.monotonic() - started
    rng, killed = random.Random(7), 0
    for n in range(6):  # bounded: each round is one `qa ingest` process killed at a random moment
        texts.append(texts[0] + f"\nRound {n} adds this sentence about the partnership.\n")
        changing.write_text(texts[-1])
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 1.2) * whole)
        proc.send_signal(signal.SIGKILL)
        killed += proc.wait() == -signal.SIGKILL
        index = load_index(small_corpus.index_dir, expected(small_corpus, encoder))  # never half-written
        assert len(index.documents) == 3 and index.dense.ntotal == len(index.chunks)
        # Either a completed earlier build or this one, whole: its text is one that was ingested.
        assert index.documents["001_576bfebf929a5f1e"].text in texts
    assert killed >= 3  # most rounds really were cut short
    report = build_index(small_corpus, encoder)  # the lock died with its holder; leftovers are cleared
    assert report.documents == 3
    generation = read_manifest(small_corpus.index_dir)["generation"]
    assert all(generation in name for name in os.listdir(small_corpus.index_dir)
               if name not in ("manifest.json", ".ingest.lock"))


def test_awkward_corpus_content_builds_and_answers(tmp_path, encoder, reader):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "one_line.txt").write_text(" ".join(f"item{i} of the ledger" for i in range(1500)))  # 33 KB, no full stop
    (corpus / "copy_a.txt").write_text("The Heron Trust was founded in 1987 by river wardens.\n")
    (corpus / "copy_b.txt").write_text("The Heron Trust was founded in 1987 by river wardens.\n")
    (corpus / "empty.txt").write_text("")
    (corpus / "page.html").write_text("<html><head><script>var secret = 'do not index';</script></head>"
                                      "<body><p>The Otter Fund pays for river surveys.</p></body></html>")
    config = Config(corpus_dir=str(corpus), index_dir=str(tmp_path / "index"))
    report = build_index(config, encoder)
    assert report.documents == 4 and report.skipped == [("empty.txt", "no text left after cleaning")]
    qa = QA.load(config, encoder, reader)
    assert "do not index" not in qa.index.documents["page"].text
    longest = max(range(len(qa.index.chunks)), key=lambda c: qa.index.chunks[c].end - qa.index.chunks[c].start)
    assert encoder.count_tokens(qa.index.chunk_text(longest)) <= encoder.max_tokens
    answer = qa.ask("When was the Heron Trust founded?")
    assert not answer.abstained and "1987" in answer.answer
    assert answer.citations[0].doc_id in {"copy_a", "copy_b"}


def test_the_index_keeps_at_most_4_kb_a_sentence_beyond_the_text(qa, corpus_config):
    """Token vectors as they came were ~40 KB a sentence (5.3 of the default index's 5.6 MB);
    kept small (`qa.tokens`) the whole index is ~3.3 KB a sentence beyond the documents' text."""
    from qa.lab.bench import bytes_per_sentence

    assert bytes_per_sentence(corpus_config.index_dir) <= 4096


def test_tokens_kept_in_another_basis_are_refused_with_what_to_do(small_corpus, encoder, monkeypatch):
    from qa import tokens

    build_index(small_corpus, encoder)
    monkeypatch.setattr(tokens, "basis_id", lambda model: "another")
    with pytest.raises(StaleIndexError, match="token basis .*Re-run `qa ingest`"):
        load_index(small_corpus.index_dir, expected(small_corpus, encoder))


def test_small_tokens_are_stored_exactly():
    """What `small` makes, quantised again, is itself: stored codes read back unchanged."""
    from qa.config import DEFAULT_MODEL_SHA256
    from qa.embed import TokenVectors
    from qa.tokens import decoded, quantised

    rng = np.random.default_rng(0)
    made = TokenVectors(rng.normal(size=(9, 384)).astype(np.float32), np.array([1, 0, 1] * 3, bool),
                        np.arange(18, dtype=np.int32).reshape(9, 2))
    kept = small(made, DEFAULT_MODEL_SHA256)
    assert kept.vectors.shape == (6, 64) and kept.content.all()
    assert np.allclose(np.linalg.norm(kept.vectors, axis=1), 1, atol=0.02)
    assert np.array_equal(decoded(*quantised(kept.vectors)), kept.vectors)
    assert small(made, DEFAULT_MODEL_SHA256, content_only=False).vectors.shape == (9, 64)
    assert small(made, "another model's weights").vectors.shape == (6, 384)  # not projected: the basis is MiniLM's
