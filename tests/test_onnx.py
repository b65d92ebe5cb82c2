"""The ONNX Runtime embedder: the same vectors and the same retrieval as sentence-transformers,
and a question path that never imports torch."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from qa.config import Config
from qa.embed import OnnxEncoder, SentenceTransformerEncoder, cache_folder, load_encoder
from qa.export import UnsupportedExport, export_encoder
from qa.lab.eval import load_eval_set
from qa.question import plain
from qa.types import ConfigError

from conftest import ROOT

TEXTS = [
    "Who chairs LAHP?",
    "a",
    "The Leeds Academic Health Partnership was established in 2013 and brings together the city's universities.",
    " ".join(["Liverpool Health Partners brings research and care together across the city region."] * 40),
]


def test_onnx_vectors_match_sentence_transformers(encoder, torch_encoder):
    assert isinstance(encoder, OnnxEncoder) and isinstance(torch_encoder, SentenceTransformerEncoder)
    assert encoder.weights_sha256 == torch_encoder.weights_sha256  # an index serves either runtime
    assert torch_encoder.count_tokens(TEXTS[3]) > encoder.max_tokens  # the last text is cut at the limit
    cosines = np.sum(encoder.encode(TEXTS) * torch_encoder.encode(TEXTS), axis=1)
    assert cosines.min() >= 0.999
    ours, theirs = encoder.encode_tokens(TEXTS)[1], torch_encoder.encode_tokens(TEXTS)[1]
    for a, b in zip(ours, theirs):
        assert np.array_equal(a.spans, b.spans) and np.array_equal(a.content, b.content)
        assert np.sum(a.vectors * b.vectors, axis=1).min() >= 0.999
    assert [encoder.count_tokens(t) for t in TEXTS] == [torch_encoder.count_tokens(t) for t in TEXTS]


def test_onnx_and_torch_retrieve_the_same_top_10(qa, torch_encoder):
    questions = [case.question for case in load_eval_set(ROOT / "evals" / "default.jsonl")]
    for question in questions:
        query = plain(question, qa.lexicon)
        ours = qa.retriever.search(query, qa.encoder.encode([query])[0], 10)
        theirs = qa.retriever.search(query, torch_encoder.encode([query])[0], 10)
        assert [p.chunk_id for p in ours] == [p.chunk_id for p in theirs], question


def test_answering_imports_neither_torch_nor_sentence_transformers_nor_bm25s(qa, corpus_config):
    # bm25s (with scipy) only builds the BM25 index: importing them was 0.14 s of every start.
    script = (
        "import sys\n"
        "from qa.config import Config\n"
        "from qa.pipeline import QA\n"
        f"answer = QA.load(Config(index_dir={corpus_config.index_dir!r})).ask('Who chairs LAHP?')\n"
        "assert answer.sentences, answer\n"
        "print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers', 'bm25s', 'scipy') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_without_onnxruntime_the_encoder_falls_back_to_torch(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError
    fallback = load_encoder(Config())
    assert isinstance(fallback, SentenceTransformerEncoder)
    assert "onnxruntime is not installed" in caplog.text


def test_a_model_that_cannot_be_exported_is_refused_before_torch_loads(tmp_path):
    (tmp_path / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
    ]))
    with pytest.raises(UnsupportedExport, match="not a plain Transformer"):
        export_encoder(tmp_path, "0" * 64, tmp_path / "out", "custom", lambda work: OnnxEncoder(work, model_id="check"))
    assert not (tmp_path / "out").exists()


def test_a_damaged_export_is_refused_with_what_to_do(tmp_path, encoder):
    folder = next((cache_folder(Config()) / "onnx").glob("all-MiniLM-L6-v2-*"))
    copy = tmp_path / "onnx" / folder.name
    shutil.copytree(folder, copy)
    with open(copy / "model.onnx", "r+b") as fh:  # one flipped byte
        fh.seek(1000)
        byte = fh.read(1)
        fh.seek(1000)
        fh.write(bytes([byte[0] ^ 1]))
    with pytest.raises(ConfigError, match="sha256.*Delete"):
        load_encoder(Config(cache_dir=str(tmp_path)))


def test_an_old_export_is_made_again(tmp_path, encoder):
    folder = next((cache_folder(Config()) / "onnx").glob("all-MiniLM-L6-v2-*"))
    copy = tmp_path / "onnx" / folder.name
    shutil.copytree(folder, copy)
    meta = json.loads((copy / "export.json").read_text())
    (copy / "export.json").write_text(json.dumps({**meta, "export_version": 0}))
    again = load_encoder(Config(cache_dir=str(tmp_path)))
    assert json.loads((copy / "export.json").read_text())["export_version"] > 0
    assert np.sum(again.encode(TEXTS) * encoder.encode(TEXTS), axis=1).min() >= 0.9999
    assert [p.name for p in (tmp_path / "onnx").iterdir()] == [folder.name]  # no work folders left behind
