"""The reader as a PyTorch network: the shipped int8 ONNX cross-encoder dequantised into a
BERT with a relevance head and a span head (what `qa train` trains and
`qa.lab.export_reader` writes back to ONNX)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def dequantised(onnx_file: Path) -> dict[str, np.ndarray]:
    """The float weights of an int8 BERT cross-encoder ONNX file (dynamic quantisation:
    MatMulInteger over int8 weights with a scale and zero point), by PyTorch names. The
    quantised matrices are anonymous in the graph; each is named by the bias added after
    its product."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_file)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def bias_after(node) -> str:
        frontier = [node]
        for _ in range(6):
            frontier = [c for f in frontier for o in f.output for c in consumers.get(o, [])]
            for c in frontier:
                found = [x for x in c.input if c.op_type == "Add" and x.endswith(".bias") and x in inits]
                if found:
                    return found[0]
        raise ValueError(f"no bias follows {node.name}")

    def value(base: str) -> np.ndarray:
        q = inits[base + "_quantized"].astype(np.float32)
        return (q - inits[base + "_zero_point"].astype(np.float32)) * inits[base + "_scale"]

    state = {}
    for node in graph.node:
        if node.op_type == "MatMulInteger":
            state[bias_after(node)[: -len(".bias")] + ".weight"] = value(node.input[1][: -len("_quantized")]).T
    for name, array in inits.items():
        if name.endswith(".weight_quantized"):  # the embeddings, dequantised in the graph
            state.setdefault(name[: -len("_quantized")], value(name[: -len("_quantized")]))
        elif name.endswith((".weight", ".bias")) and array.dtype == np.float32:
            state[name] = array
    return state


def build_network(onnx_file: Path):
    """The reader network in PyTorch, from the MS MARCO reader's int8 weights."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    class ReaderNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            config = BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=12, num_attention_heads=12,
                                intermediate_size=1536, max_position_embeddings=512, type_vocab_size=2, num_labels=1)
            self.cross = BertForSequenceClassification(config)
            self.span = torch.nn.Linear(384, 2)

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.cross.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            logits = self.cross.classifier(out.pooler_output)
            start, end = self.span(out.last_hidden_state).unbind(-1)
            return logits, start, end

    torch.manual_seed(0)
    net = ReaderNet()
    state = {k: torch.from_numpy(np.array(v, np.float32)) for k, v in dequantised(onnx_file).items()}
    missing, unexpected = net.cross.load_state_dict(state, strict=False)
    if unexpected or [m for m in missing if "position_ids" not in m]:
        raise ValueError(f"the reader's weights do not fit BERT: missing {missing}, unexpected {unexpected}")
    return net
