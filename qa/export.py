"""Make the ONNX copy of a sentence-transformers embedder, once per model, with torch.

ONNX Runtime runs MiniLM in a fraction of torch's time and imports in a fraction of
torch's 2+ s, so questions and ingest run on the export and torch is needed only here.
The export is checked against sentence-transformers before it is kept (cosine ≥ 0.9999
on short and max-length texts); a model whose modules are not Transformer → Pooling
(mean or CLS) → Normalize is not exported, and the caller falls back to torch.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .modelfiles import weights_hash

log = logging.getLogger(__name__)

EXPORT_VERSION = 2  # bump when what is written here changes
PARITY_MIN_COSINE = 0.9999


class UnsupportedExport(Exception):
    """The model cannot run on ONNX Runtime as exported here; the caller falls back to torch."""


_SUPPORTED = ["sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling",
              "sentence_transformers.models.Normalize"]


def export_encoder(source: Path, source_sha256: str, target: Path, name: str, load: Callable[[Path], Any]) -> None:
    """Write `target/` (model.onnx, tokenizer.json, export.json) from the model in `source`;
    `load(folder)` runs the export (the caller's ONNX encoder), checked against the source."""
    modules = json.loads((source / "modules.json").read_text(encoding="utf-8")) if (source / "modules.json").is_file() else []
    if [m.get("type") for m in modules][:2] != _SUPPORTED[:2] or any(m.get("type") not in _SUPPORTED for m in modules):
        raise UnsupportedExport(f"the model in {source} is not a plain Transformer + Pooling model")
    pooling = json.loads((source / modules[1]["path"] / "config.json").read_text(encoding="utf-8"))
    mode = "cls" if pooling.get("pooling_mode_cls_token") else "mean"
    if not (pooling.get("pooling_mode_mean_tokens") or mode == "cls"):
        raise UnsupportedExport(f"the pooling of {source} is neither mean nor CLS")

    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    log.warning("exporting the embedder %s to ONNX Runtime (once per model; about 10 s)", name)
    st = SentenceTransformer(str(source), device="cpu", local_files_only=True).eval()
    bert = st[0].auto_model

    class LastHidden(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        to_onnx(LastHidden(), work / "model.onnx", ["last_hidden_state"])
        _optimise(work / "model.onnx")
        shutil.copyfile(source / "tokenizer.json", work / "tokenizer.json")
        meta = {"export_version": EXPORT_VERSION, "source_sha256": source_sha256, "pooling": mode,
                "max_tokens": int(st.max_seq_length) - 2, "dim": int(st.get_embedding_dimension()),
                "onnx_sha256": weights_hash(work), "torch": torch.__version__}
        (work / "export.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        _check_parity(st, load(work))
        for f in work.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if target.exists():  # a stale or damaged export
            shutil.rmtree(target)
        os.replace(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


BERT_INPUTS = ["input_ids", "attention_mask", "token_type_ids"]


def to_onnx(module, path: Path, outputs: list[str], per_pair: tuple[str, ...] = ()) -> None:
    """Trace a BERT-input module to ONNX, batch and token axes dynamic (for `per_pair`
    outputs, one value per pair, the batch axis only)."""
    import torch

    example = tuple(torch.ones(2, 8, dtype=torch.long) for _ in BERT_INPUTS)
    axes = {n: {0: "batch"} if n in per_pair else {0: "batch", 1: "tokens"} for n in BERT_INPUTS + outputs}
    with warnings.catch_warnings():  # the tracer's notes on shape-dependent Python branches
        warnings.simplefilter("ignore")
        torch.onnx.export(module, example, str(path), input_names=BERT_INPUTS, output_names=outputs,
                          opset_version=17, dynamo=False, dynamic_axes=axes)


def _optimise(path: Path) -> None:
    """Save the graph as ONNX Runtime optimises it, so that each start skips that work (a
    session then builds in about half the time). Extended, not all, optimisations: those
    are the ones that do not depend on this machine's CPU."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(path.with_suffix(".opt"))
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    os.replace(path.with_suffix(".opt"), path)


def _check_parity(st, exported) -> None:
    texts = ["Who chairs it?", "The partnership was founded in 2014 by the universities of the city region.",
             " ".join(["health partnership research"] * 120)]  # longer than the model reads
    expected = st.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    cosines = np.sum(exported.encode(texts) * expected, axis=1)
    if float(cosines.min()) < PARITY_MIN_COSINE:
        raise UnsupportedExport(f"the ONNX export of the embedder disagrees with sentence-transformers "
                                f"(cosine {float(cosines.min()):.5f})")
