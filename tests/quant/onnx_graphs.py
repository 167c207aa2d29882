"""Test fixtures: small ONNX models built with onnx.helper, their onnxruntime outputs, and a
minimal ONNX -> edgebuild IR converter (independent of edgebuild.model.load)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from edgebuild.model.ir import Graph, Node


class Builder:
    """Accumulate nodes/initializers; ``model()`` returns an onnx.ModelProto."""

    def __init__(self, in_shape, seed=0, in_name="x"):
        self.rng = np.random.default_rng(seed)
        self.in_name = in_name
        self.in_shape = (1,) + tuple(in_shape)
        self.nodes, self.inits, self.k = [], [], 0

    def const(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name))
        return name

    def op(self, op_type, inputs, name=None, **attrs):
        self.k += 1
        name = name or f"{op_type.lower()}{self.k}"
        out = f"{name}_out"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=name, **attrs))
        return out

    def conv(self, x, cin, cout, k, name=None, group=1, bias=True, **attrs):
        name = name or f"conv{self.k + 1}"
        kh, kw = (k, k) if isinstance(k, int) else k
        fan_in = cin // group * kh * kw
        w = self.rng.normal(0, np.sqrt(2.0 / fan_in), (cout, cin // group, kh, kw))
        ins = [x, self.const(f"{name}.weight", w)]
        if bias:
            ins.append(self.const(f"{name}.bias", self.rng.normal(0, 0.1, cout)))
        return self.op("Conv", ins, name=name, kernel_shape=[kh, kw], group=group, **attrs)

    def gemm(self, x, fin, fout, name=None, w=None, b=None):
        name = name or f"fc{self.k + 1}"
        w = self.rng.normal(0, np.sqrt(1.0 / fin), (fout, fin)) if w is None else w
        b = self.rng.normal(0, 0.1, fout) if b is None else b
        return self.op("Gemm", [x, self.const(f"{name}.weight", w), self.const(f"{name}.bias", b)],
                       name=name, transB=1)

    def model(self, out):
        g = helper.make_graph(
            self.nodes, "m", [helper.make_tensor_value_info(self.in_name, TensorProto.FLOAT,
                                                           list(self.in_shape))],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
        m.ir_version = 8
        return onnx.shape_inference.infer_shapes(m, strict_mode=True)


def ort_run(model, x: np.ndarray, in_name="x") -> np.ndarray:
    """Run ``model`` in onnxruntime one sample at a time (batch 1 is fixed) -> (N, out)."""
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.stack([sess.run(None, {in_name: xi[None].astype(np.float32)})[0].reshape(-1)
                     for xi in x])


def to_graph(model) -> Graph:
    """Minimal converter for the models above (shapes from ONNX shape inference)."""
    g = model.graph
    shapes, dtypes = {}, {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        if dims:
            shapes[vi.name] = tuple(dims)
            dtypes[vi.name] = "float32"
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    for k, v in inits.items():
        shapes[k], dtypes[k] = v.shape, str(v.dtype)
    nodes = [Node(n.op_type, n.name, list(n.input), list(n.output),
                  {a.name: (lambda v: v.decode() if isinstance(v, bytes) else
                            (list(v) if isinstance(v, (list, tuple)) or hasattr(v, "__len__")
                             and not isinstance(v, str) else v))(helper.get_attribute_value(a))
                   for a in n.attribute}) for n in g.node]
    return Graph(nodes, [i.name for i in g.input if i.name not in inits],
                 [o.name for o in g.output], inits, shapes, dtypes)


def structured_images(n, shape, seed):
    """Smooth random images: a few random blobs per sample, values in [0, 1]."""
    rng = np.random.default_rng(seed)
    c, h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.zeros((n, c, h, w), dtype=np.float32)
    for i in range(n):
        for _ in range(3):
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(1.5, h / 3)
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
            out[i] += rng.uniform(0.3, 1.0, (c, 1, 1)) * blob
    return np.clip(out + rng.normal(0, 0.02, out.shape), 0, 1).astype(np.float32)


FASHION = "/usr/share/datasets/fashion-mnist"


def fashion_mnist(split: str, n: int):
    """First ``n`` Fashion-MNIST images (N, 1, 28, 28) in [0, 1] and labels, or None if absent."""
    import gzip
    import os

    prefix = "train" if split == "train" else "t10k"
    img, lab = (os.path.join(FASHION, f"{prefix}-{k}-idx{d}-ubyte.gz")
                for k, d in (("images", 3), ("labels", 1)))
    if not (os.path.exists(img) and os.path.exists(lab)):
        return None
    with gzip.open(img) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16)[:n * 784]
    with gzip.open(lab) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)[:n]
    return (x.reshape(n, 1, 28, 28) / 255.0).astype(np.float32), y.astype(np.int64)


def fit_head(features: np.ndarray, labels: np.ndarray, classes: int, ridge=1e-2):
    """Ridge-regression linear classifier (weights (classes, F), bias (classes,))."""
    f = np.hstack([features, np.ones((len(features), 1))])
    t = np.eye(classes)[labels]
    sol = np.linalg.solve(f.T @ f + ridge * np.eye(f.shape[1]), f.T @ t)
    return sol[:-1].T, sol[-1]
