"""Small ONNX model builders for tests/model (onnx.helper, random weights, fixed seeds)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class Builder:
    """Accumulates nodes/initializers; ``model()`` returns an onnx.ModelProto."""

    def __init__(self, seed: int = 0, opset: int = 13):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.opset = [], [], opset

    def weight(self, name, shape, scale=0.3, low=None):
        """A float32 initializer: normal*scale, or uniform(low, 1.5) when ``low`` is given."""
        if low is None:
            v = self.rng.standard_normal(shape) * scale
        else:
            v = self.rng.uniform(low, 1.5, shape)
        return self.const(name, v.astype(np.float32))

    def const(self, name, value):
        """An initializer holding ``value``."""
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op, inputs, outputs, **attrs):
        """Append a node (named after its first output); returns its first output."""
        self.nodes.append(helper.make_node(op, inputs, outputs, name=f"{op}_{outputs[0]}", **attrs))
        return outputs[0]

    def model(self, inputs, outputs, name="g"):
        """inputs/outputs: list of (name, shape) float32 tensors (shape may hold 'N', or be
        None for an output of unknown shape)."""
        g = helper.make_graph(
            self.nodes, name,
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
            self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", self.opset)])
        m.ir_version = 8
        if all(s is not None for _, s in outputs):
            onnx.checker.check_model(m)
        return m


def ort_run(model, feeds):
    """Outputs of onnxruntime (the independent reference) for ``model`` on ``feeds``."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))


def assert_close(got, want, rtol=1e-5):
    """Relative agreement, with an absolute floor scaled to the reference's magnitude."""
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * float(np.abs(want).max() + 1e-12))


def pytorch_flatten(b: Builder, x: str, out: str) -> str:
    """The Shape->Gather->Unsqueeze->Concat->Reshape flatten that torch.onnx emits."""
    b.const(f"{out}_i0", np.array(0, np.int64))
    b.const(f"{out}_ax", np.array([0], np.int64))
    b.const(f"{out}_m1", np.array([-1], np.int64))
    b.node("Shape", [x], [f"{out}_shape"])
    b.node("Gather", [f"{out}_shape", f"{out}_i0"], [f"{out}_n"], axis=0)
    b.node("Unsqueeze", [f"{out}_n", f"{out}_ax"], [f"{out}_n1"])
    b.node("Concat", [f"{out}_n1", f"{out}_m1"], [f"{out}_spec"], axis=0)
    return b.node("Reshape", [x, f"{out}_spec"], [out])


def mnist_cnn(seed: int = 0):
    """Third-party-style MNIST CNN as torch exports it: Conv/Relu/MaxPool x2, Flatten, Gemm,
    Relu, Gemm (dynamic batch 'N')."""
    b = Builder(seed)
    h = b.node("Conv", ["input", b.weight("conv1.weight", (8, 1, 3, 3)),
                        b.weight("conv1.bias", (8,))], ["c1"],
               kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    h = b.node("Relu", [h], ["r1"])
    h = b.node("MaxPool", [h], ["p1"], kernel_shape=[2, 2], strides=[2, 2])
    h = b.node("Conv", [h, b.weight("conv2.weight", (16, 8, 3, 3)),
                        b.weight("conv2.bias", (16,))], ["c2"],
               kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    h = b.node("Relu", [h], ["r2"])
    h = b.node("MaxPool", [h], ["p2"], kernel_shape=[2, 2], strides=[2, 2])
    h = b.node("Flatten", [h], ["flat"], axis=1)
    h = b.node("Gemm", [h, b.weight("fc1.weight", (32, 16 * 7 * 7), 0.05),
                        b.weight("fc1.bias", (32,))], ["fc1"], transB=1)
    h = b.node("Relu", [h], ["r3"])
    b.node("Gemm", [h, b.weight("fc2.weight", (10, 32)), b.weight("fc2.bias", (10,))],
           ["logits"], transB=1)
    return b.model([("input", ["N", 1, 28, 28])], [("logits", ["N", 10])], "mnist_cnn")


def mnist_mlp(seed: int = 1):
    """Third-party-style MNIST MLP: Reshape to (N, 784), MatMul+Add+Relu, MatMul+Add."""
    b = Builder(seed)
    b.const("shape", np.array([-1, 784], np.int64))
    h = b.node("Reshape", ["input", "shape"], ["x784"])
    h = b.node("MatMul", [h, b.weight("W1", (784, 64), 0.05)], ["mm1"])
    h = b.node("Add", [h, b.weight("b1", (64,))], ["a1"])
    h = b.node("Relu", [h], ["h1"])
    h = b.node("MatMul", [h, b.weight("W2", (64, 10))], ["mm2"])
    b.node("Add", [h, b.weight("b2", (10,))], ["logits"])
    return b.model([("input", ["N", 1, 28, 28])], [("logits", ["N", 10])], "mnist_mlp")
