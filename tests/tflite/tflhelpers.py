"""The reference interpreter (ai-edge-litert with its reference kernels) for the tflite tests."""

from __future__ import annotations

import numpy as np


def interpreter(path):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                     experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    return it


def run_reference(path, x: np.ndarray, tensor: int | None = None) -> np.ndarray:
    """Run the LiteRT reference kernels on each sample of ``x`` (NHWC or (N, features), the file's
    input dtype); returns tensor ``tensor`` (default: the model output) flattened, one row a sample."""
    it = interpreter(path)
    inp = it.get_input_details()[0]
    idx = it.get_output_details()[0]["index"] if tensor is None else tensor
    rows = []
    for i in range(len(x)):
        it.set_tensor(inp["index"], x[i:i + 1].astype(inp["dtype"]))
        it.invoke()
        rows.append(np.array(it.get_tensor(idx)).reshape(-1))
    return np.array(rows)


def softmax_input(path) -> int:
    """Index of the tensor a final SOFTMAX reads (the logits edgebuild's int8 model outputs)."""
    it = interpreter(path)
    ops = it._get_ops_details()
    last = ops[-1]
    if last["op_name"] == "DEQUANTIZE":
        last = ops[-2]
    assert last["op_name"] == "SOFTMAX", last
    return int(last["inputs"][0])


def to_nhwc(x_nchw: np.ndarray) -> np.ndarray:
    return x_nchw.transpose(0, 2, 3, 1) if x_nchw.ndim == 4 else x_nchw


def to_nchw(x_nhwc: np.ndarray) -> np.ndarray:
    return x_nhwc.transpose(0, 3, 1, 2) if x_nhwc.ndim == 4 else x_nhwc


def run_tensors(path, x: np.ndarray, tensors: list[int]) -> dict[int, np.ndarray]:
    """As run_reference for several tensors at once; each (N, values) in NCHW order."""
    it = interpreter(path)
    inp = it.get_input_details()[0]
    rows: dict[int, list] = {t: [] for t in tensors}
    for i in range(len(x)):
        it.set_tensor(inp["index"], x[i:i + 1].astype(inp["dtype"]))
        it.invoke()
        for t in tensors:
            rows[t].append(to_nchw(np.array(it.get_tensor(t))).reshape(-1))
    return {t: np.array(r) for t, r in rows.items()}


def layer_outputs_equal(qm, path, x_nhwc: np.ndarray) -> dict[str, int]:
    """For every layer of the QModel ``qm`` imported from ``path``: how many samples of ``x_nhwc``
    give its output tensor byte for byte as the interpreter computes it. Layer outputs are named
    t<tensor index>_<name> by the importer (edgebuild.tflite)."""
    from edgebuild.compress.qmodel import QModel

    index = {lay["output"]: int(lay["output"].split("_")[0][1:]) for lay in qm.layers}
    want = run_tensors(path, x_nhwc, sorted(set(index.values())))
    x = to_nchw(x_nhwc)
    counts = {}
    for k, lay in enumerate(qm.layers):
        sub = QModel(dict(qm.meta, layers=qm.layers[:k + 1], output=lay["output"], output_shape=lay["out_shape"]),
                     qm.arrays)
        got = sub.run(x)
        counts[lay["name"]] = int((got == want[index[lay["output"]]]).all(axis=1).sum())
    counts["distinct_values"] = len(np.unique(np.concatenate([w.reshape(-1) for w in want.values()])))
    return counts
